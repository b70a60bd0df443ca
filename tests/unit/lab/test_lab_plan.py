# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The namespace lab's pure planner: names, addresses, refusals, steps and their order, teardown."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    ConflictError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.lab._planner import (
    DAD_SYSCTLS,
    LabState,
    ObservedAddress,
    ObservedLab,
    ObservedLink,
    ObservedNamespace,
    ObservedProcess,
    ObservedRoute,
    StateRoot,
    Step,
    desired_lab,
    desired_view,
    lab_facts,
    lab_namespaces,
    lab_record,
    observed_view,
    parse_cmdline,
    parse_default_routes,
    parse_lab,
    parse_links,
    parse_netns_list,
    parse_pids,
    parse_sysctls,
    plan_absent,
    plan_present,
    start_command,
)

TWO_CLIENTS = [
    {"name": "c1", "port": "c1p", "address": "10.33.0.10/24", "gateway": "10.33.0.1", "http": True},
    {"name": "c2", "port": "c2p"},
]


def lab(**options):
    return parse_lab(options)


def issues_of(**options) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_lab(options)
    return [str(issue) for issue in caught.value.issues]


def kinds(plan) -> list[str]:
    return [step.kind for step in plan.steps]


def commands(plan) -> list[str]:
    return [shlex.join(step.argv) for step in plan.steps if step.argv]


# -- observed state equal to a desired one -----------------------------------------------------

def observed_from(spec, desired: LabState, *, ipv6_link_local: bool = True) -> ObservedLab:
    """What ip would show for a lab built exactly as desired (random MACs where none is set)."""
    index: dict[tuple[str, str], int] = {}
    counters: dict[str, int] = {}
    for link in desired.links:
        counters[link.netns] = counters.get(link.netns, 0) + 1
        index[(link.netns, link.name)] = counters[link.netns]
    peer_of = {}
    for veth in desired.veths:
        peer_of[(veth.netns, veth.name)] = index[(veth.peer_netns, veth.peer_name)]
        peer_of[(veth.peer_netns, veth.peer_name)] = index[(veth.netns, veth.name)]
    links: dict[str, list] = {namespace: [] for namespace in desired.namespace_names}
    addresses: dict[str, list] = {namespace: [] for namespace in desired.namespace_names}
    for link in desired.links:
        key = (link.netns, link.name)
        links[link.netns].append(ObservedLink(
            link.name, link.kind, index[key], peer_of.get(key), link.up, link.master,
            # ip prints MACs in lower case; the planner compares them in any case.
            link.mac.upper() if link.mac else f"ee:00:00:00:{index[key]:02x}:{len(link.netns):02x}", link.alias))
        if ipv6_link_local and link.kind != "loopback":
            addresses[link.netns].append(ObservedAddress(link.name, f"fe80::{index[key]:x}/64", "link"))
    for address in desired.addresses:
        addresses[address.netns].append(ObservedAddress(address.iface, address.address, "global"))
    routes: dict[str, list] = {namespace: [] for namespace in desired.namespace_names}
    for route in desired.routes:
        routes[route.netns].append(ObservedRoute(route.family, route.gateway, route.dev))
    processes: dict[str, list] = {namespace: [] for namespace in desired.namespace_names}
    for pid, service in enumerate(desired.services, start=4000):
        processes[service.netns].append(ObservedProcess(pid, service.argv))
    namespaces = tuple(
        ObservedNamespace(namespace.name, tuple(links[namespace.name]), tuple(addresses[namespace.name]),
                          tuple(routes[namespace.name]), namespace.sysctls, tuple(processes[namespace.name]))
        for namespace in desired.namespaces)
    return ObservedLab(namespaces=namespaces, state_root=StateRoot(exists=True, empty=False, owner=spec.name),
                       directories=desired.directory_paths, files=desired.files)


def replace_namespace(observed: ObservedLab, name: str, **changes) -> ObservedLab:
    namespaces = tuple(dataclasses.replace(namespace, **changes) if namespace.name == name else namespace
                       for namespace in observed.namespaces)
    return dataclasses.replace(observed, namespaces=namespaces)


def replace_link(observed: ObservedLab, netns: str, name: str, **changes) -> ObservedLab:
    namespace = observed.namespace(netns)
    links = tuple(dataclasses.replace(link, **changes) if link.name == name else link for link in namespace.links)
    return replace_namespace(observed, netns, links=links)


@pytest.fixture
def built():
    spec = lab(name="t1", nodes=2, clients=TWO_CLIENTS, state_root="/run/t1")
    desired = desired_lab(spec)
    return spec, desired, observed_from(spec, desired)


# -- the spec ----------------------------------------------------------------------------------

def test_defaults_name_every_namespace_address_and_mac():
    spec = parse_lab({})
    facts = lab_facts(spec)
    assert facts["namespaces"] == ["gwlab-sw", "gwlab-inet", "gwlab-node1", "gwlab-node2", "gwlab-node3"]
    assert facts["nodes"] == [
        {"name": f"node{index}", "netns": f"gwlab-node{index}", "underlay_address": f"192.0.2.1{index}",
         "wan_address": f"198.51.100.1{index}", "state_dir": f"/run/ghostwarden-lab/gwlab/node{index}",
         "index": index}
        for index in (1, 2, 3)]
    assert facts["inet"] == {"netns": "gwlab-inet", "address": "198.51.100.1"}
    assert facts["clients"] == []
    assert (facts["underlay_cidr"], facts["wan_cidr"], facts["state_root"]) == (
        "192.0.2.0/24", "198.51.100.0/24", "/run/ghostwarden-lab/gwlab")


