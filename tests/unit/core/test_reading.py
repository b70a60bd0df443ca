# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reading vocabulary (``core/_reading``) on its own: paths, value descriptions, key checks,
type tests, the issue collector and the typed getters, each with the exact text it produces."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import (
    Issues,
    Keys,
    Reader,
    describe,
    is_choice,
    is_int,
    join,
    kind,
    show,
    show_repr,
    show_with_kind,
    unknown_keys,
)

KEYS = Keys(("name", "port", "mac"))


def messages(collector: Issues) -> list[str]:
    return [str(issue) for issue in collector.issues]


# -- field paths ------------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "key", "path"), [
    ("networks", "lan", "networks.lan"),
    ("", "networks", "networks"),
    ("a.b", "with-dash_and_9", "a.b.with-dash_and_9"),
    ("zones", "a b", "zones['a b']"),
    ("records", "web.lan", "records['web.lan']"),
    ("interfaces", 1, "interfaces[1]"),
    ("interfaces", True, "interfaces[true]"),
    ("interfaces", None, "interfaces[null]"),
    ("x", "\n", "x['\\n']"),
    ("x", "", "x['']"),
    ("", "a b", "['a b']"),
    ("x", "k" * 64, "x." + "k" * 64),
    ("x", "k" * 65, f"x['{'k' * 65}']"),
])
def test_join_keeps_plain_keys_after_a_dot_and_brackets_the_rest(base: str, key: object, path: str) -> None:
    assert join(base, key) == path


def test_a_joined_path_is_one_line_whatever_the_key() -> None:
    assert "\n" not in join("a", "line\nbreak")


# -- value descriptions -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "shown"), [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (1.5, "1.5"),
    ("x", "'x'"),
    ([1, 2], "[1, 2]"),
    ({"a": 1}, "{'a': 1}"),
    ([1, 2, 3, 4, 5, 6], "[1, 2, 3, 4, ...]"),
    ({"a": 1, "b": 2, "c": 3, "d": 4}, "{'a': 1, 'b': 2, 'c': 3, ...}"),
    ({"a": {"b": {"c": 1}}}, "{'a': {'b': {...}}}"),
])
def test_show(value: object, shown: str) -> None:
    assert show(value) == shown


def test_show_bounds_a_long_string_and_keeps_both_ends() -> None:
    shown = show("a" * 50 + "b" * 50)
    assert len(shown) <= 70
    assert shown.startswith("'aaa") and shown.endswith("bbb'") and "..." in shown


@pytest.mark.parametrize(("value", "width", "shown"), [
    (None, None, "null"),
    (True, 72, "true"),
    ("x", None, "'x'"),
    ([1, 2, 3, 4, 5, 6], None, "[1, 2, 3, 4, 5, 6]"),
    ("a" * 100, None, "'" + "a" * 100 + "'"),
    ("a" * 70, 72, "'" + "a" * 70 + "'"),
    ("a" * 71, 72, "'" + "a" * 68 + "..."),
    (12345, 4, "1..."),
])
def test_show_repr_is_the_whole_repr_unless_a_width_cuts_it(value: object, width: int | None, shown: str) -> None:
    assert show_repr(value, width) == shown
    if width is not None:
        assert len(show_repr(value, width)) <= width


@pytest.mark.parametrize(("value", "what"), [
    (None, "null"),
    (False, "a boolean"),
    (3, "an integer"),
    (1.5, "a number"),
    ("x", "a string"),
    ({}, "a mapping"),
    (OrderedDict(), "a mapping"),
    ([], "a list"),
    ((), "a list"),
    (set(), "a set"),
    (b"x", "a bytes"),
    (MappingProxyType({}), "a mappingproxy"),
])
def test_kind(value: object, what: str) -> None:
    assert kind(value) == what


def test_show_with_kind() -> None:
    assert show_with_kind("x") == "'x' (a string)"
    assert show_with_kind(None) == "null (null)"


@pytest.mark.parametrize(("value", "described"), [
    (None, "null"),
    (True, "boolean true"),
    (7, "integer 7"),
    (0.5, "number 0.5"),
    ("tcp", "string 'tcp'"),
    ("x" * 41, "string '" + "x" * 37 + "...'"),
    ({"a": 1}, "a mapping"),
    (MappingProxyType({}), "a mapping"),
    ([1], "a list"),
    ({1}, "set '{1}'"),
])
def test_describe(value: object, described: str) -> None:
    assert describe(value) == described


# -- type tests -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (0, True), (-5, True), (2**70, True), (True, False), (False, False), (1.0, False), ("1", False), (None, False),
])
def test_is_int_refuses_booleans(value: object, expected: bool) -> None:
    assert is_int(value) is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("tcp", True), ("TCP", False), ("", False), (None, False), (["tcp"], False), (1, False),
])
def test_is_choice_wants_one_of_the_strings(value: object, expected: bool) -> None:
    assert is_choice(value, ("tcp", "udp")) is expected


