# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock-out guard over real SSH: what would cut the controller off is refused before anything changes.

The lab of test_confirm_ssh: ``ctl`` (192.0.2.1/24) runs ansible-playbook over SSH into ``host``
(``mgmt0`` 192.0.2.2/24, sshd on :22). The module sees ``SSH_CONNECTION`` and reads the host's
route back to the controller (mgmt0, 192.0.2.0/24). Every topology below is refused, in check
mode and for real, with one line per problem naming the field; the host's kernel state is the
same before and after, and the state directory holds nothing but the lock file. A topology
that keeps the path (the same networks elsewhere) applies. With ``allow_lockout`` the refused
ones apply inside the confirm window (test_confirm_ssh shows a cut one rolling back).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import LOCK_FILE
from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.integration.test_confirm_ssh import (
    CONTROLLER,
    HOST,
    SshPlays,
    missing_ssh,
    start_sshd,
)

pytestmark = pytest.mark.root

OVERRIDE = "(allow_lockout: true applies it anyway)"

# name -> (topology, the field paths of the problems)
REFUSED = {
    "guard off and sshd forwarded away": ({
        "version": 1, "management": {"enforce": False},
        "networks": {"trap": {"type": "routed", "cidr": "10.99.0.0/24", "gw_ip": "10.99.0.1",
                              "forwards": [{"public": "0.0.0.0:22/tcp", "dst": "10.99.0.10:22"}]}},
    }, ["management.enforce", "networks.trap.forwards"]),
    "forward on the address the connection uses": ({
        "version": 1,
        "networks": {"trap": {"type": "routed", "cidr": "10.99.0.0/24", "gw_ip": "10.99.0.1",
                              "forwards": [{"public": f"{HOST}:20-30/tcp", "dst": "10.99.0.10"}]}},
    }, ["networks.trap.forwards"]),
    "a more specific network over the management subnet": ({
        "version": 1,
        "networks": {"hijack": {"type": "routed", "cidr": "192.0.2.0/28", "gw_ip": "192.0.2.14"}},
    }, ["networks.hijack.cidr"]),
    "a wider network holding the controller": ({
        "version": 1,
        "networks": {"wide": {"type": "routed", "cidr": "192.0.0.0/16", "gw_ip": "192.0.99.1"}},
    }, ["networks.wide.cidr"]),
    "the management interface enslaved": ({
        "version": 1,
        "networks": {"vmbr0": {"type": "bridge", "iface": "vmbr0", "ports": ["mgmt0"]}},
    }, ["networks.vmbr0.ports[0]"]),
}

SAFE = {"version": 1, "networks": {
    "lab0": {"type": "routed", "cidr": "10.98.0.0/24", "gw_ip": "10.98.0.1", "policy_profile": "routed-tight",
             "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.98.0.10:22"}]},
}}


def apply(name: str, topology: dict, state_dir: Path, **options: object) -> dict:
    return {"name": name, "ignore_errors": True, "ghostwarden.core.ghostwarden_apply": {
        "topology": topology, "state_dir": str(state_dir), "confirm_timeout": 20, **options}}


@pytest.mark.skipif(missing_ssh() is not None, reason=missing_ssh() or "ssh present")
def test_lock_outs_are_refused_over_ssh_and_change_nothing(lab: Lab, tmp_path: Path) -> None:
    ctl, host = lab.add_ns("ctl"), lab.add_ns("host")
    lab.veth(ctl, "eth0", host, "mgmt0")
    lab.addr(ctl, "eth0", f"{CONTROLLER}/24")
    lab.addr(host, "mgmt0", f"{HOST}/24")
    key = start_sshd(lab, ctl, host, tmp_path / "ssh")
    plays = SshPlays(lab, ctl, tmp_path / "ansible", key)
    state_dir = tmp_path / "state"
    # Duplicate address detection of mgmt0's link-local address must be over before the snapshot.
    lab.wait_for(lambda: "tentative" not in json.dumps(lab.kernel_state(host)["addresses"]), timeout=10,
                 what="mgmt0's IPv6 link-local address to leave DAD")
    before = lab.settled_state(host)

    tasks = []
    for name, (topology, _paths) in REFUSED.items():
        tasks.append({**apply(f"check: {name}", topology, state_dir), "check_mode": True})
        tasks.append(apply(name, topology, state_dir))
    results = plays(tasks)
    for index, (name, (_topology, paths)) in enumerate(REFUSED.items()):
        for task in results[2 * index:2 * index + 2]:
            assert task.status == "failed", f"{name}: {task}"
            errors = task["errors"]
            assert [line.split(": ", 1)[0] for line in errors] == paths, f"{name}: {errors}"
            assert all(line.endswith(OVERRIDE) for line in errors), errors
            assert str(task["msg"]).startswith(errors[0]), task["msg"]
    after = lab.settled_state(host)
    assert after == before, json.dumps({key: (before[key], after[key]) for key in before if before[key] != after[key]})
    leftovers = {path.name for path in state_dir.iterdir()} if state_dir.exists() else set()
    assert leftovers <= {LOCK_FILE}, leftovers

    # The same kind of networks away from the management path apply, and the connection lives on.
    applied = plays([apply("safe", SAFE, state_dir)])
    assert applied[0].status == "changed" and applied[0]["confirmed"] is True, f"{applied[0]}\n{applied.output}"

    # The option turns a refusal into a warning; the change is then made inside the confirm window.
    allowed = plays([apply("allowed", {**SAFE, "management": {"enforce": False}}, state_dir, allow_lockout=True)])
    task = allowed[0]
    assert task.status == "changed" and task["confirmed"] is True, f"{task}\n{allowed.output}"
    assert any("allow_lockout is true, so this is applied although it can lock you out: management.enforce"
               in warning for warning in task.get("warnings", [])), task.get("warnings")
