# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The driver that makes a host match a compiled topology.

observe (kernel + nft + dnsmasq files, ownership from the records) -> plan -> execute
(each operation through the backend that owns its kind) -> record what the collection now
owns -> make dnsmasq processes match their files. No Ansible here: modules hand in a
:class:`CommandRunner` and turn :class:`GhostwardenError` into ``fail_json``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ansible_collections.ghostwarden.core.plugins.module_utils._dnsmasq import DnsmasqControl
from ansible_collections.ghostwarden.core.plugins.module_utils._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils._model import OWNER_ALIAS_PREFIX
from ansible_collections.ghostwarden.core.plugins.module_utils._netlink import NetlinkBackend
from ansible_collections.ghostwarden.core.plugins.module_utils._nft import NftCli
from ansible_collections.ghostwarden.core.plugins.module_utils._plan import (
    Address,
    Enslavement,
    FdbEntry,
    HostState,
    Operation,
    empty_state,
    plan,
    summarise,
)
from ansible_collections.ghostwarden.core.plugins.module_utils._runner import CommandRunner
from ansible_collections.ghostwarden.core.plugins.module_utils._state import Records, StateStore

NETLINK_KINDS = frozenset({
    "set_sysctl", "remove_fdb", "remove_address", "remove_bridge_vlan", "release_master", "delete_link",
    "create_link", "modify_link", "set_master", "add_bridge_vlan", "add_address", "add_fdb",
})
RULESET_KINDS = frozenset({"replace_ruleset", "delete_ruleset"})
FILE_KINDS = frozenset({"write_file", "remove_file"})

# (operation, observed host) -> whether the operation belongs to the module's scope
OperationFilter = Callable[[Operation, HostState], bool]


@dataclass
class ApplyResult:
    operations: list[Operation]
    dnsmasq: list[str]
    before: HostState
    after: HostState
    records: Records
    changes: dict[str, int] = field(default_factory=dict)

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
        self.store = StateStore(state_dir)
        self.nft = NftCli(self.runner)
        self.dnsmasq = DnsmasqControl(self.runner, state_dir)
        self._netlink: NetlinkBackend | None = None

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

    # -- observing ---------------------------------------------------------------------------
    def observe(self, records: Records, desired: HostState) -> HostState:
        """The host as the planner sees it: ownership of addresses, FDB entries and ports from ``records``.

        The live nft listing is never byte-equal to the rendered text; when the two normalise to
        the same table the observed ruleset *is* the desired one, otherwise the listing stands.
        """
        sysctl_keys = sorted(set(dict(desired.sysctls)) | set(records.sysctl_previous))
        kernel = self.netlink.observe(sysctl_keys)
        listing = self.nft.list_table()
        ruleset = listing
        if listing is not None and desired.ruleset is not None:
            # Fast path: the table is byte-for-byte what nft listed after our last load of this rendering.
            unchanged = (records.nft_digests.get("listing") == sha256_text(listing)
                         and records.nft_digests.get("ruleset") == sha256_text(desired.ruleset))
            if unchanged or self.nft.matches(listing, desired.ruleset):
                ruleset = desired.ruleset
        return replace(
            kernel,
            addresses=tuple(
                replace(address, owned=(address.iface, address.address) in records.owned_addresses)
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
              topology: dict | None = None, want_after: bool = False) -> ApplyResult:
        """Plan ``desired`` against the host and, unless ``check_mode``, execute it.

        ``scope`` limits the operations to one network's objects (ghostwarden_network,
        ghostwarden_policy); ``topology`` is the normalised topology recorded as applied.
        ``want_after`` observes the host again after a change (for diffs); otherwise ``after``
        is the desired state the operations established.
        """
        records = self.store.load()
        before = self.observe(records, desired)
        # The firewall goes first: nft -f is one transaction and names interfaces as strings, so a
        # ruleset nft refuses fails the apply before any link, address or file has changed.
        operations = sorted((op for op in plan(desired, before) if scope is None or scope(op, before)),
                            key=lambda op: op.kind not in RULESET_KINDS)
        if check_mode:
            return ApplyResult(operations, self._pending_dnsmasq(operations), before, desired, records,
                               summarise(operations))
        ledger = OwnershipLedger(records)
        stopped: list[str] = []
        try:
            for operation in operations:
                self._execute(operation)
                ledger.record(operation)
                if operation.kind == "remove_file":
                    # Stop the instance now, while its interface still exists (the plan removes files first).
                    network = posixpath.basename(str(operation.detail("path"))).rsplit(".", 1)[0]
                    if self.dnsmasq.stop(network):
                        stopped.append(f"stopped {network}")
        finally:
            updated = ledger.records(records, topology=topology)
            if operations:
                updated = replace(updated, generation=records.generation + 1,
                                  nft_digests=self._nft_digests(operations, records))
            if updated != records:
                self.store.save(updated)
            records = updated
        dnsmasq_changes = stopped + self.dnsmasq.reconcile()
        if not operations:
            after = before
        elif want_after:
            after = self.observe(records, desired)
        else:
            after = desired
        return ApplyResult(operations, dnsmasq_changes, before, after, records, summarise(operations))

    def _nft_digests(self, operations: Sequence[Operation], records: Records) -> dict:
        """Digests of the table as loaded and as nft lists it, for the next run's fast comparison."""
        loaded = [op for op in operations if op.kind in RULESET_KINDS]
        if not loaded:
            return dict(records.nft_digests)
        if loaded[-1].kind == "delete_ruleset":
            return {}
        listing = self.nft.list_table()
        if listing is None:
            return {}
        return {"listing": sha256_text(listing), "ruleset": sha256_text(str(loaded[-1].detail("content")))}

    def _pending_dnsmasq(self, operations: Sequence[Operation]) -> list[str]:
        """In check mode with file changes pending, say which instances a real run would (re)start or stop."""
        pending = self.dnsmasq.reconcile(dry_run=True)
        for operation in operations:
            if operation.kind in FILE_KINDS:
                verb = "restart or start" if operation.kind == "write_file" else "stop"
                pending.append(f"would {verb} the instance of {operation.detail('path')}")
        return sorted(set(pending))

    def _execute(self, operation: Operation) -> None:
        if operation.kind in NETLINK_KINDS:
            self.netlink.execute(operation)
        elif operation.kind == "replace_ruleset":
            self.nft.replace(str(operation.detail("content")), check_first=False)
        elif operation.kind == "delete_ruleset":
            self.nft.delete()
        elif operation.kind == "write_file":
            self.dnsmasq.write_file(str(operation.detail("path")), str(operation.detail("content")))
        elif operation.kind == "remove_file":
            self.dnsmasq.remove_file(str(operation.detail("path")))
        else:  # the planner and this table are out of step: a bug, not user input
            raise BackendError(str(operation), f"no backend executes operations of kind {operation.kind}")

    def remove_everything(self, *, check_mode: bool, want_after: bool = False) -> ApplyResult:
        """``state: absent``: every owned object goes; dnsmasq instances stop; foreign objects stay."""
        result = self.apply(empty_state(), check_mode=check_mode, topology=None, want_after=want_after)
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

    def record(self, operation: Operation) -> None:
        kind = operation.kind
        if kind == "add_address":
            self.addresses.add((str(operation.detail("iface")), str(operation.detail("address"))))
        elif kind == "remove_address":
            self.addresses.discard((str(operation.detail("iface")), str(operation.detail("address"))))
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
        elif kind == "set_sysctl":
            key = str(operation.detail("key"))
            was = operation.detail("was")
            if key not in self.sysctls and was is not None:
                self.sysctls[key] = str(was)

    def records(self, base: Records, **changes: object) -> Records:
        return replace(base, owned_addresses=frozenset(self.addresses), owned_fdb=frozenset(self.fdb),
                       owned_enslavements=frozenset(self.enslavements), sysctl_previous=self.sysctls, **changes)


def record_operation(records: Records, operation: Operation) -> Records:
    """``records`` after one more successful operation."""
    ledger = OwnershipLedger(records)
    ledger.record(operation)
    return ledger.records(records)


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
                or operation.detail("master") in names or operation.detail("iface") in names)

    return in_scope


