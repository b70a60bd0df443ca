# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock-out guard (core._lockout): each way a topology cuts the operator off is one issue,
named by field and reason; a topology that keeps the path is not flagged."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import DangerousTopologyError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import (
    OVERRIDE,
    ManagementConnection,
    ManagementRoute,
    find_lockouts,
    lockout_outcome,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

# The controller 198.51.100.7 reaches the host at 192.0.2.2:22 over eno1 (192.0.2.0/24, default via 192.0.2.1).
SSH = ManagementConnection(client="198.51.100.7", server="192.0.2.2", port=22)
ENO1 = ManagementRoute(iface="eno1", subnets=("192.0.2.0/24", "2001:db8:1::/64"),
                       addresses=("192.0.2.2", "2001:db8:1::2"), gateway="192.0.2.1")
SAFE = {"allow_from": ["203.0.113.0/24"]}


def routed(cidr: str = "10.33.0.0/24", gw_ip: str = "10.33.0.1", **fields: object) -> dict:
    return {"type": "routed", "cidr": cidr, "gw_ip": gw_ip, **fields}


def lockouts(networks: dict, management: dict | None = None, **context: object) -> list[str]:
    data: dict = {"version": 1, "networks": networks}
    if management is not None:
        data["management"] = management
    return [str(issue) for issue in find_lockouts(parse_topology(data), **context)]


def paths(networks: dict, management: dict | None = None, **context: object) -> list[str]:
    data: dict = {"version": 1, "networks": networks}
    if management is not None:
        data["management"] = management
    return [issue.path for issue in find_lockouts(parse_topology(data), **context)]


# -- the topology alone ----------------------------------------------------------------------------

def test_a_plain_topology_is_not_flagged() -> None:
    assert lockouts({"lab": routed(policy_profile="routed-tight")}, SAFE) == []
    assert lockouts({"lab": routed(policy_profile="routed-tight")}, connection=SSH, connection_protected=True,
                    route=ENO1) == []


def test_guard_off_is_refused_with_the_option_named() -> None:
    assert lockouts({"lab": routed()}, {"enforce": False}) == [
        f"management.enforce: false turns the management guard off: nothing keeps the management ports open "
        f"before the policy profiles ({OVERRIDE})"]


def test_guard_without_ports_is_refused() -> None:
    assert paths({"lab": routed()}, {"ports": [], **SAFE}) == ["management.ports"]


@pytest.mark.parametrize("public", [":22/tcp", "0.0.0.0:22/tcp", ":20-30/tcp", ":1-65535/tcp", "[::]:22/tcp"])
def test_forwarding_a_management_port_on_every_address_is_refused(public: str) -> None:
    networks = {"n": {**routed(), "cidr6": "fd00:33::/64", "gw_ip6": "fd00:33::1",
                      "forwards": [{"public": public, "dst": "fd00:33::10" if "[" in public else "10.33.0.10"}]}}
    found = lockouts(networks, SAFE)
    assert len(found) == 1 and found[0].startswith("networks.n.forwards: ")
    assert "management port 22/tcp on every address of this host" in found[0] and OVERRIDE in found[0]


def test_forwards_that_leave_management_alone_pass() -> None:
    forwards = [{"public": ":22/udp", "dst": "10.33.0.10"}, {"public": ":2222/tcp", "dst": "10.33.0.10:22"},
                {"public": "203.0.113.9:22/tcp", "dst": "10.33.0.11"}]
    assert lockouts({"n": routed(forwards=forwards)}, SAFE, connection=SSH, connection_protected=True,
                    route=ENO1) == []


def test_custom_management_ports_are_the_ones_checked() -> None:
    networks = {"n": routed(forwards=[{"public": ":2222/tcp", "dst": "10.33.0.10:22"}])}
    assert paths(networks, {"ports": [2222], **SAFE}) == ["networks.n.forwards"]
    assert paths(networks, SAFE) == []


