# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The PVE test server, driven by proxmoxer from inside its throwaway namespace.

The first group needs no namespace (PVE's schema checks and property strings as functions);
everything else talks HTTPS to the server like the modules will, and skips when not root.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server, requires_schema  # noqa: F401  pylint: disable=unused-import
from ansible_collections.ghostwarden.core.tests.support.pve.schema import (
    QEMU_NET_FORMAT, ApiSchema, locate_schema_dir, parse_property_string, print_property_string, validate_parameters,
)
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer
from ansible_collections.ghostwarden.core.tests.support.pve.state import random_mac

proxmoxer = pytest.importorskip("proxmoxer")
requests = pytest.importorskip("requests")
from proxmoxer import ResourceException  # noqa: E402
from proxmoxer.tools import Tasks  # noqa: E402

SCHEMA_DIR = locate_schema_dir()
needs_schema = pytest.mark.skipif(SCHEMA_DIR is None, reason="needs ../shared/pve/apidata-v8.json")
MAC_RE = re.compile(r"BC:24:11(:[0-9A-F]{2}){3}")
UPID_RE = re.compile(r"UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:(\w+):([^:]*):root@pam!ghostwarden:")
CONFIG = "/nodes/{node}/qemu/{vmid}/config"


def raises(call, *args, **kwargs) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kwargs)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Schema checks and property strings (no namespace needed)


@needs_schema
def test_schema_refusals_carry_pves_messages():
    properties = ApiSchema(8, SCHEMA_DIR).parameters(CONFIG, "PUT")
    errors = validate_parameters(properties, {
        "node": "pve1", "vmid": "100", "onboot": "True", "bogus": "1", "net0": "virtio,tag=5000",
        "net1": "virtio,speed=9", "net99": "virtio", "delete": "net0,9x", "digest": "a" * 41, "ostype": "dos"})
    assert errors == {
        "onboot": "type check ('boolean') failed - got 'True'",
        "bogus": "property is not defined in schema and the schema does not allow additional properties",
        "net0": "invalid format - format error\nnet0.tag: value must have a maximum value of 4094\n",
        "net1": "invalid format - invalid key in comma-separated list property: speed\n",
        "net99": "property is not defined in schema and the schema does not allow additional properties",
        "delete": "invalid format - invalid configuration ID '9x'\n",
        "digest": "value may only be 40 characters long",
        "ostype": "value 'dos' does not have a value in the enumeration 'other, wxp, w2k, w2k3, w2k8, wvista, "
                  "win7, win8, win10, win11, l24, l26, solaris'",
    }
    assert validate_parameters(properties, {"vmid": "100"}) == {"node": "property is missing and it is not optional"}
    assert validate_parameters(properties, {"node": "pve1", "vmid": "100", "force": "1"}) == {
        "delete": "missing property - 'force' requires this property"}


@needs_schema
def test_schema_checks_iface_and_sdn_ids():
    schema = ApiSchema(9, SCHEMA_DIR)
    assert validate_parameters(schema.parameters("/nodes/{node}/network", "POST"),
                               {"node": "pve1", "iface": "9bad", "type": "bridge", "mtu": "100"}) == {
        "iface": "invalid format - invalid network interface name '9bad'\n",
        "mtu": "value must have a minimum value of 1280"}
    assert validate_parameters(schema.parameters("/cluster/sdn/zones", "POST"),
                               {"zone": "toolongname", "type": "vlan"}) == {
        "zone": "invalid format - zone ID 'toolongname' can't be more length than 8 characters\n"}
    assert validate_parameters(schema.parameters("/cluster/sdn/vnets", "POST"),
                               {"vnet": "v-1", "zone": "z1"}) == {
        "vnet": "invalid format - vnet ID 'v-1' contains illegal characters\n"}


def test_canonical_netn_orders_keys_and_normalises_booleans():
    parsed = parse_property_string(QEMU_NET_FORMAT, "virtio,bridge=vmbr0,tag=10,firewall=true,rate=10.0", "net0")
    parsed["macaddr"] = "BC:24:11:AA:BB:CC"
    assert print_property_string(parsed, QEMU_NET_FORMAT) == \
        "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,rate=10.0,tag=10"
    assert parse_property_string(QEMU_NET_FORMAT, "e1000=bc:24:11:00:00:01,link_down=off") == \
        {"model": "e1000", "macaddr": "bc:24:11:00:00:01", "link_down": "0"}


