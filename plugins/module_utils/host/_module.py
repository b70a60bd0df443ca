# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The module base of every module, and what the host modules share: options, the runner, results.

:func:`run` is the whole ``main()`` of every module after its argspec (the Proxmox VE and lab
modules use it too). Every module's result speaks one vocabulary: ``changed``, ``plan`` (the
operations, each a dict with its ``kind``), ``changes`` (how many of each kind) and, in diff
mode, ``diff``. The pure core does not know AnsibleModule.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, PYROUTE2, Dependency
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    GhostwardenError,
    Issue,
    MissingDependencyError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import (
    ManagementConnection,
    find_lockouts,
    lockout_outcome,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import DEFAULT_STATE_DIR, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import ApplyResult, HostDriver
from ansible_collections.ghostwarden.core.plugins.module_utils.host._mgmt_route import read_management_route
from ansible_collections.ghostwarden.core.plugins.module_utils.host._results import (
    changed_diff,
    kind_counts,
    nonzero_counts,
    plan_keys,
    summary_line,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner

NETNS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

HOST_ARGUMENT_SPEC = dict(
    netns=dict(type="str"),
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
)
# What the modules that change or read the live host need.
HOST_LIBRARIES = (NETADDR, PYROUTE2)

# Where the modules that read a topology look for profile files (docs/policy-profiles.md): this
# collection's directory, then the original Ghostwarden CLI's.
DEFAULT_POLICY_DIRS = ["/etc/ghostwarden/policies", "/etc/gwarden/policies"]
POLICY_DIRS_ARGUMENT_SPEC = dict(
    policy_dirs=dict(type="list", elements="path", default=DEFAULT_POLICY_DIRS),
)

# The modules that apply a topology refuse one that can lock the operator out, unless told (core._lockout).
LOCKOUT_ARGUMENT_SPEC = dict(
    allow_lockout=dict(type="bool", default=False),
)

# Results are compact unless asked (host._results): AWX stores every task result.
RETURN_CONTENT_ARGUMENT_SPEC = dict(
    return_content=dict(type="bool", default=False),
)

# A topology argument larger than this is echoed in the result as its size and digest (compact_invocation).
LARGE_TOPOLOGY_BYTES = 4096

# ghostwarden_apply's options, here so that its action plugin validates a task with the module's own spec.
APPLY_STATES = ["present", "absent", "gathered", "rendered", "rolled_back", "confirmed"]
APPLY_ARGUMENT_SPEC = dict(
    topology=dict(type="dict"),
    src=dict(type="path"),
    state=dict(type="str", default="present", choices=APPLY_STATES),
    management_from_connection=dict(type="bool", default=True),
    confirm_timeout=dict(type="int"),
    probes=dict(type="list", elements="dict", default=[]),
    history=dict(type="int", default=10),
    generation=dict(type="int"),
    confirm_token=dict(type="str", no_log=False),
    **LOCKOUT_ARGUMENT_SPEC,
    **RETURN_CONTENT_ARGUMENT_SPEC,
    **POLICY_DIRS_ARGUMENT_SPEC,
    **HOST_ARGUMENT_SPEC,
)
APPLY_OPTION_RULES = dict(
    mutually_exclusive=[("topology", "src")],
    required_if=[("state", "present", ("topology", "src"), True), ("state", "rendered", ("topology", "src"), True),
                 ("state", "confirmed", ("confirm_token",))],
)


def require_libraries(module: AnsibleModule, *dependencies: Dependency) -> None:
    """Fail with what to install when a library the module needs is missing, before it does anything."""
    for dependency in dependencies:
        if not dependency.available:
            module.fail_json(msg=missing_required_lib(dependency.requirement), exception=dependency.error)


def checked_netns(value: str | None) -> str | None:
    """The ``netns`` option: a namespace that exists (`ip netns list`), never created here."""
    if value is None:
        return None
    if not NETNS_RE.fullmatch(value) or value in (".", ".."):
        raise ValidationError(Issue("netns", f"{value!r} is not a network namespace name"))
    if not os.path.exists(os.path.join("/run/netns", value)):
        raise ValidationError(Issue("netns", f"network namespace {value!r} does not exist (see ip netns list)"))
    return value


def module_runner(module: AnsibleModule, netns: str | None) -> CommandRunner:
    def run(argv, stdin):
        rc, stdout, stderr = module.run_command(list(argv), data=stdin, binary_data=True)
        return CommandResult(rc, stdout, stderr)

    return CommandRunner(run, netns)


def host_driver(module: AnsibleModule) -> HostDriver:
    netns = checked_netns(module.params["netns"])
    return HostDriver(state_dir=module.params["state_dir"], netns=netns, runner=module_runner(module, netns))


def connection_sources(enabled: bool) -> list[str]:
    """The address of the SSH client this play runs over (DESIGN 4.5), when the module runs over SSH."""
    if not enabled:
        return []
    connection = os.environ.get("SSH_CONNECTION", "").split()
    return connection[:1]


def lockout_guard(module: AnsibleModule, topology: Topology, *, protect_connection: bool) -> Callable[[HostDriver], list[str]]:
    """The lock-out check a host driver runs before it plans (core._lockout), also in check mode.

    The play's SSH connection and the route back to it count only when the module works in the
    namespace the connection arrived in (``netns`` unset): another namespace cannot cut it.
    """
    allowed = module.params["allow_lockout"]

    def guard(driver: HostDriver) -> list[str]:
        connection = None if driver.netns else ManagementConnection.parse(os.environ.get("SSH_CONNECTION"))
        route = read_management_route(driver.runner, connection.client) if connection is not None else None
        issues = find_lockouts(topology, connection=connection, connection_protected=protect_connection, route=route)
        return lockout_outcome(issues, allowed=allowed)

    return guard


def apply_result(module: AnsibleModule, result: ApplyResult) -> dict:
    """The common result keys of a host change, compact unless ``return_content``; ``diff`` only in diff mode."""
    changes = nonzero_counts(result.changes)
    output = {
        "changed": result.changed,
        **plan_keys(result.operations, full=module.params.get("return_content", False)),
        "changes": changes,
        "summary": summary_line(changes, result.dnsmasq, check_mode=module.check_mode),
        "dnsmasq": result.dnsmasq,
        "generation": result.records.generation,
        "rolled_back": False,
    }
    if result.confirm is not None:
        output["confirm"] = result.confirm
    if result.recovered:
        output["recovered"] = result.recovered
    if module._diff and result.changed:
        output["diff"] = changed_diff(result.before, result.after)
    return output


def compact_invocation(module: AnsibleModule) -> dict | None:
    """The task's arguments as the result echoes them, with a large ``topology`` replaced by its size and digest.

    Ansible puts every module argument into the result (``invocation``), and a topology of
    hundreds of networks would make a compact result large again. None leaves the echo as it is:
    small topologies, and ``return_content: true``.
    """
    topology = module.params.get("topology")
    if module.params.get("return_content") or not isinstance(topology, dict):
        return None
    text = json.dumps(topology, sort_keys=True, default=str)
    if len(text) <= LARGE_TOPOLOGY_BYTES:
        return None
    networks = topology.get("networks")
    count = len(networks) if isinstance(networks, dict) else 0
    summary = {"omitted": f"{len(text)} bytes, {count} networks; return_content: true echoes it whole",
               "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return {"module_args": {**module.params, "topology": summary}}


def fail(module: AnsibleModule, error: GhostwardenError) -> None:
    """The one way an error of the collection ends a module: what to install, or its message and keys."""
    if isinstance(error, MissingDependencyError):
        module.fail_json(msg=missing_required_lib(error.requirement), exception=error.trace)
    module.fail_json(msg=str(error), **error.to_result())


def run(module: AnsibleModule, work: Callable[[AnsibleModule], dict], *, needs: tuple[Dependency, ...]) -> None:
    """Every module's ``main()`` after its argspec: ``work`` the module's job, ``needs`` the libraries it needs.

    The libraries are checked before anything is done; a :class:`GhostwardenError` fails the task once;
    the result's ``warnings`` go through ``module.warn``; a result without ``plan`` has an empty one,
    and ``changes`` counts the plan when ``work`` did not count it.
    """
    require_libraries(module, *needs)
    try:
        result = work(module)
    except GhostwardenError as error:
        fail(module, error)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    invocation = compact_invocation(module)
    if invocation is not None:
        result["invocation"] = invocation
    result.setdefault("plan", [])
    result.setdefault("changes", kind_counts(operation["kind"] for operation in result["plan"]))
    module.exit_json(**result)
