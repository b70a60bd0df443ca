# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsing and normalisation of topologies: the original CLI's files, defaults, derived
names, warnings, the round trip through plain data, and the file loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    DnsRecord,
    Forward,
    Management,
    Network,
    PortRange,
    StaticLease,
    Subnet,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import BUILTIN_PROFILES
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import (
    load_topology_file,
    load_topology_text,
    parse_topology,
    topology_to_dict,
)

FIXTURES = Path(__file__).parent / "fixtures"

NAT_DEV = Network(
    name="nat_dev",
    type="routed",
    iface="gw-nat_dev",
    iface_generated=True,
    subnets=(Subnet(cidr="10.33.0.0/24", gw_ip="10.33.0.1", family=4),),
    dhcp=Dhcp(ranges=(DhcpRange(start="10.33.0.128", end="10.33.0.254", family=4),), lease_time="12h"),
    dns=Dns(zones=("dev.lan",)),
    masq_out="enp6s0",
    forwards=(Forward(family=4, protocol="tcp", public_ip=None, public_port=PortRange(4022, 4022),
                      dst_ip="10.33.0.10", dst_port=PortRange(22, 22)),),
    policy_profile="routed-tight",
)
BR_WORK = Network(
    name="br_work",
    type="bridge",
    iface="br-work",
    policy_profile="l2-lan",
    vlan=20,
    parent="enp6s0",
    vlan_iface="enp6s0.20",
)
SSH_WARNING = ("networks.nat_dev: profile routed-tight drops management port 22/tcp from this network to the host "
               "and management.allow_from is empty: only the connection Ansible runs over stays protected")


