# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The desired state of a topology, and the planner: observed and desired host state in, operations out.

The state types are in ``core._host_state``; the host wing observes the kernel into one and
executes the operations. Everything here is pure and deterministic. ``docs/plan.md`` describes
every operation kind and the ordering rules with their reasons.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ConflictError, RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    ACCEPT_RA_UNLESS_FORWARDING,
    ACCEPT_RA_WHILE_FORWARDING,
    DEFAULT_PVID,
    IMMUTABLE_ATTRS,
    LINK_REFERENCES,
    LOWER_LINK_REFERENCES,
    OPERATION_KINDS,
    RULESET_TARGET,
    SYSCTL_IPV4_FORWARDING,
    SYSCTL_IPV6_FORWARDING,
    UNSET_WHEN_ABSENT,
    ZERO_MAC,
    Address,
    Adoption,
    AttrValue,
    BridgeVlan,
    DetailValue,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
    Route,
    accept_ra_key,
    format_detail,
    is_accept_ra_key,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    NFT_FAMILY,
    NFT_TABLE,
    OWNER_ALIAS_PREFIX,
    Network,
    PortRange,
    Topology,
)

# create_link and modify_link share a phase: together they follow the dependency order, so a
# parent's MTU is raised before a child that needs it is created.
_PHASE = {kind: rank for rank, kind in enumerate(OPERATION_KINDS)}
_PHASE["modify_link"] = _PHASE["create_link"]


def _needs(network: Network, value: Any, field_name: str) -> Any:
    if value is None:
        raise RenderError(f"networks.{network.name}: type {network.type} needs {field_name}, which is not set")
    return value


def _bridge_vlans(ports: Iterable[str], vids: Iterable[PortRange]) -> List[BridgeVlan]:
    """Each managed port keeps VLAN 1 as untagged PVID (the kernel's default, so untagged frames
    keep flowing) and carries every listed VLAN tagged."""
    tagged: List[PortRange] = []
    for vid_range in vids:
        first = max(vid_range.first, DEFAULT_PVID + 1)
        if first <= vid_range.last:
            tagged.append(PortRange(first, vid_range.last))
    entries: List[BridgeVlan] = []
    for port in ports:
        entries.append(BridgeVlan(port, PortRange(DEFAULT_PVID, DEFAULT_PVID), pvid=True, untagged=True))
        entries.extend(BridgeVlan(port, vid_range) for vid_range in tagged)
    return entries


def uplinks(topology: Topology, created: Iterable[str] = ()) -> List[str]:
    """The existing links the topology names as its way out: ``interfaces.uplink`` and every
    network's ``masq_out``, without the links in ``created`` (the topology's own), sorted."""
    names = {network.masq_out for network in topology.networks if network.masq_out is not None}
    uplink = topology.interface("uplink")
    if uplink is not None:
        names.add(uplink)
    return sorted(names - set(created))


def _forwarding_sysctls(topology: Topology, created: Iterable[str] = ()) -> Dict[str, str]:
    """Forwarding per family when a network needs it: masquerade, a port forward, or routing
    between two or more L3 networks of that family.

    With IPv6 forwarding on, the kernel ignores router advertisements on an interface whose
    accept_ra is 1, and an uplink configured by SLAAC loses its default route: each uplink gets
    accept_ra 2, which the planner sets only over 1 (0 is the operator's "no RAs").
    """
    sysctls: Dict[str, str] = {}
    for family, key in ((4, SYSCTL_IPV4_FORWARDING), (6, SYSCTL_IPV6_FORWARDING)):
        l3_networks = [network for network in topology.networks if network.subnet(family) is not None]
        needs = len(l3_networks) > 1 or any(
            network.masq_out is not None or any(forward.family == family for forward in network.forwards)
            for network in l3_networks
        )
        if needs:
            sysctls[key] = "1"
    if SYSCTL_IPV6_FORWARDING in sysctls:
        sysctls.update((accept_ra_key(name), ACCEPT_RA_WHILE_FORWARDING) for name in uplinks(topology, created))
    return sysctls


