# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VLANs on a real Debian kernel: tagged uplinks, VLAN-aware bridges, VXLAN bridged to a VLAN.

The guests' second and third NICs are wires between guests (conftest.py): ``vm1.eth1``-``vm2.eth1``
(segment ab) and ``vm1.eth2``-``vm3.eth1`` (segment ac). A test applies a topology on each guest
over SSH, proves it with traffic between guests and with frames captured on the lab side of a
guest's NIC (the tap, where this machine's kernel sees the 802.1Q tag without being able to make a
VLAN device), repeats without change, and removes it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.tests.vm.conftest import by_host, capture, guest_json, link_view, ping

pytestmark = pytest.mark.vm

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = "/var/lib/ghostwarden"


def apply_task(state: str = "present") -> dict:
    """Each guest applies its own entry of the play's ``topologies``; no confirm window (the
    confirm window has its own test), so a task is one module run."""
    options: dict = {"state": state, "confirm_timeout": 0}
    if state == "present":
        options["topology"] = "{{ topologies[inventory_hostname] }}"
    return {"name": f"apply {state}", "ghostwarden.core.ghostwarden_apply": options}


def run_apply(plays, topologies: dict, *, state: str = "present", check: bool = False):
    results = plays([apply_task(state)], hosts=",".join(sorted(topologies)), check=check,
                    play_vars={"topologies": topologies})
    outcome = by_host(results, "apply")
    assert set(outcome) == set(topologies), results.output
    for host, result in outcome.items():
        assert not result.failed, f"{host}: {result}\n{results.output}"
    return outcome


def vlan_network(vlan: int, address: str, cidr: str) -> dict:
    return {"type": "vlan", "vlan": vlan, "cidr": cidr, "gw_ip": address}


def test_bridge_on_a_tagged_uplink_sends_tagged_frames(guests, plays) -> None:
    topologies = {
        "vm1": {"version": 1, "interfaces": {"uplink": "eth1"}, "networks": {
            "br_work": {"type": "bridge", "iface": "br-work", "vlan": 20, "policy_profile": "l2-lan",
                        "cidr": "10.20.0.0/24", "gw_ip": "10.20.0.1"},
            "vl30": vlan_network(30, "10.30.0.1", "10.30.0.0/24"),
        }},
        "vm2": {"version": 1, "interfaces": {"uplink": "eth1"}, "networks": {
            "vl20": vlan_network(20, "10.20.0.2", "10.20.0.0/24"),
            "vl30": vlan_network(30, "10.30.0.2", "10.30.0.0/24"),
        }},
    }
    uplink_before = link_view(guests, "vm1", "eth1")

    applied = run_apply(plays, topologies)
    assert all(result.changed for result in applied.values()), applied

    links = {link["ifname"]: link for link in guest_json(guests, "vm1", "ip -d -j link show")}
    for name, vlan_id in (("eth1.20", 20), ("eth1.30", 30)):
        assert links[name]["link"] == "eth1"
        assert (links[name]["linkinfo"]["info_kind"], links[name]["linkinfo"]["info_data"]["id"]) == ("vlan", vlan_id)
    assert links["eth1.20"]["master"] == "br-work"

    # vm1 speaks from its bridge; vm2 answers on its own VLAN 20 interface; on the wire, the frames
    # vm1 sends for 10.20.0.0/24 all carry tag 20.
    frames = capture(guests, guests["vm1"].tap(1), 8)
    assert ping(guests, "vm1", "10.20.0.2")
    assert ping(guests, "vm1", "10.30.0.2")
    seen = frames.frames()
    gateway_20 = bytes([10, 20, 0, 1])
    from_bridge = [frame for frame in seen if frame.ethertype in (0x0800, 0x0806) and gateway_20 in frame.payload
                   and frame.source == links["br-work"]["address"]]
    assert from_bridge and {frame.vlan for frame in from_bridge} == {20}, seen
    answers = [frame for frame in seen if frame.source == guests["vm2"].mac(1) and frame.ethertype == 0x0800]
    assert {frame.vlan for frame in answers} == {20, 30}, seen

    repeated = run_apply(plays, topologies)
    assert [result.changed for result in repeated.values()] == [False, False], repeated

    run_apply(plays, topologies, state="absent")
    assert link_view(guests, "vm1", "eth1") == uplink_before
    remaining = {link["ifname"] for link in guest_json(guests, "vm1", "ip -j link show")}
    assert remaining == {"lo", "eth0", "eth1", "eth2"}


