# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Host state as plain data: links, addresses, FDB entries, bridge VLANs, sysctls, and the operations.

The host wing observes the kernel into a :class:`HostState` and executes :class:`Operation` lists;
the planner (``core._plan``) computes one from the other. Pure data, no kernel.
``docs/plan.md`` describes the state model and every operation kind.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import NFT_FAMILY, NFT_TABLE, PortRange


AttrValue = Union[str, int, bool]


DetailValue = Union[str, int, bool, None]


LINK_KINDS = ("bridge", "vlan", "vxlan", "other")


LINK_STATES = ("up", "down")


# Every link attribute the state model knows, with its plain-data type.
LINK_ATTR_TYPES: Dict[str, type] = {
    "dev": str,  # vxlan underlay device
    "dstport": int,  # vxlan UDP port
    "ifalias": str,  # ownership mark "ghostwarden:<network>" on owned links
    "mac": str,  # link-layer address: a bridge that adopts its port's addresses takes the port's (lower case)
    "learning": bool,  # vxlan source-address learning
    "local": str,  # vxlan local underlay address
    "master": str,  # the bridge the link is enslaved to
    "mtu": int,
    "parent": str,  # lower link of a vlan (IFLA_LINK)
    "state": str,  # "up" or "down" (administrative)
    "stp": bool,
    "vlan_filtering": bool,
    "vlan_id": int,
    "vni": int,
}


# A difference in these means delete and create again. The kernel cannot change a vlan's id or
# lower link, nor a vxlan's VNI or port; a vxlan on another local address or lower device is a
# new tunnel, recreated rather than relying on each kernel's changelink (see docs/plan.md).
IMMUTABLE_ATTRS: Dict[str, Tuple[str, ...]] = {
    "bridge": (),
    "vlan": ("parent", "vlan_id"),
    "vxlan": ("dev", "dstport", "local", "vni"),
    "other": (),
}


# A desired link without one of these means "none" (a stray master is released); any other
# attribute absent from the desired link is left as the kernel has it (mtu when not set).
UNSET_WHEN_ABSENT = ("master",)


# Attributes whose value names another link the link depends on (ordering and cascades).
LINK_REFERENCES = ("parent", "dev", "master")


# A link whose lower link goes away is removed by the kernel with it.
LOWER_LINK_REFERENCES = ("parent", "dev")


DEFAULT_PVID = 1


ZERO_MAC = "00:00:00:00:00:00"


SYSCTL_IPV4_FORWARDING = "net.ipv4.ip_forward"


SYSCTL_IPV6_FORWARDING = "net.ipv6.conf.all.forwarding"


# accept_ra of an interface: 1 accepts router advertisements unless IPv6 forwarding is on (the
# kernel's default), 2 accepts them while forwarding too, 0 never. The planner moves an uplink's
# accept_ra between 1 and 2 only (docs/plan.md 3.1).
ACCEPT_RA_UNLESS_FORWARDING = "1"
ACCEPT_RA_WHILE_FORWARDING = "2"


IPV6_LINK_LOCAL = ipaddress.ip_network("fe80::/10")


# Operation kinds in plan order (see docs/plan.md for why this order). The kinds restore_* and
# copy_neighbours (giving a port its addresses and routes back) and adopt_*/drop_port_address (moving
# them to the bridge) are placed where an established connection through the port survives the move.
OPERATION_KINDS = (
    "set_sysctl",
    "remove_file",
    "restore_address",
    "copy_neighbours",
    "restore_route",
    "remove_fdb",
    "remove_address",
    "remove_bridge_vlan",
    "release_master",
    "delete_link",
    "create_link",
    "modify_link",
    "adopt_address",
    "set_master",
    "adopt_route",
    "drop_port_address",
    "add_bridge_vlan",
    "add_address",
    "add_fdb",
    "write_file",
    "replace_ruleset",
    "delete_ruleset",
)


RULESET_TARGET = f"ruleset:{NFT_FAMILY} {NFT_TABLE}"

# Routing tables (linux/rtnetlink.h): routes of the local table are the kernel's (one per local
# address), never adopted.
MAIN_TABLE = 254
LOCAL_TABLE = 255


