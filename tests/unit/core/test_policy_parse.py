# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsing and normalising valid profiles, both formats, and profile_to_dict."""

from __future__ import annotations

from collections import OrderedDict

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange, Profile, RateLimit, Rule, TimeWindow
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import parse_profile, profile_to_dict


def parse(data: object, name: str = "p") -> Profile:
    issues: list = []
    profile = parse_profile(name, data, "policies.p", issues)
    assert issues == []
    assert profile is not None
    return profile


def test_empty_profile_accepts_everything() -> None:
    assert parse({}) == Profile(name="p", description="", ingress_action="accept", egress_action="accept",
                                host_action="accept")


def test_default_action_and_per_direction_overrides() -> None:
    profile = parse({"description": "web", "default_action": "drop", "egress_action": "accept", "host_action": "reject"})
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "reject")
    assert profile.description == "web"


def test_rule_defaults() -> None:
    assert parse({"rules": [{}]}).rules == (Rule(direction="ingress", action="accept"),)


def test_null_means_absent() -> None:
    profile = parse({
        "name": None, "description": None, "default_action": None, "rules": [
            {key: None for key in ("direction", "action", "protocol", "ports", "sources", "destinations",
                                   "rate_limit", "conn_limit", "log", "log_prefix", "counter", "time", "comment")},
        ],
    })
    assert profile == Profile(name="p", description="", ingress_action="accept", egress_action="accept",
                              host_action="accept", rules=(Rule(direction="ingress", action="accept"),))


def test_ports_are_merged_and_sorted() -> None:
    rule = parse({"rules": [{"protocol": "tcp", "ports": [443, "20-25", 26, 22, "1000-2000", 1500, " 80 - 81 ", "8080"]}]}).rules[0]
    assert rule.ports == (PortRange(20, 26), PortRange(80, 81), PortRange(443, 443), PortRange(1000, 2000),
                          PortRange(8080, 8080))


def test_single_port_and_aliases() -> None:
    rules = parse({"rules": [
        {"protocol": "udp", "port": "5405-5412", "source": "2001:DB8::7", "destination": "2001:DB8::/32"},
        {"protocol": "sctp", "ports": 3868, "sources": ["198.51.100.0/24"], "destinations": ["203.0.113.0/24"]},
    ]}).rules
    assert rules[0].ports == (PortRange(5405, 5412),)
    assert rules[0].sources == ("2001:db8::7/128",)
    assert rules[0].destinations == ("2001:db8::/32",)
    assert rules[1].ports == (PortRange(3868, 3868),)
    assert rules[1].sources == ("198.51.100.0/24",)
    assert rules[1].destinations == ("203.0.113.0/24",)


def test_addresses_are_canonical_merged_and_sorted_ipv4_first() -> None:
    rule = parse({"rules": [{"sources": [
        "2001:db8::/32", "192.0.2.128/25", "10.1.0.0/16", "10.0.0.0/8", "192.0.2.0/25", "2001:db8:1::/48",
    ]}]}).rules[0]
    assert rule.sources == ("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")


def test_equal_sets_in_any_order_give_equal_profiles() -> None:
    first = parse({"rules": [{"protocol": "tcp", "ports": [80, 443], "sources": ["10.0.0.0/8", "fc00::/7"]}]})
    second = parse({"rules": [{"protocol": "tcp", "ports": [443, 80, 80], "sources": ["fc00::/7", "10.0.0.0/8"]}]})
    assert first == second


def test_rate_limit_forms() -> None:
    rules = parse({"rules": [
        {"rate_limit": "10/second"},
        {"rate_limit": " 3 / minute "},
        {"rate_limit": {"rate": 100}},
        {"rate_limit": {"rate": 20, "per": "hour", "burst": 40, "per_source": True}},
    ]}).rules
    assert [rule.rate_limit for rule in rules] == [
        RateLimit(rate=10, per="second"),
        RateLimit(rate=3, per="minute"),
        RateLimit(rate=100, per="second"),
        RateLimit(rate=20, per="hour", burst=40, per_source=True),
    ]


