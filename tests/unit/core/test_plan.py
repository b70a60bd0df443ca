# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host state model, desired state and planner: exact states, operations and order."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ConflictError, RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    Forward,
    Management,
    Network,
    PortRange,
    Subnet,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import (
    desired_state,
    plan,
    restoring_sysctls,
    uplinks,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    OPERATION_KINDS,
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
    empty_state,
    summarise,
)

RULESET = "table inet ghostwarden {\n}\n"
CONF = "/var/lib/ghostwarden/dnsmasq/nat_dev.conf"


# --- builders ------------------------------------------------------------------------------------


def topology(*networks: Network) -> Topology:
    return Topology(
        version=1,
        interfaces=(("uplink", "enp6s0"),),
        management=Management(),
        profiles=(),
        networks=tuple(sorted(networks, key=lambda network: network.name)),
    )


def nat_dev(**changes) -> Network:
    network = Network(
        name="nat_dev",
        type="routed",
        iface="gw-nat_dev",
        iface_generated=True,
        subnets=(Subnet("10.33.0.0/24", "10.33.0.1", 4),),
        dhcp=Dhcp(ranges=(DhcpRange("10.33.0.128", "10.33.0.254", 4),)),
        dns=Dns(zones=("dev.lan",)),
        masq_out="enp6s0",
        forwards=(Forward(4, "tcp", None, PortRange(4022, 4022), "10.33.0.10", PortRange(22, 22)),),
        policy_profile="routed-tight",
    )
    return dataclasses.replace(network, **changes)


def br_work(**changes) -> Network:
    network = Network(
        name="br_work",
        type="bridge",
        iface="br-work",
        vlan=20,
        parent="enp6s0",
        vlan_iface="enp6s0.20",
        policy_profile="l2-lan",
    )
    return dataclasses.replace(network, **changes)


def overlay(**changes) -> Network:
    network = Network(
        name="overlay_lab",
        type="vxlan",
        iface="br-overlay",
        vni=1200,
        vxlan_iface="vx1200",
        peers=("10.0.0.11", "10.0.0.12"),
        local="10.0.0.10",
        dev="enp6s0",
    )
    return dataclasses.replace(network, **changes)


def trunk(**changes) -> Network:
    network = Network(
        name="trunk",
        type="bridge",
        iface="br-trunk",
        vlan_filtering=True,
        vids=(PortRange(10, 12), PortRange(30, 30)),
        ports=("eth1",),
        mtu=9000,
    )
    return dataclasses.replace(network, **changes)


def lab6(**changes) -> Network:
    network = Network(
        name="lab6",
        type="vlan",
        iface="enp6s0.60",
        vlan=60,
        parent="enp6s0",
        subnets=(Subnet("10.60.0.0/24", "10.60.0.1", 4), Subnet("2001:db8:60::/64", "2001:db8:60::1", 6)),
    )
    return dataclasses.replace(network, **changes)


def desired(*networks: Network, files=None, ruleset: str = RULESET) -> HostState:
    return desired_state(topology(*networks), ruleset=ruleset, dnsmasq_files=files or {})


def example() -> HostState:
    return desired(nat_dev(), br_work(), files={CONF: "interface=gw-nat_dev\n"})


def with_foreign(state: HostState) -> HostState:
    """What the observer sees on a real host besides the owned objects: foreign links, kernel
    link-local addresses, attributes the topology leaves alone, foreign addresses."""
    links = list(state.links) + [
        LinkState("lo", "other", None, {"mtu": 65536, "state": "up"}),
        LinkState("enp6s0", "other", None, {"mtu": 1500, "state": "up"}),
        LinkState("eth1", "other", None, {"mtu": 1500, "state": "up"}),
        LinkState("vmbr0", "bridge", None, {"stp": False, "vlan_filtering": False, "state": "up"}),
    ]
    links = [
        dataclasses.replace(link, attrs={"mtu": 1500, **dict(link.attrs)}) if link.owned else link for link in links
    ]
    addresses = list(state.addresses) + [
        Address("enp6s0", "192.0.2.10/24"),
        Address("enp6s0", "fe80::1/64"),
        Address("lo", "127.0.0.1/8"),
    ]
    addresses += [Address(link.name, "fe80::aa:1/64") for link in state.links]
    sysctls = {"net.ipv4.conf.all.rp_filter": "1", **dict(state.sysctls)}
    return dataclasses.replace(state, links=tuple(links), addresses=tuple(addresses), sysctls=sysctls)


def lines(operations) -> list:
    return [str(operation) for operation in operations]


def replace_link(host: HostState, name: str, **attrs) -> HostState:
    links = []
    for link in host.links:
        if link.name == name:
            merged = {**dict(link.attrs), **attrs}
            link = dataclasses.replace(link, attrs={key: value for key, value in merged.items() if value is not None})
        links.append(link)
    return dataclasses.replace(host, links=tuple(links))


# --- desired state -------------------------------------------------------------------------------


def test_desired_state_of_the_original_example():
    state = example()
    assert state.links == (
        LinkState(
            "br-work",
            "bridge",
            "br_work",
            {"ifalias": "ghostwarden:br_work", "state": "up", "stp": False, "vlan_filtering": False},
        ),
        LinkState(
            "enp6s0.20",
            "vlan",
            "br_work",
            {
                "ifalias": "ghostwarden:br_work",
                "master": "br-work",
                "parent": "enp6s0",
                "state": "up",
                "vlan_id": 20,
            },
        ),
        LinkState(
            "gw-nat_dev",
            "bridge",
            "nat_dev",
            {"ifalias": "ghostwarden:nat_dev", "state": "up", "stp": False, "vlan_filtering": False},
        ),
    )
    # The host address is gw_ip with the prefix, never the network address.
    assert state.addresses == (Address("gw-nat_dev", "10.33.0.1/24", owned=True),)
    assert state.sysctls == (("net.ipv4.ip_forward", "1"),)
    assert state.fdb == () and state.enslavements == () and state.bridge_vlans == ()
    assert state.ruleset == RULESET
    assert state.dnsmasq_files == ((CONF, "interface=gw-nat_dev\n"),)


