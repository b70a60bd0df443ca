# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""A network's links: its bridge (``iface``, ports, VLAN filtering), VLAN and VXLAN devices.

Every link a network creates is claimed in the index (``created``) under the path of the field
that names it, every existing link it refers to is listed (``foreign``); :func:`check_links`
compares the two once every network is read. Names a network does not give are derived from
it (:func:`default_bridge_name` and friends), short enough for the kernel's 15 characters.
"""

from __future__ import annotations

import hashlib

from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import join, show
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology_reader import Addr, TopologyReader

IFNAMSIZ = 15
VXLAN_DSTPORT = 4789


def _short_hash(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]


def default_bridge_name(network: str) -> str:
    """``gw-<name>``, or ``gw-`` + 7 characters + ``-`` + 4 hex of sha1(name) when that is too long."""
    name = f"gw-{network}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"gw-{network[:7]}-{_short_hash(network)}"


def default_vlan_name(parent: str, vid: int, network: str) -> str:
    """``<parent>.<vid>``, or ``vl<vid>-`` + 4 hex of sha1(network) when that is too long."""
    name = f"{parent}.{vid}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"vl{vid}-{_short_hash(network)}"


def default_vxlan_name(vni: int) -> str:
    return f"vx{vni}"


def _create(reader: TopologyReader, link: str, path: str) -> None:
    """Claim ``link`` as created by the field at ``path``; a second claim is reported."""
    created = reader.index.created
    other = created.get(link)
    if other is not None:
        reader.fail(path, f"link {show(link)} is also created by {other}")
    else:
        created[link] = path


def parse_iface(reader: TopologyReader, data: dict, path: str, kind: str, name: str, fields: dict) -> None:
    """The network's own link: a bridge, or for a vlan network the VLAN device."""
    key = "iface"
    given = data.get("iface")
    if kind == "vxlan" and data.get("bridge") is not None:
        if given is not None:
            reader.fail(join(path, "bridge"), "give either iface or bridge (the same bridge), not both")
            return
        key, given = "bridge", data["bridge"]
    iface_path = join(path, key)
    default = None
    if not name:
        pass  # an invalid network name is already reported; nothing can be derived from it
    elif kind != "vlan":
        default = default_bridge_name(name)
    elif fields.get("parent") is not None and fields.get("vlan") is not None:
        default = default_vlan_name(fields["parent"], fields["vlan"], name)
    iface = default if given is None else reader.iface_name(given, iface_path)
    if iface is None:
        return  # already reported
    # "Generated" is a property of the name, so that writing it out and reading it back
    # (topology_to_dict) gives the same model.
    fields["iface"] = iface
    fields["iface_generated"] = iface == default
    _create(reader, iface, iface_path)


def parse_bridge_attributes(reader: TopologyReader, data: dict, path: str, fields: dict) -> None:
    start = reader.mark()
    fields["stp"] = reader.get_bool(data, "stp", path, False)
    fields["vlan_filtering"] = reader.get_bool(data, "vlan_filtering", path, False)
    vids = reader.get_list(data, "vids", path)
    if vids and not fields["vlan_filtering"]:
        reader.fail(join(path, "vids"), "VLAN ids on the bridge need vlan_filtering: true")
    fields["vids"] = reader.range_list(vids, join(path, "vids"), 1, 4094, "VLAN id")
    enslaved = reader.index.enslaved
    ports: dict[str, str] = {}
    for index, item in enumerate(reader.get_list(data, "ports", path)):
        item_path = f"{path}.ports[{index}]"
        link = reader.link_ref(item, item_path)
        if link is None:
            continue
        if link in ports:
            reader.fail(item_path, f"{link} is already listed at {ports[link]}")
            continue
        if link in enslaved:
            reader.fail(item_path, f"{link} is already a port of the bridge at {enslaved[link]}")
            continue
        ports[link] = item_path
        enslaved[link] = item_path
    fields["ports"] = tuple(sorted(ports))
    adopt = reader.get_bool(data, "adopt_port_addresses", path, False)
    fields["adopt_port_addresses"] = adopt
    if adopt and len(ports) != 1 and not reader.failed_since(start):
        listed = f"{len(ports)} ({', '.join(sorted(ports))})" if ports else "none"
        reader.fail(join(path, "adopt_port_addresses"),
                    f"true needs exactly one link under ports (the one whose addresses and routes move to the "
                    f"bridge), found {listed}")


