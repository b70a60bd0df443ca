# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The driver that makes a host match a compiled topology.

observe (kernel + nft + dnsmasq files, ownership from the records) -> plan -> execute
(each operation through the backend that owns its kind) -> record what the collection now
owns -> make dnsmasq processes match their files. No Ansible here: modules hand in a
:class:`CommandRunner` and turn :class:`GhostwardenError` into ``fail_json``.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import os
import posixpath
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from ansible_collections.ghostwarden.core.plugins.module_utils.host._batch import KernelBatch, batch_tool
from ansible_collections.ghostwarden.core.plugins.module_utils.host._dnsmasq_control import DnsmasqControl
from ansible_collections.ghostwarden.core.plugins.module_utils.host import _timer
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    GhostwardenError,
    Issue,
    RollbackFailedError,
    RolledBackError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import OWNER_ALIAS_PREFIX
from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import NETLINK_KINDS
from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend
from ansible_collections.ghostwarden.core.plugins.module_utils.host._nft_cli import NftCli
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan, restoring_sysctls
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    SYSCTL_IPV4_FORWARDING,
    SYSCTL_IPV6_FORWARDING,
    Address,
    Enslavement,
    FdbEntry,
    HostState,
    Operation,
    empty_state,
    summarise,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._probe import run_probes
from ansible_collections.ghostwarden.core.plugins.module_utils.host._results import nonzero_counts, without_content
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records, StateStore, write_atomically
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import (
    History,
    Journal,
    JournalStore,
    adopted_address_entry,
    adopted_route_entry,
    as_desired,
    mark_adopted,
    new_token,
    owned_snapshot,
    ownership_during,
    persistence_files,
    preview_rollback,
    rollback_plan,
    rollback_script,
    rollback_target,
    utc_iso,
    write_persistence,
)

RULESET_KINDS = frozenset({"replace_ruleset", "delete_ruleset"})
FILE_KINDS = frozenset({"write_file", "remove_file"})

# Test-only fault injection: SIGKILL the module right after its K-th executed operation, to prove that
# a transaction killed at any point leaves the host in the old or the new committed state.
KILL_AFTER_ENV = "GHOSTWARDEN_TEST_KILL_AFTER"
DEFAULT_HISTORY = 10
# How long a run waits for the apply lock (StateStore.lock's default), and how often it tries.
LOCK_TIMEOUT_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.1
NFT_MISSING_WARNING = ("check mode: nft is not installed on the target, so the table inet ghostwarden was not "
                       "read and the ruleset was not checked with nft -c; a real run needs nft")

# (operation, observed host) -> whether the operation belongs to the module's scope
OperationFilter = Callable[[Operation, HostState], bool]
# Run before planning, in check mode too: raises to refuse the change, or returns warnings (the lock-out guard).
Guard = Callable[["HostDriver"], list]


@dataclass
class ApplyResult:
    operations: list[Operation]
    dnsmasq: list[str]
    before: HostState
    after: HostState
    records: Records
    changes: dict[str, int] = field(default_factory=dict)
    confirm: dict | None = None  # {token, deadline_in, rollback_generation} while a confirm window is open
    recovered: str | None = None  # what an earlier interrupted transaction was rolled back for
    probes: list[dict] = field(default_factory=list)  # results of the probes run after the change
    # Check mode only: the recovery a real run does first ({action, reason, generation, plan, changes}).
    recovery: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.operations or self.dnsmasq)


