# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""What a host change returns: small by default, everything when asked.

Ansible templates and prints every byte of a task result, and AWX stores each one as a job
event. So a change returns its counts, a short summary, and the first :data:`PLAN_SHOWN`
operations without file or ruleset contents; ``return_content`` gives every operation with its
contents. The diff (diff mode) is prepared here as unified diffs of what changed only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import HostState, Operation

# Operations a compact result lists; `changes` counts all of them and `plan_omitted` says how many more there are.
PLAN_SHOWN = 50
# Lines of context around each change in a prepared diff.
DIFF_CONTEXT = 2


def nonzero_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """``changes`` of a result: the kinds that occur, with how many, in the order given."""
    return {kind: count for kind, count in counts.items() if count}


def kind_counts(kinds: Iterable[str]) -> dict[str, int]:
    """How many operations of each kind a plan has, in plan order."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def without_content(operation: Operation) -> dict:
    """An operation as a result shows it, without the file or ruleset text (its sha256 and lines stay)."""
    shown = operation.to_dict()
    shown["details"].pop("content", None)
    return shown


def plan_keys(operations: Sequence[Operation], *, full: bool) -> dict:
    """``plan`` (and ``plan_omitted`` when cut): every operation with contents, or the first few without."""
    if full:
        return {"plan": [operation.to_dict() for operation in operations]}
    keys: dict = {"plan": [without_content(operation) for operation in operations[:PLAN_SHOWN]]}
    if len(operations) > PLAN_SHOWN:
        keys["plan_omitted"] = len(operations) - PLAN_SHOWN
    return keys


def summary_line(changes: Mapping[str, int], dnsmasq: Sequence[str], *, check_mode: bool) -> str:
    """One line saying what the run did (or, in check mode, would do)."""
    total = sum(changes.values())
    if not total and not dnsmasq:
        return "no change"
    parts = []
    if total:
        kinds = ", ".join(f"{count} {kind}" for kind, count in changes.items() if count)
        parts.append(f"{total} operation{'s' if total != 1 else ''} ({kinds})")
    if dnsmasq:
        parts.append(f"dnsmasq: {', '.join(dnsmasq)}")
    return f"{'would apply' if check_mode else 'applied'} {'; '.join(parts)}"


def changed_diff(before: HostState, after: HostState) -> list[dict]:
    """Ansible diff items for what changed only: owned objects, the nft table and each dnsmasq file.

    Each item is a ``prepared`` unified diff; an unchanged part has no item, so a diff stays as
    small as the change, whatever the size of the topology.
    """
    items = []
    objects = _diff("owned links, addresses, FDB, ports, routes, sysctls", _object_lines(before), _object_lines(after))
    if objects:
        items.append({"prepared": objects})
    ruleset = _diff("nft table inet ghostwarden", _lines(before.ruleset), _lines(after.ruleset))
    if ruleset:
        items.append({"prepared": ruleset})
    before_files, after_files = dict(before.dnsmasq_files), dict(after.dnsmasq_files)
    for path in sorted(set(before_files) | set(after_files)):
        text = _diff(path, _lines(before_files.get(path)), _lines(after_files.get(path)))
        if text:
            items.append({"prepared": text})
    return items


def _object_lines(state: HostState) -> list[str]:
    """One sorted line per owned object, so that a diff shows exactly the objects that changed."""
    lines = []
    for link in state.links:
        if link.owned:
            attrs = " ".join(f"{key}={value}" for key, value in link.attrs)
            lines.append(f"link {link.name} {link.kind} {attrs}".rstrip())
    lines.extend(f"address {item.iface} {item.address}" for item in state.addresses if item.owned)
    lines.extend(f"fdb {item.iface} {item.mac} dst {item.dst}" for item in state.fdb if item.owned)
    lines.extend(f"port {item.port} master {item.master}" for item in state.enslavements if item.owned)
    lines.extend(f"route {item.dst} dev {item.dev}{f' via {item.gateway}' if item.gateway else ''} table {item.table} "
                 f"metric {item.metric}" for item in state.routes if item.owned)
    lines.extend(f"sysctl {key} = {value}" for key, value in state.sysctls)
    return sorted(lines)


def _lines(text: str | None) -> list[str]:
    return (text or "").splitlines()


def _diff(name: str, before: list[str], after: list[str]) -> str:
    if before == after:
        return ""
    lines = difflib.unified_diff(before, after, f"{name} (before)", f"{name} (after)", n=DIFF_CONTEXT, lineterm="")
    return "\n".join(lines) + "\n"