def _pairs(value: Any, what: str) -> Tuple[Tuple[str, Any], ...]:
    """A mapping or pairs as a tuple of pairs sorted by key; duplicate keys are a bug."""
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    pairs = tuple(sorted((str(key), item) for key, item in items))
    keys = [key for key, _item in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{what}: duplicate keys in {keys}")
    return pairs


def _canonical_interface_address(value: str) -> str:
    return str(ipaddress.ip_interface(value))


def _canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


@dataclass(frozen=True, order=True)
class LinkState:
    """One network link. ``owner`` is the network whose ifalias mark it carries, None when foreign.

    ``attrs`` accepts a mapping or pairs and is stored as pairs sorted by key. For foreign
    links only the name, kind and lower links matter to the planner.
    """

    name: str
    kind: str
    owner: Optional[str] = None
    attrs: Tuple[Tuple[str, AttrValue], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in LINK_KINDS:
            raise ValueError(f"link {self.name}: kind {self.kind!r} is not one of {LINK_KINDS}")
        attrs = _pairs(self.attrs, f"link {self.name}")
        for key, value in attrs:
            expected = LINK_ATTR_TYPES.get(key)
            if expected is None:
                raise ValueError(f"link {self.name}: unknown attribute {key!r}")
            # bool is an int subclass: an int attribute must not silently accept True.
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"link {self.name}: attribute {key}={value!r} is not a {expected.__name__}")
        state = dict(attrs).get("state")
        if state is not None and state not in LINK_STATES:
            raise ValueError(f"link {self.name}: state {state!r} is not one of {LINK_STATES}")
        object.__setattr__(self, "attrs", attrs)

    @property
    def owned(self) -> bool:
        return self.owner is not None

    def attr(self, key: str) -> Optional[AttrValue]:
        for name, value in self.attrs:
            if name == key:
                return value
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "owner": self.owner, "attrs": dict(self.attrs)}


@dataclass(frozen=True, order=True)
class BridgeVlan:
    """VLAN membership of a port of a VLAN-aware bridge; ``port`` equal to the bridge is its "self" entry.

    ``vids`` is an inclusive range of VLAN ids with the same flags; :class:`HostState` merges
    adjacent ranges, so equal memberships compare equal however they were listed.
    """

    port: str
    vids: PortRange
    pvid: bool = False
    untagged: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.vids.first <= self.vids.last <= 4094:
            raise ValueError(f"bridge vlan {self.port}: vids {self.vids} outside 1-4094")
        if self.pvid and self.vids.size != 1:
            raise ValueError(f"bridge vlan {self.port}: pvid on the range {self.vids}")

    @property
    def flags(self) -> Tuple[bool, bool]:
        return (self.pvid, self.untagged)

    def to_dict(self) -> dict:
        return {
            "port": self.port,
            "vid_first": self.vids.first,
            "vid_last": self.vids.last,
            "pvid": self.pvid,
            "untagged": self.untagged,
        }


@dataclass(frozen=True, order=True)
class Address:
    """An address with prefix on a link; ``owned`` when the collection recorded adding it.

    ``dynamic``: the kernel shows a lifetime (a DHCP or SLAAC lease), so a lease client manages it.
    ``adopted_from``: the port it was adopted from (it sits on that port's bridge and goes back to
    the port when the adoption ends); always owned.
    """

    iface: str
    address: str  # canonical "10.33.0.1/24", "2001:db8::1/64"
    owned: bool = False
    dynamic: bool = False
    adopted_from: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", _canonical_interface_address(self.address))

    @property
    def key(self) -> Tuple[str, str]:
        return (self.iface, self.address)

    @property
    def link_local(self) -> bool:
        return ipaddress.ip_interface(self.address).ip in IPV6_LINK_LOCAL

    @property
    def family(self) -> int:
        return ipaddress.ip_interface(self.address).version

    def to_dict(self) -> dict:
        result: Dict[str, Any] = {"iface": self.iface, "address": self.address, "owned": self.owned}
        if self.dynamic:
            result["dynamic"] = True
        if self.adopted_from is not None:
            result["adopted_from"] = self.adopted_from
        return result

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Address:
        return cls(item["iface"], item["address"], item["owned"], bool(item.get("dynamic", False)),
                   item.get("adopted_from"))


