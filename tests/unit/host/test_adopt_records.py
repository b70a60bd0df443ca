# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``adopt_port_addresses`` in the host wing without a kernel: records, journal ownership, batches, states as JSON."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    Adoption,
    HostState,
    LinkState,
    Operation,
    Route,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import OwnershipLedger
from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import render_batches
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import (
    Journal,
    mark_adopted,
    new_token,
    owned_snapshot,
    ownership_during,
)

ROUTE = {"dst": "0.0.0.0/0", "gateway": "192.0.2.1", "table": 254, "metric": 0, "proto": 4, "scope": 0,
         "src": None, "onlink": False}
MOVE = [
    Operation("create_link", "link:vmbr0",
              {"type": "bridge", "ifalias": "ghostwarden:mgmt", "state": "up", "mac": "02:00:00:00:00:02",
               "stp": False, "vlan_filtering": False}),
    Operation("adopt_address", "address:vmbr0:192.0.2.2/24",
              {"iface": "vmbr0", "address": "192.0.2.2/24", "port": "mgmt0"}),
    Operation("adopt_address", "address:vmbr0:2001:db8::2/64",
              {"iface": "vmbr0", "address": "2001:db8::2/64", "port": "mgmt0"}),
    Operation("set_master", "port:mgmt0", {"master": "vmbr0"}),
    Operation("adopt_route", "route:vmbr0:0.0.0.0/0:254:0", {"dev": "vmbr0", "port": "mgmt0", **ROUTE}),
    Operation("drop_port_address", "address:mgmt0:192.0.2.2/24",
              {"iface": "mgmt0", "address": "192.0.2.2/24", "bridge": "vmbr0"}),
]
UNDO = [
    Operation("restore_address", "address:mgmt0:2001:db8::2/64",
              {"iface": "mgmt0", "address": "2001:db8::2/64", "bridge": "vmbr0"}),
    Operation("copy_neighbours", "neighbours:mgmt0", {"iface": "mgmt0", "bridge": "vmbr0"}),
    Operation("restore_route", "route:mgmt0:::/0:254:1024",
              {"dev": "mgmt0", "bridge": "vmbr0", **ROUTE, "dst": "::/0", "gateway": "fe80::1", "metric": 1024,
               "proto": 3, "src": "2001:db8::2", "onlink": True}),
    Operation("delete_link", "link:vmbr0", {"type": "bridge", "reason": "not in the topology"}),
]
ADOPTED = Records(adopted_addresses=frozenset({("vmbr0", "192.0.2.2/24", "mgmt0"), ("vmbr0", "2001:db8::2/64", "mgmt0")}),
                  adopted_routes=frozenset({("vmbr0", "254", "0.0.0.0/0", "0", "mgmt0")}))


def test_records_round_trip_and_stay_as_before_without_adoptions() -> None:
    assert Records.from_dict(ADOPTED.to_dict()) == ADOPTED
    assert ADOPTED.to_dict()["adopted_routes"] == [["vmbr0", "254", "0.0.0.0/0", "0", "mgmt0"]]
    assert "adopted_addresses" not in Records().to_dict() and "adopted_routes" not in Records().to_dict()
    assert ADOPTED.adoption_links() == {"mgmt0", "vmbr0"}
    assert ADOPTED.adopted_route_ports() == {(254, "0.0.0.0/0", 0, "vmbr0"): "mgmt0"}
    with pytest.raises(ValueError, match="adopted_routes\\[0\\]"):
        Records.from_dict({**Records().to_dict(), "adopted_routes": [["vmbr0", "254"]]})


def test_the_ledger_records_the_move_and_forgets_it_on_the_undo() -> None:
    ledger = OwnershipLedger(Records())
    for operation in MOVE:
        ledger.record(operation)
    moved = ledger.records(Records())
    assert moved.adopted_addresses == ADOPTED.adopted_addresses
    assert moved.adopted_routes == ADOPTED.adopted_routes
    assert moved.owned_enslavements == frozenset({("mgmt0", "vmbr0")})
    ledger.record(Operation("restore_route", "route:mgmt0:0.0.0.0/0:254:0", {"dev": "mgmt0", "bridge": "vmbr0", **ROUTE}))
    ledger.record(Operation("remove_address", "address:vmbr0:192.0.2.2/24", {"iface": "vmbr0", "address": "192.0.2.2/24"}))
    assert ledger.records(Records()).adopted_addresses == {("vmbr0", "2001:db8::2/64", "mgmt0")}
    assert ledger.records(Records()).adopted_routes == frozenset()
    ledger.record(UNDO[-1])
    assert ledger.records(Records()).adopted_addresses == frozenset()


def test_the_journal_captures_what_the_move_adopts() -> None:
    journal = Journal(new_token(), 0.0, 1, HostState(), Records(), [operation.to_dict() for operation in MOVE])
    during = ownership_during(journal, Records())
    assert during.adopted_addresses == ADOPTED.adopted_addresses and during.adopted_routes == ADOPTED.adopted_routes
    observed = HostState(
        links=(LinkState("mgmt0", "other"), LinkState("vmbr0", "bridge", "mgmt", {"ifalias": "ghostwarden:mgmt"})),
        addresses=(Address("vmbr0", "192.0.2.2/24"), Address("mgmt0", "192.0.2.2/24")),
        routes=(Route("0.0.0.0/0", "vmbr0", gateway="192.0.2.1", proto=4),))
    marked = mark_adopted(observed, during)
    assert marked.addresses == (Address("mgmt0", "192.0.2.2/24"),
                                Address("vmbr0", "192.0.2.2/24", True, adopted_from="mgmt0"))
    assert marked.routes == (Route("0.0.0.0/0", "vmbr0", gateway="192.0.2.1", proto=4, owned=True,
                                   adopted_from="mgmt0"),)
    assert marked.adoptions == (Adoption("mgmt0", "vmbr0"),)
    snapshot = owned_snapshot(marked)
    assert snapshot.adoptions == (Adoption("mgmt0", "vmbr0"),) and snapshot.routes == marked.routes
    assert HostState.from_dict(snapshot.to_dict()) == snapshot


def test_states_without_routes_serialise_as_before() -> None:
    assert set(HostState().to_dict()) == {"links", "bridge_vlans", "addresses", "fdb", "enslavements", "sysctls",
                                          "ruleset", "dnsmasq_files"}
    assert Address("br0", "10.0.0.1/24").to_dict() == {"iface": "br0", "address": "10.0.0.1/24", "owned": False}


def test_the_move_and_its_undo_as_ip_batch_lines() -> None:
    assert render_batches(MOVE).ip_lines == (
        "link add name vmbr0 address 02:00:00:00:00:02 type bridge",
        "link set dev vmbr0 alias ghostwarden:mgmt up",
        "address add 192.0.2.2/24 brd + dev vmbr0",
        "address add 2001:db8::2/64 dev vmbr0 nodad",
        "link set dev mgmt0 master vmbr0",
        "route replace 0.0.0.0/0 via 192.0.2.1 dev vmbr0 table 254 metric 0 proto 4 scope 0",
        "address del 192.0.2.2/24 dev mgmt0",
    )
    # copy_neighbours has no line: learned entries cannot be written down ahead (the port resolves them).
    assert render_batches(UNDO).ip_lines == (
        "address add 2001:db8::2/64 dev mgmt0 nodad",
        "route replace ::/0 via fe80::1 dev mgmt0 table 254 metric 1024 proto 3 scope 0 src 2001:db8::2 onlink",
        "link del dev vmbr0",
    )