def test_profile_dropping_management_while_nothing_is_protected_is_one_issue_per_profile() -> None:
    networks = {f"n{index}": routed(f"10.40.{index}.0/24", f"10.40.{index}.1", policy_profile="routed-tight")
                for index in range(8)}
    # Over SSH the guard does not accept (management_from_connection: false), nothing in allow_from.
    found = lockouts(networks, connection=SSH, connection_protected=False)
    assert len(found) == 1
    assert found[0].startswith("networks.n0.policy_profile: routed-tight drops management port 22/tcp to the host "
                               "from networks.n0, networks.n1, networks.n2, networks.n3, networks.n4 and 3 more "
                               "(8 networks)")
    assert "set management.allow_from" in found[0]
    # allow_from or a protected connection is something to protect: no lock-out.
    assert lockouts(networks, SAFE, connection=SSH, connection_protected=False) == []
    assert lockouts(networks, connection=SSH, connection_protected=True) == []
    # A local run has no connection to cut (the parser warns instead).
    assert lockouts(networks) == []
    # With the route back known, only the network the connection crosses matters, and it crosses none of these.
    assert lockouts(networks, connection=SSH, connection_protected=False, route=ENO1) == []


def test_profiles_that_keep_management_open_pass_without_allow_from() -> None:
    assert lockouts({"lan": {"type": "bridge", "policy_profile": "l2-lan"}}) == []


# -- the SSH connection ----------------------------------------------------------------------------

def test_a_forward_on_the_address_the_connection_uses_is_refused() -> None:
    networks = {"n": routed(forwards=[{"public": "192.0.2.2:22/tcp", "dst": "10.33.0.10"}])}
    found = lockouts(networks, SAFE, connection=SSH, connection_protected=True)
    assert found == [f"networks.n.forwards: 192.0.2.2:22/tcp sends new connections to management port 22/tcp on "
                     f"192.0.2.2, an address the management connection uses to a guest: nobody can open a new SSH "
                     f"session to this host ({OVERRIDE})"]
    # Another address of the interface the connection uses is one too.
    networks = {"n": routed(forwards=[{"public": "[2001:db8:1::2]:22/tcp", "dst": "fd00:33::10"}],
                            cidr6="fd00:33::/64", gw_ip6="fd00:33::1")}
    assert paths(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1) == ["networks.n.forwards"]


def test_sshd_on_another_port_is_protected_too() -> None:
    ssh_2222 = ManagementConnection(client="198.51.100.7", server="192.0.2.2", port=2222)
    networks = {"n": routed(forwards=[{"public": ":2222/tcp", "dst": "10.33.0.10:22"}])}
    assert paths(networks, SAFE, connection=ssh_2222, connection_protected=True) == ["networks.n.forwards"]


@pytest.mark.parametrize("cidr, gw", [("198.51.100.0/24", "198.51.100.1"), ("198.51.100.0/29", "198.51.100.1"),
                                      ("198.51.0.0/16", "198.51.0.1")])
def test_a_network_containing_the_controller_is_refused(cidr: str, gw: str) -> None:
    found = lockouts({"hijack": routed(cidr, gw)}, SAFE, connection=SSH, connection_protected=True)
    assert found == [f"networks.hijack.cidr: {cidr} contains 198.51.100.7, the address this play's SSH connection "
                     f"comes from: replies to it would leave through gw-hijack ({OVERRIDE})"]


def test_the_controller_on_a_network_it_already_uses_is_fine() -> None:
    route = ManagementRoute(iface="gw-admin", subnets=("198.51.100.0/24",), addresses=("198.51.100.1",))
    assert lockouts({"admin": routed("198.51.100.0/24", "198.51.100.1", policy_profile="l2-lan")}, SAFE,
                    connection=SSH, connection_protected=True, route=route) == []


# -- the route back to the controller --------------------------------------------------------------

@pytest.mark.parametrize("cidr, gw", [("192.0.2.0/28", "192.0.2.1"), ("192.0.2.0/24", "192.0.2.9"),
                                      ("192.0.0.0/16", "192.0.0.1")])
def test_a_network_over_the_management_subnet_is_refused(cidr: str, gw: str) -> None:
    found = lockouts({"over": routed(cidr, gw)}, SAFE, connection=SSH, connection_protected=True, route=ENO1)
    assert len(found) == 1 and found[0].startswith(f"networks.over.cidr: {cidr} overlaps 192.0.2.0/24 on eno1")


def test_an_ipv6_network_over_the_management_subnet_is_refused() -> None:
    networks = {"v6": {"type": "routed", "cidr": "2001:db8:1::/80", "gw_ip": "2001:db8:1::1"},
                "dual": routed(cidr6="2001:db8:1:0:1::/80", gw_ip6="2001:db8:1:0:1::1")}
    assert paths(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1) == [
        "networks.dual.cidr6", "networks.v6.cidr"]


