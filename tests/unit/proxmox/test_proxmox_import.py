# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""proxmox_import's core: PVE node network and firewall to topology, profiles and what has no equivalent."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology, rendered_result
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import parse_profile
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._import import (
    CLUSTER_PROFILE,
    MACROS,
    UNMAPPABLE_MACROS,
    FirewallConfig,
    ProxmoxData,
    import_proxmox,
    read_proxmox,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.tests.support.pve.state import FIREWALL_MACROS


def run_import(interfaces: list[dict], **firewall: Any):
    return import_proxmox(ProxmoxData(node="pve1", interfaces=interfaces, **firewall))


def reasons(result) -> list[tuple[str, str]]:
    return [(entry["object"], entry["reason"]) for entry in result.unsupported]


def cluster(rules: list[dict] = (), *, options: dict | None = None, ipsets: dict | None = None,
            aliases: list[dict] = ()) -> FirewallConfig:
    return FirewallConfig(path="cluster/firewall", options={"enable": 1} if options is None else options,
                          rules=list(rules), ipsets=ipsets or {}, aliases=list(aliases))


def host_rules(result) -> list[dict]:
    return result.profiles[CLUSTER_PROFILE]["rules"]


def rule(pos: int, **fields: Any) -> dict:
    return {"pos": pos, "type": "in", "action": "ACCEPT", "enable": 1, **fields}


# -- network ----------------------------------------------------------------------------------


def test_bridge_with_port_address_and_gateway() -> None:
    vmbr0 = {"iface": "vmbr0", "type": "bridge", "method": "static", "bridge_ports": "eno1", "bridge_stp": "off",
             "bridge_fd": "0", "cidr": "192.168.1.10/24", "gateway": "192.168.1.1", "autostart": 1,
             "digest": "ab12", "active": 1}
    result = run_import([{"iface": "eno1", "type": "eth", "method": "manual"}, vmbr0])
    assert result.topology == {"version": 1, "networks": {"vmbr0": {
        "type": "bridge", "iface": "vmbr0", "ports": ["eno1"], "cidr": "192.168.1.0/24", "gw_ip": "192.168.1.10"}}}
    assert result.unsupported == [{
        "object": "nodes/pve1/network/vmbr0",
        "reason": "gateway 192.168.1.1: a topology holds no routes (the default route stays the host's own "
                  "configuration)",
        "config": {key: value for key, value in sorted(vmbr0.items()) if key != "digest"},
    }]
    assert result.profiles == {}
    assert result.notes == []


def test_address_and_netmask_form_and_dual_stack() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge", "address": "10.1.0.2", "netmask": "255.255.0.0",
                          "address6": "fd00:1::2", "netmask6": "64", "stp": "on"}])
    network = result.topology["networks"]["vmbr0"]
    assert (network["cidr"], network["gw_ip"], network["cidr6"], network["gw_ip6"]) == (
        "10.1.0.0/16", "10.1.0.2", "fd00:1::/64", "fd00:1::2")


def test_ipv6_only_bridge_uses_cidr() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge", "cidr6": "2001:db8::1/64"}])
    assert result.topology["networks"]["vmbr0"] == {"type": "bridge", "iface": "vmbr0", "cidr": "2001:db8::/64",
                                                    "gw_ip": "2001:db8::1"}


def test_vlan_aware_bridge_with_vids_stp_and_mtu() -> None:
    result = run_import([{"iface": "vmbr1", "type": "bridge", "bridge_ports": "eno2 eno3", "bridge_vlan_aware": 1,
                          "bridge_vids": "2 4 100-200", "bridge_stp": "on", "mtu": 9000}])
    assert result.topology["networks"]["vmbr1"] == {
        "type": "bridge", "iface": "vmbr1", "ports": ["eno2", "eno3"], "stp": True, "vlan_filtering": True,
        "vids": ["2", "4", "100-200"], "mtu": 9000}
    assert result.unsupported == []


