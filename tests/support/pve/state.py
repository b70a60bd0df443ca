# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster a :class:`~.server.PveServer` emulates, and PVE's behaviour on it.

Each behaviour cites what it copies (qemu-server ``update_vm_api``/``vmconfig_hotplug_pending``,
pve-container ``update_pct_config``, pve-manager ``API2/Network.pm``, pve-network's
``pending_config``, pve-firewall's rule API). Errors are raised as :class:`ApiError` with PVE's
status and text; the server turns them into responses.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ghostwarden.core.tests.support.pve.schema import (
    FormatError, parse_hotplug_features, parse_property_string, print_property_string,
)


class ApiError(Exception):
    """A failed API call: HTTP status, PVE's message (first line = reason phrase), parameter errors."""

    def __init__(self, status: int, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = dict(errors) if errors else None


def param_error(errors: Mapping[str, str]) -> ApiError:
    """PVE's raise_param_exc: 400 'Parameter verification failed.' with ``errors``."""
    return ApiError(400, "Parameter verification failed.", errors)


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def random_mac(prefix: str | None) -> str:
    """PVE::Tools::random_ether_addr: random unicast, locally administered, then the prefix overlaid."""
    octets = bytearray(hashlib.sha1(secrets.token_bytes(16)).digest()[:6])
    octets[0] = (octets[0] & 0xFE) | 0x02
    address = ":".join(f"{octet:02X}" for octet in octets)
    if prefix:
        address = prefix.upper() + address[len(prefix):]
    return address


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass
class Task:
    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    exitstatus: str
    log: list[str]
    running_polls: int = 0

    def status(self) -> dict[str, Any]:
        """GET .../tasks/{upid}/status; the first ``running_polls`` reads still say running."""
        user, _bang, token = self.user.partition("!")
        result: dict[str, Any] = {"upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
                                  "starttime": self.starttime, "type": self.type, "id": self.id, "user": user}
        if token:
            result["tokenid"] = token
        if self.running_polls > 0:
            self.running_polls -= 1
            result["status"] = "running"
        else:
            result["status"] = "stopped"
            result["exitstatus"] = self.exitstatus
        return result


class TaskRegistry:
    """Workers run at once, in-process; the UPID and status are PVE's (PVE::Tools::upid_encode)."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self._next_pid = 0x1A2B0
        self._failures: list[str] = []
        self.running_polls = 0

    def fail_next(self, message: str) -> None:
        self._failures.append(message)

    def run(self, node: str, kind: str, ident: str, user: str, work: Callable[[], list[str]]) -> Task:
        """Run ``work`` (it returns warnings) as task ``kind``; a scheduled failure skips the work."""
        self._next_pid += 1
        pid, pstart, starttime = self._next_pid, 0x2F00000 + self._next_pid, int(time.time())
        upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{ident}:{user}:"
        log: list[str] = []
        if self._failures:
            exitstatus = self._failures.pop(0)
        else:
            try:
                warnings = work()
            except ApiError as error:
                exitstatus = error.message
                if error.errors:
                    log.extend(f"{key}: {value}" for key, value in sorted(error.errors.items()))
            else:
                log.extend(f"WARN: {warning}" for warning in warnings)
                exitstatus = f"WARNINGS: {len(warnings)}" if warnings else "OK"
        if exitstatus == "OK":
            log.append("TASK OK")
        elif exitstatus.startswith("WARNINGS: "):
            log.append(f"TASK {exitstatus}")
        else:
            log.append(f"TASK ERROR: {exitstatus}")
        task = Task(upid, node, pid, pstart, starttime, kind, ident, user, exitstatus, log, self.running_polls)
        self.tasks[upid] = task
        return task

    def get(self, node: str, upid: str) -> Task:
        task = self.tasks.get(upid)
        if task is None or task.node != node:
            if not upid.startswith("UPID:") or len(upid.split(":")) != 9:
                raise param_error({"upid": "unable to parse worker upid"})
            raise ApiError(500, f"no such task '{upid}'")
        return task


# ---------------------------------------------------------------------------------------------
# Guests

# qemu-server $fast_plug_option: applied at once even on a running VM.
QEMU_FAST_PLUG = frozenset({"description", "hookscript", "lock", "migrate_downtime", "migrate_speed", "name",
                            "onboot", "protection", "shares", "startup", "tags", "vmstatestorage"})
# vmconfig_hotplug_pending handles these without any hotplug feature.
QEMU_ALWAYS_HOTPLUG = frozenset({"tablet", "cpuunits", "cpulimit", "balloon"})
# pve-container: options applied to a running container at once.
LXC_LIVE = frozenset({"description", "hookscript", "hostname", "lock", "onboot", "protection", "startup", "tags",
                      "cpulimit", "cpuunits", "memory", "swap", "nameserver", "searchdomain", "timezone"})


@dataclass
class Guest:
    kind: str  # "qemu" or "lxc"
    vmid: int
    node: str
    running: bool
    config: dict[str, str]
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: dict[str, bool] = field(default_factory=dict)  # key -> force

    @property
    def config_path(self) -> str:
        folder = "qemu-server" if self.kind == "qemu" else "lxc"
        return f"nodes/{self.node}/{folder}/{self.vmid}.conf"

    @property
    def name(self) -> str | None:
        return self.config.get("name" if self.kind == "qemu" else "hostname")

    def raw(self) -> str:
        """The config file as PVE writes it (description as comments, sorted keys, [PENDING])."""
        def section(values: Mapping[str, str]) -> str:
            text = ""
            description = values.get("description")
            if description is not None:
                text += "".join(f"#{line}\n" for line in description.split("\n")) if description else "#\n"
            for key in sorted(values):
                if key not in ("description", "digest"):
                    text += f"{key}: {values[key]}\n"
            return text
        raw = section(self.config)
        if self.pending or self.pending_delete:
            pending = dict(self.pending)
            if self.pending_delete:
                pending["delete"] = ",".join(("!" if force else "") + key
                                             for key, force in sorted(self.pending_delete.items()))
            raw += "\n[PENDING]\n" + section(pending)
        return raw

    @property
    def digest(self) -> str:
        return sha1_hex(self.raw())

    def merged(self) -> dict[str, str]:
        """GET config without current=1: pending values win, keys pending deletion are hidden."""
        result = {**self.config, **self.pending}
        for key in self.pending_delete:
            result.pop(key, None)
        return result

    def pending_list(self) -> list[dict[str, Any]]:
        """GET .../pending (PVE::GuestHelpers::config_with_pending_array), digest listed like a key."""
        current = {**self.config, "digest": self.digest}
        items = []
        for key in sorted(set(current) | set(self.pending) | set(self.pending_delete)):
            item: dict[str, Any] = {"key": key}
            if key in current:
                item["value"] = current[key]
            if key in self.pending:
                item["pending"] = self.pending[key]
            if key in self.pending_delete:
                item["delete"] = 2 if self.pending_delete[key] else 1
            items.append(item)
        return items

    def cleanup_pending(self) -> None:
        """Drop pending values equal to the current ones and deletions of keys that are not set."""
        for key in [key for key, value in self.pending.items() if self.config.get(key) == value]:
            del self.pending[key]
        for key in [key for key in self.pending_delete if key not in self.config]:
            del self.pending_delete[key]

    def apply_all_pending(self) -> None:
        for key in list(self.pending_delete):
            self.config.pop(key, None)
        self.config.update(self.pending)
        self.pending.clear()
        self.pending_delete.clear()


class GuestUpdate:
    """One config write (qemu-server update_vm_api / pve-container update_pct_config)."""

    def __init__(self, cluster: Cluster, guest: Guest, values: dict[str, str], delete: list[str],
                 revert: list[str], force: bool) -> None:
        self.cluster = cluster
        self.guest = guest
        self.values = values
        self.delete = delete
        self.revert = revert
        self.force = force

    def apply(self) -> list[str]:
        """Write the change; returns the warnings (a worker reports them as 'WARNINGS: n')."""
        guest = self.guest
        warnings: list[str] = []
        modified: set[str] = set()
        delete = list(self.delete)
        values = dict(self.values)
        for key in self.revert:
            if key in guest.config:
                values[key] = guest.config[key]
            elif key in guest.pending:
                delete.append(key)
            modified.add(key)
        for key in delete:
            modified.add(key)
            if key not in guest.config and key not in guest.pending:
                warnings.append(f"cannot delete '{key}' - not set in current configuration!")
                modified.discard(key)
                continue
            guest.pending.pop(key, None)
            guest.pending_delete[key] = self.force
        for key, value in values.items():
            modified.add(key)
            if guest.pending.get(key) == value:
                continue
            guest.pending[key] = value
            guest.pending_delete.pop(key, None)
        guest.cleanup_pending()
        if not guest.pending and not guest.pending_delete:
            return warnings
        if not guest.running:
            guest.apply_all_pending()
        elif guest.kind == "qemu":
            self._qemu_hotplug(modified)
        else:
            self._lxc_hotplug(modified)
        return warnings

    def _qemu_hotplug(self, selection: set[str]) -> None:
        """vmconfig_hotplug_pending: what a running VM takes now; the rest stays pending."""
        guest = self.guest
        features = parse_hotplug_features(guest.config.get("hotplug", "1"))
        for key in [key for key in guest.pending if key in QEMU_FAST_PLUG]:
            guest.config[key] = guest.pending.pop(key)
        for key in sorted(guest.pending_delete):
            if key not in selection:
                continue
            if key in QEMU_FAST_PLUG or key in QEMU_ALWAYS_HOTPLUG \
                    or (key.startswith("net") and key[3:].isdigit() and "network" in features) \
                    or (key == "hotplug" and "memory" not in guest.config.get("hotplug", "")):
                guest.config.pop(key, None)
                del guest.pending_delete[key]
        for key in sorted(guest.pending):
            if key not in selection:
                continue
            value = guest.pending[key]
            if key.startswith("net") and key[3:].isdigit():
                live = self._qemu_net_live(key, value, "network" in features)
            elif key == "hotplug":
                live = "memory" not in value and "memory" not in guest.config.get("hotplug", "")
            elif key == "vcpus":
                live = "cpu" in features
            elif key == "memory":
                live = "memory" in features
            else:
                live = key in QEMU_ALWAYS_HOTPLUG
            if live:
                guest.config[key] = value
                del guest.pending[key]

    def _qemu_net_live(self, key: str, value: str, network_hotplug: bool) -> bool:
        """vmconfig_update_net: bridge/tag/trunks/firewall/rate/link_down in place, the rest needs hotplug."""
        old_value = self.guest.config.get(key)
        if old_value is None:
            return network_hotplug
        net_format = self.cluster.net_format("qemu")
        old = parse_property_string(net_format, old_value)
        new = parse_property_string(net_format, value)
        replug = (old.get("model") != new.get("model") or old.get("macaddr") != new.get("macaddr")
                  or _number(old.get("queues")) != _number(new.get("queues"))
                  or _number(old.get("mtu")) != _number(new.get("mtu"))
                  or not (new.get("bridge") and old.get("bridge")))
        return network_hotplug if replug else True

    def _lxc_hotplug(self, selection: set[str]) -> None:
        """pve-container: NICs are (re)plugged live; LXC_LIVE keys apply at once; the rest stays pending."""
        guest = self.guest
        for key in sorted(guest.pending_delete):
            if key in selection and (key in LXC_LIVE or _is_net_key(key)):
                guest.config.pop(key, None)
                del guest.pending_delete[key]
        for key in sorted(guest.pending):
            if key in selection and (key in LXC_LIVE or _is_net_key(key)):
                guest.config[key] = guest.pending.pop(key)


def _is_net_key(key: str) -> bool:
    return key.startswith("net") and key[3:].isdigit()


def _number(value: str | None) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Node network (/etc/network/interfaces and interfaces.new)


class NodeNetwork:
    """The active ``interfaces`` file and the staged ``interfaces.new`` (None when absent)."""

    def __init__(self) -> None:
        self.active: dict[str, dict[str, Any]] = {}
        self.staged: dict[str, dict[str, Any]] | None = None

    def view(self) -> dict[str, dict[str, Any]]:
        return self.staged if self.staged is not None else self.active

    def edit(self) -> dict[str, dict[str, Any]]:
        """The staged config, created from the active one on the first change."""
        if self.staged is None:
            self.staged = copy.deepcopy(self.active)
        return self.staged

    def next_priority(self, interfaces: Mapping[str, Mapping[str, Any]]) -> int:
        return max((int(item.get("priority", 0)) for item in interfaces.values()), default=0) + 1

    def listing(self, type_filter: str | None) -> list[dict[str, Any]]:
        result = []
        for name, item in sorted(self.view().items()):
            if type_filter and not _network_type_matches(item.get("type", ""), type_filter):
                continue
            entry = {"iface": name, **copy.deepcopy(item)}
            if name in self.active and self.active[name].get("type") == item.get("type"):
                entry["active"] = 1
            if item.get("type") == "eth":
                entry["exists"] = 1
            result.append(entry)
        return result

    def changes(self) -> str | None:
        """The unified diff PVE adds as top-level ``changes`` while interfaces.new exists."""
        if self.staged is None:
            return None
        before = render_interfaces(self.active).splitlines(keepends=True)
        after = render_interfaces(self.staged).splitlines(keepends=True)
        diff = "".join(difflib.unified_diff(before, after, "/etc/network/interfaces", "/etc/network/interfaces.new"))
        return diff or None


def _network_type_matches(kind: str, type_filter: str) -> bool:
    if type_filter in ("any_bridge", "any_local_bridge"):
        return kind in ("bridge", "OVSBridge")
    if type_filter == "include_sdn":
        return True
    return kind == type_filter  # "vnet": the SDN vnets are added by the caller


INTERFACE_KEYWORDS = (
    ("address", "address"), ("gateway", "gateway"), ("mtu", "mtu"), ("bridge_ports", "bridge-ports"),
    ("bridge_stp", "bridge-stp"), ("bridge_fd", "bridge-fd"), ("bridge_vlan_aware", "bridge-vlan-aware"),
    ("bridge_vids", "bridge-vids"), ("slaves", "bond-slaves"), ("bond_mode", "bond-mode"),
    ("bond-primary", "bond-primary"), ("bond_xmit_hash_policy", "bond-xmit-hash-policy"),
    ("vlan-raw-device", "vlan-raw-device"), ("vlan-id", "vlan-id"),
)


def render_interfaces(interfaces: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain /etc/network/interfaces rendering (for the ``changes`` diff)."""
    text = "auto lo\niface lo inet loopback\n"
    for name, item in sorted(interfaces.items(), key=lambda pair: (int(pair[1].get("priority", 0)), pair[0])):
        text += "\n"
        if item.get("autostart"):
            text += f"auto {name}\n"
        text += f"iface {name} inet {item.get('method', 'manual')}\n"
        for key, keyword in INTERFACE_KEYWORDS:
            value = item.get(key)
            if key == "address" and item.get("cidr"):
                value = item["cidr"]
            if key == "bridge_vlan_aware":
                value = "yes" if value else None
            if key == "bridge_ports" and item.get("type") == "bridge" and not value:
                value = "none"
            if value not in (None, ""):
                text += f"\t{keyword} {value}\n"
        if item.get("comments"):
            text += "".join(f"#{line}\n" for line in str(item["comments"]).rstrip("\n").split("\n"))
        if item.get("cidr6") or item.get("address6"):
            text += f"\niface {name} inet6 {item.get('method6', 'static')}\n"
            text += f"\taddress {item.get('cidr6') or item.get('address6')}\n"
            if item.get("gateway6"):
                text += f"\tgateway {item['gateway6']}\n"
    return text + "\nsource /etc/network/interfaces.d/*\n"


# ---------------------------------------------------------------------------------------------
# SDN (pve-network): the edited config and the running config it becomes on apply

SDN_KINDS = ("zones", "vnets", "subnets")
SDN_ZONE_COMMON = ("nodes", "mtu", "ipam", "dns", "reversedns", "dnszone", "dhcp", "lock-token")
SDN_ZONE_OPTIONS = {
    "simple": (),
    "vlan": ("bridge", "bridge-disable-mac-learning"),
    "qinq": ("bridge", "tag", "vlan-protocol", "bridge-disable-mac-learning"),
    "vxlan": ("peers", "vxlan-port", "fabric"),
    "evpn": ("controller", "vrf-vxlan", "mac", "exitnodes", "exitnodes-primary", "exitnodes-local-routing",
             "advertise-subnets", "disable-arp-nd-suppression", "rt-import"),
    "faucet": ("dp-id",),
}
SDN_ZONE_REQUIRED = {"vlan": ("bridge",), "qinq": ("bridge", "tag"), "vxlan": ("peers",),
                     "evpn": ("controller", "vrf-vxlan")}


class Sdn:
    def __init__(self) -> None:
        self.config: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in SDN_KINDS}
        self.running: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in SDN_KINDS}
        self.lock_token: str | None = None

    def digest(self, kind: str) -> str:
        return sha1_hex(json.dumps(self.config[kind], sort_keys=True))

    def has_pending(self) -> bool:
        return self.config != self.running

    def pending_view(self, kind: str) -> dict[str, dict[str, Any]]:
        """pve-network pending_config: running values on top, ``pending`` changes, ``state``."""
        running, edited = self.running[kind], self.config[kind]
        result: dict[str, dict[str, Any]] = {}
        for ident in sorted(running):
            item: dict[str, Any] = {}
            current = edited.get(ident)
            for key, value in sorted(running[ident].items()):
                item[key] = value
                if not current:
                    item["state"] = "deleted"
                elif key not in current:
                    item.setdefault("pending", {})[key] = "deleted"
                    item["state"] = "changed"
                elif _sdn_encode(current[key]) != _sdn_encode(value):
                    item["state"] = "changed"
            if item.get("state") and "pending" not in item:
                item["pending"] = {}
            result[ident] = item
        for ident in sorted(edited):
            item = result.setdefault(ident, {})
            old = running.get(ident) or {}
            for key, value in sorted(edited[ident].items()):
                encoded = _sdn_encode(value)
                if key in ("type", "vnet"):
                    item[key] = encoded
                elif key not in old or _sdn_encode(old[key]) != encoded:
                    item.setdefault("pending", {})[key] = encoded
                if not old:
                    item["state"] = "new"
                elif key not in old:
                    item["state"] = "changed"
        return result


