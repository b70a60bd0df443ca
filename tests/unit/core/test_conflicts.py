# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conflicts with other programs (core/_conflicts.py): foreign nft chains judged for the networks'
traffic, the recognised firewalls, NetworkManager and systemd-networkd, and the warnings' wording.

The rulesets are built here in the JSON shape ``nft -j`` lists (the same shapes that
tests/integration/test_foreign_firewalls.py loads into a namespace and lists with the real nft).
"""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._conflicts import (
    Conflict,
    NetworkdFile,
    ServiceFacts,
    conflict_warnings,
    find_conflicts,
    nm_spec_matches,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

# -- building nft -j output -----------------------------------------------------------------------


def iface(key: str, names: object, op: str = "==") -> dict:
    right = {"set": list(names)} if isinstance(names, (list, tuple)) else names
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


def saddr(set_name: str) -> dict:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": f"@{set_name}"}}


CT_ESTABLISHED = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}
CT_INVALID = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}
TCP_22 = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}
COUNTER = {"counter": {"packets": 0, "bytes": 0}}
ACCEPT = {"accept": None}
DROP = {"drop": None}
REJECT = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}


def jump(target: str) -> dict:
    return {"jump": {"target": target}}


def goto(target: str) -> dict:
    return {"goto": {"target": target}}


def vmap(key: str, data: object) -> dict:
    return {"vmap": {"key": {"meta": {"key": key}}, "data": data}}


def chain(name: str, *rules: list, hook: str | None = None, prio: int = 0, policy: str = "accept") -> tuple:
    return name, rules, hook, prio, policy


def table(family: str, name: str, *chains: tuple, maps: dict | None = None, sets: tuple = ()) -> list:
    items: list = [{"table": {"family": family, "name": name, "handle": 1}}]
    for set_name in sets:
        items.append({"set": {"family": family, "name": set_name, "table": name, "type": "ipv4_addr", "handle": 2}})
    for map_name, elements in (maps or {}).items():
        items.append({"map": {"family": family, "name": map_name, "table": name, "type": "ifname", "handle": 3,
                              "map": "verdict", "elem": elements}})
    handle = 10
    for chain_name, _rules, hook, prio, policy in chains:
        spec = {"family": family, "table": name, "name": chain_name, "handle": handle}
        if hook is not None:
            spec.update(type="filter", hook=hook, prio=prio, policy=policy)
        items.append({"chain": spec})
    for chain_name, rules, *_rest in chains:
        for expressions in rules:
            handle += 1
            items.append({"rule": {"family": family, "table": name, "chain": chain_name, "handle": handle,
                                   "expr": list(expressions)}})
    return items


def ruleset(*tables: list) -> dict:
    items: list = [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]
    for items_of_table in tables:
        items.extend(items_of_table)
    return {"nftables": items}


# -- topologies -----------------------------------------------------------------------------------

def routed(cidr: str, gw: str, **extra: object) -> dict:
    return {"type": "routed", "cidr": cidr, "gw_ip": gw, **extra}


@pytest.fixture(scope="module")
def two_networks():
    """Two IPv4 routed networks behind the uplink up0."""
    return parse_topology({"version": 1, "interfaces": {"uplink": "up0"}, "networks": {
        "nat_dev": routed("10.33.0.0/24", "10.33.0.1", masq_out="uplink", ports=["dev1p"], policy_profile="routed-tight"),
        "web": routed("10.34.0.0/24", "10.34.0.1", masq_out="uplink"),
    }})


@pytest.fixture(scope="module")
def mixed():
    """An IPv4 network, an IPv6-only one and a plain L2 bridge."""
    return parse_topology({"version": 1, "interfaces": {"uplink": "up0"}, "networks": {
        "v4": routed("10.33.0.0/24", "10.33.0.1"),
        "v6": routed("2001:db8:1::/64", "2001:db8:1::1"),
        "lan": {"type": "bridge", "iface": "br-lan", "ports": ["eth1"]},
    }})


NO_FACTS = ServiceFacts()


def only(conflicts: list[Conflict]) -> Conflict:
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


# -- foreign base chains --------------------------------------------------------------------------

def test_a_drop_policy_at_input_is_named_with_table_chain_hook_and_priority(two_networks):
    rules = ruleset(table("inet", "filter",
                          chain("input", [CT_ESTABLISHED, ACCEPT], [iface("iifname", "lo"), ACCEPT], [TCP_22, ACCEPT],
                                hook="input", prio=0, policy="drop"),
                          chain("forward", hook="forward"), chain("output", hook="output")))
    conflict = only(find_conflicts(rules, NO_FACTS, two_networks))
    assert conflict.kind == "drop-chain"
    assert conflict.networks == ("nat_dev", "web")
    assert conflict.chains == ("inet filter input",)
    assert conflict.warning == (
        "table inet filter: chain input (hook input, priority 0; policy drop) drops traffic from networks nat_dev, web "
        "to this host (DHCP, DNS and what the profiles accept) that none of its rules accepts first. If that table "
        'should let them pass, add iifname { "gw-nat_dev", "gw-web" } accept first in chain input (nft insert rule '
        "inet filter <chain> ...); or remove the table if nothing needs it (docs/coexistence.md)")


def test_a_drop_rule_in_a_jumped_chain_counts_and_is_followed(two_networks):
    rules = ruleset(table("ip", "custom",
                          chain("fwd", [CT_ESTABLISHED, ACCEPT], [jump("checks")], hook="forward", prio=10),
                          chain("checks", [saddr("bad"), DROP], [jump("deeper")]),
                          chain("deeper", [TCP_22, REJECT]),
                          sets=("bad",)))
    conflict = only(find_conflicts(rules, NO_FACTS, two_networks))
    assert conflict.effect == (
        "chain fwd (hook forward, priority 10; 2 rules that may drop or reject, also in checks, deeper) may drop IPv4 "
        "traffic routed into and out of networks nat_dev, web")
    assert 'iifname { "gw-nat_dev", "gw-web" } accept and oifname { "gw-nat_dev", "gw-web" } accept' in conflict.advice


def test_a_goto_that_drops_for_certain_drops(two_networks):
    rules = ruleset(table("inet", "t", chain("in", [goto("zones")], [DROP], hook="input"), chain("zones", [REJECT])))
    assert only(find_conflicts(rules, NO_FACTS, two_networks)).effect.startswith(
        "chain in (hook input, priority 0; 1 rule that may drop or reject, also in zones) drops traffic")


def test_a_return_that_may_match_leaves_the_policy_to_drop_too(two_networks):
    fib_local = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
    rules = ruleset(table("ip", "filter", chain("INPUT", [jump("not-local")], [TCP_22, ACCEPT], hook="input",
                                                policy="drop"),
                          chain("not-local", [fib_local, {"return": None}], [DROP])))
    assert only(find_conflicts(rules, NO_FACTS, two_networks)).effect.startswith(
        "chain INPUT (hook input, priority 0; policy drop, 1 rule that may drop or reject, also in not-local) drops "
        "IPv4 traffic from networks nat_dev, web to this host")


def test_accepting_chains_unrelated_hooks_and_invalid_drops_say_nothing(two_networks):
    rules = ruleset(
        table("inet", "accepting", chain("input", [CT_ESTABLISHED, ACCEPT], [TCP_22, ACCEPT], hook="input"),
              chain("forward", [COUNTER, ACCEPT], hook="forward")),
        table("inet", "elsewhere", chain("out", [DROP], hook="output", policy="drop"),
              chain("pre", [DROP], hook="prerouting", prio=-300), chain("post", [DROP], hook="postrouting")),
        table("inet", "invalid", chain("input", [CT_INVALID, DROP], [CT_INVALID, COUNTER, REJECT], hook="input")),
        table("netdev", "ingress", chain("ingress", [DROP], hook="ingress", policy="drop")),
    )
    assert find_conflicts(rules, NO_FACTS, two_networks) == []


def test_the_owned_table_is_never_judged(two_networks):
    rules = ruleset(table("inet", "ghostwarden", chain("input", [DROP], hook="input", policy="drop"),
                          chain("forward", [DROP], hook="forward", policy="drop")))
    assert find_conflicts(rules, NO_FACTS, two_networks) == []


def test_one_warning_per_cause_names_every_network_once(two_networks):
    rules = ruleset(table("inet", "filter", chain("input", hook="input", policy="drop"),
                          chain("forward", hook="forward", policy="drop")))
    (warning,) = conflict_warnings(find_conflicts(rules, NO_FACTS, two_networks))
    assert warning.count("networks nat_dev, web") == 2  # once per chain, one warning for the table
    assert "chain input (hook input" in warning and "chain forward (hook forward" in warning
    assert warning.count("docs/coexistence.md") == 1


def test_accepting_the_networks_first_as_advised_removes_the_warning(two_networks):
    mine = ["gw-nat_dev", "gw-web"]
    rules = ruleset(table("inet", "filter",
                          chain("input", [iface("iifname", mine), ACCEPT], [DROP], hook="input", policy="drop"),
                          chain("forward", [iface("iifname", mine), ACCEPT], [iface("oifname", mine), ACCEPT], [DROP],
                                hook="forward", policy="drop")))
    assert find_conflicts(rules, NO_FACTS, two_networks) == []
    # Only one direction accepted: traffic into the networks still meets the drop.
    half = ruleset(table("inet", "filter", chain("forward", [iface("iifname", mine), ACCEPT], hook="forward",
                                                 policy="drop")))
    assert only(find_conflicts(half, NO_FACTS, two_networks)).chains == ("inet filter forward",)


def test_accepting_only_one_network_leaves_the_other_named(two_networks):
    rules = ruleset(table("inet", "filter", chain("input", [iface("iifname", "gw-web"), ACCEPT], hook="input",
                                                  policy="drop")))
    assert only(find_conflicts(rules, NO_FACTS, two_networks)).networks == ("nat_dev",)


def test_rules_about_other_interfaces_do_not_count(two_networks):
    rules = ruleset(table("ip", "docker-like",
                          chain("forward", [vmap("oifname", "@in-jumps")], [iface("oifname", "docker0"), DROP],
                                [iface("iifname", "br-*"), iface("oifname", "br-*"), DROP], hook="forward"),
                          chain("in-docker0", [CT_ESTABLISHED, ACCEPT], [COUNTER, DROP]),
                          maps={"in-jumps": [["docker0", jump("in-docker0")]]}))
    assert find_conflicts(rules, NO_FACTS, two_networks) == []
    # A rule on the uplink does concern traffic routed into the networks.
    uplink = ruleset(table("ip", "edge", chain("forward", [iface("iifname", "up0"), TCP_22, DROP], hook="forward")))
    assert only(find_conflicts(uplink, NO_FACTS, two_networks)).networks == ("nat_dev", "web")


def test_verdict_maps_on_our_interfaces_are_followed(two_networks):
    inline = ruleset(table("inet", "zones", chain("input", [vmap("iifname", {"set": [
        ["gw-nat_dev", DROP], ["gw-web", ACCEPT]]})], hook="input")))
    conflict = only(find_conflicts(inline, NO_FACTS, two_networks))
    assert conflict.networks == ("nat_dev",)
    assert "1 rule that may drop or reject) drops traffic from network nat_dev" in conflict.effect


def test_families_decide_which_networks_are_concerned(mixed):
    v4_only = ruleset(table("ip", "f", chain("input", hook="input", policy="drop")))
    assert only(find_conflicts(v4_only, NO_FACTS, mixed)).effect.startswith(
        "chain input (hook input, priority 0; policy drop) drops IPv4 traffic from network v4 to this host")
    v6_only = ruleset(table("ip6", "f", chain("forward", hook="forward", policy="drop")))
    assert "drops IPv6 traffic routed into and out of network v6 " in only(find_conflicts(v6_only, NO_FACTS, mixed)).effect
    bridged = ruleset(table("bridge", "b", chain("forward", [iface("ibrname", "br-lan"), DROP], hook="forward",
                                                 prio=-200)))
    conflict = only(find_conflicts(bridged, NO_FACTS, mixed))
    assert conflict.networks == ("lan",)
    assert "drops frames bridged between the ports of network lan" in conflict.effect
    assert 'meta ibrname "br-lan" accept first in chain forward' in conflict.advice


def test_without_a_topology_every_drop_at_input_and_forward_counts():
    rules = ruleset(table("ip", "docker-like", chain("forward", [vmap("oifname", "@in-jumps")], hook="forward"),
                          chain("in-docker0", [DROP]), maps={"in-jumps": [["docker0", jump("in-docker0")]]}))
    conflict = only(find_conflicts(rules, NO_FACTS, None))
    assert conflict.networks == ()
    assert conflict.effect == ("chain forward (hook forward, priority 0; 1 rule that may drop or reject, also in "
                               "in-docker0) may drop IPv4 traffic routed into and out of the topology's networks")
    assert 'iifname "gw-<network>" accept' in conflict.advice


def test_a_topology_without_networks_has_nothing_to_lose():
    rules = ruleset(FIREWALLD, table("inet", "filter", chain("input", hook="input", policy="drop")))
    facts = ServiceFacts(running=(("ufw", "ENABLED=yes in /etc/ufw/ufw.conf"),), links_checked=True)
    assert find_conflicts(rules, facts, parse_topology({"version": 1})) == []


def test_many_networks_are_counted_not_spelled_out():
    topology = parse_topology({"version": 1, "networks": {
        f"n{index:03}": routed(f"10.1.{index}.0/24", f"10.1.{index}.1") for index in range(20)}})
    rules = ruleset(table("inet", "filter", chain("input", hook="input", policy="drop")))
    conflict = only(find_conflicts(rules, NO_FACTS, topology))
    assert len(conflict.networks) == 20
    assert "networks n000, n001, n002, n003, n004, n005, n006, n007 and 12 more to this host" in conflict.effect
    assert 'add iifname "gw-*" accept first in chain input' in conflict.advice


@pytest.mark.parametrize("junk", [
    None, [], "nftables", {"nftables": "x"},
    {"nftables": [None, 1, "x", {"table": None}, {"chain": {"family": 1}},
                  {"rule": {"family": "ip", "table": "t", "chain": "c"}}]},
    ruleset([{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c",
                                                                  "hook": "input", "policy": "drop"}},
             {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [None, 3, {"match": None},
                                                                            {"match": {"left": None}},
                                                                            {"vmap": {"data": 7}}, {"jump": None},
                                                                            {"goto": {"target": 3}}, {}, DROP]}},
             {"map": {"family": "ip", "table": "t", "name": "m", "elem": "x"}}]),
])
def test_unexpected_json_is_skipped_not_crashed_on(junk, two_networks):
    assert all(isinstance(conflict, Conflict) for conflict in find_conflicts(junk, NO_FACTS, two_networks))


def test_a_chain_that_jumps_to_itself_ends(two_networks):
    rules = ruleset(table("ip", "loop", chain("input", [jump("a")], hook="input"), chain("a", [jump("a")], [DROP])))
    assert "1 rule that may drop or reject, also in a" in only(find_conflicts(rules, NO_FACTS, two_networks)).effect


# -- recognised programs --------------------------------------------------------------------------

FIREWALLD = table("inet", "firewalld",
                  chain("filter_INPUT", [CT_ESTABLISHED, ACCEPT], [iface("iifname", "lo"), ACCEPT],
                        [jump("filter_INPUT_ZONES")], [CT_INVALID, DROP], [REJECT], hook="input", prio=10),
                  chain("filter_FORWARD", [CT_ESTABLISHED, ACCEPT], [CT_INVALID, DROP], [jump("filter_FORWARD_ZONES")],
                        [REJECT], hook="forward", prio=10),
                  chain("filter_INPUT_ZONES", [iface("iifname", "up0"), goto("filter_IN_public")]),
                  chain("filter_FORWARD_ZONES", [iface("iifname", "up0"), goto("filter_FWD_public")]),
                  chain("filter_IN_public", [TCP_22, ACCEPT]),
                  chain("filter_FWD_public", []))


def test_firewalld_by_its_table_names_its_dropping_chains(two_networks):
    conflict = only(find_conflicts(ruleset(FIREWALLD), NO_FACTS, two_networks))
    assert conflict.kind == "firewalld"
    assert conflict.subject == "firewalld (table inet firewalld)"
    assert conflict.chains == ("inet firewalld filter_FORWARD", "inet firewalld filter_INPUT")
    assert conflict.effect == (
        "chain filter_FORWARD of table inet firewalld (hook forward, priority 10; 1 rule that may drop or reject) "
        "drops traffic routed into and out of networks nat_dev, web that none of its rules accepts first; chain "
        "filter_INPUT of table inet firewalld (hook input, priority 10; 1 rule that may drop or reject) drops traffic "
        "from networks nat_dev, web to this host (DHCP, DNS and what the profiles accept) that none of its rules "
        "accepts first")
    assert conflict.advice.startswith("Put the networks' interfaces into a zone that accepts their traffic: "
                                      "firewall-cmd --permanent --zone=trusted --add-interface=gw-nat_dev (for each "
                                      "of gw-nat_dev, gw-web), then firewall-cmd --reload")


def test_firewalld_trusted_zone_as_advised_leaves_only_the_running_service(two_networks):
    trusted = table("inet", "firewalld",
                    chain("filter_INPUT", [jump("filter_INPUT_ZONES")], [REJECT], hook="input", prio=10),
                    chain("filter_INPUT_ZONES", [iface("iifname", ["gw-nat_dev", "gw-web"]), goto("filter_IN_trusted")]),
                    chain("filter_IN_trusted", [ACCEPT]))
    facts = ServiceFacts(running=(("firewalld", "pid 812 in /run/firewalld.pid"),))
    conflict = only(find_conflicts(ruleset(trusted), facts, two_networks))
    assert conflict.subject == "firewalld (pid 812 in /run/firewalld.pid; table inet firewalld)"
    assert conflict.chains == ()
    assert conflict.effect.startswith("none of its chains drops the networks' traffic at the input and forward hooks "
                                      "now, but firewalld rebuilds its rules on every reload")


def test_a_running_service_without_tables_is_still_said(two_networks):
    facts = ServiceFacts(running=(("ufw", "ENABLED=yes in /etc/ufw/ufw.conf"),))
    conflict = only(find_conflicts(ruleset(), facts, two_networks))
    assert conflict.subject == "ufw (ENABLED=yes in /etc/ufw/ufw.conf)"
    assert conflict.advice.startswith("Allow the networks in ufw: ufw allow in on gw-nat_dev; ufw route allow in on "
                                      "gw-nat_dev; ufw route allow out on gw-nat_dev (for each of gw-nat_dev, gw-web)")
    # nft unavailable (None): the services alone.
    assert find_conflicts(None, facts, two_networks) == [conflict]


UFW_AND_DOCKER = table("ip", "filter",
                       chain("INPUT", [jump("ufw-before-input")], [jump("ufw-user-input")], hook="input", policy="drop"),
                       chain("FORWARD", [jump("DOCKER-USER")], [jump("ufw-before-forward")],
                             [iface("oifname", "docker0"), jump("DOCKER")], hook="forward", policy="drop"),
                       chain("ufw-before-input", [iface("iifname", "lo"), ACCEPT], [CT_ESTABLISHED, ACCEPT],
                             [CT_INVALID, DROP]),
                       chain("ufw-user-input", [TCP_22, ACCEPT]),
                       chain("ufw-before-forward", [CT_ESTABLISHED, ACCEPT]),
                       chain("DOCKER-USER", [{"return": None}]),
                       chain("DOCKER", [iface("iifname", "docker0", "!="), iface("oifname", "docker0"), DROP]))


def test_ufw_and_docker_in_one_iptables_table_one_warning_each(two_networks):
    ufw, docker = find_conflicts(ruleset(UFW_AND_DOCKER), NO_FACTS, two_networks)
    assert (ufw.kind, docker.kind) == ("ufw", "docker")
    assert ufw.subject == "ufw (table ip filter)" and docker.subject == "Docker (table ip filter)"
    # The policies belong to the first owner; Docker's warning says what Docker may still do.
    assert ufw.chains == ("ip filter FORWARD", "ip filter INPUT")
    assert "chain FORWARD of table ip filter (hook forward, priority 0; policy drop) drops IPv4 traffic routed" in ufw.effect
    assert docker.chains == ()
    assert "sets the policy of its forward chain" in docker.effect
    assert "iptables -I DOCKER-USER -i gw-nat_dev -j ACCEPT" in docker.advice
    assert "--bridge-accept-fwmark" not in docker.advice


DOCKER_IPTABLES = table("ip", "filter",
                        chain("FORWARD", [jump("DOCKER-USER")], [iface("oifname", "docker0"), jump("DOCKER")],
                              [iface("iifname", "docker0"), ACCEPT], hook="forward", policy="drop"),
                        chain("DOCKER-USER", [{"return": None}]), chain("DOCKER", []))
DOCKER_BRIDGES = table("ip", "docker-bridges",
                       chain("filter-FORWARD", [vmap("oifname", "@filter-forward-in-jumps")], hook="forward"),
                       chain("filter-forward-in__docker0", [CT_ESTABLISHED, ACCEPT], [COUNTER, DROP]),
                       maps={"filter-forward-in-jumps": [["docker0", jump("filter-forward-in__docker0")]]})


def test_docker_forward_policy_drop_and_its_nftables_tables(two_networks):
    conflict = only(find_conflicts(ruleset(DOCKER_IPTABLES, DOCKER_BRIDGES), NO_FACTS, two_networks))
    assert conflict.subject == "Docker (tables ip docker-bridges, ip filter)"
    assert conflict.chains == ("ip filter FORWARD",)  # docker-bridges drops only what goes to docker0
    assert conflict.warning.startswith(
        "Docker (tables ip docker-bridges, ip filter): chain FORWARD of table ip filter (hook forward, priority 0; "
        "policy drop) drops IPv4 traffic routed into and out of networks nat_dev, web that none of its rules accepts "
        "first. Accept the networks in the DOCKER-USER chain")
    assert "--bridge-accept-fwmark" in conflict.advice
    # Accepting the networks in DOCKER-USER, as advised, ends the finding.
    fixed = table("ip", "filter", chain("FORWARD", [jump("DOCKER-USER")], hook="forward", policy="drop"),
                  chain("DOCKER-USER", [iface("iifname", ["gw-nat_dev", "gw-web"]), ACCEPT],
                        [iface("oifname", ["gw-nat_dev", "gw-web"]), ACCEPT], [{"return": None}]))
    assert only(find_conflicts(ruleset(fixed), NO_FACTS, two_networks)).chains == ()


def test_fail2ban_and_crowdsec_drop_what_they_ban(two_networks):
    f2b = table("inet", "f2b-table", chain("f2b-chain", [TCP_22, saddr("addr-set-sshd"), REJECT], hook="input", prio=-1),
                sets=("addr-set-sshd",))
    crowdsec = table("ip", "crowdsec", chain("crowdsec-chain", [saddr("crowdsec-blacklists"), DROP], hook="input"),
                     sets=("crowdsec-blacklists",))
    fail2ban, bouncer = find_conflicts(ruleset(f2b, crowdsec), NO_FACTS, two_networks)
    assert fail2ban.warning == (
        "fail2ban (table inet f2b-table): chain f2b-chain of table inet f2b-table (hook input, priority -1; 1 rule "
        "that may drop or reject) may drop traffic from networks nat_dev, web to this host (DHCP, DNS and what the "
        "profiles accept). Nothing to do if banning those sources is wanted; to exempt the networks' clients add "
        "10.33.0.0/24 10.34.0.0/24 to ignoreip in /etc/fail2ban/jail.local (docs/coexistence.md)")
    assert bouncer.kind == "crowdsec"
    assert bouncer.subject == "the CrowdSec firewall bouncer (table ip crowdsec)"
    assert "whitelist 10.33.0.0/24, 10.34.0.0/24 in CrowdSec" in bouncer.advice
    # Their tables alone, with nothing that drops at our hooks: still said.
    idle = table("inet", "f2b-table", chain("f2b-chain", hook="input", prio=-1))
    assert only(find_conflicts(ruleset(idle), NO_FACTS, two_networks)).effect == (
        "it drops or rejects the sources it bans, whatever ghostwarden's profiles accept")


def test_proxmox_firewall_tables_only_when_they_drop(two_networks):
    quiet = table("inet", "proxmox-firewall", chain("input", [CT_ESTABLISHED, ACCEPT], hook="input"))
    assert find_conflicts(ruleset(quiet), NO_FACTS, two_networks) == []
    dropping = table("inet", "proxmox-firewall", chain("input", [CT_ESTABLISHED, ACCEPT], hook="input", policy="drop"))
    conflict = only(find_conflicts(ruleset(dropping), NO_FACTS, two_networks))
    assert conflict.kind == "pve-firewall"
    assert conflict.subject == "the Proxmox VE firewall (table inet proxmox-firewall)"


# -- NetworkManager and systemd-networkd ----------------------------------------------------------

NM = ("NetworkManager", "pid 700 in /run/NetworkManager/NetworkManager.pid")
NETWORKD = ("systemd-networkd", "process systemd-network, pid 300")


def test_networkmanager_managing_links_of_the_topology(two_networks):
    facts = ServiceFacts(running=(NM,), links_checked=True, nm_devices=(("gw-nat_dev", True), ("gw-web", False)),
                         nm_unmanaged=(("interface-name:up0", "/etc/NetworkManager/conf.d/x.conf"),))
    conflict = only(find_conflicts(ruleset(), facts, two_networks))
    assert conflict.kind == "NetworkManager" and conflict.networks == ("nat_dev",)
    assert conflict.warning == (
        "NetworkManager (pid 700 in /run/NetworkManager/NetworkManager.pid): it manages or may manage dev1p (not in "
        "unmanaged-devices); gw-nat_dev (device state managed=true), which the topology creates, "
        "enslaves or addresses (network nat_dev): when it activates or reconnects a device it may remove the addresses "
        "ghostwarden set, take the device down or out of its bridge, or start DHCP on it, and the network is cut until "
        "the next apply repairs it. Tell NetworkManager to leave them alone: [keyfile] "
        "unmanaged-devices=interface-name:dev1p;interface-name:gw-nat_dev in /etc/NetworkManager/conf.d/ghostwarden.conf "
        "(interface-name:gw-* covers every bridge ghostwarden names), then nmcli general reload (docs/coexistence.md)")


def test_networkmanager_leaves_alone_what_its_configuration_names(two_networks):
    facts = ServiceFacts(running=(NM,), links_checked=True,
                         nm_unmanaged=(("interface-name:gw-*", "/etc/NetworkManager/conf.d/gw.conf"),
                                       ("interface-name:=dev1p", "/etc/NetworkManager/conf.d/gw.conf")))
    assert find_conflicts(ruleset(), facts, two_networks) == []
    # Not running, or links not looked at (the module ran in a network namespace): nothing.
    assert find_conflicts(ruleset(), ServiceFacts(links_checked=True), two_networks) == []
    assert find_conflicts(ruleset(), ServiceFacts(running=(NM,)), two_networks) == []


@pytest.mark.parametrize("spec, name, matches", [
    ("*", "eth0", True), ("interface-name:gw-*", "gw-web", True), ("interface-name:gw-*", "eth0", False),
    ("interface-name:=gw-*", "gw-web", False), ("interface-name:=gw-web", "gw-web", True),
    ("interface-name:~gw-?eb", "gw-web", True), ("mac:52:54:00:12:34:56", "gw-web", False),
    ("type:bridge", "gw-web", False), ("except:interface-name:eth0", "gw-web", False),
])
def test_networkmanager_device_specs(spec, name, matches):
    assert nm_spec_matches(spec, name) is matches


def test_systemd_networkd_by_link_state_and_network_files(two_networks):
    files = (NetworkdFile("/etc/systemd/network/05-web.network", names=("gw-web",), unmanaged=True),
             NetworkdFile("/etc/systemd/network/10-ether.network", other_match=True),
             NetworkdFile("/etc/systemd/network/20-not-uplink.network", names=("!up0", "eth*")))
    facts = ServiceFacts(running=(NETWORKD,), links_checked=True,
                         networkd_links=(("dev1p", "configured"), ("up0", "configured"), ("eth9", "unmanaged")),
                         networkd_files=files)
    conflict = only(find_conflicts(ruleset(), facts, two_networks))
    assert conflict.kind == "systemd-networkd" and conflict.networks == ("nat_dev",)
    assert conflict.effect.startswith(
        "it manages dev1p (ADMIN_STATE=configured); gw-nat_dev (/etc/systemd/network/20-not-uplink.network matches "
        "it), which the topology creates, enslaves or addresses (network nat_dev)")
    assert "[Match] Name=dev1p gw-nat_dev and [Link] Unmanaged=yes" in conflict.advice


def test_an_uplink_whose_accept_ra_is_set_is_its_own_cause():
    topology = parse_topology({"version": 1, "interfaces": {"uplink": "up0"}, "networks": {
        "v6": routed("2001:db8:1::/64", "2001:db8:1::1", masq_out="uplink")}})
    facts = ServiceFacts(running=(NM,), links_checked=True, nm_devices=(("up0", True),),
                         nm_unmanaged=(("interface-name:gw-*", "/etc/NetworkManager/conf.d/gw.conf"),))
    conflict = only(find_conflicts(ruleset(), facts, topology))
    assert conflict.effect.startswith("it manages the uplink up0 (device state managed=true), whose accept_ra "
                                      "ghostwarden sets to 2 because the topology forwards IPv6")
