# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``adopt_port_addresses``: the field, and the planner's move of a port's addresses and routes (docs/plan.md 3.5)."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ConflictError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    Adoption,
    Enslavement,
    HostState,
    LinkState,
    Route,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology, topology_to_dict

MAC = "02:00:00:00:00:02"
BRIDGE_ATTRS = {"ifalias": "ghostwarden:mgmt", "state": "up", "stp": False, "vlan_filtering": False}


def topology(**network: object) -> dict:
    return {"networks": {"mgmt": {"type": "bridge", "iface": "vmbr0", "ports": ["mgmt0"],
                                  "adopt_port_addresses": True, **network}}}


def desired(**network: object) -> HostState:
    return desired_state(parse_topology(topology(**network)), ruleset=None, dnsmasq_files={})


def port(**attrs: object) -> LinkState:
    return LinkState("mgmt0", "other", None, {"mac": MAC, **attrs})


BEFORE = HostState(
    links=(port(), LinkState("lo", "other")),
    addresses=(Address("mgmt0", "192.0.2.2/24"), Address("mgmt0", "2001:db8::2/64"),
               Address("mgmt0", "fe80::2/64")),
    routes=(Route("0.0.0.0/0", "mgmt0", gateway="192.0.2.1", proto=4),
            Route("::/0", "mgmt0", metric=1024, gateway="2001:db8::1"),
            Route("10.99.0.0/16", "mgmt0", scope=253)),
)

AFTER = HostState(
    links=(port(), LinkState("lo", "other"), LinkState("vmbr0", "bridge", "mgmt", {**BRIDGE_ATTRS, "mac": MAC})),
    addresses=(Address("vmbr0", "192.0.2.2/24", True, adopted_from="mgmt0"),
               Address("vmbr0", "2001:db8::2/64", True, adopted_from="mgmt0"), Address("mgmt0", "fe80::2/64")),
    routes=(Route("0.0.0.0/0", "vmbr0", gateway="192.0.2.1", proto=4, owned=True, adopted_from="mgmt0"),
            Route("::/0", "vmbr0", metric=1024, gateway="2001:db8::1", owned=True, adopted_from="mgmt0"),
            Route("10.99.0.0/16", "vmbr0", scope=253, owned=True, adopted_from="mgmt0")),
    enslavements=(Enslavement("mgmt0", "vmbr0", True),),
    adoptions=(Adoption("mgmt0", "vmbr0"),),
)

MOVE = [
    "create_link link:vmbr0",
    "adopt_address address:vmbr0:192.0.2.2/24",
    "adopt_address address:vmbr0:2001:db8::2/64",
    "set_master port:mgmt0",
    "adopt_route route:vmbr0:10.99.0.0/16:254:0",  # a device route before the gateway routes
    "adopt_route route:vmbr0:0.0.0.0/0:254:0",
    "adopt_route route:vmbr0:::/0:254:1024",
    "drop_port_address address:mgmt0:192.0.2.2/24",
    "drop_port_address address:mgmt0:2001:db8::2/64",
]

UNDO = [
    "restore_address address:mgmt0:192.0.2.2/24",
    "restore_address address:mgmt0:2001:db8::2/64",
    "copy_neighbours neighbours:mgmt0",
    "restore_route route:mgmt0:10.99.0.0/16:254:0",
    "restore_route route:mgmt0:0.0.0.0/0:254:0",
    "restore_route route:mgmt0:::/0:254:1024",
    "delete_link link:vmbr0",
]


def steps(desired_host: HostState, observed: HostState) -> list[str]:
    return [f"{operation.kind} {operation.target}" for operation in plan(desired_host, observed)]


# -- the field --------------------------------------------------------------------------------

def test_the_field_is_parsed_normalised_and_read_back() -> None:
    parsed = parse_topology(topology())
    assert parsed.network("mgmt").adopt_port_addresses is True
    plain = topology_to_dict(parsed)
    assert plain["networks"]["mgmt"]["adopt_port_addresses"] is True
    assert parse_topology(plain) == parsed
    routed = parse_topology({"networks": {"r": {"type": "routed", "cidr": "10.1.0.0/24", "gw_ip": "10.1.0.1"}}})
    assert routed.network("r").adopt_port_addresses is False
    assert topology_to_dict(routed)["networks"]["r"]["adopt_port_addresses"] is False


