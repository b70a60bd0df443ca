# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The host's route back to the controller, for the lock-out guard (core._lockout).

Read with ``ip -j route get`` (the kernel's own answer, policy routing included) and ``ip -j
addr``/``ip -j route`` of the interface it names. Read-only, so check mode uses it too.
"""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import ManagementRoute
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner

STEP = "management route"


def read_management_route(runner: CommandRunner, client: str) -> ManagementRoute | None:
    """The interface the host answers ``client`` through, with its addresses and connected subnets.

    None when the kernel has no route to ``client`` (then there is no path to protect) or the
    answer leaves through loopback (the controller is this host).
    """
    found = _json(runner, ["ip", "-j", "route", "get", client], allow_failure=True)
    if not found:
        return None
    iface = found[0].get("dev")
    if not isinstance(iface, str) or iface == "lo":
        return None
    gateway = found[0].get("gateway")
    subnets: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    addresses: list[str] = []
    for link in _json(runner, ["ip", "-j", "address", "show", "dev", iface]):
        for info in link.get("addr_info", []):
            local, prefix = info.get("local"), info.get("prefixlen")
            if not isinstance(local, str) or not isinstance(prefix, int):
                continue
            interface = ipaddress.ip_interface(f"{local}/{prefix}")
            if interface.is_link_local:
                continue  # never a public address of a forward, never a network's subnet
            addresses.append(local)
            subnets.add(interface.network)
    for family in ("-4", "-6"):
        for route in _json(runner, ["ip", "-j", family, "route", "show", "dev", iface, "scope", "link"]):
            destination = route.get("dst")
            if isinstance(destination, str) and destination != "default":
                network = ipaddress.ip_network(destination if "/" in destination else
                                               f"{destination}/{32 if family == '-4' else 128}", strict=False)
                if not network.is_link_local and not network.is_multicast:
                    subnets.add(network)
    return ManagementRoute(
        iface=iface,
        subnets=tuple(str(network) for network in sorted(subnets, key=lambda item: (item.version, item))),
        addresses=tuple(sorted(set(addresses))),
        gateway=gateway if isinstance(gateway, str) else None,
    )


def _json(runner: CommandRunner, argv: list[str], *, allow_failure: bool = False) -> list[dict]:
    result = runner.run(argv)
    if result.rc != 0:
        if allow_failure:
            return []
        raise BackendError(STEP, f"{' '.join(argv)} failed: {result.stderr.strip() or f'exit status {result.rc}'}")
    try:
        parsed = json.loads(result.stdout or "[]")
    except ValueError:
        raise BackendError(STEP, f"{' '.join(argv)} printed no JSON") from None
    return [item for item in parsed if isinstance(item, dict)] if isinstance(parsed, list) else []