def test_vids_on_a_bridge_that_is_not_vlan_aware_are_reported() -> None:
    result = run_import([{"iface": "vmbr1", "type": "bridge", "bridge_vids": "2-4094", "bridge_fd": "15"}])
    assert result.topology["networks"]["vmbr1"] == {"type": "bridge", "iface": "vmbr1"}
    assert reasons(result) == [
        ("nodes/pve1/network/vmbr1", "bridge_fd 15: a topology bridge has no forward delay setting"),
        ("nodes/pve1/network/vmbr1", "bridge_vids 2-4094 on a bridge that is not VLAN-aware has no effect and is "
                                     "left out"),
    ]


def test_implicit_vlan_port_becomes_the_bridges_vlan_sub_interface() -> None:
    result = run_import([{"iface": "vmbr2", "type": "bridge", "bridge_ports": "eno2.30"}])
    assert result.topology["networks"]["vmbr2"] == {"type": "bridge", "iface": "vmbr2", "vlan": 30,
                                                    "parent": "eno2", "vlan_iface": "eno2.30"}


def test_defined_vlan_port_is_consumed_and_its_address_reported() -> None:
    result = run_import([
        {"iface": "vmbr2", "type": "bridge", "bridge_ports": "vlan30"},
        {"iface": "vlan30", "type": "vlan", "vlan-raw-device": "bond0", "vlan-id": "30", "cidr": "10.30.0.5/24",
         "mtu": 1400},
        {"iface": "bond0", "type": "bond", "slaves": "eno1 eno2"},
    ])
    assert result.topology["networks"] == {"vmbr2": {"type": "bridge", "iface": "vmbr2", "vlan": 30,
                                                     "parent": "bond0", "vlan_iface": "vlan30"}}
    assert reasons(result) == [
        ("nodes/pve1/network/vlan30", "address 10.30.0.5/24 on vlan30, a port of bridge vmbr2: a topology puts "
                                      "addresses on the bridge only"),
        ("nodes/pve1/network/vlan30", "mtu 1400 of vlan30, a port of bridge vmbr2: a topology sets the MTU of the "
                                      "bridge only"),
        ("nodes/pve1/network/bond0", "bond0 is of type bond, which a topology does not create; networks may still "
                                     "use it as an existing link (bridge port or VLAN parent)"),
    ]


def test_second_vlan_port_and_nested_bridge_are_left_out() -> None:
    result = run_import([
        {"iface": "vmbr0", "type": "bridge"},
        {"iface": "vmbr2", "type": "bridge", "bridge_ports": "eno1.10 eno1.20 vmbr0 vmbr0.5"},
    ])
    assert result.topology["networks"]["vmbr2"] == {"type": "bridge", "iface": "vmbr2", "vlan": 10,
                                                    "parent": "eno1", "vlan_iface": "eno1.10"}
    assert reasons(result) == [
        ("nodes/pve1/network/vmbr2", "bridge port eno1.20: a topology bridge takes one VLAN sub-interface (eno1.10 "
                                     "is already taken); the port is left out"),
        ("nodes/pve1/network/vmbr2", "bridge port vmbr0 is itself a bridge; bridges of a topology are not nested, "
                                     "so the port is left out"),
        ("nodes/pve1/network/vmbr2", "bridge port vmbr0.5 is VLAN 5 of vmbr0, which the topology creates itself; a "
                                     "topology VLAN's parent must be an existing link, so the port is left out"),
    ]


def test_standalone_vlans_in_both_forms() -> None:
    result = run_import([
        {"iface": "eno1.20", "type": "vlan", "cidr": "10.20.0.2/24"},
        {"iface": "vlan40", "type": "vlan", "vlan-raw-device": "eno1", "vlan-id": 40},
    ])
    assert result.topology["networks"] == {
        "eno1_20": {"type": "vlan", "iface": "eno1.20", "vlan": 20, "parent": "eno1", "cidr": "10.20.0.0/24",
                    "gw_ip": "10.20.0.2"},
        "vlan40": {"type": "vlan", "iface": "vlan40", "vlan": 40, "parent": "eno1"},
    }