class HostDriver:
    """One host (or one network namespace of it) and the collection's state directory for it."""

    def __init__(self, *, state_dir: str, netns: str | None = None, runner: CommandRunner | None = None) -> None:
        self.runner = runner or CommandRunner(netns=netns)
        if netns and self.runner.netns != netns:
            raise ValueError("runner and driver disagree on the network namespace")
        self.netns = netns
        self.state_dir = state_dir
        self.store = StateStore(state_dir)
        self.journals = JournalStore(state_dir)
        self.history = History(state_dir)
        self.nft = NftCli(self.runner)
        self.dnsmasq = DnsmasqControl(self.runner, state_dir)
        self.batch = KernelBatch(self.runner)
        self._netlink: NetlinkBackend | None = None
        # The table as nft listed it right after this run loaded it: the observation after the change
        # uses it instead of listing a large table a second time (nothing touches the table in between).
        self._listing_after_load: str | None = None

    @property
    def netlink(self) -> NetlinkBackend:
        if self._netlink is None:
            self._netlink = NetlinkBackend(self.netns)
        return self._netlink

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

    def __enter__(self) -> HostDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def locked(self, *, check_mode: bool = False) -> Iterator[None]:
        """The apply lock for one module run.

        A real run holds :meth:`StateStore.lock` (which creates the state directory and the lock
        file). Check mode writes nothing: it holds the lock shared when the file exists, so it never
        takes the journal of a transaction in progress for a stale one, and goes without it when
        there is none (no run has used this state directory yet, so there is nothing to wait for).
        """
        if not check_mode:
            with self.store.lock():
                yield
            return
        descriptor = _open_existing(self.store.lock_path)
        if descriptor is None:
            yield
            return
        try:
            _flock_within(descriptor, self.store.lock_path, LOCK_TIMEOUT_SECONDS)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    # -- observing ---------------------------------------------------------------------------
    def observe(self, records: Records, desired: HostState, *, read_table: bool = True) -> HostState:
        """The host as the planner sees it: ownership of addresses, FDB entries and ports from ``records``.

        The live nft listing is never byte-equal to the rendered text; when the two normalise to
        the same table the observed ruleset *is* the desired one, otherwise the listing stands.
        ``read_table=False`` (check mode without nft) observes the table as absent.
        """
        # The forwarding keys always: snapshots, history and boot files must hold them even when
        # this run's desired state does not mention them.
        sysctl_keys = sorted(set(dict(desired.sysctls)) | set(records.sysctl_previous)
                             | {SYSCTL_IPV4_FORWARDING, SYSCTL_IPV6_FORWARDING})
        # The ports and bridges of adoptions, wanted or recorded: their routes and MAC addresses are observed.
        adoption_links = ({item.port for item in desired.adoptions} | {item.bridge for item in desired.adoptions}
                          | records.adoption_links())
        kernel = self.netlink.observe(sysctl_keys, adoption_links) if adoption_links else \
            self.netlink.observe(sysctl_keys)
        listing, self._listing_after_load = self._listing_after_load, None
        if listing is None:
            listing = self.nft.list_table() if read_table else None
        ruleset = listing
        if listing is not None and desired.ruleset is not None:
            # Fast path: the table is byte-for-byte what nft listed after our last load of this rendering.
            unchanged = (records.nft_digests.get("listing") == sha256_text(listing)
                         and records.nft_digests.get("ruleset") == sha256_text(desired.ruleset))
            if unchanged or self.nft.matches(listing, desired.ruleset):
                ruleset = desired.ruleset
        kernel = mark_adopted(kernel, records)
        return replace(
            kernel,
            addresses=tuple(
                replace(address, owned=address.adopted_from is not None
                        or (address.iface, address.address) in records.owned_addresses)
                for address in kernel.addresses
            ),
            fdb=tuple(
                replace(entry, owned=(entry.iface, entry.mac, entry.dst) in records.owned_fdb) for entry in kernel.fdb
            ),
            enslavements=tuple(
                replace(item, owned=(item.port, item.master) in records.owned_enslavements)
                for item in kernel.enslavements
            ),
            ruleset=ruleset,
            dnsmasq_files=self.dnsmasq.observe_files(),
        )

    # -- applying ----------------------------------------------------------------------------
    def apply(self, desired: HostState, *, check_mode: bool, scope: OperationFilter | None = None,
              topology: dict | None = None, want_after: bool = False, probes: Sequence[dict] = (),
              confirm_timeout: float = 0, history_keep: int = DEFAULT_HISTORY,
              guard: Guard | None = None) -> ApplyResult:
        """Plan ``desired`` against the host and, unless ``check_mode``, execute it as a transaction.

        ``scope`` limits the operations to one network's objects (ghostwarden_network,
        ghostwarden_policy); ``topology`` is the normalised topology recorded as applied. A failure
        of any operation, of dnsmasq or of a probe rolls the host back to the snapshot taken
        before and raises :class:`RolledBackError`. With ``confirm_timeout`` the change stays
        pending: a detached timer rolls it back unless :meth:`confirm` is called in time.
        ``want_after`` observes the host again after a change (for diffs). ``guard`` runs after any
        recovery and before planning: it refuses the change by raising, or returns warnings.

        Check mode writes nothing at all (see :meth:`_check`). A real run checks a new ruleset with
        ``nft -c`` before it writes its journal: a table the kernel refuses fails the run with
        nothing changed and so nothing to roll back.
        """
        if check_mode:
            return self._check(desired, scope, guard)
        recovered = self.recover()
        warnings = guard(self) if guard is not None else []
        records = self.store.load()
        desired = restoring_sysctls(desired, records.sysctl_previous)
        before = self.observe(records, desired)
        operations = _in_scope(plan(desired, before), before, scope)
        if not operations:
            if topology != records.topology:
                records = replace(records, topology=topology)
                self.store.save(records)
            return ApplyResult([], self.dnsmasq.reconcile(), before, before, records, summarise([]),
                               recovered=recovered, warnings=warnings)

        self._check_rulesets(operations)
        journal = Journal(new_token(), time.time(), os.getpid(), owned_snapshot(before), records,
                          [operation.to_dict() for operation in operations])
        self.journals.write(journal)
        try:
            records, dnsmasq_changes = self._execute_all(operations, records, topology)
            probe_results = run_probes(list(probes), self.runner) if probes else []
            failed = [result for result in probe_results if not result.ok]
            if failed:
                raise BackendError("probes", "; ".join(f"{result.name}: {result.detail}" for result in failed))
        except GhostwardenError as error:
            step, cause = (error.step, error.cause) if isinstance(error, BackendError) else ("apply", str(error))
            try:
                self.rollback(journal, f"{step}: {cause}")
            except GhostwardenError as rollback_error:
                # The journal stays: the next run (or the operator's rollback) tries again from the live host.
                raise RollbackFailedError(step, f"{cause}; rolling back failed too ({rollback_error}); the next "
                                                "run rolls back again before it applies anything") from None
            raise RolledBackError(step, cause, journal.snapshot_records.generation) from None
        after = self.observe(records, desired)
        result = ApplyResult(operations, dnsmasq_changes, before, after if want_after else desired, records,
                             summarise(operations), recovered=recovered,
                             probes=[probe.to_dict() for probe in probe_results], warnings=warnings)
        if confirm_timeout > 0:
            result.confirm = self._open_window(journal, after, confirm_timeout)
        else:
            self._commit(journal, operations, after, records, history_keep)
        return result

    def _check(self, desired: HostState, scope: OperationFilter | None, guard: Guard | None) -> ApplyResult:
        """Check mode: what a real run would do, found without writing anything.

        Nothing is executed, recovered, recorded or started. A journal an earlier run left is
        reported, not acted on: :attr:`ApplyResult.recovery` says what a real run does with it
        first, and the apply is planned from the host as that recovery leaves it, so ``plan`` is
        what the real run executes after it. A new ruleset is checked with ``nft -c`` in the
        target's namespace (skipped with a warning where nft is not installed).
        """
        warnings: list[str] = guard(self) if guard is not None else []
        read_table = self.nft.installed()
        if not read_table:
            warnings.append(NFT_MISSING_WARNING)
        records = self.store.load()
        journal, confirmed = self._stale_journal() or (None, False)
        rolls_back = journal is not None and not confirmed
        if journal is not None and rolls_back:
            records_after = journal.snapshot_records
            desired = restoring_sysctls(desired, records_after.sysctl_previous)
            recovery, before = self._preview_rollback(journal, records, desired, read_table)
        else:
            records_after = records
            desired = restoring_sysctls(desired, records.sysctl_previous)
            before = self.observe(records, desired, read_table=read_table)
            recovery = None if journal is None else {
                "action": "finish commit", "generation": records.generation, "plan": [], "changes": {},
                "reason": f"the apply started {utc_iso(journal.created)} was confirmed but its commit did not "
                          f"finish; the real run commits it as generation {records.generation} first"}
        if recovery is not None:
            warnings.append(f"check mode: {self.journals.path} holds an unfinished transaction: {recovery['reason']}")
        operations = _in_scope(plan(desired, before), before, scope)
        if read_table:
            self._check_rulesets(operations)
        # After a rollback the instances match the snapshot's files: only the plan's files change them.
        dnsmasq = self._pending_dnsmasq(operations, include_current=not rolls_back)
        return ApplyResult(operations, dnsmasq, before, _predicted(before, desired, operations, scope), records_after,
                           summarise(operations),
                           recovery=recovery, warnings=warnings)

    def _preview_rollback(self, journal: Journal, records: Records, desired: HostState,
                          read_table: bool) -> tuple[dict, HostState]:
        """The rollback :meth:`recover` would run for ``journal`` as a report, and the host it would leave.

        ``desired`` is what the apply after it plans for: the host is observed the way the real
        run observes it after the rollback (its sysctls, its table as the desired text when equal).
        """
        target = rollback_target(journal)
        restored = journal.snapshot_records
        # One observation serves both plans: the rollback's sysctls and those the apply looks at.
        live = self.observe(ownership_during(journal, records),
                            replace(target, sysctls={**dict(desired.sysctls), **dict(target.sysctls)},
                                    adoptions=tuple({item.port: item for item in
                                                     (*target.adoptions, *desired.adoptions)}.values())),
                            read_table=read_table)
        operations, after = preview_rollback(journal, live, records)
        operations = sorted(operations, key=_firewall_first)
        if (after.ruleset is not None and desired.ruleset is not None
                and self.nft.matches(after.ruleset, desired.ruleset)):
            after = replace(after, ruleset=desired.ruleset)
        keys = set(dict(desired.sysctls)) | set(restored.sysctl_previous) | {SYSCTL_IPV4_FORWARDING,
                                                                             SYSCTL_IPV6_FORWARDING}
        after = replace(after, sysctls={key: value for key, value in after.sysctls if key in keys})
        recovery = {
            "action": "roll back",
            "generation": restored.generation,
            "reason": f"the apply started {utc_iso(journal.created)} did not finish because {_why_stale(journal)}; "
                      f"the real run rolls it back to generation {restored.generation} ({len(operations)} "
                      "operations) before it applies anything",
            # Without file and ruleset contents: the journal holds them, and results stay small.
            "plan": [without_content(operation) for operation in operations],
            "changes": nonzero_counts(summarise(operations)),
        }
        return recovery, after

    def _check_rulesets(self, operations: Sequence[Operation]) -> None:
        """``nft -c`` of each table the plan loads; ``BackendError("nft check", ...)`` naming the line it refuses."""
        for operation in operations:
            if operation.kind == "replace_ruleset":
                self.nft.check(str(operation.detail("content")))

    def _stale_journal(self) -> tuple[Journal, bool] | None:
        """The journal an earlier run left, and whether its change was confirmed; None when there is none.

        Under the apply lock a journal is never that of a transaction in progress. One whose confirm
        window is still open is not stale: ``BackendError("confirm window", ...)``, in check mode too.
        """
        journal = self.journals.read()
        if journal is None:
            return None
        if _timer.confirmed(journal.token, self.state_dir):
            return journal, True
        if journal.confirm_deadline is not None and time.time() < journal.confirm_deadline:
            raise BackendError("confirm window", f"generation {journal.snapshot_records.generation + 1} awaits "
                                                 f"confirmation until {utc_iso(journal.confirm_deadline)}; it is "
                                                 "confirmed by the same task or rolled back when the window closes")
        return journal, False

    def _execute_all(self, operations: Sequence[Operation], records: Records,
                     topology: dict | None) -> tuple[Records, list[str]]:
        kill_after = int(os.environ.get(KILL_AFTER_ENV) or 0)
        ledger = OwnershipLedger(records)
        stopped: list[str] = []
        index = 0
        while index < len(operations):
            run = _batch_run(operations, index, kill_after)
            if run:
                try:
                    self.batch.execute(run)
                finally:
                    if self._netlink is not None:
                        self._netlink.forget_indexes()
                for operation in run:
                    ledger.record(operation)
                index += len(run)
            else:
                operation = operations[index]
                self._execute(operation)
                ledger.record(operation)
                index += 1
                if operation.kind == "remove_file":
                    # Stop the instance now, while its interface still exists (the plan removes files first).
                    network = posixpath.basename(str(operation.detail("path"))).rsplit(".", 1)[0]
                    if self.dnsmasq.stop(network):
                        stopped.append(f"stopped {network}")
            if index == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        updated = ledger.records(records, topology=topology, generation=records.generation + 1,
                                 nft_digests=self._nft_digests(operations, records))
        self.store.save(updated)
        return updated, stopped + self.dnsmasq.reconcile()

    def _nft_digests(self, operations: Sequence[Operation], records: Records) -> dict:
        """Digests of the table as loaded and as nft lists it, for the next run's fast comparison."""
        loaded = [op for op in operations if op.kind in RULESET_KINDS]
        if not loaded:
            return dict(records.nft_digests)
        if loaded[-1].kind == "delete_ruleset":
            return {}
        listing = self._listing_after_load = self.nft.list_table()
        if listing is None:
            return {}
        return {"listing": sha256_text(listing), "ruleset": sha256_text(str(loaded[-1].detail("content")))}

    def _open_window(self, journal: Journal, after: HostState, timeout: float) -> dict:
        """Arm the detached rollback timer; the journal stays until :meth:`confirm` or the timer ends it."""
        journal = replace(journal, confirm_deadline=time.time() + timeout)
        script_path = posixpath.join(self.state_dir, f"rollback-{journal.token}.sh")
        write_atomically(script_path, rollback_script(journal, after, state_dir=self.state_dir, netns=self.netns),
                         0o700)
        self.journals.write(journal)
        _timer.arm(script_path, timeout, token=journal.token, runner=self.runner.on_host(), state_dir=self.state_dir)
        return {"token": journal.token, "deadline_in": round(journal.confirm_deadline - time.time(), 1),
                "rollback_generation": journal.snapshot_records.generation}

    def _commit(self, journal: Journal, operations: Sequence[Operation], after: HostState, records: Records,
                history_keep: int) -> None:
        """The change stays: history entry, boot-restore files, journal gone (in that order)."""
        committed = owned_snapshot(after)
        self.history.commit(records.generation, _user(), records.topology, operations, committed, records,
                            history_keep)
        write_persistence(persistence_files(committed, state_dir=self.state_dir, netns=self.netns))
        self.journals.remove()
        # Under the apply lock a timer that still fires finds no journal and leaves: its files can go.
        for leftover in (posixpath.join(self.state_dir, f"rollback-{journal.token}.sh"),
                         _timer.marker_path(self.state_dir, journal.token),
                         _timer.record_path(self.state_dir, journal.token)):
            if os.path.exists(leftover):
                os.unlink(leftover)

    def confirm(self, token: str, history_keep: int = DEFAULT_HISTORY, *, check_mode: bool = False) -> dict:
        """The controller reached the host again: keep the pending change (``state: confirmed``).

        In check mode only whether the change is still pending: ``changed`` says a real run would commit it.
        """
        journal = self.journals.read()
        if journal is None or journal.token != token:
            marker = self.journals.rolled_back_marker(token)
            reason = "the change is no longer pending"
            if os.path.exists(marker):
                with open(marker, encoding="utf-8") as handle:
                    reason = handle.read().strip() or reason
            return {"changed": False, "confirmed": False, "rolled_back": True, "rollback_reason": reason}
        if check_mode:
            return {"changed": True, "confirmed": False, "rolled_back": False,
                    "generation": self.store.load().generation}
        # The marker first: a timer that fires now sees it under the lock and leaves the change alone.
        _timer.confirm(token, self.state_dir)
        _timer.disarm(token, self.state_dir, self.runner.on_host())
        records = self.store.load()
        after = self.observe(records, empty_state())
        self._commit(journal, journal.planned_operations(), after, records, history_keep)
        return {"changed": True, "confirmed": True, "rolled_back": False, "generation": records.generation}

    def recover(self) -> str | None:
        """Finish what an earlier transaction left: roll back an interrupted apply or an expired window.

        Never in check mode: :meth:`_check` reports the same decision without acting on it.
        """
        journal, confirmed = self._stale_journal() or (None, False)
        if journal is None:
            return None
        if confirmed:
            # Confirmed, then interrupted before the commit finished: finish the commit.
            records = self.store.load()
            self._commit(journal, journal.planned_operations(), self.observe(records, empty_state()), records,
                         DEFAULT_HISTORY)
            return None
        reason = f"the apply started {utc_iso(journal.created)} was rolled back because {_why_stale(journal)}"
        self.rollback(journal, reason)
        return reason

    def rollback(self, journal: Journal, reason: str) -> list[Operation]:
        """Put the host back to the journal's snapshot and forget the transaction."""
        records = self.store.load()
        # Observed with what the plan may have adopted too: its ports' and bridges' routes are looked at.
        observed = self.observe(ownership_during(journal, records), rollback_target(journal))
        operations = sorted(rollback_plan(journal, observed, records), key=_firewall_first)
        for operation in operations:
            self._execute(operation)
            if operation.kind == "remove_file":
                self.dnsmasq.stop(posixpath.basename(str(operation.detail("path"))).rsplit(".", 1)[0])
        self.store.save(journal.snapshot_records)
        self.dnsmasq.reconcile()
        write_atomically(self.journals.rolled_back_marker(journal.token), reason + "\n", 0o600)
        self.journals.remove()
        return operations

    def roll_back_to(self, generation: int | None, *, check_mode: bool, want_after: bool = False,
                     history_keep: int = DEFAULT_HISTORY) -> ApplyResult:
        """``state: rolled_back``: make the host what committed ``generation`` was (default: the one before)."""
        generations = self.history.generations()
        current = self.store.load().generation
        if generation is None:
            earlier = [number for number in generations if number < current]
            if not earlier:
                raise ValidationError(Issue("generation", f"no committed generation before {current} is kept "
                                                          f"(kept: {', '.join(map(str, generations)) or 'none'})"))
            generation = earlier[-1]
        state, _records, topology = self.history.load(generation)
        return self.apply(as_desired(state), check_mode=check_mode, topology=topology,
                          want_after=want_after, history_keep=history_keep)

    def _pending_dnsmasq(self, operations: Sequence[Operation], *, include_current: bool = True) -> list[str]:
        """In check mode, which instances a real run would (re)start or stop: those that do not match
        their files now (``include_current``) and those whose file the plan changes."""
        pending = self.dnsmasq.reconcile(dry_run=True) if include_current else []
        for operation in operations:
            if operation.kind in FILE_KINDS:
                verb = "restart or start" if operation.kind == "write_file" else "stop"
                pending.append(f"would {verb} the instance of {operation.detail('path')}")
        return sorted(set(pending))

    def _execute(self, operation: Operation) -> None:
        if operation.kind in NETLINK_KINDS:
            self.netlink.execute(operation)
        elif operation.kind == "replace_ruleset":
            # apply() checked it with nft -c before the journal; a rollback loads a table loaded before.
            self.nft.replace(str(operation.detail("content")), check_first=False)
        elif operation.kind == "delete_ruleset":
            self.nft.delete()
        elif operation.kind == "write_file":
            self.dnsmasq.write_file(str(operation.detail("path")), str(operation.detail("content")))
        elif operation.kind == "remove_file":
            self.dnsmasq.remove_file(str(operation.detail("path")))
        else:  # the planner and this table are out of step: a bug, not user input
            raise BackendError(str(operation), f"no backend executes operations of kind {operation.kind}")

    def remove_everything(self, *, check_mode: bool, want_after: bool = False,
                          history_keep: int = DEFAULT_HISTORY) -> ApplyResult:
        """``state: absent``: every owned object goes; dnsmasq instances stop; foreign objects stay."""
        result = self.apply(empty_state(), check_mode=check_mode, topology=None, want_after=want_after,
                            history_keep=history_keep)
        if not check_mode:
            stopped = self.dnsmasq.stop_all()
            result.dnsmasq = sorted(set(result.dnsmasq) | set(stopped or []))
        return result


