# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""A Proxmox VE node's bridges, VLANs and firewall, as a ghostwarden topology and policy profiles.

:func:`import_proxmox` is pure: it maps what the API lists (``/nodes/{node}/network``, the
cluster firewall and the firewalls of chosen guests, gathered into :class:`ProxmoxData`) to
a topology in this collection's format, policy profiles, and a list of everything that has
no equivalent - each with the PVE object and the reason, so that nothing is dropped
silently. The topology and every profile are validated with ``_topology`` and ``_policy``
before they are returned. :func:`read_proxmox` gathers the data through a client object
(``get(path, **params)``), so that this file imports neither Ansible nor proxmoxer.

The mapping is documented in ``docs/proxmox.md`` (section ``proxmox_import``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    GhostwardenError,
    Issue,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import parse_profile
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

CLUSTER_PROFILE = "pve-cluster"
GUEST_PROFILE_PREFIX = "pve-guest-"
# Network names become nft chain names: PVE interface names keep their letters, digits and
# underscores; the "." and ":" of VLAN and alias names become "_".
_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")
_DOTTED_VLAN_RE = re.compile(r"^(?P<parent>[A-Za-z0-9_][A-Za-z0-9_.@+-]*)\.(?P<vid>[0-9]{1,4})$")
_PORT_RE = re.compile(r"^([0-9]{1,5})(?::([0-9]{1,5}))?$")
# PVE's pve-node format.
NODE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_SCOPED_NAME_RE = re.compile(r"^(?:(?P<scope>dc|guest)/)?(?P<name>[A-Za-z][A-Za-z0-9_-]+)$")
# Printable ASCII without quotes or backslashes, at most 64 characters (_policy's comment rule).
_COMMENT_UNSAFE_RE = re.compile(r"[^\x20-\x21\x23-\x26\x28-\x5b\x5d-\x5f\x61-\x7e]")
COMMENT_MAX = 64
# Rounds of removing what the validator still refuses; each round removes at least one object.
_MAX_VALIDATION_ROUNDS = 64

PVE_ACTIONS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}
PROTOCOLS = {
    "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "sctp": "sctp", "132": "sctp",
    "icmp": "icmp", "1": "icmp", "icmpv6": "icmpv6", "ipv6-icmp": "icmpv6", "58": "icmpv6",
}
# Firewall options a profile expresses; every other option set on a level is reported.
_MAPPED_OPTIONS = frozenset({"enable", "policy_in", "policy_out", "digest"})

# pve-firewall's macros that are plain protocol/destination-port pairs (PVE/Firewall.pm,
# $pve_fw_macros), as (protocol, ports) with ports in PVE's syntax, by lower-case name (PVE
# looks macros up case-insensitively).
MACROS: dict[str, tuple[tuple[str, str], ...]] = {
    "amanda": (("udp", "10080"), ("tcp", "10080")),
    "auth": (("tcp", "113"),),
    "bgp": (("tcp", "179"),),
    "bittorrent": (("tcp", "6881:6889"), ("udp", "6881")),
    "bittorrent32": (("tcp", "6881:6999"), ("udp", "6881")),
    "ceph": (("tcp", "6789"), ("tcp", "3300"), ("tcp", "6800:7300")),
    "citrix": (("tcp", "1494"), ("udp", "1604"), ("tcp", "2598")),
    "cvs": (("tcp", "2401"),),
    "daap": (("tcp", "3689"), ("udp", "3689")),
    "dcc": (("tcp", "6277"),),
    "distcc": (("tcp", "3632"),),
    "dns": (("udp", "53"), ("tcp", "53")),
    "finger": (("tcp", "79"),),
    "ftp": (("tcp", "21"),),
    "git": (("tcp", "9418"),),
    "gnunet": (("tcp", "2086"), ("udp", "2086"), ("tcp", "1080"), ("udp", "1080")),
    "hkp": (("tcp", "11371"),),
    "http": (("tcp", "80"),),
    "https": (("tcp", "443"),),
    "icpv2": (("udp", "3130"),),
    "icq": (("tcp", "5190"),),
    "imap": (("tcp", "143"),),
    "imaps": (("tcp", "993"),),
    "irc": (("tcp", "6667"),),
    "jetdirect": (("tcp", "9100"),),
    "l2tp": (("udp", "1701"),),
    "ldap": (("tcp", "389"),),
    "ldaps": (("tcp", "636"),),
    "mail": (("tcp", "25"), ("tcp", "465"), ("tcp", "587")),
    "mdns": (("udp", "5353"),),
    "msnp": (("tcp", "1863"),),
    "mssql": (("tcp", "1433"),),
    "munin": (("tcp", "4949"),),
    "mysql": (("tcp", "3306"),),
    "nntp": (("tcp", "119"),),
    "nntps": (("tcp", "563"),),
    "ntp": (("udp", "123"),),
    "openvpn": (("udp", "1194"),),
    "pca": (("udp", "5632"), ("tcp", "5631")),
    "pmg": (("tcp", "8006"),),
    "pop3": (("tcp", "110"),),
    "pop3s": (("tcp", "995"),),
    "postgresql": (("tcp", "5432"),),
    "printer": (("tcp", "515"),),
    "rdate": (("tcp", "37"),),
    "razor": (("tcp", "2703"),),
    "rdp": (("tcp", "3389"),),
    "rip": (("udp", "520"),),
    "rndc": (("tcp", "953"),),
    "rsync": (("tcp", "873"),),
    "sane": (("tcp", "6566"),),
    "smbswat": (("tcp", "901"),),
    "smtp": (("tcp", "25"),),
    "smtps": (("tcp", "465"),),
    "snmp": (("udp", "161:162"), ("tcp", "161")),
    "spamd": (("tcp", "783"),),
    "spiceproxy": (("tcp", "3128"),),
    "squid": (("tcp", "3128"),),
    "ssh": (("tcp", "22"),),
    "submission": (("tcp", "587"),),
    "svn": (("tcp", "3690"),),
    "syslog": (("udp", "514"), ("tcp", "514")),
    "telnet": (("tcp", "23"),),
    "telnets": (("tcp", "992"),),
    "tftp": (("udp", "69"),),
    "time": (("tcp", "37"),),
    "vnc": (("tcp", "5900:5999"),),
    "vncl": (("tcp", "5500"),),
    "web": (("tcp", "80"), ("tcp", "443")),
    "webcache": (("tcp", "8080"),),
    "webmin": (("tcp", "10000"),),
    "whois": (("tcp", "43"),),
}

