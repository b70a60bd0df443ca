# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""A network's DHCP and DNS sections (``dhcp``, ``dns``): ranges, static leases, zones, records.

Both need the network's addressing: ``l3`` maps each IP family the network has to its
(subnet, gateway); it is None when the addressing itself is invalid (already reported), so
that nothing that depends on it is reported a second time.
"""

from __future__ import annotations

import re
from functools import partial

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    DnsRecord,
    StaticLease,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Keys, is_int, join, show
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_reader import (
    Addr,
    Net,
    TopologyReader,
    host_problem,
    ip_text,
)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
HOSTNAME_RE = re.compile(rf"^{_LABEL}$")
DNS_NAME_MAX = 253
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}$")
# dnsmasq lease time: seconds, or a number of minutes/hours/days/weeks, or "infinite".
LEASE_TIME_RE = re.compile(r"^(?:infinite|([1-9][0-9]{0,9})([mhdw]?))$")
LEASE_UNIT_SECONDS = {"": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LEASE_TIME_MIN = 120  # dnsmasq raises anything shorter to two minutes
DEFAULT_LEASE_TIME = "12h"

_DHCP_KEYS = Keys(("enabled", "range", "range6", "lease_time", "hosts"))
_HOST_KEYS = Keys(("mac", "ip", "hostname"))
_DNS_KEYS = Keys(("enabled", "zones", "records", "upstream"))
_RECORD_KEYS = Keys(("name", "ip"))


def _largest_block_without(first: int, last: int, hole: int) -> tuple[int, int] | None:
    """The larger part of [first, last] once ``hole`` is taken out (the upper one on a tie)."""
    if hole < first or hole > last:
        return first, last
    below = (first, hole - 1) if hole > first else None
    above = (hole + 1, last) if hole < last else None
    if below and above:
        return below if below[1] - below[0] > above[1] - above[0] else above
    return above or below


def default_dhcp_range(net: Net, gw: Addr) -> tuple[int, int]:
    """The upper half of the subnet's host addresses, without the gateway.

    Host addresses exclude the network address (IPv6: the subnet-router anycast
    address) and, for IPv4, the broadcast address. If the gateway sits inside the
    upper half, the larger side of it is used; in a /30 where the gateway takes the
    only upper address, the remaining host address is used.
    """
    low = net.first + 1
    high = net.last - 1 if net.version == 4 else net.last
    block = _largest_block_without(low + (high - low + 1) // 2, high, gw.value)
    if block is None:  # the gateway is the upper half's only address: the hosts below it
        block = (low, gw.value - 1)
    return block


def _switch_or_mapping(reader: TopologyReader, value: object, path: str, keys: Keys) -> tuple[dict, bool] | None:
    """A section given as true/false or as a mapping of ``keys``: (its settings, ``enabled``); None when off or invalid."""
    if value is None or value is False:
        return None
    if value is True:
        return {}, True
    data = reader.mapping(value, path, "a boolean or a mapping")
    if data is None:
        return None
    reader.check_keys(data, keys, path)
    return data, reader.get_bool(data, "enabled", path, True)


# -- DHCP -------------------------------------------------------------------------------------

def parse_dhcp(reader: TopologyReader, value: object, path: str, l3: dict | None) -> Dhcp | None:
    section = _switch_or_mapping(reader, value, path, _DHCP_KEYS)
    if section is None:
        return None
    data, enabled = section
    lease_time = _parse_lease_time(reader, data, path)
    if enabled and l3 is not None and not l3:
        reader.fail(path, "DHCP needs an address on the network: set cidr and gw_ip")
        l3 = None
    ranges = []
    for version, key in ((4, "range"), (6, "range6")):
        key_path = join(path, key)
        given = data.get(key)
        if l3 is None:
            if given is not None:
                _parse_range_syntax(reader, given, key_path, version)
            continue
        if version not in l3:
            if given is not None:
                reader.fail(key_path, f"{show(given)} given, but the network has no IPv{version} subnet")
            continue
        net, gw = l3[version]
        if given is None:
            start, end = default_dhcp_range(net, gw)
        else:
            parsed = _parse_range(reader, given, key_path, version, net, gw)
            if parsed is None:
                continue
            start, end = parsed
        ranges.append(DhcpRange(start=ip_text(start, version), end=ip_text(end, version), family=version))
    hosts = _parse_static_leases(reader, data, path, l3)
    if not enabled:
        return None
    return Dhcp(ranges=tuple(ranges), lease_time=lease_time, hosts=hosts)


def _parse_lease_time(reader: TopologyReader, data: dict, path: str) -> str:
    value = data.get("lease_time")
    if value is None:
        return DEFAULT_LEASE_TIME
    key_path = join(path, "lease_time")
    if is_int(value):  # a bare number of seconds, as dnsmasq reads it
        value = str(value)
    match = LEASE_TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        reader.fail(key_path, f"{show(value)} is not a lease time (seconds, or a number with m, h, d or w, "
                              f"or \"infinite\")")
        return DEFAULT_LEASE_TIME
    if match.group(1) and int(match.group(1)) * LEASE_UNIT_SECONDS[match.group(2)] < LEASE_TIME_MIN:
        reader.fail(key_path, f"lease time {show(value)} is shorter than dnsmasq's minimum of 2 minutes")
    return str(value)


def _parse_range_syntax(reader: TopologyReader, value: object, path: str, version: int) -> tuple[Addr, Addr] | None:
    if not isinstance(value, str) or value.count("-") != 1:
        reader.expected(path, "\"START-END\"", value)
        return None
    start_text, end_text = value.split("-")
    start = reader.ip(start_text, path, version)
    end = reader.ip(end_text, path, version)
    if start is None or end is None:
        return None
    if start.value > end.value:
        reader.fail(path, f"range {show(value)} starts above its end")
        return None
    return start, end


def _parse_range(reader: TopologyReader, value: object, path: str, version: int, net: Net,
                 gw: Addr) -> tuple[int, int] | None:
    parsed = _parse_range_syntax(reader, value, path, version)
    if parsed is None:
        return None
    start, end = parsed
    for address in (start, end):
        problem = host_problem(address, net, gw)
        if problem and problem != "is the gateway address":
            reader.fail(path, f"{address.text} in range {show(value)} {problem}")
            return None
    if start.value <= gw.value <= end.value:
        reader.fail(path, f"range {show(value)} contains the gateway address {gw.text}")
        return None
    return start.value, end.value


def _parse_static_leases(reader: TopologyReader, data: dict, path: str, l3: dict | None) -> tuple[StaticLease, ...]:
    hosts: list[tuple[int, int, StaticLease]] = []
    by_ip: dict[int, str] = {}
    by_mac: dict[tuple[str, int], str] = {}
    by_hostname: dict[str, tuple[str, str]] = {}
    read_mac = partial(_parse_mac, reader)
    for index, item in enumerate(reader.get_list(data, "hosts", path)):
        item_path = f"{path}.hosts[{index}]"
        host = reader.mapping(item, item_path)
        if host is None:
            continue
        reader.check_keys(host, _HOST_KEYS, item_path)
        mac = reader.required(host, "mac", item_path, "required (the client's MAC address)", read_mac)
        address = reader.required(host, "ip", item_path, "required (the address this host always gets)", reader.ip)
        ip_path = join(item_path, "ip")
        hostname = None
        if host.get("hostname") is not None:
            hostname = dns_name(reader, host["hostname"], join(item_path, "hostname"), HOSTNAME_RE, "host name")
        if address is None or mac is None or l3 is None:
            continue
        if address.version not in l3:
            reader.fail(ip_path, f"{address.text} is IPv{address.version}, the network has no "
                                 f"IPv{address.version} subnet")
            continue
        problem = host_problem(address, *l3[address.version])
        if problem:
            reader.fail(ip_path, f"{address.text} {problem}")
            continue
        if address.value in by_ip:
            reader.fail(ip_path, f"{address.text} is already given to {by_ip[address.value]}")
            continue
        if (mac, address.version) in by_mac:
            reader.fail(join(item_path, "mac"), f"{mac} already has an IPv{address.version} lease at "
                                                f"{by_mac[mac, address.version]}")
            continue
        if hostname is not None and hostname in by_hostname and by_hostname[hostname][0] != mac:
            reader.fail(join(item_path, "hostname"), f"{hostname} is already the name of another MAC address "
                                                     f"at {by_hostname[hostname][1]}")
            continue
        by_ip[address.value] = item_path
        by_mac[mac, address.version] = item_path
        if hostname is not None:
            by_hostname.setdefault(hostname, (mac, item_path))
        hosts.append((address.version, address.value, StaticLease(mac=mac, ip=address.text, hostname=hostname)))
    hosts.sort(key=lambda host: host[:2])
    return tuple(lease for _family, _value, lease in hosts)


def _parse_mac(reader: TopologyReader, value: object, path: str) -> str | None:
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        reader.fail(path, f"{show(value)} is not a MAC address (six hex octets separated by : or -)")
        return None
    mac = value.lower().replace("-", ":")
    first_octet = int(mac[:2], 16)
    if first_octet & 1:
        reader.fail(path, f"{show(value)} is a multicast MAC address, not a host's")
        return None
    if mac == "00:00:00:00:00:00":
        reader.fail(path, f"{show(value)} is the all-zero MAC address")
        return None
    return mac


def dns_name(reader: TopologyReader, value: object, path: str, pattern: re.Pattern = DNS_NAME_RE,
             what: str = "DNS name") -> str | None:
    """A host or domain name of RFC 1123 labels, lower-cased, without a trailing dot."""
    if not isinstance(value, str):
        reader.expected(path, f"a {what}", value)
        return None
    name = value.lower()
    if pattern is DNS_NAME_RE and name.endswith("."):
        name = name[:-1]
    if len(name) > DNS_NAME_MAX or not pattern.fullmatch(name):
        reader.fail(path, f"{show(value)} is not a valid {what} (labels of 1-63 letters, digits and inner "
                          f"hyphens{', separated by dots, at most 253 characters' if pattern is DNS_NAME_RE else ''})")
        return None
    return name


# -- DNS --------------------------------------------------------------------------------------

def parse_dns(reader: TopologyReader, value: object, path: str, l3: dict | None) -> Dns | None:
    section = _switch_or_mapping(reader, value, path, _DNS_KEYS)
    if section is None:
        return None
    data, enabled = section
    if enabled and l3 is not None and not l3:
        reader.fail(path, "DNS needs an address on the network to listen on: set cidr and gw_ip")
    zones = reader.get_unique_list(data, "zones", path, partial(dns_name, reader), "zone ")
    records = _parse_records(reader, data.get("records"), join(path, "records"))
    upstream = reader.get_unique_list(data, "upstream", path, partial(_upstream_server, reader))
    if not enabled:
        return None
    return Dns(zones=tuple(zones), records=records, upstream=tuple(upstream))


def _upstream_server(reader: TopologyReader, value: object, path: str) -> str | None:
    address = reader.unicast(value, path, allow_loopback=True)
    return None if address is None else address.text


def _parse_records(reader: TopologyReader, value: object, path: str) -> tuple[DnsRecord, ...]:
    """``{name: ip}`` or ``[{name, ip}]``; the list form allows several addresses per name."""
    if value is None:
        return ()
    pairs: list[tuple[object, object, str, str]] = []  # (name, ip, name path, ip path)
    if isinstance(value, dict):
        for name, address in value.items():
            name_path = f"{path}[{show(name)}]"  # record names contain dots
            pairs.append((name, address, name_path, name_path))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            record = reader.mapping(item, item_path)
            if record is None:
                continue
            reader.check_keys(record, _RECORD_KEYS, item_path)
            name = reader.required(record, "name", item_path)
            address = reader.required(record, "ip", item_path)
            if name is not None and address is not None:
                pairs.append((name, address, join(item_path, "name"), join(item_path, "ip")))
    else:
        reader.expected(path, "a mapping of name to IP or a list of {name, ip}", value)
        return ()
    records: dict[tuple[str, int, int], DnsRecord] = {}
    for name, address_text, name_path, ip_path in pairs:
        record_name = dns_name(reader, name, name_path)
        address = reader.unicast(address_text, ip_path, allow_loopback=True, allow_link_local=True)
        if record_name is None or address is None:
            continue
        key = (record_name, address.version, address.value)
        if key in records:
            reader.fail(name_path, f"record {record_name} -> {address.text} is listed twice")
            continue
        records[key] = DnsRecord(name=record_name, ip=address.text)
    return tuple(records[key] for key in sorted(records))
