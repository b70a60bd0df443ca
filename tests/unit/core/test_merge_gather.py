# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-network modules' edits of the recorded topology, and reading the live state back as a topology."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._gather import gather_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._merge import with_network, with_policy
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import FdbEntry, HostState, Address
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import topology_to_dict

ROUTED = {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "dhcp": True}
RECORDED = topology_to_dict(compile_topology({
    "interfaces": {"uplink": "eth0"},
    "networks": {
        "nat_dev": {**ROUTED, "masq_out": "uplink", "policy_profile": "routed-tight",
                    "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}]},
        "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["192.0.2.11", "192.0.2.12"],
                    "local": "192.0.2.10", "cidr": "10.50.0.0/24", "gw_ip": "10.50.0.1"},
    },
}).topology)


def test_with_network_keeps_the_policy_fields_of_the_recorded_entry() -> None:
    merged = with_network(RECORDED, "nat_dev", {**ROUTED, "cidr": "10.34.0.0/24", "gw_ip": "10.34.0.1"}, None)
    entry = merged["networks"]["nat_dev"]
    assert entry["cidr"] == "10.34.0.0/24"
    assert entry["policy_profile"] == "routed-tight"
    assert entry["masq_out"] == "eth0"
    assert merged["networks"]["overlay"] == RECORDED["networks"]["overlay"]


def test_with_network_refuses_policy_fields() -> None:
    with pytest.raises(ValidationError) as error:
        with_network(RECORDED, "x", {**ROUTED, "forwards": []}, None)
    assert str(error.value) == "network.forwards: is managed by ghostwarden.core.ghostwarden_policy, not ghostwarden_network"


def test_with_network_absent_removes_only_that_network_and_does_not_touch_the_input() -> None:
    merged = with_network(RECORDED, "overlay", None, None)
    assert sorted(merged["networks"]) == ["nat_dev"]
    assert sorted(RECORDED["networks"]) == ["nat_dev", "overlay"]


def test_with_policy_needs_an_applied_network() -> None:
    with pytest.raises(ValidationError) as error:
        with_policy(RECORDED, "nope", {"policy_profile": "l2-lan"})
    assert str(error.value).startswith("name: network 'nope' has not been applied on this host (applied: nat_dev, overlay)")


def test_with_policy_replaces_and_clears_the_policy_fields() -> None:
    merged = with_policy(RECORDED, "overlay", {"policy_profile": "l2-lan", "forwards": [], "masq_out": None},
                         interfaces={"wan": "eth9"})
    assert merged["networks"]["overlay"]["policy_profile"] == "l2-lan"
    assert merged["interfaces"] == {"uplink": "eth0", "wan": "eth9"}
    cleared = with_policy(RECORDED, "nat_dev", None)
    assert {key for key in ("policy_profile", "forwards", "masq_out") if key in cleared["networks"]["nat_dev"]} == set()
    assert compile_topology(cleared).topology.network("nat_dev").policy_profile is None


def _live(recorded: dict) -> HostState:
    """The host an apply of ``recorded`` leaves, with ownership marked as the driver marks it."""
    desired = compile_topology(recorded).desired
    return HostState(
        links=desired.links, bridge_vlans=desired.bridge_vlans, enslavements=desired.enslavements,
        addresses=desired.addresses + (Address("eth0", "198.51.100.2/24", False),),
        fdb=desired.fdb, sysctls=desired.sysctls, ruleset=desired.ruleset,
    )


def test_gathered_topology_of_an_applied_host_means_the_same_topology() -> None:
    topology, drift = gather_topology(_live(RECORDED), RECORDED)
    assert drift == []
    assert compile_topology(topology).topology == compile_topology(RECORDED).topology


def test_gathered_topology_shows_live_peers_and_reports_drift() -> None:
    live = _live(RECORDED)
    fdb = tuple(entry for entry in live.fdb if entry.dst != "192.0.2.12") + (
        FdbEntry("vx1200", "192.0.2.13", owned=True),)
    links = tuple(link for link in live.links if link.owner != "nat_dev")
    topology, drift = gather_topology(HostState(links=links, fdb=fdb, addresses=live.addresses), RECORDED)
    assert topology["networks"]["overlay"]["peers"] == ["192.0.2.11", "192.0.2.13"]
    assert drift == ["networks.nat_dev: recorded as applied but none of its links exist"]
