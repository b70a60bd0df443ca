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
