# SPDX-License-Identifier: GPL-3.0-or-later
"""The host driver with fake backends: what it executes, in which order, and what it records."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host import _driver, _timer
from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    BackendError,
    RollbackFailedError,
    RolledBackError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    HostState,
    LinkState,
    Operation,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import Journal, new_token, owned_snapshot
from ansible_collections.ghostwarden.core.plugins.module_utils.host._batch import BatchFailed
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner

TOPOLOGY = {
    "interfaces": {"uplink": "eth0"},
    "networks": {
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "dhcp": True, "masq_out": "uplink",
                    "ports": ["veth-c1"], "policy_profile": "routed-tight"},
        "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["192.0.2.11"]},
    },
}


FOREIGN_LINKS = (LinkState("eth0", "other"), LinkState("veth-c1", "other"))


class FakeKernel:
    """Links, addresses and FDB entries as the netlink backend would report them; records every write."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.state = HostState(links=FOREIGN_LINKS)
        self.executed: list[str] = []
        self.fail_on = fail_on

    def observe(self, sysctl_keys):
        return self.state

    def execute(self, operation: Operation) -> None:
        if operation.kind == self.fail_on:
            raise BackendError(str(operation), "No such device")
        self.executed.append(operation.kind)

    def forget_indexes(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeBatch:
    """The driver's ``ip``/``bridge -batch`` runs, executed by the fake kernel one operation at a time."""

    def __init__(self, host: _driver.HostDriver) -> None:
        self.host = host  # its kernel fake, which a test may swap

    def execute(self, operations) -> None:
        for done, operation in enumerate(operations):
            try:
                self.host.netlink.execute(operation)
            except BackendError as error:
                raise BatchFailed(operation, error.cause, done) from None


def no_commands(argv, stdin):
    """The runner of a driver whose kernel, nft and dnsmasq are fakes: a real command here is a bug of the test."""
    raise AssertionError(f"a unit test ran a real command: {argv}")


def fake_driver(state_dir: str) -> _driver.HostDriver:
    """A HostDriver on fakes only; it cannot reach the machine (its runner refuses every command)."""
    host = _driver.HostDriver(state_dir=state_dir, runner=CommandRunner(no_commands))
    host._netlink = FakeKernel()
    host.batch = FakeBatch(host)
    return host


class FakeNft:
    """The table as nft would list it; ``refuse`` fails loads, ``refuse_check`` fails ``nft -c``."""

    def __init__(self, refuse: bool = False, refuse_check: bool = False, installed: bool = True) -> None:
        self.table: str | None = None
        self.refuse = refuse
        self.refuse_check = refuse_check
        self.present = installed
        self.loads = 0
        self.checked: list[str] = []
        self.writes: list[str] = []
        self.listed = 0

    def installed(self):
        return self.present

    def list_table(self):
        self.listed += 1
        return self.table

    @staticmethod
    def matches(listing, ruleset):
        return listing == ruleset

    def check(self, ruleset):
        self.checked.append(ruleset)
        if self.refuse_check:
            raise BackendError("nft check", "ruleset line 3, column 5: Could not process rule (at 'x' in 'x')")

    def replace(self, ruleset, *, check_first=True):
        self.writes.append("replace")
        if self.refuse:
            raise BackendError("nft apply", "syntax error")
        self.loads += 1
        self.table = ruleset

    def delete(self):
        self.writes.append("delete")
        self.table = None


class FakeDnsmasq:
    """Config files in memory; ``writes`` names every call that would change a file or a process."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.writes: list[str] = []

    def observe_files(self):
        return dict(self.files)

    def write_file(self, path, content):
        self.writes.append(f"write {path}")
        self.files[path] = content

    def remove_file(self, path):
        self.writes.append(f"remove {path}")
        self.files.pop(path, None)

    def reconcile(self, dry_run=False):
        if not dry_run:
            self.writes.append("reconcile")
        return [] if dry_run else [f"started {path.rsplit('/', 1)[1][:-5]}" for path in sorted(self.files)]

    def stop(self, network):
        self.writes.append(f"stop {network}")
        return True

    def stop_all(self):
        self.writes.append("stop all")
        return []


def state_dir_files(state_dir: str) -> dict[str, tuple[str, bytes | None]]:
    """Every entry under ``state_dir``: its mode and, for a file, its bytes (what a write would change)."""
    entries = {}
    for directory, names, files in os.walk(state_dir):
        for name in names + files:
            path = Path(directory, name)
            info = path.lstat()
            entries[str(path.relative_to(state_dir))] = (stat.filemode(info.st_mode),
                                                         path.read_bytes() if stat.S_ISREG(info.st_mode) else None)
    return entries


@pytest.fixture
def driver(tmp_path, monkeypatch):
    monkeypatch.setattr(_driver, "NftCli", lambda runner: FakeNft())
    monkeypatch.setattr(_driver, "DnsmasqControl", lambda runner, state_dir: FakeDnsmasq())
    return fake_driver(str(tmp_path))


def test_the_firewall_is_loaded_before_any_other_change(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=False, topology={"networks": {}})
    kinds = [operation.kind for operation in result.operations]
    assert kinds[0] == "replace_ruleset"
    assert driver.netlink.executed == [kind for kind in kinds if kind not in ("replace_ruleset", "write_file")]
    assert result.changed


def test_a_ruleset_refused_at_load_changes_nothing_else(driver) -> None:
    driver.nft.refuse = True
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    with pytest.raises(BackendError, match="nft apply: syntax error"):
        driver.apply(compiled.desired, check_mode=False, topology=None)
    assert driver.netlink.executed == []
    assert driver.dnsmasq.files == {}


def test_a_ruleset_nft_check_refuses_fails_before_the_transaction(driver) -> None:
    driver.nft.refuse_check = True
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    files = state_dir_files(driver.state_dir)
    with pytest.raises(BackendError) as raised:
        driver.apply(compiled.desired, check_mode=False, topology=None)
    assert str(raised.value) == "nft check: ruleset line 3, column 5: Could not process rule (at 'x' in 'x')"
    assert not isinstance(raised.value, (RolledBackError, RollbackFailedError))
    assert driver.nft.checked == [compiled.desired.ruleset]
    # Nothing changed, so there is nothing to roll back: no journal, no marker, no load, no link.
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert state_dir_files(driver.state_dir) == files


def test_check_mode_executes_nothing_and_records_nothing(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True, topology={"x": 1})
    assert result.operations and driver.netlink.executed == [] and driver.nft.loads == 0
    assert driver.store.load() == Records.empty()
    assert (result.recovery, result.warnings) == (None, [])


def test_check_mode_asks_nft_to_check_the_new_table(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    driver.apply(compiled.desired, check_mode=True)
    assert driver.nft.checked == [compiled.desired.ruleset]
    driver.nft.checked.clear()
    driver.nft.refuse_check = True
    with pytest.raises(BackendError, match=r"^nft check: ruleset line 3, column 5: "):
        driver.apply(compiled.desired, check_mode=True)
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert os.listdir(driver.state_dir) == []


def test_check_mode_without_nft_warns_and_plans_the_table_as_absent(driver) -> None:
    driver.nft.present = False
    driver.nft.table = "table inet ghostwarden {\n}\n"  # unknown to a host without nft
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True)
    assert result.warnings == [_driver.NFT_MISSING_WARNING]
    assert "replace_ruleset" in [operation.kind for operation in result.operations]
    assert (driver.nft.listed, driver.nft.checked) == (0, [])


def test_a_check_run_on_a_fresh_state_directory_creates_nothing(driver, tmp_path) -> None:
    fresh = fake_driver(str(tmp_path / "fresh"))
    compiled = compile_topology(TOPOLOGY, state_dir=fresh.state_dir)
    with fresh.locked(check_mode=True):
        assert fresh.apply(compiled.desired, check_mode=True).operations
        assert fresh.remove_everything(check_mode=True).operations == []
        with pytest.raises(ValidationError, match="no committed generation before 0"):
            fresh.roll_back_to(None, check_mode=True)
    assert not (tmp_path / "fresh").exists()


def test_a_check_run_waits_for_the_lock_of_an_apply_in_progress(driver, monkeypatch) -> None:
    monkeypatch.setattr(_driver, "LOCK_TIMEOUT_SECONDS", 0.3)
    with driver.locked(check_mode=False):
        with pytest.raises(BackendError, match=r"^lock: another apply holds .*/lock \(waited 0.3 s\)$"):
            with driver.locked(check_mode=True):
                pass
    with driver.locked(check_mode=True), driver.locked(check_mode=True):  # check runs share it
        pass


def test_ownership_the_kernel_cannot_show_is_recorded(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=False, topology={"recorded": True})
    records = driver.store.load()
    assert records.owned_addresses == frozenset({("gw-nat_dev", "10.33.0.1/24")})
    assert records.owned_fdb == frozenset({("vx1200", "00:00:00:00:00:00", "192.0.2.11")})
    assert records.owned_enslavements == frozenset({("veth-c1", "gw-nat_dev")})
    assert records.topology == {"recorded": True}
    assert records.generation == 1
    assert result.dnsmasq == ["started nat_dev"]
    assert driver.history.generations() == [1]
    assert driver.journals.read() is None


def test_a_failure_half_way_rolls_back_and_says_so(driver) -> None:
    driver._netlink = FakeKernel(fail_on="add_fdb")
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    with pytest.raises(RolledBackError) as raised:
        driver.apply(compiled.desired, check_mode=False, topology={"new": True})
    assert str(raised.value).endswith("No such device; rolled back to generation 0")
    assert raised.value.to_result()["rolled_back"] is True
    assert driver.store.load() == Records.empty()  # the records before the apply
    assert driver.nft.table is None  # the table the apply loaded first is gone again
    assert driver.journals.read() is None
    assert driver.history.generations() == []


def test_record_operation_forgets_what_a_deleted_link_takes_along() -> None:
    records = replace(Records.empty(), owned_addresses=frozenset({("br1", "10.0.0.1/24"), ("br2", "10.1.0.1/24")}),
                      owned_enslavements=frozenset({("veth0", "br1")}))
    after = _driver.record_operation(records, Operation("delete_link", "link:br1", {"type": "bridge"}))
    assert after.owned_addresses == frozenset({("br2", "10.1.0.1/24")})
    assert after.owned_enslavements == frozenset()


def test_record_operation_keeps_the_first_previous_sysctl_value() -> None:
    def forwarding(was: str) -> Operation:
        return Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1",
                                                                      "was": was})

    first = _driver.record_operation(Records.empty(), forwarding("0"))
    again = _driver.record_operation(first, forwarding("1"))
    assert again.sysctl_previous == {"net.ipv4.ip_forward": "0"}


def test_network_scope_keeps_to_one_network() -> None:
    compiled = compile_topology(TOPOLOGY)
    observed = HostState(links=(LinkState("eth0", "other"), LinkState("veth-c1", "other")))
    scope = _driver.network_scope("overlay", ["br-overlay", "vx1200"], None)
    targets = [op.target for op in plan(compiled.desired, observed) if scope(op, observed)]
    assert targets == ["sysctl:net.ipv4.ip_forward", "link:br-overlay", "link:vx1200", "fdb:vx1200:192.0.2.11"]


# -- check mode with an unfinished transaction ------------------------------------------------

def interrupted_apply(driver, *, confirm_deadline: float | None = None) -> tuple[Journal, list[Operation]]:
    """TOPOLOGY applied up to a point and killed: the journal, the table loaded first, the bridge of
    nat_dev and its address created, its dnsmasq file written; nothing recorded. Also returns the plan
    a check run showed on the bare host before."""
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    planned = driver.apply(compiled.desired, check_mode=True).operations
    before = driver.observe(Records.empty(), compiled.desired)
    journal = Journal(new_token(), time.time() - 60, 4242, owned_snapshot(before), Records.empty(),
                      [operation.to_dict() for operation in planned], confirm_deadline)
    driver.journals.write(journal)
    bridge = LinkState("gw-nat_dev", "bridge", "nat_dev", {"ifalias": "ghostwarden:nat_dev", "state": "up"})
    driver.netlink.state = replace(driver.netlink.state, links=(*FOREIGN_LINKS, bridge),
                                   addresses=(Address("gw-nat_dev", "10.33.0.1/24"),))
    driver.nft.table = compiled.desired.ruleset
    config = f"{driver.state_dir}/dnsmasq/nat_dev.conf"
    driver.dnsmasq.files[config] = dict(compiled.desired.dnsmasq_files)[config]
    return journal, planned


def test_check_mode_reports_a_stale_journal_and_writes_nothing(driver) -> None:
    journal, planned = interrupted_apply(driver)
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    files = state_dir_files(driver.state_dir)
    assert "journal.json" in files

    result = driver.apply(compiled.desired, check_mode=True, topology={"x": 1})

    # Nothing written: no kernel operation, no nft load or delete, no dnsmasq file or process, no file
    # under the state directory (the journal, its mode and bytes included).
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert state_dir_files(driver.state_dir) == files
    recovery = result.recovery
    assert recovery is not None and (recovery["action"], recovery["generation"]) == ("roll back", 0)
    assert [(item["kind"], item["target"]) for item in recovery["plan"]] == [
        ("remove_file", f"file:{driver.state_dir}/dnsmasq/nat_dev.conf"),
        ("delete_link", "link:gw-nat_dev"),
        ("delete_ruleset", "ruleset:inet ghostwarden"),
    ]
    assert all("content" not in item["details"] for item in recovery["plan"])
    assert recovery["changes"] == {"remove_file": 1, "delete_link": 1, "delete_ruleset": 1}
    assert recovery["reason"].startswith("the apply started ")
    assert recovery["reason"].endswith(" did not finish because it was interrupted; the real run rolls it back to "
                                       "generation 0 (3 operations) before it applies anything")
    assert result.warnings == [f"check mode: {driver.state_dir}/journal.json holds an unfinished transaction: "
                               f"{recovery['reason']}"]
    # The plan is the one the real run executes after the rollback: the bare host's.
    assert result.operations == planned
    assert result.records == journal.snapshot_records
    assert driver.nft.checked[-1] == compiled.desired.ruleset  # nft -c is no write

    # state: absent and state: rolled_back in check mode go the same way.
    assert driver.remove_everything(check_mode=True).recovery == recovery
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert state_dir_files(driver.state_dir) == files

    # The real run rolls back first, then applies.
    applied = driver.apply(compiled.desired, check_mode=False, topology={"x": 1})
    assert applied.recovered is not None and applied.recovered.endswith("was rolled back because it was interrupted")
    assert applied.recovery is None
    assert driver.netlink.executed[0] == "delete_link"
    assert driver.journals.read() is None
    assert os.path.exists(driver.journals.rolled_back_marker(journal.token))


def test_check_mode_reports_a_confirmed_change_whose_commit_did_not_finish(driver) -> None:
    journal, planned = interrupted_apply(driver, confirm_deadline=time.time() + 60)
    _timer.confirm(journal.token, driver.state_dir)
    files = state_dir_files(driver.state_dir)
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True)
    assert result.recovery is not None and result.recovery["action"] == "finish commit"
    assert (result.recovery["plan"], result.recovery["changes"]) == ([], {})
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert state_dir_files(driver.state_dir) == files
    assert driver.history.generations() == []


def test_check_mode_during_an_open_confirm_window_fails_like_a_real_run(driver) -> None:
    journal, _planned = interrupted_apply(driver, confirm_deadline=time.time() + 60)
    files = state_dir_files(driver.state_dir)
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    with pytest.raises(BackendError, match=r"^confirm window: generation 1 awaits confirmation until "):
        driver.apply(compiled.desired, check_mode=True)
    assert driver.confirm(journal.token, check_mode=True) == {"changed": True, "confirmed": False,
                                                              "rolled_back": False, "generation": 0}
    assert (driver.netlink.executed, driver.nft.writes, driver.dnsmasq.writes) == ([], [], [])
    assert state_dir_files(driver.state_dir) == files