def routed(**fields: object) -> dict:
    network = {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1"}
    network.update(fields)
    return network


def parse_networks(networks: dict, **top: object) -> dict[str, Network]:
    data = {"interfaces": {"uplink": "enp6s0", "lan": "eno2"}, "networks": networks}
    data.update(top)
    return {network.name: network for network in parse_topology(data).networks}


def rich_topology() -> dict:
    """Every network type and most optional fields, IPv4 and IPv6 (fixtures/rich.yaml)."""
    return load_topology_file(str(FIXTURES / "rich.yaml"))


# -- the original CLI's example -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ghostnet.toml", "ghostnet.yaml"])
def test_original_example_loads_unchanged(name: str) -> None:
    topology = parse_topology(load_topology_file(str(FIXTURES / name)))
    assert topology.version == 1
    assert topology.interfaces == (("uplink", "enp6s0"),)
    assert topology.management == Management()
    assert topology.networks == (BR_WORK, NAT_DEV)
    assert topology.warnings == (SSH_WARNING,)
    assert dict(topology.profiles) == BUILTIN_PROFILES


def test_design_example_with_vxlan_and_interface_keys() -> None:
    data = {
        "version": 1,
        "interfaces": {"uplink": "enp6s0"},
        "management": {"allow_from": ["192.0.2.0/24"], "ports": [22]},
        "policies": {},
        "networks": {
            "nat_dev": {**routed(), "dhcp": True, "dns": {"enabled": True, "zones": ["dev.lan"]},
                        "masq_out": "uplink", "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
                        "policy_profile": "routed-tight"},
            "br_work": {"type": "bridge", "iface": "br-work", "vlan": 20, "policy_profile": "l2-lan"},
            "overlay_lab": {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["10.0.0.12", "10.0.0.11"]},
        },
    }
    topology = parse_topology(data)
    assert topology.network("nat_dev") == NAT_DEV
    assert topology.network("overlay_lab") == Network(
        name="overlay_lab", type="vxlan", iface="br-overlay", vni=1200, vxlan_iface="vx1200",
        peers=("10.0.0.11", "10.0.0.12"), dstport=4789, learning=False)
    assert topology.management == Management(allow_from=("192.0.2.0/24",), ports=(PortRange(22, 22),))
    assert topology.warnings == ()


# -- derived names --------------------------------------------------------------------------------


def test_default_bridge_name_and_its_hashed_form() -> None:
    networks = parse_networks({"abcdefghijkl": {"type": "bridge"}, "production_backend": {"type": "bridge"}})
    assert networks["abcdefghijkl"].iface == "gw-abcdefghijkl"  # exactly 15 bytes
    # "gw-" + first 7 characters + "-" + 4 hex characters of sha1("production_backend")
    assert networks["production_backend"].iface == "gw-product-d33a"
    assert all(network.iface_generated for network in networks.values())


def test_vlan_names_default_to_parent_dot_vid_and_fall_back_to_a_hash() -> None:
    networks = parse_networks({
        "short": {"type": "vlan", "vlan": 20, "parent": "enp65s0f0np0"},
        "trunk": {"type": "vlan", "vlan": 4094, "parent": "enp65s0f0np0"},
        "bridged": {"type": "bridge", "vlan": 30},
    })
    assert (networks["short"].iface, networks["short"].vlan_iface) == ("enp65s0f0np0.20", None)
    assert networks["trunk"].iface == "vl4094-4887"  # "enp65s0f0np0.4094" is 17 bytes
    assert networks["short"].iface_generated and networks["trunk"].iface_generated
    bridged = networks["bridged"]
    assert (bridged.iface, bridged.parent, bridged.vlan_iface) == ("gw-bridged", "enp6s0", "enp6s0.30")


def test_every_bridge_may_take_a_vlan_sub_interface() -> None:
    networks = parse_networks({
        "lab": routed(vlan=30),
        "overlay": {"type": "vxlan", "vni": 9, "vlan": 31, "parent": "lan", "vlan_iface": "gw9"},
    })
    assert (networks["lab"].vlan, networks["lab"].parent, networks["lab"].vlan_iface) == (30, "enp6s0", "enp6s0.30")
    overlay = networks["overlay"]
    assert (overlay.vlan, overlay.parent, overlay.vlan_iface, overlay.vxlan_iface) == (31, "eno2", "gw9", "vx9")


def test_given_names_are_kept_and_generated_means_equal_to_the_default() -> None:
    networks = parse_networks({
        "a": {"type": "bridge", "iface": "br-a", "vlan": 5, "parent": "lan", "vlan_iface": "lan5"},
        "b": {"type": "bridge", "iface": "gw-b"},
        "c": {"type": "vxlan", "vni": 7, "iface": "br-c", "vxlan_iface": "vxlan-c"},
    })
    assert (networks["a"].iface, networks["a"].iface_generated, networks["a"].vlan_iface) == ("br-a", False, "lan5")
    assert networks["a"].parent == "eno2"  # the key "lan" resolved
    assert networks["b"].iface_generated is True
    assert (networks["c"].iface, networks["c"].vxlan_iface) == ("br-c", "vxlan-c")


# -- L3, DHCP and DNS -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cidr", "gw_ip", "expected"), [
    ("10.33.0.0/24", "10.33.0.1", ("10.33.0.128", "10.33.0.254")),
    # the gateway inside the upper half: the larger side of it
    ("10.33.0.0/24", "10.33.0.200", ("10.33.0.128", "10.33.0.199")),
    ("10.33.0.0/24", "10.33.0.140", ("10.33.0.141", "10.33.0.254")),
    ("10.33.0.0/30", "10.33.0.1", ("10.33.0.2", "10.33.0.2")),
    ("10.33.0.0/30", "10.33.0.2", ("10.33.0.1", "10.33.0.1")),
    ("fd00::/64", "fd00::1", ("fd00::8000:0:0:0", "fd00::ffff:ffff:ffff:ffff")),
    ("fd00::/126", "fd00::3", ("fd00::2", "fd00::2")),
])
def test_default_dhcp_range_is_the_upper_half_without_the_gateway(cidr: str, gw_ip: str, expected: tuple) -> None:
    network = parse_networks({"n": routed(cidr=cidr, gw_ip=gw_ip, dhcp=True)})["n"]
    family = 6 if ":" in cidr else 4
    assert network.dhcp == Dhcp(ranges=(DhcpRange(*expected, family=family),))


