# SPDX-License-Identifier: GPL-3.0-or-later
"""The host driver with fake backends: what it executes, in which order, and what it records."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host import _driver
from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, RolledBackError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import HostState, LinkState, Operation
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records

TOPOLOGY = {
    "interfaces": {"uplink": "eth0"},
    "networks": {
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "dhcp": True, "masq_out": "uplink",
                    "ports": ["veth-c1"], "policy_profile": "routed-tight"},
        "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["192.0.2.11"]},
    },
}


class FakeKernel:
    """Links, addresses and FDB entries as the netlink backend would report them; records every write."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.state = HostState(links=(LinkState("eth0", "other"), LinkState("veth-c1", "other")))
        self.executed: list[str] = []
        self.fail_on = fail_on

    def observe(self, sysctl_keys):
        return self.state

    def execute(self, operation: Operation) -> None:
        if operation.kind == self.fail_on:
            raise BackendError(str(operation), "No such device")
        self.executed.append(operation.kind)

    def close(self) -> None:
        pass


class FakeNft:
    def __init__(self, refuse: bool = False) -> None:
        self.table: str | None = None
        self.refuse = refuse
        self.loads = 0

    def list_table(self):
        return self.table

    @staticmethod
    def matches(listing, ruleset):
        return listing == ruleset

    def replace(self, ruleset, *, check_first=True):
        if self.refuse:
            raise BackendError("nft apply", "syntax error")
        self.loads += 1
        self.table = ruleset

    def delete(self):
        self.table = None


class FakeDnsmasq:
    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def observe_files(self):
        return dict(self.files)

    def write_file(self, path, content):
        self.files[path] = content

    def remove_file(self, path):
        self.files.pop(path, None)

    def reconcile(self, dry_run=False):
        return [] if dry_run else [f"started {path.rsplit('/', 1)[1][:-5]}" for path in sorted(self.files)]

    def stop(self, network):
        return True

    def stop_all(self):
        return []


@pytest.fixture
def driver(tmp_path, monkeypatch):
    monkeypatch.setattr(_driver, "NftCli", lambda runner: FakeNft())
    monkeypatch.setattr(_driver, "DnsmasqControl", lambda runner, state_dir: FakeDnsmasq())
    host = _driver.HostDriver(state_dir=str(tmp_path))
    host._netlink = FakeKernel()
    return host


def test_the_firewall_is_loaded_before_any_other_change(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=False, topology={"networks": {}})
    kinds = [operation.kind for operation in result.operations]
    assert kinds[0] == "replace_ruleset"
    assert driver.netlink.executed == [kind for kind in kinds if kind not in ("replace_ruleset", "write_file")]
    assert result.changed


def test_a_refused_ruleset_changes_nothing_else(driver) -> None:
    driver.nft.refuse = True
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    with pytest.raises(BackendError, match="nft apply: syntax error"):
        driver.apply(compiled.desired, check_mode=False, topology=None)
    assert driver.netlink.executed == []
    assert driver.dnsmasq.files == {}


def test_check_mode_executes_nothing_and_records_nothing(driver) -> None:
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True, topology={"x": 1})
    assert result.operations and driver.netlink.executed == [] and driver.nft.loads == 0
    assert driver.store.load() == Records.empty()


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
