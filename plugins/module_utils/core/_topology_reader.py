# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""What every section of a topology reads with: addresses, link names, ports, and the index.

:class:`TopologyReader` is the one object each section of ``_topology`` receives: the issues
found so far, the readers of values any section may hold (IP addresses, interface names and
references, ports) and, in :class:`TopologyIndex`, what the sections read so far defined and
claimed, for references and for the checks across networks.

Addresses are parsed strictly (inet_pton rules) into :class:`Addr` and :class:`Net`, plain
integers that compare and sort fast; their text is canonical, as netaddr prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Management, PortRange, Profile
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import BUILTIN_PROFILES
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Reader, is_int, show

if NETADDR.available:
    from netaddr.strategy import ipv4 as ipv4_strategy, ipv6 as ipv6_strategy
else:
    ipv4_strategy = ipv6_strategy = None

# Stricter than the kernel (which allows any byte but "/", ":", whitespace and NUL): no
# quotes, backslashes or control characters can reach nft or ip, and no leading "." or "-".
INTERFACE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,14}$")
# "all" and "default" are /proc/sys/net/*/conf entries, "lo" is the loopback device.
RESERVED_INTERFACE_NAMES = frozenset({"all", "default", "lo"})

_IP_TEXT_RE = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
_CIDR_TEXT_RE = re.compile(r"^([0-9A-Fa-f:.]{2,45})/([0-9]{1,3})$")
_PORTS_RE = re.compile(r"^(0|[1-9][0-9]{0,5})(?:-(0|[1-9][0-9]{0,5}))?$")

MAX_PREFIX = {4: 32, 6: 128}
ANY_ADDRESS = {4: "0.0.0.0", 6: "::"}


# -- addresses --------------------------------------------------------------------------------

class Addr(NamedTuple):
    version: int
    value: int
    text: str  # canonical


class Net(NamedTuple):
    version: int
    first: int
    last: int
    prefixlen: int
    text: str  # canonical "network/prefix"


def parse_ip(text: object) -> Addr | None:
    """A strictly written IPv4 or IPv6 address (inet_pton rules: no zone, netmask or short forms)."""
    if not isinstance(text, str) or not _IP_TEXT_RE.fullmatch(text):
        return None
    # netaddr's per-family strategy functions: the same parsing as IPAddress without the object.
    try:
        if ":" in text:
            value = ipv6_strategy.str_to_int(text, flags=netaddr.INET_PTON)
            return Addr(6, value, ipv6_strategy.int_to_str(value))
        value = ipv4_strategy.str_to_int(text, flags=netaddr.INET_PTON)
        return Addr(4, value, ipv4_strategy.int_to_str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def ip_text(value: int, version: int) -> str:
    return (ipv4_strategy if version == 4 else ipv6_strategy).int_to_str(value)


def ip_problem(text: object, what: str = "an IP address") -> str:
    return f"{show(text)} is not {what}"


def parse_cidr(text: object, *, allow_bare: bool = False) -> tuple[Net | None, str | None]:
    """A CIDR, or the reason it is not one. Host bits set is an error that names the network.

    With ``allow_bare`` a plain address is accepted as a host route (/32 or /128).
    """
    shape = ("an IP address or CIDR (e.g. 192.0.2.10 or 192.0.2.0/24)" if allow_bare
             else "a CIDR (expected ADDRESS/PREFIX, e.g. 10.33.0.0/24)")
    if allow_bare and isinstance(text, str) and "/" not in text:
        address = parse_ip(text)
        if address is None:
            return None, f"{show(text)} is not {shape}"
        return Net(address.version, address.value, address.value, MAX_PREFIX[address.version],
                   f"{address.text}/{MAX_PREFIX[address.version]}"), None
    match = _CIDR_TEXT_RE.fullmatch(text) if isinstance(text, str) else None
    address = parse_ip(match.group(1)) if match else None
    if address is None:
        return None, f"{show(text)} is not {shape}"
    prefixlen = int(match.group(2))
    bits = MAX_PREFIX[address.version]
    if prefixlen > bits:
        return None, f"{show(text)} has prefix /{prefixlen}, out of range 0-{bits} for IPv{address.version}"
    host_mask = (1 << (bits - prefixlen)) - 1
    first = address.value & ~host_mask
    network = f"{ip_text(first, address.version)}/{prefixlen}"
    if address.value & host_mask:
        return None, f"{show(text)} has host bits set; the network address is {network}"
    return Net(address.version, first, first | host_mask, prefixlen, network), None


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


def unicast_problem(address: Addr, *, allow_loopback: bool = False, allow_link_local: bool = False) -> str | None:
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


def host_problem(address: Addr, net: Net, gw: Addr) -> str | None:
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


def reserved_range(net: Net) -> str | None:
    """Why no network can live in ``net`` (this-host, loopback, multicast), or None."""
    for kind in ("this-host", "loopback", "multicast"):
        reserved = _in_ranges(net.version, net.first, net.last, kind)
        if reserved:
            return f"overlaps the {kind} range {reserved}, which no network can use"
    return None


# -- the index --------------------------------------------------------------------------------

class PublicEntry(NamedTuple):
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


@dataclass
class TopologyIndex:
    """What the sections read so far define and claim.

    The definitions (``interfaces``, ``profiles``, ``management``) are read before any network,
    so that networks can refer to them. The claims are filled network by network, and checked
    against each other once every network is read (paths say who claimed what).
    """

    interfaces: dict[str, str] = field(default_factory=dict)  # key -> link name
    # Keys and profiles whose definition is invalid (and reported): references to them are not.
    bad_interface_keys: set[str] = field(default_factory=set)
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))
    bad_profiles: set[str] = field(default_factory=set)
    profile_files: dict[str, str] = field(default_factory=dict)  # profile name -> the file it was read from
    management: Management = field(default_factory=Management)
    created: dict[str, str] = field(default_factory=dict)  # link name -> path of the field that creates it
    foreign: list[tuple[str, str]] = field(default_factory=list)  # (existing link name, path of the reference)
    subnets: list[tuple[int, int, int, str, str, str]] = field(default_factory=list)  # (version, first, last, path, cidr, network)
    publics: dict[tuple[str, int], list[PublicEntry]] = field(default_factory=dict)  # (protocol, family) -> entries
    vnis: dict[int, str] = field(default_factory=dict)  # VNI -> path
    vlan_links: dict[tuple[str, int], str] = field(default_factory=dict)  # (parent, VLAN id) -> path
    enslaved: dict[str, str] = field(default_factory=dict)  # bridge port -> path


