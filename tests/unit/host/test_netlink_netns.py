# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The netlink backend against a real kernel, each test inside its own throwaway namespace (root only).

Observation of a namespace built by hand with ``ip``/``bridge``; every operation kind executed
and observed back (and cross-checked with ``ip -d -j``); a topology applied from empty through
``plan()`` + ``execute()`` that then plans nothing and writes nothing; drift repaired; errors
with the kernel's message. VLAN devices and VLAN-aware bridges are exercised only where the
kernel supports them (probed inside the test's namespace; skipped with the reason otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
    empty_state,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, netns, requires_netns

pytestmark = [pytest.mark.root, requires_netns]

__all__ = ["netns"]  # the fixture, imported for pytest

FORWARDING = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
ZERO = "00:00:00:00:00:00"


@pytest.fixture
def backend(netns: NetNS) -> Iterator[NetlinkBackend]:
    with NetlinkBackend(netns.name) as opened:
        yield opened


def ip(namespace: NetNS, *argv: str) -> str:
    return namespace.run("ip", *argv).stdout


def ip_json(namespace: NetNS, *argv: str) -> list:
    return json.loads(namespace.run("ip", "-j", *argv).stdout or "[]")


def link_json(namespace: NetNS, name: str) -> dict:
    return ip_json(namespace, "-d", "link", "show", "dev", name)[0]


def link(state: HostState, name: str) -> LinkState:
    return next(item for item in state.links if item.name == name)


def fdb_dsts(namespace: NetNS, device: str) -> list[str]:
    entries = json.loads(namespace.run("bridge", "-j", "fdb", "show", "dev", device).stdout or "[]")
    return sorted(entry["dst"] for entry in entries if entry["mac"] == ZERO)


def veth(namespace: NetNS, name: str, peer: str) -> None:
    ip(namespace, "link", "add", name, "type", "veth", "peer", "name", peer)
    ip(namespace, "link", "set", name, "up")
    ip(namespace, "link", "set", peer, "up")


def bridge_op(name: str, network: str, **attrs: object) -> Operation:
    return Operation("create_link", f"link:{name}",
                     {"type": "bridge", "ifalias": f"ghostwarden:{network}", "state": "up", "stp": False,
                      "vlan_filtering": False, **attrs})


def vxlan_op(name: str, network: str, **attrs: object) -> Operation:
    return Operation("create_link", f"link:{name}",
                     {"type": "vxlan", "ifalias": f"ghostwarden:{network}", "state": "up", "dstport": 4789,
                      "learning": False, **attrs})


def address_op(kind: str, iface: str, address: str) -> Operation:
    return Operation(kind, f"address:{iface}:{address}", {"iface": iface, "address": address})


def fdb_op(kind: str, iface: str, dst: str) -> Operation:
    return Operation(kind, f"fdb:{iface}:{dst}", {"iface": iface, "mac": ZERO, "dst": dst})


def execute(backend: NetlinkBackend, *operations: Operation) -> int:
    """Executes the operations; the number of writes they made."""
    before = backend.writes
    for operation in operations:
        backend.execute(operation)
    return backend.writes - before


def probe(namespace: NetNS, *argv: str) -> str | None:
    """None when ``ip argv`` works in the namespace (the probe is undone), else the kernel's answer."""
    result = namespace.run("ip", *argv, check=False)
    return None if result.returncode == 0 else (result.stderr.strip() or f"exit {result.returncode}")


def require_vlan_devices(namespace: NetNS) -> None:
    veth(namespace, "probe0", "probe1")
    refused = probe(namespace, "link", "add", "link", "probe0", "name", "probe0.5", "type", "vlan", "id", "5")
    ip(namespace, "link", "del", "probe0")
    if refused:
        pytest.skip(f"this kernel has no 802.1Q VLAN devices ({refused})")


def require_vlan_filtering(namespace: NetNS) -> None:
    refused = probe(namespace, "link", "add", "probe-br", "type", "bridge", "vlan_filtering", "1")
    if refused:
        pytest.skip(f"this kernel has no bridge VLAN filtering ({refused})")
    ip(namespace, "link", "del", "probe-br")


def owned_as_recorded(observed: HostState, desired: HostState) -> HostState:
    """Ownership as the driver marks it: addresses, FDB entries and enslavements it wanted."""
    addresses = {item.key for item in desired.addresses}
    fdb = {item.key for item in desired.fdb}
    ports = {(item.port, item.master) for item in desired.enslavements}
    return dataclasses.replace(
        observed,
        addresses=tuple(dataclasses.replace(item, owned=item.key in addresses) for item in observed.addresses),
        fdb=tuple(dataclasses.replace(item, owned=item.key in fdb) for item in observed.fdb),
        enslavements=tuple(dataclasses.replace(item, owned=(item.port, item.master) in ports)
                           for item in observed.enslavements),
    )


def kernel_snapshot(namespace: NetNS) -> tuple:
    """Links, addresses and FDB as ip/bridge list them (without counters that move by themselves)."""
    links = ip_json(namespace, "-d", "link", "show")
    for item in links:
        for volatile in ("stats", "stats64", "linkinfo"):
            item.pop(volatile, None)
    addresses = ip_json(namespace, "addr", "show")
    for item in addresses:
        item.pop("operstate", None)
        for info in item.get("addr_info", []):
            info.pop("valid_life_time", None)
            info.pop("preferred_life_time", None)
    fdb = json.loads(namespace.run("bridge", "-j", "fdb", "show").stdout or "[]")
    return links, addresses, fdb


# --- namespace handling ------------------------------------------------------------------------


def test_a_missing_namespace_is_an_error_and_is_not_created() -> None:
    name = "gwt-missing-0"
    with pytest.raises(BackendError) as caught:
        NetlinkBackend(name)
    assert (caught.value.step, caught.value.cause) == ("netns", "network namespace 'gwt-missing-0' does not exist")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert name not in listed


def test_the_callers_namespace_never_changes(netns: NetNS) -> None:
    own = os.stat("/proc/thread-self/ns/net")
    with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as stream:
        host_forwarding = stream.read()
    with NetlinkBackend(netns.name) as backend:
        writes = execute(backend, Operation("set_sysctl", "sysctl:net.ipv4.ip_forward",
                                            {"key": "net.ipv4.ip_forward", "value": "1", "was": "0"}),
                         bridge_op("gw-x", "x"))
        state = backend.observe(FORWARDING)
    assert writes == 3
    assert (os.stat("/proc/thread-self/ns/net").st_ino, os.stat("/proc/thread-self/ns/net").st_dev) == (
        own.st_ino, own.st_dev)
    with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as stream:
        assert stream.read() == host_forwarding
    assert dict(state.sysctls)["net.ipv4.ip_forward"] == "1"
    assert netns.run("sysctl", "-n", "net.ipv4.ip_forward").stdout == "1\n"
    assert "gw-x" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_without_a_namespace_name_it_works_in_the_process_namespace(netns: NetNS) -> None:
    # Runs the backend with netns=None in a process that ip netns exec put inside the lab.
    script = (
        "import json\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import Operation\n"
        "with NetlinkBackend() as backend:\n"
        "    backend.execute(Operation('create_link', 'link:gw-here', {'type': 'bridge', 'ifalias': 'ghostwarden:here',"
        " 'state': 'up'}))\n"
        "    backend.execute(Operation('set_sysctl', 'sysctl:net.ipv6.conf.all.forwarding',"
        " {'key': 'net.ipv6.conf.all.forwarding', 'value': '1', 'was': '0'}))\n"
        "    state = backend.observe(['net.ipv6.conf.all.forwarding'])\n"
        "    print(json.dumps([backend.writes, state.to_dict()['links'], state.to_dict()['sysctls']]))\n"
    )
    collections = str(Path(__file__).resolve().parents[3] / ".cache" / "collections")
    output = netns.run(sys.executable, "-c", script, env={"PYTHONPATH": collections}).stdout
    writes, links, sysctls = json.loads(output)
    assert writes == 3
    assert [item["name"] for item in links] == ["gw-here", "lo"]
    assert links[0]["owner"] == "here"
    assert sysctls == {"net.ipv6.conf.all.forwarding": "1"}
    assert netns.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout == "1\n"


def test_observing_does_not_load_pyroute2_and_the_first_change_does(netns: NetNS) -> None:
    script = (
        "import sys\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import Operation\n"
        f"with NetlinkBackend({netns.name!r}) as backend:\n"
        "    backend.observe(['net.ipv4.ip_forward'])\n"
        "    print('pyroute2' in sys.modules)\n"
        "    backend.execute(Operation('create_link', 'link:gw-x', {'type': 'bridge', 'ifalias': 'ghostwarden:x'}))\n"
        "    print('pyroute2' in sys.modules)\n"
    )
    collections = str(Path(__file__).resolve().parents[3] / ".cache" / "collections")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": collections})
    assert result.stdout.split() == ["False", "True"]
    assert link_json(netns, "gw-x")["ifalias"] == "ghostwarden:x"


# --- observing -----------------------------------------------------------------------------------


def build_by_hand(namespace: NetNS) -> None:
    """Owned bridges gw-a (veth port, addresses) and gw-b (vxlan with peers), foreign ones besides."""
    run = namespace.run
    ip(namespace, "link", "add", "gw-a", "address", "02:00:00:00:0a:01", "type", "bridge", "stp_state", "1")
    ip(namespace, "link", "add", "gw-b", "address", "02:00:00:00:0b:01", "type", "bridge")
    ip(namespace, "link", "add", "br-foreign", "address", "02:00:00:00:0f:01", "type", "bridge")
    ip(namespace, "link", "add", "p-a", "address", "02:00:00:00:0a:02", "type", "veth", "peer", "name", "p-a-peer",
       "address", "02:00:00:00:0a:03")
    ip(namespace, "link", "add", "vx100", "type", "vxlan", "id", "100", "local", "192.0.2.1", "dstport", "4789",
       "nolearning")
    ip(namespace, "link", "add", "vx-f", "type", "vxlan", "id", "7", "dstport", "4789", "dev", "p-a-peer")
    ip(namespace, "link", "add", "mv0", "link", "br-foreign", "type", "macvlan")
    for name in ("gw-a", "gw-b", "br-foreign", "p-a", "p-a-peer", "vx100", "vx-f", "mv0"):
        # No addresses made up by the kernel: the test lists every address exactly.
        ip(namespace, "link", "set", name, "addrgenmode", "none")
    ip(namespace, "link", "set", "gw-a", "alias", "ghostwarden:a", "mtu", "1400", "up")
    ip(namespace, "link", "set", "gw-b", "alias", "ghostwarden:b")
    ip(namespace, "link", "set", "vx100", "alias", "ghostwarden:b", "master", "gw-b", "up")
    ip(namespace, "link", "set", "p-a", "master", "gw-a", "up")
    ip(namespace, "link", "set", "p-a-peer", "up")
    ip(namespace, "link", "set", "br-foreign", "up")
    ip(namespace, "addr", "add", "10.33.0.1/24", "dev", "gw-a")
    ip(namespace, "addr", "add", "fd00:33::1/64", "dev", "gw-a", "nodad")
    ip(namespace, "addr", "add", "fe80::a2/64", "dev", "p-a-peer", "nodad")
    ip(namespace, "addr", "add", "10.99.0.1/24", "dev", "br-foreign")
    run("bridge", "fdb", "append", ZERO, "dev", "vx100", "dst", "198.51.100.3")
    run("bridge", "fdb", "append", ZERO, "dev", "vx100", "dst", "198.51.100.2")
    run("bridge", "fdb", "add", "02:00:00:00:00:99", "dev", "vx100", "dst", "198.51.100.9", "self", "permanent")
    run("sysctl", "-w", "net.ipv4.ip_forward=1")


def test_observe_a_namespace_built_by_hand(netns: NetNS, backend: NetlinkBackend) -> None:
    build_by_hand(netns)
    state = backend.observe([*FORWARDING, "net.ipv4.conf.p-a.forwarding", "net.ipv4.conf.nothing.forwarding"])
    assert state.links == (
        LinkState("br-foreign", "bridge"),
        LinkState("gw-a", "bridge", "a", {"ifalias": "ghostwarden:a", "mtu": 1400, "state": "up", "stp": True,
                                          "vlan_filtering": False}),
        LinkState("gw-b", "bridge", "b", {"ifalias": "ghostwarden:b", "mtu": 1500, "state": "down", "stp": False,
                                          "vlan_filtering": False}),
        LinkState("lo", "other"),
        LinkState("mv0", "other", None, {"parent": "br-foreign"}),
        LinkState("p-a", "other", None, {"parent": "p-a-peer"}),
        LinkState("p-a-peer", "other", None, {"parent": "p-a"}),
        LinkState("vx-f", "vxlan", None, {"dev": "p-a-peer"}),
        LinkState("vx100", "vxlan", "b", {"dstport": 4789, "ifalias": "ghostwarden:b", "learning": False,
                                          "local": "192.0.2.1", "master": "gw-b", "mtu": 1500, "state": "up",
                                          "vni": 100}),
    )
    assert state.addresses == (
        Address("br-foreign", "10.99.0.1/24"),
        Address("gw-a", "10.33.0.1/24"),
        Address("gw-a", "fd00:33::1/64"),
        Address("lo", "127.0.0.1/8"),
        Address("lo", "::1/128"),
        Address("p-a-peer", "fe80::a2/64"),
    )
    assert state.fdb == (
        FdbEntry("vx100", "198.51.100.2"),
        FdbEntry("vx100", "198.51.100.3"),
    )
    assert state.enslavements == (Enslavement("p-a", "gw-a"),)
    assert state.bridge_vlans == ()  # no VLAN-aware bridge
    assert dict(state.sysctls) == {
        "net.ipv4.conf.p-a.forwarding": "1",  # follows ip_forward, set after p-a existed
        "net.ipv4.ip_forward": "1",
        "net.ipv6.conf.all.forwarding": "0",
    }
    assert state.ruleset is None and state.dnsmasq_files == ()
    assert backend.writes == 0


def test_observation_agrees_with_ip(netns: NetNS, backend: NetlinkBackend) -> None:
    build_by_hand(netns)
    state = backend.observe()
    listed = {item["ifname"]: item for item in ip_json(netns, "-d", "link", "show")}
    assert sorted(listed) == [item.name for item in state.links]
    for item in state.links:
        shown = listed[item.name]
        kind = shown.get("linkinfo", {}).get("info_kind")
        assert item.kind == (kind if kind in ("bridge", "vlan", "vxlan") else "other")
        if item.owned:
            assert item.attr("ifalias") == shown["ifalias"]
            assert item.attr("mtu") == shown["mtu"]
            assert item.attr("master") == shown.get("master")
            assert item.attr("state") == ("up" if "UP" in shown["flags"] else "down")
    addresses = sorted(
        (item["ifname"], f"{info['local']}/{info['prefixlen']}")
        for item in ip_json(netns, "addr", "show") for info in item["addr_info"]
    )
    assert addresses == sorted(address.key for address in state.addresses)


# --- executing, kind by kind -------------------------------------------------------------------


def test_create_link_bridge_and_vxlan(netns: NetNS, backend: NetlinkBackend) -> None:
    veth(netns, "ul0", "ul1")
    writes = execute(
        backend,
        bridge_op("gw-a", "a", stp=True, mtu=1400),
        bridge_op("gw-b", "b"),
        vxlan_op("vx1200", "b", vni=1200, master="gw-b", local="192.0.2.10", dev="ul0", mtu=1400),
        vxlan_op("vx1300", "b6", vni=1300, local="fd00:ff::10", dstport=4790, learning=True),
    )
    assert writes == 8  # create, then mark (and MTU), for each link
    state = backend.observe()
    assert link(state, "gw-a") == LinkState("gw-a", "bridge", "a", {
        "ifalias": "ghostwarden:a", "mtu": 1400, "state": "up", "stp": True, "vlan_filtering": False})
    assert link(state, "gw-b") == LinkState("gw-b", "bridge", "b", {
        "ifalias": "ghostwarden:b", "mtu": 1400, "state": "up", "stp": False, "vlan_filtering": False})
    assert link(state, "vx1200") == LinkState("vx1200", "vxlan", "b", {
        "dev": "ul0", "dstport": 4789, "ifalias": "ghostwarden:b", "learning": False, "local": "192.0.2.10",
        "master": "gw-b", "mtu": 1400, "state": "up", "vni": 1200})
    assert link(state, "vx1300") == LinkState("vx1300", "vxlan", "b6", {
        "dstport": 4790, "ifalias": "ghostwarden:b6", "learning": True, "local": "fd00:ff::10", "mtu": 1500,
        "state": "up", "vni": 1300})
    shown = link_json(netns, "vx1200")
    assert (shown["ifalias"], shown["mtu"], shown["master"]) == ("ghostwarden:b", 1400, "gw-b")
    data = shown["linkinfo"]["info_data"]
    assert (data["id"], data["local"], data["link"], data["port"], data["learning"]) == (
        1200, "192.0.2.10", "ul0", 4789, False)
    assert link_json(netns, "gw-a")["linkinfo"]["info_data"]["stp_state"] == 1


def test_a_bridge_keeps_its_mtu_when_a_port_with_another_mtu_joins(netns: NetNS, backend: NetlinkBackend) -> None:
    veth(netns, "port0", "port1")
    execute(backend, bridge_op("gw-a", "a", mtu=1400),
            Operation("set_master", "port:port0", {"master": "gw-a"}))
    assert link(backend.observe(), "gw-a").attr("mtu") == 1400
    assert link_json(netns, "port0")["mtu"] == 1500


def test_modify_link(netns: NetNS, backend: NetlinkBackend) -> None:
    execute(backend, bridge_op("gw-a", "a"), bridge_op("gw-b", "b"),
            vxlan_op("vx7", "a", vni=7, master="gw-a"))
    writes = execute(
        backend,
        Operation("modify_link", "link:gw-a", {"mtu": 1300, "stp": True, "state": "down"}),
        Operation("modify_link", "link:gw-b", {"ifalias": "ghostwarden:renamed"}),
        Operation("modify_link", "link:vx7", {"learning": True, "master": "gw-b"}),
    )
    assert writes == 3
    state = backend.observe()
    assert link(state, "gw-a").attrs == (("ifalias", "ghostwarden:a"), ("mtu", 1300), ("state", "down"),
                                         ("stp", True), ("vlan_filtering", False))
    assert link(state, "gw-b").owner == "renamed"
    assert (link(state, "vx7").attr("learning"), link(state, "vx7").attr("master")) == (True, "gw-b")
    execute(backend, Operation("modify_link", "link:vx7", {"master": None}))
    assert link(backend.observe(), "vx7").attr("master") is None
    assert "master" not in link_json(netns, "vx7")


def test_set_and_release_master_of_a_foreign_port(netns: NetNS, backend: NetlinkBackend) -> None:
    veth(netns, "port0", "port1")
    execute(backend, bridge_op("gw-a", "a"), bridge_op("gw-b", "b"))
    assert execute(backend, Operation("set_master", "port:port0", {"master": "gw-a"})) == 1
    assert backend.observe().enslavements == (Enslavement("port0", "gw-a"),)
    execute(backend, Operation("set_master", "port:port0", {"master": "gw-b"}))  # moved between owned bridges
    assert backend.observe().enslavements == (Enslavement("port0", "gw-b"),)
    assert execute(backend, Operation("release_master", "port:port0", {"master": "gw-b"})) == 1
    assert backend.observe().enslavements == ()
    assert "master" not in link_json(netns, "port0")


def test_addresses(netns: NetNS, backend: NetlinkBackend) -> None:
    execute(backend, bridge_op("gw-a", "a"))
    ip(netns, "addr", "add", "10.99.0.1/24", "dev", "gw-a")  # someone else's
    writes = execute(backend, address_op("add_address", "gw-a", "10.33.0.1/24"),
                     address_op("add_address", "gw-a", "fd00:33::1/64"))
    assert writes == 2
    found = {address.address for address in backend.observe().addresses if address.iface == "gw-a"}
    assert {"10.33.0.1/24", "fd00:33::1/64", "10.99.0.1/24"} <= found
    v4 = [info for info in ip_json(netns, "addr", "show", "dev", "gw-a")[0]["addr_info"] if info["local"] == "10.33.0.1"]
    assert v4[0]["broadcast"] == "10.33.0.255"
    execute(backend, address_op("remove_address", "gw-a", "10.33.0.1/24"),
            address_op("remove_address", "gw-a", "fd00:33::1/64"))
    left = sorted(address.address for address in backend.observe().addresses if address.iface == "gw-a")
    assert [address for address in left if not address.startswith("fe80:")] == ["10.99.0.1/24"]


def test_fdb_entries(netns: NetNS, backend: NetlinkBackend) -> None:
    execute(backend, vxlan_op("vx7", "a", vni=7), vxlan_op("vx8", "b", vni=8, local="fd00:ff::10"))
    writes = execute(backend, fdb_op("add_fdb", "vx7", "198.51.100.2"), fdb_op("add_fdb", "vx7", "198.51.100.3"),
                     fdb_op("add_fdb", "vx8", "fd00:ff::11"))
    assert writes == 3
    assert backend.observe().fdb == (FdbEntry("vx7", "198.51.100.2"), FdbEntry("vx7", "198.51.100.3"),
                                     FdbEntry("vx8", "fd00:ff::11"))
    execute(backend, fdb_op("remove_fdb", "vx7", "198.51.100.2"))
    assert fdb_dsts(netns, "vx7") == ["198.51.100.3"]
    assert backend.observe().fdb == (FdbEntry("vx7", "198.51.100.3"), FdbEntry("vx8", "fd00:ff::11"))


def test_delete_link(netns: NetNS, backend: NetlinkBackend) -> None:
    veth(netns, "port0", "port1")
    execute(backend, bridge_op("gw-a", "a"), Operation("set_master", "port:port0", {"master": "gw-a"}))
    assert execute(backend, Operation("delete_link", "link:gw-a", {"type": "bridge", "reason": "not in the topology"})) == 1
    state = backend.observe()
    assert [item.name for item in state.links] == ["lo", "port0", "port1"]
    assert state.enslavements == ()
    # The index cache is not stale: the same name created again is found.
    execute(backend, bridge_op("gw-a", "a"), address_op("add_address", "gw-a", "10.33.0.1/24"))
    assert Address("gw-a", "10.33.0.1/24") in backend.observe().addresses


def test_set_sysctl(netns: NetNS, backend: NetlinkBackend) -> None:
    assert execute(backend, Operation("set_sysctl", "sysctl:net.ipv6.conf.all.forwarding",
                                      {"key": "net.ipv6.conf.all.forwarding", "value": "1", "was": "0"})) == 1
    assert dict(backend.observe(FORWARDING).sysctls)["net.ipv6.conf.all.forwarding"] == "1"
    assert netns.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout == "1\n"


@pytest.mark.vlan_kernel
def test_vlan_device(netns: NetNS, backend: NetlinkBackend) -> None:
    require_vlan_devices(netns)
    veth(netns, "trunk0", "trunk1")
    execute(backend, bridge_op("br-work", "work"),
            Operation("create_link", "link:vl20", {"type": "vlan", "ifalias": "ghostwarden:work", "state": "up",
                                                   "parent": "trunk0", "vlan_id": 20, "master": "br-work"}))
    assert link(backend.observe(), "vl20") == LinkState("vl20", "vlan", "work", {
        "ifalias": "ghostwarden:work", "master": "br-work", "mtu": 1500, "parent": "trunk0", "state": "up",
        "vlan_id": 20})
    assert link_json(netns, "vl20")["linkinfo"]["info_data"]["id"] == 20


@pytest.mark.vlan_kernel
def test_bridge_vlans(netns: NetNS, backend: NetlinkBackend) -> None:
    require_vlan_filtering(netns)
    veth(netns, "port0", "port1")
    execute(backend, bridge_op("br-trunk", "trunk", vlan_filtering=True),
            Operation("set_master", "port:port0", {"master": "br-trunk"}))
    add = {"bridge": "br-trunk", "pvid": False, "untagged": False}
    execute(
        backend,
        Operation("add_bridge_vlan", "bridge_vlan:br-trunk:100-199",
                  {**add, "port": "br-trunk", "self": True, "vid_first": 100, "vid_last": 199}),
        Operation("add_bridge_vlan", "bridge_vlan:port0:20",
                  {**add, "port": "port0", "self": False, "vid_first": 20, "vid_last": 20}),
        Operation("add_bridge_vlan", "bridge_vlan:port0:100-199",
                  {**add, "port": "port0", "self": False, "vid_first": 100, "vid_last": 199}),
    )
    assert backend.observe().bridge_vlans == (
        BridgeVlan("br-trunk", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("br-trunk", PortRange(100, 199)),
        BridgeVlan("port0", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("port0", PortRange(20, 20)),
        BridgeVlan("port0", PortRange(100, 199)),
    )
    execute(backend, Operation("remove_bridge_vlan", "bridge_vlan:port0:150-199",
                               {"port": "port0", "self": False, "vid_first": 150, "vid_last": 199}))
    assert BridgeVlan("port0", PortRange(100, 149)) in backend.observe().bridge_vlans


# --- errors --------------------------------------------------------------------------------------


def test_creating_a_link_whose_name_exists_fails_and_leaves_it_alone(netns: NetNS, backend: NetlinkBackend) -> None:
    ip(netns, "link", "add", "gw-a", "type", "bridge")
    operation = bridge_op("gw-a", "a", mtu=1400)
    with pytest.raises(BackendError) as caught:
        backend.execute(operation)
    assert (caught.value.step, caught.value.cause) == (str(operation), "File exists")
    assert str(caught.value) == (
        "create_link link:gw-a ifalias=ghostwarden:a mtu=1400 state=up stp=false type=bridge "
        "vlan_filtering=false: File exists")
    shown = link_json(netns, "gw-a")
    assert ("ifalias" not in shown, shown["mtu"]) == (True, 1500)  # not marked, not changed
    assert backend.writes == 1


def test_kernel_errors_carry_the_kernel_message(netns: NetNS, backend: NetlinkBackend) -> None:
    execute(backend, bridge_op("gw-a", "a"), vxlan_op("vx7", "a", vni=7),
            address_op("add_address", "gw-a", "10.33.0.1/24"))
    cases = [
        (address_op("add_address", "gw-missing", "10.0.0.1/24"), "No such device"),
        (address_op("add_address", "gw-a", "10.33.0.1/24"), "File exists: ipv4: Address already assigned"),
        (address_op("remove_address", "gw-a", "10.44.0.1/24"), "Cannot assign requested address: ipv4: Address not found"),
        (Operation("modify_link", "link:vx7", {"vni": 8}), "Operation not supported: Cannot change VNI"),
        (Operation("set_master", "port:vx7", {"master": "gw-missing"}), "No such device"),
        (Operation("delete_link", "link:gw-missing", {"type": "bridge", "reason": "not in the topology"}),
         "No such device"),
        (Operation("set_sysctl", "sysctl:net.ipv4.conf.gw-missing.forwarding",
                   {"key": "net.ipv4.conf.gw-missing.forwarding", "value": "1", "was": None}),
         "No such file or directory"),
        (Operation("remove_file", "file:/x.conf", {"path": "/x.conf"}), "remove_file is not a netlink operation"),
        (Operation("set_sysctl", "sysctl:kernel.hostname", {"key": "kernel.hostname", "value": "x", "was": None}),
         "sysctl key 'kernel.hostname' is not a net.* key in sysctl(8) notation"),
    ]
    for operation, cause in cases:
        with pytest.raises(BackendError) as caught:
            backend.execute(operation)
        assert (caught.value.step, caught.value.cause) == (str(operation), cause)


def test_operations_the_executor_cannot_carry_out_send_nothing(netns: NetNS, backend: NetlinkBackend) -> None:
    execute(backend, bridge_op("gw-a", "a"))
    writes = backend.writes
    vlan = {"bridge": "gw-a", "port": "gw-a", "self": True, "pvid": False, "untagged": False}
    cases = [
        (Operation("create_link", "link:x", {"type": "other"}), "cannot create a link of type 'other'"),
        (Operation("modify_link", "link:gw-a", {"stp": True, "learning": True}),
         "attributes of several link types (bridge, vxlan) in one change"),
        (Operation("add_bridge_vlan", "bridge_vlan:gw-a:0", {**vlan, "vid_first": 0, "vid_last": 0}),
         "VLAN range 0-0 is not within 1-4094"),
        (Operation("set_master", "port:", {"master": "gw-a"}), "target 'port:' does not name a port"),
        (Operation("add_address", "address:gw-a:x", {"iface": "gw-a", "address": "x"}),
         "'x' does not appear to be an IPv4 or IPv6 interface"),
        (Operation("add_address", "address:?:10.0.0.1/24", {"address": "10.0.0.1/24"}), "None is not a link name"),
        (Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1\n0"}),
         "sysctl value '1\\n0' spans lines"),
    ]
    for operation, cause in cases:
        with pytest.raises(BackendError) as caught:
            backend.execute(operation)
        assert (caught.value.step, caught.value.cause) == (str(operation), cause)
    assert backend.writes == writes


def test_a_link_that_cannot_be_marked_is_removed_again(netns: NetNS, backend: NetlinkBackend) -> None:
    operation = bridge_op("gw-a", "a", mtu=70000)
    with pytest.raises(BackendError) as caught:
        backend.execute(operation)
    assert caught.value.step == str(operation)
    assert caught.value.cause.startswith("Invalid argument")
    assert [item.name for item in backend.observe().links] == ["lo"]
    assert backend.writes == 3  # create, mark (refused), delete


def test_a_closed_backend_refuses_politely(netns: NetNS) -> None:
    backend = NetlinkBackend(netns.name)
    backend.close()
    backend.close()
    with pytest.raises(BackendError) as caught:
        backend.observe()
    assert (caught.value.step, caught.value.cause) == ("observe", "Bad file descriptor")


# --- a topology, from empty to converged -------------------------------------------------------

TOPOLOGY = {
    "version": 1,
    "networks": {
        "routed": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "cidr6": "fd00:33::/64",
                   "gw_ip6": "fd00:33::1", "mtu": 1400},
        "lan": {"type": "bridge", "iface": "br-lan", "ports": ["veth-lan"], "cidr": "10.40.0.0/24",
                "gw_ip": "10.40.0.1", "stp": True},
        "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["192.0.2.11", "192.0.2.12"],
                    "local": "192.0.2.10", "dev": "veth-ul"},
        "overlay6": {"type": "vxlan", "vni": 1300, "bridge": "br-ov6", "peers": ["fd00:ff::11"],
                     "local": "fd00:ff::10"},
    },
}


def desired() -> HostState:
    # The netlink part of the state: no ruleset, no dnsmasq files (other backends own those).
    return desired_state(parse_topology(TOPOLOGY), ruleset=None, dnsmasq_files={})  # type: ignore[arg-type]


def converge(backend: NetlinkBackend, wanted: HostState, observed: HostState) -> list[Operation]:
    operations = plan(wanted, observed)
    for operation in operations:
        backend.execute(operation)
    return operations


def lab_with_underlay(namespace: NetNS) -> None:
    # No IPv6 addresses made up by the kernel and no DAD: nothing in the namespace changes by
    # itself between two listings.
    namespace.run("sysctl", "-w", "net.ipv6.conf.default.addr_gen_mode=1", "net.ipv6.conf.default.accept_dad=0")
    veth(namespace, "veth-lan", "veth-lan-peer")
    veth(namespace, "veth-ul", "veth-ul-peer")
    ip(namespace, "addr", "add", "192.0.2.10/24", "dev", "veth-ul")


def test_a_topology_applies_from_empty_and_converges(netns: NetNS, backend: NetlinkBackend) -> None:
    lab_with_underlay(netns)
    wanted = desired()
    keys = [key for key, _value in wanted.sysctls]
    applied = converge(backend, wanted, owned_as_recorded(backend.observe(keys), wanted))
    assert [operation.target for operation in applied] == [
        "sysctl:net.ipv4.ip_forward",
        "link:br-lan", "link:br-ov6", "link:br-overlay", "link:gw-routed", "link:vx1200", "link:vx1300",
        "port:veth-lan",
        "address:br-lan:10.40.0.1/24", "address:gw-routed:10.33.0.1/24", "address:gw-routed:fd00:33::1/64",
        "fdb:vx1200:192.0.2.11", "fdb:vx1200:192.0.2.12", "fdb:vx1300:fd00:ff::11",
    ]
    writes = backend.writes
    assert writes == 1 + 2 * 6 + 1 + 3 + 3  # a link: create, then mark
    observed = owned_as_recorded(backend.observe(keys), wanted)
    assert plan(wanted, observed) == []
    assert backend.writes == writes  # observing writes nothing

    before = kernel_snapshot(netns)
    with NetlinkBackend(netns.name) as again:  # a second run, as the next play would make it
        assert converge(again, wanted, owned_as_recorded(again.observe(keys), wanted)) == []
        assert again.writes == 0
    assert kernel_snapshot(netns) == before

    state = backend.observe(keys)
    assert link(state, "gw-routed").attrs == (("ifalias", "ghostwarden:routed"), ("mtu", 1400), ("state", "up"),
                                              ("stp", False), ("vlan_filtering", False))
    assert link(state, "vx1200").attr("dev") == "veth-ul"
    assert fdb_dsts(netns, "vx1200") == ["192.0.2.11", "192.0.2.12"]
    assert fdb_dsts(netns, "vx1300") == ["fd00:ff::11"]
    assert link_json(netns, "veth-lan")["master"] == "br-lan"


def test_drift_is_repaired_exactly(netns: NetNS, backend: NetlinkBackend) -> None:
    lab_with_underlay(netns)
    wanted = desired()
    keys = [key for key, _value in wanted.sysctls]
    converge(backend, wanted, empty_state())
    ip(netns, "link", "set", "gw-routed", "mtu", "1300")
    ip(netns, "addr", "del", "10.40.0.1/24", "dev", "br-lan")
    netns.run("bridge", "fdb", "del", ZERO, "dev", "vx1200", "dst", "192.0.2.12")
    repairs = converge(backend, wanted, owned_as_recorded(backend.observe(keys), wanted))
    assert [str(operation) for operation in repairs] == [
        "modify_link link:gw-routed mtu=1400",
        "add_address address:br-lan:10.40.0.1/24 address=10.40.0.1/24 iface=br-lan",
        "add_fdb fdb:vx1200:192.0.2.12 dst=192.0.2.12 iface=vx1200 mac=00:00:00:00:00:00",
    ]
    assert plan(wanted, owned_as_recorded(backend.observe(keys), wanted)) == []
    assert link_json(netns, "gw-routed")["mtu"] == 1400
    assert fdb_dsts(netns, "vx1200") == ["192.0.2.11", "192.0.2.12"]


def test_a_topology_removed_again_leaves_foreign_objects(netns: NetNS, backend: NetlinkBackend) -> None:
    lab_with_underlay(netns)
    ip(netns, "link", "add", "br-foreign", "type", "bridge")
    ip(netns, "addr", "add", "10.99.0.1/24", "dev", "br-foreign")
    before = backend.observe()
    wanted = desired()
    converge(backend, wanted, empty_state())
    removal = converge(backend, empty_state(), owned_as_recorded(backend.observe(), wanted))
    assert {operation.kind for operation in removal} == {"delete_link"}  # the kernel releases the port
    assert backend.observe() == before