def test_generated_macs_have_the_proxmox_prefix_and_differ():
    macs = {random_mac("BC:24:11") for _attempt in range(20)}
    assert len(macs) == 20
    assert all(MAC_RE.fullmatch(mac) for mac in macs)
    assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}", random_mac(None))
    assert int(random_mac(None)[:2], 16) & 0x03 == 0x02  # unicast, locally administered


def test_without_the_schema_files_the_server_still_canonicalises(tmp_path):
    server = PveServer(version=8, schema_dir=tmp_path)
    assert server.schema is None
    server.add_qemu(100, node="pve1", name="web1", config={"net0": "virtio,bridge=vmbr0,firewall=yes"})
    assert MAC_RE.fullmatch(server.guest_config(100)["net0"].split(",")[0].split("=")[1])
    assert server.guest_config(100)["net0"].endswith(",bridge=vmbr0,firewall=1")


# ---------------------------------------------------------------------------------------------
# Over HTTPS from inside the namespace


@pytest.mark.root
def test_token_and_ticket_auth_and_the_401s(pve_server):
    with inside_netns(pve_server.netns):
        assert pve_server.client().version.get()["release"] == "8.2"
        ticket_api = pve_server.client(auth="ticket")
        assert ticket_api.nodes.get()[0]["node"] == "pve1"
        wrong = proxmoxer.ProxmoxAPI(pve_server.host, port=pve_server.port, user="root@pam", token_name="ghostwarden",
                                     token_value="00000000-0000-0000-0000-000000000000",
                                     verify_ssl=pve_server.ca_path)
        error = raises(wrong.version.get)
        assert (error.status_code, error.content) == (401, "authentication failure")
        with pytest.raises(proxmoxer.AuthenticationError, match="code: 401"):
            proxmoxer.ProxmoxAPI(pve_server.host, port=pve_server.port, user="root@pam", password="wrong",
                                 verify_ssl=pve_server.ca_path)
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
        session.verify = pve_server.ca_path
        anonymous = session.get(f"{pve_server.url}/version", timeout=5)
        assert (anonymous.status_code, anonymous.reason) == (401, "No ticket")
        ticket, _csrf = ticket_api._store["session"].auth.get_tokens()
        no_csrf = session.put(f"{pve_server.url}/nodes/pve1/network", cookies={"PVEAuthCookie": ticket}, timeout=5)
        assert (no_csrf.status_code, no_csrf.reason) == (401, "Permission denied - invalid csrf token")
        assert session.get(f"{pve_server.url}/nodes", cookies={"PVEAuthCookie": ticket}, timeout=5).status_code == 200


