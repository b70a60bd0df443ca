# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Policy profiles: the built-ins, user profiles and the host-port check of the management guard.

A profile decides, for one network, the fate of new connections in three directions:
``ingress`` (forwarded into the network), ``egress`` (forwarded out of it) and ``host``
(from the network to the host itself). Rules are evaluated in order, first match wins;
unmatched traffic gets the direction's action. The renderer accepts established/related
and DNAT'd connections, management traffic, and DHCP/DNS to the network's own dnsmasq
before any profile rule, so profiles never have to open those.

User profiles come in this collection's format (``rules`` and per-direction actions) or in
the original Ghostwarden CLI's format (``allowed_ingress_cidrs``, ``allowed_egress_cidrs``,
``services``); docs/policy-profiles.md documents both and the mapping of the latter.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._documents import parse_document, read_document_file
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    ACTIONS,
    DIRECTIONS,
    L4_PROTOCOLS,
    RATE_UNITS,
    RULE_PROTOCOLS,
    WEEKDAYS,
    PortRange,
    Profile,
    RateLimit,
    Rule,
    TimeWindow,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import (
    Issues,
    Keys,
    describe,
    is_choice,
    is_int,
    join,
    unknown_keys,
)

PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")

# Keys of a profile. `name`, `description` and `default_action` belong to both formats.
SHARED_PROFILE_KEYS = ("name", "description", "default_action")
COLLECTION_PROFILE_KEYS = ("ingress_action", "egress_action", "host_action", "rules")
ORIGINAL_PROFILE_KEYS = ("allowed_ingress_cidrs", "allowed_egress_cidrs", "services")
PROFILE_KEYS = Keys(SHARED_PROFILE_KEYS + COLLECTION_PROFILE_KEYS + ORIGINAL_PROFILE_KEYS)
RULE_KEYS = Keys((
    "direction", "action", "protocol", "port", "ports", "source", "sources", "destination",
    "destinations", "rate_limit", "conn_limit", "log", "log_prefix", "counter", "time", "comment",
))
SERVICE_KEYS = Keys(("protocol", "port", "source"))
RATE_LIMIT_KEYS = Keys(("rate", "per", "burst", "per_source"))
TIME_KEYS = Keys(("hours", "days"))

# nft stores these in 32-bit fields (limit burst, ct count); rates above it make no sense either.
MAX_COUNT = 2**32 - 1
MAX_TEXT = 64  # log_prefix and comment; nft allows more, logs stay readable with less
MAX_DESCRIPTION = 256
# log_prefix and comment end up inside double-quoted nft strings: printable ASCII without
# quotes or backslashes cannot close or escape the string.
SAFE_TEXT_RE = re.compile(r"^[\x20-\x21\x23-\x26\x28-\x5b\x5d-\x5f\x61-\x7e]+$")
PORT_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_ADDRESS_CHARS_RE = re.compile(r"^[0-9A-Fa-f.:/]+$")
_DAY_NAMES = {day.lower(): day for day in WEEKDAYS}
_DAY_NAMES.update({day[:3].lower(): day for day in WEEKDAYS})


# --------------------------------------------------------------------------- helpers


def _issues(issues: list[Issue] | None = None) -> Issues:
    """A collector whose "expected ..., got ..." messages describe the value (``got string 'x'``)."""
    return Issues(issues, got=describe)


def _check_keys(data: Mapping, keys: Keys, path: str, issues: Issues) -> None:
    for key in unknown_keys(data, keys):
        # The key goes into the path as given, not quoted as join() would: these messages have always
        # read so (a key with a line break makes a two-line issue; see test_topology_fuzz).
        issues.fail(f"{path}.{key}" if path else str(key), f"unknown key {key!r} (expected one of: {keys.listed})")


def _settings(value: object, keys: Keys, path: str, what: str, issues: Issues) -> Mapping | None:
    """``value`` if it is a mapping (its unknown keys reported); otherwise None, reported as not ``what``."""
    if not isinstance(value, Mapping):
        issues.expected(path, what, value)
        return None
    _check_keys(value, keys, path, issues)
    return value


def _choice(value: object, choices: tuple[str, ...], what: str, path: str, issues: Issues) -> str | None:
    if is_choice(value, choices):
        return value  # type: ignore[return-value]  # is_choice said str
    issues.fail(path, f"{describe(value)} is not a valid {what} (expected one of: {', '.join(choices)})")
    return None


def _bool(value: object, path: str, issues: Issues) -> bool | None:
    if isinstance(value, bool):
        return value
    issues.expected(path, "true or false", value)
    return None


def _count(value: object, what: str, path: str, issues: Issues) -> int | None:
    """A positive integer (not a boolean) that fits nft's 32-bit counters."""
    if not is_int(value):
        issues.fail(path, f"{what} must be a positive integer, got {describe(value)}")
        return None
    if not 1 <= value <= MAX_COUNT:
        issues.fail(path, f"{what} {value} is out of range 1-{MAX_COUNT}")
        return None
    return value


