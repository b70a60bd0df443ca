# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role ``ghostwarden.core.lab`` through ansible-playbook: a 2-node lab with two clients per node.

One lab (``gt<random>``) is built for the module and shared by the tests, which run in file
order: traffic, the repeat, the inventory, then check mode of ``absent`` and the teardown. The
fixture removes whatever is left of the lab (processes, namespaces, state root) even when a
test fails. The root namespace's links, addresses and routes are read (never changed) before
the lab exists, while it exists and after it is gone, and must not differ.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.support.netns import delete_netns
from ansible_collections.ghostwarden.core.tests.support.playbook import (
    COLLECTIONS_PATH,
    PlayResults,
    PlayRunner,
)
from ansible_collections.ghostwarden.core.tests.support.playbook import ansible_playbook as _ansible_playbook

pytestmark = pytest.mark.root

CLIENTS = {
    "node1": [
        {"name": "c1", "port": "c1p", "address": "10.33.0.10/24", "gateway": "10.33.0.1", "http": True},
        {"name": "c2", "port": "c2p", "mac": "02:00:5e:00:01:02"},
    ],
    "node2": [
        {"name": "c1", "port": "c1p", "address": "10.34.0.10/24", "gateway": "10.34.0.1", "http": True},
        {"name": "c2", "port": "c2p", "mac": "02:00:5e:00:02:02"},
    ],
}
NETNS_ACTION = "ghostwarden.core.netns_lab"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=check)


def in_lab(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", netns, *argv, check=check)


def netns_names() -> set[str]:
    return {entry["name"] for entry in json.loads(run("ip", "-j", "netns", "list").stdout or "[]")}


def root_namespace() -> dict:
    """The root namespace's links, addresses and routes (read only), without what changes by itself."""
    addresses = json.loads(run("ip", "-j", "address", "show").stdout)
    for link in addresses:
        for item in link.get("addr_info", []):
            item.pop("valid_life_time", None)
            item.pop("preferred_life_time", None)
    return {
        "links": sorted(json.dumps(link, sort_keys=True) for link in json.loads(run("ip", "-j", "link", "show").stdout)),
        "addresses": sorted(json.dumps(link, sort_keys=True) for link in addresses),
        "routes": sorted(json.dumps(route, sort_keys=True) for route in
                         json.loads(run("ip", "-j", "route", "show", "table", "all").stdout)),
    }


def files_under(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@dataclass
class BuiltLab:
    name: str
    state_root: Path
    inventory: Path
    runner: PlayRunner
    playbook: Path
    first: PlayResults
    root_before: dict

    def play(self, state: str = "present", check: bool = False, diff: bool = False) -> PlayResults:
        return self.runner.run_playbook(self.playbook, check=check, diff=diff, extra_vars=self.variables(state))

    def variables(self, state: str) -> dict:
        return {"ghostwarden_lab_name": self.name, "ghostwarden_lab_nodes": 2, "ghostwarden_lab_clients": CLIENTS,
                "ghostwarden_lab_state_root": str(self.state_root), "ghostwarden_lab_state": state}

    def netns(self, role: str) -> str:
        return f"{self.name}-{role}"

    def namespaces(self) -> set[str]:
        return {name for name in netns_names() if name.startswith(f"{self.name}-")}


def lab_task(results: PlayResults):
    matches = [task for task in results if task.action == NETNS_ACTION]
    assert len(matches) == 1, results.output
    return matches[0]


def remove_leftovers(name: str, state_root: Path) -> None:
    """Whatever a failed test left of the lab: processes inside its namespaces, the namespaces, files."""
    for netns in sorted(netns_names()):
        if netns.startswith(f"{name}-"):
            delete_netns(netns)
    shutil.rmtree(state_root, ignore_errors=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltLab]:
    name = f"gt{secrets.token_hex(2)}"
    workdir = tmp_path_factory.mktemp("lab-role")
    state_root = workdir / "state"
    playbook = workdir / "lab.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "The lab", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "ghostwarden.core.lab"}],
    }], sort_keys=False))
    root_before = root_namespace()
    runner = PlayRunner(workdir / "ansible")
    try:
        lab = BuiltLab(name, state_root, state_root / "inventory.yml", runner, playbook, None, root_before)
        lab.first = lab.play()
        yield lab
    finally:
        remove_leftovers(name, state_root)


def test_first_run_builds_every_namespace_and_the_inventory(built: BuiltLab):
    assert built.first.rc == 0, built.first.output
    result = lab_task(built.first)
    assert result.changed
    expected = {built.netns(role) for role in ("sw", "inet", "node1", "node2", "node1-c1", "node1-c2", "node2-c1",
                                               "node2-c2")}
    assert built.namespaces() == expected
    assert result["namespaces"] == [built.netns(role) for role in ("sw", "inet", "node1", "node2", "node1-c1",
                                                                   "node1-c2", "node2-c1", "node2-c2")]
    assert built.inventory.is_file()
    messages = [task.get("msg") for task in built.first if task.action == "ansible.builtin.debug"]
    assert any(str(built.inventory) in str(message) and "ghostwarden_lab_state=absent" in str(message)
               for message in messages), messages


def test_root_namespace_is_untouched_while_the_lab_exists(built: BuiltLab):
    assert root_namespace() == built.root_before


