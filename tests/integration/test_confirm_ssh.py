# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The confirm window over real SSH: a change that cuts the management path rolls back by itself.

Two lab namespaces joined by a veth: ``ctl`` (192.0.2.1/24, the controller) and ``host``
(``mgmt0``, 192.0.2.2/24), where a real OpenSSH sshd listens on 192.0.2.2:22 with a host key
and a root authorized key generated for the test. ansible-playbook runs inside ``ctl`` and
reaches the host over SSH (ControlPersist, pipelining); the module runs in the sshd's namespace
with ``netns`` unset, exactly as on a remote host, and sees ``SSH_CONNECTION``.

1. Topology A (one routed network, the default management guard protecting the connection)
   with ``confirm_timeout: 20``: the action plugin reconnects and confirms, ``confirmed: true``.
2. Topology B = A plus a routed network ``trap`` whose port forward ``0.0.0.0:22/tcp ->
   10.99.0.10:22`` sends every *new* SSH connection to an address nobody has (the SYN is DNAT'd
   into an empty bridge and vanishes), with the guard switched off (``management.enforce:
   false``, ``management_from_connection: false``). The connection that applied it survives
   (conntrack keeps an established flow un-NATed), so only the plugin's reset shows the cut:
   while the window is open a fresh TCP connect from ``ctl`` to port 22 times out; the task fails
   with "the change cut the management path" and ``rolled_back: true``; within the window the
   host's detached timer (no controller action) restores A: the rolled-back marker appears, the
   journal goes, the owned table is A's again and ``gw-trap`` is gone.
3. A following task over SSH succeeds: applying A again has nothing to do.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import normalise_ruleset
from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.support.playbook import (
    PlayResults,
    RunningPlaybook,
    finish_playbook,
    start_playbook,
    write_yaml,
)
from ansible_collections.ghostwarden.core.tests.support.sshd import prepare_sshd

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
SSHD = "/usr/sbin/sshd"
CONTROLLER, HOST = "192.0.2.1", "192.0.2.2"
WINDOW = 20
PLAY_TIMEOUT = 90


def missing_ssh() -> str | None:
    if not os.path.exists(SSHD):
        return f"needs the OpenSSH server ({SSHD}; Debian package openssh-server, installed by make deps)"
    missing = [tool for tool in ("ssh", "ssh-keygen") if shutil.which(tool) is None]
    return f"needs {', '.join(missing)} (openssh-client)" if missing else None


def topology_a() -> dict:
    return {"version": 1, "networks": {
        "lab0": {"type": "routed", "cidr": "10.98.0.0/24", "gw_ip": "10.98.0.1", "policy_profile": "routed-tight"},
    }}


def topology_b() -> dict:
    topology = topology_a()
    topology["management"] = {"enforce": False}
    topology["networks"]["trap"] = {"type": "routed", "cidr": "10.99.0.0/24", "gw_ip": "10.99.0.1",
                                    "forwards": [{"public": "0.0.0.0:22/tcp", "dst": "10.99.0.10:22"}]}
    return topology


def start_sshd(lab: Lab, ctl: str, host: str, directory: Path) -> Path:
    """sshd on HOST:22 inside ``host`` (ready once ``ctl`` reads its banner); the client's private key."""
    config, client_key = prepare_sshd(directory, HOST)
    log = open(directory / "sshd.log", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    lab.spawn(host, SSHD, "-D", "-e", "-f", str(config), stderr=log)
    lab.wait_for(lambda: lab.connect_tcp(ctl, HOST, 22, timeout=1).startswith("SSH-2.0-"),
                 timeout=15, what=f"sshd on {HOST}:22")
    return client_key


class SshPlays:
    """ansible-playbook inside the controller namespace against HOST over SSH."""

    def __init__(self, lab: Lab, ctl: str, workdir: Path, key: Path) -> None:
        self.lab = lab
        self.ctl = ctl
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "ansible.cfg").write_text("\n".join([
            "[defaults]",
            "host_key_checking = False",
            "[ssh_connection]",
            "pipelining = True",
            f"control_path_dir = {workdir / 'cp'}",
            "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null",
            "timeout = 5",
        ]) + "\n")
        (workdir / "inventory.ini").write_text(
            f"{HOST} ansible_user=root ansible_ssh_private_key_file={key} "
            f"ansible_python_interpreter={ROOT / '.venv' / 'bin' / 'python'}\n")
        self.count = 0

    def start(self, tasks: list[dict]) -> RunningPlaybook:
        self.count += 1
        playbook = write_yaml(self.workdir / f"ssh-play{self.count}.yml", [
            {"name": f"ssh play {self.count}", "hosts": HOST, "gather_facts": False, "tasks": tasks}])
        return start_playbook(playbook, workdir=self.workdir, inventory=self.workdir / "inventory.ini",
                              netns=self.ctl, stats_host=HOST)

    @staticmethod
    def finish(running: RunningPlaybook) -> PlayResults:
        return finish_playbook(running, timeout=PLAY_TIMEOUT)

    def __call__(self, tasks: list[dict]) -> PlayResults:
        return self.finish(self.start(tasks))