def test_desired_state_of_a_vxlan_network():
    state = desired(overlay(mtu=1450, learning=True, dstport=4790))
    assert state.links == (
        LinkState(
            "br-overlay",
            "bridge",
            "overlay_lab",
            {"ifalias": "ghostwarden:overlay_lab", "mtu": 1450, "state": "up", "stp": False, "vlan_filtering": False},
        ),
        LinkState(
            "vx1200",
            "vxlan",
            "overlay_lab",
            {
                "dev": "enp6s0",
                "dstport": 4790,
                "ifalias": "ghostwarden:overlay_lab",
                "learning": True,
                "local": "10.0.0.10",
                "master": "br-overlay",
                "mtu": 1450,
                "state": "up",
                "vni": 1200,
            },
        ),
    )
    assert state.fdb == (
        FdbEntry("vx1200", "10.0.0.11", "00:00:00:00:00:00", owned=True),
        FdbEntry("vx1200", "10.0.0.12", "00:00:00:00:00:00", owned=True),
    )
    assert state.sysctls == ()


def test_desired_state_leaves_out_unset_vxlan_local_and_dev():
    link = desired(overlay(local=None, dev=None)).links[1]
    assert link.attr("local") is None and link.attr("dev") is None
    assert [key for key, _value in link.attrs] == [
        "dstport",
        "ifalias",
        "learning",
        "master",
        "state",
        "vni",
    ]


def test_a_routed_network_with_a_vlan_uplink_gets_the_sub_interface():
    state = desired(nat_dev(vlan=30, parent="enp6s0", vlan_iface="enp6s0.30"))
    assert [link.name for link in state.links] == ["enp6s0.30", "gw-nat_dev"]
    assert state.links[0] == LinkState(
        "enp6s0.30",
        "vlan",
        "nat_dev",
        {"ifalias": "ghostwarden:nat_dev", "master": "gw-nat_dev", "parent": "enp6s0", "state": "up", "vlan_id": 30},
    )


def test_desired_state_of_a_vlan_network_with_two_families():
    state = desired(lab6())
    assert state.links == (
        LinkState(
            "enp6s0.60",
            "vlan",
            "lab6",
            {"ifalias": "ghostwarden:lab6", "parent": "enp6s0", "state": "up", "vlan_id": 60},
        ),
    )
    assert state.addresses == (
        Address("enp6s0.60", "10.60.0.1/24", owned=True),
        Address("enp6s0.60", "2001:db8:60::1/64", owned=True),
    )


