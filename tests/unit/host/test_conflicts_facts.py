# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The facts behind the conflicts (host/_conflicts.py): services from files under a fake root, and
the foreign tables through a recorded runner (tests/integration/test_foreign_firewalls.py uses the real nft)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ansible_collections.ghostwarden.core.plugins.module_utils.core._conflicts import NetworkdFile, ServiceFacts
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._conflicts import (
    foreign_ruleset,
    host_conflict_warnings,
    host_conflicts,
    recorded_topology,
    service_facts,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.tests.support.recorder import Recorder

LIVE = str(os.getpid())  # a pid whose /proc directory the fake root gets


def write(root: Path, path: str, text: str = "") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def process(root: Path, pid: int | str, comm: str | None = None) -> None:
    (root / "proc" / str(pid)).mkdir(parents=True, exist_ok=True)
    if comm is not None:
        write(root, f"proc/{pid}/comm", f"{comm}\n")


def interface(root: Path, name: str, index: int) -> None:
    write(root, f"sys/class/net/{name}/ifindex", f"{index}\n")


def test_an_empty_host_runs_none_of_them(tmp_path):
    assert service_facts(str(tmp_path)) == ServiceFacts(links_checked=True)
    assert service_facts(str(tmp_path), links=False) == ServiceFacts()


def test_daemons_by_live_pid_file_or_by_process_name(tmp_path):
    write(tmp_path, "run/firewalld.pid", f"{LIVE}\n")
    process(tmp_path, LIVE)
    write(tmp_path, "run/docker.pid", "999999\n")  # stale: no such process
    process(tmp_path, 4242, "fail2ban-server")
    process(tmp_path, 4243, "crowdsec-firewa")  # comm keeps 15 characters of crowdsec-firewall-bouncer
    process(tmp_path, 4244, "bash")
    write(tmp_path, "proc/self/comm", "python3\n")
    facts = service_facts(str(tmp_path), links=False)
    assert facts.running == (
        ("firewalld", f"pid {LIVE} in /run/firewalld.pid"),
        ("fail2ban", "process fail2ban-server, pid 4242"),
        ("crowdsec", "process crowdsec-firewa, pid 4243"),
    )


def test_ufw_counts_when_its_configuration_enables_it(tmp_path):
    write(tmp_path, "etc/ufw/ufw.conf", "# /etc/ufw/ufw.conf\n#\nENABLED=no\nLOGLEVEL=low\n")
    assert service_facts(str(tmp_path)).running == ()
    write(tmp_path, "etc/ufw/ufw.conf", "# /etc/ufw/ufw.conf\nENABLED='yes'\nLOGLEVEL=low\n")
    assert service_facts(str(tmp_path)).running == (("ufw", "ENABLED=yes in /etc/ufw/ufw.conf"),)


def test_networkmanager_devices_and_configuration(tmp_path):
    write(tmp_path, "run/NetworkManager/NetworkManager.pid", LIVE)
    process(tmp_path, LIVE)
    interface(tmp_path, "lo", 1)
    interface(tmp_path, "eth0", 2)
    interface(tmp_path, "gw-web", 7)
    # What NetworkManager writes per ifindex (nm_config_device_state_write): a keyfile, group [device].
    write(tmp_path, "run/NetworkManager/devices/2", "[device]\nmanaged=true\nperm-hw-addr-fake=\nconnection-uuid=1c5b\n")
    write(tmp_path, "run/NetworkManager/devices/7", "[device]\nmanaged=false\n")
    write(tmp_path, "run/NetworkManager/devices/9", "[device]\nmanaged=true\n")  # no such interface any more
    write(tmp_path, "run/NetworkManager/devices/junk", "not a keyfile")
    write(tmp_path, "etc/NetworkManager/NetworkManager.conf",
          "[main]\nplugins=ifupdown,keyfile\n\n[keyfile]\nunmanaged-devices=interface-name:vmbr0\n")
    write(tmp_path, "usr/lib/NetworkManager/conf.d/10-shadowed.conf", "[keyfile]\nunmanaged-devices=interface-name:lost\n")
    write(tmp_path, "etc/NetworkManager/conf.d/10-shadowed.conf", "[keyfile]\nunmanaged-devices+=interface-name:gw-*;mac:52:54:00:12:34:56\n")
    write(tmp_path, "run/NetworkManager/conf.d/20-device.conf",
          "# a device section\n[device-ports]\nmatch-device=interface-name:dev1p,interface-name:dev2p\nmanaged=0\n"
          "[device-other]\nmatch-device=interface-name:eth9\nmanaged=1\n")
    facts = service_facts(str(tmp_path))
    assert facts.running == (("NetworkManager", f"pid {LIVE} in /run/NetworkManager/NetworkManager.pid"),)
    assert facts.links_checked
    assert facts.nm_devices == (("eth0", True), ("gw-web", False))
    assert facts.nm_unmanaged == (
        ("interface-name:vmbr0", "/etc/NetworkManager/NetworkManager.conf"),
        ("interface-name:gw-*", "/etc/NetworkManager/conf.d/10-shadowed.conf"),
        ("mac:52:54:00:12:34:56", "/etc/NetworkManager/conf.d/10-shadowed.conf"),
        ("interface-name:dev1p", "/run/NetworkManager/conf.d/20-device.conf"),
        ("interface-name:dev2p", "/run/NetworkManager/conf.d/20-device.conf"),
    )


def test_systemd_networkd_links_and_network_files(tmp_path):
    process(tmp_path, 300, "systemd-network")  # comm keeps 15 characters of systemd-networkd
    interface(tmp_path, "eth0", 2)
    interface(tmp_path, "dev1p", 5)
    write(tmp_path, "run/systemd/netif/links/2", "# This is private data. Do not parse.\nADMIN_STATE=configured\n"
                                                 "OPER_STATE=routable\nNETWORK_FILE=/etc/systemd/network/10-eth0.network\n")
    write(tmp_path, "run/systemd/netif/links/5", "ADMIN_STATE=unmanaged\nOPER_STATE=carrier\n")
    write(tmp_path, "etc/systemd/network/10-eth0.network", "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
    write(tmp_path, "usr/lib/systemd/network/10-eth0.network", "[Match]\nName=*\n")  # hidden by /etc
    write(tmp_path, "usr/lib/systemd/network/80-container.network",
          "[Match]\nName=ve-* vb-*\nName=\nName=!host0 x*\nVirtualization=container\n\n[Link]\nUnmanaged=yes\n")
    write(tmp_path, "run/systemd/network/90-all.network", "; comment\n[Match]\n\n[Network]\nLinkLocalAddressing=no\n")
    write(tmp_path, "run/systemd/network/README", "not a .network file")
    facts = service_facts(str(tmp_path))
    assert facts.running == (("systemd-networkd", "process systemd-network, pid 300"),)
    assert facts.networkd_links == (("dev1p", "unmanaged"), ("eth0", "configured"))
    assert facts.networkd_files == (
        NetworkdFile("/etc/systemd/network/10-eth0.network", names=("eth0",)),
        NetworkdFile("/usr/lib/systemd/network/80-container.network", names=("!host0", "x*"), other_match=True,
                     unmanaged=True),
        NetworkdFile("/run/systemd/network/90-all.network"),
    )


def test_unreadable_and_odd_files_are_skipped(tmp_path):
    write(tmp_path, "run/firewalld.pid", "not a pid\n")
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/ufw/ufw.conf").mkdir()  # a directory where a file should be
    process(tmp_path, 12)  # no comm
    write(tmp_path, "proc/13/comm", "")
    assert service_facts(str(tmp_path)).running == ()
    assert service_facts(str(tmp_path / "does-not-exist")).running == ()


# -- the foreign tables through nft ------------------------------------------------------------------

def listing(*items: dict) -> CommandResult:
    return CommandResult(0, json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]}), "")


