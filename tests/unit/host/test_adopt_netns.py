# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``adopt_port_addresses`` against a real kernel (root, a throwaway namespace).

A veth ``mgmt0`` holds 192.0.2.2/24, 2001:db8::2/64, a default route of each family, a gateway
route and a device route; its peer (in a second namespace) answers as the gateways. The host
driver applies a bridge ``vmbr0`` over ``mgmt0`` that adopts its addresses: the bridge has
``mgmt0``'s MAC, the addresses and routes (same table, metric, protocol, scope) are on the bridge
and gone from the port, a repeat plans nothing. ``state: absent`` gives them back: addresses,
routes, link state and MAC of ``mgmt0`` are as before. The boot files replay the move on a fresh
namespace; the confirm timer's rollback script undoes it; a dynamic address is refused by name.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ConflictError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._gather import gather_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import empty_state
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import normalise_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import HostDriver
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import (
    Journal,
    new_token,
    owned_snapshot,
    persistence_files,
    rollback_script,
    write_persistence,
)
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_tools, throwaway_netns

pytestmark = [pytest.mark.root, requires_tools("ip", "bridge", "nft", "flock", "busybox")]

TOPOLOGY = {"networks": {"mgmt": {"type": "bridge", "iface": "vmbr0", "ports": ["mgmt0"],
                                  "adopt_port_addresses": True}}}