# The other macros of pve-firewall, and why a profile rule cannot say the same.
UNMAPPABLE_MACROS = {
    "dhcpfwd": "it matches source ports 67-68",
    "dhcpv6": "it matches source ports 546-547",
    "gre": "it matches IP protocol 47 (GRE)",
    "ipip": "it matches IP protocol 94 (IPIP)",
    "ipsec": "it matches source port 500 and IP protocol 50 (ESP)",
    "ipsecah": "it matches source port 500 and IP protocol 51 (AH)",
    "ipsecnat": "it matches IP protocol 50 (ESP)",
    "neighbordiscovery": "it matches four ICMPv6 types only; profile rules match every ICMPv6 type",
    "ospf": "it matches IP protocol 89 (OSPF)",
    "ping": "it matches ICMP/ICMPv6 type echo-request only; profile rules match every ICMP type",
    "pptp": "it matches IP protocol 47 (GRE)",
    "smb": "it matches source port 137",
    "sixxs": "it matches IP protocol 41 (IPv6 in IPv4)",
    "trcrt": "it matches ICMP/ICMPv6 type echo-request only; profile rules match every ICMP type",
}


@dataclass(frozen=True)
class FirewallConfig:
    """One level of the PVE firewall (the cluster, or one guest) as the API lists it.

    ``path`` is the API path of the level without the leading slash (``cluster/firewall``,
    ``nodes/pve1/qemu/100/firewall``); ``ipsets`` maps each IP set's name to its members.
    """

    path: str
    options: Mapping[str, Any] = field(default_factory=dict)
    rules: Sequence[Mapping[str, Any]] = ()
    ipsets: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    aliases: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class ProxmoxData:
    """Everything :func:`import_proxmox` maps, as read from the API."""

    node: str
    interfaces: Sequence[Mapping[str, Any]]
    cluster: FirewallConfig | None = None  # None: the firewall was not read
    groups: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # security group -> rules
    guests: Mapping[int, FirewallConfig] = field(default_factory=dict)  # vmid -> its firewall


@dataclass(frozen=True)
class ImportResult:
    topology: dict  # in this collection's topology format, validated
    profiles: dict  # profile name -> profile in this collection's format, validated
    unsupported: list  # [{object, reason, config}] in the order found
    notes: list  # facts worth knowing that lose nothing (e.g. a disabled firewall level)


# -- small helpers ----------------------------------------------------------------------------


def _truthy(value: object) -> bool:
    """A PVE boolean as the API returns it: 1/0 numbers, "1"/"0", on/off, yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("1", "on", "yes", "true")


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _clean(item: Mapping[str, Any]) -> dict:
    """A PVE object as reported back: without the section digest, keys sorted."""
    return {key: item[key] for key in sorted(item) if key != "digest"}


def _comment(value: object) -> str | None:
    """A PVE comment as a profile comment: unsafe characters replaced, at most 64 characters."""
    text = " ".join(_text(value).split())
    if not text:
        return None
    return _COMMENT_UNSAFE_RE.sub("_", text)[:COMMENT_MAX].rstrip() or None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


class _Report:
    """The unsupported objects and notes of one import, in the order they are found."""

    def __init__(self) -> None:
        self.unsupported: list[dict] = []
        self.notes: list[str] = []

    def add(self, obj: str, reason: str, config: Mapping[str, Any] | None = None) -> None:
        entry: dict = {"object": obj, "reason": reason}
        if config is not None:
            entry["config"] = _clean(config)
        self.unsupported.append(entry)


# -- the node's network -----------------------------------------------------------------------


def _interface_address(item: Mapping[str, Any], family: int) -> tuple[str | None, str | None]:
    """(``ip/prefix``, problem) of the interface's static address of one family, from cidr or address+netmask."""
    suffix = "" if family == 4 else "6"
    cidr = _text(item.get(f"cidr{suffix}"))
    if not cidr:
        address, netmask = _text(item.get(f"address{suffix}")), _text(item.get(f"netmask{suffix}"))
        if not address:
            return None, None
        if not netmask:
            return None, f"address{suffix} {address} has no netmask{suffix}"
        cidr = f"{address}/{netmask}"
    try:
        network = netaddr.IPNetwork(cidr)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None, f"{cidr} is not an address with a prefix"
    if network.version != family:
        return None, f"{cidr} is not an IPv{family} address"
    return f"{network.ip}/{network.prefixlen}", None


