# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure helpers of bench/bench_packet_path.py: topology, hand-written rulesets, edits, trace parsing, statistics."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology

ROOT = Path(__file__).resolve().parents[3]
_SPEC = importlib.util.spec_from_file_location("bench_packet_path", ROOT / "bench" / "bench_packet_path.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("bench_packet_path", bench)
_SPEC.loader.exec_module(bench)


@pytest.fixture(scope="module")
def one() -> str:
    return compile_topology(bench.make_topology(1, 10)).ruleset


# -- topology ---------------------------------------------------------------------------------------


def test_topology_sizes_and_distinct_ports():
    topology = bench.make_topology(3, 10)
    networks = topology["networks"]
    assert sorted(networks) == ["net00000", "net00001", "net00002"]
    publics = [forward["public"] for network in networks.values() for forward in network["forwards"]]
    assert len(publics) == 30 and len(set(publics)) == 30
    assert all(network["policy_profile"] == bench.PROFILE for network in networks.values())
    assert networks["net00001"]["cidr"] == "10.0.1.0/24"
    assert networks["net00000"]["forwards"][:3] == [
        {"public": "0.0.0.0:5201/tcp", "dst": "10.0.0.10:5201"},
        {"public": "0.0.0.0:8080/tcp", "dst": "10.0.0.10:80"},
        {"public": "0.0.0.0:8081/tcp", "dst": "10.0.0.10:81"},
    ]


def test_topology_256_networks_use_the_second_octet():
    assert bench.network_prefix(256) == "10.1.0"
    assert bench.make_topology(257, 3)["networks"]["net00256"]["gw_ip"] == "10.1.0.1"


@pytest.mark.parametrize("networks, forwards", [(1, 2), (5000, 10)])
def test_topology_refuses_what_does_not_fit(networks, forwards):
    with pytest.raises(ValueError):
        bench.make_topology(networks, forwards)


def test_rendered_profile_has_chains_in_every_direction(one):
    blocks = bench.chain_blocks(one)
    assert {"net_net00000_ingress", "net_net00000_egress", "net_net00000_host"} <= set(blocks)
    assert {"input", "forward", "prerouting", "output", "postrouting"} <= set(blocks)
    assert bench.set_elements(one, "masq4") == ['10.0.0.0/24 . "up0"']
    assert "tcp . 8080 : 10.0.0.10 . 80" in bench.set_elements(one, "fwd4")
    assert len(bench.set_elements(one, "fwd4")) == 10


def test_floor_has_nat_only():
    floor = bench.floor_ruleset()
    assert floor.startswith("table ip gwbench_floor {")
    assert "filter" not in floor and "fib" not in floor and "@" not in floor
    assert floor.count(" dnat to ") == 3 and floor.count("masquerade") == 1


# -- edits --------------------------------------------------------------------------------------------


def test_drop_chains_and_rules(one):
    edited = bench.drop_chains(one, ["input", "forward"])
    assert "chain input" not in edited and "chain forward" not in edited and "chain prerouting {" in edited
    assert "\n\n\n" not in edited
    with pytest.raises(ValueError):
        bench.drop_chains(one, ["nowhere"])
    assert bench.chain_rules(one, "postrouting") == ["ct status dnat ip saddr . ip daddr @hairpin4 masquerade",
                                                     "ip saddr . oifname @masq4 masquerade"]


def test_edit_and_insert_rules(one):
    edited = bench.edit_rules(one, "postrouting", {"ip saddr . oifname @masq4 masquerade": None})
    assert bench.chain_rules(edited, "postrouting") == ["ct status dnat ip saddr . ip daddr @hairpin4 masquerade"]
    with pytest.raises(ValueError):
        bench.edit_rules(one, "prerouting", {"no such rule": None})
    inserted = bench.insert_rules(one, "forward", ["counter"])
    assert bench.chain_rules(inserted, "forward")[0] == "counter"
    assert "\t\tcounter\n" in inserted


def test_every_edit_changes_the_ruleset(one):
    texts = {name: edit(one) for name, (_text, edit) in bench.ATTRIBUTION_EDITS.items()}
    assert all(text != one for text in texts.values())
    assert len(set(texts.values())) == len(texts)
    assert "fib" not in bench.chain_rules(texts["one-nofib"], "prerouting")[0]
    assert "table inet gwbench_floor" in texts["floor-inet"] and "dnat ip to" in texts["floor-inet"]
    assert "chain postrouting" not in texts["one-floornat"].split("table ip gwbench_floor")[0]


def test_snat_guard(one):
    guarded = bench.snat_guard(one)
    assert bench.chain_rules(guarded, "postrouting")[0] == "ip saddr != @snat_src4 accept"
    assert bench.set_elements(guarded, "snat_src4") == ["10.0.0.0/24"]
    assert guarded.index("set snat_src4 {") < guarded.index("\tchain input {")


# -- trace ----------------------------------------------------------------------------------------------

def _packet(iif: str, saddr: str, daddr: str, ip_id: int, length: int, sport: int, dport: int, flags: str,
            window: int) -> str:
    return (f'packet: iif "{iif}" ip saddr {saddr} ip daddr {daddr} ip id {ip_id} ip length {length} '
            f"tcp sport {sport} tcp dport {dport} tcp flags == {flags} tcp window {window}")


def _lines(*events: tuple[str, str, str, str]) -> str:
    return "".join(f"trace id {trace_id} inet {table} {chain} {what}\n" for trace_id, table, chain, what in events)


_GW, _T = "ghostwarden", "gwbench_trace"
_SYN_IN = _packet("up0", "198.51.100.2", "198.51.100.1", 48130, 60, 62040, 8081, "syn", 64240)
_SYN_FWD = _packet("up0", "198.51.100.2", "10.0.0.10", 48130, 60, 62040, 81, "syn", 64240)
_SYN_ACK = _packet("gw-net00000", "10.0.0.10", "198.51.100.2", 0, 60, 81, 62040, "0x12", 65160)
_ACK_IN = _packet("up0", "198.51.100.2", "198.51.100.1", 48131, 52, 62040, 8081, "ack", 63)
_ACK_FWD = _packet("up0", "198.51.100.2", "10.0.0.10", 48131, 52, 62040, 81, "ack", 63)
_MARK_OUT = "rule ip saddr 198.51.100.2 tcp dport { 80, 8081 } meta nftrace set 1 # handle 3 (verdict continue)"
_MARK_BACK = "rule ip saddr 10.0.0.10 tcp sport { 80, 81 } meta nftrace set 1 # handle 4 (verdict continue)"
_ESTABLISHED = "rule ct state established,related accept # handle 27 (verdict accept)"

# nft -a monitor trace of one forwarded connection in the 1-network lab (packet lines shortened): the SYN,
# the SYN-ACK (a new trace id at the forward hook) and the ACK.
TRACE = _lines(
    ("c71551d2", _T, "prerouting", _SYN_IN),
    ("c71551d2", _T, "prerouting", _MARK_OUT),
    ("c71551d2", _T, "prerouting", "policy accept"),
    ("c71551d2", _GW, "prerouting", _SYN_IN),
    ("c71551d2", _GW, "prerouting",
     "rule fib daddr type local dnat ip to meta l4proto . th dport map @fwd4 # handle 33 (verdict accept)"),
    ("c71551d2", _GW, "forward", _SYN_FWD),
    ("c71551d2", _GW, "forward", "rule ct status dnat accept # handle 28 (verdict accept)"),
    ("c71551d2", _GW, "postrouting", _SYN_FWD),
    ("c71551d2", _GW, "postrouting", "policy accept"),
    ("eea65f66", _T, "prerouting", _SYN_ACK),
    ("eea65f66", _T, "prerouting", _MARK_BACK),
    ("eea65f66", _T, "prerouting", "policy accept"),
    ("00b700b6", _GW, "forward", _SYN_ACK),
    ("00b700b6", _GW, "forward", _ESTABLISHED),
    ("47678f45", _T, "prerouting", _ACK_IN),
    ("47678f45", _T, "prerouting", _MARK_OUT),
    ("47678f45", _T, "prerouting", "policy accept"),
    ("47678f45", _GW, "forward", _ACK_FWD),
    ("47678f45", _GW, "forward", _ESTABLISHED),
)

# A routed SYN to port 80: the forward chain's ingress map jumps to the network's chain, which returns.
_ROUTED = _packet("up0", "198.51.100.2", "10.0.0.10", 7, 60, 4000, 80, "syn", 64240)
ROUTED = _lines(
    ("1", _GW, "prerouting", _ROUTED),
    ("1", _GW, "prerouting", "policy accept"),
    ("1", _GW, "forward", _ROUTED),
    ("1", _GW, "forward", "rule oifname vmap @ingress_chains # handle 32 (verdict jump net_net00000_ingress)"),
    ("1", _GW, "net_net00000_ingress",
     'rule tcp dport { 80, 443 } return comment "http, https" # handle 38 (verdict return)'),
    ("1", _GW, "forward", "policy accept"),
    ("1", _GW, "postrouting", _ROUTED),
    ("1", _GW, "postrouting", "policy accept"),
)

CHAINS = {
    ("inet gwbench_trace", "prerouting"): [3, 4],
    ("inet ghostwarden", "prerouting"): [33],
    ("inet ghostwarden", "forward"): [27, 28, 29, 30, 31, 32],
    ("inet ghostwarden", "postrouting"): [34, 35],
    ("inet ghostwarden", "net_net00000_ingress"): [38, 39, 40, 41],
}


def test_parse_trace_follows_a_packet_across_trace_ids():
    packets = bench.parse_trace(TRACE + "not a trace line\n")
    assert [bench.tcp_flags(packet.packet) for packet in packets] == ["syn", "0x12", "ack"]
    syn_ack = packets[1]
    assert [(table, chain, kind) for table, chain, kind, _text in syn_ack.events] == [
        ("inet gwbench_trace", "prerouting", "packet"), ("inet gwbench_trace", "prerouting", "rule"),
        ("inet gwbench_trace", "prerouting", "policy"), ("inet ghostwarden", "forward", "packet"),
        ("inet ghostwarden", "forward", "rule")]


def test_classify_and_count_a_forwarded_connection():
    found = bench.classify(bench.parse_trace(TRACE))
    assert set(found["dnat"]) == {"new", "reply", "established"} and found["routed"] == {}
    skip = ("inet gwbench_trace",)
    new = bench.summarise_counts(bench.count_rules(found["dnat"]["new"], CHAINS, skip))
    assert new["path"] == "prerouting:1/1 forward:2/6 postrouting:2/2"
    assert (new["chains"], new["rules_evaluated"]) == (3, 5)
    assert new["verdicts"] == ["accept", "accept", "policy accept"]
    reply = bench.summarise_counts(bench.count_rules(found["dnat"]["reply"], CHAINS, skip))
    assert (reply["path"], reply["rules_evaluated"]) == ("forward:1/6", 1)
    established = bench.summarise_counts(bench.count_rules(found["dnat"]["established"], CHAINS, skip))
    assert established["path"] == "forward:1/6"
    with_trace_table = bench.summarise_counts(bench.count_rules(found["dnat"]["new"], CHAINS))
    assert with_trace_table["path"].startswith("prerouting:2/2 prerouting:1/1")


def test_count_a_jump_through_a_verdict_map():
    found = bench.classify(bench.parse_trace(ROUTED))
    counts = bench.summarise_counts(bench.count_rules(found["routed"]["new"], CHAINS))
    assert counts["path"] == "prerouting:1/1 forward:6/6 net_net00000_ingress:1/4 postrouting:2/2"
    assert counts["rules_evaluated"] == 10 and counts["chains"] == 4


def test_rule_handles_from_json_listing():
    listing = {"nftables": [
        {"metainfo": {}},
        {"table": {"family": "ip", "name": "t", "handle": 1}},
        {"chain": {"family": "ip", "table": "t", "name": "empty", "handle": 1}},
        {"chain": {"family": "ip", "table": "t", "name": "c", "handle": 2, "hook": "prerouting"}},
        {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 5, "expr": []}},
        {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 4, "expr": []}},
    ]}
    assert bench.rule_handles(listing) == {("ip t", "empty"): [], ("ip t", "c"): [5, 4]}


