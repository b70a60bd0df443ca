#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: proxmox_import
short_description: Read a Proxmox VE node's bridges, VLANs and firewall as a ghostwarden topology and profiles
version_added: 0.2.0
description:
  - Reads the network configuration of one Proxmox VE node (C(/nodes/{node}/network) - bridges with their
    ports, STP, VLAN awareness and VLAN ids, VLAN interfaces in both the C(vlan-raw-device)/C(vlan-id) and
    the C(<parent>.<vlan id>) forms, addresses and MTU) and returns it as a ghostwarden topology in RV(topology).
  - With O(include_firewall), also reads the cluster firewall (options, rules, security groups, IP sets and
    aliases) and the firewalls of the guests in O(vmids), and returns them as policy profiles in RV(profiles)
    (and under C(policies) of the topology) - C(pve-cluster) from the cluster level and C(pve-guest-<vmid>)
    for each guest. When the cluster firewall is enabled, every imported network names C(pve-cluster) as
    its C(policy_profile).
  - Nothing is dropped silently - every object or setting that has no equivalent in a topology or a profile
    (a default gateway, a macro with ICMP types or source ports, an IP set with C(nomatch) members, a rule
    limited to one interface, a bond, ...) is listed in RV(unsupported) with the Proxmox VE object and the
    reason, and disabled rules are listed as skipped.
  - The topology and the profiles are validated before they are returned; M(ghostwarden.core.ghostwarden_apply)
    with O(ghostwarden.core.ghostwarden_apply#module:state=rendered) accepts the topology as it is.
  - The module only reads; it never changes anything. The mapping is described in detail in the collection's
    C(docs/proxmox.md).
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.info_module
  - ghostwarden.core._proxmox
options:
  node:
    description:
      - The node whose network configuration is read (as C(pvesh get /nodes) lists it).
      - When the node has staged changes that are not applied yet (C(/etc/network/interfaces.new)), Proxmox VE
        lists the staged configuration, and so does the import.
    type: str
    required: true
  include_firewall:
    description:
      - Whether to read the firewall (cluster level, the security groups its rules use, and the guests in
        O(vmids)) and return it as policy profiles.
    type: bool
    default: true
  vmids:
    description:
      - Guests whose firewall (options, rules, IP sets and aliases) is imported as a profile C(pve-guest-<vmid>)
        each. Their node is found through C(/cluster/resources). Needs O(include_firewall).
    type: list
    elements: int
    default: []
requirements:
  - netaddr
seealso:
  - module: ghostwarden.core.ghostwarden_apply
  - module: ghostwarden.core.proxmox_sdn
"""

EXAMPLES = r"""
- name: Import node pve1's bridges and the cluster firewall
  ghostwarden.core.proxmox_import:
    api_host: pve1.example.org
    api_token_id: ansible@pve!ghostwarden
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_path: /etc/ssl/pve-root-ca.pem
    node: pve1
  register: imported

- name: Show what has no equivalent
  ansible.builtin.debug:
    msg: "{{ item.object }}: {{ item.reason }}"
  loop: "{{ imported.unsupported }}"

- name: Render the imported topology to review it
  ghostwarden.core.ghostwarden_apply:
    topology: "{{ imported.topology }}"
    state: rendered
  register: rendered

- name: Save the topology as a file
  ansible.builtin.copy:
    content: "{{ imported.topology | to_nice_yaml }}"
    dest: /etc/ghostwarden/pve1.yaml
    mode: "0644"

- name: Import the firewall of two guests as profiles too
  ghostwarden.core.proxmox_import:
    api_host: pve1.example.org
    node: pve1
    vmids: [100, 101]
"""

RETURN = r"""
plan:
  description: No operations - the module reads the node and changes nothing; every module returns RV(plan).
  returned: success
  type: list
  elements: dict
  sample: []
changes:
  description: No counts - the module changes nothing; every module returns RV(changes).
  returned: success
  type: dict
  sample: {}
topology:
  description:
    - The node's bridges and VLAN interfaces as a topology in this collection's format (one network per
      bridge, and per VLAN interface that is not a bridge port), with the imported profiles under C(policies).
    - Validated; see the collection's C(docs/topology.md) for the format.
  returned: success
  type: dict
  sample:
    version: 1
    policies:
      pve-cluster: {description: Imported from the Proxmox VE cluster firewall, ingress_action: accept,
                    egress_action: accept, host_action: drop,
                    rules: [{direction: host, action: accept, protocol: tcp, ports: [22]}]}
    networks:
      vmbr0: {type: bridge, iface: vmbr0, ports: [eno1], cidr: 192.168.1.0/24, gw_ip: 192.168.1.10,
              policy_profile: pve-cluster}
      vmbr1: {type: bridge, iface: vmbr1, ports: [eno2], vlan_filtering: true, vids: ["2-4094"]}
profiles:
  description: The imported policy profiles by name, in this collection's profile format (validated).
  returned: success
  type: dict
  sample:
    pve-cluster: {description: Imported from the Proxmox VE cluster firewall, ingress_action: accept,
                  egress_action: accept, host_action: drop, rules: []}
unsupported:
  description:
    - Every Proxmox VE object or setting left out, in the order found, with C(object) (the API path of the
      object, for rules with their position), C(reason), and C(config) (the object as the API listed it).
  returned: success
  type: list
  elements: dict
  sample:
    - object: nodes/pve1/network/vmbr0
      reason: "gateway 192.168.1.1: a topology holds no routes (the default route stays the host's own configuration)"
      config: {iface: vmbr0, type: bridge, gateway: 192.168.1.1}
    - object: cluster/firewall/rules/2
      reason: "the rule is disabled (enable=0): skipped"
      config: {pos: 2, type: in, action: ACCEPT, enable: 0}
notes:
  description: Facts about the import that lose nothing but are worth knowing, such as a disabled firewall level.
  returned: success
  type: list
  elements: str
  sample: ["the cluster firewall is disabled (enable is not 1): profile pve-cluster is returned but guards no network"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import run
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import ProxmoxClient
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._import import import_proxmox, read_proxmox
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._module import (
    PROXMOX_ARGUMENT_SPEC,
    PROXMOX_LIBRARIES,
    connection_params,
)


def import_node(module: AnsibleModule) -> dict:
    params = module.params
    client = ProxmoxClient.connect(connection_params(params))
    data = read_proxmox(client, params["node"], include_firewall=params["include_firewall"], vmids=params["vmids"])
    imported = import_proxmox(data)
    return {"changed": False, "topology": imported.topology, "profiles": imported.profiles,
            "unsupported": imported.unsupported, "notes": imported.notes}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            node=dict(type="str", required=True),
            include_firewall=dict(type="bool", default=True),
            vmids=dict(type="list", elements="int", default=[]),
            **PROXMOX_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    run(module, import_node, needs=(NETADDR, *PROXMOX_LIBRARIES))


if __name__ == "__main__":
    main()
