# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write docs/performance.md from the JSON files of the benchmarks (what ``make bench`` runs last).

Issue 12, item 7. Reads, from one directory (``--dir``), the files each benchmark wrote with
``--json``: ``render.json`` (bench/bench_render.py), ``apply.json`` (bench/bench_apply.py),
``e2e.json`` (bench/bench_e2e.py, with the cluster part), ``cluster.json`` (bench/bench_cluster.py
run alone, used when e2e.json has no cluster part) and ``packet_path.json``
(bench/bench_packet_path.py), and ``durations.txt`` (lines ``<name> <seconds>``, written by
``make bench``). A missing file is reported as not run, not as an error. The page gives the
machine, the versions, the commit, every figure as median (and best) of N, the ratio to each
baseline, the targets with met or NOT met, and how to reproduce.

A benchmark not known here (such as packet_path) is shown from its JSON: its ``targets``
(``text``, ``met``, ``figures``), its ``tables`` (``title``, ``columns``, ``rows``) and ``notes``
when it has them, else the document itself.

    .venv/bin/python bench/report.py --dir DIR [--output docs/performance.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("render", "apply", "memory", "e2e", "packet_path")
SCRIPTS = {"render": "bench/bench_render.py", "apply": "bench/bench_apply.py", "memory": "bench/bench_memory.py",
           "e2e": "bench/bench_e2e.py", "cluster": "bench/bench_cluster.py",
           "packet_path": "bench/bench_packet_path.py"}
TITLES = {"render": "Validation and rendering", "apply": "ghostwarden_apply in a namespace",
          "memory": "Peak memory of the module",
          "e2e": "Through ansible-playbook", "cluster": "Cluster role on 3, 12 and 24 nodes",
          "packet_path": "Packet path"}


# -- the machine and the versions ---------------------------------------------------------------


def command_output(*argv: str, line: int = 0) -> str:
    """Line ``line`` of what ``argv`` prints (stdout, else stderr), or "not installed"."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[line].strip() if len(lines) > line else "unknown"


def read_field(path: str, key: str, separator: str = ":") -> str:
    try:
        with open(path, encoding="utf-8") as source:
            for text in source:
                name, _sep, value = text.partition(separator)
                if name.strip() == key:
                    return value.strip().strip('"')
    except OSError:
        pass
    return "unknown"


def python_package(name: str) -> str:
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[tuple[str, str]]:
    memory = read_field("/proc/meminfo", "MemTotal")
    if memory.endswith(" kB"):
        memory = f"{int(memory[:-3]) / 1024 / 1024:.1f} GiB"
    virtual = command_output("systemd-detect-virt")
    return [
        ("CPU", f"{read_field('/proc/cpuinfo', 'model name')}, {os.cpu_count()} CPUs (nproc {command_output('nproc')})"),
        ("memory", memory),
        ("kernel", platform.release()),
        ("distribution", read_field("/etc/os-release", "PRETTY_NAME", "=")),
        ("virtualisation", virtual),
    ]


def versions() -> list[tuple[str, str]]:
    return [
        ("Python", platform.python_version()),
        ("ansible-core", python_package("ansible-core")),
        ("pyroute2", python_package("pyroute2")),
        ("netaddr", python_package("netaddr")),
        ("nftables", command_output("nft", "--version")),
        ("iproute2", command_output("ip", "-V")),
        ("dnsmasq", command_output("dnsmasq", "--version")),
        ("iperf3", command_output("iperf3", "--version")),
        ("OpenSSH", command_output("ssh", "-V")),
    ]


def git_commit() -> str:
    commit = command_output("git", "-C", str(ROOT), "log", "-1", "--format=%h %s")
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    commit = commit if len(commit) <= 100 else commit[:97] + "..."
    return f"{commit} (with uncommitted changes)" if dirty else commit


# -- formatting ---------------------------------------------------------------------------------


def seconds(values: Sequence[float], digits: int = 3) -> str:
    """``median (best)`` of ``values``, or ``-``."""
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f})"


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> str:
    """Median over median, and best over best."""
    if not numerator or not denominator:
        return "-"
    return (f"{statistics.median(numerator) / statistics.median(denominator):.2f} "
            f"({min(numerator) / min(denominator):.2f})")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """A Markdown table; ``align``: one of l/r per column (default: first left, the rest right)."""
    align = align or "l" + "r" * (len(columns) - 1)
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


# -- one section per benchmark ------------------------------------------------------------------


def render_section(document: dict) -> list[str]:
    repeat = document["repeat"]
    rows = [(row["networks"], row["networks"] * document["forwards_per_network"], f"{row['validate']:.4f}",
             f"{row['nft']:.4f}", f"{row['dnsmasq']:.4f}", f"{row['total']:.4f}",
             f"{row['total'] / row['networks'] * 1e6:.0f}", f"{row['ruleset_bytes'] / 1024:.1f}")
            for row in document["sizes"]]
    return [
        f"`bench/bench_render.py`: validation (`parse_topology`) and rendering (nft ruleset, dnsmasq files) of N "
        f"routed networks with {document['forwards_per_network']} forwards each, pure Python in one process. "
        f"Seconds, best of {repeat} (this benchmark keeps only the best); total = validation + nft.",
        "",
        *table(["networks", "forwards", "validate s", "nft s", "dnsmasq s", "total s", "µs/network",
                "ruleset KiB"], rows),
        "",
        f"Time per network, largest vs smallest size: x{document['growth_per_network']:.2f} (1.0 = linear).",
    ]


def apply_section(document: dict) -> list[str]:
    rows = []
    for size in document["sizes"]:
        rows.append((size["size"], size["size"] * document["forwards_per_network"], seconds(size["apply"]),
                     seconds(size["noop"]), seconds(size["floor"]), seconds(size["naive"]),
                     ratio(size["apply"], size["floor"]), ratio(size["apply"], size["naive"]),
                     size["operations"]))
    extra = [key for key in document["sizes"][0] if key not in
             ("size", "apply", "noop", "floor", "naive", "operations", "naive_commands")] if document["sizes"] else []
    lines = [
        "`bench/bench_apply.py`: `ghostwarden_apply` run as Ansible runs a module on a target (its own Python "
        f"process, an args file), N routed networks with {document['forwards_per_network']} forwards each, each "
        "apply in a fresh namespace, then the no-op re-run; baselines: the *floor* (the same kernel objects with "
        "one `ip -batch` and one `nft -f`) and the *naive* way (one `ip` or `nft` command per object). Seconds, "
        f"median (best) of {document['repeat']}; ratios median/median (best/best).",
        "",
        *table(["networks", "forwards", "apply s", "no-op s", "floor s", "naive s", "apply / floor",
                "apply / naive", "operations"], rows),
    ]
    for key in extra:  # figures added to the benchmark later (e.g. memory), shown as they are
        lines += ["", f"`{key}`: " + ", ".join(f"{size['size']} networks: {size[key]}" for size in document["sizes"])]
    return lines


def e2e_section(document: dict) -> list[str]:
    connections = document.get("connections", {})
    if not connections:
        return ["No end-to-end playbook runs in this report (bench_e2e.py ran with --connections '')."]
    repeat = document["repeat"]
    rows = []
    for name, connection in connections.items():
        runs = connection["runs"]
        trivial = [run["trivial"] for run in runs]
        for task in ("trivial", "apply", "no-op", "rendered"):
            values = trivial if task == "trivial" else [run["tasks"][task]["seconds"] for run in runs]
            extra = "-" if task == "trivial" else seconds([value - base for value, base in zip(values, trivial)], 2)
            size = max(run["tasks"]["trivial 2" if task == "trivial" else task]["bytes"] for run in runs)
            rows.append((connection["label"], task, seconds(values, 2), extra, ratio(values, trivial), f"{size:,}"))
        rows.append((connection["label"], "whole playbook", seconds([run["wall"] for run in runs], 2), "-", "-", "-"))
    load = document.get("load", {})
    outside = ", ".join(f"{connection['label']} {seconds([run['outside_tasks'] for run in connection['runs']], 2)} s"
                        for connection in connections.values() if all("outside_tasks" in run for run in connection["runs"]))
    return [
        f"`bench/bench_e2e.py`: one `ansible-playbook` run per repetition and connection, against a fresh lab "
        f"namespace, with the tasks `ping` (opens the connection), apply of {document['networks']} routed networks "
        f"with {document['forwards_per_network']} forwards each (`confirm_timeout: 0`, from an empty host), `ping`, "
        "the same apply again (no-op), `state: rendered`, `ping`. The topology comes from a vars file. *trivial* is "
        "the mean of the two `ping` tasks after the first in the same run; *extra* is a task minus that trivial "
        "task, run by run. A task's time runs from its start to its result (the bench_tasks callback); its result "
        "size is the compact JSON callbacks get (with `invocation`), the largest of the runs. Seconds, median "
        f"(best) of {repeat}.",
        "",
        "- netns connection: `ansible_connection: ghostwarden.core.netns`, as the lab role's inventory writes it "
        "(Ansible's defaults otherwise: no pipelining);",
        "- SSH: a real sshd inside the target namespace, ansible-playbook inside a controller namespace, "
        "ControlPersist and pipelining on.",
        "",
        *table(["connection", "task", "seconds", "extra s", "x trivial", "result bytes"], rows, "llrrrr"),
        "",
        *([f"Time of the whole playbook outside its tasks (ansible-playbook's start-up, reading the vars file, "
           f"the end): {outside}.", ""] if outside else []),
        f"Load average (1, 5, 15 min) at the start {format_load(load.get('start'))}, at the end "
        f"{format_load(load.get('end'))}.",
    ]


def format_load(values: Sequence[float] | None) -> str:
    return " ".join(f"{value:.2f}" for value in values) if values else "unknown"


def cluster_section(cluster: dict) -> list[str]:
    repeat = cluster["repeat"]
    rows = []
    for size in cluster["sizes"]:
        nodes = size["nodes"]
        per_node = [value / nodes for value in size["apply"]]
        again_per_node = [value / nodes for value in size["again"]]
        trivial_per_node = [value / nodes for value in size["trivial"]]
        own = [(value - base) / nodes for value, base in zip(size["apply"], size["trivial"])]
        rows.append((nodes, size["tasks_per_node"], seconds(size["apply"], 1), seconds(per_node, 2),
                     seconds(size["again"], 1), seconds(again_per_node, 2), seconds(size["trivial"], 1),
                     seconds(trivial_per_node, 2), seconds(own, 2), ratio(size["apply"], size["trivial"]),
                     ratio(size["again"], size["trivial"])))
    return [
        "`bench/bench_cluster.py` (run by bench_e2e.py): the cluster role (`bench/cluster/cluster.yml`: a VXLAN "
        "overlay and a routed network per node with DHCP, masquerade and a DNAT forward) on every node of a lab "
        "built with the lab role (netns connection, Ansible's default 5 forks), from nothing (*apply*) and again "
        "(*re-run*, no change), beside *trivial shape*: a play with one trivial task for every task the role ran "
        "on each node (`ping` for a module on the node, `assert` for a controller-side task such as set_fact or "
        "include_role, skipped where the role's was skipped). Seconds of the whole ansible-playbook run, median "
        f"(best) of {repeat}; per node = run / nodes; *role's own per node* = (apply - trivial shape) / nodes.",
        "",
        *table(["nodes", "tasks per node", "apply s", "per node", "re-run s", "per node", "trivial shape s",
                "per node", "role's own per node", "apply / trivial", "re-run / trivial"], rows),
    ]


def generic_section(document: dict) -> list[str]:
    lines: list[str] = []
    if document.get("description"):
        lines += [str(document["description"]), ""]
    for shown in document.get("tables") or []:
        if shown.get("title"):
            lines += [f"**{shown['title']}**", ""]
        lines += [*table(shown["columns"], shown["rows"]), ""]
    for note in document.get("notes") or []:
        lines += [str(note), ""]
    if not lines:
        body = {key: value for key, value in document.items() if key not in ("targets", "command")}
        lines = ["```json", json.dumps(body, indent=1, sort_keys=True)[:20000], "```"]
    return lines


def memory_section(document: dict) -> list[str]:
    """bench_memory.py: the module process's peak resident set (VmHWM) for the apply and the no-op."""
    figures = document["figures"]
    rows = [(label, f"{figures[f'{key}_mb']['median']:.1f}", f"{figures[f'{key}_mb']['max']:.1f}",
             f"{figures[f'{key}_s']['median']:.2f}") for label, key in (("apply", "apply"), ("no-op re-run", "noop"))]
    return [f"{document['networks']} routed networks with {document['forwards']} forwards, "
            f"{document['repeat']} runs each; the peak resident set (VmHWM) of the module process alone.", "",
            *table(["run", "peak RSS MB (median)", "max", "wall s (median)"], rows)]


def packet_path_section(document: dict) -> list[str]:
    """bench_packet_path.py's JSON (its ``variants``), else the generic view."""
    variants = document.get("variants")
    if not isinstance(variants, dict) or not variants:
        return generic_section(document)
    options = document.get("options", {})
    cpu = any("iperf_cpu_s_per_gb" in variant for variant in variants.values())
    rows = []
    for name, variant in variants.items():
        throughput = [value / 1e9 for value in variant.get("throughput_bps") or []]
        connections = variant.get("connections_per_s") or []
        row = [f"{name}: {variant.get('description', '')}", variant.get("networks", "-"), variant.get("forwards", "-"),
               (variant.get("ruleset") or {}).get("rules", "-"), spread(throughput, 2), spread(connections, 0)]
        if cpu:
            row += [spread(variant.get("iperf_cpu_s_per_gb") or [], 3),
                    spread(variant.get("connect_cpu_us_per_connection") or [], 1)]
        for baseline in ("floor", "one"):
            base = variants.get(baseline)
            if base is None or baseline == name:
                row.append("-")
                continue
            row.append(f"{percent(variant.get('throughput_bps'), base.get('throughput_bps'))} / "
                       f"{percent(variant.get('connections_per_s'), base.get('connections_per_s'))}")
        rows.append(row)
    load = (document.get("machine") or {}).get("load_average")
    return [
        "`bench/bench_packet_path.py`: TCP throughput (iperf3) and new connections per second from a client "
        "namespace through a port forward of a lab host to a server behind it; the host's ruleset is the one "
        "`ghostwarden_apply` renders for 1 network (*one*) or "
        f"{options.get('networks', 'N')} networks with {options.get('forwards_per_network', '?')} forwards each "
        "(*many*), or the hand-written minimum NAT for the same path (*floor*). Median (min-max) of "
        f"{options.get('repeat', '?')} rounds of {options.get('seconds', '?')} s, variants interleaved; ratios are "
        "median over median, throughput / new connections"
        + ("; CPU: sender and receiver CPU seconds per GB, client CPU per connection" if cpu else "")
        + ". The rules a packet meets are in [benchmarks.md](benchmarks.md#packet-path).",
        "",
        *table(["variant", "networks", "forwards", "rules", "Gbit/s", "connections/s",
                *(["CPU s/GB", "CPU µs/connection"] if cpu else []), "vs floor", "vs one"], rows,
               "lrrrrr" + ("rr" if cpu else "") + "rr"),
        "",
        f"Load average at the start: {format_load(load)}.",
    ]


def spread(values: Sequence[float], digits: int) -> str:
    """``median (min-max)``, or ``-``."""
    if not values:
        return "-"
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def percent(values: Sequence[float] | None, baseline: Sequence[float] | None) -> str:
    if not values or not baseline:
        return "-"
    return f"{statistics.median(values) / statistics.median(baseline):.1%}"


def targets_of(name: str, document: dict) -> list[dict]:
    """A benchmark's targets as ``text``, ``met``, ``figures``; bench_packet_path.py's from its ratios."""
    found = document.get("targets")
    if isinstance(found, list):
        return [target for target in found if isinstance(target, dict)]
    if name != "packet_path":
        return []
    ratios = document.get("ratios")
    if not isinstance(ratios, dict):  # an earlier form: the ratios under "targets", beside "ratio"
        ratios = {key: value for key, value in (found or {}).items() if isinstance(value, dict)}
    wanted = document.get("target_ratio") or (found or {}).get("ratio") or 0.95
    labels = {"many/one": f"{(document.get('options') or {}).get('networks', 'many')} networks vs 1",
              "one/floor": "1 network vs the floor"}
    result = []
    for key, label in labels.items():
        figures = ratios.get(key)
        if not isinstance(figures, dict):
            continue
        for figure, text in (("throughput", "throughput"), ("connections", "new connections per second")):
            if figure not in figures:
                continue
            details = [f"per round {figures[f'{figure}_paired']:.1%}"] if figures.get(f"{figure}_paired") else []
            details += [f"CPU cost {figures[f'{figure}_cpu']:.1%}"] if figures.get(f"{figure}_cpu") else []
            result.append({"text": f"{text}, {label}, at least {wanted:.0%}", "met": figures[figure] >= wanted,
                           "figures": f"{figures[figure]:.1%}" + (f" ({', '.join(details)})" if details else "")})
    return result


SECTIONS: dict[str, Callable[[dict], list[str]]] = {
    "render": render_section, "apply": apply_section, "memory": memory_section, "e2e": e2e_section,
    "packet_path": packet_path_section}


# -- the page -----------------------------------------------------------------------------------


def section(name: str, document: dict) -> list[str]:
    """The section of one benchmark; its JSON as it is when it does not have the fields expected."""
    try:
        return {**SECTIONS, "cluster": cluster_section}[name](document)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, statistics.StatisticsError) as error:
        return [f"(The figures are not in the form this report knows: {type(error).__name__} {error}.)", "",
                *generic_section({key: value for key, value in document.items() if key not in ("tables", "notes")})]