# -- the reader -------------------------------------------------------------------------------

class TopologyReader(Reader):
    """One validation run of a topology: issues, warnings, the index, and the value readers."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.index = TopologyIndex()
        # References to an interfaces entry or profile that is itself invalid are not reported
        # again, but must still invalidate the network that makes them.
        self.suppressed = 0
        self.public_ip_cache: dict[str, Addr | None] = {}
        self.port_ranges: dict[tuple[int, int], PortRange] = {}  # shared, immutable: built once per value

    def ip(self, value: object, path: str, version: int | None = None) -> Addr | None:
        address = parse_ip(value)
        if address is None:
            self.fail(path, ip_problem(value))
            return None
        if version is not None and address.version != version:
            self.fail(path, f"{show(value)} is not an IPv{version} address")
            return None
        return address

    def unicast(self, value: object, path: str, **allow: bool) -> Addr | None:
        address = self.ip(value, path)
        if address is None:
            return None
        problem = unicast_problem(address, **allow)
        if problem:
            self.fail(path, f"{show(value)} is {problem}, not a unicast address")
            return None
        return address

    def iface_name(self, value: object, path: str) -> str | None:
        """A literal kernel interface name."""
        if not isinstance(value, str):
            self.expected(path, "an interface name", value)
            return None
        if not INTERFACE_NAME_RE.fullmatch(value):
            self.fail(path, f"{show(value)} is not a valid interface name (1-15 characters of A-Z a-z 0-9 "
                            f"_ . @ + -, not starting with . @ + or -)")
            return None
        if value in RESERVED_INTERFACE_NAMES:
            self.fail(path, f"{show(value)} is a reserved interface name")
            return None
        return str(value)

    def link_ref(self, value: object, path: str) -> str | None:
        """A reference to an existing link: a key of ``interfaces`` or a literal name; resolved."""
        index = self.index
        if isinstance(value, str):
            if value in index.interfaces:
                return index.interfaces[value]  # the entry itself is checked as a reference
            if value in index.bad_interface_keys:
                self.suppressed += 1  # its definition is already reported
                return None
        if not isinstance(value, str) or not INTERFACE_NAME_RE.fullmatch(value) or value in RESERVED_INTERFACE_NAMES:
            keys = ", ".join(sorted(index.interfaces)) or "none defined"
            self.fail(path, f"{show(value)} is neither a key of interfaces ({keys}) nor a valid interface name")
            return None
        index.foreign.append((str(value), path))
        return str(value)

    def port_range(self, value: object, path: str, low: int = 1, high: int = 65535,
                   what: str = "port") -> PortRange | None:
        """A port (or VLAN id) as an integer or a string ``"N"`` / ``"A-B"``."""
        match = _PORTS_RE.fullmatch(value) if isinstance(value, str) else None
        if match is not None:
            first, second = match.groups()
            first = int(first)
            last = first if second is None else int(second)
        elif is_int(value):
            first = last = int(value)
        else:
            self.expected(path, f"a {what} or a range \"A-B\"", value)
            return None
        if not low <= first <= high:
            self.fail(path, f"{what} {first} is out of range {low}-{high}")
            return None
        if not low <= last <= high:
            self.fail(path, f"{what} {last} is out of range {low}-{high}")
            return None
        if first > last:
            self.fail(path, f"{what} range {show(value)} starts above its end")
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
