# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests of the planner against a model of the kernel.

:class:`Kernel` applies operations with the kernel's rules (EEXIST, a master or lower link must
exist, a deleted link takes its children, addresses, FDB entries and enslavements with it, a new
port starts with VLAN 1 as PVID) and refuses anything that touches a foreign object. Random
topologies are planned, applied, changed, drifted and planned again: each plan must apply
cleanly, reach exactly the desired state, leave foreign objects alone and be a fixed point.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Set, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import render_dnsmasq
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    OWNER_ALIAS_PREFIX,
    Dhcp,
    DhcpRange,
    Dns,
    Management,
    Network,
    PortRange,
    Subnet,
    Topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    IMMUTABLE_ATTRS,
    Address,
    BridgeVlan,
    Enslavement,
    FdbEntry,
    HostState,
    LinkState,
    Operation,
)

FOREIGN_LINKS = {"lo": "other", "enp6s0": "other", "eth1": "other", "eth2": "other", "eth3": "other",
                 "eth9": "other", "vmbr0": "bridge"}
FOREIGN_ADDRESSES = {("enp6s0", "192.0.2.10/24"), ("lo", "127.0.0.1/8"), ("vmbr0", "10.33.0.1/24")}


class KernelError(AssertionError):
    """An operation the kernel would refuse, or one that would touch a foreign object."""