class OwnershipLedger:
    """What the collection owns as operations succeed: the ownership the kernel cannot show.

    Kept in plain sets while a plan runs and turned into :class:`Records` once, because building
    Records canonicalises every entry (an apply of 500 networks would otherwise do it 1,000 times).
    """

    def __init__(self, records: Records) -> None:
        self.addresses = set(records.owned_addresses)
        self.fdb = set(records.owned_fdb)
        self.enslavements = set(records.owned_enslavements)
        self.sysctls = dict(records.sysctl_previous)
        self.adopted_addresses = set(records.adopted_addresses)
        self.adopted_routes = set(records.adopted_routes)

    def record(self, operation: Operation) -> None:
        kind = operation.kind
        if kind == "adopt_address":
            self.adopted_addresses.add(adopted_address_entry(operation))
        elif kind == "adopt_route":
            self.adopted_routes.add(adopted_route_entry(operation))
        elif kind == "restore_route":
            self.adopted_routes.discard(adopted_route_entry(operation))
        elif kind == "add_address":
            self.addresses.add((str(operation.detail("iface")), str(operation.detail("address"))))
        elif kind == "remove_address":
            self.addresses.discard((str(operation.detail("iface")), str(operation.detail("address"))))
            self.adopted_addresses = {item for item in self.adopted_addresses
                                      if item[:2] != (str(operation.detail("iface")), str(operation.detail("address")))}
        elif kind == "add_fdb":
            self.fdb.add((str(operation.detail("iface")), str(operation.detail("mac")), str(operation.detail("dst"))))
        elif kind == "remove_fdb":
            self.fdb.discard((str(operation.detail("iface")), str(operation.detail("mac")),
                              str(operation.detail("dst"))))
        elif kind == "set_master":  # always a foreign port: owned links get their master in create/modify_link
            port = operation.target.split(":", 1)[1]
            self.enslavements = {item for item in self.enslavements if item[0] != port}
            self.enslavements.add((port, str(operation.detail("master"))))
        elif kind == "release_master":
            port = operation.target.split(":", 1)[1]
            self.enslavements = {item for item in self.enslavements if item[0] != port}
        elif kind == "delete_link":
            # The kernel takes a link's addresses and FDB entries with it, and releases its ports.
            name = operation.target.split(":", 1)[1]
            self.addresses = {item for item in self.addresses if item[0] != name}
            self.fdb = {item for item in self.fdb if item[0] != name}
            self.enslavements = {item for item in self.enslavements if item[1] != name}
            self.adopted_addresses = {item for item in self.adopted_addresses if item[0] != name}
            self.adopted_routes = {item for item in self.adopted_routes if item[0] != name}
        elif kind == "set_sysctl":
            key = str(operation.detail("key"))
            was = operation.detail("was")
            if key in self.sysctls and self.sysctls[key] == operation.detail("value"):
                del self.sysctls[key]  # back to the value it had before the collection set it
            elif key not in self.sysctls and was is not None:
                self.sysctls[key] = str(was)

    def records(self, base: Records, **changes: object) -> Records:
        return replace(base, owned_addresses=frozenset(self.addresses), owned_fdb=frozenset(self.fdb),
                       owned_enslavements=frozenset(self.enslavements), sysctl_previous=self.sysctls,
                       adopted_addresses=frozenset(self.adopted_addresses),
                       adopted_routes=frozenset(self.adopted_routes), **changes)