def parse_vlan(reader: TopologyReader, data: dict, path: str, kind: str, name: str, fields: dict) -> None:
    """``vlan`` and ``parent``: a vlan network's device, or a VLAN sub-interface enslaved to a bridge."""
    vid = reader.get_int(data, "vlan", path, 1, 4094, "VLAN id")
    if data.get("vlan") is None:
        if kind == "vlan":
            reader.fail(join(path, "vlan"), "required for a vlan network (the VLAN id, 1-4094)")
        if data.get("parent") is not None:
            reader.fail(join(path, "parent"), "a parent needs a vlan id (set vlan)")
        if kind != "vlan" and data.get("vlan_iface") is not None:
            reader.fail(join(path, "vlan_iface"), "a VLAN sub-interface needs a vlan id (set vlan)")
        return
    interfaces = reader.index.interfaces
    parent_path = join(path, "parent")
    if data.get("parent") is not None:
        parent = reader.link_ref(data["parent"], parent_path)
    elif "uplink" in interfaces:
        parent = interfaces["uplink"]
    else:
        if "uplink" in reader.index.bad_interface_keys:
            reader.suppressed += 1
        else:
            reader.fail(parent_path, f"required with vlan {show(data['vlan'])}: the link that carries the VLAN "
                                     f"(no 'uplink' in interfaces to default to)")
        parent = None
    if vid is None or parent is None:
        return
    vlan_links = reader.index.vlan_links
    other = vlan_links.get((parent, vid))
    if other is not None:
        # Reported once here; without vlan/parent no clashing device name is derived either.
        reader.fail(join(path, "vlan"), f"VLAN {vid} on {parent} is already used by {other}")
        return
    vlan_links[parent, vid] = join(path, "vlan")
    fields["vlan"], fields["parent"] = vid, parent
    if kind != "vlan":  # a sub-interface enslaved to the network's bridge
        vlan_path = join(path, "vlan_iface")
        if data.get("vlan_iface") is not None:
            vlan_iface = reader.iface_name(data["vlan_iface"], vlan_path)
        elif name:
            vlan_iface = default_vlan_name(parent, vid, name)
        else:
            return
        if vlan_iface is not None:
            fields["vlan_iface"] = vlan_iface
            _create(reader, vlan_iface, vlan_path)


def parse_vxlan(reader: TopologyReader, data: dict, path: str, fields: dict) -> None:
    """The VXLAN device: VNI, underlay (local, peers, dev, dstport) and learning."""
    vni = None
    if reader.required(data, "vni", path, "required for a vxlan network (1-16777215)") is not None:
        vni = reader.get_int(data, "vni", path, 1, 16777215, "VNI")
    if vni is not None:
        vnis = reader.index.vnis
        other = vnis.get(vni)
        if other is not None:
            reader.fail(join(path, "vni"), f"VNI {vni} is already used by {other}")
            vni = None  # so that no clashing vx<vni> name is derived as well
        else:
            vnis[vni] = join(path, "vni")
            fields["vni"] = vni
    local = None
    if data.get("local") is not None:
        local = reader.unicast(data["local"], join(path, "local"))
        fields["local"] = None if local is None else local.text
    peers: dict[tuple[int, int], tuple[Addr, str]] = {}
    for index, item in enumerate(reader.get_list(data, "peers", path)):
        item_path = f"{path}.peers[{index}]"
        peer = reader.unicast(item, item_path)
        if peer is None:
            continue
        key = (peer.version, peer.value)
        if key in peers:
            reader.fail(item_path, f"peer {peer.text} is already listed at {peers[key][1]}")
            continue
        if local is not None and peer.version != local.version:
            reader.fail(item_path, f"peer {peer.text} is IPv{peer.version}, local {local.text} is IPv{local.version}")
            continue
        if local is not None and peer.value == local.value:
            reader.fail(item_path, f"peer {peer.text} is the local address itself")
            continue
        if peers and next(iter(peers))[0] != peer.version:
            first_peer, first_path = next(iter(peers.values()))
            reader.fail(item_path, f"peer {peer.text} is IPv{peer.version}, peer {first_peer.text} at {first_path} "
                                   f"is IPv{first_peer.version}; one VXLAN device uses one underlay family")
            continue
        peers[key] = (peer, item_path)
    fields["peers"] = tuple(peers[key][0].text for key in sorted(peers))
    if data.get("dev") is not None:
        fields["dev"] = reader.link_ref(data["dev"], join(path, "dev"))
    dstport = reader.get_int(data, "dstport", path, 1, 65535, "port")
    fields["dstport"] = VXLAN_DSTPORT if dstport is None else dstport
    fields["learning"] = reader.get_bool(data, "learning", path, False)
    vxlan_path = join(path, "vxlan_iface")
    if data.get("vxlan_iface") is not None:
        vxlan_iface = reader.iface_name(data["vxlan_iface"], vxlan_path)
    elif vni is not None:
        vxlan_iface = default_vxlan_name(vni)
    else:
        return
    if vxlan_iface is not None:
        fields["vxlan_iface"] = vxlan_iface
        _create(reader, vxlan_iface, vxlan_path)


# -- across networks --------------------------------------------------------------------------

def check_links(reader: TopologyReader) -> None:
    """References to existing links must not name a link the topology creates itself."""
    created = reader.index.created
    for name, path in reader.index.foreign:
        creator = created.get(name)
        if creator is not None:
            reader.fail(path, f"{show(name)} is a link this topology creates ({creator}); "
                              f"it must name an existing link")
