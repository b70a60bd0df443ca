# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DnsmasqControl: config files, instance status, start/restart/stop, leases.

The first part needs no kernel (files, lease parsing, what is run, refusals); the second runs
real dnsmasq instances as root in a lab of throwaway namespaces, with busybox udhcpc as client.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import render_dnsmasq
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    Management,
    Network,
    Subnet,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._dnsmasq_control import DnsmasqControl, InstanceStatus
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, missing_requirement, throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.recorder import Recorder

LEASES = """\
1764094500 52:54:00:AA:00:0b 10.40.0.120 * *
1764094400 52:54:00:aa:00:0a 10.40.0.101 probe 01:52:54:00:aa:00:0a
0 52:54:00:aa:00:0c 10.40.0.9 static *
duid 00:01:00:01:2c:2f:6e:63:52:54:00:00:00:01
1764094600 1234 2001:db8:40::1005 v6host 00:01:00:01:2c:2f:6e:63:52:54:00:aa:00:0a
garbage line
"""


def network(name: str, octet: int, **changes) -> Network:
    base = Network(
        name=name,
        type="routed",
        iface=f"gw-{name}",
        subnets=(Subnet(f"10.{octet}.0.0/24", f"10.{octet}.0.1", 4),),
        dhcp=Dhcp(ranges=(DhcpRange(f"10.{octet}.0.100", f"10.{octet}.0.150", 4),)),
        dns=Dns(zones=(f"{name}.lan",)),
    )
    return dataclasses.replace(base, **changes)


def configs(state_dir: Path, *networks: Network) -> dict[str, str]:
    topology = Topology(1, (), Management(), (), tuple(sorted(networks, key=lambda item: item.name)))
    return render_dnsmasq(topology, state_dir=str(state_dir))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- without a kernel ---------------------------------------------------------------------------


def test_files_are_written_atomically_with_modes_and_observed_sorted(tmp_path):
    previous = os.umask(0o077)  # the modes must not depend on the umask
    try:
        control = DnsmasqControl(CommandRunner(), str(tmp_path / "state"))
        files = configs(tmp_path / "state", network("b", 41), network("a", 40))
        for path, content in reversed(list(files.items())):
            control.write_file(path, content)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "dnsmasq") == 0o755
    assert mode(tmp_path / "state" / "dnsmasq" / "a.conf") == 0o644
    (tmp_path / "state" / "dnsmasq" / "a.leases").write_text("")
    (tmp_path / "state" / "dnsmasq" / "a.pid").write_text("1\n")
    (tmp_path / "state" / "dnsmasq" / "dir.conf").mkdir()
    observed = control.observe_files()
    assert observed == files and list(observed) == sorted(files)
    assert sorted(os.listdir(tmp_path / "state" / "dnsmasq")) == ["a.conf", "a.leases", "a.pid", "b.conf", "dir.conf"]
    control.remove_file(f"{tmp_path}/state/dnsmasq/b.conf")
    control.remove_file(f"{tmp_path}/state/dnsmasq/b.conf")  # gone already: fine
    assert list(control.observe_files()) == [f"{tmp_path}/state/dnsmasq/a.conf"]


def test_nothing_observed_without_a_directory(tmp_path):
    control = DnsmasqControl(CommandRunner(), str(tmp_path / "none"))
    assert control.observe_files() == {}
    assert control.status() == {}
    assert control.reconcile() == []
    assert control.stop_all() == []
    assert control.leases("a") == []


@pytest.mark.parametrize("path", ["/etc/dnsmasq.conf", "{state}/dnsmasq/a.leases", "{state}/dnsmasq/sub/a.conf",
                                  "{state}/a.conf"])
def test_only_config_files_in_the_directory_are_written(tmp_path, path):
    control = DnsmasqControl(CommandRunner(), str(tmp_path))
    path = path.format(state=tmp_path)
    for action in (lambda: control.write_file(path, "port=0\n"), lambda: control.remove_file(path)):
        with pytest.raises(BackendError) as caught:
            action()
        assert str(caught.value) == f"dnsmasq files: {path} is not a config file in {tmp_path}/dnsmasq"
    assert not os.path.exists(f"{tmp_path}/dnsmasq")


