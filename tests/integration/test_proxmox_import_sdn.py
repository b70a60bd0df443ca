# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""proxmox_import and proxmox_sdn in playbooks against the PVE 8 and 9 test server.

The server listens on 127.0.0.1 inside a throwaway network namespace (tests/support/pve/fixtures.py);
ansible-playbook runs inside the same namespace (``ip netns exec``), so no packet touches the
root namespace. Plays run the collection from the working tree on localhost with the local
connection, as tests/integration/conftest.py does (tests/support/playbook.py), and hand every task result back through
its ``task_results`` callback. Server-side state and the request log are read from the
server object itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.support.playbook import PlayRunner
from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server  # noqa: F401  pylint: disable=unused-import
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer

BOTH_VERSIONS = pytest.mark.parametrize("pve_server", [8, 9], indirect=True, ids=["pve8", "pve9"])

pytestmark = pytest.mark.root

TOPOLOGY = {
    "interfaces": {"uplink": "vmbr0"},
    "networks": {
        "lab": {"type": "vlan", "vlan": 20, "parent": "vmbr0", "cidr": "10.20.0.0/24", "gw_ip": "10.20.0.1"},
        "overlay_lab": {"type": "vxlan", "vni": 1200, "peers": ["10.0.0.11", "10.0.0.12"], "local": "10.0.0.10",
                        "cidr": "10.60.0.0/24", "gw_ip": "10.60.0.1"},
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1"},
    },
}


class Play:
    """Runs one-play playbooks on localhost inside the server's namespace; returns the task results."""

    def __init__(self, server: PveServer, workdir: Path) -> None:
        self.server = server
        self.runner = PlayRunner(workdir, netns=server.netns)
        self.output = ""

    def connection(self, **overrides: Any) -> dict:
        options = {"api_host": self.server.host, "api_port": self.server.port, "api_token_id": self.server.TOKEN_ID,
                   "api_token_secret": self.server.TOKEN_SECRET, "ca_path": self.server.ca_path}
        options.update(overrides)
        return options

    def __call__(self, tasks: list[dict], *, check: bool = False, diff: bool = False,
                 verbose: bool = False) -> list[dict]:
        """Run ``tasks``; each result is {task, status, result}. ``verbose`` uses -vvv and the default callback."""
        results = self.runner.play(tasks, check=check, diff=diff, verbose=verbose, results=not verbose,
                                   dropped_prefixes=("ANSIBLE_", "PROXMOX_"))
        self.output = results.output
        return [{"task": result.name, "status": result.status, "result": result.result} for result in results]


@pytest.fixture
def play(pve_server: PveServer, tmp_path: Path) -> Iterator[Play]:  # noqa: F811
    yield Play(pve_server, tmp_path / "ansible")


def only(results: list[dict]) -> dict:
    assert len(results) == 1, results
    return results[0]


def sdn_task(play: Play, **options: Any) -> dict:
    return {"name": "sdn", "ghostwarden.core.proxmox_sdn": {**play.connection(), **options}}


def writes(server: PveServer) -> list[tuple[str, str]]:
    return [(record.method, record.path) for record in server.requests if record.method != "GET"]


def api_post(server: PveServer, path: str, **params: Any) -> Any:
    """A change made by "someone else", through the API, from inside the namespace."""
    with inside_netns(server.netns):
        api = server.client()
        return api(path.strip("/")).post(**params)


# -- proxmox_import ---------------------------------------------------------------------------


def build_node_network(server: PveServer) -> None:
    for nic in ("eno1", "eno2", "eno3"):
        server.add_network("pve1", nic, type="eth")
    server.add_network("pve1", "vmbr0", bridge_ports="eno1", cidr="192.168.1.10/24", gateway="192.168.1.1",
                       autostart=True)
    server.add_network("pve1", "vmbr1", bridge_ports="eno2", bridge_vlan_aware=True, bridge_vids="2-4094", mtu=9000)
    server.add_network("pve1", "vmbr2", bridge_ports="eno3.30", cidr="10.30.0.2/24")
    server.add_network("pve1", "vlan40", type="vlan", vlan_raw_device="eno1", vlan_id=40, cidr="10.40.0.2/24")


