# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``proxmox_attach`` played by ansible-playbook against the PVE test server (PVE 8 and 9).

The server listens on 127.0.0.1 inside a throwaway network namespace (tests/support/pve/fixtures.py);
every play runs there as ``ip netns exec <ns> ansible-playbook`` on localhost with the local
connection, so the action plugin's controller-side lookup is exercised too. What the module
sent is read back from the server's request log and its guests' state.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.support.playbook import PlayResults, PlayRunner, TaskResult
from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server  # noqa: F401  pylint: disable=unused-import
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer, RequestRecord

MODULE = "ghostwarden.core.proxmox_attach"
MAC0 = "BC:24:11:00:00:01"
GENERATED_MAC = r"BC:24:11(:[0-9A-F]{2}){3}"
CONFIG_READ = re.compile(r"/nodes/[^/]+/(qemu|lxc)/(\d+)/(config|pending)")
BOTH_VERSIONS = pytest.mark.parametrize("pve_server", [8, 9], indirect=True, ids=["pve8", "pve9"])

pytestmark = pytest.mark.root


class NetnsPlayRunner(PlayRunner):
    """Runs plays on localhost inside the server's namespace (``ip netns exec``); the output has the results too."""

    def __init__(self, workdir: Path, netns: str) -> None:
        super().__init__(workdir, netns=netns)

    def play(self, tasks: list[dict], *, connection: dict | None = None,  # type: ignore[override]
             **run: Any) -> PlayResults:
        # through the action group, as a user sets the api_* options once per play
        module_defaults = None if connection is None else {"group/ghostwarden.core.ghostwarden": connection}
        return super().play(tasks, module_defaults=module_defaults, output_with_results=True, **run)


@pytest.fixture
def runner(pve_server: PveServer, tmp_path: Path) -> NetnsPlayRunner:
    return NetnsPlayRunner(tmp_path / "ansible", pve_server.netns)


def token_connection(server: PveServer, **overrides: Any) -> dict:
    return {"api_host": server.host, "api_port": server.port, "api_token_id": server.TOKEN_ID,
            "api_token_secret": server.TOKEN_SECRET, "ca_path": server.ca_path, **overrides}


def attach(title: str = "attach", **options: Any) -> dict:
    return {"name": title, MODULE: options}


def run(runner: NetnsPlayRunner, server: PveServer, tasks: list[dict] | dict, **kwargs: Any) -> PlayResults:
    kwargs.setdefault("connection", token_connection(server))
    return runner.play(tasks if isinstance(tasks, list) else [tasks], **kwargs)


def one(results: PlayResults) -> TaskResult:
    assert len(results) == 1, results.output
    return results[0]


def writes(server: PveServer) -> list[RequestRecord]:
    return [r for r in server.requests if r.method != "GET" and r.path != "/access/ticket"]


def config_reads(server: PveServer) -> Counter:
    """GETs of a guest's config or pending list, per vmid."""
    return Counter(int(match.group(2)) for r in server.requests if r.method == "GET"
                   for match in [CONFIG_READ.fullmatch(r.path)] if match)


def resource_lookups(server: PveServer) -> int:
    return sum(1 for r in server.requests if r.method == "GET" and r.path == "/cluster/resources")


# -- attach -----------------------------------------------------------------------------------

