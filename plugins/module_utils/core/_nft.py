# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Render the one nftables table the collection owns, ``inet ghostwarden``.

Pure: a validated :class:`Topology` in, nft text out. The layout and the reasons
for it are in ``docs/nftables.md``. In short: base chains with ``policy accept``
only for the hooks a topology needs; per-network policy chains reached through
verdict maps keyed on interface names; DNAT through maps keyed on (protocol . port);
masquerade through a set keyed on (source . output interface).

The text is written in the form ``nft list table`` prints it back, so that
:func:`normalise_ruleset` can compare the desired table with the live one.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    Issue,
    RenderError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    ACTIONS,
    DIRECTIONS,
    L4_PROTOCOLS,
    NFT_FAMILY,
    NFT_TABLE,
    RATE_UNITS,
    RULE_PROTOCOLS,
    WEEKDAYS,
    Forward,
    Management,
    Network,
    PortRange,
    Profile,
    RateLimit,
    Rule,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Issues, is_choice, is_int

TABLE = f"{NFT_FAMILY} {NFT_TABLE}"
TABLE_COMMENT = "managed by ghostwarden.core, replaced as a whole on every apply"

# Size bound of the per-source dynamic sets (rate meters, connection counters): so many
# sources per network using the set, up to a cap that bounds the kernel memory they may take.
DYNAMIC_SET_SIZE = 65535
MAX_DYNAMIC_SET_SIZE = 1048576
# nft's default burst when none is given; nft omits it when listing.
DEFAULT_BURST = 5
# Kernel limits: NFT_USERDATA comment 128 bytes, NF_LOG_PREFIXLEN 128 bytes including the NUL.
MAX_COMMENT_BYTES = 128
MAX_LOG_PREFIX_BYTES = 127

# What may appear inside a quoted interface name: the kernel's rules are looser, but these
# characters cannot end the quoted string, start a wildcard (``*``) or a variable (``$``).
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.@+=%-]{1,15}")
# Network names become parts of chain and set identifiers, which nft reads unquoted.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# nft numbers weekdays from Sunday = 0 and lists sets of days in that order.
_NFT_DAY_ORDER = {day: (index + 1) % 7 for index, day in enumerate(WEEKDAYS)}
# Neighbour discovery and router solicitation: without them IPv6 breaks on a network whose
# host policy drops. Listed in ICMPv6 type order, as nft prints them.
_ICMPV6_ND_TYPES = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert")
_PROTOCOL_MATCH = {
    "tcp": "meta l4proto tcp",
    "udp": "meta l4proto udp",
    "sctp": "meta l4proto sctp",
    "icmp": "meta l4proto icmp",
    "icmpv6": "meta l4proto ipv6-icmp",
}
_PROTOCOL_FAMILY = {"icmp": 4, "icmpv6": 6}
_FAMILY_KEYWORD = {4: "ip", 6: "ip6"}
_ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_REJECT = {None: "reject", 4: "reject with icmp port-unreachable", 6: "reject with icmpv6 port-unreachable"}
_LOOPBACK = {4: "127.0.0.0/8", 6: "::1"}
_DHCP_PORT = {4: 67, 6: 547}


# ---------------------------------------------------------------------------------------------
# Public interface


def render_ruleset(topology: Topology, extra_management: Sequence[str] = ()) -> str:
    """The whole ``table inet ghostwarden { ... }`` for ``topology``, ending with a newline.

    ``extra_management`` are further source addresses or CIDRs accepted like
    ``management.allow_from`` (typically the address of the SSH connection Ansible
    runs over). The output depends only on the arguments' values: sorted,
    byte-identical across runs and hash seeds.
    """
    NETADDR.require("to render the nft ruleset")
    extra = _parse_extra_management(extra_management)
    builder = _TableBuilder(topology)
    builder.build(extra)
    return builder.text()


def render_replace_script(ruleset: str) -> str:
    """``nft -f`` input that replaces the owned table in one transaction.

    ``add`` first so that ``delete`` cannot fail on a host without the table (the
    original's first apply failed there), then ``delete`` so that the table block
    that follows starts empty (the original's second apply failed with EEXIST).
    """
    if not ruleset.startswith(f"table {TABLE} {{"):
        raise RenderError(f"not a ruleset of table {TABLE}: {ruleset[:60]!r}")
    body = ruleset if ruleset.endswith("\n") else ruleset + "\n"
    return f"add table {TABLE}\ndelete table {TABLE}\n{body}"


def render_delete_script() -> str:
    """``nft -f`` input that removes the owned table, and succeeds when it is absent."""
    return f"add table {TABLE}\ndelete table {TABLE}\n"


def normalise_ruleset(text: str) -> str:
    """A comparison key for a ruleset text: equal for a rendering and its ``nft list``.

    Strips what the kernel adds or keeps as run-time state (``# handle`` comments,
    counter values, elements of dynamic sets), normalises whitespace and the
    wrapping of element lists, sorts set elements and the blocks of a table (their
    order means nothing; rule order inside a chain is kept), and rewrites
    ``meta hour`` matches to one form independent of how nft converted them
    between local time and UTC. The result is for comparing and showing
    differences; it is not meant to be loaded.
    """
    return "".join(f"{line}\n" for line in _emit(_parse_blocks(_logical_lines(text)), 0))


# ---------------------------------------------------------------------------------------------
# Checks on the values that end up in nft syntax (the parser validates; this is the last guard)


def _ifname(value: object, where: str) -> str:
    if not isinstance(value, str) or not _IFNAME_RE.fullmatch(value) or value in (".", ".."):
        raise RenderError(f"{where}: interface name {value!r} cannot be rendered safely")
    return f'"{value}"'


