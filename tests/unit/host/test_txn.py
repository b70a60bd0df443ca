# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Journal, history, rollback planning, persistence files and the rollback script, without a kernel."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, RenderError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import (
    History,
    Journal,
    JournalStore,
    apply_ownership,
    boot_unit,
    claim_planned_links,
    new_token,
    owned_snapshot,
    ownership_during,
    persistence_files,
    rollback_plan,
    rollback_script,
    rollback_target,
    topology_sha256,
    unit_name,
    write_persistence,
)

ZERO = "00:00:00:00:00:00"
LAN_SHA = hashlib.sha256(b"interface=br-lan\n").hexdigest()
RULESET_SHA = hashlib.sha256(b"table inet ghostwarden {\n}\n").hexdigest()
TOKEN = "0123456789abcdef0123456789abcdef"


def bridge(name: str, owner: str | None, **attrs: object) -> LinkState:
    base = {"ifalias": f"ghostwarden:{owner}", "state": "up"} if owner else {"state": "up"}
    return LinkState(name, "bridge", owner, {**base, **attrs})


# The host before an apply: an owned bridge with an owned address, a foreign uplink with its own
# address, a foreign port the collection enslaved, a foreign VLAN-aware bridge.
BEFORE = HostState(
    links=(bridge("br-lan", "lan", mtu=1500), LinkState("eth0", "other"), LinkState("eth1", "other"),
           bridge("br-foreign", None, vlan_filtering=True)),
    bridge_vlans=(BridgeVlan("br-foreign", PortRange(1, 1), True, True), BridgeVlan("br-lan", PortRange(5, 5))),
    addresses=(Address("br-lan", "10.33.0.1/24", True), Address("eth0", "192.0.2.1/24")),
    enslavements=(Enslavement("eth1", "br-lan", True),),
    sysctls={"net.ipv4.ip_forward": "0"},
    ruleset="table inet ghostwarden {\n}\n",
    dnsmasq_files={"/var/lib/gw/dnsmasq/lan.conf": "interface=br-lan\n"},
)
RECORDS = Records(owned_addresses=[("br-lan", "10.33.0.1/24")], owned_enslavements=[("eth1", "br-lan")],
                  generation=4)
PLANNED = [
    Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1", "was": "0"}),
    Operation("create_link", "link:br-new", {"type": "bridge", "ifalias": "ghostwarden:new", "state": "up"}),
    Operation("set_master", "port:eth2", {"master": "br-new"}),
    Operation("add_address", "address:br-new:10.40.0.1/24", {"iface": "br-new", "address": "10.40.0.1/24"}),
    Operation("add_fdb", "fdb:vx0:192.0.2.11", {"iface": "vx0", "mac": ZERO, "dst": "192.0.2.11"}),
]


def journal(**changes: object) -> Journal:
    base = Journal(token=TOKEN, created=1700000000.5, pid=4242, snapshot=owned_snapshot(BEFORE),
                   snapshot_records=RECORDS, planned=[operation.to_dict() for operation in PLANNED],
                   confirm_deadline=1700000120.0)
    return replace(base, **changes)


# --- journal -----------------------------------------------------------------------------------


def test_owned_snapshot_keeps_only_what_a_rollback_restores() -> None:
    snapshot = owned_snapshot(BEFORE)
    assert snapshot.links == (bridge("br-lan", "lan", mtu=1500),)
    assert snapshot.addresses == (Address("br-lan", "10.33.0.1/24", True),)
    assert snapshot.enslavements == (Enslavement("eth1", "br-lan", True),)
    # The foreign bridge's VLANs are not the collection's to restore.
    assert snapshot.bridge_vlans == (BridgeVlan("br-lan", PortRange(5, 5)),)
    assert (snapshot.sysctls, snapshot.ruleset, snapshot.dnsmasq_files) == (
        BEFORE.sysctls, BEFORE.ruleset, BEFORE.dnsmasq_files)