def test_vlan_problems_are_reported() -> None:
    result = run_import([
        {"iface": "vmbr0", "type": "bridge"},
        {"iface": "vmbr0.10", "type": "vlan", "cidr": "10.10.0.5/24"},
        {"iface": "eno1.20", "type": "vlan", "vlan-raw-device": "eno2"},
        {"iface": "vlan9", "type": "vlan"},
        {"iface": "vlan5000", "type": "vlan", "vlan-raw-device": "eno1", "vlan-id": 5000},
    ])
    assert list(result.topology["networks"]) == ["vmbr0"]
    assert reasons(result) == [
        ("nodes/pve1/network/eno1.20", "VLAN interface without a usable VLAN: the name says VLAN 20 on eno1, "
                                       "vlan-raw-device/vlan-id say None on eno2"),
        ("nodes/pve1/network/vlan5000", "VLAN interface without a usable VLAN: VLAN id 5000 is out of range 1-4094"),
        ("nodes/pve1/network/vlan9", "VLAN interface without a usable VLAN: neither vlan-raw-device and vlan-id "
                                     "nor a name of the form <parent>.<vlan id>"),
        ("nodes/pve1/network/vmbr0.10", "VLAN 10 on vmbr0, which the topology creates itself (a bridge); a "
                                        "topology VLAN's parent must be an existing link"),
    ]


def test_network_names_are_made_unique() -> None:
    result = run_import([{"iface": "eno1_20", "type": "bridge"}, {"iface": "eno1.20", "type": "vlan"}])
    assert sorted(result.topology["networks"]) == ["eno1_20", "eno1_20_2"]
    assert result.topology["networks"]["eno1_20"]["iface"] == "eno1_20"  # bridges are imported before VLANs
    assert result.topology["networks"]["eno1_20_2"]["iface"] == "eno1.20"


def test_overlapping_subnets_small_prefixes_and_dhcp_are_reported() -> None:
    result = run_import([
        {"iface": "vmbr0", "type": "bridge", "cidr": "192.168.1.10/24"},
        {"iface": "vmbr1", "type": "bridge", "cidr": "192.168.1.77/25"},
        {"iface": "vmbr2", "type": "bridge", "cidr": "10.9.9.1/31"},
        {"iface": "vmbr3", "type": "bridge", "method": "dhcp", "cidr6": "fd00::/64"},
    ])
    assert result.topology["networks"] == {
        "vmbr0": {"type": "bridge", "iface": "vmbr0", "cidr": "192.168.1.0/24", "gw_ip": "192.168.1.10"},
        "vmbr1": {"type": "bridge", "iface": "vmbr1"},
        "vmbr2": {"type": "bridge", "iface": "vmbr2"},
        "vmbr3": {"type": "bridge", "iface": "vmbr3"},
    }
    assert reasons(result) == [
        ("nodes/pve1/network/vmbr2", "address 10.9.9.1/31: a topology network needs room for the host and guests "
                                     "(prefix /30 or shorter); the address is left out"),
        ("nodes/pve1/network/vmbr3", "method dhcp: a topology gives the host a static address on the networks it "
                                     "creates"),
        ("nodes/pve1/network/vmbr3", "address fd00::/64 is not a host address of fd00::/64; the address is left out"),
        ("nodes/pve1/network/vmbr1", "address 192.168.1.77/25 overlaps the subnet of vmbr0; a topology's subnets "
                                     "must not overlap, so the address is left out"),
    ]


