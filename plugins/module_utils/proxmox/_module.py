# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""What the Proxmox VE modules share: the ``api_*`` options, library checks and one failure path.

The options are named as community.proxmox names them, with the same ``PROXMOX_*``
environment fallbacks, so that users can keep their variables.
"""

from __future__ import annotations

from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, PROXMOXER, REQUESTS
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError, Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import require_libraries
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import (
    DEFAULT_PORT,
    ConnectionParams,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import load_topology_file, parse_topology

DEFAULT_API_TIMEOUT = 30

PROXMOX_ARGUMENT_SPEC = dict(
    api_host=dict(type="str", required=True, fallback=(env_fallback, ["PROXMOX_HOST"])),
    api_port=dict(type="int", fallback=(env_fallback, ["PROXMOX_PORT"])),
    api_user=dict(type="str", fallback=(env_fallback, ["PROXMOX_USER"])),
    api_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_PASSWORD"])),
    api_token_id=dict(type="str", no_log=False, fallback=(env_fallback, ["PROXMOX_TOKEN_ID"])),
    api_token_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["PROXMOX_TOKEN_SECRET"])),
    api_timeout=dict(type="int", default=DEFAULT_API_TIMEOUT),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["PROXMOX_VALIDATE_CERTS"])),
    ca_path=dict(type="path", fallback=(env_fallback, ["PROXMOX_CA_PATH"])),
)


def connection_params(params: dict) -> ConnectionParams:
    """The connection part of a module's validated parameters."""
    return ConnectionParams(
        api_host=params["api_host"],
        api_port=params["api_port"] if params["api_port"] is not None else DEFAULT_PORT,
        api_user=params["api_user"] or None,
        api_password=params["api_password"] or None,
        api_token_id=params["api_token_id"] or None,
        api_token_secret=params["api_token_secret"] or None,
        validate_certs=params["validate_certs"],
        ca_path=params["ca_path"] or None,
        timeout=params["api_timeout"],
    )


def topology_option(value: object) -> Topology:
    """A ``topology`` option as ghostwarden_apply takes it: the topology itself, or the path of a topology file."""
    if isinstance(value, str):
        return parse_topology(load_topology_file(value))
    if isinstance(value, dict):
        return parse_topology(value)
    raise ValidationError(Issue("topology", f"expected a topology (a mapping) or the path of a topology file, "
                                            f"got {type(value).__name__}"))


def require_netaddr(module: AnsibleModule) -> None:
    """For modules that read a topology."""
    require_libraries(module, NETADDR)


def run_proxmox_module(module: AnsibleModule, run: Callable[[AnsibleModule], dict]) -> None:
    """The whole ``main()`` after the argspec: library checks, one error hierarchy to fail_json, warnings."""
    require_libraries(module, REQUESTS, PROXMOXER)
    try:
        result = run(module)
    except GhostwardenError as error:
        module.fail_json(msg=str(error), **error.to_result())
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