@dataclass
class _ImportedNetwork:
    """A network of the topology being built, with the PVE interfaces it came from."""

    name: str
    iface: str
    source: str  # the API path of the interface
    item: Mapping[str, Any]  # the interface as the API lists it
    fields: dict
    subnets: list  # [(family, netaddr.IPNetwork of the interface address)]


class _NetworkImport:
    """``/nodes/{node}/network`` to topology networks."""

    def __init__(self, node: str, interfaces: Sequence[Mapping[str, Any]], report: _Report) -> None:
        self.node = node
        self.report = report
        self.items: dict[str, Mapping[str, Any]] = {}
        for item in interfaces:
            if not isinstance(item, Mapping) or not _text(item.get("iface")):
                report.add(f"nodes/{node}/network", "an interface without a name", item if isinstance(item, Mapping)
                           else {"value": repr(item)})
                continue
            self.items[_text(item["iface"])] = item
        self.names: set[str] = set()
        self.networks: list[_ImportedNetwork] = []

    def path(self, iface: str) -> str:
        return f"nodes/{self.node}/network/{iface}"

    def kind(self, iface: str) -> str | None:
        item = self.items.get(iface)
        return _text(item.get("type")).lower() if item is not None else None

    def vlan_of(self, iface: str, item: Mapping[str, Any] | None) -> tuple[str | None, int | None, str | None]:
        """(parent, vid, problem) of a VLAN interface: vlan-raw-device/vlan-id, or the ``parent.vid`` name."""
        raw_device = _text(item.get("vlan-raw-device")) if item else ""
        raw_id = _int(item.get("vlan-id")) if item else None
        dotted = _DOTTED_VLAN_RE.fullmatch(iface)
        parent = raw_device or (dotted.group("parent") if dotted else "")
        vid = raw_id if raw_id is not None else (int(dotted.group("vid")) if dotted else None)
        if dotted and (raw_device and raw_device != dotted.group("parent")
                       or raw_id is not None and raw_id != int(dotted.group("vid"))):
            return None, None, (f"the name says VLAN {dotted.group('vid')} on {dotted.group('parent')}, "
                                f"vlan-raw-device/vlan-id say {raw_id} on {raw_device}")
        if not parent or vid is None:
            return None, None, "neither vlan-raw-device and vlan-id nor a name of the form <parent>.<vlan id>"
        if not 1 <= vid <= 4094:
            return None, None, f"VLAN id {vid} is out of range 1-4094"
        return parent, vid, None

    def created(self, iface: str) -> bool:
        """Whether the topology creates this link itself (bridges and VLAN interfaces become networks)."""
        return self.kind(iface) in ("bridge", "vlan")

    def network_name(self, iface: str) -> str:
        base = _NAME_UNSAFE_RE.sub("_", iface)
        if not base[:1].isalpha():
            base = f"n{base}"
        base = base[:32]
        name, number = base, 2
        while name in self.names:
            suffix = f"_{number}"
            name, number = f"{base[:32 - len(suffix)]}{suffix}", number + 1
        self.names.add(name)
        return name

    def run(self) -> list[_ImportedNetwork]:
        consumed: set[str] = set()  # VLAN interfaces that became a bridge's VLAN port
        for iface in sorted(self.items):
            if self.kind(iface) == "bridge":
                self.bridge(iface, self.items[iface], consumed)
        for iface in sorted(self.items):
            kind = self.kind(iface)
            if kind == "vlan" and iface not in consumed:
                self.vlan(iface, self.items[iface])
            elif kind not in ("bridge", "vlan"):
                self.existing_link(iface, self.items[iface])
        self.drop_overlapping_subnets()
        return self.networks

    def bridge(self, iface: str, item: Mapping[str, Any], consumed: set[str]) -> None:
        path = self.path(iface)
        fields: dict = {"type": "bridge", "iface": iface}
        ports: list[str] = []
        for port in sorted(set(_text(item.get("bridge_ports")).split())):
            port_kind = self.kind(port)
            dotted = _DOTTED_VLAN_RE.fullmatch(port)
            if port_kind == "vlan" or (port_kind is None and dotted):
                parent, vid, problem = self.vlan_of(port, self.items.get(port))
                if problem:
                    self.report.add(path, f"bridge port {port}: {problem}; the port is left out", item)
                elif self.created(parent):
                    self.report.add(path, f"bridge port {port} is VLAN {vid} of {parent}, which the topology creates "
                                          f"itself; a topology VLAN's parent must be an existing link, so the port "
                                          f"is left out", item)
                elif "vlan" in fields:
                    self.report.add(path, f"bridge port {port}: a topology bridge takes one VLAN sub-interface "
                                          f"({fields['vlan_iface']} is already taken); the port is left out", item)
                else:
                    fields.update(vlan=vid, parent=parent, vlan_iface=port)
                    if port in self.items:
                        consumed.add(port)
                        self.vlan_port_extras(port, self.items[port], iface)
            elif port_kind == "bridge":
                self.report.add(path, f"bridge port {port} is itself a bridge; bridges of a topology are not "
                                      f"nested, so the port is left out", item)
            else:
                ports.append(port)
        if ports:
            fields["ports"] = ports
        if _truthy(item.get("bridge_stp")):
            fields["stp"] = True
        forward_delay = _text(item.get("bridge_fd"))
        if forward_delay not in ("", "0"):
            self.report.add(path, f"bridge_fd {forward_delay}: a topology bridge has no forward delay setting", item)
        vids = _text(item.get("bridge_vids"))
        if _truthy(item.get("bridge_vlan_aware")):
            fields["vlan_filtering"] = True
            if vids:
                fields["vids"] = [part.replace(" ", "") for part in vids.replace(",", " ").split()]
        elif vids:
            self.report.add(path, f"bridge_vids {vids} on a bridge that is not VLAN-aware has no effect and is left "
                                  f"out", item)
        self.add_network(iface, item, fields)

    def vlan_port_extras(self, port: str, item: Mapping[str, Any], bridge: str) -> None:
        """What a VLAN interface enslaved to a bridge carries beyond being a port: reported."""
        for family in (4, 6):
            address, problem = _interface_address(item, family)
            if address or problem:
                self.report.add(self.path(port), f"address {address or problem} on {port}, a port of bridge "
                                                 f"{bridge}: a topology puts addresses on the bridge only", item)
        if _text(item.get("mtu")):
            self.report.add(self.path(port), f"mtu {_text(item.get('mtu'))} of {port}, a port of bridge {bridge}: "
                                             f"a topology sets the MTU of the bridge only", item)

    def vlan(self, iface: str, item: Mapping[str, Any]) -> None:
        path = self.path(iface)
        parent, vid, problem = self.vlan_of(iface, item)
        if problem:
            self.report.add(path, f"VLAN interface without a usable VLAN: {problem}", item)
            return
        if self.created(parent):
            self.report.add(path, f"VLAN {vid} on {parent}, which the topology creates itself (a "
                                  f"{self.kind(parent)}); a topology VLAN's parent must be an existing link", item)
            return
        self.add_network(iface, item, {"type": "vlan", "iface": iface, "vlan": vid, "parent": parent})

    def add_network(self, iface: str, item: Mapping[str, Any], fields: dict) -> None:
        path = self.path(iface)
        mtu = _int(item.get("mtu"))
        if mtu is not None:
            if 68 <= mtu <= 65535:
                fields["mtu"] = mtu
            else:
                self.report.add(path, f"mtu {mtu} is out of range 68-65535", item)
        elif _text(item.get("mtu")):
            self.report.add(path, f"mtu {_text(item.get('mtu'))!r} is not a number", item)
        self.common_extras(path, item)
        subnets = []
        for family in (4, 6):
            method = _text(item.get("method" if family == 4 else "method6")).lower()
            address, problem = _interface_address(item, family)
            if problem:
                self.report.add(path, f"IPv{family} address: {problem}", item)
            elif address:
                network = netaddr.IPNetwork(address)
                largest = 30 if family == 4 else 126
                if network.prefixlen > largest:
                    self.report.add(path, f"address {address}: a topology network needs room for the host and "
                                          f"guests (prefix /{largest} or shorter); the address is left out", item)
                elif network.ip in (network.network, network.broadcast):
                    self.report.add(path, f"address {address} is not a host address of {network.cidr}; the "
                                          f"address is left out", item)
                else:
                    subnets.append((family, network))
            if method in ("dhcp", "auto"):
                self.report.add(path, f"method{'' if family == 4 else '6'} {method}: a topology gives the host a "
                                      f"static address on the networks it creates", item)
            gateway = _text(item.get("gateway" if family == 4 else "gateway6"))
            if gateway:
                self.report.add(path, f"gateway{'' if family == 4 else '6'} {gateway}: a topology holds no routes "
                                      f"(the default route stays the host's own configuration)", item)
        self.networks.append(_ImportedNetwork(self.network_name(iface), iface, path, item, fields, subnets))

    def common_extras(self, path: str, item: Mapping[str, Any]) -> None:
        if "autostart" in item and not _truthy(item.get("autostart")):
            self.report.add(path, "autostart is off: a topology brings every link it creates up", item)
        for key in ("comments", "comments6"):
            if _text(item.get(key)):
                self.report.add(path, f"{key} {_text(item.get(key))!r}: a topology keeps no comments", item)
        options = item.get("options")
        if options:
            shown = "; ".join(str(option) for option in options) if isinstance(options, list) else str(options)
            self.report.add(path, f"extra interface options ({shown}) have no topology equivalent", item)

    def existing_link(self, iface: str, item: Mapping[str, Any]) -> None:
        """Physical NICs, bonds, OVS objects and aliases are not created by a topology."""
        path = self.path(iface)
        kind = self.kind(iface) or "unknown"
        if kind not in ("eth", "unknown"):
            self.report.add(path, f"{iface} is of type {_text(item.get('type'))}, which a topology does not create; "
                                  f"networks may still use it as an existing link (bridge port or VLAN parent)", item)
            return
        details = []
        for family in (4, 6):
            address, problem = _interface_address(item, family)
            if address or problem:
                details.append(f"address {address or problem}")
            gateway = _text(item.get("gateway" if family == 4 else "gateway6"))
            if gateway:
                details.append(f"gateway {gateway}")
        if _text(item.get("mtu")):
            details.append(f"mtu {_text(item.get('mtu'))}")
        if details:
            self.report.add(path, f"{', '.join(details)} on the existing link {iface}: a topology configures only "
                                  f"the links it creates", item)

    def drop_overlapping_subnets(self) -> None:
        """Topology subnets must not overlap: in name order, an address overlapping an earlier one is left out."""
        kept: list[tuple[netaddr.IPNetwork, str]] = []
        for network in sorted(self.networks, key=lambda imported: imported.name):
            subnets = []
            for family, address in network.subnets:
                other = next((name for cidr, name in kept if cidr.version == address.version
                              and cidr.first <= address.cidr.last and address.cidr.first <= cidr.last), None)
                if other is not None:
                    self.report.add(network.source, f"address {address} overlaps the subnet of {other}; a topology's "
                                                    f"subnets must not overlap, so the address is left out",
                                    network.item)
                    continue
                kept.append((address.cidr, network.iface))
                subnets.append((family, address))
            network.subnets = subnets


