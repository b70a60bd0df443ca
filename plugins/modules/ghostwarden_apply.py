#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ghostwarden_apply
short_description: Turn a whole ghostwarden topology into host state
version_added: 0.1.0
description:
  - Validates a declarative network topology (routed, bridge, VLAN and VXLAN networks, port forwards,
    masquerade, DHCP/DNS and policy profiles) and computes everything a host needs for it - the
    C(inet ghostwarden) nftables table, the dnsmasq configuration of each network and the ordered plan of
    netlink and file operations.
  - With O(state=rendered) nothing on the host is read or changed; the module runs anywhere, without root
    and without pyroute2, so a topology can be reviewed and tested in CI before it is applied.
  - Topology files of the original Ghostwarden CLI (C(ghostnet.toml), C(ghostnet.yaml)) load unchanged.
  - Input errors are reported as one line naming the field path and the value, for example
    C(networks.nat_dev.forwards[0].public: port 70000 is out of range 1-65535); all errors are returned in RV(errors).
author:
  - ghostwarden.core contributors
extends_documentation_fragment:
  - ghostwarden.core._attributes
attributes:
  check_mode:
    support: full
    details: With O(state=rendered) the module never changes anything, in check mode or not.
  diff_mode:
    support: none
    details: Rendering changes nothing, so there is no difference to show.
  platform:
    support: full
    platforms: posix
options:
  topology:
    description:
      - The topology as a dictionary, usually the C(ghostwarden_topology) variable.
      - See the collection's C(docs/topology.md) for every field and its default.
      - Exactly one of O(topology) and O(src) is required.
    type: dict
  src:
    description:
      - Path of a topology file on the managed node, in this collection's format or the original CLI's.
      - The format follows the suffix - C(.toml), C(.yaml), C(.yml) or C(.json).
      - Exactly one of O(topology) and O(src) is required.
    type: path
  state:
    description:
      - V(rendered) validates the topology and returns the rendered ruleset, dnsmasq files and the plan of
        operations against an empty host, without touching the host.
    type: str
    required: true
    choices: [rendered]
  state_dir:
    description:
      - Directory of the collection's state files on the managed node. Rendered dnsmasq file names and the
        lease and PID files they refer to live under it.
      - Hosts that run several network namespaces on one filesystem use one directory per namespace.
    type: path
    default: /var/lib/ghostwarden
requirements:
  - netaddr
  - PyYAML (for YAML topology files)
  - tomli on Python older than 3.11 (for TOML topology files)
notes:
  - The topology's built-in policy profiles are C(routed-tight), C(public-web), C(l2-lan), C(proxmox-cluster),
    C(proxmox-storage), C(proxmox-backup) and C(proxmox-dmz); see C(docs/policy-profiles.md).
seealso:
  - name: nftables wiki
    description: The nftables project's documentation of the syntax the rendered ruleset uses.
    link: https://wiki.nftables.org/
"""

EXAMPLES = r"""
- name: Render the topology from the inventory and show the ruleset
  ghostwarden.core.ghostwarden_apply:
    topology: "{{ ghostwarden_topology }}"
    state: rendered
  register: rendered
  delegate_to: localhost

- name: Show the nft table that would be loaded
  ansible.builtin.debug:
    msg: "{{ rendered.ruleset }}"

- name: Render a topology file of the original Ghostwarden CLI
  ghostwarden.core.ghostwarden_apply:
    src: /etc/ghostwarden/ghostnet.toml
    state: rendered

- name: A routed NAT network with DHCP, DNS and a port forward
  ghostwarden.core.ghostwarden_apply:
    state: rendered
    topology:
      version: 1
      interfaces:
        uplink: enp6s0
      management:
        allow_from: [192.0.2.0/24]
      networks:
        nat_dev:
          type: routed
          cidr: 10.33.0.0/24
          gw_ip: 10.33.0.1
          dhcp: true
          dns:
            enabled: true
            zones: [dev.lan]
          masq_out: uplink
          forwards:
            - public: "0.0.0.0:4022/tcp"
              dst: "10.33.0.10:22"
          policy_profile: routed-tight
"""

RETURN = r"""
topology:
  description: The normalised topology, every default filled in, in this collection's format.
  returned: success
  type: dict
  sample:
    version: 1
    interfaces: {uplink: enp6s0}
    networks:
      nat_dev: {type: routed, iface: gw-nat_dev, cidr: 10.33.0.0/24, gw_ip: 10.33.0.1}
ruleset:
  description: The whole C(inet ghostwarden) nftables table as C(nft -f) text.
  returned: success
  type: str
  sample: "table inet ghostwarden {\n  ...\n}\n"
plan:
  description:
    - The ordered operations that would bring an empty host to the topology.
    - Each item has C(kind) (for example V(create_link), V(add_address), V(replace_ruleset)), C(target)
      (for example V(link:gw-nat_dev)) and C(details).
  returned: success
  type: list
  elements: dict
  sample:
    - {kind: create_link, target: "link:gw-nat_dev", details: {kind: bridge}}
dnsmasq:
  description: The dnsmasq configuration of every network with DHCP or DNS, file path to content.
  returned: success
  type: dict
  sample: {"/var/lib/ghostwarden/dnsmasq/nat_dev.conf": "interface=gw-nat_dev\n..."}
errors:
  description: Every input error found, one line each, when validation failed.
  returned: failure
  type: list
  elements: str
  sample: ["networks.nat_dev.gw_ip: 10.34.0.1 is not inside cidr 10.33.0.0/24"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ghostwarden.core.plugins.module_utils import _topology
from ansible_collections.ghostwarden.core.plugins.module_utils._compile import (
    compile_topology,
    read_topology_input,
    rendered_result,
)
from ansible_collections.ghostwarden.core.plugins.module_utils._errors import GhostwardenError


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            topology=dict(type="dict"),
            src=dict(type="path"),
            state=dict(type="str", required=True, choices=["rendered"]),
            state_dir=dict(type="path", default="/var/lib/ghostwarden"),
        ),
        mutually_exclusive=[("topology", "src")],
        required_one_of=[("topology", "src")],
        supports_check_mode=True,
    )
    if not _topology.HAS_NETADDR:
        module.fail_json(msg=missing_required_lib("netaddr"), exception=_topology.NETADDR_IMPORT_ERROR)

    try:
        data = read_topology_input(module.params["topology"], module.params["src"])
        compiled = compile_topology(data, state_dir=module.params["state_dir"])
    except GhostwardenError as exc:
        module.fail_json(msg=str(exc), **exc.to_result())

    for warning in compiled.topology.warnings:
        module.warn(warning)
    module.exit_json(changed=False, **rendered_result(compiled))


if __name__ == "__main__":
    main()
