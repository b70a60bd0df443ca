# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Transactions: the journal of an apply, rollback to it, history, boot persistence.

Before an apply executes its plan the driver writes ``<state_dir>/journal.json``: the owned part
of the host as observed, the records, and every planned operation. Whatever happens next (an
error, SIGKILL, a lost SSH session) the journal says what to restore and what the transaction may
have created. Rollback plans from the live host back to the snapshot; a commit records a history
generation and writes the files that restore the committed state at boot with the kernel tools
alone. ``docs/transactions.md`` describes the files and the guarantees.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import instance_paths
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    Issue,
    RenderError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import (
    NETLINK_KINDS,
    batch_command,
    heredoc,
    in_netns,
    quote,
    render_batches,
    shell_lines,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import render_delete_script, render_replace_script
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    Adoption,
    HostState,
    Operation,
    Route,
    empty_state,
    summarise,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._results import nonzero_counts
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import (
    LOCK_FILE,
    STATE_FILE,
    Records,
    check_format,
    check_state_dir,
    json_writer,
    make_state_dir,
    read_record,
    write_atomically,
)

JOURNAL_FILE = "journal.json"
HISTORY_DIR = "history"
PERSIST_DIR = "persist"
CONFIRM_PREFIX = "confirm-"
ROLLED_BACK_PREFIX = "rolled-back-"
# Bumped when a file's layout changes; another format is refused, not guessed at.
JOURNAL_FORMAT = 1
HISTORY_FORMAT = 1
# How long the confirm timer's rollback waits for the apply lock (an apply in progress).
ROLLBACK_LOCK_WAIT_SECONDS = 300
# How long a (re)started dnsmasq may take to write its pid file, in tenths of a second.
DNSMASQ_START_TENTHS = 50

_TOKEN = re.compile(r"^[0-9a-f]{16,64}$")
_NETNS = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DETAIL_TYPES = (str, int, bool, type(None))


def new_token() -> str:
    """A fresh transaction token: 32 random hex digits (safe in file names and in grep)."""
    return secrets.token_hex(16)


def utc_iso(timestamp: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC time, to the second (``2024-05-01T12:00:00Z``)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _operation_from_dict(data: Any, where: str) -> Operation:
    if not isinstance(data, dict) or set(data) != {"kind", "target", "details"}:
        raise ValueError(f"{where}: expected a mapping with kind, target and details")
    details = data["details"]
    if not isinstance(details, dict) or not all(isinstance(value, _DETAIL_TYPES) for value in details.values()):
        raise ValueError(f"{where}.details: expected a mapping of plain values")
    if not isinstance(data["kind"], str) or not isinstance(data["target"], str):
        raise ValueError(f"{where}: kind and target must be strings")
    return Operation(data["kind"], data["target"], details)


def _state_from_dict(data: Any, where: str) -> HostState:
    try:
        return HostState.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{where}: not a host state ({type(error).__name__}: {error})") from None


def _records_from_dict(data: Any, where: str) -> Records:
    try:
        return Records.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


# --- journal ---------------------------------------------------------------------------------


@dataclass
class Journal:
    """What an apply in progress started from and what it planned.

    ``snapshot`` is the owned part of the host before the apply (see :func:`owned_snapshot`),
    ``snapshot_records`` the records then, ``planned`` every operation of the plan as
    ``Operation.to_dict()``, ``confirm_deadline`` the epoch second the confirm window closes
    (None: no window).
    """

    token: str
    created: float
    pid: int
    snapshot: HostState
    snapshot_records: Records
    planned: List[dict] = field(default_factory=list)
    confirm_deadline: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not _TOKEN.match(self.token):
            raise ValueError(f"token: {self.token!r} is not 16 to 64 lower-case hex digits")

    def planned_operations(self) -> List[Operation]:
        """``planned`` as operations; ``ValueError`` naming the entry that is not one."""
        return [_operation_from_dict(item, f"planned[{index}]") for index, item in enumerate(self.planned)]

    def to_dict(self) -> dict:
        """JSON-able; equal journals give equal dicts (and, through :class:`JournalStore`, equal files)."""
        return {
            "format": JOURNAL_FORMAT,
            "token": self.token,
            "created": self.created,
            "pid": self.pid,
            "confirm_deadline": self.confirm_deadline,
            "snapshot": self.snapshot.to_dict(),
            "snapshot_records": self.snapshot_records.to_dict(),
            "planned": [dict(item) for item in self.planned],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Journal:
        """The inverse of :meth:`to_dict`; ``ValueError`` naming the first bad field otherwise."""
        check_format(data, JOURNAL_FORMAT)
        expected = {"format", "token", "created", "pid", "confirm_deadline", "snapshot", "snapshot_records", "planned"}
        if set(data) != expected:
            raise ValueError(f"keys: expected {sorted(expected)}, found {sorted(data)}")
        created, pid, deadline = data["created"], data["pid"], data["confirm_deadline"]
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            raise ValueError(f"created: {created!r} is not a time")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"pid: {pid!r} is not a process id")
        if deadline is not None and (not isinstance(deadline, (int, float)) or isinstance(deadline, bool)):
            raise ValueError(f"confirm_deadline: {deadline!r} is not a time or null")
        planned = data["planned"]
        if not isinstance(planned, list):
            raise ValueError(f"planned: expected a list, found {type(planned).__name__}")
        for index, item in enumerate(planned):
            _operation_from_dict(item, f"planned[{index}]")
        return cls(
            token=data["token"],
            created=float(created),
            pid=pid,
            snapshot=_state_from_dict(data["snapshot"], "snapshot"),
            snapshot_records=_records_from_dict(data["snapshot_records"], "snapshot_records"),
            planned=[dict(item) for item in planned],
            confirm_deadline=None if deadline is None else float(deadline),
        )


def journal_text(journal: Journal) -> str:
    """The journal file's content: sorted keys, two-space indent (``"token": "<hex>"`` on its own line,
    which the confirm timer's script greps for). :meth:`JournalStore.write` writes the same text in pieces."""
    return json.dumps(journal.to_dict(), indent=2, sort_keys=True) + "\n"


class JournalStore:
    """``<state_dir>/journal.json`` and the marker files of a transaction's confirm window."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = check_state_dir(state_dir)
        self.path = posixpath.join(self.state_dir, JOURNAL_FILE)

    def confirm_marker(self, token: str) -> str:
        """The file whose existence confirms transaction ``token`` (the timer then does nothing)."""
        return posixpath.join(self.state_dir, f"{CONFIRM_PREFIX}{token}")

    def rolled_back_marker(self, token: str) -> str:
        """The file the timer's rollback writes (one reason line) once it restored the snapshot."""
        return posixpath.join(self.state_dir, f"{ROLLED_BACK_PREFIX}{token}")

    def write(self, journal: Journal) -> None:
        """Replace the journal atomically (0600): a crash leaves the old journal or the new one, whole."""
        try:
            make_state_dir(self.state_dir)
            write_atomically(self.path, json_writer(journal.to_dict()), 0o600)
        except OSError as error:
            raise BackendError("journal", f"cannot write {self.path}: {error.strerror or error}") from None

    def read(self) -> Optional[Journal]:
        """The journal, None when there is none; ``BackendError`` naming the file when it is corrupt.

        A corrupt journal is never ignored: it is the only record of what an interrupted apply
        may have created.
        """
        return read_record(self.path, "journal", Journal.from_dict,
                           why_it_matters="it records an interrupted apply: repair or remove it after checking the host")

    def remove(self) -> None:
        """Remove the journal (no error when it is absent); durable once this returns."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        except OSError as error:
            raise BackendError("journal", f"cannot remove {self.path}: {error.strerror}") from None
        descriptor = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# --- snapshot, ownership and rollback --------------------------------------------------------


def adoptions_of(addresses: Sequence[Address], routes: Sequence[Route]) -> Tuple[Adoption, ...]:
    """The adoptions the adopted addresses and routes of a state show (port -> the bridge holding them)."""
    found = {item.adopted_from: item.iface for item in addresses if item.adopted_from is not None}
    found.update((item.adopted_from, item.dev) for item in routes if item.adopted_from is not None)
    return tuple(Adoption(port, bridge) for port, bridge in sorted(found.items()))


def owned_snapshot(observed: HostState) -> HostState:
    """The part of an observed host a transaction restores: owned links, addresses and FDB entries;
    ports enslaved by the collection or to an owned bridge; the bridge VLANs of those links and
    ports (never of a foreign bridge); the adopted addresses and routes, with the ports they came
    from, and so the adoptions; the sysctls, the ruleset and the dnsmasq files as observed."""
    owned_links = {link.name for link in observed.links if link.owned}
    enslavements = tuple(item for item in observed.enslavements if item.owned or item.master in owned_links)
    ports = owned_links | {item.port for item in enslavements}
    addresses = tuple(item for item in observed.addresses if item.owned)
    routes = tuple(item for item in observed.routes if item.owned)
    adoptions = {item.port: item for item in observed.adoptions}
    adoptions.update((item.port, item) for item in adoptions_of(addresses, routes))
    return replace(
        observed,
        links=tuple(link for link in observed.links if link.owned),
        bridge_vlans=tuple(entry for entry in observed.bridge_vlans if entry.port in ports),
        addresses=addresses,
        fdb=tuple(item for item in observed.fdb if item.owned),
        enslavements=enslavements,
        routes=routes,
        adoptions=tuple(adoptions.values()),
    )


def as_desired(state: HostState) -> HostState:
    """The owned part of ``state`` as a desired state for ``plan()``: every object in it owned."""
    snapshot = owned_snapshot(state)
    return replace(
        snapshot,
        addresses=tuple(replace(item, owned=True) for item in snapshot.addresses),
        fdb=tuple(replace(item, owned=True) for item in snapshot.fdb),
        enslavements=tuple(replace(item, owned=True) for item in snapshot.enslavements),
        routes=tuple(replace(item, owned=True) for item in snapshot.routes),
    )


def rollback_target(journal: Journal) -> HostState:
    """The journal's snapshot as a desired state (its owned part, everything in it owned), for ``plan()``."""
    return as_desired(journal.snapshot)


def ownership_during(journal: Journal, records: Records) -> Records:
    """``records`` plus every address, FDB entry and enslavement the journal's plan adds.

    Whatever point the apply reached, each object it may have added counts as owned, so a
    rollback removes it. Links need no entry: a created link carries the owner mark (see
    :func:`claim_planned_links` for the instant between its creation and its mark).
    """
    addresses = set(records.owned_addresses)
    fdb = set(records.owned_fdb)
    enslavements = set(records.owned_enslavements)
    adopted_addresses = set(records.adopted_addresses)
    adopted_routes = set(records.adopted_routes)
    for operation in journal.planned_operations():
        if operation.kind == "add_address":
            addresses.add((str(operation.detail("iface")), str(operation.detail("address"))))
        elif operation.kind == "add_fdb":
            fdb.add((str(operation.detail("iface")), str(operation.detail("mac")), str(operation.detail("dst"))))
        elif operation.kind == "set_master":
            enslavements.add((operation.target.split(":", 1)[1], str(operation.detail("master"))))
        elif operation.kind == "adopt_address":
            # The port's address as the plan adopts it: whatever point the apply reached, its copy on
            # the bridge goes back to the port on rollback (the journal is where the move is captured).
            adopted_addresses.add(adopted_address_entry(operation))
        elif operation.kind == "adopt_route":
            adopted_routes.add(adopted_route_entry(operation))
    return replace(records, owned_addresses=frozenset(addresses), owned_fdb=frozenset(fdb),
                   owned_enslavements=frozenset(enslavements), adopted_addresses=frozenset(adopted_addresses),
                   adopted_routes=frozenset(adopted_routes))


def adopted_address_entry(operation: Operation) -> Tuple[str, str, str]:
    """The records' entry of an adopt_address operation: (bridge, address, port)."""
    return (str(operation.detail("iface")), str(operation.detail("address")), str(operation.detail("port")))


def adopted_route_entry(operation: Operation) -> Tuple[str, str, str, str, str]:
    """The records' entry of an adopt_route (dev = the bridge) or restore_route (bridge) operation."""
    bridge = operation.detail("dev") if operation.kind == "adopt_route" else operation.detail("bridge")
    port = operation.detail("port") if operation.kind == "adopt_route" else operation.detail("dev")
    return (str(bridge), str(operation.detail("table")), str(operation.detail("dst")),
            str(operation.detail("metric")), str(port))


def mark_adopted(state: HostState, records: Records, *, keep: bool = False) -> HostState:
    """``state`` with the addresses and routes ``records`` says were adopted marked owned and
    ``adopted_from`` their port, and the adoptions they show. ``keep``: marks already set stay."""
    address_ports = records.adopted_address_ports()
    route_ports = records.adopted_route_ports()
    addresses = []
    for item in state.addresses:
        port = address_ports.get(item.key)
        if port is not None:
            item = replace(item, owned=True, adopted_from=port)
        elif not keep and item.adopted_from is not None:
            item = replace(item, adopted_from=None)
        addresses.append(item)
    routes = []
    for route in state.routes:
        port = route_ports.get(route.key)
        if port is not None:
            route = replace(route, owned=True, adopted_from=port)
        elif not keep:
            route = replace(route, owned=False, adopted_from=None)
        routes.append(route)
    return replace(state, addresses=tuple(addresses), routes=tuple(routes),
                   adoptions=adoptions_of(addresses, routes))


def apply_ownership(state: HostState, records: Records) -> HostState:
    """``state`` with addresses, FDB entries and enslavements in ``records`` marked owned (marks
    already set stay set)."""
    return mark_adopted(replace(
        state,
        addresses=tuple(replace(item, owned=item.owned or item.key in records.owned_addresses)
                        for item in state.addresses),
        fdb=tuple(replace(item, owned=item.owned or item.key in records.owned_fdb) for item in state.fdb),
        enslavements=tuple(replace(item, owned=item.owned or (item.port, item.master) in records.owned_enslavements)
                           for item in state.enslavements),
    ), records, keep=True)


def claim_planned_links(journal: Journal, state: HostState) -> HostState:
    """``state`` with unmarked links that the journal's plan creates counted as owned.

    The backend creates a link and marks it in a second request; a process killed in between
    leaves the link without its mark. The plan only creates a name that was free (or owned), so
    such a link is the transaction's.
    """
    created = {}
    for operation in journal.planned_operations():
        if operation.kind == "create_link":
            created[operation.target.split(":", 1)[1]] = str(operation.detail("ifalias") or "")
    links = []
    for link in state.links:
        if not link.owned and link.name in created and link.attr("ifalias") in (None, ""):
            owner = created[link.name].split(":", 1)[1] if ":" in created[link.name] else link.name
            link = replace(link, owner=owner)
        links.append(link)
    return replace(state, links=tuple(links))


def rollback_plan(journal: Journal, observed: HostState, records: Records) -> List[Operation]:
    """The operations that take the host from ``observed`` back to the journal's snapshot.

    Ownership is ``records`` united with everything the journal's plan adds; foreign objects are
    never touched (the planner's guarantee). ``ConflictError`` when the snapshot cannot be
    restored without touching a foreign object.
    """
    during = claim_planned_links(journal, apply_ownership(observed, ownership_during(journal, records)))
    return plan(rollback_target(journal), during)


def preview_rollback(journal: Journal, observed: HostState, records: Records) -> Tuple[List[Operation], HostState]:
    """The rollback of ``journal`` without running it (check mode): its operations, and the host it leaves.

    The rollback makes the owned part of the host the journal's snapshot and touches no foreign
    object, so the host afterwards is the snapshot (with its ownership marks, which
    ``journal.snapshot_records`` gives back) next to the foreign part of ``observed``. What the
    kernel takes along with a link the rollback deletes goes too: foreign addresses and FDB
    entries on it, the ports enslaved to it and their bridge VLANs.
    """
    during = claim_planned_links(journal, apply_ownership(observed, ownership_during(journal, records)))
    operations = plan(rollback_target(journal), during)
    snapshot = journal.snapshot
    deleted = {operation.target.split(":", 1)[1] for operation in operations if operation.kind == "delete_link"}
    restored = {link.name for link in snapshot.links}
    links = [link for link in during.links if not link.owned and link.name not in restored] + list(snapshot.links)
    kept = {link.name for link in links} - deleted  # links there after the rollback that it does not delete

    snapshot_ports = {item.port for item in snapshot.enslavements}
    enslavements = list(snapshot.enslavements) + [
        item for item in during.enslavements
        if not item.owned and item.port not in snapshot_ports and item.port in kept and item.master in kept]
    master_before = {item.port: item.master for item in during.enslavements}
    master_after = {item.port: item.master for item in enslavements}
    owned_before = {link.name for link in during.links if link.owned}
    bridge_vlans = list(snapshot.bridge_vlans) + [
        entry for entry in during.bridge_vlans
        if entry.port not in snapshot_ports and entry.port not in restored and entry.port not in owned_before
        and entry.port in kept and master_before.get(entry.port) == master_after.get(entry.port)]

    snapshot_addresses = {item.key for item in snapshot.addresses}
    snapshot_fdb = {item.key for item in snapshot.fdb}
    snapshot_routes = {item.key for item in snapshot.routes}
    foreign_addresses, foreign_routes = _port_objects_after(
        operations, [item for item in during.addresses if not item.owned],
        [item for item in during.routes if not item.owned])
    after = replace(
        snapshot,
        links=tuple(links),
        bridge_vlans=tuple(bridge_vlans),
        addresses=tuple(snapshot.addresses) + tuple(
            item for item in foreign_addresses if item.iface in kept and item.key not in snapshot_addresses),
        fdb=tuple(snapshot.fdb) + tuple(
            item for item in during.fdb if not item.owned and item.iface in kept and item.key not in snapshot_fdb),
        enslavements=tuple(enslavements),
        sysctls={**dict(observed.sysctls), **dict(snapshot.sysctls)},
        routes=tuple(snapshot.routes) + tuple(
            item for item in foreign_routes if item.dev in kept and item.key not in snapshot_routes),
    )
    return operations, after


def _port_objects_after(operations: Sequence[Operation], addresses: List[Address],
                        routes: List[Route]) -> Tuple[List[Address], List[Route]]:
    """The foreign addresses and routes once ``operations`` moved ports' addresses and routes around."""
    found = {item.key: item for item in addresses}
    placed = {(item.family, item.table, item.dst, item.metric): item for item in routes}
    for operation in operations:
        details = dict(operation.details)
        if operation.kind == "restore_address":
            item = Address(str(details["iface"]), str(details["address"]))
            found[item.key] = item
        elif operation.kind == "drop_port_address":
            found.pop((str(details["iface"]), Address("-", str(details["address"])).address), None)
        elif operation.kind in ("restore_route", "adopt_route"):
            route = Route(str(details["dst"]), str(details["dev"]), int(details["table"] or 0),
                          int(details["metric"] or 0), details.get("gateway"), bool(details.get("onlink")),
                          int(details["scope"] or 0), int(details["proto"] or 0), details.get("src"))
            if operation.kind == "restore_route":
                placed[route.place] = route
            else:
                placed.pop(route.place, None)  # moved to the bridge: the snapshot's adopted copy stands
    return list(found.values()), list(placed.values())


# --- history ---------------------------------------------------------------------------------


def topology_sha256(topology: Optional[Mapping[str, Any]]) -> Optional[str]:
    """sha256 of the topology's canonical JSON (sorted keys, no spaces); None without a topology."""
    if topology is None:
        return None
    text = json.dumps(topology, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_generation(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class History:
    """Committed generations, one file each: ``<state_dir>/history/<generation:06d>.json``."""

    _NAME = re.compile(r"^([0-9]{6,})\.json$")

    def __init__(self, state_dir: str) -> None:
        self.state_dir = check_state_dir(state_dir)
        self.directory = posixpath.join(self.state_dir, HISTORY_DIR)

    def path(self, generation: int) -> str:
        return posixpath.join(self.directory, f"{generation:06d}.json")

    def generations(self) -> List[int]:
        """The generations on disk, ascending."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise BackendError("history", f"cannot list {self.directory}: {error.strerror}") from None
        return sorted(int(match.group(1)) for match in map(self._NAME.match, names) if match)

    def commit(self, generation: int, user: str, topology: Optional[Mapping[str, Any]],
               operations: Sequence[Operation], state: HostState, records: Records, keep: int,
               *, now: Optional[float] = None) -> dict:
        """Record ``generation`` atomically, then remove all but the last ``keep`` generations.

        The entry holds the time (UTC), the user, the topology and its sha256, the count of
        operations per kind, and the committed owned state and records, enough for
        :meth:`load` to restore it. Returns the summary line as :meth:`list` shows it.
        """
        issues = []
        if not _is_generation(generation):
            issues.append(Issue("generation", f"{generation!r} is not a non-negative integer"))
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            issues.append(Issue("history", f"{keep!r} is not a positive number of generations to keep"))
        if issues:
            raise ValidationError(issues)
        when = utc_iso(now if now is not None else datetime.now(timezone.utc).timestamp())
        entry = {
            "format": HISTORY_FORMAT,
            "generation": generation,
            "time": when,
            "user": user,
            "topology_sha256": topology_sha256(topology),
            "summary": nonzero_counts(summarise(operations)),
            "topology": topology,
            "state": owned_snapshot(state).to_dict(),
            "records": records.to_dict(),
        }
        path = self.path(generation)
        try:
            make_state_dir(self.state_dir)
            if not os.path.isdir(self.directory):
                os.mkdir(self.directory, 0o700)
            write_atomically(path, json_writer(entry), 0o600)
            for old in self.generations()[:-keep]:
                os.unlink(self.path(old))
        except OSError as error:
            raise BackendError("history", f"cannot write {path}: {error.strerror or error}") from None
        return _summary(entry)

    def _read(self, generation: int) -> dict:
        path = self.path(generation)

        def parse(data: Any) -> dict:
            entry = check_format(data, HISTORY_FORMAT)
            if entry.get("generation") != generation:
                raise ValueError(f"generation: {entry.get('generation')!r} does not match the file name")
            for key in ("time", "user", "topology_sha256", "summary", "topology", "state", "records"):
                if key not in entry:
                    raise ValueError(f"{key}: missing")
            return entry

        entry = read_record(path, "history", parse)
        if entry is None:
            raise BackendError("history", f"cannot read {path}: No such file or directory")
        return entry

    def list(self) -> List[dict]:
        """Every generation kept, oldest first: generation, time, user, topology_sha256, summary.

        A damaged entry is a ``BackendError`` naming its file (never silently skipped).
        """
        return [_summary(self._read(generation)) for generation in self.generations()]

    def load(self, generation: Any) -> Tuple[HostState, Records, Optional[dict]]:
        """The committed owned state, records and topology of ``generation``.

        A generation that is not kept is a ``ValidationError`` on the field ``generation`` that
        names the generations available.
        """
        available = self.generations()
        if not _is_generation(generation) or generation not in available:
            names = ", ".join(str(item) for item in available) or "none"
            raise ValidationError(Issue("generation", f"{generation!r} is not in the history (available: {names})"))
        entry = self._read(generation)
        try:
            state = _state_from_dict(entry["state"], "state")
            records = _records_from_dict(entry["records"], "records")
        except ValueError as error:
            raise BackendError("history", f"{self.path(generation)} is corrupt ({error})") from None
        topology = entry["topology"]
        if topology is not None and not isinstance(topology, dict):
            raise BackendError("history", f"{self.path(generation)} is corrupt (topology: not a mapping)")
        return state, records, topology


def _summary(entry: Mapping[str, Any]) -> dict:
    return {key: entry[key] for key in ("generation", "time", "user", "topology_sha256", "summary")}


# --- shell pieces shared by restore.sh and the rollback script -----------------------------------


def _check_netns(netns: Optional[str]) -> Optional[str]:
    if netns is not None and not _NETNS.match(netns):
        raise RenderError(f"netns: {netns!r} is not a namespace name of letters, digits, '_', '.' and '-'")
    return netns or None


def _dnsmasq_functions(netns: Optional[str]) -> List[str]:
    """sh functions: find an instance by its pid file (checked as DnsmasqControl does: dnsmasq with
    this --conf-file), stop it, and start one recording its pid and config digest."""
    prefix = in_netns(netns, []) + " " if netns else ""
    return [
        "gw_instance_pid() {  # pid file, config: the pid when that process is this config's dnsmasq",
        '    [ -r "$1" ] || return 1',
        '    read -r gw_pid < "$1" || return 1',
        '    case $gw_pid in ""|*[!0-9]*) return 1 ;; esac',
        "    [ -r \"/proc/$gw_pid/cmdline\" ] || return 1",
        "    tr '\\000' '\\n' < \"/proc/$gw_pid/cmdline\" | grep -qxF -- \"--conf-file=$2\" || return 1",
        '    echo "$gw_pid"',
        "}",
        "gw_stop_instance() {  # pid file, config",
        '    gw_pid=$(gw_instance_pid "$1" "$2") || { rm -f "$1" "${1%.pid}.started"; return 0; }',
        '    kill "$gw_pid" 2>/dev/null',
        "    gw_wait=0",
        '    while [ "$gw_wait" -lt 50 ] && gw_instance_pid "$1" "$2" >/dev/null; do',
        "        sleep 0.1; gw_wait=$((gw_wait + 1))",
        "    done",
        '    gw_instance_pid "$1" "$2" >/dev/null && kill -9 "$gw_pid" 2>/dev/null',
        '    rm -f "$1" "${1%.pid}.started"',
        "}",
        "gw_start_instance() {  # config, pid file, sha256 of the config",
        '    rm -f "$2" "${2%.pid}.started"',
        f'    {prefix}dnsmasq --conf-file="$1" || return 1',
        "    gw_wait=0",
        '    until gw_pid=$(gw_instance_pid "$2" "$1"); do',
        f'        [ "$gw_wait" -lt {DNSMASQ_START_TENTHS} ] || return 1',
        "        sleep 0.1; gw_wait=$((gw_wait + 1))",
        "    done",
        '    printf \'{"pid": %s, "sha256": "%s"}\\n\' "$gw_pid" "$3" > "${2%.pid}.started"',
        "}",
    ]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _network_of(state_dir: str, path: str) -> str:
    """The network of a dnsmasq config path, checked to be ``<state_dir>/dnsmasq/<network>.conf``."""
    network = posixpath.basename(path)[:-len(".conf")] if path.endswith(".conf") else ""
    try:
        paths = instance_paths(state_dir, network)
    except RenderError:
        paths = None
    if paths is None or paths.config != path:
        raise RenderError(f"dnsmasq file {path!r} is not a config file in {state_dir}/dnsmasq")
    return network


def _write_file(path: str, content: str, mode: str, marker: str) -> List[str]:
    """Lines writing ``content`` to ``path`` through a temp file and mv (the rename is atomic)."""
    temporary = quote(f"{path}.gw-tmp")
    return [
        *heredoc(f"cat > {temporary}", content, marker, "&&"),
        f"chmod {mode} {temporary} && mv -f {temporary} {quote(path)} || status=1",
    ]


# --- boot persistence ------------------------------------------------------------------------


def persist_dir(state_dir: str) -> str:
    return posixpath.join(check_state_dir(state_dir), PERSIST_DIR)


def unit_name(netns: Optional[str]) -> str:
    """The systemd unit restoring the state: ``ghostwarden-restore[-<netns>].service``."""
    netns = _check_netns(netns)
    return f"ghostwarden-restore-{netns}.service" if netns else "ghostwarden-restore.service"


def boot_unit(state_dir: str, netns: Optional[str], *, pending: bool = False) -> Optional[Dict[str, str]]:
    """The boot-restore unit of ``state_dir`` as ``{name, path}`` when its file exists under
    ``<state_dir>/persist/`` (every commit writes it), or will once a ``pending`` change is
    committed (an open confirm window); None otherwise."""
    name = unit_name(netns)
    path = posixpath.join(persist_dir(state_dir), name)
    return {"name": name, "path": path} if pending or os.path.isfile(path) else None


def _unit_word(value: str) -> str:
    """A value as one double-quoted word of a unit file (``%`` is a specifier there)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def persistence_files(state: HostState, *, state_dir: str, netns: Optional[str]) -> Dict[str, str]:
    """The files under ``<state_dir>/persist/`` that restore ``state``'s owned part at boot.

    ``links.batch`` (``ip -batch``: owned links with their attributes, ports, addresses),
    ``bridge.batch`` (FDB entries and bridge VLANs), ``sysctl.conf``, ``ghostwarden.nft`` (the
    replace script, or the delete script without a ruleset), ``restore.sh`` (POSIX sh with ip,
    bridge, nft, sysctl and dnsmasq only) and the systemd unit (see :func:`unit_name`). Paths
    are absolute, sorted; equal input gives byte-identical files.
    """
    state_dir = check_state_dir(state_dir)
    netns = _check_netns(netns)
    directory = persist_dir(state_dir)
    # Planned against an empty host: every owned object is created (ports are foreign, so they exist).
    kernel_only = replace(as_desired(state), ruleset=None, dnsmasq_files=())
    script = render_batches(plan(kernel_only, empty_state()))
    files = {
        "links.batch": "".join(f"{line}\n" for line in script.ip_lines),
        "bridge.batch": "".join(f"{line}\n" for line in script.bridge_lines),
        # The committed values as they are, not planned against an empty host: the planner moves an
        # accept_ra between 1 and 2 only, and on an empty host there is no value to move from.
        "sysctl.conf": "".join(f"{key} = {value}\n" for key, value in state.sysctls),
        "ghostwarden.nft": render_replace_script(state.ruleset) if state.ruleset is not None
        else render_delete_script(),
    }
    files["restore.sh"] = _restore_script(state, state_dir, directory, netns)
    files[unit_name(netns)] = _unit(state_dir, directory, netns)
    return {posixpath.join(directory, name): content for name, content in sorted(files.items())}


def _restore_script(state: HostState, state_dir: str, directory: str, netns: Optional[str]) -> str:
    def at(name: str) -> str:
        return posixpath.join(directory, name)

    lines = [
        "#!/bin/sh",
        "# Generated by ghostwarden.core: restores the committed state with kernel tools only (no Python).",
        "# Runs once at boot (ghostwarden-restore unit); on a host that has the state already, the",
        "# creations fail (exists) and the rest is rewritten with the same values.",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
        "status=0",
    ]
    if netns:
        lines += [
            f"if [ ! -e {quote('/run/netns/' + netns)} ]; then",
            f"    echo {quote(f'ghostwarden restore: network namespace {netns} does not exist (ip netns add it first)')} >&2",
            "    exit 1",
            "fi",
        ]
    lines.append(f"{in_netns(netns, ['sysctl', '-q', '-p', at('sysctl.conf')])} || status=1")
    # At boot the host's own network service may not have brought a VLAN's parent up yet, and the
    # kernel refuses a VLAN device up on a down parent (ENETDOWN). The committed VLAN devices were
    # up, so their parents were: bring those up first.
    lines += [f"{in_netns(netns, ['ip', 'link', 'set', 'dev', parent, 'up'])} || status=1"
              for parent in _foreign_vlan_parents(state)]
    # A port whose addresses its bridge adopted is the host's way out; once its own configuration
    # moved to the bridge, nothing else may bring it up at boot.
    lines += [f"{in_netns(netns, ['ip', 'link', 'set', 'dev', item.port, 'up'])} || status=1"
              for item in owned_snapshot(state).adoptions]
    lines += [
        f"{batch_command('ip', at('links.batch'), netns=netns, force=True)} || status=1",
        f"{batch_command('bridge', at('bridge.batch'), netns=netns, force=True)} || status=1",
        f"{in_netns(netns, ['nft', '-f', at('ghostwarden.nft')])} || status=1",
        *_dnsmasq_functions(netns),
    ]
    for path, content in state.dnsmasq_files:
        network = _network_of(state_dir, path)
        pid = instance_paths(state_dir, network).pid
        lines += [
            f"if [ -f {quote(path)} ] && ! gw_instance_pid {quote(pid)} {quote(path)} >/dev/null; then",
            f"    gw_start_instance {quote(path)} {quote(pid)} {_sha256(content)} || status=1",
            "fi",
        ]
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"


def _foreign_vlan_parents(state: HostState) -> List[str]:
    """The parents of the owned VLAN devices that the state does not create itself, sorted."""
    snapshot = owned_snapshot(state)
    created = {link.name for link in snapshot.links}
    parents = {dict(link.attrs).get("parent") for link in snapshot.links if link.kind == "vlan"}
    return sorted(str(parent) for parent in parents if parent and parent not in created)


def _unit(state_dir: str, directory: str, netns: Optional[str]) -> str:
    where = f" in network namespace {netns}" if netns else ""
    lines = [
        "# Generated by ghostwarden.core.",
        "[Unit]",
        f"Description=Restore the committed ghostwarden network state{where}",
        "Documentation=file:" + posixpath.join(directory, "restore.sh"),
        "DefaultDependencies=no",
        "Wants=network-pre.target",
        "After=network-pre.target",
        "Before=network-online.target network.target",
        # The state directory may be a mount of its own (a separate /var): restore.sh reads it.
        f"RequiresMountsFor={_unit_word(state_dir)}",
    ]
    if netns:
        # The namespace (and the foreign links the state uses in it) must exist first; the unit
        # that creates it is the host's: order it with a drop-in After= (docs/transactions.md).
        lines.append(f"ConditionPathExists=/run/netns/{netns}")
    lines += [
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        # The dnsmasq instances restore.sh starts serve the networks after it exits, whatever its
        # exit status: a stop or a failure ends the script alone, not them.
        "KillMode=process",
        f"ExecStart=/bin/sh {_unit_word(posixpath.join(directory, 'restore.sh'))}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def write_persistence(files: Mapping[str, str]) -> None:
    """Write each file atomically (``restore.sh`` 0700, the rest 0600; the directory 0700).

    Each file is whole, old or new, at any instant; ``BackendError`` naming the file on failure.
    """
    for path, content in sorted(files.items()):
        try:
            directory = posixpath.dirname(path)
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            write_atomically(path, content, 0o700 if path.endswith(".sh") else 0o600)
        except OSError as error:
            raise BackendError("persistence", f"cannot write {path}: {error.strerror or error}") from None


# --- the confirm timer's rollback --------------------------------------------------------------


def rollback_script(journal: Journal, after: HostState, *, state_dir: str, netns: Optional[str]) -> str:
    """The POSIX sh the confirm timer runs when the window closes without a confirmation.

    It does nothing (exit 0) when ``<state_dir>/journal.json`` no longer holds this token or the
    confirm marker exists — checked before and again after taking the apply lock (``flock`` on
    the lock file StateStore uses). Otherwise, with kernel tools only: loads the snapshot's
    ruleset (or deletes the table), stops dnsmasq instances whose config goes, replays the
    reverse operations (``rollback_plan`` from ``after``, the host as the apply left it) with
    ``ip``/``bridge -force``, restores the snapshot's dnsmasq files and (re)starts their
    instances, writes the snapshot records to the state file, writes the rolled-back marker with
    the reason, removes the journal and logs one line through ``logger``. When any step fails
    the journal stays (the next run rolls back again from the live host) and it exits 1.
    """
    state_dir = check_state_dir(state_dir)
    netns = _check_netns(netns)
    store = JournalStore(state_dir)
    operations = rollback_plan(journal, after, journal.snapshot_records)
    kernel = render_batches([operation for operation in operations if operation.kind in NETLINK_KINDS])
    snapshot_files = dict(journal.snapshot.dnsmasq_files)
    after_files = dict(after.dnsmasq_files)
    nft_path = posixpath.join(state_dir, f"rollback-{journal.token}.nft")
    nft_script = (render_replace_script(journal.snapshot.ruleset) if journal.snapshot.ruleset is not None
                  else render_delete_script())
    records_text = json.dumps(journal.snapshot_records.to_dict(), indent=2, sort_keys=True) + "\n"
    if journal.confirm_deadline is not None:
        reason = (f"the confirm window closed at {utc_iso(journal.confirm_deadline)} without a confirmation; "
                  f"restored the state from before transaction {journal.token}")
    else:
        reason = f"no confirmation came; restored the state from before transaction {journal.token}"
    marker = f"GHOSTWARDEN_EOF_{journal.token}"
    token_line = f'"token": "{journal.token}"'  # as journal_text() writes it

    lines = [
        "#!/bin/sh",
        f"# Generated by ghostwarden.core: rolls back transaction {journal.token} unless it was confirmed.",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
        "umask 077",
        f"journal={quote(store.path)}",
        f"confirmed={quote(store.confirm_marker(journal.token))}",
        "gw_log() {",
        "    echo \"$1\" >&2",
        "    if command -v logger >/dev/null 2>&1; then logger -t ghostwarden -- \"$1\"; fi",
        "}",
        "gw_pending() {  # this transaction is still the journal's and not confirmed",
        f"    [ -f \"$journal\" ] && grep -qF {quote(token_line)} \"$journal\" && [ ! -e \"$confirmed\" ]",
        "}",
        "gw_pending || exit 0",
        f"exec 9>>{quote(posixpath.join(state_dir, LOCK_FILE))}",
        f"if ! flock -w {ROLLBACK_LOCK_WAIT_SECONDS} 9; then",
        f"    gw_log {quote(f'ghostwarden: rollback of transaction {journal.token} could not take the apply lock; the next run rolls back')}",
        "    exit 1",
        "fi",
        "gw_pending || exit 0",
        "status=0",
        *_dnsmasq_functions(netns),
        *_write_file(nft_path, nft_script, "600", marker),
        # The old firewall first: it is what lets the operator back in.
        f"{in_netns(netns, ['nft', '-f', nft_path])} || status=1",
    ]
    for path in sorted(set(after_files) - set(snapshot_files)):
        network = _network_of(state_dir, path)
        lines += [
            f"gw_stop_instance {quote(instance_paths(state_dir, network).pid)} {quote(path)}",
            f"rm -f {quote(path)} || status=1",
        ]
    lines += shell_lines(kernel, netns=netns, force=True)
    for path, content in sorted(snapshot_files.items()):
        network = _network_of(state_dir, path)
        pid = instance_paths(state_dir, network).pid
        directory = posixpath.dirname(path)
        if after_files.get(path) != content:
            lines += [
                f"mkdir -p {quote(directory)} && chmod 755 {quote(directory)} || status=1",
                *_write_file(path, content, "644", marker),
                f"gw_stop_instance {quote(pid)} {quote(path)}",
            ]
        lines += [
            f"if ! gw_instance_pid {quote(pid)} {quote(path)} >/dev/null; then",
            f"    gw_start_instance {quote(path)} {quote(pid)} {_sha256(content)} || status=1",
            "fi",
        ]
    lines += [
        'if [ "$status" -ne 0 ]; then',
        f"    gw_log {quote(f'ghostwarden: rollback of transaction {journal.token} failed in a step; the journal stays for the next run')}",
        "    exit 1",
        "fi",
        *_write_file(posixpath.join(state_dir, STATE_FILE), records_text, "600", marker),
        *_write_file(store.rolled_back_marker(journal.token), reason + "\n", "600", marker),
        'if [ "$status" -ne 0 ]; then',
        f"    gw_log {quote(f'ghostwarden: rollback of transaction {journal.token} could not write its records; the journal stays')}",
        "    exit 1",
        "fi",
        f"rm -f \"$journal\" {quote(nft_path)}",
        f"gw_log {quote(f'ghostwarden: {reason}')}",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "History", "Journal", "JournalStore", "apply_ownership", "boot_unit", "claim_planned_links", "journal_text",
    "new_token", "owned_snapshot", "ownership_during", "persist_dir", "persistence_files", "rollback_plan",
    "rollback_script", "rollback_target", "topology_sha256", "unit_name", "utc_iso", "write_persistence",
]