# -- key checks -------------------------------------------------------------------------------

def test_keys_keep_their_order_for_messages() -> None:
    assert KEYS.names == ("name", "port", "mac")
    assert KEYS.allowed == frozenset({"name", "port", "mac"})
    assert KEYS.listed == "name, port, mac"
    assert repr(KEYS) == "Keys(('name', 'port', 'mac'))"


def test_unknown_keys_come_in_the_mappings_order() -> None:
    assert unknown_keys({"name": 1, "port": 2}, KEYS) == ()
    assert unknown_keys({}, KEYS) == ()
    assert unknown_keys({"zz": 1, "name": 2, 3: 4, "a b": 5}, KEYS) == ["zz", 3, "a b"]
    assert unknown_keys(MappingProxyType({"x": 1}), KEYS) == ["x"]


# -- the collector ----------------------------------------------------------------------------

def test_issues_collect_in_order_and_mark_what_is_new() -> None:
    issues = Issues()
    start = issues.mark()
    assert not issues.failed_since(start)
    issues.fail("a", "first")
    issues.fail("", "no path")
    assert issues.failed_since(start)
    later = issues.mark()
    assert not issues.failed_since(later)
    assert issues.issues == [Issue("a", "first"), Issue("", "no path")]
    assert messages(issues) == ["a: first", "no path"]


def test_issues_append_to_a_list_the_caller_keeps() -> None:
    kept = [Issue("before", "x")]
    issues = Issues(kept)
    issues.fail("after", "y")
    assert kept == [Issue("before", "x"), Issue("after", "y")]
    assert issues.issues is kept


def test_raise_if_any_raises_every_issue_at_once() -> None:
    issues = Issues()
    issues.raise_if_any()  # nothing found, nothing raised
    issues.fail("a", "one")
    issues.fail("b", "two")
    with pytest.raises(ValidationError) as caught:
        issues.raise_if_any()
    assert caught.value.issues == [Issue("a", "one"), Issue("b", "two")]
    assert str(caught.value) == "a: one (and 1 more error)"


def test_expected_shows_the_value_with_its_kind_or_as_the_reader_asks() -> None:
    standard = Issues()
    standard.expected("port", "an integer", "x")
    described = Issues(got=describe)
    described.expected("port", "an integer", "x")
    assert messages(standard) == ["port: expected an integer, got 'x' (a string)"]
    assert messages(described) == ["port: expected an integer, got string 'x'"]


# -- the typed getters ------------------------------------------------------------------------

def test_mapping() -> None:
    reader = Reader()
    data = {"a": 1}
    assert reader.mapping(data, "top") is data
    assert reader.mapping([1], "top") is None
    assert reader.mapping(None, "top", "a mapping (the topology)") is None
    assert messages(reader) == ["top: expected a mapping, got [1] (a list)",
                                "top: expected a mapping (the topology), got null (null)"]


def test_check_keys_reports_each_unknown_key_at_its_path() -> None:
    reader = Reader()
    reader.check_keys({"name": 1, "port": 2}, KEYS, "clients[0]")
    assert reader.issues == []
    reader.check_keys({"nmae": 1, "name": 2, 7: 3}, KEYS, "clients[0]")
    assert messages(reader) == [
        "clients[0].nmae: unknown key 'nmae' (known keys: name, port, mac)",
        "clients[0][7]: unknown key 7 (known keys: name, port, mac)",
    ]


def test_required_gives_the_value_or_reports_it_missing() -> None:
    reader = Reader()
    assert reader.required({"vni": 5}, "vni", "networks.x") == 5
    assert reader.required({"vni": None}, "vni", "networks.x") is None
    assert reader.required({}, "dst_ip", "f[0]", "required (the destination host)") is None
    assert reader.required({"flag": False}, "flag", "p") is False  # only null and missing are missing
    assert messages(reader) == ["networks.x.vni: required", "f[0].dst_ip: required (the destination host)"]


def test_required_with_a_reader_of_the_value() -> None:
    reader = Reader()
    seen = []

    def port(value: object, path: str) -> int | None:
        seen.append((value, path))
        return reader.check_int(value, path, 1, 65535, "port")

    assert reader.required({"port": 22}, "port", "f[0]", "required (the port)", port) == 22
    assert reader.required({"port": 0}, "port", "f[0]", "required (the port)", port) is None
    assert reader.required({}, "port", "f[1]", "required (the port)", port) is None
    assert seen == [(22, "f[0].port"), (0, "f[0].port")]  # a missing value is not read
    assert messages(reader) == ["f[0].port: port 0 is out of range 1-65535", "f[1].port: required (the port)"]