def test_time_window_is_normalised() -> None:
    rules = parse({"rules": [
        {"time": {"hours": "8:05-18:00", "days": ["fri", "MON", "Monday", "wed"]}},
        {"time": {"hours": "22:00-06:00"}},
        {"time": {"days": ["sun", "Sat"]}},
    ]}).rules
    assert [rule.time for rule in rules] == [
        TimeWindow(hours=("08:05", "18:00"), days=("Monday", "Wednesday", "Friday")),
        TimeWindow(hours=("22:00", "06:00")),
        TimeWindow(days=("Saturday", "Sunday")),
    ]


def test_log_prefix_implies_log() -> None:
    rule = parse({"rules": [{"action": "drop", "log_prefix": "gw-drop: ", "counter": True, "comment": "drop + log"}]}).rules[0]
    assert (rule.log, rule.log_prefix, rule.counter, rule.comment) == (True, "gw-drop: ", True, "drop + log")


def test_conn_limit_on_accept() -> None:
    rule = parse({"rules": [{"direction": "host", "protocol": "tcp", "port": 22, "conn_limit": 4}]}).rules[0]
    assert rule.conn_limit == 4


def test_icmp_with_matching_family() -> None:
    rules = parse({"rules": [
        {"protocol": "icmp", "source": "10.0.0.0/8"},
        {"protocol": "icmpv6", "destination": "fe80::/10"},
        {"sources": ["10.0.0.0/8", "2001:db8::/32"], "destinations": ["2001:db8:1::/48"]},
    ]}).rules
    assert [rule.protocol for rule in rules] == ["icmp", "icmpv6", None]


def test_mapping_and_tuple_subclasses_are_accepted() -> None:
    profile = parse(OrderedDict(rules=(OrderedDict(protocol="tcp", ports=(22, "80")),)))
    assert profile.rules == (Rule(direction="ingress", action="accept", protocol="tcp",
                                  ports=(PortRange(22, 22), PortRange(80, 80))),)


def test_name_inside_the_mapping_may_repeat_the_key() -> None:
    assert parse({"name": "web"}, name="web").name == "web"


# --------------------------------------------------------------------------- the original CLI's format


def test_original_defaults_drop_and_leaves_egress_open() -> None:
    profile = parse({"services": [{"protocol": "tcp", "port": 22}]})
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "drop")
    # A service without its own source and no allowed_ingress_cidrs: offered by the gateway only.
    assert profile.rules == (Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),)),)


def test_original_egress_list_restricts_egress() -> None:
    profile = parse({"default_action": "reject", "allowed_egress_cidrs": ["0.0.0.0/0"]})
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("reject", "reject", "reject")
    assert profile.rules == (Rule(direction="egress", action="accept", destinations=("0.0.0.0/0",)),)


def test_original_empty_lists() -> None:
    profile = parse({"default_action": "drop", "allowed_ingress_cidrs": [], "allowed_egress_cidrs": [], "services": []})
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "drop")
    assert profile.rules == ()


def test_original_ingress_cidrs_without_services_allow_any_protocol() -> None:
    profile = parse({"allowed_ingress_cidrs": ["192.168.0.0/16", "10.0.0.0/8"]})
    assert profile.rules == (Rule(direction="ingress", action="accept", sources=("10.0.0.0/8", "192.168.0.0/16")),)


