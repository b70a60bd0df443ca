# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter ghostwarden.core.cluster_node_topology (documented in cluster_node_topology.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.ghostwarden.core.plugins.module_utils.core._cluster import node_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError, ValidationError


def cluster_node_topology(topology, members, node, overrides=None, protected=None):
    try:
        return node_topology(topology, members, node, overrides, [] if protected is None else protected)
    except ValidationError as error:
        raise AnsibleFilterError("; ".join(str(issue) for issue in error.issues)) from None
    except GhostwardenError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"cluster_node_topology": cluster_node_topology}
