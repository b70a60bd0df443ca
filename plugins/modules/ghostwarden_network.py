#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ghostwarden_network
short_description: One network's bridges, VLAN and VXLAN links, addresses and DHCP/DNS on a host
version_added: 0.1.0
description:
  - Creates, changes or removes the L2/L3 objects of one network of a ghostwarden topology - its bridge,
    VLAN sub-interface or VXLAN device with one FDB entry per peer, member ports, gateway addresses, the
    forwarding sysctls it needs and its dnsmasq instance for DHCP and DNS.
  - Other networks' objects and the nft table are left as they are; the network's policy, port forwards and
    masquerade are managed by M(ghostwarden.core.ghostwarden_policy).
  - Links the module creates are marked in the kernel with the interface alias C(ghostwarden:<network>);
    foreign links are never changed, except existing links listed in C(ports), which are enslaved to the
    network's bridge and released again when no longer listed.
  - The network is recorded in the state directory, so that M(ghostwarden.core.ghostwarden_policy) and
    M(ghostwarden.core.ghostwarden_apply) with O(ghostwarden.core.ghostwarden_apply#module:state=gathered) see it.
  - The module reads no policy profile files (it has no C(policy_dirs) option) - the nft table is not its business,
    and profiles recorded from files keep their recorded copies. M(ghostwarden.core.ghostwarden_policy) and
    M(ghostwarden.core.ghostwarden_apply) read profile files again.
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.platform
  - ghostwarden.core._host
  - ghostwarden.core._host.lockout
  - ghostwarden.core._host.results
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: >-
      Check mode returns the operations a real run would execute and writes nothing (state directory, lock, journal,
      dnsmasq files and processes); an unfinished earlier apply is reported in RV(recovery), not rolled back.
  diff_mode:
    support: full
    details: The diff shows the owned links, addresses, FDB entries and ports, and the network's dnsmasq file.
options:
  name:
    description:
      - The network's name, as under C(networks) in a topology.
    type: str
    required: true
  network:
    description:
      - The network's entry in the topology schema (C(type), C(cidr), C(gw_ip), C(iface), C(dhcp), C(dns),
        C(vlan), C(vni), C(peers), C(ports), ...); see the collection's C(docs/topology.md).
      - C(policy_profile), C(forwards) and C(masq_out) belong to M(ghostwarden.core.ghostwarden_policy) and are
        refused here.
      - Required with O(state=present).
    type: dict
  interfaces:
    description:
      - Interface keys the network may refer to (for example C(uplink) for C(parent)), merged into the
        recorded ones.
    type: dict
  state:
    description:
      - V(present) makes the network's objects match O(network); V(absent) removes them.
    type: str
    default: present
    choices: [present, absent]
requirements:
  - netaddr
  - pyroute2
  - ip and dnsmasq on the managed node
seealso:
  - module: ghostwarden.core.ghostwarden_policy
  - module: ghostwarden.core.ghostwarden_apply
"""

EXAMPLES = r"""
- name: A routed network with DHCP and DNS
  ghostwarden.core.ghostwarden_network:
    name: nat_dev
    network:
      type: routed
      cidr: 10.33.0.0/24
      gw_ip: 10.33.0.1
      dhcp: true
      dns: {enabled: true, zones: [dev.lan]}

- name: A VXLAN overlay bridged on every node
  ghostwarden.core.ghostwarden_network:
    name: overlay_lab
    network:
      type: vxlan
      vni: 1200
      bridge: br-overlay
      peers: [10.0.0.11, 10.0.0.12]
      local: 10.0.0.10

- name: Remove a network's links, addresses and dnsmasq instance
  ghostwarden.core.ghostwarden_network:
    name: overlay_lab
    state: absent
"""

RETURN = r"""
plan:
  description:
    - The operations executed (in check mode, due), each with C(kind), C(target) and C(details).
    - Unless O(return_content=true), the first 50 without file and ruleset contents; RV(plan_omitted) counts the rest.
  returned: success
  type: list
  elements: dict
  sample: [{kind: create_link, target: "link:gw-nat_dev", details: {type: bridge}}]
plan_omitted:
  description: How many operations RV(plan) leaves out (RV(changes) counts them all); O(return_content=true) lists them.
  returned: when the plan has more than 50 operations and O(return_content=false)
  type: int
  sample: 120
summary:
  description: One line saying what the run did (in check mode, would do), or V(no change).
  returned: success
  type: str
  sample: "applied 2 operations (1 create_link, 1 add_address)"
changes:
  description: How many operations of each kind were executed (kinds with none are left out).
  returned: success
  type: dict
  sample: {create_link: 1, add_address: 1}
dnsmasq:
  description: The dnsmasq process changes made or due, such as V(started nat_dev).
  returned: success
  type: list
  elements: str
  sample: ["started nat_dev"]
generation:
  description: The number of applies that changed this host's owned state so far.
  returned: success
  type: int
  sample: 2
recovery:
  description:
    - In check mode, the unfinished earlier apply whose journal is in O(state_dir); a real run rolls it back (or finishes
      its commit) before its own plan, check mode only reports it. RV(plan) is what the real run executes after it.
    - The keys are those of M(ghostwarden.core.ghostwarden_apply)'s RV(ghostwarden.core.ghostwarden_apply#module:recovery).
  returned: in check mode, when an earlier apply did not finish
  type: dict
  sample: {action: roll back, generation: 1, reason: "the apply started ... did not finish because it was interrupted; ...",
           plan: [], changes: {}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import instance_paths
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import network_scope, recovery_keys
from ansible_collections.ghostwarden.core.plugins.module_utils.core._merge import with_network
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    HOST_ARGUMENT_SPEC,
    apply_result,
    connection_sources,
    HOST_LIBRARIES,
    host_driver,
    lockout_guard,
    LOCKOUT_ARGUMENT_SPEC,
    RETURN_CONTENT_ARGUMENT_SPEC,
    run,
)


def apply_network(module: AnsibleModule) -> dict:
    params = module.params
    name = params["name"]
    with host_driver(module) as driver, driver.locked(check_mode=module.check_mode):
        recorded = driver.store.load().topology
        network = params["network"] if params["state"] == "present" else None
        compiled = compile_topology(with_network(recorded, name, network, params["interfaces"]),
                                    state_dir=params["state_dir"], extra_management=connection_sources(True))
        links, config = [], None
        if network is not None:
            model = compiled.topology.network(name)
            links = [link for link in (model.iface, model.vlan_iface, model.vxlan_iface) if link]
            if model.dhcp or model.dns:
                config = instance_paths(params["state_dir"], name).config
        elif recorded and name in (recorded.get("networks") or {}):
            config = instance_paths(params["state_dir"], name).config
        result = driver.apply(compiled.desired, check_mode=module.check_mode, want_after=module._diff,
                              scope=network_scope(name, links, config),
                              topology=compiled.normalised(),
                              guard=lockout_guard(module, compiled.topology, protect_connection=True))
        return {**apply_result(module, result), **recovery_keys(result),
                "warnings": [*compiled.topology.warnings, *result.warnings]}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            network=dict(type="dict"),
            interfaces=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            **LOCKOUT_ARGUMENT_SPEC,
            **RETURN_CONTENT_ARGUMENT_SPEC,
            **HOST_ARGUMENT_SPEC,
        ),
        required_if=[("state", "present", ("network",))],
        supports_check_mode=True,
    )
    run(module, apply_network, needs=HOST_LIBRARIES)


if __name__ == "__main__":
    main()
