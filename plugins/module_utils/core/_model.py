# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The validated, normalised data model shared by the pure core.

Everything here is immutable plain data. ``_topology`` builds it from user input
(and is the only place that validates); ``_policy`` builds :class:`Profile`;
``_nft``, ``_dnsmasq`` and ``_plan`` consume it and may assume it is valid:
addresses are canonical strings (``10.33.0.0/24``, ``2001:db8::/64``), interface
names are already resolved to kernel names, tuples are sorted where order has no
meaning, so equal inputs give equal models and byte-identical output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NETWORK_TYPES = ("routed", "bridge", "vlan", "vxlan")
ACTIONS = ("accept", "drop", "reject")
L4_PROTOCOLS = ("tcp", "udp", "sctp")
RULE_PROTOCOLS = ("tcp", "udp", "sctp", "icmp", "icmpv6")
DIRECTIONS = ("ingress", "egress", "host")
RATE_UNITS = ("second", "minute", "hour", "day")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The one table the collection owns (DESIGN 4.1).
NFT_FAMILY = "inet"
NFT_TABLE = "ghostwarden"
# Kernel-visible ownership mark of links the collection created: ifalias "ghostwarden:<network>".
OWNER_ALIAS_PREFIX = "ghostwarden:"
# Where the collection keeps its records, dnsmasq files and journals unless told otherwise.
DEFAULT_STATE_DIR = "/var/lib/ghostwarden"


