# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""What the Proxmox VE modules share: the ``api_*`` options, the libraries they need, the topology option.

The options are named as community.proxmox names them, with the same ``PROXMOX_*``
environment fallbacks, so that users can keep their variables. The modules run through the
one module base, :func:`host._module.run`. proxmox_attach's options are here as well, so that
its action plugin reads a task exactly as the module does.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import PROXMOXER, REQUESTS
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import load_topology_file, parse_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import (
    DEFAULT_PORT,
    ConnectionParams,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._nic import QEMU_MODELS

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
# What every Proxmox VE module needs to reach the API.
PROXMOX_LIBRARIES = (REQUESTS, PROXMOXER)

ATTACH_ARGUMENT_SPEC = dict(
    vmid=dict(type="int"),
    name=dict(type="str"),
    node=dict(type="str"),
    guest_type=dict(type="str", choices=["qemu", "lxc"]),
    guest_status=dict(type="str", choices=["running", "stopped"]),
    interface=dict(type="str"),
    network=dict(type="str"),
    topology=dict(type="raw"),
    bridge=dict(type="str"),
    tag=dict(type="int"),
    trunks=dict(type="raw"),
    firewall=dict(type="bool"),
    link_down=dict(type="bool"),
    rate=dict(type="float"),
    mtu=dict(type="int"),
    queues=dict(type="int"),
    model=dict(type="str", choices=list(QEMU_MODELS)),
    mac=dict(type="str"),
    container_interface=dict(type="str"),
    ip=dict(type="str"),
    ip6=dict(type="str"),
    gw=dict(type="str"),
    gw6=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    **PROXMOX_ARGUMENT_SPEC,
)
ATTACH_OPTION_RULES = dict(
    mutually_exclusive=[("vmid", "name"), ("network", "bridge")],
    required_one_of=[("vmid", "name")],
    required_together=[("network", "topology"), ("node", "guest_type")],
    required_if=[("state", "absent", ("interface",))],
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
