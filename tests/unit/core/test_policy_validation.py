# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of user profiles: one bad input per rule, exact field path and message."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import parse_profile


def rule(**fields: object) -> dict:
    """A profile holding one rule."""
    return {"rules": [fields]}


def errors(data: object, name: object = "p") -> list[str]:
    issues: list = []
    assert parse_profile(name, data, "policies.p", issues) is None
    return [str(issue) for issue in issues]


NAME_RULE = "must match ^[a-z0-9][a-z0-9_.-]{0,62}$ (lower-case letters, digits, '_', '.', '-'; at most 63 characters)"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Bad_Name", "string 'Bad_Name'"),
        ("-lead", "string '-lead'"),
        ("", "string ''"),
        ("a" * 64, "string '" + "a" * 37 + "...'"),
        ("web\n", "string 'web\\n'"),
        (7, "integer 7"),
        (None, "null"),
    ],
)
def test_profile_name(name: object, shown: str) -> None:
    assert errors({}, name=name) == [f"policies.p: profile name {shown} {NAME_RULE}"]


def test_longest_name_is_accepted() -> None:
    issues: list = []
    assert parse_profile("a" * 63, {}, "p", issues) is not None
    assert issues == []


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(
        None,
        ['policies.p: expected a mapping of profile settings, got null'],
        id='not-mapping',
    ),
    pytest.param(
        ['x'],
        ['policies.p: expected a mapping of profile settings, got a list'],
        id='list',
    ),
    pytest.param(
        {'colour': 'red'},
        ["policies.p.colour: unknown key 'colour' (expected one of: name, description, default_action, ingress_action, "
         "egress_action, host_action, rules, allowed_ingress_cidrs, allowed_egress_cidrs, services)"],
        id='unknown',
    ),
    pytest.param(
        {'name': 'q'},
        ["policies.p.name: string 'q' differs from the profile's name 'p'"],
        id='name-mismatch',
    ),
    pytest.param(
        {'description': 5},
        ['policies.p.description: description must be a string, got integer 5'],
        id='desc-type',
    ),
    pytest.param(
        {'description': 'say "hi"'},
        ['policies.p.description: description string \'say "hi"\' must be printable text without " or \\'],
        id='desc-chars',
    ),
    pytest.param(
        {'description': 'a\nb'},
        ['policies.p.description: description string \'a\\nb\' must be printable text without " or \\'],
        id='desc-newline',
    ),
    pytest.param(
        {'description': 'x' * 257},
        ["policies.p.description: description string 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is longer than 256 characters"],
        id='desc-long',
    ),
    pytest.param(
        {'default_action': 'allow'},
        ["policies.p.default_action: string 'allow' is not a valid action (expected one of: accept, drop, reject)"],
        id='default-action',
    ),
    pytest.param(
        {'host_action': True},
        ['policies.p.host_action: boolean true is not a valid action (expected one of: accept, drop, reject)'],
        id='host-action',
    ),
    pytest.param(
        {'rules': {'a': 1}},
        ['policies.p.rules: expected a list of rules, got a mapping'],
        id='rules-type',
    ),
    pytest.param(
        {'rules': ['accept']},
        ["policies.p.rules[0]: expected a mapping describing a rule, got string 'accept'"],
        id='rule-type',
    ),
    pytest.param(
        rule(dport=22),
        ["policies.p.rules[0].dport: unknown key 'dport' (expected one of: direction, action, protocol, port, ports, "
         "source, sources, destination, destinations, rate_limit, conn_limit, log, log_prefix, counter, time, comment)"],
        id='rule-unknown',
    ),
    pytest.param(
        rule(direction='inbound'),
        ["policies.p.rules[0].direction: string 'inbound' is not a valid direction (expected one of: ingress, egress, host)"],
        id='direction',
    ),
    pytest.param(
        rule(action='ACCEPT'),
        ["policies.p.rules[0].action: string 'ACCEPT' is not a valid action (expected one of: accept, drop, reject)"],
        id='action',
    ),
    pytest.param(
        rule(protocol='gre'),
        ["policies.p.rules[0].protocol: string 'gre' is not a valid protocol (expected one of: tcp, udp, sctp, icmp, icmpv6)"],
        id='protocol',
    ),
    pytest.param(
        rule(protocol='tcp', port=70000),
        ['policies.p.rules[0].port: port 70000 is out of range 1-65535'],
        id='port-range',
    ),
    pytest.param(
        rule(protocol='tcp', ports=[22, 0]),
        ['policies.p.rules[0].ports[1]: port 0 is out of range 1-65535'],
        id='port-zero',
    ),
    pytest.param(
        rule(protocol='tcp', port='ssh'),
        ["policies.p.rules[0].port: string 'ssh' is not a port or a port range like 60000-60050"],
        id='port-garbage',
    ),
    pytest.param(
        rule(protocol='tcp', port='7300-6800'),
        ['policies.p.rules[0].port: port range 7300-6800 is reversed (write 6800-7300)'],
        id='port-reversed',
    ),
    pytest.param(
        rule(protocol='tcp', port=True),
        ['policies.p.rules[0].port: expected a port or port range or a list of them, got boolean true'],
        id='port-bool',
    ),
    pytest.param(
        rule(protocol='tcp', port=22.0),
        ['policies.p.rules[0].port: expected a port or port range or a list of them, got number 22.0'],
        id='port-float',
    ),
    pytest.param(
        rule(protocol='tcp', ports=[]),
        ['policies.p.rules[0].ports: must not be an empty list (leave the key out to match any)'],
        id='ports-empty',
    ),
    pytest.param(
        rule(port=22),
        ['policies.p.rules[0].port: port 22 needs protocol tcp, udp or sctp (protocol is any)'],
        id='port-any',
    ),
    pytest.param(
        rule(protocol='icmp', ports=[22, '80-81']),
        ['policies.p.rules[0].ports: ports 22, 80-81 need protocol tcp, udp or sctp (protocol is icmp)'],
        id='port-icmp',
    ),
    pytest.param(
        rule(protocol='tcp', port=22, ports=[23]),
        ['policies.p.rules[0].ports: give either port or ports, not both'],
        id='port-both',
    ),
    pytest.param(
        rule(source='10.0.0.256'),
        ["policies.p.rules[0].source: string '10.0.0.256' is not a valid CIDR or IP address"],
        id='source-bad',
    ),
    pytest.param(
        rule(sources=['192.0.2.0/24', '10.1.2.3/8']),
        ['policies.p.rules[0].sources[1]: 10.1.2.3/8 has host bits set; its network address is 10.0.0.0/8'],
        id='source-hostbits',
    ),
    pytest.param(
        rule(source='2001:db8::1/64'),
        ['policies.p.rules[0].source: 2001:db8::1/64 has host bits set; its network address is 2001:db8::/64'],
        id='source-v6-hostbits',
    ),
    pytest.param(
        rule(source=167772160),
        ['policies.p.rules[0].source: expected a CIDR or IP address, got integer 167772160'],
        id='source-type',
    ),
    pytest.param(
        rule(source='10.0.0.0/255.0.0.0'),
        ["policies.p.rules[0].source: string '10.0.0.0/255.0.0.0' is not a valid CIDR or IP address"],
        id='source-netmask',
    ),
    pytest.param(
        rule(source='10.1'),
        ["policies.p.rules[0].source: string '10.1' is not a valid CIDR or IP address"],
        id='source-short',
    ),
    pytest.param(
        rule(source="10.0.0.0/"),
        ["policies.p.rules[0].source: string '10.0.0.0/' is not a valid CIDR or IP address"],
        id='source-empty-prefix',
    ),
    pytest.param(
        rule(source=' 10.0.0.0/8'),
        ["policies.p.rules[0].source: string ' 10.0.0.0/8' is not a valid CIDR or IP address"],
        id='source-space',
    ),
    pytest.param(
        rule(source='fe80::1%eth0'),
        ["policies.p.rules[0].source: string 'fe80::1%eth0' is not a valid CIDR or IP address"],
        id='source-zone',
    ),
    pytest.param(
        rule(destination='example.com'),
        ["policies.p.rules[0].destination: string 'example.com' is not a valid CIDR or IP address"],
        id='dest-bad',
    ),
    pytest.param(
        rule(protocol='icmpv6', source='10.0.0.0/8'),
        ['policies.p.rules[0].protocol: protocol icmpv6 cannot match IPv4 address 10.0.0.0/8'],
        id='icmpv6-v4',
    ),
    pytest.param(
        rule(protocol='icmp', destination='2001:db8::/32'),
        ['policies.p.rules[0].protocol: protocol icmp cannot match IPv6 address 2001:db8::/32'],
        id='icmp-v6',
    ),
    pytest.param(
        rule(source='10.0.0.0/8', destinations=['2001:db8::/32']),
        ['policies.p.rules[0].destinations: destinations 2001:db8::/32 and sources 10.0.0.0/8 are of different address families; the rule could never match'],
        id='families',
    ),
    pytest.param(
        rule(rate_limit='fast'),
        ["policies.p.rules[0].rate_limit: string 'fast' is not a rate like 10/second"],
        id='rate-str',
    ),
    pytest.param(
        rule(rate_limit='10/fortnight'),
        ["policies.p.rules[0].rate_limit: string 'fortnight' is not a valid rate unit (expected one of: second, minute, hour, day)"],
        id='rate-unit',
    ),
    pytest.param(
        rule(rate_limit='0/second'),
        ['policies.p.rules[0].rate_limit: rate 0 is out of range 1-4294967295'],
        id='rate-zero',
    ),
    pytest.param(
        rule(rate_limit={'rate': 1, 'every': 'second'}),
        ["policies.p.rules[0].rate_limit.every: unknown key 'every' (expected one of: rate, per, burst, per_source)"],
        id='rate-dict-unknown',
    ),
    pytest.param(
        rule(rate_limit={'per': 'minute'}),
        ['policies.p.rules[0].rate_limit.rate: rate is required (packets per unit)'],
        id='rate-dict-missing',
    ),
    pytest.param(
        rule(rate_limit={'rate': 1, 'burst': True}),
        ['policies.p.rules[0].rate_limit.burst: burst must be a positive integer, got boolean true'],
        id='rate-dict-burst',
    ),
    pytest.param(
        rule(rate_limit={'rate': 1, 'per': 'week'}),
        ["policies.p.rules[0].rate_limit.per: string 'week' is not a valid rate unit (expected one of: second, minute, hour, day)"],
        id='rate-dict-per',
    ),
    pytest.param(
        rule(rate_limit={'rate': 1, 'per_source': 'yes'}),
        ["policies.p.rules[0].rate_limit.per_source: expected true or false, got string 'yes'"],
        id='rate-dict-persource',
    ),
    pytest.param(
        rule(rate_limit=10),
        ['policies.p.rules[0].rate_limit: expected a rate like 10/second or a mapping, got integer 10'],
        id='rate-type',
    ),
    pytest.param(
        rule(rate_limit={'rate': 4294967296}),
        ['policies.p.rules[0].rate_limit.rate: rate 4294967296 is out of range 1-4294967295'],
        id='rate-big',
    ),
    pytest.param(
        rule(conn_limit=0),
        ['policies.p.rules[0].conn_limit: conn_limit 0 is out of range 1-4294967295'],
        id='conn-zero',
    ),
    pytest.param(
        rule(conn_limit=True),
        ['policies.p.rules[0].conn_limit: conn_limit must be a positive integer, got boolean true'],
        id='conn-bool',
    ),
    pytest.param(
        rule(protocol='icmp', conn_limit=5),
        ['policies.p.rules[0].conn_limit: conn_limit 5 needs protocol tcp, udp, sctp or any, not icmp'],
        id='conn-icmp',
    ),
    pytest.param(
        rule(action='drop', conn_limit=5),
        ['policies.p.rules[0].conn_limit: conn_limit 5 only applies to accept rules (action is drop)'],
        id='conn-drop',
    ),
    pytest.param(
        rule(log='yes'),
        ["policies.p.rules[0].log: expected true or false, got string 'yes'"],
        id='log-type',
    ),
    pytest.param(
        rule(log_prefix="x' drop"),
        ['policies.p.rules[0].log_prefix: log_prefix string "x\' drop" must be non-empty printable ASCII without quotes or backslashes'],
        id='prefix-quote',
    ),
    pytest.param(
        rule(log_prefix='cost 100$ '),
        ["policies.p.rules[0].log_prefix: log_prefix 'cost 100$ ' must not contain '$'"],
        id='prefix-dollar',
    ),
    pytest.param(
        rule(log_prefix='a\\b'),
        ["policies.p.rules[0].log_prefix: log_prefix string 'a\\\\b' must be non-empty printable ASCII without quotes or backslashes"],
        id='prefix-backslash',
    ),
    pytest.param(
        rule(log_prefix='ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp'),
        ["policies.p.rules[0].log_prefix: log_prefix string 'ppppppppppppppppppppppppppppppppppppp...' is longer than 64 characters"],
        id='prefix-long',
    ),
    pytest.param(
        rule(log_prefix=''),
        ["policies.p.rules[0].log_prefix: log_prefix string '' must be non-empty printable ASCII without quotes or backslashes"],
        id='prefix-empty',
    ),
    pytest.param(
        rule(log_prefix=['a']),
        ['policies.p.rules[0].log_prefix: log_prefix must be a string, got a list'],
        id='prefix-type',
    ),
    pytest.param(
        rule(log_prefix='dropé'),
        ["policies.p.rules[0].log_prefix: log_prefix string 'dropé' must be non-empty printable ASCII without quotes or backslashes"],
        id='prefix-unicode',
    ),
    pytest.param(
        rule(log=False, log_prefix='gw '),
        ["policies.p.rules[0].log_prefix: log_prefix 'gw ' needs log: true (log is false)"],
        id='prefix-logfalse',
    ),
    pytest.param(
        rule(counter=1),
        ['policies.p.rules[0].counter: expected true or false, got integer 1'],
        id='counter',
    ),
    pytest.param(
        rule(time='08:00-18:00'),
        ["policies.p.rules[0].time: expected a mapping with hours and/or days, got string '08:00-18:00'"],
        id='time-type',
    ),
    pytest.param(
        rule(time={}),
        ['policies.p.rules[0].time: a time window needs hours, days or both'],
        id='time-empty',
    ),
    pytest.param(
        rule(time={'hours': '08:00-18:00', 'tz': 'UTC'}),
        ["policies.p.rules[0].time.tz: unknown key 'tz' (expected one of: hours, days)"],
        id='time-unknown',
    ),
    pytest.param(
        rule(time={'hours': '8am-6pm'}),
        ["policies.p.rules[0].time.hours: string '8am-6pm' is not a time range like 08:00-18:00"],
        id='hours-format',
    ),
    pytest.param(
        rule(time={'hours': '08:00-24:00'}),
        ["policies.p.rules[0].time.hours: '08:00-24:00' has a time outside 00:00-23:59"],
        id='hours-range',
    ),
    pytest.param(
        rule(time={'hours': '08:60-09:00'}),
        ["policies.p.rules[0].time.hours: '08:60-09:00' has a time outside 00:00-23:59"],
        id='hours-minute',
    ),
    pytest.param(
        rule(time={'hours': '08:00-8:00'}),
        ["policies.p.rules[0].time.hours: '08:00-8:00' starts and ends at the same time"],
        id='hours-equal',
    ),
    pytest.param(
        rule(time={'hours': 1080}),
        ['policies.p.rules[0].time.hours: integer 1080 is not a time range like 08:00-18:00'],
        id='hours-int',
    ),
    pytest.param(
        rule(time={'days': 'Mon'}),
        ["policies.p.rules[0].time.days: expected a list of weekdays, got string 'Mon'"],
        id='days-type',
    ),
    pytest.param(
        rule(time={'days': []}),
        ['policies.p.rules[0].time.days: must not be an empty list (leave the key out to match any day)'],
        id='days-empty',
    ),
    pytest.param(
        rule(time={'days': ['Mon', 'Funday', 3]}),
        [
            "policies.p.rules[0].time.days[1]: string 'Funday' is not a weekday (Monday..Sunday or Mon..Sun)",
            'policies.p.rules[0].time.days[2]: integer 3 is not a weekday (Monday..Sunday or Mon..Sun)',
        ],
        id='days-bad',
    ),
    pytest.param(
        rule(comment='a"; drop; "'),
        ['policies.p.rules[0].comment: comment string \'a"; drop; "\' must be non-empty printable ASCII without quotes or backslashes'],
        id='comment',
    ),
    pytest.param(
        rule(log_prefix="gw\n"),
        ["policies.p.rules[0].log_prefix: log_prefix string 'gw\\n' must be non-empty printable ASCII without quotes or backslashes"],
        id='prefix-trailing-newline',
    ),
    pytest.param(
        rule(comment='a\tb'),
        ["policies.p.rules[0].comment: comment string 'a\\tb' must be non-empty printable ASCII without quotes or backslashes"],
        id='comment-ctrl',
    ),
    pytest.param(
        {'allowed_ingress_cidrs': ['10.0.0.0/8', 'any']},
        ["policies.p.allowed_ingress_cidrs[1]: string 'any' is not a valid CIDR or IP address"],
        id='ing-item',
    ),
    pytest.param(
        {'allowed_egress_cidrs': ['172.16.1.1/12']},
        ['policies.p.allowed_egress_cidrs[0]: 172.16.1.1/12 has host bits set; its network address is 172.16.0.0/12'],
        id='egr-host',
    ),
    pytest.param(
        {'services': {'protocol': 'tcp'}},
        ['policies.p.services: expected a list of services, got a mapping'],
        id='services-type',
    ),
    pytest.param(
        {'services': ['ssh']},
        ["policies.p.services[0]: expected a mapping with protocol, port and source, got string 'ssh'"],
        id='service-type',
    ),
    pytest.param(
        {'services': [{'protocol': 'tcp', 'port': 22, 'dport': 22}]},
        ["policies.p.services[0].dport: unknown key 'dport' (expected one of: protocol, port, source)"],
        id='service-unknown',
    ),
    pytest.param(
        {'services': [{'port': 22}]},
        ['policies.p.services[0].protocol: protocol is required (one of: tcp, udp, sctp, icmp, icmpv6)'],
        id='service-noproto',
    ),
    pytest.param(
        {'services': [{'protocol': 'udp'}]},
        ['policies.p.services[0].port: port is required with protocol udp'],
        id='service-noport',
    ),
    pytest.param(
        {'services': [{'protocol': 'tcp', 'port': 65536}]},
        ['policies.p.services[0].port: port 65536 is out of range 1-65535'],
        id='service-port',
    ),
    pytest.param(
        {'services': [{'protocol': 'icmp', 'port': 'echo'}]},
        ["policies.p.services[0].port: string 'echo' is not a port number 0-65535"],
        id='service-icmp-port',
    ),
    pytest.param(
        {'services': [{'protocol': 'tcp', 'port': 22, 'source': '10.0.0.0/33'}]},
        ["policies.p.services[0].source: string '10.0.0.0/33' is not a valid CIDR or IP address"],
        id='service-source',
    ),
    pytest.param(
        {'services': [{'protocol': 'icmp', 'source': '2001:db8::/32'}]},
        ['policies.p.services[0].source: protocol icmp cannot match IPv6 source 2001:db8::/32'],
        id='service-icmp-v6',
    ),
    pytest.param(
        {'services': [{'protocol': 'http', 'port': 80}]},
        ["policies.p.services[0].protocol: string 'http' is not a valid protocol (expected one of: tcp, udp, sctp, icmp, icmpv6)"],
        id='service-proto',
    ),
]
)
def test_bad_input(data: object, expected: list[str]) -> None:
    assert errors(data) == expected


