# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Ghostwarden vxlan and VLAN networks as Proxmox VE SDN zones, vnets and subnets.

The pure part maps a topology to the SDN objects it wants (:func:`desired_sdn`), brings the
live listing into the same normal form (:func:`normalise_live`), compares both into an
ordered list of changes (:func:`compare`) and inverts a list of changes (:func:`rollback`).
:func:`export_sdn` carries a run out through a client object (``get/post/put/delete``,
``wait_task``, ``version``): every change is staged, then applied with exactly one
``PUT /cluster/sdn``, under the PVE 9 lock when the cluster has it; a failure is rolled back
(PVE 9: ``POST /cluster/sdn/rollback``; PVE 8: the staged changes undone in reverse order).
This file imports neither Ansible nor proxmoxer.

Ownership: a vnet is this module's when its ``alias`` is ``ghostwarden.<network>`` (PVE
zones have no comment field); a subnet is when its vnet is; a zone is when every vnet in it
is (and there is one), or when it is empty and its id is the one derived for a network of
the run. The mapping is documented in ``docs/proxmox.md`` (section ``proxmox_sdn``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import netaddr
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    ConflictError,
    GhostwardenError,
    Issue,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Network, Topology

DEFAULT_ZONE_PREFIX = "gw"
# PVE zone and vnet ids: [a-zA-Z][a-zA-Z0-9]*[a-zA-Z0-9], 2-8 characters (pve-sdn-zone-id / -vnet-id).
SDN_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,7}$")
SDN_ID_MAX = 8
# The prefix leaves room for the "z" of zone ids and at least two characters of the name or its hash.
ZONE_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,4}$")
_READABLE_NAME_RE = re.compile(r"^[A-Za-z0-9]+$")
# The vnet alias that marks the module's vnets; "." is allowed by PVE's alias pattern however it is read.
OWNER_ALIAS_PREFIX = "ghostwarden."
VXLAN_PORT = 4789
KINDS = ("zone", "vnet", "subnet")
CHANGE_ACTIONS = ("create", "update", "delete")
# Keys of the listings that describe the listing, not the object.
_META_KEYS = frozenset({"digest", "state", "pending"})
_INT_KEYS = frozenset({"mtu", "vxlan-port", "tag", "vrf-vxlan", "dp-id"})
_BOOL_KEYS = frozenset({"vlanaware", "isolate-ports", "snat", "advertise-subnets", "bridge-disable-mac-learning",
                        "disable-arp-nd-suppression", "exitnodes-local-routing"})
# Derived by PVE from a subnet's id; not writable.
_SUBNET_DERIVED = frozenset({"subnet", "network", "mask", "zone", "id", "type"})
# The keys this module sets and compares, per kind (a zone's by its type).
ZONE_KEYS = {"vlan": ("bridge", "mtu"), "vxlan": ("peers", "vxlan-port", "mtu")}
VNET_KEYS = ("zone", "tag", "alias", "vlanaware")
SUBNET_KEYS = ("vnet", "cidr", "gateway")
APPLY_TIMEOUT = 600


# -- ids and ownership ------------------------------------------------------------------------


def _hash(name: str, length: int) -> str:
    return hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:length]


def derive_id(prefix: str, name: str) -> str:
    """``prefix`` + the network name when that is a valid id of at most 8 characters, else + its sha1 prefix."""
    if _READABLE_NAME_RE.fullmatch(name) and len(prefix) + len(name) <= SDN_ID_MAX:
        return prefix + name
    return prefix + _hash(name, SDN_ID_MAX - len(prefix))


def zone_id(prefix: str, network: str) -> str:
    return derive_id(f"{prefix}z", network)


def vnet_id(prefix: str, network: str) -> str:
    return derive_id(prefix, network)


def subnet_id(zone: str, cidr: str) -> str:
    """PVE's id of a subnet: ``<zone>-<network address>-<prefix length>``."""
    return f"{zone}-{cidr.replace('/', '-')}"


def owner_alias(network: str) -> str:
    return f"{OWNER_ALIAS_PREFIX}{network}"


def alias_owner(alias: object) -> str | None:
    """The network a vnet alias marks as the module's, or None."""
    if isinstance(alias, str) and alias.startswith(OWNER_ALIAS_PREFIX) and len(alias) > len(OWNER_ALIAS_PREFIX):
        return alias[len(OWNER_ALIAS_PREFIX):]
    return None


