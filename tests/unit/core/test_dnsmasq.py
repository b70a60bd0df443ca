# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dnsmasq config rendering: exact text, every feature combination accepted by ``dnsmasq --test``."""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import (
    instance_paths,
    render_dnsmasq,
    render_instance,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    DnsRecord,
    Management,
    Network,
    StaticLease,
    Subnet,
    Topology,
)

from ansible_collections.ghostwarden.core.tests.support.netns import (
    create_netns,
    delete_netns,
    missing_requirement,
    throwaway_netns,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"

V4 = Subnet("10.33.0.0/24", "10.33.0.1", 4)
V6 = Subnet("2001:db8:33::/64", "2001:db8:33::1", 6)
RANGE4 = DhcpRange("10.33.0.128", "10.33.0.254", 4)
RANGE6 = DhcpRange("2001:db8:33::1000", "2001:db8:33::1fff", 6)


def topology(*networks: Network) -> Topology:
    return Topology(1, (), Management(), (), tuple(sorted(networks, key=lambda network: network.name)))


def nat_dev(**changes) -> Network:
    network = Network(
        name="nat_dev",
        type="routed",
        iface="gw-nat_dev",
        subnets=(V4,),
        dhcp=Dhcp(ranges=(RANGE4,)),
        dns=Dns(zones=("dev.lan",)),
        masq_out="enp6s0",
    )
    return dataclasses.replace(network, **changes)


EXAMPLE_CONF = """\
# Managed by ghostwarden.core for network nat_dev; changes are overwritten.
interface=gw-nat_dev
except-interface=lo
bind-dynamic
no-hosts
pid-file=/var/lib/ghostwarden/dnsmasq/nat_dev.pid
domain-needed
domain=dev.lan
local=/dev.lan/
dhcp-authoritative
dhcp-leasefile=/var/lib/ghostwarden/dnsmasq/nat_dev.leases
dhcp-lease-max=127
dhcp-range=10.33.0.128,10.33.0.254,12h
dhcp-option=option:router,10.33.0.1
dhcp-option=option:dns-server,10.33.0.1
"""


# --- dnsmasq --test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dnsmasq_check():
    """Runs ``dnsmasq --test --conf-file=<file>``: inside a throwaway namespace as root, directly otherwise.

    ``--test`` only parses the configuration; the namespace keeps even a mistake away from the host.
    """
    if shutil.which("dnsmasq") is None:
        pytest.skip("needs dnsmasq")
    with ExitStack() as stack:
        prefix: list = []
        if os.geteuid() == 0:  # not a root test: another user runs the check directly (it only parses)
            prefix = ["ip", "netns", "exec", stack.enter_context(throwaway_netns(tools=("ip",))).name]

        def check(path: Path) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*prefix, "dnsmasq", "--test", f"--conf-file={path}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        yield check


def write_and_check(check, tmp_path: Path, files: dict) -> None:
    assert files, "nothing rendered"
    for number, content in enumerate(files.values()):
        path = tmp_path / f"{number}.conf"
        path.write_text(content)
        result = check(path)
        assert result.returncode == 0, f"{result.stderr}\n{content}"
        assert "syntax check OK" in result.stderr


def test_dnsmasq_check_rejects_a_broken_file(dnsmasq_check, tmp_path):
    path = tmp_path / "broken.conf"
    path.write_text(EXAMPLE_CONF.replace("dhcp-range=10.33.0.128,10.33.0.254,12h", "dhcp-range=10.33.0.128"))
    result = dnsmasq_check(path)
    assert result.returncode == 1
    assert "bad dhcp-range" in result.stderr


# --- exact text -----------------------------------------------------------------------------------


def test_example_network_renders_exactly():
    assert render_dnsmasq(topology(nat_dev())) == {"/var/lib/ghostwarden/dnsmasq/nat_dev.conf": EXAMPLE_CONF}


def test_original_example_file_renders_the_same(dnsmasq_check, tmp_path):
    topology_module = pytest.importorskip("ansible_collections.ghostwarden.core.plugins.module_utils.core._topology")
    for name in ("ghostnet.toml", "ghostnet.yaml"):
        parsed = topology_module.parse_topology(topology_module.load_topology_file(str(FIXTURES / name)))
        files = render_dnsmasq(parsed)
        assert files == {"/var/lib/ghostwarden/dnsmasq/nat_dev.conf": EXAMPLE_CONF}
        write_and_check(dnsmasq_check, tmp_path, files)


def test_everything_on_a_dual_stack_network():
    network = nat_dev(
        iface="br-lab",
        subnets=(V4, V6),
        dhcp=Dhcp(
            ranges=(RANGE4, RANGE6),
            lease_time="infinite",
            hosts=(
                StaticLease("52:54:00:00:00:0a", "10.33.0.10", "web"),
                StaticLease("52:54:00:00:00:0b", "2001:db8:33::b", None),
            ),
        ),
        dns=Dns(
            zones=("lab.example", "svc.lab.example"),
            records=(DnsRecord("db.lab.example", "10.33.0.20"), DnsRecord("db.lab.example", "2001:db8:33::20")),
            upstream=("192.0.2.53", "2001:db8::53"),
        ),
    )
    assert render_instance(network, instance_paths("/srv/gw/", "lab")) == """\
# Managed by ghostwarden.core for network nat_dev; changes are overwritten.
interface=br-lab
except-interface=lo
bind-dynamic
no-hosts
pid-file=/srv/gw/dnsmasq/lab.pid
domain-needed
no-resolv
server=192.0.2.53
server=2001:db8::53
domain=lab.example
local=/lab.example/
local=/svc.lab.example/
host-record=db.lab.example,10.33.0.20
host-record=db.lab.example,2001:db8:33::20
dhcp-authoritative
dhcp-leasefile=/srv/gw/dnsmasq/lab.leases
dhcp-lease-max=4225
dhcp-range=10.33.0.128,10.33.0.254,infinite
dhcp-range=2001:db8:33::1000,2001:db8:33::1fff,64,infinite
enable-ra
dhcp-option=option:router,10.33.0.1
dhcp-option=option:dns-server,10.33.0.1
dhcp-option=option6:dns-server,[2001:db8:33::1]
dhcp-host=52:54:00:00:00:0a,10.33.0.10,web
dhcp-host=52:54:00:00:00:0b,[2001:db8:33::b]
"""


def test_dhcp_without_dns_turns_dns_off_and_names_no_dns_server():
    text = render_dnsmasq(topology(nat_dev(dns=None)))["/var/lib/ghostwarden/dnsmasq/nat_dev.conf"]
    assert "port=0\n" in text
    assert "dns-server" not in text and "domain" not in text
    assert "dhcp-option=option:router,10.33.0.1\n" in text


def test_dns_without_dhcp_has_no_dhcp_lines():
    text = render_dnsmasq(topology(nat_dev(dhcp=None)))["/var/lib/ghostwarden/dnsmasq/nat_dev.conf"]
    assert [line for line in text.splitlines() if "dhcp" in line] == []
    assert "port=0" not in text


def test_router_is_the_gateway_never_the_network_address():
    for subnet in (Subnet("10.33.0.0/24", "10.33.0.1", 4), Subnet("10.33.0.0/24", "10.33.0.254", 4)):
        text = render_instance(nat_dev(subnets=(subnet,)), instance_paths("/var/lib/ghostwarden", "nat_dev"))
        routers = [line for line in text.splitlines() if "option:router" in line]
        assert routers == [f"dhcp-option=option:router,{subnet.gw_ip}"]


def test_networks_without_dhcp_or_dns_get_no_file_and_files_are_sorted():
    files = render_dnsmasq(
        topology(
            nat_dev(name="zeta", iface="gw-zeta"),
            nat_dev(name="alpha", iface="gw-alpha", dns=None),
            nat_dev(name="quiet", iface="gw-quiet", dhcp=None, dns=None),
            Network(name="l2", type="bridge", iface="br-l2"),
        ),
        state_dir="/run/gw",
    )
    assert list(files) == ["/run/gw/dnsmasq/alpha.conf", "/run/gw/dnsmasq/zeta.conf"]


def test_rendering_is_deterministic():
    networks = [nat_dev(name=f"n{index}", iface=f"gw-n{index}") for index in range(5)]
    first = render_dnsmasq(topology(*networks))
    second = render_dnsmasq(topology(*reversed(networks)))
    assert first == second
    assert list(first) == sorted(first)


def test_no_other_config_is_pulled_in():
    text = EXAMPLE_CONF
    assert "conf-file" not in text and "conf-dir" not in text and "resolv-file" not in text
    assert "no-hosts" in text.splitlines()


def test_paths_of_an_instance():
    assert instance_paths("/var/lib/ghostwarden/", "nat_dev") == instance_paths("/var/lib//ghostwarden", "nat_dev")
    paths = instance_paths("/var/lib/ghostwarden", "nat_dev")
    assert (paths.config, paths.leases, paths.pid) == (
        "/var/lib/ghostwarden/dnsmasq/nat_dev.conf",
        "/var/lib/ghostwarden/dnsmasq/nat_dev.leases",
        "/var/lib/ghostwarden/dnsmasq/nat_dev.pid",
    )


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state_dir",
    ["var/lib/ghostwarden", "", "/var/lib/ghost\nwarden", "/var/lib/a,b"],
)
def test_state_dir_must_be_a_plain_absolute_path(state_dir):
    with pytest.raises(RenderError) as caught:
        render_dnsmasq(topology(nat_dev()), state_dir=state_dir)
    assert str(caught.value) == (
        f"state_dir: {state_dir!r} must be an absolute path without commas or control characters"
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"dns": Dns(zones=("dev.lan\nconf-file=/etc/shadow",))},
            "networks.nat_dev: zone 'dev.lan\\nconf-file=/etc/shadow' cannot be written to a dnsmasq config",
        ),
        (
            {"dhcp": Dhcp(ranges=(RANGE4,), lease_time="12h,extra")},
            "networks.nat_dev: lease time '12h,extra' cannot be written to a dnsmasq config",
        ),
        (
            {"dhcp": Dhcp(ranges=(RANGE4,), hosts=(StaticLease("52:54:00:00:00:0a", "10.33.0.10", "a b"),))},
            "networks.nat_dev: static lease hostname 'a b' cannot be written to a dnsmasq config",
        ),
        (
            {"dns": Dns(records=(DnsRecord("x.lan", "10.33.0.5,10.0.0.1"),))},
            "networks.nat_dev: record address '10.33.0.5,10.0.0.1' cannot be written to a dnsmasq config",
        ),
        (
            {"iface": "gw nat"},
            "networks.nat_dev: interface 'gw nat' cannot be written to a dnsmasq config",
        ),
        (
            {"subnets": ()},
            "networks.nat_dev: DHCP and DNS need an address (cidr and gw_ip), none is set",
        ),
        (
            {"dhcp": Dhcp(ranges=(RANGE6,))},
            "networks.nat_dev.dhcp: an IPv6 range needs an IPv6 subnet",
        ),
        (
            {"name": "../etc"},
            "networks.../etc: the name '../etc' cannot be used in a file name",
        ),
    ],
)
def test_unwritable_values_are_refused(changes, message):
    with pytest.raises(RenderError) as caught:
        render_dnsmasq(topology(nat_dev(**changes)))
    assert str(caught.value) == message


