# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nft renderer without a kernel: golden texts, determinism, every rendering rule.

``GW_UPDATE_GOLDEN=1`` rewrites the golden files under tests/unit/core/golden instead of
comparing with them. tests/unit/host/test_nft_netns.py loads the same rulesets into nft.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    Issue,
    MissingDependencyError,
    RenderError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Management,
    Profile,
    RateLimit,
    Rule,
    TimeWindow,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import (
    normalise_ruleset,
    render_delete_script,
    render_replace_script,
    render_ruleset,
)
from ansible_collections.ghostwarden.core.tests.unit.core.test_nft_topologies import (
    L2_LAN,
    dual_stack,
    empty,
    forward,
    original_example,
    ports,
    profiles_showcase,
    routed,
    subnet,
    topology,
)

ROOT = Path(__file__).resolve().parents[3]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("GW_UPDATE_GOLDEN") == "1"


def parsed_example(name: str = "ghostnet.toml"):
    from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import (
        load_topology_file,
        parse_topology,
    )

    return parse_topology(load_topology_file(str(ROOT / "examples" / name)))


# name -> (topology factory, extra_management)
GOLDEN_CASES = {
    "original_example": (original_example, ("203.0.113.5",)),
    "original_example_parsed": (parsed_example, ("203.0.113.5",)),
    "dual_stack": (dual_stack, ()),
    "profiles": (profiles_showcase, ("2001:db8:beef::7", "192.0.2.200")),
    "empty": (empty, ()),
}


def golden_ruleset(name: str) -> str:
    factory, extra = GOLDEN_CASES[name]
    return render_ruleset(factory(), extra)


def chain(ruleset: str, name: str) -> list[str]:
    """The statements of one chain (or set) block of a rendered ruleset."""
    lines = ruleset.splitlines()
    for keyword in ("chain", "set", "map"):
        header = f"\t{keyword} {name} {{"
        if header in lines:
            start = lines.index(header) + 1
            return [line.strip() for line in lines[start:lines.index("\t}", start)]]
    raise AssertionError(f"no block {name} in:\n{ruleset}")


def profile(name: str = "p", ingress: str = "accept", egress: str = "accept", host: str = "accept",
            *rules: Rule) -> Profile:
    return Profile(name=name, description="test", ingress_action=ingress, egress_action=egress, host_action=host,
                   rules=rules)


def one_network(*rules: Rule, ingress: str = "accept", egress: str = "accept", host: str = "accept",
                **fields: object) -> str:
    test_profile = profile("p", ingress, egress, host, *rules)
    network = routed("n", subnet("10.9.0.0/24", "10.9.0.1"), subnet("2001:db8:9::/64", "2001:db8:9::1"),
                     policy_profile="p", **fields)
    return render_ruleset(topology(network, profiles=(test_profile,)))


# -- golden texts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_ruleset(name: str) -> None:
    rendered = golden_ruleset(name)
    path = GOLDEN_DIR / f"{name}.nft"
    if UPDATE_GOLDEN:
        path.write_text(rendered)
    assert rendered == path.read_text(), f"rendering differs from {path} (GW_UPDATE_GOLDEN=1 rewrites it)"


def test_original_example_toml_and_yaml_render_the_same() -> None:
    assert render_ruleset(parsed_example("ghostnet.toml")) == render_ruleset(parsed_example("ghostnet.yaml"))


def test_original_example_forward_on_any_address_names_the_family() -> None:
    # The original's 0.0.0.0 forward failed in nft for want of a family in the inet table.
    ruleset = golden_ruleset("original_example_parsed")
    assert chain(ruleset, "prerouting")[1] == "fib daddr type local dnat ip to meta l4proto . th dport map @fwd4"
    assert chain(ruleset, "fwd4")[1] == "elements = { tcp . 4022 : 10.33.0.10 . 22 }"


# -- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_render_is_deterministic_for_any_input_order(name: str) -> None:
    factory, extra = GOLDEN_CASES[name]
    topo = factory()
    expected = render_ruleset(topo, extra)
    assert render_ruleset(topo, extra) == expected
    shuffler = random.Random(7)
    for _attempt in range(5):
        networks = []
        for network in topo.networks:
            forwards = list(network.forwards)
            shuffler.shuffle(forwards)
            networks.append(dataclasses.replace(network, forwards=tuple(forwards),
                                                subnets=tuple(reversed(network.subnets))))
        shuffler.shuffle(networks)
        profiles = list(topo.profiles)
        shuffler.shuffle(profiles)
        allow_from = list(topo.management.allow_from)
        shuffler.shuffle(allow_from)
        extra_shuffled = list(extra)
        shuffler.shuffle(extra_shuffled)
        reordered = dataclasses.replace(topo, networks=tuple(networks), profiles=tuple(profiles),
                                        management=dataclasses.replace(topo.management, allow_from=tuple(allow_from)))
        assert render_ruleset(reordered, extra_shuffled) == expected