def check_zone_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not ZONE_PREFIX_RE.fullmatch(prefix):
        raise ValidationError(Issue("zone_prefix", f"{prefix!r} must be 1-5 letters and digits starting with a letter "
                                                   f"(zone ids are the prefix, 'z' and the network, at most 8 "
                                                   f"characters)"))
    return prefix


# -- the state: zones, vnets, subnets ---------------------------------------------------------


@dataclass(frozen=True)
class SdnState:
    """SDN objects by id, each a dict of its settings (the id itself left out; a subnet has ``vnet`` and ``cidr``)."""

    zones: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    vnets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    subnets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def of(self, kind: str) -> Mapping[str, Mapping[str, Any]]:
        return {"zone": self.zones, "vnet": self.vnets, "subnet": self.subnets}[kind]

    def to_dict(self) -> dict:
        return {f"{kind}s": {key: dict(sorted(self.of(kind)[key].items())) for key in sorted(self.of(kind))}
                for kind in KINDS}


@dataclass(frozen=True)
class Desired:
    """What a run wants: the objects, which network each vnet stands for, and the zone ids it may claim."""

    state: SdnState
    networks: Mapping[str, str]  # vnet id -> network name
    claim_zones: frozenset  # ids of empty zones the run may take over (derived for its networks)


def _peers(network: Network) -> str:
    addresses = set(network.peers)
    if network.local:
        addresses.add(network.local)
    ordered = sorted((netaddr.IPAddress(address) for address in addresses), key=lambda ip: (ip.version, int(ip)))
    return ",".join(str(address) for address in ordered)


def _network_objects(network: Network, prefix: str, path: str, issues: list[Issue]) -> tuple[dict, dict, dict] | None:
    """(zone, vnet, subnets by id) of one network, or None with an issue."""
    zone_name, vnet_name = zone_id(prefix, network.name), vnet_id(prefix, network.name)
    if network.type == "vxlan":
        if not network.peers:
            issues.append(Issue(path, f"vxlan network {network.name} has no peers; an SDN vxlan zone needs them"))
            return None
        zone: dict = {"type": "vxlan", "peers": _peers(network)}
        if network.dstport != VXLAN_PORT:
            zone["vxlan-port"] = network.dstport
        tag = network.vni
    elif network.vlan is not None and network.parent is not None:
        zone = {"type": "vlan", "bridge": network.parent}
        tag = network.vlan
    else:
        issues.append(Issue(path, f"network {network.name} is a {network.type} network without a VLAN; only vxlan "
                                  f"networks and networks with a vlan id become SDN vnets"))
        return None
    if network.mtu is not None:
        zone["mtu"] = network.mtu
    vnet: dict = {"zone": zone_name, "tag": tag, "alias": owner_alias(network.name)}
    if network.vlan_filtering:
        vnet["vlanaware"] = 1
    subnets = {subnet_id(zone_name, subnet.cidr): {"vnet": vnet_name, "cidr": subnet.cidr, "gateway": subnet.gw_ip}
               for subnet in network.subnets}
    return zone, vnet, subnets


def selected_networks(topology: Topology, names: Sequence[str] | None) -> list[Network]:
    """The networks to export: ``names`` (checked), or every vxlan and vlan network of the topology."""
    if names is None:
        return [network for network in topology.networks if network.type in ("vxlan", "vlan")]
    known = {network.name: network for network in topology.networks}
    issues = []
    chosen: dict[str, Network] = {}
    for index, name in enumerate(names):
        if name in chosen:
            issues.append(Issue(f"networks[{index}]", f"{name!r} is listed twice"))
        elif name not in known:
            issues.append(Issue(f"networks[{index}]", f"{name!r} is not a network of the topology (networks: "
                                                      f"{', '.join(sorted(known)) or 'none'})"))
        else:
            chosen[name] = known[name]
    if issues:
        raise ValidationError(issues)
    return [chosen[name] for name in sorted(chosen)]


