# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The wing import rule (tests/sanity/extra/wing_imports.py) passes on the tree and fails on planted imports.

Each case copies plugins/module_utils into a temporary collection root, plants one line in one
file, and runs the check as `make sanity` does: a separate process, exit status and output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECK = ROOT / "tests" / "sanity" / "extra" / "wing_imports.py"
PACKAGE = "ansible_collections.ghostwarden.core.plugins.module_utils"


def run_check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "plugins" / "module_utils", tmp_path / "plugins" / "module_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(root: Path, relative: str, line: str) -> Path:
    """Append ``line`` to a module_utils file (after its imports: the check reads the whole file)."""
    path = root / "plugins" / "module_utils" / relative
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return path


def test_the_tree_passes() -> None:
    result = run_check(ROOT)
    assert (result.returncode, result.stdout) == (0, "")


def test_the_copy_passes_before_anything_is_planted(tree: Path) -> None:
    assert run_check(tree).returncode == 0


@pytest.mark.parametrize(("relative", "line", "message"), [
    ("core/_model.py", f"from {PACKAGE}.host._runner import CommandRunner",
     "core/ imports host/ (" + PACKAGE + ".host._runner.CommandRunner); core/ may not import host/"),
    ("core/_plan.py", f"from {PACKAGE}.host import _netlink",
     "core/ imports host/ (" + PACKAGE + ".host._netlink); core/ may not import host/"),
    ("core/_topology.py", f"from {PACKAGE}.proxmox._client import ProxmoxClient",
     "core/ may not import proxmox/"),
    ("core/_policy.py", "from ansible.module_utils.basic import AnsibleModule",
     "the pure core imports nothing from Ansible"),
    ("core/_nft.py", "import subprocess", "core/ imports subprocess, which reaches the machine"),
    ("core/_dnsmasq.py", "import fcntl", "core/ imports fcntl, which reaches the machine"),
    ("core/_compile.py", "from socket import inet_pton", "core/ imports socket, which reaches the machine"),
    ("core/_gather.py", "import pyroute2.netlink", "core/ imports pyroute2, which reaches the machine"),
    ("core/_merge.py", "def save(path):\n    with open(path, 'w') as stream:\n        stream.write('x')",
     "core/ opens a file for writing"),
    ("core/_merge.py", "import os\nos.unlink('/tmp/x')", "core/ calls os.unlink"),
    ("core/_cluster.py", "import importlib\nimportlib.import_module('pyroute2')",
     "only core/_deps.py imports libraries by name"),
    ("core/_errors.py", f"from {PACKAGE}.core._deps import PYROUTE2", "core/ uses PYROUTE2, a library of another wing"),
    ("host/_runner.py", f"from {PACKAGE}.lab._planner import plan_lab", "host/ may not import lab/"),
    ("proxmox/_nic.py", f"from {PACKAGE}.host._netlink import NetlinkBackend",
     "proxmox/ imports host/_netlink; from host/ it may import only _module"),
    ("lab/_planner.py", f"from {PACKAGE}.host._store import StateStore",
     "lab/ imports host/_store; from host/ it may import only _module, _runner"),
    ("lab/_planner.py", f"from {PACKAGE}.proxmox import _client", "lab/ may not import proxmox/"),
])
def test_a_planted_import_fails_the_check(tree: Path, relative: str, line: str, message: str) -> None:
    path = plant(tree, relative, line)
    result = run_check(tree)
    assert result.returncode == 1
    findings = result.stdout.splitlines()
    assert len(findings) == 1, findings
    assert findings[0].startswith(f"{path.as_posix()}:")
    assert message in findings[0]


def test_the_allowed_host_files_pass(tree: Path) -> None:
    plant(tree, "lab/_planner.py", f"from {PACKAGE}.host._runner import CommandRunner")
    plant(tree, "proxmox/_sdn.py", f"from {PACKAGE}.host._module import require_libraries")
    plant(tree, "core/_merge.py", "import os\nos.path.join('a', 'b')\nwith open('x', encoding='utf-8') as f:\n    f.read()")
    assert run_check(tree).returncode == 0


def test_a_file_outside_the_wings_fails(tree: Path) -> None:
    (tree / "plugins" / "module_utils" / "_loose.py").write_text("X = 1\n", encoding="utf-8")
    (tree / "plugins" / "module_utils" / "extra").mkdir()
    (tree / "plugins" / "module_utils" / "extra" / "_more.py").write_text("Y = 2\n", encoding="utf-8")
    result = run_check(tree)
    assert result.returncode == 1
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()] == [
        "module_utils file outside the wings core, host, proxmox, lab",
        "folder extra/ is not one of the wings core, host, proxmox, lab",
    ]
