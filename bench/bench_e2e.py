# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ghostwarden_apply through ansible-playbook, as a user runs it, beside a trivial task in the same run.

Issue 12, item 6. Everything happens in lab network namespaces ``gwe<random>-*`` that this script
creates and removes (also on Ctrl-C and SIGTERM); the root namespace gets nothing. Per repetition:

- netns: a fresh target namespace (an uplink veth ``up0`` with both ends inside it) reached with
  the collection's ``ghostwarden.core.netns`` connection, as the lab role's inventory and
  molecule use it (Ansible's defaults otherwise: no pipelining);
- ssh: a fresh target namespace with a real OpenSSH sshd on 192.0.2.2:22 (keys generated under a
  temporary directory), and ansible-playbook running inside a controller namespace (192.0.2.1)
  connecting over SSH with ControlPersist and pipelining, like tests/integration/test_confirm_ssh.py.

Each is one ansible-playbook run of one play whose tasks are, in order: ``trivial 1``
(``ansible.builtin.ping``, which also opens the connection), ``apply`` (ghostwarden_apply of N
routed networks with 2 forwards each and masquerade, ``confirm_timeout: 0``, from an empty host),
``trivial 2``, ``no-op`` (the same apply again: changed=false), ``rendered`` (``state: rendered``
of the same topology) and ``trivial 3``. The topology is a play variable from a vars file
(``topology: "{{ ghostwarden_topology }}"``), as a user keeps it in group_vars. The callback
bench/callback_plugins/bench_tasks.py records each task's wall time (task start to result) and the
size of its result as callbacks see it (compact JSON, ``invocation`` included). "trivial" is the
mean of ``trivial 2`` and ``trivial 3`` of the same run; every figure is the median (and best) of
--repeat runs.

Before every run the script waits until the kernel is not tearing namespaces down (a previous
benchmark's: that holds the RTNL lock, and every link change, for minutes), and after deleting its
own it waits the same way.

Then the cluster role on 3, 12 and 24 lab nodes beside a play of the same shape made of trivial
tasks (bench/bench_cluster.py; --cluster-sizes= leaves it out).

Targets (issue 12): at 500 networks, through ansible-playbook, the no-op task costs at most 1 s
more than a trivial task in the same run, and its result is under 10 KB; the apply's result is
under 50 KB (without return_content). A benchmark reports: it exits 0 whether or not the targets
are met, 1 when a run fails, 2 when not run as root or a tool is missing.

    sudo .venv/bin/python bench/bench_e2e.py [--networks 500] [--repeat 3] [--connections netns,ssh]
        [--cluster-sizes 3,12,24] [--cluster-repeat 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_apply
import bench_cluster
from bench_cluster import ROOT, BenchError, Recording, run_recorded, terminate_cleanly, wait_for_quiet_kernel

from ansible_collections.ghostwarden.core.tests.support.netns import (
    create_netns,
    delete_netns,
    netns_exec,
    netns_spawn,
    stop_processes,
)
from ansible_collections.ghostwarden.core.tests.support.playbook import write_yaml
from ansible_collections.ghostwarden.core.tests.support.sshd import prepare_sshd
from ansible_collections.ghostwarden.core.tests.support.traffic import tcp_client

PYTHON = ROOT / ".venv" / "bin" / "python"
SSHD = "/usr/sbin/sshd"
TOOLS = ("ip", "nft", "ssh", "ssh-keygen")
FORWARDS_PER_NETWORK = 2
UPLINK = "up0"
CONTROLLER, TARGET = "192.0.2.1", "192.0.2.2"
HOST = "target"
TASKS = ("trivial 1", "apply", "trivial 2", "no-op", "rendered", "trivial 3")
EXPECTED = {"trivial 1": "ok", "apply": "changed", "trivial 2": "ok", "no-op": "ok", "rendered": "ok",
            "trivial 3": "ok"}
MEASURED = ("trivial", "apply", "no-op", "rendered")
TARGET_NETWORKS = 500
NOOP_EXTRA_S = 1.0  # no-op task minus trivial task, at most
NOOP_BYTES = 10_000  # no-op result, under
APPLY_BYTES = 50_000  # apply result, under


def make_topology(networks: int) -> dict:
    """bench_apply's routed networks with 2 forwards each, without management.allow_from (as most users run)."""
    topology = bench_apply.make_topology(networks, FORWARDS_PER_NETWORK)
    del topology["management"]
    return topology


def play(state_dir: Path) -> list[dict]:
    """The measured play (see the module docstring)."""
    apply = {"topology": "{{ ghostwarden_topology }}", "state_dir": str(state_dir), "confirm_timeout": 0}
    return [{
        "name": "ghostwarden_apply beside trivial tasks",
        "hosts": HOST,
        "gather_facts": False,
        "vars_files": ["topology.json"],
        "tasks": [
            {"name": "trivial 1", "ansible.builtin.ping": {}},
            {"name": "apply", "ghostwarden.core.ghostwarden_apply": apply},
            {"name": "trivial 2", "ansible.builtin.ping": {}},
            {"name": "no-op", "ghostwarden.core.ghostwarden_apply": apply},
            {"name": "rendered",
             "ghostwarden.core.ghostwarden_apply": {"topology": "{{ ghostwarden_topology }}", "state": "rendered"}},
            {"name": "trivial 3", "ansible.builtin.ping": {}},
        ],
    }]


# -- the lab ------------------------------------------------------------------------------------


class Lab:
    """Namespaces ``<prefix>-<role>`` and the processes in them, all removed by :meth:`close`."""

    def __init__(self) -> None:
        self.prefix = f"gwe{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def add(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        create_netns(name)
        self.namespaces.append(name)
        return name

    def uplink(self, namespace: str) -> None:
        """The masquerade's outgoing interface: a veth with both ends inside ``namespace``."""
        netns_exec(namespace, "ip", "link", "add", UPLINK, "type", "veth", "peer", "name", f"{UPLINK}p")
        netns_exec(namespace, "ip", "link", "set", UPLINK, "up")

    def close(self) -> int:
        """Remove everything; then wait for the kernel to finish tearing the namespaces down."""
        stop_processes(self.processes)
        count = len(self.namespaces)
        for name in reversed(self.namespaces):
            delete_netns(name)
        self.namespaces.clear()
        self.processes.clear()
        if count:
            wait_for_quiet_kernel()
        return count


def start_sshd(lab: Lab, ctl: str, target: str, directory: Path) -> Path:
    """sshd on TARGET:22 inside ``target`` (ready once ``ctl`` reads its banner); the client's private key.

    The pattern of tests/integration/test_confirm_ssh.py.
    """
    config, client_key = prepare_sshd(directory, TARGET, log_level="ERROR")
    with open(directory / "sshd.log", "w", encoding="utf-8") as log:
        lab.processes.append(netns_spawn(target, SSHD, "-D", "-e", "-f", str(config), stdout=subprocess.DEVNULL,
                                         stderr=log))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = netns_exec(ctl, *tcp_client(TARGET, 22, 1), check=False).stdout
        if answer.startswith("SSH-2.0-"):
            return client_key
        time.sleep(0.2)
    raise BenchError(f"sshd on {TARGET}:22 did not answer within 15 s: {(directory / 'sshd.log').read_text()[-2000:]}")


# -- one repetition -----------------------------------------------------------------------------


@dataclass
class Run:
    """One ansible-playbook run of the play: per task its seconds, result bytes and status."""

    wall: float
    seconds: dict[str, float]
    bytes: dict[str, int]
    status: dict[str, str]
    outside: float  # wall clock of ansible-playbook not in any task (start-up, the vars file, the end)

    @property
    def trivial(self) -> float:
        return statistics.mean([self.seconds["trivial 2"], self.seconds["trivial 3"]])

    def figure(self, name: str) -> float:
        return self.trivial if name == "trivial" else self.seconds[name]

    def as_json(self) -> dict:
        return {"wall": self.wall, "outside_tasks": self.outside, "trivial": self.trivial,
                "tasks": {name: {"seconds": self.seconds[name], "bytes": self.bytes[name], "status": self.status[name]}
                          for name in TASKS}}


def check(recording: Recording, what: str) -> Run:
    seconds, sizes, statuses = {}, {}, {}
    for name in TASKS:
        entry = recording.result(name)
        if entry["status"] != EXPECTED[name]:
            raise BenchError(f"{what}: task {name!r} was {entry['status']}, expected {EXPECTED[name]}:\n"
                             f"{recording.output[-4000:]}")
        seconds[name], sizes[name], statuses[name] = recording.seconds(name), entry["bytes"], entry["status"]
    return Run(recording.wall, seconds, sizes, statuses, recording.wall - sum(seconds.values()))


def prepare(workdir: Path, topology: dict, state_dir: Path) -> Path:
    workdir.mkdir(parents=True)
    (workdir / "topology.json").write_text(json.dumps({"ghostwarden_topology": topology}))
    return write_yaml(workdir / "play.yml", play(state_dir))


def run_netns(lab: Lab, attempt: int, topology: dict, workdir: Path) -> Run:
    target = lab.add(f"n{attempt}")
    lab.uplink(target)
    work = workdir / f"netns-{attempt}"
    playbook = prepare(work, topology, workdir / f"state-netns-{attempt}")
    inventory = write_yaml(work / "inventory.yml", {"all": {"hosts": {HOST: {
        "ansible_connection": "ghostwarden.core.netns", "ansible_netns_name": target,
        "ansible_python_interpreter": str(PYTHON)}}}})
    what = f"netns connection, run {attempt + 1}"
    return check(run_recorded(playbook, workdir=work, what=what, inventory=inventory), what)


def run_ssh(lab: Lab, attempt: int, topology: dict, workdir: Path) -> Run:
    ctl, target = lab.add(f"c{attempt}"), lab.add(f"s{attempt}")
    netns_exec(ctl, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "mgmt0", "netns", target)
    netns_exec(ctl, "ip", "addr", "add", f"{CONTROLLER}/24", "dev", "eth0")
    netns_exec(ctl, "ip", "link", "set", "eth0", "up")
    netns_exec(target, "ip", "addr", "add", f"{TARGET}/24", "dev", "mgmt0")
    netns_exec(target, "ip", "link", "set", "mgmt0", "up")
    lab.uplink(target)
    work = workdir / f"ssh-{attempt}"
    key = start_sshd(lab, ctl, target, workdir / f"ssh-keys-{attempt}")
    playbook = prepare(work, topology, workdir / f"state-ssh-{attempt}")
    (work / "ansible.cfg").write_text("\n".join([
        "[defaults]",
        "host_key_checking = False",
        "[ssh_connection]",
        "pipelining = True",
        f"control_path_dir = {work / 'cp'}",
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null",
        "timeout = 10",
    ]) + "\n")
    inventory = work / "inventory.ini"
    inventory.write_text(f"{HOST} ansible_host={TARGET} ansible_user=root ansible_ssh_private_key_file={key} "
                         f"ansible_python_interpreter={PYTHON}\n")
    what = f"SSH, run {attempt + 1}"
    return check(run_recorded(playbook, workdir=work, what=what, inventory=inventory, netns=ctl), what)


RUNNERS = {"netns": run_netns, "ssh": run_ssh}
LABELS = {"netns": "netns connection", "ssh": "SSH (ControlPersist, pipelining)"}


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Connection:
    name: str
    runs: list[Run] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [run.figure(name) for run in self.runs]

    def extra(self, name: str) -> list[float]:
        """``name`` minus the trivial task of the same run, per run."""
        return [run.figure(name) - run.trivial for run in self.runs]

    def result_bytes(self, name: str) -> int:
        """The largest result of task ``name`` over the runs (sizes barely move)."""
        return max(run.bytes["trivial 2" if name == "trivial" else name] for run in self.runs)

    def as_json(self) -> dict:
        return {"label": LABELS[self.name], "runs": [run.as_json() for run in self.runs]}


def print_table(connections: Sequence[Connection], networks: int, repeat: int) -> None:
    print(f"\n{networks} routed networks, {networks * FORWARDS_PER_NETWORK} forwards; task wall time in seconds, "
          f"median of {repeat} (best); extra = task minus the trivial task of the same run")
    print(f"{'connection':<10} {'task':<9} {'median s':>8} {'best s':>7} {'extra s':>8} {'x trivial':>9} "
          f"{'result bytes':>12}")
    for connection in connections:
        for name in MEASURED:
            values = connection.values(name)
            trivial = statistics.median(connection.values("trivial"))
            extra = "-" if name == "trivial" else f"{statistics.median(connection.extra(name)):.2f}"
            print(f"{connection.name:<10} {name:<9} {statistics.median(values):>8.2f} {min(values):>7.2f} {extra:>8} "
                  f"{statistics.median(values) / trivial:>9.2f} {connection.result_bytes(name):>12,}")
        walls = [run.wall for run in connection.runs]
        outside = [run.outside for run in connection.runs]
        print(f"{connection.name:<10} {'playbook':<9} {statistics.median(walls):>8.2f} {min(walls):>7.2f}   "
              f"(outside the tasks: {statistics.median(outside):.2f} s, start-up, the vars file and the end)")


def targets(connections: Sequence[Connection], networks: int, repeat: int) -> list[dict]:
    """The issue's targets for these figures: text, met, figures."""
    found: list[dict] = []
    if networks != TARGET_NETWORKS:
        return found
    for connection in connections:
        extra = statistics.median(connection.extra("no-op"))
        found.append({
            "text": f"at {networks} networks through ansible-playbook ({LABELS[connection.name]}), the no-op task "
                    f"costs at most {NOOP_EXTRA_S:g} s more than a trivial task in the same run",
            "met": extra <= NOOP_EXTRA_S,
            "figures": f"no-op {statistics.median(connection.values('no-op')):.2f} s, trivial "
                       f"{statistics.median(connection.values('trivial')):.2f} s, +{extra:.2f} s; median of {repeat}"})
    if connections:
        noop = max(connection.result_bytes("no-op") for connection in connections)
        apply = max(connection.result_bytes("apply") for connection in connections)
        found.append({"text": f"at {networks} networks, the no-op task's result under {NOOP_BYTES // 1000} KB",
                      "met": noop < NOOP_BYTES, "figures": f"{noop:,} bytes"})
        found.append({"text": f"at {networks} networks, the apply's result under {APPLY_BYTES // 1000} KB "
                              "without return_content",
                      "met": apply < APPLY_BYTES, "figures": f"{apply:,} bytes"})
    return found


def print_targets(found: Sequence[dict]) -> None:
    for target in found:
        print(f"target: {target['text']}: {'met' if target['met'] else 'NOT met'} ({target['figures']})")


def write_json(path: Path, document: dict) -> None:
    """The figures as JSON for bench/report.py."""
    path.write_text(json.dumps(document, indent=1) + "\n")


# -- main ---------------------------------------------------------------------------------------


def missing_tools(connections: Sequence[str]) -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if "ssh" in connections and not os.path.exists(SSHD):
        missing.append(f"{SSHD} (openssh-server)")
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=TARGET_NETWORKS)
    parser.add_argument("--repeat", type=int, default=3, help="ansible-playbook runs per connection")
    parser.add_argument("--connections", default="netns,ssh", help="netns, ssh or both, comma-separated")
    parser.add_argument("--cluster-sizes", default="3,12,24",
                        help="cluster nodes, comma-separated; '' for no cluster part")
    parser.add_argument("--cluster-repeat", type=int, default=1, help="rounds per cluster size")
    parser.add_argument("--forks", type=int, default=None, help="forks of the cluster plays (default Ansible's, 5)")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    names = [name for name in args.connections.split(",") if name]
    cluster_sizes = [int(size) for size in args.cluster_sizes.split(",") if size.strip()]
    if os.geteuid() != 0:
        print("bench_e2e: must run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    unknown = sorted(set(names) - set(RUNNERS))
    missing = missing_tools(names)
    if unknown or missing or args.repeat < 1 or args.networks < 1 or args.networks > 65536:
        print(f"bench_e2e: unknown connections {unknown}" if unknown else
              f"bench_e2e: needs {', '.join(missing)}" if missing else
              "bench_e2e: --repeat must be >= 1 and --networks 1-65536", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress goes to stderr

    load_start = os.getloadavg()
    print(f"ansible-playbook end to end, {os.cpu_count()} CPUs, load average {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f}")
    topology = make_topology(args.networks)
    connections = [Connection(name) for name in names]
    cluster: list[bench_cluster.ClusterSize] = []
    started = time.monotonic()
    lab = Lab()
    with terminate_cleanly(), tempfile.TemporaryDirectory(prefix="gwe-") as tmp:
        workdir = Path(tmp)
        try:
            # A benchmark run just before (bench_apply in make bench) may have left the kernel tearing
            # namespaces down: that would hold the measured link changes up for minutes.
            waited = wait_for_quiet_kernel()
            print(f"  waited {waited:.0f} s for the kernel to finish tearing namespaces down", file=sys.stderr)
            try:
                for attempt in range(args.repeat):
                    for connection in connections:
                        wait_for_quiet_kernel()  # another program's namespaces going away would hold link changes up
                        run = RUNNERS[connection.name](lab, attempt, topology, workdir)
                        connection.runs.append(run)
                        print(f"  {connection.name} run {attempt + 1}: " + ", ".join(
                            f"{name} {run.seconds[name]:.2f} s" for name in TASKS)
                            + f"; whole playbook {run.wall:.2f} s", file=sys.stderr, flush=True)
            finally:
                count = lab.close()
                print(f"  deleted {count} namespaces (and waited for the kernel to tear them down)", file=sys.stderr)
            e2e_seconds = time.monotonic() - started
            for size in cluster_sizes:
                cluster.append(bench_cluster.measure_cluster(size, args.cluster_repeat, args.forks, workdir))
        except BenchError as error:
            print(f"bench_e2e: {error}", file=sys.stderr)
            return 1
    load_end = os.getloadavg()

    if connections:
        print_table(connections, args.networks, args.repeat)
    if cluster:
        print()
        bench_cluster.print_cluster(cluster, args.cluster_repeat)
    found = targets(connections, args.networks, args.repeat)
    print()
    print_targets(found)
    print(f"load average at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
          f"took {time.monotonic() - started:.0f} s (playbook part {e2e_seconds:.0f} s)")
    if args.json:
        growth = bench_cluster.cluster_growth(cluster)
        if growth is not None:
            found.append({"text": f"cluster apply time per node, {cluster[-1].nodes} vs {cluster[0].nodes} nodes, "
                                  f"under {bench_cluster.GROWTH_TARGET}x",
                          "met": growth < bench_cluster.GROWTH_TARGET, "figures": f"{growth:.2f}x"})
        write_json(args.json, {
            "benchmark": "e2e",
            "command": shlex.join(["bench/bench_e2e.py", *sys.argv[1:]]),
            "repeat": args.repeat,
            "networks": args.networks,
            "forwards_per_network": FORWARDS_PER_NETWORK,
            "load": {"start": list(load_start), "end": list(load_end)},
            "seconds": {"playbooks": e2e_seconds, "total": time.monotonic() - started},
            "connections": {connection.name: connection.as_json() for connection in connections},
            "cluster": {"repeat": args.cluster_repeat, "forks": args.forks,
                        "sizes": [size.as_json() for size in cluster]},
            "targets": found,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
