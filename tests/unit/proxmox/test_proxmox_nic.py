# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure netN layer of the Proxmox support: parse, print, desired NIC, pending, topology networks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._nic import (
    LXC,
    QEMU,
    QEMU_MODELS,
    Attachment,
    NicSettings,
    canonical_nic,
    desired_nic,
    find_attached,
    first_free_interface,
    format_nic,
    guest_config_from_pending,
    hotplug_features,
    interface_number,
    network_attachment,
    parse_nic,
    stays_pending,
    trunk_ranges,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

MAC = "BC:24:11:00:00:01"


def message(error: pytest.ExceptionInfo) -> str:
    return str(error.value)


# -- parse and format -------------------------------------------------------------------------

@pytest.mark.parametrize("model", QEMU_MODELS)
def test_every_qemu_model_round_trips_in_alias_and_explicit_form(model: str) -> None:
    alias = parse_nic(f"{model}={MAC.lower()},bridge=vmbr0", QEMU)
    explicit = parse_nic(f"bridge=vmbr0,macaddr={MAC},model={model}", QEMU)
    assert alias == explicit == {"model": model, "macaddr": MAC, "bridge": "vmbr0"}
    assert format_nic(alias, QEMU) == f"{model}={MAC},bridge=vmbr0"


def test_qemu_canonical_order_booleans_and_numbers() -> None:
    text = "virtio,tag=10,firewall=true,bridge=vmbr0,link_down=off,rate=10.0,queues=04,mtu=1,trunks=30;10;20-25"
    fields = parse_nic(text, QEMU)
    assert format_nic(fields, QEMU) == ("virtio,bridge=vmbr0,firewall=1,link_down=0,mtu=1,queues=4,rate=10,tag=10,"
                                        "trunks=10;20-25;30")


@pytest.mark.parametrize(("given_rate", "canonical"), [("10.0", "10"), ("10", "10"), ("0.50", "0.5"), ("1e1", "10"),
                                                       ("0", "0"), ("0.000", "0"), ("125.125", "125.125")])
def test_rate_has_one_spelling(given_rate: str, canonical: str) -> None:
    assert parse_nic(f"virtio,rate={given_rate}", QEMU)["rate"] == canonical


def test_lxc_canonical_form_puts_name_first_and_adds_type_veth() -> None:
    text = ("bridge=vmbr0,hwaddr=bc:24:11:aa:bb:cc,ip=10.0.0.5/24,gw=10.0.0.1,ip6=2001:DB8::5/64,gw6=2001:db8::1,"
            "firewall=yes,link_down=0,mtu=1500,rate=5.50,tag=7,trunks=30;10,name=eth0,host-managed=1")
    assert canonical_nic(text, LXC) == ("name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,gw6=2001:db8::1,"
                                        "host-managed=1,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.5/24,ip6=2001:db8::5/64,"
                                        "link_down=0,mtu=1500,rate=5.5,tag=7,trunks=10;30,type=veth")


@pytest.mark.parametrize("words", [("dhcp", "auto"), ("manual", "manual"), ("dhcp", "dhcp")])
def test_lxc_ip_keywords(words: tuple[str, str]) -> None:
    fields = parse_nic(f"name=eth1,ip={words[0]},ip6={words[1]}", LXC)
    assert (fields["ip"], fields["ip6"]) == words


def test_qemu_trunk_ranges_merge_and_lxc_keeps_single_ids() -> None:
    assert parse_nic("virtio,trunks=20-30;10;31;12-12;25-40", QEMU)["trunks"] == "10;12;20-40"
    assert parse_nic("name=eth0,trunks=30;10;11;10", LXC)["trunks"] == "10;11;30"
    assert [str(r) for r in trunk_ranges([10, "11", "20-22"], QEMU)] == ["10-11", "20-22"]


def test_unknown_keys_are_kept_when_reading_a_newer_cluster() -> None:
    assert canonical_nic(f"virtio={MAC},host-tunnel=1,bridge=vmbr0", QEMU) == f"virtio={MAC},bridge=vmbr0,host-tunnel=1"
    with pytest.raises(ValidationError) as error:
        parse_nic(f"virtio={MAC},host-tunnel=1", QEMU, path="net0")
    assert message(error) == (f"net0: 'virtio={MAC},host-tunnel=1' is not a valid QEMU NIC: unknown key 'host-tunnel'")