def _identifier(value: object, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise RenderError(f"{where}: name {value!r} cannot be used in nft identifiers")
    return value


def _quoted(value: object, where: str, max_bytes: int, forbidden: str = '"') -> str:
    if (
        not isinstance(value, str)
        or not value
        or not value.isprintable()
        or not set(forbidden).isdisjoint(value)
        or len(value.encode()) > max_bytes
    ):
        raise RenderError(
            f"{where}: string {value!r} cannot be rendered safely (printable, at most {max_bytes} bytes, "
            f"none of {' '.join(forbidden)})"
        )
    return f'"{value}"'


def _comment(value: object, where: str) -> str:
    return _quoted(value, where, MAX_COMMENT_BYTES)


def _log_prefix(value: object, where: str) -> str:
    # nft 1.0.6 expands $variables inside a quoted log prefix.
    return _quoted(value, where, MAX_LOG_PREFIX_BYTES, forbidden='"$')


def _port(value: object, where: str) -> int:
    if not is_int(value) or not 1 <= value <= 65535:
        raise RenderError(f"{where}: port {value!r} is not an integer in 1-65535")
    return value


def _port_range(value: object, where: str) -> PortRange:
    if not isinstance(value, PortRange):
        raise RenderError(f"{where}: {value!r} is not a port range")
    if _port(value.first, where) > _port(value.last, where):
        raise RenderError(f"{where}: port range {value.first}-{value.last} is reversed")
    return value


def _positive(value: object, where: str) -> int:
    if not is_int(value) or value < 1:
        raise RenderError(f"{where}: {value!r} is not a positive integer")
    return value


def _choice(value: object, allowed: Sequence[str], where: str) -> str:
    if not is_choice(value, allowed):
        raise RenderError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def _network(value: object, where: str) -> netaddr.IPNetwork:
    try:
        if not isinstance(value, str):
            raise ValueError("not a string")
        return netaddr.IPNetwork(value)
    except (ValueError, TypeError, netaddr.AddrFormatError) as exc:
        raise RenderError(f"{where}: {value!r} is not a CIDR ({exc})") from None


@dataclass(frozen=True)
class _Cidr:
    family: int
    first: int  # the network address as an integer, for sorting
    prefixlen: int
    text: str  # as nft prints it: the bare address for a single host


def _address(value: object, where: str) -> tuple[int, bytes, str]:
    """(family, packed, text as nft prints it) of an IP address.

    As strict as inet_pton: no zone index, no leading zeros, no shortened IPv4.
    """
    if isinstance(value, str) and "%" not in value:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return address.version, address.packed, _printed(address)
    raise RenderError(f"{where}: {value!r} is not an IP address")


def _printed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as nft (inet_ntop) prints it: IPv6 with an embedded IPv4 keeps the dotted quad."""
    if address.version == 6:
        value = int(address)
        if value >> 32 == 0xFFFF or (value >> 32 == 0 and value >> 16):
            prefix = "::ffff:" if value >> 32 else "::"
            return prefix + str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return str(address)


def _cidr(value: object, where: str) -> _Cidr:
    if isinstance(value, str) and value.count("/") == 1:
        address, length = value.split("/")
        try:
            family, packed, text = _address(address, where)
        except RenderError:
            family = 0
        bits = 32 if family == 4 else 128
        if family and length.isascii() and length.isdigit() and int(length) <= bits:
            prefixlen = int(length)
            first = int.from_bytes(packed, "big")
            if not first & ((1 << (bits - prefixlen)) - 1):
                return _Cidr(family, first, prefixlen, text if prefixlen == bits else f"{text}/{prefixlen}")
    raise RenderError(f"{where}: {value!r} is not a network in CIDR notation")


def _parse_extra_management(values: Sequence[str]) -> list[netaddr.IPNetwork]:
    """Addresses found on the target (e.g. from SSH_CONNECTION): user input, so validated here."""
    if isinstance(values, str):
        values = (values,)
    try:
        items = list(values)
    except TypeError:
        raise ValidationError(Issue("extra_management", f"expected a list of addresses, got {values!r}")) from None
    networks, issues = [], Issues()
    for index, value in enumerate(items):
        text = value.split("%", 1)[0] if isinstance(value, str) else value  # drop an IPv6 zone (fe80::1%eth0)
        try:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("not an address")
            network = netaddr.IPNetwork(text.strip()).cidr
        except (ValueError, TypeError, netaddr.AddrFormatError):
            issues.fail(f"extra_management[{index}]", f"{value!r} is not an IP address or CIDR")
            continue
        if network.version == 6 and network.ip.is_ipv4_mapped():
            # sshd on a dual-stack socket may report an IPv4 client as ::ffff:a.b.c.d.
            network = netaddr.IPNetwork(f"{network.ip.ipv4()}/{max(network.prefixlen - 96, 0)}").cidr
        networks.append(network)
    issues.raise_if_any()
    return networks


# ---------------------------------------------------------------------------------------------
# Value formatting in nft's listing form


def _address_elements(networks: Iterable[netaddr.IPNetwork]) -> list[str]:
    """Merged, sorted elements of an interval set, spelled as ``nft list`` spells them.

    Overlapping elements would make nft fail ("conflicting intervals"); adjacent ones
    nft merges itself, so merging here keeps the rendering equal to the listing.
    """
    elements = []
    for ip_range in netaddr.IPSet(networks).iter_ipranges():
        cidrs = ip_range.cidrs()
        if len(cidrs) == 1:
            cidr = cidrs[0]
            elements.append(str(cidr.ip) if cidr.size == 1 else str(cidr))
        else:
            elements.append(str(ip_range))  # "first-last"
    return elements


def _port_elements(ranges: Iterable[PortRange], where: str) -> list[str]:
    """Merged, sorted port elements: nft merges overlapping and adjacent ranges when listing."""
    merged: list[list[int]] = []
    for port_range in sorted(_port_range(value, where) for value in ranges):
        if merged and port_range.first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], port_range.last)
        else:
            merged.append([port_range.first, port_range.last])
    return [str(first) if first == last else f"{first}-{last}" for first, last in merged]


def _anonymous_set(elements: Sequence[str]) -> str:
    return elements[0] if len(elements) == 1 else "{ " + ", ".join(elements) + " }"


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds % 86400, 3600)
    minutes, secs = divmod(rest, 60)
    return f'"{hours:02d}:{minutes:02d}:{secs:02d}"' if secs else f'"{hours:02d}:{minutes:02d}"'


def _clock_seconds(value: object, where: str) -> int:
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise RenderError(f"{where}: time {value!r} is not HH:MM or HH:MM:SS")
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3) or 0)


def _duration(seconds: int) -> str:
    """A timeout as nft lists it (``1h30m``, ``2d``)."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _elements_lines(elements: Sequence[str], indent: str) -> list[str]:
    """``elements = { ... }`` with one element per line, continued the way nft indents it."""
    if len(elements) == 1:
        return [f"{indent}elements = {{ {elements[0]} }}"]
    continuation = f"{indent}\t     "
    lines = [f"{indent}elements = {{ {elements[0]},"]
    lines.extend(f"{continuation}{element}," for element in elements[1:-1])
    lines.append(f"{continuation}{elements[-1]} }}")
    return lines


# ---------------------------------------------------------------------------------------------
# Building the table


@dataclass
class _Set:
    """A named set or map: a static one with its elements, or a dynamic one the rules fill."""

    keyword: str  # "set" or "map"
    name: str
    type: str
    flags: str = ""
    timeout: str | None = None
    elements: tuple[str, ...] = ()
    users: int = 0  # of a dynamic set: how many networks' rules add to it

    def lines(self) -> list[str]:
        lines = [f"\t{self.keyword} {self.name} {{", f"\t\ttype {self.type}"]
        if self.users:
            lines.append(f"\t\tsize {min(DYNAMIC_SET_SIZE * self.users, MAX_DYNAMIC_SET_SIZE)}")
        if self.flags:
            lines.append(f"\t\tflags {self.flags}")
        if self.timeout is not None:
            lines.append(f"\t\ttimeout {self.timeout}")
        if self.elements:
            lines.extend(_elements_lines(self.elements, "\t\t"))
        lines.append("\t}")
        return lines


@dataclass
class _Chain:
    name: str
    header: str | None  # "type filter hook input priority filter; policy accept;" for base chains
    comment: str | None
    rules: list[str]

    def lines(self) -> list[str]:
        lines = [f"\tchain {self.name} {{"]
        if self.comment:
            lines.append(f"\t\tcomment {self.comment}")
        if self.header:
            lines.append(f"\t\t{self.header}")
        lines.extend(f"\t\t{rule}" for rule in self.rules)
        lines.append("\t}")
        return lines


@dataclass(frozen=True)
class _RuleVariant:
    """A profile rule compiled for one address family (or family-neutral)."""

    line: str  # the whole nft rule, unless it logs with the default prefix
    statements: str  # matches, limits and counter: what precedes the log statement
    verdict: str  # with the comment
    log: bool
    log_prefix: str | None  # quoted; None with log: a default prefix naming the network
    dynamic_sets: tuple[str, ...]


class _TableBuilder:
    def __init__(self, topology: Topology) -> None:
        if not isinstance(topology, Topology):
            raise RenderError(f"expected a Topology, got {type(topology).__name__}")
        self.topology = topology
        self.networks = sorted(topology.networks, key=lambda network: network.name)
        self.sets: list[_Set] = []
        self.dynamic_sets: dict[str, _Set] = {}
        self.base_chains: list[_Chain] = []
        self.network_chains: list[_Chain] = []
        # Rendered address matches, by (keyword, CIDRs): many networks share a profile's CIDRs.
        self._address_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        # Compiled profile rules by id(): the profile's objects live as long as the topology.
        self._compiled: dict[int, tuple[_RuleVariant, ...]] = {}
        self._checked_profiles: set[int] = set()

    # -- assembly ---------------------------------------------------------------------------
    def text(self) -> str:
        everything = (*self.sets, *self.dynamic_sets.values(), *self.base_chains, *self.network_chains)
        blocks = [block.lines() for block in everything]
        lines = [f"table {TABLE} {{", f"\tcomment {_comment(TABLE_COMMENT, 'table')}"]
        for index, block in enumerate(blocks):
            if index:
                lines.append("")
            lines.extend(block)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def build(self, extra_management: Sequence[netaddr.IPNetwork]) -> None:
        ifaces: dict[str, str] = {}
        for network in self.networks:
            _identifier(network.name, "networks")
            where = f"networks.{network.name}.iface"
            _ifname(network.iface, where)
            if network.iface in ifaces:
                raise RenderError(f"{where}: interface {network.iface!r} is also used by network "
                                  f"{ifaces[network.iface]!r}")
            ifaces[network.iface] = network.name

        host_vmap, egress_vmap, ingress_vmap = self._policy_chains()
        if host_vmap:
            self._input_chain(host_vmap, extra_management)
        if egress_vmap or ingress_vmap:
            self._forward_chain(egress_vmap, ingress_vmap)
        self._nat()

    def _add_set(self, keyword: str, name: str, type_: str, elements: Iterable[str], flags: str = "") -> bool:
        elements = tuple(elements)
        if elements:
            self.sets.append(_Set(keyword, name, type_, flags, elements=elements))
        return bool(elements)

    # -- filter: input and forward ----------------------------------------------------------
    def _input_chain(self, host_vmap: list[str], extra_management: Sequence[netaddr.IPNetwork]) -> None:
        rules = ['iif "lo" accept', "ct state established,related accept", "ct state invalid drop"]
        management = self.topology.management
        if not isinstance(management, Management):
            raise RenderError(f"management: expected Management, got {type(management).__name__}")
        if management.enforce:
            rules.extend(self._management_rules(management, extra_management))
        if self._host_services():
            rules.append("iifname . meta l4proto . th dport @host_services accept")
        rules.append(f"icmpv6 type {_anonymous_set(_ICMPV6_ND_TYPES)} accept")
        self._add_set("map", "host_chains", "ifname : verdict", host_vmap)
        rules.append("iifname vmap @host_chains")
        self.base_chains.append(_Chain("input", "type filter hook input priority filter; policy accept;", None,
                                       rules))

    def _management_rules(self, management: Management, extra: Sequence[netaddr.IPNetwork]) -> list[str]:
        ports = _anonymous_set(_port_elements(management.ports, "management.ports")) if management.ports else None
        if ports is None:
            return []
        sources = [_network(cidr, f"management.allow_from[{index}]")
                   for index, cidr in enumerate(management.allow_from)]
        sources.extend(extra)
        rules = []
        for family in (4, 6):
            name = f"mgmt{family}"
            elements = _address_elements(source for source in sources if source.version == family)
            if self._add_set("set", name, _ADDR_TYPE[family], elements, flags="interval"):
                rules.append(f"{_FAMILY_KEYWORD[family]} saddr @{name} tcp dport {ports} accept")
        return rules

    def _host_services(self) -> bool:
        """DHCP and DNS from a network to the host on its own interface."""
        services = set()
        for network in self.networks:
            iface = _ifname(network.iface, f"networks.{network.name}.iface")
            if network.dhcp is not None:
                for index, dhcp_range in enumerate(network.dhcp.ranges):
                    family = dhcp_range.family
                    if family not in _DHCP_PORT:
                        raise RenderError(f"networks.{network.name}.dhcp.ranges[{index}]: family {family!r}")
                    services.add((iface, "udp", _DHCP_PORT[family]))
            if network.dns is not None:
                services.update({(iface, "udp", 53), (iface, "tcp", 53)})
        elements = [f"{iface} . {protocol} . {port}" for iface, protocol, port in sorted(services)]
        return self._add_set("set", "host_services", "ifname . inet_proto . inet_service", elements)

    def _forward_chain(self, egress_vmap: list[str], ingress_vmap: list[str]) -> None:
        rules = ["ct state established,related accept", "ct status dnat accept", "ct state invalid drop"]
        # Traffic between members of one network neither leaves nor enters it. It only gets
        # here bridged through br_netfilter (loaded by Proxmox's firewall, Docker, ...),
        # which would otherwise put a network's own ingress policy between its members.
        policed = sorted({entry.split(" : ", 1)[0] for entry in (*egress_vmap, *ingress_vmap)})
        if self._add_set("set", "intra_network", "ifname . ifname", [f"{iface} . {iface}" for iface in policed]):
            rules.append("iifname . oifname @intra_network accept")
        if self._add_set("map", "egress_chains", "ifname : verdict", egress_vmap):
            rules.append("iifname vmap @egress_chains")
        if self._add_set("map", "ingress_chains", "ifname : verdict", ingress_vmap):
            rules.append("oifname vmap @ingress_chains")
        self.base_chains.append(_Chain("forward", "type filter hook forward priority filter; policy accept;",
                                       None, rules))

    # -- per-network policy chains -----------------------------------------------------------
    def _policy_chains(self) -> tuple[list[str], list[str], list[str]]:
        vmaps: dict[str, list[str]] = {direction: [] for direction in DIRECTIONS}
        for network in self.networks:
            if network.policy_profile is None:
                continue
            where = f"networks.{network.name}.policy_profile"
            try:
                profile = self.topology.profile(network.policy_profile)
            except KeyError:
                raise RenderError(f"{where}: profile {network.policy_profile!r} is not defined") from None
            if id(profile) not in self._checked_profiles:
                self._check_profile(profile, where)
            iface = _ifname(network.iface, f"networks.{network.name}.iface")
            for direction in DIRECTIONS:
                chain = self._policy_chain(network, profile, direction)
                if chain is not None:
                    self.network_chains.append(chain)
                    vmaps[direction].append(f"{iface} : jump {chain.name}")
        return sorted(vmaps["host"]), sorted(vmaps["egress"]), sorted(vmaps["ingress"])

    def _check_profile(self, profile: Profile, where: str) -> None:
        if not isinstance(profile, Profile):
            raise RenderError(f"{where}: expected a Profile, got {type(profile).__name__}")
        for index, rule in enumerate(profile.rules):
            if not isinstance(rule, Rule):
                raise RenderError(f"profile {profile.name}: rules[{index}] is not a Rule")
            _choice(rule.direction, DIRECTIONS, f"profile {profile.name}: rules[{index}].direction")
        self._checked_profiles.add(id(profile))

    def _policy_chain(self, network: Network, profile: Profile, direction: str) -> _Chain | None:
        default = _choice(getattr(profile, f"{direction}_action"), ACTIONS,
                          f"profile {profile.name}: {direction}_action")
        indexed_rules = [(index, rule) for index, rule in enumerate(profile.rules) if rule.direction == direction]
        if not indexed_rules and default == "accept":
            return None  # nothing to decide: the packet goes on as if the chain were not there
        chain_name = f"net_{network.name}_{direction}"
        rules = []
        for index, rule in indexed_rules:
            rules.extend(self._rule(rule, network, profile, index))
        if default != "accept":
            rules.append(_REJECT[None] if default == "reject" else "drop")
        comment = f"network {network.name}, profile {profile.name}, {direction}"
        if len(comment.encode()) > MAX_COMMENT_BYTES:
            comment = f"network {network.name}, {direction}"
        return _Chain(chain_name, None, _comment(comment, f"networks.{network.name}"), rules)

    def _rule(self, rule: Rule, network: Network, profile: Profile, index: int) -> list[str]:
        """One profile rule as nft rules: one per address family when the rule is family-specific.

        "accept" renders as ``return``: a forwarded packet must pass the egress chain of
        the network it leaves and then the ingress chain of the one it enters, and an
        ``accept`` in the first would skip the second. ``return`` hands the packet back to
        the base chain, whose end (``policy accept``) accepts it.
        """
        # Compiled once: everything but the default log prefix is the same for every network
        # using the profile (per-source state is keyed on the interface, see _compile_rule).
        variants = self._compiled.get(id(rule))
        if variants is None:
            variants = self._compiled[id(rule)] = self._compile_rule(rule, profile, index)
        lines = []
        for variant in variants:
            for name in variant.dynamic_sets:
                self.dynamic_sets[name].users += 1
            if variant.log and variant.log_prefix is None:
                prefix = _log_prefix(f"gw {network.name} {rule.direction} {rule.action}: ", f"networks.{network.name}")
                lines.append(f"{variant.statements} log prefix {prefix} {variant.verdict}".lstrip())
            else:
                lines.append(variant.line)
        return lines

    def _compile_rule(self, rule: Rule, profile: Profile, index: int) -> tuple[_RuleVariant, ...]:
        where = f"profile {profile.name}: rules[{index}]"
        action = _choice(rule.action, ACTIONS, f"{where}.action")
        protocol = rule.protocol
        if protocol is not None:
            _choice(protocol, RULE_PROTOCOLS, f"{where}.protocol")
        if rule.ports and protocol not in L4_PROTOCOLS:
            raise RenderError(f"{where}.ports: ports need protocol tcp, udp or sctp, not {protocol!r}")
        sources = self._split_families(rule.sources, f"{where}.sources")
        destinations = self._split_families(rule.destinations, f"{where}.destinations")
        families = {4, 6}
        if rule.sources:
            families &= set(sources)
        if rule.destinations:
            families &= set(destinations)
        if protocol in _PROTOCOL_FAMILY:
            families &= {_PROTOCOL_FAMILY[protocol]}
        if rule.rate_limit is not None and not isinstance(rule.rate_limit, RateLimit):
            raise RenderError(f"{where}.rate_limit: {rule.rate_limit!r} is not a RateLimit")
        per_source = rule.conn_limit is not None or (rule.rate_limit is not None and rule.rate_limit.per_source)
        variants: list[int | None]
        if rule.sources or rule.destinations or per_source:
            variants = sorted(families)  # may be empty: a rule no packet can match renders nothing
        else:
            variants = [None]

        if rule.ports:
            l4 = f"{protocol} dport {_anonymous_set(_port_elements(rule.ports, f'{where}.ports'))}"
        elif protocol is not None:
            l4 = _PROTOCOL_MATCH[protocol]
        else:
            l4 = ""
        time_match = self._time_match(rule, where)
        # A limit narrows a rule, whatever its action: the rule matches only within the limit
        # and the rest falls through (docs/policy-profiles.md). Never "over".
        conn = rate = meter_timeout = None
        if rule.conn_limit is not None:
            conn = f"ct count {_positive(rule.conn_limit, f'{where}.conn_limit')}"
        if rule.rate_limit is not None:
            rate = self._rate(rule.rate_limit, where)
            if rule.rate_limit.per_source:
                meter_timeout = self._meter_timeout(rule.rate_limit)
        tail = ["counter"] if rule.counter else []
        log_prefix = None
        if rule.log and rule.log_prefix is not None:
            log_prefix = _log_prefix(rule.log_prefix, f"{where}.log_prefix")
            tail.append(f"log prefix {log_prefix}")
        comment = f" comment {_comment(rule.comment, f'{where}.comment')}" if rule.comment is not None else ""
        # Per-source state lives in one dynamic set per rule and family for all the networks
        # using the profile, keyed on (interface . source) so that each network still counts
        # on its own: nft takes seconds per thousand named sets to load, not so for elements.
        set_prefix = f"prof_{_identifier(profile.name, where)}_{rule.direction}_{index}"
        interface = "oifname" if rule.direction == "ingress" else "iifname"

        compiled = []
        for family in variants:
            statements = []
            dynamic_sets = []
            if family is not None:
                keyword = _FAMILY_KEYWORD[family]
                if rule.sources:
                    statements.append(self._address_match(keyword, "saddr", sources[family]))
                if rule.destinations:
                    statements.append(self._address_match(keyword, "daddr", destinations[family]))
            statements.extend(part for part in (l4, time_match) if part)
            if conn is not None:
                name = self._declare_dynamic_set(f"{set_prefix}_conn{family}", family, None)
                statements.append(f"add @{name} {{ {interface} . {_FAMILY_KEYWORD[family]} saddr {conn} }}")
                dynamic_sets.append(name)
            if rate is not None and meter_timeout is not None:
                name = self._declare_dynamic_set(f"{set_prefix}_rate{family}", family, meter_timeout)
                statements.append(f"update @{name} {{ {interface} . {_FAMILY_KEYWORD[family]} saddr {rate} }}")
                dynamic_sets.append(name)
            elif rate is not None:
                statements.append(rate)
            verdict = ("return" if action == "accept" else "drop" if action == "drop" else _REJECT[family]) + comment
            head = " ".join(statements)
            line = " ".join(part for part in (head, *tail, verdict) if part)
            head_with_counter = " ".join(part for part in (head, "counter" if rule.counter else "") if part)
            compiled.append(_RuleVariant(line, head_with_counter, verdict, bool(rule.log), log_prefix,
                                         tuple(dynamic_sets)))
        return tuple(compiled)

    def _split_families(self, cidrs: Sequence[str], where: str) -> dict[int, tuple[str, ...]]:
        by_family: dict[int, list[str]] = {}
        for index, cidr in enumerate(cidrs):
            by_family.setdefault(_network(cidr, f"{where}[{index}]").version, []).append(cidr)
        return {family: tuple(values) for family, values in by_family.items()}

    def _address_match(self, keyword: str, field: str, cidrs: tuple[str, ...]) -> str:
        key = (keyword, cidrs)
        if key not in self._address_cache:
            elements = _address_elements(netaddr.IPNetwork(cidr) for cidr in cidrs)
            self._address_cache[key] = _anonymous_set(elements)
        return f"{keyword} {field} {self._address_cache[key]}"

    @staticmethod
    def _time_match(rule: Rule, where: str) -> str:
        window = rule.time
        if window is None:
            return ""
        parts = []
        if window.hours is not None:
            if not isinstance(window.hours, tuple) or len(window.hours) != 2:
                raise RenderError(f"{where}.time.hours: {window.hours!r} is not a (start, end) pair")
            start = _clock_seconds(window.hours[0], f"{where}.time.hours[0]")
            end = _clock_seconds(window.hours[1], f"{where}.time.hours[1]")
            if start == end:
                raise RenderError(f"{where}.time.hours: window {window.hours[0]}-{window.hours[1]} is empty")
            # The window is [start, end); nft ranges include both ends, hence end - 1 s.
            # One wrapping midnight is the complement of [end, start).
            if start < end:
                parts.append(f"meta hour {_clock(start)}-{_clock(end - 1)}")
            else:
                parts.append(f"meta hour != {_clock(end)}-{_clock(start - 1)}")
        if window.days:
            for index, day in enumerate(window.days):
                _choice(day, WEEKDAYS, f"{where}.time.days[{index}]")
            days = sorted(set(window.days), key=_NFT_DAY_ORDER.__getitem__)
            parts.append(f"meta day {_anonymous_set([f'{chr(34)}{day}{chr(34)}' for day in days])}")
        return " ".join(parts)

    @staticmethod
    def _rate(limit: RateLimit, where: str) -> str:
        rate = _positive(limit.rate, f"{where}.rate_limit.rate")
        unit = _choice(limit.per, RATE_UNITS, f"{where}.rate_limit.per")
        text = f"limit rate {rate}/{unit}"
        if limit.burst is not None and _positive(limit.burst, f"{where}.rate_limit.burst") != DEFAULT_BURST:
            text += f" burst {limit.burst} packets"
        return text

    @staticmethod
    def _meter_timeout(limit: RateLimit) -> str:
        """How long an idle source keeps its bucket: long enough to refill it completely,
        so that forgetting the source changes nothing; at least a minute."""
        burst = limit.burst if limit.burst is not None else DEFAULT_BURST
        seconds = max(60, math.ceil(burst * _UNIT_SECONDS[limit.per] / limit.rate))
        return _duration(seconds)

    def _declare_dynamic_set(self, name: str, family: int, timeout: str | None) -> str:
        if name in self.dynamic_sets:
            raise RenderError(f"dynamic set {name} would be declared twice")
        self.dynamic_sets[name] = _Set("set", name, f"ifname . {_ADDR_TYPE[family]}",
                                       "dynamic,timeout" if timeout else "dynamic", timeout=timeout)
        return name

    # -- NAT ----------------------------------------------------------------------------------
    def _nat(self) -> None:
        nat = {4: _NatFamily(), 6: _NatFamily()}
        for network in self.networks:
            iface = _ifname(network.iface, f"networks.{network.name}.iface")
            subnets = {}
            for index, subnet in enumerate(network.subnets):
                cidr = _cidr(subnet.cidr, f"networks.{network.name}.subnets[{index}].cidr")
                subnets[cidr.family] = cidr
            if network.masq_out is not None:
                masq_out = _ifname(network.masq_out, f"networks.{network.name}.masq_out")
                for family, cidr in subnets.items():
                    nat[family].masquerade[(cidr.first, cidr.prefixlen, masq_out)] = f"{cidr.text} . {masq_out}"
            for index, forward in enumerate(network.forwards):
                self._forward(forward, f"networks.{network.name}.forwards[{index}]", iface, subnets, nat)

        prerouting, output, postrouting = [], [], []
        for family in (4, 6):
            self._nat_family(family, nat[family], prerouting, output, postrouting)
        if prerouting:
            self.base_chains.append(_Chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                                           None, prerouting))
            # Connections the host itself opens to a forwarded port. Not from loopback
            # addresses: a packet with a 127.0.0.0/8 source cannot leave the host.
            self.base_chains.append(_Chain("output", "type nat hook output priority -100; policy accept;", None,
                                           output))
        if postrouting:
            self.base_chains.append(_Chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                                           None, postrouting))

    @staticmethod
    def _forward(forward: Forward, where: str, iface: str, subnets: dict[int, _Cidr],
                 nat: dict[int, _NatFamily]) -> None:
        """Map entries of one forward, one per public port: a range maps port by port
        (6000-6003 to 5000-5003), which nft's NAT cannot express as one range."""
        if not isinstance(forward, Forward):
            raise RenderError(f"{where}: expected a Forward, got {type(forward).__name__}")
        protocol = _choice(forward.protocol, L4_PROTOCOLS, f"{where}.protocol")
        public_port = _port_range(forward.public_port, f"{where}.public_port")
        dst_port = _port_range(forward.dst_port, f"{where}.dst_port")
        if public_port.size != dst_port.size:
            raise RenderError(f"{where}: public ports {public_port} and destination ports {dst_port} differ in size")
        family, dst_packed, dst_ip = _address(forward.dst_ip, f"{where}.dst_ip")
        public = None if forward.public_ip is None else _address(forward.public_ip, f"{where}.public_ip")
        if family != forward.family or (public is not None and public[0] != family):
            raise RenderError(f"{where}: addresses {forward.public_ip} and {forward.dst_ip} are not both "
                              f"IPv{forward.family}")
        tables = nat[family]
        offset = dst_port.first - public_port.first
        for port in range(public_port.first, public_port.last + 1):
            target = f" : {dst_ip} . {port + offset}"
            if public is None:
                key: tuple = (protocol, port)
                entries, element, skip = tables.any_address, f"{protocol} . {port}", tables.no_hairpin
                skip_element = f"{iface} . {protocol} . {port}"
            else:
                key = (public[1], protocol, port)
                entries, element, skip = tables.by_address, f"{public[2]} . {protocol} . {port}", \
                    tables.no_hairpin_by_address
                skip_element = f"{iface} . {public[2]} . {protocol} . {port}"
            if key in entries:
                address = "any address" if public is None else public[2]
                raise RenderError(f"{where}: {address} port {port}/{protocol} is already forwarded by "
                                  f"{entries[key][1]}")
            entries[key] = (element + target, where)
            if not forward.hairpin:
                # Clients of the network itself are not DNAT'd: they reach the host's own port.
                skip[(iface, *key)] = skip_element
        if forward.hairpin:
            subnet = subnets.get(family)
            if subnet is None:
                raise RenderError(f"{where}: hairpin needs an IPv{family} subnet on the network")
            tables.hairpin[(subnet.first, subnet.prefixlen, dst_packed)] = f"{subnet.text} . {dst_ip}"

    def _nat_family(self, family: int, tables: _NatFamily, prerouting: list[str], output: list[str],
                    postrouting: list[str]) -> None:
        ip = _FAMILY_KEYWORD[family]
        address = _ADDR_TYPE[family]
        service = "inet_proto . inet_service"
        target = f"{address} . inet_service"
        loopback = f"{ip} daddr != {_LOOPBACK[family]}"

        # Forwards to a given public address first, then those to any local address.
        if self._add_set("map", f"fwd{family}_addr", f"{address} . {service} : {target}",
                         _sorted_values(tables.by_address, first=True)):
            lookup = f"dnat {ip} to {ip} daddr . meta l4proto . th dport map @fwd{family}_addr"
            guard = ""
            if self._add_set("set", f"nohairpin{family}_addr", f"ifname . {address} . {service}",
                             _sorted_values(tables.no_hairpin_by_address)):
                guard = f"iifname . {ip} daddr . meta l4proto . th dport != @nohairpin{family}_addr "
            prerouting.append(guard + lookup)
            output.append(f"{loopback} {lookup}")
        if self._add_set("map", f"fwd{family}", f"{service} : {target}",
                         _sorted_values(tables.any_address, first=True)):
            lookup = f"dnat {ip} to meta l4proto . th dport map @fwd{family}"
            guard = ""
            if self._add_set("set", f"nohairpin{family}", f"ifname . {service}", _sorted_values(tables.no_hairpin)):
                guard = f"iifname . meta l4proto . th dport != @nohairpin{family} "
            # Written 0.0.0.0 or [::]: any address of the host, and only those.
            prerouting.append(f"fib daddr type local {guard}{lookup}")
            output.append(f"fib daddr type local {loopback} {lookup}")

        if self._add_set("set", f"hairpin{family}", f"{address} . {address}", _sorted_values(tables.hairpin),
                         flags="interval"):
            # A client reaching a forward into its own network: the server must answer through
            # the host, so the client's source becomes the host's address on that network.
            postrouting.append(f"ct status dnat {ip} saddr . {ip} daddr @hairpin{family} masquerade")
        if self._add_set("set", f"masq{family}", f"{address} . ifname", _sorted_values(tables.masquerade),
                         flags="interval"):
            # Keyed on the output interface: traffic between the host's own networks leaves
            # through their bridges, not masq_out, and keeps its source address.
            postrouting.append(f"{ip} saddr . oifname @masq{family} masquerade")


