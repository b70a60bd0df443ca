# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""A network's port forwards (``forwards``), and the check that no two of them claim the same port.

A forward comes in a short form (``public: "IP:PORT/PROTO"``, ``dst: "IP[:PORT]"``) or a long
one (``protocol``, ``port``, ``public_ip``, ``dst_ip``, ``dst_port``). Every forward's public side
goes into the index (``publics``), checked across all networks by :func:`check_public_overlaps`
once every network is read.
"""

from __future__ import annotations

import bisect
import re

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import L4_PROTOCOLS, Forward, PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Keys, is_choice, join, show
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_reader import (
    Addr,
    PublicEntry,
    TopologyReader,
    host_problem,
    ip_problem,
    parse_ip,
    unicast_problem,
)

# Printable ASCII without quotes or backslash: safe inside an nft comment "..." and a dnsmasq line.
COMMENT_RE = re.compile(r"^[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]{1,64}$")
COMMENT_MAX = 64

_PUBLIC_RE = re.compile(r"^(?:\[(?P<ip6>[^\]]*)\]|(?P<ip>[^:\[\]]*)):(?P<ports>[^:/]*)(?:/(?P<proto>.*))?$")
_DST6_RE = re.compile(r"^\[(?P<ip>[^\]]*)\](?::(?P<ports>.*))?$")
_DST4_RE = re.compile(r"^(?P<ip>[^:\[\]]*)(?::(?P<ports>.*))?$")

_FORWARD_SHORT_KEYS = ("public", "dst")
_FORWARD_LONG_KEYS = ("protocol", "port", "dst_ip", "dst_port", "public_ip")
_FORWARD_KEYS = Keys(_FORWARD_SHORT_KEYS + _FORWARD_LONG_KEYS + ("hairpin", "comment"))
_FORWARD_LONG_KEY_SET = frozenset(_FORWARD_LONG_KEYS)


def _forward_order(forward: Forward) -> tuple:
    # Plain ints and strings: PortRange's generated ordering is slow Python code.
    return (forward.family, forward.protocol, forward.public_port.first, forward.public_port.last,
            forward.public_ip or "", forward.dst_ip, forward.dst_port.first)


def parse_forwards(reader: TopologyReader, data: dict, path: str, l3: dict | None) -> tuple[Forward, ...]:
    items = reader.get_list(data, "forwards", path)
    if items and l3 is not None and not l3:
        reader.fail(join(path, "forwards"), "forwards need an address on the network: set cidr and gw_ip")
        l3 = None
    forwards = []
    for index, item in enumerate(items):
        forward = _parse_forward(reader, item, f"{path}.forwards[{index}]", l3)
        if forward is not None:
            forwards.append(forward)
    forwards.sort(key=_forward_order)
    return tuple(forwards)


def _parse_forward(reader: TopologyReader, value: object, path: str, l3: dict | None) -> Forward | None:
    data = reader.mapping(value, path)
    if data is None:
        return None
    reader.check_keys(data, _FORWARD_KEYS, path)
    long = not data.keys().isdisjoint(_FORWARD_LONG_KEY_SET)
    if long and ("public" in data or "dst" in data):
        short_keys = ", ".join(key for key in _FORWARD_SHORT_KEYS if key in data)
        long_keys = ", ".join(key for key in _FORWARD_LONG_KEYS if key in data)
        reader.fail(path, f"mixes the short form ({short_keys}) with the long form ({long_keys}); use one")
        return None
    if long:
        parsed = _parse_forward_long(reader, data, path)
    else:
        parsed = _parse_forward_short(reader, data, path)
    hairpin = reader.get_bool(data, "hairpin", path, True)
    comment = _parse_comment(reader, data, path)
    if parsed is None:
        return None
    protocol, family, public_ip, public_ports, dst, dst_ports, public_path, dst_path, dst_port_path = parsed
    if family is None:
        family = dst.version
    elif dst.version != family:
        reader.fail(dst_path, f"{dst.text} is IPv{dst.version}, the public side is IPv{family}")
        return None
    if dst_ports is None:
        dst_ports = public_ports
    elif dst_ports.size != public_ports.size:
        reader.fail(dst_port_path, f"destination ports {dst_ports} ({dst_ports.size}) and public ports "
                                   f"{public_ports} ({public_ports.size}) differ in size")
        return None
    entry = PublicEntry(public_ports.first, public_ports.last, public_path,
                        None if public_ip is None else public_ip.value,
                        None if public_ip is None else public_ip.text, protocol, family)
    reader.index.publics.setdefault((protocol, family), []).append(entry)
    if l3 is None:
        return None
    if family not in l3:
        reader.fail(dst_path, f"{dst.text} is IPv{family}, the network has no IPv{family} subnet")
        return None
    problem = host_problem(dst, *l3[family])
    if problem:
        reader.fail(dst_path, f"{dst.text} {problem}")
        return None
    return Forward(
        family=family, protocol=protocol, public_ip=None if public_ip is None else public_ip.text,
        public_port=public_ports, dst_ip=dst.text, dst_port=dst_ports, hairpin=hairpin, comment=comment,
    )


def _parse_forward_short(reader: TopologyReader, data: dict, path: str) -> tuple | None:
    public_path, dst_path = f"{path}.public", f"{path}.dst"
    # The short form is the common one: plain lookups here rather than two calls of required().
    public, dst = data.get("public"), data.get("dst")
    if public is None:
        reader.fail(public_path, "required (\"IP:PORT/PROTO\", e.g. \"0.0.0.0:4022/tcp\")")
    if dst is None:
        reader.fail(dst_path, "required (\"IP[:PORT]\", e.g. \"10.33.0.10:22\")")
    if public is None or dst is None:
        return None
    public_parsed = _parse_public(reader, public, public_path)
    dst_parsed = _parse_dst(reader, dst, dst_path)
    if public_parsed is None or dst_parsed is None:
        return None
    return (*public_parsed, *dst_parsed, public_path, dst_path, dst_path)


def _parse_public(reader: TopologyReader, value: object,
                  path: str) -> tuple[str, int | None, Addr | None, PortRange] | None:
    match = _PUBLIC_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        reader.fail(path, f"{show(value)} is not \"IP:PORT[-PORT]/PROTO\" (e.g. \"0.0.0.0:4022/tcp\"; "
                          f"IPv6 in brackets, \"[::]:4022/tcp\")")
        return None
    protocol = match.group("proto")
    if protocol is None:
        protocol = "tcp"
    elif protocol not in L4_PROTOCOLS:
        reader.fail(path, f"protocol {show(protocol)} in {show(value)} is not one of {', '.join(L4_PROTOCOLS)}")
        return None
    ports = reader.port_range(match.group("ports"), path)
    if ports is None:
        return None
    ip_text, version = (match.group("ip6"), 6) if match.group("ip6") is not None else (match.group("ip"), 4)
    if version == 4 and ip_text == "":
        return protocol, None, None, ports
    family, public_ip = _public_address(reader, ip_text, path, version)
    if family is None:
        return None
    return protocol, family, public_ip, ports


def _public_address(reader: TopologyReader, text: str, path: str,
                    version: int | None) -> tuple[int | None, Addr | None]:
    """(family, address) of a forward's public IP; the any-address gives (family, None)."""
    cache = reader.public_ip_cache
    if text not in cache:
        cache[text] = parse_ip(text)
    address = cache[text]
    if address is None or (version is not None and address.version != version):
        reader.fail(path, ip_problem(text, f"an IPv{version} address" if version else "an IP address"))
        return None, None
    if address.value == 0:
        return address.version, None
    problem = unicast_problem(address)
    if problem:
        reader.fail(path, f"{address.text} is {problem}, not a local unicast address")
        return None, None
    return address.version, address


