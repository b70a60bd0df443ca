# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A lab built with the lab role, and playbooks run against its inventory (the netns connection).

For tests of the host and cluster roles: :class:`RoleLab` builds and removes a lab named
``<prefix><random>`` through ``ghostwarden.core.lab``, runs playbooks with the lab's inventory, and
reads the play recap per host.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.ghostwarden.core.tests.support.playbook import run_playbook, write_yaml

RECAP = re.compile(r"^(?P<host>\S+)\s+: ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                   r"failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class Run:
    """One ansible-playbook run: exit status, output, and the recap per host."""

    rc: int
    output: str

    def changed(self) -> dict[str, int]:
        return {match["host"]: int(match["changed"]) for match in RECAP.finditer(self.output)}

    def failed(self) -> dict[str, int]:
        return {match["host"]: int(match["failed"]) + int(match["unreachable"]) for match in RECAP.finditer(self.output)}


class RoleLab:
    """A lab of the lab role, named ``<prefix><random>``, and playbooks against its inventory."""

    def __init__(self, workdir: Path, prefix: str) -> None:
        self.name = f"{prefix}{secrets.token_hex(2)}"
        self.workdir = workdir
        self.state_root = Path("/run/ghostwarden-lab") / self.name
        self.inventory = self.state_root / "inventory.yml"
        self.nodes: list[str] = ["node1"]

    def playbook(self, plays: list[dict], *arguments: str) -> Run:
        """``plays`` with the default callback (its recap is what :class:`Run` reads)."""
        path = write_yaml(self.workdir / f"play-{secrets.token_hex(3)}.yml", plays)
        run = run_playbook(path, workdir=self.workdir, inventory=None, options=arguments, results=False)
        return Run(run.rc, run.output)

    def build(self, nodes: list[str], clients: dict[str, list[dict]], state: str = "present") -> None:
        """The lab with ``nodes`` and ``clients`` (node -> client list), or (absent) without it."""
        self.nodes = nodes
        run = self.playbook([{
            "name": "lab", "hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_connection": "local", "ghostwarden_lab_name": self.name, "ghostwarden_lab_nodes": nodes,
                     "ghostwarden_lab_clients": clients, "ghostwarden_lab_state": state},
            "roles": [{"role": "ghostwarden.core.lab"}],
        }])
        assert run.rc == 0, run.output

    def remove(self) -> None:
        """Tear the lab down (every namespace with its mark, processes, state root)."""
        self.build(self.nodes, {}, state="absent")

    def site(self, extra_vars: dict, *arguments: str, inventory: Path | None = None) -> Run:
        """The collection's site playbook by its FQCN, as users and AWX job templates run it."""
        return self.playbook([{"import_playbook": "ghostwarden.core.site", "vars": extra_vars}],
                             "-i", str(inventory or self.inventory), *arguments)

    def run_in(self, namespace: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command inside the lab namespace ``<lab>-<namespace>``."""
        return subprocess.run(["ip", "netns", "exec", f"{self.name}-{namespace}", *argv], capture_output=True,
                              text=True, check=check, timeout=30)

    def peers(self, node: str, vxlan: str) -> list[str]:
        """The remote VTEPs in the FDB of ``vxlan`` on ``node``."""
        output = self.run_in(node, "bridge", "-j", "fdb", "show", "dev", vxlan).stdout
        return sorted(entry["dst"] for entry in json.loads(output or "[]") if "dst" in entry)

    def ping(self, source: str, address: str) -> bool:
        for _attempt in range(8):
            if self.run_in(source, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0:
                return True
        return False
