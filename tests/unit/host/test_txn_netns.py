# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Boot persistence and the confirm timer's rollback script against a real kernel (root, lab namespaces).

Reboot simulation: a topology applied in namespace A through the host driver, its persistence
files written, A deleted and created again under the same name with only its foreign links,
``restore.sh`` run: the owned state equals the committed one and a following apply has nothing
to do. Rollback: a change applied through the driver with a journal, the rollback script run with
``sh``: the snapshot is back (created links gone, deleted link back, old ruleset, old dnsmasq
config running), foreign objects untouched, a second run does nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import HostDriver
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import plan
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import (
    Journal,
    JournalStore,
    new_token,
    owned_snapshot,
    persistence_files,
    rollback_script,
    write_persistence,
)
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_tools, throwaway_netns

pytestmark = [pytest.mark.root, requires_tools("ip", "bridge", "nft", "dnsmasq", "flock", "sysctl")]


def topology(*, with_lan: bool, with_new: bool, lease: str) -> dict:
    networks: dict = {
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "masq_out": "uplink",
                    "dhcp": {"range": "10.33.0.100-10.33.0.150", "lease_time": lease},
                    "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
                    "policy_profile": "routed-tight"},
        "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["192.0.2.11", "192.0.2.12"],
                    "local": "192.0.2.1", "dev": "up0"},
    }
    if with_lan:
        networks["lan"] = {"type": "bridge", "iface": "br-lan", "ports": ["p0"], "cidr": "10.50.0.0/24",
                           "gw_ip": "10.50.0.1", "mtu": 1400}
    if with_new:
        networks["new_net"] = {"type": "routed", "cidr": "10.60.0.0/24", "gw_ip": "10.60.0.1", "dhcp": True}
    return {"interfaces": {"uplink": "up0"}, "networks": networks}


def prepare_foreign(namespace: NetNS) -> None:
    """What the host has before (and without) the collection: an uplink, a port, a foreign bridge."""
    namespace.run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0-peer")
    namespace.run("ip", "link", "add", "p0", "type", "veth", "peer", "name", "p0-peer")
    namespace.run("ip", "link", "add", "br-foreign", "type", "bridge")
    for name in ("up0", "up0-peer", "p0", "p0-peer", "br-foreign"):
        namespace.run("ip", "link", "set", name, "up")
    namespace.run("ip", "address", "add", "192.0.2.1/24", "dev", "up0")
    namespace.run("ip", "address", "add", "172.16.9.1/24", "dev", "br-foreign")


def foreign_view(namespace: NetNS) -> tuple[str, str]:
    """The foreign bridge and uplink as ip shows them (what a rollback must not change)."""
    links = namespace.run("ip", "-br", "link", "show", "dev", "br-foreign").stdout
    addresses = namespace.run("ip", "-br", "-4", "address", "show", "dev", "up0").stdout
    return links, addresses


def apply(driver: HostDriver, state_dir: Path, data: dict):
    compiled = compile_topology(data, state_dir=str(state_dir))
    return compiled, driver.apply(compiled.desired, check_mode=False, topology=data, want_after=True)


def test_reboot_simulation_restores_the_committed_state(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    data = topology(with_lan=True, with_new=False, lease="12h")
    with throwaway_netns() as namespace:
        prepare_foreign(namespace)
        with HostDriver(state_dir=str(state_dir), netns=namespace.name) as driver:
            compiled, result = apply(driver, state_dir, data)
            committed = owned_snapshot(result.after)
            assert driver.dnsmasq.status()["nat_dev"].running
        files = persistence_files(result.after, state_dir=str(state_dir), netns=namespace.name)
        write_persistence(files)
        ruleset_before = namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout

        # Power off: every process and kernel object of the namespace goes; files on disk stay
        # (dnsmasq's pid file included, naming a process that no longer exists).
        for pid in subprocess.run(["ip", "netns", "pids", namespace.name], capture_output=True, text=True,
                                  check=True).stdout.split():
            os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "delete", namespace.name], check=True)
        subprocess.run(["ip", "netns", "add", namespace.name], check=True)
        namespace.run("ip", "link", "set", "lo", "up")
        prepare_foreign(namespace)
        assert namespace.run("nft", "list", "tables").stdout == ""

        restored = subprocess.run(["sh", str(state_dir / "persist" / "restore.sh")], capture_output=True, text=True,
                                  check=False, timeout=60)
        assert (restored.returncode, restored.stderr) == (0, "")
        assert namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout == ruleset_before
        with HostDriver(state_dir=str(state_dir), netns=namespace.name) as driver:
            observed = driver.observe(driver.store.load(), compiled.desired)
            assert owned_snapshot(observed) == committed
            status = driver.dnsmasq.status()["nat_dev"]
            assert (status.running, status.current) == (True, True)
            # The restored host is the committed one: an apply of the same topology has nothing to do.
            again = driver.apply(compiled.desired, check_mode=False, topology=data, want_after=True)
            assert ([str(operation) for operation in again.operations], again.dnsmasq) == ([], [])


