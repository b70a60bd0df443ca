# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helper programs that send and receive real traffic inside lab namespaces.

Each is a short Python script run with the test's own interpreter (``python -c``) through a
namespace's ``spawn`` or ``run``: the caller chooses the namespace, so every packet starts and ends
inside the lab.

- :data:`TCP_SERVER` (:func:`start_tcp_server`): answers every connection with one line
  ``<name> <peer address>``, so a client learns which server it reached and as whom it arrived.
- :data:`TCP_CLIENT` (:func:`tcp_client`): the server's line, or ``failed: <error class>``
  (``TimeoutError`` when the SYN is dropped, ``ConnectionRefusedError`` when nothing listens).
- :data:`FRAME_CAPTURE` (:class:`FrameCapture`) and :data:`FRAME_SEND`: raw Ethernet frames with
  their 802.1Q tags.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

# Ports written "7002h" hold their connections open (for connection limits).
TCP_SERVER = r"""
import selectors, socket, sys
name, specs = sys.argv[1], sys.argv[2:]
ports = [int(spec.rstrip("h")) for spec in specs]
held = {int(spec[:-1]) for spec in specs if spec.endswith("h")}
open_connections = []
selector = selectors.DefaultSelector()
for port in ports:
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", port))
    listener.listen(16)
    selector.register(listener, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _events in selector.select():
        connection, peer = key.fileobj.accept()
        address = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        connection.sendall(f"{name} {address}\n".encode())
        if key.fileobj.getsockname()[1] in held:
            open_connections.append(connection)
        else:
            connection.close()
"""

# Opens argv[4] (default 1) connections one after the other and keeps them open until it ends;
# prints what each got, joined by "; ".
TCP_CLIENT = r"""
import socket, sys
address, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
results, connections = [], []
for _attempt in range(int(sys.argv[4]) if len(sys.argv) > 4 else 1):
    try:
        connection = socket.create_connection((address, port), timeout=timeout)
        connection.settimeout(timeout)
        connections.append(connection)
        results.append(connection.makefile().readline().strip())
    except OSError as error:
        results.append(f"failed: {type(error).__name__}")
print("; ".join(results))
"""

# One line per frame: "<vlan id or -> <source mac> <ethertype hex> <payload hex>".
FRAME_CAPTURE = r"""
import socket, struct, sys, time
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID, ETH_P_ALL = 263, 8, 0x10, 0x0003
iface, seconds = sys.argv[1], float(sys.argv[2])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
sock.bind((iface, 0))
print("ready", flush=True)
deadline = time.monotonic() + seconds
while True:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        break
    sock.settimeout(remaining)
    try:
        frame, ancillary, _flags, _address = sock.recvmsg(65535, socket.CMSG_SPACE(20))
    except socket.timeout:
        break
    vlan, ethertype, payload = None, struct.unpack("!H", frame[12:14])[0], frame[14:]
    if ethertype in (0x8100, 0x88a8):
        vlan, ethertype, payload = struct.unpack("!H", frame[14:16])[0] & 0x0FFF, struct.unpack("!H", frame[16:18])[0], frame[18:]
    for level, kind, data in ancillary:
        if level == SOL_PACKET and kind == PACKET_AUXDATA:
            status, _length, _snaplen, _mac, _net, tci, _tpid = struct.unpack("IIIHHHH", data[:20])
            if status & TP_STATUS_VLAN_VALID:
                vlan = tci & 0x0FFF
    print(f"{'-' if vlan is None else vlan} {frame[6:12].hex(':')} {ethertype:04x} {payload.hex() or '-'}", flush=True)
"""

FRAME_SEND = r"""
import socket, struct, sys
iface, ethertype, payload, vlan = sys.argv[1], int(sys.argv[2], 16), bytes.fromhex(sys.argv[3]), int(sys.argv[4])
with open(f"/sys/class/net/{iface}/address", encoding="ascii") as address:
    source = bytes.fromhex(address.read().strip().replace(":", ""))
tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
sock.send(b"\xff" * 6 + source + tag + struct.pack("!H", ethertype) + payload.ljust(46, b"\0"))
"""


class HelperNotReady(AssertionError):
    """A helper program did not report ready in time (an assertion: the test fails with it)."""


def await_line(process: subprocess.Popen, expected: str, timeout: float, what: str) -> None:
    """Wait (bounded) for a helper process to print ``expected`` on its own line."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise HelperNotReady(f"{what}: not ready after {timeout:g}s")
    line = process.stdout.readline().strip()
    if line != expected:
        raise HelperNotReady(f"{what}: expected {expected!r}, got {line!r} (exit status {process.poll()})")


def start_tcp_server(spawn: Callable[..., subprocess.Popen], name: str, *ports: int | str, timeout: float = 10,
                     what: str = "") -> subprocess.Popen:
    """:data:`TCP_SERVER` on every address (IPv4 and IPv6) of the namespace ``spawn`` runs in, once
    it listens on ``ports`` ("7002h": holds its connections open)."""
    process = spawn(sys.executable, "-c", TCP_SERVER, name, *map(str, ports), stdout=subprocess.PIPE, text=True)
    await_line(process, "ready", timeout, what or f"TCP server {name}")
    return process


def tcp_client(address: str, port: int, timeout: float, count: int = 1) -> list[str]:
    """The argv of :data:`TCP_CLIENT`: ``count`` connections to address:port, each within ``timeout``."""
    return [sys.executable, "-c", TCP_CLIENT, address, str(port), str(timeout), str(count)]


@dataclass
class Frame:
    vlan: int | None
    source: str
    ethertype: int
    payload: bytes


class FrameCapture:
    """A running :data:`FRAME_CAPTURE`; :meth:`frames` waits for it to end."""

    def __init__(self, process: subprocess.Popen, seconds: float) -> None:
        self.process = process
        self.seconds = seconds

    def frames(self) -> list[Frame]:
        output, _errors = self.process.communicate(timeout=self.seconds + 15)
        frames = []
        for line in output.splitlines():
            vlan, source, ethertype, payload = line.split()
            frames.append(Frame(None if vlan == "-" else int(vlan), source, int(ethertype, 16),
                                b"" if payload == "-" else bytes.fromhex(payload)))
        return frames


def start_frame_capture(spawn: Callable[..., subprocess.Popen], iface: str, seconds: float,
                        what: str = "") -> FrameCapture:
    """Record every frame ``iface`` receives for ``seconds`` (in the namespace ``spawn`` runs in)."""
    process = spawn(sys.executable, "-c", FRAME_CAPTURE, iface, str(seconds), stdout=subprocess.PIPE, text=True)
    await_line(process, "ready", 10, what or f"frame capture on {iface}")
    return FrameCapture(process, seconds)
