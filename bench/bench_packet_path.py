# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TCP throughput and new-connection rate through a lab host: the floor, 1 network, 1,000 networks.

Issue 12, item 5. Each variant gets a lab of its own, three namespaces ``gwp-<id>-<variant>-{c,r,s}``:

    client (c)  eth0 198.51.100.2 --veth-- up0 198.51.100.1  router (r)  gw-net00000 10.0.0.1
                                                                              | (bridge port s0)
                                                                  server (s)  eth0 10.0.0.10

The router is "the lab host": ``ghostwarden_apply`` (run as Ansible runs it, with ``netns``)
gives it the topology's bridges, addresses, forwarding sysctl and the owned table, so the
ruleset is exactly what the product renders. The client reaches the server through port
forwards of network ``net00000`` (``198.51.100.1:5201`` to ``10.0.0.10:5201`` for iperf3,
``:8080`` to ``:80`` for the connections); every network masquerades to the uplink and has
the profile ``bench-full`` (public-web style, rules in the ingress, egress and host directions).
Variants:

- ``floor``: the 1-network lab (same links, addresses, routes, sysctls) with the owned table
  replaced by the minimum NAT for the same path, written by hand (:func:`floor_ruleset`: a
  ``table ip`` with three ``ip daddr . tcp dport`` DNAT rules and one masquerade rule; no
  filter chain, no set, no map, no fib);
- ``one``: 1 network with ``--forwards-per-network`` (10) forwards;
- ``many``: ``--networks`` (1,000) networks with 10 forwards each (10,000);
- ``--attribute``: edits of the 1-network ruleset (:data:`ATTRIBUTION_EDITS`);
- ``--ruleset-variant NAME=FILE``: the 1-network lab with the nft script FILE instead (for
  example an edited copy of what ``--write-rulesets DIR`` writes).

Per round, every variant in turn, the order rotating from round to round: ``iperf3 -c``
through the forward for ``--seconds`` (bits/s received; CPU seconds of sender and receiver
per GB), then a Python client that opens and resets (SO_LINGER 0, no TIME_WAIT) as many TCP
connections as it can for ``--seconds`` (connections/s; the client thread's CPU time per
connection, which on a kernel without IRQ time accounting includes the softirq work of the
whole path). Figures are medians of ``--repeat`` rounds. Then ``nft monitor trace`` lists
per variant the chains and rules a traced packet meets (first packet of a forwarded
connection, its reply, an established packet, and a connection routed to the guest without
DNAT, through the profile). Last, the attribution phase: blocks of connections in the
1-network lab, each variant's ruleset loaded before its block, in a new random order every
cycle, compared within the cycle (``--alternate-seconds``).

Targets: many >= 95% of one and one >= 95% of floor, for both figures. A benchmark reports:
exit 0 whether or not the targets are met, 1 when a run fails, 2 when not run as root, 3 when
iperf3 is missing.

    sudo .venv/bin/python bench/bench_packet_path.py [--seconds 3] [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# The import makes the collection importable as ansible_collections.ghostwarden.core.
import conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology  # noqa: E402

MODULE = ROOT / "plugins" / "modules" / "ghostwarden_apply.py"
TOOLS = ("ip", "nft", "iperf3")
TARGET_RATIO = 0.95

# The lab's addresses: the uplink side is TEST-NET-2, the guest network the topology's first one.
UPLINK = "up0"
ROUTER_UPLINK_IP = "198.51.100.1"
CLIENT_IP = "198.51.100.2"
UPLINK_PREFIX = 24
SERVER_NETWORK = "net00000"
SERVER_BRIDGE = f"gw-{SERVER_NETWORK}"
SERVER_GW = "10.0.0.1"
SERVER_IP = "10.0.0.10"
SERVER_PORT_IN_BRIDGE = "s0"
IPERF_PORT = 5201  # public and server port
CONNECT_PUBLIC_PORT, CONNECT_PORT = 8080, 80  # the new-connection test: DNAT 8080 -> 80
WHOAMI_PUBLIC_PORT, WHOAMI_PORT = 8081, 81  # answers the peer address it sees (path check, trace)
PROBE_PORT = 9  # udp: a datagram that shows the trace monitor is listening
FILLER_PORT_BASE = 20000  # the other forwards: 20000 + network * forwards + n
PROFILE = "bench-full"


class BenchError(RuntimeError):
    """A run failed or the lab does not do what it should: no figure to report."""


# -- the topology and the hand-written rulesets (pure) --------------------------------------------


def bench_profile() -> dict:
    """A public-web style profile with rules in every direction (ingress, egress, host)."""
    icmp_limit = {"rate": 10, "per": "second", "burst": 20, "per_source": True}
    return {
        "description": "packet-path benchmark: web in, private ranges and smtp out blocked, host icmp and ssh",
        "ingress_action": "drop",
        "egress_action": "accept",
        "host_action": "drop",
        "rules": [
            {"direction": "ingress", "protocol": "tcp", "ports": [80, 443], "comment": "http, https"},
            {"direction": "ingress", "protocol": "udp", "ports": [443], "comment": "http/3"},
            {"direction": "ingress", "protocol": "icmp", "rate_limit": icmp_limit},
            {"direction": "egress", "action": "drop", "destinations": ["172.16.0.0/12", "192.168.0.0/16"],
             "counter": True, "comment": "no private ranges"},
            {"direction": "egress", "action": "reject", "protocol": "tcp", "ports": [25], "comment": "no smtp"},
            {"direction": "host", "protocol": "icmp", "rate_limit": icmp_limit},
            {"direction": "host", "protocol": "tcp", "ports": [22], "sources": ["10.0.0.0/8"], "conn_limit": 4,
             "comment": "ssh from guests"},
        ],
    }


def network_prefix(index: int) -> str:
    second, third = divmod(index, 256)
    return f"10.{second}.{third}"


def make_topology(networks: int, forwards_per_network: int) -> dict:
    """``networks`` routed networks, ``forwards_per_network`` forwards each, masquerade, profile bench-full.

    Network 0 (``net00000``, 10.0.0.0/24) holds the lab's server: its first three forwards are the
    measured ports (iperf3, the connection test, whoami) to 10.0.0.10; every other forward has its
    own public port ``FILLER_PORT_BASE + network * forwards_per_network + n`` to ``.(10 + n):22``.
    """
    if forwards_per_network < 3:
        raise ValueError("forwards_per_network must be at least 3 (the measured ports)")
    if FILLER_PORT_BASE + networks * forwards_per_network > 65536:
        raise ValueError(f"{networks} networks x {forwards_per_network} forwards do not fit in the port range")
    measured = [
        {"public": f"0.0.0.0:{IPERF_PORT}/tcp", "dst": f"{SERVER_IP}:{IPERF_PORT}"},
        {"public": f"0.0.0.0:{CONNECT_PUBLIC_PORT}/tcp", "dst": f"{SERVER_IP}:{CONNECT_PORT}"},
        {"public": f"0.0.0.0:{WHOAMI_PUBLIC_PORT}/tcp", "dst": f"{SERVER_IP}:{WHOAMI_PORT}"},
    ]
    nets = {}
    for index in range(networks):
        prefix = network_prefix(index)
        forwards = list(measured) if index == 0 else []
        forwards.extend(
            {"public": f"0.0.0.0:{FILLER_PORT_BASE + index * forwards_per_network + n}/tcp",
             "dst": f"{prefix}.{10 + n}:22"}
            for n in range(len(forwards), forwards_per_network))
        nets[f"net{index:05d}"] = {
            "type": "routed",
            "cidr": f"{prefix}.0/24",
            "gw_ip": f"{prefix}.1",
            "masq_out": "uplink",
            "policy_profile": PROFILE,
            "forwards": forwards,
        }
    return {"version": 1, "interfaces": {"uplink": UPLINK}, "management": {"allow_from": ["192.0.2.0/24"]},
            "policies": {PROFILE: bench_profile()}, "networks": nets}


FLOOR_TABLE = "ip gwbench_floor"


def floor_ruleset() -> str:
    """The floor's NAT: what the same path needs at the least, written by hand.

    A DNAT rule per measured port on the router's uplink address and one masquerade rule for
    the guest network out of the uplink (which the measured path does not hit, as in the
    product: the client's source is kept). No filter chain, no sets, no maps, no fib.
    """
    return (
        f"table {FLOOR_TABLE} {{\n"
        "\tchain prerouting {\n"
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        f"\t\tip daddr {ROUTER_UPLINK_IP} tcp dport {IPERF_PORT} dnat to {SERVER_IP}:{IPERF_PORT}\n"
        f"\t\tip daddr {ROUTER_UPLINK_IP} tcp dport {CONNECT_PUBLIC_PORT} dnat to {SERVER_IP}:{CONNECT_PORT}\n"
        f"\t\tip daddr {ROUTER_UPLINK_IP} tcp dport {WHOAMI_PUBLIC_PORT} dnat to {SERVER_IP}:{WHOAMI_PORT}\n"
        "\t}\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f"\t\tip saddr 10.0.0.0/24 oifname \"{UPLINK}\" masquerade\n"
        "\t}\n"
        "}\n"
    )


# -- editing a rendered ruleset (pure; the renderer's layout: "\tchain NAME {" ... "\t}") ----------


def chain_blocks(ruleset: str) -> dict[str, tuple[int, int]]:
    """Chain name -> (first line index, last line index) of its block in ``ruleset``."""
    lines = ruleset.splitlines()
    blocks, start, name = {}, None, ""
    for index, line in enumerate(lines):
        match = re.fullmatch(r"\tchain (\S+) \{", line)
        if match:
            start, name = index, match.group(1)
        elif start is not None and line == "\t}":
            blocks[name] = (start, index)
            start = None
    return blocks


def drop_chains(ruleset: str, names: Sequence[str]) -> str:
    """``ruleset`` without the chains ``names`` (each must exist)."""
    blocks = chain_blocks(ruleset)
    lines = ruleset.splitlines()
    doomed: set[int] = set()
    for name in names:
        if name not in blocks:
            raise ValueError(f"no chain {name} in the ruleset")
        first, last = blocks[name]
        doomed.update(range(first, last + 1))
        if last + 1 < len(lines) and not lines[last + 1].strip():
            doomed.add(last + 1)
    return "\n".join(line for index, line in enumerate(lines) if index not in doomed) + "\n"


def chain_rules(ruleset: str, chain: str) -> list[str]:
    """The rules of ``chain`` (stripped lines after its type line; comments and policy excluded)."""
    first, last = chain_blocks(ruleset)[chain]
    rules = []
    for line in ruleset.splitlines()[first + 1:last]:
        text = line.strip()
        if text and not text.startswith(("type ", "comment ")):
            rules.append(text)
    return rules


def edit_rules(ruleset: str, chain: str, edit: dict[str, str | None]) -> str:
    """Replace (or, with None, remove) whole rules of ``chain``; every rule in ``edit`` must exist."""
    first, last = chain_blocks(ruleset)[chain]
    lines = ruleset.splitlines()
    seen = set()
    out = []
    for index, line in enumerate(lines):
        text = line.strip()
        if first < index < last and text in edit:
            seen.add(text)
            if edit[text] is not None:
                out.append(line[:len(line) - len(line.lstrip())] + edit[text])
            continue
        out.append(line)
    missing = set(edit) - seen
    if missing:
        raise ValueError(f"chain {chain}: no rule {sorted(missing)[0]!r}")
    return "\n".join(out) + "\n"


def insert_rules(ruleset: str, chain: str, rules: Sequence[str]) -> str:
    """``rules`` added at the start of ``chain`` (after its type and comment lines)."""
    start, last = chain_blocks(ruleset)[chain]
    lines = ruleset.splitlines()
    at = start + 1
    while at < last and lines[at].strip().startswith(("type ", "comment ")):
        at += 1
    return "\n".join(lines[:at] + [f"\t\t{rule}" for rule in rules] + lines[at:]) + "\n"


def set_elements(ruleset: str, name: str) -> list[str]:
    """The elements of set or map ``name`` in the renderer's layout (``elements = { a,\n b }``)."""
    lines = ruleset.splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(rf"\t(?:set|map) {re.escape(name)} \{{", line):
            break
    else:
        raise ValueError(f"no set {name} in the ruleset")
    text = ""
    for line in lines[index + 1:]:
        if line == "\t}":
            break
        if text or line.strip().startswith("elements = {"):
            text += " " + line.strip()
    body = text.strip()[len("elements = {"):].rstrip("}").strip()
    return [element.strip() for element in body.split(",") if element.strip()]


def add_set(ruleset: str, block: str) -> str:
    """``block`` (a whole ``set``/``map`` block, tab-indented) inserted before the first chain."""
    lines = ruleset.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("\tchain "))
    return "\n".join(lines[:at] + block.rstrip("\n").splitlines() + [""] + lines[at:]) + "\n"