def test_null_options_take_their_defaults():
    assert parse_lab({"name": None, "nodes": None, "underlay_cidr": None, "wan_cidr": None, "clients": None,
                      "state_root": None, "state": "present"}) == parse_lab({})


def test_named_nodes_are_numbered_in_list_order():
    spec = lab(name="x", nodes=["pve2", "pve1"], underlay_cidr="10.9.0.0/16", wan_cidr="2001:db8::/64")
    assert [(node.name, node.index, node.netns, node.underlay_address, node.wan_address) for node in spec.nodes] == [
        ("pve2", 1, "x-pve2", "10.9.0.11", "2001:db8::b"),
        ("pve1", 2, "x-pve1", "10.9.0.12", "2001:db8::c"),
    ]
    assert spec.inet_address == "2001:db8::1"


def test_a_number_of_nodes_may_come_as_a_string_from_the_command_line():
    assert [node.name for node in lab(nodes="4").nodes] == ["node1", "node2", "node3", "node4"]


def test_clients_behind_every_node_get_default_macs_and_netns_names():
    spec = lab(nodes=2, clients=TWO_CLIENTS)
    assert lab_facts(spec)["clients"] == [
        {"node": "node1", "name": "c1", "netns": "gwlab-node1-c1", "port": "c1p", "mac": "02:67:77:01:01:01",
         "address": "10.33.0.10/24"},
        {"node": "node1", "name": "c2", "netns": "gwlab-node1-c2", "port": "c2p", "mac": "02:67:77:01:02:01",
         "address": None},
        {"node": "node2", "name": "c1", "netns": "gwlab-node2-c1", "port": "c1p", "mac": "02:67:77:02:01:01",
         "address": "10.33.0.10/24"},
        {"node": "node2", "name": "c2", "netns": "gwlab-node2-c2", "port": "c2p", "mac": "02:67:77:02:02:01",
         "address": None},
    ]


def test_per_node_clients_and_an_explicit_mac_in_any_notation():
    spec = lab(nodes=["a", "b", "c"], clients={"c": [{"name": "web", "port": "webp", "mac": "02-AA-00-00-00-01"}],
                                               "a": [{"name": "db", "port": "dbp"}]})
    assert [(client.node, client.name, client.mac, client.index) for client in spec.clients] == [
        ("a", "db", "02:67:77:01:01:01", 1), ("c", "web", "02:aa:00:00:00:01", 1)]


def test_the_capacity_of_the_underlay_bounds_the_nodes():
    assert len(lab(nodes=4, underlay_cidr="192.0.2.0/28").nodes) == 4
    assert issues_of(nodes=5, underlay_cidr="192.0.2.0/28") == [
        "underlay_cidr: 192.0.2.0/28 has room for 4 node addresses (192.0.2.11-192.0.2.14), but the lab has 5 "
        "nodes; give a larger network or fewer nodes"]
    assert issues_of(nodes=1, wan_cidr="198.51.100.0/29") == [
        "wan_cidr: 198.51.100.0/29 has no room for node addresses (they start at the network address + 11), but "
        "the lab has 1 nodes; give a larger network or fewer nodes"]
    assert len(lab(nodes=244).nodes) == 244
    assert issues_of(nodes=245)[0].startswith("underlay_cidr: 192.0.2.0/24 has room for 244 node addresses "
                                              "(192.0.2.11-192.0.2.254), but the lab has 245 nodes")