def test_nodes_reach_each_other_on_the_underlay_and_the_internet_on_the_wan(built: BuiltLab):
    ping = in_lab(built.netns("node1"), "busybox", "ping", "-c", "1", "-W", "2", "192.0.2.12", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    ping = in_lab(built.netns("node2"), "busybox", "ping", "-c", "1", "-W", "2", "198.51.100.1", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # The internet has no default route: nothing in the lab is routed out of it.
    assert json.loads(run("ip", "-n", built.netns("inet"), "-j", "route", "show", "default").stdout) == []


def test_client_macs_are_the_given_and_the_default_ones(built: BuiltLab):
    def mac(role: str) -> str:
        return json.loads(run("ip", "-n", built.netns(role), "-j", "link", "show", "eth0").stdout)[0]["address"]

    assert (mac("node1-c1"), mac("node1-c2"), mac("node2-c1"), mac("node2-c2")) == (
        "02:67:77:01:01:01", "02:00:5e:00:01:02", "02:67:77:02:01:01", "02:00:5e:00:02:02")


def test_the_clients_web_server_answers_inside_the_lab(built: BuiltLab):
    # The node's port gets the client's gateway address, as a topology would give its bridge.
    run("ip", "-n", built.netns("node1"), "address", "add", "10.33.0.1/24", "dev", "c1p")
    # Bounded by timeout(1): busybox 1.35's own wget -T crashes (SIGSEGV) on Debian 12.
    answer = in_lab(built.netns("node1"), "timeout", "5", "busybox", "wget", "-q", "-O", "-", "http://10.33.0.10/",
                    check=False)
    assert (answer.returncode, answer.stdout) == (0, "node1-c1\n"), answer.stderr


def test_a_second_run_changes_nothing(built: BuiltLab):
    again = built.play()
    assert again.rc == 0, again.output
    assert [task.name for task in again if task.changed] == []
    assert (lab_task(again)["plan"], lab_task(again)["changes"]) == ([], {})
    # The web servers were not started twice.
    servers = [pid for pid in run("ip", "netns", "pids", built.netns("node1-c1")).stdout.split()
               if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"busybox", b"httpd"]]
    assert len(servers) == 1


def test_the_inventory_parses_with_the_lab_variables(built: BuiltLab):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    environment["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_PATH)
    listed = subprocess.run([str(_ansible_playbook().with_name("ansible-inventory")), "-i", str(built.inventory),
                             "--list"], capture_output=True, text=True, timeout=60, check=True, env=environment)
    inventory = json.loads(listed.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    assert inventory["ghostwarden_lab_nodes"]["hosts"] == ["node1", "node2"]
    assert sorted(inventory["ghostwarden_lab_clients"]["hosts"]) == ["node1-c1", "node1-c2", "node2-c1", "node2-c2"]
    assert inventory["ghostwarden_lab_inet"]["hosts"] == ["inet"]
    python = str(Path(_ansible_playbook()).with_name("python3"))
    common = {"ansible_connection": "ghostwarden.core.netns"}
    assert hostvars["node2"] == {
        **common, "ansible_python_interpreter": hostvars["node2"]["ansible_python_interpreter"],
        "ansible_netns_name": built.netns("node2"),
        "ghostwarden_state_dir": f"{built.state_root}/node2/state",
        "ghostwarden_boot_unit_dir": f"{built.state_root}/node2/systemd",
        "ghostwarden_underlay_address": "192.0.2.12", "ghostwarden_underlay_interface": "eth0",
        "ghostwarden_wan_address": "198.51.100.12", "ghostwarden_wan_interface": "up0",
        "ghostwarden_lab_node_index": 2,
    }
    assert Path(hostvars["node2"]["ansible_python_interpreter"]).resolve() == Path(python).resolve()
    assert {key: value for key, value in hostvars["node1-c2"].items() if key != "ansible_python_interpreter"} == {
        **common, "ansible_netns_name": built.netns("node1-c2"), "ghostwarden_lab_node": "node1",
        "ghostwarden_lab_port": "c2p", "ghostwarden_lab_mac": "02:00:5e:00:01:02", "ghostwarden_lab_client": "c2"}
    assert {key: value for key, value in hostvars["inet"].items() if key != "ansible_python_interpreter"} == {
        **common, "ansible_netns_name": built.netns("inet"), "ghostwarden_wan_address": "198.51.100.1"}
    # Every node's state directories exist; ghostwarden_apply keeps its records 0700.
    assert oct(Path(hostvars["node1"]["ghostwarden_state_dir"]).stat().st_mode & 0o777) == "0o700"
    assert Path(hostvars["node1"]["ghostwarden_boot_unit_dir"]).is_dir()


def test_check_mode_of_absent_predicts_the_removal_and_changes_nothing(built: BuiltLab):
    namespaces, files = built.namespaces(), files_under(built.state_root)
    predicted = built.play("absent", check=True)
    assert predicted.rc == 0, predicted.output
    task = lab_task(predicted)
    assert task.changed
    steps = task["plan"]
    assert task["changes"]["delete_netns"] == len(namespaces) and task["changes"]["remove_directory"] == 1
    assert sorted(step["netns"] for step in steps if step["kind"] == "delete_netns") == sorted(namespaces)
    assert [step for step in steps if step["kind"] == "remove_directory"] == [
        {"kind": "remove_directory", "path": str(built.state_root)}]
    assert {"kind": "stop_processes", "netns": built.netns("node1-c1")} in [
        {key: step[key] for key in ("kind", "netns")} for step in steps if step["kind"] == "stop_processes"]
    assert built.namespaces() == namespaces
    assert files_under(built.state_root) == files


def test_absent_removes_every_namespace_and_the_state_root(built: BuiltLab):
    removed = built.play("absent")
    assert removed.rc == 0, removed.output
    assert lab_task(removed).changed
    assert built.namespaces() == set()
    assert not built.state_root.exists()
    again = built.play("absent")
    assert again.rc == 0, again.output
    assert [task.name for task in again if task.changed] == []


def test_root_namespace_is_the_same_after_the_lab(built: BuiltLab):
    assert root_namespace() == built.root_before