def test_desired_state_of_a_vlan_aware_bridge_with_a_foreign_port():
    state = desired(trunk(vids=(PortRange(1, 3), PortRange(10, 12), PortRange(30, 30))))
    assert state.enslavements == (Enslavement("eth1", "br-trunk", owned=True),)
    assert state.bridge_vlans == (
        BridgeVlan("br-trunk", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("br-trunk", PortRange(2, 3)),
        BridgeVlan("br-trunk", PortRange(10, 12)),
        BridgeVlan("br-trunk", PortRange(30, 30)),
        BridgeVlan("eth1", PortRange(1, 1), pvid=True, untagged=True),
        BridgeVlan("eth1", PortRange(2, 3)),
        BridgeVlan("eth1", PortRange(10, 12)),
        BridgeVlan("eth1", PortRange(30, 30)),
    )
    assert state.links[0].attrs == (
        ("ifalias", "ghostwarden:trunk"),
        ("mtu", 9000),
        ("state", "up"),
        ("stp", False),
        ("vlan_filtering", True),
    )


def test_vlan_aware_vxlan_bridge_manages_the_vxlan_port_too():
    state = desired(overlay(vlan_filtering=True, vids=(PortRange(5, 6),)))
    assert [(entry.port, str(entry.vids), entry.pvid) for entry in state.bridge_vlans] == [
        ("br-overlay", "1", True),
        ("br-overlay", "5-6", False),
        ("vx1200", "1", True),
        ("vx1200", "5-6", False),
    ]


@pytest.mark.parametrize(
    "networks, expected",
    [
        pytest.param((nat_dev(masq_out=None, forwards=()),), (), id="one-isolated-l3-network"),
        pytest.param((nat_dev(forwards=()),), (("net.ipv4.ip_forward", "1"),), id="masquerade"),
        pytest.param((nat_dev(masq_out=None),), (("net.ipv4.ip_forward", "1"),), id="port-forward"),
        pytest.param(
            (nat_dev(masq_out=None, forwards=()), lab6()),
            (("net.ipv4.ip_forward", "1"),),
            id="two-v4-networks-one-v6",
        ),
        pytest.param(
            (lab6(masq_out="enp6s0"),),
            (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
             ("net.ipv6.conf.enp6s0.accept_ra", "2")),
            id="dual-stack-masquerade",
        ),
        pytest.param((br_work(), overlay()), (), id="l2-only"),
    ],
)
def test_forwarding_sysctls(networks, expected):
    assert desired(*networks).sysctls == expected


def v6_routed(name: str, octet: int, **changes) -> Network:
    network = Network(name=name, type="routed", iface=f"gw-{name}",
                      subnets=(Subnet(f"10.{octet}.0.0/24", f"10.{octet}.0.1", 4),
                               Subnet(f"fd{octet}::/64", f"fd{octet}::1", 6)))
    return dataclasses.replace(network, **changes)


def test_uplinks_are_interfaces_uplink_and_every_masq_out_but_not_created_links():
    networks = (v6_routed("a", 40, masq_out="wan0"), v6_routed("b", 41, masq_out="enp6s0"),
                v6_routed("c", 42, masq_out="gw-a"), v6_routed("d", 43, masq_out="eth1.7"))
    assert uplinks(topology(*networks)) == ["enp6s0", "eth1.7", "gw-a", "wan0"]
    assert uplinks(topology(*networks), created=["gw-a"]) == ["enp6s0", "eth1.7", "wan0"]
    assert uplinks(dataclasses.replace(topology(), interfaces=())) == []
    # Every uplink keeps RAs when IPv6 is forwarded; a dot in a name is a slash in the key; the
    # topology's own links are not uplinks.
    assert dict(desired(*networks).sysctls) == {
        "net.ipv4.ip_forward": "1",
        "net.ipv6.conf.all.forwarding": "1",
        "net.ipv6.conf.enp6s0.accept_ra": "2",
        "net.ipv6.conf.eth1/7.accept_ra": "2",
        "net.ipv6.conf.wan0.accept_ra": "2",
    }


@pytest.mark.parametrize(
    "networks",
    [
        pytest.param((nat_dev(),), id="ipv4-forwarding-only"),
        pytest.param((lab6(),), id="one-dual-stack-network-no-forwarding"),
        pytest.param((br_work(), overlay()), id="l2-only"),
    ],
)
def test_no_accept_ra_without_ipv6_forwarding(networks):
    assert not [key for key, _value in desired(*networks).sysctls if key.endswith(".accept_ra")]


def test_routing_between_two_ipv6_networks_keeps_the_uplink_accepting_ras():
    state = desired(v6_routed("a", 40), v6_routed("b", 41))
    assert dict(state.sysctls)["net.ipv6.conf.all.forwarding"] == "1"
    assert dict(state.sysctls)["net.ipv6.conf.enp6s0.accept_ra"] == "2"  # interfaces.uplink


ACCEPT_RA = "net.ipv6.conf.enp6s0.accept_ra"


@pytest.mark.parametrize(
    "found, wanted, expected",
    [
        pytest.param("1", "2", [f"set_sysctl sysctl:{ACCEPT_RA} key={ACCEPT_RA} value=2 was=1"], id="1-to-2"),
        pytest.param("2", "2", [], id="already-2"),
        pytest.param("0", "2", [], id="the-operator-turned-ras-off"),
        pytest.param(None, "2", [], id="the-interface-does-not-exist"),
        pytest.param("2", "1", [f"set_sysctl sysctl:{ACCEPT_RA} key={ACCEPT_RA} value=1 was=2"], id="back-to-1"),
        pytest.param("0", "1", [], id="not-over-0"),
        pytest.param("2", "0", [], id="never-to-0"),
    ],
)
def test_accept_ra_moves_between_1_and_2_only(found, wanted, expected):
    observed = HostState(sysctls={} if found is None else {ACCEPT_RA: found})
    assert lines(plan(HostState(sysctls={ACCEPT_RA: wanted}), observed)) == expected


def test_the_dual_stack_example_on_a_host_with_ras_accepted():
    state = desired(lab6(masq_out="enp6s0"))
    observed = dataclasses.replace(with_foreign(empty_state()), sysctls={
        "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0", ACCEPT_RA: "1"})
    assert [line for line in lines(plan(state, observed)) if line.startswith("set_sysctl")] == [
        "set_sysctl sysctl:net.ipv4.ip_forward key=net.ipv4.ip_forward value=1 was=0",
        "set_sysctl sysctl:net.ipv6.conf.all.forwarding key=net.ipv6.conf.all.forwarding value=1 was=0",
        f"set_sysctl sysctl:{ACCEPT_RA} key={ACCEPT_RA} value=2 was=1",
    ]


def test_restoring_sysctls_gives_an_interface_that_is_no_longer_an_uplink_its_accept_ra_back():
    previous = {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0", ACCEPT_RA: "1",
                "net.ipv6.conf.wan/7.accept_ra": "1"}
    # state: absent: the accept_ra values come back, forwarding is never unset.
    assert dict(restoring_sysctls(empty_state(), previous).sysctls) == {
        ACCEPT_RA: "1", "net.ipv6.conf.wan/7.accept_ra": "1"}
    # An uplink still wanted keeps 2; the one that is no longer an uplink gets 1.
    state = desired(lab6(masq_out="enp6s0"))
    restored = restoring_sysctls(state, previous)
    assert dict(restored.sysctls) == {**dict(state.sysctls), "net.ipv6.conf.wan/7.accept_ra": "1"}
    assert restoring_sysctls(state, {"net.ipv4.ip_forward": "0"}) is state
    observed = dataclasses.replace(state, sysctls={**dict(state.sysctls), "net.ipv6.conf.wan/7.accept_ra": "2"})
    assert lines(plan(restored, observed)) == [
        "set_sysctl sysctl:net.ipv6.conf.wan/7.accept_ra key=net.ipv6.conf.wan/7.accept_ra value=1 was=2"]


def test_desired_state_rejects_a_link_created_twice():
    with pytest.raises(RenderError) as caught:
        desired(nat_dev(), br_work(iface="gw-nat_dev"))
    assert str(caught.value) == "networks.nat_dev: link gw-nat_dev is also created by network br_work"


def test_desired_state_rejects_a_port_that_is_a_created_link():
    with pytest.raises(RenderError) as caught:
        desired(nat_dev(), trunk(ports=("gw-nat_dev",)))
    assert str(caught.value) == (
        "networks.trunk.ports: gw-nat_dev is a link created by network nat_dev, not an existing link"
    )


def test_desired_state_rejects_a_port_of_two_bridges():
    with pytest.raises(RenderError) as caught:
        desired(trunk(), br_work(ports=("eth1",)))
    assert str(caught.value) == "networks.trunk.ports: eth1 is already a port of br-work"


def test_desired_state_needs_the_vlan_parent():
    with pytest.raises(RenderError) as caught:
        desired(lab6(parent=None))
    assert str(caught.value) == "networks.lab6: type vlan needs parent, which is not set"


# --- plain data ----------------------------------------------------------------------------------


def test_host_state_is_canonical_whatever_the_input_order():
    state = with_foreign(desired(nat_dev(), br_work(), overlay(), trunk(), lab6(), files={CONF: "x\n"}))
    shuffled = {}
    rng = random.Random(7)
    for field in ("links", "addresses", "fdb", "enslavements"):
        items = list(getattr(state, field))
        rng.shuffle(items)
        shuffled[field] = tuple(items)
    vlans = [BridgeVlan(entry.port, PortRange(vid, vid), entry.pvid, entry.untagged) for entry in state.bridge_vlans
             for vid in range(entry.vids.first, entry.vids.last + 1)]
    rng.shuffle(vlans)
    again = HostState(
        bridge_vlans=tuple(vlans),
        sysctls=dict(reversed(state.sysctls)),
        ruleset=state.ruleset,
        dnsmasq_files=dict(state.dnsmasq_files),
        **shuffled,
    )
    assert again == state
    assert hash(again) == hash(state)


def test_host_state_round_trips_through_json():
    state = with_foreign(desired(nat_dev(), br_work(), overlay(), trunk(), lab6(), files={CONF: "x\n"}))
    text = json.dumps(state.to_dict(), sort_keys=True)
    assert HostState.from_dict(json.loads(text)) == state
    assert json.dumps(HostState.from_dict(json.loads(text)).to_dict(), sort_keys=True) == text


def test_addresses_and_fdb_destinations_are_canonicalised():
    assert Address("br0", "2001:DB8:0:0::1/64").address == "2001:db8::1/64"
    assert FdbEntry("vx1", "2001:DB8::0:11", "AA:BB:CC:DD:EE:FF").key == ("vx1", "aa:bb:cc:dd:ee:ff", "2001:db8::11")


def test_bridge_vlan_ranges_merge_and_conflicts_are_refused():
    state = HostState(
        bridge_vlans=(
            BridgeVlan("p", PortRange(5, 9)),
            BridgeVlan("p", PortRange(10, 10)),
            BridgeVlan("p", PortRange(7, 12)),
            BridgeVlan("p", PortRange(1, 1), True, True),
            BridgeVlan("p", PortRange(2, 2), False, True),
        )
    )
    assert state.bridge_vlans == (
        BridgeVlan("p", PortRange(1, 1), True, True),
        BridgeVlan("p", PortRange(2, 2), False, True),
        BridgeVlan("p", PortRange(5, 12)),
    )
    with pytest.raises(ValueError, match=r"bridge vlan p: vids 5-9 and 7 overlap with different flags"):
        HostState(bridge_vlans=(BridgeVlan("p", PortRange(5, 9)), BridgeVlan("p", PortRange(7, 7), False, True)))
    with pytest.raises(ValueError, match=r"bridge vlan p: two pvids 1 and 7"):
        HostState(bridge_vlans=(BridgeVlan("p", PortRange(1, 1), True), BridgeVlan("p", PortRange(7, 7), True)))
    with pytest.raises(ValueError, match=r"bridge vlan p: pvid on the range 1-2"):
        BridgeVlan("p", PortRange(1, 2), True)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"mtu": "1500"}, "link x: attribute mtu='1500' is not a int"),
        ({"vni": True}, "link x: attribute vni=True is not a int"),
        ({"stp": 1}, "link x: attribute stp=1 is not a bool"),
        ({"colour": "red"}, "link x: unknown attribute 'colour'"),
        ({"state": "UP"}, "link x: state 'UP' is not one of ('up', 'down')"),
    ],
)
def test_link_state_refuses_badly_typed_attributes(attrs, message):
    with pytest.raises(ValueError) as caught:
        LinkState("x", "bridge", None, attrs)
    assert str(caught.value) == message