class Kernel:
    def __init__(self) -> None:
        self.links: Dict[str, Dict] = {
            name: {"kind": kind, "attrs": {"state": "up"}} for name, kind in FOREIGN_LINKS.items()
        }
        self.links["vmbr0"]["attrs"].update(stp=False, vlan_filtering=False)
        self.links["eth3"]["attrs"]["master"] = "vmbr0"
        self.vlans: Dict[str, Dict[int, Tuple[bool, bool]]] = {"vmbr0": {1: (True, True)}, "eth3": {1: (True, True)}}
        self.addresses: Dict[Tuple[str, str], bool] = {key: False for key in FOREIGN_ADDRESSES}
        self.fdb: Dict[Tuple[str, str, str], bool] = {}
        self.owned_ports: Set[str] = set()
        # enp6s0, the masq_out of the generated networks, accepts router advertisements (the kernel's default).
        self.sysctls: Dict[str, str] = {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0",
                                        "net.ipv6.conf.enp6s0.accept_ra": "1"}
        self.ruleset: Optional[str] = None
        self.files: Dict[str, str] = {}
        self.link_local_counter = 0

    # helpers ------------------------------------------------------------------------------------

    def owned(self, name: str) -> bool:
        return str(self.links[name]["attrs"].get("ifalias", "")).startswith(OWNER_ALIAS_PREFIX)

    def need_link(self, name: Optional[str], what: str) -> Dict:
        if name not in self.links:
            raise KernelError(f"{what}: no link {name}")
        return self.links[str(name)]

    def need_owned(self, name: str, what: str) -> Dict:
        link = self.need_link(name, what)
        if not self.owned(name):
            raise KernelError(f"{what}: {name} is foreign")
        return link

    def enslave(self, port: str, master: Optional[str]) -> None:
        attrs = self.links[port]["attrs"]
        self.vlans.pop(port, None)
        self.owned_ports.discard(port)
        if master is None:
            attrs.pop("master", None)
            return
        if self.need_link(master, f"enslave {port}")["kind"] != "bridge":
            raise KernelError(f"enslave {port}: {master} is not a bridge")
        attrs["master"] = master
        self.vlans[port] = {1: (True, True)}

    def remove_link(self, name: str, foreign_ok: bool = False) -> None:
        if not foreign_ok and not self.owned(name):
            raise KernelError(f"the kernel would delete foreign link {name}")
        for child, link in sorted(self.links.items()):
            if child in self.links and name in (link["attrs"].get("parent"), link["attrs"].get("dev")):
                self.remove_link(child, foreign_ok)
        for port, link in self.links.items():
            if link["attrs"].get("master") == name:
                self.enslave(port, None)
        del self.links[name]
        self.vlans.pop(name, None)
        self.owned_ports.discard(name)
        self.addresses = {key: owned for key, owned in self.addresses.items() if key[0] != name}
        self.fdb = {key: owned for key, owned in self.fdb.items() if key[0] != name}

    # operations ---------------------------------------------------------------------------------

    def apply(self, operations: List[Operation]) -> None:
        for operation in operations:
            getattr(self, operation.kind)(operation.target, dict(operation.details))

    def create_link(self, target: str, details: Dict) -> None:
        name = target.split(":", 1)[1]
        if name in self.links:
            raise KernelError(f"create {name}: EEXIST")
        kind = details.pop("type")
        for key in ("parent", "dev"):
            if key in details:
                self.need_link(details[key], f"create {name} {key}")
        master = details.pop("master", None)
        self.links[name] = {"kind": kind, "attrs": details}
        if kind == "bridge":
            self.vlans[name] = {1: (True, True)}
        if master is not None:
            self.enslave(name, master)
        self.link_local_counter += 1
        self.addresses[(name, f"fe80::{self.link_local_counter:x}/64")] = False

    def delete_link(self, target: str, details: Dict) -> None:
        name = target.split(":", 1)[1]
        if self.need_owned(name, "delete")["kind"] != details["type"]:
            raise KernelError(f"delete {name}: type mismatch")
        self.remove_link(name)

    def modify_link(self, target: str, details: Dict) -> None:
        name = target.split(":", 1)[1]
        link = self.need_owned(name, "modify")
        for key, value in details.items():
            if key in IMMUTABLE_ATTRS[link["kind"]]:
                raise KernelError(f"modify {name}: {key} cannot change")
            if key == "master":
                self.enslave(name, value)
            else:
                link["attrs"][key] = value

    def set_master(self, target: str, details: Dict) -> None:
        port = target.split(":", 1)[1]
        self.need_link(port, "set_master")
        if self.owned(port):
            raise KernelError(f"set_master on owned link {port}")
        current = self.links[port]["attrs"].get("master")
        if current is not None and not self.owned(current) and port not in self.owned_ports:
            raise KernelError(f"set_master {port}: taken from foreign bridge {current}")
        if not self.owned(details["master"]):
            raise KernelError(f"set_master {port}: foreign bridge {details['master']}")
        self.enslave(port, details["master"])
        self.owned_ports.add(port)

    def release_master(self, target: str, details: Dict) -> None:
        port = target.split(":", 1)[1]
        if port not in self.owned_ports or self.links[port]["attrs"].get("master") != details["master"]:
            raise KernelError(f"release {port}: not an owned enslavement to {details['master']}")
        self.enslave(port, None)

    def vlan_port(self, details: Dict) -> Dict[int, Tuple[bool, bool]]:
        port = details["port"]
        link = self.need_link(port, "bridge vlan")
        if details["self"] != (link["kind"] == "bridge"):
            raise KernelError(f"bridge vlan {port}: self flag wrong")
        if not details["self"] and "master" not in link["attrs"]:
            raise KernelError(f"bridge vlan {port}: not a bridge port")
        if "bridge" in details and (details["self"] and details["bridge"] != port or not details["self"]
                                    and details["bridge"] != link["attrs"]["master"]):
            raise KernelError(f"bridge vlan {port}: wrong bridge {details['bridge']}")
        return self.vlans.setdefault(port, {})

    def add_bridge_vlan(self, target: str, details: Dict) -> None:
        vids = self.vlan_port(details)
        if details["pvid"]:
            vids.update({vid: (False, flags[1]) for vid, flags in vids.items() if flags[0]})
        for vid in range(details["vid_first"], details["vid_last"] + 1):
            vids[vid] = (details["pvid"], details["untagged"])

    def remove_bridge_vlan(self, target: str, details: Dict) -> None:
        vids = self.vlan_port(details)
        for vid in range(details["vid_first"], details["vid_last"] + 1):
            if vid not in vids:
                raise KernelError(f"{target}: vid {vid} absent")
            del vids[vid]

    def add_address(self, target: str, details: Dict) -> None:
        key = (details["iface"], details["address"])
        self.need_link(key[0], target)
        if key in self.addresses:
            raise KernelError(f"{target}: EEXIST")
        self.addresses[key] = True

    def remove_address(self, target: str, details: Dict) -> None:
        key = (details["iface"], details["address"])
        if not self.addresses.get(key):
            raise KernelError(f"{target}: absent or foreign")
        del self.addresses[key]

    def add_fdb(self, target: str, details: Dict) -> None:
        key = (details["iface"], details["mac"], details["dst"])
        if self.need_link(key[0], target)["kind"] != "vxlan":
            raise KernelError(f"{target}: not a vxlan")
        if key in self.fdb:
            raise KernelError(f"{target}: EEXIST")
        self.fdb[key] = True

    def remove_fdb(self, target: str, details: Dict) -> None:
        key = (details["iface"], details["mac"], details["dst"])
        if not self.fdb.get(key):
            raise KernelError(f"{target}: absent or foreign")
        del self.fdb[key]

    def set_sysctl(self, target: str, details: Dict) -> None:
        self.sysctls[details["key"]] = details["value"]

    def write_file(self, target: str, details: Dict) -> None:
        self.files[details["path"]] = details["content"]

    def remove_file(self, target: str, details: Dict) -> None:
        del self.files[details["path"]]

    def replace_ruleset(self, target: str, details: Dict) -> None:
        self.ruleset = details["content"]

    def delete_ruleset(self, target: str, details: Dict) -> None:
        if self.ruleset is None:
            raise KernelError("delete_ruleset: no table")
        self.ruleset = None

    # observation --------------------------------------------------------------------------------

    def vlan_aware(self, bridge: Optional[str]) -> bool:
        return bridge in self.links and self.links[str(bridge)]["attrs"].get("vlan_filtering") is True

    def observe(self) -> HostState:
        links, enslavements, bridge_vlans = [], [], []
        for name, link in self.links.items():
            owned = self.owned(name)
            attrs = dict(link["attrs"])
            master = attrs.get("master")
            if not owned and master is not None:
                enslavements.append(Enslavement(name, master, name in self.owned_ports))
            owner = str(attrs["ifalias"])[len(OWNER_ALIAS_PREFIX):] if owned else None
            links.append(LinkState(name, link["kind"], owner, attrs))
            bridge = name if link["kind"] == "bridge" else master
            if self.vlan_aware(bridge):
                bridge_vlans.extend(BridgeVlan(name, PortRange(vid, vid), *flags)
                                    for vid, flags in self.vlans.get(name, {}).items())
        return HostState(
            links=tuple(links),
            bridge_vlans=tuple(bridge_vlans),
            addresses=tuple(Address(iface, address, owned) for (iface, address), owned in self.addresses.items()),
            fdb=tuple(FdbEntry(iface, dst, mac, owned) for (iface, mac, dst), owned in self.fdb.items()),
            enslavements=tuple(enslavements),
            sysctls=self.sysctls,
            ruleset=self.ruleset,
            dnsmasq_files=self.files,
        )


