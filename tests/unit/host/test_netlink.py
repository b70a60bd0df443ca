# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The netlink backend without a kernel: exact request encodings, decoding of kernel messages,
error replies, sysctl keys, namespace names and the pyroute2 import guard.

Kernel messages are built with pyroute2's encoders, in the layout the kernel sends; the
bridge VLAN requests are compared byte for byte with what iproute2's ``bridge vlan`` sends
(captured with strace), because the test kernel cannot run them (no VLAN filtering).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import PYROUTE2
from ansible_collections.ghostwarden.core.plugins.module_utils.host import _netlink
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import (
    DetailError,
    KernelError,
    NetlinkBackend,
    RawLink,
    address_request,
    addresses_from,
    bridge_vlan_request,
    bridge_vlans_from,
    fdb_from,
    fdb_request,
    host_state,
    link_request,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    LinkState,
    sysctl_path,
)

AF_BRIDGE = 7
RTM_NEWLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWNEIGH = 16, 19, 20, 28
INDEXES = {"br0": 5, "p0": 6, "ul0": 7, "trunk0": 8}
ZERO = "00:00:00:00:00:00"


def resolve(name: object) -> int:
    return INDEXES[str(name)]


def encoded(message, kind: int = 0, flags: int = 0) -> bytes:
    message["header"]["type"] = kind
    message["header"]["flags"] = flags
    message.encode()
    return bytes(message.data)


def attributes(body: bytes, header_size: int) -> dict:
    """The attributes of a request body (after its ifinfomsg/ifaddrmsg/ndmsg header)."""
    return _netlink._attributes(body, header_size)


def link_header(body: bytes) -> tuple:
    """(family, type, index, flags, change) of an RTM_*LINK request body."""
    return struct.unpack_from("=BxHiII", body)


def nested(payload: bytes) -> dict:
    return _netlink._attributes(payload)


def kernel_link(index: int, name: str, *, flags: int = 0, family: int = 0, nlas: list | None = None) -> bytes:
    message = ifinfmsg()
    message["family"] = family
    message["index"] = index
    message["flags"] = flags
    message["attrs"] = [["IFLA_IFNAME", name], *(nlas or [])]
    return encoded(message, RTM_NEWLINK)


def linkinfo(kind: str, *data: list) -> list:
    info: list = [["IFLA_INFO_KIND", kind]]
    if data:
        info.append(["IFLA_INFO_DATA", {"attrs": list(data)}])
    return ["IFLA_LINKINFO", {"attrs": info}]


# --- requests ------------------------------------------------------------------------------------


def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes(-length % 4)


def iproute2_bridge_vlan(kind: int, index: int, spec: bytes) -> bytes:
    """What ``bridge vlan add|del`` (iproute2 6.1) sends, as strace showed it (sequence 0)."""
    body = struct.pack("=BxHiII", AF_BRIDGE, 0, index, 0, 0) + nla(26, spec)
    return struct.pack("=IHHII", 16 + len(body), kind, 0x5, 0, 0) + body


def vlan_info(flags: int, vid: int) -> bytes:
    return nla(2, struct.pack("=HH", flags, vid))


@pytest.mark.parametrize("details, kind, add, expected", [
    # bridge vlan add dev br0 vid 10-20 self
    ({"port": "br0", "self": True, "pvid": False, "untagged": False, "vid_first": 10, "vid_last": 20},
     RTM_SETLINK, True, iproute2_bridge_vlan(RTM_SETLINK, 5, nla(0, struct.pack("=H", 2)) + vlan_info(8, 10)
                                             + vlan_info(16, 20))),
    # bridge vlan add dev p0 vid 5 pvid untagged
    ({"port": "p0", "self": False, "pvid": True, "untagged": True, "vid_first": 5, "vid_last": 5},
     RTM_SETLINK, True, iproute2_bridge_vlan(RTM_SETLINK, 6, vlan_info(6, 5))),
    # bridge vlan del dev p0 vid 7-9
    ({"port": "p0", "self": False, "vid_first": 7, "vid_last": 9},
     17, False, iproute2_bridge_vlan(17, 6, vlan_info(8, 7) + vlan_info(16, 9))),
])
def test_bridge_vlan_requests_are_what_iproute2_sends(details: dict, kind: int, add: bool, expected: bytes) -> None:
    body = bridge_vlan_request(details, resolve, add=add)
    assert struct.pack("=IHHII", 16 + len(body), kind, 0x5, 0, 0) + body == expected


