# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-playbook runs of the tests, with every task's result handed back.

Plays run the collection from the working tree (the collections root tests/conftest.py links),
with nothing from the caller's Ansible settings. With a results file, the ``task_results``
stdout callback (``callback_plugins/``) writes each task's status and complete result and the
recap there, and a run returns :class:`PlayResults` (a list of :class:`TaskResult`); without one,
the usual text output.

- :func:`run_playbook`: one run of a playbook file (``netns``: inside that namespace, with
  ``ip netns exec``); :func:`start_playbook` and :func:`finish_playbook` are its two halves, for
  a test that acts while the play runs.
- :class:`PlayRunner`: one-play playbooks on localhost with the local connection, written into a
  work directory (the integration tests' ``run_play``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.ghostwarden.core.tests.support.processes import communicate_within

ROOT = Path(__file__).resolve().parents[2]
# The collections root this module was imported from (<root>/ansible_collections/ghostwarden/core/
# tests/support/playbook.py, not resolved): where tests/conftest.py links the working tree.
COLLECTIONS_PATH = Path(os.path.abspath(__file__)).parents[5]
CALLBACK_PLUGINS = Path(__file__).resolve().parent / "callback_plugins"
PLAY_TIMEOUT = 180
LOCAL_PYTHON = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}


def ansible_playbook() -> Path:
    """The ansible-playbook beside the running Python, else the repository's .venv one."""
    beside_python = Path(sys.executable).with_name("ansible-playbook")
    return beside_python if beside_python.exists() else ROOT / ".venv" / "bin" / "ansible-playbook"


@dataclass
class TaskResult:
    """One task's outcome on one host: ``status`` is ok, changed, failed, skipped or unreachable."""

    name: str
    action: str
    status: str
    result: dict
    host: str = ""

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


