# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The facts behind the conflicts of ``core._conflicts``: the foreign nft tables, and the services' files.

Read-only, so it runs in check mode too. The foreign tables come from ``nft -j`` through the
driver's runner (inside its network namespace): ``list tables``, then each table but
``inet ghostwarden`` tersely (``-t``: no set elements, which blocklists make large), then the
elements of its verdict maps, which decide where a packet jumps. Without nft, or when nft fails,
there are no nft conflicts and no error.

The services are found from files under ``root`` (``/``; tests hand in a fake tree), never by
running them: pid files and ``/proc/<pid>/comm``, ufw's ``/etc/ufw/ufw.conf``, NetworkManager's
device state files (``/run/NetworkManager/devices/<ifindex>``) and configuration
(``unmanaged-devices=``, ``[device*]`` sections with ``managed=0``), systemd-networkd's link state
files (``/run/systemd/netif/links/<ifindex>``) and ``.network`` files. Interface indexes come from
``/sys/class/net/<name>/ifindex``. These services work on the root network namespace only: with
a ``netns`` none of them is looked at (its foreign tables still are).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import Callable, Optional

from ansible_collections.ghostwarden.core.plugins.module_utils.core._conflicts import (
    NETWORKD,
    NETWORKMANAGER,
    Conflict,
    NetworkdFile,
    ServiceFacts,
    conflict_warnings,
    find_conflicts,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import NFT_FAMILY, NFT_TABLE, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner

# service: (pid files under root, process names as /proc/<pid>/comm has them: at most 15 characters)
DAEMONS = {
    "firewalld": (("run/firewalld.pid", "var/run/firewalld.pid"), ("firewalld",)),
    "fail2ban": (("run/fail2ban/fail2ban.pid", "var/run/fail2ban/fail2ban.pid"), ("fail2ban-server",)),
    "crowdsec": (("run/crowdsec-firewall-bouncer.pid", "var/run/crowdsec-firewall-bouncer.pid"),
                 ("crowdsec-firewa",)),
    "docker": (("run/docker.pid", "var/run/docker.pid"), ("dockerd",)),
    NETWORKMANAGER: (("run/NetworkManager/NetworkManager.pid", "var/run/NetworkManager/NetworkManager.pid"),
                     ("NetworkManager",)),
    NETWORKD: ((), ("systemd-network",)),
}
UFW_CONF = "etc/ufw/ufw.conf"
NM_DEVICES = "run/NetworkManager/devices"
# NetworkManager's configuration: the main file, then conf.d files by name, a name in /etc hiding
# the same name in /run and /usr/lib (NetworkManager.conf(5)).
NM_MAIN_CONF = "etc/NetworkManager/NetworkManager.conf"
NM_CONF_DIRS = ("usr/lib/NetworkManager/conf.d", "run/NetworkManager/conf.d", "etc/NetworkManager/conf.d")
NETWORKD_LINKS = "run/systemd/netif/links"
# systemd.network(5): files sorted by name over these directories, a name in an earlier one hiding the later ones.
NETWORKD_DIRS = ("etc/systemd/network", "run/systemd/network", "usr/local/lib/systemd/network",
                 "usr/lib/systemd/network", "lib/systemd/network")
_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _read(root: str, path: str) -> str | None:
    try:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def _listdir(root: str, path: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(root, path)))
    except OSError:
        return []


def _processes(root: str) -> dict[str, int]:
    """Process name (``comm``) to the lowest pid running it."""
    names: dict[str, int] = {}
    for entry in _listdir(root, "proc"):
        if entry.isdigit():
            comm = _read(root, os.path.join("proc", entry, "comm"))
            if comm and comm.strip():
                names.setdefault(comm.strip(), int(entry))
    return names


def _daemon(root: str, service: str, processes: dict[str, int]) -> str | None:
    """How ``service`` was found running: a pid file naming a live process, or a process by its name."""
    pid_files, comms = DAEMONS[service]
    for pid_file in pid_files:
        text = (_read(root, pid_file) or "").strip()
        if text.isdigit() and os.path.isdir(os.path.join(root, "proc", text)):
            return f"pid {text} in /{pid_file}"
    for comm in comms:
        if comm in processes:
            return f"process {comm}, pid {processes[comm]}"
    return None