def _parse_dst(reader: TopologyReader, value: object, path: str) -> tuple[Addr, PortRange | None] | None:
    if not isinstance(value, str):
        reader.expected(path, "\"IP[:PORT[-PORT]]\"", value)
        return None
    if value.startswith("["):
        match, version = _DST6_RE.fullmatch(value), 6
    elif value.count(":") > 1:  # a bare IPv6 address, no port
        match, version = _DST6_RE.fullmatch(f"[{value}]"), 6
    else:
        match, version = _DST4_RE.fullmatch(value), 4
    if match is None:
        reader.fail(path, f"{show(value)} is not \"IP[:PORT[-PORT]]\" (IPv6 in brackets, \"[2001:db8::10]:22\")")
        return None
    # Whether it is a host address is decided against the network's subnet.
    address = reader.ip(match.group("ip"), path, version)
    if address is None:
        return None
    ports = None
    if match.group("ports") is not None:
        ports = reader.port_range(match.group("ports"), path)
        if ports is None:
            return None
    return address, ports


def _parse_forward_long(reader: TopologyReader, data: dict, path: str) -> tuple | None:
    protocol = "tcp" if data.get("protocol") is None else data["protocol"]
    ok = True
    if not is_choice(protocol, L4_PROTOCOLS):
        reader.fail(join(path, "protocol"), f"{show(protocol)} is not one of {', '.join(L4_PROTOCOLS)}")
        ok = False
    public_path = join(path, "port")
    ports = reader.required(data, "port", path, "required (the public port or range)", reader.port_range)
    family, public_ip = None, None
    if data.get("public_ip") is not None:
        if isinstance(data["public_ip"], str):
            family, public_ip = _public_address(reader, data["public_ip"], join(path, "public_ip"), None)
            ok = ok and family is not None
        else:
            reader.fail(join(path, "public_ip"), ip_problem(data["public_ip"]))
            ok = False
    dst_path = join(path, "dst_ip")
    dst = reader.required(data, "dst_ip", path, "required (the destination host inside the network)", reader.ip)
    dst_ports = None
    if data.get("dst_port") is not None:
        dst_ports = reader.port_range(data["dst_port"], join(path, "dst_port"))
        ok = ok and dst_ports is not None
    if not ok or ports is None or dst is None:
        return None
    return protocol, family, public_ip, ports, dst, dst_ports, public_path, dst_path, join(path, "dst_port")


