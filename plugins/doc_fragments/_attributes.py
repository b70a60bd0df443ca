# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is private to ghostwarden.core and may change without notice.
# Other collections and standalone modules must not use it.

from __future__ import annotations


class ModuleDocFragment:
    """Module attributes shared by the ghostwarden.core modules.

    ``ghostwarden.core._attributes`` describes the attributes; the other fragments say how far
    a module supports them and are combined with it, e.g.
    ``ghostwarden.core._attributes``, ``ghostwarden.core._attributes.check_mode``,
    ``ghostwarden.core._attributes.diff_mode``, ``ghostwarden.core._attributes.platform``.
    """

    # Descriptions only; every module adds the support level of each attribute.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changes it would make without changing the target.
  diff_mode:
    description: Returns a readable before and after of what it changed (or would change in check mode) when run in diff mode.
  idempotent:
    description:
      - Run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that nothing else changed the objects the module owns between the two runs.
"""

    # For modules that change the host: check mode computes the full plan and stops before the first write.
    CHECK_MODE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - Check mode observes the host, computes the complete plan and returns it without changing anything.
"""

    # For modules that change the host and show each change.
    DIFF_MODE = r"""
options: {}
attributes:
  diff_mode:
    support: full
    details:
      - The diff shows the owned nftables table as ruleset text, link attributes and generated files before and after.
"""

    # For modules that only read or compute and never change the target.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""

    # Netlink, nftables and network namespaces are Linux kernel interfaces.
    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target operating systems the module can manage.
    support: full
    platforms: linux
"""

    # For the modules listed in the C(ghostwarden) action group of meta/runtime.yml.
    ACTIONGROUP_GHOSTWARDEN = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ghostwarden.core.ghostwarden) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - ghostwarden.core.ghostwarden
"""