@BOTH_VERSIONS
def test_import_round_trip_renders_the_same_bridges(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    build_node_network(pve_server)
    api_post(pve_server, "/cluster/firewall/ipset", name="mgmt")
    api_post(pve_server, "/cluster/firewall/ipset/mgmt", cidr="192.168.1.0/24")
    api_post(pve_server, "/cluster/firewall/rules", type="in", action="ACCEPT", macro="SSH", source="+mgmt", enable=1)
    api_post(pve_server, "/cluster/firewall/rules", type="in", action="ACCEPT", macro="Ping", enable=1)
    with inside_netns(pve_server.netns):
        pve_server.client()("cluster/firewall/options").put(enable=1, policy_in="DROP")
    pve_server.clear_log()

    imported, rendered = play([
        {"name": "import", "ghostwarden.core.proxmox_import": {**play.connection(), "node": "pve1"},
         "register": "imported"},
        {"name": "render",
         "ghostwarden.core.ghostwarden_apply": {"topology": "{{ imported.topology }}", "state": "rendered"}},
    ])
    assert imported["status"] == "ok" and rendered["status"] == "ok", play.output
    assert {record.method for record in pve_server.requests} == {"GET"}

    result = imported["result"]
    assert (result["changed"], result["plan"], result["changes"]) == (False, [], {})
    assert result["topology"]["networks"] == {
        "vlan40": {"type": "vlan", "iface": "vlan40", "vlan": 40, "parent": "eno1", "cidr": "10.40.0.0/24",
                   "gw_ip": "10.40.0.2", "policy_profile": "pve-cluster"},
        "vmbr0": {"type": "bridge", "iface": "vmbr0", "ports": ["eno1"], "cidr": "192.168.1.0/24",
                  "gw_ip": "192.168.1.10", "policy_profile": "pve-cluster"},
        "vmbr1": {"type": "bridge", "iface": "vmbr1", "ports": ["eno2"], "vlan_filtering": True, "vids": ["2-4094"],
                  "mtu": 9000, "policy_profile": "pve-cluster"},
        "vmbr2": {"type": "bridge", "iface": "vmbr2", "vlan": 30, "parent": "eno3", "vlan_iface": "eno3.30",
                  "cidr": "10.30.0.0/24", "gw_ip": "10.30.0.2", "policy_profile": "pve-cluster"},
    }
    assert result["profiles"]["pve-cluster"]["rules"] == [
        {"direction": "host", "action": "accept", "protocol": "tcp", "ports": [22], "sources": ["192.168.1.0/24"]}]
    assert [(entry["object"], entry["reason"]) for entry in result["unsupported"]] == [
        ("nodes/pve1/network/vmbr0", "gateway 192.168.1.1: a topology holds no routes (the default route stays the "
                                     "host's own configuration)"),
        ("cluster/firewall/rules/0", "macro Ping has no equivalent: it matches ICMP/ICMPv6 type echo-request only; "
                                     "profile rules match every ICMP type: the rule is left out"),
    ]

    # The rendered plan creates the node's bridges with the same names, addresses, ports and VLAN awareness.
    active = pve_server.network_state("pve1")["active"]
    plan = rendered["result"]["plan"]
    created = {op["target"].split(":", 1)[1]: op["details"] for op in plan if op["kind"] == "create_link"}
    for name, item in active.items():
        if item["type"] != "bridge":
            continue
        assert created[name]["type"] == "bridge"
        assert created[name]["vlan_filtering"] is bool(item.get("bridge_vlan_aware"))
        assert created[name].get("mtu") == (int(item["mtu"]) if "mtu" in item else None)
        ports = {op["target"].split(":", 1)[1] for op in plan
                 if op["kind"] == "set_master" and op["details"]["master"] == name}
        ports |= {link for link, details in created.items() if details.get("master") == name}
        assert ports == set(item["bridge_ports"].split()), name
    addresses = {op["details"]["iface"]: op["details"]["address"] for op in plan if op["kind"] == "add_address"}
    assert addresses == {name: item["cidr"] for name, item in active.items() if item.get("cidr")}
    assert created["vlan40"] == {"ifalias": "ghostwarden:vlan40", "parent": "eno1", "state": "up", "type": "vlan",
                                 "vlan_id": 40}
    vids = [op["details"] for op in plan if op["kind"] == "add_bridge_vlan" and not op["details"]["pvid"]]
    assert sorted((entry["bridge"], entry["port"], entry["vid_first"], entry["vid_last"]) for entry in vids) == [
        ("vmbr1", "eno2", 2, 4094), ("vmbr1", "vmbr1", 2, 4094)]


def test_import_with_guest_firewall_in_check_mode(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    pve_server.add_network("pve1", "vmbr0")
    pve_server.add_qemu(100, node="pve1", name="web1")
    api_post(pve_server, "/nodes/pve1/qemu/100/firewall/rules", type="in", action="ACCEPT", macro="HTTPS", enable=1)
    api_post(pve_server, "/nodes/pve1/qemu/100/firewall/rules", type="out", action="DROP", dest="10.0.0.0/8",
             enable=0)
    pve_server.clear_log()
    result = only(play([{"name": "import", "ghostwarden.core.proxmox_import": {
        **play.connection(), "node": "pve1", "vmids": [100]}}], check=True))
    assert result["status"] == "ok", play.output
    assert result["result"]["profiles"]["pve-guest-100"]["rules"] == [
        {"direction": "ingress", "action": "accept", "protocol": "tcp", "ports": [443]}]
    assert [entry["object"] for entry in result["result"]["unsupported"]] == [
        "nodes/pve1/qemu/100/firewall/rules/0"]  # PVE inserts every new rule at position 0
    assert [record.path for record in pve_server.requests].count("/cluster/resources") == 1


def test_import_bad_node_fails_in_one_line(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    task = {"name": "import", "ghostwarden.core.proxmox_import": {**play.connection(), "node": "pve1/../x"}}
    result = only(play([task]))
    assert result["status"] == "failed"
    assert result["result"]["msg"] == "node: 'pve1/../x' is not a node name (letters, digits and inner hyphens)"
    assert pve_server.requests == []


# -- proxmox_sdn ------------------------------------------------------------------------------


@BOTH_VERSIONS
def test_sdn_export_is_applied_once_and_idempotent(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    task = sdn_task(play, topology=TOPOLOGY)

    checked = only(play([task], check=True, diff=True))
    assert checked["status"] == "changed", play.output
    assert writes(pve_server) == []
    assert [change["action"] for change in checked["result"]["plan"]] == ["create"] * 6 + ["apply"]
    assert checked["result"]["changes"] == {"create_zone": 2, "create_vnet": 2, "create_subnet": 2, "apply_sdn": 1}
    assert checked["result"]["diff"]["before"] == {"zones": {}, "vnets": {}, "subnets": {}}
    pve_server.clear_log()

    done = only(play([task]))
    assert done["status"] == "changed", play.output
    lock = [("POST", "/cluster/sdn/lock")] if pve_server.version >= 9 else []
    release = [("DELETE", "/cluster/sdn/lock")] if pve_server.version >= 9 else []
    assert writes(pve_server) == lock + [
        ("POST", "/cluster/sdn/zones"), ("POST", "/cluster/sdn/zones"), ("POST", "/cluster/sdn/vnets"),
        ("POST", "/cluster/sdn/vnets"), ("POST", "/cluster/sdn/vnets/gw3f5e55/subnets"),
        ("POST", "/cluster/sdn/vnets/gwlab/subnets"), ("PUT", "/cluster/sdn")] + release
    assert [record.path for record in pve_server.requests if record.method == "PUT"].count("/cluster/sdn") == 1
    if pve_server.version >= 9:
        tokens = {record.params.get("lock-token") for record in pve_server.requests
                  if record.method != "GET" and record.path != "/cluster/sdn/lock"}
        assert len(tokens) == 1 and None not in tokens
    state = pve_server.sdn_state()
    assert state["running"] == state["pending"] and state["lock"] is None
    assert sorted(state["running"]["zones"]) == ["gwz3f5e5", "gwzlab"]
    assert state["running"]["zones"]["gwz3f5e5"]["peers"] == "10.0.0.10,10.0.0.11,10.0.0.12"
    assert {(vnet, int(values["tag"]), values["alias"]) for vnet, values in state["running"]["vnets"].items()} == {
        ("gw3f5e55", 1200, "ghostwarden.overlay_lab"), ("gwlab", 20, "ghostwarden.lab")}
    assert done["result"]["vnets"] == [
        {"vnet": "gw3f5e55", "zone": "gwz3f5e5", "tag": 1200, "alias": "ghostwarden.overlay_lab",
         "network": "overlay_lab"},
        {"vnet": "gwlab", "zone": "gwzlab", "tag": 20, "alias": "ghostwarden.lab", "network": "lab"}]
    assert done["result"]["applied"] is True

    for check in (False, True):
        pve_server.clear_log()
        again = only(play([task], check=check))
        assert (again["status"], again["result"]["plan"], again["result"]["changes"], writes(pve_server)) == (
            "ok", [], {}, [])


@BOTH_VERSIONS
def test_sdn_apply_failure_is_rolled_back(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    assert only(play([sdn_task(play, topology=TOPOLOGY, networks=["lab"])]))["status"] == "changed"
    before = pve_server.sdn_state()
    pve_server.clear_log()
    pve_server.fail_next_task("ifreload failed on pve1")

    failed = only(play([sdn_task(play, topology=TOPOLOGY)]))
    assert failed["status"] == "failed", play.output
    result = failed["result"]
    assert result["failed_step"] == "apply task (reloadnetworkall)"
    assert result["rolled_back"] is True
    assert "ifreload failed on pve1" in result["msg"]
    after = pve_server.sdn_state()
    assert after == before
    # PVE commits at PUT /cluster/sdn, before the reload: the previous configuration is applied again.
    sdn_writes = [write for write in writes(pve_server) if write[1] != "/cluster/sdn/lock"]
    assert sdn_writes[-5:] == [
        ("PUT", "/cluster/sdn"), ("DELETE", "/cluster/sdn/vnets/gw3f5e55/subnets/gwz3f5e5-10.60.0.0-24"),
        ("DELETE", "/cluster/sdn/vnets/gw3f5e55"), ("DELETE", "/cluster/sdn/zones/gwz3f5e5"), ("PUT", "/cluster/sdn")]
    assert ("POST", "/cluster/sdn/rollback") not in writes(pve_server)
    assert result["rollback"] == ("PVE had committed the configuration before the reload failed; the 3 change(s) were "
                                  "undone and the previous configuration applied again (PUT /cluster/sdn)")

    pve_server.clear_log()  # the next run goes through
    assert only(play([sdn_task(play, topology=TOPOLOGY)]))["status"] == "changed"
    assert writes(pve_server).count(("PUT", "/cluster/sdn")) == 1


@BOTH_VERSIONS
def test_sdn_absent_removes_only_owned_objects(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    api_post(pve_server, "/cluster/sdn/zones", zone="office", type="vlan", bridge="vmbr1")
    api_post(pve_server, "/cluster/sdn/vnets", vnet="office", zone="office", tag=30, alias="office lan")
    with inside_netns(pve_server.netns):
        pve_server.client()("cluster/sdn").put()
    assert only(play([sdn_task(play, topology=TOPOLOGY)]))["status"] == "changed"

    removed = only(play([sdn_task(play, state="absent")], diff=True))
    assert removed["status"] == "changed", play.output
    assert [(change["action"], change["kind"]) for change in removed["result"]["plan"]] == [
        ("delete", "subnet"), ("delete", "subnet"), ("delete", "vnet"), ("delete", "vnet"), ("delete", "zone"),
        ("delete", "zone"), ("apply", "sdn")]
    assert removed["result"]["changes"] == {"delete_subnet": 2, "delete_vnet": 2, "delete_zone": 2, "apply_sdn": 1}
    assert removed["result"]["diff"]["after"] == {"zones": {}, "vnets": {}, "subnets": {}}
    state = pve_server.sdn_state()
    assert state["running"] == state["pending"]
    assert sorted(state["running"]["zones"]) == ["office"] and sorted(state["running"]["vnets"]) == ["office"]
    assert only(play([sdn_task(play, state="absent")]))["status"] == "ok"


def test_sdn_conflict_and_bad_input_change_nothing(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    api_post(pve_server, "/cluster/sdn/zones", zone="gwzlab", type="vlan", bridge="vmbr1")
    api_post(pve_server, "/cluster/sdn/vnets", vnet="gwlab", zone="gwzlab", tag=20)
    with inside_netns(pve_server.netns):
        pve_server.client()("cluster/sdn").put()
    pve_server.clear_log()
    conflict, bad = play([
        {**sdn_task(play, topology=TOPOLOGY, networks=["lab"]), "ignore_errors": True},
        {**sdn_task(play, topology=TOPOLOGY, networks=["nat_dev"]), "ignore_errors": True},
    ])
    assert conflict["status"] == "failed" and bad["status"] == "failed", play.output
    assert conflict["result"]["conflicts"] == [
        "zone gwzlab exists and is not ghostwarden's (it holds gwlab)",
        "vnet gwlab exists and is not ghostwarden's network lab (its alias is None)"]
    assert bad["result"]["msg"] == ("networks.nat_dev: network nat_dev is a routed network without a VLAN; only vxlan "
                                    "networks and networks with a vlan id become SDN vnets")
    assert writes(pve_server) == []


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pve_server", [9], indirect=True, ids=["pve9"])
def test_secrets_never_appear_in_verbose_output(pve_server: PveServer, play: Play) -> None:  # noqa: F811
    pve_server.add_network("pve1", "vmbr0")
    tasks = [
        {"name": "import", "ghostwarden.core.proxmox_import": {**play.connection(), "node": "pve1"}},
        sdn_task(play, topology=TOPOLOGY),
        {**sdn_task(play, topology=TOPOLOGY, networks=["nat_dev"]), "ignore_errors": True},
        {"name": "password login", "ghostwarden.core.proxmox_sdn": {
            **play.connection(api_token_id=None, api_token_secret=None, api_user=pve_server.USER,
                              api_password=pve_server.PASSWORD), "state": "absent"}},
    ]
    play(tasks, verbose=True, diff=True)
    output = play.output
    assert "changed: [localhost]" in output and "-vvv" in output, output[-3000:]
    assert pve_server.TOKEN_SECRET not in output
    assert pve_server.PASSWORD not in output
    results = play(tasks)
    assert [entry["status"] for entry in results] == ["ok", "changed", "failed", "changed"]
    dumped = json.dumps(results)
    assert pve_server.TOKEN_SECRET not in dumped and pve_server.PASSWORD not in dumped
