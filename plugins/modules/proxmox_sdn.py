#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: proxmox_sdn
short_description: Export ghostwarden vxlan and VLAN networks as Proxmox VE SDN zones, vnets and subnets
version_added: 0.2.0
description:
  - Turns networks of a ghostwarden topology into Proxmox VE SDN objects, one zone and one vnet per network -
    a C(vxlan) network becomes a VXLAN zone whose peers are the network's C(peers) and C(local), with a vnet
    tagged with the VNI; a network with a VLAN becomes a VLAN zone on its C(parent) bridge, with a vnet tagged
    with the VLAN id. The network's subnets become the vnet's subnets, with C(gw_ip) as their gateway; the
    network's C(mtu) becomes the zone's.
  - All changes of a run are staged first and then applied with exactly one C(PUT /cluster/sdn), and the module
    waits for the apply task. On Proxmox VE 9 the SDN configuration is locked (C(POST /cluster/sdn/lock)) for the
    run, every write carries the lock token, and a failure before the apply is rolled back with
    C(POST /cluster/sdn/rollback). On Proxmox VE 8, which has no lock, the staged changes are undone in reverse
    order. A reload task that fails after PVE accepted the apply (PVE commits the configuration at that point) is
    undone by staging the previous configuration again and applying it with a second C(PUT /cluster/sdn). Either
    way the task fails naming the step that failed, and C(rolled_back) says whether the previous configuration
    is back.
  - The module changes only what it created. Its vnets carry the alias C(ghostwarden.<network>) (zones have no
    comment field in the API); their subnets, and zones that hold only such vnets, are its own too. An id it
    wants that is taken by another object is a conflict, reported without writing anything.
  - Zone and vnet ids are derived from O(zone_prefix) and the network's name - C(<prefix>z<name>) and
    C(<prefix><name>) when that fits Proxmox VE's 8 characters, else the prefix and the first hex digits of the
    SHA-1 of the name. They are returned in RV(zones) and RV(vnets); guests attach to the vnet id as their bridge.
  - When the SDN configuration has pending changes the module did not make, it refuses to apply (the apply would
    apply them too).
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._proxmox
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: Check mode reads the SDN configuration and returns the changes a real run would make, without locking or writing.
  diff_mode:
    support: full
    details: The diff shows the module's zones, vnets and subnets before and after, with the settings it manages.
options:
  topology:
    description:
      - The topology whose networks are exported, as M(ghostwarden.core.ghostwarden_apply) takes it - a mapping
        (usually the C(ghostwarden_topology) variable) or the path of a topology file (C(.toml), C(.yaml),
        C(.yml), C(.json)) where the module runs.
      - Required with O(state=present). With O(state=absent) it is optional; given, only the objects of
        O(networks) (default its vxlan and vlan networks) are removed.
    type: raw
  networks:
    description:
      - Names of the topology's networks to export. Default - every C(vxlan) and C(vlan) network.
      - A C(bridge) or C(routed) network can be named when it has a C(vlan) (its VLAN sub-interface on C(parent)).
      - Given, the run manages the objects of these networks only; not given, it manages the objects of every
        network it ever exported, so that the objects of networks no longer in the topology are removed.
    type: list
    elements: str
  zone_prefix:
    description:
      - The start of every zone and vnet id the module derives, 1-5 letters and digits starting with a letter.
    type: str
    default: gw
  state:
    description:
      - V(present) makes the module's SDN objects what the networks need; V(absent) removes them.
    type: str
    default: present
    choices: [present, absent]
  apply:
    description:
      - Whether to apply the SDN configuration (C(PUT /cluster/sdn)) after staging the changes.
      - V(false) leaves them pending, to be applied from the web interface or by a later run; a later run with
        V(true) applies the module's pending changes even when it has nothing else to change.
    type: bool
    default: true
requirements:
  - netaddr
notes:
  - The user or token needs C(SDN.Allocate) on C(/sdn) and C(SDN.Audit) to read the configuration.
  - DHCP ranges, DNS, SNAT and policy profiles of a network are not exported; ghostwarden keeps handling them on
    the hosts.
seealso:
  - module: ghostwarden.core.proxmox_attach
  - module: ghostwarden.core.proxmox_import
  - name: Proxmox VE SDN
    description: The SDN chapter of the Proxmox VE administration guide.
    link: https://pve.proxmox.com/pve-docs/chapter-pvesdn.html
"""

EXAMPLES = r"""
- name: Export the topology's vxlan and vlan networks as SDN vnets
  ghostwarden.core.proxmox_sdn:
    api_host: pve1.example.org
    api_token_id: ansible@pve!ghostwarden
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_path: /etc/ssl/pve-root-ca.pem
    topology: "{{ ghostwarden_topology }}"
  register: sdn

- name: Attach a VM to the vnet of overlay_lab
  ghostwarden.core.proxmox_attach:
    api_host: pve1.example.org
    vmid: 101
    bridge: "{{ (sdn.vnets | selectattr('network', 'equalto', 'overlay_lab') | first).vnet }}"

- name: Stage one network without applying
  ghostwarden.core.proxmox_sdn:
    api_host: pve1.example.org
    topology: /etc/ghostwarden/ghostnet.toml
    networks: [overlay_lab]
    apply: false

- name: Remove every SDN object the module created
  ghostwarden.core.proxmox_sdn:
    api_host: pve1.example.org
    state: absent
