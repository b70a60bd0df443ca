# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the integration tests: lab namespaces, and ansible-playbook runs against them.

Plays run the collection's modules from the working tree (``.cache/collections``, made by
tests/conftest.py) on ``localhost`` with the local connection; every task names a lab
namespace through the modules' ``netns`` option and a per-test ``state_dir``. The root network
namespace is never given a topology.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.integration.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = ROOT / ".cache" / "collections"
CALLBACK_PLUGINS = Path(__file__).resolve().parent / "callback_plugins"
REQUIRED_TOOLS = ("ip", "nft", "bridge", "sysctl", "dnsmasq", "busybox")
PLAY_TIMEOUT = 180


def _ansible_playbook() -> Path:
    beside_python = Path(sys.executable).with_name("ansible-playbook")
    return beside_python if beside_python.exists() else ROOT / ".venv" / "bin" / "ansible-playbook"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is None:
        return
    if os.geteuid() != 0:
        pytest.skip("needs root: the test builds network namespaces")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if not _ansible_playbook().exists():
        pytest.skip(f"needs {_ansible_playbook()} (make deps)")


# -- ansible-playbook -------------------------------------------------------------------------

@dataclass
class TaskResult:
    """One task's outcome on localhost: ``status`` is ok, changed, failed, skipped or unreachable."""

    name: str
    action: str
    status: str
    result: dict

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "unreachable")

    def __getitem__(self, key: str) -> object:
        return self.result[key]

    def get(self, key: str, default: object = None) -> object:
        return self.result.get(key, default)

    def kinds(self) -> list[str]:
        """The kinds of the operations in the returned plan, in order."""
        return [operation["kind"] for operation in self.result.get("plan", [])]

    def __str__(self) -> str:
        return f"{self.status}: {self.name}: {json.dumps(self.result, sort_keys=True, indent=1, default=str)}"


class PlayResults(list):
    """The task results of one ansible-playbook run, with its recap and output."""

    def __init__(self, tasks: list[TaskResult], stats: dict, rc: int, output: str) -> None:
        super().__init__(tasks)
        self.stats = stats
        self.rc = rc
        self.output = output


class PlayRunner:
    """Runs plays on localhost with ``ansible-playbook`` and returns every task's result."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "ansible.cfg").write_text("[defaults]\n")
        self.count = 0

    def __call__(self, tasks: list[dict], check: bool = False, diff: bool = False) -> PlayResults:
        """Run ``tasks`` in one play (``--check`` / ``--diff`` when asked)."""
        self.count += 1
        play = {
            "name": f"integration play {self.count}",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": tasks,
        }
        playbook = self.workdir / f"play{self.count}.yml"
        playbook.write_text(yaml.safe_dump([play], sort_keys=False))
        return self.run_playbook(playbook, check=check, diff=diff)

    def run_playbook(self, playbook: Path, *, check: bool = False, diff: bool = False,
                     extra_vars: dict | None = None) -> PlayResults:
        results_file = self.workdir / f"results{self.count}-{secrets.token_hex(2)}.json"
        argv = [str(_ansible_playbook()), "-i", "localhost,", str(playbook)]
        argv += ["--check"] if check else []
        argv += ["--diff"] if diff else []
        if extra_vars:
            argv += ["--extra-vars", json.dumps(extra_vars)]
        completed = subprocess.run(argv, cwd=self.workdir, env=self._environment(results_file), capture_output=True,
                                   text=True, timeout=PLAY_TIMEOUT, check=False)
        output = f"$ {' '.join(argv)}\n{completed.stdout}{completed.stderr}"
        if not results_file.exists():
            raise AssertionError(f"ansible-playbook wrote no results (exit status {completed.returncode}):\n{output}")
        document = json.loads(results_file.read_text())
        tasks = [TaskResult(entry["task"], entry["action"], entry["status"], entry["result"])
                 for entry in document["tasks"]]
        return PlayResults(tasks, document["stats"].get("localhost", {}), completed.returncode, output)

    def _environment(self, results_file: Path) -> dict[str, str]:
        return playbook_environment(self.workdir, results_file=results_file)


def playbook_environment(workdir: Path, *, results_file: Path | None = None,
                         dropped_prefixes: tuple[str, ...] = ("ANSIBLE_",)) -> dict[str, str]:
    """The environment of an ansible-playbook run of the tests, with its files under ``workdir``.

    Nothing from the caller's Ansible settings, and no SSH_CONNECTION: the management guard
    would otherwise protect whatever connection runs the tests, and rulesets would differ. With
    ``results_file``, the task_results callback writes every task's result there (the output
    is then that file, not the usual text).
    """
    config = workdir / "ansible.cfg"
    if not config.exists():
        config.write_text("[defaults]\n")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(dropped_prefixes) and key not in ("SSH_CONNECTION", "SSH_CLIENT")}
    environment.update({
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
        "ANSIBLE_REMOTE_TMP": str(workdir / "remote_tmp"),
    })
    if results_file is not None:
        environment.update({
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_PLUGINS),
            "ANSIBLE_STDOUT_CALLBACK": "task_results",
            "GHOSTWARDEN_TEST_RESULTS": str(results_file),
        })
    return environment


@pytest.fixture(scope="session")
def play_factory() -> Callable[[Path], PlayRunner]:
    """Make a :class:`PlayRunner` working in a given directory (for module-scoped labs)."""
    return PlayRunner


@pytest.fixture
def run_play(tmp_path: Path) -> PlayRunner:
    """``run_play(tasks, check=False, diff=False) -> list[TaskResult]`` for one test."""
    return PlayRunner(tmp_path / "ansible")


def module_task(module: str, **options: object) -> dict:
    """A task calling ``ghostwarden.core.<module>`` with ``options``."""
    return {"name": f"{module} {options.get('name') or options.get('state') or ''}".strip(),
            f"ghostwarden.core.{module}": options}


@pytest.fixture(scope="session")
def task() -> Callable[..., dict]:
    """``task(module, **options)``: a task dict for one of the collection's modules."""
    return module_task


# -- lab --------------------------------------------------------------------------------------

@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab of namespaces for one test, removed afterwards whatever happens."""
    with Lab(prefix=f"gwt-{secrets.token_hex(3)}") as made:
        yield made


@dataclass
class Site:
    """A lab host namespace with an uplink to an "internet" namespace, and a state directory."""

    lab: Lab
    host: str
    inet: str
    state_dir: Path


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    host, inet = lab.add_uplinked_host()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    return Site(lab, host, inet, state_dir)


@pytest.fixture
def nat_dev() -> dict:
    """The original example's routed network, on ports of the lab host (a fresh copy per test)."""
    return {
        "type": "routed",
        "cidr": "10.33.0.0/24",
        "gw_ip": "10.33.0.1",
        "dhcp": True,
        "dns": {"enabled": True, "zones": ["dev.lan"], "records": {"files.dev.lan": "10.33.0.20"}},
        "masq_out": "uplink",
        "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
        "policy_profile": "routed-tight",
        "ports": ["dev1p"],
    }


def state_files(state_dir: Path) -> dict[str, str]:
    """Every file under ``state_dir`` with its content, for comparing before and after a run.

    The apply lock (``<state_dir>/lock``, always empty) is left out: every run takes it, check
    mode too, so that it reads no half-applied state (docs/plan.md section 6).
    """
    return {str(path.relative_to(state_dir)): path.read_text(errors="replace")
            for path in sorted(state_dir.rglob("*")) if path.is_file() and path != state_dir / "lock"}


@pytest.fixture(scope="session")
def read_state_files() -> Callable[[Path], dict[str, str]]:
    return state_files
