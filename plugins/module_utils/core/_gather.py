# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The live owned state of a host, read back as a topology (``state: gathered``).

L2/L3 facts come from the kernel (owned links, their addresses and FDB peers); what the
kernel cannot show (profiles, forwards, DHCP and DNS settings, interface keys) comes from
the topology recorded at the last apply. Networks recorded but absent from the kernel,
and owned links of networks nobody recorded, are reported as drift.
"""

from __future__ import annotations

import copy

from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import HostState, LinkState

# Recorded fields the kernel shows and that are therefore overwritten by live facts.
_LIVE_FIELDS = ("iface", "cidr", "gw_ip", "cidr6", "gw_ip6", "mtu", "stp", "vlan_filtering", "vni", "vxlan_iface",
                "peers", "local", "dev", "dstport", "learning", "vlan", "parent", "bridge")


def _split_address(address: str) -> tuple[str, str, int]:
    ip, prefix = address.rsplit("/", 1)
    return ip, prefix, 6 if ":" in ip else 4


def _network_address(address: str) -> str:
    # netaddr is a dependency of the collection already; import here keeps this module light to import.
    import netaddr

    return str(netaddr.IPNetwork(address).cidr)


def gather_topology(observed: HostState, recorded: dict | None) -> tuple[dict, list[str]]:
    """(topology, drift messages) for the owned part of ``observed``."""
    recorded = copy.deepcopy(recorded) if recorded else {}
    recorded_networks = recorded.get("networks") or {}
    links_by_owner: dict[str, list[LinkState]] = {}
    for link in observed.links:
        if link.owner:
            links_by_owner.setdefault(link.owner, []).append(link)
    owned_addresses = {}
    for address in observed.addresses:
        # An adopted address is the port's (adopt_port_addresses), not the network's cidr/gw_ip.
        if address.owned and address.adopted_from is None:
            owned_addresses.setdefault(address.iface, []).append(address.address)
    peers_by_iface: dict[str, list[str]] = {}
    for entry in observed.fdb:
        if entry.owned:
            peers_by_iface.setdefault(entry.iface, []).append(entry.dst)

    drift: list[str] = []
    networks: dict[str, dict] = {}
    for name in sorted(links_by_owner):
        links = {link.kind: link for link in links_by_owner[name]}
        network = {key: value for key, value in recorded_networks.get(name, {}).items() if key not in _LIVE_FIELDS}
        if name not in recorded_networks:
            drift.append(f"networks.{name}: owned links exist but no apply recorded this network")
        bridge, vxlan, vlan = links.get("bridge"), links.get("vxlan"), links.get("vlan")
        main = bridge or vlan
        if main is not None:
            network["iface"] = main.name
            if main.attr("mtu") is not None and recorded_networks.get(name, {}).get("mtu") is not None:
                network["mtu"] = main.attr("mtu")
        if bridge is not None:
            network["stp"] = bool(bridge.attr("stp"))
            network["vlan_filtering"] = bool(bridge.attr("vlan_filtering"))
        if vlan is not None:
            network["vlan"] = vlan.attr("vlan_id")
            network["parent"] = vlan.attr("parent")
        if vxlan is not None:
            network.update({
                "vni": vxlan.attr("vni"), "vxlan_iface": vxlan.name, "dstport": vxlan.attr("dstport"),
                "learning": bool(vxlan.attr("learning")), "peers": sorted(peers_by_iface.get(vxlan.name, [])),
            })
            for key in ("local", "dev"):
                if vxlan.attr(key) is not None:
                    network[key] = vxlan.attr(key)
        network.setdefault("type", "vxlan" if vxlan else "bridge" if bridge else "vlan")
        addresses = sorted((_split_address(address)[2], address) for address in owned_addresses.get(network.get("iface", ""), []))
        for family, address in addresses:  # IPv4 first: cidr is IPv4 when cidr6 is used
            ip = _split_address(address)[0]
            suffix = "6" if family == 6 and "cidr" in network else ""
            network[f"cidr{suffix}"] = _network_address(address)
            network[f"gw_ip{suffix}"] = ip
        networks[name] = network
    for name in sorted(set(recorded_networks) - set(networks)):
        drift.append(f"networks.{name}: recorded as applied but none of its links exist")

    topology = {key: value for key, value in recorded.items() if key != "networks"}
    topology.setdefault("version", 1)
    topology["networks"] = networks
    return topology, drift
