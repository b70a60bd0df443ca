# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The third-party libraries of the pure core, each imported once and guarded.

Importing this file never fails: a missing library is ``None``, its ``HAS_...`` flag False
and its ``..._IMPORT_ERROR`` the traceback, so that a module can report
``missing_required_lib`` and the core can raise a :class:`GhostwardenError` naming it.
"""

from __future__ import annotations

import traceback

try:
    import netaddr
except ImportError:
    netaddr = None
    HAS_NETADDR = False
    NETADDR_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_NETADDR = True
    NETADDR_IMPORT_ERROR = None

try:
    import yaml
except ImportError:
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_YAML = True
    YAML_IMPORT_ERROR = None

try:
    import tomllib  # Python 3.11+
except ImportError:
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None
        HAS_TOML = False
        TOML_IMPORT_ERROR: str | None = traceback.format_exc()
    else:
        HAS_TOML = True
        TOML_IMPORT_ERROR = None
else:
    HAS_TOML = True
    TOML_IMPORT_ERROR = None

__all__ = [
    "HAS_NETADDR",
    "HAS_TOML",
    "HAS_YAML",
    "NETADDR_IMPORT_ERROR",
    "TOML_IMPORT_ERROR",
    "YAML_IMPORT_ERROR",
    "netaddr",
    "tomllib",
    "yaml",
]
