# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Is this host a Proxmox VE node, and would pve-firewall filter the bridges ghostwarden filters?

Everything comes from files (no API, no Perl tools), so it works without credentials and in
check mode: the dpkg status database for pve-manager, /etc/pve (the cluster filesystem) for the
cluster name, the firewall options and the guests' NICs, and the pid file of the firewall
daemon. ``root`` lets tests point it at a fake tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

# pve-firewall (iptables) and proxmox-firewall (nftables, PVE 8.2+) both filter guest NICs that have firewall=1.
FIREWALL_PID_FILES = ("run/pve-firewall.pid", "run/proxmox-firewall.pid")
# How many bridges a warning about several spells out before "and N more".
NAMED_BRIDGES = 5
_NET_LINE = re.compile(r"^net\d+:\s*(?P<value>.+)$")
_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")


def _read(root: str, path: str) -> str | None:
    try:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _package_version(status: str | None, package: str) -> str | None:
    """The installed version of ``package`` from a dpkg status database."""
    if not status:
        return None
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith(" ")
        )
        if fields.get("Package", "").strip() == package and "installed" in fields.get("Status", "").split():
            return fields.get("Version", "").strip() or None
    return None


def _cluster_name(corosync: str | None) -> str | None:
    if not corosync:
        return None
    match = re.search(r"^\s*cluster_name\s*:\s*(\S+)\s*$", corosync, re.MULTILINE)
    return match.group(1) if match else None


def _options(text: str | None) -> dict[str, str]:
    """The [OPTIONS] section of a pve-firewall file."""
    options: dict[str, str] = {}
    section = None
    for line in (text or "").splitlines():
        line = line.strip()
        header = _SECTION.match(line)
        if header:
            section = header.group("name").upper()
            continue
        if section == "OPTIONS" and ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            options[key.strip()] = value.strip()
    return options


def _pid_alive(root: str, pid_file: str) -> bool:
    text = _read(root, pid_file)
    if not text or not text.strip().isdigit():
        return False
    return os.path.exists(os.path.join(root, "proc", text.strip()))


def firewalled_bridges(configs: Iterable[str]) -> list[str]:
    """Bridges of the guest NICs with ``firewall=1`` in guest config files (main section only)."""
    bridges = set()
    for config in configs:
        for line in config.splitlines():
            if _SECTION.match(line.strip()):
                break  # snapshots and pending changes follow; the main section is what runs
            match = _NET_LINE.match(line.strip())
            if not match:
                continue
            fields = dict(item.split("=", 1) for item in match.group("value").split(",") if "=" in item)
            if fields.get("firewall", "0").lower() in ("1", "on", "yes", "true") and fields.get("bridge"):
                bridges.add(fields["bridge"])
    return sorted(bridges)


def _guest_configs(root: str) -> list[str]:
    configs = []
    for directory in ("etc/pve/qemu-server", "etc/pve/lxc"):
        try:
            names = sorted(os.listdir(os.path.join(root, directory)))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                text = _read(root, os.path.join(directory, name))
                if text is not None:
                    configs.append(text)
    return configs


def detect_proxmox(root: str = "/") -> dict:
    """What the host says about Proxmox VE.

    ``node`` (pve-manager installed), ``version``, ``cluster_name`` (null when not clustered),
    ``firewall_enabled`` (cluster.fw ``enable: 1``), ``firewall_running`` (the firewall daemon's
    pid is alive), ``firewall_active`` (both), and ``firewall_bridges``: the bridges of guest
    NICs that have ``firewall=1``, which pve-firewall filters when it is active.
    """
    version = _package_version(_read(root, "var/lib/dpkg/status"), "pve-manager")
    if version is None:
        return {"node": False, "version": None, "cluster_name": None, "firewall_enabled": False,
                "firewall_running": False, "firewall_active": False, "firewall_bridges": []}
    enabled = _options(_read(root, "etc/pve/firewall/cluster.fw")).get("enable", "0") == "1"
    running = any(_pid_alive(root, pid_file) for pid_file in FIREWALL_PID_FILES)
    return {
        "node": True,
        "version": version,
        "cluster_name": _cluster_name(_read(root, "etc/pve/corosync.conf")),
        "firewall_enabled": enabled,
        "firewall_running": running,
        "firewall_active": enabled and running,
        "firewall_bridges": firewalled_bridges(_guest_configs(root)),
    }


def double_filtering_warnings(proxmox: dict, filtered_bridges: Iterable[str]) -> list[str]:
    """One warning naming the bridges that both pve-firewall and ghostwarden's profiles filter."""
    if not proxmox.get("firewall_active"):
        return []
    both = sorted(set(proxmox.get("firewall_bridges", ())) & set(filtered_bridges))
    if not both:
        return []
    if len(both) == 1:
        return [f"bridge {both[0]}: pve-firewall filters the guest NICs with firewall=1 on it and ghostwarden's policy "
                "profile filters it too; a packet must pass both (turn one off for this bridge, or keep their rules in "
                "step)"]
    named = ", ".join(both[:NAMED_BRIDGES]) + (f" and {len(both) - NAMED_BRIDGES} more" if len(both) > NAMED_BRIDGES else "")
    return [f"bridges {named} ({len(both)} bridges): pve-firewall filters the guest NICs with firewall=1 on them and "
            "ghostwarden's policy profiles filter them too; a packet must pass both (turn one off for these bridges, or "
            "keep their rules in step)"]