def tables(*names: tuple[str, str]) -> CommandResult:
    return listing(*({"table": {"family": family, "name": name, "handle": 1}} for family, name in names))


def nft_present(_name: str) -> str:
    return "/usr/sbin/nft"


def test_foreign_tables_are_listed_tersely_with_their_verdict_maps():
    verdict_map = {"family": "ip", "name": "jumps", "table": "docker-bridges", "type": "ifname", "map": "verdict"}
    elements = [["docker0", {"jump": {"target": "in__docker0"}}]]
    recorder = Recorder(
        tables(("inet", "ghostwarden"), ("ip", "docker-bridges"), ("inet", "gone")),
        listing({"table": {"family": "ip", "name": "docker-bridges"}}, {"map": verdict_map},
                {"set": {"family": "ip", "name": "bl", "table": "docker-bridges", "type": "ipv4_addr"}}),
        listing({"map": {**verdict_map, "elem": elements}}),
        CommandResult(1, "", "Error: No such file or directory\nlist table inet gone\n"),
    )
    found = foreign_ruleset(CommandRunner(recorder, netns="lab"), which=nft_present)
    assert recorder.calls == [
        ["ip", "netns", "exec", "lab", "nft", "-j", "list", "tables"],
        ["ip", "netns", "exec", "lab", "nft", "-j", "-t", "list", "table", "ip", "docker-bridges"],
        ["ip", "netns", "exec", "lab", "nft", "-j", "list", "map", "ip", "docker-bridges", "jumps"],
        ["ip", "netns", "exec", "lab", "nft", "-j", "-t", "list", "table", "inet", "gone"],
    ]
    assert found == {"nftables": [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "ip", "name": "docker-bridges"}},
        {"map": {**verdict_map, "elem": elements}},
        {"set": {"family": "ip", "name": "bl", "table": "docker-bridges", "type": "ipv4_addr"}},
    ]}


