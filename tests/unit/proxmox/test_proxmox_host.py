# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE detection from a host's files, and the double-filtering warning."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._host import (
    detect_proxmox,
    double_filtering_warnings,
    firewalled_bridges,
)

DPKG_STATUS = """Package: bash
Status: install ok installed
Version: 5.2.15-2

Package: pve-manager
Status: install ok installed
Priority: optional
Version: 8.2.4
Description: Proxmox Virtual Environment Management Tools
 continued line: with a colon

Package: pve-firewall
Status: deinstall ok config-files
Version: 5.0.7
"""


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def pve_root(tmp_path: Path, *, firewall: str = "1", running: bool = True) -> Path:
    write(tmp_path, "var/lib/dpkg/status", DPKG_STATUS)
    write(tmp_path, "etc/pve/corosync.conf", "totem {\n  cluster_name: homelab\n  version: 2\n}\n")
    write(tmp_path, "etc/pve/firewall/cluster.fw", f"[OPTIONS]\n\nenable: {firewall}\n\n[RULES]\n\nIN SSH(ACCEPT)\n")
    write(tmp_path, "etc/pve/qemu-server/100.conf",
          "name: web\nnet0: virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1\nnet1: virtio=BC:24:11:00:00:02,bridge=gw-lan\n"
          "\n[PENDING]\nnet1: virtio=BC:24:11:00:00:02,bridge=gw-lan,firewall=1\n")
    write(tmp_path, "etc/pve/lxc/200.conf", "net0: name=eth0,bridge=gw-dmz,firewall=1,hwaddr=BC:24:11:00:00:03,type=veth\n")
    if running:
        write(tmp_path, "run/pve-firewall.pid", f"{os.getpid()}\n")
        (tmp_path / "proc" / str(os.getpid())).mkdir(parents=True)
    return tmp_path


def test_a_clustered_node_with_an_active_firewall(tmp_path):
    assert detect_proxmox(str(pve_root(tmp_path))) == {
        "node": True, "version": "8.2.4", "cluster_name": "homelab", "firewall_enabled": True,
        "firewall_running": True, "firewall_active": True,
        # gw-lan's firewall=1 is only pending: not what runs.
        "firewall_bridges": ["gw-dmz", "vmbr0"],
    }


def test_an_ordinary_host_is_not_a_node(tmp_path):
    write(tmp_path, "var/lib/dpkg/status", DPKG_STATUS.replace("pve-manager", "something-else"))
    assert detect_proxmox(str(tmp_path))["node"] is False
    assert detect_proxmox(str(tmp_path / "missing"))["node"] is False


def test_a_stopped_or_disabled_firewall_is_not_active_and_warns_about_nothing(tmp_path):
    stopped = detect_proxmox(str(pve_root(tmp_path / "a", running=False)))
    assert (stopped["firewall_enabled"], stopped["firewall_running"], stopped["firewall_active"]) == (True, False, False)
    disabled = detect_proxmox(str(pve_root(tmp_path / "b", firewall="0")))
    assert disabled["firewall_active"] is False
    assert double_filtering_warnings(disabled, ["gw-dmz"]) == []


def test_warns_for_each_bridge_both_filter(tmp_path):
    proxmox = detect_proxmox(str(pve_root(tmp_path)))
    assert double_filtering_warnings(proxmox, ["gw-lan", "gw-dmz"]) == [
        "bridge gw-dmz: pve-firewall filters the guest NICs with firewall=1 on it and ghostwarden's policy profile "
        "filters it too; a packet must pass both (turn one off for this bridge, or keep their rules in step)",
    ]


def test_one_warning_names_every_bridge_both_filter(tmp_path):
    proxmox = {**detect_proxmox(str(pve_root(tmp_path))), "firewall_bridges": [f"gw-n{index}" for index in range(7)]}
    assert double_filtering_warnings(proxmox, [f"gw-n{index}" for index in range(7)]) == [
        "bridges gw-n0, gw-n1, gw-n2, gw-n3, gw-n4 and 2 more (7 bridges): pve-firewall filters the guest NICs with "
        "firewall=1 on them and ghostwarden's policy profiles filter them too; a packet must pass both (turn one off "
        "for these bridges, or keep their rules in step)",
    ]


def test_firewall_flag_spellings():
    assert firewalled_bridges([
        "net0: virtio=X,bridge=a,firewall=on\nnet1: e1000,bridge=b,firewall=0\nnet2: virtio,firewall=1\n"
        "net3: name=eth0,bridge=c,firewall=TRUE\n",
    ]) == ["a", "c"]