# --- every feature combination --------------------------------------------------------------------

FAMILIES = {"v4": (V4,), "v6": (V6,), "dual": (V4, V6)}
DHCP_KINDS = ("none", "ranges", "ranges+hosts")
DNS_KINDS = ("none", "bare", "zones", "zones+records+upstream")


def combination(families: str, dhcp_kind: str, dns_kind: str) -> Network:
    subnets = FAMILIES[families]
    dhcp = None
    if dhcp_kind != "none":
        ranges = tuple(RANGE4 if subnet.family == 4 else RANGE6 for subnet in subnets)
        hosts = ()
        if dhcp_kind == "ranges+hosts":
            hosts = tuple(
                StaticLease(f"52:54:00:00:00:{index:02x}", "10.33.0.9" if subnet.family == 4 else "2001:db8:33::9",
                            "host9" if index else None)
                for index, subnet in enumerate(subnets)
            )
        dhcp = Dhcp(ranges=ranges, lease_time="45m", hosts=hosts)
    dns = None
    if dns_kind == "bare":
        dns = Dns()
    elif dns_kind == "zones":
        dns = Dns(zones=("dev.lan",))
    elif dns_kind == "zones+records+upstream":
        records = tuple(DnsRecord("app.dev.lan", subnet.gw_ip) for subnet in subnets)
        dns = Dns(zones=("dev.lan", "corp.lan"), records=records, upstream=("192.0.2.53",))
    return nat_dev(subnets=subnets, dhcp=dhcp, dns=dns)