# -- figures ----------------------------------------------------------------------------------------------


def test_iperf_figures():
    report = {"end": {"sum_received": {"bits_per_second": 8e9, "bytes": 3e9, "seconds": 3.0},
                      "sum_sent": {"retransmits": 7},
                      "cpu_utilization_percent": {"host_total": 50.0, "remote_total": 30.0}}}
    figures = bench.iperf_figures(report)
    assert figures["bits_per_second"] == 8e9 and figures["retransmits"] == 7
    assert figures["cpu_s_per_gb"] == pytest.approx(0.8 * 3.0 / 3.0)


def test_paired_statistics():
    cycles = [[[50e-6, 0, 0], [52e-6, 0, 0]], [[60e-6, 0, 0], [61e-6, 0, 0]], [[55e-6, 0, 0], [58e-6, 0, 0]]]
    assert bench.paired_differences(cycles, 1, 0) == pytest.approx([2.0, 1.0, 3.0])
    mean, error = bench.mean_and_error([2.0, 1.0, 3.0])
    assert mean == pytest.approx(2.0) and error == pytest.approx(1 / 3 ** 0.5)
    assert bench.paired_ratio([10, 20, 30], [10, 10, 0]) == pytest.approx(1.5)
    samples = {"a": bench.Samples(throughput=[9, 10], iperf_cpu=[1.0, 1.0], connections=[95, 96],
                                  connect_cpu=[52.0, 52.0]),
               "b": bench.Samples(throughput=[10, 10], iperf_cpu=[0.9, 0.9], connections=[100, 100],
                                  connect_cpu=[50.0, 50.0])}
    ratios = bench.ratios(samples, "a", "b")
    assert ratios["throughput"] == pytest.approx(0.95) and ratios["connections"] == pytest.approx(0.955)
    assert ratios["connections_cpu"] == pytest.approx(50 / 52) and ratios["throughput_cpu"] == pytest.approx(0.9)
    assert bench.verdict(0.95) == "met" and bench.verdict(0.9499) == "NOT met"