@pytest.mark.parametrize("options, expected", [
    ({"name": "Lab"}, "name: 'Lab' is not a lab name: 1-8 characters a-z and 0-9 (it starts the name of every "
                      "namespace of the lab)"),
    ({"name": "labnameis9"}, "name: 'labnameis9' is not a lab name: 1-8 characters a-z and 0-9 (it starts the "
                             "name of every namespace of the lab)"),
    ({"name": 7}, "name: 7 is not a lab name: 1-8 characters a-z and 0-9 (it starts the name of every namespace "
                  "of the lab)"),
    ({"nodes": True}, "nodes: expected a list of node names or a number of nodes, got a boolean true"),
    ({"nodes": 0}, "nodes: 0 nodes is out of range 1-1024"),
    ({"nodes": 1025}, "nodes: 1025 nodes is out of range 1-1024"),
    ({"nodes": []}, "nodes: the lab needs at least one node, got an empty list"),
    ({"nodes": {"a": 1}}, "nodes: expected a list of node names or a number of nodes, got a mapping {'a': 1}"),
    ({"nodes": ["node1", "1node"]}, "nodes[1]: '1node' is not a node name: a letter a-z, then up to 11 of a-z "
                                    "and 0-9"),
    ({"nodes": ["abcdefghijklm"]}, "nodes[0]: 'abcdefghijklm' is not a node name: a letter a-z, then up to 11 of "
                                   "a-z and 0-9"),
    ({"nodes": ["a", None]}, "nodes[1]: null is not a node name: a letter a-z, then up to 11 of a-z and 0-9"),
    ({"nodes": ["sw"]}, "nodes[0]: 'sw' is reserved: <name>-sw is the lab's switch namespace"),
    ({"nodes": ["inet"]}, "nodes[0]: 'inet' is reserved: <name>-inet is the lab's internet namespace"),
    ({"nodes": ["a", "b", "a"]}, "nodes[2]: node 'a' is listed twice (first at nodes[0])"),
    ({"underlay_cidr": "192.0.2.0"}, "underlay_cidr: '192.0.2.0' is not a CIDR (expected ADDRESS/PREFIX, e.g. "
                                     "192.0.2.0/24)"),
    ({"underlay_cidr": "192.0.2.0/33"}, "underlay_cidr: '192.0.2.0/33' is not a CIDR (expected ADDRESS/PREFIX, "
                                        "e.g. 192.0.2.0/24)"),
    ({"underlay_cidr": ["192.0.2.0/24"]}, "underlay_cidr: ['192.0.2.0/24'] is not a CIDR (expected "
                                          "ADDRESS/PREFIX, e.g. 192.0.2.0/24)"),
    ({"wan_cidr": "198.51.100.7/24"}, "wan_cidr: '198.51.100.7/24' has host bits set; the network address is "
                                      "198.51.100.0/24"),
    ({"wan_cidr": "192.0.2.128/25"}, "wan_cidr: 192.0.2.128/25 overlaps the underlay 192.0.2.0/24; every node has "
                                     "an address in both"),
    ({"state_root": "run/lab"}, "state_root: 'run/lab' must be an absolute path without commas or control "
                                "characters"),
    ({"state_root": "/run/a,b"}, "state_root: '/run/a,b' must be an absolute path without commas or control "
                                 "characters"),
    ({"state_root": "/run/.."}, "state_root: '/run/..' is the root directory; the lab removes its state root when "
                                "it is torn down"),
    ({"state_root": 5}, "state_root: 5 must be an absolute path without commas or control characters"),
    ({"clients": "c1"}, "clients: expected a list of clients (behind every node) or a mapping of node name to its "
                        "clients, got a string 'c1'"),
    ({"clients": ["c1"]}, "clients[0]: expected a mapping with name and port, got a string 'c1'"),
    ({"clients": [{"name": "c1", "port": "p1", "prot": 1, "ip": 2}]},
     "clients[0]: unknown keys ip, prot (known: name, port, mac, address, gateway, http)"),
    ({"clients": [{"port": "p1"}]}, "clients[0].name: null is not a client name: a letter a-z, then up to 7 of a-z "
                                    "and 0-9"),
    ({"clients": [{"name": "client123", "port": "p1"}]},
     "clients[0].name: 'client123' is not a client name: a letter a-z, then up to 7 of a-z and 0-9"),
    ({"clients": [{"name": "c1", "port": "p1"}, {"name": "c1", "port": "p2"}]},
     "clients[1].name: client 'c1' is listed twice (first at clients[0])"),
    ({"clients": [{"name": "c1"}]}, "clients[0].port: null is not an interface name: 1-15 of A-Z, a-z, 0-9, '_', "
                                    "'.', '-', starting with a letter or digit"),
    ({"clients": [{"name": "c1", "port": "a23456789012345x"}]},
     "clients[0].port: 'a23456789012345x' is not an interface name: 1-15 of A-Z, a-z, 0-9, '_', '.', '-', starting "
     "with a letter or digit"),
    ({"clients": [{"name": "c1", "port": "a/b"}]},
     "clients[0].port: 'a/b' is not an interface name: 1-15 of A-Z, a-z, 0-9, '_', '.', '-', starting with a "
     "letter or digit"),
    ({"clients": [{"name": "c1", "port": "up0"}]},
     "clients[0].port: 'up0' is an interface of the node itself (lo, eth0, up0)"),
    ({"clients": [{"name": "c1", "port": "p1"}, {"name": "c2", "port": "p1"}]},
     "clients[1].port: port 'p1' is taken by client c1"),
    ({"clients": [{"name": "c1", "port": "p1", "mac": "02:00:00:00:00"}]},
     "clients[0].mac: '02:00:00:00:00' is not a MAC address (expected six hex pairs, e.g. 02:67:77:01:01:01)"),
    ({"clients": [{"name": "c1", "port": "p1", "mac": "03:00:00:00:00:01"}]},
     "clients[0].mac: '03:00:00:00:00:01' is a multicast MAC; an interface needs a unicast one (the lowest bit of "
     "the first octet clear)"),
    ({"clients": [{"name": "c1", "port": "p1", "mac": "00:00:00:00:00:00"}]},
     "clients[0].mac: '00:00:00:00:00:00' is the all-zero MAC"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.5"}]},
     "clients[0].address: '10.0.0.5' is not an address with its prefix (expected ADDRESS/PREFIX, e.g. "
     "10.33.0.10/24)"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.0/24"}]},
     "clients[0].address: '10.0.0.0/24' is the network address of 10.0.0.0/24; a client needs a unicast host "
     "address"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.255/24"}]},
     "clients[0].address: '10.0.0.255/24' is the broadcast address of 10.0.0.0/24; a client needs a unicast host "
     "address"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "224.0.0.5/24"}]},
     "clients[0].address: '224.0.0.5/24' is a multicast address; a client needs a unicast host address"),
    ({"clients": [{"name": "c1", "port": "p1", "gateway": "10.0.0.1"}]},
     "clients[0].gateway: gateway 10.0.0.1 needs the client's address (set address as well)"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.5/24", "gateway": "10.0.1.1"}]},
     "clients[0].gateway: gateway 10.0.1.1 is not in the client's network 10.0.0.0/24"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.5/24", "gateway": "2001:db8::1"}]},
     "clients[0].gateway: gateway 2001:db8::1 is IPv6 but the address 10.0.0.5/24 is IPv4"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.5/24", "gateway": "10.0.0.5"}]},
     "clients[0].gateway: gateway 10.0.0.5 is the client's own address"),
    ({"clients": [{"name": "c1", "port": "p1", "address": "10.0.0.5/24", "gateway": "10.0.0.01"}]},
     "clients[0].gateway: '10.0.0.01' is not an IP address"),
    ({"clients": [{"name": "c1", "port": "p1", "http": "yes"}]},
     "clients[0].http: expected true or false, got a string 'yes'"),
    ({"clients": [{"name": "c1", "port": "p1", "http": 1}]},
     "clients[0].http: expected true or false, got an integer 1"),
    ({"clients": {"node9": []}}, "clients.node9: 'node9' is not a node of the lab (node1, node2, node3)"),
    ({"clients": {"node1": {"name": "c1"}}},
     "clients.node1: expected a list of clients, got a mapping {'name': 'c1'}"),
])
def test_refusals_name_the_field_and_the_value(options, expected):
    assert issues_of(**options) == [expected]