def test_render_is_identical_across_hash_seeds() -> None:
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "import conftest\n"
        "from ansible_collections.ghostwarden.core.tests.unit.core import test_nft\n"
        "print(json.dumps({name: test_nft.golden_ruleset(name) for name in sorted(test_nft.GOLDEN_CASES)}))\n"
    )
    outputs = []
    for seed in ("1", "4242"):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append(json.loads(result.stdout))
    here = {name: golden_ruleset(name) for name in sorted(GOLDEN_CASES)}
    assert outputs[0] == outputs[1] == here


# -- layout ---------------------------------------------------------------------------------


def test_empty_topology_is_an_empty_owned_table() -> None:
    assert render_ruleset(empty()) == (
        "table inet ghostwarden {\n"
        '\tcomment "managed by ghostwarden.core, replaced as a whole on every apply"\n'
        "}\n"
    )


def test_base_chains_only_for_needed_hooks() -> None:
    # A network with only NAT: no filter chains, the NAT hooks.
    nat_only = render_ruleset(topology(routed("n", subnet("10.9.0.0/24", "10.9.0.1"), masq_out="eth0")))
    assert "chain input" not in nat_only and "chain forward" not in nat_only and "chain prerouting" not in nat_only
    assert chain(nat_only, "postrouting") == [
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip saddr . oifname @masq4 masquerade",
    ]
    # A profile that decides nothing (all accept, no rules) adds no chain at all.
    assert render_ruleset(topology(routed("n", subnet("10.9.0.0/24", "10.9.0.1"), policy_profile=L2_LAN.name),
                                   profiles=(L2_LAN,))) == render_ruleset(empty())


def test_input_chain_order_and_guards() -> None:
    ruleset = render_ruleset(original_example(), ["198.51.100.9"])
    assert chain(ruleset, "input") == [
        "type filter hook input priority filter; policy accept;",
        'iif "lo" accept',
        "ct state established,related accept",
        "ct state invalid drop",
        "ip saddr @mgmt4 tcp dport 22 accept",
        "iifname . meta l4proto . th dport @host_services accept",
        "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
        "iifname vmap @host_chains",
    ]
    assert chain(ruleset, "mgmt4") == ["type ipv4_addr", "flags interval",
                                       "elements = { 192.0.2.0/24,", "198.51.100.9 }"]
    assert chain(ruleset, "host_services") == [
        "type ifname . inet_proto . inet_service",
        'elements = { "br-nat_dev" . tcp . 53,', '"br-nat_dev" . udp . 53,', '"br-nat_dev" . udp . 67 }',
    ]


def test_forward_chain_order() -> None:
    ruleset = render_ruleset(profiles_showcase())
    assert chain(ruleset, "forward") == [
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        "ct status dnat accept",
        "ct state invalid drop",
        "iifname . oifname @intra_network accept",
        "iifname vmap @egress_chains",
        "oifname vmap @ingress_chains",
    ]
    assert chain(ruleset, "intra_network") == [
        "type ifname . ifname",
        'elements = { "bond0.50" . "bond0.50",', '"br-office" . "br-office",', '"br-overlay" . "br-overlay",',
        '"br-web" . "br-web" }',
    ]
    assert chain(ruleset, "egress_chains") == [
        "type ifname : verdict",
        'elements = { "br-office" : jump net_office_egress,', '"br-web" : jump net_web_egress }',
    ]


def test_dhcpv6_opens_port_547() -> None:
    ruleset = render_ruleset(dual_stack())
    assert chain(ruleset, "host_services")[1:] == [
        'elements = { "br-lab" . tcp . 53,', '"br-lab" . udp . 53,', '"br-lab" . udp . 67,', '"br-lab" . udp . 547 }',
    ]


# -- policy rules ---------------------------------------------------------------------------


def test_accept_is_return_and_the_default_ends_the_chain() -> None:
    ruleset = one_network(Rule(direction="egress", action="accept", protocol="tcp", ports=ports(80)),
                          Rule(direction="egress", action="drop", protocol="tcp", ports=ports(81)),
                          Rule(direction="egress", action="reject", protocol="tcp", ports=ports(82)),
                          egress="drop")
    assert chain(ruleset, "net_n_egress") == [
        'comment "network n, profile p, egress"',
        "tcp dport 80 return",
        "tcp dport 81 drop",
        "tcp dport 82 reject",
        "drop",
    ]
    assert 'elements = { "br-n" : jump net_n_egress }' in chain(ruleset, "egress_chains")


def test_reject_default_and_reject_per_family() -> None:
    ruleset = one_network(Rule(direction="ingress", action="reject", sources=("10.0.0.0/8", "2001:db8::/32")),
                          ingress="reject")
    assert chain(ruleset, "net_n_ingress")[1:] == [
        "ip saddr 10.0.0.0/8 reject with icmp port-unreachable",
        "ip6 saddr 2001:db8::/32 reject with icmpv6 port-unreachable",
        "reject",
    ]