def _no_filter(ruleset: str) -> str:
    """Only the NAT chains hooked: input and forward go (the policy chains and their maps stay, unused)."""
    return drop_chains(ruleset, ["input", "forward"])


def _floor_nat(ruleset: str) -> str:
    """The product's filter chains, the floor's NAT instead of its own NAT chains."""
    return drop_chains(ruleset, ["prerouting", "output", "postrouting"]) + floor_ruleset()


def _floor_inet(_ruleset: str) -> str:
    """The floor's rules in a table of family inet (like the product's) instead of ip."""
    return floor_ruleset().replace(f"table {FLOOR_TABLE}", "table inet gwbench_floor").replace(
        " dnat to ", " dnat ip to ")


def _dnat_by_address(ruleset: str) -> str:
    """DNAT on the uplink address instead of ``fib daddr type local``: no fib lookup per new connection."""
    rule = "fib daddr type local dnat ip to meta l4proto . th dport map @fwd4"
    return edit_rules(ruleset, "prerouting", {rule: f"ip daddr {ROUTER_UPLINK_IP} dnat ip to meta l4proto . th "
                                                    "dport map @fwd4"})


def _dnat_constants(ruleset: str) -> str:
    """Prerouting DNAT of the measured ports as constant rules (fib kept) instead of the map lookup."""
    rule = "fib daddr type local dnat ip to meta l4proto . th dport map @fwd4"
    measured = [(IPERF_PORT, IPERF_PORT), (CONNECT_PUBLIC_PORT, CONNECT_PORT), (WHOAMI_PUBLIC_PORT, WHOAMI_PORT)]
    rules = [f"tcp dport {public} fib daddr type local dnat ip to {SERVER_IP}:{port}" for public, port in measured]
    return insert_rules(edit_rules(ruleset, "prerouting", {rule: None}), "prerouting", rules)


def _no_output(ruleset: str) -> str:
    """Without the output chain (connections the host itself opens: not on the measured path)."""
    return drop_chains(ruleset, ["output"])


def _no_postrouting_sets(ruleset: str) -> str:
    """Hairpin and masquerade as plain matches instead of concatenated interval sets."""
    return edit_rules(ruleset, "postrouting", {
        "ct status dnat ip saddr . ip daddr @hairpin4 masquerade":
            f"ct status dnat ip saddr 10.0.0.0/24 ip daddr {SERVER_IP} masquerade",
        "ip saddr . oifname @masq4 masquerade": f"ip saddr 10.0.0.0/24 oifname \"{UPLINK}\" masquerade",
    })


def snat_guard(ruleset: str) -> str:
    """The proposed postrouting: a source outside every network that masquerades or hairpins is accepted
    first, after one lookup in a single-field interval set (``snat_src4``: the first parts of the
    ``masq4`` and ``hairpin4`` elements), instead of two concatenated interval (pipapo) lookups."""
    sources = []
    for name in ("hairpin4", "masq4"):
        for element in set_elements(ruleset, name):
            source = element.split(" . ", 1)[0]
            if source not in sources:
                sources.append(source)
    block = ("\tset snat_src4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n"
             f"\t\telements = {{ {', '.join(sources)} }}\n\t}}\n")
    return insert_rules(add_set(ruleset, block), "postrouting", ["ip saddr != @snat_src4 accept"])