def apply_task(topology: dict, state_dir: Path, **options: object) -> dict:
    return {"name": "apply", "ghostwarden.core.ghostwarden_apply": {
        "topology": topology, "state_dir": str(state_dir), "confirm_timeout": WINDOW, **options}}


def owned_table(lab: Lab, host: str) -> str | None:
    listed = lab.run(host, "nft", "list", "table", "inet", "ghostwarden", check=False)
    return normalise_ruleset(listed.stdout) if listed.returncode == 0 else None


@pytest.mark.skipif(missing_ssh() is not None, reason=missing_ssh() or "ssh present")
def test_lost_management_path_rolls_back_by_itself(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    ctl, host = lab.add_ns("ctl"), lab.add_ns("host")
    lab.veth(ctl, "eth0", host, "mgmt0")
    lab.addr(ctl, "eth0", f"{CONTROLLER}/24")
    lab.addr(host, "mgmt0", f"{HOST}/24")
    key = start_sshd(lab, ctl, host, tmp_path / "ssh")
    plays = SshPlays(lab, ctl, tmp_path / "ansible", key)
    state_dir = tmp_path / "state"

    first = plays([apply_task(topology_a(), state_dir)])
    assert first[0].status == "changed", f"{first[0]}\n{first.output}"
    assert (first[0]["confirmed"], first[0]["generation"]) == (True, 1), str(first[0])
    assert not (state_dir / "journal.json").exists()
    table_a = owned_table(lab, host)
    assert table_a is not None

    running = plays.start([apply_task(topology_b(), state_dir, management_from_connection=False, allow_lockout=True)])
    journal = state_dir / "journal.json"

    def window_open() -> bool:
        try:
            return json.loads(journal.read_text())["confirm_deadline"] is not None
        except (OSError, ValueError, KeyError):
            return False

    lab.wait_for(window_open, timeout=30, interval=0.2, what="the confirm window to open")
    # B is live: a new connection to sshd goes nowhere (the trap's DNAT), while the window is open.
    assert lab.connect_tcp(ctl, HOST, 22, timeout=1.5) == "failed: TimeoutError"
    second = plays.finish(running)
    task = second[0]
    assert task.status == "failed", f"{task}\n{second.output}"
    window = task["confirm"]
    assert 0 < window["deadline_in"] <= WINDOW and window["rollback_generation"] == 1, str(task)
    assert task["msg"] == (f"the change cut the management path: no new connection within {window['deadline_in']:g} s; "
                           "the host rolls back to generation 1 by itself"), task["msg"]
    assert task["rolled_back"] is True and task["confirmed"] is False, str(task)
    token = window["token"]

    # The host's own timer rolls back: no controller action from here on.
    marker = state_dir / f"rolled-back-{token}"
    lab.wait_for(marker.exists, timeout=15, interval=0.2, what="the host to roll back by itself")
    assert marker.read_text().startswith("the confirm window closed at ")
    assert not journal.exists()
    assert owned_table(lab, host) == table_a
    assert "gw-trap" not in lab.links(host)
    assert json.loads((state_dir / "state.json").read_text())["generation"] == 1

    third = plays([apply_task(topology_a(), state_dir)])
    assert third[0].status == "ok", f"{third[0]}\n{third.output}"
    assert (third[0]["changed"], third[0]["plan"]) == (False, [])
    assert time.monotonic() - started < 90