@dataclass
class _NatFamily:
    """One address family's NAT entries, each keyed by what it sorts by."""

    any_address: dict = field(default_factory=dict)  # (protocol, port) -> (element, where)
    by_address: dict = field(default_factory=dict)  # (packed address, protocol, port) -> (element, where)
    no_hairpin: dict = field(default_factory=dict)  # (iface, protocol, port) -> element
    no_hairpin_by_address: dict = field(default_factory=dict)  # (iface, packed, protocol, port) -> element
    hairpin: dict = field(default_factory=dict)  # (network, prefixlen, packed destination) -> element
    masquerade: dict = field(default_factory=dict)  # (network, prefixlen, ifname) -> element


def _sorted_values(entries: dict, first: bool = False) -> list[str]:
    """The values of ``entries`` in key order (``first``: values are (element, where) pairs)."""
    return [value[0] if first else value for _key, value in sorted(entries.items())]


# ---------------------------------------------------------------------------------------------
# Normalisation


_HANDLE_RE = re.compile(r"\s+# handle \d+\s*$")
_COUNTER_RE = re.compile(r"\bcounter packets \d+ bytes \d+")
_DEFAULT_BURST_RE = re.compile(rf" burst {DEFAULT_BURST} packets\b")
_HOUR_RE = re.compile(r'meta hour (!= )?"(\d+):(\d+)(?::(\d+))?"-"(\d+):(\d+)(?::(\d+))?"')
_BLOCK_RE = re.compile(r"^(table|chain|set|map|flowtable|counter|quota|limit|ct helper|ct timeout|ct expectation|"
                       r"synproxy|secmark) .*\{$")