def test_get_bool() -> None:
    reader = Reader()
    assert reader.get_bool({}, "stp", "n", False) is False
    assert reader.get_bool({"stp": None}, "stp", "n", True) is True
    assert reader.get_bool({"stp": True}, "stp", "n", False) is True
    assert reader.get_bool({"stp": "yes"}, "stp", "n", False) is False
    assert reader.get_bool({"stp": 1}, "stp", "n", True) is True
    assert messages(reader) == ["n.stp: expected a boolean (true or false), got 'yes' (a string)",
                                "n.stp: expected a boolean (true or false), got 1 (an integer)"]


def test_get_int_and_check_int() -> None:
    reader = Reader()
    assert reader.get_int({}, "mtu", "n", 68, 65535, "MTU") is None
    assert reader.get_int({"mtu": 1500}, "mtu", "n", 68, 65535, "MTU") == 1500
    assert reader.get_int({"mtu": 68}, "mtu", "n", 68, 65535, "MTU") == 68
    assert reader.get_int({"mtu": 70000}, "mtu", "n", 68, 65535, "MTU") is None
    assert reader.get_int({"mtu": True}, "mtu", "n", 68, 65535, "MTU") is None
    assert reader.get_int({"mtu": "1500"}, "mtu", "n", 68, 65535, "MTU") is None
    assert reader.check_int(4095, "n.vlan", 1, 4094, "VLAN id") is None
    assert messages(reader) == [
        "n.mtu: MTU 70000 is out of range 68-65535",
        "n.mtu: expected an integer, got true (a boolean)",
        "n.mtu: expected an integer, got '1500' (a string)",
        "n.vlan: VLAN id 4095 is out of range 1-4094",
    ]


def test_get_str() -> None:
    reader = Reader()
    assert reader.get_str({}, "name", "p") is None
    assert reader.get_str({"name": "web"}, "name", "p") == "web"
    assert reader.get_str({"name": 5}, "name", "p") is None
    assert reader.get_str({"name": [5]}, "name", "p", "a host name") is None
    assert messages(reader) == ["p.name: expected a string, got 5 (an integer)",
                                "p.name: expected a host name, got [5] (a list)"]


def test_get_choice() -> None:
    reader = Reader()
    types = ("routed", "bridge")
    assert reader.get_choice({}, "type", "n", types, "network type") is None
    assert reader.get_choice({"type": "bridge"}, "type", "n", types, "network type") == "bridge"
    assert reader.get_choice({"type": "Bridge"}, "type", "n", types, "network type") is None
    assert reader.get_choice({"type": ["bridge"]}, "type", "n", types, "network type") is None
    assert messages(reader) == ["n.type: 'Bridge' is not a network type (routed, bridge)",
                                "n.type: ['bridge'] is not a network type (routed, bridge)"]


def test_get_list() -> None:
    reader = Reader()
    items = [1, 2]
    assert reader.get_list({}, "peers", "n") == []
    assert reader.get_list({"peers": None}, "peers", "n") == []
    got = reader.get_list({"peers": items}, "peers", "n")
    assert got == [1, 2] and got is not items  # the caller may change its list
    assert reader.get_list({"peers": (3,)}, "peers", "n") == [3]
    assert reader.get_list({"peers": "10.0.0.1"}, "peers", "n") == []
    assert messages(reader) == ["n.peers: expected a list, got '10.0.0.1' (a string)"]


def test_get_unique_list_reads_each_item_and_reports_repeats() -> None:
    reader = Reader()

    def zone(value: object, path: str) -> str | None:
        if not isinstance(value, str):
            reader.fail(path, f"{show(value)} is not a zone")
            return None
        return value.lower()

    data = {"zones": ["a.lan", 5, "B.lan", "A.LAN", "b.lan", "c.lan"]}
    assert reader.get_unique_list(data, "zones", "dns", zone, "zone ") == ["a.lan", "b.lan", "c.lan"]
    assert messages(reader) == [
        "dns.zones[1]: 5 is not a zone",
        "dns.zones[3]: zone a.lan is already listed at dns.zones[0]",
        "dns.zones[4]: zone b.lan is already listed at dns.zones[2]",
    ]
    assert reader.get_unique_list({}, "zones", "dns", zone) == []
    assert reader.get_unique_list({"upstream": "x"}, "upstream", "dns", zone) == []
    assert messages(reader)[-1] == "dns.upstream: expected a list, got 'x' (a string)"


def test_a_reader_can_share_its_list_and_show_values_its_own_way() -> None:
    kept: list[Issue] = []
    reader = Reader(kept, got=describe)
    reader.get_bool({"log": "yes"}, "log", "rule", False)
    assert [str(issue) for issue in kept] == ["rule.log: expected a boolean (true or false), got string 'yes'"]