def desired_sdn(topology: Topology, names: Sequence[str] | None = None, prefix: str = DEFAULT_ZONE_PREFIX) -> Desired:
    """The zones, vnets and subnets the selected networks become (one zone and one vnet per network)."""
    check_zone_prefix(prefix)
    if netaddr is None:
        raise GhostwardenError("the Python library netaddr is required for SDN export (pip install netaddr)")
    networks = selected_networks(topology, names)
    issues: list[Issue] = []
    zones: dict = {}
    vnets: dict = {}
    subnets: dict = {}
    owners: dict[str, str] = {}
    seen: dict[tuple[str, str], str] = {}
    for network in networks:
        path = f"networks.{network.name}"
        ids = (("zone", zone_id(prefix, network.name)), ("vnet", vnet_id(prefix, network.name)))
        clash = next(((kind, key) for kind, key in ids if (kind, key) in seen), None)
        if clash is not None:
            issues.append(Issue(path, f"network {network.name} and network {seen[clash]} derive the same {clash[0]} "
                                      f"id {clash[1]}; rename one of them or choose another zone_prefix"))
            continue
        objects = _network_objects(network, prefix, path, issues)
        if objects is None:
            continue
        for kind, key in ids:
            seen[kind, key] = network.name
        zone, vnet, network_subnets = objects
        zones[ids[0][1]] = zone
        vnets[ids[1][1]] = vnet
        owners[ids[1][1]] = network.name
        subnets.update(network_subnets)
    if issues:
        raise ValidationError(issues)
    return Desired(SdnState(zones, vnets, subnets), owners, frozenset(zones))


# -- the live listing -------------------------------------------------------------------------


def _value(key: str, value: Any) -> Any:
    """One setting in normal form: integers as int, booleans as 1 (false ones are dropped by the caller)."""
    if key in _BOOL_KEYS:
        if isinstance(value, str):
            return 1 if value.strip().lower() in ("1", "on", "yes", "true") else 0
        return 1 if value else 0
    if key in _INT_KEYS and isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if key == "peers" and isinstance(value, str):
        return _normal_peers(value)
    if key == "gateway" and isinstance(value, str) and netaddr is not None:
        try:
            return str(netaddr.IPAddress(value.strip()))
        except (netaddr.AddrFormatError, ValueError):
            return value
    return value


def _normal_peers(text: str) -> str:
    parts = [part for part in re.split(r"[\s,;]+", text) if part]
    try:
        ordered = sorted((netaddr.IPAddress(part) for part in parts), key=lambda ip: (ip.version, int(ip)))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return ",".join(sorted(parts))
    return ",".join(str(address) for address in ordered)


def _settings(item: Mapping[str, Any], skip: Iterable[str]) -> dict:
    skipped = set(skip) | _META_KEYS
    settings = {}
    for key in sorted(item):
        if key in skipped or item[key] is None or item[key] == "":
            continue
        value = _value(key, item[key])
        if key in _BOOL_KEYS and not value:
            continue  # 0 is every boolean's default: absent and 0 mean the same
        if key == "vxlan-port" and value == VXLAN_PORT:
            continue
        settings[key] = value
    return settings


def _subnet_cidr(item: Mapping[str, Any], key: str) -> str | None:
    cidr = item.get("cidr")
    if not isinstance(cidr, str) or "/" not in cidr:
        parts = key.split("-")
        if len(parts) != 3:
            return None
        cidr = f"{parts[1]}/{parts[2]}"
    try:
        return str(netaddr.IPNetwork(cidr).cidr)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def normalise_live(zones: Iterable[Any], vnets: Iterable[Any], subnets: Mapping[str, Iterable[Any]]) -> SdnState:
    """The listings of ``/cluster/sdn/zones``, ``/cluster/sdn/vnets`` and each vnet's subnets, in normal form.

    Every writable setting is kept (for undoing a change), in normal form: listing metadata
    (digest, state, pending) dropped, integers as int, booleans as 1 or left out when false,
    peers sorted, the default VXLAN port left out.
    """
    zone_map = {}
    for item in zones:
        if isinstance(item, Mapping) and isinstance(item.get("zone"), str):
            zone_map[item["zone"]] = _settings(item, ("zone",))
    vnet_map = {}
    for item in vnets:
        if isinstance(item, Mapping) and isinstance(item.get("vnet"), str):
            vnet_map[item["vnet"]] = _settings(item, ("vnet", "type"))
    subnet_map = {}
    for vnet in sorted(subnets):
        for item in subnets[vnet]:
            key = item.get("subnet") or item.get("id") if isinstance(item, Mapping) else None
            if not isinstance(key, str):
                continue
            cidr = _subnet_cidr(item, key)
            if cidr is None:
                continue
            settings = _settings(item, _SUBNET_DERIVED | {"cidr", "vnet"})
            settings.update(vnet=vnet, cidr=cidr)
            subnet_map[key] = dict(sorted(settings.items()))
    return SdnState(zone_map, vnet_map, subnet_map)


