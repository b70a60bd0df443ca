# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The namespace lab as data (DESIGN 7): spec -> desired state; observed state -> ordered steps.

A lab is a switch namespace ``<name>-sw`` (bridges ``underlay`` and ``wan``), an "internet"
namespace ``<name>-inet``, one namespace per node ``<name>-<node>`` and one per client
``<name>-<node>-<client>``, joined by veth pairs that are always created inside lab namespaces.
No namespace gets an interface outside the lab, so no packet can leave it.

:func:`parse_lab` validates the module's options into a :class:`LabSpec`; :func:`desired_lab`
turns it into the namespaces, links, addresses, routes, sysctls, directories, files and
services the lab consists of; ``parse_*`` read what ``ip`` prints; :func:`plan_present` and
:func:`plan_absent` compare desired and observed and return the steps (``ip`` commands, file
and process actions) in the order they must run. Pure: no Ansible, no kernel, no files.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    ConflictError,
    Issue,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Issues, Keys, kind, show_repr, unknown_keys

DEFAULT_NAME = "gwlab"
DEFAULT_NODES = 3
DEFAULT_UNDERLAY_CIDR = "192.0.2.0/24"  # TEST-NET-1
DEFAULT_WAN_CIDR = "198.51.100.0/24"  # TEST-NET-2
DEFAULT_STATE_PARENT = "/run/ghostwarden-lab"

LAB_NAME_RE = re.compile(r"[a-z0-9]{1,8}")
NODE_NAME_RE = re.compile(r"[a-z][a-z0-9]{0,11}")
CLIENT_NAME_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
# An interface name the kernel takes (at most 15 bytes, no '/', ':', '%' or blanks) and that
# needs no quoting anywhere.
PORT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}")
IP_TEXT_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")
# The state directories of the nodes end up in dnsmasq's configuration, which splits at commas.
PATH_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f,]")

# "sw" and "inet" name the switch and the internet namespaces.
RESERVED_NODE_NAMES = ("inet", "sw")
# Bounds the work one typo can start; every node is a namespace with two veth pairs.
MAX_NODES = 1024
CLIENT_KEYS = Keys(("name", "port", "mac", "address", "gateway", "http"))

UNDERLAY_BRIDGE = "underlay"
WAN_BRIDGE = "wan"
UNDERLAY_INTERFACE = "eth0"
WAN_INTERFACE = "up0"
INET_INTERFACE = "eth0"
CLIENT_INTERFACE = "eth0"
LOOPBACK = "lo"
# Interfaces of a node namespace that a client port must not take.
NODE_INTERFACES = (LOOPBACK, UNDERLAY_INTERFACE, WAN_INTERFACE)
# Node i gets the address <network> + 10 + i on the underlay and on the wan; the internet gets + 1.
NODE_HOST_OFFSET = 10
INET_HOST_OFFSET = 1
# Locally administered unicast MACs 02:67:77:<node>:<client>:01 ("gw" in ASCII).
DEFAULT_MAC_FORMAT = "02:67:77:{node:02x}:{client:02x}:01"
MAX_DEFAULT_MAC_INDEX = 0xFF

# Written on the loopback of every lab namespace, so that a later run finds the namespaces of a
# node that left the spec, and never takes a namespace that only shares the name prefix.
MARKER_PREFIX = "ghostwarden-lab:"
# The lab's record in its state root: which lab the directory belongs to, and what it holds.
LAB_RECORD = "lab.json"
# Immediate duplicate address detection: addresses are usable at once and never go tentative.
DAD_SYSCTLS = (("net.ipv6.conf.all.accept_dad", "0"), ("net.ipv6.conf.default.accept_dad", "0"))
HTTPD_ARGV = ("busybox", "httpd", "-f", "-p", "80", "-h")


# -- the spec ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabNode:
    name: str
    index: int
    netns: str
    underlay_address: str
    wan_address: str
    state_dir: str


@dataclass(frozen=True)
class LabClient:
    node: str
    name: str
    index: int
    netns: str
    port: str
    mac: str
    address: Optional[str]
    gateway: Optional[str]
    http: bool

    @property
    def label(self) -> str:
        """``<node>-<client>``: the client's inventory name, unique in the lab."""
        return f"{self.node}-{self.name}"


@dataclass(frozen=True)
class LabSpec:
    name: str
    nodes: Tuple[LabNode, ...]
    clients: Tuple[LabClient, ...]
    underlay_cidr: str
    wan_cidr: str
    inet_address: str
    state_root: str

    @property
    def switch_netns(self) -> str:
        return f"{self.name}-sw"

    @property
    def inet_netns(self) -> str:
        return f"{self.name}-inet"

    @property
    def marker(self) -> str:
        return f"{MARKER_PREFIX}{self.name}"

    @property
    def prefix(self) -> str:
        """Every namespace of the lab starts with this."""
        return f"{self.name}-"

    @property
    def underlay_prefixlen(self) -> int:
        return int(self.underlay_cidr.rsplit("/", 1)[1])

    @property
    def wan_prefixlen(self) -> int:
        return int(self.wan_cidr.rsplit("/", 1)[1])

    @property
    def wan_family(self) -> int:
        return 6 if ":" in self.wan_cidr else 4

    @property
    def www_root(self) -> str:
        return posixpath.join(self.state_root, "www")

    @property
    def log_dir(self) -> str:
        return posixpath.join(self.state_root, "log")

    @property
    def namespaces(self) -> Tuple[str, ...]:
        """Every namespace of the lab, in the order they are made: switch, internet, nodes, clients."""
        return ((self.switch_netns, self.inet_netns) + tuple(node.netns for node in self.nodes)
                + tuple(client.netns for client in self.clients))


# The lab's messages show a value's whole repr, up to 72 characters.
_show = partial(show_repr, width=72)


def _shown_with_kind(value: object) -> str:
    """``a string 'x'``: how the lab's "expected ..., got ..." messages show a value."""
    # As kind(), but floats by their type's name and any Mapping as "a mapping", as these messages always have.
    if isinstance(value, float):
        what = f"a {type(value).__name__}"
    elif isinstance(value, Mapping):
        what = "a mapping"
    else:
        what = kind(value)
    return f"{what} {_show(value)}"


def _issues() -> Issues:
    return Issues(got=_shown_with_kind)


