# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""From user input to everything the host should look like, in one pure step.

Modules call :func:`compile_topology` once: it validates, renders the nft table
and the dnsmasq files, and derives the desired host state the planner compares
with the live one. Nothing here touches the host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import render_dnsmasq
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import HostState, empty_state
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import DEFAULT_STATE_DIR, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import render_ruleset
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, plan
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import ProfileDirs
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import (
    load_topology_file,
    parse_topology_with_files,
    topology_to_dict,
)


@dataclass(frozen=True)
class CompiledTopology:
    topology: Topology
    ruleset: str
    dnsmasq_files: Mapping[str, str]
    desired: HostState
    profile_files: Mapping[str, str] = field(default_factory=dict)  # profile name -> the file it was read from

    def normalised(self) -> dict:
        """The normalised topology (``topology_to_dict``), each profile read from a file with its ``file``."""
        return topology_to_dict(self.topology, self.profile_files)


def read_topology_input(topology: object = None, src: str | None = None) -> dict:
    """The raw topology from exactly one of the module's ``topology`` and ``src`` options."""
    if topology is not None and src:
        raise ValidationError(Issue("src", "give either topology or src, not both"))
    if src:
        return load_topology_file(src)
    if topology is None:
        raise ValidationError(Issue("topology", "one of topology or src is required"))
    return topology  # type: ignore[return-value]  # parse_topology checks the type


def compile_topology(
    data: object,
    *,
    state_dir: str = DEFAULT_STATE_DIR,
    extra_management: Sequence[str] = (),
    profile_dirs: ProfileDirs | None = None,
) -> CompiledTopology:
    """Validate ``data`` and render everything the host should have; ``profile_dirs``: where profile files are read from."""
    topology, profile_files = parse_topology_with_files(data, profile_dirs=profile_dirs)
    ruleset = render_ruleset(topology, extra_management)
    dnsmasq_files = render_dnsmasq(topology, state_dir)
    desired = desired_state(topology, ruleset=ruleset, dnsmasq_files=dnsmasq_files)
    return CompiledTopology(topology=topology, ruleset=ruleset, dnsmasq_files=dnsmasq_files, desired=desired,
                            profile_files=profile_files)


def rendered_result(compiled: CompiledTopology) -> dict:
    """The result of ``state: rendered``: what an apply to an empty host would do."""
    operations = plan(compiled.desired, empty_state())
    return {
        "topology": compiled.normalised(),
        "ruleset": compiled.ruleset,
        "plan": [operation.to_dict() for operation in operations],
        "dnsmasq": dict(sorted(compiled.dnsmasq_files.items())),
    }