# --- random topologies ---------------------------------------------------------------------------

NAMES = ("a", "b", "c", "d")
LINK_NAMES = ("br-a", "br-b", "net1", "enp6s0.10")
PARENTS = ("enp6s0", "eth9")
PORTS = ("eth1", "eth2")


@st.composite
def networks(draw, index: int) -> Network:
    kind = draw(st.sampled_from(("routed", "bridge", "vlan", "vxlan")))
    name = draw(st.sampled_from(NAMES))
    iface = draw(st.sampled_from(LINK_NAMES))
    subnets: Tuple[Subnet, ...] = ()
    if kind == "routed" or draw(st.booleans()):
        subnets = (Subnet(f"10.{index}.0.0/24", f"10.{index}.0.1", 4),)
        if draw(st.booleans()):
            subnets += (Subnet(f"fd00:{index}::/64", f"fd00:{index}::1", 6),)
    dhcp = dns = None
    if subnets and draw(st.booleans()):
        dhcp = Dhcp(ranges=(DhcpRange(f"10.{index}.0.100", f"10.{index}.0.200", 4),))
    if subnets and draw(st.booleans()):
        dns = Dns(zones=(f"{name}.lan",))
    fields = dict(
        name=name,
        type=kind,
        iface=iface,
        mtu=draw(st.sampled_from((None, 1400, 9000))),
        subnets=subnets,
        dhcp=dhcp,
        dns=dns,
        masq_out="enp6s0" if subnets and draw(st.booleans()) else None,
    )
    if kind == "vlan":
        fields.update(vlan=draw(st.sampled_from((10, 20))), parent=draw(st.sampled_from(PARENTS)))
        return Network(**fields)
    filtering = draw(st.booleans())
    fields.update(
        stp=draw(st.booleans()),
        vlan_filtering=filtering,
        vids=tuple(draw(st.lists(st.sampled_from((PortRange(1, 3), PortRange(10, 12), PortRange(20, 20))),
                                 unique=True, max_size=2))) if filtering else (),
        ports=tuple(sorted(draw(st.sets(st.sampled_from(PORTS), max_size=2)))),
    )
    if kind == "bridge" and draw(st.booleans()):
        vlan, parent = draw(st.sampled_from((10, 20))), draw(st.sampled_from(PARENTS))
        fields.update(vlan=vlan, parent=parent, vlan_iface=f"{parent}.{vlan}")
    if kind == "vxlan":
        vni = draw(st.sampled_from((100, 200)))
        fields.update(
            vni=vni,
            vxlan_iface=f"vx{vni}",
            peers=tuple(sorted(draw(st.sets(st.sampled_from(("10.0.0.11", "10.0.0.12", "10.0.0.13")))))),
            local=draw(st.sampled_from((None, "10.0.0.10"))),
            dev=draw(st.sampled_from((None, "enp6s0"))),
            dstport=draw(st.sampled_from((4789, 4790))),
            learning=draw(st.booleans()),
        )
    return Network(**fields)