@dataclass(frozen=True, order=True)
class PortRange:
    """An inclusive port range; ``first == last`` for a single port."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Subnet:
    """One address family's addressing of a network: ``cidr`` and the host's ``gw_ip`` in it."""

    cidr: str  # canonical network, e.g. "10.33.0.0/24"
    gw_ip: str  # the host's address in it, e.g. "10.33.0.1"
    family: int  # 4 or 6

    @property
    def prefixlen(self) -> int:
        return int(self.cidr.rsplit("/", 1)[1])

    @property
    def gw_interface_address(self) -> str:
        """The address as it is put on the interface, e.g. ``10.33.0.1/24``."""
        return f"{self.gw_ip}/{self.prefixlen}"


@dataclass(frozen=True)
class StaticLease:
    mac: str  # lower-case, colon separated
    ip: str
    hostname: str | None = None


@dataclass(frozen=True)
class DhcpRange:
    start: str
    end: str
    family: int


@dataclass(frozen=True)
class Dhcp:
    """DHCP on a network. ``ranges`` is never empty: derived from the subnets when not given."""

    ranges: tuple[DhcpRange, ...]
    lease_time: str = "12h"  # dnsmasq syntax: seconds, or a number with m/h/d, or "infinite"
    hosts: tuple[StaticLease, ...] = ()
    # Options sent to clients; router and DNS server are always gw_ip (never the network address).


@dataclass(frozen=True)
class DnsRecord:
    name: str  # fully qualified, lower case, no trailing dot
    ip: str


@dataclass(frozen=True)
class Dns:
    zones: tuple[str, ...] = ()  # local zones answered by this network's dnsmasq
    records: tuple[DnsRecord, ...] = ()
    upstream: tuple[str, ...] = ()  # upstream resolvers (IPs); empty = the host's resolv.conf


@dataclass(frozen=True)
class Forward:
    """A DNAT port forward: ``public`` (ip:port/proto) to ``dst`` (ip:port) inside the network."""

    family: int  # 4 or 6
    protocol: str  # tcp | udp | sctp
    public_ip: str | None  # None: any local address of the host (written 0.0.0.0 or [::])
    public_port: PortRange
    dst_ip: str
    dst_port: PortRange  # same size as public_port
    hairpin: bool = True  # clients of the network may use the public address too
    comment: str | None = None


@dataclass(frozen=True)
class Network:
    """One network of the topology, already validated and with names resolved.

    Fields that do not apply to a type keep their defaults. Every type except a
    plain ``vlan`` has a bridge named ``iface``; a ``vlan`` network's ``iface`` is
    the VLAN sub-interface itself.
    """

    name: str
    type: str  # one of NETWORK_TYPES
    iface: str  # the link that carries the network's L3 (bridge, or the vlan device)
    iface_generated: bool = False  # True when iface was derived from the network name
    mtu: int | None = None

    # L3 (required for routed, optional otherwise)
    subnets: tuple[Subnet, ...] = ()  # at most one per family, v4 first
    dhcp: Dhcp | None = None
    dns: Dns | None = None
    masq_out: str | None = None  # resolved kernel interface name
    forwards: tuple[Forward, ...] = ()
    policy_profile: str | None = None

    # bridge attributes (routed, bridge, vxlan)
    stp: bool = False
    vlan_filtering: bool = False
    vids: tuple[PortRange, ...] = ()  # VLAN ids carried by a VLAN-aware bridge
    ports: tuple[str, ...] = ()  # existing (foreign) links enslaved to the bridge, resolved names
    # The port's addresses and routes move to the bridge (the host's address on a NIC that becomes a
    # bridge port, as vmbr0 over eno1); ``ports`` then has exactly one link. docs/plan.md 3.5.
    adopt_port_addresses: bool = False

    # VLAN: for "vlan" the device itself; for "bridge" with vlan set, a sub-interface
    # ``vlan_iface`` of ``parent`` enslaved to the bridge.
    vlan: int | None = None
    parent: str | None = None  # resolved kernel name of the VLAN's parent link
    vlan_iface: str | None = None

    # VXLAN: device ``vxlan_iface`` enslaved to bridge ``iface``; one all-zeros FDB entry per peer.
    vni: int | None = None
    vxlan_iface: str | None = None
    peers: tuple[str, ...] = ()  # unicast underlay IPs, sorted
    local: str | None = None  # local underlay IP
    dev: str | None = None  # underlay device, resolved
    dstport: int = 4789
    learning: bool = False

    @property
    def is_l3(self) -> bool:
        return bool(self.subnets)

    def subnet(self, family: int) -> Subnet | None:
        for subnet in self.subnets:
            if subnet.family == family:
                return subnet
        return None


@dataclass(frozen=True)
class Management:
    """Sources and ports always accepted to the host before any policy (DESIGN 4.5)."""

    allow_from: tuple[str, ...] = ()  # canonical CIDRs, sorted, v4 before v6
    ports: tuple[PortRange, ...] = (PortRange(22, 22),)  # tcp
    enforce: bool = True  # False only when the user explicitly forces a dangerous topology


@dataclass(frozen=True)
class RateLimit:
    rate: int  # packets per unit
    per: str  # one of RATE_UNITS
    burst: int | None = None  # packets
    per_source: bool = False  # a meter keyed on the source address instead of one global bucket


@dataclass(frozen=True)
class TimeWindow:
    """Matches only inside the window (nft ``meta hour`` / ``meta day``, host local time)."""

    hours: tuple[str, str] | None = None  # ("08:00", "18:00"); start > end wraps midnight
    days: tuple[str, ...] = ()  # WEEKDAYS names, in week order


@dataclass(frozen=True)
class Rule:
    """One policy rule. Empty tuples mean "any"."""

    direction: str  # ingress: into the network; egress: out of it; host: from it to the host
    action: str  # one of ACTIONS
    protocol: str | None = None  # one of RULE_PROTOCOLS or None for any
    ports: tuple[PortRange, ...] = ()  # destination ports (only with tcp/udp/sctp)
    sources: tuple[str, ...] = ()  # canonical CIDRs
    destinations: tuple[str, ...] = ()  # canonical CIDRs
    rate_limit: RateLimit | None = None
    conn_limit: int | None = None  # at most this many concurrent connections per source
    log: bool = False
    log_prefix: str | None = None
    counter: bool = False
    time: TimeWindow | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Profile:
    """A policy profile: what may enter a network, leave it, and reach the host from it."""

    name: str
    description: str
    ingress_action: str  # fate of traffic entering the network that no rule matched
    egress_action: str  # fate of traffic leaving the network that no rule matched
    host_action: str  # fate of traffic from the network to the host that no rule matched
    rules: tuple[Rule, ...] = ()  # evaluated in order, first match wins
    builtin: bool = False


@dataclass(frozen=True)
class Topology:
    version: int
    interfaces: tuple[tuple[str, str], ...]  # (key, kernel name), sorted by key
    management: Management
    profiles: tuple[tuple[str, Profile], ...]  # every profile in scope: built-ins merged with user ones, sorted
    networks: tuple[Network, ...]  # sorted by name
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def profile(self, name: str) -> Profile:
        for key, profile in self.profiles:
            if key == name:
                return profile
        raise KeyError(name)

    def network(self, name: str) -> Network:
        for network in self.networks:
            if network.name == name:
                return network
        raise KeyError(name)

    def interface(self, key: str) -> str | None:
        for name, value in self.interfaces:
            if name == key:
                return value
        return None
