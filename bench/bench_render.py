# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate + render N routed networks with 10 forwards each and print the time per size.

Target (issue 2): 1,000 networks with 10,000 forwards validated and rendered in under
0.5 s on a 2-core machine, growing linearly. This prints figures; it asserts nothing,
because timing on a shared machine is noisy (run it side by side, compare the rows).

    python bench/bench_render.py [--sizes 10,100,1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# The import makes the collection importable as ansible_collections.ghostwarden.core.
import conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import render_dnsmasq  # noqa: E402
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import render_ruleset  # noqa: E402
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology  # noqa: E402

FORWARDS_PER_NETWORK = 10


def make_topology(networks: int) -> dict:
    nets = {}
    for index in range(networks):
        second, third = divmod(index, 256)
        prefix = f"10.{second}.{third}"
        nets[f"net{index:05d}"] = {
            "type": "routed",
            "cidr": f"{prefix}.0/24",
            "gw_ip": f"{prefix}.1",
            "dhcp": True,
            "masq_out": "uplink",
            "policy_profile": "routed-tight",
            "forwards": [
                {"public": f"0.0.0.0:{10000 + index * FORWARDS_PER_NETWORK + n}/tcp", "dst": f"{prefix}.{10 + n}:22"}
                for n in range(FORWARDS_PER_NETWORK)
            ],
        }
    return {"version": 1, "interfaces": {"uplink": "eth0"}, "management": {"allow_from": ["192.0.2.0/24"]},
            "networks": nets}


def measure(data: dict, repeat: int) -> tuple[float, float, float, int]:
    """Best-of-``repeat`` seconds for validation, nft rendering and dnsmasq rendering; ruleset size."""
    parse_times, nft_times, dnsmasq_times = [], [], []
    ruleset = ""
    for dummy in range(repeat):
        gc.collect()
        start = time.perf_counter()
        topology = parse_topology(data)
        parsed = time.perf_counter()
        ruleset = render_ruleset(topology)
        rendered = time.perf_counter()
        render_dnsmasq(topology)
        done = time.perf_counter()
        parse_times.append(parsed - start)
        nft_times.append(rendered - parsed)
        dnsmasq_times.append(done - rendered)
    return min(parse_times), min(nft_times), min(dnsmasq_times), len(ruleset)


def write_json(path: Path, rows: list[dict], growth: float, args: argparse.Namespace) -> None:
    """The figures (best of --repeat, seconds) and the target as JSON, for bench/report.py (``--json FILE``)."""
    import json  # pylint: disable=import-outside-toplevel

    by_size = {row["networks"]: row for row in rows}
    targets = [] if 1000 not in by_size else [{
        "text": "1000 networks with 10000 forwards validated and rendered in < 0.5 s",
        "met": by_size[1000]["total"] < 0.5, "figures": f"{by_size[1000]['total']:.3f} s; best of {args.repeat}"}]
    document = {"benchmark": "render", "command": " ".join(["bench/bench_render.py", *sys.argv[1:]]),
                "repeat": args.repeat, "statistic": "best", "forwards_per_network": FORWARDS_PER_NETWORK,
                "sizes": rows, "growth_per_network": growth, "targets": targets}
    path.write_text(json.dumps(document, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    print(f"{'networks':>8} {'forwards':>8} {'validate s':>11} {'nft s':>8} {'dnsmasq s':>10} "
          f"{'total s':>8} {'us/network':>10} {'ruleset KiB':>11}")
    totals = {}
    rows = []
    for size in sizes:
        parse_s, nft_s, dnsmasq_s, ruleset_len = measure(make_topology(size), args.repeat)
        total = parse_s + nft_s
        totals[size] = total
        rows.append({"networks": size, "validate": parse_s, "nft": nft_s, "dnsmasq": dnsmasq_s, "total": total,
                     "ruleset_bytes": ruleset_len})
        print(f"{size:>8} {size * FORWARDS_PER_NETWORK:>8} {parse_s:>11.4f} {nft_s:>8.4f} {dnsmasq_s:>10.4f} "
              f"{total:>8.4f} {total / size * 1e6:>10.1f} {ruleset_len / 1024:>11.1f}")
    smallest, largest = min(sizes), max(sizes)
    growth = (totals[largest] / largest) / (totals[smallest] / smallest)
    print(f"\nvalidate+render per network, {largest} vs {smallest} networks: x{growth:.2f} (1.0 = linear)")
    if 1000 in totals:
        verdict = "met" if totals[1000] < 0.5 else "NOT met"
        print(f"target: 1000 networks with 10000 forwards validated and rendered in < 0.5 s: "
              f"{verdict} ({totals[1000]:.3f} s)")
    if args.json:
        write_json(args.json, rows, growth, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
