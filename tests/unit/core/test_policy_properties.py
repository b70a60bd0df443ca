# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests: no input makes the profile parser raise, and every accepted profile round-trips."""

from __future__ import annotations

import datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import (
    load_profile_text,
    parse_profile,
    profile_blocks_host_port,
    profile_to_dict,
)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True), st.text(max_size=12), st.dates(), st.times(),
)
GARBAGE = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none()), children, max_size=4),
    ),
    max_leaves=20,
)


def pick(*values: object) -> st.SearchStrategy:
    """One of the plausible values, or garbage now and then."""
    return st.one_of(st.sampled_from(values), GARBAGE)


def profiles(choose) -> st.SearchStrategy:
    """Profile mappings whose values come from `choose(*values)`."""
    ports = choose(22, 65535, "80", "60000-60050", "1-65535", [22, "20-25"], [443, 80, "81-90"])
    addresses = choose("10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "fe80::/10", "::/0",
                       ["10.0.0.0/25", "10.0.0.128/25"], ["0.0.0.0/0", "::/0"])
    rules = st.fixed_dictionaries({}, optional={
        "direction": choose("ingress", "egress", "host"),
        "action": choose("accept", "drop", "reject"),
        "protocol": choose("tcp", "udp", "sctp", "icmp", "icmpv6"),
        "ports": ports,
        "source": addresses,
        "destinations": addresses,
        "rate_limit": choose("10/second", {"rate": 5}, {"rate": 1, "per": "day", "burst": 3, "per_source": True}),
        "conn_limit": choose(1, 10),
        "log": choose(True, False),
        "log_prefix": choose("gw-drop: ", "x"),
        "counter": choose(True, False),
        "time": choose({"hours": "08:00-18:00"}, {"hours": "22:00-06:00", "days": ["mon", "Sun"]}, {"days": ["fri"]}),
        "comment": choose("ssh", "a b c"),
    })
    services = st.fixed_dictionaries({}, optional={
        "protocol": choose("tcp", "udp", "icmp", "icmpv6"),
        "port": ports,
        "source": addresses,
    })
    return st.fixed_dictionaries({}, optional={
        "description": choose("text", ""),
        "default_action": choose("accept", "drop", "reject"),
        "ingress_action": choose("accept", "drop"),
        "egress_action": choose("accept", "reject"),
        "host_action": choose("drop", "accept"),
        "rules": st.lists(rules, max_size=4),
        "allowed_ingress_cidrs": st.lists(addresses, max_size=3),
        "allowed_egress_cidrs": st.lists(addresses, max_size=3),
        "services": st.lists(services, max_size=4),
    })


# Invalid values mixed in by hand, then garbage anywhere.
TRICKY = st.fixed_dictionaries({}, optional={
    "rules": st.lists(st.fixed_dictionaries({}, optional={
        "protocol": pick("tcp", "gre"),
        "port": pick(0, 65536, "7300-6800", [], True, "ssh"),
        "source": pick("10.0.0.1/8", "10.1", "10.0.0.0/255.0.0.0", "fe80::1%eth0", []),
        "rate_limit": pick("0/minute", "5/fortnight", {"per": "hour"}),
        "conn_limit": pick(0, True),
        "log_prefix": pick('x"y', "a" * 65, "tab\there", ""),
        "time": pick({"days": ["Funday"]}, {"hours": "08:00-08:00"}, {}),
    }), max_size=3),
    "services": st.lists(st.fixed_dictionaries({}, optional={
        "protocol": pick("http", "icmp"), "port": pick(-1, "echo"), "source": pick("10.0.0.0/33"),
    }), max_size=3),
})
VALID_PROFILES = profiles(lambda *values: st.sampled_from(values))
PROFILES = st.one_of(profiles(pick), TRICKY, VALID_PROFILES)
NAMES = pick("web", "Web", "", "a.b-c_d", 5)


@settings(max_examples=300, deadline=None)
@given(NAMES, st.one_of(GARBAGE, PROFILES))
def test_parse_never_raises_and_reports_every_refusal(name: object, data: object) -> None:
    issues: list = []
    profile = parse_profile(name, data, "policies.p", issues)
    assert all(isinstance(issue, Issue) and issue.path.startswith("policies.p") for issue in issues)
    assert (profile is None) == bool(issues)


@settings(max_examples=300, deadline=None)
# Once found at random: a mixed-family source list on an icmp service must not leak ::/0 into a host rule.
@example({"services": [{"protocol": "icmp", "source": ["0.0.0.0/0", "::/0"]}]}, 1, "tcp", None)
@given(VALID_PROFILES, st.integers(min_value=1, max_value=65535),
       st.sampled_from(["tcp", "udp", "sctp"]), st.sampled_from([None, "10.0.0.5", "10.0.0.0/24", "2001:db8::1"]))
def test_accepted_profiles_round_trip_and_answer_the_guard(data: dict, port: int, protocol: str,
                                                           source: str | None) -> None:
    issues: list = []
    profile = parse_profile("p", data, "policies.p", issues)
    if profile is None:
        return
    as_dict = profile_to_dict(profile)
    again = parse_profile("p", as_dict, "policies.p", issues)
    assert issues == []
    assert again == profile
    assert profile_to_dict(again) == as_dict
    assert profile_blocks_host_port(profile, port, protocol, source) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["toml", "yaml"]))
def test_profile_text_raises_only_validation_errors(text: str, fmt: str) -> None:
    try:
        load_profile_text(text, fmt, source="fuzz")
    except ValidationError as error:
        assert str(error).startswith("fuzz")
        assert "\n" not in str(error)


def test_dates_and_times_from_parsers_are_plain_garbage() -> None:
    issues: list = []
    assert parse_profile("p", {"rules": [{"time": {"hours": datetime.time(8, 0)}}]}, "policies.p", issues) is None
    assert [str(issue) for issue in issues] == [
        "policies.p.rules[0].time.hours: time '08:00:00' is not a time range like 08:00-18:00",
    ]