def playbook_environment(workdir: Path, *, results_file: Path | None = None,
                         dropped_prefixes: tuple[str, ...] = ("ANSIBLE_",)) -> dict[str, str]:
    """The environment of an ansible-playbook run of the tests, with its files under ``workdir``.

    Nothing from the caller's Ansible settings (variables starting with ``dropped_prefixes``), and
    no SSH_CONNECTION: the management guard would otherwise protect whatever connection runs the
    tests, and rulesets would differ. With ``results_file``, the task_results callback writes
    every task's result there (the output is then that file, not the usual text).
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


def write_yaml(path: Path, document: object) -> Path:
    """``document`` as YAML at ``path`` (a playbook, an inventory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def local_play(name: str, tasks: list[dict], *, play_vars: Mapping[str, Any] | None = None, **keywords: Any) -> dict:
    """A play of ``tasks`` on localhost with the local connection and the controller's Python."""
    return {"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {**LOCAL_PYTHON, **(play_vars or {})}, **keywords, "tasks": tasks}


@dataclass
class RunningPlaybook:
    """An ansible-playbook run under way (:func:`start_playbook`); :func:`finish_playbook` ends it."""

    process: subprocess.Popen
    results_file: Path | None
    stats_host: str | None
    output_with_results: bool


def start_playbook(playbook: Path | str, *, workdir: Path, inventory: Path | str | None = "localhost,",
                   options: Sequence[str] = (), check: bool = False, diff: bool = False, verbose: bool = False,
                   extra_vars: Mapping[str, Any] | None = None, netns: str | None = None, results: bool = True,
                   environment: Mapping[str, str] | None = None,
                   dropped_prefixes: tuple[str, ...] = ("ANSIBLE_",), stats_host: str | None = "localhost",
                   output_with_results: bool = False) -> RunningPlaybook:
    """Start ansible-playbook on ``playbook`` in ``workdir`` (see :func:`run_playbook`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    results_file = workdir / f"results-{secrets.token_hex(4)}.json" if results else None
    argv = [str(ansible_playbook())]
    argv += ["-i", str(inventory)] if inventory is not None else []
    argv += [str(playbook), *options]
    argv += ["--check"] if check else []
    argv += ["--diff"] if diff else []
    argv += ["-vvv"] if verbose else []
    argv += ["--extra-vars", json.dumps(extra_vars)] if extra_vars else []
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**playbook_environment(workdir, results_file=results_file, dropped_prefixes=dropped_prefixes),
           **(environment or {})}
    process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return RunningPlaybook(process, results_file, stats_host, output_with_results)


def finish_playbook(running: RunningPlaybook, *, timeout: float = PLAY_TIMEOUT) -> PlayResults:
    """Wait (bounded) for the run to end; its task results (none without a results file)."""
    process = running.process
    command = " ".join(process.args)  # type: ignore[arg-type]
    stdout, stderr = communicate_within(process, timeout, "ansible-playbook", context=f"$ {command}\n")
    output = f"$ {command}\n{stdout}{stderr}"
    if running.results_file is None:
        return PlayResults([], {}, process.returncode, output)
    if not running.results_file.exists():
        raise AssertionError(f"ansible-playbook wrote no results (exit status {process.returncode}):\n{output}")
    text = running.results_file.read_text()
    document = json.loads(text)
    tasks = [TaskResult(entry["task"], entry["action"], entry["status"], entry["result"], entry.get("host", ""))
             for entry in document["tasks"]]
    stats = document["stats"] if running.stats_host is None else document["stats"].get(running.stats_host, {})
    return PlayResults(tasks, stats, process.returncode, output + text if running.output_with_results else output)


def run_playbook(playbook: Path | str, *, workdir: Path, timeout: float = PLAY_TIMEOUT, **start: Any) -> PlayResults:
    """Run ansible-playbook on ``playbook`` in ``workdir`` and return every task's result.

    ``inventory`` (default ``localhost,``; None: give ``-i`` in ``options``), ``options`` (more
    arguments), ``check``/``diff``/``verbose`` (``-vvv``), ``extra_vars``; ``netns``: run inside
    that namespace; ``results=False``: no results file, the default callback's text only;
    ``environment``: more variables; ``dropped_prefixes``: the caller's variables left out;
    ``stats_host``: the host whose recap is ``stats`` (None: all hosts); ``output_with_results``:
    the results file is part of ``output`` too.
    """
    return finish_playbook(start_playbook(playbook, workdir=workdir, **start), timeout=timeout)


class PlayRunner:
    """Runs one-play playbooks on localhost and returns every task's result.

    ``netns``: ansible-playbook itself runs inside that namespace; ``extra_environment``:
    variables added to every run (a test may change them between plays).
    """

    def __init__(self, workdir: Path, *, netns: str | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "ansible.cfg").write_text("[defaults]\n")
        self.netns = netns
        self.extra_environment: dict[str, str] = {}
        self.count = 0

    def __call__(self, tasks: list[dict], check: bool = False, diff: bool = False) -> PlayResults:
        """Run ``tasks`` in one play (``--check`` / ``--diff`` when asked)."""
        return self.play(tasks, check=check, diff=diff)

    def play(self, tasks: list[dict], *, play_vars: Mapping[str, Any] | None = None,
             module_defaults: Mapping[str, Any] | None = None, **run: Any) -> PlayResults:
        """Run ``tasks`` in one play on localhost; ``run``: the options of :func:`run_playbook`."""
        self.count += 1
        keywords = {"module_defaults": dict(module_defaults)} if module_defaults is not None else {}
        play = local_play(f"test play {self.count}", tasks, play_vars=play_vars, **keywords)
        playbook = write_yaml(self.workdir / f"play{self.count}.yml", [play])
        return self.run_playbook(playbook, **run)

    def run_playbook(self, playbook: Path, **run: Any) -> PlayResults:
        """Run a playbook file; ``run``: the options of :func:`run_playbook`."""
        run.setdefault("netns", self.netns)
        run["environment"] = {**self.extra_environment, **run.get("environment", {})}
        return run_playbook(playbook, workdir=self.workdir, **run)


def module_task(module: str, **options: object) -> dict:
    """A task calling ``ghostwarden.core.<module>`` with ``options``."""
    return {"name": f"{module} {options.get('name') or options.get('state') or ''}".strip(),
            f"ghostwarden.core.{module}": options}