def record_operation(records: Records, operation: Operation) -> Records:
    """``records`` after one more successful operation."""
    ledger = OwnershipLedger(records)
    ledger.record(operation)
    return ledger.records(records)


def _firewall_first(operation: Operation) -> bool:
    """Sort key: a new table is loaded before anything else (stable for the rest of the plan).

    nft -f is one transaction and the table names interfaces as strings, so even a ruleset that
    passed ``nft -c`` and is refused at load time fails the apply before any link, address or file
    has changed. Deleting the table stays last,
    as planned: networks that go away keep their filtering until they are gone.
    """
    return operation.kind != "replace_ruleset"


def _in_scope(operations: Iterable[Operation], observed: HostState, scope: OperationFilter | None) -> list[Operation]:
    """The module's share of a plan, the firewall first."""
    return sorted((op for op in operations if scope is None or scope(op, observed)), key=_firewall_first)


def _predicted(before: HostState, desired: HostState, operations: Sequence[Operation],
               scope: OperationFilter | None) -> HostState:
    """The host check mode predicts: ``desired``, except the table and files a scoped plan leaves alone."""
    if scope is None:
        return desired
    predicted = desired
    if not any(operation.kind in RULESET_KINDS for operation in operations):
        predicted = replace(predicted, ruleset=before.ruleset)
    touched = {str(operation.detail("path")) for operation in operations if operation.kind in FILE_KINDS}
    files = {path: content for path, content in before.dnsmasq_files if path not in touched}
    files.update((path, content) for path, content in desired.dnsmasq_files if path in touched)
    return replace(predicted, dnsmasq_files=files)