def _given(params: Mapping[str, Any], key: str, default: Any) -> Any:
    """The option's value; a missing or null option takes its default."""
    value = params.get(key)
    return default if value is None else value


def _parse_ip(text: object) -> Optional[Any]:
    """A strictly written IPv4 or IPv6 address as netaddr.IPAddress, or None."""
    if not isinstance(text, str) or not IP_TEXT_RE.fullmatch(text):
        return None
    try:
        return netaddr.IPAddress(text, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def _parse_prefixed(text: object) -> Tuple[Optional[Any], Optional[int]]:
    """``ADDRESS/PREFIX`` as (IPAddress, prefix length), or (None, None)."""
    if not isinstance(text, str) or text.count("/") != 1:
        return None, None
    address_text, prefix_text = text.split("/")
    address = _parse_ip(address_text)
    if address is None or not prefix_text.isdigit() or len(prefix_text) > 3:
        return None, None
    prefixlen = int(prefix_text)
    if prefixlen > (32 if address.version == 4 else 128):
        return None, None
    return address, prefixlen


def _lab_name(value: object, issues: Issues) -> str:
    if not isinstance(value, str) or not LAB_NAME_RE.fullmatch(value):
        issues.fail("name", f"{_show(value)} is not a lab name: 1-8 characters a-z and 0-9 "
                            "(it starts the name of every namespace of the lab)")
        return DEFAULT_NAME
    return value


def _node_names(value: object, issues: Issues) -> List[str]:
    if isinstance(value, str) and value.isdigit():
        # -e ghostwarden_lab_nodes=12 on the command line arrives as a string.
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1 or value > MAX_NODES:
            issues.fail("nodes", f"{value} nodes is out of range 1-{MAX_NODES}")
            return []
        return [f"node{index}" for index in range(1, value + 1)]
    if not isinstance(value, (list, tuple)):
        issues.expected("nodes", "a list of node names or a number of nodes", value)
        return []
    if not value:
        issues.fail("nodes", "the lab needs at least one node, got an empty list")
        return []
    if len(value) > MAX_NODES:
        issues.fail("nodes", f"{len(value)} nodes is more than the {MAX_NODES} a lab can have")
        return []
    names: List[str] = []
    for position, name in enumerate(value):
        path = f"nodes[{position}]"
        if not isinstance(name, str) or not NODE_NAME_RE.fullmatch(name):
            issues.fail(path, f"{_show(name)} is not a node name: a letter a-z, then up to 11 of a-z and 0-9")
        elif name in RESERVED_NODE_NAMES:
            issues.fail(path, f"{_show(name)} is reserved: <name>-{name} is the lab's "
                              f"{'switch' if name == 'sw' else 'internet'} namespace")
        elif name in names:
            issues.fail(path, f"node {_show(name)} is listed twice (first at nodes[{names.index(name)}])")
        else:
            names.append(name)
            continue
        names.append("")  # keeps the positions of the valid names as node indexes
    return names


def _lab_network(field: str, value: object, count: int, issues: Issues) -> Optional[Any]:
    """The underlay or wan network: a CIDR with room for ``count`` node addresses from + 11."""
    address, prefixlen = _parse_prefixed(value)
    if address is None:
        issues.fail(field, f"{_show(value)} is not a CIDR (expected ADDRESS/PREFIX, e.g. 192.0.2.0/24)")
        return None
    network = netaddr.IPNetwork(f"{address}/{prefixlen}")
    if network.network != address:
        issues.fail(field, f"{_show(value)} has host bits set; the network address is {network.cidr}")
        return None
    # IPv4 keeps its broadcast address out; IPv6 has none.
    last_usable = network.last - 1 if network.version == 4 else network.last
    room = max(0, last_usable - network.first - NODE_HOST_OFFSET)
    if count > room:
        if room:
            where = (f"room for {room} node address{'es' if room > 1 else ''} "
                     f"({netaddr.IPAddress(network.first + NODE_HOST_OFFSET + 1, network.version)}-"
                     f"{netaddr.IPAddress(network.first + NODE_HOST_OFFSET + room, network.version)})")
        else:
            where = "no room for node addresses (they start at the network address + 11)"
        issues.fail(field, f"{network.cidr} has {where}, but the lab has {count} nodes; "
                           "give a larger network or fewer nodes")
        return None
    return network


def _state_root(value: object, name: str, issues: Issues) -> str:
    if value is None or value == "":
        return posixpath.join(DEFAULT_STATE_PARENT, name)
    if not isinstance(value, str) or not posixpath.isabs(value) or PATH_FORBIDDEN_RE.search(value):
        issues.fail("state_root", f"{_show(value)} must be an absolute path without commas or control "
                                  "characters")
        return ""
    root = posixpath.normpath(value)
    if root in ("/", "//"):
        issues.fail("state_root", f"{_show(value)} is the root directory; the lab removes its state root "
                                  "when it is torn down")
        return ""
    return root


def _mac(value: object, path: str, issues: Issues) -> Optional[str]:
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        issues.fail(path, f"{_show(value)} is not a MAC address (expected six hex pairs, e.g. "
                          "02:67:77:01:01:01)")
        return None
    mac = value.lower().replace("-", ":")
    first_octet = int(mac[:2], 16)
    if first_octet & 1:
        issues.fail(path, f"{_show(value)} is a multicast MAC; an interface needs a unicast one "
                          "(the lowest bit of the first octet clear)")
        return None
    if mac == "00:00:00:00:00:00":
        issues.fail(path, f"{_show(value)} is the all-zero MAC")
        return None
    return mac


def _client_address(value: object, path: str, issues: Issues) -> Optional[Tuple[Any, int]]:
    address, prefixlen = _parse_prefixed(value)
    if address is None:
        issues.fail(path, f"{_show(value)} is not an address with its prefix (expected ADDRESS/PREFIX, "
                          "e.g. 10.33.0.10/24)")
        return None
    network = netaddr.IPNetwork(f"{address}/{prefixlen}")
    problem = None
    if address.value == 0:
        problem = "the unspecified address"
    elif address.is_multicast():
        problem = "a multicast address"
    elif address.is_loopback():
        problem = "a loopback address"
    elif address.version == 4 and prefixlen <= 30 and address == network.network:
        problem = f"the network address of {network.cidr}"
    elif address.version == 4 and prefixlen <= 30 and address == network.broadcast:
        problem = f"the broadcast address of {network.cidr}"
    if problem:
        issues.fail(path, f"{_show(value)} is {problem}; a client needs a unicast host address")
        return None
    return address, prefixlen


def _gateway(value: object, address: Optional[Tuple[Any, int]], path: str, issues: Issues) -> Optional[str]:
    gateway = _parse_ip(value)
    if gateway is None:
        issues.fail(path, f"{_show(value)} is not an IP address")
        return None
    if address is None:
        issues.fail(path, f"gateway {gateway} needs the client's address (set address as well)")
        return None
    own, prefixlen = address
    if gateway.version != own.version:
        issues.fail(path, f"gateway {gateway} is IPv{gateway.version} but the address {own}/{prefixlen} "
                          f"is IPv{own.version}")
        return None
    if gateway == own:
        issues.fail(path, f"gateway {gateway} is the client's own address")
        return None
    network = netaddr.IPNetwork(f"{own}/{prefixlen}")
    if gateway not in network and not (gateway.version == 6 and gateway.is_link_local()):
        issues.fail(path, f"gateway {gateway} is not in the client's network {network.cidr}")
        return None
    return str(gateway)


def _client_entries(value: object, node_names: Sequence[str],
                    issues: Issues) -> List[Tuple[str, List[Tuple[str, object]]]]:
    """(node, [(entry path, entry)]) for every node that has clients, in node order.

    A list gives every node the same clients; a mapping gives each named node its own.
    """
    if isinstance(value, (list, tuple)):
        entries = [(f"clients[{position}]", entry) for position, entry in enumerate(value)]
        return [(node, entries) for node in node_names if node]
    if not isinstance(value, Mapping):
        issues.expected("clients", "a list of clients (behind every node) or a mapping of node name to its clients",
                        value)
        return []
    by_node = {}
    known = [name for name in node_names if name]
    for node, clients in value.items():
        path = f"clients.{node}"
        if not isinstance(node, str) or (known and node not in known):
            issues.fail(path, f"{_show(node)} is not a node of the lab ({', '.join(known)})")
        elif not isinstance(clients, (list, tuple)):
            issues.expected(path, "a list of clients", clients)
        else:
            by_node[node] = [(f"{path}[{position}]", entry) for position, entry in enumerate(clients)]
    return [(node, by_node[node]) for node in node_names if node in by_node]


def _clients(value: object, spec_name: str, node_names: Sequence[str], issues: Issues) -> List[LabClient]:
    clients: List[LabClient] = []
    macs: Dict[str, LabClient] = {}
    shared = isinstance(value, (list, tuple))
    reported: set = set()

    def report(path: str, message: str) -> None:
        # The shared list is checked once per node; its own mistakes are reported once.
        if (path, message) not in reported:
            reported.add((path, message))
            issues.fail(path, message)

    for node, entries in _client_entries(value, node_names, issues):
        node_index = node_names.index(node) + 1
        behind = "" if shared else f" behind node {node}"
        names: Dict[str, str] = {}
        ports: Dict[str, str] = {}
        for client_index, (path, entry) in enumerate(entries, start=1):
            local = _issues()
            if not isinstance(entry, Mapping):
                report(path, f"expected a mapping with name and port, got {_shown_with_kind(entry)}")
                continue
            unknown = sorted(str(key) for key in unknown_keys(entry, CLIENT_KEYS))
            if unknown:
                local.fail(path, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                                 f"(known: {CLIENT_KEYS.listed})")
            name = entry.get("name")
            if not isinstance(name, str) or not CLIENT_NAME_RE.fullmatch(name):
                local.fail(f"{path}.name", f"{_show(name)} is not a client name: a letter a-z, then up to 7 "
                                           "of a-z and 0-9")
                name = None
            elif name in names:
                local.fail(f"{path}.name", f"client {_show(name)} is listed twice{behind} "
                                           f"(first at {names[name]})")
                name = None
            port = entry.get("port")
            if not isinstance(port, str) or not PORT_NAME_RE.fullmatch(port):
                local.fail(f"{path}.port", f"{_show(port)} is not an interface name: 1-15 of A-Z, a-z, 0-9, "
                                           "'_', '.', '-', starting with a letter or digit")
                port = None
            elif port in NODE_INTERFACES:
                local.fail(f"{path}.port", f"{_show(port)} is an interface of the node itself "
                                           f"({', '.join(NODE_INTERFACES)})")
                port = None
            elif port in ports:
                local.fail(f"{path}.port", f"port {_show(port)} is taken by client {ports[port]}{behind}")
                port = None
            address = None
            if entry.get("address") is not None:
                address = _client_address(entry["address"], f"{path}.address", local)
            gateway = None
            if entry.get("gateway") is not None:
                gateway = _gateway(entry["gateway"], address, f"{path}.gateway", local)
            http = entry.get("http", False)
            if http is None:
                http = False
            if not isinstance(http, bool):
                local.expected(f"{path}.http", "true or false", http)
            mac = None
            if entry.get("mac") is not None:
                mac = _mac(entry["mac"], f"{path}.mac", local)
            elif node_index > MAX_DEFAULT_MAC_INDEX or client_index > MAX_DEFAULT_MAC_INDEX:
                local.fail(f"{path}.mac", f"the default MAC {DEFAULT_MAC_FORMAT} numbers nodes and clients up to "
                                          f"{MAX_DEFAULT_MAC_INDEX}, this is client {client_index} of node "
                                          f"{node_index}; give the client a mac")
            else:
                mac = DEFAULT_MAC_FORMAT.format(node=node_index, client=client_index)
            for issue in local.issues:
                report(issue.path, issue.message)
            if name is not None:
                names[name] = path
            if port is not None and name is not None:
                ports[port] = name
            if local.issues or name is None or port is None or mac is None:
                continue
            client = LabClient(
                node=node, name=name, index=client_index, netns=f"{spec_name}-{node}-{name}", port=port, mac=mac,
                address=None if address is None else f"{address[0]}/{address[1]}", gateway=gateway, http=http)
            other = macs.get(mac)
            if other is not None:
                hint = "; a client in the shared list gets the same MAC behind every node" if shared else ""
                report(f"{path}.mac", f"MAC {mac} of client {client.label} is also the MAC of client "
                                      f"{other.label}; every client needs its own{hint}")
                continue
            macs[mac] = client
            clients.append(client)
    return clients


def parse_lab(params: Mapping[str, Any]) -> LabSpec:
    """The module's options (or the role's variables without ``ghostwarden_lab_``) as a :class:`LabSpec`.

    Missing or null options take their defaults. Raises ``ValidationError`` carrying every
    problem, each naming the option's path and the value.
    """
    NETADDR.require("to plan a lab")
    if not isinstance(params, Mapping):
        raise ValidationError(Issue("", f"expected a mapping of lab options, got {_shown_with_kind(params)}"))
    issues = _issues()
    name = _lab_name(_given(params, "name", DEFAULT_NAME), issues)
    node_names = _node_names(_given(params, "nodes", DEFAULT_NODES), issues)
    count = len(node_names)
    underlay = _lab_network("underlay_cidr", _given(params, "underlay_cidr", DEFAULT_UNDERLAY_CIDR), count, issues)
    wan = _lab_network("wan_cidr", _given(params, "wan_cidr", DEFAULT_WAN_CIDR), count, issues)
    if underlay is not None and wan is not None and underlay.version == wan.version \
            and underlay.first <= wan.last and wan.first <= underlay.last:
        issues.fail("wan_cidr", f"{wan.cidr} overlaps the underlay {underlay.cidr}; every node has an "
                                "address in both")
    state_root = _state_root(params.get("state_root"), name, issues)
    clients = _clients(_given(params, "clients", []), name, node_names, issues)
    issues.raise_if_any()
    nodes = tuple(
        LabNode(
            name=node, index=index, netns=f"{name}-{node}",
            underlay_address=str(netaddr.IPAddress(underlay.first + NODE_HOST_OFFSET + index, underlay.version)),
            wan_address=str(netaddr.IPAddress(wan.first + NODE_HOST_OFFSET + index, wan.version)),
            state_dir=posixpath.join(state_root, node))
        for index, node in enumerate(node_names, start=1))
    return LabSpec(
        name=name, nodes=nodes, clients=tuple(clients), underlay_cidr=str(underlay.cidr), wan_cidr=str(wan.cidr),
        inet_address=str(netaddr.IPAddress(wan.first + INET_HOST_OFFSET, wan.version)), state_root=state_root)


def lab_facts(spec: LabSpec) -> dict:
    """What the module returns about the lab (and records in ``lab.json``): plain, ordered data."""
    return {
        "name": spec.name,
        "namespaces": list(spec.namespaces),
        "nodes": [{"name": node.name, "netns": node.netns, "underlay_address": node.underlay_address,
                   "wan_address": node.wan_address, "state_dir": node.state_dir, "index": node.index}
                  for node in spec.nodes],
        "inet": {"netns": spec.inet_netns, "address": spec.inet_address},
        "clients": [{"node": client.node, "name": client.name, "netns": client.netns, "port": client.port,
                     "mac": client.mac, "address": client.address} for client in spec.clients],
        "underlay_cidr": spec.underlay_cidr,
        "wan_cidr": spec.wan_cidr,
        "state_root": spec.state_root,
    }


# -- the desired state -------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkSpec:
    """A link the lab wants: ``master``, ``mac`` and ``alias`` are only checked when set."""

    netns: str
    name: str
    kind: str  # loopback, bridge or veth
    up: bool = True
    master: Optional[str] = None
    mac: Optional[str] = None
    alias: Optional[str] = None


@dataclass(frozen=True)
class VethSpec:
    """A veth pair, created inside ``netns`` with its peer moved to ``peer_netns`` at once."""

    netns: str
    name: str
    peer_netns: str
    peer_name: str
    peer_mac: Optional[str] = None


@dataclass(frozen=True)
class AddressSpec:
    """An address on a lab interface; other addresses in ``network`` on it are the lab's too."""

    netns: str
    iface: str
    address: str
    network: str


@dataclass(frozen=True)
class RouteSpec:
    netns: str
    family: int
    gateway: str
    dev: str


@dataclass(frozen=True)
class ServiceSpec:
    """A process the lab keeps running in a namespace, recognised by its exact argv."""

    netns: str
    argv: Tuple[str, ...]
    log: str


@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    sysctls: Tuple[Tuple[str, str], ...]

    @property
    def sysctl_keys(self) -> Tuple[str, ...]:
        return tuple(key for key, value in self.sysctls)


@dataclass(frozen=True)
class LabState:
    namespaces: Tuple[NamespaceSpec, ...]
    links: Tuple[LinkSpec, ...]
    veths: Tuple[VethSpec, ...]
    addresses: Tuple[AddressSpec, ...]
    routes: Tuple[RouteSpec, ...]
    services: Tuple[ServiceSpec, ...]
    directories: Tuple[Tuple[str, int], ...]
    files: Tuple[Tuple[str, str], ...]

    @property
    def namespace_names(self) -> Tuple[str, ...]:
        return tuple(namespace.name for namespace in self.namespaces)

    @property
    def directory_paths(self) -> Tuple[str, ...]:
        return tuple(path for path, mode in self.directories)

    @property
    def file_paths(self) -> Tuple[str, ...]:
        return tuple(path for path, content in self.files)


def httpd_directory(spec: LabSpec, client: LabClient) -> str:
    return posixpath.join(spec.www_root, client.label)


def _network_of(address: str) -> str:
    return str(netaddr.IPNetwork(address).cidr)


def lab_record(spec: LabSpec) -> str:
    """``<state_root>/lab.json``: marks the directory as this lab's and records its facts."""
    return json.dumps({"lab": spec.name, **lab_facts(spec)}, indent=2, sort_keys=True) + "\n"


def desired_lab(spec: LabSpec, *, ipv6: bool = True) -> LabState:
    """Everything the lab consists of, in creation order. ``ipv6``: the kernel has IPv6 (DAD sysctls)."""
    sysctls = DAD_SYSCTLS if ipv6 else ()
    switch, inet = spec.switch_netns, spec.inet_netns
    namespaces = [NamespaceSpec(name, sysctls) for name in spec.namespaces]
    links = [LinkSpec(namespace.name, LOOPBACK, "loopback", alias=spec.marker) for namespace in namespaces]
    links += [LinkSpec(switch, UNDERLAY_BRIDGE, "bridge"), LinkSpec(switch, WAN_BRIDGE, "bridge")]
    veths = [VethSpec(switch, "w0", inet, INET_INTERFACE)]
    links += [LinkSpec(switch, "w0", "veth", master=WAN_BRIDGE), LinkSpec(inet, INET_INTERFACE, "veth")]
    wan_prefix, underlay_prefix = spec.wan_prefixlen, spec.underlay_prefixlen
    addresses = [AddressSpec(inet, INET_INTERFACE, f"{spec.inet_address}/{wan_prefix}", spec.wan_cidr)]
    routes = []
    for node in spec.nodes:
        underlay_end, wan_end = f"u{node.index}", f"w{node.index}"
        veths += [VethSpec(switch, underlay_end, node.netns, UNDERLAY_INTERFACE),
                  VethSpec(switch, wan_end, node.netns, WAN_INTERFACE)]
        links += [LinkSpec(switch, underlay_end, "veth", master=UNDERLAY_BRIDGE),
                  LinkSpec(switch, wan_end, "veth", master=WAN_BRIDGE),
                  LinkSpec(node.netns, UNDERLAY_INTERFACE, "veth"), LinkSpec(node.netns, WAN_INTERFACE, "veth")]
        addresses += [AddressSpec(node.netns, UNDERLAY_INTERFACE, f"{node.underlay_address}/{underlay_prefix}",
                                  spec.underlay_cidr),
                      AddressSpec(node.netns, WAN_INTERFACE, f"{node.wan_address}/{wan_prefix}", spec.wan_cidr)]
        routes.append(RouteSpec(node.netns, spec.wan_family, spec.inet_address, WAN_INTERFACE))
    services = []
    directories = [(spec.state_root, 0o755), (spec.log_dir, 0o755)]
    files = [(posixpath.join(spec.state_root, LAB_RECORD), lab_record(spec))]
    for node in spec.nodes:
        # ghostwarden_apply keeps its records 0700; the boot units are plain files.
        directories += [(node.state_dir, 0o755), (posixpath.join(node.state_dir, "state"), 0o700),
                        (posixpath.join(node.state_dir, "systemd"), 0o755)]
    nodes = {node.name: node for node in spec.nodes}
    for client in spec.clients:
        node_netns = nodes[client.node].netns
        # Created in the node's namespace: the port stays there, eth0 goes to the client.
        veths.append(VethSpec(node_netns, client.port, client.netns, CLIENT_INTERFACE, client.mac))
        # The port has no master here: the topology applied to the node enslaves it.
        links += [LinkSpec(node_netns, client.port, "veth"),
                  LinkSpec(client.netns, CLIENT_INTERFACE, "veth", mac=client.mac)]
        if client.address is not None:
            addresses.append(AddressSpec(client.netns, CLIENT_INTERFACE, client.address, _network_of(client.address)))
            if client.gateway is not None:
                family = 6 if ":" in client.gateway else 4
                routes.append(RouteSpec(client.netns, family, client.gateway, CLIENT_INTERFACE))
        if client.http:
            directory = httpd_directory(spec, client)
            directories.append((spec.www_root, 0o755))
            directories.append((directory, 0o755))
            files.append((posixpath.join(directory, "index.html"), f"{client.label}\n"))
            services.append(ServiceSpec(client.netns, HTTPD_ARGV + (directory,),
                                        posixpath.join(spec.log_dir, f"{client.label}-httpd.log")))
    return LabState(
        namespaces=tuple(namespaces), links=tuple(links), veths=tuple(veths), addresses=tuple(addresses),
        routes=tuple(routes), services=tuple(services), directories=tuple(sorted(set(directories))),
        files=tuple(sorted(files)))


# -- what ip shows -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ObservedLink:
    name: str
    kind: str
    ifindex: int
    peer_index: Optional[int]
    up: bool
    master: Optional[str]
    mac: Optional[str]
    alias: Optional[str]


@dataclass(frozen=True)
class ObservedAddress:
    iface: str
    address: str
    scope: str


@dataclass(frozen=True)
class ObservedRoute:
    family: int
    gateway: Optional[str]
    dev: Optional[str]


@dataclass(frozen=True)
class ObservedProcess:
    pid: int
    argv: Tuple[str, ...]


@dataclass(frozen=True)
class ObservedNamespace:
    name: str
    links: Tuple[ObservedLink, ...] = ()
    addresses: Tuple[ObservedAddress, ...] = ()
    routes: Tuple[ObservedRoute, ...] = ()
    sysctls: Tuple[Tuple[str, str], ...] = ()
    processes: Tuple[ObservedProcess, ...] = ()

    def link(self, name: str) -> Optional[ObservedLink]:
        for link in self.links:
            if link.name == name:
                return link
        return None

    @property
    def marker(self) -> Optional[str]:
        loopback = self.link(LOOPBACK)
        return None if loopback is None else loopback.alias


@dataclass(frozen=True)
class StateRoot:
    """The lab's state root as found: missing, empty, or holding the record of lab ``owner``."""

    exists: bool
    empty: bool = True
    owner: Optional[str] = None


@dataclass(frozen=True)
class ObservedLab:
    namespaces: Tuple[ObservedNamespace, ...]
    state_root: StateRoot
    directories: Tuple[str, ...] = ()
    files: Tuple[Tuple[str, str], ...] = ()

    def namespace(self, name: str) -> Optional[ObservedNamespace]:
        for namespace in self.namespaces:
            if namespace.name == name:
                return namespace
        return None


def _json_list(text: str, what: str) -> list:
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError as error:
        raise BackendError(what, f"ip printed no JSON ({error}): {text[:200]!r}") from None
    if not isinstance(data, list):
        raise BackendError(what, f"ip printed {type(data).__name__} instead of a list: {text[:200]!r}")
    return data


def parse_netns_list(text: str) -> Tuple[str, ...]:
    """The names ``ip -j netns list`` prints."""
    return tuple(sorted(entry["name"] for entry in _json_list(text, "ip netns list")
                        if isinstance(entry, dict) and isinstance(entry.get("name"), str)))


def lab_namespaces(spec: LabSpec, listed: Sequence[str]) -> Tuple[str, ...]:
    """The listed namespaces that may belong to the lab: its own names and any under its prefix."""
    return tuple(name for name in sorted(listed) if name.startswith(spec.prefix))


def parse_links(text: str, netns: str) -> Tuple[Tuple[ObservedLink, ...], Tuple[ObservedAddress, ...]]:
    """Links and addresses from ``ip -d -j addr show`` in ``netns``."""
    links, addresses = [], []
    for entry in _json_list(text, f"ip -n {netns} addr show"):
        if not isinstance(entry, dict) or not isinstance(entry.get("ifname"), str):
            continue
        info = entry.get("linkinfo") or {}
        kind = info.get("info_kind") or ("loopback" if entry.get("link_type") == "loopback" else "device")
        peer = entry.get("link_index")
        links.append(ObservedLink(
            name=entry["ifname"], kind=kind, ifindex=int(entry.get("ifindex", 0)),
            peer_index=int(peer) if kind == "veth" and isinstance(peer, int) else None,
            up="UP" in (entry.get("flags") or ()), master=entry.get("master"),
            mac=entry.get("address"), alias=entry.get("ifalias")))
        for item in entry.get("addr_info") or ():
            if isinstance(item, dict) and item.get("local") and item.get("prefixlen") is not None:
                addresses.append(ObservedAddress(entry["ifname"], f"{item['local']}/{item['prefixlen']}",
                                                 str(item.get("scope", ""))))
    return tuple(links), tuple(addresses)


def parse_default_routes(text: str, family: int, netns: str) -> Tuple[ObservedRoute, ...]:
    """Default routes from ``ip -<family> -j route show default`` in ``netns``."""
    return tuple(ObservedRoute(family, entry.get("gateway"), entry.get("dev"))
                 for entry in _json_list(text, f"ip -n {netns} -{family} route show default")
                 if isinstance(entry, dict) and entry.get("dst") == "default")


def parse_sysctls(keys: Sequence[str], text: str, netns: str) -> Tuple[Tuple[str, str], ...]:
    """``sysctl -n key...`` prints one value per line, in the order of the keys."""
    values = text.splitlines()
    if len(values) != len(keys):
        raise BackendError(f"sysctl in {netns}", f"expected {len(keys)} values for {', '.join(keys)}, got {text!r}")
    return tuple(zip(keys, (value.strip() for value in values)))


def parse_pids(text: str) -> Tuple[int, ...]:
    """``ip netns pids`` prints one pid per line."""
    return tuple(sorted(int(line) for line in text.split() if line.isdigit()))


def parse_cmdline(raw: bytes) -> Tuple[str, ...]:
    """``/proc/<pid>/cmdline``: NUL-separated arguments."""
    return tuple(part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1]) if raw else ()