def test_addresses_split_by_family_and_merged() -> None:
    ruleset = one_network(
        Rule(direction="host", action="accept", sources=("10.0.1.0/24", "10.0.2.0/24", "10.0.1.7/32", "fd00::5/128"),
             destinations=("10.9.0.1/32",)),
        Rule(direction="host", action="accept", sources=("192.168.0.0/24", "192.168.1.0/24", "2001:db8::/32")),
        # No packet has a v4 source and a v6 destination: renders nothing.
        Rule(direction="host", action="accept", sources=("10.0.0.0/8",), destinations=("2001:db8::/32",)),
        Rule(direction="host", action="accept", protocol="icmpv6", sources=("10.0.0.0/8",)),
        Rule(direction="host", action="accept", protocol="icmp", sources=("10.0.0.0/8", "fd00::/8")),
        host="drop",
    )
    assert chain(ruleset, "net_n_host")[1:] == [
        "ip saddr 10.0.1.0-10.0.2.255 ip daddr 10.9.0.1 return",
        "ip saddr 192.168.0.0/23 return",
        "ip6 saddr 2001:db8::/32 return",
        "ip saddr 10.0.0.0/8 meta l4proto icmp return",
        "drop",
    ]


def test_ports_merge_like_nft_lists_them() -> None:
    ruleset = one_network(Rule(direction="host", action="accept", protocol="tcp", ports=ports(24, 22, 23, (25, 30))),
                          Rule(direction="host", action="accept", protocol="udp", ports=ports(443, 80)),
                          Rule(direction="host", action="accept", protocol="sctp", ports=ports((5000, 5010), 5005)),
                          Rule(direction="host", action="accept", protocol="udp"),
                          Rule(direction="host", action="accept", protocol="icmpv6"),
                          host="drop")
    assert chain(ruleset, "net_n_host")[1:] == [
        "tcp dport 22-30 return",
        "udp dport { 80, 443 } return",
        "sctp dport 5000-5010 return",
        "meta l4proto udp return",
        "meta l4proto ipv6-icmp return",
        "drop",
    ]


@pytest.mark.parametrize(("hours", "days", "expected"), [
    (("08:00", "18:00"), (), 'meta hour "08:00"-"17:59:59"'),
    (("22:00", "06:00"), (), 'meta hour != "06:00"-"21:59:59"'),
    (("08:00", "00:00"), (), 'meta hour != "00:00"-"07:59:59"'),
    (("00:00", "00:30"), (), 'meta hour "00:00"-"00:29:59"'),
    (("07:30:15", "07:45"), (), 'meta hour "07:30:15"-"07:44:59"'),
    (None, ("Saturday", "Sunday", "Monday"), 'meta day { "Sunday", "Monday", "Saturday" }'),
    (None, ("Friday",), 'meta day "Friday"'),
    (("09:00", "17:00"), ("Monday", "Friday"), 'meta hour "09:00"-"16:59:59" meta day { "Monday", "Friday" }'),
])
def test_time_windows(hours: tuple[str, str] | None, days: tuple[str, ...], expected: str) -> None:
    ruleset = one_network(Rule(direction="egress", action="accept", time=TimeWindow(hours=hours, days=days)),
                          egress="drop")
    assert chain(ruleset, "net_n_egress")[1:] == [f"{expected} return", "drop"]


def test_rate_limits() -> None:
    ruleset = one_network(
        Rule(direction="host", action="accept", protocol="icmp", rate_limit=RateLimit(rate=5, per="second")),
        Rule(direction="host", action="accept", protocol="icmp", rate_limit=RateLimit(rate=5, per="second", burst=5)),
        Rule(direction="host", action="accept", protocol="icmp", rate_limit=RateLimit(rate=5, per="hour", burst=9)),
        # A limit never turns a rule around: a drop rule drops (and logs) at most that rate.
        Rule(direction="host", action="drop", protocol="udp", rate_limit=RateLimit(rate=100, per="minute"), log=True),
        host="drop",
    )
    assert chain(ruleset, "net_n_host")[1:] == [
        "meta l4proto icmp limit rate 5/second return",
        "meta l4proto icmp limit rate 5/second return",  # burst 5 is nft's default, which it does not list
        "meta l4proto icmp limit rate 5/hour burst 9 packets return",
        'meta l4proto udp limit rate 100/minute log prefix "gw n host drop: " drop',
        "drop",
    ]