def test_bridge_vlan_request_refuses_a_range_outside_1_4094() -> None:
    with pytest.raises(DetailError, match="^VLAN range 0-5 is not within 1-4094$"):
        bridge_vlan_request({"port": "p0", "self": False, "vid_first": 0, "vid_last": 5}, resolve, add=False)


def test_link_request_for_a_bridge() -> None:
    message = link_request("gw-a", {"state": "up", "stp": True, "vlan_filtering": True, "master": None}, "bridge",
                           resolve)
    assert link_header(message) == (0, 0, 0, 1, 1)
    attrs = attributes(message, 16)
    assert sorted(attrs) == [3, 10, 18]
    assert attrs[3] == b"gw-a\0"
    assert attrs[10] == struct.pack("=I", 0)  # no master
    info = nested(attrs[18])
    assert info[1] == b"bridge\0"
    assert nested(info[2]) == {5: struct.pack("=I", 1), 7: b"\x01"}


def test_link_request_for_a_vxlan() -> None:
    message = link_request("vx7", {"vni": 7, "dstport": 4789, "learning": False, "local": "192.0.2.10", "dev": "ul0",
                                   "master": "br0", "mtu": 1400, "ifalias": "ghostwarden:a"}, "vxlan", resolve)
    attrs = attributes(message, 16)
    assert link_header(message)[3:] == (0, 0)  # the state is not touched
    assert attrs[4] == struct.pack("=I", 1400)
    assert attrs[10] == struct.pack("=I", 5)
    assert attrs[20].rstrip(b"\0") == b"ghostwarden:a"
    data = nested(nested(attrs[18])[2])
    assert data == {
        1: struct.pack("=I", 7),
        15: struct.pack(">H", 4789),  # network byte order
        7: b"\x00",
        4: socket.inet_aton("192.0.2.10"),
        3: struct.pack("=I", 7),
    }
    six = nested(nested(attributes(link_request("vx8", {"local": "fd00:ff::10"}, "vxlan", resolve), 16)[18])[2])
    assert six == {17: socket.inet_pton(socket.AF_INET6, "fd00:ff::10")}


def test_link_request_for_a_vlan_and_a_plain_change() -> None:
    attrs = attributes(link_request("vl20", {"parent": "trunk0", "vlan_id": 20}, "vlan", resolve), 16)
    assert attrs[5] == struct.pack("=I", 8)
    assert nested(nested(attrs[18])[2]) == {1: struct.pack("=H", 20)}
    down = link_request("gw-a", {"state": "down"}, None, resolve)
    assert link_header(down)[3:] == (0, 1)
    assert sorted(attributes(down, 16)) == [3]  # the name only: no IFLA_LINKINFO without a kind


@pytest.mark.parametrize("attrs, message", [
    ({"colour": "red"}, "unknown link attributes colour"),
    ({"state": "sideways"}, "state 'sideways' is not up or down"),
    ({"mtu": "1400"}, "detail mtu is '1400', not an integer"),
    ({"mtu": True}, "detail mtu is True, not an integer"),
    ({"ifalias": None}, "detail ifalias is None, not a string"),
])
def test_link_request_refuses_details_it_cannot_encode(attrs: dict, message: str) -> None:
    with pytest.raises(DetailError) as caught:
        link_request("gw-a", attrs, None, resolve)
    assert str(caught.value) == message