def test_a_relative_state_dir_is_refused():
    with pytest.raises(ValidationError) as caught:
        DnsmasqControl(CommandRunner(), "state")
    assert str(caught.value) == "state_dir: 'state' must be an absolute path without commas or control characters"


def test_leases_are_parsed_and_sorted(tmp_path):
    (tmp_path / "dnsmasq").mkdir()
    (tmp_path / "dnsmasq" / "a.leases").write_text(LEASES)
    assert DnsmasqControl(CommandRunner(), str(tmp_path)).leases("a") == [
        {"expiry": 0, "mac": "52:54:00:aa:00:0c", "iaid": None, "ip": "10.40.0.9", "hostname": "static",
         "client_id": None},
        {"expiry": 1764094400, "mac": "52:54:00:aa:00:0a", "iaid": None, "ip": "10.40.0.101", "hostname": "probe",
         "client_id": "01:52:54:00:aa:00:0a"},
        {"expiry": 1764094500, "mac": "52:54:00:aa:00:0b", "iaid": None, "ip": "10.40.0.120", "hostname": None,
         "client_id": None},
        {"expiry": 1764094600, "mac": None, "iaid": "1234", "ip": "2001:db8:40::1005", "hostname": "v6host",
         "client_id": "00:01:00:01:2c:2f:6e:63:52:54:00:aa:00:0a"},
    ]


def test_a_pid_file_naming_another_process_is_not_an_instance(tmp_path):
    """The pid of this test process (python, not dnsmasq) in the pid file: never running, never signalled."""
    control = DnsmasqControl(CommandRunner(Recorder()), str(tmp_path))
    files = configs(tmp_path, network("a", 40))
    for path, content in files.items():
        control.write_file(path, content)
    (tmp_path / "dnsmasq" / "a.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "dnsmasq" / "gone.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "dnsmasq" / "gone.started").write_text("{}\n")
    assert control.status() == {
        "a": InstanceStatus("a", f"{tmp_path}/dnsmasq/a.conf", True, False, None, False),
        "gone": InstanceStatus("gone", f"{tmp_path}/dnsmasq/gone.conf", False, False, None, False),
    }
    assert control.status()["a"].to_dict() == {"network": "a", "config": f"{tmp_path}/dnsmasq/a.conf",
                                               "configured": True, "running": False, "pid": None,
                                               "current": False}
    assert control.reconcile(dry_run=True) == ["started a"]  # the recorder has no answer: nothing ran
    assert sorted(os.listdir(tmp_path / "dnsmasq")) == ["a.conf", "a.pid", "gone.pid", "gone.started"]
    assert control.stop_all() == []
    assert sorted(os.listdir(tmp_path / "dnsmasq")) == ["a.conf"]


def recorded_control(tmp_path: Path, *answers: CommandResult, **options) -> tuple[DnsmasqControl, Recorder]:
    recorder = Recorder(*answers)
    control = DnsmasqControl(CommandRunner(recorder, netns=options.pop("netns", None)), str(tmp_path),
                             start_timeout=0.2, **options)
    for path, content in configs(tmp_path, network("a", 40)).items():
        control.write_file(path, content)
    return control, recorder


def test_dnsmasq_own_error_is_reported(tmp_path):
    control, recorder = recorded_control(
        tmp_path,
        CommandResult(2, "", "\ndnsmasq: failed to create listening socket for 10.40.0.1: Address already in use\n"),
        netns="lab",
        use_systemd=False,
    )
    with pytest.raises(BackendError) as caught:
        control.reconcile()
    assert str(caught.value) == "dnsmasq a: failed to create listening socket for 10.40.0.1: Address already in use"
    assert recorder.calls == [["ip", "netns", "exec", "lab", "dnsmasq", f"--conf-file={tmp_path}/dnsmasq/a.conf"]]
    assert not (tmp_path / "dnsmasq" / "a.started").exists()