def test_duplicate_objects_in_a_state_are_refused():
    with pytest.raises(ValueError, match=r"links: br0 listed twice"):
        HostState(links=(LinkState("br0", "bridge"), LinkState("br0", "other")))
    with pytest.raises(ValueError, match=r"addresses: \('br0', '10.0.0.1/24'\) listed twice"):
        HostState(addresses=(Address("br0", "10.0.0.1/24"), Address("br0", "10.0.0.1/24", owned=True)))


def test_empty_state_owns_nothing():
    assert empty_state() == HostState()
    assert empty_state().to_dict() == {
        "links": [],
        "bridge_vlans": [],
        "addresses": [],
        "fdb": [],
        "enslavements": [],
        "sysctls": {},
        "ruleset": None,
        "dnsmasq_files": {},
    }


# --- plans against an empty host ------------------------------------------------------------------


def test_plan_of_the_original_example_on_an_empty_host():
    operations = plan(example(), empty_state())
    assert lines(operations) == [
        "set_sysctl sysctl:net.ipv4.ip_forward key=net.ipv4.ip_forward value=1 was=none",
        "create_link link:br-work ifalias=ghostwarden:br_work state=up stp=false type=bridge vlan_filtering=false",
        "create_link link:gw-nat_dev ifalias=ghostwarden:nat_dev state=up stp=false type=bridge "
        "vlan_filtering=false",
        "create_link link:enp6s0.20 ifalias=ghostwarden:br_work master=br-work parent=enp6s0 state=up type=vlan "
        "vlan_id=20",
        "add_address address:gw-nat_dev:10.33.0.1/24 address=10.33.0.1/24 iface=gw-nat_dev",
        "write_file file:/var/lib/ghostwarden/dnsmasq/nat_dev.conf lines=1 path=/var/lib/ghostwarden/dnsmasq/"
        "nat_dev.conf sha256=b089ebc0ae495f79e5f449f31bab54fe7be4b16647141deb1d737dd32b5f05d6",
        "replace_ruleset ruleset:inet ghostwarden family=inet lines=2 "
        "sha256=8e14dd08584ee8612833c8efeb8fb9a0b78e1b8512f706db82856fd5bad4097f table=ghostwarden",
    ]
    assert operations[5].detail("content") == "interface=gw-nat_dev\n"
    assert operations[6].detail("content") == RULESET


