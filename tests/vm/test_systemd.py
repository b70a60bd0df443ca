# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What needs systemd as PID 1: the boot restore unit across a real reboot, and the confirm
window's transient timer (cancelled by a confirmation, firing when the change cut the path).

Everything runs on ``vm1`` over SSH, with the state directory and unit directory the host role
uses by default (``/var/lib/ghostwarden``, ``/etc/systemd/system``).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from ansible_collections.ghostwarden.core.tests.vm.conftest import by_host, guest_json, ping
from ansible_collections.ghostwarden.core.tests.vm.vmlab import VmLabError

pytestmark = pytest.mark.vm

STATE_DIR = "/var/lib/ghostwarden"
UNIT = "ghostwarden-restore.service"


def full_topology(lab) -> dict:
    """A routed network with DHCP, DNS, masquerade and a forward; a bridge on a tagged uplink; a
    VXLAN overlay: links, addresses, FDB, the nft table, forwarding sysctls and a dnsmasq."""
    return {
        "version": 1,
        "interfaces": {"uplink": "eth1"},
        "networks": {
            "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "dhcp": True,
                        "dns": {"enabled": True, "zones": ["dev.lan"], "records": {"files.dev.lan": "10.33.0.20"}},
                        "masq_out": "uplink", "policy_profile": "routed-tight",
                        "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}]},
            "br_work": {"type": "bridge", "iface": "br-work", "vlan": 20, "policy_profile": "l2-lan"},
            "overlay": {"type": "vxlan", "vni": 1200, "iface": "br-ov", "local": lab["vm1"].address,
                        "peers": [lab["vm2"].address], "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.1"},
        },
    }


def host_state(lab, guest: str = "vm1") -> dict:
    """What the boot unit must bring back, without what a boot changes anyway (ifindex, counters,
    lifetimes, pids)."""
    links = {}
    for link in guest_json(lab, guest, "ip -d -j link show"):
        info = link.get("linkinfo", {})
        data = info.get("info_data", {})
        links[link["ifname"]] = {
            "kind": info.get("info_kind"), "master": link.get("master"), "alias": link.get("ifalias"),
            "mtu": link["mtu"], "up": "UP" in link["flags"], "address": link.get("address"),
            "id": data.get("id"), "vlan_filtering": data.get("vlan_filtering"),
        }
    addresses = sorted((item["ifname"], info["local"], info["prefixlen"])
                       for item in guest_json(lab, guest, "ip -j addr show")
                       for info in item.get("addr_info", []) if info.get("scope") == "global")
    fdb = sorted((entry["ifname"], entry.get("dst")) for entry in guest_json(lab, guest, "bridge -j fdb show")
                 if entry["mac"] == "00:00:00:00:00:00")
    table = re.sub(r"packets \d+ bytes \d+", "packets - bytes -",
                   lab[guest].ssh("nft list table inet ghostwarden").stdout)
    sysctls = lab[guest].ssh("sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding").stdout.split()
    # The module and the boot script start dnsmasq with different command lines; the instance is
    # its configuration file.
    dnsmasq = sorted(re.findall(r"--conf-file=(\S+)", lab[guest].ssh("pgrep -a dnsmasq", check=False).stdout))
    return {"links": links, "addresses": addresses, "fdb": fdb, "table": table, "sysctls": sysctls,
            "dnsmasq": dnsmasq}


def role_task(topology: dict, **variables: object) -> dict:
    return {"name": "host role", "ansible.builtin.include_role": {"name": "ghostwarden.core.host"},
            "vars": {"ghostwarden_topology": topology, **variables}}


def gathered(plays, host: str = "vm1"):
    results = plays([{"name": "gathered", "ghostwarden.core.ghostwarden_apply": {"state": "gathered"}}], hosts=host)
    (result,) = results
    assert not result.failed and not result.changed, f"{result}\n{results.output}"
    return result


def unit_time(lab, unit: str, prop: str, guest: str = "vm1") -> int:
    return int(lab[guest].ssh(f"systemctl show -P {prop} {unit}").stdout.strip())


def test_the_boot_unit_restores_the_committed_state_after_a_reboot(guests, plays) -> None:
    applied = plays([role_task(full_topology(guests))], hosts="vm1")
    assert applied.rc == 0, applied.output
    assert guests["vm1"].ssh(f"systemctl is-enabled {UNIT}").stdout.strip() == "enabled"
    before = host_state(guests)
    assert before["dnsmasq"] and before["sysctls"] == ["1", "0"], before
    assert {"br-work", "eth1.20", "gw-nat_dev", "vx1200", "br-ov"} <= set(before["links"]), before["links"]

    seconds = guests.reboot("vm1")
    after = host_state(guests)
    journal = guests["vm1"].ssh(f"journalctl -b --no-pager -o short-monotonic -u {UNIT}").stdout
    assert after == before, f"reboot took {seconds:.0f}s; the unit's journal:\n{journal}"

    # The unit ran once, succeeded, and finished before the network was declared up.
    assert guests["vm1"].ssh(f"systemctl show -P Result {UNIT}").stdout.strip() == "success"
    assert guests["vm1"].ssh(f"systemctl show -P ActiveState {UNIT}").stdout.strip() == "active"
    pre_at = unit_time(guests, "network-pre.target", "ActiveEnterTimestampMonotonic")
    restore_started = unit_time(guests, UNIT, "InactiveExitTimestampMonotonic")
    restored_at = unit_time(guests, UNIT, "ActiveEnterTimestampMonotonic")
    network_at = unit_time(guests, "network.target", "ActiveEnterTimestampMonotonic")
    assert 0 < pre_at <= restore_started <= restored_at <= network_at, (pre_at, restore_started, restored_at,
                                                                        network_at)

    state = gathered(plays)
    assert state["drift"] == [], state
    # And traffic still flows through what was restored: the overlay to vm2, brought up by hand there.
    guests["vm2"].ssh("ip link add vx1200 type vxlan id 1200 local 192.0.2.12 dstport 4789 nolearning && "
                      "bridge fdb append 00:00:00:00:00:00 dev vx1200 dst 192.0.2.11 && "
                      "ip addr add 10.40.0.2/24 dev vx1200 && ip link set vx1200 up")
    assert ping(guests, "vm2", "10.40.0.1")