def test_one_explicit_mac_in_the_shared_list_collides_across_nodes():
    assert issues_of(nodes=2, clients=[{"name": "c1", "port": "p1", "mac": "02:00:00:00:00:01"}]) == [
        "clients[0].mac: MAC 02:00:00:00:00:01 of client node2-c1 is also the MAC of client node1-c1; every client "
        "needs its own; a client in the shared list gets the same MAC behind every node"]


def test_a_per_node_mac_may_not_repeat_a_default_one():
    assert issues_of(nodes=2, clients={"node1": [{"name": "a", "port": "p"}],
                                       "node2": [{"name": "b", "port": "p", "mac": "02:67:77:01:01:01"}]}) == [
        "clients.node2[0].mac: MAC 02:67:77:01:01:01 of client node2-b is also the MAC of client node1-a; every "
        "client needs its own"]


def test_default_macs_number_nodes_up_to_255():
    clients = {"node256": [{"name": "c1", "port": "p1"}]}
    assert issues_of(nodes=256, underlay_cidr="10.0.0.0/16", wan_cidr="10.1.0.0/16", clients=clients) == [
        "clients.node256[0].mac: the default MAC 02:67:77:{node:02x}:{client:02x}:01 numbers nodes and clients up "
        "to 255, this is client 1 of node 256; give the client a mac"]
    clients["node256"][0]["mac"] = "02:00:00:00:01:00"
    assert lab(nodes=256, underlay_cidr="10.0.0.0/16", wan_cidr="10.1.0.0/16", clients=clients).clients[0].mac == \
        "02:00:00:00:01:00"


def test_every_problem_is_reported_at_once_with_the_shared_list_reported_once():
    found = issues_of(name="X", nodes=3, clients=[{"name": "c1", "port": "eth0"}, {"name": "c1", "port": "p"}])
    assert found == [
        "name: 'X' is not a lab name: 1-8 characters a-z and 0-9 (it starts the name of every namespace of the lab)",
        "clients[0].port: 'eth0' is an interface of the node itself (lo, eth0, up0)",
        "clients[1].name: client 'c1' is listed twice (first at clients[0])",
    ]


@pytest.mark.parametrize("value", [None, True, 1.5, -1, "", "x", [], {}, [[]], [{}], {"a": None}, b"bytes",
                                   [{"name": None, "port": None, "mac": 5, "address": 5, "gateway": [], "http": None}]])
@pytest.mark.parametrize("option", ["name", "nodes", "underlay_cidr", "wan_cidr", "clients", "state_root"])
def test_odd_values_give_validation_errors_never_tracebacks(option, value):
    try:
        parse_lab({option: value})
    except ValidationError as error:
        assert error.issues and all(issue.path.split(".")[0].split("[")[0] == option for issue in error.issues)


def test_options_that_are_not_a_mapping_are_refused():
    with pytest.raises(ValidationError) as caught:
        parse_lab(["name"])
    assert str(caught.value) == "expected a mapping of lab options, got a list ['name']"


# -- the desired state -------------------------------------------------------------------------

def test_every_veth_is_created_inside_lab_namespaces():
    spec = lab(name="t", nodes=2, clients=TWO_CLIENTS)
    desired = desired_lab(spec)
    assert [(veth.netns, veth.name, veth.peer_netns, veth.peer_name, veth.peer_mac) for veth in desired.veths] == [
        ("t-sw", "w0", "t-inet", "eth0", None),
        ("t-sw", "u1", "t-node1", "eth0", None),
        ("t-sw", "w1", "t-node1", "up0", None),
        ("t-sw", "u2", "t-node2", "eth0", None),
        ("t-sw", "w2", "t-node2", "up0", None),
        ("t-node1", "c1p", "t-node1-c1", "eth0", "02:67:77:01:01:01"),
        ("t-node1", "c2p", "t-node1-c2", "eth0", "02:67:77:01:02:01"),
        ("t-node2", "c1p", "t-node2-c1", "eth0", "02:67:77:02:01:01"),
        ("t-node2", "c2p", "t-node2-c2", "eth0", "02:67:77:02:02:01"),
    ]
    namespaces = set(spec.namespaces)
    assert {veth.netns for veth in desired.veths} | {veth.peer_netns for veth in desired.veths} <= namespaces
    assert {link.netns for link in desired.links} == namespaces


