# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rendered rulesets in a real nft, inside throwaway network namespaces (root only).

Every golden ruleset passes ``nft -c``, loads twice through the replace script, and
lists back equal to its rendering after normalisation, in several time zones. A lab
of namespaces then sends real connections through a loaded table: policy verdicts
across two networks, DNAT, hairpin, masquerade, the management guard, IPv6.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Management, Profile, RateLimit, Rule
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import (
    normalise_ruleset,
    render_delete_script,
    render_replace_script,
    render_ruleset,
)
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, netns, requires_netns, throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.traffic import start_tcp_server, tcp_client
from ansible_collections.ghostwarden.core.tests.unit.core.test_nft import GOLDEN_CASES, golden_ruleset
from ansible_collections.ghostwarden.core.tests.unit.core.test_nft_topologies import forward, ports, routed, subnet, topology

pytestmark = [pytest.mark.root, requires_netns]

__all__ = ["netns"]  # the fixture, imported for pytest

FOREIGN = """table ip foreign {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 1 drop
\t}
}
"""
UTC = {"TZ": "UTC"}


def load(namespace: NetNS, ruleset: str, env: dict[str, str] | None = None) -> str:
    """Check, then apply twice, the replace script; the listed table."""
    script = render_replace_script(ruleset)
    namespace.nft(script, check_only=True, env=env)
    namespace.nft(script, env=env)
    namespace.nft(script, env=env)  # the original's second apply failed with EEXIST
    return namespace.list_table("inet", "ghostwarden", env=env)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_ruleset_loads_and_lists_back(netns: NetNS, name: str) -> None:
    ruleset = golden_ruleset(name)
    listed = load(netns, ruleset, UTC)
    assert normalise_ruleset(listed) == normalise_ruleset(ruleset)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"])
def test_time_windows_list_back_equal_in_any_time_zone(netns: NetNS, zone: str) -> None:
    ruleset = golden_ruleset("profiles")
    listed = load(netns, ruleset, {"TZ": zone})
    assert 'meta hour "08:00"-"17:59:59"' in ruleset
    assert normalise_ruleset(listed) == normalise_ruleset(ruleset)


def test_replace_and_delete_leave_a_foreign_table_alone(netns: NetNS) -> None:
    netns.nft(FOREIGN)
    before = netns.list_table("ip", "foreign")
    load(netns, golden_ruleset("dual_stack"))
    load(netns, golden_ruleset("original_example"))
    netns.nft(render_delete_script())
    netns.nft(render_delete_script())  # absent already: still fine
    assert netns.list_table("ip", "foreign") == before
    assert netns.list_ruleset() == FOREIGN


def test_first_apply_on_an_empty_host(netns: NetNS) -> None:
    assert netns.list_ruleset() == ""
    netns.nft(render_replace_script(golden_ruleset("original_example")))
    assert "table inet ghostwarden {" in netns.list_ruleset()


def test_a_failing_replace_changes_nothing(netns: NetNS) -> None:
    good = golden_ruleset("original_example")
    listed = load(netns, good)
    broken = good.replace("\t\tiifname vmap @host_chains\n", "\t\tiifname vmap @host_chains\n\t\tjump nowhere\n")
    result = netns.nft(render_replace_script(broken), check=False)
    assert result.returncode != 0 and "nowhere" in result.stderr
    assert netns.list_table("inet", "ghostwarden") == listed


# -- packets through a loaded table -----------------------------------------------------------

LAB_A = Profile(
    name="lab-a", description="A: HTTP in; no port 8081 out; nothing to the host", ingress_action="drop",
    egress_action="accept", host_action="drop",
    rules=(Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(8080)),
           Rule(direction="egress", action="drop", protocol="tcp", ports=ports(8081))),
)
LAB_B = Profile(
    name="lab-b", description="B: 8080 and 8081 in; nothing to the host", ingress_action="drop",
    egress_action="accept", host_action="reject",
    rules=(Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(8080, 8081)),
           Rule(direction="host", action="accept", protocol="tcp", ports=ports(7002), conn_limit=2),
           Rule(direction="host", action="accept", protocol="tcp", ports=ports(7003),
                rate_limit=RateLimit(rate=2, per="minute", burst=2, per_source=True))),
)