def test_every_problem_is_reported_in_input_order() -> None:
    assert errors({
        "default_action": "allow",
        "rules": [
            {"protocol": "tcp", "port": 70000},
            {"direction": "sideways", "source": "10.0.0.1/8"},
        ],
        "services": [{"protocol": "tcp"}],
    }) == [
        "policies.p.default_action: string 'allow' is not a valid action (expected one of: accept, drop, reject)",
        "policies.p.rules[0].port: port 70000 is out of range 1-65535",
        "policies.p.rules[1].direction: string 'sideways' is not a valid direction (expected one of: ingress, egress, host)",
        "policies.p.rules[1].source: 10.0.0.1/8 has host bits set; its network address is 10.0.0.0/8",
        "policies.p.services[0].port: port is required with protocol tcp",
    ]


def test_path_without_prefix() -> None:
    issues: list = []
    assert parse_profile("p", {"rules": [{"protocol": "tcp", "port": 0}]}, "", issues) is None
    assert [str(issue) for issue in issues] == ["rules[0].port: port 0 is out of range 1-65535"]


def test_issues_already_in_the_list_are_kept_and_do_not_fail_the_profile() -> None:
    issues: list = ["earlier"]
    assert parse_profile("p", {}, "policies.p", issues) is not None
    assert issues == ["earlier"]