def prepare(host: NetNS, peer: NetNS) -> None:
    """mgmt0 (host) faces eth0 (peer) as a NIC faces its LAN, holding the host's address and routes."""
    host.run("ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "eth0", "netns", peer.name)
    for namespace, name in ((host, "mgmt0"), (peer, "eth0")):
        namespace.run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        namespace.run("ip", "link", "set", name, "up")
    peer.run("ip", "address", "add", "192.0.2.1/24", "dev", "eth0")
    peer.run("ip", "address", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
    host.run("ip", "address", "add", "192.0.2.2/24", "brd", "+", "dev", "mgmt0")
    host.run("ip", "address", "add", "2001:db8::2/64", "dev", "mgmt0")
    host.run("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "mgmt0", "proto", "static")
    host.run("ip", "route", "add", "10.99.0.0/16", "dev", "mgmt0", "scope", "link")
    host.run("ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", "mgmt0", "metric", "50")
    host.run("ip", "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "mgmt0")


def view(namespace: NetNS, *links: str) -> dict:
    """Addresses (not link-local), routes of both families in every table but local, link state and MAC."""
    result: dict = {}
    for link in links:
        shown = json.loads(namespace.run("ip", "-j", "address", "show", "dev", link).stdout)[0]
        result[link] = {
            "state": shown["operstate"] if shown["operstate"] != "UNKNOWN" else "UP" in shown["flags"],
            "up": "UP" in shown["flags"], "mac": shown["address"],
            "addresses": sorted((item["local"], item["prefixlen"], item.get("broadcast"))
                                for item in shown.get("addr_info", []) if not item["local"].startswith("fe80:")),
        }
    routes = []
    for family in ("-4", "-6"):
        for route in json.loads(namespace.run("ip", "-j", family, "route", "show", "table", "all").stdout):
            if route.get("table") == "local" or route.get("protocol") == "kernel" or route["dst"].startswith("ff00"):
                continue
            routes.append(json.dumps(route, sort_keys=True))
    result["routes"] = sorted(routes)
    return result


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[NetNS, NetNS, HostDriver]]:
    with throwaway_netns("gwa") as host, throwaway_netns("gwp") as peer:
        prepare(host, peer)
        with HostDriver(state_dir=str(tmp_path / "state"), netns=host.name) as driver:
            yield host, peer, driver


def apply(driver: HostDriver, data: dict | None, **options):
    if data is None:
        return driver.remove_everything(check_mode=options.pop("check_mode", False))
    compiled = compile_topology(data, state_dir=driver.state_dir)
    return driver.apply(compiled.desired, check_mode=options.pop("check_mode", False), topology=data, **options)


def kinds(result) -> list[str]:
    """The plan without the table (every topology has one)."""
    return [f"{operation.kind} {operation.target}" for operation in result.operations
            if not operation.kind.endswith("_ruleset")]


def reachable(peer: NetNS) -> None:
    peer.run("busybox", "ping", "-c1", "-W2", "192.0.2.2")
    peer.run("busybox", "ping", "-6", "-c1", "-W2", "2001:db8::2")


def test_move_and_undo_leave_the_port_as_it_was(lab) -> None:
    host, peer, driver = lab
    before = view(host, "mgmt0")
    mac = before["mgmt0"]["mac"]

    checked = apply(driver, TOPOLOGY, check_mode=True)
    assert kinds(checked) == [
        "create_link link:vmbr0",
        "adopt_address address:vmbr0:192.0.2.2/24", "adopt_address address:vmbr0:2001:db8::2/64",
        "set_master port:mgmt0",
        "adopt_route route:vmbr0:10.99.0.0/16:254:0",
        "adopt_route route:vmbr0:0.0.0.0/0:254:0", "adopt_route route:vmbr0:198.51.100.0/24:254:50",
        "adopt_route route:vmbr0:::/0:254:1024",
        "drop_port_address address:mgmt0:192.0.2.2/24", "drop_port_address address:mgmt0:2001:db8::2/64",
    ]
    assert view(host, "mgmt0") == before  # check mode writes nothing
    applied = apply(driver, TOPOLOGY)
    assert kinds(applied) == kinds(checked)
    reachable(peer)

    moved = view(host, "mgmt0", "vmbr0")
    assert moved["vmbr0"]["mac"] == mac and moved["mgmt0"]["mac"] == mac
    assert moved["vmbr0"]["addresses"] == before["mgmt0"]["addresses"]
    assert moved["mgmt0"]["addresses"] == []
    assert moved["routes"] == [route.replace('"dev": "mgmt0"', '"dev": "vmbr0"') for route in before["routes"]]
    records = json.loads((Path(driver.state_dir) / "state.json").read_text())
    assert records["adopted_addresses"] == [["vmbr0", "192.0.2.2/24", "mgmt0"], ["vmbr0", "2001:db8::2/64", "mgmt0"]]
    assert len(records["adopted_routes"]) == 4

    assert apply(driver, TOPOLOGY).operations == []
    assert apply(driver, TOPOLOGY, check_mode=True).operations == []
    # state: gathered (as ghostwarden_apply reads it): the network with the flag, the adopted
    # addresses not taken for its cidr/gw_ip, no drift.
    records = driver.store.load()
    gathered, drift = gather_topology(driver.observe(records, empty_state()), records.topology)
    assert drift == []
    assert normalise_topology(gathered) == normalise_topology(TOPOLOGY)

    removed = apply(driver, None)
    assert kinds(removed) == [
        "restore_address address:mgmt0:192.0.2.2/24", "restore_address address:mgmt0:2001:db8::2/64",
        "copy_neighbours neighbours:mgmt0",
        "restore_route route:mgmt0:10.99.0.0/16:254:0",
        "restore_route route:mgmt0:0.0.0.0/0:254:0", "restore_route route:mgmt0:198.51.100.0/24:254:50",
        "restore_route route:mgmt0:::/0:254:1024",
        "delete_link link:vmbr0",
    ]
    assert view(host, "mgmt0") == before
    assert "vmbr0" not in host.run("ip", "-br", "link").stdout
    records = json.loads((Path(driver.state_dir) / "state.json").read_text())
    assert "adopted_addresses" not in records and "adopted_routes" not in records
    reachable(peer)


def test_boot_files_replay_the_move(lab, tmp_path: Path) -> None:
    host, peer, driver = lab
    apply(driver, TOPOLOGY)
    moved = view(host, "mgmt0", "vmbr0")
    after = driver.observe(driver.store.load(), compile_topology(TOPOLOGY).desired)
    files = persistence_files(owned_snapshot(after), state_dir=driver.state_dir, netns=host.name)
    batch = files[f"{driver.state_dir}/persist/links.batch"]
    mac = moved["vmbr0"]["mac"]
    assert batch.splitlines() == [
        f"link add name vmbr0 address {mac} type bridge",
        "link set dev vmbr0 mtu 1500 alias ghostwarden:mgmt up",
        "address add 192.0.2.2/24 brd + dev vmbr0",
        "address add 2001:db8::2/64 dev vmbr0 nodad",
        "link set dev mgmt0 master vmbr0",
        "route replace 10.99.0.0/16 dev vmbr0 table 254 metric 0 proto 3 scope 253",
        "route replace 0.0.0.0/0 via 192.0.2.1 dev vmbr0 table 254 metric 0 proto 4 scope 0",
        "route replace 198.51.100.0/24 via 192.0.2.1 dev vmbr0 table 254 metric 50 proto 3 scope 0",
        "route replace ::/0 via 2001:db8::1 dev vmbr0 table 254 metric 1024 proto 3 scope 0",
    ]
    write_persistence(files)
    # A reboot: the bridge and everything on it gone, the port down and bare, as the kernel starts it.
    host.run("ip", "link", "del", "vmbr0")
    host.run("ip", "link", "set", "mgmt0", "down")
    restored = subprocess.run(["sh", f"{driver.state_dir}/persist/restore.sh"], capture_output=True, text=True,
                              check=False)
    assert restored.returncode == 0, restored.stderr
    assert view(host, "mgmt0", "vmbr0") == moved
    assert apply(driver, TOPOLOGY).operations == []
    reachable(peer)


def test_confirm_timer_rollback_script_undoes_the_move(lab) -> None:
    host, peer, driver = lab
    before = view(host, "mgmt0")
    records = driver.store.load()
    compiled = compile_topology(TOPOLOGY, state_dir=driver.state_dir)
    observed = driver.observe(records, compiled.desired)
    result = apply(driver, TOPOLOGY)
    journal = Journal(new_token(), 0.0, 1, owned_snapshot(observed), records,
                      [operation.to_dict() for operation in result.operations], confirm_deadline=1.0)
    driver.journals.write(journal)
    after = driver.observe(driver.store.load(), compiled.desired)
    script = rollback_script(journal, after, state_dir=driver.state_dir, netns=host.name)
    ran = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert view(host, "mgmt0") == before
    assert "vmbr0" not in host.run("ip", "-br", "link").stdout
    reachable(peer)


def test_a_dynamic_address_is_refused_by_name(lab) -> None:
    host, _peer, driver = lab
    host.run("ip", "address", "add", "192.0.2.77/24", "dev", "mgmt0", "valid_lft", "600", "preferred_lft", "600")
    before = view(host, "mgmt0")
    with pytest.raises(ConflictError) as caught:
        apply(driver, TOPOLOGY)
    assert str(caught.value.conflicts[0]).startswith(
        "port mgmt0 (for vmbr0 of network mgmt, adopt_port_addresses): address 192.0.2.77/24 has a lifetime")
    assert view(host, "mgmt0") == before
