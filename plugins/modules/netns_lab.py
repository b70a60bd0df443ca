#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: netns_lab
short_description: Build or tear down a lab of network namespaces on this machine
version_added: 0.1.0
description:
  - Builds a lab of network namespaces that stands in for a small site - N hosts (nodes) joined by an underlay,
    an "internet" they reach over a second network, and clients behind each node - so that topologies, roles
    and playbooks can be tried with real traffic without touching the machine's own interfaces.
  - "Namespaces: C(<name>-sw), the lab switch, with the bridges C(underlay) and C(wan); C(<name>-inet), the
    internet, with C(eth0) on the wan (the wan network's first address, no default route); C(<name>-<node>) per
    node with C(eth0) on the underlay and C(up0) on the wan (the network's address + 10 + the node's number) and a
    default route via the internet; C(<name>-<node>-<client>) per client, whose C(eth0) is the peer of the port
    C(port) of O(clients) in the node's namespace (left up, without address, for a topology to enslave)."
  - Every veth pair is created inside a lab namespace (C(ip -n <ns> link add ... netns <other>)); the root
    namespace gets no link, address or route, and no lab namespace has an interface outside the lab, so no
    packet leaves it. IPv6 duplicate address detection is off in every lab namespace.
  - Each lab namespace is marked with the alias C(ghostwarden-lab:<name>) on its loopback; namespaces with the
    lab's prefix and without the mark are never touched. Marked namespaces the spec no longer has (a node
    removed from O(nodes)) are torn down.
  - Clients with C(http) set to V(true) in O(clients) run C(busybox httpd -f -p 80 -h <state_root>/www/<node>-<client>), whose
    C(index.html) says C(<node>-<client>), detached, with its output in C(<state_root>/log/).
  - O(state=absent) stops every process inside the lab's namespaces (dnsmasq, confirm timers, servers), deletes
    the namespaces and removes O(state_root).
  - Must run as root on the machine that holds the lab (the controller, usually with the local connection).
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.platform
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: Check mode observes the lab and returns the steps a real run would execute (RV(plan)), changing nothing.
  diff_mode:
    support: full
    details: The diff lists, per namespace, the lab's links, addresses, default routes, sysctls and servers,
      and the lab's directories and files, before and after.
options:
  name:
    description:
      - The lab's name, 1-8 characters a-z and 0-9; it starts the name of every namespace of the lab.
    type: str
    default: gwlab
  nodes:
    description:
      - The nodes, as a list of names (a letter a-z, then up to 11 of a-z and 0-9; not C(sw) or C(inet)), or as a
        number N for C(node1) ... C(nodeN). A node's number is its position in the list, from 1.
    type: raw
    default: 3
  underlay_cidr:
    description:
      - The network joining the nodes' C(eth0); node I gets the network's address + 10 + I.
      - The network must have room for every node; the module refuses more nodes than fit.
    type: str
    default: 192.0.2.0/24
  wan_cidr:
    description:
      - The network between the nodes' C(up0) and the internet namespace, which gets the network's first address;
        node I gets the network's address + 10 + I.
    type: str
    default: 198.51.100.0/24
  clients:
    description:
      - Clients behind the nodes, as a list (the same clients behind every node) or as a mapping of node name to
        that node's list. Each client is a mapping with the keys below.
      - C(name) (required) - a letter a-z and up to 7 of a-z and 0-9, unique behind its node.
      - C(port) (required) - the name of the client's veth end in the node's namespace (at most 15 of A-Z, a-z,
        0-9, C(_), C(.), C(-)), unique behind its node.
      - C(mac) - the MAC of the client's C(eth0); by default the locally administered C(02:67:77:NN:CC:01), NN the
        node's number and CC the client's position behind it, in hex. Every client of the lab needs its own MAC.
      - C(address) - a static address with prefix for the client's C(eth0), for example C(10.33.0.10/24).
      - C(gateway) - the client's default gateway; needs C(address).
      - C(http) - V(true) runs a web server on port 80 in the client's namespace (default V(false)).
    type: raw
    default: []
  state_root:
    description:
      - The lab's directory - its record C(lab.json), per node C(<state_root>/<node>) with C(state/) and
        C(systemd/) for the node's ghostwarden state and boot units, the web servers' documents and the logs.
      - The module refuses a directory that is not empty and is not this lab's; O(state=absent) removes it.
      - Defaults to C(/run/ghostwarden-lab/<name>).
    type: str
  state:
    description:
      - V(present) builds the lab, or repairs what differs; V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
