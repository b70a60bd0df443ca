# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's route back to the controller, read from a real kernel (root, a lab namespace).

``mgmt0`` holds 192.0.2.2/24 and 2001:db8:1::2/64 with an on-link route to 198.18.0.0/24 and
the default route via 192.0.2.1; ``other0`` holds 10.77.0.1/24. The controller's address picks
the interface the kernel answers it through, as the lock-out guard needs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import ManagementRoute
from ansible_collections.ghostwarden.core.plugins.module_utils.host._mgmt_route import read_management_route
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_tools, throwaway_netns

pytestmark = [pytest.mark.root, requires_tools("ip")]


@pytest.fixture(name="host")
def fixture_host() -> Iterator[NetNS]:
    with throwaway_netns() as namespace:
        prepare(namespace)
        yield namespace


def prepare(netns: NetNS) -> None:
    for name, peer in (("mgmt0", "mgmt0p"), ("other0", "other0p")):
        netns.run("ip", "link", "add", name, "type", "veth", "peer", "name", peer)
        netns.run("ip", "link", "set", name, "up")
        netns.run("ip", "link", "set", peer, "up")
    netns.run("ip", "addr", "add", "192.0.2.2/24", "dev", "mgmt0")
    netns.run("ip", "addr", "add", "2001:db8:1::2/64", "dev", "mgmt0", "nodad")
    netns.run("ip", "route", "add", "198.18.0.0/24", "dev", "mgmt0", "scope", "link")
    netns.run("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "mgmt0")
    netns.run("ip", "addr", "add", "10.77.0.1/24", "dev", "other0")


def test_the_route_to_a_remote_controller_names_the_interface_and_its_subnets(host: NetNS) -> None:
    runner = CommandRunner(netns=str(host))
    expected = ManagementRoute(iface="mgmt0", subnets=("192.0.2.0/24", "198.18.0.0/24", "2001:db8:1::/64"),
                               addresses=("192.0.2.2", "2001:db8:1::2"), gateway="192.0.2.1")
    assert read_management_route(runner, "203.0.113.50") == expected
    # A controller on the management subnet itself: no gateway.
    assert read_management_route(runner, "192.0.2.1") == ManagementRoute(
        iface="mgmt0", subnets=expected.subnets, addresses=expected.addresses, gateway=None)
    assert read_management_route(runner, "10.77.0.9") == ManagementRoute(
        iface="other0", subnets=("10.77.0.0/24",), addresses=("10.77.0.1",), gateway=None)


def test_no_route_or_the_host_itself_is_no_path(host: NetNS) -> None:
    runner = CommandRunner(netns=str(host))
    assert read_management_route(runner, "2001:db8:99::1") is None  # no IPv6 default route
    assert read_management_route(runner, "192.0.2.2") is None  # the host's own address: loopback
