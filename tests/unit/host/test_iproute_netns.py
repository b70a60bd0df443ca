# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rendered batches against a real kernel (root, throwaway namespaces).

Two namespaces get the same foreign links; in one the plan runs through ``NetlinkBackend``, in
the other through the shell script ``render_shell`` makes of the same plan. Both must then be
observed equal (link attributes, addresses, FDB entries, bridge VLANs, enslavements, sysctls),
for a plan that creates everything and for a second one that uses every other operation kind.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import render_batches, render_shell
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
)
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_netns, throwaway_netns

pytestmark = [pytest.mark.root, requires_netns]

FORWARDING = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
ZERO = "00:00:00:00:00:00"


def bridge(name: str, owner: str, **attrs: object) -> LinkState:
    return LinkState(name, "bridge", owner, {"ifalias": f"ghostwarden:{owner}", "state": "up", "stp": False,
                                             "vlan_filtering": False, **attrs})


def vlans(port: str, *tagged: PortRange) -> list[BridgeVlan]:
    return [BridgeVlan(port, PortRange(1, 1), pvid=True, untagged=True), *(BridgeVlan(port, vids) for vids in tagged)]


def states(vlan_aware: bool) -> tuple[HostState, HostState]:
    """Two desired states; the bridge VLANs (and ``vlan_filtering``) only when the kernel has them."""
    first = HostState(
        links=(
            bridge("br-a", "a", vlan_filtering=vlan_aware, mtu=1400),
            LinkState("vx-a", "vxlan", "a", {"ifalias": "ghostwarden:a", "state": "up", "master": "br-a", "vni": 100,
                                             "dstport": 4789, "learning": False, "local": "192.0.2.1", "dev": "up0"}),
            bridge("br-b", "b", stp=True),
            bridge("br-d", "d"),
        ),
        bridge_vlans=(*vlans("br-a", PortRange(10, 20)), *vlans("vx-a", PortRange(10, 20))) if vlan_aware else (),
        addresses=(Address("br-a", "10.33.0.1/24", True), Address("br-a", "2001:db8::1/64", True),
                   Address("br-b", "10.34.0.0/31", True)),
        fdb=(FdbEntry("vx-a", "192.0.2.11", ZERO, True), FdbEntry("vx-a", "192.0.2.12", ZERO, True)),
        enslavements=(Enslavement("p0", "br-b", True), Enslavement("p1", "br-b", True)),
        sysctls={"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"},
    )
    # Every other kind: modify (mtu, stp, alias, learning, state), delete, set/release master (a
    # port moving to another bridge), bridge VLANs removed and added, addresses and FDB entries
    # removed and added, a sysctl set back.
    second = HostState(
        links=(
            bridge("br-a", "a2", stp=True, vlan_filtering=vlan_aware, mtu=1300),
            LinkState("vx-a", "vxlan", "a", {"ifalias": "ghostwarden:a", "state": "up", "master": "br-a", "vni": 100,
                                             "dstport": 4789, "learning": True, "local": "192.0.2.1", "dev": "up0"}),
            bridge("br-b", "b", stp=True, state="down"),
            bridge("br-c", "c"),
        ),
        bridge_vlans=((*vlans("br-a", PortRange(10, 15), PortRange(30, 30)), *vlans("vx-a", PortRange(10, 15)))
                      if vlan_aware else ()),
        addresses=(Address("br-a", "10.33.0.1/24", True), Address("br-c", "10.35.0.1/24", True)),
        fdb=(FdbEntry("vx-a", "192.0.2.11", ZERO, True), FdbEntry("vx-a", "192.0.2.13", ZERO, True)),
        enslavements=(Enslavement("p0", "br-c", True),),
        sysctls={"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "1"},
    )
    return first, second


def prepare(namespace: NetNS) -> None:
    """The foreign links both namespaces share: an underlay and two ports (veth pairs)."""
    for name, peer in (("up0", "up0-peer"), ("p0", "p0-peer"), ("p1", "p1-peer")):
        namespace.run("ip", "link", "add", name, "type", "veth", "peer", "name", peer)
        namespace.run("ip", "link", "set", name, "up")
    namespace.run("ip", "address", "add", "192.0.2.1/24", "dev", "up0")


def observe(backend: NetlinkBackend, owned_by: HostState) -> HostState:
    """The namespace as the planner sees it, with the objects ``owned_by`` wants counted as recorded;
    IPv6 link-local addresses (derived from random MACs) left out so that two namespaces compare."""
    state = backend.observe(FORWARDING)
    addresses = {item.key for item in owned_by.addresses}
    fdb = {item.key for item in owned_by.fdb}
    ports = {(item.port, item.master) for item in owned_by.enslavements}
    return dataclasses.replace(
        state,
        addresses=tuple(dataclasses.replace(item, owned=item.key in addresses) for item in state.addresses
                        if not item.link_local),
        fdb=tuple(dataclasses.replace(item, owned=item.key in fdb) for item in state.fdb),
        enslavements=tuple(dataclasses.replace(item, owned=(item.port, item.master) in ports)
                           for item in state.enslavements),
    )


def run_shell(namespace: NetNS, operations: list[Operation]) -> subprocess.CompletedProcess:
    script = render_shell(render_batches(operations), netns=namespace.name)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False, timeout=60)


