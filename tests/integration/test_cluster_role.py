# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster role on a lab: the VXLAN mesh follows the inventory group.

One lab (``gc<random>``, 4 nodes, an overlay client behind each) is shared by the tests, which
run in file order: three members, a fourth added (check mode first), the repeat, the fourth
removed, and a topology that would enslave a protected link. The cluster role runs through
ansible-playbook (the collection's ``ghostwarden.core.site`` playbook) against the lab's inventory
(the netns connection). The fixture tears the lab down whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.integration.role_lab import RoleLab, Run

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
THREE = ["node1", "node2", "node3"]
FOUR = [*THREE, "node4"]
CLIENTS = {node: [{"name": "ov", "port": "ovc", "address": f"10.99.0.{node[4:]}/24"}] for node in FOUR}


def converge(lab: RoleLab, *arguments: str, topology: dict | None = None, inventory: Path | None = None) -> Run:
    return lab.site({"ghostwarden_cluster_group": "ghostwarden_lab_nodes",
                     "ghostwarden_cluster_topology": topology or TOPOLOGY}, *arguments, inventory=inventory)


def peers(lab: RoleLab, node: str) -> list[str]:
    return lab.peers(node, "vx4242")


def others(node: str, members: list[str]) -> list[str]:
    return sorted(UNDERLAY[member] for member in members if member != node)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoleLab]:
    cluster = RoleLab(tmp_path_factory.mktemp("cluster"), "gc")
    try:
        cluster.build(THREE, {node: CLIENTS[node] for node in THREE})
        yield cluster
    finally:
        cluster.remove()


def test_every_member_floods_the_overlay_to_every_other(lab: RoleLab) -> None:
    run = converge(lab)
    assert run.rc == 0, run.output
    # The apply and the boot restore unit it installed.
    assert run.changed() == {"node1": 2, "node2": 2, "node3": 2}, run.output
    assert {node: peers(lab, node) for node in THREE} == {node: others(node, THREE) for node in THREE}
    assert lab.ping("node1-ov", "10.99.0.3")


def test_a_fourth_node_in_check_mode_predicts_changes_everywhere_and_changes_nothing(lab: RoleLab) -> None:
    lab.build(FOUR, CLIENTS)
    run = converge(lab, "--check")
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1, "node4": 1}, run.output
    assert {node: peers(lab, node) for node in THREE} == {node: others(node, THREE) for node in THREE}


def test_adding_the_fourth_node_updates_every_node(lab: RoleLab) -> None:
    run = converge(lab)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1, "node4": 2}, run.output
    assert {node: peers(lab, node) for node in FOUR} == {node: others(node, FOUR) for node in FOUR}
    assert lab.ping("node4-ov", "10.99.0.1")
    assert lab.ping("node2-ov", "10.99.0.4")


def test_the_repeat_changes_nothing(lab: RoleLab) -> None:
    run = converge(lab)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 0, "node2": 0, "node3": 0, "node4": 0}, run.output


def test_removing_a_node_from_the_group_removes_it_from_every_fdb(lab: RoleLab) -> None:
    inventory = yaml.safe_load(lab.inventory.read_text())
    del inventory["all"]["children"]["ghostwarden_lab_nodes"]["hosts"]["node4"]
    smaller = lab.workdir / "three-nodes.yml"
    smaller.write_text(yaml.safe_dump(inventory))
    run = converge(lab, inventory=smaller)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1, "node2": 1, "node3": 1}, run.output
    assert {node: peers(lab, node) for node in THREE} == {node: others(node, THREE) for node in THREE}


def test_a_protected_link_is_refused_before_anything_changes(lab: RoleLab) -> None:
    before = {node: peers(lab, node) for node in THREE}
    lan = {"type": "bridge", "iface": "br-lan", "ports": ["eth0"]}
    bad = {**TOPOLOGY, "networks": {**TOPOLOGY["networks"], "lan": lan}}
    run = converge(lab, "--limit", "node1", topology=bad)
    assert run.rc != 0
    assert run.failed() == {"node1": 1}, run.output
    assert ("ghostwarden_cluster_topology.networks.lan.ports[0]: eth0 is protected "
            "(ghostwarden_cluster_protected_interfaces): it carries corosync or management traffic and is never "
            "enslaved") in run.output
    assert "Traceback" not in run.output
    assert {node: peers(lab, node) for node in THREE} == before