@dataclass(frozen=True, order=True)
class Route:
    """A unicast route through link ``dev`` (only routes through the links an adoption involves are observed).

    Identity is (table, dst, metric, dev): the kernel keys a route on table, destination and metric,
    and a move to another device keeps all three. ``scope`` and ``proto`` are the kernel's numbers
    (``ip route`` prints them as names). ``refused``: why the route cannot be moved (a lifetime, a
    multipath or nexthop-object route, route metrics); None when it can. ``owned`` and
    ``adopted_from`` as for :class:`Address`.
    """

    dst: str  # canonical prefix, "0.0.0.0/0" / "::/0" for the default route
    dev: str
    table: int = MAIN_TABLE
    metric: int = 0
    gateway: Optional[str] = None
    onlink: bool = False
    scope: int = 0  # RT_SCOPE_UNIVERSE; 253 = link (a route without gateway)
    proto: int = 3  # RTPROT_BOOT, what "ip route add" sets
    src: Optional[str] = None
    refused: Optional[str] = None
    owned: bool = False
    adopted_from: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", str(ipaddress.ip_network(self.dst)))
        if self.gateway is not None:
            object.__setattr__(self, "gateway", _canonical_ip(self.gateway))
        if self.src is not None:
            object.__setattr__(self, "src", _canonical_ip(self.src))
        for name in ("table", "metric", "scope", "proto"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"route {self.dst} dev {self.dev}: {name}={value!r} is not a non-negative integer")

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.dst).version

    @property
    def key(self) -> Tuple[int, str, int, str]:
        return (self.table, self.dst, self.metric, self.dev)

    @property
    def place(self) -> Tuple[int, int, str, int]:
        """What the kernel keys the route on: a replace request with the same place replaces it."""
        return (self.family, self.table, self.dst, self.metric)

    def moved(self, dev: str, **changes: Any) -> Route:
        """The same route through ``dev``."""
        return replace(self, dev=dev, **changes)

    def spec(self) -> Dict[str, DetailValue]:
        """The route's kernel attributes as operation details (without ``dev``)."""
        return {"dst": self.dst, "table": self.table, "metric": self.metric, "gateway": self.gateway,
                "onlink": self.onlink, "scope": self.scope, "proto": self.proto, "src": self.src}

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        table = f" table {self.table}" if self.table != MAIN_TABLE else ""
        return f"{self.dst}{via} dev {self.dev}{table} metric {self.metric}"

    def to_dict(self) -> dict:
        result: Dict[str, Any] = {"dev": self.dev, **self.spec(), "owned": self.owned}
        if self.refused is not None:
            result["refused"] = self.refused
        if self.adopted_from is not None:
            result["adopted_from"] = self.adopted_from
        return result

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Route:
        return cls(item["dst"], item["dev"], item["table"], item["metric"], item.get("gateway"),
                   bool(item.get("onlink", False)), item["scope"], item["proto"], item.get("src"),
                   item.get("refused"), item["owned"], item.get("adopted_from"))


@dataclass(frozen=True, order=True)
class Adoption:
    """Bridge ``bridge`` carries the addresses and routes of its port ``port`` (``adopt_port_addresses``)."""

    port: str
    bridge: str

    def to_dict(self) -> dict:
        return {"port": self.port, "bridge": self.bridge}


@dataclass(frozen=True, order=True)
class FdbEntry:
    """A VXLAN forwarding entry (head-end replication: all-zeros MAC to a peer); ``owned`` when recorded."""

    iface: str
    dst: str
    mac: str = ZERO_MAC
    owned: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", _canonical_ip(self.dst))
        object.__setattr__(self, "mac", self.mac.lower())

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.iface, self.mac, self.dst)

    def to_dict(self) -> dict:
        return {"iface": self.iface, "mac": self.mac, "dst": self.dst, "owned": self.owned}


@dataclass(frozen=True, order=True)
class Enslavement:
    """A foreign link enslaved to a bridge; ``owned`` when the collection recorded enslaving it."""

    port: str
    master: str
    owned: bool = False

    def to_dict(self) -> dict:
        return {"port": self.port, "master": self.master, "owned": self.owned}


