# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Topology input: load it (TOML, YAML, JSON), validate it, normalise it into the model.

:func:`parse_topology` is the only gate between user input and the rest of the core
(DESIGN 4.6): it collects every problem as an :class:`Issue` naming the field path
and the offending value, and raises them together as one :class:`ValidationError`.
Everything it returns is canonical (addresses as netaddr prints them, names resolved,
unordered lists sorted), so equal input gives an equal model.

The schema is documented field by field in ``docs/topology.md``.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import reprlib
from typing import Any, NamedTuple

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._documents import parse_document
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    Issue,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    L4_PROTOCOLS,
    NETWORK_TYPES,
    Dhcp,
    DhcpRange,
    Dns,
    DnsRecord,
    Forward,
    Management,
    Network,
    PortRange,
    Profile,
    StaticLease,
    Subnet,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import (
    BUILTIN_PROFILES,
    parse_profile,
    profile_blocks_host_port,
    profile_to_dict,
)

if NETADDR.available:
    from netaddr.strategy import ipv4 as ipv4_strategy, ipv6 as ipv6_strategy
else:
    ipv4_strategy = ipv6_strategy = None

SUPPORTED_VERSIONS = (1,)
FILE_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}

# Network names become nft chain names and file names.
NETWORK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# Keys of ``interfaces`` are only references inside the topology; same shape as network names.
INTERFACE_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# Stricter than the kernel (which allows any byte but "/", ":", whitespace and NUL): no
# quotes, backslashes or control characters can reach nft or ip, and no leading "." or "-".
INTERFACE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,14}$")
# "all" and "default" are /proc/sys/net/*/conf entries, "lo" is the loopback device.
RESERVED_INTERFACE_NAMES = frozenset({"all", "default", "lo"})
IFNAMSIZ = 15

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
HOSTNAME_RE = re.compile(rf"^{_LABEL}$")
DNS_NAME_MAX = 253
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}$")
# dnsmasq lease time: seconds, or a number of minutes/hours/days/weeks, or "infinite".
LEASE_TIME_RE = re.compile(r"^(?:infinite|([1-9][0-9]{0,9})([mhdw]?))$")
LEASE_UNIT_SECONDS = {"": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LEASE_TIME_MIN = 120  # dnsmasq raises anything shorter to two minutes
# Printable ASCII without quotes or backslash: safe inside an nft comment "..." and a dnsmasq line.
COMMENT_RE = re.compile(r"^[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]{1,64}$")
COMMENT_MAX = 64

_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_IP_TEXT_RE = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
_CIDR_TEXT_RE = re.compile(r"^([0-9A-Fa-f:.]{2,45})/([0-9]{1,3})$")
_PORTS_RE = re.compile(r"^(0|[1-9][0-9]{0,5})(?:-(0|[1-9][0-9]{0,5}))?$")
_PUBLIC_RE = re.compile(r"^(?:\[(?P<ip6>[^\]]*)\]|(?P<ip>[^:\[\]]*)):(?P<ports>[^:/]*)(?:/(?P<proto>.*))?$")
_DST6_RE = re.compile(r"^\[(?P<ip>[^\]]*)\](?::(?P<ports>.*))?$")
_DST4_RE = re.compile(r"^(?P<ip>[^:\[\]]*)(?::(?P<ports>.*))?$")

MAX_PREFIX = {4: 32, 6: 128}
MAX_L3_PREFIX = {4: 30, 6: 126}  # room for the gateway and at least one host
ANY_ADDRESS = {4: "0.0.0.0", 6: "::"}
VXLAN_DSTPORT = 4789
DEFAULT_LEASE_TIME = "12h"
DEFAULT_MANAGEMENT_PORTS = (PortRange(22, 22),)

_TOP_KEYS = ("version", "interfaces", "management", "policies", "networks")
_MANAGEMENT_KEYS = ("allow_from", "ports", "enforce")
_COMMON_KEYS = ("type", "iface", "mtu", "policy_profile")
_L3_KEYS = ("cidr", "gw_ip", "cidr6", "gw_ip6", "dhcp", "dns", "masq_out", "forwards")
_BRIDGE_KEYS = ("stp", "vlan_filtering", "vids", "ports")
_VLAN_KEYS = ("vlan", "parent")
_VXLAN_KEYS = ("bridge", "vni", "peers", "local", "dev", "dstport", "learning", "vxlan_iface")
# Every type but "vlan" has a bridge, and any bridge may take a VLAN sub-interface of a parent.
_BRIDGE_VLAN_KEYS = _VLAN_KEYS + ("vlan_iface",)
_KEYS_BY_TYPE = {
    "routed": _COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS,
    "bridge": _COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS,
    "vlan": _COMMON_KEYS + _L3_KEYS + _VLAN_KEYS,
    "vxlan": _COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS + _VXLAN_KEYS,
}
_NETWORK_KEYS = frozenset(key for keys in _KEYS_BY_TYPE.values() for key in keys)
_DHCP_KEYS = ("enabled", "range", "range6", "lease_time", "hosts")
_HOST_KEYS = ("mac", "ip", "hostname")
_DNS_KEYS = ("enabled", "zones", "records", "upstream")
_RECORD_KEYS = ("name", "ip")
_FORWARD_SHORT_KEYS = ("public", "dst")
_FORWARD_LONG_KEYS = ("protocol", "port", "dst_ip", "dst_port", "public_ip")
_FORWARD_KEYS = _FORWARD_SHORT_KEYS + _FORWARD_LONG_KEYS + ("hairpin", "comment")
_NETWORK_KEYS_SORTED = tuple(sorted(_NETWORK_KEYS))
# check_keys' fast path: every allowed-keys tuple as a set.
_KEY_SETS = {keys: frozenset(keys) for keys in (
    _TOP_KEYS, _MANAGEMENT_KEYS, _DHCP_KEYS, _HOST_KEYS, _DNS_KEYS, _RECORD_KEYS, _FORWARD_KEYS,
    _NETWORK_KEYS_SORTED, *_KEYS_BY_TYPE.values())}
_FORWARD_LONG_KEY_SET = frozenset(_FORWARD_LONG_KEYS)

_SHOW = reprlib.Repr()
_SHOW.maxstring = 70
_SHOW.maxother = 70
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 4
_SHOW.maxdict = 3
_SHOW.maxlevel = 2


def _show(value: object) -> str:
    """The user's value as it appears in a message: one line, bounded length."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _SHOW.repr(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _join(base: str, key: object) -> str:
    """``base.key``; keys that are not plain words go in brackets, quoted, so a path stays one line."""
    if isinstance(key, str) and _PLAIN_KEY_RE.fullmatch(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{_show(key)}]"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short_hash(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]


def default_bridge_name(network: str) -> str:
    """``gw-<name>``, or ``gw-`` + 7 characters + ``-`` + 4 hex of sha1(name) when that is too long."""
    name = f"gw-{network}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"gw-{network[:7]}-{_short_hash(network)}"


def default_vlan_name(parent: str, vid: int, network: str) -> str:
    """``<parent>.<vid>``, or ``vl<vid>-`` + 4 hex of sha1(network) when that is too long."""
    name = f"{parent}.{vid}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"vl{vid}-{_short_hash(network)}"


def default_vxlan_name(vni: int) -> str:
    return f"vx{vni}"


class _Addr(NamedTuple):
    version: int
    value: int
    text: str  # canonical


class _Net(NamedTuple):
    version: int
    first: int
    last: int
    prefixlen: int
    text: str  # canonical "network/prefix"


class _PublicEntry(NamedTuple):
    """One forward's public side, for the overlap check across all networks."""

    first: int
    last: int
    path: str
    ip: int | None  # None: any local address
    ip_text: str | None
    protocol: str
    family: int

    @property
    def text(self) -> str:
        address = ANY_ADDRESS[self.family] if self.ip_text is None else self.ip_text
        if self.family == 6:
            address = f"[{address}]"
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{address}:{ports}/{self.protocol}"


def _parse_ip(text: object) -> _Addr | None:
    """A strictly written IPv4 or IPv6 address (inet_pton rules: no zone, netmask or short forms)."""
    if not isinstance(text, str) or not _IP_TEXT_RE.fullmatch(text):
        return None
    # netaddr's per-family strategy functions: the same parsing as IPAddress without the object.
    try:
        if ":" in text:
            value = ipv6_strategy.str_to_int(text, flags=netaddr.INET_PTON)
            return _Addr(6, value, ipv6_strategy.int_to_str(value))
        value = ipv4_strategy.str_to_int(text, flags=netaddr.INET_PTON)
        return _Addr(4, value, ipv4_strategy.int_to_str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def _ip_text(value: int, version: int) -> str:
    return (ipv4_strategy if version == 4 else ipv6_strategy).int_to_str(value)


def _ip_problem(text: object, what: str = "an IP address") -> str:
    return f"{_show(text)} is not {what}"


def _parse_cidr(text: object, *, allow_bare: bool = False) -> tuple[_Net | None, str | None]:
    """A CIDR, or the reason it is not one. Host bits set is an error that names the network.

    With ``allow_bare`` a plain address is accepted as a host route (/32 or /128).
    """
    shape = ("an IP address or CIDR (e.g. 192.0.2.10 or 192.0.2.0/24)" if allow_bare
             else "a CIDR (expected ADDRESS/PREFIX, e.g. 10.33.0.0/24)")
    if allow_bare and isinstance(text, str) and "/" not in text:
        address = _parse_ip(text)
        if address is None:
            return None, f"{_show(text)} is not {shape}"
        return _Net(address.version, address.value, address.value, MAX_PREFIX[address.version],
                    f"{address.text}/{MAX_PREFIX[address.version]}"), None
    match = _CIDR_TEXT_RE.fullmatch(text) if isinstance(text, str) else None
    address = _parse_ip(match.group(1)) if match else None
    if address is None:
        return None, f"{_show(text)} is not {shape}"
    prefixlen = int(match.group(2))
    bits = MAX_PREFIX[address.version]
    if prefixlen > bits:
        return None, f"{_show(text)} has prefix /{prefixlen}, out of range 0-{bits} for IPv{address.version}"
    host_mask = (1 << (bits - prefixlen)) - 1
    first = address.value & ~host_mask
    network = f"{_ip_text(first, address.version)}/{prefixlen}"
    if address.value & host_mask:
        return None, f"{_show(text)} has host bits set; the network address is {network}"
    return _Net(address.version, first, first | host_mask, prefixlen, network), None


def _span(cidr: str) -> tuple[int, int, int, str]:
    network = netaddr.IPNetwork(cidr)
    return network.version, network.first, network.last, cidr


def _special_ranges() -> dict[str, tuple[tuple[int, int, int, str], ...]]:
    """Address ranges by meaning, as (version, first, last, cidr), computed once from netaddr."""
    if not NETADDR.available:
        return {}
    return {
        "multicast": (_span("224.0.0.0/4"), _span("ff00::/8")),
        "loopback": (_span("127.0.0.0/8"), _span("::1/128")),
        "link-local": (_span("169.254.0.0/16"), _span("fe80::/10")),
        "this-host": (_span("0.0.0.0/8"), _span("::/128")),
    }


SPECIAL_RANGES = _special_ranges()


def _in_ranges(version: int, first: int, last: int, kind: str) -> str | None:
    """The range of that kind that [first, last] overlaps, or None."""
    for range_version, range_first, range_last, cidr in SPECIAL_RANGES[kind]:
        if version == range_version and first <= range_last and range_first <= last:
            return cidr
    return None


def _unicast_problem(address: _Addr, *, allow_loopback: bool = False, allow_link_local: bool = False) -> str | None:
    """Why the address cannot be a unicast peer/destination, or None."""
    version, value = address.version, address.value
    if value == 0:
        return "the unspecified address"
    if _in_ranges(version, value, value, "multicast"):
        return "a multicast address"
    if version == 4 and value == 0xFFFFFFFF:
        return "the broadcast address"
    if not allow_loopback and _in_ranges(version, value, value, "loopback"):
        return "a loopback address"
    if not allow_link_local and _in_ranges(version, value, value, "link-local"):
        return "a link-local address"
    return None


def _host_problem(address: _Addr, net: _Net, gw: _Addr) -> str | None:
    """Why ``address`` cannot be a host of the subnet (outside, gateway, network, broadcast), or None."""
    if address.version != net.version:
        return f"is IPv{address.version}, the subnet {net.text} is IPv{net.version}"
    if not net.first <= address.value <= net.last:
        return f"is outside the subnet {net.text}"
    if address.value == gw.value:
        return "is the gateway address"
    if address.value == net.first:
        if net.version == 6:
            return f"is the subnet-router anycast address of {net.text}"
        return f"is the network address of {net.text}"
    if net.version == 4 and address.value == net.last:
        return f"is the broadcast address of {net.text}"
    return None


def _reserved_range(net: _Net) -> str | None:
    """Why no network can live in ``net`` (this-host, loopback, multicast), or None."""
    for kind in ("this-host", "loopback", "multicast"):
        reserved = _in_ranges(net.version, net.first, net.last, kind)
        if reserved:
            return f"overlaps the {kind} range {reserved}, which no network can use"
    return None


def _largest_block_without(first: int, last: int, hole: int) -> tuple[int, int] | None:
    """The larger part of [first, last] once ``hole`` is taken out (the upper one on a tie)."""
    if hole < first or hole > last:
        return first, last
    below = (first, hole - 1) if hole > first else None
    above = (hole + 1, last) if hole < last else None
    if below and above:
        return below if below[1] - below[0] > above[1] - above[0] else above
    return above or below


def default_dhcp_range(net: _Net, gw: _Addr) -> tuple[int, int]:
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


class _Parser:
    """One validation run: the issues found so far and the indexes for the cross-network checks."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.issues: list[Issue] = []
        self.warnings: list[str] = []
        self.interfaces: dict[str, str] = {}
        self.bad_interface_keys: set[str] = set()
        self.profiles: dict[str, Profile] = dict(BUILTIN_PROFILES)
        self.bad_profiles: set[str] = set()
        # References to an interfaces entry or profile that is itself invalid are not reported
        # again, but must still invalidate the network that makes them.
        self.suppressed = 0
        self.management = Management()
        # Cross-network checks, done once every network is parsed.
        self.created: dict[str, str] = {}  # link name -> path of the field that creates it
        self.foreign: list[tuple[str, str]] = []  # (existing link name, path of the reference)
        self.subnets: list[tuple[int, int, int, str, str, str]] = []  # (version, first, last, path, cidr, network)
        self.publics: dict[tuple[str, int], list[_PublicEntry]] = {}  # (protocol, family) -> entries
        self.vnis: dict[int, str] = {}
        self.vlan_links: dict[tuple[str, int], str] = {}
        self.enslaved: dict[str, str] = {}
        self.public_ip_cache: dict[str, _Addr | None] = {}
        self.port_ranges: dict[tuple[int, int], PortRange] = {}  # shared, immutable: built once per value

    # -- plumbing ---------------------------------------------------------------------------

    def fail(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def mapping(self, value: object, path: str, what: str = "a mapping") -> dict | None:
        if isinstance(value, dict):
            return value
        self.fail(path, f"expected {what}, got {_show(value)} ({_kind(value)})")
        return None

    def check_keys(self, data: dict, allowed: tuple[str, ...], path: str, kind: str | None = None) -> None:
        if data.keys() <= _KEY_SETS[allowed]:
            return
        for key in data:
            if isinstance(key, str) and key in allowed:
                continue
            if kind is not None and isinstance(key, str) and key in _NETWORK_KEYS:
                self.fail(_join(path, key), f"key {_show(key)} does not apply to a network of type {kind}")
            else:
                self.fail(_join(path, key), f"unknown key {_show(key)} (known keys: {', '.join(allowed)})")

    def get_bool(self, data: dict, key: str, path: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.fail(_join(path, key), f"expected a boolean (true or false), got {_show(value)} ({_kind(value)})")
        return default

    def get_int(self, data: dict, key: str, path: str, low: int, high: int, what: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        return self.check_int(value, _join(path, key), low, high, what)

    def check_int(self, value: object, path: str, low: int, high: int, what: str) -> int | None:
        if not _is_int(value):
            self.fail(path, f"expected an integer, got {_show(value)} ({_kind(value)})")
            return None
        if not low <= value <= high:
            self.fail(path, f"{what} {value} is out of range {low}-{high}")
            return None
        return int(value)

    def get_list(self, data: dict, key: str, path: str) -> list:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return list(value)
        self.fail(_join(path, key), f"expected a list, got {_show(value)} ({_kind(value)})")
        return []

    def ip(self, value: object, path: str, version: int | None = None) -> _Addr | None:
        address = _parse_ip(value)
        if address is None:
            self.fail(path, _ip_problem(value))
            return None
        if version is not None and address.version != version:
            self.fail(path, f"{_show(value)} is not an IPv{version} address")
            return None
        return address

    def unicast(self, value: object, path: str, **allow: bool) -> _Addr | None:
        address = self.ip(value, path)
        if address is None:
            return None
        problem = _unicast_problem(address, **allow)
        if problem:
            self.fail(path, f"{_show(value)} is {problem}, not a unicast address")
            return None
        return address

    def iface_name(self, value: object, path: str) -> str | None:
        """A literal kernel interface name."""
        if not isinstance(value, str):
            self.fail(path, f"expected an interface name, got {_show(value)} ({_kind(value)})")
            return None
        if not INTERFACE_NAME_RE.fullmatch(value):
            self.fail(path, f"{_show(value)} is not a valid interface name (1-15 characters of A-Z a-z 0-9 "
                            f"_ . @ + -, not starting with . @ + or -)")
            return None
        if value in RESERVED_INTERFACE_NAMES:
            self.fail(path, f"{_show(value)} is a reserved interface name")
            return None
        return str(value)

    def link_ref(self, value: object, path: str) -> str | None:
        """A reference to an existing link: a key of ``interfaces`` or a literal name; resolved."""
        if isinstance(value, str):
            if value in self.interfaces:
                return self.interfaces[value]  # the entry itself is checked as a reference
            if value in self.bad_interface_keys:
                self.suppressed += 1  # its definition is already reported
                return None
        if not isinstance(value, str) or not INTERFACE_NAME_RE.fullmatch(value) or value in RESERVED_INTERFACE_NAMES:
            keys = ", ".join(sorted(self.interfaces)) or "none defined"
            self.fail(path, f"{_show(value)} is neither a key of interfaces ({keys}) nor a valid interface name")
            return None
        self.foreign.append((str(value), path))
        return str(value)

    def port_range(self, value: object, path: str, low: int = 1, high: int = 65535,
                   what: str = "port") -> PortRange | None:
        """A port (or VLAN id) as an integer or a string ``"N"`` / ``"A-B"``."""
        match = _PORTS_RE.fullmatch(value) if isinstance(value, str) else None
        if match is not None:
            first, second = match.groups()
            first = int(first)
            last = first if second is None else int(second)
        elif _is_int(value):
            first = last = int(value)
        else:
            self.fail(path, f"expected a {what} or a range \"A-B\", got {_show(value)} ({_kind(value)})")
            return None
        if not low <= first <= high:
            self.fail(path, f"{what} {first} is out of range {low}-{high}")
            return None
        if not low <= last <= high:
            self.fail(path, f"{what} {last} is out of range {low}-{high}")
            return None
        if first > last:
            self.fail(path, f"{what} range {_show(value)} starts above its end")
            return None
        port_range = self.port_ranges.get((first, last))
        if port_range is None:
            port_range = self.port_ranges[first, last] = PortRange(first, last)
        return port_range

    def range_list(self, values: list, path: str, low: int, high: int, what: str) -> tuple[PortRange, ...]:
        """Sorted, non-overlapping ranges (nft interval sets refuse overlaps)."""
        parsed: list[tuple[PortRange, str]] = []
        for index, value in enumerate(values):
            item_path = f"{path}[{index}]"
            port_range = self.port_range(value, item_path, low, high, what)
            if port_range is not None:
                parsed.append((port_range, item_path))
        parsed.sort()
        reach: tuple[PortRange, str] | None = None
        for port_range, item_path in parsed:
            if reach is not None and port_range.first <= reach[0].last:
                self.fail(item_path, f"{what} {port_range} overlaps {what} {reach[0]} at {reach[1]}")
            if reach is None or port_range.last > reach[0].last:
                reach = (port_range, item_path)
        return tuple(port_range for port_range, _path in parsed)

    # -- top level --------------------------------------------------------------------------

    def topology(self, data: object) -> Topology | None:
        root = self.prefix
        if self.mapping(data, root, "a mapping (the topology)") is None:
            return None
        self.check_keys(data, _TOP_KEYS, root)
        version = data.get("version", 1)
        if not _is_int(version):
            self.fail(_join(root, "version"), f"expected an integer, got {_show(version)} ({_kind(version)})")
        elif version not in SUPPORTED_VERSIONS:
            self.fail(_join(root, "version"), f"unsupported version {version} (supported: 1)")
        self.parse_interfaces(data.get("interfaces"), _join(root, "interfaces"))
        self.parse_management(data.get("management"), _join(root, "management"))
        self.parse_policies(data.get("policies"), _join(root, "policies"))
        networks = self.parse_networks(data.get("networks"), _join(root, "networks"))
        self.check_subnet_overlaps()
        self.check_public_overlaps()
        self.check_links()
        self.check_management(networks)
        return Topology(
            version=1,
            interfaces=tuple(sorted(self.interfaces.items())),
            management=self.management,
            profiles=tuple(sorted(self.profiles.items())),
            networks=tuple(sorted(networks, key=lambda network: network.name)),
            warnings=tuple(self.warnings),
        )

    def parse_interfaces(self, value: object, path: str) -> None:
        if value is None:
            return
        data = self.mapping(value, path)
        if data is None:
            self.bad_interface_keys.add("uplink")  # no default VLAN parent can be reported as missing
            return
        for key, name in data.items():
            key_path = _join(path, key)
            if not isinstance(key, str) or not INTERFACE_KEY_RE.fullmatch(key):
                self.fail(key_path, f"interface key {_show(key)} must match {INTERFACE_KEY_RE.pattern}")
                if isinstance(key, str):
                    self.bad_interface_keys.add(key)
                continue
            resolved = self.iface_name(name, key_path)
            if resolved is None:
                self.bad_interface_keys.add(key)
                continue
            self.interfaces[str(key)] = resolved
            self.foreign.append((resolved, key_path))
        # A name that is both another entry's link and a key meaning a different link would
        # resolve differently once written out resolved (topology_to_dict): refuse it.
        for key, name in self.interfaces.items():
            if name != key and name in self.interfaces and self.interfaces[name] != name:
                self.fail(_join(path, key), f"{_show(name)} is also a key of interfaces (meaning "
                                            f"{self.interfaces[name]}); references to it would be ambiguous")

    def parse_management(self, value: object, path: str) -> None:
        if value is None:
            return
        data = self.mapping(value, path)
        if data is None:
            return
        self.check_keys(data, _MANAGEMENT_KEYS, path)
        sources: list[tuple[_Net, str]] = []
        for index, item in enumerate(self.get_list(data, "allow_from", path)):
            item_path = f"{path}.allow_from[{index}]"
            net, problem = _parse_cidr(item, allow_bare=True)
            if problem:
                self.fail(item_path, problem)
            else:
                sources.append((net, item_path))
        sources.sort(key=lambda source: (source[0].version, source[0].first, source[0].prefixlen))
        # nft interval sets refuse overlapping elements: report them rather than merge silently.
        reach: tuple[_Net, str] | None = None
        for net, net_path in sources:
            if reach is not None and reach[0].version == net.version and net.first <= reach[0].last:
                self.fail(net_path, f"{net.text} overlaps {reach[0].text} at {reach[1]}")
            if reach is None or reach[0].version != net.version or net.last > reach[0].last:
                reach = (net, net_path)
        ports = DEFAULT_MANAGEMENT_PORTS
        if data.get("ports") is not None:
            ports = self.range_list(self.get_list(data, "ports", path), _join(path, "ports"), 1, 65535, "port")
        enforce = self.get_bool(data, "enforce", path, True)
        self.management = Management(
            allow_from=tuple(net.text for net, _path in sources),
            ports=ports,
            enforce=enforce,
        )

    def parse_policies(self, value: object, path: str) -> None:
        if value is None:
            return
        data = self.mapping(value, path)
        if data is None:
            return
        for name, body in data.items():
            profile = parse_profile(name, body, _join(path, name), self.issues)  # checks the name too
            if profile is None:
                if isinstance(name, str):
                    self.bad_profiles.add(name)
            else:
                self.profiles[name] = profile

    def parse_networks(self, value: object, path: str) -> list[Network]:
        if value is None:
            return []
        data = self.mapping(value, path)
        if data is None:
            return []
        networks = []
        for name, body in data.items():
            network = self.parse_network(name, body, _join(path, name))
            if network is not None:
                networks.append(network)
        return networks

    # -- one network ------------------------------------------------------------------------

    def parse_network(self, name: object, value: object, path: str) -> Network | None:
        name_ok = isinstance(name, str) and bool(NETWORK_NAME_RE.fullmatch(name))
        if not name_ok:
            self.fail(path, f"network name {_show(name)} must match {NETWORK_NAME_RE.pattern} "
                            f"(it becomes nft chain and file names)")
        data = self.mapping(value, path)
        if data is None:
            return None
        kind = data.get("type")
        if kind is None:
            self.fail(_join(path, "type"), f"required: one of {', '.join(NETWORK_TYPES)}")
        elif not isinstance(kind, str) or kind not in NETWORK_TYPES:
            self.fail(_join(path, "type"), f"{_show(kind)} is not a network type ({', '.join(NETWORK_TYPES)})")
            kind = None
        if kind is None:
            self.check_keys(data, _NETWORK_KEYS_SORTED, path)
            return None
        name = str(name) if name_ok else ""
        self.check_keys(data, _KEYS_BY_TYPE[kind], path, kind)
        start, suppressed = len(self.issues), self.suppressed
        fields: dict[str, Any] = {"name": name, "type": kind}

        fields["mtu"] = self.get_int(data, "mtu", path, 68, 65535, "MTU")
        subnets, l3 = self.parse_l3(data, path, kind, _show(name))
        fields["subnets"] = tuple(subnets)
        if "dhcp" in data:
            fields["dhcp"] = self.parse_dhcp(data["dhcp"], _join(path, "dhcp"), l3)
        if "dns" in data:
            fields["dns"] = self.parse_dns(data["dns"], _join(path, "dns"), l3)
        if data.get("masq_out") is not None:
            fields["masq_out"] = self.link_ref(data["masq_out"], _join(path, "masq_out"))
            if l3 is not None and not l3:
                self.fail(_join(path, "masq_out"), "masquerading needs an address on the network: set cidr and gw_ip")
        fields["forwards"] = self.parse_forwards(data, path, l3)
        fields["policy_profile"] = self.parse_profile_ref(data, path)
        if kind != "vlan":
            self.parse_bridge_attributes(data, path, fields)
        self.parse_vlan(data, path, kind, name, fields)
        if kind == "vxlan":
            self.parse_vxlan(data, path, fields)
        self.parse_iface(data, path, kind, name, fields)
        if len(self.issues) > start or self.suppressed > suppressed or not name_ok:
            return None
        return Network(**fields)

    def parse_iface(self, data: dict, path: str, kind: str, name: str, fields: dict) -> None:
        key = "iface"
        given = data.get("iface")
        if kind == "vxlan" and data.get("bridge") is not None:
            if given is not None:
                self.fail(_join(path, "bridge"), "give either iface or bridge (the same bridge), not both")
                return
            key, given = "bridge", data["bridge"]
        iface_path = _join(path, key)
        default = None
        if not name:
            pass  # an invalid network name is already reported; nothing can be derived from it
        elif kind != "vlan":
            default = default_bridge_name(name)
        elif fields.get("parent") is not None and fields.get("vlan") is not None:
            default = default_vlan_name(fields["parent"], fields["vlan"], name)
        iface = default if given is None else self.iface_name(given, iface_path)
        if iface is None:
            return  # already reported
        # "Generated" is a property of the name, so that writing it out and reading it back
        # (topology_to_dict) gives the same model.
        fields["iface"] = iface
        fields["iface_generated"] = iface == default
        self.create(iface, iface_path)

    def create(self, link: str, path: str) -> None:
        other = self.created.get(link)
        if other is not None:
            self.fail(path, f"link {_show(link)} is also created by {other}")
        else:
            self.created[link] = path

    # -- L3 ---------------------------------------------------------------------------------

    def parse_l3(self, data: dict, path: str, kind: str,
                 network: str) -> tuple[list[Subnet], dict[int, tuple[_Net, _Addr]] | None]:
        """The network's subnets, and per family (net, gw) for the checks that need them.

        The second value is None when the addressing itself is invalid, so that dependent
        fields are not reported a second time.
        """
        l3: dict[int, tuple[_Net, _Addr]] | None = {}
        subnets: list[Subnet] = []
        has_cidr = data.get("cidr") is not None or data.get("gw_ip") is not None
        if kind == "routed" or has_cidr:
            pair = self.parse_subnet(data, path, "cidr", "gw_ip", None)
            if pair is None:
                l3 = None
            else:
                l3[pair[0].version] = pair
        if data.get("cidr6") is not None or data.get("gw_ip6") is not None:
            if l3 is not None and 4 not in l3:
                if l3:
                    self.fail(_join(path, "cidr6"), "cidr6 adds IPv6 to an IPv4 cidr, but cidr is already IPv6")
                else:
                    self.fail(_join(path, "cidr6"), "cidr6 adds IPv6 to an IPv4 network: set cidr and gw_ip first")
                l3 = None
            pair = self.parse_subnet(data, path, "cidr6", "gw_ip6", 6)
            if pair is None:
                l3 = None
            elif l3 is not None:
                l3[6] = pair
        for version in (4, 6):
            if l3 is not None and version in l3:
                net, gw = l3[version]
                key = "cidr6" if version == 6 and 4 in l3 else "cidr"
                subnets.append(Subnet(cidr=net.text, gw_ip=gw.text, family=version))
                self.subnets.append((version, net.first, net.last, _join(path, key), net.text, network))
        return subnets, l3

    def parse_subnet(self, data: dict, path: str, cidr_key: str, gw_key: str,
                     version: int | None) -> tuple[_Net, _Addr] | None:
        cidr_path, gw_path = _join(path, cidr_key), _join(path, gw_key)
        ok = True
        for key, key_path in ((cidr_key, cidr_path), (gw_key, gw_path)):
            if data.get(key) is None:
                self.fail(key_path, f"required (the network's {'address' if key == gw_key else 'subnet'})")
                ok = False
        if not ok:
            return None
        net, problem = _parse_cidr(data[cidr_key])
        if problem:
            self.fail(cidr_path, problem)
        elif version is not None and net.version != version:
            self.fail(cidr_path, f"{net.text} is not an IPv{version} CIDR")
            net = None
        elif net.prefixlen > MAX_L3_PREFIX[net.version]:
            self.fail(cidr_path, f"{net.text} is too small for a network with a gateway and hosts "
                                 f"(the prefix must be /{MAX_L3_PREFIX[net.version]} or shorter)")
            net = None
        else:
            reserved = _reserved_range(net)
            if reserved:
                self.fail(cidr_path, f"{net.text} {reserved}")
                net = None
        gw = self.ip(data[gw_key], gw_path)
        if net is None or gw is None:
            return None
        if gw.version != net.version:
            self.fail(gw_path, f"{gw.text} is IPv{gw.version} but {cidr_key} {net.text} is IPv{net.version}")
            return None
        if not net.first <= gw.value <= net.last:
            self.fail(gw_path, f"{gw.text} is outside {cidr_key} {net.text}")
            return None
        if gw.value == net.first:
            if net.version == 6:
                self.fail(gw_path, f"{gw.text} is the subnet-router anycast address of {net.text}")
            else:
                self.fail(gw_path, f"{gw.text} is the network address of {net.text}, not a host address")
            return None
        if net.version == 4 and gw.value == net.last:
            self.fail(gw_path, f"{gw.text} is the broadcast address of {net.text}, not a host address")
            return None
        return net, gw

    # -- DHCP and DNS -----------------------------------------------------------------------

    def switch_or_mapping(self, value: object, path: str, keys: tuple[str, ...]) -> dict | None:
        """A section given as true/false or as a mapping of ``keys``: its settings, None when off or invalid."""
        if value is None or value is False:
            return None
        if value is True:
            return {}
        data = self.mapping(value, path, "a boolean or a mapping")
        if data is not None:
            self.check_keys(data, keys, path)
        return data

    def parse_dhcp(self, value: object, path: str, l3: dict | None) -> Dhcp | None:
        data = self.switch_or_mapping(value, path, _DHCP_KEYS)
        if data is None:
            return None
        enabled = self.get_bool(data, "enabled", path, True)
        lease_time = self.parse_lease_time(data, path)
        if enabled and l3 is not None and not l3:
            self.fail(path, "DHCP needs an address on the network: set cidr and gw_ip")
            l3 = None
        ranges = []
        for version, key in ((4, "range"), (6, "range6")):
            key_path = _join(path, key)
            given = data.get(key)
            if l3 is None:
                if given is not None:
                    self.parse_range_syntax(given, key_path, version)
                continue
            if version not in l3:
                if given is not None:
                    self.fail(key_path, f"{_show(given)} given, but the network has no IPv{version} subnet")
                continue
            net, gw = l3[version]
            if given is None:
                start, end = default_dhcp_range(net, gw)
            else:
                parsed = self.parse_range(given, key_path, version, net, gw)
                if parsed is None:
                    continue
                start, end = parsed
            ranges.append(DhcpRange(start=_ip_text(start, version), end=_ip_text(end, version), family=version))
        hosts = self.parse_static_leases(data, path, l3)
        if not enabled:
            return None
        return Dhcp(ranges=tuple(ranges), lease_time=lease_time, hosts=hosts)

    def parse_lease_time(self, data: dict, path: str) -> str:
        value = data.get("lease_time")
        if value is None:
            return DEFAULT_LEASE_TIME
        key_path = _join(path, "lease_time")
        if _is_int(value):  # a bare number of seconds, as dnsmasq reads it
            value = str(value)
        match = LEASE_TIME_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.fail(key_path, f"{_show(value)} is not a lease time (seconds, or a number with m, h, d or w, "
                                f"or \"infinite\")")
            return DEFAULT_LEASE_TIME
        if match.group(1) and int(match.group(1)) * LEASE_UNIT_SECONDS[match.group(2)] < LEASE_TIME_MIN:
            self.fail(key_path, f"lease time {_show(value)} is shorter than dnsmasq's minimum of 2 minutes")
        return str(value)

    def parse_range_syntax(self, value: object, path: str, version: int) -> tuple[_Addr, _Addr] | None:
        if not isinstance(value, str) or value.count("-") != 1:
            self.fail(path, f"expected \"START-END\", got {_show(value)} ({_kind(value)})")
            return None
        start_text, end_text = value.split("-")
        start = self.ip(start_text, path, version)
        end = self.ip(end_text, path, version)
        if start is None or end is None:
            return None
        if start.value > end.value:
            self.fail(path, f"range {_show(value)} starts above its end")
            return None
        return start, end

    def parse_range(self, value: object, path: str, version: int, net: _Net, gw: _Addr) -> tuple[int, int] | None:
        parsed = self.parse_range_syntax(value, path, version)
        if parsed is None:
            return None
        start, end = parsed
        for address in (start, end):
            problem = _host_problem(address, net, gw)
            if problem and problem != "is the gateway address":
                self.fail(path, f"{address.text} in range {_show(value)} {problem}")
                return None
        if start.value <= gw.value <= end.value:
            self.fail(path, f"range {_show(value)} contains the gateway address {gw.text}")
            return None
        return start.value, end.value

    def parse_static_leases(self, data: dict, path: str, l3: dict | None) -> tuple[StaticLease, ...]:
        hosts: list[tuple[int, int, StaticLease]] = []
        by_ip: dict[int, str] = {}
        by_mac: dict[tuple[str, int], str] = {}
        by_hostname: dict[str, tuple[str, str]] = {}
        for index, item in enumerate(self.get_list(data, "hosts", path)):
            item_path = f"{path}.hosts[{index}]"
            host = self.mapping(item, item_path)
            if host is None:
                continue
            self.check_keys(host, _HOST_KEYS, item_path)
            mac = self.parse_mac(host.get("mac"), _join(item_path, "mac"))
            address = None
            if host.get("ip") is None:
                self.fail(_join(item_path, "ip"), "required (the address this host always gets)")
            else:
                address = self.ip(host["ip"], _join(item_path, "ip"))
            hostname = None
            if host.get("hostname") is not None:
                hostname = self.dns_name(host["hostname"], _join(item_path, "hostname"), HOSTNAME_RE, "host name")
            if address is None or mac is None or l3 is None:
                continue
            if address.version not in l3:
                self.fail(_join(item_path, "ip"), f"{address.text} is IPv{address.version}, the network has no "
                                                  f"IPv{address.version} subnet")
                continue
            problem = _host_problem(address, *l3[address.version])
            if problem:
                self.fail(_join(item_path, "ip"), f"{address.text} {problem}")
                continue
            if address.value in by_ip:
                self.fail(_join(item_path, "ip"), f"{address.text} is already given to {by_ip[address.value]}")
                continue
            if (mac, address.version) in by_mac:
                self.fail(_join(item_path, "mac"), f"{mac} already has an IPv{address.version} lease at "
                                                   f"{by_mac[mac, address.version]}")
                continue
            if hostname is not None and hostname in by_hostname and by_hostname[hostname][0] != mac:
                self.fail(_join(item_path, "hostname"), f"{hostname} is already the name of another MAC address "
                                                        f"at {by_hostname[hostname][1]}")
                continue
            by_ip[address.value] = item_path
            by_mac[mac, address.version] = item_path
            if hostname is not None:
                by_hostname.setdefault(hostname, (mac, item_path))
            hosts.append((address.version, address.value, StaticLease(mac=mac, ip=address.text, hostname=hostname)))
        hosts.sort(key=lambda host: host[:2])
        return tuple(lease for _family, _value, lease in hosts)

    def parse_mac(self, value: object, path: str) -> str | None:
        if value is None:
            self.fail(path, "required (the client's MAC address)")
            return None
        if not isinstance(value, str) or not MAC_RE.fullmatch(value):
            self.fail(path, f"{_show(value)} is not a MAC address (six hex octets separated by : or -)")
            return None
        mac = value.lower().replace("-", ":")
        first_octet = int(mac[:2], 16)
        if first_octet & 1:
            self.fail(path, f"{_show(value)} is a multicast MAC address, not a host's")
            return None
        if mac == "00:00:00:00:00:00":
            self.fail(path, f"{_show(value)} is the all-zero MAC address")
            return None
        return mac

    def dns_name(self, value: object, path: str, pattern: re.Pattern = DNS_NAME_RE, what: str = "DNS name") -> str | None:
        """A host or domain name of RFC 1123 labels, lower-cased, without a trailing dot."""
        if not isinstance(value, str):
            self.fail(path, f"expected a {what}, got {_show(value)} ({_kind(value)})")
            return None
        name = value.lower()
        if pattern is DNS_NAME_RE and name.endswith("."):
            name = name[:-1]
        if len(name) > DNS_NAME_MAX or not pattern.fullmatch(name):
            self.fail(path, f"{_show(value)} is not a valid {what} (labels of 1-63 letters, digits and inner "
                            f"hyphens{', separated by dots, at most 253 characters' if pattern is DNS_NAME_RE else ''})")
            return None
        return name

    def parse_dns(self, value: object, path: str, l3: dict | None) -> Dns | None:
        data = self.switch_or_mapping(value, path, _DNS_KEYS)
        if data is None:
            return None
        enabled = self.get_bool(data, "enabled", path, True)
        if enabled and l3 is not None and not l3:
            self.fail(path, "DNS needs an address on the network to listen on: set cidr and gw_ip")
        zones: list[str] = []
        seen_zones: dict[str, str] = {}
        for index, item in enumerate(self.get_list(data, "zones", path)):
            item_path = f"{path}.zones[{index}]"
            zone = self.dns_name(item, item_path)
            if zone is None:
                continue
            if zone in seen_zones:
                self.fail(item_path, f"zone {zone} is already listed at {seen_zones[zone]}")
                continue
            seen_zones[zone] = item_path
            zones.append(zone)
        records = self.parse_records(data.get("records"), _join(path, "records"))
        upstream: list[str] = []
        seen_upstream: dict[str, str] = {}
        for index, item in enumerate(self.get_list(data, "upstream", path)):
            item_path = f"{path}.upstream[{index}]"
            address = self.unicast(item, item_path, allow_loopback=True)
            if address is None:
                continue
            if address.text in seen_upstream:
                self.fail(item_path, f"{address.text} is already listed at {seen_upstream[address.text]}")
                continue
            seen_upstream[address.text] = item_path
            upstream.append(address.text)
        if not enabled:
            return None
        return Dns(zones=tuple(zones), records=records, upstream=tuple(upstream))

    def parse_records(self, value: object, path: str) -> tuple[DnsRecord, ...]:
        """``{name: ip}`` or ``[{name, ip}]``; the list form allows several addresses per name."""
        if value is None:
            return ()
        pairs: list[tuple[object, object, str, str]] = []  # (name, ip, name path, ip path)
        if isinstance(value, dict):
            for name, address in value.items():
                name_path = f"{path}[{_show(name)}]"  # record names contain dots
                pairs.append((name, address, name_path, name_path))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                item_path = f"{path}[{index}]"
                record = self.mapping(item, item_path)
                if record is None:
                    continue
                self.check_keys(record, _RECORD_KEYS, item_path)
                for key in _RECORD_KEYS:
                    if record.get(key) is None:
                        self.fail(_join(item_path, key), "required")
                if record.get("name") is not None and record.get("ip") is not None:
                    pairs.append((record["name"], record["ip"], _join(item_path, "name"), _join(item_path, "ip")))
        else:
            self.fail(path, f"expected a mapping of name to IP or a list of {{name, ip}}, got {_show(value)} "
                            f"({_kind(value)})")
            return ()
        records: dict[tuple[str, int, int], DnsRecord] = {}
        for name, address_text, name_path, ip_path in pairs:
            record_name = self.dns_name(name, name_path)
            address = self.unicast(address_text, ip_path, allow_loopback=True, allow_link_local=True)
            if record_name is None or address is None:
                continue
            key = (record_name, address.version, address.value)
            if key in records:
                self.fail(name_path, f"record {record_name} -> {address.text} is listed twice")
                continue
            records[key] = DnsRecord(name=record_name, ip=address.text)
        return tuple(records[key] for key in sorted(records))

    # -- forwards ---------------------------------------------------------------------------

    def parse_forwards(self, data: dict, path: str, l3: dict | None) -> tuple[Forward, ...]:
        items = self.get_list(data, "forwards", path)
        if items and l3 is not None and not l3:
            self.fail(_join(path, "forwards"), "forwards need an address on the network: set cidr and gw_ip")
            l3 = None
        forwards = []
        for index, item in enumerate(items):
            forward = self.parse_forward(item, f"{path}.forwards[{index}]", l3)
            if forward is not None:
                forwards.append(forward)
        forwards.sort(key=_forward_order)
        return tuple(forwards)

    def parse_forward(self, value: object, path: str, l3: dict | None) -> Forward | None:
        data = self.mapping(value, path)
        if data is None:
            return None
        self.check_keys(data, _FORWARD_KEYS, path)
        long = not data.keys().isdisjoint(_FORWARD_LONG_KEY_SET)
        if long and ("public" in data or "dst" in data):
            short_keys = ", ".join(key for key in _FORWARD_SHORT_KEYS if key in data)
            long_keys = ", ".join(key for key in _FORWARD_LONG_KEYS if key in data)
            self.fail(path, f"mixes the short form ({short_keys}) with the long form ({long_keys}); use one")
            return None
        if long:
            parsed = self.parse_forward_long(data, path)
        else:
            parsed = self.parse_forward_short(data, path)
        hairpin = self.get_bool(data, "hairpin", path, True)
        comment = self.parse_comment(data, path)
        if parsed is None:
            return None
        protocol, family, public_ip, public_ports, dst, dst_ports, public_path, dst_path, dst_port_path = parsed
        if family is None:
            family = dst.version
        elif dst.version != family:
            self.fail(dst_path, f"{dst.text} is IPv{dst.version}, the public side is IPv{family}")
            return None
        if dst_ports is None:
            dst_ports = public_ports
        elif dst_ports.size != public_ports.size:
            self.fail(dst_port_path, f"destination ports {dst_ports} ({dst_ports.size}) and public ports "
                                     f"{public_ports} ({public_ports.size}) differ in size")
            return None
        entry = _PublicEntry(public_ports.first, public_ports.last, public_path,
                             None if public_ip is None else public_ip.value,
                             None if public_ip is None else public_ip.text, protocol, family)
        self.publics.setdefault((protocol, family), []).append(entry)
        if l3 is None:
            return None
        if family not in l3:
            self.fail(dst_path, f"{dst.text} is IPv{family}, the network has no IPv{family} subnet")
            return None
        problem = _host_problem(dst, *l3[family])
        if problem:
            self.fail(dst_path, f"{dst.text} {problem}")
            return None
        if protocol == "tcp" and public_ip is None:
            self.warn_management_forward(path, entry, dst.text)
        return Forward(
            family=family, protocol=protocol, public_ip=None if public_ip is None else public_ip.text,
            public_port=public_ports, dst_ip=dst.text, dst_port=dst_ports, hairpin=hairpin, comment=comment,
        )

    def parse_forward_short(self, data: dict, path: str) -> tuple | None:
        public_path, dst_path = f"{path}.public", f"{path}.dst"
        public, dst = data.get("public"), data.get("dst")
        if public is None:
            self.fail(public_path, "required (\"IP:PORT/PROTO\", e.g. \"0.0.0.0:4022/tcp\")")
        if dst is None:
            self.fail(dst_path, "required (\"IP[:PORT]\", e.g. \"10.33.0.10:22\")")
        if public is None or dst is None:
            return None
        public_parsed = self.parse_public(public, public_path)
        dst_parsed = self.parse_dst(dst, dst_path)
        if public_parsed is None or dst_parsed is None:
            return None
        return (*public_parsed, *dst_parsed, public_path, dst_path, dst_path)

    def parse_public(self, value: object, path: str) -> tuple[str, int | None, _Addr | None, PortRange] | None:
        match = _PUBLIC_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.fail(path, f"{_show(value)} is not \"IP:PORT[-PORT]/PROTO\" (e.g. \"0.0.0.0:4022/tcp\"; "
                            f"IPv6 in brackets, \"[::]:4022/tcp\")")
            return None
        protocol = match.group("proto")
        if protocol is None:
            protocol = "tcp"
        elif protocol not in L4_PROTOCOLS:
            self.fail(path, f"protocol {_show(protocol)} in {_show(value)} is not one of {', '.join(L4_PROTOCOLS)}")
            return None
        ports = self.port_range(match.group("ports"), path)
        if ports is None:
            return None
        ip_text, version = (match.group("ip6"), 6) if match.group("ip6") is not None else (match.group("ip"), 4)
        if version == 4 and ip_text == "":
            return protocol, None, None, ports
        family, public_ip = self.public_address(ip_text, path, version)
        if family is None:
            return None
        return protocol, family, public_ip, ports

    def public_address(self, text: str, path: str, version: int | None) -> tuple[int | None, _Addr | None]:
        """(family, address) of a forward's public IP; the any-address gives (family, None)."""
        if text not in self.public_ip_cache:
            self.public_ip_cache[text] = _parse_ip(text)
        address = self.public_ip_cache[text]
        if address is None or (version is not None and address.version != version):
            self.fail(path, _ip_problem(text, f"an IPv{version} address" if version else "an IP address"))
            return None, None
        if address.value == 0:
            return address.version, None
        problem = _unicast_problem(address)
        if problem:
            self.fail(path, f"{address.text} is {problem}, not a local unicast address")
            return None, None
        return address.version, address

    def parse_dst(self, value: object, path: str) -> tuple[_Addr, PortRange | None] | None:
        if not isinstance(value, str):
            self.fail(path, f"expected \"IP[:PORT[-PORT]]\", got {_show(value)} ({_kind(value)})")
            return None
        if value.startswith("["):
            match, version = _DST6_RE.fullmatch(value), 6
        elif value.count(":") > 1:  # a bare IPv6 address, no port
            match, version = _DST6_RE.fullmatch(f"[{value}]"), 6
        else:
            match, version = _DST4_RE.fullmatch(value), 4
        if match is None:
            self.fail(path, f"{_show(value)} is not \"IP[:PORT[-PORT]]\" (IPv6 in brackets, \"[2001:db8::10]:22\")")
            return None
        # Whether it is a host address is decided against the network's subnet.
        address = self.ip(match.group("ip"), path, version)
        if address is None:
            return None
        ports = None
        if match.group("ports") is not None:
            ports = self.port_range(match.group("ports"), path)
            if ports is None:
                return None
        return address, ports

    def parse_forward_long(self, data: dict, path: str) -> tuple | None:
        protocol = "tcp" if data.get("protocol") is None else data["protocol"]
        ok = True
        if protocol not in L4_PROTOCOLS:
            self.fail(_join(path, "protocol"), f"{_show(protocol)} is not one of {', '.join(L4_PROTOCOLS)}")
            ok = False
        public_path = _join(path, "port")
        ports = None
        if data.get("port") is None:
            self.fail(public_path, "required (the public port or range)")
        else:
            ports = self.port_range(data["port"], public_path)
        family, public_ip = None, None
        if data.get("public_ip") is not None:
            if isinstance(data["public_ip"], str):
                family, public_ip = self.public_address(data["public_ip"], _join(path, "public_ip"), None)
                ok = ok and family is not None
            else:
                self.fail(_join(path, "public_ip"), _ip_problem(data["public_ip"]))
                ok = False
        dst_path = _join(path, "dst_ip")
        dst = None
        if data.get("dst_ip") is None:
            self.fail(dst_path, "required (the destination host inside the network)")
        else:
            dst = self.ip(data["dst_ip"], dst_path)
        dst_ports = None
        if data.get("dst_port") is not None:
            dst_ports = self.port_range(data["dst_port"], _join(path, "dst_port"))
            ok = ok and dst_ports is not None
        if not ok or ports is None or dst is None:
            return None
        return protocol, family, public_ip, ports, dst, dst_ports, public_path, dst_path, _join(path, "dst_port")

    def parse_comment(self, data: dict, path: str) -> str | None:
        value = data.get("comment")
        if value is None:
            return None
        if not isinstance(value, str) or not COMMENT_RE.fullmatch(value):
            self.fail(_join(path, "comment"), f"{_show(value)} is not a comment of 1-{COMMENT_MAX} printable ASCII "
                                              f"characters without quotes or backslash")
            return None
        return str(value)

    # -- profile, bridge, VLAN, VXLAN -------------------------------------------------------

    def parse_profile_ref(self, data: dict, path: str) -> str | None:
        value = data.get("policy_profile")
        if value is None:
            return None
        key_path = _join(path, "policy_profile")
        if isinstance(value, str) and value in self.profiles:
            return str(value)
        if isinstance(value, str) and value in self.bad_profiles:
            self.suppressed += 1  # its definition is already reported
            return None
        self.fail(key_path, f"unknown profile {_show(value)} (known: {', '.join(sorted(self.profiles))})")
        return None

    def parse_bridge_attributes(self, data: dict, path: str, fields: dict) -> None:
        fields["stp"] = self.get_bool(data, "stp", path, False)
        fields["vlan_filtering"] = self.get_bool(data, "vlan_filtering", path, False)
        vids = self.get_list(data, "vids", path)
        if vids and not fields["vlan_filtering"]:
            self.fail(_join(path, "vids"), "VLAN ids on the bridge need vlan_filtering: true")
        fields["vids"] = self.range_list(vids, _join(path, "vids"), 1, 4094, "VLAN id")
        ports: dict[str, str] = {}
        for index, item in enumerate(self.get_list(data, "ports", path)):
            item_path = f"{path}.ports[{index}]"
            link = self.link_ref(item, item_path)
            if link is None:
                continue
            if link in ports:
                self.fail(item_path, f"{link} is already listed at {ports[link]}")
                continue
            if link in self.enslaved:
                self.fail(item_path, f"{link} is already a port of the bridge at {self.enslaved[link]}")
                continue
            ports[link] = item_path
            self.enslaved[link] = item_path
        fields["ports"] = tuple(sorted(ports))

    def parse_vlan(self, data: dict, path: str, kind: str, name: str, fields: dict) -> None:
        vid = self.get_int(data, "vlan", path, 1, 4094, "VLAN id")
        if data.get("vlan") is None:
            if kind == "vlan":
                self.fail(_join(path, "vlan"), "required for a vlan network (the VLAN id, 1-4094)")
            if data.get("parent") is not None:
                self.fail(_join(path, "parent"), "a parent needs a vlan id (set vlan)")
            if kind != "vlan" and data.get("vlan_iface") is not None:
                self.fail(_join(path, "vlan_iface"), "a VLAN sub-interface needs a vlan id (set vlan)")
            return
        parent_path = _join(path, "parent")
        if data.get("parent") is not None:
            parent = self.link_ref(data["parent"], parent_path)
        elif "uplink" in self.interfaces:
            parent = self.interfaces["uplink"]
        else:
            if "uplink" in self.bad_interface_keys:
                self.suppressed += 1
            else:
                self.fail(parent_path, f"required with vlan {_show(data['vlan'])}: the link that carries the VLAN "
                                       f"(no 'uplink' in interfaces to default to)")
            parent = None
        if vid is None or parent is None:
            return
        other = self.vlan_links.get((parent, vid))
        if other is not None:
            # Reported once here; without vlan/parent no clashing device name is derived either.
            self.fail(_join(path, "vlan"), f"VLAN {vid} on {parent} is already used by {other}")
            return
        self.vlan_links[parent, vid] = _join(path, "vlan")
        fields["vlan"], fields["parent"] = vid, parent
        if kind != "vlan":  # a sub-interface enslaved to the network's bridge
            vlan_path = _join(path, "vlan_iface")
            if data.get("vlan_iface") is not None:
                vlan_iface = self.iface_name(data["vlan_iface"], vlan_path)
            elif name:
                vlan_iface = default_vlan_name(parent, vid, name)
            else:
                return
            if vlan_iface is not None:
                fields["vlan_iface"] = vlan_iface
                self.create(vlan_iface, vlan_path)

    def parse_vxlan(self, data: dict, path: str, fields: dict) -> None:
        vni = None
        if data.get("vni") is None:
            self.fail(_join(path, "vni"), "required for a vxlan network (1-16777215)")
        else:
            vni = self.get_int(data, "vni", path, 1, 16777215, "VNI")
        if vni is not None:
            other = self.vnis.get(vni)
            if other is not None:
                self.fail(_join(path, "vni"), f"VNI {vni} is already used by {other}")
                vni = None  # so that no clashing vx<vni> name is derived as well
            else:
                self.vnis[vni] = _join(path, "vni")
                fields["vni"] = vni
        local = None
        if data.get("local") is not None:
            local = self.unicast(data["local"], _join(path, "local"))
            fields["local"] = None if local is None else local.text
        peers: dict[tuple[int, int], tuple[_Addr, str]] = {}
        for index, item in enumerate(self.get_list(data, "peers", path)):
            item_path = f"{path}.peers[{index}]"
            peer = self.unicast(item, item_path)
            if peer is None:
                continue
            key = (peer.version, peer.value)
            if key in peers:
                self.fail(item_path, f"peer {peer.text} is already listed at {peers[key][1]}")
                continue
            if local is not None and peer.version != local.version:
                self.fail(item_path, f"peer {peer.text} is IPv{peer.version}, local {local.text} is IPv{local.version}")
                continue
            if local is not None and peer.value == local.value:
                self.fail(item_path, f"peer {peer.text} is the local address itself")
                continue
            if peers and next(iter(peers))[0] != peer.version:
                first_peer, first_path = next(iter(peers.values()))
                self.fail(item_path, f"peer {peer.text} is IPv{peer.version}, peer {first_peer.text} at {first_path} "
                                     f"is IPv{first_peer.version}; one VXLAN device uses one underlay family")
                continue
            peers[key] = (peer, item_path)
        fields["peers"] = tuple(peers[key][0].text for key in sorted(peers))
        if data.get("dev") is not None:
            fields["dev"] = self.link_ref(data["dev"], _join(path, "dev"))
        dstport = self.get_int(data, "dstport", path, 1, 65535, "port")
        fields["dstport"] = VXLAN_DSTPORT if dstport is None else dstport
        fields["learning"] = self.get_bool(data, "learning", path, False)
        vxlan_path = _join(path, "vxlan_iface")
        if data.get("vxlan_iface") is not None:
            vxlan_iface = self.iface_name(data["vxlan_iface"], vxlan_path)
        elif vni is not None:
            vxlan_iface = default_vxlan_name(vni)
        else:
            return
        if vxlan_iface is not None:
            fields["vxlan_iface"] = vxlan_iface
            self.create(vxlan_iface, vxlan_path)

    # -- checks across networks -------------------------------------------------------------

    def check_subnet_overlaps(self) -> None:
        """Sorted by first address, a subnet overlaps an earlier one iff it starts before the furthest end so far."""
        furthest: dict[int, tuple[int, str, str]] = {}  # version -> (last, cidr, network)
        for version, first, last, path, cidr, network in sorted(self.subnets):
            reach = furthest.get(version)
            if reach is not None and first <= reach[0]:
                self.fail(path, f"{cidr} overlaps {reach[1]} of network {reach[2]}")
            if reach is None or last > reach[0]:
                furthest[version] = (last, cidr, network)

    def check_public_overlaps(self) -> None:
        """No two forwards may claim the same (address, port, protocol); the any-address claims every address."""
        for (protocol, family), entries in sorted(self.publics.items()):
            any_address = sorted(entry for entry in entries if entry.ip is None)
            self.sweep_overlaps(any_address)
            by_ip: dict[int, list[_PublicEntry]] = {}
            for entry in entries:
                if entry.ip is not None:
                    by_ip.setdefault(entry.ip, []).append(entry)
            for ip in sorted(by_ip):
                self.sweep_overlaps(sorted(by_ip[ip]))
            if not any_address or not by_ip:
                continue
            # Specific addresses against the any-address entries: the one with the furthest end
            # among those starting at or before a range's last port is the only candidate needed.
            starts = [entry.first for entry in any_address]
            furthest: list[_PublicEntry] = []
            for entry in any_address:
                furthest.append(entry if not furthest or entry.last > furthest[-1].last else furthest[-1])
            for ip in sorted(by_ip):
                for entry in sorted(by_ip[ip]):
                    position = bisect.bisect_right(starts, entry.last) - 1
                    if position >= 0 and furthest[position].last >= entry.first:
                        other = furthest[position]
                        self.fail(entry.path, f"{entry.text} overlaps {other.text} at {other.path}")

    def sweep_overlaps(self, entries: list[_PublicEntry]) -> None:
        reach: _PublicEntry | None = None
        for entry in entries:
            if reach is not None and entry.first <= reach.last:
                self.fail(entry.path, f"{entry.text} overlaps {reach.text} at {reach.path}")
            if reach is None or entry.last > reach.last:
                reach = entry

    def check_links(self) -> None:
        """References to existing links must not name a link the topology creates itself."""
        for name, path in self.foreign:
            creator = self.created.get(name)
            if creator is not None:
                self.fail(path, f"{_show(name)} is a link this topology creates ({creator}); "
                                f"it must name an existing link")

    def check_management(self, networks: list[Network]) -> None:
        management = self.management
        if not management.enforce:
            self.warnings.insert(0, "management.enforce is false: the management guard is OFF, nothing keeps "
                                    "the management ports open, and a profile that drops them can lock you out "
                                    "of this host")
        if management.allow_from:
            return
        blocked_by_profile: dict[str, int | None] = {}
        for network in sorted(networks, key=lambda item: item.name):
            name = network.policy_profile
            if name is None:
                continue
            if name not in blocked_by_profile:
                blocked_by_profile[name] = self.first_blocked_port(self.profiles[name], management.ports)
            port = blocked_by_profile[name]
            if port is not None:
                self.warnings.append(
                    f"networks.{network.name}: profile {name} drops management port {port}/tcp from this network "
                    f"to the host and management.allow_from is empty: only the connection Ansible runs over "
                    f"stays protected")

    @staticmethod
    def first_blocked_port(profile: Profile, ports: tuple[PortRange, ...]) -> int | None:
        for port_range in ports:
            for port in range(port_range.first, port_range.last + 1):
                if profile_blocks_host_port(profile, port, "tcp"):
                    return port
        return None

    def warn_management_forward(self, path: str, public: _PublicEntry, dst: str) -> None:
        for managed in self.management.ports:
            if public.first <= managed.last and managed.first <= public.last:
                port = max(public.first, managed.first)
                self.warnings.append(
                    f"{path}: {public.text} forwards management port {port}/tcp on every address to {dst}: "
                    f"connections to that port no longer reach this host")
                return


def _forward_order(forward: Forward) -> tuple:
    # Plain ints and strings: PortRange's generated ordering is slow Python code.
    return (forward.family, forward.protocol, forward.public_port.first, forward.public_port.last,
            forward.public_ip or "", forward.dst_ip, forward.dst_port.first)


def parse_topology(data: object, *, path: str = "") -> Topology:
    """Validate and normalise a topology given as plain data (Ansible vars or a loaded file).

    Raises :class:`ValidationError` carrying every issue found; ``path`` prefixes every
    field path. Dangerous but valid requests end up in ``Topology.warnings``.
    """
    NETADDR.require("to validate a topology")
    parser = _Parser(path)
    topology = parser.topology(data)
    if parser.issues or topology is None:
        raise ValidationError(parser.issues)
    return topology


# -- files ------------------------------------------------------------------------------------


def load_topology_text(text: str, fmt: str, *, source: str = "") -> dict:
    """Parse topology text in ``fmt`` ("toml", "yaml" or "json") into plain data.

    A syntax error becomes one :class:`ValidationError` issue naming ``source`` and the line.
    The data is not validated: pass it to :func:`parse_topology`.
    """
    data = parse_document(text, fmt, source=source, what="topology")
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{_kind(data)}, not a mapping"
        raise ValidationError(Issue(source or f"<{fmt} text>", f"the topology document is {what}"))
    return data


def load_topology_file(path: str) -> dict:
    """Read a topology file; the format comes from the suffix (.toml, .yaml, .yml, .json)."""
    suffix = os.path.splitext(path)[1].lower()
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        raise ValidationError(Issue(path, f"unknown topology file type {_show(suffix or '(none)')} "
                                          f"(use .toml, .yaml, .yml or .json)"))
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ValidationError(Issue(path, f"cannot read the topology file: {error.strerror or error}")) from None
    except UnicodeDecodeError as error:
        raise ValidationError(Issue(path, f"the topology file is not UTF-8 text (byte {error.start})")) from None
    return load_topology_text(text, fmt, source=path)


# -- back to plain data -----------------------------------------------------------------------


def _ports_out(ranges: tuple[PortRange, ...]) -> list:
    return [port_range.first if port_range.first == port_range.last else str(port_range) for port_range in ranges]


def _address_in_brackets(address: str, family: int) -> str:
    return f"[{address}]" if family == 6 else address


def _forward_to_dict(forward: Forward) -> dict:
    public_ip = ANY_ADDRESS[forward.family] if forward.public_ip is None else forward.public_ip
    return {
        "public": f"{_address_in_brackets(public_ip, forward.family)}:{forward.public_port}/{forward.protocol}",
        "dst": f"{_address_in_brackets(forward.dst_ip, forward.family)}:{forward.dst_port}",
        "hairpin": forward.hairpin,
        "comment": forward.comment,
    }


def _dhcp_to_dict(dhcp: Dhcp | None) -> dict | bool:
    if dhcp is None:
        return False
    result: dict = {"enabled": True}
    for dhcp_range in dhcp.ranges:
        result["range" if dhcp_range.family == 4 else "range6"] = f"{dhcp_range.start}-{dhcp_range.end}"
    result["lease_time"] = dhcp.lease_time
    result["hosts"] = [{"mac": host.mac, "ip": host.ip, "hostname": host.hostname} for host in dhcp.hosts]
    return result


def _dns_to_dict(dns: Dns | None) -> dict | bool:
    if dns is None:
        return False
    return {
        "enabled": True,
        "zones": list(dns.zones),
        "records": [{"name": record.name, "ip": record.ip} for record in dns.records],
        "upstream": list(dns.upstream),
    }


def _network_to_dict(network: Network) -> dict:
    result: dict = {"type": network.type, "iface": network.iface, "mtu": network.mtu}
    v4, v6 = network.subnet(4), network.subnet(6)
    first = v4 or v6
    result["cidr"] = first.cidr if first else None
    result["gw_ip"] = first.gw_ip if first else None
    if v4 and v6:
        result["cidr6"], result["gw_ip6"] = v6.cidr, v6.gw_ip
    result["dhcp"] = _dhcp_to_dict(network.dhcp)
    result["dns"] = _dns_to_dict(network.dns)
    result["masq_out"] = network.masq_out
    result["forwards"] = [_forward_to_dict(forward) for forward in network.forwards]
    result["policy_profile"] = network.policy_profile
    if network.type != "vlan":
        result["stp"] = network.stp
        result["vlan_filtering"] = network.vlan_filtering
        result["vids"] = _ports_out(network.vids)
        result["ports"] = list(network.ports)
    result["vlan"] = network.vlan
    result["parent"] = network.parent
    if network.type != "vlan":
        result["vlan_iface"] = network.vlan_iface
    if network.type == "vxlan":
        result.update({
            "vni": network.vni, "peers": list(network.peers), "local": network.local, "dev": network.dev,
            "dstport": network.dstport, "learning": network.learning, "vxlan_iface": network.vxlan_iface,
        })
    return result


def topology_to_dict(topology: Topology) -> dict:
    """The normalised topology as JSON-able data in the input schema, every default filled in.

    ``parse_topology(topology_to_dict(t)) == t``. Built-in profiles are left out; user
    profiles (including ones that replace a built-in) are included.
    """
    management = topology.management
    return {
        "version": topology.version,
        "interfaces": dict(topology.interfaces),
        "management": {
            "allow_from": list(management.allow_from),
            "ports": _ports_out(management.ports),
            "enforce": management.enforce,
        },
        "policies": {name: profile_to_dict(profile) for name, profile in topology.profiles if not profile.builtin},
        "networks": {network.name: _network_to_dict(network) for network in topology.networks},
    }