@pytest.mark.parametrize(("network", "message"), [
    ({"adopt_port_addresses": "yes"}, "networks.mgmt.adopt_port_addresses: expected a boolean (true or false), "
                                      "got 'yes' (a string)"),
    ({"ports": []}, "networks.mgmt.adopt_port_addresses: true needs exactly one link under ports (the one whose "
                    "addresses and routes move to the bridge), found none"),
    ({"ports": ["eth1", "eth0"]}, "networks.mgmt.adopt_port_addresses: true needs exactly one link under ports "
                                  "(the one whose addresses and routes move to the bridge), found 2 (eth0, eth1)"),
])
def test_bad_values_are_one_line_each(network: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_topology(topology(**network))
    assert [str(issue) for issue in caught.value.issues] == [message]


def test_a_vlan_network_has_no_ports_to_adopt() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_topology({"networks": {"v": {"type": "vlan", "vlan": 5, "parent": "eth0", "adopt_port_addresses": True}}})
    assert [str(issue) for issue in caught.value.issues] == [
        "networks.v.adopt_port_addresses: key 'adopt_port_addresses' does not apply to a network of type vlan"]


def test_the_desired_state_names_the_adoption() -> None:
    assert desired().adoptions == (Adoption("mgmt0", "vmbr0"),)
    assert desired(adopt_port_addresses=False).adoptions == ()


# -- the planner ------------------------------------------------------------------------------

def test_the_move_keeps_the_connection_order() -> None:
    operations = plan(desired(), BEFORE)
    assert [f"{operation.kind} {operation.target}" for operation in operations] == MOVE
    create = operations[0]
    assert create.detail("mac") == MAC  # the port's MAC: neighbours' ARP and ND caches stay right
    route = operations[5]
    assert dict(route.details) == {"dev": "vmbr0", "port": "mgmt0", "dst": "0.0.0.0/0", "gateway": "192.0.2.1",
                                   "table": 254, "metric": 0, "proto": 4, "scope": 0, "src": None, "onlink": False}


def test_after_the_move_nothing_is_left_to_do() -> None:
    assert plan(desired(), AFTER) == []


def test_the_undo_runs_the_move_backwards() -> None:
    assert steps(HostState(), AFTER) == UNDO


def test_turning_the_adoption_off_gives_the_addresses_back_and_keeps_the_bridge() -> None:
    assert steps(desired(adopt_port_addresses=False), AFTER) == [
        *UNDO[:3],
        "restore_route route:mgmt0:10.99.0.0/16:254:0",
        "restore_route route:mgmt0:0.0.0.0/0:254:0",
        "restore_route route:mgmt0:::/0:254:1024",
        "remove_address address:vmbr0:192.0.2.2/24",
        "remove_address address:vmbr0:2001:db8::2/64",
    ]


def test_a_half_done_move_is_finished_or_undone_from_where_it_stopped() -> None:
    # Killed after set_master: the bridge has the addresses, the port is enslaved, routes and addresses still on it.
    on_bridge = tuple(item for item in AFTER.addresses if item.iface == "vmbr0")
    half = HostState(
        links=AFTER.links,
        addresses=(*on_bridge, *BEFORE.addresses),
        routes=BEFORE.routes,
        enslavements=AFTER.enslavements,
    )
    assert steps(desired(), half) == MOVE[4:]
    assert steps(HostState(), half) == ["delete_link link:vmbr0"]  # the port has it all still
    # The same host with the routes already moved (killed after adopt_route): back, the routes first.
    moved_routes = HostState(links=AFTER.links, addresses=half.addresses, routes=AFTER.routes,
                             enslavements=AFTER.enslavements)
    assert steps(desired(), moved_routes) == MOVE[7:]
    assert steps(HostState(), moved_routes) == ["copy_neighbours neighbours:mgmt0", *UNDO[3:]]


def test_the_snapshot_replays_the_move_on_an_empty_host() -> None:
    # Boot: the committed state (bridge MAC and adopted objects in it) against a host without them.
    committed = HostState(links=(AFTER.links[2],), addresses=tuple(item for item in AFTER.addresses if item.owned),
                          routes=AFTER.routes,
                          enslavements=AFTER.enslavements, adoptions=AFTER.adoptions)
    assert steps(committed, HostState()) == [step for step in MOVE if not step.startswith("drop_port_address")]


def test_a_lease_is_refused_naming_the_port_and_the_address() -> None:
    leased = HostState(links=BEFORE.links, addresses=(Address("mgmt0", "192.0.2.50/24", dynamic=True),))
    with pytest.raises(ConflictError) as caught:
        plan(desired(), leased)
    assert caught.value.conflicts == [
        "port mgmt0 (for vmbr0 of network mgmt, adopt_port_addresses): address 192.0.2.50/24 has a lifetime (a DHCP "
        "or SLAAC lease); the lease client on mgmt0 would fight the move: give mgmt0 a static address, or stop the "
        "client, then apply again"]


def test_a_route_that_cannot_move_is_refused() -> None:
    learned = HostState(links=BEFORE.links, routes=(Route("::/0", "mgmt0", metric=1024, gateway="fe80::1", proto=9,
                                                          refused="it was learned"),))
    with pytest.raises(ConflictError) as caught:
        plan(desired(), learned)
    assert caught.value.conflicts == [
        "port mgmt0 (for vmbr0 of network mgmt, adopt_port_addresses): route ::/0 via fe80::1 dev mgmt0 metric 1024 "
        "cannot move to vmbr0: it was learned"]


def test_a_route_of_the_same_key_on_another_link_is_refused() -> None:
    twin = HostState(links=(*BEFORE.links, LinkState("eth1", "other")),
                     routes=(BEFORE.routes[0], Route("0.0.0.0/0", "eth1", gateway="10.0.0.1")))
    with pytest.raises(ConflictError) as caught:
        plan(desired(), twin)
    assert caught.value.conflicts[0].startswith("route 0.0.0.0/0 via 192.0.2.1 dev mgmt0 metric 0 (for vmbr0 of "
                                                "network mgmt, adopt_port_addresses): 0.0.0.0/0 via 10.0.0.1 dev eth1")


def test_an_adopted_address_that_is_also_the_networks_own_is_refused() -> None:
    with pytest.raises(ConflictError) as caught:
        plan(desired(cidr="192.0.2.0/24", gw_ip="192.0.2.2"), BEFORE)
    assert caught.value.conflicts == [
        "address 192.0.2.2/24 of port mgmt0 (for vmbr0 of network mgmt, adopt_port_addresses) is also the network's "
        "own address (cidr/gw_ip): leave it out of the topology, the adoption carries it"]