def _split_quoted(line: str) -> list[str]:
    """Alternating unquoted and quoted pieces (quoted ones keep their quotes)."""
    return re.split(r'("[^"]*")', line)


def _brace_depth(line: str) -> int:
    depth = 0
    for index, piece in enumerate(_split_quoted(line)):
        if index % 2 == 0:
            depth += piece.count("{") - piece.count("}")
    return depth


def _collapse_spaces(line: str) -> str:
    pieces = _split_quoted(line)
    return "".join(piece if index % 2 else re.sub(r"\s+", " ", piece) for index, piece in enumerate(pieces)).strip()


def _logical_lines(text: str) -> list[str]:
    """Physical lines joined into statements (element lists may span lines), whitespace collapsed."""
    logical: list[str] = []
    pending: list[str] = []
    depth = 0
    for raw in text.splitlines():
        line = _HANDLE_RE.sub("", raw).strip()
        if not line:
            continue
        if pending:
            pending.append(line)
            depth += _brace_depth(line)
            if depth <= 0:
                logical.append(_canonical_statement(_collapse_spaces(" ".join(pending))))
                pending = []
            continue
        line_depth = _brace_depth(line)
        if line == "}" or (line_depth == 1 and _BLOCK_RE.match(line)):
            logical.append(_collapse_spaces(line))
        elif line_depth > 0:
            pending, depth = [line], line_depth
        else:
            logical.append(_canonical_statement(_collapse_spaces(line)))
    if pending:
        logical.append(_canonical_statement(_collapse_spaces(" ".join(pending))))
    return logical