def test_journal_round_trips_through_the_store(tmp_path: Path) -> None:
    store = JournalStore(str(tmp_path))
    assert store.read() is None
    written = journal()
    store.write(written)
    assert store.read() == written
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    text = Path(store.path).read_text()
    assert f'\n  "token": "{TOKEN}"\n' in text
    assert json.loads(text)["planned"][1] == {"kind": "create_link", "target": "link:br-new",
                                              "details": {"type": "bridge", "ifalias": "ghostwarden:new",
                                                          "state": "up"}}
    assert store.read().planned_operations() == PLANNED
    store.remove()
    store.remove()  # absent: no error
    assert store.read() is None
    assert sorted(os.listdir(tmp_path)) == []
    assert store.confirm_marker(TOKEN) == f"{tmp_path}/confirm-{TOKEN}"
    assert store.rolled_back_marker(TOKEN) == f"{tmp_path}/rolled-back-{TOKEN}"


@pytest.mark.parametrize("text, problem", [
    ("{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[]", "expected a mapping, found list"),
    ('{"format": 2}', "format: 2 is not the supported format 1"),
])
def test_a_corrupt_journal_is_an_error_naming_the_file(tmp_path: Path, text: str, problem: str) -> None:
    store = JournalStore(str(tmp_path))
    Path(store.path).write_text(text)
    with pytest.raises(BackendError) as caught:
        store.read()
    assert caught.value.step == "journal"
    assert caught.value.cause == (f"{store.path} is corrupt ({problem}); it records an interrupted apply: repair or "
                                  "remove it after checking the host")


@pytest.mark.parametrize("change, problem", [
    ({"token": "../../etc"}, "token: '../../etc' is not 16 to 64 lower-case hex digits"),
    ({"pid": 0}, "pid: 0 is not a process id"),
    ({"created": "yesterday"}, "created: 'yesterday' is not a time"),
    ({"confirm_deadline": True}, "confirm_deadline: True is not a time or null"),
    ({"planned": [{"kind": "explode", "target": "x", "details": {}}]},
     "operation kind 'explode' is not one of"),
    ({"planned": [{"kind": "add_address"}]}, "planned[0]: expected a mapping with kind, target and details"),
    ({"snapshot": {"links": []}}, "snapshot: not a host state (KeyError: 'bridge_vlans')"),
    ({"snapshot_records": {"format": 1}}, "snapshot_records: generation: None is not a non-negative integer"),
    ({"extra": 1}, "keys: expected"),
])
def test_journal_from_dict_names_the_bad_field(change: dict, problem: str) -> None:
    data = {**journal().to_dict(), **change}
    with pytest.raises(ValueError) as caught:
        Journal.from_dict(data)
    assert problem in str(caught.value)


def test_new_tokens_are_hex_and_differ() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) == 32 and int(first, 16) >= 0


# --- rollback planning -------------------------------------------------------------------------


def test_rollback_target_is_the_snapshot_with_everything_owned() -> None:
    target = rollback_target(journal())
    assert target == replace(owned_snapshot(BEFORE), enslavements=(Enslavement("eth1", "br-lan", True),))
    assert all(item.owned for item in (*target.addresses, *target.fdb, *target.enslavements))
    # A foreign port that sat on an owned bridge without a record is restored there too.
    unrecorded = journal(snapshot=replace(owned_snapshot(BEFORE), enslavements=(Enslavement("eth3", "br-lan"),)))
    assert rollback_target(unrecorded).enslavements == (Enslavement("eth3", "br-lan", True),)


def test_ownership_during_adds_everything_the_plan_adds() -> None:
    during = ownership_during(journal(), RECORDS)
    assert during.owned_addresses == {("br-lan", "10.33.0.1/24"), ("br-new", "10.40.0.1/24")}
    assert during.owned_fdb == {("vx0", ZERO, "192.0.2.11")}
    assert during.owned_enslavements == {("eth1", "br-lan"), ("eth2", "br-new")}
    assert (during.generation, during.sysctl_previous) == (4, {})