def load(directory: Path, name: str) -> dict | None:
    try:
        return json.loads((directory / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def durations(directory: Path) -> dict[str, int]:
    found = {}
    try:
        for text in (directory / "durations.txt").read_text().splitlines():
            name, _sep, value = text.partition(" ")
            if value.strip().isdigit():
                found[name] = int(value)
    except OSError:
        pass
    return found


def cluster_of(documents: dict[str, dict | None]) -> dict | None:
    e2e = documents.get("e2e") or {}
    if e2e.get("cluster", {}).get("sizes"):
        return e2e["cluster"]
    return documents.get("cluster")


def without_json(command: str) -> str:
    """``command`` without its ``--json FILE`` (a temporary file of that run)."""
    words = shlex.split(command)
    kept = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--json":
            skip = True
        elif not word.startswith("--json="):
            kept.append(word)
    return shlex.join(kept)


def page(directory: Path, now: datetime.datetime) -> str:
    documents = {name: load(directory, name) for name in (*BENCHMARKS, "cluster")}
    took = durations(directory)
    lines = [
        "<!-- Generated by `make bench` (bench/report.py); do not edit: run `make bench` again. -->",
        "# Performance",
        "",
        "Generated by `make bench` (as root): it runs every benchmark in `bench/` with `--json` and writes this "
        "page with `bench/report.py`. What each benchmark measures, and why, is in [benchmarks.md](benchmarks.md). "
        "The figures are from one machine, often shared with other work: compare rows of the same run, and read "
        "the medians with the load average in mind.",
        "",
        "## Run",
        "",
        *table(["", ""], [("date", now.strftime("%Y-%m-%d %H:%M UTC")), ("commit", f"`{git_commit()}`"),
                          *machine()], "ll"),
        "",
        "Versions:",
        "",
        *table(["", ""], versions(), "ll"),
        "",
        "## Targets",
        "",
    ]
    target_rows = []
    for name in (*BENCHMARKS, "cluster"):
        document = documents.get(name)
        if document is None or (name == "cluster" and (documents.get("e2e") or {}).get("cluster", {}).get("sizes")):
            continue
        for target in targets_of(name, document):
            verdict = "met" if target.get("met") else "**NOT met**"
            target_rows.append((SCRIPTS[name].rsplit("/", maxsplit=1)[-1], target.get("text", ""), verdict,
                                target.get("figures", "")))
    lines += table(["benchmark", "target", "", "figures"], target_rows, "llll") if target_rows else ["No targets."]
    for name in BENCHMARKS:
        lines += ["", f"## {TITLES[name]}", ""]
        document = documents[name]
        if document is None:
            script = SCRIPTS[name]
            why = "wrote no figures (it failed or was not run)." if (ROOT / script).exists() else "is not in this checkout."
            lines.append(f"Not in this report: `{script}` {why}")
        else:
            lines += section(name, document)
        if name == "e2e":
            cluster = cluster_of(documents)
            lines += ["", f"## {TITLES['cluster']}", ""]
            lines += section("cluster", cluster) if cluster else ["Not in this report: no cluster figures."]
    lines += ["", "## How to reproduce", "",
              "```sh",
              "make bench        # as root: make deps, every benchmark with --json, then this page",
              ".venv/bin/python bench/report.py --dir tests/output/bench   # this page again from those files",
              "```",
              "",
              "or one benchmark at a time (as root, from the repository's root; each prints its table):",
              "",
              "```sh"]
    for name in (*BENCHMARKS, "cluster"):
        document = documents.get(name)
        command = document.get("command") if document else None
        if name == "cluster" and not command:
            command = "bench/bench_cluster.py --sizes 3,12,24 --repeat 1"
        if name == "packet_path" and document and not command:
            options = document.get("options") or {}
            command = shlex.join(["bench/bench_packet_path.py", *(
                word for key in ("seconds", "repeat", "networks") if key in options
                for word in (f"--{key}", f"{options[key]:g}" if isinstance(options[key], float) else str(options[key])))])
        lines.append(f".venv/bin/python {without_json(command or SCRIPTS[name])} [--json FILE]")
    lines += ["```"]
    if took:
        lines += ["", "Time each took in this run: " + ", ".join(
            f"{SCRIPTS.get(name, name).split('/')[-1]} {value // 60} min {value % 60} s" for name, value in took.items())
            + f"; {sum(took.values()) // 60} min {sum(took.values()) % 60} s in all."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where the benchmarks wrote their JSON files")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    if not args.dir.is_dir():
        print(f"report: {args.dir} is not a directory", file=sys.stderr)
        return 2
    text = page(args.dir, datetime.datetime.now(datetime.timezone.utc))
    args.output.write_text(text)
    print(f"report: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