def test_empty_items_are_skipped_as_pve_does() -> None:
    assert format_nic(parse_nic("virtio,,bridge=vmbr0,", QEMU), QEMU) == "virtio,bridge=vmbr0"


@pytest.mark.parametrize(("text", "guest_type", "expected"), [
    ("virtio,tag=5000", QEMU, "tag: 5000 is out of range 1-4094"),
    ("virtio,tag=0", QEMU, "tag: 0 is out of range 1-4094"),
    ("virtio,tag=ten", QEMU, "tag: 'ten' is not an integer"),
    ("virtio,firewall=maybe", QEMU, "firewall: 'maybe' is not a boolean (1/0, on/off, yes/no, true/false)"),
    ("virtio=01:00:00:00:00:01", QEMU, "macaddr: '01:00:00:00:00:01' is not a unicast MAC address XX:XX:XX:XX:XX:XX"),
    ("virtio,bridge=vm br0", QEMU, "bridge: 'vm br0' is not a bridge name (letters, digits, '-', '_', '.')"),
    ("virtio,mtu=70000", QEMU, "mtu: 70000 is out of range 1-65520"),
    ("name=eth0,mtu=63", LXC, "mtu: 63 is out of range 64-65535"),
    ("virtio,queues=65", QEMU, "queues: 65 is out of range 0-64"),
    ("virtio,rate=-1", QEMU, "rate: '-1' is negative (the rate limit is in MB/s, 0 or more)"),
    ("virtio,rate=fast", QEMU, "rate: 'fast' is not a number"),
    ("virtio,trunks=10;5000", QEMU, "trunks: VLAN id 5000 is out of range 1-4094"),
    ("virtio,trunks=30-20", QEMU, "trunks: '30-20' is an empty VLAN range"),
    ("name=eth0,trunks=10-20", LXC, "trunks: '10-20' is a range; LXC containers take single VLAN ids (10;20;30)"),
    ("e1001,bridge=vmbr0", QEMU, "model: 'e1001' is not a QEMU NIC model (" + ", ".join(QEMU_MODELS) + ")"),
    ("bridge=vmbr0", QEMU, "no model (e.g. virtio)"),
    ("virtio,bridge=a,bridge=b", QEMU, "duplicate key bridge"),
    (f"virtio={MAC},model=e1000", QEMU, "duplicate key model"),
    ("bridge=vmbr0", LXC, "no name (the interface inside the container, e.g. name=eth0)"),
    ("eth0,bridge=vmbr0", LXC, "'eth0' has no key (name=..., bridge=...)"),
    ("name=eth0,ip=10.0.0.5", LXC, "ip: '10.0.0.5' is not an IPv4 address with prefix length or dhcp or manual"),
    ("name=eth0,ip6=10.0.0.5/24", LXC, "ip6: '10.0.0.5/24' is not an IPv6 address"),
    ("name=eth0,gw=2001:db8::1", LXC, "gw: '2001:db8::1' is not an IPv4 address"),
    ("name=eth0,type=veth2", LXC, "type: 'veth2' is not a container NIC type (veth)"),
    ("name=eth0,model=virtio", LXC, "unknown key 'model'"),
])
def test_invalid_nic_strings_name_the_key_and_value(text: str, guest_type: str, expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_nic(text, guest_type, path="net3")
    kind = "QEMU" if guest_type == QEMU else "LXC"
    assert message(error) == f"net3: {text!r} is not a valid {kind} NIC: {expected}"


@pytest.mark.parametrize("text", ["", "   ", None, 5])
def test_not_a_string(text: object) -> None:
    with pytest.raises(ValidationError) as error:
        parse_nic(text, QEMU, path="net0")
    assert message(error).endswith("is not a valid QEMU NIC: expected a property string such as 'virtio,bridge=vmbr0'")


# -- property: format(parse(x)) is canonical and a fixed point -------------------------------

macs = st.builds(lambda first, rest: ":".join([f"{first:02X}"] + [f"{byte:02X}" for byte in rest]),
                 st.integers(0, 255).map(lambda b: b & 0xFE), st.lists(st.integers(0, 255), min_size=5, max_size=5))
booleans = st.sampled_from(["1", "0", "on", "off", "yes", "no", "true", "false", "TRUE", "No"])
vlan = st.integers(1, 4094)
trunk_item = st.one_of(vlan.map(str), st.tuples(vlan, vlan).map(lambda p: f"{min(p)}-{max(p)}"))
rates = st.one_of(st.integers(0, 10000).map(str), st.decimals(0, 10000, places=3).map(str))
shared = {
    "bridge": st.from_regex(r"[-_.a-z0-9]{1,12}", fullmatch=True),
    "firewall": booleans,
    "link_down": booleans,
    "rate": rates,
    "tag": vlan.map(str),
}
qemu_optional = {**shared, "mtu": st.integers(1, 65520).map(str), "queues": st.integers(0, 64).map(str),
                 "trunks": st.lists(trunk_item, min_size=1, max_size=4).map(";".join)}
lxc_optional = {**shared, "mtu": st.integers(64, 65535).map(str), "hwaddr": macs,
                "trunks": st.lists(vlan.map(str), min_size=1, max_size=4).map(";".join),
                "ip": st.sampled_from(["dhcp", "manual", "10.1.2.3/24", "192.0.2.9/32"]),
                "gw": st.sampled_from(["10.1.2.1", "192.0.2.1"]), "type": st.just("veth")}


@st.composite
def nic_strings(draw: st.DrawFn, guest_type: str) -> str:
    optional = qemu_optional if guest_type == QEMU else lxc_optional
    keys = draw(st.lists(st.sampled_from(sorted(optional)), unique=True))
    items = [f"{key}={draw(optional[key])}" for key in keys]
    if guest_type == QEMU:
        model = draw(st.sampled_from(QEMU_MODELS))
        mac = draw(st.one_of(st.none(), macs))
        head = draw(st.sampled_from(["alias", "bare", "explicit"])) if mac else draw(st.sampled_from(["bare", "model"]))
        if head == "alias":
            items.append(f"{model}={mac}")
        elif head == "explicit":
            items += [f"model={model}", f"macaddr={mac.lower()}"]
        elif head == "model":
            items.append(f"model={model}")
        else:
            items.insert(0, model)
            return ",".join(items)
    else:
        items.append(f"name={draw(st.from_regex(r'eth[0-9]{1,2}', fullmatch=True))}")
    return ",".join(draw(st.permutations(items)))


@given(st.sampled_from([QEMU, LXC]).flatmap(lambda kind: st.tuples(st.just(kind), nic_strings(kind))))
def test_format_of_parse_is_canonical_and_a_fixed_point(case: tuple[str, str]) -> None:
    guest_type, text = case
    fields = parse_nic(text, guest_type)
    printed = format_nic(fields, guest_type)
    assert parse_nic(printed, guest_type) == fields
    assert format_nic(parse_nic(printed, guest_type), guest_type) == printed
    head, *rest = printed.split(",")
    keys = [item.split("=", 1)[0] for item in rest]
    assert keys == sorted(keys)
    if guest_type == QEMU:
        assert head.split("=")[0] in QEMU_MODELS and "model" not in keys and "macaddr" not in keys
    else:
        assert head.startswith("name=") and "type" in keys
    for key in ("firewall", "link_down"):
        assert fields.get(key, "1") in ("1", "0")


# -- the NIC a task asks for ------------------------------------------------------------------

def test_a_new_qemu_nic_is_virtio_on_the_bridge_without_a_mac() -> None:
    fields = desired_nic(QEMU, "net1", None, NicSettings(bridge="vmbr1", tag=20, firewall=True))
    assert format_nic(fields, QEMU) == "virtio,bridge=vmbr1,firewall=1,tag=20"


def test_a_new_lxc_nic_is_named_after_its_slot() -> None:
    fields = desired_nic(LXC, "net2", None, NicSettings(bridge="vmbr0", ip="dhcp"))
    assert format_nic(fields, LXC) == "name=eth2,bridge=vmbr0,ip=dhcp,type=veth"
    named = desired_nic(LXC, "net2", None, NicSettings(bridge="vmbr0", container_interface="lan0"))
    assert format_nic(named, LXC) == "name=lan0,bridge=vmbr0,type=veth"


def test_changes_keep_the_mac_and_untouched_settings() -> None:
    current = parse_nic(f"e1000={MAC},bridge=vmbr0,firewall=1,rate=10.0,tag=10", QEMU)
    fields = desired_nic(QEMU, "net0", current, NicSettings(bridge="vmbr1"))
    assert format_nic(fields, QEMU) == f"e1000={MAC},bridge=vmbr1,firewall=1,rate=10"
    remodelled = desired_nic(QEMU, "net0", current, NicSettings(model="virtio", mtu=1))
    assert format_nic(remodelled, QEMU) == f"virtio={MAC},bridge=vmbr0,firewall=1,mtu=1,rate=10,tag=10"
    new_mac = desired_nic(QEMU, "net0", current, NicSettings(mac="bc:24:11:12:34:56"))
    assert new_mac["macaddr"] == "BC:24:11:12:34:56"


def test_same_settings_give_the_same_nic_whatever_the_spelling() -> None:
    current = parse_nic(f"virtio={MAC.lower()},tag=10,rate=10.0,firewall=true,bridge=vmbr0", QEMU)
    wanted = desired_nic(QEMU, "net0", current, NicSettings(bridge="vmbr0", tag=10, rate=10, firewall=True))
    assert wanted == current


def test_trunks_from_a_list_and_removed_by_an_empty_one() -> None:
    current = parse_nic(f"virtio={MAC},bridge=vmbr0,trunks=10;20", QEMU)
    assert desired_nic(QEMU, "net0", current, NicSettings(trunks=[30, "40-45", 31]))["trunks"] == "30-31;40-45"
    assert "trunks" not in desired_nic(QEMU, "net0", current, NicSettings(trunks=[]))


def test_options_of_the_other_guest_type_are_refused_together() -> None:
    with pytest.raises(ValidationError) as error:
        desired_nic(LXC, "net0", None, NicSettings(bridge="vmbr0", model="e1000", queues=2))
    assert error.value.paths == ["queues", "model"]
    assert message(error) == "queues: 2: only for QEMU VMs, and the guest is an LXC container (and 1 more error)"
    with pytest.raises(ValidationError) as error:
        desired_nic(QEMU, "net0", None, NicSettings(bridge="vmbr0", container_interface="eth0"))
    assert message(error) == "container_interface: 'eth0': only for LXC containers, and the guest is a QEMU VM"


def test_settings_errors_name_the_option() -> None:
    with pytest.raises(ValidationError) as error:
        desired_nic(QEMU, "net0", None, NicSettings(bridge="vmbr0", tag=5000, mac="zz"))
    assert [str(issue) for issue in error.value.issues] == [
        "tag: 5000 is out of range 1-4094", "mac: 'zz' is not a unicast MAC address XX:XX:XX:XX:XX:XX"]


def test_a_new_nic_needs_a_bridge_and_mtu_needs_virtio() -> None:
    with pytest.raises(ValidationError) as error:
        desired_nic(QEMU, "net4", None, NicSettings(firewall=True))
    assert message(error) == "bridge: net4 does not exist yet: give network or bridge to attach it to"
    with pytest.raises(ValidationError) as error:
        desired_nic(QEMU, "net0", None, NicSettings(bridge="vmbr0", model="e1000", mtu=1400))
    assert message(error) == "mtu: 1400: only virtio NICs take an MTU, and net0 is e1000"


@pytest.mark.parametrize("name", ["net32", "eth0", "net-1", "net01x", ""])
def test_interface_names(name: str) -> None:
    with pytest.raises(ValidationError) as error:
        interface_number(name)
    assert message(error) == f"interface: {name!r} is not a guest NIC net0..net31"


def test_first_free_and_attached_interfaces() -> None:
    assert first_free_interface(["net0", "net1", "net3", "digest", "scsi0"]) == "net2"
    assert first_free_interface([]) == "net0"
    with pytest.raises(ValidationError) as error:
        first_free_interface([f"net{n}" for n in range(32)])
    assert message(error) == "interface: all 32 NICs net0..net31 are in use"
    nics = {"net10": {"bridge": "vmbr1"}, "net2": {"bridge": "vmbr1", "tag": "5"}, "net3": {"bridge": "vmbr1"}}
    assert find_attached(nics, "vmbr1", None) == "net3"
    assert find_attached(nics, "vmbr1", 5) == "net2"
    assert find_attached(nics, "vmbr2", None) is None


# -- configuration and pending ----------------------------------------------------------------

def test_guest_config_from_pending_separates_running_and_pending_values() -> None:
    items = [
        {"key": "digest", "value": "0123abcd"},
        {"key": "hotplug", "value": "disk,usb"},
        {"key": "memory", "value": 2048},
        {"key": "net0", "value": f"e1000={MAC},bridge=vmbr0", "pending": f"virtio={MAC},bridge=vmbr0"},
        {"key": "net1", "pending": "virtio=BC:24:11:00:00:02,bridge=vmbr1"},
        {"key": "net2", "value": "virtio=BC:24:11:00:00:03,bridge=vmbr2", "delete": 1},
    ]
    config = guest_config_from_pending(items)
    assert config.digest == "0123abcd"
    assert config.pending == ("net0", "net1", "net2")
    assert dict(config.current) == {"hotplug": "disk,usb", "memory": "2048", "net0": f"e1000={MAC},bridge=vmbr0",
                                    "net2": "virtio=BC:24:11:00:00:03,bridge=vmbr2"}
    assert dict(config.merged) == {"hotplug": "disk,usb", "memory": "2048", "net0": f"virtio={MAC},bridge=vmbr0",
                                   "net1": "virtio=BC:24:11:00:00:02,bridge=vmbr1"}
    assert config.nic("net2", QEMU) is None and config.current_nic("net2", QEMU) == {
        "model": "virtio", "macaddr": "BC:24:11:00:00:03", "bridge": "vmbr2"}
    assert sorted(config.nics(QEMU)) == ["net0", "net1"]


def test_hotplug_features() -> None:
    assert hotplug_features(None) == ("disk", "network", "usb")
    assert hotplug_features("1") == ("disk", "network", "usb")
    assert hotplug_features("0") == ()
    assert hotplug_features("usb,disk") == ("disk", "usb")


def test_what_stays_pending_on_a_running_vm_without_network_hotplug() -> None:
    before = parse_nic(f"e1000={MAC},bridge=vmbr0", QEMU)
    live = dict(before, bridge="vmbr1", tag="5", firewall="1", rate="3")
    replug = dict(before, model="virtio")
    assert stays_pending(QEMU, True, "disk,usb", before, live) is False
    assert stays_pending(QEMU, True, "disk,usb", before, replug) is True
    assert stays_pending(QEMU, True, "disk,usb", None, before) is True
    assert stays_pending(QEMU, True, "disk,usb", before, None) is True
    assert stays_pending(QEMU, True, "disk,usb", {"model": "e1000", "macaddr": MAC}, before) is True
    assert stays_pending(QEMU, True, None, before, replug) is False
    assert stays_pending(QEMU, False, "0", before, replug) is False
    assert stays_pending(LXC, True, "0", None, {"name": "eth0"}) is False


# -- topology networks ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def topology():
    return parse_topology({"version": 1, "interfaces": {"uplink": "vmbr0"}, "networks": {
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1"},
        "work": {"type": "bridge", "iface": "br-work", "vlan": 20},
        "trunk": {"type": "bridge", "iface": "br-trunk", "vlan_filtering": True, "vids": [10, "20-29"]},
        "v30": {"type": "vlan", "vlan": 30},
        "overlay": {"type": "vxlan", "vni": 1200, "peers": ["10.0.0.2"], "local": "10.0.0.1"},
    }})


@pytest.mark.parametrize(("name", "tag", "expected"), [
    ("nat_dev", None, ("gw-nat_dev", None)),
    ("work", None, ("br-work", None)),
    ("overlay", None, ("gw-overlay", None)),
    ("trunk", None, ("br-trunk", None)),
    ("trunk", 25, ("br-trunk", 25)),
    ("v30", None, ("vmbr0", 30)),
    ("v30", 30, ("vmbr0", 30)),
])
def test_network_attachment(topology, name: str, tag: int | None, expected: tuple) -> None:
    assert network_attachment(topology, name, tag) == Attachment(name, *expected)


@pytest.mark.parametrize(("name", "tag", "expected"), [
    ("nope", None, "network: 'nope' is not a network of the topology (networks: nat_dev, overlay, trunk, v30, work)"),
    ("work", 20, "tag: 20: network work is not a VLAN-aware bridge (vlan_filtering), its guests are untagged"),
    ("trunk", 11, "tag: 11 is not among the VLANs of network trunk (10, 20-29)"),
    ("v30", 31, "tag: 31: network v30 is VLAN 30 on vmbr0, so its guests are tagged 30"),
])
def test_network_attachment_errors(topology, name: str, tag: int | None, expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        network_attachment(topology, name, tag)
    assert message(error) == expected
