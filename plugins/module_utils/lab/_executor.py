# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The namespace lab on the machine (the work of ``netns_lab``): observe it, run the planner's steps.

:func:`run_lab` reads the lab as it is (``ip`` through the module's command runner, ``/proc``
for the processes in its namespaces, the files of its state root), lets the pure planner
(:mod:`lab._planner`) decide the steps, and runs them in order: ``ip`` commands, directories
and files, and the processes it stops and starts. A teardown never signals the module itself
or the play that runs it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, GhostwardenError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import module_runner
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner
from ansible_collections.ghostwarden.core.plugins.module_utils.lab._planner import (
    LAB_RECORD,
    LabSpec,
    LabState,
    ObservedLab,
    ObservedNamespace,
    ObservedProcess,
    StateRoot,
    Step,
    desired_lab,
    desired_view,
    empty_view,
    lab_facts,
    lab_namespaces,
    observed_view,
    parse_cmdline,
    parse_default_routes,
    parse_lab,
    parse_links,
    parse_netns_list,
    parse_pids,
    parse_sysctls,
    plan_absent,
    plan_present,
)

# Seconds a stopped process gets to exit after SIGTERM, and again after SIGKILL.
STOP_GRACE = 3.0
# Seconds a started server gets to show up in its namespace.
START_WAIT = 3.0
POLL = 0.05
# What clients with a web server need besides ip.
SERVICE_TOOLS = ("busybox", "setsid")


class LabHost:
    """Runs ``ip`` (found once, at ``ip_path``) through a command runner and reads ``/proc`` for the lab."""

    def __init__(self, runner: CommandRunner, ip_path: str) -> None:
        self.runner = runner
        self.ip_path = ip_path
        self.lineage = _lineage(os.getpid())

    def run(self, argv: Sequence[str]) -> str:
        """Run ``argv``; its output, or BackendError naming the command."""
        resolved = [self.ip_path if index == 0 and word == "ip" else word for index, word in enumerate(argv)]
        result = self.runner.run(resolved)
        if result.rc != 0:
            raise BackendError(shlex.join(argv), (result.stderr or result.stdout).strip() or f"exit status {result.rc}")
        return result.stdout

    def processes(self, netns: str) -> tuple[ObservedProcess, ...]:
        """The processes in ``netns`` with their argv, leaving out this module and its ancestors."""
        found = []
        for pid in parse_pids(self.run(["ip", "netns", "pids", netns])):
            if pid in self.lineage:
                continue
            argv = _cmdline(pid)
            if argv is not None:
                found.append(ObservedProcess(pid, argv))
        return tuple(found)


def _lineage(pid: int) -> frozenset[int]:
    """``pid`` and its ancestors: a teardown must not kill the play that runs it."""
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return frozenset(chain)


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return parse_cmdline(cmdline.read())
    except OSError:
        return None