def link_names(network: Network) -> List[str]:
    return [name for name in (network.iface, network.vlan_iface, network.vxlan_iface) if name]


@st.composite
def topologies(draw) -> Topology:
    """Valid topologies: unique network names, link names, ports and VNIs (as the validator ensures)."""
    chosen: List[Network] = []
    used_names: Set[str] = set(FOREIGN_LINKS)
    used_ports: Set[str] = set()
    for index in range(draw(st.integers(0, 4))):
        network = draw(networks(index))
        names = link_names(network)
        if (network.name in {other.name for other in chosen} or used_names & set(names) or len(set(names)) < len(names)
                or used_ports & set(network.ports)
                or network.vni in {other.vni for other in chosen if other.vni is not None}):
            continue
        used_names.update(names)
        used_ports.update(network.ports)
        chosen.append(network)
    return Topology(1, (), Management(), (), tuple(sorted(chosen, key=lambda network: network.name)))


def desired_for(topology: Topology) -> HostState:
    ruleset = "table inet ghostwarden {\n" + "".join(f"  # {n.name}\n" for n in topology.networks) + "}\n"
    return desired_state(topology, ruleset=ruleset, dnsmasq_files=render_dnsmasq(topology))


# --- checks --------------------------------------------------------------------------------------


def owned_part(state: HostState, want: HostState) -> HostState:
    """The owned objects of ``state``; link attributes the desired state leaves alone (an MTU it
    no longer sets) are not compared."""
    wanted_keys = {link.name: {key for key, _value in link.attrs} | {"master"} for link in want.links}
    return HostState(
        links=tuple(
            dataclasses.replace(
                link, attrs={key: value for key, value in link.attrs if key in wanted_keys.get(link.name, ())}
            )
            for link in state.links
            if link.owned
        ),
        bridge_vlans=state.bridge_vlans,
        addresses=tuple(address for address in state.addresses if address.owned),
        fdb=tuple(entry for entry in state.fdb if entry.owned),
        enslavements=tuple(item for item in state.enslavements if item.owned),
        ruleset=state.ruleset,
        dnsmasq_files=state.dnsmasq_files,
    )


