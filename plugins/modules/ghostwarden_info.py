#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ghostwarden_info
short_description: Live network facts of a host as ghostwarden sees them
version_added: 0.1.0
description:
  - Returns the host's links (those the collection owns and the foreign ones, bridges among them), their
    addresses, the owned C(inet ghostwarden) nft table with its counters, the dnsmasq instances and their
    DHCP leases per network, and the topology recorded by the last apply.
  - Says whether the host is a Proxmox VE node (RV(proxmox)), from files only, so that no API credentials are needed.
  - Names what else filters the same packets or manages the same links (RV(conflicts)) - firewalld, ufw, Docker,
    fail2ban, CrowdSec, the Proxmox VE firewall, other nft base chains that may drop the networks' traffic,
    NetworkManager and systemd-networkd - judged against the topology recorded by the last apply.
  - Reads only; never changes the host.
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.info_module
  - ghostwarden.core._attributes.platform
  - ghostwarden.core._host
requirements:
  - netaddr
  - pyroute2
  - nft on the managed node
seealso:
  - module: ghostwarden.core.ghostwarden_apply
"""

EXAMPLES = r"""
- name: Read the network facts
  ghostwarden.core.ghostwarden_info:
  register: facts

- name: Show who got a DHCP lease on nat_dev
  ansible.builtin.debug:
    msg: "{{ facts.leases.nat_dev | map(attribute='ip') | list }}"
"""

RETURN = r"""
plan:
  description: No operations - the module reads the host and changes nothing; every module returns RV(plan).
  returned: success
  type: list
  elements: dict
  sample: []
changes:
  description: No counts - the module changes nothing; every module returns RV(changes).
  returned: success
  type: dict
  sample: {}
links:
  description: Every link, with C(kind) (bridge, vlan, vxlan, other), C(owner) (the network, or null when foreign) and attributes.
  returned: success
  type: list
  elements: dict
  sample: [{name: gw-nat_dev, kind: bridge, owner: nat_dev, attrs: {mtu: 1500, state: up}}]
bridges:
  description: The names of the bridges that the collection does not own.
  returned: success
  type: list
  elements: str
  sample: [vmbr0]
addresses:
  description: Every address, with C(iface), C(address) and C(owned).
  returned: success
  type: list
  elements: dict
  sample: [{iface: gw-nat_dev, address: 10.33.0.1/24, owned: true}]
ruleset:
  description: The owned nft table as listed by nft, or null when it does not exist.
  returned: success
  type: str
  sample: "table inet ghostwarden {\n  ...\n}\n"
counters:
  description: The counters of the owned table's rules, with C(chain), C(comment), C(packets) and C(bytes).
  returned: success
  type: list
  elements: dict
  sample: [{chain: net_nat_dev_ingress, comment: null, packets: 12, bytes: 720}]
dnsmasq:
  description: Per network with a dnsmasq configuration, whether its instance runs and with the current configuration.
  returned: success
  type: dict
  sample: {nat_dev: {running: true, pid: 4242, current: true}}
leases:
  description: The DHCP leases per network, each with C(expiry), C(mac), C(ip), C(hostname) and C(client_id).
  returned: success
  type: dict
  sample: {nat_dev: [{expiry: 1767225600, mac: "52:54:00:12:34:56", ip: 10.33.0.140, hostname: guest1, client_id: "*"}]}
topology:
  description: The topology recorded by the last apply, or null when nothing was applied.
  returned: success
  type: dict
  sample: {version: 1, networks: {nat_dev: {type: routed, cidr: 10.33.0.0/24}}}
generation:
  description: The number of applies that changed this host's owned state so far.
  returned: success
  type: int
  sample: 3