# -- the confirm window ---------------------------------------------------------------------------

WINDOW = 20


def small_topology() -> dict:
    return {"version": 1, "networks": {
        "lab0": {"type": "routed", "cidr": "10.98.0.0/24", "gw_ip": "10.98.0.1", "policy_profile": "routed-tight"},
    }}


def trap_topology() -> dict:
    """small_topology plus a forward of every new SSH connection into an empty network, with the
    guard off: the connection that applies it survives, every new one goes nowhere."""
    topology = small_topology()
    topology["management"] = {"enforce": False}
    topology["networks"]["trap"] = {"type": "routed", "cidr": "10.99.0.0/24", "gw_ip": "10.99.0.1",
                                    "forwards": [{"public": "0.0.0.0:22/tcp", "dst": "10.99.0.10:22"}]}
    return topology


def apply_with_window(topology: dict, **options: object) -> dict:
    return {"name": "apply", "ghostwarden.core.ghostwarden_apply": {
        "topology": topology, "confirm_timeout": WINDOW, **options}}


def rollback_units(lab, guest: str = "vm1") -> str:
    """What systemd logged about the rollback timers and services (the journal of PID 1)."""
    return lab[guest].ssh("journalctl --no-pager -o cat _PID=1 | grep ghostwarden-rollback || true").stdout


def test_the_confirm_window_is_a_transient_systemd_timer_cancelled_by_the_confirmation(guests, plays) -> None:
    started = time.monotonic()
    results = plays([apply_with_window(small_topology())], hosts="vm1")
    (result,) = results
    assert result.changed and result["confirmed"] is True, f"{result}\n{results.output}"
    log = rollback_units(guests)
    (token,) = set(re.findall(r"ghostwarden-rollback-([0-9a-f]+)\.timer", log)) or {None}
    assert token, log
    # Armed as a transient timer, then stopped by the confirmation; the service never ran.
    assert f"Started ghostwarden-rollback-{token}.timer" in log, log
    assert f"Stopped ghostwarden-rollback-{token}.timer" in log, log
    assert f"ghostwarden-rollback-{token}.service" not in log, log
    assert guests["vm1"].ssh(f"systemctl list-timers --all --no-legend ghostwarden-rollback-{token}.timer").stdout == ""

    # Past the window, the change is still there.
    time.sleep(max(0.0, WINDOW + 5 - (time.monotonic() - started)))
    assert "gw-lab0" in guests["vm1"].ssh("ip -br link").stdout
    assert not guests["vm1"].ssh(f"ls {STATE_DIR}").stdout.count("rolled-back-")


def test_the_timer_rolls_back_a_change_that_cut_the_management_path(guests, plays) -> None:
    first = plays([apply_with_window(small_topology())], hosts="vm1")
    assert first[0].changed and first[0]["confirmed"] is True, first.output
    table_before = guests["vm1"].ssh("nft list table inet ghostwarden").stdout

    second = plays([apply_with_window(trap_topology(), management_from_connection=False, allow_lockout=True)],
                   hosts="vm1")
    (task,) = second
    assert task.status == "failed", f"{task}\n{second.output}"
    assert task["msg"].startswith("the change cut the management path"), task["msg"]
    token = task["confirm"]["token"]

    # The guest rolls back by itself; SSH answers again once it has.
    deadline = time.monotonic() + WINDOW + 60
    while True:
        try:
            guests["vm1"].ssh("true", timeout=10)
            break
        except VmLabError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    vm1 = guests["vm1"]
    marker = vm1.ssh(f"cat {STATE_DIR}/rolled-back-{token}").stdout
    assert marker.startswith("the confirm window closed at "), marker
    log = rollback_units(guests)
    assert f"Started ghostwarden-rollback-{token}.timer" in log, log
    assert re.search(rf"ghostwarden-rollback-{token}\.service.*(Deactivated successfully|Finished)", log), log
    assert vm1.ssh("nft list table inet ghostwarden").stdout == table_before
    assert "gw-trap" not in vm1.ssh("ip -br link").stdout
    assert json.loads(vm1.ssh(f"cat {STATE_DIR}/state.json").stdout)["generation"] == 1

    third = plays([apply_with_window(small_topology())], hosts="vm1")
    assert third[0].status == "ok" and third[0]["plan"] == [], third.output
    assert by_host(third)["vm1"]["changed"] is False