def test_rollback_plan_removes_what_the_transaction_added_and_never_touches_foreign_objects() -> None:
    # The apply ran: br-lan was deleted (its network removed), br-new created with a port and an
    # address, forwarding on, the table replaced. Someone added a foreign address meanwhile.
    after = HostState(
        links=(bridge("br-new", "new", mtu=1500), LinkState("eth0", "other"), LinkState("eth1", "other"),
               LinkState("eth2", "other"), bridge("br-foreign", None, vlan_filtering=True)),
        bridge_vlans=(BridgeVlan("br-foreign", PortRange(1, 1), True, True),),
        addresses=(Address("br-new", "10.40.0.1/24"), Address("eth0", "192.0.2.1/24"),
                   Address("eth0", "198.51.100.1/24")),
        enslavements=(Enslavement("eth2", "br-new"),),
        sysctls={"net.ipv4.ip_forward": "1"},
        ruleset="table inet ghostwarden {\n\tchain input {\n\t}\n}\n",
        dnsmasq_files={},
    )
    records_after = Records(generation=5)  # killed before recording anything
    operations = rollback_plan(journal(), after, records_after)
    assert [str(operation) for operation in operations] == [
        "set_sysctl sysctl:net.ipv4.ip_forward key=net.ipv4.ip_forward value=0 was=1",
        "delete_link link:br-new reason=\"not in the topology\" type=bridge",
        "create_link link:br-lan ifalias=ghostwarden:lan mtu=1500 state=up type=bridge",
        "set_master port:eth1 master=br-lan",
        "add_bridge_vlan bridge_vlan:br-lan:5 bridge=br-lan port=br-lan pvid=false self=true untagged=false "
        "vid_first=5 vid_last=5",
        "add_address address:br-lan:10.33.0.1/24 address=10.33.0.1/24 iface=br-lan",
        f"write_file file:/var/lib/gw/dnsmasq/lan.conf lines=1 path=/var/lib/gw/dnsmasq/lan.conf sha256={LAN_SHA}",
        f"replace_ruleset ruleset:inet ghostwarden family=inet lines=2 sha256={RULESET_SHA} table=ghostwarden",
    ]
    # eth2 goes with br-new (the kernel releases it); the foreign address and bridge are not planned for.
    assert not [operation for operation in operations if "eth0" in operation.target or "foreign" in operation.target]


def test_a_link_created_but_not_yet_marked_counts_as_the_transactions() -> None:
    unmarked = HostState(links=(LinkState("br-new", "bridge", None, {"state": "down"}),
                                LinkState("br-other", "bridge", None, {"state": "down"})))
    claimed = claim_planned_links(journal(), unmarked)
    assert claimed.links == (LinkState("br-new", "bridge", "new", {"state": "down"}),
                             LinkState("br-other", "bridge", None, {"state": "down"}))
    # A link that carries someone else's alias is not claimed.
    aliased = HostState(links=(LinkState("br-new", "bridge", None, {"ifalias": "theirs"}),))
    assert claim_planned_links(journal(), aliased) == aliased


def test_apply_ownership_only_adds_marks() -> None:
    state = HostState(addresses=(Address("a", "10.0.0.1/24", True), Address("b", "10.0.1.1/24"),
                                 Address("c", "10.0.2.1/24")))
    marked = apply_ownership(state, Records(owned_addresses=[("b", "10.0.1.1/24")]))
    assert [item.owned for item in marked.addresses] == [True, True, False]


# --- history -----------------------------------------------------------------------------------


TOPOLOGY = {"version": 1, "networks": {"lan": {"type": "bridge"}}}