def test_a_start_without_a_process_is_an_error(tmp_path):
    control, _recorder = recorded_control(tmp_path, CommandResult(0, "", ""), use_systemd=False)
    with pytest.raises(BackendError) as caught:
        control.reconcile()
    assert str(caught.value) == (
        f"dnsmasq a: no dnsmasq process for {tmp_path}/dnsmasq/a.conf after 0.2 s (pid file {tmp_path}/dnsmasq/a.pid)"
    )


def test_with_systemd_a_transient_unit_runs_dnsmasq_in_the_foreground(tmp_path):
    control, recorder = recorded_control(
        tmp_path,
        CommandResult(5, "", "Failed to stop ghostwarden-dnsmasq-a.service: Unit not loaded.\n"),
        CommandResult(0, "", "Running as unit: ghostwarden-dnsmasq-a.service\n"),
        CommandResult(0, f"dnsmasq: bad dhcp-range at line 13 of {tmp_path}/dnsmasq/a.conf\n", ""),
        use_systemd=True,
    )
    before = int(time.time())
    with pytest.raises(BackendError) as caught:
        control.reconcile()
    assert str(caught.value) == f"dnsmasq a: bad dhcp-range at line 13 of {tmp_path}/dnsmasq/a.conf"
    assert recorder.calls[:2] == [
        ["systemctl", "stop", "ghostwarden-dnsmasq-a.service"],
        ["systemd-run", "--unit=ghostwarden-dnsmasq-a", "--collect", "dnsmasq", "-k",
         f"--conf-file={tmp_path}/dnsmasq/a.conf"],
    ]
    since = int(recorder.calls[2][2].split("@")[1])
    assert before <= since <= before + 1
    assert recorder.calls[2] == ["journalctl", "--unit=ghostwarden-dnsmasq-a.service", f"--since=@{since}",
                                 "--output=cat", "--no-pager", "--quiet"]


def test_systemd_is_never_used_inside_a_namespace():
    assert DnsmasqControl(CommandRunner(netns="lab"), "/var/lib/ghostwarden").use_systemd is False
    assert DnsmasqControl(CommandRunner(), "/var/lib/ghostwarden").use_systemd is os.path.isdir("/run/systemd/system")


# --- real instances in a lab --------------------------------------------------------------------

CLIENT_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "bound ip=$ip router=$router dns=$dns domain=$domain lease=$lease"
exit 0
"""


@dataclasses.dataclass
class Lab:
    host: NetNS
    client: NetNS
    state_dir: Path
    control: DnsmasqControl
    client_mac: str

    def config(self, name: str) -> str:
        return f"{self.state_dir}/dnsmasq/{name}.conf"

    def write(self, *networks: Network) -> None:
        for path, content in configs(self.state_dir, *networks).items():
            self.control.write_file(path, content)

    def pids(self) -> dict[str, int | None]:
        return {name: status.pid for name, status in self.control.status().items()}

    def running_in_host(self, pid: int) -> bool:
        return str(pid) in subprocess.run(["ip", "netns", "pids", self.host.name], capture_output=True, text=True,
                                          check=True).stdout.split()


@pytest.fixture
def lab(tmp_path) -> Iterator[Lab]:
    """A host namespace with bridges gw-a (10.40.0.1/24, a veth to a client namespace) and gw-b
    (10.41.0.1/24). Every process left in either namespace is killed when they go."""
    reason = missing_requirement(("ip", "dnsmasq", "busybox"))
    if reason:
        pytest.skip(reason)
    with throwaway_netns() as host, throwaway_netns() as client:
        host.run("ip", "link", "add", "gw-a", "type", "bridge")
        host.run("ip", "link", "add", "gw-b", "type", "bridge")
        host.run("ip", "link", "add", "va0", "type", "veth", "peer", "name", "va1", "netns", client.name)
        host.run("ip", "link", "set", "va0", "master", "gw-a")
        for link in ("va0", "gw-a", "gw-b"):
            host.run("ip", "link", "set", link, "up")
        client.run("ip", "link", "set", "va1", "up")
        host.run("ip", "addr", "add", "10.40.0.1/24", "dev", "gw-a")
        host.run("ip", "addr", "add", "10.41.0.1/24", "dev", "gw-b")
        mac = client.run("cat", "/sys/class/net/va1/address").stdout.strip()
        state_dir = tmp_path / "state"
        yield Lab(host, client, state_dir, DnsmasqControl(CommandRunner(netns=host.name), str(state_dir)), mac)


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaps yet (its cmdline is empty)."""
    try:
        return not Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True


def wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not dead(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return dead(pid)


def lease(lab: Lab, script: Path) -> str:
    """A DHCP lease for the client through busybox udhcpc; the bound line its script printed."""
    result = lab.client.run("timeout", "60", "busybox", "udhcpc", "-i", "va1", "-n", "-q", "-f", "-t", "10",
                            "-s", str(script), "-x", "hostname:probe", timeout=90)
    bound = [line for line in result.stdout.splitlines() if line.startswith("bound ")]
    assert len(bound) == 1, result.stdout + result.stderr
    return bound[0]


@pytest.mark.root
def test_instances_serve_restart_alone_and_stop(lab: Lab, tmp_path: Path):
    control = lab.control
    lab.write(network("a", 40), network("b", 41))

    assert control.reconcile(dry_run=True) == ["started a", "started b"]
    assert lab.pids() == {"a": None, "b": None}
    assert control.reconcile() == ["started a", "started b"]
    pids = lab.pids()
    assert all(pids.values()) and all(lab.running_in_host(pid) for pid in pids.values())
    assert control.status()["a"] == InstanceStatus("a", lab.config("a"), True, True, pids["a"], True)

    # A real client: a lease in range with the gateway as router and DNS server, its name resolves.
    script = tmp_path / "client.sh"
    script.write_text(CLIENT_SCRIPT)
    script.chmod(0o755)
    bound = lease(lab, script)
    address = bound.split()[1].split("=")[1]
    assert bound == f"bound ip={address} router=10.40.0.1 dns=10.40.0.1 domain=a.lan lease=43200"
    assert 100 <= int(address.rsplit(".", 1)[1]) <= 150
    lab.client.run("ip", "addr", "add", f"{address}/24", "dev", "va1")
    answer = lab.client.run("busybox", "nslookup", "probe.a.lan", "10.40.0.1").stdout
    assert f"Address: {address}" in answer
    leases = control.leases("a")
    assert [{key: value for key, value in item.items() if key != "expiry"} for item in leases] == [
        {"mac": lab.client_mac, "iaid": None, "ip": address, "hostname": "probe", "client_id": f"01:{lab.client_mac}"}
    ]
    assert abs(leases[0]["expiry"] - (time.time() + 43200)) < 60

    # Nothing changed: nothing touched.
    assert control.reconcile() == []
    assert lab.pids() == pids

    # A changed config restarts its own instance only.
    lab.write(network("a", 40, dhcp=Dhcp(ranges=(DhcpRange("10.40.0.100", "10.40.0.150", 4),), lease_time="1h")),
              network("b", 41))
    assert control.reconcile(dry_run=True) == ["restarted a"]
    assert lab.pids() == pids
    assert control.reconcile() == ["restarted a"]
    restarted = lab.pids()
    assert restarted["a"] not in (None, pids["a"]) and restarted["b"] == pids["b"]
    assert dead(pids["a"])
    assert control.reconcile() == []

    # An instance that died is started again.
    os.kill(restarted["a"], signal.SIGKILL)
    assert wait_dead(restarted["a"])
    assert control.status()["a"].running is False
    assert control.reconcile() == ["started a"]
    again = lab.pids()
    assert again["a"] not in (None, restarted["a"]) and again["b"] == pids["b"]

    # A config that goes stops its instance; its leases stay.
    control.remove_file(lab.config("b"))
    assert control.reconcile(dry_run=True) == ["stopped b"]
    assert lab.pids()["b"] == pids["b"]
    assert control.reconcile() == ["stopped b"]
    assert dead(pids["b"])
    assert "b" not in control.status()
    assert sorted(os.listdir(lab.state_dir / "dnsmasq")) == [
        "a.conf", "a.leases", "a.pid", "a.started", "b.leases",
    ]
    assert control.reconcile() == []

    assert control.stop_all() == ["stopped a"]
    assert control.status() == {"a": InstanceStatus("a", lab.config("a"), True, False, None, False)}
    assert control.stop_all() == []


@pytest.mark.root
def test_an_instance_in_another_namespace_is_not_ours(lab: Lab):
    lab.write(network("a", 40))
    assert lab.control.reconcile() == ["started a"]
    pid = lab.control.status()["a"].pid
    other = DnsmasqControl(CommandRunner(netns=lab.client.name), str(lab.state_dir))
    assert other.status()["a"] == InstanceStatus("a", lab.config("a"), True, False, None, False)
    assert other.stop_all() == []  # it forgets the pid file, and leaves the process alone
    assert pid is not None and lab.running_in_host(pid)
    assert f"--conf-file={lab.config('a')}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.root
def test_a_config_dnsmasq_refuses_fails_with_its_message(lab: Lab):
    files = configs(lab.state_dir, network("a", 40))
    text = files[lab.config("a")]
    lines = text.splitlines()
    number = lines.index("dhcp-range=10.40.0.100,10.40.0.150,12h") + 1
    lines[number - 1] = "dhcp-range=10.40.0.100"
    lab.control.write_file(lab.config("a"), "\n".join(lines) + "\n")
    with pytest.raises(BackendError) as caught:
        lab.control.reconcile()
    assert str(caught.value) == f"dnsmasq a: bad dhcp-range at line {number} of {lab.config('a')}"
    assert sorted(os.listdir(lab.state_dir / "dnsmasq")) == ["a.conf"]


@pytest.mark.root
def test_an_address_in_use_fails_with_dnsmasq_message(lab: Lab):
    squatter = lab.host.spawn("python3", "-c", "import socket, sys\n"
                                               "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                               "s.bind(('10.40.0.1', 53))\n"
                                               "print('ready', flush=True)\n"
                                               "sys.stdin.read()\n",
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert squatter.stdout.readline() == "ready\n"
    lab.write(network("a", 40))
    with pytest.raises(BackendError) as caught:
        lab.control.reconcile()
    assert str(caught.value) == "dnsmasq a: failed to create listening socket for 10.40.0.1: Address already in use"
    assert lab.control.status()["a"].running is False


def dnsmasq_pids(lab: Lab, config: str) -> list[int]:
    """Every dnsmasq of ``config`` in the host namespace, from ``ip netns pids``."""
    found = []
    for pid in subprocess.run(["ip", "netns", "pids", lab.host.name], capture_output=True, text=True,
                              check=True).stdout.split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if argv[0].endswith(b"dnsmasq") and f"--conf-file={config}".encode() in argv:
            found.append(int(pid))
    return found


@pytest.mark.root
def test_an_instance_without_its_pid_file_is_found_again(lab: Lab):
    """Its pid file removed (or naming another process), a running instance is found by its command
    line in the namespace: kept (no second dnsmasq), its pid file written again, and stopped."""
    control = lab.control
    lab.write(network("a", 40))
    assert control.reconcile() == ["started a"]
    pid = control.status()["a"].pid
    assert pid is not None and dnsmasq_pids(lab, lab.config("a")) == [pid]
    pid_file = lab.state_dir / "dnsmasq" / "a.pid"

    pid_file.unlink()
    assert control.status()["a"] == InstanceStatus("a", lab.config("a"), True, True, pid, True)
    assert control.reconcile(dry_run=True) == []
    assert not pid_file.exists()  # a dry run writes nothing
    assert control.reconcile() == []
    assert pid_file.read_text() == f"{pid}\n"
    assert dnsmasq_pids(lab, lab.config("a")) == [pid]

    pid_file.write_text(f"{os.getpid()}\n")  # a stale pid file naming another process
    assert control.reconcile() == []
    assert pid_file.read_text() == f"{pid}\n"

    # Another namespace's view does not see it; stopping without the pid file finds it too.
    other = DnsmasqControl(CommandRunner(netns=lab.client.name), str(lab.state_dir))
    pid_file.unlink()
    assert other.status()["a"].running is False
    assert control.stop_all() == ["stopped a"]
    assert wait_dead(pid) and dnsmasq_pids(lab, lab.config("a")) == []
    assert sorted(os.listdir(lab.state_dir / "dnsmasq")) == ["a.conf", "a.leases"]