# name -> (what it changes, the edit: the 1-network ruleset as rendered -> the variant's nft script)
ATTRIBUTION_EDITS = {
    "one-nofilter": ("input and forward chains removed: the rendered NAT chains alone", _no_filter),
    "one-floornat": ("the rendered filter chains, the floor's NAT instead of the rendered NAT chains", _floor_nat),
    "floor-inet": ("the floor's rules in an inet table (dnat ip to) instead of an ip table", _floor_inet),
    "one-nofib": ("prerouting DNAT on ip daddr <uplink address> instead of fib daddr type local", _dnat_by_address),
    "one-dnatconst": ("prerouting: 3 constant DNAT rules (tcp dport, fib kept) instead of the map", _dnat_constants),
    "one-nooutput": ("no output chain (not on the path: a control)", _no_output),
    "one-plainpost": ("postrouting hairpin and masquerade as plain matches, no concatenated interval sets",
                      _no_postrouting_sets),
    "one-snatguard": ("the proposal: postrouting starts with ip saddr != @snat_src4 accept", snat_guard),
}


# -- nft monitor trace (pure parsing) --------------------------------------------------------------

_TRACE_RE = re.compile(r"^trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) (?P<what>.*)$")
_VERDICT_RE = re.compile(r"# handle (?P<handle>\d+) \(verdict (?P<verdict>[^)]*)\)\s*$|\(verdict (?P<bare>[^)]*)\)\s*$")


def _field(packet: str, name: str) -> str:
    match = re.search(rf"(?:^| ){re.escape(name)} (\S+)", packet)
    return match.group(1).strip('"') if match else ""


def tcp_flags(packet: str) -> str:
    """``syn``, ``0x12`` (syn, ack), ``ack``... from a trace's packet description ('' when not tcp)."""
    match = re.search(r"tcp flags == (\S+)", packet)
    return match.group(1) if match else ""


def packet_key(packet: str) -> tuple[str, str, str, str, str]:
    """What stays the same for one packet from hook to hook (NAT changes addresses, forwarding the ttl)."""
    return (_field(packet, "iif"), _field(packet, "ip id"), _field(packet, "ip length"), tcp_flags(packet),
            _field(packet, "tcp window"))


@dataclass
class TracedPacket:
    """One traced packet: how it looked at its first traced hook, and its trace events in order."""

    packet: str
    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # (family table, chain, kind, text)


def parse_trace(text: str) -> list[TracedPacket]:
    """``nft -a monitor trace`` output as packets in order of their first event.

    A trace id does not follow a packet reliably (it is a hash that may change between hooks,
    and ids are reused), so a ``packet:`` event is matched to a packet by :func:`packet_key`;
    the other events belong to the packet last seen with their trace id.
    """
    packets: list[TracedPacket] = []
    by_key: dict[tuple, TracedPacket] = {}
    by_id: dict[str, TracedPacket] = {}
    for line in text.splitlines():
        match = _TRACE_RE.match(line.strip())
        if not match:
            continue
        table = f"{match.group('family')} {match.group('table')}"
        kind, _sep, rest = match.group("what").partition(" ")
        kind = kind.rstrip(":")
        if kind == "packet":
            key = packet_key(rest)
            packet = by_key.get(key)
            if packet is None:
                packet = by_key[key] = TracedPacket(rest.strip())
                packets.append(packet)
            by_id[match.group("id")] = packet
        packet = by_id.get(match.group("id"))
        if packet is not None:
            packet.events.append((table, match.group("chain"), kind, rest.strip()))
    return packets


@dataclass
class ChainCount:
    table: str
    chain: str
    rules_evaluated: int  # rules whose match was tried, up to and including the deciding one
    rules_in_chain: int
    verdict: str


def count_rules(packet: TracedPacket, chains: dict[tuple[str, str], list[int]],
                skip_tables: Sequence[str] = ()) -> list[ChainCount]:
    """Per chain the packet entered, in order: how many of its rules were evaluated.

    ``chains`` maps (``family table``, chain) to its rule handles in order (``nft -a -j list
    ruleset``). A trace shows only rules that matched (``# handle N (verdict ...)``), the chain a
    verdict map jumped to, and a chain's end (``policy accept`` of a base chain, ``verdict
    continue``/``return`` of a regular one). Every rule before a deciding rule was evaluated and
    did not match; a chain left at its end had all its rules evaluated.
    """
    order: list[ChainCount] = []
    current: dict[tuple[str, str], ChainCount] = {}
    for table, chain, kind, text in packet.events:
        if table in skip_tables or kind == "packet":
            if kind == "packet" and table not in skip_tables:
                key = (table, chain)
                current[key] = ChainCount(table, chain, 0, len(chains.get(key, [])), "")
                order.append(current[key])
            continue
        key = (table, chain)
        count = current.get(key)
        if count is None:  # a regular chain, entered by a jump
            count = current[key] = ChainCount(table, chain, 0, len(chains.get(key, [])), "")
            order.append(count)
        match = _VERDICT_RE.search(text)
        verdict = (match.group("verdict") or match.group("bare")) if match else text
        if kind == "rule":
            handles = chains.get(key, [])
            handle = int(match.group("handle")) if match and match.group("handle") else None
            position = handles.index(handle) + 1 if handle in handles else count.rules_evaluated + 1
            count.rules_evaluated = max(count.rules_evaluated, position)
            if not verdict.startswith(("continue", "jump")):
                count.verdict = verdict
                if verdict == "return":
                    current.pop(key)
        else:  # "policy accept", "verdict continue", "verdict return": the end of the chain
            count.rules_evaluated = count.rules_in_chain
            count.verdict = f"{kind} {verdict}"
            if kind == "verdict":
                current.pop(key)
    return order


def summarise_counts(counts: Sequence[ChainCount]) -> dict:
    """Base chains (hooks) entered, rules evaluated, and the path as text."""
    return {
        "chains": len(counts),
        "rules_evaluated": sum(count.rules_evaluated for count in counts),
        "path": " ".join(f"{count.chain}:{count.rules_evaluated}/{count.rules_in_chain}" for count in counts),
        "verdicts": [count.verdict for count in counts],
    }


def rule_handles(listing: dict) -> dict[tuple[str, str], list[int]]:
    """(``family table``, chain) -> rule handles in order, from ``nft -a -j list ruleset``."""
    chains: dict[tuple[str, str], list[int]] = {}
    for item in listing.get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            chains.setdefault((f"{chain['family']} {chain['table']}", chain["name"]), [])
        elif "rule" in item:
            rule = item["rule"]
            chains.setdefault((f"{rule['family']} {rule['table']}", rule["chain"]), []).append(rule["handle"])
    return chains


# -- commands --------------------------------------------------------------------------------------


def run(argv: Sequence[str], *, stdin: str | None = None, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env, check=False,
                            timeout=timeout)
    if result.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def in_ns(netns: str, *argv: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return run(["ip", "netns", "exec", netns, *argv], stdin=stdin, timeout=timeout)


def module_env() -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "SSH_CONNECTION"}
    collections = str(conftest.COLLECTIONS_ROOT)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [collections, environment.get("PYTHONPATH")]))
    return environment


# The server: port CONNECT_PORT accepts and closes (the client resets first), WHOAMI_PORT answers
# the peer address it sees. One thread, one selector: a short accept costs a few microseconds.
CONNECT_SERVER = r"""
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in (int(sys.argv[1]), int(sys.argv[2])):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(4096)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, port)
whoami = int(sys.argv[2])
print("ready", flush=True)
while True:
    for key, _events in selector.select():
        while True:
            try:
                connection, peer = key.fileobj.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if key.data == whoami:
                try:
                    connection.setblocking(True)
                    connection.settimeout(2)
                    connection.sendall(f"{peer[0]}\n".encode())
                except OSError:
                    pass
            connection.close()
"""

