#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: proxmox_attach
short_description: Attach a Proxmox VE VM or container NIC to a ghostwarden network or a bridge
version_added: 0.2.0
description:
  - Adds, changes or removes one network interface (C(netN)) of a QEMU VM or an LXC container through the
    Proxmox VE API.
  - The NIC goes on a network of a ghostwarden topology given by name (O(network) with O(topology)) - on the
    bridge the host modules create for it, tagged with its VLAN where it has one - or on an explicit O(bridge)
    and O(tag).
  - The existing MAC address is always kept, unless O(mac) is given; Proxmox VE would otherwise generate a
    new one on every change.
  - Settings that are not given (O(firewall), O(rate), O(mtu), O(trunks), ...) stay as they are on an
    existing NIC. O(bridge) (or O(network)) and O(tag) go together - a NIC moved to a bridge without O(tag)
    ends up untagged.
  - NICs are compared in Proxmox VE's canonical form (key order, booleans as 1/0, C(rate=10.0) as C(rate=10),
    C(virtio=MAC) as model and MAC), so a run that asks for what is there changes nothing and writes nothing.
  - Every write carries the configuration digest; when another user changed the guest between the read and
    the write, the module reads again, decides again and retries once, then fails saying so.
  - A running VM is changed with the asynchronous POST and the module waits for its task. A change Proxmox VE
    cannot apply live (a new or removed NIC, or a new model, MAC, queues or MTU, on a VM without C(network) in
    its C(hotplug) setting) stays pending until the next start; it is reported in RV(pending) and
    RV(reboot_required) instead of looking done.
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
    details: Check mode reads the guest and returns the NIC it would write (RV(after), the MAC kept) without writing.
  diff_mode:
    support: full
    details: The diff shows the C(netN) line before and after, in canonical form.
