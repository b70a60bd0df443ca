# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""500 routed networks (bridge + address each) through the netlink backend, in a throwaway namespace.

Checks that the plan applies, converges and that a second run writes nothing, and prints the
times next to the floor (the same objects with one ``ip -batch`` file in another namespace);
run with ``-s`` to see them. docs/netlink.md records the figures. The only bound asserted is
the observation time against the issue's no-op budget for the whole module (0.5 s at 500).
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host._netlink import NetlinkBackend
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import HostState
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.tests.support.netns import requires_netns, throwaway_netns

pytestmark = [pytest.mark.root, requires_netns]

NETWORKS = 500
NOOP_BUDGET = 0.5  # seconds, the target for a whole no-op module run at 500 networks


def routed_networks(count: int) -> dict:
    return {
        "version": 1,
        "networks": {
            f"n{index}": {"type": "routed", "cidr": f"10.{index // 256}.{index % 256}.0/24",
                          "gw_ip": f"10.{index // 256}.{index % 256}.1"}
            for index in range(count)
        },
    }


def owned(observed: HostState, wanted: HostState) -> HostState:
    keys = {address.key for address in wanted.addresses}
    return dataclasses.replace(observed, addresses=tuple(
        dataclasses.replace(address, owned=address.key in keys) for address in observed.addresses))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def test_500_routed_networks() -> None:
    wanted = desired_state(parse_topology(routed_networks(NETWORKS)), ruleset=None,  # type: ignore[arg-type]
                           dnsmasq_files={})
    keys = [key for key, _value in wanted.sysctls]
    with throwaway_netns() as lab, throwaway_netns() as floor_lab, NetlinkBackend(lab.name) as backend:
        operations = plan(wanted, backend.observe(keys))
        assert len(operations) == 1 + 2 * NETWORKS  # ip_forward, a bridge and an address each

        def apply() -> None:
            for operation in operations:
                backend.execute(operation)

        _none, apply_time = timed(apply)
        assert backend.writes == 1 + 3 * NETWORKS  # sysctl; create, mark, address

        with NetlinkBackend(lab.name) as again:
            observed, observe_time = timed(again.observe, keys)
            gateways = [address for address in observed.addresses if address.address.startswith("10.")]
            assert len(observed.links) == NETWORKS + 1 and len(gateways) == NETWORKS
            replanned, plan_time = timed(plan, wanted, owned(observed, wanted))
            assert replanned == [] and again.writes == 0

        batch = "".join(
            f"link add gw-n{index} type bridge\n"
            f"link set gw-n{index} alias ghostwarden:n{index} up\n"
            f"addr add 10.{index // 256}.{index % 256}.1/24 dev gw-n{index}\n"
            for index in range(NETWORKS)
        )
        _result, floor_time = timed(lambda: floor_lab.run("ip", "-batch", "-", input=batch))

    print(f"\n{NETWORKS} routed networks: execute {apply_time:.3f} s ({len(operations)} operations, "
          f"{1 + 3 * NETWORKS} writes); ip -batch floor {floor_time:.3f} s (with ip netns exec); "
          f"observe {observe_time:.3f} s; plan {plan_time:.3f} s")
    assert observe_time < NOOP_BUDGET
