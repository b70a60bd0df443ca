# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The lock-out guard: would this topology cut the operator off the host? (DESIGN 4.5)

Three levels of knowledge, each adding checks:

* the topology alone: the guard switched off or keeping no port, a forward of a management
  port on every address;
* the SSH connection the play runs over (``SSH_CONNECTION``: the controller's address, the
  host's address and port it connected to): a forward on that address, a network containing
  the controller's address, a profile that drops management traffic while the guard protects
  nothing (no ``allow_from``, the connection not accepted);
* the host's route back to the controller (:class:`ManagementRoute`, read from the kernel by
  the host wing): a network overlapping a subnet of that interface, that interface enslaved
  to a bridge without ``adopt_port_addresses``, a profile on the network it belongs to that
  drops the connection and that the guard does not cover.

Each problem is one :class:`~._errors.Issue` naming the field and the reason. The modules
refuse them unless ``allow_lockout`` is given; then they are warnings. Pure: no kernel here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import DangerousTopologyError, Issue
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import Forward, Network, PortRange, Subnet, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import profile_blocks_host_port

OVERRIDE = "allow_lockout: true applies it anyway"
# How many network names a line about several networks spells out before "and N more".
NAMED_NETWORKS = 5


@dataclass(frozen=True)
class ManagementConnection:
    """The SSH connection a play runs over, as the target sees it (``SSH_CONNECTION``)."""

    client: str  # the controller's address (or the last jump host's)
    server: str  # the host's address the connection arrived at
    port: int  # the port sshd listens on

    @classmethod
    def parse(cls, text: str | None) -> ManagementConnection | None:
        """``client_ip client_port server_ip server_port``; None when absent or not in that form."""
        fields = (text or "").split()
        if len(fields) != 4 or not fields[3].isdigit():
            return None
        try:
            client, server = (str(ipaddress.ip_address(value.split("%", 1)[0])) for value in (fields[0], fields[2]))
        except ValueError:
            return None
        return cls(client=_unmapped(client), server=_unmapped(server), port=int(fields[3]))


@dataclass(frozen=True)
class ManagementRoute:
    """How the host reaches the controller now: the interface replies leave by and what is on it."""

    iface: str
    subnets: tuple[str, ...] = ()  # prefixes connected to ``iface`` (its addresses' and on-link routes)
    addresses: tuple[str, ...] = ()  # the interface's own addresses, without prefix
    gateway: str | None = None  # the next hop towards the controller, when it is not on-link


