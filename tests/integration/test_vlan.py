# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VLANs on the uplink: a bridge network's frames leave tagged with its VLAN id, and a vlan
network's gateway answers on its tagged sub-interface.

Needs 802.1Q support in the kernel; the test probes for it inside its own namespace and skips,
saying why, where ``ip link add ... type vlan`` fails.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

MARKER = b"ghostwarden vlan 20 probe"
EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 local experimental: nothing else in the lab sends it


def test_vlan_traffic_is_tagged_on_the_uplink(site, task, run_play) -> None:
    lab, host, inet = site.lab, site.host, site.inet
    reason = lab.link_kind_unsupported(host, "gwprobe20", "link", "up0", "type", "vlan", "id", "20")
    if reason:
        pytest.skip(f"the kernel has no 802.1Q VLAN devices ({reason})")
    work = lab.add_client(host, "workp", "work")
    topology = {
        "version": 1,
        "interfaces": {"uplink": "up0"},
        "networks": {
            "br_work": {"type": "bridge", "iface": "br-work", "vlan": 20, "policy_profile": "l2-lan",
                        "ports": ["workp"]},
            "vl30": {"type": "vlan", "vlan": 30, "cidr": "10.30.0.0/24", "gw_ip": "10.30.0.1"},
        },
    }
    (applied,) = run_play([task("ghostwarden_apply", topology=topology, netns=host, state_dir=str(site.state_dir))])
    assert applied.changed and not applied.failed, applied

    links = lab.links(host)
    for name, vlan_id in (("up0.20", 20), ("up0.30", 30)):
        assert links[name]["link"] == "up0"
        assert (links[name]["linkinfo"]["info_kind"], links[name]["linkinfo"]["info_data"]["id"]) == ("vlan", vlan_id)
    assert links["up0.20"]["master"] == "br-work"

    capture = lab.capture_frames(inet, "eth0", 3)
    lab.send_frame(work, "eth0", EXPERIMENTAL_ETHERTYPE, MARKER)
    work_mac = lab.links(work)["eth0"]["address"]
    probes = [frame for frame in capture.frames()
              if frame.ethertype == EXPERIMENTAL_ETHERTYPE and frame.payload.startswith(MARKER)]
    assert [(frame.vlan, frame.source) for frame in probes] == [(20, work_mac)]

    # The vlan network: the "internet" side speaks VLAN 30 to the host's gateway address on up0.30.
    lab.run(inet, "ip", "link", "add", "link", "eth0", "name", "eth0.30", "type", "vlan", "id", "30")
    lab.addr(inet, "eth0.30", "10.30.0.2/24")
    lab.run(inet, "ip", "link", "set", "eth0.30", "up")
    assert lab.ping(inet, "10.30.0.1")