def test_address_requests() -> None:
    add = address_request({"iface": "br0", "address": "10.33.0.1/24"}, resolve, add=True)
    assert struct.unpack_from("=BBBBI", add) == (socket.AF_INET, 24, 0, 0, 5)
    assert attributes(add, 8) == {2: socket.inet_aton("10.33.0.1"), 1: socket.inet_aton("10.33.0.1"),
                                  4: socket.inet_aton("10.33.0.255")}
    remove = address_request({"iface": "br0", "address": "10.33.0.1/24"}, resolve, add=False)
    assert sorted(attributes(remove, 8)) == [1, 2]
    point_to_point = address_request({"iface": "br0", "address": "10.33.0.0/31"}, resolve, add=True)
    assert sorted(attributes(point_to_point, 8)) == [1, 2]  # a /31 has no broadcast address
    six = address_request({"iface": "br0", "address": "fd00:33::1/64"}, resolve, add=True)
    assert struct.unpack_from("=BBBBI", six) == (socket.AF_INET6, 64, 0, 0, 5)
    assert attributes(six, 8) == {1: socket.inet_pton(socket.AF_INET6, "fd00:33::1")}


def test_fdb_request() -> None:
    message = fdb_request({"iface": "ul0", "mac": ZERO, "dst": "2001:db8::2"}, resolve)
    assert struct.unpack_from("=BxxxiHBB", message) == (AF_BRIDGE, 7, 0xC0, 0x02, 0)
    assert attributes(message, 12) == {2: bytes(6), 1: socket.inet_pton(socket.AF_INET6, "2001:db8::2")}


def test_read_requests() -> None:
    # Laid out as iproute2's dumps (strace): the fixed header, then IFLA_EXT_MASK (8: no statistics).
    assert _netlink.LINK_DUMP == struct.pack("=BxHiII", 0, 0, 0, 0, 0) + nla(29, struct.pack("=I", 8))
    assert _netlink._link_read_request(0, 8, "br0") == (
        struct.pack("=BxHiII", 0, 0, 0, 0, 0) + nla(3, b"br0\0") + nla(29, struct.pack("=I", 8)))
    # as "bridge vlan show": an AF_BRIDGE RTM_GETLINK dump with RTEXT_FILTER_BRVLAN_COMPRESSED (4)
    assert _netlink.BRIDGE_VLAN_DUMP == struct.pack("=BxHiII", AF_BRIDGE, 0, 0, 0, 0) + nla(29, struct.pack("=I", 4))
    assert _netlink.ADDRESS_DUMP == bytes(8)
    assert _netlink.FDB_DUMP == struct.pack("=BxxxiHBB", AF_BRIDGE, 0, 0, 0, 0)


# --- decoding what the kernel sends ------------------------------------------------------------