def lab_topology():
    forwards = (
        forward(None, 4022, "10.1.0.11", 9000),
        forward(None, 7000, "10.1.0.11", 9000, hairpin=False),
        forward(None, 4022, "2001:db8:1::11", 9000),
    )
    net_a = routed("a", subnet("10.1.0.0/24", "10.1.0.1"), subnet("2001:db8:1::/64", "2001:db8:1::1"), iface="gw-a",
                   masq_out="up0", policy_profile="lab-a", forwards=forwards)
    net_b = routed("b", subnet("10.2.0.0/24", "10.2.0.1"), subnet("2001:db8:2::/64", "2001:db8:2::1"), iface="gw-b",
                   policy_profile="lab-b")
    return topology(net_a, net_b, profiles=(LAB_A, LAB_B),
                    management=Management(allow_from=("10.1.0.0/24",), ports=ports(7000, 7001)))


@dataclass
class Lab:
    host: NetNS
    a1: NetNS
    a2: NetNS
    b: NetNS
    out: NetNS

    def connect(self, client: NetNS, address: str, port: int, timeout: float = 1.0, count: int = 1) -> str:
        return client.run(*tcp_client(address, port, timeout, count)).stdout.strip()


def _serve(namespace: NetNS, name: str, *server_ports: int | str) -> None:
    start_tcp_server(namespace.spawn, name, *server_ports, what=f"TCP server {name} in {namespace}")


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """host routes between bridge gw-a (a1, a2), veth gw-b (b) and uplink up0 (out).

    Parametrised indirectly with 1, bridged IPv4/IPv6 also passes the inet hooks
    (br_netfilter's bridge-nf-call-iptables, as on hosts running Proxmox's firewall).
    """
    with ExitStack() as stack:
        host, a1, a2, b, out = (stack.enter_context(throwaway_netns("gwt")) for _role in range(5))
        for namespace in (host, a1, a2, b, out):
            # No duplicate address detection: addresses, link-local ones too, work at once.
            namespace.run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        host.run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        bridged = getattr(request, "param", 0)
        host.run("ip", "link", "add", "gw-a", "type", "bridge")
        for port, client in (("a1p", a1), ("a2p", a2), ("gw-b", b), ("up0", out)):
            host.run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", client.name)
            client.run("ip", "link", "set", "eth0", "up")
        for port in ("a1p", "a2p"):
            host.run("ip", "link", "set", port, "master", "gw-a")
        for link in ("gw-a", "a1p", "a2p", "gw-b", "up0"):
            host.run("ip", "link", "set", link, "up")
        try:
            host.run("sysctl", "-qw", f"net.bridge.bridge-nf-call-iptables={bridged}",
                     f"net.bridge.bridge-nf-call-ip6tables={bridged}")
        except AssertionError:
            if bridged:
                pytest.skip("br_netfilter is not loaded")
        addresses = {
            host: [("gw-a", "10.1.0.1/24"), ("gw-a", "2001:db8:1::1/64"), ("gw-b", "10.2.0.1/24"),
                   ("gw-b", "2001:db8:2::1/64"), ("up0", "192.0.2.1/24"), ("up0", "2001:db8:ff::1/64")],
            a1: [("eth0", "10.1.0.11/24"), ("eth0", "2001:db8:1::11/64")],
            a2: [("eth0", "10.1.0.12/24"), ("eth0", "2001:db8:1::12/64")],
            b: [("eth0", "10.2.0.2/24"), ("eth0", "2001:db8:2::2/64")],
            out: [("eth0", "192.0.2.2/24"), ("eth0", "2001:db8:ff::2/64")],  # no route back: only NAT answers
        }
        for namespace, entries in addresses.items():
            for link, address in entries:
                namespace.run("ip", "addr", "add", address, "dev", link)
        for client, v4, v6 in ((a1, "10.1.0.1", "2001:db8:1::1"), (a2, "10.1.0.1", "2001:db8:1::1"),
                               (b, "10.2.0.1", "2001:db8:2::1")):
            client.run("ip", "route", "add", "default", "via", v4)
            client.run("ip", "-6", "route", "add", "default", "via", v6)
        _serve(a1, "A1", 8080, 8081, 8082, 9000)
        _serve(a2, "A2", 8081, 8082)
        _serve(b, "B", 8080, 8081, 8082)
        _serve(out, "OUT", 9000)
        _serve(host, "HOST", 7000, 7001, "7002h", 7003)
        load(host, render_ruleset(lab_topology()))
        yield Lab(host, a1, a2, b, out)


