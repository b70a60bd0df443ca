# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dependency gate: one Dependency per optional library, imported once, named with its package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core import _deps
from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import Dependency
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError, MissingDependencyError


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh importable module that no test has imported yet."""
    name = f"gw_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_present_library_is_imported_at_once(library: str) -> None:
    dependency = Dependency((library,), f"{library} (pip install {library})")
    assert library in sys.modules
    assert dependency.available and dependency.error is None
    assert dependency.require("to test").VALUE == 42


def test_a_lazy_library_waits_for_its_first_use(library: str) -> None:
    dependency = Dependency((library,), library, lazy=True)
    assert dependency.available
    assert library not in sys.modules
    assert dependency.module.VALUE == 42
    assert library in sys.modules


def test_a_missing_library_is_named_with_what_to_install() -> None:
    dependency = Dependency(("gw_no_such_library",), "gw-no-such (pip install gw-no-such)")
    assert not dependency.available
    assert "ModuleNotFoundError" in dependency.error
    assert dependency.module is None
    with pytest.raises(MissingDependencyError) as caught:
        dependency.require("to render the example")
    error = caught.value
    assert isinstance(error, GhostwardenError)
    assert str(error) == "the Python library gw-no-such (pip install gw-no-such) is required to render the example"
    assert (error.library, error.requirement) == ("gw_no_such_library", "gw-no-such (pip install gw-no-such)")
    assert "ModuleNotFoundError" in error.trace


def test_a_missing_lazy_library_is_known_without_importing() -> None:
    dependency = Dependency(("gw_no_such_library",), "gw-no-such", lazy=True)
    assert not dependency.available
    assert dependency.error == "ModuleNotFoundError: No module named 'gw_no_such_library'"
    assert dependency.module is None


def test_the_first_importable_name_wins(library: str) -> None:
    dependency = Dependency(("gw_no_such_library", library), library)
    assert dependency.available
    assert dependency.module.VALUE == 42
    assert dependency.name == library


def test_the_collection_declares_each_library_once_with_a_package_to_install() -> None:
    declared = {name: value for name, value in vars(_deps).items() if isinstance(value, Dependency)}
    assert sorted(declared) == ["NETADDR", "PROXMOXER", "PYROUTE2", "REQUESTS", "TOML", "YAML"]
    for dependency in declared.values():
        assert "pip install" in dependency.requirement


def test_importing_the_gate_imports_no_library_that_reaches_the_machine() -> None:
    # A fresh interpreter: this one has imported them for other tests.
    script = ("import sys\n"
              "import conftest\n"
              "from ansible_collections.ghostwarden.core.plugins.module_utils.core import _deps\n"
              "print(sorted(name for name in ('pyroute2', 'requests', 'proxmoxer', 'netaddr') if name in sys.modules))\n")
    tests = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60,
                            cwd=tests, env={"PYTHONPATH": str(tests), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "['netaddr']"