def _sdn_encode(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------
# Firewall (pve-firewall): cluster.fw and <vmid>.fw

FIREWALL_MACROS = (
    "Amanda", "Auth", "BGP", "BitTorrent", "BitTorrent32", "CVS", "Ceph", "Citrix", "DAAP", "DCC", "DHCPfwd",
    "DHCPv6", "DNS", "Distcc", "FTP", "Finger", "GNUnet", "GRE", "Git", "HKP", "HTTP", "HTTPS", "ICPV2", "ICQ",
    "IMAP", "IMAPS", "IPIP", "IPsec", "IPsecah", "IPsecnat", "IRC", "Jetdirect", "L2TP", "LDAP", "LDAPS", "MDNS",
    "MSNP", "MSSQL", "Mail", "Munin", "MySQL", "NNTP", "NNTPS", "NTP", "NeighborDiscovery", "OSPF", "OpenVPN",
    "PCA", "PMG", "POP3", "POP3S", "PPtP", "Ping", "PostgreSQL", "Printer", "RDP", "RIP", "RNDC", "Razor",
    "Rdate", "Rsync", "SANE", "SMB", "SMBswat", "SMTP", "SMTPS", "SNMP", "SPAMD", "SPICEproxy", "SSH", "SVN",
    "SixXS", "Squid", "Submission", "Syslog", "TFTP", "Telnet", "Telnets", "Time", "Trcrt", "VNC", "VNCL",
    "Web", "Webcache", "Webmin", "Whois",
)
FIREWALL_RULE_KEYS = ("type", "action", "macro", "iface", "source", "dest", "proto", "dport", "sport",
                      "icmp-type", "log", "enable", "comment")
PROTOCOLS_WITH_PORTS = ("tcp", "udp", "6", "17", "udplite", "136", "sctp", "132", "dccp", "33")


@dataclass
class FirewallFile:
    options: dict[str, str] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    ipsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy({"options": self.options, "rules": self.rules, "ipsets": self.ipsets,
                              "aliases": self.aliases, "groups": self.groups})

    @property
    def digest(self) -> str:
        return sha1_hex(json.dumps(self.as_dict(), sort_keys=True))


def rule_listing(rules: Iterable[Mapping[str, Any]], digest: str) -> list[dict[str, Any]]:
    result = []
    for position, rule in enumerate(rules):
        entry: dict[str, Any] = {"pos": position}
        entry.update({key: rule[key] for key in FIREWALL_RULE_KEYS if key in rule})
        if "source" in rule or "dest" in rule:
            versions = {ip_version(rule[key]) for key in ("source", "dest") if key in rule} - {None}
            if len(versions) == 1:
                entry["ipversion"] = versions.pop()
        entry["digest"] = digest
        result.append(entry)
    return result


def ip_version(spec: str) -> int | None:
    if spec.startswith("+") or not any(char.isdigit() for char in spec):
        return None
    return 6 if ":" in spec else 4


# ---------------------------------------------------------------------------------------------
# The cluster


@dataclass
class Node:
    name: str
    network: NodeNetwork = field(default_factory=NodeNetwork)
    online: bool = True


class Cluster:
    def __init__(self, version: int, net_formats: Mapping[str, Mapping[str, Any]]) -> None:
        self.version = version
        self.nodes: dict[str, Node] = {}
        self.guests: dict[int, Guest] = {}
        self.sdn = Sdn()
        self.firewall = FirewallFile()
        self.guest_firewalls: dict[int, FirewallFile] = {}
        self.tasks = TaskRegistry()
        self.mac_prefix = "BC:24:11"
        self.cluster_name: str | None = None
        self._net_formats = dict(net_formats)

    def net_format(self, kind: str) -> Mapping[str, Any]:
        return self._net_formats[kind]

    @property
    def local_node(self) -> str:
        """The node the API is talked to (the first one added)."""
        if not self.nodes:
            raise ApiError(500, "no nodes configured")
        return next(iter(self.nodes))

    def node(self, name: str) -> Node:
        found = self.nodes.get(name)
        if found is None:
            raise ApiError(500, f"no such cluster node '{name}'")
        return found

    def guest(self, kind: str, node: str, vmid: int) -> Guest:
        self.node(node)
        guest = self.guests.get(vmid)
        if guest is None or guest.kind != kind or guest.node != node:
            folder = "qemu-server" if kind == "qemu" else "lxc"
            raise ApiError(500, f"Configuration file 'nodes/{node}/{folder}/{vmid}.conf' does not exist")
        return guest

    def guest_firewall(self, vmid: int) -> FirewallFile:
        return self.guest_firewalls.setdefault(vmid, FirewallFile())

    def canonical_net(self, kind: str, key: str, value: str) -> str:
        """parse_net/print_net (QEMU) or parse_lxc_network/print_lxc_network: MAC added when missing."""
        net_format = self.net_format(kind)
        try:
            parsed = parse_property_string(net_format, value, key)
        except FormatError as error:
            raise param_error({key: f"invalid format - {error}"}) from None
        if kind == "qemu":
            parsed.setdefault("macaddr", random_mac(self.mac_prefix))
        else:
            parsed["type"] = "veth"
            if not parsed.get("hwaddr"):
                parsed["hwaddr"] = random_mac(self.mac_prefix)
        return print_property_string(parsed, net_format)

    def canonical_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, str]:
        result = {}
        for key, value in config.items():
            text = str(int(value)) if isinstance(value, bool) else str(value)
            result[key] = self.canonical_net(kind, key, text) if _is_net_key(key) else text
        return result