def test_plan_of_a_vxlan_and_a_vlan_aware_bridge_on_an_empty_host():
    assert lines(plan(desired(overlay(), trunk(vids=(PortRange(10, 12),))), empty_state())) == [
        "create_link link:br-overlay ifalias=ghostwarden:overlay_lab state=up stp=false type=bridge "
        "vlan_filtering=false",
        "create_link link:br-trunk ifalias=ghostwarden:trunk mtu=9000 state=up stp=false type=bridge "
        "vlan_filtering=true",
        "create_link link:vx1200 dev=enp6s0 dstport=4789 ifalias=ghostwarden:overlay_lab learning=false "
        "local=10.0.0.10 master=br-overlay state=up type=vxlan vni=1200",
        "set_master port:eth1 master=br-trunk",
        "add_bridge_vlan bridge_vlan:br-trunk:1 bridge=br-trunk port=br-trunk pvid=true self=true untagged=true "
        "vid_first=1 vid_last=1",
        "add_bridge_vlan bridge_vlan:br-trunk:10-12 bridge=br-trunk port=br-trunk pvid=false self=true "
        "untagged=false vid_first=10 vid_last=12",
        "add_bridge_vlan bridge_vlan:eth1:1 bridge=br-trunk port=eth1 pvid=true self=false untagged=true "
        "vid_first=1 vid_last=1",
        "add_bridge_vlan bridge_vlan:eth1:10-12 bridge=br-trunk port=eth1 pvid=false self=false untagged=false "
        "vid_first=10 vid_last=12",
        "add_fdb fdb:vx1200:10.0.0.11 dst=10.0.0.11 iface=vx1200 mac=00:00:00:00:00:00",
        "add_fdb fdb:vx1200:10.0.0.12 dst=10.0.0.12 iface=vx1200 mac=00:00:00:00:00:00",
        "replace_ruleset ruleset:inet ghostwarden family=inet lines=2 "
        "sha256=8e14dd08584ee8612833c8efeb8fb9a0b78e1b8512f706db82856fd5bad4097f table=ghostwarden",
    ]


def test_plan_orders_parents_and_masters_before_children():
    # A vlan network on top of another network's bridge: bridge, then the vlan, then its address.
    stacked = lab6(iface="br-work.60", parent="br-work")
    operations = plan(desired(br_work(), stacked), empty_state())
    assert [(operation.kind, operation.target) for operation in operations if operation.kind == "create_link"] == [
        ("create_link", "link:br-work"),
        ("create_link", "link:br-work.60"),
        ("create_link", "link:enp6s0.20"),
    ]


# --- idempotence ----------------------------------------------------------------------------------

TOPOLOGIES = {
    "example": (nat_dev(), br_work()),
    "vxlan": (overlay(),),
    "vlan-aware": (trunk(),),
    "dual-stack-vlan": (lab6(),),
    "everything": (nat_dev(), br_work(), overlay(vlan_filtering=True, vids=(PortRange(7, 9),)), trunk(), lab6()),
    "nothing": (),
}


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_plan_of_the_desired_state_itself_is_empty(name):
    state = desired(*TOPOLOGIES[name], files={CONF: "x\n"})
    assert plan(state, state) == []


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_plan_ignores_what_the_kernel_and_others_add(name):
    state = desired(*TOPOLOGIES[name], files={CONF: "x\n"})
    assert plan(state, with_foreign(state)) == []


def test_a_desired_object_present_but_foreign_counts_as_present():
    state = desired(overlay(), trunk())
    observed = dataclasses.replace(
        state,
        addresses=(),
        fdb=tuple(dataclasses.replace(entry, owned=False) for entry in state.fdb),
        enslavements=tuple(dataclasses.replace(item, owned=False) for item in state.enslavements),
    )
    state_with_address = dataclasses.replace(state, addresses=(Address("br-trunk", "10.9.0.1/24", owned=True),))
    observed = dataclasses.replace(observed, addresses=(Address("br-trunk", "10.9.0.1/24", owned=False),))
    assert plan(state_with_address, observed) == []


# --- drift ----------------------------------------------------------------------------------------


