# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Post-apply probes: validation, the commands they run, and real checks inside throwaway namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._probe import (
    Probe,
    ProbeResult,
    check_probes,
    run_probes,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import (
    CommandResult,
    CommandRunner,
    subprocess_run,
)
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, requires_tools, throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.recorder import Recorder


@pytest.mark.parametrize("probes, errors", [
    ({"tcp": "a:1"}, ["probes: expected a list of checks, found dict: {'tcp': 'a:1'}"]),
    (["tcp"], ["probes[0]: expected a mapping with one of tcp, ping or dns, found str: 'tcp'"]),
    ([{"tcp": "10.0.0.1:22"}, {"tcp": "10.0.0.1:70000"}],
     ["probes[1].tcp: '10.0.0.1:70000': port 70000 is out of range 1-65535"]),
    ([{"tcp": "10.0.0.1"}], ["probes[0].tcp: '10.0.0.1' is not host:port"]),
    ([{"tcp": "10.0.0.1:ssh"}], ["probes[0].tcp: '10.0.0.1:ssh': port 'ssh' is not a number"]),
    ([{"tcp": "2001:db8::1:22"}],
     ["probes[0].tcp: '2001:db8::1:22': an IPv6 address needs brackets, as in [2001:db8::1]:22"]),
    ([{"tcp": "[10.0.0.1]:22"}], ["probes[0].tcp: '[10.0.0.1]:22' is not [ipv6-address]:port"]),
    ([{"tcp": "-oProxy:22"}], ["probes[0].tcp: '-oProxy:22': '-oProxy' is not an IP address or a host name"]),
    ([{"tcp": "999.1.1.1:22"}], ["probes[0].tcp: '999.1.1.1:22': '999.1.1.1' is not an IP address or a host name"]),
    ([{"ping": "bad host"}], ["probes[0].ping: 'bad host' is not an IP address or a host name"]),
    ([{"ping": 10}], ["probes[0].ping: expected a string, found int: 10"]),
    ([{"dns": "10.0.0.1:53"}], ["probes[0].dns: '10.0.0.1:53' is not a DNS name"]),
    ([{"dns": "a.example", "timeout": 0}], ["probes[0].timeout: 0 is not a number of seconds in 1-300"]),
    ([{"dns": "a.example", "timeout": 301}], ["probes[0].timeout: 301 is not a number of seconds in 1-300"]),
    ([{"dns": "a.example", "timeout": True}], ["probes[0].timeout: True is not a number of seconds in 1-300"]),
    ([{"dns": "a.example", "timeout": "5"}], ["probes[0].timeout: '5' is not a number of seconds in 1-300"]),
    ([{"dns": "a.example", "port": 53}], ["probes[0].port: unknown key 'port' (allowed: tcp, ping, dns, timeout)"]),
    ([{"tcp": "a:1", "ping": "a"}], ["probes[0]: needs exactly one of tcp, ping or dns, found tcp and ping"]),
    ([{"timeout": 3}, None],
     ["probes[0]: needs exactly one of tcp, ping or dns, found none",
      "probes[1]: expected a mapping with one of tcp, ping or dns, found NoneType: None"]),
])
def test_invalid_probes_name_the_path_and_value(probes, errors):
    recorder = Recorder()
    with pytest.raises(ValidationError) as raised:
        run_probes(probes, CommandRunner(recorder))
    assert [str(issue) for issue in raised.value.issues] == errors
    assert recorder.calls == []


def test_a_bad_default_timeout_is_refused():
    with pytest.raises(ValidationError) as raised:
        check_probes([], default_timeout=0.5)
    assert str(raised.value) == "default_timeout: 0.5 is not a number of seconds in 1-300"


def test_valid_probes_parse_in_order():
    assert check_probes([{"tcp": "[2001:db8::1]:443", "timeout": 2}, {"ping": "gw.example.net"},
                         {"dns": "example.org."}, {"tcp": "host-1:22"}], default_timeout=7) == [
        Probe("tcp", "[2001:db8::1]:443", "2001:db8::1", 443, 2.0),
        Probe("ping", "gw.example.net", "gw.example.net", None, 7.0),
        Probe("dns", "example.org.", "example.org.", None, 7.0),
        Probe("tcp", "host-1:22", "host-1", 22, 7.0),
    ]
    assert check_probes(None) == []


