# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The netlink backend: observe the kernel as a :class:`HostState` and execute plan operations.

Change requests are encoded with pyroute2's message classes and sent over one plain
rtnetlink socket opened inside the target network namespace; dumps are decoded by a small
reader that extracts only the attributes the state model uses. ``docs/netlink.md`` maps every
operation to its requests, lists what is observed, and gives the measured costs.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading
from typing import Any, Callable, Collection, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple, TypeVar

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import PYROUTE2
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import OWNER_ALIAS_PREFIX, PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    BridgeVlan,
    DetailValue,
    Enslavement,
    FdbEntry,
    HostState,
    LOCAL_TABLE,
    LinkState,
    Operation,
    Route,
    sysctl_path,
)

# Stable kernel ABI (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, neighbour.h, if_bridge.h,
# sched.h): message types and flags, and the attribute numbers the reader looks for.
NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000
AF_BRIDGE = 7
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_REPLACE = 0x100
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
IFF_UP = 0x1
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NUD_VALID_DYNAMIC = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE  # learned, with a link-layer address
NTF_SELF = 0x02
NTF_ROUTER = 0x80
IFA_F_NODAD = 0x02
IFA_F_PERMANENT = 0x80
IFA_FLAGS = 8
IFLA_ADDRESS = 1
RTN_UNICAST = 1
RTPROT_KERNEL = 2
RTPROT_RA = 9
RTPROT_DHCP = 16
RTNH_F_ONLINK = 4
RT_TABLE_UNSPEC = 0
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_METRICS = 8
RTA_MULTIPATH = 9
RTA_CACHEINFO = 12
RTA_TABLE = 15
RTA_VIA = 18
RTA_EXPIRES = 23
RTA_NH_ID = 30
IFLA_EXT_MASK = 29
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_AF_SPEC = 26
IFLA_LINK_NETNSID = 37
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_BR_STP_STATE = 5
IFLA_BR_VLAN_FILTERING = 7
IFLA_VLAN_ID = 1
IFLA_VXLAN_ID = 1
IFLA_VXLAN_LINK = 3
IFLA_VXLAN_LOCAL = 4
IFLA_VXLAN_LEARNING = 7
IFLA_VXLAN_PORT = 15
IFLA_VXLAN_LOCAL6 = 17
IFLA_BRIDGE_VLAN_INFO = 2
IFA_ADDRESS = 1
IFA_LOCAL = 2
NDA_DST = 1
NDA_LLADDR = 2
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

RTEXT_FILTER_BRVLAN_COMPRESSED = 1 << 2
RTEXT_FILTER_SKIP_STATS = 1 << 3
BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 1 << 1
BRIDGE_VLAN_INFO_UNTAGGED = 1 << 2
BRIDGE_VLAN_INFO_RANGE_BEGIN = 1 << 3
BRIDGE_VLAN_INFO_RANGE_END = 1 << 4

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # errors quote only the request's header, not the whole request
NETLINK_EXT_ACK = 11  # errors carry the kernel's explanation ("Cannot change VNI")
NLM_F_DUMP_INTR = 0x10
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1

NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
NDMSG = struct.Struct("=BxxxiHBB")  # family, index, state, flags, type
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst len, src len, tos, table, protocol, scope, type, flags
RTNEXTHOP = struct.Struct("=HBBi")  # length, flags, hops, ifindex
NLA_HEADER = struct.Struct("=HH")
U8 = struct.Struct("=B")
U16 = struct.Struct("=H")
BE16 = struct.Struct(">H")
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")

NETNS_RUN_DIR = "/var/run/netns"  # where `ip netns add` binds named namespaces
RECEIVE_BUFFER = 1 << 20  # larger than any dump chunk the kernel sends (at most 32 KiB)
DUMP_ATTEMPTS = 5  # a dump interrupted by a concurrent change is started again
ZERO_MAC_BYTES = bytes(6)

MANAGED_KINDS = ("bridge", "vlan", "vxlan")
# Attributes that live in a kind's IFLA_INFO_DATA; a change to one names the kind.
KIND_ATTRS: Dict[str, Tuple[str, ...]] = {
    "bridge": ("stp", "vlan_filtering"),
    "vlan": ("vlan_id",),
    "vxlan": ("dev", "dstport", "learning", "local", "vni"),
}
LINK_DETAIL_KEYS = frozenset({"ifalias", "mac", "master", "mtu", "parent", "state"}).union(*KIND_ATTRS.values())

Result = TypeVar("Result")


class KernelError(Exception):
    """A netlink request the kernel refused: errno and the extended-ack message, if any."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message
        text = os.strerror(code)
        super().__init__(f"{text}: {message}" if message else text)


class DetailError(Exception):
    """An operation without a detail the executor needs (a bug in the caller, reported as such)."""


def _cause(error: BaseException) -> str:
    """One line for BackendError: the kernel's words for errno, with its explanation if any."""
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    return " ".join(str(error).split()) or type(error).__name__


# --- reading netlink attributes --------------------------------------------------------------