def test_history_commit_list_load_and_prune(tmp_path: Path) -> None:
    history = History(str(tmp_path))
    assert history.list() == []
    for generation in range(1, 6):
        summary = history.commit(generation, "alice", TOPOLOGY, PLANNED[:generation], BEFORE,
                                 replace(RECORDS, generation=generation), keep=3, now=1700000000 + generation)
    assert summary == {"generation": 5, "time": "2023-11-14T22:13:25Z", "user": "alice",
                       "topology_sha256": topology_sha256(TOPOLOGY),
                       "summary": {"set_sysctl": 1, "create_link": 1, "set_master": 1, "add_address": 1,
                                   "add_fdb": 1}}
    assert sorted(os.listdir(tmp_path / "history")) == ["000003.json", "000004.json", "000005.json"]
    assert [entry["generation"] for entry in history.list()] == [3, 4, 5]
    assert history.list()[0]["summary"] == {"set_sysctl": 1, "create_link": 1, "set_master": 1}
    state, records, topology = history.load(4)
    assert state == owned_snapshot(BEFORE)
    assert records == replace(RECORDS, generation=4)
    assert topology == TOPOLOGY
    assert stat.S_IMODE(os.stat(tmp_path / "history" / "000004.json").st_mode) == 0o600


def test_topology_hash_is_canonical() -> None:
    assert topology_sha256({"b": 1, "a": [1, 2]}) == topology_sha256({"a": [1, 2], "b": 1})
    assert topology_sha256({"a": 1}) == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    assert topology_sha256(None) is None


@pytest.mark.parametrize("generation", [7, "3", None, True, -1])
def test_loading_a_generation_that_is_not_kept_names_the_available_ones(tmp_path: Path, generation: object) -> None:
    history = History(str(tmp_path))
    for kept in (2, 3):
        history.commit(kept, "root", None, [], HostState(), Records(generation=kept), keep=5)
    with pytest.raises(ValidationError) as caught:
        history.load(generation)
    assert [str(issue) for issue in caught.value.issues] == [
        f"generation: {generation!r} is not in the history (available: 2, 3)"]