def test_per_source_limits_use_one_dynamic_set_per_rule_keyed_on_interface() -> None:
    rules = (
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(22), conn_limit=4,
             rate_limit=RateLimit(rate=10, per="day", per_source=True)),
        Rule(direction="host", action="reject", protocol="tcp", ports=ports(22), conn_limit=2,
             sources=("10.0.0.0/8",)),
    )
    test_profile = profile("limits", "drop", "accept", "accept", *rules)
    networks = [routed(name, subnet(f"10.{index}.0.0/24", f"10.{index}.0.1"), policy_profile="limits")
                for index, name in enumerate(("a", "b", "c"), start=1)]
    ruleset = render_ruleset(topology(*networks, profiles=(test_profile,)))
    assert chain(ruleset, "net_b_ingress")[1:] == [
        "tcp dport 22 add @prof_limits_ingress_0_conn4 { oifname . ip saddr ct count 4 } "
        "update @prof_limits_ingress_0_rate4 { oifname . ip saddr limit rate 10/day } return",
        "tcp dport 22 add @prof_limits_ingress_0_conn6 { oifname . ip6 saddr ct count 4 } "
        "update @prof_limits_ingress_0_rate6 { oifname . ip6 saddr limit rate 10/day } return",
        "drop",
    ]
    assert chain(ruleset, "net_c_host")[1:] == [
        "ip saddr 10.0.0.0/8 tcp dport 22 add @prof_limits_host_1_conn4 { iifname . ip saddr ct count 2 } "
        "reject with icmp port-unreachable",
    ]
    # Three networks share each set: room for 65535 sources each. A day's 10 packets refill
    # a burst of 5 in 12 hours, after which forgetting an idle source changes nothing.
    assert chain(ruleset, "prof_limits_ingress_0_rate4") == [
        "type ifname . ipv4_addr", "size 196605", "flags dynamic,timeout", "timeout 12h"]
    assert chain(ruleset, "prof_limits_ingress_0_conn6") == ["type ifname . ipv6_addr", "size 196605",
                                                             "flags dynamic"]
    assert chain(ruleset, "prof_limits_host_1_conn4") == ["type ifname . ipv4_addr", "size 196605",
                                                          "flags dynamic"]
    assert "prof_limits_host_1_conn6" not in ruleset  # its sources are IPv4 only


def test_dynamic_set_size_is_capped() -> None:
    rule = Rule(direction="host", action="accept", conn_limit=1)
    test_profile = profile("cap", "accept", "accept", "drop", rule)
    networks = [routed(f"n{index}", subnet(f"10.{index}.0.0/24", f"10.{index}.0.1"), policy_profile="cap")
                for index in range(20)]
    ruleset = render_ruleset(topology(*networks, profiles=(test_profile,)))
    assert chain(ruleset, "prof_cap_host_0_conn4")[1] == "size 1048576"


@pytest.mark.parametrize(("limit", "timeout"), [
    (RateLimit(rate=1000, per="second"), "1m"),
    (RateLimit(rate=6, per="minute", burst=3), "1m"),
    (RateLimit(rate=1, per="minute", burst=90), "1h30m"),
    (RateLimit(rate=2, per="day", burst=5), "2d12h"),
])
def test_meter_timeout_outlasts_a_bucket_refill(limit: RateLimit, timeout: str) -> None:
    per_source = dataclasses.replace(limit, per_source=True)
    ruleset = one_network(Rule(direction="host", action="accept", rate_limit=per_source))
    assert chain(ruleset, "prof_p_host_0_rate4")[3] == f"timeout {timeout}"


def test_log_counter_comment() -> None:
    ruleset = one_network(
        Rule(direction="ingress", action="drop", protocol="tcp", ports=ports(23), log=True, counter=True,
             comment="no telnet"),
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(22), log=True,
             log_prefix="ssh in: "),
    )
    assert chain(ruleset, "net_n_ingress")[1:] == [
        'tcp dport 23 counter log prefix "gw n ingress drop: " drop comment "no telnet"',
        'tcp dport 22 log prefix "ssh in: " return',
    ]


# -- management -----------------------------------------------------------------------------


def test_management_guard_merges_sources_and_ports() -> None:
    management = Management(allow_from=("192.0.2.0/25", "192.0.2.128/25", "2001:db8::/48"),
                            ports=ports(2222, 22, (8006, 8007), 8008))
    ruleset = render_ruleset(dataclasses.replace(original_example(), management=management),
                             ["192.0.2.77", "::ffff:198.51.100.4", "fe80::1%br0", "2001:db8::1/64"])
    rules = chain(ruleset, "input")
    assert rules[4:6] == ["ip saddr @mgmt4 tcp dport { 22, 2222, 8006-8008 } accept",
                          "ip6 saddr @mgmt6 tcp dport { 22, 2222, 8006-8008 } accept"]
    assert chain(ruleset, "mgmt4")[2:] == ["elements = { 192.0.2.0/24,", "198.51.100.4 }"]
    assert chain(ruleset, "mgmt6")[2:] == ["elements = { 2001:db8::/48,", "fe80::1 }"]