def test_commands_are_bounded_and_run_in_the_namespace():
    recorder = Recorder(
        CommandResult(0, "", ""),
        CommandResult(1, "", "tcp-probe: connect: Connection refused\n"
                             "tcp-probe: line 1: /dev/tcp/10.0.0.1/23: Connection refused\n"),
        CommandResult(0, "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n\n--- 10.0.0.1 ping statistics ---\n"
                         "1 packets transmitted, 1 packets received, 0% packet loss\n"
                         "round-trip min/avg/max = 0.071/0.071/0.071 ms\n", ""),
        CommandResult(124, "", ""),
        CommandResult(0, "10.1.2.3        STREAM a.example\n10.1.2.3        DGRAM\n2001:db8::5     STREAM\n"
                         "10.1.2.0        STREAM\n", ""),
        CommandResult(2, "", ""),
    )
    results = run_probes([{"tcp": "10.0.0.1:22"}, {"tcp": "10.0.0.1:23", "timeout": 2.5}, {"ping": "10.0.0.1"},
                          {"ping": "10.0.0.2", "timeout": 1.5}, {"dns": "a.example"}, {"dns": "b.example"}],
                         CommandRunner(recorder, netns="lab"))
    prefix = ["ip", "netns", "exec", "lab", "timeout", "-k", "1"]
    assert recorder.calls == [
        [*prefix, "5", "bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "tcp-probe", "10.0.0.1", "22"],
        [*prefix, "2.5", "bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "tcp-probe", "10.0.0.1", "23"],
        [*prefix, "5", "ping", "-q", "-c", "1", "-W", "5", "10.0.0.1"],
        [*prefix, "1.5", "ping", "-q", "-c", "1", "-W", "2", "10.0.0.2"],
        [*prefix, "5", "getent", "ahosts", "a.example"],
        [*prefix, "5", "getent", "ahosts", "b.example"],
    ]
    assert [(result.name, result.ok, result.detail) for result in results] == [
        ("tcp 10.0.0.1:22", True, "connected"),
        ("tcp 10.0.0.1:23", False, "connect: Connection refused"),
        ("ping 10.0.0.1", True, "reply in 0.071 ms"),
        ("ping 10.0.0.2", False, "no reply within 1.5 s"),
        ("dns a.example", True, "10.1.2.0, 10.1.2.3, 2001:db8::5"),
        ("dns b.example", False, "b.example not found"),
    ]
    assert all(isinstance(result.seconds, float) and result.seconds >= 0 for result in results)
    assert results[0].to_dict() == {"name": "tcp 10.0.0.1:22", "ok": True, "detail": "connected",
                                    "seconds": results[0].seconds}


# Namespace tests: 192.0.2.1 is an address of the namespace whose input the namespace's own
# firewall drops, so a connect to it or a ping of it waits until the timeout.
BLACKHOLE = "192.0.2.1"
BLACKHOLE_RULES = f"""
table inet probe_test {{
    chain input {{
        type filter hook input priority 0; policy accept;
        ip daddr {BLACKHOLE} drop
    }}
}}
"""


@pytest.fixture
def lab() -> Iterator[NetNS]:
    with throwaway_netns() as namespace:
        namespace.run("ip", "address", "add", f"{BLACKHOLE}/32", "dev", "lo")
        namespace.nft(BLACKHOLE_RULES)
        yield namespace


def timed(probes: list[dict], namespace: NetNS, run=subprocess_run) -> tuple[list[ProbeResult], float]:
    started = time.monotonic()
    results = run_probes(probes, CommandRunner(run, netns=namespace.name))
    return results, time.monotonic() - started


@pytest.mark.root
def test_tcp_connects_refuses_fast_and_times_out(lab: NetNS):
    listener = lab.spawn("python3", "-c", "import socket, time\n"
                                          "s = socket.socket(); s.bind(('127.0.0.1', 8022)); s.listen()\n"
                                          "time.sleep(60)")
    ready, dummy = timed([{"tcp": "127.0.0.1:8022", "timeout": 1}], lab)
    deadline = time.monotonic() + 10
    while not ready[0].ok and time.monotonic() < deadline and listener.poll() is None:
        time.sleep(0.1)
        ready, dummy = timed([{"tcp": "127.0.0.1:8022", "timeout": 1}], lab)
    assert ready[0].detail == "connected" and ready[0].ok

    refused, seconds = timed([{"tcp": "127.0.0.1:8023", "timeout": 5}], lab)
    assert (refused[0].ok, refused[0].detail) == (False, "connect: Connection refused")
    assert seconds < 1

    ipv6_refused, dummy = timed([{"tcp": "[::1]:8023"}], lab)
    assert (ipv6_refused[0].name, ipv6_refused[0].ok, ipv6_refused[0].detail) == (
        "tcp [::1]:8023", False, "connect: Connection refused")

    blackholed, seconds = timed([{"tcp": f"{BLACKHOLE}:22", "timeout": 1}], lab)
    assert (blackholed[0].ok, blackholed[0].detail) == (False, "no connection within 1 s")
    assert 1 <= seconds < 2.5, seconds


@pytest.fixture
def ping_run(tmp_path: Path):
    """A run function with a ``ping`` on PATH: the system's, or busybox's applet when there is none."""
    if shutil.which("ping"):
        return subprocess_run
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs ping (iputils or busybox)")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ping").symlink_to(busybox)
    environment = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ.get('PATH', '')}"}

    def run(argv: Sequence[str], stdin: str | None) -> CommandResult:
        completed = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False,
                                   env=environment)
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.mark.root
def test_ping_answers_and_times_out(lab: NetNS, ping_run):
    answered, dummy = timed([{"ping": "127.0.0.1"}], lab, ping_run)
    assert answered[0].ok, answered[0]
    assert answered[0].detail.startswith("reply in ") and answered[0].detail.endswith(" ms")

    silent, seconds = timed([{"ping": BLACKHOLE, "timeout": 1}], lab, ping_run)
    assert silent[0].ok is False
    assert silent[0].detail == "no reply within 1 s", silent[0]
    assert seconds < 2.5, seconds


@pytest.mark.root
@requires_tools("ip", "nft", "dnsmasq", "getent")
def test_dns_resolves_through_the_namespaces_resolver(lab: NetNS, tmp_path: Path):
    # ip netns exec bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf.
    netns_etc = Path("/etc/netns") / lab.name
    netns_etc.mkdir(parents=True)
    try:
        (netns_etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        lab.spawn("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                  "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file", "--user=root",
                  "--address=/probe.gwt.test/10.1.2.3", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not timed([{"tcp": "127.0.0.1:53", "timeout": 1}], lab)[0][0].ok and time.monotonic() < deadline:
            time.sleep(0.1)
        found, dummy = timed([{"dns": "probe.gwt.test"}], lab)
        assert (found[0].name, found[0].ok, found[0].detail) == ("dns probe.gwt.test", True, "10.1.2.3")
        missing, seconds = timed([{"dns": "missing.gwt.test", "timeout": 3}], lab)
        assert (missing[0].ok, missing[0].detail) == (False, "missing.gwt.test not found")
        assert seconds < 3
    finally:
        shutil.rmtree(netns_etc)
