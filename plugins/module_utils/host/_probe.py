# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Checks run on the target after an apply (``probes`` of ``ghostwarden_apply``); any failure rolls back.

Every check is one small command through the :class:`CommandRunner`, so it runs inside the
namespace when one is set and sees that namespace's routes, firewall and ``resolv.conf``
(``ip netns exec`` mounts ``/etc/netns/<ns>/resolv.conf``). The commands exist on every
Debian/Proxmox host, each bounded by coreutils ``timeout``:

* ``{tcp: "host:port"}``: ``bash -c 'exec 3<>/dev/tcp/host/port'``, a TCP connect and nothing
  else (bash resolves names through getaddrinfo, IPv4 and IPv6);
* ``{ping: "host"}``: ``ping -q -c 1 -W <s>`` (iputils or busybox), one echo request;
* ``{dns: "name"}``: ``getent ahosts <name>``, the libc resolver as every program on the host sees
  it (nsswitch, ``/etc/hosts``, then DNS).

``docs/confirm-window.md`` explains where probes sit in the transaction.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner

KINDS = ("tcp", "ping", "dns")
KEYS = (*KINDS, "timeout")
MIN_TIMEOUT = 1
MAX_TIMEOUT = 300
# coreutils timeout's exit status when the time ran out.
TIMED_OUT = 124
# Seconds after TERM before timeout sends KILL to a command that ignores TERM.
KILL_AFTER = "1"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_RTT_RE = re.compile(r"= ([0-9.]+)/")
# bash prefixes its errors with the script name and "line 1: ".
TCP_SCRIPT_NAME = "tcp-probe"
TCP_SCRIPT = 'exec 3<>"/dev/tcp/$1/$2"'


@dataclass(frozen=True)
class Probe:
    """One validated check: ``kind`` (tcp, ping, dns), its target and timeout in seconds."""

    kind: str
    target: str  # "host:port" as given for tcp, a host for ping, a name for dns
    host: str  # without brackets
    port: int | None
    timeout: float

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: ``ok``, a one-line ``detail`` and how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "seconds": self.seconds}


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version


def _host_issue(host: str) -> str | None:
    """Why ``host`` is neither an IP address nor a host name, or None."""
    if _is_ip(host):
        return None
    if len(host) > 253 or not HOSTNAME_RE.fullmatch(host) or host.replace(".", "").isdigit():
        return "is not an IP address or a host name"
    return None


def _parse_tcp(value: str, path: str, issues: list[Issue]) -> tuple[str, int] | None:
    if value.startswith("["):
        host, separator, port_text = value[1:].partition("]:")
        if not separator or not _is_ip(host, 6):
            issues.append(Issue(path, f"{value!r} is not [ipv6-address]:port"))
            return None
    else:
        host, separator, port_text = value.rpartition(":")
        if not separator or not host:
            issues.append(Issue(path, f"{value!r} is not host:port"))
            return None
        if ":" in host:
            issues.append(Issue(path, f"{value!r}: an IPv6 address needs brackets, as in [{host}]:{port_text}"))
            return None
        problem = _host_issue(host)
        if problem:
            issues.append(Issue(path, f"{value!r}: {host!r} {problem}"))
            return None
    if not port_text.isdigit() or not port_text.isascii():
        issues.append(Issue(path, f"{value!r}: port {port_text!r} is not a number"))
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        issues.append(Issue(path, f"{value!r}: port {port} is out of range 1-65535"))
        return None
    return host, port


def _check_timeout(value: Any, path: str, issues: list[Issue]) -> float | None:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or not MIN_TIMEOUT <= value <= MAX_TIMEOUT):
        issues.append(Issue(path, f"{value!r} is not a number of seconds in {MIN_TIMEOUT}-{MAX_TIMEOUT}"))
        return None
    return float(value)


