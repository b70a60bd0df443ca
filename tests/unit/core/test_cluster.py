# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A cluster node's topology: overrides, computed VXLAN underlay, protected links."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._cluster import merge_overrides, node_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

CLUSTER = {
    "version": 1,
    "interfaces": {"corosync": "eth0"},
    "networks": {
        "overlay": {"type": "vxlan", "vni": 1200, "iface": "br-overlay", "dev": "corosync",
                    "peers": ["203.0.113.50"]},
        "nodenet": {"type": "routed", "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.1", "dhcp": True},
    },
}
MEMBERS = {"node1": "192.0.2.11", "node2": "192.0.2.12", "node3": "192.0.2.13"}


def test_vxlan_peers_are_the_other_members_then_outside_peers_and_local_is_the_node():
    topology = node_topology(CLUSTER, MEMBERS, "node2")
    assert topology["networks"]["overlay"]["local"] == "192.0.2.12"
    assert topology["networks"]["overlay"]["peers"] == ["192.0.2.11", "192.0.2.13", "203.0.113.50"]
    assert parse_topology(topology).networks  # a valid topology for ghostwarden_apply


def test_adding_and_removing_a_member_changes_every_node():
    four = dict(MEMBERS, node4="192.0.2.14")
    assert node_topology(CLUSTER, four, "node1")["networks"]["overlay"]["peers"] == [
        "192.0.2.12", "192.0.2.13", "192.0.2.14", "203.0.113.50"]
    two = {"node1": "192.0.2.11", "node3": "192.0.2.13"}
    assert node_topology(CLUSTER, two, "node1")["networks"]["overlay"]["peers"] == ["192.0.2.13", "203.0.113.50"]


def test_overrides_merge_mappings_replace_values_and_null_removes():
    overrides = {"networks": {"nodenet": {"cidr": "10.40.2.0/24", "gw_ip": "10.40.2.1", "dhcp": None},
                              "overlay": {"local": "192.0.2.99"}}}
    topology = node_topology(CLUSTER, MEMBERS, "node2", overrides)
    assert topology["networks"]["nodenet"] == {"type": "routed", "cidr": "10.40.2.0/24", "gw_ip": "10.40.2.1"}
    # An explicit local is kept; the peers are still the other members.
    assert topology["networks"]["overlay"]["local"] == "192.0.2.99"
    assert topology["networks"]["overlay"]["peers"] == ["192.0.2.11", "192.0.2.13", "203.0.113.50"]


def test_inputs_are_not_changed():
    before = copy.deepcopy(CLUSTER)
    node_topology(CLUSTER, MEMBERS, "node1", {"networks": {"nodenet": {"dhcp": False}}})
    assert CLUSTER == before
    assert merge_overrides({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize(("members", "node", "message"), [
    ({"node1": "192.0.2.11", "node2": None}, "node1",
     "ghostwarden_underlay_address of node2: is not set: every cluster member needs its underlay address"),
    ({"node1": "192.0.2.11", "node2": "192.0.2.300"}, "node1",
     "ghostwarden_underlay_address of node2: '192.0.2.300' is not an IP address"),
    ({"node1": "192.0.2.11", "node2": "192.0.2.11"}, "node1",
     "ghostwarden_underlay_address of node2: 192.0.2.11 is also the underlay address of node1"),
    ({"node1": "192.0.2.11", "node2": "127.0.0.2"}, "node1",
     "ghostwarden_underlay_address of node2: 127.0.0.2 is not a unicast address another node can reach"),
    ({"node1": "192.0.2.11", "node2": "2001:db8::2"}, "node1",
     "ghostwarden_underlay_address: the members' underlay addresses mix IPv4 and IPv6; VXLAN peers need one family"),
    (MEMBERS, "node9", "node: 'node9' is not a member of the cluster (node1, node2, node3)"),
])
def test_bad_members_are_refused_naming_the_host(members, node, message):
    with pytest.raises(ValidationError) as raised:
        node_topology(CLUSTER, members, node)
    assert str(raised.value) == message


def test_a_protected_link_is_never_enslaved_or_created():
    topology = merge_overrides(CLUSTER, {"networks": {
        "lan": {"type": "bridge", "iface": "eth1", "ports": ["corosync", "veth7"]}}})
    with pytest.raises(ValidationError) as raised:
        node_topology(topology, MEMBERS, "node1", protected=["eth0", "eth1"])
    assert [str(issue) for issue in raised.value.issues] == [
        "ghostwarden_cluster_topology.networks.lan.ports[0]: eth0 is protected "
        "(ghostwarden_cluster_protected_interfaces): it carries corosync or management traffic and is never enslaved",
        "ghostwarden_cluster_topology.networks.lan.iface: eth1 is protected "
        "(ghostwarden_cluster_protected_interfaces) and cannot be a link the topology creates",
    ]
    # Using a protected link as the VXLAN underlay device is fine.
    assert node_topology(CLUSTER, MEMBERS, "node1", protected=["eth0"])["networks"]["overlay"]["dev"] == "corosync"


@pytest.mark.parametrize(("arguments", "message"), [
    ((["not", "a", "mapping"], MEMBERS, "node1"), "ghostwarden_cluster_topology: expected a mapping (a topology), got list"),
    ((CLUSTER, MEMBERS, "node1", ["x"]), "ghostwarden_node_overrides: expected a mapping merged over the cluster topology, got list"),
    ((CLUSTER, MEMBERS, "node1", None, "eth0"), "ghostwarden_cluster_protected_interfaces: expected a list of interface names, got 'eth0'"),
    ((CLUSTER, {}, "node1"), "ghostwarden_underlay_address: the cluster needs at least one member with an underlay address, got {}"),
])
def test_wrong_types_get_one_line(arguments, message):
    with pytest.raises(ValidationError) as raised:
        node_topology(*arguments)
    assert str(raised.value) == message
