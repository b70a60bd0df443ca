# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throwaway lab of network namespaces for integration tests.

Every namespace, veth pair and process a test makes lives inside namespaces this
lab creates, and all of it is removed on close. The root namespace gets nothing:
veth pairs are created directly inside lab namespaces (``ip -n``), and lab
namespaces have no default route, so no packet can leave the lab. Namespaces are made,
entered and removed with tests/support/netns.py; the traffic helpers (TCP server and client,
frame capture) are those of tests/support/traffic.py.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
import sys
import time

from ansible_collections.ghostwarden.core.tests.support.netns import (
    create_netns,
    delete_netns,
    netns_exec,
    netns_spawn,
    stop_processes,
)
from ansible_collections.ghostwarden.core.tests.support.traffic import (
    FRAME_SEND,
    FrameCapture,
    start_frame_capture,
    start_tcp_server,
    tcp_client,
)


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
        """The namespace ``<prefix>-<role>`` with ``lo`` up (support.netns.create_netns)."""
        name = f"{self.prefix}-{role}"
        create_netns(name)
        self.namespaces.append(name)
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
        return netns_exec(ns, *cmd, check=check, input=input, timeout=timeout)

    def spawn(self, ns: str, *cmd: str, **popen_kwargs) -> subprocess.Popen:
        """A background process inside ``ns``; killed when the lab closes."""
        popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
        popen_kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = netns_spawn(ns, *cmd, **popen_kwargs)
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
        return start_tcp_server(lambda *argv, **kwargs: self.spawn(ns, *argv, **kwargs), name, *ports,
                                timeout=timeout, what=f"TCP server {name} in {ns}")

    def connect_tcp(self, ns: str, address: str, port: int, timeout: float = 1.5) -> str:
        """The line the server at address:port sends a client in ``ns``, or ``failed: <error class>``
        (``TimeoutError`` when the SYN is dropped, ``ConnectionRefusedError`` when nothing listens)."""
        return self.run(ns, *tcp_client(address, port, timeout), timeout=timeout + 15).stdout.strip()

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
        return start_frame_capture(lambda *argv, **kwargs: self.spawn(ns, *argv, **kwargs), iface, seconds,
                                   what=f"frame capture on {iface} in {ns}")

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
        stop_processes(self.processes)
        for ns in reversed(self.namespaces):
            delete_netns(ns)  # with anything still running inside (e.g. a daemon that detached)
        self.namespaces.clear()
        self.processes.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_VOLATILE_KEY = re.compile(r".*_timer|valid_life_time|preferred_life_time")


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if not _VOLATILE_KEY.fullmatch(key)}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value