options:
  vmid:
    description:
      - The guest's id. Exactly one of O(vmid) and O(name) is required.
    type: int
  name:
    description:
      - The guest's name, which must be unique in the cluster. Exactly one of O(vmid) and O(name) is required.
    type: str
  node:
    description:
      - The node the guest runs on, with O(vmid) and O(guest_type).
      - Found through C(/cluster/resources) when not given. The action plugin passes it when the task runs
        on the controller, from one lookup per play host that serves every guest of a loop.
    type: str
  guest_type:
    description:
      - Whether the guest is a QEMU VM or an LXC container, with O(node).
      - Found through C(/cluster/resources) when not given.
    type: str
    choices: [qemu, lxc]
  guest_status:
    description:
      - Whether the guest runs, with O(node) and O(guest_type). A stopped VM is changed with the synchronous
        PUT, a running one (or one whose state is not known) with the asynchronous POST.
      - Found through C(/cluster/resources) when not given.
    type: str
    choices: [running, stopped]
  interface:
    description:
      - The NIC, V(net0) to V(net31).
      - Required with O(state=absent).
      - With O(state=present) and no O(interface), the NIC already on the wanted bridge and tag (the lowest
        one if several are), else the first free C(netN).
    type: str
  network:
    description:
      - A network of O(topology) to attach the NIC to, instead of O(bridge).
      - Routed, bridge and vxlan networks are the bridge named by the network's C(iface); the NIC is untagged,
        or tagged with O(tag) on a VLAN-aware bridge (C(vlan_filtering)) that carries that VLAN.
      - A vlan network is a VLAN device on C(parent); the NIC goes on C(parent) (a bridge of the node, usually
        the VLAN-aware C(vmbr0)) tagged with the network's C(vlan).
    type: str
  topology:
    description:
      - The topology O(network) belongs to, as M(ghostwarden.core.ghostwarden_apply) takes it - a mapping
        (usually the C(ghostwarden_topology) variable) or the path of a topology file (C(.toml), C(.yaml),
        C(.yml), C(.json)) where the module runs.
    type: raw
  bridge:
    description:
      - The bridge (or SDN vnet) to attach the NIC to, instead of O(network).
    type: str
  tag:
    description:
      - The VLAN tag of the NIC on its bridge, 1-4094. Without it, a NIC given O(bridge) or O(network) is untagged.
    type: int
  trunks:
    description:
      - VLANs the NIC carries tagged, as a list (V([10, "20-30"])) or in Proxmox VE's form V(10;20-30).
        Containers take single VLAN ids only. An empty list removes them.
    type: raw
  firewall:
    description:
      - Whether the Proxmox VE firewall filters this NIC (it also needs the guest's firewall enabled).
    type: bool
  link_down:
    description:
      - Whether the NIC is disconnected, like a pulled cable.
    type: bool
  rate:
    description:
      - Rate limit in MB/s; V(0) for none.
    type: float
  mtu:
    description:
      - The MTU. QEMU (virtio only) 1-65520, where V(1) means the bridge's MTU; containers 64-65535.
    type: int
  queues:
    description:
      - Number of packet queues of a QEMU NIC, 0-64.
    type: int
  model:
    description:
      - The QEMU NIC model; a new NIC is V(virtio). Not for containers.
    type: str
    choices: [e1000, e1000-82540em, e1000-82544gc, e1000-82545em, e1000e, i82551, i82557b, i82559er, ne2k_isa,
              ne2k_pci, pcnet, rtl8139, virtio, vmxnet3]
  mac:
    description:
      - The MAC address to set. Without it the NIC keeps its MAC; a new NIC gets one generated by Proxmox VE
        (returned in RV(mac)).
    type: str
  container_interface:
    description:
      - The name of the interface inside an LXC container; a new NIC C(netN) is named C(ethN). Not for VMs.
    type: str
  ip:
    description:
      - IPv4 configuration of a container NIC - an address with prefix length, V(dhcp) or V(manual). Not for VMs.
    type: str
  ip6:
    description:
      - IPv6 configuration of a container NIC - an address with prefix length, V(auto), V(dhcp) or V(manual).
        Not for VMs.
    type: str
  gw:
    description:
      - IPv4 default gateway of a container NIC. Not for VMs.
    type: str
  gw6:
    description:
      - IPv6 default gateway of a container NIC. Not for VMs.
    type: str
  state:
    description:
      - V(present) makes the NIC exist with the settings given; V(absent) removes O(interface) (a NIC that does
        not exist is left alone). With V(absent) only O(interface) and the guest matter.
    type: str
    default: present
    choices: [present, absent]
requirements:
  - netaddr (with O(topology))
notes:
  - The user or token needs C(VM.Audit) and C(VM.Config.Network) on the guest, and C(SDN.Use) on the bridge's
    zone for non-root users.
seealso:
  - module: ghostwarden.core.ghostwarden_apply
  - name: Proxmox VE API
    description: The qemu and lxc C(config) and C(pending) endpoints this module uses.
    link: https://pve.proxmox.com/pve-docs/api-viewer/
"""

EXAMPLES = r"""
- name: Attach VM web1 to the topology network nat_dev
  ghostwarden.core.proxmox_attach:
    api_host: pve1.example.org
    api_token_id: ansible@pve!ghostwarden
    api_token_secret: "{{ vault_pve_token_secret }}"
    ca_path: /etc/ssl/pve-root-ca.pem
    name: web1
    network: nat_dev
    topology: "{{ ghostwarden_topology }}"
  register: attached

- name: Tell when the change waits for a restart
  ansible.builtin.debug:
    msg: "{{ attached.interface }} of web1 changes at the next start"
  when: attached.reboot_required

- name: Put container 200's net1 on vmbr0, VLAN 30, with the firewall and DHCP
  ghostwarden.core.proxmox_attach:
    api_host: pve1.example.org
    vmid: 200
    interface: net1
    bridge: vmbr0
    tag: 30
    firewall: true
    ip: dhcp

- name: Attach several guests in one task (one guest lookup for the whole loop)
  ghostwarden.core.proxmox_attach:
    api_host: pve1.example.org
    vmid: "{{ item }}"
    network: lab
    topology: /etc/ghostwarden/ghostnet.toml
  loop: [101, 102, 103]

- name: Detach net2 of VM 101
  ghostwarden.core.proxmox_attach:
    api_host: pve1.example.org
    vmid: 101
    interface: net2
    state: absent
"""

RETURN = r"""
plan:
  description:
    - The write made to the NIC (in check mode - due), or none when the NIC is already as asked.
    - The item has C(kind) (V(create_nic), V(modify_nic) or V(delete_nic)), C(target) (V(nic:<vmid>:<interface>))
      and C(details) with the NIC C(before) and C(after), as in RV(before) and RV(after).
  returned: success
  type: list
  elements: dict
  sample: [{kind: modify_nic, target: "nic:101:net1", details: {before: "virtio=BC:24:11:3A:5E:01,bridge=vmbr0",
                                                                 after: "virtio=BC:24:11:3A:5E:01,bridge=gw-nat_dev"}}]
changes:
  description: How many writes of each kind RV(plan) has.
  returned: success
  type: dict
  sample: {modify_nic: 1}
interface:
  description: The NIC the task worked on.
  returned: success
  type: str
  sample: net1
before:
  description: The NIC before the task, in canonical form (pending changes included), or null when it did not exist.
  returned: success
  type: str
  sample: "virtio=BC:24:11:3A:5E:01,bridge=vmbr0"
after:
  description:
    - The NIC after the task, in canonical form (pending changes included), or null when it does not exist.
    - In check mode, the NIC that would be written (without a MAC for a new NIC, whose MAC Proxmox VE generates).
  returned: success
  type: str
  sample: "virtio=BC:24:11:3A:5E:01,bridge=gw-nat_dev,firewall=1"
mac:
  description: The MAC address of the NIC after the task, or null when it has none (detached, or new in check mode).
  returned: success
  type: str
  sample: "BC:24:11:3A:5E:01"
pending:
  description:
    - The guest's configuration keys with a change that waits for the next start (of this NIC or others).
    - In check mode, the keys that would be pending after the change.
  returned: success
  type: list
  elements: str
  sample: [net1]
reboot_required:
  description: Whether this NIC's configuration is pending, that is, takes effect only when the guest restarts.
  returned: success
  type: bool
  sample: false
vmid:
  description: The guest's id.
  returned: success
  type: int
  sample: 101
node:
  description: The node of the guest.
  returned: success
  type: str
  sample: pve1
guest_type:
  description: V(qemu) or V(lxc).
  returned: success
  type: str
  sample: qemu
status_code:
  description: The HTTP status of the API request that failed.
  returned: when an API request failed
  type: int
  sample: 400
api_errors:
  description: The API's message for each refused parameter.
  returned: when the API refused parameters
  type: dict
  sample: {net1: "invalid format - format error"}
errors:
  description: Every input error found, one line each.
  returned: when the input was invalid
  type: list
  elements: str
  sample: ["tag: 5000 is out of range 1-4094"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import run
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._attach import AttachRequest, attach
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import ProxmoxClient
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._module import (
    ATTACH_ARGUMENT_SPEC,
    ATTACH_OPTION_RULES,
    PROXMOX_LIBRARIES,
    connection_params,
    topology_option,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._nic import NicSettings, network_attachment

NIC_OPTIONS = ("trunks", "firewall", "link_down", "rate", "mtu", "queues", "model", "mac", "container_interface",
               "ip", "ip6", "gw", "gw6")


def nic_settings(params: dict) -> NicSettings:
    bridge, tag = params["bridge"], params["tag"]
    if params["network"] is not None:
        attachment = network_attachment(topology_option(params["topology"]), params["network"], tag)
        bridge, tag = attachment.bridge, attachment.tag
    return NicSettings(bridge=bridge, tag=tag, **{option: params[option] for option in NIC_OPTIONS})


def nic_plan(result: dict) -> list[dict]:
    """The one write to the NIC as the result's ``plan``, or none."""
    if not result["changed"]:
        return []
    kind = "create_nic" if result["before"] is None else "delete_nic" if result["after"] is None else "modify_nic"
    return [{"kind": kind, "target": f"nic:{result['vmid']}:{result['interface']}",
             "details": {"before": result["before"], "after": result["after"]}}]


def attach_nic(module: AnsibleModule) -> dict:
    params = module.params
    settings = nic_settings(params) if params["state"] == "present" else NicSettings()
    warnings = []
    if params["ca_path"] and not params["validate_certs"]:
        warnings.append("ca_path is not used: validate_certs is false, so the API's certificate is not verified")
    request = AttachRequest(state=params["state"], settings=settings, vmid=params["vmid"], name=params["name"],
                            interface=params["interface"], node=params["node"], guest_type=params["guest_type"],
                            guest_status=params["guest_status"])
    client = ProxmoxClient.connect(connection_params(params))
    result = attach(client, request, check_mode=module.check_mode, diff=module._diff)
    return {**result, "plan": nic_plan(result), "warnings": warnings}


def main() -> None:
    module = AnsibleModule(argument_spec=ATTACH_ARGUMENT_SPEC, supports_check_mode=True, **ATTACH_OPTION_RULES)
    needs = (NETADDR, *PROXMOX_LIBRARIES) if module.params["topology"] is not None else PROXMOX_LIBRARIES
    run(module, attach_nic, needs=needs)


if __name__ == "__main__":
    main()
