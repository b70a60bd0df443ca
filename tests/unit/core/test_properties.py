# SPDX-License-Identifier: GPL-3.0-or-later
"""Property-based tests over generated topologies.

Whatever the input, only ValidationError may escape, its message is one line, and
every accepted topology renders deterministically to a ruleset that nft accepts
(``nft -c`` inside a throwaway network namespace, when root).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology, rendered_result
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import render_replace_script, render_ruleset
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.tests.support.netns import lab_netns, requires_netns  # noqa: F401  pylint: disable=unused-import

PROFILES = ["routed-tight", "public-web", "l2-lan", "proxmox-cluster", "proxmox-storage", "proxmox-backup",
            "proxmox-dmz"]

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=20), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


class Chooser:
    """Draws plausible values, or sometimes broken ones when the topology is meant to be broken.

    One topology in three is generated "broken": each of its fields then has a small
    chance to be junk or an invalid-but-plausible value. The others are built from
    valid choices only, so that the rendering properties see many accepted topologies.
    """

    def __init__(self, draw: st.DrawFn, broken: bool) -> None:
        self.draw = draw
        self.broken = broken

    def __call__(self, good: st.SearchStrategy, bad: st.SearchStrategy | None = None):
        if self.broken and self.draw(st.integers(0, 5)) == 0:
            return self.draw(st.one_of(junk, bad) if bad is not None else junk)
        return self.draw(good)


good_ports = st.integers(1, 65535)
bad_ports = st.sampled_from([0, -1, 65536, 70000])
iface_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,12}\Z")
bad_iface_names = st.sampled_from(["a" * 16, "bad name", "x;y", "", "lo", "eth0/1", 'q"uote'])


def forward(pick: Chooser, index: int, v6: bool) -> dict:
    host = pick.draw(st.integers(2, 254))
    proto = pick(st.sampled_from(["tcp", "udp", "sctp"]), st.sampled_from(["icmp", "gre", "TCP"]))
    if v6 and pick.draw(st.booleans()):
        public = pick(st.sampled_from(["[::]", ""]), st.just("[::1"))
        dst = f"[fd00:{index}::{host:x}]"
    else:
        public = pick(st.sampled_from(["0.0.0.0", "", "198.51.100.7"]), st.sampled_from(["300.1.1.1", "[::]"]))
        dst = f"10.{index}.0.{host}"
    result = {"public": f"{public}:{pick(good_ports, bad_ports)}/{proto}", "dst": f"{dst}:{pick(good_ports, bad_ports)}"}
    if pick.draw(st.booleans()):
        result["hairpin"] = pick(st.booleans())
    return result


def network(pick: Chooser, index: int) -> dict:
    kind = pick(st.sampled_from(["routed", "routed", "routed", "bridge", "vxlan"]), st.sampled_from(["mesh", "vlan"]))
    net: dict = {"type": kind}
    v6 = False
    if kind == "routed" or pick.draw(st.booleans()):
        prefix = pick(st.sampled_from([24, 16, 28]), st.sampled_from([31, 33, 0]))
        net["cidr"] = pick(st.just(f"10.{index}.0.0/{prefix}"), st.just(f"10.{index}.0.1/24"))
        net["gw_ip"] = pick(st.just(f"10.{index}.0.1"), st.sampled_from([f"10.{index}.0.0", f"10.{index + 1}.0.1"]))
        if pick.draw(st.booleans()):
            v6 = True
            net["cidr6"] = f"fd00:{index}::/64"
            net["gw_ip6"] = pick(st.just(f"fd00:{index}::1"), st.just(f"fd00:{index}::"))
        if pick.draw(st.booleans()):
            net["dhcp"] = pick(st.booleans())
        if pick.draw(st.booleans()):
            net["dns"] = {"enabled": pick(st.booleans()),
                          "zones": pick(st.lists(st.sampled_from(["dev.lan", "lab.example"]), max_size=2, unique=True),
                                        st.just(["bad_zone!"]))}
        if pick.draw(st.booleans()):
            net["masq_out"] = pick(st.sampled_from(["uplink", "eth1"]), bad_iface_names)
        net["forwards"] = [forward(pick, index, v6) for dummy in range(pick.draw(st.integers(0, 3)))]
        if pick.draw(st.booleans()):
            net["policy_profile"] = pick(st.sampled_from(PROFILES), st.just("no-such-profile"))
    if kind == "bridge" and pick.draw(st.booleans()):
        net["vlan"] = pick(st.integers(1, 4094), st.sampled_from([0, 4095, True]))
    if kind == "vxlan":
        net["vni"] = pick(st.integers(1, 2**24 - 1), st.sampled_from([0, 2**24]))
        net["peers"] = pick(st.lists(st.sampled_from(["192.0.2.11", "192.0.2.12", "192.0.2.13"]), max_size=3,
                                     unique=True), st.just(["224.0.0.1", "127.0.0.1"]))
    if pick.draw(st.booleans()):
        net["iface"] = pick(iface_names, bad_iface_names)
    if pick.broken and pick.draw(st.integers(0, 9)) == 0:
        net[pick.draw(st.sampled_from(["colour", "gw", "cidr4"]))] = "x"
    return net


@st.composite
def topologies(draw: st.DrawFn) -> object:
    pick = Chooser(draw, broken=draw(st.integers(0, 2)) == 0)
    if pick.broken and draw(st.integers(0, 9)) == 0:
        return draw(junk)
    count = draw(st.integers(0, 4))
    names = draw(st.lists(st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z"), min_size=count, max_size=count, unique=True))
    data: dict = {
        "version": pick(st.just(1), st.just(2)),
        "interfaces": pick(st.just({"uplink": "eth0"}), st.just({"uplink": "bad name"})),
        "networks": {name: network(pick, index) for index, name in enumerate(names)},
    }
    if pick.draw(st.booleans()):
        data["management"] = {"allow_from": pick(st.lists(st.sampled_from(["192.0.2.0/24", "2001:db8::/32"]),
                                                          max_size=2, unique=True), st.just(["1.2.3.4/8"]))}
    return data


def _parse_or_none(data: object) -> Topology | None:
    try:
        return parse_topology(data)
    except ValidationError as exc:
        line = str(exc)
        assert line and "\n" not in line, f"validation message must be one line: {line!r}"
        assert exc.issues, "a ValidationError carries at least one issue"
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_only_validation_errors_escape_and_output_is_deterministic(data: object) -> None:
    topology = _parse_or_none(data)
    if topology is None:
        return
    first = rendered_result(compile_topology(data))
    second = rendered_result(compile_topology(json.loads(json.dumps(data))))
    assert first == second
    assert first["ruleset"].startswith("table inet ghostwarden {")
    # The normalised form is itself a valid input meaning the same thing.
    assert parse_topology(first["topology"]) == topology


def test_generator_produces_valid_topologies_often_enough() -> None:
    """Guards the property above against silently testing only rejected input."""
    accepted = 0

    @settings(max_examples=200, deadline=None, database=None)
    @given(topologies())
    def count(data: object) -> None:
        nonlocal accepted
        if _parse_or_none(data) is not None:
            accepted += 1

    count()
    assert accepted >= 60, f"only {accepted} of 200 generated topologies were valid"


@requires_netns
@pytest.mark.root
def test_every_accepted_topology_passes_nft_check(lab_netns: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(topologies())
    def check(data: object) -> None:
        topology = _parse_or_none(data)
        assume(topology is not None)
        script = render_replace_script(render_ruleset(topology))
        result = subprocess.run(["ip", "netns", "exec", lab_netns, "nft", "-c", "-f", "-"], input=script,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"nft -c rejected the ruleset:\n{result.stderr}\n{script}"

    check()