def test_an_empty_history_says_none_are_available(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^generation: 1 is not in the history \(available: none\)$"):
        History(str(tmp_path)).load(1)


def test_bad_commit_arguments_are_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        History(str(tmp_path)).commit(-1, "root", None, [], HostState(), Records(), keep=0)
    assert [str(issue) for issue in caught.value.issues] == [
        "generation: -1 is not a non-negative integer",
        "history: 0 is not a positive number of generations to keep",
    ]


def test_a_corrupt_history_entry_is_an_error_naming_it(tmp_path: Path) -> None:
    history = History(str(tmp_path))
    history.commit(1, "root", None, [], HostState(), Records(generation=1), keep=5)
    path = tmp_path / "history" / "000001.json"
    path.write_text('{"format": 1, "generation": 2}')
    with pytest.raises(BackendError) as caught:
        history.list()
    assert str(caught.value) == f"history: {path} is corrupt (generation: 2 does not match the file name)"
    path.write_text("not json")
    with pytest.raises(BackendError, match=r"000001.json is corrupt \(Expecting value"):
        history.load(1)


# --- persistence -------------------------------------------------------------------------------


def test_the_restore_script_brings_foreign_vlan_parents_up_before_the_links() -> None:
    # At boot a VLAN's parent may still be down (the kernel then refuses the VLAN device up); a
    # parent the state creates itself comes up through the batch.
    vlans = (
        LinkState("eth1.20", "vlan", "lan", {"ifalias": "ghostwarden:lan", "parent": "eth1", "vlan_id": 20,
                                             "state": "up"}),
        LinkState("br-lan.30", "vlan", "lan", {"ifalias": "ghostwarden:lan", "parent": "br-lan", "vlan_id": 30,
                                               "state": "up"}),
    )
    state = replace(BEFORE, links=BEFORE.links + vlans)
    restore = persistence_files(state, state_dir="/var/lib/gw", netns=None)["/var/lib/gw/persist/restore.sh"]
    parent_up = "ip link set dev eth1 up || status=1\n"
    assert parent_up in restore and "set dev br-lan up" not in restore
    assert restore.index(parent_up) < restore.index("ip -force -batch /var/lib/gw/persist/links.batch")
    in_lab = persistence_files(state, state_dir="/var/lib/gw", netns="lab1")["/var/lib/gw/persist/restore.sh"]
    assert "ip netns exec lab1 ip link set dev eth1 up || status=1\n" in in_lab


def test_persistence_files_for_a_namespace(tmp_path: Path) -> None:
    state = replace(BEFORE, fdb=(FdbEntry("vx0", "192.0.2.11", ZERO, True), FdbEntry("vx0", "192.0.2.99")),
                    links=BEFORE.links + (LinkState("vx0", "vxlan", "lan", {"ifalias": "ghostwarden:lan",
                                                                            "vni": 7, "dstport": 4789,
                                                                            "learning": False, "state": "up",
                                                                            "master": "br-lan"}),))
    files = persistence_files(state, state_dir="/var/lib/gw", netns="lab1")
    persist = "/var/lib/gw/persist"
    assert sorted(files) == [f"{persist}/{name}" for name in (
        "bridge.batch", "ghostwarden-restore-lab1.service", "ghostwarden.nft", "links.batch", "restore.sh",
        "sysctl.conf")]
    assert files[f"{persist}/links.batch"] == (
        "link add name br-lan type bridge\n"
        "link set dev br-lan mtu 1500 alias ghostwarden:lan up\n"
        "link add name vx0 type vxlan id 7 dstport 4789 nolearning\n"
        "link set dev vx0 alias ghostwarden:lan master br-lan up\n"
        "link set dev eth1 master br-lan\n"
        "address add 10.33.0.1/24 brd + dev br-lan\n"
    )
    # Only owned FDB entries; the VLANs of the owned bridge, never of the foreign one.
    assert files[f"{persist}/bridge.batch"] == (
        "vlan add vid 5 dev br-lan self\n"
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.11 self permanent\n"
    )
    assert files[f"{persist}/sysctl.conf"] == "net.ipv4.ip_forward = 0\n"
    assert files[f"{persist}/ghostwarden.nft"] == (
        "add table inet ghostwarden\ndelete table inet ghostwarden\ntable inet ghostwarden {\n}\n")
    restore = files[f"{persist}/restore.sh"]
    assert "ip netns exec lab1 sysctl -q -p /var/lib/gw/persist/sysctl.conf || status=1\n" in restore
    assert "ip -n lab1 -force -batch /var/lib/gw/persist/links.batch || status=1\n" in restore
    assert "bridge -n lab1 -force -batch /var/lib/gw/persist/bridge.batch || status=1\n" in restore
    assert "ip netns exec lab1 nft -f /var/lib/gw/persist/ghostwarden.nft || status=1\n" in restore
    assert '    ip netns exec lab1 dnsmasq --conf-file="$1" || return 1\n' in restore
    assert (f"    gw_start_instance /var/lib/gw/dnsmasq/lan.conf /var/lib/gw/dnsmasq/lan.pid {LAN_SHA} || status=1\n"
            in restore)
    for tool in ("python", "ansible"):
        assert tool not in restore
    assert subprocess.run(["sh", "-n", "-c", restore], check=False).returncode == 0
    assert files[f"{persist}/ghostwarden-restore-lab1.service"] == (
        "# Generated by ghostwarden.core.\n"
        "[Unit]\n"
        "Description=Restore the committed ghostwarden network state in network namespace lab1\n"
        "Documentation=file:/var/lib/gw/persist/restore.sh\n"
        "DefaultDependencies=no\n"
        "Wants=network-pre.target\n"
        "After=network-pre.target\n"
        "Before=network-online.target network.target\n"
        'RequiresMountsFor="/var/lib/gw"\n'
        "ConditionPathExists=/run/netns/lab1\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "KillMode=process\n"
        'ExecStart=/bin/sh "/var/lib/gw/persist/restore.sh"\n'
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    assert persistence_files(state, state_dir="/var/lib/gw", netns="lab1") == files


def test_persistence_on_the_host_and_without_a_table() -> None:
    files = persistence_files(replace(BEFORE, ruleset=None, dnsmasq_files={}), state_dir="/srv/gw 1%", netns=None)
    persist = "/srv/gw 1%/persist"
    assert files[f"{persist}/ghostwarden.nft"] == "add table inet ghostwarden\ndelete table inet ghostwarden\n"
    assert "ExecStart=/bin/sh \"/srv/gw 1%%/persist/restore.sh\"\n" in files[f"{persist}/ghostwarden-restore.service"]
    assert 'RequiresMountsFor="/srv/gw 1%%"\n' in files[f"{persist}/ghostwarden-restore.service"]
    assert "ConditionPathExists" not in files[f"{persist}/ghostwarden-restore.service"]
    assert "sysctl -q -p '/srv/gw 1%/persist/sysctl.conf' || status=1\n" in files[f"{persist}/restore.sh"]
    assert "gw_start_instance '" not in files[f"{persist}/restore.sh"]
    assert unit_name(None) == "ghostwarden-restore.service"
    with pytest.raises(RenderError, match="netns: 'a b' is not a namespace name"):
        unit_name("a b")


def test_the_boot_sysctls_are_the_committed_values_an_uplink_accept_ra_included() -> None:
    # Planned against an empty host an accept_ra would be left out (it moves between 1 and 2
    # only); the boot file holds the committed values as they are.
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
               "net.ipv6.conf.eth0.accept_ra": "2", "net.ipv6.conf.eth0/20.accept_ra": "2"}
    files = persistence_files(replace(BEFORE, sysctls=sysctls), state_dir="/var/lib/gw", netns=None)
    assert files["/var/lib/gw/persist/sysctl.conf"] == (
        "net.ipv4.ip_forward = 1\n"
        "net.ipv6.conf.all.forwarding = 1\n"
        "net.ipv6.conf.eth0.accept_ra = 2\n"
        "net.ipv6.conf.eth0/20.accept_ra = 2\n"
    )


def test_boot_unit_names_the_unit_file_when_it_exists_or_will(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "state")
    assert boot_unit(state_dir, "lab1") is None
    assert boot_unit(state_dir, "lab1", pending=True) == {
        "name": "ghostwarden-restore-lab1.service",
        "path": f"{state_dir}/persist/ghostwarden-restore-lab1.service",
    }
    write_persistence(persistence_files(replace(BEFORE, dnsmasq_files={}), state_dir=state_dir, netns=None))
    assert boot_unit(state_dir, None) == {"name": "ghostwarden-restore.service",
                                          "path": f"{state_dir}/persist/ghostwarden-restore.service"}
    assert boot_unit(state_dir, "lab1") is None  # another namespace's unit is not there


def test_write_persistence_is_atomic_per_file_with_modes(tmp_path: Path) -> None:
    state = replace(BEFORE, dnsmasq_files={f"{tmp_path}/dnsmasq/lan.conf": "interface=br-lan\n"})
    files = persistence_files(state, state_dir=str(tmp_path), netns=None)
    write_persistence(files)
    for path, content in files.items():
        assert Path(path).read_text() == content
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o700 if path.endswith("restore.sh") else 0o600)
    assert sorted(os.listdir(tmp_path / "persist")) == sorted(Path(path).name for path in files)