def require_vlan_filtering(namespace: NetNS) -> None:
    refused = namespace.run("ip", "link", "add", "probe-br", "type", "bridge", "vlan_filtering", "1", check=False)
    if refused.returncode != 0:
        pytest.skip(f"this kernel has no bridge VLAN filtering ({refused.stderr.strip()})")
    namespace.run("ip", "link", "del", "probe-br")


@pytest.mark.parametrize("vlan_aware", [pytest.param(False, id="plain-bridges"),
                                        pytest.param(True, id="vlan-aware-bridges", marks=pytest.mark.vlan_kernel)])
def test_the_shell_replay_reaches_the_state_the_backend_reaches(vlan_aware: bool) -> None:
    with throwaway_netns() as python_side, throwaway_netns() as shell_side:
        if vlan_aware:
            require_vlan_filtering(python_side)
        prepare(python_side)
        prepare(shell_side)
        with NetlinkBackend(python_side.name) as python_backend, NetlinkBackend(shell_side.name) as shell_backend:
            owned_by = HostState()
            for desired in states(vlan_aware):
                operations = plan(desired, observe(python_backend, owned_by))
                assert plan(desired, observe(shell_backend, owned_by)) == operations
                for operation in operations:
                    python_backend.execute(operation)
                replay = run_shell(shell_side, operations)
                assert (replay.returncode, replay.stderr) == (0, "")
                python_state = observe(python_backend, desired)
                assert observe(shell_backend, desired) == python_state
                # Both reached the desired state: planning again gives nothing to do.
                assert plan(desired, python_state) == []
                owned_by = desired


@pytest.mark.parametrize("vlan_aware", [pytest.param(False, id="plain-bridges"),
                                        pytest.param(True, id="vlan-aware-bridges", marks=pytest.mark.vlan_kernel)])
def test_the_second_plan_uses_every_kernel_operation_kind(vlan_aware: bool) -> None:
    with throwaway_netns() as namespace:
        if vlan_aware:
            require_vlan_filtering(namespace)
        prepare(namespace)
        first, second = states(vlan_aware)
        with NetlinkBackend(namespace.name) as backend:
            for operation in plan(first, observe(backend, HostState())):
                backend.execute(operation)
            kinds = {operation.kind for operation in plan(second, observe(backend, first))}
    vlan_kinds = {"remove_bridge_vlan", "add_bridge_vlan"}
    assert kinds == {"set_sysctl", "remove_fdb", "remove_address", "remove_bridge_vlan", "release_master",
                     "delete_link", "create_link", "modify_link", "set_master", "add_bridge_vlan", "add_address",
                     "add_fdb"} - (set() if vlan_aware else vlan_kinds)


def test_force_keeps_going_after_a_failing_line_and_reports_it() -> None:
    with throwaway_netns() as namespace:
        operations = [
            Operation("delete_link", "link:gone0", {"type": "bridge", "reason": "not in the topology"}),
            Operation("create_link", "link:br-x", {"type": "bridge", "ifalias": "ghostwarden:x", "state": "up"}),
        ]
        script = render_batches(operations)
        stopped = subprocess.run(["sh", "-c", render_shell(script, netns=namespace.name)], capture_output=True,
                                 text=True, check=False)
        assert stopped.returncode == 1
        assert "br-x" not in namespace.run("ip", "-o", "link").stdout
        forced = subprocess.run(["sh", "-c", render_shell(script, netns=namespace.name, force=True)],
                                capture_output=True, text=True, check=False)
        assert forced.returncode == 1
        assert 'Cannot find device "gone0"' in forced.stderr
        with NetlinkBackend(namespace.name) as backend:
            created = [link for link in backend.observe().links if link.name == "br-x"]
    expected = {"ifalias": "ghostwarden:x", "mtu": 1500, "state": "up", "stp": False, "vlan_filtering": False}
    assert created == [LinkState("br-x", "bridge", "x", expected)]


@pytest.mark.vlan_kernel
def test_a_vlan_device_replays_like_the_backend_creates_it() -> None:
    with throwaway_netns() as python_side, throwaway_netns() as shell_side:
        for namespace in (python_side, shell_side):
            namespace.run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0-peer")
            # The kernel refuses to bring a VLAN device up on a parent that is down (ENETDOWN).
            namespace.run("ip", "link", "set", "up0", "up")
        probe = python_side.run("ip", "link", "add", "link", "up0", "name", "up0.5", "type", "vlan", "id", "5",
                                check=False)
        if probe.returncode != 0:
            pytest.skip(f"this kernel has no 802.1Q VLAN devices ({probe.stderr.strip()})")
        python_side.run("ip", "link", "del", "up0.5")
        desired = HostState(links=(
            LinkState("vl20", "vlan", "v", {"ifalias": "ghostwarden:v", "state": "up", "parent": "up0", "vlan_id": 20,
                                            "mtu": 1400}),
        ))
        with NetlinkBackend(python_side.name) as python_backend, NetlinkBackend(shell_side.name) as shell_backend:
            operations = plan(desired, observe(python_backend, HostState()))
            for operation in operations:
                python_backend.execute(operation)
            replay = run_shell(shell_side, operations)
            assert (replay.returncode, replay.stderr) == (0, "")
            assert observe(shell_backend, desired) == observe(python_backend, desired)