requirements:
  - netaddr
  - ip (iproute2), and busybox and setsid for clients with C(http)
  - root on the machine that holds the lab
notes:
  - The role P(ghostwarden.core.lab#role) calls this module and writes an inventory of the lab for the
    P(ghostwarden.core.netns#connection) connection.
  - Addresses the lab owns are those in O(underlay_cidr), O(wan_cidr) and a client's C(address)
    network on the lab's interfaces; other addresses there (from a topology or a DHCP client) are left alone.
seealso:
  - plugin: ghostwarden.core.netns
    plugin_type: connection
  - module: ghostwarden.core.ghostwarden_apply
"""

EXAMPLES = r"""
- name: A lab of two nodes, each with a client serving HTTP
  ghostwarden.core.netns_lab:
    name: demo
    nodes: 2
    clients:
      - name: c1
        port: dev1p
        address: 10.33.0.10/24
        gateway: 10.33.0.1
        http: true
  register: lab

- name: Different clients behind each node
  ghostwarden.core.netns_lab:
    nodes: [pve1, pve2]
    clients:
      pve1: [{name: web, port: webp}]
      pve2: [{name: db, port: dbp, mac: "02:00:00:00:02:01"}]

- name: Remove the lab
  ghostwarden.core.netns_lab:
    name: demo
    state: absent
"""

RETURN = r"""
namespaces:
  description: The lab's namespaces in creation order - switch, internet, nodes, clients.
  returned: success
  type: list
  elements: str
  sample: [gwlab-sw, gwlab-inet, gwlab-node1, gwlab-node1-c1]
nodes:
  description: The nodes with C(name), C(netns), C(underlay_address), C(wan_address), C(state_dir) and C(index).
  returned: success
  type: list
  elements: dict
  sample: [{name: node1, netns: gwlab-node1, underlay_address: 192.0.2.11, wan_address: 198.51.100.11,
            state_dir: /run/ghostwarden-lab/gwlab/node1, index: 1}]
inet:
  description: The internet namespace and its address.
  returned: success
  type: dict
  sample: {netns: gwlab-inet, address: 198.51.100.1}
clients:
  description: The clients with C(node), C(name), C(netns), C(port), C(mac) and C(address) (null when not static).
  returned: success
  type: list
  elements: dict
  sample: [{node: node1, name: c1, netns: gwlab-node1-c1, port: dev1p, mac: "02:67:77:01:01:01", address: null}]
name:
  description: The lab's name.
  returned: success
  type: str
  sample: gwlab
underlay_cidr:
  description: The underlay network.
  returned: success
  type: str
  sample: 192.0.2.0/24
wan_cidr:
  description: The wan network.
  returned: success
  type: str
  sample: 198.51.100.0/24
state_root:
  description: The lab's directory.
  returned: success
  type: str
  sample: /run/ghostwarden-lab/gwlab
plan:
  description:
    - The steps executed (in check mode, due), in order, each with C(kind) and, as they apply, C(netns),
      C(command), C(path), C(mode) and C(pids).
  returned: success
  type: list
  elements: dict
  sample: [{kind: add_netns, netns: gwlab-sw, command: ip netns add gwlab-sw}]
changes:
  description: How many steps of each kind RV(plan) has.
  returned: success
  type: dict
  sample: {make_directory: 7, write_file: 1, add_netns: 6, add_link: 10, add_address: 11}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import run
from ansible_collections.ghostwarden.core.plugins.module_utils.lab._executor import run_lab


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="gwlab"),
            nodes=dict(type="raw", default=3),
            underlay_cidr=dict(type="str", default="192.0.2.0/24"),
            wan_cidr=dict(type="str", default="198.51.100.0/24"),
            clients=dict(type="raw", default=[]),
            state_root=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        supports_check_mode=True,
    )
    run(module, run_lab, needs=(NETADDR,))


if __name__ == "__main__":
    main()