def test_dual_stack_dhcp_with_an_explicit_range_and_static_hosts() -> None:
    network = parse_topology(rich_topology()).network("nat_dev")
    assert network.subnets == (Subnet("10.33.0.0/24", "10.33.0.1", 4), Subnet("fd00:33::/64", "fd00:33::1", 6))
    assert network.dhcp == Dhcp(
        ranges=(DhcpRange("10.33.0.128", "10.33.0.254", 4),
                DhcpRange("fd00:33:0:0:8000::", "fd00:33::ffff:ffff:ffff:ffff", 6)),  # RFC 5952 form
        lease_time="3600",
        hosts=(StaticLease("52:54:00:aa:bb:01", "10.33.0.5"), StaticLease("52:54:00:aa:bb:02", "10.33.0.20", "web"),
               StaticLease("52:54:00:aa:bb:01", "fd00:33::5")),
    )
    explicit = parse_networks({"n": routed(dhcp={"range": "10.33.0.100-10.33.0.150", "lease_time": "infinite"})})["n"]
    assert explicit.dhcp == Dhcp(ranges=(DhcpRange("10.33.0.100", "10.33.0.150", 4),), lease_time="infinite")


def test_disabled_dhcp_and_dns_are_none_but_still_checked() -> None:
    networks = parse_networks({"n": routed(dhcp={"enabled": False, "lease_time": "1h"}, dns={"enabled": False})})
    assert (networks["n"].dhcp, networks["n"].dns) == (None, None)
    with pytest.raises(ValidationError) as caught:
        parse_networks({"n": routed(dhcp={"enabled": False, "lease_time": "soon"})})
    assert caught.value.paths == ["networks.n.dhcp.lease_time"]


def test_dns_names_are_normalised_and_records_sorted() -> None:
    network = parse_topology(rich_topology()).network("nat_dev")
    assert network.dns == Dns(zones=("dev.lan", "lab.example"), records=(DnsRecord("web.dev.lan", "10.33.0.20"),),
                              upstream=("9.9.9.9", "2620:fe::fe"))
    listed = parse_networks({"n": routed(dns={"records": [
        {"name": "b.dev.lan", "ip": "fd00::2"}, {"name": "B.dev.lan", "ip": "10.33.0.2"}, {"name": "a.dev.lan", "ip": "10.33.0.3"},
    ]})})["n"]
    assert listed.dns.records == (DnsRecord("a.dev.lan", "10.33.0.3"), DnsRecord("b.dev.lan", "10.33.0.2"),
                                  DnsRecord("b.dev.lan", "fd00::2"))
    assert parse_networks({"n": routed(dns=True)})["n"].dns == Dns()


def test_addresses_are_canonical() -> None:
    network = parse_networks({"n": routed(cidr="FD00:0:0:33::/64", gw_ip="fd00:0000:0:33:0::1")})["n"]
    assert network.subnets == (Subnet("fd00:0:0:33::/64", "fd00:0:0:33::1", 6),)


# -- forwards -------------------------------------------------------------------------------------


def test_forward_forms_and_their_normal_form() -> None:
    forwards = parse_topology(rich_topology()).network("nat_dev").forwards
    assert forwards == (
        Forward(4, "sctp", None, PortRange(3868, 3868), "10.33.0.12", PortRange(3868, 3868)),
        Forward(4, "tcp", None, PortRange(4022, 4022), "10.33.0.10", PortRange(22, 22)),
        Forward(4, "udp", "198.51.100.9", PortRange(5000, 5009), "10.33.0.11", PortRange(6000, 6009), hairpin=False),
        Forward(6, "tcp", None, PortRange(8443, 8443), "fd00:33::20", PortRange(443, 443), comment="web over v6"),
    )


@pytest.mark.parametrize(("spec", "expected"), [
    ({"public": ":4022/tcp", "dst": "10.33.0.10:22"}, (4, None, "10.33.0.10")),
    ({"public": "0.0.0.0:4022", "dst": "10.33.0.10:22"}, (4, None, "10.33.0.10")),  # protocol defaults to tcp
    ({"public": "[::]:4022/tcp", "dst": "[fd00::10]:22"}, (6, None, "fd00::10")),
    ({"public": ":4022/tcp", "dst": "[FD00::10]:22"}, (6, None, "fd00::10")),
    ({"public": "[2001:db8::7]:4022/tcp", "dst": "[fd00::10]:22"}, (6, "2001:db8::7", "fd00::10")),
    ({"protocol": "tcp", "port": "4022", "dst_ip": "fd00::10", "dst_port": 22, "public_ip": "::"}, (6, None, "fd00::10")),
])
def test_forward_public_any_address_and_families(spec: dict, expected: tuple) -> None:
    network = parse_networks({"n": routed(cidr6="fd00::/64", gw_ip6="fd00::1", forwards=[spec])})["n"]
    (forward,) = network.forwards
    assert (forward.family, forward.public_ip, forward.dst_ip) == expected
    assert (forward.protocol, forward.public_port, forward.dst_port) == ("tcp", PortRange(4022, 4022), PortRange(22, 22))