def test_existing_links_are_reported_only_when_they_carry_configuration() -> None:
    result = run_import([
        {"iface": "eno1", "type": "eth", "method": "manual"},
        {"iface": "eno2", "type": "eth", "mtu": 9000, "cidr": "10.0.0.2/24", "gateway": "10.0.0.1"},
        {"iface": "ovsbr0", "type": "OVSBridge"},
        {"iface": "vmbr0", "type": "bridge", "autostart": 0, "comments": "uplink", "options": ["up ip r a x"]},
    ])
    assert list(result.topology["networks"]) == ["vmbr0"]
    assert reasons(result) == [  # bridges first, then the other interfaces, each in name order
        ("nodes/pve1/network/vmbr0", "autostart is off: a topology brings every link it creates up"),
        ("nodes/pve1/network/vmbr0", "comments 'uplink': a topology keeps no comments"),
        ("nodes/pve1/network/vmbr0", "extra interface options (up ip r a x) have no topology equivalent"),
        ("nodes/pve1/network/eno2", "address 10.0.0.2/24, gateway 10.0.0.1, mtu 9000 on the existing link eno2: a "
                                    "topology configures only the links it creates"),
        ("nodes/pve1/network/ovsbr0", "ovsbr0 is of type OVSBridge, which a topology does not create; networks may "
                                      "still use it as an existing link (bridge port or VLAN parent)"),
    ]


def test_a_network_the_topology_refuses_is_left_out_with_the_validators_message() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge"},
                         {"iface": "vmbrthisistoolong", "type": "bridge", "bridge_ports": "eno1"}])
    assert list(result.topology["networks"]) == ["vmbr0"]
    assert reasons(result) == [(
        "nodes/pve1/network/vmbrthisistoolong",
        "networks.vmbrthisistoolong.iface: 'vmbrthisistoolong' is not a valid interface name (1-15 characters of "
        "A-Z a-z 0-9 _ . @ + -, not starting with . @ + or -): the network is left out",
    )]


def test_interface_without_a_name_is_reported() -> None:
    result = run_import([{"type": "bridge"}, "junk"])
    assert result.topology == {"version": 1, "networks": {}}
    assert reasons(result) == [("nodes/pve1/network", "an interface without a name"),
                               ("nodes/pve1/network", "an interface without a name")]
    assert result.unsupported[1]["config"] == {"value": "'junk'"}


def test_imported_topology_renders_to_the_same_bridges() -> None:
    """The pure round trip: PVE bridges -> topology -> the plan of an empty host creates exactly them."""
    result = run_import([
        {"iface": "vmbr0", "type": "bridge", "bridge_ports": "eno1", "cidr": "192.168.1.10/24"},
        {"iface": "vmbr1", "type": "bridge", "bridge_ports": "eno2", "bridge_vlan_aware": 1, "bridge_vids": "2-4094"},
        {"iface": "vmbr2", "type": "bridge", "bridge_ports": "eno3.30"},
    ])
    plan = rendered_result(compile_topology(result.topology))["plan"]
    links = {op["target"]: op["details"] for op in plan if op["kind"] == "create_link"}
    assert {name: (details["type"], details.get("vlan_filtering"), details.get("master"))
            for name, details in links.items()} == {
        "link:vmbr0": ("bridge", False, None), "link:vmbr1": ("bridge", True, None),
        "link:vmbr2": ("bridge", False, None), "link:eno3.30": ("vlan", None, "vmbr2")}
    assert [op["target"] for op in plan if op["kind"] == "set_master"] == ["port:eno1", "port:eno2"]
    assert [op["target"] for op in plan if op["kind"] == "add_address"] == ["address:vmbr0:192.168.1.10/24"]


# -- firewall ---------------------------------------------------------------------------------


def test_cluster_rules_become_host_rules_of_pve_cluster_attached_when_enabled() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge"}], cluster=cluster(
        [rule(1, proto="tcp", dport="8006,5900:5999", source="10.0.0.0/8", log="info", comment='web "ui"'),
         rule(0, macro="ssh")],
        options={"enable": 1, "policy_in": "REJECT", "policy_out": "ACCEPT", "digest": "x"}))
    assert result.profiles == {CLUSTER_PROFILE: {
        "description": "Imported from the Proxmox VE cluster firewall: its IN rules and policy_in guard the host; "
                       "forwarded traffic is accepted",
        "ingress_action": "accept", "egress_action": "accept", "host_action": "reject",
        "rules": [
            {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [22]},
            {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [8006, "5900-5999"],
             "sources": ["10.0.0.0/8"], "log": True, "comment": "web _ui_"},
        ]}}
    assert result.topology["policies"] == result.profiles
    assert result.topology["networks"]["vmbr0"]["policy_profile"] == CLUSTER_PROFILE
    assert result.unsupported == [] and result.notes == []