# -- steps -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One action: an ``argv`` to run, or a file or process action on ``path`` / ``pids``."""

    kind: str
    netns: Optional[str] = None
    argv: Tuple[str, ...] = ()
    path: Optional[str] = None
    content: Optional[str] = None
    mode: Optional[int] = None
    pids: Tuple[int, ...] = ()
    match: Tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The step as the module reports it (without file contents)."""
        result: Dict[str, Any] = {"kind": self.kind}
        if self.netns is not None:
            result["netns"] = self.netns
        if self.argv:
            result["command"] = shlex.join(self.argv)
        if self.path is not None:
            result["path"] = self.path
        if self.mode is not None:
            result["mode"] = f"{self.mode:04o}"
        if self.pids:
            result["pids"] = list(self.pids)
        return result


@dataclass(frozen=True)
class Plan:
    steps: Tuple[Step, ...]
    warnings: Tuple[str, ...] = ()


def _ip(netns: str, *words: str) -> Tuple[str, ...]:
    return ("ip", "-n", netns) + words


def start_command(service: ServiceSpec) -> Tuple[str, ...]:
    """Start ``service`` detached: its own session, no terminal, output appended to its log."""
    shell = f"exec setsid -f {shlex.join(service.argv)} </dev/null >>{shlex.quote(service.log)} 2>&1"
    return ("ip", "netns", "exec", service.netns, "sh", "-c", shell)


def _is_lab_service(spec: LabSpec, argv: Tuple[str, ...]) -> bool:
    return (len(argv) == len(HTTPD_ARGV) + 1 and argv[:len(HTTPD_ARGV)] == HTTPD_ARGV
            and argv[-1].startswith(spec.www_root + "/"))


def _owned(address: str, network: str) -> bool:
    try:
        return netaddr.IPNetwork(address).ip in netaddr.IPNetwork(network)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


def _paired(veth: VethSpec, observed: ObservedLab) -> bool:
    """Both ends exist as veths and are each other's peer (ifindex cross-check)."""
    here, there = observed.namespace(veth.netns), observed.namespace(veth.peer_netns)
    end = here.link(veth.name) if here else None
    peer = there.link(veth.peer_name) if there else None
    return (end is not None and peer is not None and end.kind == peer.kind == "veth"
            and end.peer_index == peer.ifindex and peer.peer_index == end.ifindex)