def test_vlan_aware_bridge_carries_only_its_vlans(guests, plays) -> None:
    trunk = {"version": 1, "networks": {
        "trunk": {"type": "bridge", "iface": "br-trunk", "vlan_filtering": True, "vids": [20],
                  "ports": ["eth1", "eth2"]},
    }}

    def ends(last: int) -> dict:
        return {"version": 1, "interfaces": {"uplink": "eth1"}, "networks": {
            "v20": vlan_network(20, f"10.21.0.{last}", "10.21.0.0/24"),
            "v30": vlan_network(30, f"10.31.0.{last}", "10.31.0.0/24"),
        }}

    topologies = {"vm1": trunk, "vm2": ends(2), "vm3": ends(3)}
    ports_before = {name: link_view(guests, "vm1", name) for name in ("eth1", "eth2")}

    predicted = run_apply(plays, topologies, check=True)
    assert all(result.changed for result in predicted.values()), predicted
    assert "br-trunk" not in guests["vm1"].ssh("ip -br link").stdout
    applied = run_apply(plays, topologies)
    assert all(result.changed for result in applied.values()), applied

    vlans = {entry["ifname"]: sorted(vlan["vlan"] for vlan in entry["vlans"])
             for entry in guest_json(guests, "vm1", "bridge -j vlan show")}
    assert vlans["eth1"] == vlans["eth2"] == [1, 20], vlans
    (bridge,) = guest_json(guests, "vm1", "ip -d -j link show br-trunk")
    assert bridge["linkinfo"]["info_data"]["vlan_filtering"] == 1

    # vm2 -> vm3 through vm1's bridge: VLAN 20 passes; VLAN 30 never leaves vm1 by eth2.
    frames = capture(guests, guests["vm1"].tap(2), 12)
    assert not ping(guests, "vm2", "10.31.0.3", count=2)
    assert ping(guests, "vm2", "10.21.0.3")
    # Untagged frames (VLAN 1, the ports' PVID) pass as well; of the tagged ones only VLAN 20.
    from_vm2 = {frame.vlan for frame in frames.frames() if frame.source == guests["vm2"].mac(1) and frame.vlan is not None}
    assert from_vm2 == {20}, from_vm2

    repeated = run_apply(plays, topologies)
    assert not any(result.changed for result in repeated.values()), repeated
    in_check = run_apply(plays, topologies, check=True)
    assert not any(result.changed for result in in_check.values()), in_check

    run_apply(plays, {"vm1": trunk}, state="absent")
    assert {name: link_view(guests, "vm1", name) for name in ("eth1", "eth2")} == ports_before
    assert "br-trunk" not in guests["vm1"].ssh("ip -br link").stdout