def test_disabled_cluster_firewall_guards_nothing_and_says_so() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge"}], cluster=cluster(options={}))
    assert "policy_profile" not in result.topology["networks"]["vmbr0"]
    assert result.profiles[CLUSTER_PROFILE]["host_action"] == "drop"  # PVE's default policy_in
    assert result.notes == ["the cluster firewall is disabled (enable is not 1): profile pve-cluster is returned "
                            "but guards no network"]


def test_macros_expand_to_one_rule_per_protocol() -> None:
    result = run_import([], cluster=cluster([rule(0, macro="DNS", action="DROP"), rule(1, macro="Web")]))
    assert host_rules(result) == [
        {"direction": "host", "action": "drop", "protocol": "udp", "ports": [53]},
        {"direction": "host", "action": "drop", "protocol": "tcp", "ports": [53]},
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [80]},
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [443]},
    ]


def test_every_macro_of_pve_firewall_is_mapped_or_has_a_reason() -> None:
    assert set(MACROS) & set(UNMAPPABLE_MACROS) == set()
    assert set(MACROS) | set(UNMAPPABLE_MACROS) == {name.lower() for name in FIREWALL_MACROS}


def test_every_mapped_macro_gives_a_valid_profile() -> None:
    rules = [rule(index, macro=name) for index, name in enumerate(sorted(MACROS))]
    result = run_import([], cluster=cluster(rules))
    assert result.unsupported == []
    assert len(host_rules(result)) == sum(len(entries) for entries in MACROS.values())


@pytest.mark.parametrize(("fields", "reason"), [
    ({"macro": "Ping"}, "macro Ping has no equivalent: it matches ICMP/ICMPv6 type echo-request only; profile rules "
                        "match every ICMP type"),
    ({"macro": "Frobnicate"}, "macro Frobnicate has no equivalent: the importer does not know it"),
    ({"macro": "SSH", "dport": "2222"}, "macro SSH with its own proto/dport"),
    ({"proto": "gre"}, "protocol gre has no equivalent (tcp, udp, sctp, icmp and icmpv6 have)"),
    ({"dport": "80"}, "destination port 80 without protocol tcp, udp or sctp"),
    ({"proto": "tcp", "dport": "http"}, "destination port 'http' is not a number or range (service names are "
                                        "resolved by each host's /etc/services, so they are not imported)"),
    ({"proto": "tcp", "sport": "1024:65535"}, "source port 1024:65535: profile rules match destination ports only"),
    ({"proto": "icmp", "icmp-type": "echo-request"}, "icmp-type echo-request: profile rules match every ICMP type"),
    ({"proto": "icmp", "source": "fd00::/8"}, "protocol icmp with IPv6 addresses only never matches"),
    ({"proto": "icmpv6", "dest": "10.0.0.0/8"}, "protocol icmpv6 with IPv4 addresses only never matches"),
    ({"iface": "net0"}, "it applies to interface net0 only; a profile applies to the whole network it is attached "
                        "to"),
    ({"action": "MARK"}, "action 'MARK' has no equivalent (ACCEPT, DROP, REJECT have)"),
    ({"type": "forward"}, "rule type 'forward' has no equivalent (in and out have)"),
    ({"type": "out"}, "rules for the host's own outgoing traffic (type out on the cluster level) have no "
                      "equivalent: profiles filter traffic from networks, not from the host"),
    ({"source": "10.0.0.0/8", "dest": "fd00::/8"},
     "its sources and destinations are of different address families, so it never matches"),
    ({"source": "nosuchalias"}, "alias nosuchalias is not defined"),
    ({"source": "+nosuchset"}, "IP set nosuchset is not defined"),
    ({"source": "+guest/xy"}, "IP set guest/xy refers to a guest's IP sets outside a guest"),
    ({"source": "+empty"}, "IP set empty is empty, so the rule matches nothing; a profile rule without addresses "
                           "would match everything"),
    ({"source": "+holes"}, "IP set holes excludes 10.1.0.0/16 (nomatch); a profile rule has no exclusions"),
    ({"source": "10.0.0.300"}, "'10.0.0.300' is not an IP address, CIDR or range"),
])
def test_rules_without_equivalent_are_reported_and_left_out(fields: dict, reason: str) -> None:
    pve_rule = rule(3, **fields)
    result = run_import([], cluster=cluster([pve_rule], ipsets={"empty": [], "holes": [
        {"cidr": "10.0.0.0/8"}, {"cidr": "10.1.0.0/16", "nomatch": 1}]}))
    assert host_rules(result) == []
    assert result.unsupported == [{"object": "cluster/firewall/rules/3", "reason": f"{reason}: the rule is left out",
                                   "config": dict(sorted(pve_rule.items()))}]