def test_decode_owned_and_foreign_links() -> None:
    messages = [
        kernel_link(1, "lo", flags=1, nlas=[["IFLA_MTU", 65536]]),
        kernel_link(5, "br0", flags=1, nlas=[
            ["IFLA_MTU", 1400], ["IFLA_IFALIAS", "ghostwarden:lan"],
            linkinfo("bridge", ["IFLA_BR_STP_STATE", 2], ["IFLA_BR_VLAN_FILTERING", 1])]),
        kernel_link(6, "p0", flags=1, nlas=[["IFLA_MTU", 1500], ["IFLA_MASTER", 5], ["IFLA_LINK", 9],
                                            ["IFLA_LINK_NETNSID", 0], linkinfo("veth")]),
        kernel_link(7, "ul0", nlas=[["IFLA_MTU", 1500], ["IFLA_LINK", 7], ["IFLA_IFALIAS", "ghostwarden:"]]),
        kernel_link(8, "vx7", flags=1, nlas=[
            ["IFLA_MTU", 1450], ["IFLA_MASTER", 5], ["IFLA_IFALIAS", "ghostwarden:lan"],
            linkinfo("vxlan", ["IFLA_VXLAN_ID", 7], ["IFLA_VXLAN_LINK", 7], ["IFLA_VXLAN_LOCAL6", "fd00::1"],
                     ["IFLA_VXLAN_LEARNING", 1], ["IFLA_VXLAN_PORT", 4789])]),
        kernel_link(9, "vx9", nlas=[linkinfo("vxlan", ["IFLA_VXLAN_ID", 9], ["IFLA_VXLAN_LINK", 7])]),
        kernel_link(13, "vx13", nlas=[["IFLA_IFALIAS", "ghostwarden:lan"],
                                      linkinfo("vxlan", ["IFLA_VXLAN_ID", 13], ["IFLA_VXLAN_LOCAL", "0.0.0.0"])]),
        kernel_link(10, "vl20", flags=1, nlas=[["IFLA_MTU", 1500], ["IFLA_LINK", 7],
                                               ["IFLA_IFALIAS", "ghostwarden:work"],
                                               linkinfo("vlan", ["IFLA_VLAN_ID", 20])]),
        kernel_link(11, "mv0", nlas=[["IFLA_LINK", 5], ["IFLA_MASTER", 12], linkinfo("macvlan")]),
        kernel_link(12, "bond0", nlas=[linkinfo("bond")]),
    ]
    state = host_state([RawLink.decode(message) for message in messages])
    assert state.links == (
        LinkState("bond0", "other"),
        LinkState("br0", "bridge", "lan", {"ifalias": "ghostwarden:lan", "mtu": 1400, "state": "up", "stp": True,
                                           "vlan_filtering": True}),
        LinkState("lo", "other"),
        LinkState("mv0", "other", None, {"parent": "br0"}),
        LinkState("p0", "other"),  # its peer is in another namespace
        LinkState("ul0", "other"),  # "ghostwarden:" names no network; IFLA_LINK to itself is no lower link
        LinkState("vl20", "vlan", "work", {"ifalias": "ghostwarden:work", "mtu": 1500, "parent": "ul0",
                                           "state": "up", "vlan_id": 20}),
        LinkState("vx13", "vxlan", "lan", {"ifalias": "ghostwarden:lan", "state": "down", "vni": 13}),
        LinkState("vx7", "vxlan", "lan", {"dev": "ul0", "dstport": 4789, "ifalias": "ghostwarden:lan",
                                          "learning": True, "local": "fd00::1", "master": "br0", "mtu": 1450,
                                          "state": "up", "vni": 7}),
        LinkState("vx9", "vxlan", None, {"dev": "ul0"}),
    )
    assert state.enslavements == (Enslavement("mv0", "bond0"), Enslavement("p0", "br0"))


def test_decode_addresses() -> None:
    def kernel_address(family: int, index: int, prefixlen: int, nlas: list, flags: int = 0x80) -> bytes:
        # 0x80: IFA_F_PERMANENT, an address without a lifetime
        message = ifaddrmsg()
        message["family"], message["index"], message["prefixlen"] = family, index, prefixlen
        message["flags"] = flags
        message["attrs"] = nlas
        return encoded(message, RTM_NEWADDR)

    messages = [
        kernel_address(socket.AF_INET, 5, 24, [["IFA_ADDRESS", "10.33.0.1"], ["IFA_LOCAL", "10.33.0.1"]]),
        # point to point: IFA_ADDRESS is the peer, twice the same local address with another peer
        kernel_address(socket.AF_INET, 5, 32, [["IFA_ADDRESS", "10.9.0.2"], ["IFA_LOCAL", "10.9.0.1"]]),
        kernel_address(socket.AF_INET, 5, 32, [["IFA_ADDRESS", "10.9.0.3"], ["IFA_LOCAL", "10.9.0.1"]]),
        kernel_address(socket.AF_INET6, 5, 64, [["IFA_ADDRESS", "fd00:33:0::1"]]),
        kernel_address(socket.AF_INET6, 6, 64, [["IFA_ADDRESS", "fe80::1"]]),
        kernel_address(socket.AF_INET, 99, 24, [["IFA_LOCAL", "10.99.0.1"]]),  # a link newer than the link dump
        # a DHCP lease: no IFA_F_PERMANENT (the 32-bit IFA_FLAGS, when sent, wins over the 8-bit field)
        kernel_address(socket.AF_INET, 6, 24, [["IFA_LOCAL", "192.0.2.9"], ["IFA_FLAGS", 0]]),
    ]
    assert addresses_from(messages, {5: "br0", 6: "p0"}) == [
        Address("br0", "10.33.0.1/24"),
        Address("br0", "10.9.0.1/32"),
        Address("br0", "fd00:33::1/64"),
        Address("p0", "fe80::1/64"),
        Address("p0", "192.0.2.9/24", dynamic=True),
    ]