def everything() -> HostState:
    return desired(*TOPOLOGIES["everything"], files={CONF: "conf\n"})


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(
            lambda state: replace_link(state, "br-trunk", mtu=1500),
            ["modify_link link:br-trunk mtu=9000"],
            id="mtu",
        ),
        pytest.param(
            lambda state: replace_link(state, "br-trunk", state="down", stp=True),
            ["modify_link link:br-trunk state=up stp=false"],
            id="down-and-stp",
        ),
        pytest.param(
            lambda state: replace_link(state, "vx1200", master=None),
            [
                "modify_link link:vx1200 master=br-overlay",
                # A port joining a bridge starts from the kernel's default VLANs: all are set again.
                "add_bridge_vlan bridge_vlan:vx1200:1 bridge=br-overlay port=vx1200 pvid=true self=false "
                "untagged=true vid_first=1 vid_last=1",
                "add_bridge_vlan bridge_vlan:vx1200:7-9 bridge=br-overlay port=vx1200 pvid=false self=false "
                "untagged=false vid_first=7 vid_last=9",
            ],
            id="vxlan-released",
        ),
        pytest.param(
            lambda state: replace_link(state, "enp6s0.60", master="br-work"),
            ["modify_link link:enp6s0.60 master=none"],
            id="stray-master",
        ),
        pytest.param(
            lambda state: replace_link(state, "gw-nat_dev", ifalias="ghostwarden:old_name"),
            ["modify_link link:gw-nat_dev ifalias=ghostwarden:nat_dev"],
            id="renamed-network",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, fdb=state.fdb[1:]),
            ["add_fdb fdb:vx1200:10.0.0.11 dst=10.0.0.11 iface=vx1200 mac=00:00:00:00:00:00"],
            id="fdb-removed",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, fdb=state.fdb + (FdbEntry("vx1200", "10.0.0.99", owned=True),)),
            ["remove_fdb fdb:vx1200:10.0.0.99 dst=10.0.0.99 iface=vx1200 mac=00:00:00:00:00:00"],
            id="fdb-stale",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, addresses=state.addresses[1:]),
            ["add_address address:enp6s0.60:10.60.0.1/24 address=10.60.0.1/24 iface=enp6s0.60"],
            id="address-removed",
        ),
        pytest.param(
            lambda state: dataclasses.replace(
                state, addresses=state.addresses + (Address("gw-nat_dev", "10.33.0.0/24", owned=True),)
            ),
            ["remove_address address:gw-nat_dev:10.33.0.0/24 address=10.33.0.0/24 iface=gw-nat_dev"],
            id="stale-owned-address",
        ),
        pytest.param(
            lambda state: dataclasses.replace(
                state,
                addresses=state.addresses
                + (Address("gw-nat_dev", "10.33.0.0/24"), Address("gw-nat_dev", "fe80::1/64", owned=True)),
            ),
            [],
            id="foreign-and-link-local-addresses-stay",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, ruleset=state.ruleset + "# edited\n"),
            [
                "replace_ruleset ruleset:inet ghostwarden family=inet lines=2 "
                "sha256=8e14dd08584ee8612833c8efeb8fb9a0b78e1b8512f706db82856fd5bad4097f table=ghostwarden"
            ],
            id="ruleset-edited",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, ruleset=None),
            [
                "replace_ruleset ruleset:inet ghostwarden family=inet lines=2 "
                "sha256=8e14dd08584ee8612833c8efeb8fb9a0b78e1b8512f706db82856fd5bad4097f table=ghostwarden"
            ],
            id="ruleset-flushed",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, dnsmasq_files={CONF: "edited\n"}),
            [
                f"write_file file:{CONF} lines=1 path={CONF} "
                "sha256=8d0d4c8a1e6ab75ae2f81abf1e1e66ce1ab7be53c7b8f245a41907fc45b3a801"
            ],
            id="dnsmasq-file-edited",
        ),
        pytest.param(
            lambda state: dataclasses.replace(
                state, dnsmasq_files={CONF: "conf\n", "/var/lib/ghostwarden/dnsmasq/gone.conf": "old\n"}
            ),
            ["remove_file file:/var/lib/ghostwarden/dnsmasq/gone.conf path=/var/lib/ghostwarden/dnsmasq/gone.conf"],
            id="stale-dnsmasq-file",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, sysctls={"net.ipv4.ip_forward": "0"}),
            ["set_sysctl sysctl:net.ipv4.ip_forward key=net.ipv4.ip_forward value=1 was=0"],
            id="forwarding-off",
        ),
        pytest.param(
            lambda state: dataclasses.replace(state, enslavements=()),
            [
                "set_master port:eth1 master=br-trunk",
                "add_bridge_vlan bridge_vlan:eth1:1 bridge=br-trunk port=eth1 pvid=true self=false untagged=true "
                "vid_first=1 vid_last=1",
                "add_bridge_vlan bridge_vlan:eth1:10-12 bridge=br-trunk port=eth1 pvid=false self=false "
                "untagged=false vid_first=10 vid_last=12",
                "add_bridge_vlan bridge_vlan:eth1:30 bridge=br-trunk port=eth1 pvid=false self=false "
                "untagged=false vid_first=30 vid_last=30",
            ],
            id="port-released",
        ),
        pytest.param(
            lambda state: dataclasses.replace(
                state,
                bridge_vlans=tuple(entry for entry in state.bridge_vlans if entry.vids != PortRange(30, 30))
                + (
                    BridgeVlan("eth1", PortRange(40, 41)),
                    BridgeVlan("eth1", PortRange(42, 42), False, True),
                    BridgeVlan("eth1", PortRange(31, 31), False, True),
                ),
            ),
            [
                "remove_bridge_vlan bridge_vlan:eth1:31 port=eth1 self=false vid_first=31 vid_last=31",
                "remove_bridge_vlan bridge_vlan:eth1:40-42 port=eth1 self=false vid_first=40 vid_last=42",
                "add_bridge_vlan bridge_vlan:br-trunk:30 bridge=br-trunk port=br-trunk pvid=false self=true "
                "untagged=false vid_first=30 vid_last=30",
                "add_bridge_vlan bridge_vlan:eth1:30 bridge=br-trunk port=eth1 pvid=false self=false "
                "untagged=false vid_first=30 vid_last=30",
            ],
            id="bridge-vlans",
        ),
    ],
)
def test_drift_yields_exactly_the_repair(change, expected):
    state = everything()
    assert lines(plan(state, change(state))) == expected


def test_vlan_flag_drift_is_repaired_by_one_add():
    state = everything()
    observed = dataclasses.replace(
        state,
        bridge_vlans=tuple(
            BridgeVlan(entry.port, entry.vids, entry.pvid, True) if entry.vids == PortRange(30, 30) else entry
            for entry in state.bridge_vlans
        ),
    )
    assert lines(plan(state, observed)) == [
        "add_bridge_vlan bridge_vlan:br-trunk:30 bridge=br-trunk port=br-trunk pvid=false self=true untagged=false "
        "vid_first=30 vid_last=30",
        "add_bridge_vlan bridge_vlan:eth1:30 bridge=br-trunk port=eth1 pvid=false self=false untagged=false "
        "vid_first=30 vid_last=30",
    ]


