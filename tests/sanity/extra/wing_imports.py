# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The import rule of plugins/module_utils, by folder (docs/architecture.md).

- ``core/`` is the pure pipeline: it imports only ``core/`` files of this collection, nothing from
  Ansible, no module that reaches the machine (processes, sockets, file locks, netlink, HTTP), and
  it writes no files and starts no processes. Only ``core/_deps.py`` imports libraries by name,
  and no other core file asks it for the libraries of the host and Proxmox wings.
- ``host/`` may import ``core/``; never ``proxmox/`` or ``lab/``.
- ``proxmox/`` and ``lab/`` may import ``core/`` and, from ``host/``, only the files named in
  ``HOST_FILES_FOR``; not each other.
- Every module_utils file lives in one of the four folders.

Usage: ``wing_imports.py [COLLECTION_ROOT]`` (default: the current directory). Prints
``path:line:column: message`` per finding; exits 1 when there is one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "ansible_collections.ghostwarden.core.plugins.module_utils"
COLLECTION = "ansible_collections.ghostwarden.core"
WINGS = ("core", "host", "proxmox", "lab")

# Modules whose import means the code reaches the machine or the network.
MACHINE_MODULES = frozenset({
    "asyncio", "concurrent", "ctypes", "fcntl", "ftplib", "glob", "grp", "http", "mmap", "multiprocessing",
    "pathlib", "pty", "pwd", "resource", "select", "selectors", "shutil", "signal", "smtplib", "socket",
    "socketserver", "ssl", "subprocess", "tempfile", "termios", "threading", "urllib",
    # third-party libraries that talk to the kernel or the network
    "proxmoxer", "pyroute2", "requests", "urllib3",
})
# os functions that change the machine (files, processes); os.path and reading stay allowed.
OS_CHANGES = frozenset({
    "chmod", "chown", "execv", "execve", "execvp", "fork", "fsync", "ftruncate", "kill", "killpg", "link",
    "lchown", "makedirs", "mkdir", "mkfifo", "mknod", "open", "popen", "putenv", "remove", "removedirs",
    "rename", "renames", "replace", "rmdir", "setns", "spawnv", "symlink", "system", "truncate", "unlink",
    "unsetenv", "utime", "write",
})
# The library gates of the other wings: declared in core/_deps.py, used only outside core.
OTHER_WING_LIBRARIES = frozenset({"PYROUTE2", "REQUESTS", "PROXMOXER"})
# The host files another wing may use: the module base, and for the lab the command runner.
HOST_FILES_FOR = {
    "proxmox": frozenset({"_module"}),
    "lab": frozenset({"_module", "_runner"}),
}
# Wings a wing must not import at all.
FORBIDDEN_WINGS = {
    "core": frozenset({"host", "proxmox", "lab"}),
    "host": frozenset({"proxmox", "lab"}),
    "proxmox": frozenset({"lab"}),
    "lab": frozenset({"proxmox"}),
}


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Full dotted names an import statement brings in (``from a.b import c`` gives ``a.b.c``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names]


def _wing_target(name: str) -> tuple[str, str] | None:
    """(wing, file) of a dotted name inside this collection's module_utils, or None."""
    if not name.startswith(PACKAGE + "."):
        return None
    parts = name[len(PACKAGE) + 1:].split(".")
    return (parts[0], parts[1] if len(parts) > 1 else "")


def _write_mode(call: ast.Call) -> bool:
    """Whether an open() call's mode (second argument or mode=) may write."""
    mode = call.args[1] if len(call.args) > 1 else next((kw.value for kw in call.keywords if kw.arg == "mode"), None)
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(flag in mode.value for flag in "wax+")
    return True  # a mode computed at run time: assume the worst


def check_file(path: Path, wing: str) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    problems = []

    def report(node: ast.AST, message: str) -> None:
        problems.append(f"{path.as_posix()}:{getattr(node, 'lineno', 0)}:{getattr(node, 'col_offset', 0) + 1}: {message}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                report(node, "relative import; import through the collection namespace")
                continue
            for name in _imported(node):
                top = name.split(".")[0]
                target = _wing_target(name)
                if target is not None:
                    target_wing, target_file = target
                    if target_wing not in WINGS:
                        report(node, f"imports {name}, which is in no wing")
                    elif target_wing in FORBIDDEN_WINGS[wing]:
                        report(node, f"{wing}/ imports {target_wing}/ ({name}); {wing}/ may not import {target_wing}/")
                    elif target_wing == "host" and wing in HOST_FILES_FOR and target_file not in HOST_FILES_FOR[wing]:
                        allowed = ", ".join(sorted(HOST_FILES_FOR[wing]))
                        report(node, f"{wing}/ imports host/{target_file or '(the package)'}; "
                                     f"from host/ it may import only {allowed}")
                elif wing == "core" and name.startswith(COLLECTION + "."):
                    report(node, f"core/ imports {name}; core/ imports only core/")
                elif wing == "core" and (top == "ansible" or name.startswith("ansible.")):
                    report(node, f"core/ imports {name}; the pure core imports nothing from Ansible")
                elif wing == "core" and top in MACHINE_MODULES:
                    report(node, f"core/ imports {top}, which reaches the machine; that belongs in host/")
                elif wing == "core" and top == "importlib" and path.name != "_deps.py":
                    report(node, "core/ imports importlib; only core/_deps.py imports libraries by name")
                if wing == "core" and name.rsplit(".", 1)[-1] in OTHER_WING_LIBRARIES:
                    report(node, f"core/ uses {name.rsplit('.', 1)[-1]}, a library of another wing")
        elif wing == "core" and isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open" and _write_mode(node):
                report(node, "core/ opens a file for writing; writing belongs in host/")
            elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "os"
                  and func.attr in OS_CHANGES):
                report(node, f"core/ calls os.{func.attr}, which changes the machine; that belongs in host/")
            elif isinstance(func, ast.Name) and func.id in ("exec", "eval", "__import__"):
                report(node, f"core/ calls {func.id}()")
        elif (wing == "core" and path.name != "_deps.py" and isinstance(node, ast.Name)
              and node.id in OTHER_WING_LIBRARIES):
            report(node, f"core/ uses {node.id}, a library of another wing")
    return problems


def check_tree(root: Path) -> list[str]:
    base = root / "plugins" / "module_utils"
    problems = []
    for path in sorted(base.rglob("*.py")):
        relative = path.relative_to(base)
        if len(relative.parts) == 1:
            if path.name != "__init__.py" or path.read_text(encoding="utf-8").strip():
                problems.append(f"{path.as_posix()}:1:1: module_utils file outside the wings {', '.join(WINGS)}")
            continue
        wing = relative.parts[0]
        if wing not in WINGS:
            problems.append(f"{path.as_posix()}:1:1: folder {wing}/ is not one of the wings {', '.join(WINGS)}")
            continue
        problems.extend(check_file(path, wing))
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(".")
    problems = check_tree(root)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