def _gone(pid: int) -> bool:
    """Exited, or a zombie (its sockets and files are closed already)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _signal_and_wait(pids: Sequence[int], sig: int) -> list[int]:
    """Send ``sig`` to ``pids`` and wait up to STOP_GRACE; the pids still alive."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE
    alive = [pid for pid in pids if not _gone(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(POLL)
        alive = [pid for pid in alive if not _gone(pid)]
    return alive


def _stop(pids: Sequence[int]) -> list[int]:
    """SIGTERM, then SIGKILL what is left; the pids that survived both."""
    alive = _signal_and_wait(pids, signal.SIGTERM)
    return _signal_and_wait(alive, signal.SIGKILL) if alive else []


def observe(host: LabHost, spec: LabSpec, desired: LabState) -> ObservedLab:
    """The lab as it is: its namespaces with what the planner compares, its state root, directories and files."""
    wanted = {namespace.name: namespace for namespace in desired.namespaces}
    families: dict[str, set[int]] = {}
    for route in desired.routes:
        families.setdefault(route.netns, set()).add(route.family)
    namespaces = []
    for name in lab_namespaces(spec, parse_netns_list(host.run(["ip", "-j", "netns", "list"]))):
        links, addresses = parse_links(host.run(["ip", "-n", name, "-d", "-j", "address", "show"]), name)
        routes: tuple = ()
        for family in sorted(families.get(name, ())):
            routes += parse_default_routes(
                host.run(["ip", "-n", name, f"-{family}", "-j", "route", "show", "default"]), family, name)
        keys = list(wanted[name].sysctl_keys) if name in wanted else []
        sysctls = parse_sysctls(keys, host.run(["ip", "netns", "exec", name, "sysctl", "-n", *keys]), name) \
            if keys else ()
        namespaces.append(ObservedNamespace(name, links, addresses, routes, sysctls, host.processes(name)))
    files = []
    for path in desired.file_paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as existing:
                files.append((path, existing.read()))
        except OSError:
            continue
    return ObservedLab(
        namespaces=tuple(namespaces), state_root=_state_root(spec.state_root),
        directories=tuple(path for path in desired.directory_paths if os.path.isdir(path)), files=tuple(files))


def _state_root(path: str) -> StateRoot:
    if not os.path.lexists(path):
        return StateRoot(exists=False)
    if not os.path.isdir(path) or os.path.islink(path):
        return StateRoot(exists=True, empty=False)
    owner = None
    try:
        with open(os.path.join(path, LAB_RECORD), encoding="utf-8") as record:
            data = json.load(record)
        owner = data.get("lab") if isinstance(data, dict) and isinstance(data.get("lab"), str) else None
    except (OSError, ValueError):
        owner = None
    return StateRoot(exists=True, empty=not os.listdir(path), owner=owner)


def _write_file(path: str, content: str) -> None:
    """Write atomically: a reader sees the old file or the new one."""
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".netns_lab-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _log_tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            lines = log.read().strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"


def execute(host: LabHost, step: Step) -> list[str]:
    """Run one step; the warnings it has."""
    kind = step.kind
    try:
        if kind == "make_directory":
            os.makedirs(step.path, exist_ok=True)
            os.chmod(step.path, step.mode)
        elif kind == "write_file":
            _write_file(step.path, step.content)
        elif kind == "remove_directory":
            shutil.rmtree(step.path)
        elif kind == "stop_processes":
            # Listed again: what runs there now is what must go before the namespace does.
            survivors = _stop([process.pid for process in host.processes(step.netns)])
            if survivors:
                return [f"processes {', '.join(map(str, survivors))} in {step.netns} survived SIGKILL"]
        elif kind == "stop_service":
            # A pid seen when planning may belong to another program by now.
            pids = [pid for pid in step.pids if (_cmdline(pid) or ())[:len(step.match)] == step.match]
            survivors = _stop(pids)
            if survivors:
                return [f"server processes {', '.join(map(str, survivors))} in {step.netns} survived SIGKILL"]
        elif kind == "start_service":
            host.run(step.argv)
            deadline = time.monotonic() + START_WAIT
            while not any(process.argv == step.match for process in host.processes(step.netns)):
                if time.monotonic() > deadline:
                    raise BackendError(f"start_service in {step.netns}",
                                       f"{shlex.join(step.match)} is not running; {step.path}: {_log_tail(step.path)}")
                time.sleep(POLL)
        else:
            host.run(step.argv)
    except OSError as error:
        raise BackendError(f"{kind} {step.path or step.netns}", error.strerror or str(error)) from None
    return []


def run_lab(module: AnsibleModule) -> dict:
    """netns_lab's work: make the lab what the options say (or remove it); the module's result."""
    if os.geteuid() != 0:
        raise GhostwardenError(f"netns_lab must run as root (network namespaces need CAP_SYS_ADMIN); "
                               f"it runs as uid {os.geteuid()}")
    present = module.params["state"] == "present"
    spec = parse_lab(module.params)
    desired = desired_lab(spec, ipv6=os.path.isdir("/proc/sys/net/ipv6"))
    host = LabHost(module_runner(module, None), module.get_bin_path("ip", required=True))
    if present and desired.services:
        for tool in SERVICE_TOOLS:
            module.get_bin_path(tool, required=True)
    observed = observe(host, spec, desired)
    plan = plan_present(spec, desired, observed) if present else plan_absent(spec, desired, observed)
    warnings = list(plan.warnings)
    if not module.check_mode:
        for step in plan.steps:
            warnings += execute(host, step)
    result = dict(changed=bool(plan.steps), plan=[step.to_dict() for step in plan.steps], **lab_facts(spec))
    if module._diff:
        result["diff"] = {"before": observed_view(spec, desired, observed),
                          "after": desired_view(desired) if present else empty_view()}
    if warnings:
        result["warnings"] = warnings
    return result
