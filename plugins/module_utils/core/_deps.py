# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The one gate for the collection's optional third-party libraries.

Every library the collection may use is declared here, once, with what to install. Importing
this file never fails and never imports a library that reaches the machine: a missing library
is reported where it is needed, by :meth:`Dependency.require` (a :class:`MissingDependencyError`
naming the package) or by the module glue up front (``missing_required_lib``).
"""

from __future__ import annotations

import importlib
import importlib.util
import traceback
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import MissingDependencyError


class Dependency:
    """One optional library: imported once, on first use when ``lazy``, guarded, named with its package."""

    def __init__(self, names: tuple[str, ...], requirement: str, *, lazy: bool = False) -> None:
        self.names = names  # import names, tried in order (a backport after the stdlib name)
        self.requirement = requirement
        self.error: str | None = None
        self._module: Any = None
        if lazy:
            # Only whether it is there: importing waits for the first use.
            if not any(self._findable(name) for name in names):
                self.error = f"ModuleNotFoundError: No module named {names[0]!r}"
        else:
            self._load()

    @property
    def name(self) -> str:
        return self.names[-1]

    @staticmethod
    def _findable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def _load(self) -> None:
        for name in self.names:
            try:
                self._module = importlib.import_module(name)
            except ImportError:
                self.error = traceback.format_exc()
            else:
                self.error = None
                return

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def module(self) -> Any:
        """The library, imported now if it was not yet; None when it is missing."""
        if self._module is None and self.error is None:
            self._load()
        return self._module

    def require(self, purpose: str) -> Any:
        """The library, or :class:`MissingDependencyError` saying what it is needed for and what to install."""
        module = self.module
        if module is None:
            raise MissingDependencyError(self.name, self.requirement, purpose, self.error)
        return module


# Imported at once: the pure core works with them on every run.
NETADDR = Dependency(("netaddr",), "netaddr (python3-netaddr or pip install netaddr)")
YAML = Dependency(("yaml",), "PyYAML (python3-yaml or pip install pyyaml)")
TOML = Dependency(("tomllib", "tomli"), "tomli on Python before 3.11 (python3-tomli or pip install tomli)")
# Imported on first use: the host and Proxmox wings need them only for some runs, and pyroute2
# alone takes 0.14 s to import (it imports every module it has), which a no-op run never needs.
PYROUTE2 = Dependency(("pyroute2",), "pyroute2 (python3-pyroute2 or pip install pyroute2)", lazy=True)
REQUESTS = Dependency(("requests",), "requests (python3-requests or pip install requests)", lazy=True)
PROXMOXER = Dependency(("proxmoxer",), "proxmoxer (python3-proxmoxer or pip install proxmoxer)", lazy=True)

netaddr = NETADDR.module
yaml = YAML.module
tomllib = TOML.module