def ruleset_scope(operation: Operation, observed: HostState) -> bool:
    """Only the owned table (ghostwarden_policy) and the forwarding sysctls its NAT needs."""
    return operation.kind in RULESET_KINDS or operation.kind == "set_sysctl"


# -- presenting -------------------------------------------------------------------------------


def owned_view(state: HostState) -> dict:
    """The owned part of a host state, for diffs and facts."""
    return {
        "links": [link.to_dict() for link in state.links if link.owned],
        "addresses": [address.to_dict() for address in state.addresses if address.owned],
        "fdb": [entry.to_dict() for entry in state.fdb if entry.owned],
        "ports": [item.to_dict() for item in state.enslavements if item.owned],
        "sysctls": dict(state.sysctls),
    }


def diff_of(before: HostState, after: HostState) -> list[dict]:
    """Ansible diff items: links/addresses/FDB as JSON text, then the ruleset, then each dnsmasq file."""
    items = [{
        "before_header": "owned links, addresses, FDB, ports (before)",
        "after_header": "owned links, addresses, FDB, ports (after)",
        "before": json.dumps(owned_view(before), indent=2, sort_keys=True) + "\n",
        "after": json.dumps(owned_view(after), indent=2, sort_keys=True) + "\n",
    }, {
        "before_header": "nft table inet ghostwarden (before)",
        "after_header": "nft table inet ghostwarden (after)",
        "before": before.ruleset or "",
        "after": after.ruleset or "",
    }]
    before_files = dict(before.dnsmasq_files)
    after_files = dict(after.dnsmasq_files)
    for path in sorted(set(before_files) | set(after_files)):
        if before_files.get(path) != after_files.get(path):
            items.append({"before_header": path, "after_header": path,
                          "before": before_files.get(path, ""), "after": after_files.get(path, "")})
    return items


def owned_only(state: HostState) -> HostState:
    """Drop foreign objects, keeping what a diff or a plan may mention."""
    return replace(
        state,
        links=tuple(link for link in state.links if link.owned),
        addresses=tuple(address for address in state.addresses if address.owned),
        fdb=tuple(entry for entry in state.fdb if entry.owned),
        enslavements=tuple(item for item in state.enslavements if item.owned),
    )


__all__ = [
    "Address", "ApplyResult", "Enslavement", "FdbEntry", "HostDriver", "diff_of", "network_scope", "owned_only",
    "owned_view", "record_operation", "ruleset_scope",
]