def _lab_owned(spec: LabSpec, desired: LabState, namespace: ObservedNamespace) -> bool:
    """A namespace is the lab's when the spec names it or the lab marked it."""
    return namespace.name in desired.namespace_names or namespace.marker == spec.marker


def check_state_root(spec: LabSpec, state_root: StateRoot) -> None:
    """Refuse a state root that holds something else than this lab's files."""
    if state_root.exists and not state_root.empty and state_root.owner != spec.name:
        owner = f"lab {state_root.owner!r}" if state_root.owner else f"no {LAB_RECORD} of a lab"
        raise ConflictError(f"state_root {spec.state_root} is not empty and holds {owner}; "
                            f"give lab {spec.name} its own state_root")


def plan_present(spec: LabSpec, desired: LabState, observed: ObservedLab) -> Plan:
    """The steps that make the observed lab the desired one, in the order they must run.

    Namespaces are only created, never recreated; links that are missing, of the wrong kind or
    paired with something else are (re)created; attributes, the lab's addresses (inside its
    networks), default routes, sysctls, directories, files and services are converged.
    Namespaces the lab marked that the spec no longer has are torn down. Empty when nothing differs.
    """
    check_state_root(spec, observed.state_root)
    steps: List[Step] = []
    existing_dirs = set(observed.directories)
    steps += [Step("make_directory", path=path, mode=mode) for path, mode in desired.directories
              if path not in existing_dirs]
    current_files = dict(observed.files)
    steps += [Step("write_file", path=path, content=content) for path, content in desired.files
              if current_files.get(path) != content]

    wanted = set(desired.namespace_names)
    for namespace in observed.namespaces:
        if namespace.name not in wanted and namespace.marker == spec.marker:
            steps += _teardown_namespace(namespace)

    services_by_netns: Dict[str, List[ServiceSpec]] = {}
    for service in desired.services:
        services_by_netns.setdefault(service.netns, []).append(service)
    for namespace in observed.namespaces:
        if namespace.name not in wanted:
            continue
        wanted_argvs = {service.argv for service in services_by_netns.get(namespace.name, ())}
        stale = tuple(process.pid for process in namespace.processes
                      if _is_lab_service(spec, process.argv) and process.argv not in wanted_argvs)
        if stale:
            steps.append(Step("stop_service", netns=namespace.name, pids=stale, match=HTTPD_ARGV))

    missing = [namespace for namespace in desired.namespaces if observed.namespace(namespace.name) is None]
    steps += [Step("add_netns", netns=namespace.name, argv=("ip", "netns", "add", namespace.name))
              for namespace in missing]
    for namespace in desired.namespaces:
        found = observed.namespace(namespace.name)
        current = dict(found.sysctls) if found is not None else {}
        assignments = tuple(f"{key}={value}" for key, value in namespace.sysctls if current.get(key) != value)
        if assignments:
            steps.append(Step("set_sysctl", netns=namespace.name,
                              argv=("ip", "netns", "exec", namespace.name, "sysctl", "-qw") + assignments))

    # Links: wrong ones go, missing ones come; a fresh link is down, without master or alias.
    fresh: Dict[Tuple[str, str], ObservedLink] = {}
    deletions: List[Step] = []
    creations: List[Step] = []
    deleted: set = set()

    def delete(netns: str, name: str) -> None:
        found = observed.namespace(netns)
        if found is not None and found.link(name) is not None and (netns, name) not in deleted:
            deleted.add((netns, name))
            deletions.append(Step("delete_link", netns=netns, argv=_ip(netns, "link", "delete", "dev", name)))

    for link in desired.links:
        if link.kind != "bridge":
            continue
        found = observed.namespace(link.netns)
        current = found.link(link.name) if found is not None else None
        if current is None or current.kind != "bridge":
            delete(link.netns, link.name)
            creations.append(Step("add_link", netns=link.netns,
                                  argv=_ip(link.netns, "link", "add", link.name, "type", "bridge")))
            fresh[(link.netns, link.name)] = ObservedLink(link.name, "bridge", 0, None, False, None, None, None)
    for veth in desired.veths:
        if _paired(veth, observed):
            continue
        delete(veth.netns, veth.name)
        delete(veth.peer_netns, veth.peer_name)
        peer_words = ("peer", "name", veth.peer_name) + (("address", veth.peer_mac) if veth.peer_mac else ())
        creations.append(Step("add_link", netns=veth.netns, argv=_ip(
            veth.netns, "link", "add", veth.name, "type", "veth", *peer_words, "netns", veth.peer_netns)))
        fresh[(veth.netns, veth.name)] = ObservedLink(veth.name, "veth", 0, None, False, None, None, None)
        fresh[(veth.peer_netns, veth.peer_name)] = ObservedLink(veth.peer_name, "veth", 0, None, False, None,
                                                                veth.peer_mac, None)
    settings: List[Step] = []
    loopbacks: List[Step] = []
    for link in desired.links:
        current = fresh.get((link.netns, link.name))
        if current is None:
            found = observed.namespace(link.netns)
            # A new namespace's loopback is down, without alias.
            current = found.link(link.name) if found is not None else None
            if current is None and link.kind == "loopback":
                current = ObservedLink(LOOPBACK, "loopback", 1, None, False, None, None, None)
            if current is None:
                continue
        words: List[str] = []
        # Deleting a bridge releases its ports: a recreated bridge has none yet.
        master = None if (link.netns, current.master) in fresh else current.master
        if link.mac is not None and (current.mac or "").lower() != link.mac:
            words += ["address", link.mac]
        if link.master is not None and master != link.master:
            words += ["master", link.master]
        if link.alias is not None and current.alias != link.alias:
            words += ["alias", link.alias]
        if link.up and not current.up:
            words.append("up")
        if words:
            step = Step("set_link", netns=link.netns, argv=_ip(link.netns, "link", "set", "dev", link.name, *words))
            (loopbacks if link.kind == "loopback" else settings).append(step)
    steps += loopbacks + deletions + creations + settings

    recreated = set(fresh)
    for address in desired.addresses:
        found = observed.namespace(address.netns)
        current = () if found is None or (address.netns, address.iface) in recreated else found.addresses
        owned = [item.address for item in current
                 if item.iface == address.iface and item.scope == "global" and _owned(item.address, address.network)]
        steps += [Step("delete_address", netns=address.netns,
                       argv=_ip(address.netns, "address", "delete", other, "dev", address.iface))
                  for other in owned if other != address.address]
        if address.address not in owned:
            steps.append(Step("add_address", netns=address.netns,
                              argv=_ip(address.netns, "address", "add", address.address, "dev", address.iface)))
    for route in desired.routes:
        found = observed.namespace(route.netns)
        current = () if found is None or (route.netns, route.dev) in recreated else found.routes
        defaults = [item for item in current if item.family == route.family]
        if not any(item.gateway == route.gateway and item.dev == route.dev for item in defaults):
            steps.append(Step("replace_route", netns=route.netns, argv=(
                "ip", "-n", route.netns, f"-{route.family}", "route", "replace", "default", "via", route.gateway,
                "dev", route.dev)))
    for service in desired.services:
        found = observed.namespace(service.netns)
        running = found is not None and any(process.argv == service.argv for process in found.processes)
        if not running:
            steps.append(Step("start_service", netns=service.netns, argv=start_command(service), path=service.log,
                              match=service.argv))
    return Plan(tuple(steps))