def test_vxlan_overlay_bridged_to_a_vlan(guests, plays) -> None:
    # vm2's overlay reaches vm1 over the management underlay; vm1 bridges it to VLAN 40 on its
    # eth2, where vm3 answers on eth1.40. vm2 has no other way to vm3.
    topologies = {
        "vm1": {"version": 1, "networks": {
            "ov": {"type": "vxlan", "vni": 1200, "iface": "br-ov", "local": guests["vm1"].address,
                   "peers": [guests["vm2"].address], "vlan": 40, "parent": "eth2"},
        }},
        "vm2": {"version": 1, "networks": {
            "ov": {"type": "vxlan", "vni": 1200, "iface": "br-ov", "local": guests["vm2"].address,
                   "peers": [guests["vm1"].address], "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.2"},
        }},
        "vm3": {"version": 1, "interfaces": {"uplink": "eth1"}, "networks": {
            "v40": vlan_network(40, "10.40.0.3", "10.40.0.0/24"),
        }},
    }
    applied = run_apply(plays, topologies)
    assert all(result.changed for result in applied.values()), applied

    links = {link["ifname"]: link for link in guest_json(guests, "vm1", "ip -d -j link show")}
    assert links["vx1200"]["linkinfo"]["info_data"]["id"] == 1200
    assert links["vx1200"]["master"] == links["eth2.40"]["master"] == "br-ov"
    fdb = guest_json(guests, "vm1", "bridge -j fdb show dev vx1200")
    assert [entry["dst"] for entry in fdb if entry["mac"] == "00:00:00:00:00:00"] == [guests["vm2"].address]

    frames = capture(guests, guests["vm3"].tap(1), 8)
    assert ping(guests, "vm2", "10.40.0.3")
    # vm2's frames arrive at vm3 tagged 40, with vm2's bridge as their source.
    (vm2_bridge,) = guest_json(guests, "vm2", "ip -j link show br-ov")
    assert {frame.vlan for frame in frames.frames() if frame.source == vm2_bridge["address"]} == {40}

    repeated = run_apply(plays, topologies)
    assert not any(result.changed for result in repeated.values()), repeated


def test_the_original_example_applies_as_is(guests, plays) -> None:
    """examples/ghostnet.toml of the original CLI, VLAN 20 of its br_work included, with only its
    uplink mapped to the guest's: changed, then ok."""
    text = (ROOT / "examples" / "ghostnet.toml").read_text()
    assert text.count('uplink = "enp6s0"') == 1 and text.count("vlan = 20\n") == 1
    tasks = [
        {"name": "copy", "ansible.builtin.copy": {"dest": "/root/ghostnet.toml", "mode": "0600",
                                                  "content": text.replace('uplink = "enp6s0"', 'uplink = "eth1"')}},
        {"name": "apply", "ghostwarden.core.ghostwarden_apply": {"src": "/root/ghostnet.toml", "confirm_timeout": 0}},
    ]
    first = plays(tasks, hosts="vm1")
    assert first.rc == 0 and [result.changed for result in first] == [True, True], first.output
    second = plays(tasks, hosts="vm1")
    assert second.rc == 0 and [result.changed for result in second] == [False, False], second.output
    links = {link["ifname"]: link for link in guest_json(guests, "vm1", "ip -d -j link show")}
    assert links["eth1.20"]["linkinfo"]["info_data"]["id"] == 20
    assert links["eth1.20"]["master"] == "br-work"
    assert links["br-work"]["ifalias"] == "ghostwarden:br_work"


def test_the_unit_tests_that_need_vlans_pass_on_the_guest_kernel(guests) -> None:
    """The backend's VLAN cases (``-m vlan_kernel``), which `make units` leaves out on kernels
    without 802.1Q, run here against the guest's kernel with Debian's pyroute2."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                             "plugins", "tests/conftest.py", "tests/support", "tests/unit", "pytest.ini"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in filter(None, (item.decode() for item in listed)):
            tar.add(ROOT / name, arcname=name)
    target = "/root/src/ansible_collections/ghostwarden/core"
    guest = guests["vm1"]
    guest.push(archive.getvalue(), f"mkdir -p {target} && tar -xzf - -C {target}")
    result = guest.ssh(f"cd {target} && python3 -m pytest -p no:cacheprovider -q -rs -m vlan_kernel "
                       "tests/unit/host/test_netlink_netns.py tests/unit/host/test_iproute_netns.py", check=False, timeout=600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "skipped" not in summary and "5 passed" in summary, result.stdout