def foreign_part(state: HostState) -> tuple:
    return (
        sorted((link.name, link.kind) for link in state.links if not link.owned),
        sorted(address.key for address in state.addresses if not address.owned and not address.link_local),
        sorted((item.port, item.master) for item in state.enslavements if not item.owned),
    )


def converge(kernel: Kernel, want: HostState) -> List[Operation]:
    before = kernel.observe()
    operations = plan(want, before)
    # Deterministic whatever the order or path of the observed state.
    assert plan(want, HostState.from_dict(json.loads(json.dumps(before.to_dict())))) == operations
    kernel.apply(operations)
    after = kernel.observe()
    assert plan(want, after) == [], [str(operation) for operation in plan(want, after)]
    assert owned_part(after, want) == dataclasses.replace(want, sysctls=()), "owned objects differ from the desired state"
    assert dict(after.sysctls).items() >= dict(want.sysctls).items()
    assert foreign_part(after) == foreign_part(before)
    return operations


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=topologies(), second=topologies())
def test_plans_apply_cleanly_and_reach_a_fixed_point(first, second):
    kernel = Kernel()
    converge(kernel, desired_for(first))
    converge(kernel, desired_for(second))
    converge(kernel, desired_for(first))
    # Tearing down leaves only what was there before.
    converge(kernel, HostState())
    assert foreign_part(kernel.observe()) == foreign_part(Kernel().observe())
    assert not [link for link in kernel.observe().links if link.owned]


DRIFTS = ("down", "mtu", "unmaster", "drop_address", "drop_fdb", "release_port", "delete_link", "ruleset", "file",
          "stray_address", "vlan")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topology=topologies(), drifts=st.lists(st.tuples(st.sampled_from(DRIFTS), st.integers(0, 50)), max_size=4))
def test_drift_is_repaired(topology, drifts):
    kernel = Kernel()
    want = desired_for(topology)
    converge(kernel, want)
    owned_links = sorted(name for name in kernel.links if kernel.owned(name))
    for drift, pick in drifts:
        if drift == "ruleset":
            kernel.ruleset = (kernel.ruleset or "") + "# edited\n"
            continue
        if drift == "file" and kernel.files:
            path = sorted(kernel.files)[pick % len(kernel.files)]
            kernel.files[path] += "# edited\n"
            continue
        owned_links = sorted(name for name in kernel.links if kernel.owned(name))
        if not owned_links:
            continue
        name = owned_links[pick % len(owned_links)]
        attrs = kernel.links[name]["attrs"]
        if drift == "down":
            attrs["state"] = "down"
        elif drift == "mtu":
            attrs["mtu"] = 1280
        elif drift == "unmaster" and "master" in attrs:
            kernel.enslave(name, None)
        elif drift == "drop_address":
            kernel.addresses = {key: owned for key, owned in kernel.addresses.items() if not (owned and key[0] == name)}
        elif drift == "drop_fdb":
            kernel.fdb = {key: owned for key, owned in kernel.fdb.items() if key[0] != name}
        elif drift == "release_port":
            for port in sorted(kernel.owned_ports):
                if kernel.links[port]["attrs"].get("master") == name:
                    kernel.enslave(port, None)
        elif drift == "delete_link":
            kernel.remove_link(name)
        elif drift == "stray_address":
            kernel.addresses[(name, f"172.16.{pick}.1/24")] = True
        elif drift == "vlan" and kernel.vlans.get(name):
            kernel.vlans[name].pop(min(kernel.vlans[name]))
            kernel.vlans[name][4000] = (False, False)
    converge(kernel, want)