@BOTH_VERSIONS
def test_attach_to_a_stopped_vm(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    result = one(run(runner, pve_server, attach(vmid=100, bridge="vmbr1", tag=20, firewall=True)))
    assert result.status == "changed", result
    after = result["after"]
    assert re.fullmatch(rf"virtio=({GENERATED_MAC}),bridge=vmbr1,firewall=1,tag=20", after), after
    assert (result["interface"], result["before"], result["mac"]) == ("net1", None, after.split(",")[0][7:])
    assert (result["pending"], result["reboot_required"]) == ([], False)
    assert (result["guest_type"], result["node"]) == ("qemu", "pve1")
    assert result["plan"] == [{"kind": "create_nic", "target": "nic:100:net1",
                               "details": {"before": None, "after": after}}]
    assert result["changes"] == {"create_nic": 1}
    assert pve_server.guest_config(100)["net1"] == after
    assert pve_server.guest_config(100)["net0"] == f"virtio={MAC0},bridge=vmbr0"
    [write] = writes(pve_server)
    assert (write.method, write.path, write.status) == ("PUT", "/nodes/pve1/qemu/100/config", 200)  # stopped: PUT
    assert write.params["net1"] == "virtio,bridge=vmbr1,firewall=1,tag=20" and len(write.params["digest"]) == 40


@BOTH_VERSIONS
def test_running_vm_with_network_hotplug_changes_live(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    result = one(run(runner, pve_server, attach(name="web1", bridge="vmbr1")))
    assert result.status == "changed", result
    assert (result["interface"], result["pending"], result["reboot_required"]) == ("net1", [], False)
    assert pve_server.guest_config(100, current=True)["net1"] == result["after"]
    [write] = writes(pve_server)
    assert (write.method, write.path) == ("POST", "/nodes/pve1/qemu/100/config")  # running: asynchronous POST ...
    task_polls = [r.path for r in pve_server.requests if r.path.startswith("/nodes/pve1/tasks/")]
    assert len(task_polls) == 1 and ":qmconfig:100:" in task_polls[0]  # ... and the module waited for the task


@BOTH_VERSIONS
def test_running_vm_without_network_hotplug_reports_pending(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, hotplug="disk,usb",
                        config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    added = one(run(runner, pve_server, attach(vmid=100, bridge="vmbr1", tag=5)))
    assert added.status == "changed", added
    assert (added["interface"], added["pending"], added["reboot_required"]) == ("net1", ["net1"], True)
    assert "net1" not in pve_server.guest_config(100, current=True)

    pve_server.clear_log()
    again = one(run(runner, pve_server, attach(vmid=100, bridge="vmbr1", tag=5)))
    assert again.status == "ok", again  # the pending change is not written again ...
    assert (again["pending"], again["reboot_required"], again["after"]) == (["net1"], True, added["after"])
    assert writes(pve_server) == []  # ... and still reported

    live = one(run(runner, pve_server, attach(vmid=100, interface="net0", bridge="vmbr2", firewall=True)))
    assert live.status == "changed", live  # bridge and firewall change in place even without hotplug
    assert live["after"] == f"virtio={MAC0},bridge=vmbr2,firewall=1"
    assert (live["pending"], live["reboot_required"]) == (["net1"], False)
    replug = one(run(runner, pve_server, attach(vmid=100, interface="net0", model="e1000")))
    assert (replug["pending"], replug["reboot_required"]) == (["net0", "net1"], True)
    assert pve_server.guest_config(100, current=True)["net0"] == f"virtio={MAC0},bridge=vmbr2,firewall=1"

    pve_server.set_running(100, False)
    pve_server.set_running(100, True)  # a restart applies the pending changes
    settled = one(run(runner, pve_server, attach(vmid=100, interface="net0", model="e1000")))
    assert (settled.status, settled["pending"], settled["reboot_required"]) == ("ok", [], False)
    assert pve_server.guest_config(100, current=True)["net0"] == f"e1000={MAC0},bridge=vmbr2,firewall=1"


@BOTH_VERSIONS
def test_lxc_attach(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_lxc(200, node="pve1", name="ct1", running=True,
                       config={"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:02:00,ip=dhcp"})
    results = run(runner, pve_server, [attach("add", name="ct1", bridge="vmbr1", ip="10.0.0.5/24", gw="10.0.0.1"),
                                       attach("again", name="ct1", bridge="vmbr1", ip="10.0.0.5/24", gw="10.0.0.1"),
                                       attach("rename", vmid=200, interface="net1", container_interface="lan0")])
    added, again, renamed = results
    assert added.status == "changed", added
    assert re.fullmatch(rf"name=eth1,bridge=vmbr1,gw=10.0.0.1,hwaddr={GENERATED_MAC},ip=10.0.0.5/24,type=veth",
                        added["after"]), added["after"]
    assert (added["interface"], added["guest_type"], added["pending"], added["reboot_required"]) == (
        "net1", "lxc", [], False)
    assert again.status == "ok" and again["after"] == added["after"]
    assert renamed.status == "changed" and renamed["after"] == added["after"].replace("name=eth1", "name=lan0")
    assert renamed["mac"] == added["mac"]
    assert pve_server.guest_config(200)["net1"] == renamed["after"]
    assert {write.method for write in writes(pve_server)} == {"PUT"}  # containers: PUT only

    refused = one(run(runner, pve_server, attach(vmid=200, interface="net1", model="e1000", queues=2)))
    assert refused.failed
    assert refused["msg"] == "queues: 2: only for QEMU VMs, and the guest is an LXC container (and 1 more error)"
    assert refused["errors"] == ["queues: 2: only for QEMU VMs, and the guest is an LXC container",
                                 "model: 'e1000': only for QEMU VMs, and the guest is an LXC container"]


def test_mac_is_kept_across_changes(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    changes = [{"bridge": "vmbr1"}, {"bridge": "vmbr1", "tag": 7}, {"firewall": True}, {"model": "e1000"},
               {"rate": 12.5}, {"link_down": True}, {"trunks": [30, "10-12"]}, {"bridge": "vmbr2"}]
    results = run(runner, pve_server, [attach(f"change {n}", vmid=100, interface="net0", **change)
                                       for n, change in enumerate(changes)])
    assert [result.status for result in results] == ["changed"] * len(changes), results.output
    assert {result["mac"] for result in results} == {MAC0}
    assert results[-1]["after"] == f"e1000={MAC0},bridge=vmbr2,firewall=1,link_down=1,rate=12.5,trunks=10-12;30"
    assert pve_server.guest_config(100)["net0"] == results[-1]["after"]
    assert all(MAC0 in write.params["net0"] for write in writes(pve_server))  # never left for PVE to replace

    new_mac = one(run(runner, pve_server, attach(vmid=100, interface="net0", mac="bc:24:11:ab:cd:ef")))
    assert (new_mac.status, new_mac["mac"]) == ("changed", "BC:24:11:AB:CD:EF")


@BOTH_VERSIONS
def test_idempotence_quartet(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True,
                        config={"net0": f"virtio={MAC0},bridge=vmbr0,rate=10.0,firewall=0"})
    task = attach(vmid=100, interface="net0", bridge="vmbr1", tag=30, firewall=True, rate=10)
    expected = f"virtio={MAC0},bridge=vmbr1,firewall=1,rate=10,tag=30"

    check = one(run(runner, pve_server, task, check=True, diff=True))
    assert check.status == "changed" and check["after"] == expected, check
    assert check["before"] == f"virtio={MAC0},bridge=vmbr0,firewall=0,rate=10"
    assert check["diff"] == {"before_header": "VM 100 on pve1 net0", "after_header": "VM 100 on pve1 net0",
                             "before": f"net0: {check['before']}\n", "after": f"net0: {expected}\n"}
    assert check["plan"] == [{"kind": "modify_nic", "target": "nic:100:net0",
                              "details": {"before": check["before"], "after": expected}}]
    assert check["changes"] == {"modify_nic": 1}
    assert writes(pve_server) == []

    real = one(run(runner, pve_server, task, diff=True))
    assert real.status == "changed" and real["after"] == expected and real["diff"] == check["diff"], real
    assert pve_server.guest_config(100)["net0"] == expected

    pve_server.clear_log()
    repeat = one(run(runner, pve_server, task))
    assert repeat.status == "ok" and repeat["before"] == repeat["after"] == expected, repeat
    assert (repeat["plan"], repeat["changes"]) == ([], {})
    repeat_check = one(run(runner, pve_server, task, check=True))
    assert repeat_check.status == "ok" and repeat_check["after"] == expected, repeat_check
    assert writes(pve_server) == []


@BOTH_VERSIONS
def test_idempotence_quartet_of_a_new_nic_found_by_its_bridge(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(101, node="pve1", name="db1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    task = attach(name="db1", bridge="vmbr9", tag=12)
    check = one(run(runner, pve_server, task, check=True))
    assert (check.status, check["interface"], check["after"], check["mac"]) == (
        "changed", "net1", "virtio,bridge=vmbr9,tag=12", None)
    real = one(run(runner, pve_server, task))
    assert real.status == "changed" and re.fullmatch(rf"virtio={GENERATED_MAC},bridge=vmbr9,tag=12", real["after"])
    repeat = one(run(runner, pve_server, task))
    repeat_check = one(run(runner, pve_server, task, check=True))
    assert (repeat.status, repeat["interface"], repeat_check.status) == ("ok", "net1", "ok")
    assert sorted(key for key in pve_server.guest_config(101) if key.startswith("net")) == ["net0", "net1"]


# -- concurrent edits -------------------------------------------------------------------------

def edit_after_reads(server: PveServer, vmid: int, times: int) -> list[int]:
    """Another user edits guest ``vmid`` right after each of the next ``times`` reads of its pending list."""
    original = server.handle
    edits: list[int] = []

    def handle(method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        answer = original(method, raw_path, headers, body)
        if method == "GET" and raw_path.split("?")[0].endswith(f"/{vmid}/pending") and len(edits) < times:
            edits.append(1)
            server.edit_guest(vmid, description=f"edited by someone else ({len(edits)})")
        return answer

    server.handle = handle  # type: ignore[method-assign]
    return edits


@BOTH_VERSIONS
@pytest.mark.parametrize("kind", ["qemu", "lxc"])
def test_a_concurrent_edit_is_retried_once(pve_server: PveServer, runner: NetnsPlayRunner, kind: str) -> None:
    if kind == "qemu":
        pve_server.add_qemu(100, node="pve1", name="g", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    else:
        pve_server.add_lxc(100, node="pve1", name="g", running=True, config={"net0": "name=eth0,bridge=vmbr0"})
    edits = edit_after_reads(pve_server, 100, times=1)
    result = one(run(runner, pve_server, attach(vmid=100, bridge="vmbr1")))
    assert result.status == "changed" and result["interface"] == "net1", result
    assert edits == [1]
    config = pve_server.guest_config(100)
    assert config["description"] == "edited by someone else (1)" and config["net1"] == result["after"]
    assert [write.status for write in writes(pve_server)] == [500, 200]
    reads = [r.path.rsplit("/", 1)[1] for r in pve_server.requests if r.method == "GET" and CONFIG_READ.fullmatch(r.path)]
    assert reads == ["pending", "pending", "pending"]  # read, re-read after the mismatch, read back after the write


@BOTH_VERSIONS
def test_two_concurrent_edits_fail_clearly(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    edit_after_reads(pve_server, 100, times=2)
    result = one(run(runner, pve_server, attach(vmid=100, bridge="vmbr1")))
    assert result.failed
    assert result["msg"] == ("net1 of VM 100 on pve1: the configuration changed again while this task wrote it "
                             "(digest mismatch twice in a row); this task changed nothing, run it again")
    assert result["status_code"] == 500
    assert "net1" not in pve_server.guest_config(100, current=False)
    assert [write.status for write in writes(pve_server)] == [500, 500]


# -- detach -----------------------------------------------------------------------------------

def test_detach(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False,
                        config={"net0": f"virtio={MAC0},bridge=vmbr0", "net1": "e1000=BC:24:11:00:00:02,bridge=vmbr1"})
    results = run(runner, pve_server, [attach("detach", vmid=100, interface="net1", state="absent"),
                                       attach("again", vmid=100, interface="net1", state="absent"),
                                       attach("missing", vmid=100, interface="net7", state="absent")])
    detached, again, missing = results
    assert detached.status == "changed", detached
    assert (detached["before"], detached["after"], detached["mac"]) == ("e1000=BC:24:11:00:00:02,bridge=vmbr1", None,
                                                                        None)
    assert [(step["kind"], step["target"]) for step in detached["plan"]] == [("delete_nic", "nic:100:net1")]
    assert (again.status, again["before"], again["after"], again["plan"]) == ("ok", None, None, [])
    assert (missing.status, missing["interface"]) == ("ok", "net7")
    assert "net1" not in pve_server.guest_config(100)
    [write] = writes(pve_server)
    assert (write.method, write.path, write.params["delete"]) == ("PUT", "/nodes/pve1/qemu/100/config", "net1")

    unnamed = one(run(runner, pve_server, attach(vmid=100, state="absent")))
    assert unnamed.failed and unnamed["msg"] == "state is absent but all of the following are missing: interface"


# -- topology networks ------------------------------------------------------------------------

TOPOLOGY = {"version": 1, "interfaces": {"uplink": "vmbr0"}, "networks": {
    "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "policy_profile": "routed-tight"},
    "v30": {"type": "vlan", "vlan": 30},
}}


@BOTH_VERSIONS
def test_network_from_a_topology(pve_server: PveServer, runner: NetnsPlayRunner, tmp_path: Path) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    pve_server.add_lxc(200, node="pve1", name="ct1", running=False, config={"net0": "name=eth0,bridge=vmbr0"})
    topology_file = tmp_path / "ghostnet.yaml"
    topology_file.write_text(yaml.safe_dump(TOPOLOGY))
    results = run(runner, pve_server, [
        attach("routed", vmid=100, interface="net0", network="nat_dev", topology="{{ ghostwarden_topology }}"),
        attach("vlan from a file", vmid=200, network="v30", topology=str(topology_file)),
        attach("unknown", vmid=100, network="nope", topology="{{ ghostwarden_topology }}"),
    ], play_vars={"ghostwarden_topology": TOPOLOGY})
    routed, vlan, unknown = results
    assert routed.status == "changed" and routed["after"] == f"virtio={MAC0},bridge=gw-nat_dev", routed
    assert vlan.status == "changed" and vlan["interface"] == "net1", vlan
    assert re.fullmatch(rf"name=eth1,bridge=vmbr0,hwaddr={GENERATED_MAC},tag=30,type=veth", vlan["after"])
    assert unknown.failed and unknown["msg"] == "network: 'nope' is not a network of the topology (networks: nat_dev, v30)"


# -- authentication and certificates ----------------------------------------------------------

@BOTH_VERSIONS
def test_password_and_token_logins(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    password = {"api_host": pve_server.host, "api_port": pve_server.port, "api_user": pve_server.USER,
                "api_password": pve_server.PASSWORD, "ca_path": pve_server.ca_path}
    by_password = one(run(runner, pve_server, attach(vmid=100, interface="net0", tag=3), connection=password))
    assert by_password.status == "changed", by_password
    assert ("POST", "/access/ticket") in [(r.method, r.path) for r in pve_server.requests]

    split_form = token_connection(pve_server, api_user=pve_server.token_user, api_token_id=pve_server.token_name)
    by_split_token = one(run(runner, pve_server, attach(vmid=100, interface="net0", tag=4), connection=split_form))
    assert by_split_token.status == "changed", by_split_token

    wrong_password = one(run(runner, pve_server, attach(vmid=100, interface="net0", tag=5),
                             connection={**password, "api_password": "not-the-password"}))
    assert wrong_password.failed and wrong_password["msg"] == "POST /access/ticket: 401 authentication failed for root@pam"
    wrong_secret = one(run(runner, pve_server, attach(vmid=100, interface="net0", tag=5),
                           connection=token_connection(pve_server, api_token_secret="0" * 36)))
    assert wrong_secret.failed and wrong_secret["msg"] == "GET /cluster/resources: 401 authentication failure"
    no_secret = one(run(runner, pve_server, attach(vmid=100, interface="net0", tag=5),
                        connection=token_connection(pve_server, api_token_secret=None)))
    assert no_secret.failed and no_secret["msg"] == ("api_token_secret: missing: the API token root@pam!ghostwarden "
                                                     "needs its secret (or PROXMOX_TOKEN_SECRET)")
    assert pve_server.guest_config(100)["net0"] == f"virtio={MAC0},bridge=vmbr0,tag=4"


def test_certificate_validation(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    task = attach(vmid=100, interface="net0", tag=3)
    unverified = one(run(runner, pve_server, task, connection=token_connection(pve_server, ca_path=None)))
    assert unverified.failed
    assert unverified["msg"] == (
        f"cannot reach the Proxmox VE API at {pve_server.url}: its TLS certificate could not be verified (unable to "
        "get local issuer certificate); give ca_path (the cluster CA is /etc/pve/pve-root-ca.pem on a node) or, for "
        "a lab only, validate_certs: false")
    assert writes(pve_server) == [] and pve_server.requests == []  # refused before any request got through

    lab = one(run(runner, pve_server, task, connection=token_connection(pve_server, ca_path=None,
                                                                        validate_certs=False)))
    assert lab.status == "changed", lab

    ignored_ca = one(run(runner, pve_server, task, connection=token_connection(pve_server, validate_certs=False)))
    assert ignored_ca.status == "ok"
    assert ignored_ca["warnings"] == ["ca_path is not used: validate_certs is false, so the API's certificate is not "
                                      "verified"]


def test_environment_fallbacks(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    environment = {"PROXMOX_HOST": pve_server.host, "PROXMOX_PORT": str(pve_server.port),
                   "PROXMOX_TOKEN_ID": pve_server.TOKEN_ID, "PROXMOX_TOKEN_SECRET": pve_server.TOKEN_SECRET,
                   "PROXMOX_CA_PATH": pve_server.ca_path, "PROXMOX_VALIDATE_CERTS": "true"}
    runner.extra_environment = environment
    results = run(runner, pve_server, [attach("first", vmid=100, interface="net0", tag=9),
                                       attach("second", vmid=100, interface="net0", tag=9)], connection=None)
    assert [result.status for result in results] == ["changed", "ok"], results.output
    assert pve_server.guest_config(100)["net0"] == f"virtio={MAC0},bridge=vmbr0,tag=9"
    assert resource_lookups(pve_server) == 2  # the controller's environment: one lookup per worker

    # The task's own environment reaches the module but not the controller process: the action
    # plugin leaves the lookup to the module, which then looks for each item of the loop.
    runner.extra_environment = {}
    pve_server.clear_log()
    task = attach("from the task environment", vmid="{{ item }}", interface="net0", tag=9)
    task.update(environment=environment, loop=[100, 100])
    looped = one(run(runner, pve_server, task, connection=None))
    assert looped.status == "ok" and [item["after"] for item in looped["results"]] == [
        f"virtio={MAC0},bridge=vmbr0,tag=9"] * 2
    assert resource_lookups(pve_server) == 2

    # PROXMOX_VALIDATE_CERTS is read: without a CA, "false" reaches the server and "true" is refused.
    without_ca = {key: value for key, value in environment.items() if key != "PROXMOX_CA_PATH"}
    runner.extra_environment = {**without_ca, "PROXMOX_VALIDATE_CERTS": "false"}
    unverified = one(run(runner, pve_server, attach("unverified", vmid=100, interface="net0", tag=9), connection=None))
    assert unverified.status == "ok", unverified
    runner.extra_environment = {**without_ca, "PROXMOX_VALIDATE_CERTS": "true"}
    verified = one(run(runner, pve_server, attach("verified", vmid=100, interface="net0", tag=9), connection=None))
    assert verified.failed and "its TLS certificate could not be verified" in verified["msg"], verified


def test_secrets_never_appear_in_verbose_output(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    password = {"api_host": pve_server.host, "api_port": pve_server.port, "api_user": pve_server.USER,
                "api_password": pve_server.PASSWORD, "ca_path": pve_server.ca_path}
    wrong = "wrong-" + pve_server.PASSWORD[::-1]
    plays = [
        run(runner, pve_server, attach(vmid=100, bridge="vmbr1"), verbose=True, diff=True),
        run(runner, pve_server, attach(vmid=100, bridge="vmbr2"), connection=password, verbose=True, diff=True),
        run(runner, pve_server, attach(vmid=100, bridge="vmbr2"), connection={**password, "api_password": wrong},
            verbose=True),
        run(runner, pve_server, attach(vmid=100, bridge="vmbr3", tag=5000), verbose=True, check=True),
    ]
    assert [one(play).status for play in plays] == ["changed", "changed", "failed", "failed"]
    assert one(plays[3])["msg"] == "tag: 5000 is out of range 1-4094"
    for play in plays:
        assert "PVEAPIToken" not in play.output
        for secret in (pve_server.TOKEN_SECRET, pve_server.PASSWORD, wrong):
            assert secret not in play.output
    assert "'api_token_secret': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'" in plays[0].output.replace('"', "'")


# -- efficiency: ten guests -------------------------------------------------------------------

TEN_GUESTS = [(101, "qemu", True, None), (102, "qemu", True, None), (103, "qemu", True, "disk,usb"),
              (104, "qemu", False, None), (105, "qemu", False, None), (106, "qemu", True, "0"),
              (201, "lxc", True, None), (202, "lxc", True, None), (203, "lxc", False, None), (204, "lxc", False, None)]
TEN_IDS = [guest[0] for guest in TEN_GUESTS]
LAB_TOPOLOGY = {"version": 1, "networks": {"lab": {"type": "bridge", "iface": "br-lab"}}}


@BOTH_VERSIONS
def test_ten_guests_second_run_is_a_noop(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    for vmid, kind, running, hotplug in TEN_GUESTS:
        if kind == "qemu":
            pve_server.add_qemu(vmid, node="pve1", name=f"vm{vmid}", running=running, hotplug=hotplug,
                                config={"net0": f"virtio=BC:24:11:00:01:{vmid - 100:02X},bridge=vmbr0"})
        else:
            pve_server.add_lxc(vmid, node="pve1", name=f"ct{vmid}", running=running,
                               config={"net0": f"name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:02:{vmid - 200:02X}"})
    task = attach("attach the lab guests", vmid="{{ item }}", network="lab", topology="{{ ghostwarden_topology }}",
                  firewall=True)
    task["loop"] = TEN_IDS
    play_vars = {"ghostwarden_topology": LAB_TOPOLOGY}

    first = one(run(runner, pve_server, task, play_vars=play_vars))
    assert first.status == "changed", first
    items = first["results"]
    assert [item["changed"] for item in items] == [True] * 10
    assert [item["interface"] for item in items] == ["net1"] * 10
    assert [item["reboot_required"] for item in items] == [False, False, True, False, False, True] + [False] * 4
    assert resource_lookups(pve_server) == 1

    pve_server.clear_log()
    second = one(run(runner, pve_server, task, play_vars=play_vars))
    assert second.status == "ok", second
    assert [item["changed"] for item in second["results"]] == [False] * 10
    assert [item["after"] for item in second["results"]] == [item["after"] for item in items]
    assert [item["reboot_required"] for item in second["results"]] == [False, False, True, False, False, True] + [
        False] * 4
    assert resource_lookups(pve_server) == 1  # one per play host
    assert config_reads(pve_server) == Counter(dict.fromkeys(TEN_IDS, 1))  # one per guest
    assert writes(pve_server) == []
    assert len(pve_server.requests) == 11

    pve_server.clear_log()
    in_check = one(run(runner, pve_server, task, play_vars=play_vars, check=True))
    assert in_check.status == "ok" and len(pve_server.requests) == 11 and writes(pve_server) == []


def test_given_node_and_guest_type_skip_the_lookup(pve_server: PveServer, runner: NetnsPlayRunner) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=False, config={"net0": f"virtio={MAC0},bridge=vmbr0"})
    hinted = one(run(runner, pve_server, attach(vmid=100, node="pve1", guest_type="qemu", interface="net0")))
    assert hinted.status == "ok" and resource_lookups(pve_server) == 0
    assert [(r.method, r.path) for r in pve_server.requests] == [("GET", "/nodes/pve1/qemu/100/pending")]