def _network_entry(network: _ImportedNetwork) -> dict:
    entry = dict(network.fields)
    for family, address in network.subnets:
        first = family == 4 or not any(other == 4 for other, _address in network.subnets)
        cidr_key, gw_key = ("cidr", "gw_ip") if first else ("cidr6", "gw_ip6")
        entry[cidr_key], entry[gw_key] = str(address.cidr), str(address.ip)
    return entry


# -- the firewall -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    """How one firewall level maps: rule type -> directions, and where names resolve."""

    config: FirewallConfig
    directions: Mapping[str, tuple[str, ...]]  # "in"/"out" -> profile directions (empty: not expressible)
    guest: FirewallConfig | None  # for a guest level: its own ipsets and aliases come first
    cluster: FirewallConfig | None


class _RuleError(Exception):
    """A PVE rule (or one of its parts) that a profile rule cannot express."""


class _FirewallImport:
    def __init__(self, data: ProxmoxData, report: _Report) -> None:
        self.data = data
        self.report = report
        self.groups = {name.lower(): (name, rules) for name, rules in data.groups.items()}

    # -- names: aliases and IP sets ----------------------------------------------------------

    def _lookup(self, level: _Level, reference: str, what: str) -> tuple[FirewallConfig, str]:
        """(the firewall level that defines it, the name) for ``[dc/|guest/]name``."""
        match = _SCOPED_NAME_RE.fullmatch(reference)
        if match is None:
            raise _RuleError(f"{reference!r} is not an address, a range or an {what} name")
        scope, name = match.group("scope"), match.group("name")
        places = []
        if scope in (None, "guest") and level.guest is not None:
            places.append(level.guest)
        if scope in (None, "dc") and level.cluster is not None:
            places.append(level.cluster)
        if scope == "guest" and level.guest is None:
            raise _RuleError(f"{what} {reference} refers to a guest's {what}s outside a guest")
        for config in places:
            names = config.ipsets if what == "IP set" else {_text(alias.get("name")): alias for alias in config.aliases}
            for candidate in names:
                if candidate.lower() == name.lower():
                    return config, candidate
        raise _RuleError(f"{what} {reference} is not defined")

    def _alias(self, level: _Level, reference: str) -> list[str]:
        config, name = self._lookup(level, reference, "alias")
        alias = next(alias for alias in config.aliases if _text(alias.get("name")) == name)
        return self._address_item(level, _text(alias.get("cidr")), allow_alias=False)

    def _ipset(self, level: _Level, reference: str) -> list[str]:
        config, name = self._lookup(level, reference, "IP set")
        members = config.ipsets[name]
        if not members:
            raise _RuleError(f"IP set {reference} is empty, so the rule matches nothing; a profile rule without "
                             f"addresses would match everything")
        cidrs: list[str] = []
        for member in members:
            text = _text(member.get("cidr"))
            if _truthy(member.get("nomatch")):
                raise _RuleError(f"IP set {reference} excludes {text} (nomatch); a profile rule has no exclusions")
            cidrs.extend(self._address_item(level, text, allow_alias=True))
        return cidrs

    def _address_item(self, level: _Level, text: str, *, allow_alias: bool) -> list[str]:
        """One entry of a PVE address list: an IP, a CIDR, a range ``a-b`` or an alias, as CIDRs."""
        if not text:
            raise _RuleError("an empty address")
        if text[0].isdigit() or ":" in text:
            try:
                if "-" in text:
                    first, last = text.split("-", 1)
                    return [str(cidr) for cidr in netaddr.iprange_to_cidrs(netaddr.IPAddress(first),
                                                                           netaddr.IPAddress(last))]
                return [str(netaddr.IPNetwork(text).cidr)]
            except (netaddr.AddrFormatError, ValueError, TypeError):
                raise _RuleError(f"{text!r} is not an IP address, CIDR or range") from None
        if not allow_alias:
            raise _RuleError(f"{text!r} is not an IP address or CIDR")
        return self._alias(level, text)

    def addresses(self, level: _Level, text: str) -> list[str]:
        """A PVE ``source``/``dest`` value as CIDRs (IP set references expanded, aliases resolved)."""
        if text.startswith("+"):
            return self._ipset(level, text[1:])
        cidrs: list[str] = []
        for part in text.split(","):
            cidrs.extend(self._address_item(level, part.strip(), allow_alias=True))
        return cidrs

    # -- rules -------------------------------------------------------------------------------

    @staticmethod
    def ports(text: str) -> list:
        ports: list = []
        for part in text.split(","):
            match = _PORT_RE.fullmatch(part.strip())
            if match is None:
                raise _RuleError(f"destination port {part.strip()!r} is not a number or range (service names are "
                                 f"resolved by each host's /etc/services, so they are not imported)")
            first, last = match.group(1), match.group(2)
            ports.append(int(first) if last is None else f"{first}-{last}")
        return ports

    def templates(self, rule: Mapping[str, Any]) -> list[tuple[str | None, list]]:
        """(protocol, destination ports) pairs the rule stands for: one per macro entry, else one."""
        macro = _text(rule.get("macro"))
        proto = _text(rule.get("proto")).lower()
        dport = _text(rule.get("dport"))
        if macro:
            if proto or dport:
                raise _RuleError(f"macro {macro} with its own proto/dport")
            entries = MACROS.get(macro.lower())
            if entries is None:
                why = UNMAPPABLE_MACROS.get(macro.lower(), "the importer does not know it")
                raise _RuleError(f"macro {macro} has no equivalent: {why}")
            return [(protocol, self.ports(ports)) for protocol, ports in entries]
        protocol = None
        if proto:
            protocol = PROTOCOLS.get(proto)
            if protocol is None:
                raise _RuleError(f"protocol {proto} has no equivalent (tcp, udp, sctp, icmp and icmpv6 have)")
        if dport and protocol not in ("tcp", "udp", "sctp"):
            raise _RuleError(f"destination port {dport} without protocol tcp, udp or sctp")
        return [(protocol, self.ports(dport) if dport else [])]

    def convert(self, level: _Level, rule: Mapping[str, Any], directions: tuple[str, ...]) -> list[dict]:
        """The profile rules for one enabled PVE in/out rule; raises :class:`_RuleError`."""
        action = PVE_ACTIONS.get(_text(rule.get("action")).upper())
        if action is None:
            raise _RuleError(f"action {_text(rule.get('action'))!r} has no equivalent (ACCEPT, DROP, REJECT have)")
        if _text(rule.get("iface")):
            raise _RuleError(f"it applies to interface {_text(rule.get('iface'))} only; a profile applies to the "
                             f"whole network it is attached to")
        if _text(rule.get("sport")):
            raise _RuleError(f"source port {_text(rule.get('sport'))}: profile rules match destination ports only")
        icmp_type = _text(rule.get("icmp-type"))
        if icmp_type and icmp_type.lower() != "any":
            raise _RuleError(f"icmp-type {icmp_type}: profile rules match every ICMP type")
        sources = self.addresses(level, _text(rule.get("source"))) if _text(rule.get("source")) else []
        destinations = self.addresses(level, _text(rule.get("dest"))) if _text(rule.get("dest")) else []
        if sources and destinations and not ({6 if ":" in cidr else 4 for cidr in sources}
                                             & {6 if ":" in cidr else 4 for cidr in destinations}):
            raise _RuleError("its sources and destinations are of different address families, so it never matches")
        log = _text(rule.get("log")).lower() not in ("", "nolog")
        comment = _comment(rule.get("comment"))
        converted = []
        for protocol, ports in self.templates(rule):
            # ICMP exists in IPv4 only, ICMPv6 in IPv6 only: pve-firewall puts such a rule in that family's
            # ruleset alone, so addresses of the other family never match.
            family = {"icmp": 4, "icmpv6": 6}.get(protocol or "")
            matched_sources, matched_destinations = sources, destinations
            if family is not None:
                matched_sources = [cidr for cidr in sources if (6 if ":" in cidr else 4) == family]
                matched_destinations = [cidr for cidr in destinations if (6 if ":" in cidr else 4) == family]
                if len(matched_sources) < bool(sources) or len(matched_destinations) < bool(destinations):
                    other = 6 if family == 4 else 4
                    raise _RuleError(f"protocol {protocol} with IPv{other} addresses only never matches")
            for direction in directions:
                entry: dict = {"direction": direction, "action": action}
                if protocol:
                    entry["protocol"] = protocol
                if ports:
                    entry["ports"] = ports
                if matched_sources:
                    entry["sources"] = matched_sources
                if matched_destinations:
                    entry["destinations"] = matched_destinations
                if log:
                    entry["log"] = True
                if comment:
                    entry["comment"] = comment
                converted.append(entry)
        return converted

    def rules(self, level: _Level, rules: Sequence[Mapping[str, Any]], path: str, *,
              in_group: bool = False) -> list[tuple[dict, str, Mapping[str, Any]]]:
        """Profile rules in PVE's order, each with the PVE object it came from."""
        converted: list[tuple[dict, str, Mapping[str, Any]]] = []
        for rule in sorted(rules, key=lambda item: (_int(item.get("pos")) is None, _int(item.get("pos")) or 0)):
            obj = f"{path}/{_text(rule.get('pos'))}"
            if "enable" in rule and not _truthy(rule.get("enable")):
                self.report.add(obj, "the rule is disabled (enable=0): skipped", rule)
                continue
            kind = _text(rule.get("type")).lower()
            try:
                if kind == "group":
                    if in_group:
                        raise _RuleError("a security group inside a security group")
                    converted.extend(self.group_rules(level, rule))
                    continue
                if kind not in level.directions:
                    raise _RuleError(f"rule type {kind or '(none)'!r} has no equivalent (in and out have)")
                directions = level.directions[kind]
                if not directions:
                    raise _RuleError("rules for the host's own outgoing traffic (type out on the cluster level) have "
                                     "no equivalent: profiles filter traffic from networks, not from the host")
                converted.extend((entry, obj, rule) for entry in self.convert(level, rule, directions))
            except _RuleError as problem:
                self.report.add(obj, f"{problem}: the rule is left out", rule)
        return converted

    def group_rules(self, level: _Level, rule: Mapping[str, Any]) -> list[tuple[dict, str, Mapping[str, Any]]]:
        """A ``type group`` rule: the security group's rules in its place."""
        reference = _text(rule.get("action"))
        if _text(rule.get("iface")):
            raise _RuleError(f"security group {reference} applies to interface {_text(rule.get('iface'))} only; a "
                             f"profile applies to the whole network")
        found = self.groups.get(reference.lower())
        if found is None:
            raise _RuleError(f"security group {reference} is not defined")
        name, rules = found
        return self.rules(level, rules, f"cluster/firewall/groups/{name}", in_group=True)

    # -- profiles ----------------------------------------------------------------------------

    def options_extras(self, config: FirewallConfig) -> None:
        for key in sorted(config.options):
            if key not in _MAPPED_OPTIONS:
                self.report.add(f"{config.path}/options", f"option {key}={config.options[key]} has no profile "
                                                          f"equivalent", {key: config.options[key]})

    def policy(self, config: FirewallConfig, key: str, default: str) -> str:
        value = _text(config.options.get(key)).upper() or default
        action = PVE_ACTIONS.get(value)
        if action is None:
            self.report.add(f"{config.path}/options", f"{key} {value} has no equivalent; {default} assumed",
                            {key: config.options.get(key)})
            return PVE_ACTIONS[default]
        return action

    def cluster_profile(self) -> tuple[str, dict, list] | None:
        cluster = self.data.cluster
        if cluster is None:
            return None
        self.options_extras(cluster)
        policy_out = _text(cluster.options.get("policy_out")).upper() or "ACCEPT"
        if policy_out != "ACCEPT":
            self.report.add(f"{cluster.path}/options", f"policy_out {policy_out}: the host's own outgoing traffic "
                                                       f"is not filtered by profiles", {"policy_out": policy_out})
        level = _Level(cluster, {"in": ("host",), "out": ()}, guest=None, cluster=cluster)
        rules = self.rules(level, cluster.rules, f"{cluster.path}/rules")
        profile = {
            "description": "Imported from the Proxmox VE cluster firewall: its IN rules and policy_in guard the "
                           "host; forwarded traffic is accepted",
            "ingress_action": "accept",
            "egress_action": "accept",
            "host_action": self.policy(cluster, "policy_in", "DROP"),
        }
        return CLUSTER_PROFILE, profile, rules

    def guest_profile(self, vmid: int, config: FirewallConfig) -> tuple[str, dict, list]:
        self.options_extras(config)
        # A guest's OUT rules see all its outgoing traffic: forwarded out of the network and to the host.
        level = _Level(config, {"in": ("ingress",), "out": ("egress", "host")}, guest=config,
                       cluster=self.data.cluster)
        rules = self.rules(level, config.rules, f"{config.path}/rules")
        policy_out = self.policy(config, "policy_out", "ACCEPT")
        profile = {
            "description": f"Imported from the Proxmox VE firewall of guest {vmid}: IN rules guard traffic into "
                           f"the network, OUT rules traffic out of it and to the host",
            "ingress_action": self.policy(config, "policy_in", "DROP"),
            "egress_action": policy_out,
            "host_action": policy_out,
        }
        return f"{GUEST_PROFILE_PREFIX}{vmid}", profile, rules

    def validated(self, name: str, profile: dict, rules: list) -> dict | None:
        """The profile with every rule the policy parser refuses removed (and reported); None if it cannot load."""
        for _round in range(_MAX_VALIDATION_ROUNDS):
            candidate = dict(profile, rules=[entry for entry, _obj, _rule in rules])
            issues: list[Issue] = []
            parse_profile(name, candidate, f"policies.{name}", issues)
            if not issues:
                return candidate
            bad = set()
            for issue in issues:
                match = re.match(rf"^policies\.{re.escape(name)}\.rules\[(\d+)\]", issue.path)
                if match is None:
                    self.report.add(f"policies.{name}", f"the imported profile does not load ({issue}); it is left "
                                                        f"out")
                    return None
                index = int(match.group(1))
                if index not in bad:
                    bad.add(index)
                    _entry, obj, rule = rules[index]
                    self.report.add(obj, f"{issue.message}: the rule is left out", rule)
            rules = [item for index, item in enumerate(rules) if index not in bad]
        raise GhostwardenError(f"profile {name}: the imported rules still do not load after "
                               f"{_MAX_VALIDATION_ROUNDS} rounds")

    def run(self) -> tuple[dict, bool]:
        """(profiles by name, whether the cluster profile should guard the networks)."""
        profiles: dict = {}
        cluster_enabled = False
        made = self.cluster_profile()
        if made is not None:
            profile = self.validated(*made)
            if profile is not None:
                profiles[CLUSTER_PROFILE] = profile
                cluster_enabled = _truthy(self.data.cluster.options.get("enable"))
                if not cluster_enabled:
                    self.report.notes.append(f"the cluster firewall is disabled (enable is not 1): profile "
                                             f"{CLUSTER_PROFILE} is returned but guards no network")
        for vmid in sorted(self.data.guests):
            config = self.data.guests[vmid]
            name, profile, rules = self.guest_profile(vmid, config)
            checked = self.validated(name, profile, rules)
            if checked is None:
                continue
            profiles[name] = checked
            state = "enabled" if _truthy(config.options.get("enable")) else "disabled (enable is not 1)"
            self.report.notes.append(f"profile {name} comes from the firewall of guest {vmid} ({state}); it guards "
                                     f"no network until a network names it in policy_profile, and then it applies "
                                     f"to the whole network, not to one guest")
        return profiles, cluster_enabled