def test_forward_destination_port_defaults_to_the_public_port() -> None:
    network = parse_networks({"n": routed(cidr6="fd00::/64", gw_ip6="fd00::1", forwards=[
        {"public": ":8000-8009/udp", "dst": "10.33.0.10"}, {"public": "[::]:53/udp", "dst": "fd00::53"}])})["n"]
    assert [(f.public_port, f.dst_port) for f in network.forwards] == [
        (PortRange(8000, 8009), PortRange(8000, 8009)), (PortRange(53, 53), PortRange(53, 53))]


def test_the_same_port_on_other_protocols_families_or_addresses_is_no_overlap() -> None:
    networks = parse_networks({
        "a": routed(cidr6="fd00::/64", gw_ip6="fd00::1", forwards=[
            {"public": ":53/udp", "dst": "10.33.0.10"}, {"public": ":53/tcp", "dst": "10.33.0.10"},
            {"public": "[::]:53/udp", "dst": "fd00::10"}]),
        "b": routed(cidr="10.34.0.0/24", gw_ip="10.34.0.1", forwards=[
            {"public": "198.51.100.7:8080/tcp", "dst": "10.34.0.10"}, {"public": "198.51.100.8:8080/tcp", "dst": "10.34.0.11"}]),
    })
    assert len(networks["a"].forwards) == 3 and len(networks["b"].forwards) == 2


# -- management, profiles, references ---------------------------------------------------------------


def test_management_is_canonical_and_sorted() -> None:
    topology = parse_topology(rich_topology())
    assert topology.management == Management(
        allow_from=("192.0.2.0/24", "198.51.100.7/32", "2001:db8:ff::/48"),
        ports=(PortRange(22, 22), PortRange(8000, 8010)),
        enforce=True,
    )
    assert parse_topology({}).management == Management()


def test_references_resolve_through_interfaces() -> None:
    topology = parse_topology(rich_topology())
    assert topology.interfaces == (("lan", "eno2"), ("underlay", "eno1"), ("uplink", "enp6s0"))
    assert topology.network("nat_dev").masq_out == "enp6s0"
    assert topology.network("br_trunk").ports == ("eno2", "eno3")
    assert topology.network("br_trunk").vids == (PortRange(20, 20), PortRange(100, 199))
    assert topology.network("storage").parent == "eno1"
    assert topology.network("storage").iface == "eno1.30"
    overlay = topology.network("overlay_lab")
    assert (overlay.dev, overlay.local, overlay.peers, overlay.dstport, overlay.learning) == (
        "eno1", "10.0.0.10", ("10.0.0.11", "10.0.0.12"), 8472, True)


def test_user_profiles_are_merged_over_the_builtins() -> None:
    topology = parse_topology(rich_topology())
    names = [name for name, _profile in topology.profiles]
    assert names == sorted(set(BUILTIN_PROFILES) | {"web-only"})
    assert topology.profile("routed-tight").description == "my own routed-tight"
    assert topology.profile("routed-tight").builtin is False
    assert topology.profile("l2-lan") is BUILTIN_PROFILES["l2-lan"]
    assert topology.network("nat_dev").policy_profile == "web-only"


# -- warnings -------------------------------------------------------------------------------------


def test_a_profile_blocking_ssh_without_allow_from_warns() -> None:
    networks = {"nat_dev": routed(policy_profile="routed-tight"), "lan": {"type": "bridge", "policy_profile": "l2-lan"}}
    data: dict = {"interfaces": {"uplink": "enp6s0"}, "networks": networks}
    assert parse_topology(data).warnings == (SSH_WARNING,)
    data["management"] = {"allow_from": ["192.0.2.0/24"]}
    assert parse_topology(data).warnings == ()


