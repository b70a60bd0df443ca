# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""One node's topology from a topology declared once for a whole cluster (the cluster role).

The cluster topology is shared by every member of an inventory group. For one node, this
module merges that node's overrides over it, fills in each VXLAN network's underlay (``local``:
the node's own address; ``peers``: every other member's address, plus any peers the cluster
topology lists outside the inventory), and refuses a topology that would take over a protected
link (the ones carrying corosync or the management network). The result is a plain topology
mapping that ghostwarden_apply validates as usual.

Pure: no Ansible import. Errors are ``Issue``\\ s raised once as ``ValidationError``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import Issues

TOPOLOGY_PATH = "ghostwarden_cluster_topology"
OVERRIDES_PATH = "ghostwarden_node_overrides"
MEMBERS_PATH = "ghostwarden_underlay_address"
PROTECTED_PATH = "ghostwarden_cluster_protected_interfaces"


def merge_overrides(base: Mapping, overrides: Mapping) -> dict:
    """``base`` with ``overrides`` merged in: mappings merge key by key (recursively), any other
    value replaces the base's, and ``None`` removes the key. Neither argument is changed."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _underlay(members: object, node: object, issues: Issues) -> dict[str, netaddr.IPAddress]:
    """The members' underlay addresses by name (inventory order), checked."""
    if not isinstance(members, Mapping) or not members:
        issues.fail(MEMBERS_PATH, f"the cluster needs at least one member with an underlay address, got {members!r}")
        return {}
    addresses: dict[str, netaddr.IPAddress] = {}
    seen: dict[netaddr.IPAddress, str] = {}
    for name, raw in members.items():
        path = f"{MEMBERS_PATH} of {name}"
        if raw is None or raw == "":
            issues.fail(path, "is not set: every cluster member needs its underlay address")
            continue
        try:
            address = netaddr.IPAddress(str(raw))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            issues.fail(path, f"{raw!r} is not an IP address")
            continue
        if not address.is_unicast() or address.is_loopback() or address.is_link_local() or int(address) == 0:
            issues.fail(path, f"{raw} is not a unicast address another node can reach")
            continue
        if address in seen:
            issues.fail(path, f"{raw} is also the underlay address of {seen[address]}")
            continue
        seen[address] = str(name)
        addresses[str(name)] = address
    families = {address.version for address in addresses.values()}
    if len(families) > 1:
        issues.fail(MEMBERS_PATH, "the members' underlay addresses mix IPv4 and IPv6; VXLAN peers need one family")
    if node not in members:
        issues.fail("node", f"{node!r} is not a member of the cluster ({', '.join(map(str, members))})")
    return addresses


def _resolve(reference: object, interfaces: Mapping) -> object:
    """An interface reference as the kernel name it means (keys of ``interfaces`` win)."""
    if isinstance(reference, str) and isinstance(interfaces.get(reference), str):
        return interfaces[reference]
    return reference


def _check_protected(topology: Mapping, protected: Sequence[str], issues: Issues) -> None:
    """No network enslaves a protected link or creates a link of that name.

    Referring to a protected link is fine (a VXLAN ``dev``, a VLAN ``parent``, ``masq_out``):
    that uses the link without changing it. Enslaving it into a bridge would move its addresses'
    traffic into the bridge and cut corosync or management off.
    """
    if not protected:
        return
    interfaces = topology.get("interfaces") if isinstance(topology.get("interfaces"), Mapping) else {}
    networks = topology.get("networks")
    if not isinstance(networks, Mapping):
        return
    for name, network in networks.items():
        if not isinstance(network, Mapping):
            continue
        path = f"{TOPOLOGY_PATH}.networks.{name}"
        ports = network.get("ports")
        for index, port in enumerate(ports if isinstance(ports, list) else []):
            if _resolve(port, interfaces) in protected:
                issues.fail(
                    f"{path}.ports[{index}]",
                    f"{_resolve(port, interfaces)} is protected ({PROTECTED_PATH}): it carries corosync or "
                    "management traffic and is never enslaved",
                )
        for field in ("iface", "bridge", "vlan_iface", "vxlan_iface"):
            if network.get(field) in protected:
                issues.fail(
                    f"{path}.{field}",
                    f"{network[field]} is protected ({PROTECTED_PATH}) and cannot be a link the topology creates",
                )


def node_topology(
    topology: object,
    members: object,
    node: object,
    overrides: object = None,
    protected: object = (),
) -> dict:
    """The topology ghostwarden_apply gets on ``node``.

    ``members`` maps every cluster member (inventory order) to its underlay address. For each
    VXLAN network: ``local`` is the node's address unless the merged topology sets it, and
    ``peers`` is every other member's address followed by the peers the cluster topology lists
    that are not members (VTEPs outside the inventory), without the node's own address. Adding
    or removing a member therefore changes every node's FDB on the next run.
    """
    NETADDR.require("to plan a cluster")
    issues = Issues()
    if not isinstance(topology, Mapping):
        raise ValidationError(Issue(TOPOLOGY_PATH, f"expected a mapping (a topology), got {type(topology).__name__}"))
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        issues.fail(OVERRIDES_PATH, f"expected a mapping merged over the cluster topology, got {type(overrides).__name__}")
    if isinstance(protected, str) or not isinstance(protected, Sequence) or not all(
            isinstance(name, str) for name in protected):
        issues.fail(PROTECTED_PATH, f"expected a list of interface names, got {protected!r}")
        protected = ()
    addresses = _underlay(members, node, issues)
    issues.raise_if_any()

    merged = merge_overrides(topology, overrides)  # type: ignore[arg-type]
    _check_protected(merged, list(protected), issues)  # type: ignore[arg-type]
    issues.raise_if_any()

    own = addresses[str(node)]
    members_in_order = [address for name, address in addresses.items() if name != node]
    networks = merged.get("networks")
    if isinstance(networks, Mapping):
        for name, network in networks.items():
            if not isinstance(network, Mapping) or network.get("type") != "vxlan":
                continue
            network = dict(network)
            local = network.setdefault("local", str(own))
            extra = network.get("peers") if isinstance(network.get("peers"), list) else []
            peers: list[str] = []
            for candidate in [*map(str, members_in_order), *map(str, extra)]:
                if candidate not in peers and candidate != str(local):
                    peers.append(candidate)
            network["peers"] = peers
            networks[name] = network  # type: ignore[index]
    return merged