def _ufw_enabled(root: str) -> str | None:
    for line in (_read(root, UFW_CONF) or "").splitlines():
        key, _equals, value = line.strip().partition("=")
        if key.strip() == "ENABLED" and value.strip().strip("'\"").lower() == "yes":
            return f"ENABLED=yes in /{UFW_CONF}"
    return None


def _ifindexes(root: str) -> dict[str, str]:
    """Interface index (as text) to name, from /sys/class/net."""
    indexes = {}
    for name in _listdir(root, "sys/class/net"):
        text = (_read(root, os.path.join("sys/class/net", name, "ifindex")) or "").strip()
        if text.isdigit():
            indexes[text] = name
    return indexes


def _ini(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a keyfile or unit file, in order; comments and junk skipped."""
    entries = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif "=" in line:
            key, _equals, value = line.partition("=")
            entries.append((section, key.strip(), value.strip()))
    return entries


def _nm_devices(root: str, indexes: dict[str, str]) -> list[tuple[str, bool]]:
    devices = []
    for index in _listdir(root, NM_DEVICES):
        name = indexes.get(index)
        text = _read(root, os.path.join(NM_DEVICES, index)) if name else None
        for section, key, value in _ini(text or ""):
            if section == "device" and key == "managed" and value.lower() in _TRUE + _FALSE:
                devices.append((name, value.lower() in _TRUE))
    return sorted(devices)


def _specs(value: str) -> list[str]:
    return [spec.strip() for spec in value.replace(";", ",").split(",") if spec.strip()]


def _nm_unmanaged(root: str) -> list[tuple[str, str]]:
    """Device specs NetworkManager's configuration leaves unmanaged, with the file that says so (all files together)."""
    files: dict[str, str] = {}
    for directory in NM_CONF_DIRS:  # later directories hide earlier ones of the same file name
        for name in _listdir(root, directory):
            if name.endswith(".conf"):
                files[name] = os.path.join(directory, name)
    paths = [NM_MAIN_CONF, *(files[name] for name in sorted(files))]
    specs = []
    for path in paths:
        entries = _ini(_read(root, path) or "")
        for section, key, value in entries:
            if section == "keyfile" and key.rstrip("+") == "unmanaged-devices":
                specs.extend((spec, f"/{path}") for spec in _specs(value))
        devices: dict[str, dict[str, str]] = {}
        for section, key, value in entries:
            if section == "device" or section.startswith("device-"):
                devices.setdefault(section, {})[key] = value
        for section in devices.values():
            if section.get("managed", "").lower() in _FALSE:
                specs.extend((spec, f"/{path}") for spec in _specs(section.get("match-device", "")))
    return specs


def _networkd_links(root: str, indexes: dict[str, str]) -> list[tuple[str, str]]:
    links = []
    for index in _listdir(root, NETWORKD_LINKS):
        name = indexes.get(index)
        for line in (_read(root, os.path.join(NETWORKD_LINKS, index)) or "").splitlines() if name else []:
            key, _equals, value = line.partition("=")
            if key.strip() == "ADMIN_STATE":
                links.append((name, value.strip()))
    return sorted(links)


def _networkd_files(root: str) -> list[NetworkdFile]:
    files: dict[str, str] = {}
    for directory in NETWORKD_DIRS:
        for name in _listdir(root, directory):
            if name.endswith(".network"):
                files.setdefault(name, os.path.join(directory, name))
    parsed = []
    for name in sorted(files):
        names: list[str] = []
        other_match, unmanaged = False, False
        for section, key, value in _ini(_read(root, files[name]) or ""):
            if section == "Match" and key == "Name":
                names = names + value.split() if value else []  # an empty assignment resets the list
            elif section == "Match":
                other_match = True
            elif section == "Link" and key == "Unmanaged":
                unmanaged = value.lower() in _TRUE
        parsed.append(NetworkdFile(path=f"/{files[name]}", names=tuple(names), other_match=other_match,
                                   unmanaged=unmanaged))
    return parsed


def service_facts(root: str = "/", *, links: bool = True) -> ServiceFacts:
    """What the files under ``root`` say about firewalld, ufw, fail2ban, CrowdSec, Docker, NetworkManager
    and systemd-networkd. ``links``: also which links NetworkManager and networkd manage (the root namespace's)."""
    processes = _processes(root)
    running = []
    for service in ("firewalld", "ufw", "fail2ban", "crowdsec", "docker", NETWORKMANAGER, NETWORKD):
        how = _ufw_enabled(root) if service == "ufw" else _daemon(root, service, processes)
        if how is not None:
            running.append((service, how))
    names = {service for service, _how in running}
    if not links:
        return ServiceFacts(running=tuple(running))
    indexes = _ifindexes(root) if names & {NETWORKMANAGER, NETWORKD} else {}
    nm = NETWORKMANAGER in names
    networkd = NETWORKD in names
    return ServiceFacts(
        running=tuple(running),
        links_checked=True,
        nm_devices=tuple(_nm_devices(root, indexes)) if nm else (),
        nm_unmanaged=tuple(_nm_unmanaged(root)) if nm else (),
        networkd_links=tuple(_networkd_links(root, indexes)) if networkd else (),
        networkd_files=tuple(_networkd_files(root)) if networkd else (),
    )


def _nft_json(runner: CommandRunner, argv: Sequence[str]) -> list | None:
    """The ``nftables`` items of an ``nft -j`` listing; None when it cannot be had."""
    try:
        result = runner.run(list(argv))
        items = json.loads(result.stdout)["nftables"] if result.rc == 0 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return items if isinstance(items, list) else None


def foreign_ruleset(runner: CommandRunner, *, which: Callable[[str], Optional[str]] = shutil.which) -> dict | None:
    """Every table but ``inet ghostwarden`` as ``nft -j list ruleset`` would show it, without set
    elements (verdict maps keep theirs); None when nft is not installed or cannot list the tables.
    A table that disappears between the listings is left out."""
    if which("nft") is None:  # a module's runner fails the task on a missing program
        return None
    listed = _nft_json(runner, ["nft", "-j", "list", "tables"])
    if listed is None:
        return None
    items: list = []
    for entry in listed:
        table = entry.get("table") if isinstance(entry, dict) else None
        family, name = (table.get("family"), table.get("name")) if isinstance(table, dict) else (None, None)
        if not (isinstance(family, str) and isinstance(name, str)) or (family, name) == (NFT_FAMILY, NFT_TABLE):
            continue
        for item in _nft_json(runner, ["nft", "-j", "-t", "list", "table", family, name]) or []:
            found = item.get("map") if isinstance(item, dict) else None
            if isinstance(found, dict) and found.get("map") == "verdict" and isinstance(found.get("name"), str):
                full = [obj for obj in _nft_json(runner, ["nft", "-j", "list", "map", family, name, found["name"]]) or []
                        if isinstance(obj, dict) and "map" in obj]
                item = full[0] if full else item
            items.append(item)
    return {"nftables": items}


def recorded_topology(data: object) -> Topology | None:
    """The topology the last apply recorded, as a model; None when there is none or it no longer reads."""
    if not isinstance(data, dict):
        return None
    try:
        return parse_topology(data)
    except GhostwardenError:
        return None


def host_conflicts(runner: CommandRunner, topology: Topology | None, *, root: str = "/",
                   which: Callable[[str], Optional[str]] = shutil.which) -> list[Conflict]:
    """The conflicts of ``topology`` (None: none applied yet) with what else runs where ``runner`` runs."""
    facts = service_facts(root) if runner.netns is None else ServiceFacts()
    return find_conflicts(foreign_ruleset(runner, which=which), facts, topology)


def conflict_dicts(conflicts: Iterable[Conflict]) -> list[dict]:
    return [conflict.to_dict() for conflict in conflicts]


def host_conflict_warnings(runner: CommandRunner, topology: Topology | None) -> list[str]:
    """:func:`host_conflicts` as warnings, one per cause (what ghostwarden_apply adds to its warnings)."""
    return conflict_warnings(host_conflicts(runner, topology))
