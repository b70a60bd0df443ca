# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``ghostwarden.core.netns`` connection plugin against a real namespace.

An inventory host is a throwaway namespace (``gwc-<random>``); its tasks run with
``ansible_connection: ghostwarden.core.netns`` and no ``netns`` module option, so anything they
see or change in the kernel proves that the connection put them inside the namespace.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.tests.support.netns import throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.playbook import (
    ROOT,
    PlayResults,
    TaskResult,
    run_playbook,
    write_yaml,
)

pytestmark = pytest.mark.root

HOST = "router"
GREETING = "hello from the namespace\n"


class InventoryPlays:
    """Runs one play on the inventory's hosts (not on localhost), at -vvv to see the connection's transfers."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def play(self, inventory: dict, tasks: list[dict], extra_vars: dict | None = None) -> PlayResults:
        self.count += 1
        inventory_file = write_yaml(self.workdir / f"inventory{self.count}.yml", inventory)
        playbook = write_yaml(self.workdir / f"play{self.count}.yml", [
            {"name": f"netns play {self.count}", "hosts": "all", "gather_facts": False, "tasks": tasks}])
        return run_playbook(playbook, workdir=self.workdir, inventory=inventory_file, verbose=True,
                            extra_vars=extra_vars, stats_host=HOST)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh, empty network namespace, deleted afterwards whatever happens."""
    with throwaway_netns("gwc", tools=("ip",)) as made:
        yield made.name


def inventory(netns: str) -> dict:
    return {"all": {"hosts": {HOST: {"ansible_connection": "ghostwarden.core.netns", "ansible_netns_name": netns,
                                     "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python")}}}}


def by_name(results: PlayResults) -> dict[str, TaskResult]:
    return {result.name: result for result in results}


def link_names(ip_o_link: str) -> list[str]:
    """The link names in ``ip -o link`` output (``1: lo: <LOOPBACK,...``)."""
    return [line.split(":")[1].strip() for line in ip_o_link.splitlines()]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_tasks_run_inside_the_namespace(namespace: str, tmp_path: Path, pipelining: bool) -> None:
    runner = InventoryPlays(tmp_path / "ansible")
    files = tmp_path / "files"
    files.mkdir()
    fetched = tmp_path / "fetched"
    network = f"n{secrets.token_hex(3)}"
    bridge = f"gw-{network}"
    state_dir = tmp_path / "state"
    topology = {"version": 1, "networks": {network: {"type": "routed", "cidr": "10.77.0.0/24", "gw_ip": "10.77.0.1"}}}
    tasks = [
        {"name": "links", "ansible.builtin.command": "ip -o link", "changed_when": False},
        {"name": "copy",
         "ansible.builtin.copy": {"content": GREETING, "dest": str(files / "greeting.txt"), "mode": "0644"}},
        {"name": "slurp", "ansible.builtin.slurp": {"src": str(files / "greeting.txt")}},
        {"name": "fetch",
         "ansible.builtin.fetch": {"src": str(files / "greeting.txt"), "dest": f"{fetched}/", "flat": True}},
        {"name": "apply", "ghostwarden.core.ghostwarden_apply": {"topology": topology, "state_dir": str(state_dir)}},
    ]

    results = runner.play(inventory(namespace), tasks, extra_vars={"ansible_pipelining": pipelining})

    assert results.rc == 0, results.output
    done = by_name(results)
    assert [result.status for result in results] == ["ok", "changed", "ok", "changed", "changed"], results.output
    assert link_names(done["links"]["stdout"]) == ["lo"]
    assert (files / "greeting.txt").read_text() == GREETING
    assert base64.b64decode(done["slurp"]["content"]).decode() == GREETING
    assert (fetched / "greeting.txt").read_text() == GREETING
    # Without pipelining the module itself is a file the connection puts; with it, it goes over stdin.
    module_puts = [line for line in results.output.splitlines()
                   if f"<{namespace}> PUT " in line and "/AnsiballZ_command.py" in line]
    assert bool(module_puts) is not pipelining, results.output
    assert ip("-n", namespace, "-o", "link", "show", bridge).stdout.split(":")[1].strip() == bridge
    in_root = ip("-o", "link", "show", bridge, check=False)
    assert in_root.returncode != 0 and in_root.stdout == "", "the bridge appeared in the root namespace"

    removed = runner.play(inventory(namespace), [
        {"name": "absent", "ghostwarden.core.ghostwarden_apply": {"state": "absent", "state_dir": str(state_dir)}},
        {"name": "links", "ansible.builtin.command": "ip -o link", "changed_when": False},
    ], extra_vars={"ansible_pipelining": pipelining})

    assert removed.rc == 0, removed.output
    assert [result.status for result in removed] == ["changed", "ok"], removed.output
    assert link_names(by_name(removed)["links"]["stdout"]) == ["lo"]
    assert ip("-n", namespace, "link", "show", bridge, check=False).returncode != 0


def test_a_missing_namespace_fails_with_one_clear_line(tmp_path: Path) -> None:
    missing = f"gwc-{secrets.token_hex(4)}"
    runner = InventoryPlays(tmp_path / "ansible")

    results = runner.play(inventory(missing), [{"name": "links", "ansible.builtin.command": "ip -o link"}])

    assert results.rc != 0
    assert [(result.name, result.status) for result in results] == [("links", "unreachable")], results.output
    # ansible-core 2.19 puts "Task failed: " in front of the connection's message.
    expected = (f"netns connection: network namespace '{missing}' does not exist "
                f"(no /run/netns/{missing}; create it with: ip netns add {missing})")
    assert results[0]["msg"].endswith(expected), results[0]["msg"]
