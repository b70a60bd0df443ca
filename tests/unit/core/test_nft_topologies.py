# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Topologies for the nft renderer's tests (no tests here), built directly from the model's dataclasses.

The renderer's tests do not depend on the parser or the built-in profiles: the
profiles here are stand-ins shaped like the built-ins, named ``test-...``.
"""

from __future__ import annotations

from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import (
    Dhcp,
    DhcpRange,
    Dns,
    Forward,
    Management,
    Network,
    PortRange,
    Profile,
    RateLimit,
    Rule,
    Subnet,
    TimeWindow,
    Topology,
)


def ports(*specs: int | tuple[int, int]) -> tuple[PortRange, ...]:
    return tuple(PortRange(spec, spec) if isinstance(spec, int) else PortRange(*spec) for spec in specs)


def subnet(cidr: str, gw_ip: str) -> Subnet:
    return Subnet(cidr=cidr, gw_ip=gw_ip, family=6 if ":" in cidr else 4)


def forward(public: str | None, port: int | tuple[int, int], dst: str, dst_port: int | tuple[int, int],
            protocol: str = "tcp", hairpin: bool = True, comment: str | None = None) -> Forward:
    (public_port,), (destination_port,) = ports(port), ports(dst_port)
    return Forward(family=6 if ":" in dst else 4, protocol=protocol, public_ip=public, public_port=public_port,
                   dst_ip=dst, dst_port=destination_port, hairpin=hairpin, comment=comment)


def routed(name: str, *subnets: Subnet, iface: str | None = None, **fields: object) -> Network:
    return Network(name=name, type="routed", iface=iface or f"br-{name}"[:15], subnets=subnets, **fields)


def topology(*networks: Network, profiles: tuple[Profile, ...] = (), management: Management | None = None,
             interfaces: tuple[tuple[str, str], ...] = (("uplink", "enp6s0"),)) -> Topology:
    return Topology(
        version=1,
        interfaces=interfaces,
        management=management or Management(allow_from=("192.0.2.0/24",)),
        profiles=tuple(sorted((profile.name, profile) for profile in profiles)),
        networks=tuple(sorted(networks, key=lambda network: network.name)),
    )


# -- stand-ins for the built-in profiles' shapes ------------------------------------------------

ROUTED_TIGHT = Profile(
    name="test-routed-tight",
    description="Clients may go out; nothing comes in unless forwarded; the host gives DHCP/DNS and SSH",
    ingress_action="drop",
    egress_action="accept",
    host_action="drop",
    rules=(
        Rule(direction="host", action="accept", protocol="tcp", ports=ports(22), comment="ssh to the host"),
        Rule(direction="host", action="accept", protocol="icmp"),
        Rule(direction="host", action="accept", protocol="icmpv6"),
    ),
)

L2_LAN = Profile(
    name="test-l2-lan",
    description="A trusted LAN: everything allowed",
    ingress_action="accept",
    egress_action="accept",
    host_action="accept",
)

PUBLIC_WEB = Profile(
    name="test-public-web",
    description="Web servers: HTTP(S) in with per-source limits, SSH from the office only",
    ingress_action="drop",
    egress_action="accept",
    host_action="reject",
    rules=(
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(80, 443),
             rate_limit=RateLimit(rate=50, per="second", burst=100, per_source=True), conn_limit=64, counter=True,
             comment="web"),
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(22),
             sources=("198.51.100.0/24", "2001:db8:100::/48"), log=True, log_prefix="gw web ssh "),
        Rule(direction="ingress", action="drop", protocol="udp", rate_limit=RateLimit(rate=10, per="minute"),
             log=True),
        Rule(direction="egress", action="reject", protocol="tcp", ports=ports(25), comment="no direct mail"),
        Rule(direction="host", action="accept", protocol="udp", ports=ports(123)),
    ),
)

OFFICE_HOURS = Profile(
    name="test-office-hours",
    description="Lab access in office hours, a night backup window, limits on the host",
    ingress_action="reject",
    egress_action="drop",
    host_action="drop",
    rules=(
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(22, 3389, (5900, 5910)),
             sources=("10.0.0.0/8",),
             time=TimeWindow(hours=("08:00", "18:00"),
                             days=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"))),
        Rule(direction="ingress", action="accept", protocol="tcp", ports=ports(873), sources=("10.20.0.0/16",),
             time=TimeWindow(hours=("22:00", "06:00"))),
        Rule(direction="ingress", action="accept", protocol="icmp", rate_limit=RateLimit(rate=5, per="second")),
        Rule(direction="egress", action="accept", destinations=("10.0.0.0/8", "2001:db8::/32"), counter=True),
        Rule(direction="egress", action="accept", protocol="udp", ports=ports(53, 123)),
        Rule(direction="egress", action="accept", time=TimeWindow(days=("Saturday", "Sunday"))),
        Rule(direction="host", action="accept", protocol="tcp", ports=ports(22), conn_limit=3, log=True,
             rate_limit=RateLimit(rate=6, per="minute", burst=3, per_source=True)),
        Rule(direction="host", action="drop", protocol="tcp", ports=ports(22), log=True, log_prefix="gw ssh flood ",
             rate_limit=RateLimit(rate=5, per="minute")),
        Rule(direction="host", action="accept", protocol="sctp", ports=ports((3868, 3870))),
    ),
)

CLUSTER = Profile(
    name="test-cluster",
    description="A cluster network: corosync, API, migration between members only",
    ingress_action="drop",
    egress_action="accept",
    host_action="drop",
    rules=(
        Rule(direction="host", action="accept", protocol="udp", ports=ports((5405, 5412)),
             sources=("10.50.0.0/24",)),
        Rule(direction="host", action="accept", protocol="tcp", ports=ports(22, 8006, (60000, 60050), 3128),
             sources=("10.50.0.0/24", "10.50.1.0/24", "fd00:50::/64")),
        Rule(direction="host", action="reject", protocol="tcp", log=True, log_prefix="gw cluster refused "),
    ),
)


def original_example() -> Topology:
    """The original CLI's example (its ghostnet.toml), with stand-in profiles."""
    nat_dev = routed(
        "nat_dev", subnet("10.33.0.0/24", "10.33.0.1"), iface="br-nat_dev",
        dhcp=Dhcp(ranges=(DhcpRange("10.33.0.100", "10.33.0.200", 4),)),
        dns=Dns(zones=("dev.lan",)),
        masq_out="enp6s0",
        forwards=(forward(None, 4022, "10.33.0.10", 22),),
        policy_profile=ROUTED_TIGHT.name,
    )
    br_work = Network(name="br_work", type="bridge", iface="br-work", vlan=20, parent="enp6s0",
                      vlan_iface="enp6s0.20", policy_profile=L2_LAN.name)
    return topology(nat_dev, br_work, profiles=(ROUTED_TIGHT, L2_LAN))


