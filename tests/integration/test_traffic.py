# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The original example plus a web and a VXLAN network, applied with ghostwarden_apply to a lab
host, then checked with real traffic: masquerade, a DNAT forward, hairpin, a profile's drops,
VXLAN between two hosts, DHCP and DNS from the network's dnsmasq.

    inet (198.51.100.1) ── up0 ── host ── ul0 ══ underlay 10.0.0.0/24 ══ ul0 ── peer
                                   │                                        │
      nat_dev gw-nat_dev 10.33.0.1: dev1 .10 (TCP 22), dev2 .11, dhcp      br-overlay: ov2 10.55.0.2
      web     gw-web     10.44.0.1: web .10 (TCP 80, 8080)
      overlay br-overlay + vx1200 : ov1 10.55.0.1

inet routes 10.44.0.0/24 to the host (the web network is reached by routing) but knows nothing
of 10.33.0.0/24: nat_dev's clients reach it only masqueraded, and it reaches them only through
the forward. The applied state is shared by the tests of this file, which only send traffic.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import normalise_ruleset
from ansible_collections.ghostwarden.core.tests.integration.lab import INET_ADDRESS, UPLINK_ADDRESS, Lab

pytestmark = pytest.mark.root

HOST_TOPOLOGY = {
    "version": 1,
    "interfaces": {"uplink": "up0"},
    "networks": {
        "nat_dev": {
            "type": "routed",
            "cidr": "10.33.0.0/24",
            "gw_ip": "10.33.0.1",
            "dhcp": True,
            "dns": {"enabled": True, "zones": ["dev.lan"], "records": {"files.dev.lan": "10.33.0.20"}},
            "masq_out": "uplink",
            "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
            "policy_profile": "routed-tight",
            "ports": ["dev1p", "dev2p", "dhcpp"],
        },
        "web": {"type": "routed", "cidr": "10.44.0.0/24", "gw_ip": "10.44.0.1", "policy_profile": "public-web",
                "ports": ["webp"]},
        "overlay_lab": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["10.0.0.12"],
                        "local": "10.0.0.11", "dev": "ul0", "ports": ["ov1p"]},
    },
}
PEER_TOPOLOGY = {
    "version": 1,
    "networks": {
        "overlay_lab": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["10.0.0.11"],
                        "local": "10.0.0.12", "dev": "ul0", "ports": ["ov2p"]},
    },
}