def _unmapped(address: str) -> str:
    """An IPv4-mapped IPv6 address (sshd on a dual-stack socket) as the IPv4 address it carries."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def find_lockouts(topology: Topology, *, connection: ManagementConnection | None = None,
                  connection_protected: bool = False, route: ManagementRoute | None = None) -> list[Issue]:
    """Every way ``topology`` would cut the operator off, one issue each, in a stable order.

    ``connection`` is the play's SSH connection into the host the topology is for (None for a
    local run, or when the target is another network namespace than the connection's);
    ``connection_protected`` says whether the guard accepts the connection's source (the
    modules' ``management_from_connection``); ``route`` is the host's route to the controller.
    """
    checks = _Checks(topology, connection, connection_protected, route)
    checks.guard()
    checks.forwards()
    checks.profiles()
    if connection is not None:
        checks.controller_address(connection)
    if route is not None:
        checks.management_interface(route)
    return checks.issues


def lockout_outcome(issues: Sequence[Issue], *, allowed: bool) -> list[str]:
    """Refuse ``issues`` (:class:`DangerousTopologyError`), or with ``allowed`` return them as warnings."""
    if not issues:
        return []
    if not allowed:
        raise DangerousTopologyError(list(issues))
    return [f"allow_lockout is true, so this is applied although it can lock you out: {issue}" for issue in issues]


class _Checks:
    def __init__(self, topology: Topology, connection: ManagementConnection | None, protected: bool,
                 route: ManagementRoute | None) -> None:
        self.topology = topology
        self.management = topology.management
        self.connection = connection
        self.protected = protected and connection is not None
        self.route = route
        self.issues: list[Issue] = []

    def fail(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, f"{message} ({OVERRIDE})"))

    # -- the topology alone ------------------------------------------------------------------
    def guard(self) -> None:
        if not self.management.enforce:
            self.fail("management.enforce", "false turns the management guard off: nothing keeps the management "
                                            "ports open before the policy profiles")
        elif not self.management.ports:
            self.fail("management.ports", "[] leaves the management guard no port to keep open")

    def management_ports(self) -> list[PortRange]:
        ports = list(self.management.ports)
        if self.connection is not None and not any(_contains(item, self.connection.port) for item in ports):
            ports.append(PortRange(self.connection.port, self.connection.port))
        return ports

    def forwards(self) -> None:
        """DNAT happens before the guard's accept: a forwarded management port is gone for new connections."""
        ports = self.management_ports()
        local = {self.connection.server} if self.connection is not None else set()
        if self.route is not None:
            local.update(self.route.addresses)
        for network in self.topology.networks:
            for forward in network.forwards:
                if forward.protocol != "tcp":
                    continue
                port = next((_first_common(forward.public_port, item) for item in ports
                             if _overlap(forward.public_port, item)), None)
                if port is None:
                    continue
                if forward.public_ip is None:
                    where = "on every address of this host"
                elif forward.public_ip in local:
                    where = f"on {forward.public_ip}, an address the management connection uses"
                else:
                    continue
                self.fail(f"networks.{network.name}.forwards",
                          f"{_forward_text(forward)} sends new connections to management port {port}/tcp {where} "
                          f"to a guest: nobody can open a new SSH session to this host")

    def profiles(self) -> None:
        """A profile dropping management ports while the play's own connection is left unprotected.

        Only when the play runs over SSH that the guard does not accept (``management_from_connection:
        false``) and ``allow_from`` is empty, and the route back is not known: with the route,
        :meth:`carrier_profile` checks the one network the connection really crosses. A local run
        has no connection to cut; the parser warns once per profile instead.
        """
        if (self.connection is None or self.protected or self.route is not None
                or not self.management.enforce or self.management.allow_from):
            return
        for profile_name, port, networks in _blocking_profiles(self.topology, self.management.ports):
            self.fail(f"networks.{networks[0].name}.policy_profile",
                      f"{profile_name} drops management port {port}/tcp to the host from {_network_names(networks)}, "
                      "and the guard protects no one: management.allow_from is empty and this play's SSH "
                      "connection is not accepted (management_from_connection: false); set management.allow_from "
                      "to where you manage this host from")

    # -- the SSH connection ------------------------------------------------------------------
    def controller_address(self, connection: ManagementConnection) -> None:
        client = ipaddress.ip_address(connection.client)
        for network in self.topology.networks:
            if self.route is not None and network.iface == self.route.iface:
                continue  # the controller already reaches the host through this network
            for subnet in network.subnets:
                if client in ipaddress.ip_network(subnet.cidr):
                    self.fail(_cidr_path(network, subnet),
                              f"{subnet.cidr} contains {connection.client}, the address this play's SSH connection "
                              f"comes from: replies to it would leave through {network.iface}")

    # -- the host's route back to the controller -----------------------------------------------
    def management_interface(self, route: ManagementRoute) -> None:
        carrier = None  # the network whose bridge carries the connection once the topology is applied
        for network in self.topology.networks:
            if network.iface == route.iface:
                carrier = network
                continue
            if route.iface in network.ports:
                index = network.ports.index(route.iface)
                if network.adopt_port_addresses:
                    carrier = network
                    continue
                self.fail(f"networks.{network.name}.ports[{index}]",
                          f"{route.iface} carries this play's SSH connection; enslaved to {network.iface} it stops "
                          "being an IP interface (set adopt_port_addresses: true to move its addresses and routes "
                          "to the bridge)")
                continue
            for subnet in network.subnets:
                if any(issue.path == _cidr_path(network, subnet) for issue in self.issues):
                    continue  # already refused for holding the controller's address
                mine = ipaddress.ip_network(subnet.cidr)
                for connected in route.subnets:
                    theirs = ipaddress.ip_network(connected, strict=False)
                    if mine.version == theirs.version and mine.overlaps(theirs):
                        self.fail(_cidr_path(network, subnet),
                                  f"{subnet.cidr} overlaps {theirs} on {route.iface}, the interface this play's SSH "
                                  f"connection uses: routes to those addresses would move to {network.iface}")
                        break
        if carrier is not None and self.connection is not None:
            self.carrier_profile(carrier, self.connection)

    def carrier_profile(self, network: Network, connection: ManagementConnection) -> None:
        if network.policy_profile is None:
            return
        management = self.management
        guarded = management.enforce and any(_contains(item, connection.port) for item in management.ports) and (
            self.protected or any(ipaddress.ip_address(connection.client) in ipaddress.ip_network(cidr)
                                  for cidr in management.allow_from))
        if guarded:
            return
        profile = self.topology.profile(network.policy_profile)
        if profile_blocks_host_port(profile, connection.port, "tcp", source=connection.client):
            self.fail(f"networks.{network.name}.policy_profile",
                      f"{network.policy_profile} drops port {connection.port}/tcp from {connection.client}, this "
                      f"play's SSH connection, which reaches the host through {network.iface}, and the management "
                      "guard does not accept it")