def restoring_sysctls(desired: HostState, previous: Mapping[str, str]) -> HostState:
    """``desired`` plus the value each interface's accept_ra had before the collection changed it
    (``previous``, the records' ``sysctl_previous``) where ``desired`` no longer sets it.

    accept_ra 2 belongs to an uplink of a topology that forwards IPv6; an interface that is no
    longer one (``state: absent``, another uplink, no IPv6 forwarding) gets its own value back.
    Forwarding itself is never unset (docs/plan.md 3.1).
    """
    wanted = dict(desired.sysctls)
    restored = {key: value for key, value in previous.items() if is_accept_ra_key(key) and key not in wanted}
    if not restored:
        return desired
    return replace(desired, sysctls={**wanted, **restored})


def desired_state(topology: Topology, *, ruleset: str, dnsmasq_files: Mapping[str, str]) -> HostState:
    """The host state a topology asks for, with every object marked owned."""
    links: List[LinkState] = []
    bridge_vlans: List[BridgeVlan] = []
    addresses: List[Address] = []
    fdb: List[FdbEntry] = []
    enslavements: List[Enslavement] = []
    adoptions: List[Adoption] = []
    for network in topology.networks:
        common: Dict[str, AttrValue] = {"ifalias": f"{OWNER_ALIAS_PREFIX}{network.name}", "state": "up"}
        if network.mtu is not None:
            common["mtu"] = network.mtu
        if network.type == "vlan":
            links.append(
                LinkState(
                    network.iface,
                    "vlan",
                    network.name,
                    {
                        **common,
                        "parent": _needs(network, network.parent, "parent"),
                        "vlan_id": _needs(network, network.vlan, "vlan"),
                    },
                )
            )
        else:
            links.append(
                LinkState(
                    network.iface,
                    "bridge",
                    network.name,
                    {**common, "stp": network.stp, "vlan_filtering": network.vlan_filtering},
                )
            )
            managed_ports = [network.iface]
            if network.vlan is not None:
                vlan_iface = _needs(network, network.vlan_iface, "vlan_iface")
                links.append(
                    LinkState(
                        vlan_iface,
                        "vlan",
                        network.name,
                        {
                            **common,
                            "master": network.iface,
                            "parent": _needs(network, network.parent, "parent"),
                            "vlan_id": network.vlan,
                        },
                    )
                )
                managed_ports.append(vlan_iface)
            if network.type == "vxlan":
                vxlan_iface = _needs(network, network.vxlan_iface, "vxlan_iface")
                vxlan_attrs: Dict[str, AttrValue] = {
                    **common,
                    "master": network.iface,
                    "vni": _needs(network, network.vni, "vni"),
                    "dstport": network.dstport,
                    "learning": network.learning,
                }
                if network.local is not None:
                    vxlan_attrs["local"] = network.local
                if network.dev is not None:
                    vxlan_attrs["dev"] = network.dev
                links.append(LinkState(vxlan_iface, "vxlan", network.name, vxlan_attrs))
                fdb.extend(FdbEntry(vxlan_iface, peer, ZERO_MAC, owned=True) for peer in network.peers)
                managed_ports.append(vxlan_iface)
            enslavements.extend(Enslavement(port, network.iface, owned=True) for port in network.ports)
            if network.adopt_port_addresses:
                adoptions.extend(Adoption(port, network.iface) for port in network.ports)
            managed_ports.extend(network.ports)
            if network.vlan_filtering:
                bridge_vlans.extend(_bridge_vlans(managed_ports, network.vids))
        addresses.extend(Address(network.iface, subnet.gw_interface_address, owned=True) for subnet in network.subnets)

    owners: Dict[str, str] = {}
    for link in links:
        if link.name in owners:
            raise RenderError(
                f"networks.{link.owner}: link {link.name} is also created by network {owners[link.name]}"
            )
        owners[link.name] = link.owner or ""
    for enslavement in enslavements:
        if enslavement.port in owners:
            raise RenderError(
                f"networks.{owners[enslavement.master]}.ports: {enslavement.port} is a link created by network "
                f"{owners[enslavement.port]}, not an existing link"
            )
    ports_seen: Dict[str, str] = {}
    for enslavement in enslavements:
        if enslavement.port in ports_seen:
            raise RenderError(
                f"networks.{owners[enslavement.master]}.ports: {enslavement.port} is already a port of "
                f"{ports_seen[enslavement.port]}"
            )
        ports_seen[enslavement.port] = enslavement.master
    return HostState(
        links=tuple(links),
        bridge_vlans=tuple(bridge_vlans),
        addresses=tuple(addresses),
        fdb=tuple(fdb),
        enslavements=tuple(enslavements),
        sysctls=_forwarding_sysctls(topology, owners),
        ruleset=ruleset,
        dnsmasq_files=dnsmasq_files,
        adoptions=tuple(adoptions),
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _content_details(text: str) -> Dict[str, DetailValue]:
    return {"content": text, "sha256": _digest(text), "lines": text.count("\n")}


def _ranges(vids: Mapping[int, Tuple[bool, bool]]) -> List[Tuple[PortRange, Tuple[bool, bool]]]:
    """Consecutive VLAN ids with equal flags as ranges; a PVID always stands alone."""
    ranges: List[Tuple[PortRange, Tuple[bool, bool]]] = []
    for vid in sorted(vids):
        flags = vids[vid]
        if ranges:
            last_range, last_flags = ranges[-1]
            if last_flags == flags and not flags[0] and last_range.last + 1 == vid:
                ranges[-1] = (PortRange(last_range.first, vid), flags)
                continue
        ranges.append((PortRange(vid, vid), flags))
    return ranges


def _expand(entries: Iterable[BridgeVlan]) -> Dict[int, Tuple[bool, bool]]:
    return {vid: entry.flags for entry in entries for vid in range(entry.vids.first, entry.vids.last + 1)}


def _depths(links: Mapping[str, LinkState]) -> Dict[str, int]:
    """Dependency depth of each link: 0 without a parent, device or master among ``links``."""
    depths: Dict[str, int] = {}

    def depth(name: str, visiting: frozenset) -> int:
        if name in depths:
            return depths[name]
        lowers = [
            str(link_name)
            for link_name in (links[name].attr(key) for key in LINK_REFERENCES)
            if link_name in links and link_name not in visiting
        ]
        value = 1 + max(depth(lower, visiting | {name}) for lower in lowers) if lowers else 0
        depths[name] = value
        return value

    for link_name in links:
        depth(link_name, frozenset())
    return depths


def _recreate_reason(observed: LinkState, desired: LinkState) -> Optional[str]:
    if observed.kind != desired.kind:
        return f"type changes from {observed.kind} to {desired.kind}"
    for key in IMMUTABLE_ATTRS[desired.kind]:
        if observed.attr(key) != desired.attr(key):
            return f"{key} changes from {format_detail(observed.attr(key))} to {format_detail(desired.attr(key))}"
    return None


def _attr_changes(current: Mapping[str, AttrValue], desired: LinkState) -> Dict[str, DetailValue]:
    """Attributes to modify in place; immutable ones are equal here (else the link is recreated)."""
    changes: Dict[str, DetailValue] = {}
    for key, value in desired.attrs:
        if current.get(key) != value:
            changes[key] = value
    for key in UNSET_WHEN_ABSENT:
        if desired.attr(key) is None and current.get(key) is not None:
            changes[key] = None
    return changes


class _Planner:
    """One planning run: indexes both states, then emits operations phase by phase."""

    def __init__(self, desired: HostState, observed: HostState) -> None:
        self.desired = desired
        self.observed = observed
        self.desired_links = {link.name: link for link in desired.links}
        self.observed_links = {link.name: link for link in observed.links}
        self.desired_ports = {item.port: item for item in desired.enslavements}
        self.observed_ports = {item.port: item for item in observed.enslavements}
        self.operations: List[Tuple[tuple, Operation]] = []
        self.deleted: Dict[str, str] = {}  # owned observed link -> why it is deleted
        self.conflicts: List[str] = []
        self.adoptions = {item.port: item.bridge for item in desired.adoptions}
        self.take_port_macs()

    def take_port_macs(self) -> None:
        """An adopting bridge gets its port's MAC address, so that neighbours' ARP and ND caches stay right."""
        for port, bridge in self.adoptions.items():
            port_link, wanted = self.observed_links.get(port), self.desired_links.get(bridge)
            mac = port_link.attr("mac") if port_link is not None else None
            if wanted is not None and mac is not None and wanted.attr("mac") != mac:
                self.desired_links[bridge] = replace(wanted, attrs={**dict(wanted.attrs), "mac": mac})

    def emit(self, kind: str, target: str, details: Mapping[str, DetailValue], depth: int = 0) -> None:
        operation = Operation(kind, target, details)
        self.operations.append(((_PHASE[kind], depth, target, kind), operation))

    def run(self) -> List[Operation]:
        self.check_conflicts()
        self.plan_deletions()
        self.check_cascades()
        self.plan_adoptions()
        if self.conflicts:
            raise ConflictError(self.conflicts)
        self.plan_links()
        self.plan_masters()
        self.plan_bridge_vlans()
        self.plan_keyed("address", self.desired.addresses, self.observed.addresses)
        self.plan_keyed("fdb", self.desired.fdb, self.observed.fdb)
        self.plan_sysctls()
        self.plan_files()
        self.plan_ruleset()
        return [operation for _key, operation in sorted(self.operations, key=lambda item: item[0])]

    # conflicts ----------------------------------------------------------------------------------

    def check_conflicts(self) -> None:
        for name, link in sorted(self.desired_links.items()):
            found = self.observed_links.get(name)
            if found is not None and not found.owned:
                self.conflicts.append(
                    f"link {name} (network {link.owner}) already exists and is not owned by ghostwarden "
                    f"(its ifalias is {format_detail(found.attr('ifalias'))}, not {format_detail(link.attr('ifalias'))}); "
                    "rename it or remove it, or choose another name in the topology"
                )
        for port, wanted in sorted(self.desired_ports.items()):
            bridge = self.desired_links.get(wanted.master)
            wanted_by = f"for {wanted.master} of network {bridge.owner if bridge is not None else None}"
            found_link = self.observed_links.get(port)
            if found_link is not None and found_link.owned:
                self.conflicts.append(
                    f"port {port} ({wanted_by}) is a link ghostwarden created for network {found_link.owner}, "
                    "not an existing link to enslave"
                )
                continue
            current = self.observed_ports.get(port)
            if current is None or current.master == wanted.master or current.owned:
                continue
            master = self.observed_links.get(current.master)
            if master is None or not master.owned:
                self.conflicts.append(
                    f"port {port} ({wanted_by}) is enslaved to {current.master}, which ghostwarden does "
                    "not own; release it from there first or remove it from the network's ports"
                )

    # links --------------------------------------------------------------------------------------

    def plan_deletions(self) -> None:
        for name, link in sorted(self.observed_links.items()):
            if not link.owned:
                continue
            wanted = self.desired_links.get(name)
            reason = "not in the topology" if wanted is None else _recreate_reason(link, wanted)
            if reason is not None:
                self.deleted[name] = reason
        # The kernel removes a vlan or vxlan with its lower link: delete such owned links
        # explicitly and first, so that the order is ours and they are created again if wanted.
        grown = True
        while grown:
            grown = False
            for name, link in sorted(self.observed_links.items()):
                if name in self.deleted or not link.owned:
                    continue
                lowers = sorted(str(link.attr(key)) for key in LOWER_LINK_REFERENCES if link.attr(key) in self.deleted)
                if lowers:
                    self.deleted[name] = f"its lower link {lowers[0]} is deleted"
                    grown = True
        depths = _depths(self.observed_links)
        for name, reason in self.deleted.items():
            link = self.observed_links[name]
            self.emit("delete_link", f"link:{name}", {"reason": reason, "type": link.kind}, -depths[name])

    def check_cascades(self) -> None:
        for name, link in sorted(self.observed_links.items()):
            if link.owned:
                continue
            for key in LOWER_LINK_REFERENCES:
                lower = link.attr(key)
                if lower in self.deleted:
                    self.conflicts.append(
                        f"link {name} is not owned by ghostwarden but depends on {lower}, which has to be deleted "
                        f"({self.deleted[str(lower)]}); the kernel would delete {name} with it"
                    )

    def remaining_master(self, port: str) -> Optional[str]:
        """The master of ``port`` once the deletions ran (deleting a bridge releases its ports)."""
        link = self.observed_links.get(port)
        if link is not None and link.owned:
            master = None if port in self.deleted else link.attr("master")
        else:
            enslavement = self.observed_ports.get(port)
            master = enslavement.master if enslavement is not None else None
        return None if master in self.deleted else (str(master) if master is not None else None)

    def plan_links(self) -> None:
        depths = _depths(self.desired_links)
        for name, wanted in sorted(self.desired_links.items()):
            current = self.observed_links.get(name)
            target = f"link:{name}"
            if current is None or name in self.deleted:
                self.emit("create_link", target, {"type": wanted.kind, **dict(wanted.attrs)}, depths[name])
                continue
            attrs = dict(current.attrs)
            attrs.pop("master", None)
            master = self.remaining_master(name)
            if master is not None:
                attrs["master"] = master
            changes = _attr_changes(attrs, wanted)
            if changes:
                self.emit("modify_link", target, changes, depths[name])

    def plan_masters(self) -> None:
        for port, current in sorted(self.observed_ports.items()):
            if current.owned and port not in self.desired_ports and current.master not in self.deleted:
                self.emit("release_master", f"port:{port}", {"master": current.master})
        for port, wanted in sorted(self.desired_ports.items()):
            if self.remaining_master(port) != wanted.master:
                self.emit("set_master", f"port:{port}", {"master": wanted.master})

    def desired_master(self, port: str) -> Optional[str]:
        link = self.desired_links.get(port)
        if link is not None:
            master = link.attr("master")
            return str(master) if master is not None else None
        enslavement = self.desired_ports.get(port)
        return enslavement.master if enslavement is not None else None

    def plan_bridge_vlans(self) -> None:
        wanted_by_port: Dict[str, List[BridgeVlan]] = {}
        for entry in self.desired.bridge_vlans:
            wanted_by_port.setdefault(entry.port, []).append(entry)
        found_by_port: Dict[str, List[BridgeVlan]] = {}
        for entry in self.observed.bridge_vlans:
            found_by_port.setdefault(entry.port, []).append(entry)
        for port, entries in sorted(wanted_by_port.items()):
            link = self.desired_links.get(port)
            is_self = link is not None and link.kind == "bridge"
            if is_self:
                in_place = port not in self.deleted and port in self.observed_links
                master = port
            else:
                master = self.desired_master(port) or ""
                # A port that changes bridge loses its VLANs in the kernel; it gets them anew.
                in_place = port not in self.deleted and self.remaining_master(port) == master
            wanted = _expand(entries)
            found = _expand(found_by_port.get(port, [])) if in_place else {}
            to_add = {vid: flags for vid, flags in wanted.items() if found.get(vid) != flags}
            # Removal ignores flags, so adjacent VLANs go in one range whatever their flags.
            to_remove = {vid: (False, False) for vid in found if vid not in wanted}
            for vids, _flags in _ranges(to_remove):
                self.emit(
                    "remove_bridge_vlan",
                    f"bridge_vlan:{port}:{vids}",
                    {"port": port, "self": is_self, "vid_first": vids.first, "vid_last": vids.last},
                )
            for vids, (pvid, untagged) in _ranges(to_add):
                self.emit(
                    "add_bridge_vlan",
                    f"bridge_vlan:{port}:{vids}",
                    {
                        "bridge": master,
                        "port": port,
                        "pvid": pvid,
                        "self": is_self,
                        "untagged": untagged,
                        "vid_first": vids.first,
                        "vid_last": vids.last,
                    },
                )

    # adoptions: a port's addresses and routes on its bridge (docs/plan.md 3.5) --------------------

    def plan_adoptions(self) -> None:
        """Move the addresses and routes of adopting ports to their bridges, and back when that ends.

        Forward: ``adopt_address`` (the bridge gets each address, before the port is enslaved),
        ``adopt_route`` (each route replaced by the same route through the bridge, once the port is
        enslaved), ``drop_port_address`` (the port's copy goes last). Back: ``restore_address``,
        ``copy_neighbours``, ``restore_route``, then the bridge's copies go (``remove_address``, or
        with the bridge). The phases of these kinds give that order (OPERATION_KINDS).
        """
        observed_addresses = {item.key: item for item in self.observed.addresses}
        observed_routes = {item.key: item for item in self.observed.routes}
        topology_addresses = {item.key for item in self.desired.addresses if item.adopted_from is None}
        ended: Dict[Tuple[str, str], List[Union[Address, Route]]] = {}
        for item in [*self.observed.addresses, *self.observed.routes]:
            port = item.adopted_from
            bridge = item.iface if isinstance(item, Address) else item.dev
            if port is not None and self.adoptions.get(port) != bridge:
                ended.setdefault((port, bridge), []).append(item)
        for (port, bridge), items in sorted(ended.items()):
            self.plan_giving_back(port, bridge, items, observed_addresses)
        for port, bridge in sorted(self.adoptions.items()):
            self.plan_adopting(port, bridge, observed_addresses, observed_routes, topology_addresses)

    def plan_giving_back(self, port: str, bridge: str, items: List[Union[Address, Route]],
                         observed_addresses: Mapping[Tuple[str, str], Address]) -> None:
        port_there = port in self.observed_links and port not in self.deleted
        bridge_stays = bridge not in self.deleted
        for item in sorted(item for item in items if isinstance(item, Address)):
            if port_there and (port, item.address) not in observed_addresses:
                self.emit("restore_address", f"address:{port}:{item.address}",
                          {"iface": port, "address": item.address, "bridge": bridge})
            if bridge_stays:
                self.emit("remove_address", f"address:{bridge}:{item.address}",
                          {"iface": bridge, "address": item.address})
        routes = sorted(item for item in items if isinstance(item, Route))
        if not port_there:
            return  # the addresses and routes go with the bridge (or stay on it, if it stays)
        enslaved = self.observed_ports.get(port)
        if routes and bridge in self.observed_links and enslaved is not None and enslaved.master == bridge:
            # While the port is still enslaved its own ARP/ND replies go to the bridge: it starts from
            # the bridge's neighbour entries (stale, so the kernel confirms them once the port is free).
            self.emit("copy_neighbours", f"neighbours:{port}", {"iface": port, "bridge": bridge})
        for route in routes:
            # Device routes first: a gateway route needs its gateway reachable through the device.
            self.emit("restore_route", _route_target(port, route), {"dev": port, "bridge": bridge, **route.spec()},
                      0 if route.gateway is None else 1)

    def plan_adopting(self, port: str, bridge: str, observed_addresses: Mapping[Tuple[str, str], Address],
                      observed_routes: Mapping[Tuple[int, str, int, str], Route],
                      topology_addresses: Iterable[Tuple[str, str]]) -> None:
        wanted_by = f"for {bridge} of network {self.network_of(bridge)}, adopt_port_addresses"
        bridge_there = bridge in self.observed_links and bridge not in self.deleted
        addresses: Dict[str, Optional[Address]] = {}  # address -> the port's copy (None: only the bridge's)
        for item in self.observed.addresses:
            if item.iface == port and not item.link_local and not item.owned:
                if item.dynamic:
                    self.conflicts.append(
                        f"port {port} ({wanted_by}): address {item.address} has a lifetime (a DHCP or SLAAC lease); "
                        f"the lease client on {port} would fight the move: give {port} a static address, or stop "
                        "the client, then apply again")
                    continue
                addresses[item.address] = item
        for item in [*self.observed.addresses, *self.desired.addresses]:
            if item.iface == bridge and item.adopted_from == port:
                addresses.setdefault(item.address, None)
        topology_owned = set(topology_addresses)
        for address, on_port in sorted(addresses.items()):
            if (bridge, address) in topology_owned:
                self.conflicts.append(f"address {address} of port {port} ({wanted_by}) is also the network's own "
                                      "address (cidr/gw_ip): leave it out of the topology, the adoption carries it")
                continue
            if not (bridge_there and (bridge, address) in observed_addresses):
                self.emit("adopt_address", f"address:{bridge}:{address}",
                          {"iface": bridge, "address": address, "port": port})
            if on_port is not None:
                self.emit("drop_port_address", f"address:{port}:{address}",
                          {"iface": port, "address": address, "bridge": bridge})
        routes: Dict[Tuple[int, str, int], Route] = {}
        for route in self.observed.routes:
            if route.dev == port and not route.owned:
                if route.refused is not None:
                    self.conflicts.append(f"port {port} ({wanted_by}): route {route} cannot move to {bridge}: "
                                          f"{route.refused}")
                    continue
                routes[route.key[:3]] = route.moved(bridge, adopted_from=port)
        for route in [*self.observed.routes, *self.desired.routes]:
            if route.dev == bridge and route.adopted_from == port:
                routes.setdefault(route.key[:3], route)
        for _key, route in sorted(routes.items()):
            others = [other for other in self.observed.routes
                      if other.place == route.place and other.dev not in (port, bridge)]
            if others:
                self.conflicts.append(f"route {route.moved(port)} ({wanted_by}): {others[0]} has the same destination "
                                      "and metric in the same table, and the kernel's replace would take that one")
                continue
            if bridge_there and route.key in observed_routes:
                continue
            self.emit("adopt_route", _route_target(bridge, route), {"dev": bridge, "port": port, **route.spec()},
                      0 if route.gateway is None else 1)

    def network_of(self, iface: str) -> Optional[str]:
        link = self.desired_links.get(iface)
        return link.owner if link is not None else None

    # addresses, fdb, sysctls, files, ruleset ------------------------------------------------------

    def plan_keyed(
        self,
        what: str,
        wanted_items: Iterable[Union[Address, FdbEntry]],
        found_items: Iterable[Union[Address, FdbEntry]],
    ) -> None:
        """Addresses and FDB entries: add what is missing, remove owned ones no longer wanted.

        Objects on a deleted link vanish with it; a wanted object present but foreign counts as
        present and stays foreign; IPv6 link-local addresses belong to the kernel.
        """
        # Adopted addresses (and a port's addresses about to be) are plan_adoptions' business.
        found = {item.key: item for item in found_items
                 if item.iface not in self.deleted and getattr(item, "adopted_from", None) is None}
        wanted = {item.key: item for item in wanted_items if getattr(item, "adopted_from", None) is None}
        for key, item in sorted(found.items()):
            if key in wanted or not item.owned or (isinstance(item, Address) and item.link_local):
                continue
            self.emit(f"remove_{what}", self.target(item), self.details(item))
        for key, item in sorted(wanted.items()):
            if key not in found:
                self.emit(f"add_{what}", self.target(item), self.details(item))

    @staticmethod
    def target(item: Union[Address, FdbEntry]) -> str:
        if isinstance(item, Address):
            return f"address:{item.iface}:{item.address}"
        return f"fdb:{item.iface}:{item.dst}"

    @staticmethod
    def details(item: Union[Address, FdbEntry]) -> Dict[str, DetailValue]:
        if isinstance(item, Address):
            return {"iface": item.iface, "address": item.address}
        return {"iface": item.iface, "mac": item.mac, "dst": item.dst}

    def plan_sysctls(self) -> None:
        found = dict(self.observed.sysctls)
        for key, value in self.desired.sysctls:
            was = found.get(key)
            if was == value:
                continue
            # An interface's accept_ra moves between 1 and 2 only: 0 is the operator's "no RAs",
            # and no value means the interface does not exist.
            if is_accept_ra_key(key) and {was, value} != {ACCEPT_RA_UNLESS_FORWARDING, ACCEPT_RA_WHILE_FORWARDING}:
                continue
            self.emit("set_sysctl", f"sysctl:{key}", {"key": key, "value": value, "was": was})

    def plan_files(self) -> None:
        wanted = dict(self.desired.dnsmasq_files)
        found = dict(self.observed.dnsmasq_files)
        for path in sorted(found):
            if path not in wanted:
                self.emit("remove_file", f"file:{path}", {"path": path})
        for path, content in sorted(wanted.items()):
            if found.get(path) != content:
                self.emit("write_file", f"file:{path}", {"path": path, **_content_details(content)})

    def plan_ruleset(self) -> None:
        wanted, found = self.desired.ruleset, self.observed.ruleset
        if wanted is not None and wanted != found:
            self.emit(
                "replace_ruleset",
                RULESET_TARGET,
                {"family": NFT_FAMILY, "table": NFT_TABLE, **_content_details(wanted)},
            )
        elif wanted is None and found is not None:
            self.emit("delete_ruleset", RULESET_TARGET, {"family": NFT_FAMILY, "table": NFT_TABLE})


def _route_target(dev: str, route: Route) -> str:
    return f"route:{dev}:{route.dst}:{route.table}:{route.metric}"


def plan(desired: HostState, observed: HostState) -> List[Operation]:
    """The ordered operations that turn ``observed`` into ``desired``, touching only owned objects.

    Raises :class:`ConflictError` when the desired state needs a name held by a foreign link,
    a port enslaved to a foreign bridge, or a deletion the kernel would extend to a foreign link.
    """
    return _Planner(desired, observed).run()