def test_addresses_routes_and_switch_ports():
    spec = lab(name="t", nodes=1, clients=TWO_CLIENTS)
    desired = desired_lab(spec)
    assert [(item.netns, item.iface, item.address, item.network) for item in desired.addresses] == [
        ("t-inet", "eth0", "198.51.100.1/24", "198.51.100.0/24"),
        ("t-node1", "eth0", "192.0.2.11/24", "192.0.2.0/24"),
        ("t-node1", "up0", "198.51.100.11/24", "198.51.100.0/24"),
        ("t-node1-c1", "eth0", "10.33.0.10/24", "10.33.0.0/24"),
    ]
    assert [(route.netns, route.family, route.gateway, route.dev) for route in desired.routes] == [
        ("t-node1", 4, "198.51.100.1", "up0"), ("t-node1-c1", 4, "10.33.0.1", "eth0")]
    switch_ports = {(link.name, link.master) for link in desired.links if link.netns == "t-sw" and link.kind == "veth"}
    assert switch_ports == {("w0", "wan"), ("u1", "underlay"), ("w1", "wan")}
    # The node's end of a client's veth is up, without master: the topology enslaves it.
    assert [link for link in desired.links if link.name == "c1p"] == [
        dataclasses.replace(link, master=None, mac=None, alias=None) for link in desired.links if link.name == "c1p"]
    assert all(link.alias == "ghostwarden-lab:t" for link in desired.links if link.kind == "loopback")


def test_no_namespace_but_the_nodes_and_a_gatewayed_client_has_a_default_route():
    spec = lab(name="t", nodes=2, clients=TWO_CLIENTS)
    routed = {route.netns for route in desired_lab(spec).routes}
    assert routed == {"t-node1", "t-node2", "t-node1-c1", "t-node2-c1"}


def test_dad_sysctls_everywhere_unless_the_kernel_has_no_ipv6():
    spec = lab(name="t", nodes=1)
    assert {namespace.sysctls for namespace in desired_lab(spec).namespaces} == {DAD_SYSCTLS}
    assert {namespace.sysctls for namespace in desired_lab(spec, ipv6=False).namespaces} == {()}


def test_directories_files_and_the_web_server():
    spec = lab(name="t", nodes=1, clients=TWO_CLIENTS, state_root="/srv/lab/")
    desired = desired_lab(spec)
    assert desired.directories == (
        ("/srv/lab", 0o755), ("/srv/lab/log", 0o755), ("/srv/lab/node1", 0o755), ("/srv/lab/node1/state", 0o700),
        ("/srv/lab/node1/systemd", 0o755), ("/srv/lab/www", 0o755), ("/srv/lab/www/node1-c1", 0o755))
    assert list(desired.file_paths) == ["/srv/lab/lab.json", "/srv/lab/www/node1-c1/index.html"]
    assert dict(desired.files)["/srv/lab/www/node1-c1/index.html"] == "node1-c1\n"
    record = json.loads(dict(desired.files)["/srv/lab/lab.json"])
    assert record["lab"] == "t" and record["namespaces"] == list(spec.namespaces)
    assert [(service.netns, service.argv, service.log) for service in desired.services] == [
        ("t-node1-c1", ("busybox", "httpd", "-f", "-p", "80", "-h", "/srv/lab/www/node1-c1"),
         "/srv/lab/log/node1-c1-httpd.log")]
    assert start_command(desired.services[0]) == (
        "ip", "netns", "exec", "t-node1-c1", "sh", "-c",
        "exec setsid -f busybox httpd -f -p 80 -h /srv/lab/www/node1-c1 </dev/null >>/srv/lab/log/node1-c1-httpd.log "
        "2>&1")


def test_the_record_is_byte_identical_for_equal_input():
    first = lab(nodes=["b", "a"], clients={"a": [{"name": "x", "port": "xp"}]})
    second = parse_lab({"clients": {"a": [{"port": "xp", "name": "x"}]}, "nodes": ["b", "a"]})
    assert lab_record(first) == lab_record(second)
    assert desired_lab(first) == desired_lab(second)


# -- plans -------------------------------------------------------------------------------------

def test_a_new_lab_is_built_in_order():
    spec = lab(name="t", nodes=1, clients=[TWO_CLIENTS[0]], state_root="/run/t")
    plan = plan_present(spec, desired_lab(spec), ObservedLab((), StateRoot(exists=False)))
    assert commands(plan) == [
        "ip netns add t-sw", "ip netns add t-inet", "ip netns add t-node1", "ip netns add t-node1-c1",
        *[f"ip netns exec {name} sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0"
          for name in ("t-sw", "t-inet", "t-node1", "t-node1-c1")],
        *[f"ip -n {name} link set dev lo alias ghostwarden-lab:t up" for name in ("t-sw", "t-inet", "t-node1",
                                                                                  "t-node1-c1")],
        "ip -n t-sw link add underlay type bridge",
        "ip -n t-sw link add wan type bridge",
        "ip -n t-sw link add w0 type veth peer name eth0 netns t-inet",
        "ip -n t-sw link add u1 type veth peer name eth0 netns t-node1",
        "ip -n t-sw link add w1 type veth peer name up0 netns t-node1",
        "ip -n t-node1 link add c1p type veth peer name eth0 address 02:67:77:01:01:01 netns t-node1-c1",
        "ip -n t-sw link set dev underlay up",
        "ip -n t-sw link set dev wan up",
        "ip -n t-sw link set dev w0 master wan up",
        "ip -n t-inet link set dev eth0 up",
        "ip -n t-sw link set dev u1 master underlay up",
        "ip -n t-sw link set dev w1 master wan up",
        "ip -n t-node1 link set dev eth0 up",
        "ip -n t-node1 link set dev up0 up",
        "ip -n t-node1 link set dev c1p up",
        "ip -n t-node1-c1 link set dev eth0 up",
        "ip -n t-inet address add 198.51.100.1/24 dev eth0",
        "ip -n t-node1 address add 192.0.2.11/24 dev eth0",
        "ip -n t-node1 address add 198.51.100.11/24 dev up0",
        "ip -n t-node1-c1 address add 10.33.0.10/24 dev eth0",
        "ip -n t-node1 -4 route replace default via 198.51.100.1 dev up0",
        "ip -n t-node1-c1 -4 route replace default via 10.33.0.1 dev eth0",
        "ip netns exec t-node1-c1 sh -c 'exec setsid -f busybox httpd -f -p 80 -h /run/t/www/node1-c1 </dev/null "
        ">>/run/t/log/node1-c1-httpd.log 2>&1'",
    ]
    assert kinds(plan)[:9] == ["make_directory"] * 7 + ["write_file"] * 2
    assert [step.path for step in plan.steps[:7]] == ["/run/t", "/run/t/log", "/run/t/node1", "/run/t/node1/state",
                                                      "/run/t/node1/systemd", "/run/t/www", "/run/t/www/node1-c1"]
    assert plan.steps[-1].match == ("busybox", "httpd", "-f", "-p", "80", "-h", "/run/t/www/node1-c1")