def test_decode_vxlan_fdb_entries() -> None:
    def kernel_neighbour(index: int, mac: str, dst: str | None, port: int | None = None) -> bytes:
        message = ndmsg()
        message["family"], message["ifindex"] = AF_BRIDGE, index
        message["attrs"] = [["NDA_LLADDR", mac]] + ([["NDA_DST", dst]] if dst else []) + (
            [["NDA_PORT", port]] if port else [])
        return encoded(message, RTM_NEWNEIGH)

    messages = [
        kernel_neighbour(8, ZERO, "198.51.100.3"),
        kernel_neighbour(8, ZERO, "198.51.100.2"),
        kernel_neighbour(8, ZERO, "198.51.100.2", port=4790),  # the same peer on another port
        kernel_neighbour(8, "02:00:00:00:00:99", "198.51.100.9"),  # a learned or static MAC, not flooding
        kernel_neighbour(9, ZERO, "2001:db8::2"),
        kernel_neighbour(5, ZERO, None),  # a bridge's own entry
        kernel_neighbour(5, "33:33:00:00:00:01", None),
    ]
    assert fdb_from(messages, {8: "vx7", 9: "vx9"}) == [
        FdbEntry("vx7", "198.51.100.3"),
        FdbEntry("vx7", "198.51.100.2"),
        FdbEntry("vx9", "2001:db8::2"),
    ]


def bridge_vlan_message(index: int, name: str, master: int | None, infos: list[tuple[int, int]]) -> bytes:
    spec = [["IFLA_BRIDGE_VLAN_INFO", {"flags": flags, "vid": vid}] for flags, vid in infos]
    nlas: list = [["IFLA_AF_SPEC", {"attrs": spec}]]
    if master is not None:
        nlas.insert(0, ["IFLA_MASTER", master])
    return kernel_link(index, name, family=AF_BRIDGE, nlas=nlas)


