# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster role on 3, 12 and 24 lab nodes, per node, beside a play of the same shape made of trivial tasks.

Issue 5 item 8, issue 12 item 6. For each size a lab of network namespaces is built with the lab
role (bench/cluster/lab.yml, not measured). Then, per repetition, three ansible-playbook runs on
the lab's inventory (the ghostwarden.core.netns connection, Ansible's default forks unless
--forks), each timed as a whole (wall clock of ansible-playbook):

- apply: bench/cluster/cluster.yml, the cluster role on every node from nothing (a VXLAN
  overlay over the lab's underlay and a routed network per node with DHCP, masquerade and a
  DNAT forward); before every repetition but the first the role removes it again
  (ghostwarden_state=absent, not measured);
- re-run: the same play again, which changes nothing;
- trivial shape: a play written from the tasks the apply ran on each node, one trivial task
  for each (``ansible.builtin.ping`` where the role ran a module on the node, with as many loop
  items; ``ansible.builtin.assert`` where it ran on the controller, such as set_fact or
  include_role; a skipped task where the role's was skipped): Ansible's own cost of a play of
  that shape on that many nodes.

The VTEP entries of every node's VXLAN device are counted (N-1 each) and the lab is removed.
Target: time per node grows less than 1.5x from 3 to 24 nodes. A benchmark reports: it exits 0
whether or not the target is met, 1 when a run fails, 2 when not run as root.

    sudo .venv/bin/python bench/bench_cluster.py [--sizes 3,12,24] [--repeat 1] [--forks 5] [--json FILE]

The helpers to run a playbook with the ``bench_tasks`` callback (bench/callback_plugins), which
records every task's wall time and result size, are used by bench/bench_e2e.py as well.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# The import makes the collection importable as ansible_collections.ghostwarden.core.
import conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.ghostwarden.core.tests.support.playbook import (  # noqa: E402
    LOCAL_PYTHON,
    run_playbook,
    write_yaml,
)

VENV_BIN = ROOT / ".venv" / "bin"
CALLBACK_PLUGINS = ROOT / "bench" / "callback_plugins"
LAB_NAME = "gwbench"
INVENTORY = Path("/run/ghostwarden-lab") / LAB_NAME / "inventory.yml"
GROUP = "ghostwarden_lab_nodes"
PLAY_TIMEOUT = 1800
GROWTH_TARGET = 1.5
# Actions that run on the controller only (no module on the node): their trivial stand-in is an assert.
CONTROLLER_ACTIONS = frozenset(
    prefix + name
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("assert", "set_fact", "debug", "fail", "meta", "include_tasks", "import_tasks", "include_role",
                 "import_role", "include_vars", "add_host", "group_by", "set_stats", "pause")
)


class BenchError(RuntimeError):
    """A run failed or gave something else than expected: no figure to report."""


# -- playbook runs with the bench_tasks callback ------------------------------------------------


@dataclass
class Recording:
    """One ansible-playbook run: its wall clock and what the bench_tasks callback recorded."""

    wall: float
    tasks: list[dict]
    output: str
    start: float = 0.0  # the playbook's start as the callback saw it (time.monotonic())
    end: float = 0.0  # the recap

    @property
    def before_tasks(self) -> float:
        """From the playbook's start (callback) to its first task's start."""
        return self.tasks[0]["start"] - self.start if self.tasks else 0.0

    def named(self, name: str) -> dict:
        """The task called ``name`` (the first, when several have that name)."""
        for task in self.tasks:
            if task["name"] == name:
                return task
        raise BenchError(f"no task {name!r} in the run:\n{self.output[-3000:]}")

    def seconds(self, name: str) -> float:
        """Wall time of task ``name``: from its start to its last host's result."""
        task = self.named(name)
        if not task["hosts"]:
            raise BenchError(f"task {name!r} has no result")
        return max(entry["end"] for entry in task["hosts"]) - task["start"]

    def result(self, name: str) -> dict:
        """The (first) host entry of task ``name``: status, changed, bytes, items."""
        task = self.named(name)
        if not task["hosts"]:
            raise BenchError(f"task {name!r} has no result")
        return task["hosts"][0]


def run_recorded(playbook: Path, *, workdir: Path, what: str, timeout: float = PLAY_TIMEOUT,
                 environment: Mapping[str, str] | None = None, **run: Any) -> Recording:
    """Run ansible-playbook with the bench_tasks callback; its wall clock and records. Raises on failure.

    ``run``: the options of tests/support/playbook.py's run_playbook (inventory, netns, options, extra_vars).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    records = Path(tempfile.mkstemp(prefix="tasks-", suffix=".json", dir=workdir)[1])
    env = {
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_PLUGINS),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_tasks",
        "GHOSTWARDEN_BENCH_TASKS": str(records),
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        **(environment or {}),
    }
    started = time.monotonic()
    try:
        played = run_playbook(playbook, workdir=workdir, timeout=timeout, results=False, environment=env, **run)
    except AssertionError as error:  # the bounded wait of tests/support ran out
        raise BenchError(f"{what}: {error}") from None
    wall = time.monotonic() - started
    if played.rc != 0:
        raise BenchError(f"{what} failed (exit status {played.rc}):\n{played.output[-6000:]}")
    try:
        document = json.loads(records.read_text())
    except ValueError:
        raise BenchError(f"{what}: the bench_tasks callback wrote nothing:\n{played.output[-3000:]}") from None
    return Recording(wall, document["tasks"], played.output, document["start"], document["end"])


def trivial_shape(recording: Recording) -> list[dict]:
    """One trivial task for each task of ``recording``, on the hosts that ran it (see the module docstring)."""
    tasks = []
    for index, task in enumerate(recording.tasks, start=1):
        ran = sorted({entry["host"] for entry in task["hosts"] if entry["status"] != "skipped"})
        every = sorted({entry["host"] for entry in task["hosts"]})
        if not every:
            continue
        name = f"trivial {index} ({task['action']})"
        if task["action"] in CONTROLLER_ACTIONS:
            trivial: dict = {"name": name, "ansible.builtin.assert": {"that": ["true"], "quiet": True}}
        else:
            trivial = {"name": name, "ansible.builtin.ping": {}}
            items = max((entry["items"] or 0 for entry in task["hosts"]), default=0)
            if items:
                trivial["loop"] = list(range(items))
        if not ran:
            trivial["when"] = False
        elif ran != every:
            trivial["when"] = f"inventory_hostname in {ran!r}"
        tasks.append(trivial)
    return tasks


def module_tasks_per_host(recording: Recording) -> float:
    """Tasks that ran a module on a node (not skipped, not controller-only), per node."""
    hosts = {entry["host"] for task in recording.tasks for entry in task["hosts"]}
    count = sum(1 for task in recording.tasks if task["action"] not in CONTROLLER_ACTIONS
                for entry in task["hosts"] if entry["status"] != "skipped")
    return count / len(hosts) if hosts else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def wait_for_quiet_kernel(limit: float = 600) -> float:
    """Wait until the kernel has dismantled deleted namespaces (ours or another program's); the seconds waited.

    The kernel does that in the background, in its ``netns`` workqueue, holding the RTNL lock for
    most of it (about 10 s per 500 bridges), and every link change waits for it: a measurement
    started meanwhile would take that wait into its figure. A kernel worker busy with that queue
    is named ``kworker/...+netns``: wait until none has been for 2 s.
    """
    started = time.monotonic()
    quiet = 0
    while quiet < 4 and time.monotonic() - started < limit:
        quiet = 0 if netns_cleanup_running() else quiet + 1
        time.sleep(0.5)
    return time.monotonic() - started


def netns_cleanup_running() -> bool:
    """Whether a kernel worker is tearing network namespaces down now (``kworker/<id>+netns``)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().rstrip("\n").endswith("+netns"):
                return True
        except OSError:  # the process ended meanwhile
            continue
    return False


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM runs the finally blocks (the lab removed) like Ctrl-C does."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the cluster --------------------------------------------------------------------------------


@dataclass
class ClusterSize:
    nodes: int
    apply: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    trivial: list[float] = field(default_factory=list)
    tasks_per_node: int = 0
    module_tasks_per_node: float = 0.0
    fdb: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"nodes": self.nodes, "apply": self.apply, "again": self.again, "trivial": self.trivial,
                "tasks_per_node": self.tasks_per_node, "module_tasks_per_node": self.module_tasks_per_node,
                "fdb": self.fdb}


def fdb_entries(nodes: int) -> list[int]:
    """Remote VTEP entries of vx1200 in every node."""
    counts = []
    for index in range(1, nodes + 1):
        output = subprocess.run(["ip", "netns", "exec", f"{LAB_NAME}-node{index}", "bridge", "-j", "fdb", "show",
                                 "dev", "vx1200"], capture_output=True, text=True, check=True).stdout
        counts.append(sum(1 for entry in json.loads(output or "[]") if "dst" in entry))
    return counts


def lab(nodes: int, state: str, workdir: Path) -> None:
    run_recorded(ROOT / "bench" / "cluster" / "lab.yml", workdir=workdir, what=f"the lab ({state}, {nodes} nodes)",
                 extra_vars={"ghostwarden_lab_nodes": nodes, "ghostwarden_lab_state": state, **LOCAL_PYTHON})


def measure_cluster(nodes: int, repeat: int, forks: int | None, workdir: Path,
                    progress: bool = True) -> ClusterSize:
    """Build a lab of ``nodes``, time ``repeat`` rounds of apply, re-run and trivial shape, remove the lab."""
    options = ["--forks", str(forks)] if forks else []
    cluster = ROOT / "bench" / "cluster" / "cluster.yml"
    size = ClusterSize(nodes)
    work = workdir / f"cluster-{nodes}"
    trivial = work / "trivial-shape.yml"
    lab(nodes, "present", work)
    try:
        for attempt in range(repeat):
            if attempt:
                run_recorded(cluster, workdir=work, what=f"removing the cluster from {nodes} nodes",
                             inventory=INVENTORY, options=options, extra_vars={"ghostwarden_state": "absent"})
            wait_for_quiet_kernel()  # the lab of the size before, or another program's namespaces, going away
            applied = run_recorded(cluster, workdir=work, what=f"cluster apply on {nodes} nodes",
                                   inventory=INVENTORY, options=options)
            size.apply.append(applied.wall)
            again = run_recorded(cluster, workdir=work, what=f"cluster re-run on {nodes} nodes",
                                 inventory=INVENTORY, options=options)
            size.again.append(again.wall)
            if attempt == 0:
                shape = trivial_shape(applied)
                size.tasks_per_node = len(shape)
                size.module_tasks_per_node = module_tasks_per_host(applied)
                write_yaml(trivial, [{"name": "A play of the cluster role's shape made of trivial tasks", "hosts": GROUP,
                                      "gather_facts": False, "tasks": shape}])
                size.fdb = fdb_entries(nodes)
            size.trivial.append(run_recorded(trivial, workdir=work, what=f"trivial shape on {nodes} nodes",
                                             inventory=INVENTORY, options=options).wall)
            if progress:
                print(f"  {nodes} nodes, round {attempt + 1}: apply {size.apply[-1]:.1f} s, re-run "
                      f"{size.again[-1]:.1f} s, trivial shape {size.trivial[-1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        lab(nodes, "absent", work)
    if size.fdb != [nodes - 1] * nodes:
        raise BenchError(f"{nodes} nodes: expected {nodes - 1} FDB entries on every node, got {size.fdb}")
    return size


def cluster_growth(sizes: Sequence[ClusterSize]) -> float | None:
    """Median apply time per node at the largest size over that at the smallest."""
    if len(sizes) < 2:
        return None
    first, last = sizes[0], sizes[-1]
    return (median(last.apply) / last.nodes) / (median(first.apply) / first.nodes)


def print_cluster(sizes: Sequence[ClusterSize], repeat: int) -> None:
    print(f"cluster role on lab nodes (netns connection), seconds: median of {repeat} (best); per node = play / nodes")
    print(f"{'nodes':>5} {'tasks/node':>10} {'apply s':>15} {'s/node':>7} {'re-run s':>15} {'s/node':>7} "
          f"{'trivial s':>15} {'s/node':>7} {'apply/triv':>10} {'re-run/triv':>11} {'FDB/node':>8}")
    for size in sizes:
        apply, again, trivial = median(size.apply), median(size.again), median(size.trivial)
        print(f"{size.nodes:>5} {size.tasks_per_node:>10} {apply:>7.2f} ({min(size.apply):>5.2f}) "
              f"{apply / size.nodes:>7.2f} {again:>7.2f} ({min(size.again):>5.2f}) {again / size.nodes:>7.2f} "
              f"{trivial:>7.2f} ({min(size.trivial):>5.2f}) {trivial / size.nodes:>7.2f} {apply / trivial:>10.2f} "
              f"{again / trivial:>11.2f} {size.fdb[0] if size.fdb else '-':>8}")
    growth = cluster_growth(sizes)
    if growth is not None:
        verdict = "met" if growth < GROWTH_TARGET else "NOT met"
        print(f"target: cluster apply time per node, {sizes[-1].nodes} vs {sizes[0].nodes} nodes, under "
              f"{GROWTH_TARGET}x: {verdict} ({growth:.2f}x; median of {repeat})")


def write_json(path: Path, sizes: Sequence[ClusterSize], args: argparse.Namespace) -> None:
    """The figures as JSON for bench/report.py."""
    growth = cluster_growth(sizes)
    document = {
        "benchmark": "cluster",
        "command": shlex.join(["bench/bench_cluster.py", *sys.argv[1:]]),
        "repeat": args.repeat,
        "forks": args.forks,
        "sizes": [size.as_json() for size in sizes],
        "targets": [] if growth is None else [{
            "text": f"cluster apply time per node, {sizes[-1].nodes} vs {sizes[0].nodes} nodes, under {GROWTH_TARGET}x",
            "met": growth < GROWTH_TARGET, "figures": f"{growth:.2f}x"}],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,12,24", help="numbers of nodes, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size (apply, re-run, trivial shape)")
    parser.add_argument("--forks", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_cluster: needs root (the lab is made of network namespaces)", file=sys.stderr)
        return 2
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"cluster role on lab nodes, forks={args.forks or 'default (5)'}, {os.cpu_count()} CPUs", flush=True)
    with terminate_cleanly(), tempfile.TemporaryDirectory(prefix="gwbench-") as tmp:
        try:
            rows = [measure_cluster(size, args.repeat, args.forks, Path(tmp)) for size in sizes]
        except BenchError as error:
            print(f"bench_cluster: {error}", file=sys.stderr)
            return 1
    print_cluster(rows, args.repeat)
    if args.json:
        write_json(args.json, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