# udhcpc calls this with the lease in its environment; it only reports it.
UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "bound ip=$ip router=$router dns=$dns domain=$domain"
exit 0
"""


@dataclass
class Example:
    lab: Lab
    host: str
    inet: str
    peer: str
    dev1: str
    dev2: str
    dhcp: str
    web: str
    ov1: str
    ov2: str
    workdir: Path
    host_state_dir: Path
    applied: list
    run_play: object


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, play_factory, task) -> Iterator[Example]:
    workdir = tmp_path_factory.mktemp("traffic")
    with Lab(prefix=f"gwt-{secrets.token_hex(3)}") as lab:
        host, inet = lab.add_uplinked_host()
        peer = lab.add_ns("peer")
        lab.sysctl(peer, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        lab.veth(host, "ul0", peer, "ul0")
        lab.addr(host, "ul0", "10.0.0.11/24")
        lab.addr(peer, "ul0", "10.0.0.12/24")
        lab.route(inet, "10.44.0.0/24", "via", UPLINK_ADDRESS)
        example = Example(
            lab=lab, host=host, inet=inet, peer=peer,
            dev1=lab.add_client(host, "dev1p", "dev1", "10.33.0.10/24", "10.33.0.1"),
            dev2=lab.add_client(host, "dev2p", "dev2", "10.33.0.11/24", "10.33.0.1"),
            dhcp=lab.add_client(host, "dhcpp", "dhcp"),
            web=lab.add_client(host, "webp", "web", "10.44.0.10/24", "10.44.0.1"),
            ov1=lab.add_client(host, "ov1p", "ov1", "10.55.0.1/24"),
            ov2=lab.add_client(peer, "ov2p", "ov2", "10.55.0.2/24"),
            workdir=workdir, host_state_dir=workdir / "host-state", applied=[],
            run_play=play_factory(workdir / "ansible"),
        )
        lab.serve_tcp(example.dev1, "DEV1", 22)
        lab.serve_tcp(example.inet, "INET", 9000)
        lab.serve_tcp(example.web, "WEB", 80, 8080)
        example.applied = example.run_play([
            task("ghostwarden_apply", topology=HOST_TOPOLOGY, netns=host, state_dir=str(example.host_state_dir),
                 return_content=True),
            task("ghostwarden_apply", topology=PEER_TOPOLOGY, netns=peer, state_dir=str(workdir / "peer-state")),
        ])
        yield example


@pytest.fixture
def applied(example: Example) -> Example:
    """The example, once both applies succeeded (each traffic test fails early otherwise)."""
    assert len(example.applied) == 2 and not any(result.failed for result in example.applied), \
        "\n".join(map(str, example.applied)) or example.applied.output
    return example


def test_first_apply_creates_every_object(applied: Example) -> None:
    host_result, peer_result = applied.applied
    assert host_result.changed and peer_result.changed
    changes = host_result["changes"]
    # gw-nat_dev, gw-web, br-overlay, vx1200; five client ports; two gateways; one VXLAN peer.
    expected = {"create_link": 4, "set_master": 5, "add_address": 2, "add_fdb": 1, "write_file": 1, "replace_ruleset": 1}
    assert {kind: changes[kind] for kind in expected} == expected
    assert host_result["dnsmasq"] == ["started nat_dev"]
    assert peer_result["dnsmasq"] == []

    links = applied.lab.links(applied.host)
    assert {name: links[name].get("ifalias") for name in ("gw-nat_dev", "gw-web", "br-overlay", "vx1200", "up0")} == {
        "gw-nat_dev": "ghostwarden:nat_dev", "gw-web": "ghostwarden:web", "br-overlay": "ghostwarden:overlay_lab",
        "vx1200": "ghostwarden:overlay_lab", "up0": None}
    assert {name: links[name].get("master") for name in ("dev1p", "dev2p", "dhcpp", "webp", "ov1p", "vx1200")} == {
        "dev1p": "gw-nat_dev", "dev2p": "gw-nat_dev", "dhcpp": "gw-nat_dev", "webp": "gw-web", "ov1p": "br-overlay",
        "vx1200": "br-overlay"}
    vxlan = links["vx1200"]["linkinfo"]["info_data"]
    assert (vxlan["id"], vxlan["local"], vxlan["link"], vxlan["port"]) == (1200, "10.0.0.11", "ul0", 4789)
    assert applied.lab.run(applied.host, "ip", "-br", "-4", "addr", "show", "dev", "gw-nat_dev").stdout.split()[2:] \
        == ["10.33.0.1/24"]
    assert len(applied.lab.pids(applied.host, "dnsmasq")) == 1
    assert applied.lab.run(applied.host, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"


def test_operations_run_in_the_documented_order(applied: Example) -> None:
    """docs/plan.md 3.3: links before their ports and addresses, dnsmasq files once their
    addresses exist; the driver loads a new table first of all (one nft transaction, so a table nft
    refuses fails the apply before anything else changed)."""
    kinds = applied.applied[0].kinds()
    last = {kind: max(index for index, each in enumerate(kinds) if each == kind) for kind in kinds}
    first = {kind: kinds.index(kind) for kind in kinds}
    assert last["create_link"] < first["set_master"] and last["set_master"] < first["add_address"]
    assert last["add_address"] < first["add_fdb"] and last["add_fdb"] < first["write_file"]
    assert kinds[0] == "replace_ruleset" and kinds.count("replace_ruleset") == 1, kinds


def test_gathered_reads_the_applied_topology_back(applied: Example, task) -> None:
    (gathered,) = applied.run_play([task("ghostwarden_apply", state="gathered", netns=applied.host,
                                         state_dir=str(applied.host_state_dir))])
    assert not gathered.failed and not gathered.changed, gathered
    assert gathered["drift"] == []
    # Listed by nft (its own element order) against rendered: equal once both are normalised.
    assert normalise_ruleset(gathered["ruleset"]) == normalise_ruleset(applied.applied[0]["ruleset"])
    # The same networks with the same values, and (docs/topology.md, "Normalised form") in the
    # same form: every field written out, unset ones as null.
    assert without_nulls(gathered["topology"]) == without_nulls(applied.applied[0]["topology"])
    assert gathered["topology"] == applied.applied[0]["topology"]


def without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def test_masquerade_shows_the_uplink_address_to_the_internet(applied: Example) -> None:
    assert applied.lab.connect_tcp(applied.dev1, INET_ADDRESS, 9000) == f"INET {UPLINK_ADDRESS}"


def test_port_forward_reaches_the_service_on_the_client(applied: Example) -> None:
    # DNAT only: the service sees the real client address.
    assert applied.lab.connect_tcp(applied.inet, UPLINK_ADDRESS, 4022) == f"DEV1 {INET_ADDRESS}"


def test_hairpin_lets_clients_use_the_public_address(applied: Example) -> None:
    # DNAT and masquerade to the gateway, so that the reply goes back through the host.
    assert applied.lab.connect_tcp(applied.dev2, UPLINK_ADDRESS, 4022) == "DEV1 10.33.0.1"


def test_public_web_profile_accepts_http_and_drops_the_rest(applied: Example) -> None:
    assert applied.lab.connect_tcp(applied.inet, "10.44.0.10", 80) == f"WEB {INET_ADDRESS}"
    assert applied.lab.connect_tcp(applied.inet, "10.44.0.10", 8080) == "failed: TimeoutError"
    # The service is there: the host's own connection is not forwarded traffic, no profile applies.
    assert applied.lab.connect_tcp(applied.host, "10.44.0.10", 8080) == "WEB 10.44.0.1"


def test_routed_tight_drops_connections_to_the_host(applied: Example) -> None:
    # Nothing listens on the host's port 22: a refusal would mean the SYN got through.
    assert applied.lab.connect_tcp(applied.dev1, "10.33.0.1", 22) == "failed: TimeoutError"
    assert applied.lab.connect_tcp(applied.inet, UPLINK_ADDRESS, 22) == "failed: ConnectionRefusedError"


def test_vxlan_carries_a_ping_between_clients_of_two_hosts(applied: Example) -> None:
    assert applied.lab.ping(applied.ov1, "10.55.0.2")
    assert applied.lab.ping(applied.ov2, "10.55.0.1")


def test_dhcp_lease_and_dns_from_the_networks_dnsmasq(applied: Example, task) -> None:
    script = applied.workdir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    lease = applied.lab.run(applied.dhcp, "timeout", "30", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                            "-t", "10", "-T", "1", "-s", str(script), "-x", "hostname:probe", timeout=40).stdout
    bound = [line for line in lease.splitlines() if line.startswith("bound ")]
    assert len(bound) == 1, lease
    address = bound[0].split()[1].removeprefix("ip=")
    assert bound[0] == f"bound ip={address} router=10.33.0.1 dns=10.33.0.1 domain=dev.lan"
    assert 128 <= int(address.rsplit(".", 1)[1]) <= 254  # the default range: the upper half
    applied.lab.addr(applied.dhcp, "eth0", f"{address}/24")

    def resolve(name: str) -> list[str]:
        answer = applied.lab.run(applied.dhcp, "busybox", "nslookup", name, "10.33.0.1", check=False).stdout
        # busybox prints the server's address first, then the answers.
        return [line.split()[1] for line in answer.splitlines() if line.startswith("Address:")][1:]

    assert resolve("probe.dev.lan") == [address]
    assert resolve("files.dev.lan") == ["10.33.0.20"]

    info = applied.run_play([task("ghostwarden_info", netns=applied.host, state_dir=str(applied.host_state_dir))])
    assert not info[0].failed, info[0]
    assert [(lease["ip"], lease["hostname"]) for lease in info[0]["leases"]["nat_dev"]] == [(address, "probe")]