def test_the_first_blocked_port_of_a_management_range_is_named() -> None:
    data = {"management": {"ports": ["8005-8007"]},
            "networks": {"pbs": routed(policy_profile="proxmox-backup")}}
    # proxmox-backup opens 8007 (PBS) but not 8005
    assert parse_topology(data).warnings == (
        "networks.pbs: profile proxmox-backup drops management port 8005/tcp from this network to the host and "
        "management.allow_from is empty: only the connection Ansible runs over stays protected",)


def test_lock_outs_are_not_warnings_of_the_parser() -> None:
    """The guard off and a forwarded management port are refused by the modules (core._lockout), not warned here."""
    data = {"management": {"enforce": False, "allow_from": ["192.0.2.0/24"]}, "networks": {"n": routed(forwards=[
        {"public": ":20-30/tcp", "dst": "10.33.0.10"}])}}
    assert parse_topology(data).warnings == ()


def test_one_management_port_warning_per_profile_names_its_networks() -> None:
    data = {"networks": {f"n{index}": routed(cidr=f"10.40.{index}.0/24", gw_ip=f"10.40.{index}.1",
                                             policy_profile="routed-tight") for index in range(7)}}
    assert parse_topology(data).warnings == (
        "networks.n0, networks.n1, networks.n2, networks.n3, networks.n4 and 2 more (7 networks): profile "
        "routed-tight drops management port 22/tcp from these networks to the host and management.allow_from is "
        "empty: only the connection Ansible runs over stays protected",)


# -- round trip and determinism --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["rich", "ghostnet.toml", "ghostnet.yaml"])
def test_round_trip_through_plain_data(source: str) -> None:
    data = rich_topology() if source == "rich" else load_topology_file(str(FIXTURES / source))
    topology = parse_topology(data)
    plain = topology_to_dict(topology)
    assert json.loads(json.dumps(plain)) == plain  # JSON-able as it is
    assert parse_topology(plain) == topology
    assert topology_to_dict(parse_topology(plain)) == plain


def test_plain_data_has_every_default_and_only_user_profiles() -> None:
    plain = topology_to_dict(parse_topology(load_topology_file(str(FIXTURES / "ghostnet.toml"))))
    assert plain["management"] == {"allow_from": [], "ports": [22], "enforce": True}
    assert plain["policies"] == {}
    assert plain["networks"]["nat_dev"] == {
        "type": "routed", "iface": "gw-nat_dev", "mtu": None, "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1",
        "dhcp": {"enabled": True, "range": "10.33.0.128-10.33.0.254", "lease_time": "12h", "hosts": []},
        "dns": {"enabled": True, "zones": ["dev.lan"], "records": [], "upstream": []},
        "masq_out": "enp6s0",
        "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22", "hairpin": True, "comment": None}],
        "policy_profile": "routed-tight", "stp": False, "vlan_filtering": False, "vids": [], "ports": [],
        "adopt_port_addresses": False,
        "vlan": None, "parent": None, "vlan_iface": None,
    }
    assert plain["networks"]["br_work"]["vlan_iface"] == "enp6s0.20"
    rich = topology_to_dict(parse_topology(rich_topology()))
    assert sorted(rich["policies"]) == ["routed-tight", "web-only"]
    assert rich["networks"]["overlay_lab"]["iface"] == "br-overlay" and "bridge" not in rich["networks"]["overlay_lab"]


def test_equal_input_in_any_order_gives_equal_output() -> None:
    data = rich_topology()
    shuffled = json.loads(json.dumps(data))
    shuffled["networks"] = dict(reversed(list(shuffled["networks"].items())))
    shuffled["interfaces"] = dict(reversed(list(shuffled["interfaces"].items())))
    shuffled["management"]["allow_from"].reverse()
    shuffled["networks"]["nat_dev"]["forwards"].reverse()
    shuffled["networks"]["nat_dev"]["dhcp"]["hosts"].reverse()
    shuffled["networks"]["overlay_lab"]["peers"].reverse()
    assert parse_topology(shuffled) == parse_topology(data)
    assert json.dumps(topology_to_dict(parse_topology(shuffled))) == json.dumps(topology_to_dict(parse_topology(data)))


