# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Apply N routed networks from scratch inside a namespace with ghostwarden_apply, next to the floor and a naive baseline.

Issue 3, item 6. Every measurement runs in a fresh throwaway namespace ``gwb-<random>``
(with an uplink veth ``up0`` inside it); nothing touches the root namespace. Per size:

- module: ``ghostwarden_apply`` run the way Ansible runs it on a target, as its own Python
  process with an args file (wall clock of the whole process), then again with the same
  topology (the no-op re-run, which must report changed=false);
- floor: the same kernel objects with one ``ip -batch`` file and the module's rendered
  ruleset with one ``nft -f`` file (plus the forwarding sysctl written by the shell);
- naive: one ``ip`` command per object and one ``nft add element`` command per set or map
  element, after one ``nft -f`` that creates the table with its chains and empty sets.

The three end states are compared (links, addresses, sysctls, normalised table) so that
the baselines do the module's work, no less. Targets: apply within 1.5x of the floor at
500 networks, no-op re-run under 0.5 s at 500 networks. A benchmark reports: it exits 0
whether or not the targets are met, 1 when a run fails, 2 when not run as root.

    sudo .venv/bin/python bench/bench_apply.py [--sizes 10,100,500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# The import makes the collection importable as ansible_collections.ghostwarden.core.
import conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import (  # noqa: E402
    CompiledTopology,
    compile_topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import sysctl_path  # noqa: E402
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import TABLE, normalise_ruleset  # noqa: E402
from ansible_collections.ghostwarden.core.tests.support.netns import delete_netns  # noqa: E402

MODULE = ROOT / "plugins" / "modules" / "ghostwarden_apply.py"
FORWARDS_PER_NETWORK = 3
UPLINK = "up0"
APPLY_TARGET_RATIO = 1.5  # module apply / floor, at TARGET_SIZE networks
NOOP_TARGET_S = 0.5  # module no-op re-run, at TARGET_SIZE networks
TARGET_SIZE = 500
TOOLS = ("ip", "nft", "sh", "sysctl")


class BenchError(RuntimeError):
    """A run failed or produced something other than the module's state: no figure to report."""


def make_topology(networks: int, forwards: int = FORWARDS_PER_NETWORK) -> dict:
    """``networks`` routed networks with ``forwards`` forwards each (distinct public ports), masquerading to the uplink.

    bench_e2e and bench_memory build their topologies with it too.
    """
    nets = {}
    for index in range(networks):
        second, third = divmod(index, 256)
        prefix = f"10.{second}.{third}"
        nets[f"net{index:05d}"] = {
            "type": "routed",
            "cidr": f"{prefix}.0/24",
            "gw_ip": f"{prefix}.1",
            "masq_out": "uplink",
            "policy_profile": "routed-tight",
            "forwards": [
                {"public": f"0.0.0.0:{10000 + index * forwards + n}/tcp", "dst": f"{prefix}.{10 + n}:22"}
                for n in range(forwards)
            ],
        }
    return {"version": 1, "interfaces": {"uplink": UPLINK}, "management": {"allow_from": ["192.0.2.0/24"]},
            "networks": nets}


# -- namespaces ---------------------------------------------------------------------------------


def run(argv: Sequence[str], *, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


class Namespaces:
    """Throwaway namespaces, all deleted by :meth:`delete_all`.

    They stay until the end: the kernel needs about 10 s to tear down a namespace holding 500
    bridges, and that work (under the RTNL lock) would fall into the next measurement.
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self) -> str:
        name = f"gwb-{secrets.token_hex(4)}"
        run(["ip", "netns", "add", name])
        self.names.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        # The masquerade's outgoing interface: both ends of the veth stay inside the namespace.
        run(["ip", "-n", name, "link", "add", UPLINK, "type", "veth", "peer", "name", f"{UPLINK}p"])
        run(["ip", "-n", name, "link", "set", UPLINK, "up"])
        return name

    def delete_all(self) -> None:
        for name in self.names:
            delete_netns(name)
        self.names.clear()


# -- the three ways to get there ----------------------------------------------------------------


def module_env() -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "SSH_CONNECTION"}
    collections = str(conftest.COLLECTIONS_ROOT)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [collections, environment.get("PYTHONPATH")]))
    return environment


def write_module_args(path: Path, topology: dict, netns: str, state_dir: Path) -> None:
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "topology": topology, "netns": netns, "state_dir": str(state_dir), "_ansible_check_mode": False,
    }}))


def run_module(python: str, args_file: Path, *, profile_to: Path | None = None) -> tuple[float, dict]:
    """Wall clock of one module process and the JSON it printed."""
    argv = [python, str(MODULE), str(args_file)]
    if profile_to is not None:
        argv[1:1] = ["-m", "cProfile", "-o", str(profile_to)]
    start = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, env=module_env(), check=False)
    elapsed = time.perf_counter() - start
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise BenchError(f"the module printed no JSON (rc {completed.returncode}):\n{completed.stdout[-2000:]}"
                         f"{completed.stderr[-2000:]}") from None
    if completed.returncode != 0 or result.get("failed"):
        raise BenchError(f"the module failed: {result.get('msg')}")
    return elapsed, result


def timed_in_netns(netns: str, script: str, script_file: Path) -> float:
    """Wall clock of one ``sh -e script`` inside ``netns`` (one ``ip netns exec`` for the whole script)."""
    script_file.write_text(script)
    start = time.perf_counter()
    run(["ip", "netns", "exec", netns, "sh", "-e", str(script_file)])
    return time.perf_counter() - start


def ip_batch(compiled: CompiledTopology) -> str:
    """The desired links and addresses as one ``ip -batch`` file (bridges only: the benchmark's topology)."""
    lines = []
    for link in compiled.desired.links:
        attrs = dict(link.attrs)
        if link.kind != "bridge" or attrs.get("stp") or attrs.get("vlan_filtering") or "mtu" in attrs:
            raise BenchError(f"the floor covers plain bridges only, not {link}")
        lines.append(f"link add {link.name} type bridge\n")
        lines.append(f"link set dev {link.name} alias {attrs['ifalias']} up\n")
    lines.extend(f"addr add {address.address} dev {address.iface}\n" for address in compiled.desired.addresses)
    return "".join(lines)


def floor_script(compiled: CompiledTopology, workdir: Path) -> str:
    batch, ruleset = workdir / "floor.batch", workdir / "floor.nft"
    batch.write_text(ip_batch(compiled))
    ruleset.write_text(compiled.ruleset)
    # The shell writes the sysctls itself (a builtin, no process): the floor is kernel work only.
    sysctls = "".join(f"echo {value} > {sysctl_path(key)}\n" for key, value in compiled.desired.sysctls)
    return f"{sysctls}ip -batch {shlex.quote(str(batch))}\nnft -f {shlex.quote(str(ruleset))}\n"


def split_elements(ruleset: str) -> tuple[str, list[tuple[str, str]]]:
    """The rendered table without set/map elements, and every (set name, element) taken out.

    Works on the renderer's layout (``elements = { a, b,\\n c }`` inside ``set x {`` or
    ``map x {``); the end-state comparison catches any element this gets wrong.
    """
    skeleton: list[str] = []
    elements: list[tuple[str, str]] = []
    lines = ruleset.splitlines(keepends=True)
    current = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        words = line.split()
        if len(words) == 3 and words[0] in ("set", "map") and words[2] == "{":
            current = words[1]
        if line.strip().startswith("elements = {"):
            block = line
            while not block.rstrip().endswith("}"):
                index += 1
                block += lines[index]
            body = block.strip()[len("elements = {"):-1]
            elements.extend((current, element) for element in split_top_level(body))
        else:
            skeleton.append(line)
        index += 1
    return "".join(skeleton), elements


def split_top_level(body: str) -> list[str]:
    """``a, b, c`` -> items, keeping commas inside quotes or braces."""
    items, current, depth, quoted = [], [], 0, False
    for char in body:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "{}":
            depth += 1 if char == "{" else -1
        if char == "," and depth == 0 and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    tail = "".join(current).strip()
    return items + ([tail] if tail else [])


def naive_script(compiled: CompiledTopology, workdir: Path) -> tuple[str, int]:
    """One command per object, as a shell script; and how many commands it runs."""
    commands = [f"sysctl -qw {key}={value}" for key, value in compiled.desired.sysctls]
    for link in compiled.desired.links:
        commands.append(f"ip link add {link.name} type bridge")
        commands.append(f"ip link set dev {link.name} alias {dict(link.attrs)['ifalias']}")
    for address in compiled.desired.addresses:
        commands.append(f"ip addr add {address.address} dev {address.iface}")
    commands.extend(f"ip link set dev {link.name} up" for link in compiled.desired.links)
    skeleton, elements = split_elements(compiled.ruleset)
    skeleton_file = workdir / "naive-skeleton.nft"
    skeleton_file.write_text(skeleton)
    commands.append(f"nft -f {shlex.quote(str(skeleton_file))}")
    commands.extend(f"nft add element {TABLE} {name} {shlex.quote('{ ' + element + ' }')}"
                    for name, element in elements)
    return "".join(f"{command}\n" for command in commands), len(commands)


# -- end states ---------------------------------------------------------------------------------


def end_state(netns: str, compiled: CompiledTopology) -> dict:
    """What the three ways must agree on: owned links, their addresses, the sysctls, the table."""
    links = json.loads(run(["ip", "-n", netns, "-d", "-j", "link", "show"]).stdout)
    addresses = json.loads(run(["ip", "-n", netns, "-j", "addr", "show"]).stdout)
    listing = run(["ip", "netns", "exec", netns, "nft", "list", "table", *TABLE.split()]).stdout
    sysctls = {key: run(["ip", "netns", "exec", netns, "sysctl", "-n", key]).stdout.strip()
               for key, _value in compiled.desired.sysctls}
    skip = {"lo", UPLINK, f"{UPLINK}p"}
    return {
        "links": sorted((link["ifname"], link.get("linkinfo", {}).get("info_kind"), link.get("ifalias"),
                         "UP" in link.get("flags", [])) for link in links if link["ifname"] not in skip),
        "addresses": sorted((item["ifname"], f"{info['local']}/{info['prefixlen']}") for item in addresses
                            if item["ifname"] not in skip for info in item.get("addr_info", [])
                            if info.get("scope") != "link"),
        "sysctls": sysctls,
        "ruleset": normalise_ruleset(listing),
    }


def compare_end_states(reference: dict, other: dict, label: str) -> None:
    for part in ("links", "addresses", "sysctls", "ruleset"):
        if reference[part] != other[part]:
            raise BenchError(f"the {label} end state differs from the module's in its {part}")


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    apply: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    operations: int = 0
    naive_commands: int = 0


def best_median(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.3f}/{statistics.median(values):.3f}"


def measure_size(size: int, args: argparse.Namespace, namespaces: Namespaces, workdir: Path) -> SizeResult:
    topology = make_topology(size)
    compiled = compile_topology(topology)
    result = SizeResult(size)
    for attempt in range(args.repeat):
        # module: first apply, then the same again
        netns = namespaces.create()
        state_dir = workdir / f"state-{netns}"
        args_file = workdir / f"args-{netns}.json"
        write_module_args(args_file, topology, netns, state_dir)
        elapsed, applied = run_module(args.python, args_file)
        if applied.get("changed") is not True:
            raise BenchError(f"{size} networks: the first apply reported changed={applied.get('changed')}")
        result.apply.append(elapsed)
        result.operations = sum(applied.get("changes", {}).values())
        elapsed, again = run_module(args.python, args_file)
        if again.get("changed") is not False:
            raise BenchError(f"{size} networks: the re-run reported changed={again.get('changed')} "
                             f"with plan {[item['target'] for item in again.get('plan', [])][:10]}")
        result.noop.append(elapsed)
        reference = end_state(netns, compiled) if attempt == 0 else None

        floor_ns = namespaces.create()
        result.floor.append(timed_in_netns(floor_ns, floor_script(compiled, workdir), workdir / "floor.sh"))
        if reference is not None:
            compare_end_states(reference, end_state(floor_ns, compiled), "floor")

        if size <= args.naive_max:
            naive_ns = namespaces.create()
            script, result.naive_commands = naive_script(compiled, workdir)
            result.naive.append(timed_in_netns(naive_ns, script, workdir / "naive.sh"))
            if reference is not None:
                compare_end_states(reference, end_state(naive_ns, compiled), "naive")
    return result


def print_table(results: Sequence[SizeResult]) -> None:
    print("seconds as best/median; every measurement in a fresh namespace")
    header = (f"{'networks':>8} {'forwards':>8} {'module apply s':>15} {'module no-op s':>15} {'floor s':>13} "
              f"{'naive s':>15} {'apply/floor':>11} {'operations':>10} {'naive cmds':>10}")
    print(header)
    for item in results:
        ratio = min(item.apply) / min(item.floor)
        print(f"{item.size:>8} {item.size * FORWARDS_PER_NETWORK:>8} {best_median(item.apply):>15} "
              f"{best_median(item.noop):>15} {best_median(item.floor):>13} {best_median(item.naive):>15} "
              f"{ratio:>11.2f} {item.operations:>10} {item.naive_commands or '-':>10}")


def print_targets(results: Sequence[SizeResult]) -> None:
    by_size = {item.size: item for item in results}
    target = by_size.get(TARGET_SIZE)
    if target is None:
        print(f"targets: not measured ({TARGET_SIZE} networks is not among --sizes)")
        return
    apply_s, floor_s, noop_s = min(target.apply), min(target.floor), min(target.noop)
    ratio = apply_s / floor_s
    verdict = "met" if ratio <= APPLY_TARGET_RATIO else "NOT met"
    print(f"target: apply within {APPLY_TARGET_RATIO}x of the floor at {TARGET_SIZE} networks: {verdict} "
          f"(module {apply_s:.3f} s, floor {floor_s:.3f} s, x{ratio:.2f}; best of {len(target.apply)})")
    verdict = "met" if noop_s < NOOP_TARGET_S else "NOT met"
    print(f"target: no-op re-run under {NOOP_TARGET_S} s at {TARGET_SIZE} networks: {verdict} "
          f"({noop_s:.3f} s; best of {len(target.noop)})")


def write_json(path: Path, results: Sequence[SizeResult], args: argparse.Namespace) -> None:
    """Every measurement (seconds) and the targets as JSON, for bench/report.py (``--json FILE``)."""
    from dataclasses import asdict  # pylint: disable=import-outside-toplevel

    targets = []
    target = {item.size: item for item in results}.get(TARGET_SIZE)
    if target is not None:
        ratio = min(target.apply) / min(target.floor)
        targets.append({"text": f"apply within {APPLY_TARGET_RATIO}x of the floor at {TARGET_SIZE} networks",
                        "met": ratio <= APPLY_TARGET_RATIO,
                        "figures": f"module {min(target.apply):.3f} s, floor {min(target.floor):.3f} s, x{ratio:.2f}; "
                                   f"best of {len(target.apply)}"})
        targets.append({"text": f"no-op re-run under {NOOP_TARGET_S} s at {TARGET_SIZE} networks",
                        "met": min(target.noop) < NOOP_TARGET_S,
                        "figures": f"{min(target.noop):.3f} s; best of {len(target.noop)}"})
    document = {"benchmark": "apply", "command": " ".join(["bench/bench_apply.py", *sys.argv[1:]]),
                "repeat": args.repeat, "forwards_per_network": FORWARDS_PER_NETWORK,
                "sizes": [asdict(item) for item in results], "targets": targets}
    path.write_text(json.dumps(document, indent=1) + "\n")


# -- where the module's time goes ---------------------------------------------------------------

# (module_utils or module attribute path, label): wrapped in the phase-timing child, cumulative wall clock
PHASES = (
    ("ghostwarden_apply:compile_topology", "compile_topology (validate, render, desired state)"),
    ("host._store:StateStore.load", "StateStore.load"),
    ("host._driver:HostDriver.observe", "HostDriver.observe (all of it)"),
    ("host._netlink:NetlinkBackend.observe", "  NetlinkBackend.observe (netlink dumps)"),
    ("host._nft_cli:NftCli.list_table", "  NftCli.list_table (ip netns exec nft list)"),
    ("host._nft_cli:NftCli.matches", "  NftCli.matches (normalise listing and rendering)"),
    ("host._dnsmasq_control:DnsmasqControl.observe_files", "  DnsmasqControl.observe_files"),
    ("host._driver:plan", "plan"),
    ("host._nft_cli:NftCli.replace", "NftCli.replace (ip netns exec nft -f)"),
    ("host._netlink:NetlinkBackend.execute", "NetlinkBackend.execute (first call imports pyroute2)"),
    ("host._driver:record_operation", "record_operation"),
    ("host._store:StateStore.save", "StateStore.save"),
    ("host._dnsmasq_control:DnsmasqControl.reconcile", "DnsmasqControl.reconcile"),
    ("basic:AnsibleModule.exit_json", "AnsibleModule.exit_json (result checks, JSON out)"),
)


def phase_child(args_file: str, report_file: str) -> None:
    """Run the module in this process with timers around :data:`PHASES`; write the times to ``report_file``.

    Runs in its own process (``--phase-child``), so the module sees the same fresh interpreter
    as in the timed runs, give or take this file's imports.
    """
    import importlib
    import runpy

    times: dict[str, list[float]] = {}

    def timed(label: str, function):  # type: ignore[no-untyped-def]
        slot = times.setdefault(label, [0.0, 0])

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                slot[0] += time.perf_counter() - start
                slot[1] += 1
        return wrapper

    # run_path returns a copy of the module's namespace; main() looks names up in the real one.
    module_globals = runpy.run_path(str(MODULE), run_name="ghostwarden_apply_bench")["main"].__globals__
    packages = {"basic": "ansible.module_utils.basic"}
    for path, label in PHASES:
        where, attribute = path.split(":")
        if where == "ghostwarden_apply":
            module_globals[attribute] = timed(label, module_globals[attribute])
            continue
        owner = importlib.import_module(packages.get(where, f"ansible_collections.ghostwarden.core.plugins.module_utils.{where}"))
        if "." in attribute:
            class_name, method = attribute.split(".")
            cls = getattr(owner, class_name)
            wrapped = timed(label, getattr(cls, method))
            is_static = isinstance(cls.__dict__.get(method), staticmethod)
            setattr(cls, method, staticmethod(wrapped) if is_static else wrapped)
        else:
            setattr(owner, attribute, timed(label, getattr(owner, attribute)))
    sys.argv = [str(MODULE), args_file]
    start = time.perf_counter()
    try:
        module_globals["main"]()
    except SystemExit:
        pass
    times["main()"] = [time.perf_counter() - start, 1]
    Path(report_file).write_text(json.dumps(times))


def bare_interpreter(python: str) -> float:
    times = []
    for _attempt in range(3):
        start = time.perf_counter()
        run([python, "-c", "pass"])
        times.append(time.perf_counter() - start)
    return min(times)


def print_phases(label: str, python: str, args_file: Path, report_file: Path, expected: bool) -> None:
    argv = [python, str(Path(__file__).resolve()), "--phase-child", str(args_file), str(report_file)]
    start = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, env=module_env(), check=False)
    wall = time.perf_counter() - start
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise BenchError(f"{label}: the phase-timing run printed no JSON:\n{completed.stderr[-2000:]}") from None
    if result.get("failed") or result.get("changed") is not expected:
        raise BenchError(f"{label}: the phase-timing run gave changed={result.get('changed')}, "
                         f"failed={result.get('failed')}: {result.get('msg')}")
    times = json.loads(report_file.read_text())
    main_s = times["main()"][0]
    print(f"\n-- {label}: in-process split, wall clock without a profiler (cumulative s, calls)")
    print(f"   {'whole process (this run)':<58} {wall:>7.3f} s")
    print(f"   {'  interpreter start-up and imports (whole - main())':<58} {wall - main_s:>7.3f} s")
    print(f"   {'    of which a bare interpreter (python -c pass, best of 3)':<58} {bare_interpreter(python):>7.3f} s")
    print(f"   {'  main()':<58} {main_s:>7.3f} s")
    for _path, text in PHASES:
        seconds, calls = times.get(text, (0.0, 0))
        if calls:
            print(f"   {'    ' + text:<58} {seconds:>7.3f} s {calls:>6}")


def print_profile(label: str, wall: float, profile_file: Path) -> None:
    stats = pstats.Stats(str(profile_file))
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(15)
    print(f"\n-- {label}: cProfile, top 15 by cumulative time ({wall:.3f} s wall clock under the profiler)")
    print("\n".join(line for line in buffer.getvalue().splitlines()
                    if line.strip() and not line.lstrip().startswith(("Ordered by", "List reduced"))
                    and str(profile_file) not in line))


def explain_size(size: int, args: argparse.Namespace, namespaces: Namespaces, workdir: Path) -> None:
    """Phase split (no profiler) and cProfile of an apply and its no-op re-run, each pair in a fresh namespace."""
    topology = make_topology(size)
    runs = (("apply", True), ("no-op re-run", False))
    netns = namespaces.create()
    args_file = workdir / f"args-phases-{netns}.json"
    write_module_args(args_file, topology, netns, workdir / f"state-phases-{netns}")
    for label, expected in runs:
        print_phases(f"{label} of {size} networks", args.python, args_file, workdir / f"phases-{label}.json",
                     expected)
    netns = namespaces.create()
    args_file = workdir / f"args-profile-{netns}.json"
    write_module_args(args_file, topology, netns, workdir / f"state-profile-{netns}")
    for label, expected in runs:
        profile_file = workdir / f"profile-{expected}.prof"
        wall, outcome = run_module(args.python, args_file, profile_to=profile_file)
        if outcome.get("changed") is not expected:
            raise BenchError(f"profile, {label}: changed={outcome.get('changed')}, expected {expected}")
        print_profile(f"{label} of {size} networks", wall, profile_file)


# -- main ---------------------------------------------------------------------------------------


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM runs the finally blocks (namespaces deleted) like Ctrl-C does."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500", help="numbers of networks, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per size (best and median shown)")
    parser.add_argument("--naive-max", type=int, default=500, help="largest size the naive baseline runs for")
    parser.add_argument("--explain-size", type=int, default=None,
                        help="networks for the module runs split into phases and profiled (default: the largest "
                             "size; 0: none)")
    parser.add_argument("--phase-child", nargs=2, metavar=("ARGS_JSON", "REPORT_JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="interpreter the module runs with")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    if args.phase_child:
        phase_child(*args.phase_child)
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    if os.geteuid() != 0:
        print("bench_apply: must run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or args.repeat < 1 or min(sizes) < 1 or max(sizes) > 65536:
        print(f"bench_apply: needs {', '.join(missing)}" if missing else
              "bench_apply: --repeat must be >= 1 and sizes 1-65536", file=sys.stderr)
        return 2
    explain = max(sizes) if args.explain_size is None else args.explain_size
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress goes to stderr

    print(f"{FORWARDS_PER_NETWORK} forwards per network, masquerade to {UPLINK}, profile routed-tight, "
          "no DHCP/DNS (dnsmasq start-up is not measured)")
    namespaces = Namespaces()
    results = []
    with terminate_cleanly(), tempfile.TemporaryDirectory(prefix="gwb-") as tmp:
        try:
            for size in sizes:
                results.append(measure_size(size, args, namespaces, Path(tmp)))
                print(f"  measured {size} networks", file=sys.stderr, flush=True)
            print_table(results)
            print_targets(results)
            if args.json:
                write_json(args.json, results, args)
            if explain:
                explain_size(explain, args, namespaces, Path(tmp))
        except BenchError as error:
            print(f"bench_apply: {error}", file=sys.stderr)
            return 1
        finally:
            count = len(namespaces.names)
            namespaces.delete_all()
            print(f"\ndeleted {count} namespaces; the kernel tears large ones down in the background "
                  "(about 10 s per 500 bridges)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