def _merge_bridge_vlans(entries: Iterable[BridgeVlan]) -> Tuple[BridgeVlan, ...]:
    """Canonical form: sorted, overlapping or adjacent ranges with equal flags merged."""
    merged: List[BridgeVlan] = []
    pvid_ports: Dict[str, int] = {}
    for entry in sorted(entries, key=lambda item: (item.port, item.vids.first, item.vids.last)):
        if entry.pvid:
            if entry.port in pvid_ports and pvid_ports[entry.port] != entry.vids.first:
                raise ValueError(f"bridge vlan {entry.port}: two pvids {pvid_ports[entry.port]} and {entry.vids.first}")
            pvid_ports[entry.port] = entry.vids.first
        last = merged[-1] if merged else None
        if last is None or last.port != entry.port or entry.vids.first > last.vids.last + 1:
            merged.append(entry)
            continue
        overlaps = entry.vids.first <= last.vids.last
        if overlaps and last.flags != entry.flags:
            raise ValueError(f"bridge vlan {entry.port}: vids {last.vids} and {entry.vids} overlap with different flags")
        if last.flags == entry.flags and not entry.pvid:
            merged[-1] = BridgeVlan(last.port, PortRange(last.vids.first, max(last.vids.last, entry.vids.last)), *last.flags)
        elif not overlaps:
            merged.append(entry)
    return tuple(merged)


def _unique(items: Iterable[Any], key: Any, what: str) -> tuple:
    ordered = tuple(sorted(items, key=key))
    keys = [key(item) for item in ordered]
    for before, after in zip(keys, keys[1:]):
        if before == after:
            raise ValueError(f"{what}: {before} listed twice")
    return ordered


@dataclass(frozen=True)
class HostState:
    """Everything the collection manages on a host, as comparable plain data.

    The constructor accepts any order (and mappings for ``sysctls`` and ``dnsmasq_files``) and
    stores the canonical sorted form, so two states describing the same host are equal.
    """

    links: Tuple[LinkState, ...] = ()
    bridge_vlans: Tuple[BridgeVlan, ...] = ()
    addresses: Tuple[Address, ...] = ()
    fdb: Tuple[FdbEntry, ...] = ()
    enslavements: Tuple[Enslavement, ...] = ()
    sysctls: Tuple[Tuple[str, str], ...] = ()
    ruleset: Optional[str] = None  # text of the owned nft table, None when the table is absent
    dnsmasq_files: Tuple[Tuple[str, str], ...] = ()  # absolute path -> content
    routes: Tuple[Route, ...] = ()  # routes through the links of adoptions (docs/plan.md 3.5)
    adoptions: Tuple[Adoption, ...] = ()

    def __post_init__(self) -> None:
        canonical = {
            "links": _unique(self.links, lambda link: link.name, "links"),
            "bridge_vlans": _merge_bridge_vlans(self.bridge_vlans),
            "addresses": _unique(self.addresses, lambda address: address.key, "addresses"),
            "fdb": _unique(self.fdb, lambda entry: entry.key, "fdb"),
            "enslavements": _unique(self.enslavements, lambda item: item.port, "enslavements"),
            "sysctls": _pairs(self.sysctls, "sysctls"),
            "dnsmasq_files": _pairs(self.dnsmasq_files, "dnsmasq_files"),
            "routes": _unique(self.routes, lambda route: route.key, "routes"),
            "adoptions": _unique(self.adoptions, lambda item: item.port, "adoptions"),
        }
        for name, value in canonical.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """Plain data; ``routes`` and ``adoptions`` only when there are any (states without them read as before)."""
        result = {
            "links": [link.to_dict() for link in self.links],
            "bridge_vlans": [entry.to_dict() for entry in self.bridge_vlans],
            "addresses": [address.to_dict() for address in self.addresses],
            "fdb": [entry.to_dict() for entry in self.fdb],
            "enslavements": [item.to_dict() for item in self.enslavements],
            "sysctls": dict(self.sysctls),
            "ruleset": self.ruleset,
            "dnsmasq_files": dict(self.dnsmasq_files),
        }
        if self.routes:
            result["routes"] = [route.to_dict() for route in self.routes]
        if self.adoptions:
            result["adoptions"] = [item.to_dict() for item in self.adoptions]
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostState:
        """The inverse of :meth:`to_dict` (for recorded states read back from JSON)."""
        return cls(
            links=tuple(LinkState(item["name"], item["kind"], item["owner"], item["attrs"]) for item in data["links"]),
            bridge_vlans=tuple(
                BridgeVlan(item["port"], PortRange(item["vid_first"], item["vid_last"]), item["pvid"], item["untagged"])
                for item in data["bridge_vlans"]
            ),
            addresses=tuple(Address.from_dict(item) for item in data["addresses"]),
            fdb=tuple(FdbEntry(item["iface"], item["dst"], item["mac"], item["owned"]) for item in data["fdb"]),
            enslavements=tuple(Enslavement(item["port"], item["master"], item["owned"]) for item in data["enslavements"]),
            sysctls=data["sysctls"],
            ruleset=data["ruleset"],
            dnsmasq_files=data["dnsmasq_files"],
            routes=tuple(Route.from_dict(item) for item in data.get("routes", ())),
            adoptions=tuple(Adoption(item["port"], item["bridge"]) for item in data.get("adoptions", ())),
        )