# Opens and resets TCP connections one after the other, as fast as it can, until the time or the
# count is up; prints JSON. SO_LINGER 0: the close is a RST, no TIME_WAIT holds the port, the
# router's conntrack entry goes to CLOSE. TCP_SYNCNT 1: a dropped SYN fails after 3 s, not 2 min.
CONNECT_CLIENT = r"""
import json, socket, struct, sys, time
host, port, seconds, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
address, linger = (host, port), struct.pack("ii", 1, 0)
made = failed = 0
errors = {}
cpu_start = time.thread_time()
start = time.perf_counter()
deadline = start + seconds
now = start
while made + failed < limit:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    try:
        sock.connect(address)
        made += 1
    except OSError as error:
        failed += 1
        errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
    sock.close()
    if (made + failed) % 32 == 0:
        now = time.perf_counter()
        if now >= deadline:
            break
now = time.perf_counter()
cpu = time.thread_time() - cpu_start
print(json.dumps({"connections": made, "failed": failed, "errors": errors, "seconds": now - start, "cpu_seconds": cpu}))
"""

# One connection for the trace: connect, read the whoami line, close normally.
TRACE_CLIENT = r"""
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
try:
    print(sock.recv(100).decode().strip())
finally:
    sock.close()
"""


# The attribution client: blocks of connections, each variant's ruleset loaded (by the client, with
# nft -f in the router) before its block, the variants in a new random order every cycle. A block
# takes tens of milliseconds, so the machine's load hardly changes between the blocks of a cycle and
# the per-cycle differences cancel it. The first tenth of a block after a load is not counted.
ALTERNATING_CLIENT = r"""
import json, random, socket, struct, subprocess, sys, time
host, port, seconds, block, router = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
files = sys.argv[6:]
address, linger = (host, port), struct.pack("ii", 1, 0)
rng = random.Random(5)

def connect(count):
    failed = 0
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
        try:
            sock.connect(address)
        except OSError:
            failed += 1
        sock.close()
    return failed

cycles = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    order = list(range(len(files)))
    rng.shuffle(order)
    cycle = [None] * len(files)
    for index in order:
        subprocess.run(["ip", "netns", "exec", router, "nft", "-f", files[index]], check=True)
        connect(max(1, block // 10))
        cpu, wall = time.thread_time(), time.perf_counter()
        failed = connect(block)
        cycle[index] = [(time.thread_time() - cpu) / block, (time.perf_counter() - wall) / block, failed]
    cycles.append(cycle)
print(json.dumps(cycles))
"""


# -- the labs --------------------------------------------------------------------------------------


class Namespaces:
    """Every namespace and process the run makes; all gone after :meth:`delete_all` (Ctrl-C, SIGTERM too)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def create(self, name: str) -> str:
        # Imported here: tests/support/netns.py imports pytest, which nothing else of this needs.
        from ansible_collections.ghostwarden.core.tests.support.netns import NetnsError, create_netns
        self.names.append(name)
        try:
            create_netns(name)
        except NetnsError as error:
            raise BenchError(str(error)) from None
        return name

    def spawn(self, netns: str, *argv: str) -> subprocess.Popen:
        process = subprocess.Popen(["ip", "netns", "exec", netns, *argv], start_new_session=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.processes.append(process)
        return process

    def delete_all(self) -> None:
        from ansible_collections.ghostwarden.core.tests.support.netns import delete_netns, stop_processes
        stop_processes(self.processes)
        self.processes.clear()
        for name in self.names:
            delete_netns(name)
        self.names.clear()


@dataclass
class Lab:
    """A client, a router (the lab host) and a server namespace; the router has a topology applied."""

    name: str
    client: str
    router: str
    server: str
    networks: int
    forwards: int
    apply_s: float = 0.0
    product: str = ""  # the router's ruleset as nft listed it right after the module's apply
    active: str = ""  # the variant whose ruleset the router carries now


@dataclass
class Variant:
    """A ruleset measured on a lab: the product's own, the floor, or an edit."""

    name: str
    description: str
    lab: Lab
    script: str  # loaded after "flush ruleset" (the router namespace holds no other table)
    product: bool  # the module's own ruleset: its profile must be in force
    file: Path = Path()


def ruleset_variant_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,15}", name) or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FILE, NAME of lower-case letters, digits, _ -")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    return name, Path(path)


def run_module(topology: dict, netns: str, workdir: Path, python: str) -> float:
    """``ghostwarden_apply`` with ``netns``, as Ansible runs it on a target; its wall clock."""
    args_file = workdir / f"args-{netns}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "topology": topology, "netns": netns, "state_dir": str(workdir / f"state-{netns}"),
        "_ansible_check_mode": False,
    }}))
    start = time.perf_counter()
    completed = subprocess.run([python, str(MODULE), str(args_file)], capture_output=True, text=True,
                               env=module_env(), check=False)
    elapsed = time.perf_counter() - start
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise BenchError(f"{netns}: the module printed no JSON (rc {completed.returncode}):\n"
                         f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}") from None
    if completed.returncode != 0 or result.get("failed") or result.get("changed") is not True:
        raise BenchError(f"{netns}: the module failed or changed nothing: {result.get('msg')}")
    return elapsed