def test_management_not_enforced_renders_no_guard() -> None:
    forced = dataclasses.replace(original_example(), management=Management(allow_from=("192.0.2.0/24",),
                                                                           enforce=False))
    ruleset = render_ruleset(forced, ["203.0.113.5"])
    assert "mgmt" not in ruleset
    assert chain(ruleset, "input")[4] == "iifname . meta l4proto . th dport @host_services accept"


def test_invalid_extra_management_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        render_ruleset(original_example(), ["192.0.2.1", "not-an-ip", "", None, "10.0.0.0/33"])
    assert caught.value.issues == [
        Issue("extra_management[1]", "'not-an-ip' is not an IP address or CIDR"),
        Issue("extra_management[2]", "'' is not an IP address or CIDR"),
        Issue("extra_management[3]", "None is not an IP address or CIDR"),
        Issue("extra_management[4]", "'10.0.0.0/33' is not an IP address or CIDR"),
    ]
    with pytest.raises(ValidationError, match=r"^extra_management: expected a list of addresses, got 5$"):
        render_ruleset(original_example(), 5)  # type: ignore[arg-type]


def test_extra_management_may_be_one_string() -> None:
    assert render_ruleset(original_example(), "203.0.113.5") == golden_ruleset("original_example")


# -- NAT ------------------------------------------------------------------------------------


def test_forwards_maps_hairpin_and_masquerade() -> None:
    ruleset = render_ruleset(dual_stack())
    assert chain(ruleset, "prerouting") == [
        "type nat hook prerouting priority dstnat; policy accept;",
        "iifname . ip daddr . meta l4proto . th dport != @nohairpin4_addr "
        "dnat ip to ip daddr . meta l4proto . th dport map @fwd4_addr",
        "fib daddr type local iifname . meta l4proto . th dport != @nohairpin4 "
        "dnat ip to meta l4proto . th dport map @fwd4",
        "iifname . ip6 daddr . meta l4proto . th dport != @nohairpin6_addr "
        "dnat ip6 to ip6 daddr . meta l4proto . th dport map @fwd6_addr",
        "fib daddr type local dnat ip6 to meta l4proto . th dport map @fwd6",
    ]
    assert chain(ruleset, "output") == [
        "type nat hook output priority -100; policy accept;",
        "ip daddr != 127.0.0.0/8 dnat ip to ip daddr . meta l4proto . th dport map @fwd4_addr",
        "fib daddr type local ip daddr != 127.0.0.0/8 dnat ip to meta l4proto . th dport map @fwd4",
        "ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @fwd6_addr",
        "fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @fwd6",
    ]
    # A range maps port by port; sorted by protocol then port.
    assert chain(ruleset, "fwd4")[1:] == [
        "elements = { sctp . 9000 : 10.41.0.5 . 9000,",
        "tcp . 6000 : 10.40.0.11 . 5000,",
        "tcp . 6001 : 10.40.0.11 . 5001,",
        "tcp . 6002 : 10.40.0.11 . 5002,",
        "tcp . 6003 : 10.40.0.11 . 5003,",
        "tcp . 8080 : 10.40.0.10 . 80,",
        "udp . 5353 : 10.40.0.12 . 53 }",
    ]
    assert chain(ruleset, "nohairpin4")[1:] == [
        'elements = { "br-lab" . tcp . 6000,', '"br-lab" . tcp . 6001,', '"br-lab" . tcp . 6002,',
        '"br-lab" . tcp . 6003 }',
    ]
    assert chain(ruleset, "hairpin4")[2:] == [
        "elements = { 10.40.0.0/24 . 10.40.0.10,", "10.40.0.0/24 . 10.40.0.12,", "10.41.0.0/24 . 10.41.0.5 }",
    ]
    assert chain(ruleset, "postrouting") == [
        "type nat hook postrouting priority srcnat; policy accept;",
        "ct status dnat ip saddr . ip daddr @hairpin4 masquerade",
        "ip saddr . oifname @masq4 masquerade",
        "ct status dnat ip6 saddr . ip6 daddr @hairpin6 masquerade",
        "ip6 saddr . oifname @masq6 masquerade",
    ]
    assert chain(ruleset, "masq6")[2:] == ['elements = { 2001:db8:40::/64 . "enp6s0" }']


def test_no_nat66_without_masq_out() -> None:
    network = routed("v6", subnet("10.7.0.0/24", "10.7.0.1"), subnet("2001:db8:7::/64", "2001:db8:7::1"),
                     forwards=(forward(None, 80, "10.7.0.5", 80, hairpin=False),))
    ruleset = render_ruleset(topology(network))
    assert "masq" not in ruleset and "hairpin6" not in ruleset and "fwd6" not in ruleset
    assert "postrouting" not in ruleset  # hairpin off, no masquerade: nothing to rewrite on the way out