def _managed(kind: str, settings: Mapping[str, Any]) -> dict:
    """The settings this module sets and compares."""
    if kind == "zone":
        keys = ("type",) + ZONE_KEYS.get(settings.get("type"), ())
    else:
        keys = VNET_KEYS if kind == "vnet" else SUBNET_KEYS
    return {key: settings[key] for key in keys if key in settings}


# -- ownership and scope ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The live objects a run manages (owned, and of a network in the run's scope)."""

    zones: frozenset
    vnets: frozenset
    subnets: frozenset
    foreign_zone_vnets: Mapping[str, tuple] = field(default_factory=dict)  # zone -> vnets in it that are not ours


def managed_scope(live: SdnState, networks: Iterable[str] | None, claim_zones: Iterable[str] = ()) -> Scope:
    """What the run may change: vnets marked as the module's (of ``networks``, or of any network when None),
    their subnets, zones holding only such vnets, and empty zones whose id the run derives."""
    wanted = None if networks is None else set(networks)
    vnets = frozenset(key for key, settings in live.vnets.items()
                      if alias_owner(settings.get("alias")) is not None
                      and (wanted is None or alias_owner(settings.get("alias")) in wanted))
    subnets = frozenset(key for key, settings in live.subnets.items() if settings.get("vnet") in vnets)
    members: dict[str, list[str]] = {}
    for key, settings in live.vnets.items():
        members.setdefault(settings.get("zone"), []).append(key)
    zones = set()
    foreign: dict[str, tuple] = {}
    claim = set(claim_zones)
    for key in live.zones:
        inside = sorted(members.get(key, ()))
        if inside and all(vnet in vnets for vnet in inside):
            zones.add(key)
        elif not inside and key in claim:
            zones.add(key)
        else:
            foreign[key] = tuple(vnet for vnet in inside if vnet not in vnets)
    return Scope(frozenset(zones), vnets, subnets, foreign)


# -- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One write to the SDN configuration (staged until the apply)."""

    action: str  # create | update | delete
    kind: str  # zone | vnet | subnet
    id: str
    method: str  # POST | PUT | DELETE
    path: str
    params: Mapping[str, Any]
    before: dict[str, Any] | None  # the whole object before (None when created)
    after: dict[str, Any] | None  # the whole object after (None when deleted)

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.id}"

    def to_dict(self) -> dict:
        return {
            "action": self.action, "kind": self.kind, "id": self.id, "method": self.method, "path": self.path,
            "params": dict(sorted(self.params.items())),
            "before": None if self.before is None else _managed(self.kind, self.before),
            "after": None if self.after is None else _managed(self.kind, self.after),
        }


def _collection_path(kind: str, settings: Mapping[str, Any]) -> str:
    if kind == "zone":
        return "/cluster/sdn/zones"
    if kind == "vnet":
        return "/cluster/sdn/vnets"
    return f"/cluster/sdn/vnets/{settings['vnet']}/subnets"


def _object_path(kind: str, key: str, settings: Mapping[str, Any]) -> str:
    return f"{_collection_path(kind, settings)}/{key}"


def create_change(kind: str, key: str, settings: Mapping[str, Any]) -> Change:
    settings = dict(settings)
    if kind == "subnet":
        params = {name: value for name, value in settings.items() if name not in ("vnet", "cidr")}
        params.update(subnet=settings["cidr"], type="subnet")
    else:
        params = dict(settings, **{kind: key})
    return Change("create", kind, key, "POST", _collection_path(kind, settings), params, None, settings)


def delete_change(kind: str, key: str, settings: Mapping[str, Any]) -> Change:
    return Change("delete", kind, key, "DELETE", _object_path(kind, key, settings), {}, dict(settings), None)


