# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Changing one network inside the recorded topology (ghostwarden_network, ghostwarden_policy).

The per-network modules do not keep a model of their own: they edit the topology recorded by
the last apply and render the whole host from it again, so one renderer and one planner stay
the only source of truth, and the other networks' objects and chains come out unchanged.
"""

from __future__ import annotations

import copy

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError

# Fields of a network entry that belong to ghostwarden_policy; everything else is ghostwarden_network's.
POLICY_FIELDS = ("policy_profile", "forwards", "masq_out")


def _base(recorded: dict | None) -> dict:
    topology = copy.deepcopy(recorded) if recorded else {}
    topology.setdefault("version", 1)
    topology.setdefault("networks", {})
    return topology


def _merge_interfaces(topology: dict, interfaces: dict | None) -> None:
    if interfaces:
        merged = dict(topology.get("interfaces") or {})
        merged.update(interfaces)
        topology["interfaces"] = merged


def with_network(recorded: dict | None, name: str, network: dict | None, interfaces: dict | None) -> dict:
    """The recorded topology with network ``name``'s L2/L3 entry set (``network``) or removed (None).

    The network's policy fields stay as ghostwarden_policy left them.
    """
    topology = _base(recorded)
    _merge_interfaces(topology, interfaces)
    networks = topology["networks"]
    if network is None:
        networks.pop(name, None)
        return topology
    if not isinstance(network, dict):
        raise ValidationError(Issue("network", f"expected a mapping, got {type(network).__name__}"))
    policy_keys = sorted(key for key in network if key in POLICY_FIELDS)
    if policy_keys:
        raise ValidationError(Issue(f"network.{policy_keys[0]}",
                                    "is managed by ghostwarden.core.ghostwarden_policy, not ghostwarden_network"))
    previous = networks.get(name) or {}
    entry = {key: value for key, value in previous.items() if key in POLICY_FIELDS}
    entry.update(copy.deepcopy(network))
    networks[name] = entry
    return topology


def with_policy(recorded: dict | None, name: str, fields: dict | None, *, policies: dict | None = None,
                management: dict | None = None, interfaces: dict | None = None) -> dict:
    """The recorded topology with network ``name``'s policy fields replaced (``fields``) or cleared (None)."""
    topology = _base(recorded)
    networks = topology["networks"]
    if name not in networks:
        known = ", ".join(sorted(networks)) or "none"
        raise ValidationError(Issue("name", f"network {name!r} has not been applied on this host (applied: {known}); "
                                            "create it with ghostwarden_network or ghostwarden_apply first"))
    _merge_interfaces(topology, interfaces)
    if policies:
        merged = dict(topology.get("policies") or {})
        merged.update(copy.deepcopy(policies))
        topology["policies"] = merged
    if management is not None:
        topology["management"] = copy.deepcopy(management)
    entry = {key: value for key, value in networks[name].items() if key not in POLICY_FIELDS}
    for key, value in (fields or {}).items():
        if value is not None:
            entry[key] = copy.deepcopy(value)
    networks[name] = entry
    return topology
