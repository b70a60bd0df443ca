# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The built-in profiles: contents, round trip, documentation, and the host-port check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    DIRECTIONS,
    PortRange,
    Profile,
    RateLimit,
    Rule,
    TimeWindow,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import (
    BUILTIN_PROFILES,
    parse_profile,
    profile_blocks_host_port,
    profile_to_dict,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "policy-profiles.md"
ICMP_LIMIT = RateLimit(rate=10, per="second", burst=20, per_source=True)
NAMES = ["l2-lan", "proxmox-backup", "proxmox-cluster", "proxmox-dmz", "proxmox-storage", "public-web", "routed-tight"]


def test_names_are_sorted_and_complete() -> None:
    assert list(BUILTIN_PROFILES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_builtin_is_marked_and_named_by_its_key(name: str) -> None:
    profile = BUILTIN_PROFILES[name]
    assert profile.builtin is True
    assert profile.name == name


@pytest.mark.parametrize("name", NAMES)
def test_builtin_round_trips_through_the_user_format(name: str) -> None:
    profile = BUILTIN_PROFILES[name]
    issues: list = []
    parsed = parse_profile(name, profile_to_dict(profile), f"policies.{name}", issues)
    assert issues == []
    assert parsed == dataclasses.replace(profile, builtin=False)
    assert profile_to_dict(parsed) == profile_to_dict(profile)


def test_routed_tight() -> None:
    assert BUILTIN_PROFILES["routed-tight"].rules == (
        Rule(direction="host", action="accept", protocol="icmp", rate_limit=ICMP_LIMIT),
        Rule(direction="host", action="accept", protocol="icmpv6", comment="not limited: neighbour discovery"),
    )
    profile = BUILTIN_PROFILES["routed-tight"]
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "drop")


def test_l2_lan_accepts_everything_and_logs_nothing() -> None:
    profile = BUILTIN_PROFILES["l2-lan"]
    assert (profile.ingress_action, profile.egress_action, profile.host_action, profile.rules) == (
        "accept", "accept", "accept", ())


def test_public_web_ingress() -> None:
    ingress = [rule for rule in BUILTIN_PROFILES["public-web"].rules if rule.direction == "ingress"]
    assert [(rule.protocol, rule.ports) for rule in ingress] == [
        ("tcp", (PortRange(80, 80), PortRange(443, 443))),
        ("udp", (PortRange(443, 443),)),
        ("icmp", ()),
        ("icmpv6", ()),
    ]


def l4_ports(profile: Profile, direction: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for rule in profile.rules:
        if rule.direction == direction and rule.ports:
            assert rule.action == "accept" and not rule.sources and rule.rate_limit is None
            for port_range in rule.ports:
                found.setdefault(rule.protocol, set()).update(range(port_range.first, port_range.last + 1))
    return found


@pytest.mark.parametrize(
    ("name", "tcp", "udp"),
    [
        ("proxmox-cluster", {22, 3128, 8006, *range(5900, 6000), *range(60000, 60051)}, set(range(5405, 5413))),
        ("proxmox-storage", {111, 2049, 3260, 3300, 6789, *range(6800, 7301)}, {111, 2049}),
        ("proxmox-backup", {22, 8007}, set()),
    ],
)
def test_proxmox_services_are_open_into_the_network_and_to_the_host(name: str, tcp: set[int], udp: set[int]) -> None:
    profile = BUILTIN_PROFILES[name]
    expected = {"tcp": tcp, **({"udp": udp} if udp else {})}
    assert l4_ports(profile, "ingress") == expected
    assert l4_ports(profile, "host") == expected
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "drop")


def test_proxmox_dmz() -> None:
    private = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
    log_limit = RateLimit(rate=5, per="minute", burst=10)
    assert BUILTIN_PROFILES["proxmox-dmz"].rules == (
        Rule(direction="ingress", action="drop", rate_limit=log_limit, log=True,
             log_prefix="gw-dmz-ingress-drop: "),
        Rule(direction="egress", action="drop", destinations=private, rate_limit=log_limit, log=True,
             log_prefix="gw-dmz-egress-drop: "),
        Rule(direction="egress", action="drop", destinations=private, counter=True, comment="private ranges"),
        Rule(direction="host", action="accept", protocol="icmp", rate_limit=ICMP_LIMIT),
        Rule(direction="host", action="accept", protocol="icmpv6", comment="not limited: neighbour discovery"),
        Rule(direction="host", action="drop", rate_limit=log_limit, log=True,
             log_prefix="gw-dmz-host-drop: "),
    )


@pytest.mark.parametrize("name", NAMES)
def test_ipv6_neighbour_discovery_to_the_host_is_never_dropped_or_limited(name: str) -> None:
    profile = BUILTIN_PROFILES[name]
    if profile.host_action == "accept" and not profile.rules:
        return
    host_icmpv6 = [rule for rule in profile.rules if rule.direction == "host" and rule.protocol in ("icmpv6", None)]
    assert host_icmpv6[0] == Rule(direction="host", action="accept", protocol="icmpv6",
                                  comment="not limited: neighbour discovery")


@pytest.mark.parametrize(
    ("name", "blocks_ssh", "blocks_api"),
    [
        ("l2-lan", False, False),
        ("proxmox-backup", False, True),
        ("proxmox-cluster", False, False),
        ("proxmox-dmz", True, True),
        ("proxmox-storage", True, True),
        ("public-web", True, True),
        ("routed-tight", True, True),
    ],
)
def test_builtin_blocks_host_ports_22_and_8006(name: str, blocks_ssh: bool, blocks_api: bool) -> None:
    profile = BUILTIN_PROFILES[name]
    assert profile_blocks_host_port(profile, 22) is blocks_ssh
    assert profile_blocks_host_port(profile, 8006) is blocks_api
    assert profile_blocks_host_port(profile, 22, "tcp", "10.33.0.10") is blocks_ssh
    assert profile_blocks_host_port(profile, 8006, source="2001:db8::10") is blocks_api


# --------------------------------------------------------------------------- profile_blocks_host_port


def host_profile(*rules: Rule, host_action: str = "drop") -> Profile:
    return Profile(name="t", description="", ingress_action="accept", egress_action="accept",
                   host_action=host_action, rules=rules)


SSH = (PortRange(22, 22),)


def test_first_match_wins() -> None:
    profile = host_profile(
        Rule(direction="host", action="reject", protocol="tcp", ports=SSH),
        Rule(direction="host", action="accept", protocol="tcp", ports=SSH),
        host_action="accept",
    )
    assert profile_blocks_host_port(profile, 22) is True
    assert profile_blocks_host_port(profile, 23) is False


def test_only_host_rules_and_the_protocol_count() -> None:
    profile = host_profile(
        Rule(direction="ingress", action="accept", protocol="tcp", ports=SSH),
        Rule(direction="host", action="accept", protocol="udp", ports=SSH),
        Rule(direction="host", action="accept", protocol="sctp"),
    )
    assert profile_blocks_host_port(profile, 22) is True
    assert profile_blocks_host_port(profile, 22, "udp") is False
    assert profile_blocks_host_port(profile, 9, "sctp") is False


def test_port_ranges() -> None:
    profile = host_profile(Rule(direction="host", action="accept", protocol="tcp",
                                ports=(PortRange(20, 22), PortRange(8000, 8010))))
    assert [profile_blocks_host_port(profile, port) for port in (19, 20, 22, 23, 8000, 8010, 8011)] == [
        True, False, False, True, False, False, True]


def test_any_protocol_rule_covers_every_port() -> None:
    assert profile_blocks_host_port(host_profile(Rule(direction="host", action="accept")), 22) is False
    assert profile_blocks_host_port(host_profile(Rule(direction="host", action="drop"), host_action="accept"), 22) is True


def test_source_restricted_accept() -> None:
    profile = host_profile(Rule(direction="host", action="accept", protocol="tcp", ports=SSH,
                                sources=("192.0.2.0/24", "2001:db8::/48")))
    assert profile_blocks_host_port(profile, 22, source="192.0.2.9") is False
    assert profile_blocks_host_port(profile, 22, source="192.0.2.0/25") is False
    assert profile_blocks_host_port(profile, 22, source="2001:db8::5") is False
    assert profile_blocks_host_port(profile, 22, source="198.51.100.1") is True
    # Partly covered, or no source given: not every connection is accepted.
    assert profile_blocks_host_port(profile, 22, source="192.0.0.0/16") is True
    assert profile_blocks_host_port(profile, 22) is True


def test_source_restricted_drop() -> None:
    profile = host_profile(
        Rule(direction="host", action="drop", protocol="tcp", ports=SSH, sources=("10.0.0.66/32",)),
        host_action="accept",
    )
    assert profile_blocks_host_port(profile, 22, source="10.0.0.66") is True
    assert profile_blocks_host_port(profile, 22, source="10.0.0.0/24") is True  # one of its addresses is dropped
    assert profile_blocks_host_port(profile, 22, source="10.0.0.67") is False
    assert profile_blocks_host_port(profile, 22, source="::1") is False
    assert profile_blocks_host_port(profile, 22) is True


@pytest.mark.parametrize(
    "condition",
    [
        {"rate_limit": RateLimit(rate=5, per="minute")},
        {"conn_limit": 3},
        {"time": TimeWindow(hours=("08:00", "18:00"))},
        {"destinations": ("10.33.0.1/32",)},
    ],
    ids=["rate_limit", "conn_limit", "time", "destinations"],
)
def test_conditional_accept_does_not_guarantee_acceptance(condition: dict) -> None:
    conditional = Rule(direction="host", action="accept", protocol="tcp", ports=SSH, **condition)
    assert profile_blocks_host_port(host_profile(conditional), 22) is True
    assert profile_blocks_host_port(host_profile(conditional, host_action="accept"), 22) is False
    # A later unconditional accept still guarantees it.
    assert profile_blocks_host_port(
        host_profile(conditional, Rule(direction="host", action="accept", protocol="tcp", ports=SSH)), 22) is False


@pytest.mark.parametrize(
    "condition",
    [{"rate_limit": RateLimit(rate=5, per="minute")}, {"time": TimeWindow(days=("Sunday",))}],
    ids=["rate_limit", "time"],
)
def test_conditional_drop_blocks_sometimes(condition: dict) -> None:
    profile = host_profile(Rule(direction="host", action="drop", protocol="tcp", ports=SSH, **condition),
                           host_action="accept")
    assert profile_blocks_host_port(profile, 22) is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0,), "port 0 is out of range 1-65535"),
        ((True,), "port True is out of range 1-65535"),
        ((22, "icmp"), "protocol 'icmp' is not one of tcp, udp, sctp"),
        ((22, "tcp", "10.0.0.1/8"), "source '10.0.0.1/8' is not a valid IP address or CIDR"),
        ((22, "tcp", "host.example"), "source 'host.example' is not a valid IP address or CIDR"),
    ],
)
def test_bad_arguments_are_programming_errors(arguments: tuple, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        profile_blocks_host_port(BUILTIN_PROFILES["l2-lan"], *arguments)
    assert str(caught.value) == message


# --------------------------------------------------------------------------- documentation


def describe_traffic(rule: Rule) -> str:
    parts = [rule.protocol or "any protocol"]
    if rule.ports:
        shown = ", ".join(str(port_range) for port_range in rule.ports)
        parts.append(f"port{'s' if len(rule.ports) > 1 or rule.ports[0].size > 1 else ''} {shown}")
    if rule.sources:
        parts.append(f"from {', '.join(rule.sources)}")
    if rule.destinations:
        parts.append(f"to {', '.join(rule.destinations)}")
    if rule.rate_limit is not None:
        limit = rule.rate_limit
        text = f"at most {limit.rate}/{limit.per}{' per source' if limit.per_source else ''}"
        parts.append(text + (f" (burst {limit.burst})" if limit.burst else ""))
    if rule.conn_limit is not None:
        parts.append(f"at most {rule.conn_limit} connections per source")
    if rule.time is not None:
        parts.append(f"during {'-'.join(rule.time.hours or ())} {' '.join(rule.time.days)}".rstrip())
    return " ".join(parts) + (f" ({rule.comment})" if rule.comment else "")


def describe_action(rule: Rule) -> str:
    text = rule.action
    if rule.log:
        text += f", logged with prefix `{rule.log_prefix}`" if rule.log_prefix else ", logged"
    if rule.counter:
        text += ", counted"
    return text


def profile_table(profile: Profile) -> str:
    """The table docs/policy-profiles.md shows for a built-in, made from the data itself."""
    lines = ["| Direction | New connections | Verdict |", "| --- | --- | --- |"]
    for direction in DIRECTIONS:
        for rule in profile.rules:
            if rule.direction == direction:
                lines.append(f"| {direction} | {describe_traffic(rule)} | {describe_action(rule)} |")
        lines.append(f"| {direction} | anything else | {getattr(profile, direction + '_action')} |")
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_documentation_shows_exactly_what_the_builtin_does(name: str) -> None:
    profile = BUILTIN_PROFILES[name]
    section = f"### `{name}`\n\n{profile.description}.\n\n{profile_table(profile)}\n"
    assert section in DOC.read_text(encoding="utf-8")