def _safe_text(value: object, what: str, path: str, issues: Issues) -> str | None:
    if not isinstance(value, str):
        issues.fail(path, f"{what} must be a string, got {describe(value)}")
        return None
    if len(value) > MAX_TEXT:
        issues.fail(path, f"{what} {describe(value)} is longer than {MAX_TEXT} characters")
        return None
    if not SAFE_TEXT_RE.fullmatch(value):
        issues.fail(
            path,
            f"{what} {describe(value)} must be non-empty printable ASCII without quotes or backslashes",
        )
        return None
    return value


def _description(value: object, path: str, issues: Issues) -> str | None:
    if not isinstance(value, str):
        issues.fail(path, f"description must be a string, got {describe(value)}")
        return None
    if len(value) > MAX_DESCRIPTION:
        issues.fail(path, f"description {describe(value)} is longer than {MAX_DESCRIPTION} characters")
        return None
    # The renderer may show it in an nft comment: no line breaks, quotes or backslashes.
    if not value.isprintable() or '"' in value or "\\" in value:
        issues.fail(path, f"description {describe(value)} must be printable text without \" or \\")
        return None
    return value


def _items(value: object, path: str, what: str, issues: Issues, allow_empty: bool) -> list[tuple[object, str]] | None:
    """A scalar or a list, as (item, item path) pairs; None (with an issue) when it is neither."""
    if isinstance(value, (list, tuple)):
        if not value and not allow_empty:
            issues.fail(path, "must not be an empty list (leave the key out to match any)")
            return None
        return [(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [(value, path)]
    issues.expected(path, f"{what} or a list of them", value)
    return None


def _merge_ports(ranges: list[PortRange]) -> tuple[PortRange, ...]:
    """Sorted, with overlapping and adjacent ranges joined: nft interval sets refuse overlaps."""
    merged: list[PortRange] = []
    for port_range in sorted(ranges):
        if merged and port_range.first <= merged[-1].last + 1:
            if port_range.last > merged[-1].last:
                merged[-1] = PortRange(merged[-1].first, port_range.last)
        else:
            merged.append(port_range)
    return tuple(merged)


def _port(value: object, path: str, issues: Issues) -> PortRange | None:
    match = PORT_RE.fullmatch(value) if isinstance(value, str) else None
    if is_int(value):
        first = last = value
    elif match is not None:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
    else:
        issues.fail(path, f"{describe(value)} is not a port or a port range like 60000-60050")
        return None
    for bound in (first, last):
        if not 1 <= bound <= 65535:
            issues.fail(path, f"port {bound} is out of range 1-65535")
            return None
    if first > last:
        issues.fail(path, f"port range {first}-{last} is reversed (write {last}-{first})")
        return None
    return PortRange(first, last)


def _ports(value: object, path: str, issues: Issues) -> tuple[PortRange, ...] | None:
    items = _items(value, path, "a port or port range", issues, allow_empty=False)
    if items is None:
        return None
    start = issues.mark()
    ranges = [_port(item, item_path, issues) for item, item_path in items]
    if issues.failed_since(start):
        return None
    return _merge_ports([port_range for port_range in ranges if port_range is not None])


def _network(value: object, path: str, issues: Issues):
    """One CIDR or IP as a netaddr.IPNetwork, or None with an issue."""
    if not isinstance(value, str):
        issues.expected(path, "a CIDR or IP address", value)
        return None
    invalid = f"{describe(value)} is not a valid CIDR or IP address"
    if not _ADDRESS_CHARS_RE.fullmatch(value) or value.count("/") > 1:
        issues.fail(path, invalid)
        return None
    address, slash, prefix = value.partition("/")
    if slash and not prefix.isdigit():
        issues.fail(path, invalid)  # netmask notation is ambiguous to readers; ask for a prefix length
        return None
    try:
        network = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        issues.fail(path, invalid)
        return None
    # Older netaddr releases accept inet_aton shorthands ("10.1", octal): insist on the dotted quad.
    if network.version == 4 and str(network.ip) != address:
        issues.fail(path, invalid)
        return None
    if network.ip != network.network:
        issues.fail(path, f"{value} has host bits set; its network address is {network.cidr}")
        return None
    return network


def _cidrs(value: object, path: str, what: str, issues: Issues, allow_empty: bool = False) -> tuple[str, ...] | None:
    """Canonical CIDRs, merged and sorted (IPv4 first) so equal sets compare equal."""
    items = _items(value, path, what, issues, allow_empty=allow_empty)
    if items is None:
        return None
    if items and not NETADDR.available:
        issues.fail(path, "validating addresses needs the Python library netaddr, which is not installed")
        return None
    start = issues.mark()
    networks = [_network(item, item_path, issues) for item, item_path in items]
    if issues.failed_since(start):
        return None
    return tuple(str(network) for network in netaddr.cidr_merge(networks)) if networks else ()


def _families(cidrs: tuple[str, ...]) -> set[int]:
    return {6 if ":" in cidr else 4 for cidr in cidrs}


def _rate_limit(value: object, path: str, issues: Issues) -> RateLimit | None:
    if isinstance(value, str):
        match = RATE_RE.fullmatch(value)
        if not match:
            issues.fail(path, f"{describe(value)} is not a rate like 10/second")
            return None
        start = issues.mark()
        rate = _count(int(match.group(1)), "rate", path, issues)
        per = _choice(match.group(2), RATE_UNITS, "rate unit", path, issues)
        return RateLimit(rate=rate, per=per) if not issues.failed_since(start) else None
    start = issues.mark()
    if _settings(value, RATE_LIMIT_KEYS, path, "a rate like 10/second or a mapping", issues) is None:
        return None
    rate = None
    if value.get("rate") is None:
        issues.fail(join(path, "rate"), "rate is required (packets per unit)")
    else:
        rate = _count(value["rate"], "rate", join(path, "rate"), issues)
    per = "second"
    if value.get("per") is not None:
        per = _choice(value["per"], RATE_UNITS, "rate unit", join(path, "per"), issues)
    burst = None
    if value.get("burst") is not None:
        burst = _count(value["burst"], "burst", join(path, "burst"), issues)
    per_source = False
    if value.get("per_source") is not None:
        per_source = _bool(value["per_source"], join(path, "per_source"), issues)
    if issues.failed_since(start):
        return None
    return RateLimit(rate=rate, per=per, burst=burst, per_source=per_source)


def _time_window(value: object, path: str, issues: Issues) -> TimeWindow | None:
    start = issues.mark()
    if _settings(value, TIME_KEYS, path, "a mapping with hours and/or days", issues) is None:
        return None
    hours = None
    raw_hours = value.get("hours")
    if raw_hours is not None:
        hours_path = join(path, "hours")
        match = HOURS_RE.fullmatch(raw_hours) if isinstance(raw_hours, str) else None
        if match is None:
            issues.fail(hours_path, f"{describe(raw_hours)} is not a time range like 08:00-18:00")
        else:
            hour_a, minute_a, hour_b, minute_b = (int(part) for part in match.groups())
            if hour_a > 23 or minute_a > 59 or hour_b > 23 or minute_b > 59:
                issues.fail(hours_path, f"{raw_hours.strip()!r} has a time outside 00:00-23:59")
            elif (hour_a, minute_a) == (hour_b, minute_b):
                issues.fail(hours_path, f"{raw_hours.strip()!r} starts and ends at the same time")
            else:
                hours = (f"{hour_a:02d}:{minute_a:02d}", f"{hour_b:02d}:{minute_b:02d}")
    days: tuple[str, ...] = ()
    raw_days = value.get("days")
    if raw_days is not None:
        days_path = join(path, "days")
        if not isinstance(raw_days, (list, tuple)):
            issues.expected(days_path, "a list of weekdays", raw_days)
        elif not raw_days:
            issues.fail(days_path, "must not be an empty list (leave the key out to match any day)")
        else:
            found = set()
            for index, day in enumerate(raw_days):
                name = _DAY_NAMES.get(day.lower()) if isinstance(day, str) else None
                if name is None:
                    issues.fail(
                        f"{days_path}[{index}]",
                        f"{describe(day)} is not a weekday (Monday..Sunday or Mon..Sun)",
                    )
                else:
                    found.add(name)
            days = tuple(day for day in WEEKDAYS if day in found)
    if issues.failed_since(start):
        return None
    if hours is None and not days:
        issues.fail(path, "a time window needs hours, days or both")
        return None
    return TimeWindow(hours=hours, days=days)


def _aliased(data: Mapping, singular: str, plural: str, path: str, issues: Issues) -> tuple[object, str]:
    """The value of `singular` or its alias `plural`, and the path of the key used."""
    if data.get(singular) is not None and data.get(plural) is not None:
        issues.fail(join(path, plural), f"give either {singular} or {plural}, not both")
    if data.get(plural) is not None:
        return data[plural], join(path, plural)
    return data.get(singular), join(path, singular)


# --------------------------------------------------------------------------- rules


def _parse_rule(data: object, path: str, issues: Issues) -> Rule | None:
    start = issues.mark()
    if _settings(data, RULE_KEYS, path, "a mapping describing a rule", issues) is None:
        return None

    direction = "ingress"
    if data.get("direction") is not None:
        direction = _choice(data["direction"], DIRECTIONS, "direction", join(path, "direction"), issues)
    action = "accept"
    if data.get("action") is not None:
        action = _choice(data["action"], ACTIONS, "action", join(path, "action"), issues)
    protocol = None
    protocol_path = join(path, "protocol")
    if data.get("protocol") is not None:
        protocol = _choice(data["protocol"], RULE_PROTOCOLS, "protocol", protocol_path, issues)

    ports: tuple[PortRange, ...] = ()
    raw_ports, ports_path = _aliased(data, "port", "ports", path, issues)
    if raw_ports is not None:
        ports = _ports(raw_ports, ports_path, issues) or ()
        protocol_invalid = data.get("protocol") is not None and protocol is None
        if ports and protocol not in L4_PROTOCOLS and not protocol_invalid:
            shown = ", ".join(str(port_range) for port_range in ports)
            issues.fail(
                ports_path,
                f"{'port' if len(ports) == 1 else 'ports'} {shown} need{'s' if len(ports) == 1 else ''} "
                f"protocol tcp, udp or sctp (protocol is {protocol or 'any'})",
            )

    sources: tuple[str, ...] = ()
    raw_sources, sources_path = _aliased(data, "source", "sources", path, issues)
    if raw_sources is not None:
        sources = _cidrs(raw_sources, sources_path, "a CIDR or IP address", issues) or ()
    destinations: tuple[str, ...] = ()
    raw_destinations, destinations_path = _aliased(data, "destination", "destinations", path, issues)
    if raw_destinations is not None:
        destinations = _cidrs(raw_destinations, destinations_path, "a CIDR or IP address", issues) or ()

    # ICMP and ICMPv6 each exist in one address family only.
    wrong_family = {"icmp": 6, "icmpv6": 4}.get(protocol or "")
    if wrong_family is not None:
        for cidr in sources + destinations:
            if _families((cidr,)) == {wrong_family}:
                issues.fail(protocol_path, f"protocol {protocol} cannot match IPv{wrong_family} address {cidr}")
                break
    if sources and destinations and not _families(sources) & _families(destinations):
        issues.fail(
            destinations_path,
            f"destinations {', '.join(destinations)} and sources {', '.join(sources)} are of different "
            "address families; the rule could never match",
        )

    rate_limit = None
    if data.get("rate_limit") is not None:
        rate_limit = _rate_limit(data["rate_limit"], join(path, "rate_limit"), issues)
    conn_limit = None
    if data.get("conn_limit") is not None:
        conn_path = join(path, "conn_limit")
        conn_limit = _count(data["conn_limit"], "conn_limit", conn_path, issues)
        if conn_limit is not None and protocol in ("icmp", "icmpv6"):
            issues.fail(conn_path, f"conn_limit {conn_limit} needs protocol tcp, udp, sctp or any, not {protocol}")
        # Connections over the limit fall through to the next rule; for drop/reject that reads backwards.
        if conn_limit is not None and action in ("drop", "reject"):
            issues.fail(conn_path, f"conn_limit {conn_limit} only applies to accept rules (action is {action})")

    log = False
    if data.get("log") is not None:
        log = _bool(data["log"], join(path, "log"), issues)
    log_prefix = None
    if data.get("log_prefix") is not None:
        prefix_path = join(path, "log_prefix")
        log_prefix = _safe_text(data["log_prefix"], "log_prefix", prefix_path, issues)
        if log_prefix is not None and "$" in log_prefix:
            # nft expands $ inside a log prefix as a variable reference, even in quotes (1.0.6).
            issues.fail(prefix_path, f"log_prefix {log_prefix!r} must not contain '$'")
            log_prefix = None
        if log_prefix is not None:
            if data.get("log") is False:
                issues.fail(prefix_path, f"log_prefix {log_prefix!r} needs log: true (log is false)")
            log = True
    counter = False
    if data.get("counter") is not None:
        counter = _bool(data["counter"], join(path, "counter"), issues)
    time_window = None
    if data.get("time") is not None:
        time_window = _time_window(data["time"], join(path, "time"), issues)
    comment = None
    if data.get("comment") is not None:
        comment = _safe_text(data["comment"], "comment", join(path, "comment"), issues)

    if issues.failed_since(start):
        return None
    return Rule(
        direction=direction, action=action, protocol=protocol, ports=ports, sources=sources,
        destinations=destinations, rate_limit=rate_limit, conn_limit=conn_limit, log=log,
        log_prefix=log_prefix, counter=counter, time=time_window, comment=comment,
    )


# --------------------------------------------------------------------------- the original CLI's format


def _parse_items(raw: object, path: str, what: str, parse: Callable[[object, str, Issues], Any],
                 issues: Issues) -> list:
    """Each item of the list ``raw`` (absent: none) parsed at ``path[index]``; the invalid ones left out."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        issues.expected(path, f"a list of {what}", raw)
        return []
    parsed = (parse(item, f"{path}[{index}]", issues) for index, item in enumerate(raw))
    return [item for item in parsed if item is not None]


def _parse_service(data: object, path: str, issues: Issues) -> tuple[str, tuple[PortRange, ...], tuple[str, ...]] | None:
    """One `services` entry: (protocol, ports, sources)."""
    start = issues.mark()
    if _settings(data, SERVICE_KEYS, path, "a mapping with protocol, port and source", issues) is None:
        return None
    protocol = None
    if data.get("protocol") is None:
        issues.fail(join(path, "protocol"), f"protocol is required (one of: {', '.join(RULE_PROTOCOLS)})")
    else:
        protocol = _choice(data["protocol"], RULE_PROTOCOLS, "protocol", join(path, "protocol"), issues)
    ports: tuple[PortRange, ...] = ()
    port_path = join(path, "port")
    raw_port = data.get("port")
    if protocol in L4_PROTOCOLS:
        if raw_port is None:
            issues.fail(port_path, f"port is required with protocol {protocol}")
        else:
            ports = _ports(raw_port, port_path, issues) or ()
    elif raw_port is not None and not (is_int(raw_port) and 0 <= raw_port <= 65535):
        # The original requires a 16-bit port even for ICMP and ignores it; so do we.
        issues.fail(port_path, f"{describe(raw_port)} is not a port number 0-65535")
    sources: tuple[str, ...] = ()
    if data.get("source") is not None:
        sources = _cidrs(data["source"], join(path, "source"), "a CIDR or IP address", issues) or ()
        wrong_family = {"icmp": 6, "icmpv6": 4}.get(protocol or "")
        if wrong_family is not None and _families(sources) == {wrong_family}:
            issues.fail(
                join(path, "source"),
                f"protocol {protocol} cannot match IPv{wrong_family} source {', '.join(sources)}",
            )
    if issues.failed_since(start):
        return None
    return protocol, ports, sources


def _same_family(protocol: str, sources: tuple[str, ...]) -> tuple[str, ...]:
    """The sources an ICMP rule can match (icmp: IPv4 only, icmpv6: IPv6 only); others unchanged."""
    if protocol not in ("icmp", "icmpv6"):
        return sources
    family = 4 if protocol == "icmp" else 6
    return tuple(cidr for cidr in sources if _families((cidr,)) == {family})


def _service_rules(direction: str, services: list[tuple[str, tuple[PortRange, ...], tuple[str, ...]]]) -> list[Rule]:
    """Accept rules for `services`, one per (protocol, sources) in order of first appearance."""
    grouped: dict[tuple[str, tuple[str, ...]], list[PortRange]] = {}
    for protocol, ports, sources in services:
        grouped.setdefault((protocol, sources), []).extend(ports)
    return [
        Rule(direction=direction, action="accept", protocol=protocol, ports=_merge_ports(ports), sources=sources)
        for (protocol, sources), ports in grouped.items()
    ]


def _original_rules(data: Mapping, path: str, issues: Issues) -> list[Rule] | None:
    """Rules for the original format's fields (mapping in docs/policy-profiles.md)."""
    start = issues.mark()
    allowed_ingress: tuple[str, ...] = ()
    if data.get("allowed_ingress_cidrs") is not None:
        allowed_ingress = _cidrs(
            data["allowed_ingress_cidrs"], join(path, "allowed_ingress_cidrs"), "a CIDR", issues, allow_empty=True,
        ) or ()
    allowed_egress: tuple[str, ...] = ()
    if data.get("allowed_egress_cidrs") is not None:
        allowed_egress = _cidrs(
            data["allowed_egress_cidrs"], join(path, "allowed_egress_cidrs"), "a CIDR", issues, allow_empty=True,
        ) or ()
    services = _parse_items(data.get("services"), join(path, "services"), "services", _parse_service, issues)
    if issues.failed_since(start):
        return None

    ingress_services = []
    if services:
        # Services are what may come in, allowed_ingress_cidrs who may: a service with its own
        # source is open to that source, one without to allowed_ingress_cidrs (none: not at all).
        for protocol, ports, sources in services:
            from_sources = _same_family(protocol, sources or allowed_ingress)
            if from_sources:
                ingress_services.append((protocol, ports, from_sources))
    rules = _service_rules("ingress", ingress_services)
    if not services and allowed_ingress:
        rules.append(Rule(direction="ingress", action="accept", sources=allowed_ingress))
    # An empty source list means "anyone"; a mixed one keeps only the addresses the ICMP version can match.
    rules.extend(_service_rules("host", [
        (protocol, ports, _same_family(protocol, sources) if sources else ())
        for protocol, ports, sources in services
    ]))
    if allowed_egress:
        rules.append(Rule(direction="egress", action="accept", destinations=allowed_egress))
    return rules


# --------------------------------------------------------------------------- profiles


def _parse_profile(
    name: object, data: object, path: str, issues: Issues, *, name_path: str, file_defaults: bool,
) -> Profile | None:
    start = issues.mark()
    if not isinstance(name, str) or not PROFILE_NAME_RE.fullmatch(name):
        issues.fail(
            name_path,
            f"profile name {describe(name)} must match {PROFILE_NAME_RE.pattern} "
            "(lower-case letters, digits, '_', '.', '-'; at most 63 characters)",
        )
    if _settings(data, PROFILE_KEYS, path, "a mapping of profile settings", issues) is None:
        return None
    if data.get("name") is not None and data["name"] != name:
        issues.fail(join(path, "name"), f"{describe(data['name'])} differs from the profile's name {name!r}")

    description = ""
    if data.get("description") is not None:
        description = _description(data["description"], join(path, "description"), issues)

    # The original's semantics (default drop, egress open unless restricted) apply when one of its
    # own keys is present, or to a profile file that uses none of this collection's keys.
    present = {key for key in data if data[key] is not None}
    original = bool(present & set(ORIGINAL_PROFILE_KEYS)) or (
        file_defaults and not present & set(COLLECTION_PROFILE_KEYS)
    )
    default_action = "drop" if original else "accept"
    if data.get("default_action") is not None:
        default_action = _choice(data["default_action"], ACTIONS, "action", join(path, "default_action"), issues)
    actions = {}
    for direction in DIRECTIONS:
        key = f"{direction}_action"
        if data.get(key) is not None:
            actions[direction] = _choice(data[key], ACTIONS, "action", join(path, key), issues)
        elif direction == "egress" and original and not data.get("allowed_egress_cidrs"):
            actions[direction] = "accept"
        else:
            actions[direction] = default_action

    rules: list[Rule] = _parse_items(data.get("rules"), join(path, "rules"), "rules", _parse_rule, issues)
    rules.extend(_original_rules(data, path, issues) or ())

    if issues.failed_since(start):
        return None
    return Profile(
        name=name,
        description=description,
        ingress_action=actions["ingress"],
        egress_action=actions["egress"],
        host_action=actions["host"],
        rules=tuple(rules),
    )


def parse_profile(name: str, data: object, path: str, issues: list[Issue]) -> Profile | None:
    """One user profile, in this collection's format or the original CLI's (or both mixed).

    Appends an :class:`Issue` per problem to ``issues``, under ``path``, and returns None when
    there is any; never raises. ``name`` is the profile's key (``policies.<name>``).
    """
    return _parse_profile(name, data, path, _issues(issues), name_path=path, file_defaults=False)


def _file_issue(source: str, field: str, message: str) -> Issue:
    if source and field:
        return Issue(f"{source}: {field}", message)
    return Issue(source or field, message)


def load_profile_text(text: str, fmt: str, *, source: str = "") -> Profile:
    """A profile file's content in the original CLI's format (``name`` inside), TOML or YAML.

    ``source`` names the file in messages. Raises :class:`ValidationError` whose first line
    names the file, for syntax errors (duplicate keys included) and content errors alike;
    :class:`GhostwardenError` when the TOML or YAML library is missing.
    """
    if fmt not in ("toml", "yaml", "yml"):
        raise ValidationError(_file_issue(source, "", f"unsupported profile format {fmt!r} (expected toml or yaml)"))
    data = parse_document(text, "yaml" if fmt == "yml" else fmt, source=source, what="profile")
    if not isinstance(data, Mapping):
        raise ValidationError(_file_issue(source, "", f"expected a mapping of profile settings, got {describe(data)}"))
    issues = _issues()
    if data.get("name") is None:
        issues.fail("name", "a profile file must give its name")
        profile = None
    else:
        profile = _parse_profile(data["name"], data, "", issues, name_path="name", file_defaults=True)
    if profile is None:
        raise ValidationError([_file_issue(source, issue.path, issue.message) for issue in issues.issues])
    return profile


PROFILE_FILE_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
# The order a directory is searched in for a profile's file: <dir>/<name>.toml, .yaml, .yml.
PROFILE_FILE_SUFFIXES = (".toml", ".yaml", ".yml")


def load_profile_file(path: str) -> Profile:
    """A profile file of the original CLI (``.toml``, ``.yaml`` or ``.yml``)."""
    fmt = PROFILE_FILE_FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ValidationError(Issue(path, "unsupported profile file extension (expected .toml, .yaml or .yml)"))
    return load_profile_text(read_document_file(path, "profile"), fmt, source=path)


@dataclass(frozen=True)
class ProfileDirs:
    """Where a profile that is neither built in nor defined in the topology is looked for, and how.

    ``dirs`` in order, first match wins; in each, ``<name>.toml``, ``<name>.yaml``, ``<name>.yml``.
    The search is pure: ``is_file`` and ``read`` are the only ways to the file system
    (``os.path.isfile`` and :func:`load_profile_file` unless a test passes others), and only names
    that match :data:`PROFILE_NAME_RE` (no ``/``, not starting with ``.``) ever become paths.
    """

    dirs: tuple[str, ...]
    is_file: Callable[[str], bool] = field(default=os.path.isfile, compare=False)
    read: Callable[[str], Profile] = field(default=load_profile_file, compare=False)

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        """The names a file of profile ``name`` may have; none when ``name`` is not a valid profile name."""
        if not isinstance(name, str) or not PROFILE_NAME_RE.fullmatch(name):
            return ()
        return tuple(name + suffix for suffix in PROFILE_FILE_SUFFIXES)

    def candidates(self, name: str) -> tuple[str, ...]:
        """The paths that may hold profile ``name``, in the order they are tried."""
        return tuple(os.path.join(directory, file_name) for directory in self.dirs for file_name in self.file_names(name))

    def find(self, name: str) -> str | None:
        """The first file that holds profile ``name``, or None."""
        return next((path for path in self.candidates(name) if self.is_file(path)), None)

    def load(self, name: str, path: str) -> Profile:
        """The profile in ``path``, which must be named ``name`` inside (the file is found by that name).

        Raises :class:`ValidationError` whose issues name the file (``<path>: <field>``).
        """
        profile = self.read(path)
        if profile.name != name:
            raise ValidationError(_file_issue(path, "name", f"{profile.name!r} differs from the file's name {name!r} "
                                                            f"(the profile in {os.path.basename(path)} must be named {name})"))
        return profile

    def searched(self, name: str) -> str:
        """Where ``find`` looked, for an "unknown profile" message."""
        if not self.dirs:
            return "no directories to look for profile files in (policy_dirs is empty)"
        return f"no {', '.join(self.file_names(name))} in {', '.join(self.dirs)}"


def profile_dirs_option(dirs: Sequence[str] | None, src: str | None = None) -> ProfileDirs:
    """The modules' ``policy_dirs`` as a :class:`ProfileDirs`; with ``src``, its ``policies`` directory first.

    Every directory must be absolute (they are looked up on the host the module runs on, whose
    working directory means nothing to the user); duplicates are searched once.
    """
    dirs = list(dirs or ())
    issues = [Issue(f"policy_dirs[{index}]", f"{directory!r} is not an absolute path (profile directories are "
                                             "searched on the node the module runs on)")
              for index, directory in enumerate(dirs) if not isinstance(directory, str) or not os.path.isabs(directory)]
    if issues:
        raise ValidationError(issues)
    ordered = ([os.path.join(os.path.dirname(src), "policies")] if src else []) + dirs
    seen: set[str] = set()
    unique = []
    for directory in ordered:
        key = os.path.normpath(directory)
        if key not in seen:
            seen.add(key)
            unique.append(directory)
    return ProfileDirs(tuple(unique))


def _rule_to_dict(rule: Rule) -> dict:
    rate_limit = None
    if rule.rate_limit is not None:
        rate_limit = {
            "rate": rule.rate_limit.rate,
            "per": rule.rate_limit.per,
            "burst": rule.rate_limit.burst,
            "per_source": rule.rate_limit.per_source,
        }
    time_window = None
    if rule.time is not None:
        time_window = {
            "hours": "-".join(rule.time.hours) if rule.time.hours else None,
            "days": list(rule.time.days) or None,
        }
    return {
        "direction": rule.direction,
        "action": rule.action,
        "protocol": rule.protocol,
        "ports": [port_range.first if port_range.size == 1 else str(port_range) for port_range in rule.ports] or None,
        "sources": list(rule.sources) or None,
        "destinations": list(rule.destinations) or None,
        "rate_limit": rate_limit,
        "conn_limit": rule.conn_limit,
        "log": rule.log,
        "log_prefix": rule.log_prefix,
        "counter": rule.counter,
        "time": time_window,
        "comment": rule.comment,
    }


def profile_to_dict(profile: Profile) -> dict:
    """The profile in this collection's format, every default written out (null means "any"/"none")."""
    return {
        "description": profile.description,
        "ingress_action": profile.ingress_action,
        "egress_action": profile.egress_action,
        "host_action": profile.host_action,
        "rules": [_rule_to_dict(rule) for rule in profile.rules],
    }


# --------------------------------------------------------------------------- the management guard's question


def profile_blocks_host_port(profile: Profile, port: int, protocol: str = "tcp", source: str | None = None) -> bool:
    """True unless a new connection from the network to the host on ``port`` is sure to be accepted.

    Walks the host rules in order. A rule that surely matches decides. A rule that may match
    (it has a rate or connection limit or a time window, or its sources or destinations cover
    only part of the possible connections) decides when it drops or rejects: some connections
    would be dropped. Without ``source`` every address of the network is considered; with it
    (an IP or CIDR) only that one. Traffic no rule decides gets ``host_action``.
    """
    if protocol not in L4_PROTOCOLS:
        raise ValueError(f"protocol {protocol!r} is not one of {', '.join(L4_PROTOCOLS)}")
    if not is_int(port) or not 1 <= port <= 65535:
        raise ValueError(f"port {port!r} is out of range 1-65535")
    origin = None
    if source is not None:
        origin = _network(source, "source", _issues()) if netaddr is not None else None
        if origin is None:
            raise ValueError(f"source {source!r} is not a valid IP address or CIDR")
    for rule in profile.rules:
        if rule.direction != "host":
            continue
        if rule.protocol is not None and rule.protocol != protocol:
            continue
        if rule.ports and not any(port_range.first <= port <= port_range.last for port_range in rule.ports):
            continue
        certain = rule.rate_limit is None and rule.conn_limit is None and rule.time is None and not rule.destinations
        if rule.sources:
            if origin is None:
                certain = False
            else:
                networks = [netaddr.IPNetwork(cidr) for cidr in rule.sources]
                if any(origin in network for network in networks):
                    pass
                elif any(_overlaps(origin, network) for network in networks):
                    certain = False
                else:
                    continue
        if rule.action != "accept":
            return True
        if certain:
            return False
    return profile.host_action != "accept"


def _overlaps(first, second) -> bool:
    return first.version == second.version and first.first <= second.last and second.first <= first.last


# --------------------------------------------------------------------------- built-in profiles

_ICMP_LIMIT = RateLimit(rate=10, per="second", burst=20, per_source=True)
_DROP_LOG_LIMIT = RateLimit(rate=5, per="minute", burst=10)
# Private and shared ranges a DMZ guest must not reach: RFC 1918, RFC 6598 (CGNAT), RFC 4193 (ULA).
_PRIVATE_RANGES = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def _icmp(direction: str) -> tuple[Rule, ...]:
    """ICMP and ICMPv6 accepted, echo floods limited per source.

    To the host ICMPv6 is not limited: neighbour discovery and router solicitations must
    never be throttled, or IPv6 on the network breaks.
    """
    return (
        Rule(direction=direction, action="accept", protocol="icmp", rate_limit=_ICMP_LIMIT),
        Rule(direction=direction, action="accept", protocol="icmpv6",
             rate_limit=None if direction == "host" else _ICMP_LIMIT,
             comment="not limited: neighbour discovery" if direction == "host" else None),
    )


def _services(directions: tuple[str, ...], services: tuple[tuple[str, tuple[PortRange, ...], str], ...]) -> tuple[Rule, ...]:
    """Accept rules for (protocol, ports, comment) in each direction, then ICMP."""
    rules: list[Rule] = []
    for direction in directions:
        rules.extend(
            Rule(direction=direction, action="accept", protocol=protocol, ports=ports, comment=comment)
            for protocol, ports, comment in services
        )
        rules.extend(_icmp(direction))
    return tuple(rules)


def _single(*ports: int) -> tuple[PortRange, ...]:
    return tuple(PortRange(port, port) for port in ports)


def _builtin_profiles() -> dict[str, Profile]:
    both = ("ingress", "host")
    profiles = [
        Profile(
            name="routed-tight",
            description=(
                "NAT'd routed network: clients reach out freely; nothing new enters except port forwards; "
                "the host accepts only ICMP from it, besides DHCP and DNS when the network has them"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=_icmp("host"),
        ),
        Profile(
            name="public-web",
            description=(
                "DMZ web network: HTTP 80/tcp, HTTPS 443/tcp, HTTP/3 443/udp and ICMP may enter, the rest is "
                "dropped; outbound is accepted; the host accepts only ICMP from it"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=(
                Rule(direction="ingress", action="accept", protocol="tcp", ports=_single(80, 443),
                     comment="http, https"),
                Rule(direction="ingress", action="accept", protocol="udp", ports=_single(443),
                     comment="http/3 over quic"),
            ) + _icmp("ingress") + _icmp("host"),
        ),
        Profile(
            name="l2-lan",
            description="Trusted LAN: everything is accepted into, out of and from it to the host; nothing is logged",
            ingress_action="accept",
            egress_action="accept",
            host_action="accept",
        ),
        Profile(
            name="proxmox-cluster",
            description=(
                "Proxmox VE cluster network: corosync 5405-5412/udp, API 8006/tcp, SSH 22/tcp, SPICE proxy "
                "3128/tcp, VNC websockets 5900-5999/tcp, migration 60000-60050/tcp and ICMP may enter and reach "
                "the host, the rest is dropped; outbound is accepted"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=_services(both, (
                ("udp", (PortRange(5405, 5412),), "corosync"),
                ("tcp", _single(8006), "proxmox ve api and web ui"),
                ("tcp", _single(22), "ssh"),
                ("tcp", _single(3128), "spice proxy"),
                ("tcp", (PortRange(5900, 5999),), "vnc websockets"),
                ("tcp", (PortRange(60000, 60050),), "live migration"),
            )),
        ),
        Profile(
            name="proxmox-storage",
            description=(
                "Proxmox storage network: Ceph mon 3300,6789/tcp and OSD/MDS/MGR 6800-7300/tcp, NFS 2049 and "
                "rpcbind 111 (tcp and udp), iSCSI 3260/tcp and ICMP may enter and reach the host, the rest is "
                "dropped; outbound is accepted"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=_services(both, (
                ("tcp", _single(3300, 6789), "ceph monitors"),
                ("tcp", (PortRange(6800, 7300),), "ceph osd, mds, mgr"),
                ("tcp", _single(111, 2049), "rpcbind, nfs"),
                ("udp", _single(111, 2049), "rpcbind, nfs"),
                ("tcp", _single(3260), "iscsi"),
            )),
        ),
        Profile(
            name="proxmox-backup",
            description=(
                "Proxmox Backup Server network: PBS 8007/tcp, SSH 22/tcp and ICMP may enter and reach the host, "
                "the rest is dropped; outbound is accepted"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=_services(both, (
                ("tcp", _single(8007), "proxmox backup server"),
                ("tcp", _single(22), "ssh"),
            )),
        ),
        Profile(
            name="proxmox-dmz",
            description=(
                "Internet-facing guests: nothing new enters except port forwards; outbound is accepted except to "
                "private ranges (RFC 1918, 100.64/10, fc00::/7); the host accepts only ICMP from it; "
                "drops are logged at most 5 a minute"
            ),
            ingress_action="drop",
            egress_action="accept",
            host_action="drop",
            rules=(
                Rule(direction="ingress", action="drop", rate_limit=_DROP_LOG_LIMIT, log=True,
                     log_prefix="gw-dmz-ingress-drop: "),
                Rule(direction="egress", action="drop", destinations=_PRIVATE_RANGES, rate_limit=_DROP_LOG_LIMIT,
                     log=True, log_prefix="gw-dmz-egress-drop: "),
                Rule(direction="egress", action="drop", destinations=_PRIVATE_RANGES, counter=True,
                     comment="private ranges"),
            ) + _icmp("host") + (
                Rule(direction="host", action="drop", rate_limit=_DROP_LOG_LIMIT, log=True,
                     log_prefix="gw-dmz-host-drop: "),
            ),
        ),
    ]
    return {profile.name: replace(profile, builtin=True) for profile in sorted(profiles, key=lambda item: item.name)}


BUILTIN_PROFILES: dict[str, Profile] = _builtin_profiles()