def _canonical_statement(line: str) -> str:
    line = _COUNTER_RE.sub("counter", line)
    line = _DEFAULT_BURST_RE.sub("", line)
    line = _HOUR_RE.sub(_canonical_hour, line)
    if line.startswith("flags "):
        line = "flags " + ",".join(sorted(line[len("flags "):].split(",")))
    return _sort_braces(line)


def _canonical_hour(match: re.Match) -> str:
    """``meta hour`` as the half-open minute window it matches, ``[HH:MM,HH:MM)``.

    nft converts hours between local time and UTC when it loads and lists them; a range
    that wraps midnight in UTC comes back negated with its ends swapped (one second off
    at each end), or with an out-of-range start. All of those describe the same window
    to the minute, which is the granularity topologies use.
    """
    def seconds(hours: str, minutes: str, secs: str | None) -> int:
        total = (int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)) % 2**32
        return (total - 2**32 if total >= 2**31 else total) % 86400

    first = seconds(match.group(2), match.group(3), match.group(4))
    last = seconds(match.group(5), match.group(6), match.group(7))
    if match.group(1):  # the complement of [first, last]
        first, last = last + 1, first - 1
    start = ((first + 30) // 60) % 1440
    end = ((last + 1 + 30) // 60) % 1440
    return f"meta hour [{start // 60:02d}:{start % 60:02d},{end // 60:02d}:{end % 60:02d})"


_TOKEN_RE = re.compile(r'"[^"]*"|[{},]|[^"{},]+|"')


def _sort_braces(line: str) -> str:
    """Sort the comma-separated elements of every ``{ ... }``: in nft syntax these are sets."""
    if "{" not in line:
        return line
    # A stack of open groups, each a list of finished elements plus the element being read.
    stack: list[tuple[list[str], list[str]]] = [([], [])]
    for token in _TOKEN_RE.findall(line):
        elements, current = stack[-1]
        if token == "{":
            stack.append(([], []))
        elif token == "," and len(stack) > 1:
            elements.append("".join(current).strip())
            current.clear()
        elif token == "}" and len(stack) > 1:
            elements.append("".join(current).strip())
            stack.pop()
            members = sorted(element for element in elements if element)
            stack[-1][1].append("{ " + ", ".join(members) + " }" if members else "{ }")
        else:
            current.append(token)
    while len(stack) > 1:  # unbalanced: keep what there is
        elements, current = stack.pop()
        stack[-1][1].append("{ " + ", ".join([*elements, "".join(current).strip()]))
    return "".join(stack[0][1])


_SET_STATEMENT_ORDER = ("type ", "typeof ", "size ", "flags ", "timeout ", "gc-interval ", "policy ", "auto-merge",
                        "counter", "comment ", "elements = ")


def _set_statement_order(statement: str) -> tuple[int, str]:
    for index, prefix in enumerate(_SET_STATEMENT_ORDER):
        if statement.startswith(prefix):
            return index, statement
    return len(_SET_STATEMENT_ORDER), statement


@dataclass
class _Block:
    header: str
    items: list  # statements (str) and nested blocks, in input order


def _parse_blocks(lines: list[str]) -> _Block:
    root = _Block("", [])
    stack = [root]
    for line in lines:
        if line == "}":
            if len(stack) > 1:
                stack.pop()
        elif line.endswith("{") and _BLOCK_RE.match(line):
            block = _Block(line[:-1].rstrip(), [])
            stack[-1].items.append(block)
            stack.append(block)
        else:
            stack[-1].items.append(line)
    return root


def _emit(block: _Block, depth: int) -> list[str]:
    indent = "\t" * depth
    statements = [item for item in block.items if isinstance(item, str)]
    if block.header.startswith(("set ", "map ")):
        flags = [statement[len("flags "):].split(",") for statement in statements if statement.startswith("flags ")]
        if any("dynamic" in flag for flag in flags):
            # Sources the kernel added at run time, not part of the desired state.
            statements = [statement for statement in statements if not statement.startswith("elements = ")]
        statements.sort(key=_set_statement_order)  # their order in a set means nothing
    lines = [f"{indent}{statement}" for statement in statements]
    for child in sorted((item for item in block.items if isinstance(item, _Block)), key=lambda item: item.header):
        lines.append(f"{indent}{child.header} {{")
        lines.extend(_emit(child, depth + 1))
        lines.append(f"{indent}}}")
    return lines