def test_no_step_touches_the_root_namespace():
    spec = lab(name="t", nodes=3, clients=TWO_CLIENTS)
    plan = plan_present(spec, desired_lab(spec), ObservedLab((), StateRoot(exists=False)))
    namespaces = set(spec.namespaces)
    for step in plan.steps:
        argv = step.argv
        if not argv:
            continue
        if argv[:3] == ("ip", "netns", "add"):
            assert argv[3] in namespaces
        elif argv[:3] == ("ip", "netns", "exec"):
            assert argv[3] in namespaces
        else:
            assert argv[:2] == ("ip", "-n") and argv[2] in namespaces, argv
            if "netns" in argv:
                assert argv[argv.index("netns") + 1] in namespaces


def test_a_lab_as_desired_plans_nothing(built):
    spec, desired, observed = built
    plan = plan_present(spec, desired, observed)
    assert plan.steps == () and plan.warnings == ()
    assert observed_view(spec, desired, observed) == desired_view(desired)


def test_foreign_addresses_routes_processes_and_a_master_on_the_port_are_left_alone(built):
    spec, desired, observed = built
    node = observed.namespace("t1-node1")
    observed = replace_namespace(
        observed, "t1-node1",
        addresses=node.addresses + (ObservedAddress("c1p", "10.33.0.1/24", "global"),
                                    ObservedAddress("up0", "203.0.113.5/24", "global")),
        routes=node.routes + (ObservedRoute(6, "fe80::1", "up0"),),
        processes=(ObservedProcess(77, ("dnsmasq", "--conf-file=/x")),))
    observed = replace_link(observed, "t1-node1", "c1p", master="gw-nat_dev")
    client = observed.namespace("t1-node1-c2")
    observed = replace_namespace(observed, "t1-node1-c2", addresses=client.addresses + (
        ObservedAddress("eth0", "10.33.0.140/24", "global"),), routes=(ObservedRoute(4, "10.33.0.1", "eth0"),))
    assert plan_present(spec, desired, observed).steps == ()


def test_drift_is_repaired_by_exactly_the_steps_needed(built):
    spec, desired, observed = built
    node = observed.namespace("t1-node2")
    observed = replace_namespace(observed, "t1-node2", addresses=tuple(
        item for item in node.addresses if item.address != "192.0.2.12/24") + (
        ObservedAddress("up0", "198.51.100.99/24", "global"),), routes=(), sysctls=(
        ("net.ipv6.conf.all.accept_dad", "1"), ("net.ipv6.conf.default.accept_dad", "0")))
    observed = replace_link(observed, "t1-node2-c2", "eth0", mac="02:00:00:00:00:09", up=False)
    observed = replace_link(observed, "t1-sw", "u1", master=None)
    observed = replace_link(observed, "t1-inet", "lo", alias=None)
    observed = replace_namespace(observed, "t1-node1-c1", processes=())
    plan = plan_present(spec, desired, observed)
    assert commands(plan) == [
        "ip netns exec t1-node2 sysctl -qw net.ipv6.conf.all.accept_dad=0",
        "ip -n t1-inet link set dev lo alias ghostwarden-lab:t1",
        "ip -n t1-sw link set dev u1 master underlay",
        "ip -n t1-node2-c2 link set dev eth0 address 02:67:77:02:02:01 up",
        "ip -n t1-node2 address add 192.0.2.12/24 dev eth0",
        "ip -n t1-node2 address delete 198.51.100.99/24 dev up0",
        "ip -n t1-node2 -4 route replace default via 198.51.100.1 dev up0",
        "ip netns exec t1-node1-c1 sh -c 'exec setsid -f busybox httpd -f -p 80 -h /run/t1/www/node1-c1 "
        "</dev/null >>/run/t1/log/node1-c1-httpd.log 2>&1'",
    ]


def test_a_veth_paired_with_something_else_is_recreated_with_its_attributes(built):
    spec, desired, observed = built
    observed = replace_link(observed, "t1-node1", "c1p", peer_index=99)
    plan = plan_present(spec, desired, observed)
    assert commands(plan) == [
        "ip -n t1-node1 link delete dev c1p",
        "ip -n t1-node1-c1 link delete dev eth0",
        "ip -n t1-node1 link add c1p type veth peer name eth0 address 02:67:77:01:01:01 netns t1-node1-c1",
        "ip -n t1-node1 link set dev c1p up",
        "ip -n t1-node1-c1 link set dev eth0 up",
        "ip -n t1-node1-c1 address add 10.33.0.10/24 dev eth0",
        "ip -n t1-node1-c1 -4 route replace default via 10.33.0.1 dev eth0",
    ]