def test_duplicate_public_port_is_refused() -> None:
    first = routed("a", subnet("10.1.0.0/24", "10.1.0.1"),
                   forwards=(forward(None, (8000, 8010), "10.1.0.5", (8000, 8010)),))
    second = routed("b", subnet("10.2.0.0/24", "10.2.0.1"), forwards=(forward(None, 8005, "10.2.0.5", 22),))
    with pytest.raises(RenderError) as caught:
        render_ruleset(topology(first, second))
    assert str(caught.value) == ("networks.b.forwards[0]: any address port 8005/tcp is already forwarded by "
                                 "networks.a.forwards[0]")


def test_same_port_on_two_public_addresses_and_protocols_is_fine() -> None:
    network = routed("a", subnet("10.1.0.0/24", "10.1.0.1"), forwards=(
        forward("192.0.2.1", 80, "10.1.0.5", 80), forward("192.0.2.2", 80, "10.1.0.6", 80),
        forward(None, 80, "10.1.0.7", 80, protocol="udp")))
    ruleset = render_ruleset(topology(network))
    assert chain(ruleset, "fwd4_addr")[1:] == ["elements = { 192.0.2.1 . tcp . 80 : 10.1.0.5 . 80,",
                                               "192.0.2.2 . tcp . 80 : 10.1.0.6 . 80 }"]


# -- defensive checks -----------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"iface": 'br"x'}, "networks.n.iface: interface name 'br\"x' cannot be rendered safely"),
    ({"iface": "eth*"}, "networks.n.iface: interface name 'eth*' cannot be rendered safely"),
    ({"iface": "a b"}, "networks.n.iface: interface name 'a b' cannot be rendered safely"),
    ({"iface": "eth0\n"}, "networks.n.iface: interface name 'eth0\\n' cannot be rendered safely"),
    ({"iface": "sixteen-chars-xx"}, "networks.n.iface: interface name 'sixteen-chars-xx' cannot be rendered safely"),
    ({"masq_out": "up$link"}, "networks.n.masq_out: interface name 'up$link' cannot be rendered safely"),
    ({"name": "n; drop"}, "networks: name 'n; drop' cannot be used in nft identifiers"),
    ({"policy_profile": "missing"}, "networks.n.policy_profile: profile 'missing' is not defined"),
])
def test_unsafe_network_fields_raise_render_error(change: dict, message: str) -> None:
    network = dataclasses.replace(routed("n", subnet("10.9.0.0/24", "10.9.0.1")), **change)
    with pytest.raises(RenderError) as caught:
        render_ruleset(topology(network))
    assert str(caught.value) == message


