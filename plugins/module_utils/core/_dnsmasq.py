# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""dnsmasq for DHCP and DNS: one instance per network with DHCP or DNS; the rendering.

Pure: a topology in, config file texts out. The processes are started and stopped by
``host._dnsmasq_control``. Each instance is started with ``dnsmasq --conf-file=<config>``
(see docs/plan.md), so it reads exactly the file rendered here and never /etc/dnsmasq.conf.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Dict, List

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import DEFAULT_STATE_DIR, DhcpRange, Network, Topology


# dnsmasq reads a value up to the end of the line and splits it at commas: every value written
# is checked against this, so no input can add a line or a field (the topology is validated
# already; this keeps a validation gap from becoming a config injection).
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@+\-]+$")
INSTANCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f,]")
# dnsmasq keeps lease counts in an int.
_LEASE_MAX_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class InstancePaths:
    """Files of one network's dnsmasq instance under ``<state_dir>/dnsmasq``."""

    config: str
    leases: str
    pid: str


def instance_paths(state_dir: str, network: str) -> InstancePaths:
    if not posixpath.isabs(state_dir) or _PATH_FORBIDDEN.search(state_dir):
        raise RenderError(f"state_dir: {state_dir!r} must be an absolute path without commas or control characters")
    if not INSTANCE_NAME.match(network):
        raise RenderError(f"networks.{network}: the name {network!r} cannot be used in a file name")
    base = posixpath.join(posixpath.normpath(state_dir), "dnsmasq", network)
    return InstancePaths(config=f"{base}.conf", leases=f"{base}.leases", pid=f"{base}.pid")


def _token(network: Network, what: str, value: str) -> str:
    if not _TOKEN.match(value):
        raise RenderError(f"networks.{network.name}: {what} {value!r} cannot be written to a dnsmasq config")
    return value


def _range_size(dhcp_range: DhcpRange) -> int:
    return int(ipaddress.ip_address(dhcp_range.end)) - int(ipaddress.ip_address(dhcp_range.start)) + 1


def render_instance(network: Network, paths: InstancePaths) -> str:
    """The config file of one network's dnsmasq instance."""
    if not network.subnets:
        raise RenderError(f"networks.{network.name}: DHCP and DNS need an address (cidr and gw_ip), none is set")
    iface = _token(network, "interface", network.iface)
    lines: List[str] = [
        f"# Managed by ghostwarden.core for network {network.name}; changes are overwritten.",
        f"interface={iface}",
        # dnsmasq adds lo to the interfaces of --interface by itself; one instance per network
        # must not claim 127.0.0.1:53 (the host's resolver, or another instance, has it).
        "except-interface=lo",
        # bind-dynamic binds each address as it becomes usable: a bridge without carrier keeps
        # its IPv6 address tentative, and bind-interfaces would fail at start on it.
        "bind-dynamic",
        "no-hosts",
        f"pid-file={paths.pid}",
    ]
    dns = network.dns
    if dns is None:
        lines.append("port=0")
    else:
        lines.append("domain-needed")
        if dns.upstream:
            lines.append("no-resolv")
            lines.extend(f"server={_token(network, 'upstream server', server)}" for server in dns.upstream)
        if dns.zones:
            # The first zone is the domain DHCP clients are given; every zone is answered locally only.
            lines.append(f"domain={_token(network, 'zone', dns.zones[0])}")
            lines.extend(f"local=/{_token(network, 'zone', zone)}/" for zone in dns.zones)
        lines.extend(
            f"host-record={_token(network, 'record name', record.name)},{_token(network, 'record address', record.ip)}"
            for record in dns.records
        )
    dhcp = network.dhcp
    if dhcp is not None:
        lease_time = _token(network, "lease time", dhcp.lease_time)
        lines.extend(["dhcp-authoritative", f"dhcp-leasefile={paths.leases}"])
        # dnsmasq's default cap of 1000 leases would silently starve a large range.
        lease_max = sum(_range_size(dhcp_range) for dhcp_range in dhcp.ranges) + len(dhcp.hosts)
        lines.append(f"dhcp-lease-max={min(lease_max, _LEASE_MAX_LIMIT)}")
        gateways: Dict[int, str] = {}
        for dhcp_range in dhcp.ranges:
            subnet = network.subnet(dhcp_range.family)
            if subnet is None:
                raise RenderError(
                    f"networks.{network.name}.dhcp: an IPv{dhcp_range.family} range needs an IPv{dhcp_range.family} subnet"
                )
            gateways[subnet.family] = _token(network, "gateway", subnet.gw_ip)
            start = _token(network, "DHCP range start", dhcp_range.start)
            end = _token(network, "DHCP range end", dhcp_range.end)
            if dhcp_range.family == 4:
                lines.append(f"dhcp-range={start},{end},{lease_time}")
            else:
                lines.append(f"dhcp-range={start},{end},{subnet.prefixlen},{lease_time}")
        if 6 in gateways:
            lines.append("enable-ra")
        for family, gw_ip in sorted(gateways.items()):
            if family == 4:
                # The router is the host's address in the network (the original sent the network address).
                lines.append(f"dhcp-option=option:router,{gw_ip}")
                if dns is not None:
                    lines.append(f"dhcp-option=option:dns-server,{gw_ip}")
            elif dns is not None:
                lines.append(f"dhcp-option=option6:dns-server,[{gw_ip}]")
        for host in dhcp.hosts:
            address = _token(network, "static lease address", host.ip)
            fields = [_token(network, "static lease MAC", host.mac), f"[{address}]" if ":" in address else address]
            if host.hostname:
                fields.append(_token(network, "static lease hostname", host.hostname))
            lines.append(f"dhcp-host={','.join(fields)}")
    return "\n".join(lines) + "\n"


def render_dnsmasq(topology: Topology, state_dir: str = DEFAULT_STATE_DIR) -> Dict[str, str]:
    """One config file per network with DHCP or DNS, keyed by its absolute path, sorted."""
    files: Dict[str, str] = {}
    for network in topology.networks:
        if network.dhcp is None and network.dns is None:
            continue
        paths = instance_paths(state_dir, network.name)
        files[paths.config] = render_instance(network, paths)
    return dict(sorted(files.items()))