# -- command line -----------------------------------------------------------------------------------------


def test_arguments(tmp_path):
    args = bench.parse_args([])
    assert (args.seconds, args.repeat, args.networks, args.forwards_per_network) == (3.0, 5, 1000, 10)
    ruleset = tmp_path / "edit.nft"
    ruleset.write_text("table ip t {}\n")
    args = bench.parse_args(["--ruleset-variant", f"mine={ruleset}", "--networks", "0"])
    assert args.ruleset_variant == [("mine", ruleset)]
    for wrong in (["--repeat", "0"], ["--forwards-per-network", "2"], ["--networks", "9000"],
                  ["--ruleset-variant", "Bad Name=x"], ["--ruleset-variant", f"ok={tmp_path / 'missing'}"]):
        with pytest.raises(SystemExit):
            bench.parse_args(wrong)


def test_variant_names_must_differ(tmp_path):
    ruleset = tmp_path / "edit.nft"
    ruleset.write_text("table ip t {}\n")
    with pytest.raises(bench.BenchError):
        bench.small_variants(bench.parse_args(["--ruleset-variant", f"floor={ruleset}"]))
    names = [name for name, *_rest in bench.small_variants(bench.parse_args(["--attribute"]))]
    assert names == ["floor", "one", *bench.ATTRIBUTION_EDITS]


def test_exit_codes_before_any_namespace(monkeypatch, capsys):
    monkeypatch.setattr(bench.os, "geteuid", lambda: 1000)
    assert bench.main([]) == 2
    monkeypatch.setattr(bench.os, "geteuid", lambda: 0)
    monkeypatch.setattr(bench.shutil, "which", lambda tool: None if tool == "iperf3" else f"/usr/bin/{tool}")
    assert bench.main([]) == 3
    assert "apt-get install iperf3" in capsys.readouterr().err


def test_write_rulesets(tmp_path, capsys):
    assert bench.main(["--write-rulesets", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(["one.nft", "floor.nft", *(f"{name}.nft" for name in bench.ATTRIBUTION_EDITS)])