def test_a_link_of_the_wrong_kind_is_replaced(built):
    spec, desired, observed = built
    observed = replace_link(observed, "t1-sw", "wan", kind="dummy")
    assert commands(plan_present(spec, desired, observed)) == [
        "ip -n t1-sw link delete dev wan",
        "ip -n t1-sw link add wan type bridge",
        "ip -n t1-sw link set dev wan up",
        "ip -n t1-sw link set dev w0 master wan",
        "ip -n t1-sw link set dev w1 master wan",
        "ip -n t1-sw link set dev w2 master wan",
    ]


def test_missing_namespace_is_added_and_filled(built):
    spec, desired, observed = built
    observed = dataclasses.replace(observed, namespaces=tuple(
        namespace for namespace in observed.namespaces if namespace.name != "t1-node2-c2"))
    assert commands(plan_present(spec, desired, observed)) == [
        "ip netns add t1-node2-c2",
        "ip netns exec t1-node2-c2 sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
        "ip -n t1-node2-c2 link set dev lo alias ghostwarden-lab:t1 up",
        "ip -n t1-node2 link delete dev c2p",
        "ip -n t1-node2 link add c2p type veth peer name eth0 address 02:67:77:02:02:01 netns t1-node2-c2",
        "ip -n t1-node2 link set dev c2p up",
        "ip -n t1-node2-c2 link set dev eth0 up",
    ]


def test_a_node_left_out_of_the_spec_is_torn_down_but_unmarked_namespaces_stay(built):
    spec, desired, observed = built
    smaller = lab(name="t1", nodes=1, clients=TWO_CLIENTS, state_root="/run/t1")
    foreign = ObservedNamespace("t1-other", (ObservedLink("lo", "loopback", 1, None, True, None, None, None),))
    observed = dataclasses.replace(observed, namespaces=observed.namespaces + (foreign,))
    plan = plan_present(smaller, desired_lab(smaller), observed)
    removed = [(step.kind, step.netns, step.pids) for step in plan.steps
               if step.kind in ("stop_processes", "delete_netns")]
    assert removed == [
        ("delete_netns", "t1-node2", ()),
        ("stop_processes", "t1-node2-c1", (4001,)),
        ("delete_netns", "t1-node2-c1", ()),
        ("delete_netns", "t1-node2-c2", ()),
    ]
    assert [step.kind for step in plan.steps if step.kind not in ("stop_processes", "delete_netns")] == [
        "write_file"]


def test_a_server_no_longer_wanted_is_stopped(built):
    observed = built[2]
    quiet = lab(name="t1", nodes=2, clients=[dict(TWO_CLIENTS[0], http=False), TWO_CLIENTS[1]],
                state_root="/run/t1")
    plan = plan_present(quiet, desired_lab(quiet), observed)
    assert [(step.kind, step.netns, step.pids) for step in plan.steps] == [
        ("stop_service", "t1-node1-c1", (4000,)), ("stop_service", "t1-node2-c1", (4001,))]
    assert plan.steps[0].match == ("busybox", "httpd", "-f", "-p", "80", "-h")


def test_a_state_root_of_someone_else_is_refused(built):
    spec, desired, observed = built
    with pytest.raises(ConflictError) as caught:
        plan_present(spec, desired, dataclasses.replace(observed, state_root=StateRoot(True, False, None)))
    assert str(caught.value) == ("state_root /run/t1 is not empty and holds no lab.json of a lab; give lab t1 its "
                                 "own state_root")
    with pytest.raises(ConflictError) as caught:
        plan_present(spec, desired, dataclasses.replace(observed, state_root=StateRoot(True, False, "other")))
    assert str(caught.value) == "state_root /run/t1 is not empty and holds lab 'other'; give lab t1 its own state_root"
    assert plan_present(spec, desired, dataclasses.replace(observed, state_root=StateRoot(True, True))).steps == ()


# -- teardown ----------------------------------------------------------------------------------

def test_teardown_stops_processes_then_deletes_clients_nodes_inet_and_switch(built):
    spec, desired, observed = built
    observed = replace_namespace(observed, "t1-node1", processes=(ObservedProcess(51, ("dnsmasq",)),
                                                                  ObservedProcess(52, ("sleep", "60"))))
    stale = ObservedNamespace("t1-node3", (ObservedLink("lo", "loopback", 1, None, True, None, None,
                                                        "ghostwarden-lab:t1"),))
    foreign = ObservedNamespace("t1-x", (ObservedLink("lo", "loopback", 1, None, True, None, None,
                                                      "ghostwarden-lab:t2"),))
    observed = dataclasses.replace(observed, namespaces=observed.namespaces + (stale, foreign))
    plan = plan_absent(spec, desired, observed)
    assert [(step.kind, step.netns or step.path, step.pids) for step in plan.steps] == [
        ("stop_processes", "t1-node2-c1", (4001,)),
        ("stop_processes", "t1-node1-c1", (4000,)),
        ("stop_processes", "t1-node1", (51, 52)),
        ("delete_netns", "t1-node3", ()),
        ("delete_netns", "t1-node2-c2", ()),
        ("delete_netns", "t1-node2-c1", ()),
        ("delete_netns", "t1-node1-c2", ()),
        ("delete_netns", "t1-node1-c1", ()),
        ("delete_netns", "t1-node2", ()),
        ("delete_netns", "t1-node1", ()),
        ("delete_netns", "t1-inet", ()),
        ("delete_netns", "t1-sw", ()),
        ("remove_directory", "/run/t1", ()),
    ]
    assert plan.steps[4].argv == ("ip", "netns", "delete", "t1-node2-c2")
    assert plan.warnings == ()


