# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Attach, change or detach one NIC of a Proxmox VE guest (the work of ``proxmox_attach``).

One read of ``GET .../pending`` gives the running values, the values after pending changes
and the digest; the NIC is compared with what the task asks for in canonical form, and only a
difference is written - with the digest, retried once after a concurrent edit, through the
asynchronous POST on a running VM. A second read after the write tells which keys still wait
for a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import Guest, ProxmoxClient, ProxmoxError
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._nic import (
    GUEST_TYPES,
    QEMU,
    GuestConfig,
    NicSettings,
    desired_nic,
    find_attached,
    first_free_interface,
    format_nic,
    guest_config_from_pending,
    interface_number,
    nic_mac,
    stays_pending,
)

# The only writes this module makes: set the NIC, drop its pending change, or delete it.
SET, REVERT, DELETE = "set", "revert", "delete"
TASK_TIMEOUT = 300


@dataclass(frozen=True)
class AttachRequest:
    """What one ``proxmox_attach`` task asks for; ``node``/``guest_type``/``guest_status`` skip the lookup."""

    state: str  # present | absent
    settings: NicSettings
    vmid: int | None = None
    name: str | None = None
    interface: str | None = None
    node: str | None = None
    guest_type: str | None = None
    guest_status: str | None = None


@dataclass(frozen=True)
class _Plan:
    interface: str
    before: dict[str, str] | None  # the NIC as configured (pending changes applied)
    after: dict[str, str] | None
    write: str | None  # SET, REVERT, DELETE or None


def _guest(client: ProxmoxClient, request: AttachRequest) -> Guest:
    if request.vmid is not None and request.node and request.guest_type in GUEST_TYPES:
        return Guest(vmid=request.vmid, name=request.name, node=request.node, type=request.guest_type,
                     status=request.guest_status or "unknown")
    return client.locate_guest(vmid=request.vmid, name=request.name)


def _read(client: ProxmoxClient, guest: Guest) -> GuestConfig:
    return guest_config_from_pending(client.get(f"{guest.path}/pending"))


def _plan(guest: Guest, config: GuestConfig, request: AttachRequest) -> _Plan:
    settings = request.settings
    if request.state == "absent":
        if request.interface is None:
            raise ValidationError(Issue("interface", "required with state=absent: which NIC to detach"))
        interface_number(request.interface)
        before = config.nic(request.interface, guest.type)
        if before is None:
            return _Plan(request.interface, None, None, None)
        pending_only = request.interface not in config.current
        return _Plan(request.interface, before, None, REVERT if pending_only else DELETE)
    interface = request.interface
    if interface is None:
        if settings.bridge is None:
            raise ValidationError(Issue("interface", "give interface, or network or bridge to find or add the NIC on"))
        interface = (find_attached(config.nics(guest.type), settings.bridge, settings.tag)
                     or first_free_interface(set(config.current) | set(config.merged)))
    else:
        interface_number(interface)
    before = config.nic(interface, guest.type)
    # A NIC whose deletion is pending still runs, with its MAC: asking for it again starts from it.
    base = before if before is not None else config.current_nic(interface, guest.type)
    after = desired_nic(guest.type, interface, base, settings)
    if after == before:
        return _Plan(interface, before, after, None)
    # Back to the running value: dropping the pending change is the exact way there.
    if interface in config.pending and config.current_nic(interface, guest.type) == after:
        return _Plan(interface, before, after, REVERT)
    return _Plan(interface, before, after, SET)


def _write(client: ProxmoxClient, guest: Guest, plan: _Plan, digest: str | None) -> None:
    params: dict[str, object] = {"digest": digest}
    if plan.write == SET:
        params[plan.interface] = format_nic(plan.after, guest.type)
    elif plan.write == DELETE:
        params["delete"] = plan.interface
    else:
        params["revert"] = plan.interface
    path = f"{guest.path}/config"
    # A running VM (or one whose state is unknown) gets the asynchronous POST that PVE recommends for
    # hotplug; PUT, synchronous, for stopped VMs and for containers (they have no POST).
    if guest.type == QEMU and guest.status != "stopped":
        client.wait_task(client.post(path, **params), timeout=TASK_TIMEOUT)
    else:
        client.put(path, **params)


def _text(fields: dict[str, str] | None, guest_type: str) -> str | None:
    return None if fields is None else format_nic(fields, guest_type)


def _predicted_pending(guest: Guest, config: GuestConfig, plan: _Plan) -> tuple[str, ...]:
    pending = set(config.pending)
    if plan.write is None:
        return tuple(sorted(pending))
    pending.discard(plan.interface)
    live = config.current_nic(plan.interface, guest.type)
    target = None if plan.write == DELETE else (live if plan.write == REVERT else plan.after)
    if stays_pending(guest.type, guest.status == "running", config.merged.get("hotplug"), live, target):
        pending.add(plan.interface)
    return tuple(sorted(pending))


def attach(client: ProxmoxClient, request: AttachRequest, *, check_mode: bool, diff: bool) -> dict:
    """Make the guest's NIC what ``request`` asks for; the module's result."""
    guest = _guest(client, request)
    config = _read(client, guest)
    plan = _plan(guest, config, request)
    before_text = _text(plan.before, guest.type)
    if plan.write is not None and not check_mode:
        try:
            _write(client, guest, plan, config.digest)
        except ProxmoxError as error:
            if not error.is_digest_mismatch:
                raise
            # Someone changed the guest between our read and our write: decide again on fresh data.
            config = _read(client, guest)
            plan = _plan(guest, config, request)
            before_text = _text(plan.before, guest.type)
            if plan.write is not None:
                try:
                    _write(client, guest, plan, config.digest)
                except ProxmoxError as second:
                    if not second.is_digest_mismatch:
                        raise
                    raise ProxmoxError(f"{plan.interface} of {guest}: the configuration changed again while this "
                                       "task wrote it (digest mismatch twice in a row); this task changed nothing, "
                                       "run it again", method=second.method, path=second.path,
                                       status=second.status, pve_message=second.pve_message) from None
    if plan.write is not None and not check_mode:
        final = _read(client, guest)
        after = final.nic(plan.interface, guest.type)
        pending = final.pending
    else:
        after = plan.after
        pending = _predicted_pending(guest, config, plan)
    after_text = _text(after, guest.type)
    result = {
        "changed": plan.write is not None,
        "vmid": guest.vmid,
        "node": guest.node,
        "guest_type": guest.type,
        "interface": plan.interface,
        "before": before_text,
        "after": after_text,
        "mac": nic_mac(after, guest.type),
        "pending": list(pending),
        "reboot_required": plan.interface in pending,
    }
    if diff:
        header = f"{guest} {plan.interface}"
        result["diff"] = {"before_header": header, "after_header": header,
                          "before": f"{plan.interface}: {before_text}\n" if before_text else "",
                          "after": f"{plan.interface}: {after_text}\n" if after_text else ""}
    return result