def _teardown_namespace(namespace: ObservedNamespace) -> List[Step]:
    """Stop every process in the namespace (dnsmasq, timers, services), then delete it."""
    steps = []
    if namespace.processes:
        steps.append(Step("stop_processes", netns=namespace.name,
                          pids=tuple(process.pid for process in namespace.processes)))
    steps.append(Step("delete_netns", netns=namespace.name, argv=("ip", "netns", "delete", namespace.name)))
    return steps


def plan_absent(spec: LabSpec, desired: LabState, observed: ObservedLab) -> Plan:
    """The steps that remove the lab: every process in its namespaces, the namespaces, the state root.

    A namespace is the lab's when the spec names it or it carries the lab's marker; the state
    root is removed when it is empty or holds this lab's record, and left with a warning otherwise.
    """
    order = {name: position for position, name in enumerate(desired.namespace_names)}
    # Clients before their nodes before the switch: the reverse of creation.
    targets = sorted((namespace for namespace in observed.namespaces if _lab_owned(spec, desired, namespace)),
                     key=lambda namespace: (-order.get(namespace.name, len(order)), namespace.name))
    steps: List[Step] = []
    for namespace in targets:
        if namespace.processes:
            steps.append(Step("stop_processes", netns=namespace.name,
                              pids=tuple(process.pid for process in namespace.processes)))
    steps += [Step("delete_netns", netns=namespace.name, argv=("ip", "netns", "delete", namespace.name))
              for namespace in targets]
    warnings: List[str] = []
    root = observed.state_root
    if root.exists:
        if root.empty or root.owner == spec.name:
            steps.append(Step("remove_directory", path=spec.state_root))
        else:
            owner = f"lab {root.owner!r}" if root.owner else f"no {LAB_RECORD} of a lab"
            warnings.append(f"state_root {spec.state_root} holds {owner}, not lab {spec.name}; left in place")
    return Plan(tuple(steps), tuple(warnings))