# -- the whole import -------------------------------------------------------------------------


def _validated_topology(topology: dict, sources: Mapping[str, tuple[str, Mapping[str, Any]]],
                        report: _Report) -> dict:
    """The topology once ``_topology`` accepts it; networks it refuses are removed and reported."""
    for _round in range(_MAX_VALIDATION_ROUNDS):
        try:
            parse_topology(topology)
        except ValidationError as error:
            refused: dict[str, Issue] = {}
            for issue in error.issues:
                match = re.match(r"^networks\.([A-Za-z][A-Za-z0-9_-]*)", issue.path)
                if match is None or match.group(1) not in topology["networks"]:
                    raise GhostwardenError(f"the imported topology does not load: {issue}") from None
                refused.setdefault(match.group(1), issue)
            for name, issue in sorted(refused.items()):
                source, item = sources[name]
                report.add(source, f"{issue}: the network is left out", item)
                del topology["networks"][name]
            continue
        return topology
    raise GhostwardenError(f"the imported topology still does not load after {_MAX_VALIDATION_ROUNDS} rounds")


def import_proxmox(data: ProxmoxData) -> ImportResult:
    """Map a node's network and the firewall levels read to a topology, profiles and what has no equivalent."""
    if netaddr is None:
        raise GhostwardenError("the Python library netaddr is required to import from Proxmox VE (pip install netaddr)")
    report = _Report()
    networks = _NetworkImport(data.node, data.interfaces, report).run()
    profiles, guard_networks = _FirewallImport(data, report).run()
    entries = {}
    sources = {}
    for network in sorted(networks, key=lambda imported: imported.name):
        entry = _network_entry(network)
        if guard_networks:
            entry["policy_profile"] = CLUSTER_PROFILE
        entries[network.name] = entry
        sources[network.name] = (network.source, network.item)
    topology: dict = {"version": 1}
    if profiles:
        topology["policies"] = dict(sorted(profiles.items()))
    topology["networks"] = entries
    topology = _validated_topology(topology, sources, report)
    return ImportResult(topology=topology, profiles=dict(sorted(profiles.items())),
                        unsupported=report.unsupported, notes=report.notes)