def test_disabled_rules_are_reported_as_skipped() -> None:
    result = run_import([], cluster=cluster([rule(0, enable=0, macro="SSH"), rule(1, macro="HTTP")]))
    assert host_rules(result) == [{"direction": "host", "action": "accept", "protocol": "tcp", "ports": [80]}]
    assert reasons(result) == [("cluster/firewall/rules/0", "the rule is disabled (enable=0): skipped")]


def test_icmp_rule_keeps_the_addresses_of_its_family() -> None:
    result = run_import([], cluster=cluster([rule(0, proto="icmp", source="10.0.0.0/8,fd00::/8")]))
    assert host_rules(result) == [{"direction": "host", "action": "accept", "protocol": "icmp",
                                   "sources": ["10.0.0.0/8"]}]


def test_addresses_ranges_aliases_and_ip_sets_are_resolved() -> None:
    result = run_import([], cluster=cluster(
        [rule(0, source="10.0.0.1-10.0.0.6,192.0.2.7,lan", dest="+MGMT", proto="tcp", dport="22")],
        ipsets={"mgmt": [{"cidr": "198.51.100.0/24"}, {"cidr": "dc/office"}]},
        aliases=[{"name": "LAN", "cidr": "192.168.0.0/16"}, {"name": "office", "cidr": "203.0.113.9"}]))
    assert host_rules(result) == [{
        "direction": "host", "action": "accept", "protocol": "tcp", "ports": [22],
        "sources": ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32", "192.0.2.7/32", "192.168.0.0/16"],
        "destinations": ["198.51.100.0/24", "203.0.113.9/32"],
    }]


def test_security_groups_expand_in_place() -> None:
    groups = {"webs": [rule(1, type="out", action="DROP"), rule(0, macro="HTTPS")]}
    result = run_import([], cluster=cluster([rule(0, macro="SSH"), rule(1, type="group", action="WEBS"),
                                             rule(2, type="group", action="nogroup"),
                                             rule(3, type="group", action="webs", iface="vmbr0")]), groups=groups)
    assert host_rules(result) == [
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [22]},
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [443]},
    ]
    assert reasons(result) == [
        ("cluster/firewall/groups/webs/1", "rules for the host's own outgoing traffic (type out on the cluster "
                                           "level) have no equivalent: profiles filter traffic from networks, not "
                                           "from the host: the rule is left out"),
        ("cluster/firewall/rules/2", "security group nogroup is not defined: the rule is left out"),
        ("cluster/firewall/rules/3", "security group webs applies to interface vmbr0 only; a profile applies to the "
                                     "whole network: the rule is left out"),
    ]


def test_options_without_equivalent_and_bad_policies_are_reported() -> None:
    result = run_import([], cluster=cluster(options={"enable": 1, "policy_in": "BOGUS", "policy_out": "DROP",
                                                     "ebtables": 0, "log_ratelimit": "enable=1"}))
    assert result.profiles[CLUSTER_PROFILE]["host_action"] == "drop"
    assert reasons(result) == [
        ("cluster/firewall/options", "option ebtables=0 has no profile equivalent"),
        ("cluster/firewall/options", "option log_ratelimit=enable=1 has no profile equivalent"),
        ("cluster/firewall/options", "policy_out DROP: the host's own outgoing traffic is not filtered by profiles"),
        ("cluster/firewall/options", "policy_in BOGUS has no equivalent; DROP assumed"),
    ]