def test_without_nft_or_when_it_fails_there_is_no_ruleset():
    recorder = Recorder()
    assert foreign_ruleset(CommandRunner(recorder), which=lambda name: None) is None
    assert recorder.calls == []
    for answer in (CommandResult(1, "", "netlink: Error: cannot open"), CommandResult(0, "not json", ""),
                   CommandResult(0, '{"nftables": 3}', ""), CommandResult(0, "[]", "")):
        assert foreign_ruleset(CommandRunner(Recorder(answer)), which=nft_present) is None

    def missing(argv, stdin):
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    assert foreign_ruleset(CommandRunner(missing), which=nft_present) is None
    assert foreign_ruleset(CommandRunner(Recorder(tables())), which=nft_present) == {"nftables": []}


TOPOLOGY = {"version": 1, "interfaces": {"uplink": "up0"},
            "networks": {"nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "masq_out": "uplink"}}}


def fake_host(root: Path) -> None:
    write(root, "etc/ufw/ufw.conf", "ENABLED=yes\n")
    write(root, "run/NetworkManager/NetworkManager.pid", LIVE)
    process(root, LIVE)


def test_services_count_on_the_host_and_not_inside_a_namespace(tmp_path):
    fake_host(tmp_path)
    topology = parse_topology(TOPOLOGY)
    on_host = host_conflicts(CommandRunner(Recorder(tables())), topology, root=str(tmp_path), which=nft_present)
    assert [conflict.kind for conflict in on_host] == ["ufw", "NetworkManager"]
    in_lab = host_conflicts(CommandRunner(Recorder(tables()), netns="lab"), topology, root=str(tmp_path),
                            which=nft_present)
    assert in_lab == []


def test_the_warnings_of_a_namespace_come_from_its_tables():
    answers = (tables(("inet", "filter")),
               listing({"table": {"family": "inet", "name": "filter"}},
                       {"chain": {"family": "inet", "table": "filter", "name": "input", "type": "filter",
                                  "hook": "input", "prio": 0, "policy": "drop"}}))
    (warning,) = host_conflict_warnings(CommandRunner(Recorder(*answers), netns="lab"), parse_topology(TOPOLOGY))
    assert warning.startswith("table inet filter: chain input (hook input, priority 0; policy drop) drops traffic "
                              "from network nat_dev to this host")


def test_the_recorded_topology_reads_back_or_is_none():
    assert recorded_topology(None) is None
    assert recorded_topology({"version": 1, "networks": {"x": {"type": "nonsense"}}}) is None
    assert [network.name for network in recorded_topology(TOPOLOGY).networks] == ["nat_dev"]