def build_lab(run_id: str, name: str, topology: dict, namespaces: Namespaces, workdir: Path, python: str) -> Lab:
    """Three namespaces joined by veth pairs; the router gets the topology from ghostwarden_apply."""
    base = f"gwp-{run_id}-{name}"
    lab = Lab(name, namespaces.create(f"{base}-c"), namespaces.create(f"{base}-r"), namespaces.create(f"{base}-s"),
              len(topology["networks"]), sum(len(net["forwards"]) for net in topology["networks"].values()))
    # client <-> router (the uplink): made inside the router, its peer moved into the client at once
    in_ns(lab.router, "ip", "link", "add", UPLINK, "type", "veth", "peer", "name", "eth0", "netns", lab.client)
    in_ns(lab.router, "ip", "addr", "add", f"{ROUTER_UPLINK_IP}/{UPLINK_PREFIX}", "dev", UPLINK)
    in_ns(lab.router, "ip", "link", "set", UPLINK, "up")
    in_ns(lab.client, "ip", "addr", "add", f"{CLIENT_IP}/{UPLINK_PREFIX}", "dev", "eth0")
    in_ns(lab.client, "ip", "link", "set", "eth0", "up")
    in_ns(lab.client, "ip", "route", "add", "default", "via", ROUTER_UPLINK_IP)
    # wide enough that a port comes back only after its conntrack entry (CLOSE after the RST, 10 s) expired
    in_ns(lab.client, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535")
    lab.apply_s = run_module(topology, lab.router, workdir, python)
    lab.product = in_ns(lab.router, "nft", "list", "ruleset").stdout
    # the server: a veth whose router end is a port of the network's bridge
    in_ns(lab.router, "ip", "link", "add", SERVER_PORT_IN_BRIDGE, "type", "veth", "peer", "name", "eth0",
          "netns", lab.server)
    in_ns(lab.router, "ip", "link", "set", SERVER_PORT_IN_BRIDGE, "master", SERVER_BRIDGE, "up")
    in_ns(lab.server, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", "eth0")
    in_ns(lab.server, "ip", "link", "set", "eth0", "up")
    in_ns(lab.server, "ip", "route", "add", "default", "via", SERVER_GW)
    start_servers(lab, namespaces)
    return lab


def activate(variant: Variant) -> None:
    """Load the variant's ruleset in its lab's router (all other rulesets gone), unless it is loaded."""
    lab = variant.lab
    if lab.active != variant.name:
        in_ns(lab.router, "nft", "-f", str(variant.file))
        lab.active = variant.name
        time.sleep(0.2)


def start_servers(lab: Lab, namespaces: Namespaces) -> None:
    namespaces.spawn(lab.server, "iperf3", "-s", "-p", str(IPERF_PORT))
    server = namespaces.spawn(lab.server, sys.executable, "-c", CONNECT_SERVER, str(CONNECT_PORT), str(WHOAMI_PORT))
    line = server.stdout.readline() if server.stdout else ""
    if line.strip() != "ready":
        raise BenchError(f"{lab.name}: the connection server did not start: {line!r}")


def whoami(lab: Lab, address: str, port: int, timeout: float = 2.0) -> str:
    """What the server saw as our address, through ``address:port`` ('' when the connection failed)."""
    result = subprocess.run(["ip", "netns", "exec", lab.client, sys.executable, "-c", TRACE_CLIENT, address,
                             str(port), str(timeout)], capture_output=True, text=True, check=False,
                            timeout=timeout + 10)
    return result.stdout.strip() if result.returncode == 0 else ""


def check_path(variant: Variant) -> None:
    """The forward reaches the server with the client's own address; a product ruleset's profile is in force."""
    deadline = time.monotonic() + 10
    seen = ""
    while time.monotonic() < deadline:  # the iperf3 server may still be starting
        seen = whoami(variant.lab, ROUTER_UPLINK_IP, WHOAMI_PUBLIC_PORT)
        if seen:
            break
        time.sleep(0.2)
    if seen != CLIENT_IP:
        raise BenchError(f"{variant.name}: through the forward the server saw {seen or 'nothing'!r}, "
                         f"expected {CLIENT_IP}")
    if variant.product and whoami(variant.lab, SERVER_IP, WHOAMI_PORT, timeout=1.0):
        raise BenchError(f"{variant.name}: port {WHOAMI_PORT} reached the guest directly: the profile is not in force")


# -- measuring -------------------------------------------------------------------------------------


def iperf(variant: Variant, seconds: float) -> dict:
    """One ``iperf3 -c`` through the forward: received bits/s, retransmits, CPU (a busy server is retried)."""
    argv = ["ip", "netns", "exec", variant.lab.client, "iperf3", "-c", ROUTER_UPLINK_IP, "-p", str(IPERF_PORT),
            "-t", f"{seconds:g}", "-J"]
    report: dict = {}
    for _attempt in range(5):
        completed = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
        try:
            report = json.loads(completed.stdout)
        except ValueError:
            report = {"error": completed.stderr.strip() or "no JSON"}
        if "error" not in report:
            return iperf_figures(report)
        if "busy" not in str(report["error"]):
            break
        time.sleep(1)
    raise BenchError(f"{variant.name}: iperf3 failed: {report.get('error')}")


def iperf_figures(report: dict) -> dict:
    """From ``iperf3 -J``: bits/s received, retransmits, and CPU seconds (sender + receiver process) per GB."""
    end = report["end"]
    received = end["sum_received"]
    cpu = end.get("cpu_utilization_percent", {})
    cpu_seconds = (cpu.get("host_total", 0.0) + cpu.get("remote_total", 0.0)) / 100 * received["seconds"]
    gigabytes = received["bytes"] / 1e9
    return {"bits_per_second": received["bits_per_second"], "retransmits": end["sum_sent"].get("retransmits") or 0,
            "cpu_s_per_gb": cpu_seconds / gigabytes if gigabytes else float("nan")}


def connect_rate(variant: Variant, seconds: float, limit: int) -> dict:
    """Connections per second through the forward, and the client's CPU per connection."""
    completed = subprocess.run(["ip", "netns", "exec", variant.lab.client, sys.executable, "-c", CONNECT_CLIENT,
                                ROUTER_UPLINK_IP, str(CONNECT_PUBLIC_PORT), f"{seconds:g}", str(limit)],
                               capture_output=True, text=True, check=False, timeout=seconds + 60)
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise BenchError(f"{variant.name}: the connection client failed: {completed.stderr.strip()[-2000:]}") \
            from None
    if not result["connections"]:
        raise BenchError(f"{variant.name}: no connection was made: {result['errors']}")
    result["per_second"] = result["connections"] / result["seconds"]
    result["cpu_us_per_connection"] = result["cpu_seconds"] / result["connections"] * 1e6
    return result


def alternate(lab: Lab, variants: Sequence[Variant], seconds: float, block: int) -> list[list[list[float]]]:
    """Cycles of blocks in ``lab`` (see :data:`ALTERNATING_CLIENT`), each variant's ruleset loaded before its
    block: per cycle, per variant [CPU s per connection, wall s per connection, failed connections]."""
    completed = subprocess.run(["ip", "netns", "exec", lab.client, sys.executable, "-c", ALTERNATING_CLIENT,
                                ROUTER_UPLINK_IP, str(CONNECT_PUBLIC_PORT), f"{seconds:g}", str(block), lab.router,
                                *(str(variant.file) for variant in variants)],
                               capture_output=True, text=True, check=False, timeout=seconds + 300)
    lab.active = ""  # whichever the last block loaded
    try:
        return json.loads(completed.stdout)
    except ValueError:
        raise BenchError(f"the alternating client failed: {completed.stderr.strip()[-2000:]}") from None


def paired_differences(cycles: Sequence[Sequence[Sequence[float]]], index: int, base: int) -> list[float]:
    """Per cycle: CPU microseconds per connection of variant ``index`` minus those of ``base``."""
    return [(cycle[index][0] - cycle[base][0]) * 1e6 for cycle in cycles]


def mean_and_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error."""
    if len(values) < 2:
        return (values[0] if values else float("nan")), float("nan")
    return statistics.mean(values), statistics.stdev(values) / len(values) ** 0.5


def load_average() -> list[float]:
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_ticks() -> dict[str, int]:
    """The machine's CPU time so far (/proc/stat, ticks): how busy it was, and how much the hypervisor took."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {name: int(value) for name, value in zip(names, fields)}


# -- tracing ---------------------------------------------------------------------------------------

TRACE_TABLE = "inet gwbench_trace"


def trace_script() -> str:
    """A separate table whose chain, before conntrack (-400), marks the traced connections' packets."""
    return (
        f"table {TRACE_TABLE} {{\n"
        "\tchain prerouting {\n"
        "\t\ttype filter hook prerouting priority -400; policy accept;\n"
        f"\t\tip saddr {CLIENT_IP} tcp dport {{ {CONNECT_PORT}, {WHOAMI_PUBLIC_PORT} }} meta nftrace set 1\n"
        f"\t\tip saddr {SERVER_IP} tcp sport {{ {CONNECT_PORT}, {WHOAMI_PORT} }} meta nftrace set 1\n"
        f"\t\tip saddr {CLIENT_IP} udp dport {PROBE_PORT} meta nftrace set 1\n"
        "\t}\n"
        "}\n"
    )


def classify(packets: Sequence[TracedPacket]) -> dict[str, dict[str, TracedPacket]]:
    """path (``dnat``, ``routed``) -> {``new``, ``reply``, ``established``} -> the first such traced packet."""
    found: dict[str, dict[str, TracedPacket]] = {"dnat": {}, "routed": {}}
    for packet in packets:
        saddr, daddr = _field(packet.packet, "ip saddr"), _field(packet.packet, "ip daddr")
        sport, dport = _field(packet.packet, "tcp sport"), _field(packet.packet, "tcp dport")
        flags = tcp_flags(packet.packet)
        if saddr == CLIENT_IP:
            path = "dnat" if daddr == ROUTER_UPLINK_IP and dport == str(WHOAMI_PUBLIC_PORT) else \
                "routed" if daddr == SERVER_IP and dport == str(CONNECT_PORT) else ""
            kind = "new" if flags == "syn" else "established" if flags == "ack" else ""
        elif saddr == SERVER_IP:
            path = "dnat" if sport == str(WHOAMI_PORT) else "routed" if sport == str(CONNECT_PORT) else ""
            kind = "reply" if flags in ("0x12", "syn|ack") else ""
        else:
            continue
        if path and kind and kind not in found[path]:
            found[path][kind] = packet
    return found


# Sends one UDP datagram to the router's discard port: a marked packet that tells whether the monitor listens.
PROBE_CLIENT = r"""
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"probe", (sys.argv[1], int(sys.argv[2])))
"""


def traced(lab: Lab, address: str, port: int) -> tuple[str, str]:
    """``nft -a monitor trace`` output of one connection to ``address:port`` (a monitor of its own, so that
    the packets of two connections cannot be confused), and what the connection read.

    nft lists the whole ruleset before it reports events (seconds for 1,000 networks), so probe
    datagrams are sent until the monitor shows one; only then is the connection made.
    """
    monitor = subprocess.Popen(["ip", "netns", "exec", lab.router, "nft", "-a", "monitor", "trace"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(monitor.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not lines:
            if time.monotonic() > deadline or monitor.poll() is not None:
                raise BenchError(f"{lab.name}: nft monitor trace showed no probe within 120 s")
            subprocess.run(["ip", "netns", "exec", lab.client, sys.executable, "-c", PROBE_CLIENT, ROUTER_UPLINK_IP,
                            str(PROBE_PORT)], capture_output=True, check=False, timeout=60)
            time.sleep(0.3)
        connection = subprocess.run(["ip", "netns", "exec", lab.client, sys.executable, "-c", TRACE_CLIENT, address,
                                     str(port), "2"], capture_output=True, text=True, check=False, timeout=30)
        time.sleep(0.5)
    finally:
        stop_monitor(monitor)
        reader.join(timeout=15)
    if connection.returncode != 0:
        raise BenchError(f"{lab.name}: the traced connection to {address}:{port} failed: "
                         f"{connection.stderr.strip()[-500:]}")
    return "".join(lines), connection.stdout.strip()


def stop_monitor(monitor: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL when that is not enough (nft can wait minutes for the RTNL lock)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(monitor.pid, signum)
        except ProcessLookupError:
            pass
        try:
            monitor.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue
    raise BenchError("nft monitor trace did not stop (stuck in the kernel); the namespace's deletion ends it")


def trace_variant(variant: Variant) -> dict:
    """Rules a packet meets in the router: a forwarded (DNAT) connection and a routed one, per packet kind."""
    lab = variant.lab
    activate(variant)
    in_ns(lab.router, "nft", "-f", "-", stdin=trace_script())
    try:
        chains = rule_handles(json.loads(in_ns(lab.router, "nft", "-a", "-j", "list", "ruleset").stdout))
        dnat, seen = traced(lab, ROUTER_UPLINK_IP, WHOAMI_PUBLIC_PORT)
        if seen != CLIENT_IP:
            raise BenchError(f"{variant.name}: the traced connection through the forward read {seen!r}")
        routed, _seen = traced(lab, SERVER_IP, CONNECT_PORT)
    finally:
        in_ns(lab.router, "nft", "delete", "table", *TRACE_TABLE.split())
    found = classify([*parse_trace(dnat), *parse_trace(routed)])
    result: dict = {}
    for path, kinds in found.items():
        for kind in ("new", "reply", "established"):
            packet = kinds.get(kind)
            result[f"{path}.{kind}"] = None if packet is None else \
                summarise_counts(count_rules(packet, chains, skip_tables=(TRACE_TABLE,)))
    missing = [key for key, value in result.items() if value is None]
    if missing:
        raise BenchError(f"{variant.name}: the trace shows no {', '.join(missing)} packet:\n{dnat[-2000:]}\n"
                         f"{routed[-2000:]}")
    return result


def ruleset_stats(variant: Variant) -> dict:
    """Rules and (base) chains of the variant's ruleset as loaded, and the elements of its sets and maps."""
    activate(variant)
    listing = json.loads(in_ns(variant.lab.router, "nft", "-j", "list", "ruleset").stdout)
    stats: dict = {"rules": 0, "base_chains": 0, "chains": 0, "elements": {}}
    for item in listing.get("nftables", []):
        if "rule" in item:
            stats["rules"] += 1
        elif "chain" in item:
            stats["chains"] += 1
            stats["base_chains"] += "hook" in item["chain"]
        elif "set" in item or "map" in item:
            entry = item.get("set") or item.get("map")
            stats["elements"][entry["name"]] = len(entry.get("elem", []))
    return stats


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Samples:
    throughput: list[float] = field(default_factory=list)  # bits/s
    iperf_cpu: list[float] = field(default_factory=list)  # CPU s (sender + receiver) per GB
    retransmits: list[int] = field(default_factory=list)
    connections: list[float] = field(default_factory=list)  # per second
    connect_cpu: list[float] = field(default_factory=list)  # client CPU microseconds per connection
    failed_connections: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # 1-minute load average when the sample started


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of the per-round ratios (the samples of one round were taken one after the other)."""
    ratios = [top / bottom for top, bottom in zip(numerator, denominator) if bottom]
    return statistics.median(ratios) if ratios else float("nan")


def verdict(ratio: float) -> str:
    return "met" if ratio >= TARGET_RATIO else "NOT met"


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 0) -> str:
    return f"{min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f}" if values else "-"


def ratios(samples: dict[str, Samples], top: str, bottom: str) -> dict:
    """top/bottom for both figures: of the medians, of the rounds (paired), and of the CPU costs (bottom/top)."""
    first, second = samples[top], samples[bottom]
    return {
        "throughput": median(first.throughput) / median(second.throughput),
        "throughput_paired": paired_ratio(first.throughput, second.throughput),
        "throughput_cpu": median(second.iperf_cpu) / median(first.iperf_cpu),
        "connections": median(first.connections) / median(second.connections),
        "connections_paired": paired_ratio(first.connections, second.connections),
        "connections_cpu": median(second.connect_cpu) / median(first.connect_cpu),
    }


def print_table(variants: Sequence[Variant], samples: dict[str, Samples], stats: dict[str, dict]) -> None:
    print(f"\n{'variant':<14} {'nets':>5} {'fwds':>6} {'rules':>6} {'hooks':>5} | {'Gbit/s':>6} {'min-max':>11} "
          f"{'CPU s/GB':>8} {'retr':>5} | {'conn/s':>6} {'min-max':>11} {'CPU us/conn':>11}")
    for variant in variants:
        item, lab = samples[variant.name], variant.lab
        print(f"{variant.name:<14} {lab.networks:>5} {lab.forwards:>6} {stats[variant.name]['rules']:>6} "
              f"{stats[variant.name]['base_chains']:>5} | {median(item.throughput) / 1e9:>6.2f} "
              f"{spread(item.throughput, 1e-9, 2):>11} {median(item.iperf_cpu):>8.3f} "
              f"{median(item.retransmits):>5.0f} | {median(item.connections):>6.0f} {spread(item.connections):>11} "
              f"{median(item.connect_cpu):>11.1f}")


def print_ratios(samples: dict[str, Samples], extras: Sequence[str], networks: int) -> dict:
    found = {}
    print(f"\nratios, target >= {TARGET_RATIO:.0%}: of the medians [median of the per-round ratios] "
          "{of the CPU costs, the other way round: what the figure would be on an idle machine}")
    pairs = [("many", "one", f"{networks}/1"), ("one", "floor", "1/floor")]
    pairs.extend((name, base, f"{name}/{base}") for name in extras for base in ("floor", "one"))
    for top, bottom, label in pairs:
        if top not in samples or bottom not in samples:
            continue
        item = found[f"{top}/{bottom}"] = ratios(samples, top, bottom)
        targeted = top in ("many", "one") and bottom in ("one", "floor")
        print(f"  {label:<22} throughput {item['throughput']:6.1%} [{item['throughput_paired']:6.1%}] "
              f"{{{item['throughput_cpu']:6.1%}}} {verdict(item['throughput']) if targeted else '':<8}"
              f"  new connections {item['connections']:6.1%} [{item['connections_paired']:6.1%}] "
              f"{{{item['connections_cpu']:6.1%}}} {verdict(item['connections']) if targeted else ''}")
    return found


def alternation_report(variants: Sequence[Variant], cycles: Sequence, block: int) -> dict:
    """Per variant: CPU per connection, its paired difference from the floor, the implied rate ratio."""
    names = [variant.name for variant in variants]
    base = names.index("floor") if "floor" in names else 0
    base_cpu = median([cycle[base][0] * 1e6 for cycle in cycles])
    print(f"\nattribution: {len(cycles)} cycles of one block of {block} connections per variant, in a new random "
          "order every cycle, each block after its ruleset was loaded; client CPU (thread time, which here "
          "includes the softirq work of the whole path) per connection; difference from the "
          f"{names[base]} block of the same cycle:")
    print(f"  {'variant':<16} {'CPU us/conn':>11} {'diff us':>8} {'+-':>5} {'median diff':>11} {'rate ratio':>10} "
          f"{'wall us/conn':>12}")
    report = {}
    for index, name in enumerate(names):
        cpu = [cycle[index][0] * 1e6 for cycle in cycles]
        diffs = paired_differences(cycles, index, base)
        mean, error = mean_and_error(diffs)
        implied = base_cpu / (base_cpu + mean) if base_cpu + mean else float("nan")
        report[name] = {"cpu_us_per_connection": cpu,
                        "wall_us_per_connection": [cycle[index][1] * 1e6 for cycle in cycles],
                        "failed": sum(cycle[index][2] for cycle in cycles), "diff_us_mean": mean,
                        "diff_us_standard_error": error, "diff_us_median": median(diffs),
                        "implied_rate_ratio": implied}
        print(f"  {name:<16} {median(cpu):>11.2f} {mean:>+8.2f} {error:>5.2f} {median(diffs):>+11.2f} "
              f"{implied:>10.1%} {median(report[name]['wall_us_per_connection']):>12.1f}")
    return {"block": block, "cycles": len(cycles), "base": names[base], "variants": report}


def print_traces(variants: Sequence[Variant], traces: dict[str, dict]) -> None:
    print("\nrules a packet meets in the router (nft monitor trace; chain:rules evaluated/rules in the chain; "
          "hooks: base chains entered):")
    for key, label in (("dnat.new", "forwarded, first packet (SYN)"), ("dnat.reply", "forwarded, reply (SYN-ACK)"),
                       ("dnat.established", "forwarded, established (ACK)"),
                       ("routed.new", "routed to the guest without DNAT, first packet (SYN to port 80)")):
        print(f"  {label}")
        for variant in variants:
            entry = traces.get(variant.name, {}).get(key)
            if entry is None:
                print(f"    {variant.name:<14} (no trace: {traces.get(variant.name, {}).get('error', 'not run')})")
                continue
            print(f"    {variant.name:<14} hooks {entry['chains']}  rules {entry['rules_evaluated']:>2}  "
                  f"{entry['path']}")


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each iperf3 and connection run")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; every variant is measured once per round")
    parser.add_argument("--networks", type=int, default=1000, help="networks of the large variant (0: none)")
    parser.add_argument("--forwards-per-network", type=int, default=10, help="forwards of every network (>= 3)")
    parser.add_argument("--max-connections", type=int, default=200000,
                        help="bound on the connections of one connection run")
    parser.add_argument("--ruleset-variant", action="append", type=ruleset_variant_arg, default=[],
                        metavar="NAME=FILE", help="also measure the 1-network lab with its ruleset replaced by the "
                        "nft script FILE (repeatable; see --write-rulesets)")
    parser.add_argument("--attribute", action="store_true",
                        help="also measure the built-in edits of the 1-network ruleset: "
                        f"{', '.join(ATTRIBUTION_EDITS)}")
    parser.add_argument("--alternate-seconds", type=float, default=90.0,
                        help="length of the attribution phase on the 1-network lab (0: none)")
    parser.add_argument("--block", type=int, default=300, help="connections per block in the attribution phase")
    parser.add_argument("--write-rulesets", type=Path, metavar="DIR",
                        help="write the rendered 1-network ruleset, the floor and the built-in edits to DIR and exit")
    parser.add_argument("--no-trace", action="store_true", help="skip the nft monitor trace")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure to FILE as JSON")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="interpreter the module runs with")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1 or args.networks < 0 or args.block < 10 or args.alternate_seconds < 0:
        parser.error("--seconds must be > 0, --repeat >= 1, --networks >= 0, --block >= 10, --alternate-seconds >= 0")
    try:
        make_topology(max(args.networks, 1), args.forwards_per_network)
    except ValueError as error:
        parser.error(str(error))
    return args


def small_variants(args: argparse.Namespace) -> list[tuple[str, str, str | None]]:
    """(name, description, ruleset script; None: the module's own) of the variants on the 1-network lab."""
    one = compile_topology(make_topology(1, args.forwards_per_network)).ruleset
    plan: list[tuple[str, str, str | None]] = [
        ("floor", "no owned table; hand-written NAT only: table ip, 3 DNAT rules on ip daddr . tcp dport, "
                  "1 masquerade rule, no filter chain", floor_ruleset()),
        ("one", f"1 network, {args.forwards_per_network} forwards, profile {PROFILE}, as the module applied it",
         None),
    ]
    if args.attribute:
        plan.extend((name, f"edit of one: {text}", edit(one)) for name, (text, edit) in ATTRIBUTION_EDITS.items())
    plan.extend((name, f"one's lab, ruleset from {path}", path.read_text()) for name, path in args.ruleset_variant)
    names = [name for name, *_rest in plan] + ["many"]
    if len(set(names)) != len(names):
        raise BenchError(f"variant names must differ: {names}")
    return plan


def write_rulesets(directory: Path, args: argparse.Namespace) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    one = compile_topology(make_topology(1, args.forwards_per_network)).ruleset
    (directory / "one.nft").write_text(one)
    (directory / "floor.nft").write_text(floor_ruleset())
    for name, (_text, edit) in ATTRIBUTION_EDITS.items():
        (directory / f"{name}.nft").write_text(edit(one))
    print(f"wrote {directory}/one.nft (as rendered), floor.nft and {len(ATTRIBUTION_EDITS)} edits; measure one "
          "with --ruleset-variant NAME=FILE")


@dataclass
class Run:
    """Everything one run measured so far (written as JSON also when the run stops half-way)."""

    args: argparse.Namespace
    machine: dict
    argv: list[str] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    samples: dict[str, Samples] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)
    attribution: dict = field(default_factory=dict)
    traces: dict[str, dict] = field(default_factory=dict)
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    ticks: dict[str, int] = field(default_factory=cpu_ticks)

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"


def setup(run: Run, namespaces: Namespaces, workdir: Path, plan: Sequence[tuple[str, str, str | None]]) -> None:
    """A lab per variant: switching rulesets between samples would put nft transactions (which can wait
    seconds for the RTNL lock or an RCU grace period on a busy machine) between the measurements."""
    args = run.args
    run_id = secrets.token_hex(2)
    entries: list[tuple[str, str, int, str | None]] = [(name, description, 1, script) for name, description, script
                                                       in plan]
    if args.networks:
        entries.insert(2, ("many", f"{args.networks} networks, {args.networks * args.forwards_per_network} forwards, "
                           f"profile {PROFILE} on every one, as the module applied it", args.networks, None))
    topologies: dict[int, dict] = {}
    for name, description, networks, script in entries:
        if networks not in topologies:
            topologies[networks] = make_topology(networks, args.forwards_per_network)
        lab = build_lab(run_id, name, topologies[networks], namespaces, workdir, args.python)
        variant = Variant(name, description, lab, lab.product if script is None else script, script is None,
                          workdir / f"ruleset-{name}.nft")
        variant.file.write_text(f"flush ruleset\n{variant.script}")
        in_ns(lab.router, "nft", "-c", "-f", str(variant.file))
        lab.active = name if script is None else ""
        run.stats[name] = ruleset_stats(variant)  # loads the variant's ruleset
        check_path(variant)
        run.variants.append(variant)
        run.samples[name] = Samples()
        print(f"  lab {name}: {networks} network{'s' * (networks != 1)} applied in {lab.apply_s:.1f} s "
              f"({run.elapsed()})", file=sys.stderr, flush=True)


def measure_rounds(run: Run) -> None:
    args = run.args
    for round_index in range(args.repeat):
        shift = round_index % len(run.variants)
        for variant in run.variants[shift:] + run.variants[:shift]:
            activate(variant)
            item = run.samples[variant.name]
            item.load.append(load_average()[0])
            measured = iperf(variant, args.seconds)
            item.throughput.append(measured["bits_per_second"])
            item.iperf_cpu.append(measured["cpu_s_per_gb"])
            item.retransmits.append(measured["retransmits"])
            measured = connect_rate(variant, args.seconds, args.max_connections)
            item.connections.append(measured["per_second"])
            item.connect_cpu.append(measured["cpu_us_per_connection"])
            item.failed_connections.append(measured["failed"])
        print(f"  round {round_index + 1}/{args.repeat} ({run.elapsed()})", file=sys.stderr, flush=True)
    print(f"\npath: client {CLIENT_IP} -> {ROUTER_UPLINK_IP}:{CONNECT_PUBLIC_PORT} (iperf3 :{IPERF_PORT}) DNAT -> "
          f"{SERVER_IP} on {SERVER_BRIDGE} (network {SERVER_NETWORK}, profile {PROFILE}, masquerade to {UPLINK}); "
          f"{args.repeat} rounds of {args.seconds:g} s per figure, the variants interleaved (the order rotating); "
          "medians")
    for variant in run.variants:
        print(f"  {variant.name:<14} {variant.description}")
    print_table(run.variants, run.samples, run.stats)
    failed = {name: sum(item.failed_connections) for name, item in run.samples.items() if sum(item.failed_connections)}
    if failed:
        print(f"failed connections (not counted): {failed}")
    extras = [variant.name for variant in run.variants if variant.name not in ("floor", "one", "many")]
    run.ratios = print_ratios(run.samples, extras, args.networks)


def trace_all(run: Run) -> None:
    for variant in run.variants:
        try:
            run.traces[variant.name] = trace_variant(variant)
        except (BenchError, subprocess.TimeoutExpired) as error:
            run.traces[variant.name] = {"error": str(error)}
            print(f"  trace of {variant.name} failed: {error}", file=sys.stderr)
    print_traces(run.variants, run.traces)


def finish(run: Run) -> None:
    """The machine's load during the run, and the JSON file."""
    loads = [value for item in run.samples.values() for value in item.load]
    end_ticks = cpu_ticks()
    busy = {name: end_ticks[name] - run.ticks[name] for name in run.ticks}
    total = sum(busy.values()) or 1
    end_load = load_average()
    if loads:
        print(f"\nload average {min(loads):.2f}-{max(loads):.2f} during the samples, "
              f"{' '.join(f'{value:.2f}' for value in end_load)} at the end; the machine's CPU time during the run: "
              f"idle {busy['idle'] / total:.0%}, steal {busy['steal'] / total:.0%}; {run.elapsed()}")
    if run.args.json:
        report = json_report(run)
        report["machine"].update(load_average_end=end_load, cpu_ticks_during_run=busy)
        run.args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {run.args.json}" + (" (incomplete: the run failed)" if run.error else ""))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_rulesets:
        write_rulesets(args.write_rulesets, args)
        return 0
    if os.geteuid() != 0:
        print("bench_packet_path: must run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("iperf3") is None:
        print("bench_packet_path: iperf3 is missing; install it with `apt-get install iperf3` "
              "(`make deps` installs it too)", file=sys.stderr)
        return 3
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"bench_packet_path: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    try:
        plan = small_variants(args)
    except BenchError as error:
        print(f"bench_packet_path: {error}", file=sys.stderr)
        return 1
    run = Run(args, machine_info(args.python), list(sys.argv[1:] if argv is None else argv))
    print(f"kernel {run.machine['kernel']}, {run.machine['cpu']} x{run.machine['nproc']}, {run.machine['nft']}, "
          f"{run.machine['iperf3']}, Python {run.machine['python']}, commit {run.machine['commit']}")
    print(f"load average at the start: {' '.join(f'{value:.2f}' for value in run.machine['load_average'])} "
          "(a shared machine moves every figure; the CPU-cost columns move less)")
    namespaces = Namespaces()
    with terminate_cleanly(), tempfile.TemporaryDirectory(prefix="gwp-") as tmp:
        try:
            setup(run, namespaces, Path(tmp), plan)
            measure_rounds(run)
            if not args.no_trace:
                trace_all(run)
            # last: it leaves the 1-network lab with whichever ruleset its last block loaded
            on_small = [variant for variant in run.variants if variant.lab.networks == 1]
            if args.alternate_seconds and len(on_small) > 1:
                lab = next(variant.lab for variant in on_small if variant.name == "one")
                cycles = alternate(lab, on_small, args.alternate_seconds, args.block)
                run.attribution = alternation_report(on_small, cycles, args.block)
        except (BenchError, subprocess.TimeoutExpired) as error:
            run.error = str(error)
            print(f"bench_packet_path: {error}", file=sys.stderr)
        finally:
            count = len(namespaces.names)
            namespaces.delete_all()
            print(f"deleted {count} namespaces (the kernel tears large ones down in the background)",
                  file=sys.stderr)
            finish(run)
    return 1 if run.error else 0


def machine_info(python: str) -> dict:
    def first_line(argv: Sequence[str]) -> str:
        try:
            lines = subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.splitlines()
        except OSError:
            return ""
        return lines[0] if lines else ""

    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "nproc": len(os.sched_getaffinity(0)),
        "iperf3": first_line(["iperf3", "--version"]),
        "nft": first_line(["nft", "--version"]),
        "python": platform.python_version(),
        "module_python": first_line([python, "--version"]),
        "commit": first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
        "load_average": load_average(),
    }


def json_report(run: Run) -> dict:
    args = run.args
    variants = {}
    for variant in run.variants:
        item, lab = run.samples.get(variant.name, Samples()), variant.lab
        variants[variant.name] = {
            "description": variant.description,
            "lab": lab.name,
            "networks": lab.networks,
            "forwards": lab.forwards,
            "product_ruleset": variant.product,
            "module_apply_s": round(lab.apply_s, 3),
            "ruleset": run.stats.get(variant.name),
            "throughput_bps": item.throughput,
            "throughput_bps_median": median(item.throughput),
            "iperf_cpu_s_per_gb": item.iperf_cpu,
            "retransmits": item.retransmits,
            "connections_per_s": item.connections,
            "connections_per_s_median": median(item.connections),
            "connect_cpu_us_per_connection": item.connect_cpu,
            "failed_connections": item.failed_connections,
            "load_average_1m": item.load,
            "trace": run.traces.get(variant.name),
        }
    return {
        "benchmark": "packet_path",
        "issue": "12.5",
        "command": shlex.join(["bench/bench_packet_path.py", *run.argv]),
        "error": run.error or None,
        "machine": run.machine,
        "options": {"seconds": args.seconds, "repeat": args.repeat, "networks": args.networks,
                    "forwards_per_network": args.forwards_per_network, "max_connections": args.max_connections,
                    "alternate_seconds": args.alternate_seconds, "block": args.block},
        "path": {"client": CLIENT_IP, "public": f"{ROUTER_UPLINK_IP}:{CONNECT_PUBLIC_PORT}",
                 "server": f"{SERVER_IP}:{CONNECT_PORT}", "iperf3": f"{ROUTER_UPLINK_IP}:{IPERF_PORT}",
                 "network": SERVER_NETWORK, "profile": PROFILE},
        "target_ratio": TARGET_RATIO,
        "ratios": run.ratios,
        "variants": variants,
        "attribution": run.attribution,
        "elapsed_s": round(time.monotonic() - run.started, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