def update_change(kind: str, key: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Change | None:
    """The PUT that turns ``before`` into ``after`` (keys that only ``before`` has are deleted), or None."""
    params = {name: value for name, value in after.items() if before.get(name) != value}
    removed = sorted(name for name in before if name not in after)
    if kind == "subnet":
        params.pop("vnet", None)
        params.pop("cidr", None)
    if removed:
        params["delete"] = ",".join(removed)
    if not params:
        return None
    return Change("update", kind, key, "PUT", _object_path(kind, key, after), params, dict(before), dict(after))


def _updated(kind: str, live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict:
    """``live`` with the managed settings of ``desired``: what the object becomes (other settings kept)."""
    result = {key: value for key, value in live.items() if key not in _managed(kind, live)}
    result.update(desired)
    return dict(sorted(result.items()))


def compare(desired: Desired | None, live: SdnState, scope: Scope) -> list[Change]:
    """The ordered changes that make the managed part of ``live`` what ``desired`` wants (None: remove it all).

    Deletes come first, subnets before vnets before zones; then creates and updates, zones
    before vnets before subnets; each group sorted by id. A zone whose type changes is
    deleted and created again, with its vnets and their subnets. Raises
    :class:`ConflictError` when a wanted id is taken by an object that is not the module's.
    """
    want = desired.state if desired is not None else SdnState()
    conflicts = []
    for key in sorted(want.zones):
        if key in live.zones and key not in scope.zones:
            holders = ", ".join(scope.foreign_zone_vnets.get(key, ())) or "vnets of networks outside this run"
            conflicts.append(f"zone {key} exists and is not ghostwarden's (it holds {holders})")
    for key in sorted(want.vnets):
        if key in live.vnets and key not in scope.vnets:
            alias = live.vnets[key].get("alias")
            conflicts.append(f"vnet {key} exists and is not ghostwarden's network {desired.networks[key]} "
                             f"(its alias is {alias!r})")
    for key in sorted(want.subnets):
        if key in live.subnets and key not in scope.subnets:
            conflicts.append(f"subnet {key} exists in vnet {live.subnets[key].get('vnet')}, which is not "
                             f"ghostwarden's")
    if conflicts:
        raise ConflictError(conflicts)

    replaced_zones = {key for key in want.zones
                      if key in scope.zones and live.zones[key].get("type") != want.zones[key]["type"]}
    replaced_vnets = {key for key in scope.vnets if live.vnets[key].get("zone") in replaced_zones}
    replaced_subnets = {key for key in scope.subnets if live.subnets[key].get("vnet") in replaced_vnets}
    gone = {
        "subnet": (set(scope.subnets) - set(want.subnets)) | replaced_subnets,
        "vnet": (set(scope.vnets) - set(want.vnets)) | replaced_vnets,
        "zone": (set(scope.zones) - set(want.zones)) | replaced_zones,
    }
    changes = [delete_change(kind, key, live.of(kind)[key]) for kind in ("subnet", "vnet", "zone")
               for key in sorted(gone[kind])]
    for kind in KINDS:
        for key in sorted(want.of(kind)):
            wanted = want.of(kind)[key]
            if key not in live.of(kind) or key in gone[kind]:
                changes.append(create_change(kind, key, wanted))
                continue
            current = live.of(kind)[key]
            change = update_change(kind, key, current, _updated(kind, current, wanted))
            if change is not None:
                changes.append(change)
    return changes


def _inverse(change: Change) -> Change:
    if change.action == "create":
        return delete_change(change.kind, change.id, change.after)
    if change.action == "delete":
        return create_change(change.kind, change.id, change.before)
    inverse = update_change(change.kind, change.id, change.after, change.before)
    return inverse if inverse is not None else change


def rollback(changes: Sequence[Change]) -> list[Change]:
    """The changes that undo ``changes`` (all of them made), in the order to make them."""
    return [_inverse(change) for change in reversed(changes)]


def pending_objects(config: SdnState, running: SdnState) -> dict[tuple[str, str], str]:
    """(kind, id) -> new, changed or deleted, for every object whose configuration is not applied yet."""
    pending = {}
    for kind in KINDS:
        staged, applied = config.of(kind), running.of(kind)
        for key in sorted(set(staged) | set(applied)):
            if key not in applied:
                pending[kind, key] = "new"
            elif key not in staged:
                pending[kind, key] = "deleted"
            elif staged[key] != applied[key]:
                pending[kind, key] = "changed"
    return pending


def managed_view(state: SdnState, scope_ids: Mapping[str, Iterable[str]]) -> dict:
    """The objects of ``scope_ids`` (kind -> ids) with their managed settings, for diffs and results."""
    return {f"{kind}s": {key: _managed(kind, state.of(kind)[key]) for key in sorted(scope_ids.get(kind, ()))
                         if key in state.of(kind)} for kind in KINDS}


# -- carrying a run out -----------------------------------------------------------------------


class SdnExportError(BackendError):
    """A run failed part-way; ``rolled_back`` says whether the SDN configuration was put back."""

    def __init__(self, step: str, cause: str, *, rolled_back: bool, how: str, made: Sequence[Change]) -> None:
        self.rolled_back = rolled_back
        self.how = how
        self.made = list(made)
        super().__init__(step, f"{cause}; {how}")
        self.cause = cause

    def to_result(self) -> dict:
        return {"failed_step": self.step, "rolled_back": self.rolled_back, "rollback": self.how,
                "changes": [change.to_dict() for change in self.made]}


@dataclass(frozen=True)
class Live:
    config: SdnState
    running: SdnState


def _items(value: object) -> list:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def read_live(client: Any, desired_vnets: Iterable[str] = ()) -> Live:
    """The SDN configuration (staged) and the running one.

    Subnets are read for the vnets the module marked and the ones it wants, not for others.
    """
    views = []
    interest = set(desired_vnets)
    for flags in ({}, {"running": 1}):
        zones = _items(client.get("/cluster/sdn/zones", **flags))
        vnets = _items(client.get("/cluster/sdn/vnets", **flags))
        if not flags:  # the staged configuration decides which vnets are the module's
            interest |= {item.get("vnet") for item in vnets if alias_owner(item.get("alias")) is not None}
        present = {item.get("vnet") for item in vnets}
        subnets = {vnet: _items(client.get(f"/cluster/sdn/vnets/{vnet}/subnets", **flags))
                   for vnet in sorted(interest & present)}
        views.append(normalise_live(zones, vnets, subnets))
    return Live(*views)


@dataclass(frozen=True)
class Plan:
    """One run's view of things: what it manages, what must change, and what waits for an apply."""

    live: Live
    scope: Scope
    changes: tuple
    own_pending: tuple  # (kind, id, state) of the run's objects not applied yet
    foreign_pending: tuple  # the same for every other object

    def scope_ids(self) -> dict:
        return {"zone": self.scope.zones, "vnet": self.scope.vnets, "subnet": self.scope.subnets}


def make_plan(client: Any, desired: Desired | None, networks: Iterable[str] | None) -> Plan:
    """Read the live state and compare; ``networks`` limits the scope (None: every network's objects)."""
    live = read_live(client, desired.state.vnets if desired is not None else ())
    claim = desired.claim_zones if desired is not None else frozenset()
    scope = managed_scope(live.config, networks, claim)
    changes = compare(desired, live.config, scope)
    ours = {("zone", key) for key in scope.zones} | {("vnet", key) for key in scope.vnets}
    ours |= {("subnet", key) for key in scope.subnets}
    if desired is not None:
        ours |= {(kind, key) for kind in KINDS for key in desired.state.of(kind)}
    own, foreign = [], []
    for (kind, key), state in pending_objects(live.config, live.running).items():
        (own if (kind, key) in ours else foreign).append((kind, key, state))
    return Plan(live, scope, tuple(changes), tuple(own), tuple(foreign))


def _describe_pending(entries: Iterable[tuple]) -> str:
    return ", ".join(f"{kind} {key} ({state})" for kind, key, state in entries)


class SdnRun:
    """Stage a plan's changes and apply them once; roll back on failure.

    Before the apply, with the PVE 9 lock, a failure is rolled back with ``POST
    /cluster/sdn/rollback`` when the lock was taken with nothing pending (the rollback drops
    every pending change, so it must not meet anybody else's); otherwise, and on PVE 8, the
    staged changes are undone in reverse order. A failed reload task after the apply is undone
    by applying the previous configuration again (:meth:`apply_previous`).
    """

    def __init__(self, client: Any, *, use_lock: bool, apply_timeout: float = APPLY_TIMEOUT) -> None:
        self.client = client
        self.use_lock = use_lock
        self.apply_timeout = apply_timeout
        self.token: str | None = None
        self.clean = False  # the lock was taken with nothing pending

    def _lock_params(self) -> dict:
        return {"lock-token": self.token} if self.token else {}

    def lock(self, allow_pending: bool) -> None:
        token = self.client.post("/cluster/sdn/lock", **{"allow-pending": 1 if allow_pending else 0})
        if not isinstance(token, str) or not token:
            raise GhostwardenError(f"POST /cluster/sdn/lock returned {token!r} instead of a lock token")
        self.token, self.clean = token, not allow_pending

    def release(self) -> None:
        if self.token:
            token, self.token = self.token, None
            self.client.delete("/cluster/sdn/lock", **{"lock-token": token})

    def carry_out(self, changes: Sequence[Change], *, apply: bool) -> None:
        """Make each change (staged), then apply them all with one ``PUT /cluster/sdn`` when ``apply``."""
        made: list[Change] = []
        total = len(changes)
        step = "staging"
        committed = False
        try:
            for number, change in enumerate(changes, 1):
                step = f"step {number} of {total}: {change} ({change.method} {change.path})"
                call = getattr(self.client, change.method.lower())
                call(change.path, **dict(change.params), **self._lock_params())
                made.append(change)
            if apply:
                step = "apply (PUT /cluster/sdn)"
                params = dict(self._lock_params())
                if self.token:
                    params["release-lock"] = 0  # held until the task has ended, so that a failure can roll back
                upid = self.client.put("/cluster/sdn", **params)
                committed = True
                step = "apply task (reloadnetworkall)"
                self.client.wait_task(upid, timeout=self.apply_timeout)
        except GhostwardenError as error:
            if committed:
                raise self.apply_previous(step, str(error), made) from None
            raise self.roll_back(step, str(error), made) from None
        try:
            self.release()
        except GhostwardenError as error:  # everything is made (and applied): nothing to roll back
            raise GhostwardenError(f"the SDN changes were made{' and applied' if apply else ''}, but releasing the "
                                   f"SDN lock (DELETE /cluster/sdn/lock) failed: {error}") from None

    def roll_back(self, step: str, cause: str, made: list[Change]) -> SdnExportError:
        if self.token and self.clean:
            token, self.token = self.token, None
            try:
                self.client.post("/cluster/sdn/rollback", **{"lock-token": token})
            except GhostwardenError as error:
                how = f"the PVE rollback (POST /cluster/sdn/rollback) failed too: {error}"
                try:
                    self.client.delete("/cluster/sdn/lock", **{"lock-token": token})
                except GhostwardenError as release_error:
                    how += f"; releasing the SDN lock failed: {release_error}"
                return SdnExportError(step, cause, rolled_back=False, how=how, made=made)
            return SdnExportError(step, cause, rolled_back=True, made=made,
                                  how=f"rolled back with POST /cluster/sdn/rollback ({len(made)} staged change(s) "
                                      f"dropped) and the SDN lock released")
        undo = rollback(made)
        for number, change in enumerate(undo, 1):
            try:
                getattr(self.client, change.method.lower())(change.path, **dict(change.params), **self._lock_params())
            except GhostwardenError as error:
                left = ", ".join(str(item) for item in undo[number - 1:])
                return SdnExportError(step, cause, rolled_back=False, made=made,
                                      how=f"undoing the staged changes failed at {change} ({error}); still to undo "
                                          f"by hand: {left}{self._release_quietly()}")
        how = (f"the {len(made)} staged change(s) were undone in reverse order" if made
               else "nothing had been staged")
        return SdnExportError(step, cause, rolled_back=True, made=made, how=how + self._release_quietly())

    def apply_previous(self, step: str, cause: str, made: list[Change]) -> SdnExportError:
        """Undo a run whose reload task failed after ``PUT /cluster/sdn`` had returned.

        PVE commits the pending configuration when it accepts the PUT, before the task reloads
        the nodes; pending changes, and with them ``POST /cluster/sdn/rollback``, are gone by then.
        So the previous configuration is staged again (the made changes undone in reverse) and
        applied with a second PUT, which reloads the nodes with what they ran before.
        """
        undo = rollback(made)
        for change in undo:
            try:
                getattr(self.client, change.method.lower())(change.path, **dict(change.params), **self._lock_params())
            except GhostwardenError as error:
                left = ", ".join(str(item) for item in undo[undo.index(change):])
                return SdnExportError(step, cause, rolled_back=False, made=made,
                                      how=f"PVE had committed the configuration before the reload failed; undoing it "
                                          f"failed at {change} ({error}); still to undo by hand and apply: "
                                          f"{left}{self._release_quietly()}")
        try:
            # Without release-lock=0 the lock goes with this apply.
            upid = self.client.put("/cluster/sdn", **self._lock_params())
            self.token = None
            self.client.wait_task(upid, timeout=self.apply_timeout)
        except GhostwardenError as error:
            return SdnExportError(step, cause, rolled_back=False, made=made,
                                  how=f"PVE had committed the configuration before the reload failed; the {len(made)} "
                                      f"change(s) were undone, but applying the previous configuration again failed "
                                      f"too ({error}): the nodes may run either{self._release_quietly()}")
        return SdnExportError(step, cause, rolled_back=True, made=made,
                              how=f"PVE had committed the configuration before the reload failed; the {len(made)} "
                                  "change(s) were undone and the previous configuration applied again (PUT /cluster/sdn)")

    def _release_quietly(self) -> str:
        """Release the lock after a manual undo; a failure to do so is told, not raised."""
        try:
            self.release()
        except GhostwardenError as error:
            return f"; releasing the SDN lock failed: {error}"
        return ""


@dataclass(frozen=True)
class ExportResult:
    changed: bool
    changes: list  # change dicts, plus an "apply" entry when the configuration is (to be) applied
    before: dict  # managed objects before (managed settings only)
    after: dict  # managed objects after
    applied: bool


def _apply_entry() -> dict:
    return {"action": "apply", "kind": "sdn", "id": "", "method": "PUT", "path": "/cluster/sdn", "params": {},
            "before": None, "after": None}


def _refuse_foreign_pending(plan: Plan, must_apply: bool) -> None:
    if must_apply and plan.foreign_pending:
        raise GhostwardenError(f"the SDN configuration has pending changes this module did not make "
                               f"({_describe_pending(plan.foreign_pending)}); applying would apply them too - "
                               f"apply or revert them in Proxmox VE first")


def export_sdn(client: Any, desired: Desired | None, *, networks: Iterable[str] | None, apply: bool,
               check_mode: bool) -> ExportResult:
    """Make the managed SDN objects what ``desired`` wants (None: remove them) and apply the result once.

    ``networks`` limits what the run manages (None: the objects of every network it marked).
    In check mode nothing is written. A run that changes nothing and has nothing of its own
    waiting for an apply writes nothing.
    """
    networks = None if networks is None else sorted(set(networks))
    plan = make_plan(client, desired, networks)
    must_apply = apply and bool(plan.changes or plan.own_pending)
    if (plan.changes or must_apply) and not check_mode:
        _refuse_foreign_pending(plan, must_apply)
        run = SdnRun(client, use_lock=client.version() >= (9, 0))
        if run.use_lock:
            run.lock(allow_pending=bool(plan.own_pending or plan.foreign_pending))
            try:  # under the lock nobody else can change the configuration: plan again from it
                plan = make_plan(client, desired, networks)
                must_apply = apply and bool(plan.changes or plan.own_pending)
                _refuse_foreign_pending(plan, must_apply)
            except GhostwardenError:
                run.release()
                raise
        run.carry_out(plan.changes, apply=must_apply)
    before = managed_view(plan.live.config, plan.scope_ids())
    after_state = desired.state if desired is not None else SdnState()
    after = managed_view(after_state, {kind: after_state.of(kind) for kind in KINDS})
    entries = [change.to_dict() for change in plan.changes]
    if must_apply:
        entries.append(_apply_entry())
    return ExportResult(changed=bool(plan.changes) or must_apply, changes=entries, before=before, after=after,
                        applied=must_apply and not check_mode)
