# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the issue-4 (transaction) integration tests.

* :func:`run_module`: ``ghostwarden_apply`` run the way Ansible runs it on a target (its own
  Python process with an args file, ``PYTHONPATH`` on ``.cache/collections``), with extra
  environment (the ``GHOSTWARDEN_TEST_KILL_AFTER`` hook) and a ``PATH`` prefix (wrapper tools).
  Much faster than a play, which matters for the 30 kill points.
* :func:`owned_fingerprint`: everything of a lab namespace a transaction may change, with what
  the kernel picks by itself (ifindex, random MAC addresses of created links and what derives
  from them, carrier, timers) left out: links in ``ip -d -j`` detail, addresses, VXLAN FDB
  entries, the ``inet ghostwarden`` table normalised, forwarding sysctls, the dnsmasq files of
  the state directory and the command lines of the running dnsmasq processes. Two fingerprints
  are equal exactly when the host is in the same owned state.
* :class:`TransactionSite`: a lab host namespace with the foreign links the topologies use.
* The topologies ``A`` (committed first) and ``B`` (a long plan away from A).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import normalise_ruleset
from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.support.processes import communicate_within

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = ROOT / ".cache" / "collections"
MODULE = ROOT / "plugins" / "modules" / "ghostwarden_apply.py"
KILL_AFTER_ENV = "GHOSTWARDEN_TEST_KILL_AFTER"
MODULE_TIMEOUT = 120

# Foreign links of the lab host (besides the uplink up0): veth pairs whose first end a topology
# lists under ``ports``; the peer end stays in the host, unused.
PORTS = ("p1", "p2", "p3", "p4")


@dataclass
class ModuleRun:
    """One module process: exit status, the JSON it printed (None when killed or garbled), output."""

    rc: int
    result: dict | None
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.rc == -9

    def __str__(self) -> str:
        shown = json.dumps(self.result, indent=1, sort_keys=True) if self.result is not None else self.stdout[-3000:]
        return f"rc {self.rc}\n{shown}\nstderr: {self.stderr[-3000:]}"


def module_environment(extra: dict[str, str] | None = None, path_prefix: Path | None = None) -> dict[str, str]:
    # No SSH_CONNECTION: the confirm window's default stays 0 and no management source is added,
    # so rulesets are those of the topology alone.
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("ANSIBLE_") and key not in ("SSH_CONNECTION", "SSH_CLIENT", KILL_AFTER_ENV)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS_PATH), environment.get("PYTHONPATH")]))
    if path_prefix is not None:
        environment["PATH"] = f"{path_prefix}{os.pathsep}{environment.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    environment.update(extra or {})
    return environment


def module_args_file(directory: Path, arguments: dict, *, check: bool = False, diff: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"args-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        **arguments, "_ansible_check_mode": check, "_ansible_diff": diff,
    }}))
    return path