# -- reading the API --------------------------------------------------------------------------


def _list(value: object) -> list:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _referenced_groups(rules: Iterable[Mapping[str, Any]]) -> set[str]:
    return {_text(rule.get("action")).lower() for rule in rules if _text(rule.get("type")).lower() == "group"}


def _read_level(get: Callable[..., Any], path: str) -> FirewallConfig:
    """Options, rules, IP sets with their members, and aliases of the firewall level at ``path``."""
    base = f"/{path}"
    options = get(f"{base}/options")
    ipsets = {}
    for entry in sorted(_list(get(f"{base}/ipset")), key=lambda item: _text(item.get("name"))):
        name = _text(entry.get("name"))
        ipsets[name] = _list(get(f"{base}/ipset/{name}"))
    return FirewallConfig(path=path, options=options if isinstance(options, Mapping) else {},
                          rules=_list(get(f"{base}/rules")), ipsets=ipsets, aliases=_list(get(f"{base}/aliases")))


def read_proxmox(client: Any, node: str, *, include_firewall: bool = True, vmids: Sequence[int] = ()) -> ProxmoxData:
    """Read what :func:`import_proxmox` maps through ``client`` (ProxmoxClient or an equivalent).

    Only the security groups that the rules read refer to are fetched.
    """
    if not isinstance(node, str) or not NODE_RE.fullmatch(node):
        raise ValidationError(Issue("node", f"{node!r} is not a node name (letters, digits and inner hyphens)"))
    if vmids and not include_firewall:
        raise ValidationError(Issue("vmids", f"{list(vmids)} given with include_firewall false; guests are read "
                                             f"for their firewall only"))
    interfaces = _list(client.get(f"/nodes/{node}/network"))
    if not include_firewall:
        return ProxmoxData(node=node, interfaces=interfaces)
    cluster = _read_level(client.get, "cluster/firewall")
    guests = {}
    for vmid in sorted(set(vmids)):
        guest = client.locate_guest(vmid=vmid)
        guests[vmid] = _read_level(client.get, f"nodes/{guest.node}/{guest.type}/{vmid}/firewall")
    wanted = _referenced_groups(cluster.rules)
    for config in guests.values():
        wanted |= _referenced_groups(config.rules)
    groups = {}
    if wanted:
        for entry in sorted(_list(client.get("/cluster/firewall/groups")), key=lambda item: _text(item.get("group"))):
            name = _text(entry.get("group"))
            if name.lower() in wanted:
                groups[name] = _list(client.get(f"/cluster/firewall/groups/{name}"))
    return ProxmoxData(node=node, interfaces=interfaces, cluster=cluster, groups=groups, guests=guests)