@pytest.mark.parametrize(("rule", "message"), [
    (Rule(direction="host", action="accept", comment='x" drop'),
     "profile p: rules[0].comment: string 'x\" drop' cannot be rendered safely (printable, at most 128 bytes, "
     "none of \")"),
    (Rule(direction="host", action="accept", comment="x" * 129),
     f"profile p: rules[0].comment: string '{'x' * 129}' cannot be rendered safely (printable, at most 128 bytes, "
     "none of \")"),
    (Rule(direction="host", action="accept", log=True, log_prefix="cost$x"),
     "profile p: rules[0].log_prefix: string 'cost$x' cannot be rendered safely (printable, at most 127 bytes, "
     "none of \" $)"),
    (Rule(direction="host", action="accept", comment="line\nbreak"),
     "profile p: rules[0].comment: string 'line\\nbreak' cannot be rendered safely (printable, at most 128 bytes, "
     "none of \")"),
    (Rule(direction="host", action="allow"), "profile p: rules[0].action: 'allow' is not one of accept, drop, reject"),
    (Rule(direction="host", action="accept", protocol="gre"),
     "profile p: rules[0].protocol: 'gre' is not one of tcp, udp, sctp, icmp, icmpv6"),
    (Rule(direction="host", action="accept", ports=ports(22)),
     "profile p: rules[0].ports: ports need protocol tcp, udp or sctp, not None"),
    (Rule(direction="host", action="accept", protocol="tcp", ports=ports(70000)),
     "profile p: rules[0].ports: port 70000 is not an integer in 1-65535"),
    (Rule(direction="host", action="accept", sources=("10.0.0.0 drop",)),
     "profile p: rules[0].sources[0]: '10.0.0.0 drop' is not a CIDR"),
    (Rule(direction="host", action="accept", conn_limit=True),
     "profile p: rules[0].conn_limit: True is not a positive integer"),
    (Rule(direction="host", action="accept", rate_limit=RateLimit(rate=0, per="second")),
     "profile p: rules[0].rate_limit.rate: 0 is not a positive integer"),
    (Rule(direction="host", action="accept", rate_limit=RateLimit(rate=1, per="week")),
     "profile p: rules[0].rate_limit.per: 'week' is not one of second, minute, hour, day"),
    (Rule(direction="host", action="accept", time=TimeWindow(hours=("8:00", "18:00"))),
     "profile p: rules[0].time.hours[0]: time '8:00' is not HH:MM or HH:MM:SS"),
    (Rule(direction="host", action="accept", time=TimeWindow(hours=("08:00", "18:00\n"))),
     "profile p: rules[0].time.hours[1]: time '18:00\\n' is not HH:MM or HH:MM:SS"),
    (Rule(direction="host", action="accept", time=TimeWindow(hours=("08:00", "08:00"))),
     "profile p: rules[0].time.hours: window 08:00-08:00 is empty"),
    (Rule(direction="host", action="accept", time=TimeWindow(days=("Funday",))),
     "profile p: rules[0].time.days[0]: 'Funday' is not one of Monday, Tuesday, Wednesday, Thursday, Friday, "
     "Saturday, Sunday"),
    (Rule(direction="sideways", action="accept"),
     "profile p: rules[0].direction: 'sideways' is not one of ingress, egress, host"),
])
def test_unsafe_rule_fields_raise_render_error(rule: Rule, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        one_network(rule)
    assert str(caught.value).startswith(message)


def test_render_error_for_a_non_topology() -> None:
    with pytest.raises(RenderError, match=r"^expected a Topology, got dict$"):
        render_ruleset({"networks": {}})  # type: ignore[arg-type]


def test_forward_with_mismatched_sizes_or_families() -> None:
    bad_size = dataclasses.replace(forward(None, (80, 81), "10.1.0.5", (80, 81)), dst_port=ports((80, 82))[0])
    network = routed("a", subnet("10.1.0.0/24", "10.1.0.1"), forwards=(bad_size,))
    with pytest.raises(RenderError, match=r"^networks\.a\.forwards\[0\]: public ports 80-81 and destination ports "
                                          r"80-82 differ in size$"):
        render_ruleset(topology(network))
    mixed = dataclasses.replace(forward("2001:db8::1", 80, "10.1.0.5", 80), family=4)
    with pytest.raises(RenderError, match=r"^networks\.a\.forwards\[0\]: addresses 2001:db8::1 and 10\.1\.0\.5 are "
                                          r"not both IPv4$"):
        render_ruleset(topology(dataclasses.replace(network, forwards=(mixed,))))
    injected = dataclasses.replace(forward(None, 80, "10.1.0.5", 80), dst_ip="10.1.0.5 . 22 }")
    with pytest.raises(RenderError, match=r"^networks\.a\.forwards\[0\]\.dst_ip: '10\.1\.0\.5 \. 22 }' is not an IP "
                                          r"address$"):
        render_ruleset(topology(dataclasses.replace(network, forwards=(injected,))))


def test_two_networks_on_one_interface_are_refused() -> None:
    first = routed("a", subnet("10.1.0.0/24", "10.1.0.1"), iface="br0")
    second = routed("b", subnet("10.2.0.0/24", "10.2.0.1"), iface="br0")
    with pytest.raises(RenderError, match=r"^networks\.b\.iface: interface 'br0' is also used by network 'a'$"):
        render_ruleset(topology(first, second))


def test_missing_netaddr_is_named_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NETADDR, "_module", None)
    monkeypatch.setattr(NETADDR, "error", "ModuleNotFoundError: No module named 'netaddr'")
    with pytest.raises(MissingDependencyError, match=r"^the Python library netaddr \(python3-netaddr or pip install netaddr\) "
                                                     r"is required to render the nft ruleset$"):
        render_ruleset(empty())


# -- scripts --------------------------------------------------------------------------------


def test_replace_script_creates_then_deletes_then_declares() -> None:
    ruleset = golden_ruleset("empty")
    assert render_replace_script(ruleset) == "add table inet ghostwarden\ndelete table inet ghostwarden\n" + ruleset
    assert render_replace_script(ruleset.rstrip("\n")) == render_replace_script(ruleset)
    with pytest.raises(RenderError, match=r"^not a ruleset of table inet ghostwarden: 'table ip other \{ \}'$"):
        render_replace_script("table ip other { }")


def test_delete_script() -> None:
    assert render_delete_script() == "add table inet ghostwarden\ndelete table inet ghostwarden\n"


# -- normalisation --------------------------------------------------------------------------

LISTED = """table inet ghostwarden { # handle 12
\tcomment "managed by ghostwarden.core, replaced as a whole on every apply"
\tset prof_p_host_0_conn4 { # handle 3
\t\ttype ifname . ipv4_addr
\t\tsize 65535
\t\tflags dynamic
\t\telements = { "br-n" . 10.9.0.7 ct count 1,
\t\t\t     "br-n" . 10.9.0.8 ct count 2 }
\t}

\tmap fwd4 { # handle 4
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t\telements = { udp . 53 : 10.9.0.3 . 53, tcp . 22 : 10.9.0.2 . 22,
\t\t\t     tcp . 80 : 10.9.0.2 . 80 }
\t}

\tchain net_n_host { # handle 5
\t\tcomment "network n, profile p, host"
\t\tudp dport { 123, 53 } counter packets 12 bytes 3456 return # handle 6
\t\tmeta hour != "04:59:59"-"00:30" limit rate 5/second burst 5 packets return # handle 7
\t\tdrop # handle 8
\t}
}
"""