def check_probes(probes: Any, *, default_timeout: float = 5, path: str = "probes") -> list[Probe]:
    """The probes of ``probes`` (a list of dicts, or None for none), validated, in input order.

    Raises ``ValidationError`` with one ``Issue`` per problem, each naming its path
    (``probes[2].tcp``) and the value. Nothing runs; call this before changing the host.
    """
    issues: list[Issue] = []
    default = _check_timeout(default_timeout, "default_timeout", issues)
    if probes is None:
        probes = []
    if not isinstance(probes, list):
        issues.append(Issue(path, f"expected a list of checks, found {type(probes).__name__}: {probes!r}"))
        raise ValidationError(issues)
    checked: list[Probe] = []
    for index, entry in enumerate(probes):
        entry_path = f"{path}[{index}]"
        if not isinstance(entry, dict):
            issues.append(Issue(entry_path, f"expected a mapping with one of tcp, ping or dns, found "
                                            f"{type(entry).__name__}: {entry!r}"))
            continue
        for key in entry:
            if key not in KEYS:
                issues.append(Issue(f"{entry_path}.{key}" if isinstance(key, str) else entry_path,
                                    f"unknown key {key!r} (allowed: {', '.join(KEYS)})"))
        kinds = [kind for kind in KINDS if kind in entry]
        if len(kinds) != 1:
            found = "none" if not kinds else " and ".join(kinds)
            issues.append(Issue(entry_path, f"needs exactly one of tcp, ping or dns, found {found}"))
            continue
        kind = kinds[0]
        timeout = default
        if "timeout" in entry:
            timeout = _check_timeout(entry["timeout"], f"{entry_path}.timeout", issues)
        value = entry[kind]
        value_path = f"{entry_path}.{kind}"
        if not isinstance(value, str):
            issues.append(Issue(value_path, f"expected a string, found {type(value).__name__}: {value!r}"))
            continue
        port = None
        if kind == "tcp":
            parsed = _parse_tcp(value, value_path, issues)
            if parsed is None:
                continue
            host, port = parsed
        else:
            host = value
            problem = _host_issue(host) if kind == "ping" else (
                None if HOSTNAME_RE.fullmatch(host) and len(host) <= 253 else "is not a DNS name")
            if problem:
                issues.append(Issue(value_path, f"{value!r} {problem}"))
                continue
        if timeout is not None:
            checked.append(Probe(kind, value, host, port, timeout))
    if issues:
        raise ValidationError(issues)
    return checked


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


def _argv(probe: Probe) -> list[str]:
    bound = ["timeout", "-k", KILL_AFTER, _seconds_text(probe.timeout)]
    if probe.kind == "tcp":
        return [*bound, "bash", "-c", TCP_SCRIPT, TCP_SCRIPT_NAME, probe.host, str(probe.port)]
    if probe.kind == "ping":
        # -W takes whole seconds in older iputils; the outer timeout holds the exact bound.
        return [*bound, "ping", "-q", "-c", "1", "-W", str(max(1, math.ceil(probe.timeout))), probe.host]
    return [*bound, "getent", "ahosts", probe.host]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _detail(probe: Probe, rc: int, stdout: str, stderr: str) -> str:
    limit = _seconds_text(probe.timeout)
    if rc == TIMED_OUT:
        return {"tcp": f"no connection within {limit} s", "ping": f"no reply within {limit} s",
                "dns": f"no answer within {limit} s"}[probe.kind]
    if probe.kind == "tcp":
        if rc == 0:
            return "connected"
        message = _first_line(stderr)
        for prefix in (f"{TCP_SCRIPT_NAME}: ", "line 1: "):
            message = message[len(prefix):] if message.startswith(prefix) else message
        return message or f"bash exited {rc}"
    if probe.kind == "ping":
        if rc == 0:
            found = _RTT_RE.search(stdout)
            return f"reply in {found.group(1)} ms" if found else "reply received"
        return _first_line(stderr) or f"no reply within {limit} s"
    if rc == 0:
        addresses = sorted({line.split()[0] for line in stdout.splitlines() if line.split()},
                           key=lambda text: (":" in text, text))
        return ", ".join(addresses)
    if rc == 2:
        return f"{probe.host} not found"
    return _first_line(stderr) or f"getent exited {rc}"


def run_probes(probes: list[Any], runner: CommandRunner, *, default_timeout: float = 5) -> list[ProbeResult]:
    """Run every probe, in order, and return one result each (all run, also after a failure).

    ``probes`` are dicts as the module takes them (or :class:`Probe` objects from
    :func:`check_probes`); invalid ones raise ``ValidationError`` before anything runs. Each probe
    is bounded by its timeout (plus one second for a command that ignores SIGTERM), so the whole
    call takes at most the sum of the timeouts.
    """
    if isinstance(probes, list) and probes and all(isinstance(probe, Probe) for probe in probes):
        checked = list(probes)
    else:
        checked = check_probes(probes, default_timeout=default_timeout)
    results = []
    for probe in checked:
        started = time.monotonic()
        result = runner.run(_argv(probe))
        seconds = round(time.monotonic() - started, 3)
        results.append(ProbeResult(probe.name, result.rc == 0, _detail(probe, result.rc, result.stdout, result.stderr),
                                   seconds))
    return results