@pytest.mark.root
def test_canonical_netn_mac_generation_and_digest(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1", config={"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"})
    pve_server.add_lxc(200, node="pve1", name="ct1", config={"net0": "name=eth0,bridge=vmbr0,ip=dhcp"})
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        vm = api.nodes("pve1").qemu(100)
        digest = vm.config.get()["digest"]
        assert digest == pve_server.guest_digest(100)
        assert vm.config.put(net1="virtio,bridge=vmbr1,tag=10,firewall=true", digest=digest) is None
        net1 = vm.config.get()["net1"]
        mac = net1.split(",")[0].split("=")[1]
        assert MAC_RE.fullmatch(mac)
        assert net1 == f"virtio={mac},bridge=vmbr1,firewall=1,tag=10"
        error = raises(vm.config.put, name="web9", digest=digest)  # stale digest
        assert (error.status_code, error.content) == (500, "checksum mismatch (file change by other user?)")
        before = vm.config.get()["digest"]
        pve_server.edit_guest(100, name="renamed")  # another user edits the file
        after = vm.config.get()
        assert (after["name"], after["digest"] != before) == ("renamed", True)
        error = raises(vm.config.put, name="web9", digest=before)
        assert error.content == "checksum mismatch (file change by other user?)"
        vm.config.put(name="web9", digest=after["digest"])
        container = api.nodes("pve1").lxc(200)
        config = container.config.get()
        assert re.fullmatch(r"name=eth0,bridge=vmbr0,hwaddr=BC:24:11(:[0-9A-F]{2}){3},ip=dhcp,type=veth",
                            config["net0"])
        error = raises(container.config.put, hostname="ct2", digest="0" * 40)
        assert error.content == "detected modified configuration - file changed by other user? Try again."
        error = raises(api.nodes("pve1").lxc(200).config.post, hostname="x")
        assert (error.status_code, error.content) == (501, "Method 'POST /nodes/pve1/lxc/200/config' not implemented")


@pytest.mark.root
@requires_schema
def test_schema_refusals_over_the_wire(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1")
    with inside_netns(pve_server.netns):
        vm = pve_server.client().nodes("pve1").qemu(100)
        error = raises(vm.config.put, onboot=True, net0="virtio,tag=5000", bogus=1)
        assert (error.status_code, error.content) == (400, "Parameter verification failed.")
        assert error.errors == {
            "onboot": "type check ('boolean') failed - got 'True'",
            "net0": "invalid format - format error\nnet0.tag: value must have a maximum value of 4094\n",
            "bogus": "property is not defined in schema and the schema does not allow additional properties"}
        error = raises(vm.config.put, net0="virtio,bridge=vmbr0,", vmid=101)
        assert error.errors == {"vmid": "duplicate parameter (already defined in URI) with conflicting values!"}
        error = raises(vm.config.put, net0="virtio,trunks=10;x")
        assert error.errors == {"net0": "invalid format - format error\nnet0.trunks: value does not match the "
                                        "regex pattern\n"}
        error = raises(vm.config.put)
        assert (error.status_code, error.content) == (500, "no options specified")
        error = raises(vm.config.put, net0="virtio", delete="net0")
        assert error.errors == {"delete": "you can't use '-net0' and -delete net0' at the same time"}
    assert [record.status for record in pve_server.requests] == [400, 400, 400, 500, 400]


@pytest.mark.root
def test_running_vm_without_network_hotplug_keeps_nic_changes_pending(pve_server):
    pve_server.add_qemu(101, node="pve1", name="web2", running=True, hotplug="disk,usb",
                        config={"net0": "virtio=BC:24:11:00:00:02,bridge=vmbr0"})
    with inside_netns(pve_server.netns):
        vm = pve_server.client().nodes("pve1").qemu(101)
        vm.config.put(net0="virtio=BC:24:11:00:00:02,bridge=vmbr1,tag=20")  # in place: live
        vm.config.put(net1="virtio=BC:24:11:00:00:03,bridge=vmbr0")  # a new NIC needs network hotplug
        vm.config.put(net0="e1000=BC:24:11:00:00:02,bridge=vmbr1,tag=20")  # a model change too
        assert vm.config.get(current=1)["net0"] == "virtio=BC:24:11:00:00:02,bridge=vmbr1,tag=20"
        assert "net1" not in vm.config.get(current=1)
        merged = vm.config.get()
        assert (merged["net0"], merged["net1"]) == ("e1000=BC:24:11:00:00:02,bridge=vmbr1,tag=20",
                                                    "virtio=BC:24:11:00:00:03,bridge=vmbr0")
        pending = {item["key"]: item for item in vm.pending.get()}
        assert pending["net1"] == {"key": "net1", "pending": "virtio=BC:24:11:00:00:03,bridge=vmbr0"}
        assert pending["net0"] == {"key": "net0", "value": "virtio=BC:24:11:00:00:02,bridge=vmbr1,tag=20",
                                   "pending": "e1000=BC:24:11:00:00:02,bridge=vmbr1,tag=20"}
        assert pending["digest"]["value"] == pve_server.guest_digest(101)
        vm.config.put(revert="net0,net1")
        assert [item["key"] for item in vm.pending.get() if "pending" in item] == []
        vm.config.put(delete="net0")  # unplugging needs hotplug as well
        assert {item["key"]: item.get("delete") for item in vm.pending.get()}["net0"] == 1
        assert "net0" not in vm.config.get()
    pve_server.set_running(101, False)
    pve_server.set_running(101, True)
    assert "net0" not in pve_server.guest_config(101)


@pytest.mark.root
def test_upid_task_status_warnings_and_failures(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1")
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        upid = api.nodes("pve1").qemu(100).config.post(net0="virtio,bridge=vmbr0")
        match = UPID_RE.fullmatch(upid)
        assert match and match.groups() == ("qmconfig", "100") and len(upid.split(":")) == 9
        status = Tasks.blocking_status(api, upid, timeout=5, polling_interval=0.05)
        assert (status["status"], status["exitstatus"], status["type"], status["user"]) == \
            ("stopped", "OK", "qmconfig", "root@pam")
        upid = api.nodes("pve1").qemu(100).config.post(delete="net5")
        assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "WARNINGS: 1"
        assert api.nodes("pve1").tasks(upid).log.get()[-1] == {"n": 2, "t": "TASK WARNINGS: 1"}
        pve_server.fail_next_task("hotplug problem - simulated")
        upid = api.nodes("pve1").qemu(100).config.post(name="never")
        assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "hotplug problem - simulated"
        assert pve_server.guest_config(100)["name"] == "web1"
        pve_server.fail_next_task("boom")
        error = raises(api.nodes("pve1").qemu(100).config.post, name="never", background_delay=5)
        assert error.content == "failed to update VM 100: boom"
        assert api.nodes("pve1").qemu(100).config.post(name="web1b", background_delay=5) is None
        pve_server.set_task_running_polls(1)
        upid = api.nodes("pve1").qemu(100).config.post(name="web1c")
        assert api.nodes("pve1").tasks(upid).status.get()["status"] == "running"
        assert api.nodes("pve1").tasks(upid).status.get()["status"] == "stopped"


@pytest.mark.root
def test_unknown_paths_and_version_specific_endpoints(pve_server):
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        error = raises(api.nodes("pve1").bogus.get)
        assert (error.status_code, error.content) == (501, "Method 'GET /nodes/pve1/bogus' not implemented")
        error = raises(api.cluster.sdn.lock.post)
        assert (error.status_code, error.content) == (501, "Method 'POST /cluster/sdn/lock' not implemented")
        error = raises(api.nodes("pve9").qemu(100).config.get)
        assert error.content == "no such cluster node 'pve9'"
        error = raises(api.nodes("pve1").qemu(100).config.get)
        assert error.content == "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist"


@pytest.mark.root
def test_node_network_is_staged_until_applied(pve_server):
    pve_server.add_network("pve1", "eno1", type="eth")
    pve_server.add_network("pve1", "vmbr0", bridge_ports="eno1", cidr="192.0.2.10/24", gateway="192.0.2.1",
                           autostart=True)
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        network = api.nodes("pve1").network
        network.post(iface="vmbr1", type="bridge", bridge_vlan_aware=1, autostart=1, comments="lab")
        error = raises(network.post, iface="vmbr1", type="bridge")
        assert error.errors == {"iface": "interface already exists"}
        error = raises(network.post, iface="vmbr2", type="bridge", cidr="198.51.100.1/24", gateway="198.51.100.254")
        assert error.errors == {"gateway": "Default gateway already exists on interface 'vmbr0'."}
        listing = {item["iface"]: item for item in network.get(type="bridge")}
        assert listing["vmbr1"] == {"iface": "vmbr1", "type": "bridge", "families": ["inet"], "method": "manual",
                                    "method6": "manual", "autostart": 1, "bridge_vlan_aware": 1, "bridge_ports": "",
                                    "bridge_stp": "off", "bridge_fd": "0", "comments": "lab", "priority": 3}
        assert listing["vmbr0"]["active"] == 1 and listing["vmbr0"]["cidr"] == "192.0.2.10/24"
        session = api._store["session"]
        raw = session.get(f"{pve_server.url}/nodes/pve1/network", timeout=5).json()
        assert "+iface vmbr1 inet manual" in raw["changes"]
        assert pve_server.network_state("pve1")["staged"]["vmbr1"]["bridge_vlan_aware"] == 1
        assert "vmbr1" not in pve_server.network_state("pve1")["active"]
        upid = network.put()
        assert UPID_RE.fullmatch(upid).groups() == ("srvreload", "networking")
        assert network("vmbr1").get()["type"] == "bridge"
        state = pve_server.network_state("pve1")
        assert state["staged"] is None and "vmbr1" in state["active"]
        network("vmbr1").put(type="bridge", cidr="203.0.113.1/24")
        network.delete()
        assert pve_server.network_state("pve1")["staged"] is None
        error = raises(network("vmbr7").delete)
        assert error.errors == {"iface": "interface does not exist"}


@pytest.mark.root
@pytest.mark.parametrize("pve_server", [9], indirect=True)
def test_sdn_create_pending_apply_and_lock(pve_server):
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        sdn = api.cluster.sdn
        token = sdn.lock.post()
        error = raises(sdn.zones.post, zone="zone1", type="vlan", bridge="vmbr0")
        assert error.content == "invalid lock token provided"
        sdn.zones.post(zone="zone1", type="vlan", bridge="vmbr0", **{"lock-token": token})
        error = raises(sdn.vnets.post, vnet="vnet1", zone="zone1", **{"lock-token": token})
        assert error.errors == {"tag": "missing vlan tag"}
        sdn.vnets.post(vnet="vnet1", zone="zone1", tag=10, **{"lock-token": token})
        sdn.vnets("vnet1").subnets.post(subnet="10.0.0.0/24", type="subnet", gateway="10.0.0.1", snat=1,
                                        **{"lock-token": token})
        pending_zones = sdn.zones.get(pending=1)
        assert pending_zones == [{"zone": "zone1", "type": "vlan", "state": "new", "pending": {"bridge": "vmbr0"}}]
        subnet = sdn.vnets("vnet1").subnets.get()[0]
        assert (subnet["subnet"], subnet["cidr"], subnet["zone"]) == ("zone1-10.0.0.0-24", "10.0.0.0/24", "zone1")
        upid = sdn.put(**{"lock-token": token})
        assert UPID_RE.fullmatch(upid).groups() == ("reloadnetworkall", "")
        state = pve_server.sdn_state()
        assert state["running"] == state["pending"] and state["lock"] is None
        assert state["running"]["vnets"]["vnet1"] == {"type": "vnet", "zone": "zone1", "tag": "10"}
        sdn.vnets("vnet1").put(tag=11)
        assert sdn.vnets.get(pending=1)[0]["state"] == "changed"
        sdn.rollback.post()
        assert pve_server.sdn_state()["pending"]["vnets"]["vnet1"]["tag"] == "10"


@pytest.mark.root
def test_firewall_rules_insert_at_zero_and_ipsets(pve_server):
    with inside_netns(pve_server.netns):
        firewall = pve_server.client().cluster.firewall
        firewall.rules.post(type="in", action="ACCEPT", macro="ssh", source="192.0.2.0/24", enable=1)
        firewall.rules.post(type="in", action="DROP", proto="tcp", dport="8006")
        rules = firewall.rules.get()
        assert [(rule["pos"], rule["action"], rule["enable"]) for rule in rules] == [(0, "DROP", 0), (1, "ACCEPT", 1)]
        assert rules[1]["macro"] == "SSH" and rules[0]["digest"] == rules[1]["digest"]
        error = raises(firewall.rules.post, type="in", action="ACCEPT", dport="22")
        assert error.errors == {"proto": "missing property - 'dport' requires this property"}
        firewall.ipset.post(name="lab_hosts", comment="lab")
        firewall.ipset("lab_hosts").post(cidr="192.0.2.5")
        error = raises(firewall.ipset("lab_hosts").delete)
        assert error.content == "IPSet 'lab_hosts' is not empty"
        firewall.rules(1).put(moveto=0)
        assert [rule["action"] for rule in firewall.rules.get()] == ["ACCEPT", "DROP"]
        error = raises(firewall.rules(0).delete, digest="0" * 40)
        assert error.status_code == 500
    state = pve_server.firewall_state()["cluster"]
    assert state["ipsets"] == {"lab_hosts": {"comment": "lab", "entries": [{"cidr": "192.0.2.5"}]}}


@pytest.mark.root
def test_request_log_and_clear(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1")
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        api.cluster.resources.get(type="vm")
        api.nodes("pve1").qemu(100).config.get()
    assert [(record.method, record.path, record.params, record.status) for record in pve_server.requests] == [
        ("GET", "/cluster/resources", {"type": "vm"}, 200), ("GET", "/nodes/pve1/qemu/100/config", {}, 200)]
    assert pve_server.requests[1].template == "/nodes/{node}/qemu/{vmid}/config"
    pve_server.clear_log()
    assert pve_server.requests == []


@needs_schema
def test_host_managed_is_a_pve9_container_nic_key():
    nic = {"node": "pve1", "vmid": "200", "net0": "name=eth0,bridge=vmbr0,host-managed=1"}
    path = "/nodes/{node}/lxc/{vmid}/config"
    assert validate_parameters(ApiSchema(9, SCHEMA_DIR).parameters(path, "PUT"), nic) == {}
    assert validate_parameters(ApiSchema(8, SCHEMA_DIR).parameters(path, "PUT"), nic) == {
        "net0": "invalid format - invalid key in comma-separated list property: host-managed\n"}


@pytest.mark.root
@pytest.mark.parametrize("pve_server", [9], indirect=True)
def test_hotplug_with_network_and_running_containers_apply_nic_changes_live(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1", running=True,
                        config={"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"})
    pve_server.add_lxc(200, node="pve1", name="ct1", running=True,
                       config={"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:02,ip=dhcp"})
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        vm = api.nodes("pve1").qemu(100)
        vm.config.put(net1="e1000=BC:24:11:00:00:03,bridge=vmbr1", description="web")
        assert vm.config.get(current=1)["net1"] == "e1000=BC:24:11:00:00:03,bridge=vmbr1"
        assert [item for item in vm.pending.get() if "pending" in item or "delete" in item] == []
        container = api.nodes("pve1").lxc(200)
        container.config.put(net0="name=eth0,bridge=vmbr1,hwaddr=BC:24:11:00:00:02,ip=dhcp,host-managed=1",
                             rootfs="local:8")
        current = container.config.get(current=1)
        assert current["net0"] == "name=eth0,bridge=vmbr1,host-managed=1,hwaddr=BC:24:11:00:00:02,ip=dhcp,type=veth"
        assert "rootfs" not in current and container.config.get()["rootfs"] == "local:8"
        assert {item["key"]: item.get("pending") for item in container.pending.get()}["rootfs"] == "local:8"


@pytest.mark.root
def test_guest_firewall_and_vnets_among_the_bridges(pve_server):
    pve_server.add_network("pve1", "vmbr0", bridge_ports="", autostart=True)
    pve_server.add_network("pve1", "vmbr0.30", type="vlan")
    with inside_netns(pve_server.netns):
        api = pve_server.client()
        firewall = api.nodes("pve1").qemu(100).firewall
        error = raises(firewall.rules.post, type="in", action="ACCEPT", iface="eth0")
        assert error.errors == {"iface": "invalid interface name 'eth0' - must be netN"}
        firewall.aliases.post(name="WebNet", cidr="192.0.2.0/24")
        firewall.rules.post(type="in", action="ACCEPT", iface="net0", source="webnet", proto="tcp", dport="443")
        firewall.options.put(enable=1, policy_in="DROP")
        assert firewall.options.get()["enable"] == 1
        assert firewall.rules.get()[0]["source"] == "webnet"
        assert [ref["ref"] for ref in firewall.refs.get()] == ["guest/webnet"]
        api.cluster.sdn.zones.post(zone="lab", type="simple")
        api.cluster.sdn.vnets.post(vnet="labnet", zone="lab")
        assert [item["iface"] for item in api.nodes("pve1").network.get(type="any_bridge")] == ["vmbr0"]
        api.cluster.sdn.put()
        bridges = api.nodes("pve1").network.get(type="any_bridge")
        assert [(item["iface"], item["type"]) for item in bridges] == [("vmbr0", "bridge"), ("labnet", "vnet")]
        vlan = api.nodes("pve1").network("vmbr0.30").get()
        assert (vlan["vlan-raw-device"], vlan["vlan-id"]) == ("vmbr0", "30")
    assert pve_server.firewall_state()["guests"][100]["options"] == {"enable": "1", "policy_in": "DROP"}


@pytest.mark.root
def test_after_request_hook_stages_a_concurrent_edit(pve_server):
    pve_server.add_qemu(100, node="pve1", name="web1")
    edits = []

    def edit_after_read(record):
        if record.method == "GET" and record.template == CONFIG and not edits:
            edits.append(record.path)
            pve_server.edit_guest(100, description="someone else")
    pve_server.after_request(edit_after_read)
    with inside_netns(pve_server.netns):
        vm = pve_server.client().nodes("pve1").qemu(100)
        digest = vm.config.get()["digest"]
        error = raises(vm.config.post, name="mine", digest=digest)
        assert error.content == "checksum mismatch (file change by other user?)"
        vm.config.post(name="mine", digest=vm.config.get()["digest"])
    assert edits == ["/nodes/pve1/qemu/100/config"]
    assert [(task["type"], task["id"], task["exitstatus"]) for task in pve_server.task_list()] == [
        ("qmconfig", "100", "OK")]
    assert pve_server.guest_config(100) == {"name": "mine", "description": "someone else"}