def test_original_services_are_opened_to_allowed_ingress_cidrs_and_to_the_host() -> None:
    profile = parse({
        "default_action": "drop",
        "allowed_ingress_cidrs": ["10.0.0.0/8", "fd00::/8"],
        "services": [
            {"protocol": "tcp", "port": 443},
            {"protocol": "tcp", "port": 22, "source": "10.9.0.0/16"},
            {"protocol": "tcp", "port": "8000-8001"},
            {"protocol": "icmp", "port": 0},
            {"protocol": "icmpv6"},
            {"protocol": "tcp", "port": 443},
        ],
    })
    assert profile.rules == (
        Rule(direction="ingress", action="accept", protocol="tcp",
             ports=(PortRange(443, 443), PortRange(8000, 8001)), sources=("10.0.0.0/8", "fd00::/8")),
        Rule(direction="ingress", action="accept", protocol="tcp", ports=(PortRange(22, 22),), sources=("10.9.0.0/16",)),
        # ICMP only from the IPv4 part of the allowed sources, ICMPv6 only from the IPv6 part.
        Rule(direction="ingress", action="accept", protocol="icmp", sources=("10.0.0.0/8",)),
        Rule(direction="ingress", action="accept", protocol="icmpv6", sources=("fd00::/8",)),
        Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(443, 443), PortRange(8000, 8001))),
        Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),), sources=("10.9.0.0/16",)),
        Rule(direction="host", action="accept", protocol="icmp"),
        Rule(direction="host", action="accept", protocol="icmpv6"),
    )


def test_mixed_formats_put_explicit_rules_first() -> None:
    profile = parse({
        "default_action": "drop",
        "host_action": "reject",
        "rules": [{"direction": "egress", "action": "drop", "protocol": "tcp", "port": 25}],
        "allowed_egress_cidrs": ["0.0.0.0/0", "::/0"],
        "services": [{"protocol": "udp", "port": 123}],
    })
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "drop", "reject")
    assert profile.rules == (
        Rule(direction="egress", action="drop", protocol="tcp", ports=(PortRange(25, 25),)),
        Rule(direction="host", action="accept", protocol="udp", ports=(PortRange(123, 123),)),
        Rule(direction="egress", action="accept", destinations=("0.0.0.0/0", "::/0")),
    )


def test_collection_keys_only_keep_collection_defaults() -> None:
    profile = parse({"default_action": "drop"})
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "drop", "drop")


# --------------------------------------------------------------------------- profile_to_dict


def test_profile_to_dict_writes_every_default() -> None:
    profile = parse({
        "description": "sample",
        "default_action": "drop",
        "rules": [
            {"direction": "host", "protocol": "tcp", "ports": [22, "60000-60050"], "source": "192.0.2.0/24",
             "rate_limit": "10/minute", "conn_limit": 3, "log_prefix": "gw ", "time": {"hours": "8:00-18:00"},
             "comment": "ssh"},
            {"action": "reject", "destination": "2001:db8::/32", "counter": True, "time": {"days": ["Tue"]},
             "rate_limit": {"rate": 1, "per": "day", "burst": 5, "per_source": True}},
        ],
    })
    assert profile_to_dict(profile) == {
        "description": "sample",
        "ingress_action": "drop",
        "egress_action": "drop",
        "host_action": "drop",
        "rules": [
            {
                "direction": "host", "action": "accept", "protocol": "tcp", "ports": [22, "60000-60050"],
                "sources": ["192.0.2.0/24"], "destinations": None,
                "rate_limit": {"rate": 10, "per": "minute", "burst": None, "per_source": False},
                "conn_limit": 3, "log": True, "log_prefix": "gw ", "counter": False,
                "time": {"hours": "08:00-18:00", "days": None}, "comment": "ssh",
            },
            {
                "direction": "ingress", "action": "reject", "protocol": None, "ports": None,
                "sources": None, "destinations": ["2001:db8::/32"],
                "rate_limit": {"rate": 1, "per": "day", "burst": 5, "per_source": True},
                "conn_limit": None, "log": False, "log_prefix": None, "counter": True,
                "time": {"hours": None, "days": ["Tuesday"]}, "comment": None,
            },
        ],
    }
    issues: list = []
    assert parse_profile("p", profile_to_dict(profile), "x", issues) == profile
    assert issues == []


def test_original_profile_round_trips_through_the_collection_format() -> None:
    profile = parse({
        "default_action": "drop",
        "allowed_ingress_cidrs": ["0.0.0.0/0"],
        "allowed_egress_cidrs": ["10.0.0.0/8"],
        "services": [{"protocol": "tcp", "port": 80}, {"protocol": "icmp", "port": 0}],
    })
    issues: list = []
    assert parse_profile("p", profile_to_dict(profile), "x", issues) == profile
    assert issues == []