def test_enslaving_the_management_interface_is_refused() -> None:
    networks = {"vmbr0": {"type": "bridge", "iface": "vmbr0", "ports": ["eno2", "eno1"]}}
    found = lockouts(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1)
    assert found == [f"networks.vmbr0.ports[0]: eno1 carries this play's SSH connection; enslaved to vmbr0 it stops "
                     f"being an IP interface (set adopt_port_addresses: true to move its addresses and routes to the "
                     f"bridge) ({OVERRIDE})"]


def test_a_bridge_adopting_the_management_interface_carries_the_connection() -> None:
    networks = {"vmbr0": {"type": "bridge", "iface": "vmbr0", "ports": ["eno1"], "adopt_port_addresses": True}}
    assert lockouts(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1) == []
    # The bridge now carries the connection: its profile must not drop it unguarded.
    networks["vmbr0"]["policy_profile"] = "routed-tight"
    assert paths(networks, SAFE, connection=SSH, connection_protected=False, route=ENO1) == [
        "networks.vmbr0.policy_profile"]
    assert lockouts(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1) == []


def test_a_vlan_on_the_management_interface_is_fine() -> None:
    networks = {"v20": {"type": "vlan", "vlan": 20, "parent": "eno1", "cidr": "10.20.0.0/24", "gw_ip": "10.20.0.1"}}
    assert lockouts(networks, SAFE, connection=SSH, connection_protected=True, route=ENO1) == []


def test_a_profile_on_the_network_carrying_the_connection_that_drops_it() -> None:
    route = ManagementRoute(iface="gw-admin", subnets=("198.51.100.0/24",), addresses=("198.51.100.1",))
    networks = {"admin": routed("198.51.100.0/24", "198.51.100.1", policy_profile="routed-tight")}
    # The guard accepts the connection: fine.
    assert lockouts(networks, SAFE, connection=SSH, connection_protected=True, route=route) == []
    # Not accepted (management_from_connection: false and not in allow_from): refused.
    found = lockouts(networks, SAFE, connection=SSH, connection_protected=False, route=route)
    assert found == [f"networks.admin.policy_profile: routed-tight drops port 22/tcp from 198.51.100.7, this play's "
                     f"SSH connection, which reaches the host through gw-admin, and the management guard does not "
                     f"accept it ({OVERRIDE})"]
    # allow_from covering the controller: fine again.
    assert lockouts(networks, {"allow_from": ["198.51.100.0/25"]}, connection=SSH, connection_protected=False,
                    route=route) == []
    # sshd on a port the guard does not keep open: the connection is dropped even though it is "protected".
    ssh_2222 = ManagementConnection(client="198.51.100.7", server="198.51.100.1", port=2222)
    assert paths(networks, SAFE, connection=ssh_2222, connection_protected=True, route=route) == [
        "networks.admin.policy_profile"]


def test_every_problem_is_reported_at_once() -> None:
    networks = {
        "a": routed(forwards=[{"public": ":22/tcp", "dst": "10.33.0.10"}]),
        "b": routed("192.0.2.0/28", "192.0.2.1"),
        "c": {"type": "bridge", "ports": ["eno1"]},
    }
    assert paths(networks, {"enforce": False}, connection=SSH, connection_protected=True, route=ENO1) == [
        "management.enforce", "networks.a.forwards", "networks.b.cidr", "networks.c.ports[0]"]


# -- connection parsing and the outcome ------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("198.51.100.7 50022 192.0.2.2 22", SSH),
    ("::ffff:198.51.100.7 50022 ::ffff:192.0.2.2 22", SSH),
    ("fe80::1%eth0 50022 fe80::2%eth0 22", ManagementConnection("fe80::1", "fe80::2", 22)),
    ("", None), (None, None), ("198.51.100.7 50022 192.0.2.2", None), ("x y z 22", None),
    ("198.51.100.7 50022 192.0.2.2 ssh", None),
])
def test_ssh_connection_parsing(text: str | None, expected: ManagementConnection | None) -> None:
    assert ManagementConnection.parse(text) == expected


def test_outcome_refuses_or_warns() -> None:
    issues = find_lockouts(parse_topology({"management": {"enforce": False}, "networks": {"n": routed()}}))
    with pytest.raises(DangerousTopologyError) as raised:
        lockout_outcome(issues, allowed=False)
    assert raised.value.to_result() == {"errors": [str(issues[0])]}
    assert str(raised.value).startswith("management.enforce: false turns the management guard off")
    assert lockout_outcome(issues, allowed=True) == [
        f"allow_lockout is true, so this is applied although it can lock you out: {issues[0]}"]
    assert lockout_outcome([], allowed=False) == []