def test_decode_bridge_vlans_of_vlan_aware_bridges_only() -> None:
    links = [RawLink.decode(message) for message in (
        kernel_link(5, "br0", nlas=[linkinfo("bridge", ["IFLA_BR_VLAN_FILTERING", 1])]),
        kernel_link(6, "p0", nlas=[["IFLA_MASTER", 5]]),
        kernel_link(7, "br1", nlas=[linkinfo("bridge", ["IFLA_BR_VLAN_FILTERING", 0])]),
        kernel_link(8, "p1", nlas=[["IFLA_MASTER", 7]]),
    )]
    pvid_untagged, begin, end = 2 | 4, 8, 16
    messages = [
        bridge_vlan_message(5, "br0", None, [(pvid_untagged | 32, 1), (begin | 32, 100), (end | 32, 199)]),
        bridge_vlan_message(6, "p0", 5, [(pvid_untagged, 1), (0, 20), (4, 30), (begin | 4, 31), (end | 4, 40)]),
        bridge_vlan_message(7, "br1", None, [(pvid_untagged | 32, 1)]),
        bridge_vlan_message(8, "p1", 7, [(pvid_untagged, 1)]),
    ]
    state = host_state(links, vlan_messages=messages)
    assert state.bridge_vlans == (
        BridgeVlan("br0", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("br0", PortRange(100, 199)),
        BridgeVlan("p0", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("p0", PortRange(20, 20)),
        BridgeVlan("p0", PortRange(30, 40), untagged=True),
    )
    assert bridge_vlans_from(messages, links[2:]) == []


def test_kernel_data_the_model_cannot_hold_is_a_backend_error() -> None:
    links = [RawLink.decode(kernel_link(5, "br0", nlas=[linkinfo("bridge", ["IFLA_BR_VLAN_FILTERING", 1])]))]
    messages = [bridge_vlan_message(5, "br0", None, [(2, 1), (2, 2)])]
    with pytest.raises(BackendError) as caught:
        host_state(links, vlan_messages=messages)
    assert (caught.value.step, caught.value.cause) == (
        "observe", "unexpected kernel state: bridge vlan br0: two pvids 1 and 2")


# --- error replies -------------------------------------------------------------------------------


def error_reply(code: int, *, capped: bool = True, message: str | None = None) -> tuple[int, int, bytes]:
    request = struct.pack("=IHHII", 32, RTM_NEWLINK, 0x605, 1, 0) + bytes(16)
    quoted = request[:16] if capped else request
    tlvs = nla(1, message.encode() + b"\0") if message is not None else b""
    flags = (0x100 if capped else 0) | (0x200 if tlvs else 0)
    body = struct.pack("=i", -code) + quoted + tlvs
    return 2, flags, struct.pack("=IHHII", 16 + len(body), 2, flags, 1, 0) + body


@pytest.mark.parametrize("reply, expected", [
    (error_reply(17), "File exists"),
    (error_reply(95, message="Cannot change VNI"), "Operation not supported: Cannot change VNI"),
    (error_reply(22, capped=False, message="Invalid  MTU\n"), "Invalid argument: Invalid MTU"),
    (error_reply(19, capped=False), "No such device"),
])
def test_error_replies_become_one_line(reply: tuple[int, int, bytes], expected: str) -> None:
    with pytest.raises(KernelError) as caught:
        NetlinkBackend._check_error(*reply)
    assert str(caught.value) == expected


def test_acks_and_dump_ends_pass() -> None:
    NetlinkBackend._check_error(*error_reply(0))
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", 0)
    NetlinkBackend._check_error(3, 2, done)
    failed_dump = struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", -16)
    with pytest.raises(KernelError, match="^Device or resource busy$"):
        NetlinkBackend._check_error(3, 2, failed_dump)


# --- sysctl keys, namespace names, the import guard --------------------------------------------


@pytest.mark.parametrize("key, path", [
    ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ("net.ipv6.conf.all.forwarding", "/proc/sys/net/ipv6/conf/all/forwarding"),
    ("net.ipv4.conf.eth0/20.forwarding", "/proc/sys/net/ipv4/conf/eth0.20/forwarding"),
])
def test_sysctl_keys(key: str, path: str) -> None:
    assert sysctl_path(key) == path


@pytest.mark.parametrize("key", [
    "kernel.hostname", "net", "net..ip_forward", "net.ipv4./..", "net.ipv4.conf.a b.forwarding",
    "net/ipv4/ip_forward", "", "net.ipv4.ip_forward\n", 42,
])
def test_sysctl_keys_outside_net_or_with_odd_names_are_refused(key: object) -> None:
    with pytest.raises(ValueError) as caught:
        sysctl_path(key)  # type: ignore[arg-type]
    assert str(caught.value) == f"sysctl key {key!r} is not a net.* key in sysctl(8) notation"


@pytest.mark.parametrize("name, cause", [
    ("gwt-never-made", "network namespace 'gwt-never-made' does not exist"),
    ("a/b", "'a/b' is not a network namespace name"),
    ("..", "'..' is not a network namespace name"),
    ("", "'' is not a network namespace name"),
    (7, "7 is not a network namespace name"),
])
def test_namespace_names(name: object, cause: str) -> None:
    with pytest.raises(BackendError) as caught:
        NetlinkBackend(name)  # type: ignore[arg-type]
    assert (caught.value.step, caught.value.cause) == ("netns", cause)


def test_without_pyroute2_the_module_imports_and_says_what_is_missing() -> None:
    script = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pyroute2':\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.host import _netlink\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import PYROUTE2\n"
        "from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError\n"
        "print(PYROUTE2.available, PYROUTE2.error)\n"
        "try:\n"
        "    _netlink.NetlinkBackend()\n"
        "except BackendError as error:\n"
        "    print(error)\n"
    )
    collections = str(Path(__file__).resolve().parents[3] / ".cache" / "collections")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": collections})
    assert result.stdout.splitlines() == [
        "False ModuleNotFoundError: No module named 'pyroute2'",
        "netlink: the Python library pyroute2 (python3-pyroute2 or pip install pyroute2) is required on the managed host",
    ]
    assert PYROUTE2.available and PYROUTE2.error is None
