#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ghostwarden_policy
short_description: One network's policy profile, port forwards and masquerade in the ghostwarden nft table
version_added: 0.1.0
description:
  - Sets the policy profile, DNAT port forwards and masquerade of one network that is already on the host
    (applied by M(ghostwarden.core.ghostwarden_network) or M(ghostwarden.core.ghostwarden_apply) with the same
    O(state_dir)).
  - The whole C(inet ghostwarden) table is rendered again from the recorded topology and replaced in one
    checked C(nft -f) transaction, so the other networks' chains, maps and sets come out exactly as they were.
    Other nft tables are never touched.
  - Management traffic (C(management) of the topology, and the SSH client the play runs over) is accepted
    before any profile.
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.platform
  - ghostwarden.core._host
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: Check mode returns the operations a real run would execute.
  diff_mode:
    support: full
    details: The diff shows the nft table before and after.
options:
  name:
    description:
      - The network's name, as under C(networks) in a topology.
    type: str
    required: true
  policy_profile:
    description:
      - A built-in profile (C(routed-tight), C(public-web), C(l2-lan), C(proxmox-cluster), C(proxmox-storage),
        C(proxmox-backup), C(proxmox-dmz)) or one defined in O(policies) or recorded earlier.
      - Left out, the network has no profile - its traffic is not filtered by this collection.
    type: str
  forwards:
    description:
      - Port forwards into the network, in the topology's syntax - a list of C(public) (V(0.0.0.0:4022/tcp))
        and C(dst) (V(10.33.0.10:22)) pairs; see the example.
    type: list
    elements: dict
  masq_out:
    description:
      - Masquerade the network's traffic leaving through this interface (a name or a key of O(interfaces)).
    type: str
  policies:
    description:
      - User profiles (name to profile), merged into the recorded ones; see the collection's C(docs/policy-profiles.md).
    type: dict
  management:
    description:
      - Replaces the recorded C(management) section (C(allow_from), C(ports), C(enforce)).
    type: dict
  interfaces:
    description:
      - Interface keys (for example C(uplink)), merged into the recorded ones.
    type: dict
  management_from_connection:
    description:
      - Accept the address of the SSH client the play runs over on the management ports before any policy.
    type: bool
    default: true
  state:
    description:
      - V(present) sets the network's policy fields to the given ones; V(absent) clears them (no profile,
        no forwards, no masquerade).
    type: str
    default: present
    choices: [present, absent]
requirements:
  - netaddr
  - pyroute2
  - nft on the managed node
seealso:
  - module: ghostwarden.core.ghostwarden_network
  - module: ghostwarden.core.ghostwarden_apply
"""

EXAMPLES = r"""
- name: NAT the dev network out of the uplink and forward SSH to one guest
  ghostwarden.core.ghostwarden_policy:
    name: nat_dev
    policy_profile: routed-tight
    masq_out: uplink
    interfaces: {uplink: enp6s0}
    forwards:
      - {public: "0.0.0.0:4022/tcp", dst: "10.33.0.10:22"}

- name: A user profile that only lets HTTPS in
  ghostwarden.core.ghostwarden_policy:
    name: web
    policy_profile: https-only
    policies:
      https-only:
        description: HTTPS in, anything out
        ingress_action: drop
        rules:
          - {direction: ingress, protocol: tcp, port: 443}
"""

RETURN = r"""
plan:
  description: The operations executed (in check mode, due), each with C(kind), C(target) and C(details).
  returned: success
  type: list
  elements: dict
  sample: [{kind: replace_ruleset, target: "ruleset:inet ghostwarden", details: {sha256: "..."}}]
changes:
  description: How many operations of each kind were executed (kinds with none are left out).
  returned: success
  type: dict
  sample: {replace_ruleset: 1}
ruleset:
  description: The whole C(inet ghostwarden) table as loaded.
  returned: success
  type: str
  sample: "table inet ghostwarden {\n  ...\n}\n"
generation:
  description: The number of applies that changed this host's owned state so far.
  returned: success
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import ruleset_scope
from ansible_collections.ghostwarden.core.plugins.module_utils.core._merge import with_policy
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    HOST_ARGUMENT_SPEC,
    apply_result,
    connection_sources,
    HOST_LIBRARIES,
    host_driver,
    run,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import topology_to_dict


def apply_policy(module: AnsibleModule) -> dict:
    params = module.params
    fields = None
    if params["state"] == "present":
        fields = {"policy_profile": params["policy_profile"], "forwards": params["forwards"] or [],
                  "masq_out": params["masq_out"]}
    with host_driver(module) as driver, driver.store.lock():
        recorded = driver.store.load().topology
        merged = with_policy(recorded, params["name"], fields, policies=params["policies"],
                             management=params["management"], interfaces=params["interfaces"])
        compiled = compile_topology(merged, state_dir=params["state_dir"],
                                    extra_management=connection_sources(params["management_from_connection"]))
        result = driver.apply(compiled.desired, check_mode=module.check_mode, want_after=module._diff, scope=ruleset_scope,
                              topology=topology_to_dict(compiled.topology))
        return {**apply_result(module, result), "ruleset": compiled.ruleset,
                "warnings": list(compiled.topology.warnings)}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            policy_profile=dict(type="str"),
            forwards=dict(type="list", elements="dict"),
            masq_out=dict(type="str"),
            policies=dict(type="dict"),
            management=dict(type="dict"),
            interfaces=dict(type="dict"),
            management_from_connection=dict(type="bool", default=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            **HOST_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    run(module, apply_policy, needs=HOST_LIBRARIES)


if __name__ == "__main__":
    main()