def start_module(directory: Path, arguments: dict, *, check: bool = False, diff: bool = False,
                 env: dict[str, str] | None = None, path_prefix: Path | None = None) -> subprocess.Popen:
    """The module process, started (for concurrent runs); :func:`finish_module` collects it."""
    args_file = module_args_file(directory, arguments, check=check, diff=diff)
    return subprocess.Popen([sys.executable, str(MODULE), str(args_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=module_environment(env, path_prefix))


def finish_module(process: subprocess.Popen, timeout: float = MODULE_TIMEOUT) -> ModuleRun:
    stdout, stderr = communicate_within(process, timeout, "the module", tail=3000)
    try:
        result = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        result = None
    return ModuleRun(process.returncode, result, stdout, stderr)


def run_module(directory: Path, arguments: dict, **options) -> ModuleRun:
    """Run ``ghostwarden_apply`` with ``arguments`` (see :func:`start_module` for the options)."""
    timeout = options.pop("timeout", MODULE_TIMEOUT)
    return finish_module(start_module(directory, arguments, **options), timeout)


def succeeded(run: ModuleRun) -> dict:
    """The result of a run that must have succeeded (an AssertionError with its output otherwise)."""
    assert run.rc == 0 and run.result is not None and not run.result.get("failed"), str(run)
    return run.result


# -- the fingerprint of a host's owned state ----------------------------------------------------

# Kernel-chosen per link: its index, the addresses of links the kernel gave a random MAC (created
# bridges and VXLAN devices) and the bridge and port ids derived from them, carrier (settles
# through linkwatch), counters and timers.
_VOLATILE_LINK_KEYS = re.compile(
    r"ifindex|link_index|.*_timer|carrier_changes|carrier_up_count|carrier_down_count|operstate|linkmode"
    r"|bridge_id|root_id|designated_root|designated_bridge|designated_port|designated_cost|root_port"
    r"|root_path_cost|topology_change.*|id|no|port_id|port_no|inet6_addr_gen_mode")
_CARRIER_FLAGS = {"LOWER_UP", "NO-CARRIER", "M-DOWN"}


def _without(value: object, pattern: re.Pattern) -> object:
    if isinstance(value, dict):
        return {key: _without(item, pattern) for key, item in value.items() if not pattern.fullmatch(key)}
    if isinstance(value, list):
        return [_without(item, pattern) for item in value]
    return value


def _link_view(link: dict) -> dict:
    view = _without(link, _VOLATILE_LINK_KEYS)
    view["flags"] = sorted(set(link.get("flags", [])) - _CARRIER_FLAGS)
    # MAC addresses are the kernel's choice (random for created links and for the lab's veths,
    # which a reboot simulation creates anew); the collection never sets one.
    for key in ("address", "broadcast", "perm_address"):
        view.pop(key, None)
    if "vxlan" == link.get("linkinfo", {}).get("info_kind"):
        # the VXLAN id is a real attribute (the generic "id" key pattern above removes it)
        view["vni"] = link["linkinfo"]["info_data"].get("id")
    return view


def owned_fingerprint(lab: Lab, ns: str, state_dir: Path) -> dict:
    """The whole state of ``ns`` a transaction may change (see the module docstring)."""
    links = json.loads(lab.run(ns, "ip", "-d", "-j", "link", "show").stdout)
    addresses = json.loads(lab.run(ns, "ip", "-j", "addr", "show").stdout)
    fdb = json.loads(lab.run(ns, "bridge", "-j", "fdb", "show").stdout or "[]")
    table = lab.run(ns, "nft", "list", "table", "inet", "ghostwarden", check=False)
    sysctls = lab.run(ns, "sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding").stdout
    dnsmasq_dir = state_dir / "dnsmasq"
    files = {path.name: path.read_text() for path in sorted(dnsmasq_dir.glob("*.conf"))} if dnsmasq_dir.is_dir() else {}
    return {
        "links": {link["ifname"]: _link_view(link) for link in links},
        "addresses": {
            entry["ifname"]: sorted(f"{item['local']}/{item['prefixlen']}" for item in entry.get("addr_info", [])
                                    if not item["local"].startswith("fe80:"))
            for entry in addresses
        },
        "fdb": sorted(json.dumps({key: entry.get(key) for key in ("ifname", "mac", "dst", "state", "flags")},
                                 sort_keys=True)
                      for entry in fdb if "dst" in entry),
        "ruleset": normalise_ruleset(table.stdout) if table.returncode == 0 else None,
        "sysctls": sysctls,
        "dnsmasq_files": files,
        "dnsmasq_processes": dnsmasq_command_lines(lab, ns),
    }


def dnsmasq_command_lines(lab: Lab, ns: str) -> list[str]:
    """Arguments of the dnsmasq processes running in ``ns`` (program name as ``dnsmasq``), sorted."""
    lines = []
    for pid in lab.pids(ns, "dnsmasq"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                argv = stream.read().decode().split("\0")
        except OSError:
            continue
        lines.append(" ".join(["dnsmasq", *argv[1:]]).strip())
    return sorted(lines)


def settled_fingerprint(lab: Lab, ns: str, state_dir: Path, *, timeout: float = 10) -> dict:
    """:func:`owned_fingerprint` once two readings agree (dnsmasq finishing its start)."""
    previous = owned_fingerprint(lab, ns, state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = owned_fingerprint(lab, ns, state_dir)
        if current == previous:
            return current
        previous = current
    raise AssertionError(f"the owned state of {ns} kept changing for {timeout:g}s")


def fingerprint_difference(got: dict, expected: dict) -> str:
    """The sections (and for links, the names) in which two fingerprints differ, for messages."""
    lines = []
    for section in sorted(set(got) | set(expected)):
        if got.get(section) == expected.get(section):
            continue
        if isinstance(got.get(section), dict) and isinstance(expected.get(section), dict):
            for key in sorted(set(got[section]) | set(expected[section])):
                if got[section].get(key) != expected[section].get(key):
                    lines.append(f"{section}.{key}: got {json.dumps(got[section].get(key), sort_keys=True)}"
                                 f"\n   expected {json.dumps(expected[section].get(key), sort_keys=True)}")
        else:
            lines.append(f"{section}: got {json.dumps(got.get(section), sort_keys=True)}"
                         f"\n   expected {json.dumps(expected.get(section), sort_keys=True)}")
    return "\n".join(lines)


def unparsable_state_files(state_dir: Path) -> list[str]:
    """Every ``*.json`` under ``state_dir`` that json.load refuses, with the error (none expected)."""
    problems = []
    for path in sorted(state_dir.rglob("*.json")):
        try:
            with open(path, encoding="utf-8") as stream:
                json.load(stream)
        except (OSError, ValueError) as error:
            problems.append(f"{path.relative_to(state_dir)}: {error}")
    return problems


# -- the lab host and the topologies ------------------------------------------------------------

@dataclass
class TransactionSite:
    """A lab host namespace (uplink ``up0`` to an "internet" namespace, ports ``p1``..``p4``)."""

    lab: Lab
    host: str
    inet: str
    state_dir: Path
    workdir: Path

    def arguments(self, topology: dict | None = None, **options: object) -> dict:
        arguments: dict = {"netns": self.host, "state_dir": str(self.state_dir)}
        if topology is not None:
            arguments["topology"] = topology
        arguments.update(options)
        return arguments

    def run(self, topology: dict | None = None, **options) -> ModuleRun:
        """``ghostwarden_apply`` on this host; keyword options other than run options are module options."""
        run_options = {key: options.pop(key) for key in ("check", "diff", "env", "path_prefix", "timeout")
                       if key in options}
        return run_module(self.workdir, self.arguments(topology, **options), **run_options)

    def fingerprint(self) -> dict:
        return settled_fingerprint(self.lab, self.host, self.state_dir)


def add_ports(lab: Lab, host: str) -> None:
    """The foreign links topologies enslave: veth pairs inside ``host`` (``p1``/``p1x`` ...), up."""
    for port in PORTS:
        lab.veth(host, port, host, f"{port}x")


def make_site(lab: Lab, tmp_path: Path) -> TransactionSite:
    host, inet = lab.add_uplinked_host()
    add_ports(lab, host)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    return TransactionSite(lab, host, inet, state_dir, tmp_path / "module")


def topology_a() -> dict:
    """Committed first: a NAT'd network with DHCP/DNS and a forward, a LAN bridge, a network B drops.

    Everything B changes is set explicitly here (``lan``'s MTU, IPv6 forwarding through
    ``nat_dev``'s IPv6 subnet): the planner leaves an MTU a topology stops setting and never
    unsets a sysctl (docs/plan.md), so only then is "apply A after B" A's state again.
    """
    return {
        "version": 1,
        "interfaces": {"uplink": "up0"},
        "networks": {
            "nat_dev": {
                "type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "masq_out": "uplink",
                "cidr6": "fd33::/64", "gw_ip6": "fd33::1", "dhcp": {"lease_time": "12h"}, "dns": {"enabled": True, "zones": ["dev.lan"]},
                "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
                "policy_profile": "routed-tight", "ports": ["p1"],
            },
            "lan": {"type": "bridge", "iface": "br-lan", "cidr": "10.50.0.0/24", "gw_ip": "10.50.0.1",
                    "mtu": 1500, "ports": ["p2"], "policy_profile": "l2-lan"},
            "old": {"type": "routed", "cidr": "10.70.0.0/24", "gw_ip": "10.70.0.1", "dhcp": True,
                    "ports": ["p4"]},
        },
    }


def topology_b() -> dict:
    """A long plan away from A: ``old`` goes (its port moves to a new network), addresses, MTU,
    DHCP, forwards and ports change, two routed networks and a VXLAN overlay with three peers come."""
    return {
        "version": 1,
        "interfaces": {"uplink": "up0"},
        "networks": {
            "nat_dev": {
                "type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.254", "masq_out": "uplink",
                "cidr6": "fd33::/64", "gw_ip6": "fd33::fe",
                "dhcp": {"lease_time": "1h"}, "dns": {"enabled": True, "zones": ["dev.lan", "b.lan"]},
                "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"},
                             {"public": "0.0.0.0:8080/tcp", "dst": "10.33.0.11:80"}],
                "policy_profile": "routed-tight", "ports": ["p1"],
            },
            "lan": {"type": "bridge", "iface": "br-lan", "cidr": "10.50.0.0/24", "gw_ip": "10.50.0.2",
                    "mtu": 1400, "ports": ["p2", "p3"], "policy_profile": "l2-lan"},
            "web": {"type": "routed", "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.1", "masq_out": "uplink",
                    "policy_profile": "public-web", "ports": ["p4"],
                    "forwards": [{"public": "0.0.0.0:8443/tcp", "dst": "10.40.0.10:443"}]},
            "new_net": {"type": "routed", "cidr": "10.60.0.0/24", "gw_ip": "10.60.0.1", "dhcp": True,
                        "dns": True, "masq_out": "uplink"},
            "overlay": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "local": "198.51.100.2",
                        "dev": "uplink", "peers": ["198.51.100.11", "198.51.100.12", "198.51.100.13"],
                        "cidr": "10.80.0.0/24", "gw_ip": "10.80.0.1"},
            "lab2": {"type": "routed", "cidr": "10.61.0.0/24", "gw_ip": "10.61.0.1", "cidr6": "fd61::/64",
                     "gw_ip6": "fd61::1", "dhcp": True, "policy_profile": "routed-tight"},
            "store": {"type": "bridge", "iface": "br-store", "cidr": "10.62.0.0/24", "gw_ip": "10.62.0.1",
                      "mtu": 9000, "policy_profile": "proxmox-storage"},
        },
    }


def topology_c() -> dict:
    """Another successor of A, for concurrent applies: ``old`` goes, ``web`` comes, ``lan`` grows a port."""
    topology = topology_a()
    networks = topology["networks"]
    del networks["old"]
    networks["lan"]["ports"] = ["p2", "p3"]
    networks["web"] = {"type": "routed", "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.1", "masq_out": "uplink",
                       "policy_profile": "public-web", "ports": ["p4"]}
    return topology
