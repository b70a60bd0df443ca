# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ``proxmox_attach``: one guest lookup per play host instead of one per guest.

Each run of the module is a new process, so on its own it would ask ``/cluster/resources``
for every guest. When the task runs on the controller (local connection), this plugin asks
once, with the same client the module uses, keeps the guest map for the rest of the worker
process (a loop over guests runs in one worker) and hands the module ``node``,
``guest_type`` and ``guest_status``. The task's options are read with the module's own argument
spec (its ``PROXMOX_*`` environment fallbacks included), so the plugin connects as the module
would. Anything unusual - a remote connection, options the module would refuse, a guest not in
the map, an API error - leaves the lookup to the module, which then fails with its usual message
if something is really wrong.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import Guest, ProxmoxClient
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._module import (
    ATTACH_ARGUMENT_SPEC,
    ATTACH_OPTION_RULES,
    connection_params,
)

display = Display()

MODULE = "ghostwarden.core.proxmox_attach"
# The options this plugin fills in from its lookup; given by the task, the module uses them as they are.
HINTS = ("node", "guest_type", "guest_status")

# (api_host, api_port, identity, inventory_hostname) -> the cluster's guests, for this worker process.
_GUESTS: dict[tuple[str, int, str, str], tuple[Guest, ...]] = {}


class ActionModule(ActionBase):
    """Run ``proxmox_attach`` with the guest's node, type and state looked up once per play host."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        module_name = getattr(self._task, "resolved_action", None) or MODULE
        arguments = dict(self._task.args)
        guest = self._guest(arguments, task_vars or {})
        if guest is not None:
            arguments.pop("name", None)
            arguments.update(vmid=guest.vmid, node=guest.node, guest_type=guest.type)
            if guest.status in ("running", "stopped"):
                arguments["guest_status"] = guest.status
        result.update(self._execute_module(module_name=module_name, module_args=arguments, task_vars=task_vars,
                                           wrap_async=self._task.async_val))
        return result

    def _guest(self, arguments: dict[str, Any], task_vars: dict[str, Any]) -> Guest | None:
        """The guest from this worker's map (looked up on the first use), or None to let the module look."""
        if self._connection.transport != "local" or any(arguments.get(hint) is not None for hint in HINTS):
            return None
        if self._environment_names_proxmox():
            return None  # the module would see other PROXMOX_* values than this process
        validation = ArgumentSpecValidator(ATTACH_ARGUMENT_SPEC, **ATTACH_OPTION_RULES).validate(arguments)
        if validation.error_messages:
            return None
        options = validation.validated_parameters
        params = connection_params(options)
        vmid, name = options["vmid"], options["name"]  # exactly one of them (the spec's rules)
        key = (params.api_host, params.api_port, params.identity, str(task_vars.get("inventory_hostname", "")))
        guests = _GUESTS.get(key)
        if guests is None:
            try:
                guests = ProxmoxClient.connect(params).guests()
            except GhostwardenError as error:
                display.vvv(f"proxmox_attach: no guest lookup on the controller ({error}); the module looks itself")
                return None
            _GUESTS[key] = guests
            display.vvv(f"proxmox_attach: {len(guests)} guests of {params.api_host} cached for this worker")
        matches = [guest for guest in guests if (guest.vmid == vmid if vmid is not None else guest.name == name)]
        return matches[0] if len(matches) == 1 else None

    def _environment_names_proxmox(self) -> bool:
        environment = self._task.environment
        if not environment:
            return False
        entries = environment if isinstance(environment, list) else [environment]
        for entry in entries:
            if not isinstance(entry, dict):
                return True  # a template we cannot read here: be safe
            if any(str(name).startswith("PROXMOX_") for name in entry):
                return True
        return False