def test_policy_verdicts_between_two_networks(lab: Lab) -> None:
    # A packet from A to B passes A's egress and then B's ingress chain.
    assert lab.connect(lab.a1, "10.2.0.2", 8080) == "B 10.1.0.11"
    assert lab.connect(lab.a1, "10.2.0.2", 8081) == "failed: TimeoutError"  # B allows it, A's egress drops it
    assert lab.connect(lab.a1, "10.2.0.2", 8082) == "failed: TimeoutError"  # B's ingress default
    assert lab.connect(lab.b, "10.1.0.11", 8080) == "A1 10.2.0.2"
    assert lab.connect(lab.b, "10.1.0.11", 8081) == "failed: TimeoutError"  # A's ingress default
    # IPv6 too, which needs neighbour discovery with the host although B's host chain rejects all.
    assert lab.connect(lab.b, "2001:db8:1::11", 8080) == "A1 2001:db8:2::2"


def test_forwards_hairpin_and_masquerade(lab: Lab) -> None:
    # From outside: DNAT'd, not SNAT'd, and let through although A's ingress drops port 9000.
    assert lab.connect(lab.out, "192.0.2.1", 4022) == "A1 192.0.2.2"
    assert lab.connect(lab.out, "2001:db8:ff::1", 4022) == "A1 2001:db8:ff::2"
    assert lab.connect(lab.out, "192.0.2.1", 7000) == "A1 192.0.2.2"
    # From inside A: hairpin DNAT + masquerade, so the reply comes back through the host.
    assert lab.connect(lab.a2, "192.0.2.1", 4022) == "A1 10.1.0.1"
    # Hairpin off: A's clients reach the host's own port (here allowed by the management guard).
    assert lab.connect(lab.a2, "192.0.2.1", 7000) == "HOST 10.1.0.12"
    # From another network of the host: DNAT'd without masquerade, on any of the host's addresses.
    assert lab.connect(lab.b, "192.0.2.1", 4022) == "A1 10.2.0.2"
    assert lab.connect(lab.b, "10.2.0.1", 7000) == "A1 10.2.0.2"
    # From the host itself (nat output).
    assert lab.connect(lab.host, "192.0.2.1", 4022) == "A1 192.0.2.1"
    # Masquerade out of masq_out for A only; out has no route back to B.
    assert lab.connect(lab.a1, "192.0.2.2", 9000) == "OUT 192.0.2.1"
    assert lab.connect(lab.b, "192.0.2.2", 9000) == "failed: TimeoutError"


def test_management_guard_comes_before_the_host_policy(lab: Lab) -> None:
    assert lab.connect(lab.a2, "10.1.0.1", 7001) == "HOST 10.1.0.12"  # A's host chain drops everything else
    assert lab.connect(lab.a2, "10.1.0.1", 22) == "failed: TimeoutError"
    assert lab.connect(lab.b, "10.2.0.1", 7001) == "failed: ConnectionRefusedError"  # B's host chain rejects


@pytest.mark.parametrize("lab", [0, 1], indirect=True, ids=["routed", "br_netfilter"])
def test_members_of_one_network_are_not_policed_by_its_own_profile(lab: Lab) -> None:
    # A's egress drops 8081 and its ingress drops all but 8080: not between A's own members.
    assert lab.connect(lab.a1, "10.1.0.12", 8081) == "A2 10.1.0.11"
    assert lab.connect(lab.a1, "10.1.0.12", 8082) == "A2 10.1.0.11"
    assert lab.connect(lab.a1, "2001:db8:1::12", 8082) == "A2 2001:db8:1::11"


def test_connection_and_rate_limits(lab: Lab) -> None:
    # At most 2 open connections per source: the third falls through to B's host action (reject).
    assert lab.connect(lab.b, "10.2.0.1", 7002, count=3) == \
        "HOST 10.2.0.2; HOST 10.2.0.2; failed: ConnectionRefusedError"
    # 2 new connections a minute per source, burst 2: the third is over the limit.
    assert lab.connect(lab.b, "10.2.0.1", 7003, count=3) == \
        "HOST 10.2.0.2; HOST 10.2.0.2; failed: ConnectionRefusedError"
