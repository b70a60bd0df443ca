# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One bad input per validation rule of ``parse_topology``, asserting the exact issues.

Each case expects the complete list of issues (path and message), so a rule that
stops firing, fires twice, or drags a consequential error along fails its case.
"""

from __future__ import annotations

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

KNOWN_ROUTED_KEYS = ("type, iface, mtu, policy_profile, cidr, gw_ip, cidr6, gw_ip6, dhcp, dns, masq_out, forwards, "
                     "stp, vlan_filtering, vids, ports, adopt_port_addresses, vlan, parent, vlan_iface")
IFNAME_RULE = "(1-15 characters of A-Z a-z 0-9 _ . @ + -, not starting with . @ + or -)"
BUILTIN_NAMES = "l2-lan, proxmox-backup, proxmox-cluster, proxmox-dmz, proxmox-storage, public-web, routed-tight"


def routed(**fields: object) -> dict:
    network = {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1"}
    network.update(fields)
    return network


def second(**fields: object) -> dict:
    return routed(cidr="10.34.0.0/24", gw_ip="10.34.0.1", **fields)


def topology(networks: dict | None = None, **top: object) -> dict:
    data: dict = {"version": 1, "interfaces": {"uplink": "enp6s0"},
                  "networks": {"n": routed()} if networks is None else networks}
    data.update(top)
    return data


def forward(public: str, dst: str = "10.33.0.10:22", **fields: object) -> dict:
    return {"public": public, "dst": dst, **fields}


def host(mac: str, ip: str, **fields: object) -> dict:
    return {"mac": mac, "ip": ip, **fields}


CASES = [
    # -- top level -----------------------------------------------------------------------------
    ("topology-not-a-mapping", [], ["expected a mapping (the topology), got [] (a list)"]),
    ("topology-null", None, ["expected a mapping (the topology), got null (null)"]),
    ("unknown-top-level-key", topology(netwroks={}),
     ["netwroks: unknown key 'netwroks' (known keys: version, interfaces, management, policies, networks)"]),
    ("version-unsupported", topology(version=2), ["version: unsupported version 2 (supported: 1)"]),
    ("version-bool-is-not-int", topology(version=True), ["version: expected an integer, got true (a boolean)"]),
    ("version-string", topology(version="1"), ["version: expected an integer, got '1' (a string)"]),
    ("networks-not-a-mapping", topology(networks=[routed()]),
     ["networks: expected a mapping, got [{'cidr': '10.33.0.0/24', 'gw_ip': '10.33.0.1', 'type': 'routed'}] (a list)"]),
    # -- interfaces ----------------------------------------------------------------------------
    ("interfaces-not-a-mapping", topology({"n": {"type": "bridge", "vlan": 5}}, interfaces=["eth0"]),
     ["interfaces: expected a mapping, got ['eth0'] (a list)"]),
    ("interface-name-space", topology(interfaces={"uplink": "bad name"}),
     [f"interfaces.uplink: 'bad name' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-16-bytes", topology(interfaces={"uplink": "a" * 16}),
     [f"interfaces.uplink: 'aaaaaaaaaaaaaaaa' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-trailing-newline", topology(interfaces={"uplink": "eth0\n"}),
     [f"interfaces.uplink: 'eth0\\n' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-slash", topology(interfaces={"uplink": "eth0/1"}),
     [f"interfaces.uplink: 'eth0/1' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-colon", topology(interfaces={"uplink": "eth0:1"}),
     [f"interfaces.uplink: 'eth0:1' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-quote", topology(interfaces={"uplink": 'eth"0'}),
     [f"interfaces.uplink: 'eth\"0' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-dotdot", topology(interfaces={"uplink": ".."}),
     [f"interfaces.uplink: '..' is not a valid interface name {IFNAME_RULE}"]),
    ("interface-name-reserved", topology(interfaces={"uplink": "all"}),
     ["interfaces.uplink: 'all' is a reserved interface name"]),
    ("interface-name-not-a-string", topology(interfaces={"uplink": 3}),
     ["interfaces.uplink: expected an interface name, got 3 (an integer)"]),
    ("interface-key-invalid", topology(interfaces={"1x": "eth0"}),
     ["interfaces.1x: interface key '1x' must match ^[A-Za-z][A-Za-z0-9_-]{0,31}$"]),
    ("reference-to-an-invalid-interfaces-key", topology({"n": routed(masq_out="1x")}, interfaces={"1x": "eth0"}),
     ["interfaces.1x: interface key '1x' must match ^[A-Za-z][A-Za-z0-9_-]{0,31}$"]),
    ("interface-key-ambiguous", topology(interfaces={"a": "b", "b": "c"}),
     ["interfaces.a: 'b' is also a key of interfaces (meaning c); references to it would be ambiguous"]),
    # -- management ----------------------------------------------------------------------------
    ("management-unknown-key", topology(management={"allow": []}),
     ["management.allow: unknown key 'allow' (known keys: allow_from, ports, enforce)"]),
    ("management-cidr-syntax", topology(management={"allow_from": ["192.0.2.0/24x"]}),
     ["management.allow_from[0]: '192.0.2.0/24x' is not an IP address or CIDR (e.g. 192.0.2.10 or 192.0.2.0/24)"]),
    ("management-cidr-prefix", topology(management={"allow_from": ["10.0.0.0/33"]}),
     ["management.allow_from[0]: '10.0.0.0/33' has prefix /33, out of range 0-32 for IPv4"]),
    ("management-cidr-host-bits", topology(management={"allow_from": ["192.0.2.1/24"]}),
     ["management.allow_from[0]: '192.0.2.1/24' has host bits set; the network address is 192.0.2.0/24"]),
    ("management-cidr-overlap", topology(management={"allow_from": ["10.1.0.0/16", "10.0.0.0/8"]}),
     ["management.allow_from[0]: 10.1.0.0/16 overlaps 10.0.0.0/8 at management.allow_from[1]"]),
    ("management-port-range", topology(management={"ports": [70000]}),
     ["management.ports[0]: port 70000 is out of range 1-65535"]),
    ("management-port-reversed", topology(management={"ports": ["30-20"]}),
     ["management.ports[0]: port range '30-20' starts above its end"]),
    ("management-port-bool", topology(management={"ports": [True]}),
     ["management.ports[0]: expected a port or a range \"A-B\", got true (a boolean)"]),
    ("management-port-overlap", topology(management={"ports": [22, "20-25"]}),
     ["management.ports[0]: port 22 overlaps port 20-25 at management.ports[1]"]),
    ("management-enforce-string", topology(management={"enforce": "yes"}),
     ["management.enforce: expected a boolean (true or false), got 'yes' (a string)"]),
    # -- network names and types ---------------------------------------------------------------
    ("network-name-digit-first", topology({"1bad": routed()}),
     ["networks.1bad: network name '1bad' must match ^[A-Za-z][A-Za-z0-9_-]{0,31}$ "
      "(it becomes nft chain and file names)"]),
    ("network-name-dot", topology({"a.b": routed()}),
     ["networks['a.b']: network name 'a.b' must match ^[A-Za-z][A-Za-z0-9_-]{0,31}$ (it becomes nft chain and file names)"]),
    ("network-name-33-chars", topology({"a" * 33: routed()}),
     [f"networks.{'a' * 33}: network name '{'a' * 33}' must match ^[A-Za-z][A-Za-z0-9_-]{{0,31}}$ "
      "(it becomes nft chain and file names)"]),
    ("network-not-a-mapping", topology({"n": "routed"}), ["networks.n: expected a mapping, got 'routed' (a string)"]),
    ("network-type-missing", topology({"n": {"cidr": "10.0.0.0/24"}}),
     ["networks.n.type: required: one of routed, bridge, vlan, vxlan"]),
    ("network-type-unknown", topology({"n": {"type": "mesh"}}),
     ["networks.n.type: 'mesh' is not a network type (routed, bridge, vlan, vxlan)"]),
    ("network-type-capitalised", topology({"n": routed(type="Routed")}),
     ["networks.n.type: 'Routed' is not a network type (routed, bridge, vlan, vxlan)"]),
    ("network-unknown-key", topology({"n": routed(cdir="10.0.0.0/24")}),
     [f"networks.n.cdir: unknown key 'cdir' (known keys: {KNOWN_ROUTED_KEYS})"]),
    ("network-key-of-another-type", topology({"n": routed(vni=5)}),
     ["networks.n.vni: key 'vni' does not apply to a network of type routed"]),
    ("network-non-string-key", topology({"n": {**routed(), 1: 1}}),
     [f"networks.n[1]: unknown key 1 (known keys: {KNOWN_ROUTED_KEYS})"]),
    ("mtu-range", topology({"n": routed(mtu=20)}), ["networks.n.mtu: MTU 20 is out of range 68-65535"]),
    ("mtu-string", topology({"n": routed(mtu="1500")}), ["networks.n.mtu: expected an integer, got '1500' (a string)"]),
    ("mtu-bool", topology({"n": routed(mtu=True)}), ["networks.n.mtu: expected an integer, got true (a boolean)"]),
    ("mtu-float", topology({"n": routed(mtu=1500.0)}), ["networks.n.mtu: expected an integer, got 1500.0 (a number)"]),
    # -- addressing ----------------------------------------------------------------------------
    ("routed-needs-cidr-and-gw", topology({"n": {"type": "routed"}}),
     ["networks.n.cidr: required (the network's subnet)", "networks.n.gw_ip: required (the network's address)"]),
    ("cidr-without-prefix", topology({"n": routed(cidr="10.33.0.0")}),
     ["networks.n.cidr: '10.33.0.0' is not a CIDR (expected ADDRESS/PREFIX, e.g. 10.33.0.0/24)"]),
    ("cidr-netmask-form", topology({"n": routed(cidr="10.33.0.0/255.255.255.0")}),
     ["networks.n.cidr: '10.33.0.0/255.255.255.0' is not a CIDR (expected ADDRESS/PREFIX, e.g. 10.33.0.0/24)"]),
    ("cidr-short-form", topology({"n": routed(cidr="10.33/16")}),
     ["networks.n.cidr: '10.33/16' is not a CIDR (expected ADDRESS/PREFIX, e.g. 10.33.0.0/24)"]),
    ("cidr-prefix-out-of-range", topology({"n": routed(cidr="10.33.0.0/33")}),
     ["networks.n.cidr: '10.33.0.0/33' has prefix /33, out of range 0-32 for IPv4"]),
    ("cidr-host-bits", topology({"n": routed(cidr="10.33.0.5/24")}),
     ["networks.n.cidr: '10.33.0.5/24' has host bits set; the network address is 10.33.0.0/24"]),
    ("cidr-v4-too-small", topology({"n": routed(cidr="10.33.0.0/31")}),
     ["networks.n.cidr: 10.33.0.0/31 is too small for a network with a gateway and hosts "
      "(the prefix must be /30 or shorter)"]),
    ("cidr-v6-too-small", topology({"n": routed(cidr="fd00::/127", gw_ip="fd00::1")}),
     ["networks.n.cidr: fd00::/127 is too small for a network with a gateway and hosts "
      "(the prefix must be /126 or shorter)"]),
    ("cidr-loopback", topology({"n": routed(cidr="127.1.0.0/24", gw_ip="127.1.0.1")}),
     ["networks.n.cidr: 127.1.0.0/24 overlaps the loopback range 127.0.0.0/8, which no network can use"]),
    ("cidr-multicast", topology({"n": routed(cidr="ff02::/64", gw_ip="ff02::1")}),
     ["networks.n.cidr: ff02::/64 overlaps the multicast range ff00::/8, which no network can use"]),
    ("gw-outside-cidr", topology({"n": routed(gw_ip="10.34.0.1")}),
     ["networks.n.gw_ip: 10.34.0.1 is outside cidr 10.33.0.0/24"]),
    ("gw-network-address", topology({"n": routed(gw_ip="10.33.0.0")}),
     ["networks.n.gw_ip: 10.33.0.0 is the network address of 10.33.0.0/24, not a host address"]),
    ("gw-broadcast-address", topology({"n": routed(gw_ip="10.33.0.255")}),
     ["networks.n.gw_ip: 10.33.0.255 is the broadcast address of 10.33.0.0/24, not a host address"]),
    ("gw-v6-subnet-router-anycast", topology({"n": routed(cidr="fd00::/64", gw_ip="fd00::")}),
     ["networks.n.gw_ip: fd00:: is the subnet-router anycast address of fd00::/64"]),
    ("gw-family-mismatch", topology({"n": routed(gw_ip="fd00::1")}),
     ["networks.n.gw_ip: fd00::1 is IPv6 but cidr 10.33.0.0/24 is IPv4"]),
    ("gw-not-an-address", topology({"n": routed(gw_ip="10.33.0.1/24")}),
     ["networks.n.gw_ip: '10.33.0.1/24' is not an IP address"]),
    ("gw-leading-zero", topology({"n": routed(gw_ip="10.33.0.01")}),
     ["networks.n.gw_ip: '10.33.0.01' is not an IP address"]),
    ("cidr6-not-v6", topology({"n": routed(cidr6="10.1.0.0/24", gw_ip6="10.1.0.1")}),
     ["networks.n.cidr6: 10.1.0.0/24 is not an IPv6 CIDR"]),
    ("cidr6-next-to-v6-cidr",
     topology({"n": routed(cidr="fd00::/64", gw_ip="fd00::1", cidr6="fd01::/64", gw_ip6="fd01::1")}),
     ["networks.n.cidr6: cidr6 adds IPv6 to an IPv4 cidr, but cidr is already IPv6"]),
    ("cidr6-without-cidr", topology({"n": {"type": "bridge", "cidr6": "fd00::/64", "gw_ip6": "fd00::1"}}),
     ["networks.n.cidr6: cidr6 adds IPv6 to an IPv4 network: set cidr and gw_ip first"]),
    ("gw_ip6-missing", topology({"n": routed(cidr6="fd00::/64")}), ["networks.n.gw_ip6: required (the network's address)"]),
    ("cidr-overlap-between-networks", topology({"a": routed(), "b": routed(cidr="10.33.0.0/16", gw_ip="10.33.1.1")}),
     ["networks.b.cidr: 10.33.0.0/16 overlaps 10.33.0.0/24 of network 'a'"]),
    ("cidr6-overlap-between-networks",
     topology({"a": routed(cidr6="fd00::/64", gw_ip6="fd00::1"), "b": second(cidr6="fd00::/48", gw_ip6="fd00:0:0:1::1")}),
     ["networks.b.cidr6: fd00::/48 overlaps fd00::/64 of network 'a'"]),
    # -- DHCP ----------------------------------------------------------------------------------
    ("dhcp-string", topology({"n": routed(dhcp="yes")}),
     ["networks.n.dhcp: expected a boolean or a mapping, got 'yes' (a string)"]),
    ("dhcp-without-subnet", topology({"n": {"type": "bridge", "dhcp": True}}),
     ["networks.n.dhcp: DHCP needs an address on the network: set cidr and gw_ip"]),
    ("dhcp-unknown-key", topology({"n": routed(dhcp={"ranges": []})}),
     ["networks.n.dhcp.ranges: unknown key 'ranges' (known keys: enabled, range, range6, lease_time, hosts)"]),
    ("dhcp-enabled-string", topology({"n": routed(dhcp={"enabled": "true"})}),
     ["networks.n.dhcp.enabled: expected a boolean (true or false), got 'true' (a string)"]),
    ("dhcp-range-outside", topology({"n": routed(dhcp={"range": "10.33.1.10-10.33.1.20"})}),
     ["networks.n.dhcp.range: 10.33.1.10 in range '10.33.1.10-10.33.1.20' is outside the subnet 10.33.0.0/24"]),
    ("dhcp-range-broadcast", topology({"n": routed(dhcp={"range": "10.33.0.10-10.33.0.255"})}),
     ["networks.n.dhcp.range: 10.33.0.255 in range '10.33.0.10-10.33.0.255' is the broadcast address of 10.33.0.0/24"]),
    ("dhcp-range-contains-gateway", topology({"n": routed(dhcp={"range": "10.33.0.1-10.33.0.20"})}),
     ["networks.n.dhcp.range: range '10.33.0.1-10.33.0.20' contains the gateway address 10.33.0.1"]),
    ("dhcp-range-reversed", topology({"n": routed(dhcp={"range": "10.33.0.50-10.33.0.20"})}),
     ["networks.n.dhcp.range: range '10.33.0.50-10.33.0.20' starts above its end"]),
    ("dhcp-range-syntax", topology({"n": routed(dhcp={"range": "10.33.0.50"})}),
     ["networks.n.dhcp.range: expected \"START-END\", got '10.33.0.50' (a string)"]),
    ("dhcp-range-family", topology({"n": routed(dhcp={"range": "fd00::10-fd00::20"})}),
     ["networks.n.dhcp.range: 'fd00::10' is not an IPv4 address", "networks.n.dhcp.range: 'fd00::20' is not an IPv4 address"]),
    ("dhcp-range6-without-v6-subnet", topology({"n": routed(dhcp={"range6": "fd00::10-fd00::20"})}),
     ["networks.n.dhcp.range6: 'fd00::10-fd00::20' given, but the network has no IPv6 subnet"]),
    ("dhcp-lease-time-syntax", topology({"n": routed(dhcp={"lease_time": "12x"})}),
     ["networks.n.dhcp.lease_time: '12x' is not a lease time (seconds, or a number with m, h, d or w, or \"infinite\")"]),
    ("dhcp-lease-time-injection", topology({"n": routed(dhcp={"lease_time": "12h\ndhcp-option=3"})}),
     ["networks.n.dhcp.lease_time: '12h\\ndhcp-option=3' is not a lease time (seconds, or a number with m, h, d or w, "
      "or \"infinite\")"]),
    ("dhcp-lease-time-below-minimum", topology({"n": routed(dhcp={"lease_time": "60"})}),
     ["networks.n.dhcp.lease_time: lease time '60' is shorter than dnsmasq's minimum of 2 minutes"]),
    ("dhcp-host-mac-syntax", topology({"n": routed(dhcp={"hosts": [host("zz:00:00:00:00:01", "10.33.0.5")]})}),
     ["networks.n.dhcp.hosts[0].mac: 'zz:00:00:00:00:01' is not a MAC address (six hex octets separated by : or -)"]),
    ("dhcp-host-mac-mixed-separators", topology({"n": routed(dhcp={"hosts": [host("52:54-00:00:00:01", "10.33.0.5")]})}),
     ["networks.n.dhcp.hosts[0].mac: '52:54-00:00:00:01' is not a MAC address (six hex octets separated by : or -)"]),
    ("dhcp-host-mac-multicast", topology({"n": routed(dhcp={"hosts": [host("01:00:5e:00:00:01", "10.33.0.5")]})}),
     ["networks.n.dhcp.hosts[0].mac: '01:00:5e:00:00:01' is a multicast MAC address, not a host's"]),
    ("dhcp-host-mac-missing", topology({"n": routed(dhcp={"hosts": [{"ip": "10.33.0.5"}]})}),
     ["networks.n.dhcp.hosts[0].mac: required (the client's MAC address)"]),
    ("dhcp-host-ip-missing", topology({"n": routed(dhcp={"hosts": [{"mac": "52:54:00:00:00:01"}]})}),
     ["networks.n.dhcp.hosts[0].ip: required (the address this host always gets)"]),
    ("dhcp-host-ip-outside", topology({"n": routed(dhcp={"hosts": [host("52:54:00:00:00:01", "10.34.0.5")]})}),
     ["networks.n.dhcp.hosts[0].ip: 10.34.0.5 is outside the subnet 10.33.0.0/24"]),
    ("dhcp-host-ip-gateway", topology({"n": routed(dhcp={"hosts": [host("52:54:00:00:00:01", "10.33.0.1")]})}),
     ["networks.n.dhcp.hosts[0].ip: 10.33.0.1 is the gateway address"]),
    ("dhcp-host-ip-duplicate", topology({"n": routed(dhcp={"hosts": [
        host("52:54:00:00:00:01", "10.33.0.5"), host("52:54:00:00:00:02", "10.33.0.5")]})}),
     ["networks.n.dhcp.hosts[1].ip: 10.33.0.5 is already given to networks.n.dhcp.hosts[0]"]),
    ("dhcp-host-mac-duplicate", topology({"n": routed(dhcp={"hosts": [
        host("52:54:00:00:00:01", "10.33.0.5"), host("52-54-00-00-00-01", "10.33.0.6")]})}),
     ["networks.n.dhcp.hosts[1].mac: 52:54:00:00:00:01 already has an IPv4 lease at networks.n.dhcp.hosts[0]"]),
    ("dhcp-host-hostname-two-labels", topology({"n": routed(dhcp={"hosts": [
        host("52:54:00:00:00:01", "10.33.0.5", hostname="web.dev")]})}),
     ["networks.n.dhcp.hosts[0].hostname: 'web.dev' is not a valid host name (labels of 1-63 letters, digits and "
      "inner hyphens)"]),
    ("dhcp-host-hostname-duplicate", topology({"n": routed(dhcp={"hosts": [
        host("52:54:00:00:00:01", "10.33.0.5", hostname="web"), host("52:54:00:00:00:02", "10.33.0.6", hostname="web")]})}),
     ["networks.n.dhcp.hosts[1].hostname: web is already the name of another MAC address at networks.n.dhcp.hosts[0]"]),
    ("dhcp-host-unknown-key", topology({"n": routed(dhcp={"hosts": [host("52:54:00:00:00:01", "10.33.0.5", name="x")]})}),
     ["networks.n.dhcp.hosts[0].name: unknown key 'name' (known keys: mac, ip, hostname)"]),
    # -- DNS -----------------------------------------------------------------------------------
    ("dns-string", topology({"n": routed(dns="true")}),
     ["networks.n.dns: expected a boolean or a mapping, got 'true' (a string)"]),
    ("dns-without-subnet", topology({"n": {"type": "bridge", "dns": True}}),
     ["networks.n.dns: DNS needs an address on the network to listen on: set cidr and gw_ip"]),
    ("dns-zone-invalid", topology({"n": routed(dns={"zones": ["bad_zone!"]})}),
     ["networks.n.dns.zones[0]: 'bad_zone!' is not a valid DNS name (labels of 1-63 letters, digits and inner hyphens, "
      "separated by dots, at most 253 characters)"]),
    ("dns-zone-label-hyphen", topology({"n": routed(dns={"zones": ["-dev.lan"]})}),
     ["networks.n.dns.zones[0]: '-dev.lan' is not a valid DNS name (labels of 1-63 letters, digits and inner hyphens, "
      "separated by dots, at most 253 characters)"]),
    ("dns-zone-too-long", topology({"n": routed(dns={"zones": [".".join(["a" * 60] * 5)]})}),
     [f"networks.n.dns.zones[0]: '{'a' * 32}...{'a' * 33}' is not a valid DNS name (labels of 1-63 letters, digits "
      "and inner hyphens, separated by dots, at most 253 characters)"]),
    ("dns-zone-duplicate", topology({"n": routed(dns={"zones": ["dev.lan", "DEV.lan."]})}),
     ["networks.n.dns.zones[1]: zone dev.lan is already listed at networks.n.dns.zones[0]"]),
    ("dns-record-ip", topology({"n": routed(dns={"records": {"web.dev.lan": "10.33.0.300"}})}),
     ["networks.n.dns.records['web.dev.lan']: '10.33.0.300' is not an IP address"]),
    ("dns-record-name", topology({"n": routed(dns={"records": {"web dev": "10.33.0.3"}})}),
     ["networks.n.dns.records['web dev']: 'web dev' is not a valid DNS name (labels of 1-63 letters, digits and inner "
      "hyphens, separated by dots, at most 253 characters)"]),
    ("dns-record-list-missing-name", topology({"n": routed(dns={"records": [{"ip": "10.33.0.3"}]})}),
     ["networks.n.dns.records[0].name: required"]),
    ("dns-record-duplicate", topology({"n": routed(dns={"records": [
        {"name": "a.dev.lan", "ip": "10.33.0.3"}, {"name": "A.dev.lan", "ip": "10.33.0.3"}]})}),
     ["networks.n.dns.records[1].name: record a.dev.lan -> 10.33.0.3 is listed twice"]),
    ("dns-records-wrong-type", topology({"n": routed(dns={"records": "a=1"})}),
     ["networks.n.dns.records: expected a mapping of name to IP or a list of {name, ip}, got 'a=1' (a string)"]),
    ("dns-upstream-multicast", topology({"n": routed(dns={"upstream": ["224.0.0.1"]})}),
     ["networks.n.dns.upstream[0]: '224.0.0.1' is a multicast address, not a unicast address"]),
    # -- masquerade and interface references ----------------------------------------------------
    ("masq-out-unresolvable", topology({"n": routed(masq_out="no such key")}),
     ["networks.n.masq_out: 'no such key' is neither a key of interfaces (uplink) nor a valid interface name"]),
    ("masq-out-created-link", topology({"n": routed(masq_out="gw-n")}),
     ["networks.n.masq_out: 'gw-n' is a link this topology creates (networks.n.iface); it must name an existing link"]),
    ("masq-out-without-subnet", topology({"n": {"type": "bridge", "masq_out": "uplink"}}),
     ["networks.n.masq_out: masquerading needs an address on the network: set cidr and gw_ip"]),
    ("key-with-newline-stays-one-line", topology({"n": routed(**{"x\n": 1})}),
     [f"networks.n['x\\n']: unknown key 'x\\n' (known keys: {KNOWN_ROUTED_KEYS})"]),
    ("reference-to-an-invalid-interfaces-entry",
     topology({"n": {"type": "vlan", "vlan": 5, "parent": "uplink"}}, interfaces={"uplink": None}),
     ["interfaces.uplink: expected an interface name, got null (null)"]),
    ("interfaces-value-created-link", topology({"a": {"type": "bridge", "iface": "br0"}}, interfaces={"uplink": "br0"}),
     ["interfaces.uplink: 'br0' is a link this topology creates (networks.a.iface); it must name an existing link"]),
    # -- forwards ------------------------------------------------------------------------------
    ("forward-port-out-of-range", topology({"nat_dev": routed(forwards=[
        forward(":4022/tcp"), forward(":4023/tcp"), forward("0.0.0.0:70000/tcp")])}),
     ["networks.nat_dev.forwards[2].public: port 70000 is out of range 1-65535"]),
    ("forward-public-shape", topology({"n": routed(forwards=[forward("4022/tcp")])}),
     ["networks.n.forwards[0].public: '4022/tcp' is not \"IP:PORT[-PORT]/PROTO\" (e.g. \"0.0.0.0:4022/tcp\"; "
      "IPv6 in brackets, \"[::]:4022/tcp\")"]),
    ("forward-public-v6-without-brackets", topology({"n": routed(forwards=[forward("fd00::1:4022/tcp")])}),
     ["networks.n.forwards[0].public: 'fd00::1:4022/tcp' is not \"IP:PORT[-PORT]/PROTO\" (e.g. \"0.0.0.0:4022/tcp\"; "
      "IPv6 in brackets, \"[::]:4022/tcp\")"]),
    ("forward-protocol", topology({"n": routed(forwards=[forward("0.0.0.0:4022/icmp")])}),
     ["networks.n.forwards[0].public: protocol 'icmp' in '0.0.0.0:4022/icmp' is not one of tcp, udp, sctp"]),
    ("forward-protocol-upper-case", topology({"n": routed(forwards=[forward("0.0.0.0:4022/TCP")])}),
     ["networks.n.forwards[0].public: protocol 'TCP' in '0.0.0.0:4022/TCP' is not one of tcp, udp, sctp"]),
    ("forward-port-range-reversed", topology({"n": routed(forwards=[forward("0.0.0.0:30-20/tcp", "10.33.0.10")])}),
     ["networks.n.forwards[0].public: port range '30-20' starts above its end"]),
    ("forward-port-zero", topology({"n": routed(forwards=[forward("0.0.0.0:0/tcp")])}),
     ["networks.n.forwards[0].public: port 0 is out of range 1-65535"]),
    ("forward-public-ip-syntax", topology({"n": routed(forwards=[forward("300.1.1.1:4022/tcp")])}),
     ["networks.n.forwards[0].public: '300.1.1.1' is not an IPv4 address"]),
    ("forward-public-ip-multicast", topology({"n": routed(forwards=[forward("224.0.0.1:4022/tcp")])}),
     ["networks.n.forwards[0].public: 224.0.0.1 is a multicast address, not a local unicast address"]),
    ("forward-dst-outside", topology({"n": routed(forwards=[forward(":4022/tcp", "10.34.0.10:22")])}),
     ["networks.n.forwards[0].dst: 10.34.0.10 is outside the subnet 10.33.0.0/24"]),
    ("forward-dst-gateway", topology({"n": routed(forwards=[forward(":4022/tcp", "10.33.0.1:22")])}),
     ["networks.n.forwards[0].dst: 10.33.0.1 is the gateway address"]),
    ("forward-dst-network-address", topology({"n": routed(forwards=[forward(":4022/tcp", "10.33.0.0:22")])}),
     ["networks.n.forwards[0].dst: 10.33.0.0 is the network address of 10.33.0.0/24"]),
    ("forward-dst-broadcast", topology({"n": routed(forwards=[forward(":4022/tcp", "10.33.0.255:22")])}),
     ["networks.n.forwards[0].dst: 10.33.0.255 is the broadcast address of 10.33.0.0/24"]),
    ("forward-dst-port", topology({"n": routed(forwards=[forward(":4022/tcp", "10.33.0.10:65536")])}),
     ["networks.n.forwards[0].dst: port 65536 is out of range 1-65535"]),
    ("forward-dst-not-a-string", topology({"n": routed(forwards=[forward(":4022/tcp", 22)])}),
     ["networks.n.forwards[0].dst: expected \"IP[:PORT[-PORT]]\", got 22 (an integer)"]),
    ("forward-family-mismatch", topology({"n": routed(forwards=[forward("[::]:4022/tcp")])}),
     ["networks.n.forwards[0].dst: 10.33.0.10 is IPv4, the public side is IPv6"]),
    ("forward-dst-family-without-subnet", topology({"n": routed(forwards=[forward(":4022/tcp", "[fd00::10]:22")])}),
     ["networks.n.forwards[0].dst: fd00::10 is IPv6, the network has no IPv6 subnet"]),
    ("forward-port-range-sizes", topology({"n": routed(forwards=[forward(":4000-4010/tcp", "10.33.0.10:22-23")])}),
     ["networks.n.forwards[0].dst: destination ports 22-23 (2) and public ports 4000-4010 (11) differ in size"]),
    ("forward-duplicate-across-networks", topology({"a": routed(forwards=[forward("0.0.0.0:4022/tcp")]),
                                                   "b": second(forwards=[forward(":4022/tcp", "10.34.0.10:22")])}),
     ["networks.b.forwards[0].public: 0.0.0.0:4022/tcp overlaps 0.0.0.0:4022/tcp at networks.a.forwards[0].public"]),
    ("forward-specific-inside-any-range", topology({
        "a": routed(forwards=[forward("0.0.0.0:4000-4010/tcp", "10.33.0.10")]),
        "b": second(forwards=[forward("198.51.100.7:4005/tcp", "10.34.0.10:22")])}),
     ["networks.b.forwards[0].public: 198.51.100.7:4005/tcp overlaps 0.0.0.0:4000-4010/tcp at "
      "networks.a.forwards[0].public"]),
    ("forward-same-specific-overlapping-ranges", topology({"n": routed(forwards=[
        forward("198.51.100.7:5000-5010/udp", "10.33.0.10"), forward("198.51.100.7:5010-5020/udp", "10.33.0.11")])}),
     ["networks.n.forwards[1].public: 198.51.100.7:5010-5020/udp overlaps 198.51.100.7:5000-5010/udp at "
      "networks.n.forwards[0].public"]),
    ("forward-hairpin-string", topology({"n": routed(forwards=[forward(":4022/tcp", hairpin="yes")])}),
     ["networks.n.forwards[0].hairpin: expected a boolean (true or false), got 'yes' (a string)"]),
    ("forward-comment-quote", topology({"n": routed(forwards=[forward(":4022/tcp", comment='say "hi"')])}),
     ["networks.n.forwards[0].comment: 'say \"hi\"' is not a comment of 1-64 printable ASCII characters without "
      "quotes or backslash"]),
    ("forward-comment-newline", topology({"n": routed(forwards=[forward(":4022/tcp", comment="ssh\n}")])}),
     ["networks.n.forwards[0].comment: 'ssh\\n}' is not a comment of 1-64 printable ASCII characters without "
      "quotes or backslash"]),
    ("forward-comment-65-chars", topology({"n": routed(forwards=[forward(":4022/tcp", comment="x" * 65)])}),
     [f"networks.n.forwards[0].comment: '{'x' * 65}' is not a comment of 1-64 printable ASCII characters without "
      "quotes or backslash"]),
    ("forward-mixed-forms", topology({"n": routed(forwards=[{"public": ":4022/tcp", "dst_ip": "10.33.0.10"}])}),
     ["networks.n.forwards[0]: mixes the short form (public) with the long form (dst_ip); use one"]),
    ("forward-long-form", topology({"n": routed(forwards=[{"protocol": "gre", "port": 0, "dst_ip": "x"}])}),
     ["networks.n.forwards[0].protocol: 'gre' is not one of tcp, udp, sctp",
      "networks.n.forwards[0].port: port 0 is out of range 1-65535",
      "networks.n.forwards[0].dst_ip: 'x' is not an IP address"]),
    ("forward-long-form-sizes", topology({"n": routed(forwards=[
        {"protocol": "udp", "port": "5000-5001", "dst_ip": "10.33.0.10", "dst_port": 6000}])}),
     ["networks.n.forwards[0].dst_port: destination ports 6000 (1) and public ports 5000-5001 (2) differ in size"]),
    ("forward-missing-dst", topology({"n": routed(forwards=[{"public": ":4022/tcp"}])}),
     ["networks.n.forwards[0].dst: required (\"IP[:PORT]\", e.g. \"10.33.0.10:22\")"]),
    ("forwards-without-subnet", topology({"n": {"type": "bridge", "forwards": [forward(":4022/tcp")]}}),
     ["networks.n.forwards: forwards need an address on the network: set cidr and gw_ip"]),
    ("forwards-not-a-list", topology({"n": routed(forwards={"public": ":4022/tcp"})}),
     ["networks.n.forwards: expected a list, got {'public': ':4022/tcp'} (a mapping)"]),
    # -- profiles ------------------------------------------------------------------------------
    ("profile-unknown", topology({"n": routed(policy_profile="tight")}),
     [f"networks.n.policy_profile: unknown profile 'tight' (known: {BUILTIN_NAMES})"]),
    ("profile-invalid-user-profile-reported-once", topology({"n": routed(policy_profile="mine")},
                                                            policies={"mine": {"host_action": "maybe"}}),
     ["policies.mine.host_action: string 'maybe' is not a valid action (expected one of: accept, drop, reject)"]),
    # -- bridge attributes ---------------------------------------------------------------------
    ("stp-string", topology({"n": routed(stp="on")}),
     ["networks.n.stp: expected a boolean (true or false), got 'on' (a string)"]),
    ("vids-without-vlan-filtering", topology({"n": routed(vids=[10])}),
     ["networks.n.vids: VLAN ids on the bridge need vlan_filtering: true"]),
    ("vids-out-of-range", topology({"n": routed(vlan_filtering=True, vids=[4095])}),
     ["networks.n.vids[0]: VLAN id 4095 is out of range 1-4094"]),
    ("vids-overlap", topology({"n": routed(vlan_filtering=True, vids=["10-20", 15])}),
     ["networks.n.vids[1]: VLAN id 15 overlaps VLAN id 10-20 at networks.n.vids[0]"]),
    ("ports-unresolvable", topology({"n": routed(ports=["a b"])}),
     ["networks.n.ports[0]: 'a b' is neither a key of interfaces (uplink) nor a valid interface name"]),
    ("ports-duplicate", topology({"n": routed(ports=["eth1", "eth1"])}),
     ["networks.n.ports[1]: eth1 is already listed at networks.n.ports[0]"]),
    ("ports-in-two-bridges", topology({"a": {"type": "bridge", "ports": ["eth1"]}, "b": {"type": "bridge", "ports": ["eth1"]}}),
     ["networks.b.ports[0]: eth1 is already a port of the bridge at networks.a.ports[0]"]),
    ("ports-created-link", topology({"a": {"type": "bridge", "ports": ["gw-b"]}, "b": {"type": "bridge"}}),
     ["networks.a.ports[0]: 'gw-b' is a link this topology creates (networks.b.iface); it must name an existing link"]),
    # -- VLAN ----------------------------------------------------------------------------------
    ("vlan-zero", topology({"n": {"type": "bridge", "vlan": 0}}), ["networks.n.vlan: VLAN id 0 is out of range 1-4094"]),
    ("vlan-4095", topology({"n": {"type": "bridge", "vlan": 4095}}), ["networks.n.vlan: VLAN id 4095 is out of range 1-4094"]),
    ("vlan-bool", topology({"n": {"type": "bridge", "vlan": True}}), ["networks.n.vlan: expected an integer, got true (a boolean)"]),
    ("vlan-without-parent-or-uplink", topology({"n": {"type": "bridge", "vlan": 20}}, interfaces={}),
     ["networks.n.parent: required with vlan 20: the link that carries the VLAN (no 'uplink' in interfaces to default to)"]),
    ("vlan-parent-created-link", topology({"a": {"type": "bridge", "vlan": 20, "parent": "gw-b"}, "b": {"type": "bridge"}}),
     ["networks.a.parent: 'gw-b' is a link this topology creates (networks.b.iface); it must name an existing link"]),
    ("vlan-parent-without-vlan", topology({"n": {"type": "bridge", "parent": "eth1"}}),
     ["networks.n.parent: a parent needs a vlan id (set vlan)"]),
    ("vlan-duplicate-on-parent", topology({"a": {"type": "bridge", "vlan": 20}, "b": {"type": "vlan", "vlan": 20}}),
     ["networks.b.vlan: VLAN 20 on enp6s0 is already used by networks.a.vlan"]),
    ("vlan-network-needs-vlan", topology({"n": {"type": "vlan"}}),
     ["networks.n.vlan: required for a vlan network (the VLAN id, 1-4094)"]),
    ("vlan-network-has-no-vlan-iface", topology({"n": {"type": "vlan", "vlan": 5, "vlan_iface": "x"}}),
     ["networks.n.vlan_iface: key 'vlan_iface' does not apply to a network of type vlan"]),
    ("vlan-iface-without-vlan", topology({"n": routed(vlan_iface="eth1.5")}),
     ["networks.n.vlan_iface: a VLAN sub-interface needs a vlan id (set vlan)"]),
    ("vlan-network-no-bridge-attributes", topology({"n": {"type": "vlan", "vlan": 5, "stp": True}}),
     ["networks.n.stp: key 'stp' does not apply to a network of type vlan"]),
    # -- VXLAN ---------------------------------------------------------------------------------
    ("vni-missing", topology({"n": {"type": "vxlan"}}), ["networks.n.vni: required for a vxlan network (1-16777215)"]),
    ("vni-zero", topology({"n": {"type": "vxlan", "vni": 0}}), ["networks.n.vni: VNI 0 is out of range 1-16777215"]),
    ("vni-too-big", topology({"n": {"type": "vxlan", "vni": 16777216}}),
     ["networks.n.vni: VNI 16777216 is out of range 1-16777215"]),
    ("vni-duplicate", topology({"a": {"type": "vxlan", "vni": 5}, "b": {"type": "vxlan", "vni": 5}}),
     ["networks.b.vni: VNI 5 is already used by networks.a.vni"]),
    ("vxlan-peers-not-unicast", topology({"n": {"type": "vxlan", "vni": 5, "peers": [
        "224.0.0.1", "127.0.0.1", "169.254.0.1", "255.255.255.255", "0.0.0.0", "ff02::1", "fe80::1"]}}),
     ["networks.n.peers[0]: '224.0.0.1' is a multicast address, not a unicast address",
      "networks.n.peers[1]: '127.0.0.1' is a loopback address, not a unicast address",
      "networks.n.peers[2]: '169.254.0.1' is a link-local address, not a unicast address",
      "networks.n.peers[3]: '255.255.255.255' is the broadcast address, not a unicast address",
      "networks.n.peers[4]: '0.0.0.0' is the unspecified address, not a unicast address",
      "networks.n.peers[5]: 'ff02::1' is a multicast address, not a unicast address",
      "networks.n.peers[6]: 'fe80::1' is a link-local address, not a unicast address"]),
    ("vxlan-peer-duplicate", topology({"n": {"type": "vxlan", "vni": 5, "peers": ["10.0.0.1", "10.0.0.1"]}}),
     ["networks.n.peers[1]: peer 10.0.0.1 is already listed at networks.n.peers[0]"]),
    ("vxlan-peer-is-local", topology({"n": {"type": "vxlan", "vni": 5, "local": "10.0.0.1", "peers": ["10.0.0.1"]}}),
     ["networks.n.peers[0]: peer 10.0.0.1 is the local address itself"]),
    ("vxlan-peer-family-local", topology({"n": {"type": "vxlan", "vni": 5, "local": "10.0.0.1", "peers": ["fd00::2"]}}),
     ["networks.n.peers[0]: peer fd00::2 is IPv6, local 10.0.0.1 is IPv4"]),
    ("vxlan-peers-mixed-families", topology({"n": {"type": "vxlan", "vni": 5, "peers": ["10.0.0.2", "fd00::2"]}}),
     ["networks.n.peers[1]: peer fd00::2 is IPv6, peer 10.0.0.2 at networks.n.peers[0] is IPv4; one VXLAN device uses "
      "one underlay family"]),
    ("vxlan-local-not-unicast", topology({"n": {"type": "vxlan", "vni": 5, "local": "239.1.1.1"}}),
     ["networks.n.local: '239.1.1.1' is a multicast address, not a unicast address"]),
    ("vxlan-iface-and-bridge", topology({"n": {"type": "vxlan", "vni": 5, "iface": "br0", "bridge": "br1"}}),
     ["networks.n.bridge: give either iface or bridge (the same bridge), not both"]),
    ("vxlan-dstport", topology({"n": {"type": "vxlan", "vni": 5, "dstport": 0}}),
     ["networks.n.dstport: port 0 is out of range 1-65535"]),
    ("vxlan-learning-string", topology({"n": {"type": "vxlan", "vni": 5, "learning": "no"}}),
     ["networks.n.learning: expected a boolean (true or false), got 'no' (a string)"]),
    ("vxlan-dev-unresolvable", topology({"n": {"type": "vxlan", "vni": 5, "dev": "eth 0"}}),
     ["networks.n.dev: 'eth 0' is neither a key of interfaces (uplink) nor a valid interface name"]),
    ("vxlan-iface-name", topology({"n": {"type": "vxlan", "vni": 5, "vxlan_iface": "vx;5"}}),
     [f"networks.n.vxlan_iface: 'vx;5' is not a valid interface name {IFNAME_RULE}"]),
    # -- names the topology creates ------------------------------------------------------------
    ("iface-name-invalid", topology({"n": routed(iface="br work")}),
     [f"networks.n.iface: 'br work' is not a valid interface name {IFNAME_RULE}"]),
    ("iface-clash", topology({"a": {"type": "bridge", "iface": "br0"}, "b": {"type": "bridge", "iface": "br0"}}),
     ["networks.b.iface: link 'br0' is also created by networks.a.iface"]),
    ("iface-clash-with-generated", topology({"a": {"type": "bridge"}, "b": {"type": "bridge", "iface": "gw-a"}}),
     ["networks.b.iface: link 'gw-a' is also created by networks.a.iface"]),
    ("vxlan-iface-clash", topology({"a": {"type": "bridge", "iface": "vx5"}, "b": {"type": "vxlan", "vni": 5}}),
     ["networks.b.vxlan_iface: link 'vx5' is also created by networks.a.iface"]),
    ("vlan-iface-clash", topology({"a": {"type": "bridge", "iface": "enp6s0.20"}, "b": {"type": "bridge", "vlan": 20}}),
     ["networks.b.vlan_iface: link 'enp6s0.20' is also created by networks.a.iface"]),
]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_rule(data: object, expected: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_topology(data)
    assert [str(issue) for issue in caught.value.issues] == expected


def test_case_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_path_prefix() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_topology({"networks": {"a": []}}, path="ghostwarden_topology")
    assert caught.value.paths == ["ghostwarden_topology.networks.a"]


def test_every_issue_is_collected_in_input_order() -> None:
    data = topology({
        "a": routed(mtu=1, forwards=[forward("0.0.0.0:70000/tcp")]),
        "b": {"type": "vxlan", "vni": 0, "peers": ["224.0.0.1"]},
    }, version=3)
    with pytest.raises(ValidationError) as caught:
        parse_topology(data)
    assert caught.value.paths == [
        "version", "networks.a.mtu", "networks.a.forwards[0].public", "networks.b.vni", "networks.b.peers[0]",
    ]
    assert str(caught.value) == "version: unsupported version 3 (supported: 1) (and 4 more errors)"


def test_the_message_is_one_line_even_for_hostile_values() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_topology(topology({"n": routed(iface="x\n" * 500, masq_out={"a": ["b"] * 100})}))
    for issue in caught.value.issues:
        assert "\n" not in str(issue)
        assert len(str(issue)) < 400
