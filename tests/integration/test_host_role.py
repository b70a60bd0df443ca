# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host role on a one-node lab, through ``ghostwarden.core.site``.

Run in file order on one lab (``gh<random>``): bad input fails before anything changes, check
mode predicts and writes nothing, the apply installs the boot restore unit, the repeat changes
nothing, ``absent`` removes the owned objects and the unit. The fixture removes the lab.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ansible_collections.ghostwarden.core.tests.integration.role_lab import RoleLab, Run

pytestmark = pytest.mark.root

TOPOLOGY = {
    "version": 1,
    "interfaces": {"uplink": "up0"},
    "networks": {
        "lan": {"type": "routed", "cidr": "10.50.0.0/24", "gw_ip": "10.50.0.1", "ports": ["lanc"], "dhcp": True,
                "masq_out": "uplink", "forwards": [{"public": "0.0.0.0:8080/tcp", "dst": "10.50.0.10:80"}],
                "policy_profile": "routed-tight"},
    },
}
UNIT = "ghostwarden-restore.service"


def host_site(lab: RoleLab, *arguments: str, **variables: object) -> Run:
    return lab.site({"ghostwarden_hosts_group": "ghostwarden_lab_nodes", "ghostwarden_cluster_group": "no_cluster",
                     "ghostwarden_topology": TOPOLOGY, **variables}, *arguments)


def owned_table(lab: RoleLab) -> str | None:
    listed = lab.run_in("node1", "nft", "list", "table", "inet", "ghostwarden", check=False)
    return listed.stdout if listed.returncode == 0 else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoleLab]:
    host = RoleLab(tmp_path_factory.mktemp("host"), "gh")
    try:
        host.build(["node1"], {"node1": [{"name": "c1", "port": "lanc"}]})
        yield host
    finally:
        host.remove()


def test_bad_input_fails_with_one_line_before_anything_changes(lab: RoleLab) -> None:
    bad = {**TOPOLOGY, "networks": {"lan": {**TOPOLOGY["networks"]["lan"],
                                            "forwards": [{"public": "0.0.0.0:70000/tcp", "dst": "10.50.0.10:80"}]}}}
    run = host_site(lab, ghostwarden_topology=bad)
    assert run.failed() == {"node1": 1}, run.output
    assert "networks.lan.forwards[0].public: port 70000 is out of range 1-65535" in run.output
    assert "Traceback" not in run.output
    assert owned_table(lab) is None


def test_a_wrong_variable_type_is_refused_by_the_argument_spec(lab: RoleLab) -> None:
    run = host_site(lab, ghostwarden_confirm_timeout="soon")
    assert run.failed() == {"node1": 1}, run.output
    assert "ghostwarden_confirm_timeout" in run.output and "int" in run.output
    assert owned_table(lab) is None


def test_check_mode_predicts_the_change_and_writes_nothing(lab: RoleLab) -> None:
    run = host_site(lab, "--check")
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 1}, run.output
    assert owned_table(lab) is None
    assert not (lab.state_root / "node1" / "systemd" / UNIT).exists()


def test_the_apply_installs_the_boot_restore_unit(lab: RoleLab) -> None:
    run = host_site(lab)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 2}, run.output
    assert "dnat" in (owned_table(lab) or "")
    installed = lab.state_root / "node1" / "systemd" / UNIT
    generated = lab.state_root / "node1" / "state" / "persist" / UNIT
    assert installed.read_text() == generated.read_text()
    assert "ExecStart=" in installed.read_text()


def test_the_repeat_changes_nothing(lab: RoleLab) -> None:
    run = host_site(lab)
    assert run.rc == 0, run.output
    assert run.changed() == {"node1": 0}, run.output


def test_absent_removes_the_owned_objects_and_the_unit(lab: RoleLab) -> None:
    run = host_site(lab, ghostwarden_state="absent")
    assert run.rc == 0, run.output
    assert run.changed()["node1"] >= 2, run.output
    assert owned_table(lab) is None
    assert not (lab.state_root / "node1" / "systemd" / UNIT).exists()
    assert "gw-lan" not in lab.run_in("node1", "ip", "-br", "link").stdout