def test_the_rollback_script_restores_the_snapshot_and_runs_once(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    old = topology(with_lan=True, with_new=False, lease="12h")
    new = topology(with_lan=False, with_new=True, lease="1h")
    with throwaway_netns() as namespace:
        prepare_foreign(namespace)
        with HostDriver(state_dir=str(state_dir), netns=namespace.name) as driver:
            old_compiled, _result = apply(driver, state_dir, old)
            old_ruleset = namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout
            old_pid = driver.dnsmasq.status()["nat_dev"].pid
            foreign_before = foreign_view(namespace)
            records = driver.store.load()
            state_before = (tmp_path / "state" / "state.json").read_text()

            # The journal of the change as the driver writes it; put in place once the driver's own
            # apply is done, as if the change were waiting in a confirm window.
            new_compiled = compile_topology(new, state_dir=str(state_dir))
            before = driver.observe(records, new_compiled.desired)
            journal = Journal(token=new_token(), created=time.time(), pid=os.getpid(),
                              snapshot=owned_snapshot(before), snapshot_records=records,
                              planned=[operation.to_dict() for operation in plan(new_compiled.desired, before)],
                              confirm_deadline=time.time() + 30)
            result = driver.apply(new_compiled.desired, check_mode=False, topology=new, want_after=True)
            store = JournalStore(str(state_dir))
            store.write(journal)
            kinds = {operation.kind for operation in result.operations}
            assert {"create_link", "delete_link", "replace_ruleset", "write_file", "add_address"} <= kinds
            assert driver.dnsmasq.status()["new_net"].running

            script = tmp_path / "rollback.sh"
            script.write_text(rollback_script(journal, result.after, state_dir=str(state_dir), netns=namespace.name))
            first = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False, timeout=60)
            assert first.returncode == 0, first.stderr

            names = namespace.run("ip", "-o", "link").stdout
            assert "gw-new_net" in {link.name for link in result.after.links}
            assert "gw-new_net:" not in names and "br-lan:" in names
            observed = driver.observe(driver.store.load(), old_compiled.desired)
            assert owned_snapshot(observed) == owned_snapshot(driver.observe(records, old_compiled.desired))
            assert {link.name for link in observed.links if link.owned} == {
                link.name for link in before.links if link.owned}
            assert namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout == old_ruleset
            assert foreign_view(namespace) == foreign_before
            assert (state_dir / "state.json").read_text() == state_before
            assert store.read() is None
            assert (state_dir / f"rolled-back-{journal.token}").read_text().startswith(
                "the confirm window closed at ")
            statuses = driver.dnsmasq.status()
            assert sorted(statuses) == ["nat_dev"]
            assert (statuses["nat_dev"].running, statuses["nat_dev"].current) == (True, True)
            assert statuses["nat_dev"].pid != old_pid  # restarted with the old config
            # Exactly the old committed state: applying the old topology again changes nothing.
            again = driver.apply(old_compiled.desired, check_mode=False, topology=old)
            assert ([str(operation) for operation in again.operations], again.dnsmasq) == ([], [])

            # The timer firing again (or late) finds no journal of its token: nothing happens.
            files_before = sorted(os.listdir(state_dir))
            second = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False, timeout=60)
            assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
            assert sorted(os.listdir(state_dir)) == files_before
            assert namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout == old_ruleset


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.6, 0.9, 1.0])
@pytest.mark.parametrize("unmarked", [False, True], ids=["", "link-not-yet-marked"])
def test_a_rollback_after_an_apply_killed_midway_restores_the_old_state(
        tmp_path: Path, fraction: float, unmarked: bool) -> None:
    """The apply dies after some of its operations (no records written, as with SIGKILL); the
    script made from the journal and the host as it is then restores the old committed state."""
    state_dir = tmp_path / "state"
    old = topology(with_lan=True, with_new=False, lease="12h")
    new = topology(with_lan=False, with_new=True, lease="1h")
    with throwaway_netns() as namespace:
        prepare_foreign(namespace)
        with HostDriver(state_dir=str(state_dir), netns=namespace.name) as driver:
            old_compiled, _result = apply(driver, state_dir, old)
            old_ruleset = namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout
            foreign_before = foreign_view(namespace)
            records = driver.store.load()
            committed = owned_snapshot(driver.observe(records, old_compiled.desired))

            new_compiled = compile_topology(new, state_dir=str(state_dir))
            before = driver.observe(records, new_compiled.desired)
            # The driver's order: the ruleset first, then the plan.
            operations = sorted(plan(new_compiled.desired, before),
                                key=lambda operation: operation.kind not in ("replace_ruleset", "delete_ruleset"))
            journal = Journal(token=new_token(), created=time.time(), pid=os.getpid(), snapshot=owned_snapshot(before),
                              snapshot_records=records, planned=[operation.to_dict() for operation in operations])
            JournalStore(str(state_dir)).write(journal)
            done = round(fraction * len(operations))
            for operation in operations[:done]:
                driver._execute(operation)
            if unmarked:
                # Killed between creating a link and marking it: the next creation, without its mark.
                pending = next(operation for operation in operations[done:] + operations
                               if operation.kind == "create_link" and operation.detail("type") == "bridge")
                name = pending.target.split(":", 1)[1]
                if name not in {link.name for link in driver.netlink.observe().links}:
                    namespace.run("ip", "link", "add", "name", name, "type", "bridge")

            after = driver.observe(driver.store.load(), new_compiled.desired)
            text = rollback_script(journal, after, state_dir=str(state_dir), netns=namespace.name)
            result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False, timeout=60)
            assert result.returncode == 0, result.stderr

            assert owned_snapshot(driver.observe(driver.store.load(), old_compiled.desired)) == committed
            assert "gw-new_net:" not in namespace.run("ip", "-o", "link").stdout
            assert namespace.run("nft", "list", "table", "inet", "ghostwarden").stdout == old_ruleset
            assert foreign_view(namespace) == foreign_before
            assert driver.store.load() == records
            again = driver.apply(old_compiled.desired, check_mode=False, topology=old)
            assert ([str(operation) for operation in again.operations], again.dnsmasq) == ([], [])