def empty_state() -> HostState:
    """A host with nothing the collection owns (and nothing else it would look at)."""
    return HostState()


def format_detail(value: DetailValue) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or any(char.isspace() or char in "\"'=\\" for char in text):
        return json.dumps(text)
    return text


@dataclass(frozen=True, order=True)
class Operation:
    """One step of a plan: ``kind`` (see OPERATION_KINDS), a readable ``target`` id and ``details``.

    ``details`` accepts a mapping or pairs and is stored as pairs sorted by key; values are
    str, int, bool or None, so ``to_dict()`` is JSON-able.
    """

    kind: str
    target: str
    details: Tuple[Tuple[str, DetailValue], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OPERATION_KINDS:
            raise ValueError(f"operation kind {self.kind!r} is not one of {OPERATION_KINDS}")
        object.__setattr__(self, "details", _pairs(self.details, f"operation {self.target}"))

    def detail(self, key: str) -> DetailValue:
        for name, value in self.details:
            if name == key:
                return value
        return None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "details": dict(self.details)}

    def __str__(self) -> str:
        # File and ruleset contents are in details for the executor; a log line shows their digest.
        shown = " ".join(f"{key}={format_detail(value)}" for key, value in self.details if key != "content")
        return f"{self.kind} {self.target}{' ' + shown if shown else ''}"


def summarise(operations: Iterable[Operation]) -> Dict[str, int]:
    """Count of operations per kind, every kind present (zero included), in plan order."""
    counts = {kind: 0 for kind in OPERATION_KINDS}
    for operation in operations:
        counts[operation.kind] += 1
    return counts


# --- sysctls ---------------------------------------------------------------------------------

SYSCTL_ROOT = "/proc/sys"
SYSCTL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@+")


def accept_ra_key(iface: str) -> str:
    """The sysctl key of an interface's accept_ra (a dot in the name is a slash in the key)."""
    return f"net.ipv6.conf.{iface.replace('.', '/')}.accept_ra"


def is_accept_ra_key(key: str) -> bool:
    """Whether ``key`` is one interface's accept_ra (not ``all`` or ``default``)."""
    parts = key.split(".")
    return (len(parts) == 5 and parts[:3] == ["net", "ipv6", "conf"] and parts[4] == "accept_ra"
            and parts[3] not in ("all", "default"))


def sysctl_path(key: str) -> str:
    """The /proc/sys file of a per-namespace sysctl key in sysctl(8) notation.

    Dots separate levels and a slash stands for a dot inside a name
    (``net.ipv4.conf.eth0/20.forwarding``). Only ``net.*`` keys are accepted: they are the
    ones that belong to a network namespace; any other key would change the whole host.
    """
    parts = [part.replace("/", ".") for part in key.split(".")] if isinstance(key, str) else []
    if (
        len(parts) < 2
        or parts[0] != "net"
        or any(not part or part in (".", "..") or not set(part) <= SYSCTL_CHARS for part in parts)
    ):
        raise ValueError(f"sysctl key {key!r} is not a net.* key in sysctl(8) notation")
    return "/".join([SYSCTL_ROOT, *parts])