def _parse_comment(reader: TopologyReader, data: dict, path: str) -> str | None:
    value = data.get("comment")
    if value is None:
        return None
    if not isinstance(value, str) or not COMMENT_RE.fullmatch(value):
        reader.fail(join(path, "comment"), f"{show(value)} is not a comment of 1-{COMMENT_MAX} printable ASCII "
                                           f"characters without quotes or backslash")
        return None
    return str(value)


# -- across networks --------------------------------------------------------------------------

def check_public_overlaps(reader: TopologyReader) -> None:
    """No two forwards may claim the same (address, port, protocol); the any-address claims every address."""
    for (_protocol, _family), entries in sorted(reader.index.publics.items()):
        any_address = sorted(entry for entry in entries if entry.ip is None)
        _sweep_overlaps(reader, any_address)
        by_ip: dict[int, list[PublicEntry]] = {}
        for entry in entries:
            if entry.ip is not None:
                by_ip.setdefault(entry.ip, []).append(entry)
        for ip in sorted(by_ip):
            _sweep_overlaps(reader, sorted(by_ip[ip]))
        if not any_address or not by_ip:
            continue
        # Specific addresses against the any-address entries: the one with the furthest end
        # among those starting at or before a range's last port is the only candidate needed.
        starts = [entry.first for entry in any_address]
        furthest: list[PublicEntry] = []
        for entry in any_address:
            furthest.append(entry if not furthest or entry.last > furthest[-1].last else furthest[-1])
        for ip in sorted(by_ip):
            for entry in sorted(by_ip[ip]):
                position = bisect.bisect_right(starts, entry.last) - 1
                if position >= 0 and furthest[position].last >= entry.first:
                    other = furthest[position]
                    reader.fail(entry.path, f"{entry.text} overlaps {other.text} at {other.path}")


def _sweep_overlaps(reader: TopologyReader, entries: list[PublicEntry]) -> None:
    reach: PublicEntry | None = None
    for entry in entries:
        if reach is not None and entry.first <= reach.last:
            reader.fail(entry.path, f"{entry.text} overlaps {reach.text} at {reach.path}")
        if reach is None or entry.last > reach.last:
            reach = entry