proxmox:
  description:
    - Whether the host is a Proxmox VE node and what its firewall does, read from the dpkg database and C(/etc/pve).
    - C(firewall_bridges) are the bridges of guest NICs with C(firewall=1), which pve-firewall filters when
      C(firewall_active); M(ghostwarden.core.ghostwarden_apply) warns when a network's policy profile filters
      one of them too.
  returned: success
  type: dict
  contains:
    node:
      description: The package pve-manager is installed.
      type: bool
    version:
      description: The version of pve-manager, or null.
      type: str
    cluster_name:
      description: The corosync cluster's name, or null when the node is not in a cluster.
      type: str
    firewall_enabled:
      description: "The cluster firewall is enabled (C(enable: 1) in C(/etc/pve/firewall/cluster.fw))."
      type: bool
    firewall_running:
      description: The firewall daemon (pve-firewall or proxmox-firewall) runs.
      type: bool
    firewall_active:
      description: Both of the above.
      type: bool
    firewall_bridges:
      description: Bridges with guest NICs that have C(firewall=1).
      type: list
      elements: str
  sample: {node: true, version: "8.2.4", cluster_name: lab, firewall_enabled: true, firewall_running: true,
           firewall_active: true, firewall_bridges: [vmbr0]}
conflicts:
  description:
    - What else filters the networks' packets or manages their links, one item per cause, the same causes that
      M(ghostwarden.core.ghostwarden_apply) warns about; see the collection's C(docs/coexistence.md).
    - An accept in the C(inet ghostwarden) table does not override a drop in another table's base chain at the
      same hook, so a foreign chain at the input or forward hook that may drop the networks' traffic is named here.
    - Judged against the topology recorded by the last apply; before any apply, every foreign chain that may drop
      traffic at those hooks counts.
    - Services are read from files of the root namespace (pid files, C(/proc), C(/etc/ufw/ufw.conf), the state and
      configuration files of NetworkManager and systemd-networkd); with O(netns) only the namespace's nft tables
      are judged.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description:
        - V(firewalld), V(ufw), V(pve-firewall), V(docker), V(fail2ban), V(crowdsec), V(drop-chain) (a table no
          known program made), V(NetworkManager) or V(systemd-networkd).
      type: str
    subject:
      description: Who, and how it was found (a process, a pid file, a configuration line, the tables).
      type: str
    effect:
      description: What happens to the networks' traffic or links, naming the chains with their table, hook and priority.
      type: str
    advice:
      description: What to do about it.
      type: str
    networks:
      description: The networks concerned.
      type: list
      elements: str
    chains:
      description: The foreign base chains concerned, each as V(family table chain).
      type: list
      elements: str
  sample:
    - kind: ufw
      subject: "ufw (ENABLED=yes in /etc/ufw/ufw.conf; table ip filter)"
      effect: >-
        chain FORWARD of table ip filter (hook forward, priority 0; policy drop) drops IPv4 traffic routed into
        and out of network nat_dev that none of its rules accepts first
      advice: "Allow the networks in ufw: ufw allow in on gw-nat_dev; ufw route allow in on gw-nat_dev; ..."
      networks: [nat_dev]
      chains: [ip filter FORWARD]
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    HOST_ARGUMENT_SPEC,
    HOST_LIBRARIES,
    host_driver,
    run,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import empty_state
from ansible_collections.ghostwarden.core.plugins.module_utils.host._conflicts import (
    conflict_dicts,
    host_conflicts,
    recorded_topology,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._host import detect_proxmox


def _plain(value):
    """Status objects of the dnsmasq backend as plain data."""
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def gather_info(module: AnsibleModule) -> dict:
    with host_driver(module) as driver:
        records = driver.store.load()
        observed = driver.observe(records, empty_state())
        status = {network: _plain(item) for network, item in sorted(driver.dnsmasq.status().items())}
        return {
            "changed": False,
            "links": [link.to_dict() for link in observed.links],
            "bridges": [link.name for link in observed.links if link.kind == "bridge" and not link.owned],
            "addresses": [address.to_dict() for address in observed.addresses],
            "ruleset": observed.ruleset,
            "counters": driver.nft.counters(),
            "dnsmasq": status,
            "leases": {network: driver.dnsmasq.leases(network) for network in status},
            "topology": records.topology,
            "generation": records.generation,
            "proxmox": detect_proxmox(),
            "conflicts": conflict_dicts(host_conflicts(driver.runner, recorded_topology(records.topology))),
        }


def main() -> None:
    module = AnsibleModule(argument_spec=dict(**HOST_ARGUMENT_SPEC), supports_check_mode=True)
    run(module, gather_info, needs=HOST_LIBRARIES)


if __name__ == "__main__":
    main()