def _batch_run(operations: Sequence[Operation], start: int, kill_after: int) -> list[Operation]:
    """The operations from ``start`` that one tool's batch executes: consecutive, of one tool.

    With the test hook ``kill_after`` a run ends there, so that the process dies after exactly
    that many operations, as it would between two netlink requests.
    """
    tool = batch_tool(operations[start])
    if tool is None:
        return []
    end = start
    while end < len(operations) and batch_tool(operations[end]) == tool and (not kill_after or end < kill_after):
        end += 1
    return list(operations[start:end])


def _why_stale(journal: Journal) -> str:
    return "its confirm window closed" if journal.confirm_deadline is not None else "it was interrupted"


def _open_existing(path: str) -> int | None:
    """``path`` opened read-only, None when it does not exist (nothing is created)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BackendError("lock", f"cannot open {path}: {error.strerror or error}") from None


def _flock_within(descriptor: int, path: str, timeout: float) -> None:
    """A shared ``flock`` on ``descriptor``, waiting up to ``timeout`` seconds for an apply to finish."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise BackendError("lock", f"cannot lock {path}: {error.strerror or error}") from None
        if time.monotonic() >= deadline:
            raise BackendError("lock", f"another apply holds {path} (waited {timeout:g} s)")
        time.sleep(LOCK_POLL_SECONDS)