def test_guest_firewall_becomes_an_unattached_profile() -> None:
    guest = FirewallConfig(
        path="nodes/pve1/qemu/100/firewall",
        options={"enable": 1, "policy_in": "DROP", "policy_out": "REJECT", "macfilter": 0},
        rules=[rule(0, macro="HTTPS"), rule(1, type="out", action="ACCEPT", dest="guest/db"),
               rule(2, source="+dc/admins", proto="tcp", dport="22"), rule(3, source="+web", macro="HTTP")],
        ipsets={"web": [{"cidr": "203.0.113.0/24"}]},
        aliases=[{"name": "db", "cidr": "10.5.0.10"}])
    result = run_import([{"iface": "vmbr0", "type": "bridge"}],
                        cluster=cluster(options={}, ipsets={"admins": [{"cidr": "192.0.2.0/24"}],
                                                            "web": [{"cidr": "198.51.100.0/24"}]}),
                        guests={100: guest})
    assert result.profiles["pve-guest-100"] == {
        "description": "Imported from the Proxmox VE firewall of guest 100: IN rules guard traffic into the "
                       "network, OUT rules traffic out of it and to the host",
        "ingress_action": "drop", "egress_action": "reject", "host_action": "reject",
        "rules": [
            {"direction": "ingress", "action": "accept", "protocol": "tcp", "ports": [443]},
            {"direction": "egress", "action": "accept", "destinations": ["10.5.0.10/32"]},
            {"direction": "host", "action": "accept", "destinations": ["10.5.0.10/32"]},
            {"direction": "ingress", "action": "accept", "protocol": "tcp", "ports": [22],
             "sources": ["192.0.2.0/24"]},
            {"direction": "ingress", "action": "accept", "protocol": "tcp", "ports": [80],
             "sources": ["203.0.113.0/24"]},  # the guest's own set wins over the cluster's of the same name
        ]}
    assert "policy_profile" not in result.topology["networks"]["vmbr0"]
    assert reasons(result) == [("nodes/pve1/qemu/100/firewall/options", "option macfilter=0 has no profile "
                                                                        "equivalent")]
    assert result.notes[1] == ("profile pve-guest-100 comes from the firewall of guest 100 (enabled); it guards no "
                               "network until a network names it in policy_profile, and then it applies to the "
                               "whole network, not to one guest")


def test_rules_the_policy_parser_refuses_are_reported_with_its_message() -> None:
    result = run_import([], cluster=cluster([rule(0, proto="tcp", dport="0"), rule(1, macro="SSH")]))
    assert host_rules(result) == [{"direction": "host", "action": "accept", "protocol": "tcp", "ports": [22]}]
    assert reasons(result) == [("cluster/firewall/rules/0", "port 0 is out of range 1-65535: the rule is left out")]


def test_every_returned_profile_and_the_topology_load() -> None:
    result = run_import([{"iface": "vmbr0", "type": "bridge", "cidr": "10.0.0.1/24"}], cluster=cluster(
        [rule(0, macro="SSH", source="10.0.0.0/24"), rule(1, type="in", action="DROP", proto="udp")]))
    for name, profile in result.profiles.items():
        issues: list = []
        assert parse_profile(name, profile, name, issues) is not None and issues == []
    topology = parse_topology(result.topology)
    assert topology.network("vmbr0").policy_profile == CLUSTER_PROFILE


def test_output_is_deterministic_whatever_the_input_order() -> None:
    interfaces = [{"iface": f"vmbr{index}", "type": "bridge", "cidr": f"10.{index}.0.1/24"} for index in range(5)]
    rules = [rule(index, proto="tcp", dport=str(1000 + index)) for index in range(5)]
    first = run_import(interfaces, cluster=cluster(rules))
    second = run_import(list(reversed(interfaces)), cluster=cluster(list(reversed(rules))))
    assert first == second
    assert [entry["ports"] for entry in host_rules(first)] == [[1000], [1001], [1002], [1003], [1004]]


