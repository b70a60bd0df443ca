# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Peak memory of the ghostwarden_apply module process: 1,000 routed networks with 10,000 forwards.

Issue 12, item 4. The module runs the way Ansible runs it on a target (its own Python process
with an args file, ``netns`` set to a throwaway namespace ``gwm-<random>`` with an uplink veth
inside it; nothing touches the root namespace). Its peak resident set size is the kernel's
``VmHWM`` of that process, read when it exits, so the ``ip``/``nft`` children it starts are not
counted (each is its own process). Apply from scratch, then the no-op re-run, ``--repeat`` times
each in a fresh namespace; median and maximum. Target: the apply's peak under 80 MB at 1,000
networks with 10,000 forwards. Exits 0 whether or not the target is met, 1 when a run fails,
2 when not run as root.

    sudo .venv/bin/python bench/bench_memory.py [--networks 1000] [--forwards 10] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import conftest  # noqa: E402  (makes the collection importable, as the tests do)

from ansible_collections.ghostwarden.core.tests.support.netns import create_netns, delete_netns  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import bench_apply  # noqa: E402  (its topology, so that both benchmarks measure the same shape)

MODULE = ROOT / "plugins" / "modules" / "ghostwarden_apply.py"
TARGET_MB = 80.0
UPLINK = "up0"
# Runs the module file as __main__ and reports the process's peak RSS on stderr as it exits.
PEAK_REPORTER = """
import atexit, runpy, sys
def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("PEAK_KB " + line.split()[1] + "\\n")
atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def module_env() -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "SSH_CONNECTION"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(conftest.COLLECTIONS_ROOT),
                                                              environment.get("PYTHONPATH")]))
    return environment


def run_module(python: str, args_file: Path, expect_changed: bool) -> tuple[float, float]:
    """(peak RSS in MB, wall clock in s) of one module process."""
    start = time.perf_counter()
    completed = subprocess.run([python, "-c", PEAK_REPORTER, str(MODULE), str(args_file)], capture_output=True,
                               text=True, env=module_env(), check=False)
    elapsed = time.perf_counter() - start
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise RuntimeError(f"the module printed no JSON (rc {completed.returncode}): {completed.stderr[-2000:]}") from None
    if completed.returncode != 0 or result.get("failed") or result.get("changed") is not expect_changed:
        raise RuntimeError(f"unexpected module result: {result.get('msg') or result.get('changed')}")
    peaks = [line.split()[1] for line in completed.stderr.splitlines() if line.startswith("PEAK_KB ")]
    if not peaks:
        raise RuntimeError("the module did not report its peak memory")
    return int(peaks[-1]) / 1000, elapsed


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    topology = bench_apply.make_topology(args.networks, args.forwards)
    figures: dict[str, list[float]] = {"apply_mb": [], "noop_mb": [], "apply_s": [], "noop_s": []}
    for repetition in range(args.repeat):
        name = f"gwm-{secrets.token_hex(4)}"
        create_netns(name)
        try:
            subprocess.run(["ip", "-n", name, "link", "add", UPLINK, "type", "veth", "peer", "name", f"{UPLINK}p"],
                           check=True)
            subprocess.run(["ip", "-n", name, "link", "set", UPLINK, "up"], check=True)
            args_file = workdir / f"args-{repetition}.json"
            args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
                "topology": topology, "netns": name, "state_dir": str(workdir / f"state-{repetition}"),
                "_ansible_check_mode": False}}))
            for label, changed in (("apply", True), ("noop", False)):
                peak, seconds = run_module(args.python, args_file, changed)
                figures[f"{label}_mb"].append(peak)
                figures[f"{label}_s"].append(seconds)
        finally:
            delete_netns(name)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--forwards", type=int, default=10, help="forwards per network")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_memory: run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gwm-") as directory:
        try:
            figures = measure(args, Path(directory))
        except (RuntimeError, subprocess.CalledProcessError) as error:
            print(f"bench_memory: {error}", file=sys.stderr)
            return 1
    summary = {key: {"median": statistics.median(values), "max": max(values), "runs": values}
               for key, values in figures.items()}
    print(f"networks {args.networks}, forwards {args.networks * args.forwards}, {args.repeat} runs each")
    print(f"{'run':<8}{'peak RSS MB (median/max)':>28}{'wall s (median)':>18}")
    for label in ("apply", "noop"):
        memory, seconds = summary[f"{label}_mb"], summary[f"{label}_s"]
        print(f"{label:<8}{memory['median']:>18.1f} / {memory['max']:<7.1f}{seconds['median']:>18.2f}")
    peak = summary["apply_mb"]["max"]
    met = peak < TARGET_MB
    print(f"target: apply peak RSS under {TARGET_MB:g} MB at {args.networks} networks with "
          f"{args.networks * args.forwards} forwards: {'met' if met else 'NOT met'} ({peak:.1f} MB, the largest of "
          f"{args.repeat})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "benchmark": "memory", "networks": args.networks, "forwards": args.networks * args.forwards,
            "repeat": args.repeat, "python": platform.python_version(), "figures": summary,
            "targets": [{"text": f"apply peak RSS under {TARGET_MB:g} MB at {args.networks} networks with "
                                 f"{args.networks * args.forwards} forwards", "met": met,
                         "figures": f"{peak:.1f} MB, the largest of {args.repeat}"}],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