COMBINATIONS = [
    (families, dhcp_kind, dns_kind)
    for families, dhcp_kind, dns_kind in itertools.product(FAMILIES, DHCP_KINDS, DNS_KINDS)
    if (dhcp_kind, dns_kind) != ("none", "none")
]


@pytest.mark.parametrize("families, dhcp_kind, dns_kind", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def test_every_combination_passes_dnsmasq_test(dnsmasq_check, tmp_path, families, dhcp_kind, dns_kind):
    files = render_dnsmasq(topology(combination(families, dhcp_kind, dns_kind)), state_dir=str(tmp_path))
    text = files[f"{tmp_path}/dnsmasq/nat_dev.conf"]
    write_and_check(dnsmasq_check, tmp_path, files)
    # What each combination must say, beyond being accepted.
    assert ("port=0" in text.splitlines()) == (dns_kind == "none")
    assert ("enable-ra" in text.splitlines()) == (dhcp_kind != "none" and families != "v4")
    assert ("dhcp-option=option:router,10.33.0.1" in text.splitlines()) == (dhcp_kind != "none" and families != "v6")
    assert ("no-resolv" in text.splitlines()) == (dns_kind == "zones+records+upstream")


# --- a live instance in a lab ---------------------------------------------------------------------

CLIENT_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "bound ip=$ip router=$router dns=$dns domain=$domain lease=$lease"
exit 0
"""


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


@pytest.mark.root
def test_the_example_instance_serves_dhcp_and_dns_in_a_lab(tmp_path):
    """The rendered example, started as dnsmasq in a lab namespace, leases to a client in another
    namespace with the gateway as router and DNS server, and answers for the client's name."""
    reason = missing_requirement(("ip", "dnsmasq", "busybox"))
    if reason:
        pytest.skip(reason)
    host, client = f"gwt-{secrets.token_hex(4)}", f"gwt-{secrets.token_hex(4)}"
    state_dir = tmp_path / "state"
    (state_dir / "dnsmasq").mkdir(parents=True)
    files = render_dnsmasq(topology(nat_dev()), state_dir=str(state_dir))
    for path, content in files.items():
        Path(path).write_text(content)
    script = tmp_path / "client.sh"
    script.write_text(CLIENT_SCRIPT)
    script.chmod(0o755)
    server = None
    try:
        create_netns(host)
        create_netns(client)
        run("ip", "-n", host, "link", "add", "gw-nat_dev", "type", "bridge")
        run("ip", "-n", host, "link", "add", "vp0", "type", "veth", "peer", "name", "vp1", "netns", client)
        run("ip", "-n", host, "link", "set", "vp0", "master", "gw-nat_dev")
        for namespace, link in ((host, "lo"), (host, "vp0"), (host, "gw-nat_dev"), (client, "lo"), (client, "vp1")):
            run("ip", "-n", namespace, "link", "set", link, "up")
        run("ip", "-n", host, "addr", "add", "10.33.0.1/24", "dev", "gw-nat_dev")
        config = next(iter(files))
        server = subprocess.Popen(
            ["ip", "netns", "exec", host, "dnsmasq", "--keep-in-foreground", f"--conf-file={config}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lease = run(
            "timeout", "30", "ip", "netns", "exec", client, "busybox", "udhcpc", "-i", "vp1", "-n", "-q", "-f",
            "-t", "10", "-s", str(script), "-x", "hostname:probe",
        )
        bound = [line for line in lease.splitlines() if line.startswith("bound ")]
        assert len(bound) == 1, lease
        address = bound[0].split()[1].split("=")[1]
        assert bound[0] == f"bound ip={address} router=10.33.0.1 dns=10.33.0.1 domain=dev.lan lease=43200"
        assert 128 <= int(address.rsplit(".", 1)[1]) <= 254
        run("ip", "-n", client, "addr", "add", f"{address}/24", "dev", "vp1")
        answer = run("ip", "netns", "exec", client, "busybox", "nslookup", "probe.dev.lan", "10.33.0.1")
        assert f"Address: {address}" in answer
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)
        for namespace in (host, client):
            delete_netns(namespace)