RENDERED = """table inet ghostwarden {
\tcomment "managed by ghostwarden.core, replaced as a whole on every apply"
\tmap fwd4 {
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t\telements = { tcp . 22 : 10.9.0.2 . 22,
\t\t\t     tcp . 80 : 10.9.0.2 . 80,
\t\t\t     udp . 53 : 10.9.0.3 . 53 }
\t}

\tset prof_p_host_0_conn4 {
\t\ttype ifname . ipv4_addr
\t\tsize 65535
\t\tflags dynamic
\t}

\tchain net_n_host {
\t\tcomment "network n, profile p, host"
\t\tudp dport { 53, 123 } counter return
\t\tmeta hour "00:30"-"04:59:59" limit rate 5/second return
\t\tdrop
\t}
}
"""


def test_normalise_equates_a_rendering_and_its_listing() -> None:
    assert normalise_ruleset(LISTED) == normalise_ruleset(RENDERED) == """table inet ghostwarden {
\tcomment "managed by ghostwarden.core, replaced as a whole on every apply"
\tchain net_n_host {
\t\tcomment "network n, profile p, host"
\t\tudp dport { 123, 53 } counter return
\t\tmeta hour [00:30,05:00) limit rate 5/second return
\t\tdrop
\t}
\tmap fwd4 {
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t\telements = { tcp . 22 : 10.9.0.2 . 22, tcp . 80 : 10.9.0.2 . 80, udp . 53 : 10.9.0.3 . 53 }
\t}
\tset prof_p_host_0_conn4 {
\t\ttype ifname . ipv4_addr
\t\tsize 65535
\t\tflags dynamic
\t}
}
"""


def test_normalise_keeps_rule_order_and_sees_real_changes() -> None:
    swapped = RENDERED.replace("\t\tudp dport { 53, 123 } counter return\n\t\tmeta hour \"00:30\"-\"04:59:59\" limit "
                               "rate 5/second return\n",
                               "\t\tmeta hour \"00:30\"-\"04:59:59\" limit rate 5/second return\n\t\tudp dport "
                               "{ 53, 123 } counter return\n")
    assert swapped != RENDERED
    assert normalise_ruleset(swapped) != normalise_ruleset(RENDERED)
    changed_element = RENDERED.replace("tcp . 80 : 10.9.0.2 . 80", "tcp . 80 : 10.9.0.2 . 8080")
    assert normalise_ruleset(changed_element) != normalise_ruleset(RENDERED)
    # Elements of a non-dynamic set are state we own: a listed extra element is a difference.
    extra = LISTED.replace("tcp . 80 : 10.9.0.2 . 80 }", "tcp . 80 : 10.9.0.2 . 80, tcp . 81 : 10.9.0.2 . 81 }")
    assert normalise_ruleset(extra) != normalise_ruleset(RENDERED)


@pytest.mark.parametrize(("listed", "window"), [
    # One window as nft 1.0.6 lists it after loading in various time zones (observed).
    ('meta hour "00:30"-"04:59:59"', "[00:30,05:00)"),  # UTC: as rendered
    ('meta hour != "04:59:59"-"00:30"', "[00:30,05:00)"),  # Europe/Berlin: wraps in UTC, listed negated, swapped
    ('meta hour "08:00"-"17:59:59"', "[08:00,18:00)"),
    ('meta hour "1193044:28:15"-"06:00"', "[22:00,06:00)"),  # New York: a negative start printed unsigned
])
def test_normalise_hour_windows(listed: str, window: str) -> None:
    assert normalise_ruleset(f"chain c {{\n{listed} return\n}}\n") == f"chain c {{\n\tmeta hour {window} return\n}}\n"


def test_normalise_wrapping_windows_agree() -> None:
    rendered = normalise_ruleset('chain c {\nmeta hour != "06:00"-"21:59:59" return\n}\n')
    # America/New_York lists the same rule with its ends swapped and not negated.
    listed = normalise_ruleset('chain c {\nmeta hour "21:59:59"-"06:00" return\n}\n')
    assert rendered == listed == "chain c {\n\tmeta hour [22:00,06:00) return\n}\n"


def test_normalise_is_idempotent() -> None:
    once = normalise_ruleset(LISTED)
    assert normalise_ruleset(once) == once


def test_normalise_ignores_braces_inside_strings() -> None:
    text = 'chain c {\nmeta l4proto tcp return comment "a {b, c"\ndrop\n}\n'
    assert normalise_ruleset(text) == 'chain c {\n\tmeta l4proto tcp return comment "a {b, c"\n\tdrop\n}\n'