def _attribute_list(data: bytes, offset: int = 0, end: Optional[int] = None) -> Iterator[Tuple[int, bytes]]:
    """(type, payload) of each attribute in data[offset:end], in order."""
    end = len(data) if end is None else end
    while offset + NLA_HEADER.size <= end:
        length, kind = NLA_HEADER.unpack_from(data, offset)
        if length < NLA_HEADER.size or offset + length > end:
            break
        yield kind & NLA_TYPE_MASK, data[offset + NLA_HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _attributes(data: bytes, offset: int = 0) -> Dict[int, bytes]:
    return dict(_attribute_list(data, offset))


def _string(value: Optional[bytes]) -> Optional[str]:
    if value is None:
        return None
    return value.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _u32(value: Optional[bytes]) -> Optional[int]:
    return None if value is None or len(value) < 4 else U32.unpack_from(value)[0]


def _u8(value: Optional[bytes]) -> Optional[int]:
    return None if not value else U8.unpack_from(value)[0]


def _mac(value: Optional[bytes]) -> Optional[str]:
    if value is None or len(value) != 6:
        return None
    return ":".join(f"{byte:02x}" for byte in value)


def _ip(value: Optional[bytes]) -> Optional[str]:
    if value is None or len(value) not in (4, 16):
        return None
    return str(ipaddress.ip_address(value))


class RawLink(NamedTuple):
    """The parts of one RTM_NEWLINK message the state model uses."""

    index: int
    name: str
    up: bool
    mtu: Optional[int]
    master: int  # 0: none
    lower: int  # IFLA_LINK in this namespace, 0: none or in another namespace
    ifalias: Optional[str]
    kind: Optional[str]
    data: Dict[int, bytes]  # IFLA_INFO_DATA
    mac: Optional[str] = None  # IFLA_ADDRESS of an Ethernet-like link, lower case

    @classmethod
    def decode(cls, message: bytes) -> RawLink:
        _family, _type, index, flags, _change = IFINFOMSG.unpack_from(message, NLMSG_HEADER.size)
        attrs = _attributes(message, NLMSG_HEADER.size + IFINFOMSG.size)
        info = _attributes(attrs[IFLA_LINKINFO]) if IFLA_LINKINFO in attrs else {}
        lower = _u32(attrs.get(IFLA_LINK)) or 0
        # A lower link in another namespace (a veth peer, a moved vlan) is not a link here.
        if IFLA_LINK_NETNSID in attrs or lower == index:
            lower = 0
        return cls(
            index=index,
            name=_string(attrs.get(IFLA_IFNAME)) or f"if{index}",
            up=bool(flags & IFF_UP),
            mtu=_u32(attrs.get(IFLA_MTU)),
            master=_u32(attrs.get(IFLA_MASTER)) or 0,
            lower=lower,
            ifalias=_string(attrs.get(IFLA_IFALIAS)) or None,
            kind=_string(info.get(IFLA_INFO_KIND)),
            data=_attributes(info[IFLA_INFO_DATA]) if IFLA_INFO_DATA in info else {},
            mac=_mac(attrs.get(IFLA_ADDRESS)),
        )

    @property
    def owner(self) -> Optional[str]:
        """The network of the ownership mark; an empty network name is no mark."""
        if self.ifalias and self.ifalias.startswith(OWNER_ALIAS_PREFIX) and len(self.ifalias) > len(OWNER_ALIAS_PREFIX):
            return self.ifalias[len(OWNER_ALIAS_PREFIX):]
        return None

    @property
    def vlan_filtering(self) -> bool:
        return self.kind == "bridge" and bool(_u8(self.data.get(IFLA_BR_VLAN_FILTERING)))

    def state(self, names: Mapping[int, str], mac_links: Collection[str] = ()) -> LinkState:
        """The link as the state model has it; ``mac`` only for the links in ``mac_links`` (those of adoptions)."""
        kind = self.kind if self.kind in MANAGED_KINDS else "other"
        attrs: Dict[str, Any] = {}
        if self.name in mac_links and self.mac is not None:
            attrs["mac"] = self.mac
        lower = names.get(self.lower) if self.lower else None
        vxlan_dev = _u32(self.data.get(IFLA_VXLAN_LINK)) if kind == "vxlan" else None
        dev = names.get(vxlan_dev) if vxlan_dev else None
        if dev is not None:
            attrs["dev"] = dev
        if lower is not None:
            # Every lower link is reported, whatever the kind: deleting it may take this link along.
            attrs["parent"] = lower
        if self.owner is None:
            return LinkState(self.name, kind, None, attrs)
        attrs["ifalias"] = self.ifalias
        attrs["state"] = "up" if self.up else "down"
        if self.mtu is not None:
            attrs["mtu"] = self.mtu
        if self.master and self.master in names:
            attrs["master"] = names[self.master]
        if kind == "bridge":
            attrs["stp"] = bool(_u32(self.data.get(IFLA_BR_STP_STATE)))
            attrs["vlan_filtering"] = self.vlan_filtering
        elif kind == "vlan":
            vlan_id = self.data.get(IFLA_VLAN_ID)
            if vlan_id is not None and len(vlan_id) >= 2:
                attrs["vlan_id"] = U16.unpack_from(vlan_id)[0]
        elif kind == "vxlan":
            vni = _u32(self.data.get(IFLA_VXLAN_ID))
            if vni is not None:
                attrs["vni"] = vni
            port = self.data.get(IFLA_VXLAN_PORT)
            if port is not None and len(port) >= 2:
                attrs["dstport"] = BE16.unpack_from(port)[0]
            learning = _u8(self.data.get(IFLA_VXLAN_LEARNING))
            if learning is not None:
                attrs["learning"] = bool(learning)
            local = _ip(self.data.get(IFLA_VXLAN_LOCAL)) or _ip(self.data.get(IFLA_VXLAN_LOCAL6))
            if local is not None and not ipaddress.ip_address(local).is_unspecified:
                attrs["local"] = local  # the kernel leaves an unset local out; 0.0.0.0 would mean unset too
        return LinkState(self.name, kind, self.owner, attrs)


def _bridge_vlan_entries(message: bytes) -> Iterator[Tuple[int, int, int]]:
    """(first vid, last vid, flags) of an AF_BRIDGE link message dumped with compressed VLAN ranges."""
    attrs = _attributes(message, NLMSG_HEADER.size + IFINFOMSG.size)
    if IFLA_AF_SPEC not in attrs:
        return
    begin: Optional[int] = None
    for kind, payload in _attribute_list(attrs[IFLA_AF_SPEC]):
        if kind != IFLA_BRIDGE_VLAN_INFO or len(payload) < 4:
            continue
        flags, vid = struct.unpack_from("=HH", payload)
        if flags & BRIDGE_VLAN_INFO_RANGE_BEGIN:
            begin = vid
        elif flags & BRIDGE_VLAN_INFO_RANGE_END and begin is not None:
            yield begin, vid, flags
            begin = None
        else:
            yield vid, vid, flags


def _vxlans(links: Iterable[RawLink]) -> Dict[int, str]:
    return {link.index: link.name for link in links if link.kind == "vxlan"}


def _vlan_aware(links: Iterable[RawLink]) -> Dict[int, str]:
    return {link.index: link.name for link in links if link.vlan_filtering}


def addresses_from(messages: Iterable[bytes], names: Mapping[int, str]) -> List[Address]:
    """Every IPv4/IPv6 address of an RTM_GETADDR dump on a link of ``names``."""
    found: Dict[Tuple[str, str], Address] = {}
    for message in messages:
        family, prefixlen, flags, _scope, index = IFADDRMSG.unpack_from(message, NLMSG_HEADER.size)
        if family not in (socket.AF_INET, socket.AF_INET6) or index not in names:
            continue  # a link created after the link dump is not part of this state
        attrs = _attributes(message, NLMSG_HEADER.size + IFADDRMSG.size)
        # IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's when both are set.
        local = _ip(attrs.get(IFA_LOCAL)) or _ip(attrs.get(IFA_ADDRESS))
        if local is None:
            continue
        wide = _u32(attrs.get(IFA_FLAGS))  # the 32-bit flags, when the kernel sends them
        flags = flags if wide is None else wide
        # Without IFA_F_PERMANENT the address has a lifetime: a DHCP or SLAAC client manages it.
        address = Address(names[index], f"{local}/{prefixlen}", dynamic=not flags & IFA_F_PERMANENT)
        found.setdefault(address.key, address)  # point-to-point: one local address, several peers
    return list(found.values())


def fdb_from(messages: Iterable[bytes], vxlans: Mapping[int, str]) -> List[FdbEntry]:
    """The all-zeros entries of the vxlan devices in an AF_BRIDGE RTM_GETNEIGH dump."""
    found: Dict[Tuple[str, str, str], FdbEntry] = {}
    for message in messages:
        _family, index, _state, _flags, _type = NDMSG.unpack_from(message, NLMSG_HEADER.size)
        if index not in vxlans:
            continue
        attrs = _attributes(message, NLMSG_HEADER.size + NDMSG.size)
        destination = _ip(attrs.get(NDA_DST))
        if attrs.get(NDA_LLADDR) != ZERO_MAC_BYTES or destination is None:
            continue
        entry = FdbEntry(vxlans[index], destination)
        found.setdefault(entry.key, entry)  # the same peer on another port or VNI is one entry here
    return list(found.values())


def bridge_vlans_from(messages: Iterable[bytes], links: Iterable[RawLink]) -> List[BridgeVlan]:
    """VLANs of VLAN-aware bridges (their "self" entries) and of their ports, from an AF_BRIDGE
    RTM_GETLINK dump with compressed ranges."""
    by_index = {link.index: link for link in links}
    aware = _vlan_aware(by_index.values())
    entries: List[BridgeVlan] = []
    for message in messages:
        index = IFINFOMSG.unpack_from(message, NLMSG_HEADER.size)[2]
        link = by_index.get(index)
        if link is None or not (index in aware or link.master in aware):
            continue
        for first, last, flags in _bridge_vlan_entries(message):
            entries.append(BridgeVlan(
                link.name,
                PortRange(first, last),
                pvid=bool(flags & BRIDGE_VLAN_INFO_PVID),
                untagged=bool(flags & BRIDGE_VLAN_INFO_UNTAGGED),
            ))
    return entries


def routes_from(messages: Iterable[bytes], names: Mapping[int, str], links: Collection[str]) -> List[Route]:
    """The unicast routes through a link of ``links`` in an RTM_GETROUTE dump, every table but local.

    The kernel's own routes (proto kernel: a subnet's route, following its address) are left out.
    A route that cannot be moved to another device as it is says why in ``refused``.
    """
    found: Dict[Tuple[int, str, int, str], Route] = {}
    for message in messages:
        family, dst_len, _src_len, _tos, table, protocol, scope, kind, flags = RTMSG.unpack_from(
            message, NLMSG_HEADER.size)
        attrs = _attributes(message, NLMSG_HEADER.size + RTMSG.size)
        table = _u32(attrs.get(RTA_TABLE)) or table
        if kind != RTN_UNICAST or table == LOCAL_TABLE or protocol == RTPROT_KERNEL:
            continue
        refused = None
        dev = names.get(_u32(attrs.get(RTA_OIF)) or 0)
        if RTA_MULTIPATH in attrs:
            payload, offset = attrs[RTA_MULTIPATH], 0
            while offset + RTNEXTHOP.size <= len(payload) and dev not in links:
                length, _flags, _hops, index = RTNEXTHOP.unpack_from(payload, offset)
                dev = names.get(index)
                offset += max((length + 3) & ~3, RTNEXTHOP.size)
            refused = "it is a multipath route"
        elif RTA_NH_ID in attrs:
            refused = "it uses a nexthop object (ip nexthop)"
        if dev not in links:
            continue
        cache = attrs.get(RTA_CACHEINFO)
        expires = _u32(attrs.get(RTA_EXPIRES)) or (struct.unpack_from("=i", cache, 8)[0] if cache and len(cache) >= 12 else 0)
        if refused is None and (expires or protocol in (RTPROT_RA, RTPROT_DHCP)):
            refused = (f"it has a lifetime or was learned (proto {protocol}: router advertisements or DHCP), and the "
                       "client that manages it would fight the move")
        if refused is None and _attributes(attrs.get(RTA_METRICS, b"")):
            refused = "it has route metrics (mtu, advmss, ...), which the move does not carry"
        if refused is None and RTA_VIA in attrs:
            refused = "its gateway is of another address family (via inet6)"
        zero = "0.0.0.0" if family == socket.AF_INET else "::"
        destination = _ip(attrs.get(RTA_DST)) or zero
        route = Route(
            f"{destination}/{dst_len}", str(dev), table=table, metric=_u32(attrs.get(RTA_PRIORITY)) or 0,
            gateway=_ip(attrs.get(RTA_GATEWAY)), onlink=bool(flags & RTNH_F_ONLINK), scope=scope,
            proto=protocol, src=_ip(attrs.get(RTA_PREFSRC)), refused=refused)
        found.setdefault(route.key, route)
    return list(found.values())


def host_state(
    links: List[RawLink],
    address_messages: Iterable[bytes] = (),
    fdb_messages: Iterable[bytes] = (),
    vlan_messages: Iterable[bytes] = (),
    sysctls: Optional[Mapping[str, str]] = None,
    route_messages: Iterable[bytes] = (),
    adoption_links: Collection[str] = (),
) -> HostState:
    """The observed HostState from decoded links and the other dumps' messages.

    ``adoption_links``: the ports and bridges of adoptions, whose MAC addresses and routes are observed.
    """
    names = {link.index: link.name for link in links}
    states = [link.state(names, adoption_links) for link in links]
    enslavements = [
        Enslavement(link.name, names[link.master])
        for link, state in zip(links, states)
        if not state.owned and link.master in names
    ]
    try:
        return HostState(
            links=tuple(states),
            bridge_vlans=tuple(bridge_vlans_from(vlan_messages, links)),
            addresses=tuple(addresses_from(address_messages, names)),
            fdb=tuple(fdb_from(fdb_messages, _vxlans(links))),
            enslavements=tuple(enslavements),
            sysctls=dict(sysctls or {}),
            routes=tuple(routes_from(route_messages, names, adoption_links)),
        )
    except ValueError as error:  # kernel data the state model cannot hold: say so, no traceback
        raise BackendError("observe", f"unexpected kernel state: {error}") from error


# --- sysctls ---------------------------------------------------------------------------------


def _read_sysctls(keys: Iterable[str]) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for key in keys:
        try:
            with open(sysctl_path(key), encoding="ascii") as stream:
                values[key] = stream.read().rstrip("\n")
        except FileNotFoundError:
            continue  # not on this kernel (IPv6 disabled, an interface that is gone): not reported
    return values


def _write_sysctl(key: str, value: str) -> None:
    with open(sysctl_path(key), "w", encoding="ascii") as stream:
        stream.write(value)


# --- requests --------------------------------------------------------------------------------
# Builders of the change requests, given ``resolve`` (link name -> index); pure, so that their
# exact encoding is tested without a kernel.

Resolve = Callable[[DetailValue], int]


class _Messages(NamedTuple):
    ifinfmsg: Any
    ifaddrmsg: Any
    ndmsg: Any
    rtmsg: Any


def _messages() -> _Messages:
    """pyroute2's message classes, imported on the first change: a check-mode or no-op run never needs them."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.ndmsg import ndmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return _Messages(ifinfmsg, ifaddrmsg, ndmsg, rtmsg)


def _body(message: Any) -> bytes:
    """A pyroute2 message encoded, without the netlink header (the transport writes that)."""
    message.encode()
    return bytes(message.data[NLMSG_HEADER.size:])


def link_request(name: str, attrs: Mapping[str, DetailValue], kind: Optional[str], resolve: Resolve) -> bytes:
    """RTM_NEWLINK/RTM_DELLINK body for link ``name`` setting ``attrs``; ``kind`` when kind data is among them."""
    unknown = sorted(set(attrs) - LINK_DETAIL_KEYS)
    if unknown:
        raise DetailError(f"unknown link attributes {', '.join(unknown)}")
    message = _messages().ifinfmsg()
    nlas: List[List[Any]] = [["IFLA_IFNAME", name]]
    if "state" in attrs:
        if attrs["state"] not in ("up", "down"):
            raise DetailError(f"state {attrs['state']!r} is not up or down")
        message["flags"] = IFF_UP if attrs["state"] == "up" else 0
        message["change"] = IFF_UP
    if "mac" in attrs:
        nlas.append(["IFLA_ADDRESS", _text(attrs, "mac")])
    if "mtu" in attrs:
        nlas.append(["IFLA_MTU", _int(attrs, "mtu")])
    if "ifalias" in attrs:
        nlas.append(["IFLA_IFALIAS", _text(attrs, "ifalias")])
    if "master" in attrs:
        nlas.append(["IFLA_MASTER", 0 if attrs["master"] is None else resolve(attrs["master"])])
    if "parent" in attrs:
        nlas.append(["IFLA_LINK", resolve(attrs["parent"])])
    if kind is not None:
        info: List[List[Any]] = [["IFLA_INFO_KIND", kind]]
        data = _kind_data(kind, attrs, resolve)
        if data:
            info.append(["IFLA_INFO_DATA", {"attrs": data}])
        nlas.append(["IFLA_LINKINFO", {"attrs": info}])
    message["attrs"] = nlas
    return _body(message)


def _kind_data(kind: str, attrs: Mapping[str, DetailValue], resolve: Resolve) -> List[List[Any]]:
    data: List[List[Any]] = []
    if kind == "bridge":
        if "stp" in attrs:
            data.append(["IFLA_BR_STP_STATE", 1 if _bool(attrs, "stp") else 0])
        if "vlan_filtering" in attrs:
            data.append(["IFLA_BR_VLAN_FILTERING", 1 if _bool(attrs, "vlan_filtering") else 0])
    elif kind == "vlan":
        if "vlan_id" in attrs:
            data.append(["IFLA_VLAN_ID", _int(attrs, "vlan_id")])
    elif kind == "vxlan":
        if "vni" in attrs:
            data.append(["IFLA_VXLAN_ID", _int(attrs, "vni")])
        if "dstport" in attrs:
            data.append(["IFLA_VXLAN_PORT", _int(attrs, "dstport")])
        if "learning" in attrs:
            data.append(["IFLA_VXLAN_LEARNING", 1 if _bool(attrs, "learning") else 0])
        if "local" in attrs:
            local = ipaddress.ip_address(_text(attrs, "local"))
            data.append(["IFLA_VXLAN_LOCAL" if local.version == 4 else "IFLA_VXLAN_LOCAL6", str(local)])
        if "dev" in attrs:
            data.append(["IFLA_VXLAN_LINK", resolve(attrs["dev"])])
    return data


def address_request(details: Mapping[str, DetailValue], resolve: Resolve, *, add: bool, nodad: bool = False) -> bytes:
    """RTM_NEWADDR/RTM_DELADDR body for details ``iface`` and ``address`` (with prefix).

    ``nodad``: an IPv6 address is usable at once, without duplicate address detection (an address
    that moves between a port and its bridge is this host's already; a tentative copy would drop
    the connections to it for a second).
    """
    interface = ipaddress.ip_interface(_text(details, "address"))
    message = _messages().ifaddrmsg()
    message["index"] = resolve(details.get("iface"))
    message["prefixlen"] = interface.network.prefixlen
    address = str(interface.ip)
    if interface.version == 4:
        message["family"] = socket.AF_INET
        nlas = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
        if add and interface.network.prefixlen <= 30:
            # As network managers do (ip's "brd +"): the subnet's broadcast address.
            nlas.append(["IFA_BROADCAST", str(interface.network.broadcast_address)])
    else:
        message["family"] = socket.AF_INET6
        nlas = [["IFA_ADDRESS", address]]
        if add and nodad:
            message["flags"] = IFA_F_NODAD
    message["attrs"] = nlas
    return _body(message)


def route_request(details: Mapping[str, DetailValue], resolve: Resolve) -> bytes:
    """RTM_NEWROUTE body (sent with NLM_F_CREATE | NLM_F_REPLACE) for a unicast route through ``dev``.

    The kernel keys a route on table, destination and metric: a replace with the same three moves
    the route to ``dev`` in one step (IPv4 replaces the first route of that key, IPv6 the route).
    """
    network = ipaddress.ip_network(_text(details, "dst"))
    table, metric, scope, proto = (_int(details, key) for key in ("table", "metric", "scope", "proto"))
    message = _messages().rtmsg()
    message["family"] = socket.AF_INET if network.version == 4 else socket.AF_INET6
    message["dst_len"] = network.prefixlen
    message["table"] = table if table < 256 else RT_TABLE_UNSPEC
    message["proto"] = proto
    message["scope"] = scope
    message["type"] = RTN_UNICAST
    message["flags"] = RTNH_F_ONLINK if _bool(details, "onlink") else 0
    nlas: List[List[Any]] = [["RTA_TABLE", table], ["RTA_OIF", resolve(details.get("dev"))]]
    if network.prefixlen:
        nlas.append(["RTA_DST", str(network.network_address)])
    for key, name in (("gateway", "RTA_GATEWAY"), ("src", "RTA_PREFSRC")):
        if details.get(key) is not None:
            value = ipaddress.ip_address(_text(details, key))
            if value.version != network.version:
                raise DetailError(f"{key} {value} is not of the family of {network}")
            nlas.append([name, str(value)])
    if metric:
        nlas.append(["RTA_PRIORITY", metric])
    message["attrs"] = nlas
    return _body(message)


def neighbour_request(family: int, index: int, destination: str, lladdr: str, router: bool) -> bytes:
    """RTM_NEWNEIGH body: a stale neighbour entry (used at once, confirmed by the kernel when it matters)."""
    message = _messages().ndmsg()
    message["family"] = family
    message["ifindex"] = index
    message["state"] = NUD_STALE
    message["flags"] = NTF_ROUTER if router else 0
    message["attrs"] = [["NDA_DST", destination], ["NDA_LLADDR", lladdr]]
    return _body(message)


def fdb_request(details: Mapping[str, DetailValue], resolve: Resolve) -> bytes:
    """RTM_NEWNEIGH/RTM_DELNEIGH body for a vxlan FDB entry (details ``iface``, ``mac``, ``dst``)."""
    message = _messages().ndmsg()
    message["family"] = AF_BRIDGE
    message["ifindex"] = resolve(details.get("iface"))
    message["state"] = NUD_NOARP | NUD_PERMANENT
    message["flags"] = NTF_SELF  # the vxlan device's own table, as "bridge fdb ... self"
    message["attrs"] = [
        ["NDA_LLADDR", _text(details, "mac")],
        ["NDA_DST", str(ipaddress.ip_address(_text(details, "dst")))],
    ]
    return _body(message)


def bridge_vlan_request(details: Mapping[str, DetailValue], resolve: Resolve, *, add: bool) -> bytes:
    """AF_BRIDGE RTM_SETLINK/RTM_DELLINK body for VLANs of a port or, with ``self``, of the bridge."""
    first, last = _int(details, "vid_first"), _int(details, "vid_last")
    if not 1 <= first <= last <= 4094:
        raise DetailError(f"VLAN range {first}-{last} is not within 1-4094")
    flags = 0
    if add and _bool(details, "pvid"):
        flags |= BRIDGE_VLAN_INFO_PVID
    if add and _bool(details, "untagged"):
        flags |= BRIDGE_VLAN_INFO_UNTAGGED
    if first == last:
        infos = [{"flags": flags, "vid": first}]
    else:
        infos = [
            {"flags": flags | BRIDGE_VLAN_INFO_RANGE_BEGIN, "vid": first},
            {"flags": flags | BRIDGE_VLAN_INFO_RANGE_END, "vid": last},
        ]
    message = _messages().ifinfmsg()
    message["family"] = AF_BRIDGE
    message["index"] = resolve(details.get("port"))
    # As "bridge vlan add|del": the bridge's own entries with the SELF flag, a port's without
    # flags (the kernel then asks the port's master).
    spec: List[List[Any]] = [["IFLA_BRIDGE_FLAGS", BRIDGE_FLAGS_SELF]] if _bool(details, "self") else []
    spec.extend(["IFLA_BRIDGE_VLAN_INFO", info] for info in infos)
    message["attrs"] = [["IFLA_AF_SPEC", {"attrs": spec}]]
    return _body(message)


# --- namespace entry and read requests ---------------------------------------------------------


def _enter_netns(netns_fd: int) -> None:
    """setns(2) the calling thread into the network namespace open as ``netns_fd``."""
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(netns_fd, CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(netns_fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _nla(kind: int, payload: bytes) -> bytes:
    length = NLA_HEADER.size + len(payload)
    return NLA_HEADER.pack(length, kind) + payload + bytes(-length % 4)


def _link_read_request(family: int, ext_mask: int, name: Optional[str] = None) -> bytes:
    """RTM_GETLINK body: a dump of ``family`` (or the link ``name``), with ``ext_mask``."""
    named = _nla(IFLA_IFNAME, name.encode() + b"\0") if name is not None else b""
    return IFINFOMSG.pack(family, 0, 0, 0, 0) + named + _nla(IFLA_EXT_MASK, U32.pack(ext_mask))


LINK_DUMP = _link_read_request(0, RTEXT_FILTER_SKIP_STATS)
BRIDGE_VLAN_DUMP = _link_read_request(AF_BRIDGE, RTEXT_FILTER_BRVLAN_COMPRESSED)
ADDRESS_DUMP = IFADDRMSG.pack(0, 0, 0, 0, 0)
FDB_DUMP = NDMSG.pack(AF_BRIDGE, 0, 0, 0, 0)


def _route_dump(family: int) -> bytes:
    return RTMSG.pack(family, 0, 0, 0, RT_TABLE_UNSPEC, 0, 0, 0, 0)


def _neighbour_dump(family: int) -> bytes:
    return NDMSG.pack(family, 0, 0, 0, 0)


# --- the backend -----------------------------------------------------------------------------


class NetlinkBackend:
    """Observes and changes links, addresses, FDB entries, bridge VLANs and sysctls.

    ``netns`` is the name of a namespace as ``ip netns list`` shows it; None means the
    namespace of this process. Everything happens inside that namespace: the netlink socket
    is opened there, and sysctls are read and written by a short-lived thread that entered it
    (``/proc/sys/net`` shows the namespace of the task that looks). This process's own
    namespace never changes. ``writes`` counts the netlink and sysctl write requests made.
    """

    def __init__(self, netns: str | None = None) -> None:
        if not PYROUTE2.available:
            raise BackendError("netlink", f"the Python library {PYROUTE2.requirement} is required on the managed host")
        self.netns = netns
        self.writes = 0
        self._netns_fd: Optional[int] = None
        self._socket: Optional[socket.socket] = None
        self._sequence = 0
        self._indexes: Dict[str, int] = {}
        self._buffer = bytearray(RECEIVE_BUFFER)
        if netns is not None:
            self._netns_fd = self._open_netns(netns)
        try:
            self._socket = self._in_netns(self._open_socket)
        except OSError as error:
            self.close()
            where = f"network namespace '{netns}'" if netns is not None else "this network namespace"
            raise BackendError("netns" if netns is not None else "netlink",
                               f"cannot open a netlink socket in {where}: {_cause(error)}") from error

    @staticmethod
    def _open_netns(name: str) -> int:
        if not isinstance(name, str) or not name or "/" in name or "\0" in name or name in (".", ".."):
            raise BackendError("netns", f"{name!r} is not a network namespace name")
        path = os.path.join(NETNS_RUN_DIR, name)
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BackendError("netns", f"network namespace '{name}' does not exist") from None
        except OSError as error:
            raise BackendError("netns", f"network namespace '{name}' cannot be opened: {_cause(error)}") from error

    def _in_netns(self, function: Callable[[], Result]) -> Result:
        """``function()`` inside the namespace: in a thread that enters it and then ends.

        setns(2) moves only the calling thread, so the caller's thread stays where it is even
        when something fails half-way.
        """
        if self._netns_fd is None:
            return function()
        outcome: Dict[str, Any] = {}
        netns_fd = self._netns_fd

        def run() -> None:
            try:
                _enter_netns(netns_fd)
                outcome["value"] = function()
            except BaseException as error:  # handed to the caller's thread, raised there
                outcome["error"] = error

        thread = threading.Thread(target=run, name=f"ghostwarden-netns-{self.netns}")
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    @staticmethod
    def _open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            sock.bind((0, 0))
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            try:
                sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            except OSError:
                pass  # kernels before 4.12: errors come without the explanation
        except OSError:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._netns_fd is not None:
            os.close(self._netns_fd)
            self._netns_fd = None

    def __enter__(self) -> NetlinkBackend:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    # --- netlink transport -------------------------------------------------------------------

    def _send(self, body: bytes, kind: int, flags: int) -> int:
        if self._socket is None:
            raise OSError(errno.EBADF, "the backend is closed")
        self._sequence = self._sequence % 0xFFFFFFFF + 1
        header = NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), kind, flags | NLM_F_REQUEST, self._sequence, 0)
        self._socket.send(header + body)
        return self._sequence

    def _receive(self, sequence: int) -> Iterator[Tuple[int, int, bytes]]:
        """(type, flags, message) of every reply to ``sequence``, until NLMSG_DONE or an ack."""
        if self._socket is None:
            raise OSError(errno.EBADF, "the backend is closed")
        view = memoryview(self._buffer)
        while True:
            size, _ancillary, msg_flags, _address = self._socket.recvmsg_into([view])
            if msg_flags & socket.MSG_TRUNC:
                raise OSError(errno.EMSGSIZE, "a netlink reply did not fit the receive buffer")
            offset = 0
            while offset + NLMSG_HEADER.size <= size:
                length, kind, flags, reply_to, _port = NLMSG_HEADER.unpack_from(self._buffer, offset)
                if length < NLMSG_HEADER.size or offset + length > size:
                    raise OSError(errno.EBADMSG, "a malformed netlink reply")
                message = bytes(self._buffer[offset:offset + length])
                offset += (length + 3) & ~3
                if reply_to != sequence:
                    continue  # a late reply to an earlier, abandoned request
                yield kind, flags, message
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return

    @staticmethod
    def _check_error(kind: int, flags: int, message: bytes) -> None:
        if kind == NLMSG_DONE and len(message) >= NLMSG_HEADER.size + 4:
            code = I32.unpack_from(message, NLMSG_HEADER.size)[0]
            if code < 0:
                raise KernelError(-code, _extack(message, flags, NLMSG_HEADER.size + 4))
        if kind != NLMSG_ERROR:
            return
        code = I32.unpack_from(message, NLMSG_HEADER.size)[0]
        if code == 0:
            return
        quoted = NLMSG_HEADER.size + 4
        if not flags & NLM_F_CAPPED and len(message) >= quoted + NLMSG_HEADER.size:
            quoted_length = NLMSG_HEADER.unpack_from(message, quoted)[0]
        else:
            quoted_length = NLMSG_HEADER.size
        raise KernelError(-code, _extack(message, flags, quoted + ((quoted_length + 3) & ~3)))

    def _write(self, body: bytes, kind: int, flags: int = 0) -> List[bytes]:
        """One change request, acknowledged; raises KernelError when refused.

        Returns what the kernel echoed before the acknowledgement (with NLM_F_ECHO).
        """
        self.writes += 1
        sequence = self._send(body, kind, flags | NLM_F_ACK)
        echoed = []
        for reply_kind, reply_flags, reply in self._receive(sequence):
            self._check_error(reply_kind, reply_flags, reply)
            if reply_kind != NLMSG_ERROR:
                echoed.append(reply)
        return echoed

    def _get(self, body: bytes, kind: int) -> List[bytes]:
        sequence = self._send(body, kind, NLM_F_ACK)
        replies = []
        for reply_kind, reply_flags, reply in self._receive(sequence):
            self._check_error(reply_kind, reply_flags, reply)
            if reply_kind not in (NLMSG_DONE, NLMSG_ERROR):
                replies.append(reply)
        return replies

    def _dump(self, body: bytes, kind: int) -> List[bytes]:
        """Every message of a dump; started again if a concurrent change interrupted it."""
        for _attempt in range(DUMP_ATTEMPTS):
            sequence = self._send(body, kind, NLM_F_DUMP)
            replies = []
            interrupted = False
            for reply_kind, reply_flags, reply in self._receive(sequence):
                self._check_error(reply_kind, reply_flags, reply)
                interrupted = interrupted or bool(reply_flags & NLM_F_DUMP_INTR)
                if reply_kind not in (NLMSG_DONE, NLMSG_ERROR):
                    replies.append(reply)
            if not interrupted:
                return replies
        raise KernelError(errno.EINTR, f"the dump was interrupted by concurrent changes {DUMP_ATTEMPTS} times")

    # --- observing ---------------------------------------------------------------------------

    def observe(self, sysctl_keys: Iterable[str] = (), adoption_links: Iterable[str] = ()) -> HostState:
        """The kernel's side of the host state (docs/plan.md 1.1); nothing marked owned.

        One dump each of links, addresses, vxlan FDB entries (when a vxlan exists) and bridge
        VLANs (when a VLAN-aware bridge exists), routes (when ``adoption_links`` names links: the
        ports and bridges of adoptions, whose routes and MAC addresses are reported), then the
        requested sysctls.
        """
        adoption = frozenset(adoption_links)
        try:
            keys = sorted(set(sysctl_keys))
            for key in keys:
                sysctl_path(key)
        except (TypeError, ValueError) as error:
            raise BackendError("observe", _cause(error)) from error
        try:
            links = [RawLink.decode(message) for message in self._dump(LINK_DUMP, RTM_GETLINK)]
            address_messages = self._dump(ADDRESS_DUMP, RTM_GETADDR)
            fdb_messages = self._dump(FDB_DUMP, RTM_GETNEIGH) if _vxlans(links) else []
            vlan_messages = self._dump(BRIDGE_VLAN_DUMP, RTM_GETLINK) if _vlan_aware(links) else []
            route_messages = [message for family in (socket.AF_INET, socket.AF_INET6)
                              for message in self._dump(_route_dump(family), RTM_GETROUTE)] if adoption else []
            sysctls = self._in_netns(lambda: _read_sysctls(keys)) if keys else {}
        except (KernelError, OSError) as error:
            raise BackendError("observe", _cause(error)) from error
        self._indexes = {link.name: link.index for link in links}
        return host_state(links, address_messages, fdb_messages, vlan_messages, sysctls, route_messages, adoption)

    # --- executing ---------------------------------------------------------------------------

    def execute(self, operation: Operation) -> None:
        """Carry out one operation of a plan; BackendError(str(operation), kernel message) on failure."""
        handler = self._HANDLERS.get(operation.kind)
        if handler is None:
            raise BackendError(str(operation), f"{operation.kind} is not a netlink operation")
        try:
            handler(self, operation)
        except DetailError as error:
            raise BackendError(str(operation), str(error)) from error
        except ImportError as error:
            raise BackendError(str(operation), f"the Python library pyroute2 cannot be imported: {_cause(error)}") from error
        except (KernelError, OSError, ValueError, TypeError, struct.error) as error:
            raise BackendError(str(operation), _cause(error)) from error

    def _index(self, name: DetailValue) -> int:
        """The index of link ``name``: from the last observation, or asked of the kernel."""
        if not isinstance(name, str) or not name:
            raise DetailError(f"{name!r} is not a link name")
        index = self._indexes.get(name)
        if index is None:
            replies = self._get(_link_read_request(0, RTEXT_FILTER_SKIP_STATS, name), RTM_GETLINK)
            if not replies:
                raise KernelError(errno.ENODEV)
            index = IFINFOMSG.unpack_from(replies[0], NLMSG_HEADER.size)[2]
            self._indexes[name] = index
        return index

    def _create_link(self, operation: Operation) -> None:
        name = _target_name(operation, "link:")
        details = dict(operation.details)
        kind = details.pop("type", None)
        if kind not in MANAGED_KINDS:
            raise DetailError(f"cannot create a link of type {kind!r}")
        # The ownership mark and the MTU are set once the link exists: the kernel ignores an
        # alias in a create request, and only an MTU set on a bridge after its creation stays
        # when ports with another MTU join (measured, docs/netlink.md).
        later = {key: details.pop(key) for key in ("ifalias", "mtu") if key in details}
        # Off is the kernel's default, and a kernel without bridge VLAN filtering refuses even 0.
        for key in ("stp", "vlan_filtering"):
            if kind == "bridge" and details.get(key) is False:
                del details[key]
        self._indexes.pop(name, None)
        # Recent kernels echo the new link, index included, which saves asking for it later;
        # older ones echo nothing and the index is looked up by name when needed.
        echoed = self._write(link_request(name, details, str(kind), self._index), RTM_NEWLINK,
                             NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO)
        for reply in echoed:
            if NLMSG_HEADER.unpack_from(reply)[1] == RTM_NEWLINK:  # the only message echoed is the new link
                self._indexes[name] = IFINFOMSG.unpack_from(reply, NLMSG_HEADER.size)[2]
        if not later:
            return
        try:
            self._write(link_request(name, later, None, self._index), RTM_NEWLINK)
        except BaseException:
            # Never leave a link without its mark: unmarked, it would be foreign to every later run.
            self._indexes.pop(name, None)
            try:
                self._write(link_request(name, {}, None, self._index), RTM_DELLINK)
            except (KernelError, OSError):
                pass  # the first error is the one to report
            raise

    def _modify_link(self, operation: Operation) -> None:
        name = _target_name(operation, "link:")
        details = dict(operation.details)
        kinds = sorted({kind for kind, keys in KIND_ATTRS.items() for key in keys if key in details})
        if len(kinds) > 1:
            raise DetailError(f"attributes of several link types ({', '.join(kinds)}) in one change")
        self._write(link_request(name, details, kinds[0] if kinds else None, self._index), RTM_NEWLINK)

    def forget_indexes(self) -> None:
        """Links were made or removed by someone else (a batch): ask the kernel for indexes again."""
        self._indexes.clear()

    def _delete_link(self, operation: Operation) -> None:
        name = _target_name(operation, "link:")
        # The kernel deletes links stacked on this one with it: forget every index.
        self._indexes.clear()
        self._write(link_request(name, {}, None, self._index), RTM_DELLINK)

    def _set_master(self, operation: Operation) -> None:
        port = _target_name(operation, "port:")
        self._write(link_request(port, {"master": operation.detail("master")}, None, self._index), RTM_NEWLINK)

    def _release_master(self, operation: Operation) -> None:
        port = _target_name(operation, "port:")
        self._write(link_request(port, {"master": None}, None, self._index), RTM_NEWLINK)

    def _add_address(self, operation: Operation) -> None:
        request = address_request(dict(operation.details), self._index, add=True)
        self._write(request, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)

    def _remove_address(self, operation: Operation) -> None:
        self._write(address_request(dict(operation.details), self._index, add=False), RTM_DELADDR)

    def _add_moving_address(self, operation: Operation) -> None:
        """adopt_address / restore_address: the address on the bridge or back on the port, IPv6 without DAD."""
        request = address_request(dict(operation.details), self._index, add=True, nodad=True)
        self._write(request, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)

    def _move_route(self, operation: Operation) -> None:
        """adopt_route / restore_route: the route through ``dev``, replacing the one of the same key."""
        self._write(route_request(dict(operation.details), self._index), RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE)

    def _copy_neighbours(self, operation: Operation) -> None:
        """The bridge's learned neighbour entries on the port too, as stale entries (a hint: refusals are skipped)."""
        details = dict(operation.details)
        port, bridge = self._index(details.get("iface")), self._index(details.get("bridge"))
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in self._dump(_neighbour_dump(family), RTM_GETNEIGH):
                _family, index, state, flags, _type = NDMSG.unpack_from(message, NLMSG_HEADER.size)
                attrs = _attributes(message, NLMSG_HEADER.size + NDMSG.size)
                destination, lladdr = _ip(attrs.get(NDA_DST)), _mac(attrs.get(NDA_LLADDR))
                if index != bridge or not state & NUD_VALID_DYNAMIC or destination is None or lladdr is None:
                    continue
                try:
                    self._write(neighbour_request(family, port, destination, lladdr, bool(flags & NTF_ROUTER)),
                                RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE)
                except KernelError:
                    continue

    def _add_fdb(self, operation: Operation) -> None:
        # Append: the all-zeros entry holds one destination per peer ("bridge fdb append").
        self._write(fdb_request(dict(operation.details), self._index), RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND)

    def _remove_fdb(self, operation: Operation) -> None:
        self._write(fdb_request(dict(operation.details), self._index), RTM_DELNEIGH)

    def _add_bridge_vlan(self, operation: Operation) -> None:
        self._write(bridge_vlan_request(dict(operation.details), self._index, add=True), RTM_SETLINK)

    def _remove_bridge_vlan(self, operation: Operation) -> None:
        self._write(bridge_vlan_request(dict(operation.details), self._index, add=False), RTM_DELLINK)

    def _set_sysctl(self, operation: Operation) -> None:
        details = dict(operation.details)
        key, value = _text(details, "key"), _text(details, "value")
        sysctl_path(key)
        if "\n" in value:
            raise DetailError(f"sysctl value {value!r} spans lines")
        self.writes += 1
        self._in_netns(lambda: _write_sysctl(key, value))

    _HANDLERS: Dict[str, Callable[[NetlinkBackend, Operation], None]] = {
        "set_sysctl": _set_sysctl,
        "remove_fdb": _remove_fdb,
        "remove_address": _remove_address,
        "remove_bridge_vlan": _remove_bridge_vlan,
        "release_master": _release_master,
        "delete_link": _delete_link,
        "create_link": _create_link,
        "modify_link": _modify_link,
        "set_master": _set_master,
        "add_bridge_vlan": _add_bridge_vlan,
        "add_address": _add_address,
        "add_fdb": _add_fdb,
        "restore_address": _add_moving_address,
        "copy_neighbours": _copy_neighbours,
        "restore_route": _move_route,
        "adopt_address": _add_moving_address,
        "adopt_route": _move_route,
        "drop_port_address": _remove_address,
    }


def _extack(message: bytes, flags: int, offset: int) -> str:
    if not flags & NLM_F_ACK_TLVS:
        return ""
    text = _string(_attributes(message, offset).get(NLMSGERR_ATTR_MSG))
    return " ".join(text.split()) if text else ""


def _target_name(operation: Operation, prefix: str) -> str:
    if not operation.target.startswith(prefix) or len(operation.target) == len(prefix):
        raise DetailError(f"target {operation.target!r} does not name a {prefix.rstrip(':')}")
    return operation.target[len(prefix):]


def _text(details: Mapping[str, DetailValue], key: str) -> str:
    value = details.get(key)
    if not isinstance(value, str):
        raise DetailError(f"detail {key} is {value!r}, not a string")
    return value


def _int(details: Mapping[str, DetailValue], key: str) -> int:
    value = details.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DetailError(f"detail {key} is {value!r}, not an integer")
    return value


def _bool(details: Mapping[str, DetailValue], key: str) -> bool:
    value = details.get(key)
    if not isinstance(value, bool):
        raise DetailError(f"detail {key} is {value!r}, not true or false")
    return value