# --- rollback script (text; executed in test_txn_netns.py) ----------------------------------------


def test_rollback_script_guards_and_order() -> None:
    after = replace(BEFORE, links=BEFORE.links + (bridge("br-new", "new"),), ruleset=None,
                    dnsmasq_files={"/var/lib/gw/dnsmasq/new.conf": "interface=br-new\n"})
    text = rollback_script(journal(), after, state_dir="/var/lib/gw", netns="lab1")
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert f"    [ -f \"$journal\" ] && grep -qF '\"token\": \"{TOKEN}\"' \"$journal\" && [ ! -e \"$confirmed\" ]" in lines
    assert f"confirmed=/var/lib/gw/confirm-{TOKEN}" in lines
    # The guard runs before and after taking the lock StateStore uses.
    lock = lines.index("exec 9>>/var/lib/gw/lock")
    assert lines[lock - 1] == "gw_pending || exit 0" and lines[lock + 5] == "gw_pending || exit 0"
    assert lines[lock + 1] == "if ! flock -w 300 9; then"
    order = [next(index for index, line in enumerate(lines) if line.startswith(prefix)) for prefix in (
        f"ip netns exec lab1 nft -f /var/lib/gw/rollback-{TOKEN}.nft",
        "gw_stop_instance /var/lib/gw/dnsmasq/new.pid /var/lib/gw/dnsmasq/new.conf",
        "ip -n lab1 -force -batch - <<'GHOSTWARDEN_IP' || status=1",
        "    gw_start_instance /var/lib/gw/dnsmasq/lan.conf /var/lib/gw/dnsmasq/lan.pid",
        "cat > /var/lib/gw/state.json.gw-tmp",
        f"cat > /var/lib/gw/rolled-back-{TOKEN}.gw-tmp",
        f"rm -f \"$journal\" /var/lib/gw/rollback-{TOKEN}.nft",
    )]
    assert order == sorted(order)
    assert "link del dev br-new" in lines
    assert ("the confirm window closed at 2023-11-14T22:15:20Z without a confirmation; restored the state from "
            f"before transaction {TOKEN}") in lines
    records = text.split("cat > /var/lib/gw/state.json.gw-tmp")[1].split("\n", 1)[1].split(f"GHOSTWARDEN_EOF_{TOKEN}")[0]
    assert Records.from_dict(json.loads(records)) == RECORDS
    assert subprocess.run(["sh", "-n", "-c", text], check=False).returncode == 0
    assert rollback_script(journal(), after, state_dir="/var/lib/gw", netns="lab1") == text