def test_an_empty_topology_is_valid() -> None:
    topology = parse_topology({})
    assert (topology.version, topology.networks, topology.interfaces, topology.warnings) == (1, (), (), ())


# -- loaders --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".toml", ".TOML", ".yaml", ".yml", ".json"])
def test_load_topology_file_by_suffix(tmp_path: Path, suffix: str) -> None:
    expected = load_topology_file(str(FIXTURES / "ghostnet.toml"))
    path = tmp_path / f"ghostnet{suffix}"
    if suffix.lower() == ".json":
        path.write_text(json.dumps(expected))
    else:
        source = "ghostnet.toml" if suffix.lower() == ".toml" else "ghostnet.yaml"
        path.write_text((FIXTURES / source).read_text())
    assert load_topology_file(str(path)) == expected


def errors(call) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        call()
    return [str(issue) for issue in caught.value.issues]


def test_load_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('version = 1\n[networks.a]\ntype = "routed\n')
    assert errors(lambda: load_topology_file(str(bad_toml))) == [
        f"{bad_toml}: line 3, column 15: invalid TOML: Illegal character '\\n'"]
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("networks:\n  a:\n    type: routed\n   cidr: x\n")
    assert errors(lambda: load_topology_file(str(bad_yaml))) == [
        f"{bad_yaml}: line 4, column 4: invalid YAML: while parsing a block mapping did not find expected key"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"networks": {}\n,}')
    assert errors(lambda: load_topology_file(str(bad_json))) == [
        f"{bad_json}: line 2, column 2: invalid JSON: Expecting property name enclosed in double quotes"]


def test_duplicate_keys_are_errors_not_silently_overwritten() -> None:
    assert errors(lambda: load_topology_text("networks:\n  a: {type: routed}\n  a: {type: bridge}\n", "yaml",
                                             source="dup.yaml")) == [
        "dup.yaml: line 3, column 3: invalid YAML: while constructing a mapping found duplicate key 'a'"]
    assert errors(lambda: load_topology_text('{"version": 1, "version": 2}', "json", source="dup.json")) == [
        "dup.json: invalid JSON: duplicate key 'version'"]
    assert errors(lambda: load_topology_text("version = 1\nversion = 2\n", "toml", source="dup.toml")) == [
        "dup.toml: line 2, column 12: invalid TOML: Cannot overwrite a value"]


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = "base: &base {type: bridge, stp: true}\nnetworks:\n  a:\n    <<: *base\n    stp: false\n"
    assert load_topology_text(text, "yaml")["networks"]["a"] == {"type": "bridge", "stp": False}


def test_yaml_is_loaded_safely() -> None:
    assert errors(lambda: load_topology_text("networks: !!python/object/apply:os.system ['true']\n", "yaml",
                                             source="evil.yaml"))[0].startswith(
        "evil.yaml: line 1, column 11: invalid YAML: could not determine a constructor for the tag")


@pytest.mark.parametrize(("text", "fmt", "message"), [
    ("", "yaml", "t: the topology document is empty"),
    ("- a\n- b\n", "yaml", "t: the topology document is a list, not a mapping"),
    ("3", "json", "t: the topology document is an integer, not a mapping"),
    ("version: 1", "ini", "t: unknown topology format 'ini' (toml, yaml or json)"),
])
def test_documents_that_are_not_a_topology(text: str, fmt: str, message: str) -> None:
    assert errors(lambda: load_topology_text(text, fmt, source="t")) == [message]


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert errors(lambda: load_topology_file(str(missing))) == [
        f"{missing}: cannot read the topology file: No such file or directory"]
    unknown = tmp_path / "ghostnet.ini"
    unknown.write_text("x")
    assert errors(lambda: load_topology_file(str(unknown))) == [
        f"{unknown}: unknown topology file type '.ini' (use .toml, .yaml, .yml or .json)"]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe")
    assert errors(lambda: load_topology_file(str(binary))) == [
        f"{binary}: the topology file is not UTF-8 text (invalid start byte at byte 11)"]
    assert errors(lambda: load_topology_file(str(tmp_path))) == [
        f"{tmp_path}: unknown topology file type '(none)' (use .toml, .yaml, .yml or .json)"]