# -- views for diff mode -----------------------------------------------------------------------

def _link_line(name: str, kind: str, peer: Optional[str], master: Optional[str], mac: Optional[str],
               alias: Optional[str], up: bool) -> str:
    words = ["link", name, kind]
    words += [f"peer {peer}"] if peer else []
    words += [f"master {master}"] if master else []
    words += [f"mac {mac}"] if mac else []
    words += [f"alias {alias}"] if alias else []
    words.append("up" if up else "down")
    return " ".join(words)


def _peers(desired: LabState) -> Dict[Tuple[str, str], Tuple[str, VethSpec]]:
    peers = {}
    for veth in desired.veths:
        peers[(veth.netns, veth.name)] = (f"{veth.peer_netns}/{veth.peer_name}", veth)
        peers[(veth.peer_netns, veth.peer_name)] = (f"{veth.netns}/{veth.name}", veth)
    return peers


def desired_view(desired: LabState) -> dict:
    """The desired lab as lines per namespace, directories and files (the diff's ``after``)."""
    peers = _peers(desired)
    lines: Dict[str, List[str]] = {namespace.name: [f"sysctl {key}={value}" for key, value in namespace.sysctls]
                                   for namespace in desired.namespaces}
    for link in desired.links:
        peer = peers.get((link.netns, link.name), (None,))[0]
        lines[link.netns].append(_link_line(link.name, link.kind, peer, link.master, link.mac, link.alias, link.up))
    for address in desired.addresses:
        lines[address.netns].append(f"address {address.iface} {address.address}")
    for route in desired.routes:
        lines[route.netns].append(f"route -{route.family} default via {route.gateway} dev {route.dev}")
    for service in desired.services:
        lines[service.netns].append(f"process {shlex.join(service.argv)}")
    return {"namespaces": lines, "directories": list(desired.directory_paths),
            "files": dict(desired.files)}


