# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster role on a lab: the VXLAN mesh follows the inventory group.

One lab (``gc<random>``, 4 nodes, an overlay client behind each) is shared by the tests, which
run in file order: three members, a fourth added (check mode first), the repeat, the fourth
removed, and a topology that would enslave a protected link. The cluster role runs through
ansible-playbook (the collection's ``ghostwarden.core.site`` playbook) against the lab's inventory
(the netns connection). The fixture tears the
lab down whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.integration.conftest import COLLECTIONS_PATH, PLAY_TIMEOUT, _ansible_playbook

pytestmark = pytest.mark.root

UNDERLAY = {f"node{index}": f"192.0.2.{10 + index}" for index in range(1, 5)}
TOPOLOGY = {
    "version": 1,
    "interfaces": {"underlay": "eth0"},
    "networks": {
        "overlay": {"type": "vxlan", "vni": 4242, "iface": "br-overlay", "dev": "underlay", "ports": ["ovc"],
                    "policy_profile": "l2-lan"},
    },
}
RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                   r"failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class Run:
    rc: int
    output: str

    def changed(self) -> dict[str, int]:
        return {match["host"]: int(match["changed"]) for match in RECAP.finditer(self.output)}

    def failed(self) -> dict[str, int]:
        return {match["host"]: int(match["failed"]) + int(match["unreachable"]) for match in RECAP.finditer(self.output)}


class ClusterLab:
    def __init__(self, workdir: Path) -> None:
        self.name = f"gc{secrets.token_hex(2)}"
        self.workdir = workdir
        self.state_root = Path("/run/ghostwarden-lab") / self.name
        self.inventory = self.state_root / "inventory.yml"

    def playbook(self, plays: list[dict], *arguments: str) -> Run:
        path = self.workdir / f"play-{secrets.token_hex(3)}.yml"
        path.write_text(yaml.safe_dump(plays, sort_keys=False))
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("ANSIBLE_") and key not in ("SSH_CONNECTION", "SSH_CLIENT")}
        environment.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                           ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_LOCAL_TEMP=str(self.workdir / "tmp"))
        completed = subprocess.run([str(_ansible_playbook()), str(path), *arguments], env=environment,
                                   capture_output=True, text=True, timeout=PLAY_TIMEOUT, check=False)
        return Run(completed.returncode, completed.stdout + completed.stderr)

    def build(self, nodes: list[str], state: str = "present") -> None:
        clients = {node: [{"name": "ov", "port": "ovc", "address": f"10.99.0.{node[4:]}/24"}] for node in nodes}
        run = self.playbook([{
            "name": "lab", "hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_connection": "local", "ghostwarden_lab_name": self.name, "ghostwarden_lab_nodes": nodes,
                     "ghostwarden_lab_clients": clients, "ghostwarden_lab_state": state},
            "roles": [{"role": "ghostwarden.core.lab"}],
        }])
        assert run.rc == 0, run.output

    def converge(self, *arguments: str, topology: dict | None = None, inventory: Path | None = None) -> Run:
        # The collection's site playbook by its FQCN, as users and AWX job templates run it.
        return self.playbook([{
            "import_playbook": "ghostwarden.core.site",
            "vars": {"ghostwarden_cluster_group": "ghostwarden_lab_nodes",
                     "ghostwarden_cluster_topology": topology or TOPOLOGY},
        }], "-i", str(inventory or self.inventory), *arguments)

    def peers(self, node: str) -> list[str]:
        output = subprocess.run(["ip", "netns", "exec", f"{self.name}-{node}", "bridge", "-j", "fdb", "show",
                                 "dev", "vx4242"], capture_output=True, text=True, check=True, timeout=30).stdout
        return sorted(entry["dst"] for entry in json.loads(output or "[]") if "dst" in entry)

    def ping(self, source: str, address: str) -> bool:
        for _attempt in range(8):
            if subprocess.run(["ip", "netns", "exec", f"{self.name}-{source}", "busybox", "ping", "-c", "1", "-W", "1",
                               address], capture_output=True, check=False, timeout=30).returncode == 0:
                return True
        return False


def others(node: str, members: list[str]) -> list[str]:
    return sorted(UNDERLAY[member] for member in members if member != node)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLab]:
    cluster = ClusterLab(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.build(["node1", "node2", "node3"])
        yield cluster
    finally:
        cluster.build(["node1", "node2", "node3", "node4"], state="absent")


THREE = ["node1", "node2", "node3"]
FOUR = [*THREE, "node4"]


def test_every_member_floods_the_overlay_to_every_other(lab: ClusterLab) -> None:
    run = lab.converge()
    assert run.rc == 0, run.output
    # The apply and the boot restore unit it installed.
    assert run.changed() == {"node1": 2, "node2": 2, "node3": 2}, run.output
    assert {node: lab.peers(node) for node in THREE} == {node: others(node, THREE) for node in THREE}
    assert lab.ping("node1-ov", "10.99.0.3")


def test_a_fourth_node_in_check_mode_predicts_changes_everywhere_and_changes_nothing(lab: ClusterLab) -> None:
    lab.build(FOUR)
    run = lab.converge("--check")
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1, "node4": 1}, run.output
    assert {node: lab.peers(node) for node in THREE} == {node: others(node, THREE) for node in THREE}


def test_adding_the_fourth_node_updates_every_node(lab: ClusterLab) -> None:
    run = lab.converge()
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1, "node4": 2}, run.output
    assert {node: lab.peers(node) for node in FOUR} == {node: others(node, FOUR) for node in FOUR}
    assert lab.ping("node4-ov", "10.99.0.1")
    assert lab.ping("node2-ov", "10.99.0.4")


def test_the_repeat_changes_nothing(lab: ClusterLab) -> None:
    run = lab.converge()
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 0, "node2": 0, "node3": 0, "node4": 0}, run.output


def test_removing_a_node_from_the_group_removes_it_from_every_fdb(lab: ClusterLab) -> None:
    inventory = yaml.safe_load(lab.inventory.read_text())
    del inventory["all"]["children"]["ghostwarden_lab_nodes"]["hosts"]["node4"]
    smaller = lab.workdir / "three-nodes.yml"
    smaller.write_text(yaml.safe_dump(inventory))
    run = lab.converge(inventory=smaller)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1}, run.output
    assert {node: lab.peers(node) for node in THREE} == {node: others(node, THREE) for node in THREE}


def test_a_protected_link_is_refused_before_anything_changes(lab: ClusterLab) -> None:
    before = {node: lab.peers(node) for node in THREE}
    lan = {"type": "bridge", "iface": "br-lan", "ports": ["eth0"]}
    bad = {**TOPOLOGY, "networks": {**TOPOLOGY["networks"], "lan": lan}}
    run = lab.converge("--limit", "node1", topology=bad)
    assert run.rc != 0
    assert run.failed() == {"node1": 1}, run.output
    assert ("ghostwarden_cluster_topology.networks.lan.ports[0]: eth0 is protected "
            "(ghostwarden_cluster_protected_interfaces): it carries corosync or management traffic and is never "
            "enslaved") in run.output
    assert "Traceback" not in run.output
    assert {node: lab.peers(node) for node in THREE} == before
