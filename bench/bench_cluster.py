# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster playbook on 3, 12 and 24 lab nodes: total time, time per node, FDB entries per node.

Issue 5, item 8. For each size a lab of network namespaces is built with the lab role
(bench/cluster/lab.yml, not measured), then the cluster role is applied to every node
(bench/cluster/cluster.yml, measured: the wall clock of the whole ansible-playbook run, first
apply and the no-op re-run), the FDB of every node's VXLAN device is counted, and the lab is
removed. Target: time per node grows less than 1.5x from 3 to 24 nodes. Ansible runs with its
default forks (5) unless --forks is given. A benchmark reports: it exits 0 whether or not the
target is met, 1 when a run fails, 2 when not run as root.

    sudo .venv/bin/python bench/bench_cluster.py [--sizes 3,12,24] [--forks 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
LAB_NAME = "gwbench"
INVENTORY = Path("/run/ghostwarden-lab") / LAB_NAME / "inventory.yml"


def playbook(name: str, *arguments: str, forks: int | None = None) -> float:
    """Run bench/cluster/<name> and return its wall-clock seconds; raise on failure."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    command = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "bench" / "cluster" / name), *arguments]
    if forks:
        command += ["--forks", str(forks)]
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-2000:])
        raise RuntimeError(f"{name} {' '.join(arguments)} failed ({result.returncode})")
    return elapsed


def fdb_entries(nodes: int) -> list[int]:
    """Remote VTEP entries of vx1200 in every node."""
    counts = []
    for index in range(1, nodes + 1):
        output = subprocess.run(["ip", "netns", "exec", f"{LAB_NAME}-node{index}", "bridge", "-j", "fdb", "show",
                                 "dev", "vx1200"], capture_output=True, text=True, check=True).stdout
        counts.append(sum(1 for entry in json.loads(output or "[]") if "dst" in entry))
    return counts


def measure(nodes: int, forks: int | None) -> dict:
    playbook("lab.yml", "-e", f"ghostwarden_lab_nodes={nodes}", "-e", "ghostwarden_lab_state=present")
    try:
        apply = playbook("cluster.yml", "-i", str(INVENTORY), forks=forks)
        again = playbook("cluster.yml", "-i", str(INVENTORY), forks=forks)
        fdb = fdb_entries(nodes)
    finally:
        playbook("lab.yml", "-e", f"ghostwarden_lab_nodes={nodes}", "-e", "ghostwarden_lab_state=absent")
    if fdb != [nodes - 1] * nodes:
        raise RuntimeError(f"{nodes} nodes: expected {nodes - 1} FDB entries on every node, got {fdb}")
    return {"nodes": nodes, "apply": apply, "again": again, "fdb": fdb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,12,24")
    parser.add_argument("--forks", type=int, default=None)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_cluster: needs root (the lab is made of network namespaces)", file=sys.stderr)
        return 2
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"cluster role on lab nodes, forks={args.forks or 'default (5)'}, {os.cpu_count()} CPUs")
    print(f"{'nodes':>5} {'apply s':>8} {'s/node':>7} {'re-run s':>8} {'s/node':>7} {'FDB/node':>8}")
    try:
        rows = [measure(size, args.forks) for size in sizes]
    except RuntimeError as error:
        print(f"bench_cluster: {error}", file=sys.stderr)
        return 1
    for row in rows:
        print(f"{row['nodes']:>5} {row['apply']:>8.2f} {row['apply'] / row['nodes']:>7.2f} {row['again']:>8.2f} "
              f"{row['again'] / row['nodes']:>7.2f} {row['fdb'][0]:>8}")
    first, last = rows[0], rows[-1]
    growth = (last["apply"] / last["nodes"]) / (first["apply"] / first["nodes"])
    verdict = "met" if growth < 1.5 else "NOT met"
    print(f"time per node, {last['nodes']} vs {first['nodes']} nodes: {growth:.2f}x (target < 1.5x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
