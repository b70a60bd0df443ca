# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``attach`` (the work of proxmox_attach) in-process against the PVE test server, for cases the
playbook tests do not reach. Root only (the server runs in a throwaway network namespace)."""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import ConnectionParams, ProxmoxClient
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._attach import AttachRequest, attach
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._nic import NicSettings
from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server  # noqa: F401  pylint: disable=unused-import
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer

pytestmark = pytest.mark.root

MAC1 = "BC:24:11:00:00:02"


def connect(server: PveServer) -> ProxmoxClient:
    return ProxmoxClient.connect(ConnectionParams(server.host, api_port=server.port, api_token_id=server.TOKEN_ID,
                                                  api_token_secret=server.TOKEN_SECRET, ca_path=server.ca_path))


def test_reattaching_a_nic_pending_deletion_keeps_its_mac(pve_server: PveServer) -> None:
    # A running VM without network hotplug: the detach stays pending, the NIC still runs with its MAC.
    pve_server.add_qemu(100, node="pve1", running=True, hotplug="disk,usb",
                        config={"net1": f"virtio={MAC1},bridge=vmbr1"})
    with inside_netns(pve_server.netns):
        client = connect(pve_server)
        detached = attach(client, AttachRequest("absent", NicSettings(), vmid=100, interface="net1"),
                          check_mode=False, diff=False)
        assert (detached["changed"], detached["pending"], detached["reboot_required"]) == (True, ["net1"], True)
        request = AttachRequest("present", NicSettings(bridge="vmbr1"), vmid=100, interface="net1")
        checked = attach(client, request, check_mode=True, diff=False)
        reattached = attach(client, request, check_mode=False, diff=False)
    assert (checked["after"], checked["mac"], checked["pending"]) == (f"virtio={MAC1},bridge=vmbr1", MAC1, [])
    assert (reattached["after"], reattached["mac"]) == (f"virtio={MAC1},bridge=vmbr1", MAC1)
    assert (reattached["pending"], reattached["reboot_required"]) == ([], False)
    assert pve_server.guest_config(100)["net1"] == f"virtio={MAC1},bridge=vmbr1"
    assert pve_server.guest_pending(100) == [
        {"key": key, "value": value} for key, value in sorted({**pve_server.guest_config(100),
                                                               "digest": pve_server.guest_digest(100)}.items())]
