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

This file reads the top level (version, interfaces, management, policies), each network's
name, type and addressing, and runs the checks across networks. The sections of a network
have their own files, each given the one :class:`TopologyReader` of the run (issues, value
readers, and the index of what every network defines and claims):

- ``_topology_dhcp``: ``dhcp`` and ``dns``;
- ``_topology_forwards``: ``forwards``, and the check that no two claim the same port;
- ``_topology_links``: the bridge, VLAN and VXLAN devices, and the check of link references;
- ``_topology_reader``: the reader, the index, and addresses.

The schema is documented field by field in ``docs/topology.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.core._documents import parse_document, read_document_file
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    Issue,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import management_port_warnings
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    NETWORK_TYPES,
    Dhcp,
    Dns,
    Forward,
    Management,
    Network,
    PortRange,
    Profile,
    Subnet,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import (
    BUILTIN_PROFILES,
    ProfileDirs,
    parse_profile,
    profile_to_dict,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Keys, is_int, join, kind, show
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_dhcp import parse_dhcp, parse_dns
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_forwards import (
    check_public_overlaps,
    parse_forwards,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_links import (
    check_links,
    parse_bridge_attributes,
    parse_iface,
    parse_vlan,
    parse_vxlan,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_reader import (
    ANY_ADDRESS,
    Addr,
    Net,
    TopologyReader,
    parse_cidr,
    reserved_range,
)

SUPPORTED_VERSIONS = (1,)
FILE_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}

# Network names become nft chain names and file names.
NETWORK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# Keys of ``interfaces`` are only references inside the topology; same shape as network names.
INTERFACE_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

MAX_L3_PREFIX = {4: 30, 6: 126}  # room for the gateway and at least one host
DEFAULT_MANAGEMENT_PORTS = (PortRange(22, 22),)

_TOP_KEYS = Keys(("version", "interfaces", "management", "policies", "networks"))
_MANAGEMENT_KEYS = Keys(("allow_from", "ports", "enforce"))
_COMMON_KEYS = ("type", "iface", "mtu", "policy_profile")
_L3_KEYS = ("cidr", "gw_ip", "cidr6", "gw_ip6", "dhcp", "dns", "masq_out", "forwards")
_BRIDGE_KEYS = ("stp", "vlan_filtering", "vids", "ports", "adopt_port_addresses")
_VLAN_KEYS = ("vlan", "parent")
_VXLAN_KEYS = ("bridge", "vni", "peers", "local", "dev", "dstport", "learning", "vxlan_iface")
# Every type but "vlan" has a bridge, and any bridge may take a VLAN sub-interface of a parent.
_BRIDGE_VLAN_KEYS = _VLAN_KEYS + ("vlan_iface",)
_KEYS_BY_TYPE = {
    "routed": Keys(_COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS),
    "bridge": Keys(_COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS),
    "vlan": Keys(_COMMON_KEYS + _L3_KEYS + _VLAN_KEYS),
    "vxlan": Keys(_COMMON_KEYS + _L3_KEYS + _BRIDGE_KEYS + _BRIDGE_VLAN_KEYS + _VXLAN_KEYS),
}
_NETWORK_KEYS = frozenset(key for keys in _KEYS_BY_TYPE.values() for key in keys.names)
_ANY_NETWORK_KEYS = Keys(sorted(_NETWORK_KEYS))


class _Parser(TopologyReader):
    """One validation run: the top level and each network's own fields; the sections read the rest."""

    def __init__(self, prefix: str, profile_dirs: ProfileDirs | None = None) -> None:
        super().__init__()
        self.prefix = prefix
        self.profile_dirs = profile_dirs
        self.looked_up: set[str] = set()  # profile names searched for in profile_dirs already

    # -- top level --------------------------------------------------------------------------

    def topology(self, data: object) -> Topology | None:
        root = self.prefix
        if self.mapping(data, root, "a mapping (the topology)") is None:
            return None
        self.check_keys(data, _TOP_KEYS, root)
        version = data.get("version", 1)
        if not is_int(version):
            self.expected(join(root, "version"), "an integer", version)
        elif version not in SUPPORTED_VERSIONS:
            self.fail(join(root, "version"), f"unsupported version {version} (supported: 1)")
        self.parse_interfaces(data.get("interfaces"), join(root, "interfaces"))
        self.parse_management(data.get("management"), join(root, "management"))
        self.parse_policies(data.get("policies"), join(root, "policies"))
        networks = self.parse_networks(data.get("networks"), join(root, "networks"))
        self.check_subnet_overlaps()
        check_public_overlaps(self)
        check_links(self)
        index = self.index
        topology = Topology(
            version=1,
            interfaces=tuple(sorted(index.interfaces.items())),
            management=index.management,
            profiles=tuple(sorted(index.profiles.items())),
            networks=tuple(sorted(networks, key=lambda network: network.name)),
        )
        # What would lock the operator out is refused by the modules that apply (core._lockout);
        # what only narrows who stays protected is said here, once per profile.
        return replace(topology, warnings=(*self.warnings, *management_port_warnings(topology)))

    def parse_interfaces(self, value: object, path: str) -> None:
        if value is None:
            return
        index = self.index
        data = self.mapping(value, path)
        if data is None:
            index.bad_interface_keys.add("uplink")  # no default VLAN parent can be reported as missing
            return
        interfaces = index.interfaces
        for key, name in data.items():
            key_path = join(path, key)
            if not isinstance(key, str) or not INTERFACE_KEY_RE.fullmatch(key):
                self.fail(key_path, f"interface key {show(key)} must match {INTERFACE_KEY_RE.pattern}")
                if isinstance(key, str):
                    index.bad_interface_keys.add(key)
                continue
            resolved = self.iface_name(name, key_path)
            if resolved is None:
                index.bad_interface_keys.add(key)
                continue
            interfaces[str(key)] = resolved
            index.foreign.append((resolved, key_path))
        # A name that is both another entry's link and a key meaning a different link would
        # resolve differently once written out resolved (topology_to_dict): refuse it.
        for key, name in interfaces.items():
            if name != key and name in interfaces and interfaces[name] != name:
                self.fail(join(path, key), f"{show(name)} is also a key of interfaces (meaning "
                                           f"{interfaces[name]}); references to it would be ambiguous")

    def parse_management(self, value: object, path: str) -> None:
        if value is None:
            return
        data = self.mapping(value, path)
        if data is None:
            return
        self.check_keys(data, _MANAGEMENT_KEYS, path)
        sources: list[tuple[Net, str]] = []
        for index, item in enumerate(self.get_list(data, "allow_from", path)):
            item_path = f"{path}.allow_from[{index}]"
            net, problem = parse_cidr(item, allow_bare=True)
            if problem:
                self.fail(item_path, problem)
            else:
                sources.append((net, item_path))
        sources.sort(key=lambda source: (source[0].version, source[0].first, source[0].prefixlen))
        # nft interval sets refuse overlapping elements: report them rather than merge silently.
        reach: tuple[Net, str] | None = None
        for net, net_path in sources:
            if reach is not None and reach[0].version == net.version and net.first <= reach[0].last:
                self.fail(net_path, f"{net.text} overlaps {reach[0].text} at {reach[1]}")
            if reach is None or reach[0].version != net.version or net.last > reach[0].last:
                reach = (net, net_path)
        ports = DEFAULT_MANAGEMENT_PORTS
        if data.get("ports") is not None:
            ports = self.range_list(self.get_list(data, "ports", path), join(path, "ports"), 1, 65535, "port")
        enforce = self.get_bool(data, "enforce", path, True)
        self.index.management = Management(
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
        index = self.index
        for name, body in data.items():
            entry_path = join(path, name)
            body, copied_from = self.split_file_key(body, entry_path)
            if copied_from is not None and self.read_again(name, copied_from, entry_path):
                continue
            profile = parse_profile(name, body, entry_path, self.issues)  # checks the name too
            if profile is None:
                if isinstance(name, str):
                    index.bad_profiles.add(name)
            else:
                index.profiles[name] = profile
                if copied_from is not None:
                    index.profile_files[name] = copied_from

    def split_file_key(self, body: object, path: str) -> tuple[object, str | None]:
        """A ``policies`` entry without its ``file`` key, and the key's value.

        ``file`` marks a copy of a profile file: the normalised topology (``topology_to_dict``)
        writes it for every profile read from a file.
        """
        if not isinstance(body, Mapping) or "file" not in body:
            return body, None
        copied_from = body["file"]
        body = {key: value for key, value in body.items() if key != "file"}
        if copied_from is None:
            return body, None
        if not isinstance(copied_from, str) or not copied_from or not copied_from.isprintable():
            self.fail(join(path, "file"), f"{show(copied_from)} is not the path of a profile file")
            return body, None
        return body, copied_from

    def read_again(self, name: object, copied_from: str, path: str) -> bool:
        """Replace the copy of a profile file by the file itself, when profile files are read and it still exists.

        Only a file named like the profile (``<name>.toml``, ``.yaml``, ``.yml``) is read. True when
        it was (or its problems reported); False when the copy stands.
        """
        dirs = self.profile_dirs
        if dirs is None or not isinstance(name, str) or name in BUILTIN_PROFILES:
            return False
        if os.path.basename(copied_from) not in dirs.file_names(name) or not dirs.is_file(copied_from):
            return False
        self.load_profile_file(name, copied_from, path)
        return True

    def load_profile_file(self, name: str, file: str, path: str) -> Profile | None:
        """Profile ``name`` from ``file`` into the index; its problems are reported at ``path``, naming the file."""
        dirs = self.profile_dirs
        if dirs is None:  # only reached through a lookup in the directories, which needs them
            return None
        try:
            profile = dirs.load(name, file)
        except ValidationError as error:
            for issue in error.issues:
                self.fail(path, str(issue))
            self.index.bad_profiles.add(name)
            return None
        self.index.profiles[name] = profile
        self.index.profile_files[name] = file
        return profile

    def parse_networks(self, value: object, path: str) -> list[Network]:
        if value is None:
            return []
        data = self.mapping(value, path)
        if data is None:
            return []
        networks = []
        for name, body in data.items():
            network = self.parse_network(name, body, join(path, name))
            if network is not None:
                networks.append(network)
        return networks

    # -- one network ------------------------------------------------------------------------

    def parse_network(self, name: object, value: object, path: str) -> Network | None:
        name_ok = isinstance(name, str) and bool(NETWORK_NAME_RE.fullmatch(name))
        if not name_ok:
            self.fail(path, f"network name {show(name)} must match {NETWORK_NAME_RE.pattern} "
                            f"(it becomes nft chain and file names)")
        data = self.mapping(value, path)
        if data is None:
            return None
        network_type = None
        if self.required(data, "type", path, f"required: one of {', '.join(NETWORK_TYPES)}") is not None:
            network_type = self.get_choice(data, "type", path, NETWORK_TYPES, "network type")
        if network_type is None:
            self.check_keys(data, _ANY_NETWORK_KEYS, path)
            return None
        name = str(name) if name_ok else ""
        self.check_network_keys(data, network_type, path)
        start, suppressed = self.mark(), self.suppressed
        fields: dict[str, Any] = {"name": name, "type": network_type}

        fields["mtu"] = self.get_int(data, "mtu", path, 68, 65535, "MTU")
        subnets, l3 = self.parse_l3(data, path, network_type, show(name))
        fields["subnets"] = tuple(subnets)
        if "dhcp" in data:
            fields["dhcp"] = parse_dhcp(self, data["dhcp"], join(path, "dhcp"), l3)
        if "dns" in data:
            fields["dns"] = parse_dns(self, data["dns"], join(path, "dns"), l3)
        if data.get("masq_out") is not None:
            fields["masq_out"] = self.link_ref(data["masq_out"], join(path, "masq_out"))
            if l3 is not None and not l3:
                self.fail(join(path, "masq_out"), "masquerading needs an address on the network: set cidr and gw_ip")
        fields["forwards"] = parse_forwards(self, data, path, l3)
        fields["policy_profile"] = self.parse_profile_ref(data, path)
        if network_type != "vlan":
            parse_bridge_attributes(self, data, path, fields)
        parse_vlan(self, data, path, network_type, name, fields)
        if network_type == "vxlan":
            parse_vxlan(self, data, path, fields)
        parse_iface(self, data, path, network_type, name, fields)
        if self.failed_since(start) or self.suppressed > suppressed or not name_ok:
            return None
        return Network(**fields)

    def check_network_keys(self, data: dict, network_type: str, path: str) -> None:
        """Unknown keys, and keys of other network types, which are named as such."""
        keys = _KEYS_BY_TYPE[network_type]
        if data.keys() <= keys.allowed:
            return
        for key in data:
            if key in keys.allowed:
                continue
            if isinstance(key, str) and key in _NETWORK_KEYS:
                self.fail(join(path, key), f"key {show(key)} does not apply to a network of type {network_type}")
            else:
                self.unknown_key(path, key, keys)

    def parse_profile_ref(self, data: dict, path: str) -> str | None:
        """The profile a network names: defined in ``policies``, built in, or (last) a file in ``profile_dirs``."""
        value = data.get("policy_profile")
        if value is None:
            return None
        profiles = self.index.profiles
        field_path = join(path, "policy_profile")
        if isinstance(value, str) and value in profiles:
            self.check_shadowed_file(value, field_path)
            return str(value)
        if isinstance(value, str) and value in self.index.bad_profiles:
            self.suppressed += 1  # its definition is already reported
            return None
        dirs = self.profile_dirs
        if dirs is not None and isinstance(value, str) and value not in self.looked_up:
            self.looked_up.add(value)
            found = dirs.find(value)
            if found is not None:
                return value if self.load_profile_file(value, found, field_path) is not None else None
        known = f"known: {', '.join(sorted(profiles))}"
        if dirs is not None and dirs.file_names(value):
            known = f"{known}; {dirs.searched(value)}"
        self.fail(field_path, f"unknown profile {show(value)} ({known})")
        return None

    def check_shadowed_file(self, name: str, path: str) -> None:
        """Warn once when a built-in profile a network uses has a file of its name that is therefore not read."""
        if self.profile_dirs is None or name in self.looked_up or not self.index.profiles[name].builtin:
            return
        self.looked_up.add(name)
        found = self.profile_dirs.find(name)
        if found is not None:
            self.warnings.append(
                f"{path}: {name} is the built-in profile; the profile file {found} is not read (a file cannot "
                f"replace a built-in profile: define it under policies to replace it, or give the file and the "
                f"profile inside it another name)")

    # -- L3 ---------------------------------------------------------------------------------

    def parse_l3(self, data: dict, path: str, network_type: str,
                 network: str) -> tuple[list[Subnet], dict[int, tuple[Net, Addr]] | None]:
        """The network's subnets, and per family (net, gw) for the checks that need them.

        The second value is None when the addressing itself is invalid, so that dependent
        fields are not reported a second time.
        """
        l3: dict[int, tuple[Net, Addr]] | None = {}
        subnets: list[Subnet] = []
        has_cidr = data.get("cidr") is not None or data.get("gw_ip") is not None
        if network_type == "routed" or has_cidr:
            pair = self.parse_subnet(data, path, "cidr", "gw_ip", None)
            if pair is None:
                l3 = None
            else:
                l3[pair[0].version] = pair
        if data.get("cidr6") is not None or data.get("gw_ip6") is not None:
            if l3 is not None and 4 not in l3:
                if l3:
                    self.fail(join(path, "cidr6"), "cidr6 adds IPv6 to an IPv4 cidr, but cidr is already IPv6")
                else:
                    self.fail(join(path, "cidr6"), "cidr6 adds IPv6 to an IPv4 network: set cidr and gw_ip first")
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
                self.index.subnets.append((version, net.first, net.last, join(path, key), net.text, network))
        return subnets, l3

    def parse_subnet(self, data: dict, path: str, cidr_key: str, gw_key: str,
                     version: int | None) -> tuple[Net, Addr] | None:
        cidr_path, gw_path = join(path, cidr_key), join(path, gw_key)
        cidr = self.required(data, cidr_key, path, "required (the network's subnet)")
        gw_text = self.required(data, gw_key, path, "required (the network's address)")
        if cidr is None or gw_text is None:
            return None
        net, problem = parse_cidr(cidr)
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
            reserved = reserved_range(net)
            if reserved:
                self.fail(cidr_path, f"{net.text} {reserved}")
                net = None
        gw = self.ip(gw_text, gw_path)
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

    # -- checks across networks -------------------------------------------------------------

    def check_subnet_overlaps(self) -> None:
        """Sorted by first address, a subnet overlaps an earlier one iff it starts before the furthest end so far."""
        furthest: dict[int, tuple[int, str, str]] = {}  # version -> (last, cidr, network)
        for version, first, last, path, cidr, network in sorted(self.index.subnets):
            reach = furthest.get(version)
            if reach is not None and first <= reach[0]:
                self.fail(path, f"{cidr} overlaps {reach[1]} of network {reach[2]}")
            if reach is None or last > reach[0]:
                furthest[version] = (last, cidr, network)


def parse_topology(data: object, *, path: str = "", profile_dirs: ProfileDirs | None = None) -> Topology:
    """Validate and normalise a topology given as plain data (Ansible vars or a loaded file).

    Raises :class:`ValidationError` carrying every issue found; ``path`` prefixes every
    field path. Dangerous but valid requests end up in ``Topology.warnings``. With
    ``profile_dirs``, profiles that are neither defined in ``policies`` nor built in are read
    from files there (see :func:`parse_topology_with_files`).
    """
    return parse_topology_with_files(data, path=path, profile_dirs=profile_dirs)[0]


def parse_topology_with_files(data: object, *, path: str = "",
                              profile_dirs: ProfileDirs | None = None) -> tuple[Topology, dict[str, str]]:
    """:func:`parse_topology`, and the file each profile read from a file came from (name -> path).

    A network's ``policy_profile`` is, in this order: a profile of ``policies``, a built-in, or
    the first ``<dir>/<name>.toml``, ``.yaml``, ``.yml`` of ``profile_dirs`` (without them, none).
    A ``policies`` entry with ``file`` is a copy of that profile file (the normalised topology
    writes them): with ``profile_dirs`` the file is read again while it exists, else the copy is
    used. Pass both values to :func:`topology_to_dict` to keep where each profile came from.
    """
    NETADDR.require("to validate a topology")
    parser = _Parser(path, profile_dirs)
    topology = parser.topology(data)
    if parser.issues or topology is None:
        raise ValidationError(parser.issues)
    used = {name for name, profile in topology.profiles if not profile.builtin}
    files = {name: file for name, file in sorted(parser.index.profile_files.items()) if name in used}
    return topology, files


def normalise_topology(data: object, *, profile_dirs: ProfileDirs | None = None) -> dict:
    """``topology_to_dict`` of the parsed ``data``, with the files its profiles came from."""
    return topology_to_dict(*parse_topology_with_files(data, profile_dirs=profile_dirs))


# -- files ------------------------------------------------------------------------------------


def load_topology_text(text: str, fmt: str, *, source: str = "") -> dict:
    """Parse topology text in ``fmt`` ("toml", "yaml" or "json") into plain data.

    A syntax error becomes one :class:`ValidationError` issue naming ``source`` and the line.
    The data is not validated: pass it to :func:`parse_topology`.
    """
    data = parse_document(text, fmt, source=source, what="topology")
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{kind(data)}, not a mapping"
        raise ValidationError(Issue(source or f"<{fmt} text>", f"the topology document is {what}"))
    return data


def load_topology_file(path: str) -> dict:
    """Read a topology file; the format comes from the suffix (.toml, .yaml, .yml, .json)."""
    suffix = os.path.splitext(path)[1].lower()
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        raise ValidationError(Issue(path, f"unknown topology file type {show(suffix or '(none)')} "
                                          f"(use .toml, .yaml, .yml or .json)"))
    return load_topology_text(read_document_file(path, "topology"), fmt, source=path)


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
        result["adopt_port_addresses"] = network.adopt_port_addresses
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


def _profile_entry(profile: Profile, file: str | None) -> dict:
    entry = profile_to_dict(profile)
    return {"file": file, **entry} if file is not None else entry


def topology_to_dict(topology: Topology, profile_files: Mapping[str, str] | None = None) -> dict:
    """The normalised topology as JSON-able data in the input schema, every default filled in.

    ``parse_topology(topology_to_dict(t)) == t``. Built-in profiles are left out; user
    profiles (including ones that replace a built-in, and those read from files) are included.
    A profile named in ``profile_files`` gets ``file``, the path it was read from, first.
    """
    files = profile_files or {}
    management = topology.management
    return {
        "version": topology.version,
        "interfaces": dict(topology.interfaces),
        "management": {
            "allow_from": list(management.allow_from),
            "ports": _ports_out(management.ports),
            "enforce": management.enforce,
        },
        "policies": {name: _profile_entry(profile, files.get(name))
                     for name, profile in topology.profiles if not profile.builtin},
        "networks": {network.name: _network_to_dict(network) for network in topology.networks},
    }