def dual_stack() -> Topology:
    """A dual-stack routed network with forwards: port range, specific public IPs, hairpin off, v6."""
    lab = routed(
        "lab", subnet("10.40.0.0/24", "10.40.0.1"), subnet("2001:db8:40::/64", "2001:db8:40::1"),
        dhcp=Dhcp(ranges=(DhcpRange("10.40.0.100", "10.40.0.199", 4),
                          DhcpRange("2001:db8:40::100", "2001:db8:40::1ff", 6))),
        dns=Dns(zones=("lab.lan",)),
        masq_out="enp6s0",
        forwards=(
            forward(None, 8080, "10.40.0.10", 80),
            forward(None, (6000, 6003), "10.40.0.11", (5000, 5003), hairpin=False),
            forward(None, 5353, "10.40.0.12", 53, protocol="udp"),
            forward("192.0.2.10", 443, "10.40.0.10", 443, comment="web on the second address"),
            forward("192.0.2.10", 2222, "10.40.0.13", 22, hairpin=False),
            forward(None, 8080, "2001:db8:40::10", 80),
            forward("2001:db8:ffff::10", 443, "2001:db8:40::10", 443, hairpin=False),
        ),
        policy_profile=ROUTED_TIGHT.name,
    )
    # A second network with NAT only (no profile), v4 only, through another uplink.
    iso = routed("iso", subnet("10.41.0.0/24", "10.41.0.1"), masq_out="wan1",
                 forwards=(forward(None, 9000, "10.41.0.5", 9000, protocol="sctp"),))
    return topology(lab, iso, profiles=(ROUTED_TIGHT,),
                    management=Management(allow_from=("192.0.2.0/24", "2001:db8:ffff::/48"),
                                          ports=ports(22, 2222)))


def profiles_showcase() -> Topology:
    """One network per profile style: rate and connection limits, logging, time windows."""
    web = routed("web", subnet("10.60.0.0/24", "10.60.0.1"), subnet("2001:db8:60::/64", "2001:db8:60::1"),
                 policy_profile=PUBLIC_WEB.name, dns=Dns())
    office = routed("office", subnet("10.61.0.0/24", "10.61.0.1"), policy_profile=OFFICE_HOURS.name,
                    dhcp=Dhcp(ranges=(DhcpRange("10.61.0.50", "10.61.0.99", 4),)))
    cluster = Network(name="cluster", type="vlan", iface="bond0.50", vlan=50, parent="bond0",
                      subnets=(subnet("10.50.0.0/24", "10.50.0.1"),), policy_profile=CLUSTER.name)
    lan = Network(name="lan", type="bridge", iface="br-lan", policy_profile=L2_LAN.name)
    overlay = Network(name="overlay", type="vxlan", iface="br-overlay", vni=1200, vxlan_iface="vx1200",
                      peers=("10.0.0.11", "10.0.0.12"), policy_profile=ROUTED_TIGHT.name)
    return topology(web, office, cluster, lan, overlay,
                    profiles=(PUBLIC_WEB, OFFICE_HOURS, CLUSTER, L2_LAN, ROUTED_TIGHT),
                    management=Management(allow_from=("192.0.2.0/24", "192.0.2.128/25", "198.51.100.7/32"),
                                          ports=ports(22, 23, (8000, 8010))))


def empty() -> Topology:
    return topology(management=Management())


GOLDEN = {
    "original_example": original_example,
    "dual_stack": dual_stack,
    "profiles": profiles_showcase,
    "empty": empty,
}