def observed_view(spec: LabSpec, desired: LabState, observed: ObservedLab) -> dict:
    """The observed lab through the desired one's lens (the diff's ``before``): the same lines
    where nothing differs; foreign objects beside the lab's are left out."""
    peers = _peers(desired)
    lines: Dict[str, List[str]] = {}
    wanted = {namespace.name: namespace for namespace in desired.namespaces}
    for namespace in observed.namespaces:
        if not _lab_owned(spec, desired, namespace):
            continue
        spec_namespace = wanted.get(namespace.name)
        if spec_namespace is None:
            lines[namespace.name] = [_link_line(link.name, link.kind, None, link.master, None, link.alias, link.up)
                                     for link in namespace.links]
            continue
        current = dict(namespace.sysctls)
        lines[namespace.name] = [f"sysctl {key}={current[key]}" for key in spec_namespace.sysctl_keys if key in current]
    for link in desired.links:
        found = observed.namespace(link.netns)
        current = found.link(link.name) if found is not None else None
        if current is None:
            continue
        peer_text, veth = peers.get((link.netns, link.name), (None, None))
        peer = None if veth is None else (peer_text if _paired(veth, observed) else "unpaired")
        lines[link.netns].append(_link_line(
            current.name, current.kind, peer, current.master if link.master else None,
            (current.mac or "").lower() if link.mac else None, current.alias if link.alias else None, current.up))
    seen = set()
    for address in desired.addresses:
        found = observed.namespace(address.netns)
        if found is None:
            continue
        for item in found.addresses:
            key = (address.netns, item.iface, item.address)
            if item.iface == address.iface and item.scope == "global" and _owned(item.address, address.network) \
                    and key not in seen:
                seen.add(key)
                lines[address.netns].append(f"address {item.iface} {item.address}")
    for route in desired.routes:
        found = observed.namespace(route.netns)
        if found is None:
            continue
        lines[route.netns] += [f"route -{item.family} default via {item.gateway} dev {item.dev}"
                               for item in found.routes if item.family == route.family]
    for namespace in observed.namespaces:
        if namespace.name in lines:
            lines[namespace.name] += [f"process {shlex.join(process.argv)}" for process in namespace.processes
                                      if _is_lab_service(spec, process.argv)]
    existing = set(observed.directories)
    return {"namespaces": lines, "directories": [path for path in desired.directory_paths if path in existing],
            "files": dict(observed.files)}


def empty_view() -> dict:
    """The lab after its removal."""
    return {"namespaces": {}, "directories": [], "files": {}}