"""

RETURN = r"""
plan:
  description:
    - The writes made (in check mode - due), in order, each with C(action) (V(create), V(update), V(delete)),
      C(kind) (V(zone), V(vnet), V(subnet)), C(id), C(method), C(path), C(params) (without the lock token), and
      C(before) and C(after) (the settings the module manages, null when the object does not exist).
    - A last entry with C(action=apply) and C(kind=sdn) stands for the one C(PUT /cluster/sdn) when the
      configuration is applied.
  returned: success
  type: list
  elements: dict
  sample:
    - {action: create, kind: zone, id: gwzlab, method: POST, path: /cluster/sdn/zones,
       params: {zone: gwzlab, type: vlan, bridge: vmbr0}, before: null, after: {type: vlan, bridge: vmbr0}}
    - {action: apply, kind: sdn, id: "", method: PUT, path: /cluster/sdn, params: {}, before: null, after: null}
changes:
  description:
    - How many writes of each action and kind RV(plan) has, named C(<action>_<kind>) (such as V(create_vnet),
      V(apply_sdn)).
  returned: success
  type: dict
  sample: {create_zone: 1, create_vnet: 1, create_subnet: 1, apply_sdn: 1}
zones:
  description: The module's zones after the run (with O(state=absent), none), with their managed settings.
  returned: success
  type: list
  elements: dict
  sample: [{zone: gwzlab, type: vlan, bridge: vmbr0}]
vnets:
  description: The module's vnets after the run, each with the C(network) it stands for.
  returned: success
  type: list
  elements: dict
  sample: [{vnet: gwlab, zone: gwzlab, tag: 20, alias: ghostwarden.lab, network: lab}]
subnets:
  description: The module's subnets after the run, with their Proxmox VE id in C(subnet).
  returned: success
  type: list
  elements: dict
  sample: [{subnet: gwzlab-10.20.0.0-24, vnet: gwlab, cidr: 10.20.0.0/24, gateway: 10.20.0.1}]
applied:
  description: Whether the SDN configuration was applied (C(PUT /cluster/sdn)) in this run.
  returned: success
  type: bool
  sample: true
failed_step:
  description: "The step that failed, such as V(step 3 of 5: create vnet gwlab (POST /cluster/sdn/vnets\\))."
  returned: when a step failed
  type: str
  sample: "apply task (reloadnetworkall)"
rolled_back:
  description: Whether the SDN configuration was put back as it was after the failure.
  returned: when a step failed
  type: bool
  sample: true
rollback:
  description: How the failure was rolled back (or why it could not be).
  returned: when a step failed
  type: str
  sample: "rolled back with POST /cluster/sdn/rollback (6 staged change(s) dropped) and the SDN lock released"
conflicts:
  description: The objects the module would have to change but that are not its own.
  returned: when there are conflicts
  type: list
  elements: str
  sample: ["vnet gwlab exists and is not ghostwarden's network lab (its alias is 'office')"]
errors:
  description: Every input error found, one line each.
  returned: when the input was invalid
  type: list
  elements: str
  sample: ["networks[0]: 'nat' is not a network of the topology (networks: lab, overlay_lab)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import run
from ansible_collections.ghostwarden.core.plugins.module_utils.host._results import kind_counts
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import ProxmoxClient
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._module import (
    PROXMOX_ARGUMENT_SPEC,
    PROXMOX_LIBRARIES,
    connection_params,
    topology_option,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._sdn import (
    alias_owner,
    check_zone_prefix,
    desired_sdn,
    export_sdn,
    selected_networks,
)


def _listed(view: dict, kind: str) -> list[dict]:
    objects = []
    for key, settings in view[f"{kind}s"].items():
        entry = {kind: key, **settings}
        if kind == "vnet":
            entry["network"] = alias_owner(settings.get("alias"))
        objects.append(entry)
    return objects


def export_networks(module: AnsibleModule) -> dict:
    params = module.params
    prefix = check_zone_prefix(params["zone_prefix"])
    topology = topology_option(params["topology"]) if params["topology"] is not None else None
    # The run manages the objects of the networks named, or without names those of every network it marked
    # (present) - except that a topology given for state=absent limits removal to its selected networks.
    desired, scope = None, params["networks"]
    if topology is not None:
        names = [network.name for network in selected_networks(topology, params["networks"])]
        if params["state"] == "present":
            desired = desired_sdn(topology, names, prefix)
        else:
            scope = names
    client = ProxmoxClient.connect(connection_params(params))
    result = export_sdn(client, desired, networks=scope, apply=params["apply"], check_mode=module.check_mode)
    # Counted per action and object (create_vnet), as the host modules count create_link.
    changes = kind_counts(f"{change['action']}_{change['kind']}" for change in result.changes)
    output = {"changed": result.changed, "plan": result.changes, "changes": changes, "applied": result.applied,
              "zones": _listed(result.after, "zone"), "vnets": _listed(result.after, "vnet"),
              "subnets": _listed(result.after, "subnet")}
    if module._diff:
        output["diff"] = {"before": result.before, "after": result.after}
    return output


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            topology=dict(type="raw"),
            networks=dict(type="list", elements="str"),
            zone_prefix=dict(type="str", default="gw"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            apply=dict(type="bool", default=True),
            **PROXMOX_ARGUMENT_SPEC,
        ),
        required_if=[("state", "present", ("topology",))],
        supports_check_mode=True,
    )
    run(module, export_networks, needs=(NETADDR, *PROXMOX_LIBRARIES))


if __name__ == "__main__":
    main()