def management_port_warnings(topology: Topology) -> list[str]:
    """One warning per profile that drops a management port while only the play's connection is protected."""
    management = topology.management
    if not management.enforce or management.allow_from:
        return []
    return [f"{_network_names(networks)}: profile {name} drops management port {port}/tcp from "
            f"{'this network' if len(networks) == 1 else 'these networks'} to the host and "
            "management.allow_from is empty: only the connection Ansible runs over stays protected"
            for name, port, networks in _blocking_profiles(topology, management.ports)]


def _blocking_profiles(topology: Topology, ports: Sequence[PortRange]) -> list[tuple[str, int, list[Network]]]:
    """(profile, first management port it drops, the networks using it), by profile name."""
    users: dict[str, list[Network]] = {}
    for network in topology.networks:
        if network.policy_profile is not None:
            users.setdefault(network.policy_profile, []).append(network)
    profiles = dict(topology.profiles)
    found = []
    for name in sorted(users):
        profile = profiles.get(name)
        if profile is None:
            continue  # an unknown profile is an issue of its own
        port = next((port for item in ports for port in range(item.first, item.last + 1)
                     if profile_blocks_host_port(profile, port, "tcp")), None)
        if port is not None:
            found.append((name, port, users[name]))
    return found


def _cidr_path(network: Network, subnet: Subnet) -> str:
    """``cidr``, or ``cidr6`` for the IPv6 subnet of a dual-stack network."""
    key = "cidr6" if len(network.subnets) > 1 and subnet is not network.subnets[0] else "cidr"
    return f"networks.{network.name}.{key}"


def _network_names(networks: Sequence[Network]) -> str:
    names = [f"networks.{network.name}" for network in networks[:NAMED_NETWORKS]]
    more = len(networks) - len(names)
    text = ", ".join(names)
    return f"{text} and {more} more ({len(networks)} networks)" if more else text


def _forward_text(forward: Forward) -> str:
    address = forward.public_ip or ("0.0.0.0" if forward.family == 4 else "::")
    public = f"[{address}]" if forward.family == 6 else address
    return f"{public}:{forward.public_port}/{forward.protocol}"


def _contains(ports: PortRange, port: int) -> bool:
    return ports.first <= port <= ports.last


def _overlap(first: PortRange, second: PortRange) -> bool:
    return first.first <= second.last and second.first <= first.last


def _first_common(first: PortRange, second: PortRange) -> int:
    return max(first.first, second.first)