def _user() -> str:
    """Who applied: the sudo user behind root when there is one."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return str(os.getuid())


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- scoping for the per-network modules ------------------------------------------------------


def network_scope(network: str, iface_names: Iterable[str], dnsmasq_config: str | None) -> OperationFilter:
    """Operations on one network's L2/L3 objects and its dnsmasq file (ghostwarden_network).

    ``iface_names`` are the links the network should have; links the host shows as owned by
    the network are added, so a renamed bridge's old link is in scope for deletion too.
    """
    desired_names = set(iface_names)
    owner_alias = f"{OWNER_ALIAS_PREFIX}{network}"

    def in_scope(operation: Operation, observed: HostState) -> bool:
        names = desired_names | {link.name for link in observed.links if link.owner == network}
        kind = operation.kind
        if kind in RULESET_KINDS:
            return False
        if kind in FILE_KINDS:
            return dnsmasq_config is not None and operation.detail("path") == dnsmasq_config
        if kind == "set_sysctl":
            return True
        target_name = operation.target.split(":", 2)[1] if ":" in operation.target else ""
        return (target_name in names or operation.detail("ifalias") == owner_alias
                or operation.detail("master") in names or operation.detail("iface") in names
                or operation.detail("bridge") in names or operation.detail("dev") in names)

    return in_scope


def ruleset_scope(operation: Operation, observed: HostState) -> bool:
    """Only the owned table (ghostwarden_policy) and the forwarding sysctls its NAT needs."""
    return operation.kind in RULESET_KINDS or operation.kind == "set_sysctl"


# -- presenting -------------------------------------------------------------------------------


def owned_only(state: HostState) -> HostState:
    """Drop foreign objects, keeping what a diff or a plan may mention."""
    return replace(
        state,
        links=tuple(link for link in state.links if link.owned),
        addresses=tuple(address for address in state.addresses if address.owned),
        fdb=tuple(entry for entry in state.fdb if entry.owned),
        enslavements=tuple(item for item in state.enslavements if item.owned),
        routes=tuple(route for route in state.routes if route.owned),
    )


def recovery_keys(result: ApplyResult) -> dict:
    """The result key a check run adds when a real run would first recover an earlier transaction."""
    return {} if result.recovery is None else {"recovery": result.recovery}


__all__ = [
    "Address", "ApplyResult", "Enslavement", "FdbEntry", "HostDriver", "network_scope", "owned_only",
    "record_operation", "recovery_keys", "ruleset_scope",
]
