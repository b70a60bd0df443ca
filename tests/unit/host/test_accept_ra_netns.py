# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Uplinks keep accepting router advertisements while the topology forwards IPv6 (root, a lab namespace).

With ``net.ipv6.conf.all.forwarding=1`` the kernel ignores RAs on an interface whose accept_ra is
1, and an uplink configured by SLAAC loses its default route. The topology's uplinks (here
``interfaces.uplink`` and the ``masq_out`` of two more networks, one with a dot in its name) go
from 1 to 2; one the operator set to 0 stays 0. A rolled back apply, ``state: absent`` and the
boot file each restore what the collection changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import RolledBackError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import HostDriver
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_tools, throwaway_netns

pytestmark = [pytest.mark.root, requires_tools("ip", "nft", "sysctl"),
              pytest.mark.skipif(not os.path.isdir("/proc/sys/net/ipv6"), reason="needs a kernel with IPv6")]

TOPOLOGY = {
    "version": 1,
    "interfaces": {"uplink": "up0"},
    "networks": {
        "v6": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "cidr6": "fd33::/64",
               "gw_ip6": "fd33::1", "masq_out": "uplink"},
        "dotted": {"type": "routed", "cidr": "10.34.0.0/24", "gw_ip": "10.34.0.1", "masq_out": "wan.7"},
        "off": {"type": "routed", "cidr": "10.35.0.0/24", "gw_ip": "10.35.0.1", "masq_out": "off0"},
    },
}
# interface -> accept_ra before the collection comes
UPLINKS = {"up0": "1", "wan.7": "1", "off0": "0"}
FORWARDING = "/proc/sys/net/ipv6/conf/all/forwarding"


def prepare(namespace: NetNS) -> None:
    for name, accept_ra in UPLINKS.items():
        namespace.run("ip", "link", "add", name, "type", "veth", "peer", "name", f"{name.replace('.', '')}p")
        namespace.run("sh", "-c", f"echo {accept_ra} > /proc/sys/net/ipv6/conf/{name}/accept_ra")
        namespace.run("ip", "link", "set", name, "up")


def read(namespace: NetNS, path: str) -> str:
    return namespace.run("cat", path).stdout.strip()


def accept_ra(namespace: NetNS) -> dict[str, str]:
    return {name: read(namespace, f"/proc/sys/net/ipv6/conf/{name}/accept_ra") for name in UPLINKS}


def sysctl_lines(result) -> list[str]:
    return [str(operation) for operation in result.operations if operation.kind == "set_sysctl"]


def test_uplinks_accept_ra_2_while_forwarding_and_get_1_back(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    compiled = compile_topology(TOPOLOGY, state_dir=str(state_dir))
    with throwaway_netns() as namespace:
        prepare(namespace)
        assert read(namespace, FORWARDING) == "0"
        with HostDriver(state_dir=str(state_dir), netns=namespace.name) as driver:
            # A failing probe rolls the apply back: the uplinks have what they had.
            with pytest.raises(RolledBackError):
                driver.apply(compiled.desired, check_mode=False, topology=TOPOLOGY,
                             probes=[{"tcp": "127.0.0.1:9", "timeout": 2}])
            assert accept_ra(namespace) == UPLINKS
            assert read(namespace, FORWARDING) == "0"

            result = driver.apply(compiled.desired, check_mode=False, topology=TOPOLOGY)
            assert sysctl_lines(result) == [
                "set_sysctl sysctl:net.ipv4.ip_forward key=net.ipv4.ip_forward value=1 was=0",
                "set_sysctl sysctl:net.ipv6.conf.all.forwarding key=net.ipv6.conf.all.forwarding value=1 was=0",
                "set_sysctl sysctl:net.ipv6.conf.up0.accept_ra key=net.ipv6.conf.up0.accept_ra value=2 was=1",
                "set_sysctl sysctl:net.ipv6.conf.wan/7.accept_ra key=net.ipv6.conf.wan/7.accept_ra value=2 was=1",
            ]
            assert accept_ra(namespace) == {"up0": "2", "wan.7": "2", "off0": "0"}
            assert read(namespace, FORWARDING) == "1"
            assert driver.store.load().sysctl_previous == {
                "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0",
                "net.ipv6.conf.up0.accept_ra": "1", "net.ipv6.conf.wan/7.accept_ra": "1"}
            boot = state_dir / "persist" / "sysctl.conf"
            assert boot.read_text() == (
                "net.ipv4.ip_forward = 1\n"
                "net.ipv6.conf.all.forwarding = 1\n"
                "net.ipv6.conf.off0.accept_ra = 0\n"
                "net.ipv6.conf.up0.accept_ra = 2\n"
                "net.ipv6.conf.wan/7.accept_ra = 2\n"
            )
            # The boot file as restore.sh replays it (sysctl -p reads the slash as the dot in wan.7).
            for name in ("up0", "wan.7"):
                namespace.run("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{name}/accept_ra")
            namespace.run("sysctl", "-q", "-p", str(boot))
            assert accept_ra(namespace) == {"up0": "2", "wan.7": "2", "off0": "0"}

            assert driver.apply(compiled.desired, check_mode=False, topology=TOPOLOGY).operations == []

            # state: absent gives the uplinks their value back; forwarding stays on (never unset).
            removed = driver.remove_everything(check_mode=False)
            assert sysctl_lines(removed) == [
                "set_sysctl sysctl:net.ipv6.conf.up0.accept_ra key=net.ipv6.conf.up0.accept_ra value=1 was=2",
                "set_sysctl sysctl:net.ipv6.conf.wan/7.accept_ra key=net.ipv6.conf.wan/7.accept_ra value=1 was=2",
            ]
            assert accept_ra(namespace) == UPLINKS
            assert read(namespace, FORWARDING) == "1"
            assert driver.store.load().sysctl_previous == {
                "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}
            assert "net.ipv6.conf.up0.accept_ra = 1\n" in boot.read_text()
            assert driver.remove_everything(check_mode=False).operations == []
            assert accept_ra(namespace) == UPLINKS