# --- ownership ------------------------------------------------------------------------------------


def test_a_foreign_link_with_a_desired_name_is_a_conflict():
    observed = HostState(links=(LinkState("br-work", "bridge", None, {"ifalias": "lab bridge"}),))
    with pytest.raises(ConflictError) as caught:
        plan(example(), observed)
    assert str(caught.value) == (
        'link br-work (network br_work) already exists and is not owned by ghostwarden (its ifalias is "lab bridge", '
        "not ghostwarden:br_work); rename it or remove it, or choose another name in the topology"
    )
    assert caught.value.to_result() == {"conflicts": [str(caught.value)]}


def test_every_conflict_is_reported_at_once():
    observed = HostState(
        links=(
            LinkState("br-work", "bridge"),
            LinkState("gw-nat_dev", "other"),
            LinkState("vmbr0", "bridge"),
            LinkState("eth1", "other"),
        ),
        enslavements=(Enslavement("eth1", "vmbr0"),),
    )
    with pytest.raises(ConflictError) as caught:
        plan(desired(nat_dev(), br_work(), trunk()), observed)
    assert caught.value.conflicts == [
        "link br-work (network br_work) already exists and is not owned by ghostwarden (its ifalias is none, not "
        "ghostwarden:br_work); rename it or remove it, or choose another name in the topology",
        "link gw-nat_dev (network nat_dev) already exists and is not owned by ghostwarden (its ifalias is none, not "
        "ghostwarden:nat_dev); rename it or remove it, or choose another name in the topology",
        "port eth1 (for br-trunk of network trunk) is enslaved to vmbr0, which ghostwarden does not own; release it from there first "
        "or remove it from the network's ports",
    ]
    assert str(caught.value).endswith("(and 2 more conflicts)")


def test_a_port_that_is_an_owned_link_is_a_conflict():
    observed = desired(nat_dev())
    with pytest.raises(ConflictError) as caught:
        plan(desired(trunk(ports=("gw-nat_dev",))), observed)
    assert caught.value.conflicts == [
        "port gw-nat_dev (for br-trunk of network trunk) is a link ghostwarden created for network nat_dev, not an existing link to "
        "enslave"
    ]


def test_deleting_an_owned_link_under_a_foreign_one_is_a_conflict():
    observed = with_foreign(desired(br_work()))
    observed = dataclasses.replace(
        observed, links=observed.links + (LinkState("br-work.5", "vlan", None, {"parent": "br-work", "vlan_id": 5}),)
    )
    with pytest.raises(ConflictError) as caught:
        plan(empty_state(), observed)
    assert caught.value.conflicts == [
        "link br-work.5 is not owned by ghostwarden but depends on br-work, which has to be deleted (not in the "
        "topology); the kernel would delete br-work.5 with it"
    ]


def test_conflicts_of_names_and_of_deletions_come_together():
    observed = dataclasses.replace(
        with_foreign(desired(br_work())),
        links=with_foreign(desired(br_work())).links
        + (LinkState("br-work.5", "vlan", None, {"parent": "br-work", "vlan_id": 5}), LinkState("gw-nat_dev", "other")),
    )
    with pytest.raises(ConflictError) as caught:
        plan(desired(nat_dev()), observed)
    assert caught.value.conflicts == [
        "link gw-nat_dev (network nat_dev) already exists and is not owned by ghostwarden (its ifalias is none, not "
        "ghostwarden:nat_dev); rename it or remove it, or choose another name in the topology",
        "link br-work.5 is not owned by ghostwarden but depends on br-work, which has to be deleted (not in the "
        "topology); the kernel would delete br-work.5 with it",
    ]
    assert str(caught.value).endswith("(and 1 more conflict)")


def test_foreign_objects_are_never_touched():
    observed = dataclasses.replace(
        with_foreign(empty_state()),
        addresses=(Address("enp6s0", "10.33.0.1/24"), Address("enp6s0", "192.0.2.1/24")),
        fdb=(FdbEntry("vxforeign", "10.0.0.1"),),
        enslavements=(Enslavement("eth1", "vmbr0"),),
        sysctls={"net.ipv4.ip_forward": "1"},
    )
    assert plan(empty_state(), observed) == []


def test_a_port_enslaved_to_an_owned_bridge_without_a_record_may_move():
    observed = with_foreign(desired(br_work()))
    observed = dataclasses.replace(observed, enslavements=(Enslavement("eth1", "br-work"),))
    assert lines(plan(desired(br_work(), trunk(vlan_filtering=False, vids=())), observed)) == [
        "create_link link:br-trunk ifalias=ghostwarden:trunk mtu=9000 state=up stp=false type=bridge "
        "vlan_filtering=false",
        "set_master port:eth1 master=br-trunk",
    ]


# --- deletions and recreation ---------------------------------------------------------------------


def test_tearing_everything_down_deletes_children_first_and_the_ruleset_last():
    observed = with_foreign(everything())
    operations = plan(empty_state(), observed)
    assert lines(operations) == [
        "remove_file file:/var/lib/ghostwarden/dnsmasq/nat_dev.conf path=/var/lib/ghostwarden/dnsmasq/nat_dev.conf",
        # Deleting br-trunk releases eth1: no release_master of its own.
        'delete_link link:enp6s0.20 reason="not in the topology" type=vlan',
        'delete_link link:enp6s0.60 reason="not in the topology" type=vlan',
        'delete_link link:vx1200 reason="not in the topology" type=vxlan',
        'delete_link link:br-overlay reason="not in the topology" type=bridge',
        'delete_link link:br-trunk reason="not in the topology" type=bridge',
        'delete_link link:br-work reason="not in the topology" type=bridge',
        'delete_link link:gw-nat_dev reason="not in the topology" type=bridge',
        "delete_ruleset ruleset:inet ghostwarden family=inet table=ghostwarden",
    ]


