# SPDX-License-Identifier: GPL-3.0-or-later
"""A throwaway lab of network namespaces for integration tests.

Every namespace, veth pair and process a test makes lives inside namespaces this
lab creates, and all of it is removed on close. The root namespace gets nothing:
veth pairs are created directly inside lab namespaces (``ip -n``), and lab
namespaces have no default route, so no packet can leave the lab.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


# The lab's "internet": a host's uplink up0 (198.51.100.2) faces the inet namespace's eth0
# (198.51.100.1, TEST-NET-2), which has no route anywhere else.
UPLINK = "up0"
UPLINK_ADDRESS = "198.51.100.2"
INET_ADDRESS = "198.51.100.1"


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, prefix: str | None = None) -> None:
        # Short unique prefix: namespace names appear in `ip netns list` and must not collide
        # with a parallel run.
        self.prefix = prefix or f"gw{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []

    # -- construction -------------------------------------------------------------------------
    def add_ns(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, *, up: bool = True) -> None:
        """A veth pair with one end in each namespace, created inside ns_a (never in the root namespace)."""
        self.run(ns_a, "ip", "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)
        if up:
            self.run(ns_a, "ip", "link", "set", name_a, "up")
            self.run(ns_b, "ip", "link", "set", name_b, "up")

    def addr(self, ns: str, iface: str, address: str) -> None:
        self.run(ns, "ip", "addr", "add", address, "dev", iface)

    def route(self, ns: str, *spec: str) -> None:
        self.run(ns, "ip", "route", "add", *spec)

    def sysctl(self, ns: str, *assignments: str) -> None:
        self.run(ns, "sysctl", "-qw", *assignments)

    def add_uplinked_host(self, role: str = "host", inet_role: str = "inet") -> tuple[str, str]:
        """A host namespace whose uplink ``up0`` (198.51.100.2/24) faces an "internet" namespace
        (``eth0``, 198.51.100.1/24), with the host's default route pointing at it. IPv6 duplicate
        address detection is off in both, so addresses are usable, and stable, at once."""
        host, inet = self.add_ns(role), self.add_ns(inet_role)
        for namespace in (host, inet):
            self.sysctl(namespace, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        self.veth(host, UPLINK, inet, "eth0")
        self.addr(host, UPLINK, f"{UPLINK_ADDRESS}/24")
        self.addr(inet, "eth0", f"{INET_ADDRESS}/24")
        self.route(host, "default", "via", INET_ADDRESS)
        return host, inet

    def add_client(self, host: str, port: str, role: str, address: str | None = None,
                   gateway: str | None = None) -> str:
        """A client namespace ``role`` whose ``eth0`` is the peer of veth ``port`` in ``host``
        (``port`` is what a topology lists under a network's ``ports``), with an address and a
        default route when given."""
        client = self.add_ns(role)
        self.sysctl(client, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        self.veth(host, port, client, "eth0")
        if address:
            self.addr(client, "eth0", address)
        if gateway:
            self.route(client, "default", "via", gateway)
        return client

    # -- running things -----------------------------------------------------------------------
    def run(self, ns: str, *cmd: str, check: bool = True, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", ns, *cmd], input=input, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise LabError(f"[{ns}] {shlex.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def spawn(self, ns: str, *cmd: str, **popen_kwargs) -> subprocess.Popen:
        """A background process inside ``ns``; killed when the lab closes."""
        popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
        popen_kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], start_new_session=True, **popen_kwargs)
        self.processes.append(process)
        return process

    def wait_for(self, predicate, *, timeout: float = 10, interval: float = 0.1, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise LabError(f"timed out after {timeout:g}s waiting for {what}")

    # -- traffic -------------------------------------------------------------------------------
    def serve_tcp(self, ns: str, name: str, *ports: int, timeout: float = 10) -> subprocess.Popen:
        """A TCP server on every address of ``ns`` (IPv4 and IPv6) answering each connection with
        ``<name> <peer address>``, so a client learns which server it reached and as whom it arrived."""
        process = self.spawn(ns, sys.executable, "-c", TCP_SERVER, name, *map(str, ports),
                             stdout=subprocess.PIPE, text=True)
        _await_line(process, "ready", timeout, f"TCP server {name} in {ns}")
        return process

    def connect_tcp(self, ns: str, address: str, port: int, timeout: float = 1.5) -> str:
        """The line the server at address:port sends a client in ``ns``, or ``failed: <error class>``
        (``TimeoutError`` when the SYN is dropped, ``ConnectionRefusedError`` when nothing listens)."""
        return self.run(ns, sys.executable, "-c", TCP_CLIENT, address, str(port), str(timeout),
                        timeout=timeout + 15).stdout.strip()

    def ping(self, ns: str, address: str, *, attempts: int = 10) -> bool:
        """Whether ``address`` answers an echo request within ``attempts`` one-second tries
        (the first ones may be spent on ARP through an overlay)."""
        for _attempt in range(attempts):
            if self.run(ns, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0:
                return True
        return False

    def capture_frames(self, ns: str, iface: str, seconds: float) -> FrameCapture:
        """Start recording every frame ``iface`` receives for ``seconds``, with its 802.1Q tag
        (read from the frame or, when the kernel took it off, from the packet's auxiliary data)."""
        process = self.spawn(ns, sys.executable, "-c", FRAME_CAPTURE, iface, str(seconds),
                             stdout=subprocess.PIPE, text=True)
        _await_line(process, "ready", 10, f"frame capture on {iface} in {ns}")
        return FrameCapture(process, seconds)

    def send_frame(self, ns: str, iface: str, ethertype: int, payload: bytes, *, vlan: int | None = None) -> None:
        """Send one broadcast frame from ``iface`` (source: its MAC address), 802.1Q-tagged with
        ``vlan`` when given."""
        self.run(ns, sys.executable, "-c", FRAME_SEND, iface, f"{ethertype:#06x}", payload.hex(), str(vlan or 0))

    def link_kind_unsupported(self, ns: str, name: str, *spec: str) -> str | None:
        """Why ``ip link add <name> <spec>`` fails in ``ns`` (the kernel lacks the link type), or
        None when it works; the probe link is deleted again."""
        result = self.run(ns, "ip", "link", "add", name, *spec, check=False)
        if result.returncode != 0:
            return f"ip link add {shlex.join([name, *spec])}: {result.stderr.strip()}"
        self.run(ns, "ip", "link", "delete", name)
        return None

    # -- observing -----------------------------------------------------------------------------
    def pids(self, ns: str, command: str) -> list[int]:
        """Processes running in ``ns`` whose command name (``/proc/<pid>/comm``) is ``command``."""
        found = []
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout.split():
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
                    if comm.read().strip() == command:
                        found.append(int(pid))
            except OSError:  # exited meanwhile
                continue
        return sorted(found)

    def links(self, ns: str) -> dict[str, dict]:
        """``ip -d -j link show`` of ``ns`` by link name."""
        return {link["ifname"]: link for link in json.loads(self.run(ns, "ip", "-d", "-j", "link", "show").stdout)}

    def kernel_state(self, ns: str) -> dict:
        """Everything of ``ns`` a write by the collection would show in: the ``inet ghostwarden``
        table with rule handles (a reload renumbers them), links with all details, addresses,
        VXLAN FDB entries, forwarding sysctls and dnsmasq processes. Values the kernel changes by
        itself (timers, address lifetimes) are left out."""
        table = self.run(ns, "nft", "-a", "list", "table", "inet", "ghostwarden", check=False)
        fdb = json.loads(self.run(ns, "bridge", "-j", "fdb", "show").stdout or "[]")
        return {
            "ruleset": table.stdout if table.returncode == 0 else None,
            "links": _stable(json.loads(self.run(ns, "ip", "-d", "-j", "link", "show").stdout)),
            "addresses": _stable(json.loads(self.run(ns, "ip", "-j", "addr", "show").stdout)),
            "fdb": sorted((entry for entry in fdb if "dst" in entry), key=lambda entry: json.dumps(entry, sort_keys=True)),
            "sysctls": self.run(ns, "sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding").stdout,
            "dnsmasq": self.pids(ns, "dnsmasq"),
        }

    def settled_state(self, ns: str, *, timeout: float = 15) -> dict:
        """:meth:`kernel_state` once it stops changing (links coming up, addresses leaving their
        tentative state), so that a comparison sees writes, not the kernel settling."""
        previous = self.kernel_state(ns)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The kernel reports carrier changes (a bridge that is up again) through linkwatch,
            # which runs at most once a second: a shorter pause can see a state still to change.
            time.sleep(1.1)
            current = self.kernel_state(ns)
            if current == previous:
                return current
            previous = current
        raise LabError(f"the kernel state of {ns} kept changing for {timeout:g}s")

    # -- teardown ------------------------------------------------------------------------------
    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        for ns in reversed(self.namespaces):
            # Anything still running inside (e.g. a daemon that detached) dies with its namespace.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
        self.namespaces.clear()
        self.processes.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_root() -> bool:
    return os.geteuid() == 0


def have_tools(tools: Sequence[str]) -> bool:
    from shutil import which
    return all(which(tool) for tool in tools)


@dataclass
class Frame:
    vlan: int | None
    source: str
    ethertype: int
    payload: bytes


class FrameCapture:
    """A running :meth:`Lab.capture_frames`; :meth:`frames` waits for it to end."""

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


_VOLATILE_KEY = re.compile(r".*_timer|valid_life_time|preferred_life_time")


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if not _VOLATILE_KEY.fullmatch(key)}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def _await_line(process: subprocess.Popen, expected: str, timeout: float, what: str) -> None:
    """Wait (bounded) for a helper process to print ``expected`` on its own line."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise LabError(f"{what}: not ready after {timeout:g}s")
    line = process.stdout.readline().strip()
    if line != expected:
        raise LabError(f"{what}: expected {expected!r}, got {line!r} (exit status {process.poll()})")


# Helper programs run inside lab namespaces with the test's own Python.

TCP_SERVER = r"""
import selectors, socket, sys
name, ports = sys.argv[1], [int(port) for port in sys.argv[2:]]
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
        connection.close()
"""

TCP_CLIENT = r"""
import socket, sys
address, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    with socket.create_connection((address, port), timeout=timeout) as connection:
        connection.settimeout(timeout)
        print(connection.makefile().readline().strip())
except OSError as error:
    print(f"failed: {type(error).__name__}")
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
