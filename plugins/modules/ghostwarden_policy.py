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
  - ghostwarden.core._host.lockout
  - ghostwarden.core._host.results
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: >-
      Check mode returns the operations a real run would execute and writes nothing (state directory, lock, journal);
      an unfinished earlier apply is reported in RV(recovery), not rolled back. A new table is checked with C(nft -c)
      in the target namespace; a table the kernel refuses fails the check run naming its line.
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
      - A profile defined in O(policies) or recorded earlier, a built-in profile (C(routed-tight), C(public-web),
        C(l2-lan), C(proxmox-cluster), C(proxmox-storage), C(proxmox-backup), C(proxmox-dmz)), or a profile file
        in O(policy_dirs), in this order.
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
  policy_dirs:
    description:
      - Directories where a profile is looked for when it is neither defined in O(policies), recorded earlier, nor
        built in - in each, in the order given, C(<name>.toml), C(<name>.yaml) and C(<name>.yml); the first file
        found is read. Directories that do not exist are skipped; every entry must be an absolute path.
      - A profile file holds one profile in the original Ghostwarden CLI's format or this collection's, with its
        C(name) inside equal to the file's name.
      - Profiles recorded from files (with C(file) in the recorded topology) are read again from the file they were
        read from while it exists, so a changed file takes effect; otherwise the recorded copy is used.
    type: list
    elements: path
    default: [/etc/ghostwarden/policies, /etc/gwarden/policies]
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

- name: A profile file of the original CLI, /etc/gwarden/policies/web-frontend.toml
  ghostwarden.core.ghostwarden_policy:
    name: web
    policy_profile: web-frontend
"""

RETURN = r"""
plan:
  description:
    - The operations executed (in check mode, due), each with C(kind), C(target) and C(details).
    - Unless O(return_content=true), the first 50 without file and ruleset contents; RV(plan_omitted) counts the rest.
  returned: success
  type: list
  elements: dict
  sample: [{kind: replace_ruleset, target: "ruleset:inet ghostwarden", details: {sha256: "..."}}]
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
  sample: {replace_ruleset: 1}
ruleset:
  description: The whole C(inet ghostwarden) table as loaded.
  returned: when O(return_content=true)
  type: str
  sample: "table inet ghostwarden {\n  ...\n}\n"
generation:
  description: The number of applies that changed this host's owned state so far.
  returned: success
  type: int
  sample: 3
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
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import recovery_keys, ruleset_scope
from ansible_collections.ghostwarden.core.plugins.module_utils.core._merge import with_policy
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import profile_dirs_option
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    HOST_ARGUMENT_SPEC,
    POLICY_DIRS_ARGUMENT_SPEC,
    apply_result,
    connection_sources,
    lockout_guard,
    LOCKOUT_ARGUMENT_SPEC,
    RETURN_CONTENT_ARGUMENT_SPEC,
    HOST_LIBRARIES,
    host_driver,
    run,
)


def apply_policy(module: AnsibleModule) -> dict:
    params = module.params
    fields = None
    if params["state"] == "present":
        fields = {"policy_profile": params["policy_profile"], "forwards": params["forwards"] or [],
                  "masq_out": params["masq_out"]}
    with host_driver(module) as driver, driver.locked(check_mode=module.check_mode):
        recorded = driver.store.load().topology
        merged = with_policy(recorded, params["name"], fields, policies=params["policies"],
                             management=params["management"], interfaces=params["interfaces"])
        compiled = compile_topology(merged, state_dir=params["state_dir"],
                                    extra_management=connection_sources(params["management_from_connection"]),
                                    profile_dirs=profile_dirs_option(params["policy_dirs"]))
        result = driver.apply(compiled.desired, check_mode=module.check_mode, want_after=module._diff, scope=ruleset_scope,
                              topology=compiled.normalised(),
                              guard=lockout_guard(module, compiled.topology,
                                                  protect_connection=params["management_from_connection"]))
        output = {**apply_result(module, result), **recovery_keys(result),
                  "warnings": [*compiled.topology.warnings, *result.warnings]}
        if params["return_content"]:
            output["ruleset"] = compiled.ruleset
        return output


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
            **LOCKOUT_ARGUMENT_SPEC,
            **RETURN_CONTENT_ARGUMENT_SPEC,
            **POLICY_DIRS_ARGUMENT_SPEC,
            **HOST_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    run(module, apply_policy, needs=HOST_LIBRARIES)


if __name__ == "__main__":
    main()