def test_absent_on_a_missing_lab_plans_nothing():
    spec = lab(name="t1")
    assert plan_absent(spec, desired_lab(spec), ObservedLab((), StateRoot(exists=False))).steps == ()


def test_absent_leaves_a_foreign_state_root_with_a_warning():
    spec = lab(name="t1", state_root="/srv/data")
    plan = plan_absent(spec, desired_lab(spec), ObservedLab((), StateRoot(True, False, None)))
    assert plan.steps == ()
    assert plan.warnings == ("state_root /srv/data holds no lab.json of a lab, not lab t1; left in place",)


def test_an_empty_state_root_is_removed():
    spec = lab(name="t1", state_root="/srv/empty")
    plan = plan_absent(spec, desired_lab(spec), ObservedLab((), StateRoot(True, True, None)))
    assert [step.to_dict() for step in plan.steps] == [{"kind": "remove_directory", "path": "/srv/empty"}]


def test_namespaces_under_the_prefix_are_candidates_only():
    spec = lab(name="gt")
    assert lab_namespaces(spec, ["gt-sw", "gtx-sw", "gt", "a-gt-sw", "gt-node1-c1"]) == ("gt-node1-c1", "gt-sw")


# -- what ip prints ----------------------------------------------------------------------------

ADDR_JSON = json.dumps([
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "link_type": "loopback",
     "address": "00:00:00:00:00:00", "ifalias": "ghostwarden-lab:gwlab",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]},
    {"ifindex": 2, "link_index": 5, "ifname": "u1", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
     "master": "underlay", "link_type": "ether", "address": "06:c7:f9:28:fb:93", "link_netnsid": 0,
     "linkinfo": {"info_kind": "veth", "info_slave_kind": "bridge"}, "addr_info": []},
    {"ifindex": 3, "ifname": "underlay", "flags": ["BROADCAST", "MULTICAST"], "link_type": "ether",
     "address": "aa:bb:cc:dd:ee:ff", "linkinfo": {"info_kind": "bridge"},
     "addr_info": [{"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
])


def test_parse_links_reads_kind_peer_state_master_mac_alias_and_addresses():
    links, addresses = parse_links(ADDR_JSON, "gwlab-sw")
    assert links == (
        ObservedLink("lo", "loopback", 1, None, True, None, "00:00:00:00:00:00", "ghostwarden-lab:gwlab"),
        ObservedLink("u1", "veth", 2, 5, True, "underlay", "06:c7:f9:28:fb:93", None),
        ObservedLink("underlay", "bridge", 3, None, False, None, "aa:bb:cc:dd:ee:ff", None),
    )
    assert addresses == (ObservedAddress("lo", "127.0.0.1/8", "host"), ObservedAddress("underlay", "fe80::1/64", "link"))
    assert ObservedNamespace("gwlab-sw", links).marker == "ghostwarden-lab:gwlab"


def test_parse_routes_netns_list_sysctls_pids_and_cmdline():
    routes = '[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"10.0.0.0/8","dev":"eth0"}]'
    assert parse_default_routes(routes, 4, "n") == (ObservedRoute(4, "192.0.2.1", "eth0"),)
    assert parse_default_routes("", 6, "n") == ()
    assert parse_netns_list('[{"name":"b","id":1},{"name":"a"}]\n') == ("a", "b")
    assert parse_netns_list("[]\n") == parse_netns_list("") == ()
    assert parse_sysctls(["a.b", "c.d"], "0\n1\n", "n") == (("a.b", "0"), ("c.d", "1"))
    assert parse_pids("12\n7\n") == (7, 12)
    assert parse_cmdline(b"busybox\x00httpd\x00-f\x00") == ("busybox", "httpd", "-f")
    assert parse_cmdline(b"") == ()


def test_unreadable_ip_output_is_a_backend_error():
    with pytest.raises(BackendError) as caught:
        parse_links("Cannot open network namespace", "gwlab-x")
    assert caught.value.step == "ip -n gwlab-x addr show"
    assert caught.value.cause.startswith("ip printed no JSON (")
    with pytest.raises(BackendError) as caught:
        parse_netns_list('{"name": "a"}')
    assert str(caught.value) == "ip netns list: ip printed dict instead of a list: '{\"name\": \"a\"}'"
    with pytest.raises(BackendError) as caught:
        parse_sysctls(["a.b", "c.d"], "0\n", "gwlab-x")
    assert str(caught.value) == "sysctl in gwlab-x: expected 2 values for a.b, c.d, got '0\\n'"


def test_steps_report_without_contents():
    assert Step("write_file", path="/run/t/lab.json", content="{}").to_dict() == {"kind": "write_file",
                                                                                  "path": "/run/t/lab.json"}
    assert Step("make_directory", path="/run/t", mode=0o700).to_dict() == {"kind": "make_directory",
                                                                           "path": "/run/t", "mode": "0700"}
    assert Step("add_netns", netns="t-sw", argv=("ip", "netns", "add", "t-sw")).to_dict() == {
        "kind": "add_netns", "netns": "t-sw", "command": "ip netns add t-sw"}
    assert Step("stop_processes", netns="t-sw", pids=(3, 4)).to_dict() == {
        "kind": "stop_processes", "netns": "t-sw", "pids": [3, 4]}