# -- reading through a client -----------------------------------------------------------------


class RecordingClient:
    """Answers GETs from a dict of path -> data and records them."""

    def __init__(self, answers: dict[str, Any], guests: dict[int, tuple[str, str]] | None = None) -> None:
        self.answers = answers
        self.guests = guests or {}
        self.requests: list[str] = []

    def get(self, path: str, **params: Any) -> Any:
        self.requests.append(path)
        return self.answers[path]

    def locate_guest(self, vmid: int | None = None, name: str | None = None):
        node, kind = self.guests[vmid]

        class Guest:  # the fields read_proxmox uses
            pass

        guest = Guest()
        guest.node, guest.type, guest.vmid = node, kind, vmid
        return guest


def firewall_answers(base: str, rules: list[dict]) -> dict[str, Any]:
    return {f"{base}/options": {"enable": 1}, f"{base}/rules": rules, f"{base}/ipset": [{"name": "s1"}],
            f"{base}/ipset/s1": [{"cidr": "10.0.0.0/8"}], f"{base}/aliases": []}


def test_read_proxmox_fetches_only_what_the_import_needs() -> None:
    answers = {"/nodes/pve1/network": [{"iface": "vmbr0", "type": "bridge"}],
               "/cluster/firewall/groups": [{"group": "Webs"}, {"group": "unused"}],
               "/cluster/firewall/groups/Webs": [rule(0, macro="HTTP")]}
    answers.update(firewall_answers("/cluster/firewall", [rule(0, type="group", action="webs")]))
    answers.update(firewall_answers("/nodes/pve2/lxc/200/firewall", []))
    client = RecordingClient(answers, guests={200: ("pve2", "lxc")})
    data = read_proxmox(client, "pve1", vmids=[200, 200])
    assert client.requests == [
        "/nodes/pve1/network",
        "/cluster/firewall/options", "/cluster/firewall/ipset", "/cluster/firewall/ipset/s1",
        "/cluster/firewall/rules", "/cluster/firewall/aliases",
        "/nodes/pve2/lxc/200/firewall/options", "/nodes/pve2/lxc/200/firewall/ipset",
        "/nodes/pve2/lxc/200/firewall/ipset/s1", "/nodes/pve2/lxc/200/firewall/rules",
        "/nodes/pve2/lxc/200/firewall/aliases",
        "/cluster/firewall/groups", "/cluster/firewall/groups/Webs",
    ]
    assert data.groups == {"Webs": [rule(0, macro="HTTP")]}
    assert data.guests[200].path == "nodes/pve2/lxc/200/firewall"
    assert import_proxmox(data).profiles[CLUSTER_PROFILE]["rules"] == [
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [80]}]


def test_read_proxmox_without_firewall_reads_the_network_only() -> None:
    client = RecordingClient({"/nodes/pve1/network": []})
    assert read_proxmox(client, "pve1", include_firewall=False) == ProxmoxData(node="pve1", interfaces=[])
    assert client.requests == ["/nodes/pve1/network"]


@pytest.mark.parametrize(("node", "vmids", "include_firewall", "message"), [
    ("pve1/../x", [], True, "node: 'pve1/../x' is not a node name (letters, digits and inner hyphens)"),
    ("pve1", [100], False, "vmids: [100] given with include_firewall false; guests are read for their firewall only"),
])
def test_read_proxmox_refuses_bad_input_before_any_request(node: str, vmids: list, include_firewall: bool,
                                                           message: str) -> None:
    client = RecordingClient({"/nodes/pve1/network": []})
    with pytest.raises(ValidationError) as caught:
        read_proxmox(client, node, include_firewall=include_firewall, vmids=vmids)
    assert str(caught.value) == message
    assert client.requests == []
