# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of every module that reads or changes a host's network state.
    DOCUMENTATION = r"""
options:
  netns:
    description:
      - Work inside this network namespace (a name as listed by C(ip netns list)) instead of the host's own.
      - The namespace must exist; the module never creates one.
    type: str
  state_dir:
    description:
      - Directory of the collection's state files on the managed node - ownership records, the applied
        topology, dnsmasq configuration, lease and PID files.
      - Hosts that run several network namespaces on one filesystem use one directory per namespace.
    type: path
    default: /var/lib/ghostwarden
"""

    # Options of the modules that apply a topology and so can lock the operator out (DESIGN 4.5).
    LOCKOUT = r"""
options:
  allow_lockout:
    description:
      - Apply a topology although it can cut the operator off the host. Without it such a topology fails
        before anything changes, with one line per problem naming the field and the reason.
      - "Refused are: C(management.enforce: false) or C(management.ports: []); a TCP forward of a management
        port on every address, or on the address the play's SSH connection arrived at; a profile that drops a
        management port while the guard protects no one (no C(management.allow_from), no SSH connection);
        a network whose subnet contains the controller's address, or overlaps a subnet on the interface the
        host answers the controller through; enslaving that interface to a bridge without
        C(adopt_port_addresses); a profile on the network carrying the connection that drops it while the
        guard does not accept it."
      - The checks that need the host (its route back to the controller, that interface's addresses and
        subnets) run on the managed node before anything is planned, in check mode too; they only apply
        when the module runs in the namespace the SSH connection arrived in (O(netns) unset).
      - With V(true) each problem is a warning instead, and a confirm window (O(ghostwarden.core.ghostwarden_apply#module:confirm_timeout))
        still rolls back a change that does cut the connection.
    type: bool
    default: false
"""

    # Options of the modules that change a host: how much of the change the result carries.
    RESULTS = r"""
options:
  return_content:
    description:
      - Return everything about the change - every operation of RV(plan) with its file and ruleset contents and,
        where the module returns them, the normalised C(topology) and the whole C(ruleset).
      - Left V(false), the result is small whatever the size of the topology (AWX stores every task result) -
        C(changed), RV(changes) (counts per kind), RV(summary), RV(generation), and the first 50 operations of RV(plan)
        without contents, with RV(plan_omitted) saying how many more there are. Diff mode shows what changed.
    type: bool
    default: false
"""