def without_files(**changes: object) -> Journal:
    """A journal whose snapshot has no dnsmasq files (those must lie under the test's state_dir)."""
    return journal(snapshot=replace(owned_snapshot(BEFORE), dnsmasq_files={}), **changes)


def run_rollback(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    script = tmp_path / "rollback.sh"
    script.write_text(text)
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False, timeout=30)


@pytest.mark.parametrize("situation", ["confirmed", "superseded", "no journal"])
def test_the_rollback_script_does_nothing_once_confirmed_or_superseded(tmp_path: Path, situation: str) -> None:
    state_dir = tmp_path / "state"
    store = JournalStore(str(state_dir))
    store.write(without_files(token="f" * 32) if situation == "superseded" else without_files())
    if situation == "confirmed":
        Path(store.confirm_marker(TOKEN)).touch()
    if situation == "no journal":
        store.remove()
    # A namespace that does not exist: had the script gone past its guard, every command would fail.
    text = rollback_script(without_files(), replace(BEFORE, dnsmasq_files={}), state_dir=str(state_dir),
                           netns="gwt-does-not-exist")
    files = sorted(os.listdir(state_dir))
    result = run_rollback(tmp_path, text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert sorted(os.listdir(state_dir)) == files


def test_a_failing_rollback_keeps_the_journal_for_the_next_run(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = JournalStore(str(state_dir))
    store.write(without_files())
    after = replace(BEFORE, links=BEFORE.links + (bridge("br-new", "new"),), dnsmasq_files={})
    text = rollback_script(without_files(), after, state_dir=str(state_dir), netns="gwt-does-not-exist")
    result = run_rollback(tmp_path, text)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"ghostwarden: rollback of transaction {TOKEN} failed in a step; the journal stays for the next run")
    assert store.read() == without_files()
    assert not (state_dir / "state.json").exists()
    assert not Path(store.rolled_back_marker(TOKEN)).exists()