def test_an_immutable_change_recreates_the_link_and_what_was_on_it():
    before = desired(overlay())
    after = desired(overlay(vni=1300, vxlan_iface="vx1200"))
    assert lines(plan(after, with_foreign(before))) == [
        'delete_link link:vx1200 reason="vni changes from 1200 to 1300" type=vxlan',
        "create_link link:vx1200 dev=enp6s0 dstport=4789 ifalias=ghostwarden:overlay_lab learning=false "
        "local=10.0.0.10 master=br-overlay state=up type=vxlan vni=1300",
        "add_fdb fdb:vx1200:10.0.0.11 dst=10.0.0.11 iface=vx1200 mac=00:00:00:00:00:00",
        "add_fdb fdb:vx1200:10.0.0.12 dst=10.0.0.12 iface=vx1200 mac=00:00:00:00:00:00",
    ]


def test_learning_is_mutable_but_local_is_not():
    before = desired(overlay())
    assert lines(plan(desired(overlay(learning=True)), before)) == ["modify_link link:vx1200 learning=true"]
    assert lines(plan(desired(overlay(local=None)), before))[0] == (
        'delete_link link:vx1200 reason="local changes from 10.0.0.10 to none" type=vxlan'
    )


def test_a_type_change_under_the_same_name_deletes_before_creating():
    before = desired(lab6(iface="net60"))
    after = desired(trunk(name="lab6", iface="net60", ports=(), vlan_filtering=False, vids=(), mtu=None))
    assert lines(plan(after, before)) == [
        'delete_link link:net60 reason="type changes from vlan to bridge" type=vlan',
        "create_link link:net60 ifalias=ghostwarden:lab6 state=up stp=false type=bridge vlan_filtering=false",
    ]


def test_recreating_a_bridge_recreates_the_vlan_on_it_and_reattaches_ports():
    stacked = lab6(name="stacked", iface="br-trunk.60", parent="br-trunk")
    before = with_foreign(desired(trunk(), stacked))
    # Someone turned the owned bridge into a vlan of the same name: type change, everything on it goes.
    before = dataclasses.replace(
        before,
        links=tuple(
            LinkState(link.name, "vlan", link.owner, {"ifalias": "ghostwarden:trunk", "parent": "enp6s0", "vlan_id": 9})
            if link.name == "br-trunk"
            else link
            for link in before.links
        ),
    )
    operations = plan(desired(trunk(), stacked), before)
    assert [(operation.kind, operation.target) for operation in operations] == [
        ("delete_link", "link:br-trunk.60"),
        ("delete_link", "link:br-trunk"),
        ("create_link", "link:br-trunk"),
        ("create_link", "link:br-trunk.60"),
        ("set_master", "port:eth1"),
        ("add_bridge_vlan", "bridge_vlan:br-trunk:1"),
        ("add_bridge_vlan", "bridge_vlan:br-trunk:10-12"),
        ("add_bridge_vlan", "bridge_vlan:br-trunk:30"),
        ("add_bridge_vlan", "bridge_vlan:eth1:1"),
        ("add_bridge_vlan", "bridge_vlan:eth1:10-12"),
        ("add_bridge_vlan", "bridge_vlan:eth1:30"),
        ("add_address", "address:br-trunk.60:10.60.0.1/24"),
        ("add_address", "address:br-trunk.60:2001:db8:60::1/64"),
    ]
    assert operations[0].detail("reason") == "its lower link br-trunk is deleted"


def test_a_port_leaving_the_topology_is_released_and_a_moved_one_set():
    before = with_foreign(desired(trunk(ports=("eth1", "eth2")), br_work()))
    after = desired(trunk(ports=()), br_work(ports=("eth2",)))
    assert [str(op) for op in plan(after, before) if "master" in op.kind] == [
        "release_master port:eth1 master=br-trunk",
        "set_master port:eth2 master=br-work",
    ]


def test_a_removed_network_takes_its_objects_without_separate_operations():
    before = with_foreign(desired(nat_dev(), overlay(), files={CONF: "x\n"}))
    after = desired(nat_dev(), files={CONF: "x\n"})
    assert lines(plan(after, before)) == [
        'delete_link link:vx1200 reason="not in the topology" type=vxlan',
        'delete_link link:br-overlay reason="not in the topology" type=bridge',
    ]


# --- operations -----------------------------------------------------------------------------------


def test_plans_are_deterministic_and_json_able():
    observed = with_foreign(desired(br_work(), overlay(vni=1300)))
    first = plan(everything(), observed)
    second = plan(everything(), HostState.from_dict(json.loads(json.dumps(observed.to_dict()))))
    assert first == second
    assert json.dumps([operation.to_dict() for operation in first]) == json.dumps(
        [operation.to_dict() for operation in second]
    )


def test_operation_plain_data():
    operation = Operation("modify_link", "link:br0", {"mtu": 9000, "master": None})
    assert operation.details == (("master", None), ("mtu", 9000))
    assert operation.to_dict() == {"kind": "modify_link", "target": "link:br0", "details": {"master": None, "mtu": 9000}}
    assert str(operation) == "modify_link link:br0 master=none mtu=9000"
    assert operation.detail("mtu") == 9000 and operation.detail("stp") is None
    with pytest.raises(ValueError, match="operation kind 'explode' is not one of"):
        Operation("explode", "link:br0")


def test_summarise_counts_every_kind():
    counts = summarise(plan(example(), empty_state()))
    assert list(counts) == list(OPERATION_KINDS)
    assert {kind: count for kind, count in counts.items() if count} == {
        "set_sysctl": 1,
        "create_link": 3,
        "add_address": 1,
        "write_file": 1,
        "replace_ruleset": 1,
    }
    assert sum(summarise([]).values()) == 0
