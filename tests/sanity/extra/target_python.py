# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Target-side code (modules and module_utils) must run on the managed host's Python 3.9.

ansible-test only compiles for the Python versions installed on the test machine, so this
check parses with the 3.9 grammar and looks for the constructs that compile on newer Pythons
but fail on 3.9 at run time. The import rule of the wings is checked by wing_imports.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

TARGET_VERSION = (3, 9)
# dataclass() options that Python 3.9 does not know.
NEW_DATACLASS_OPTIONS = frozenset({"slots", "kw_only", "match_args", "weakref_slot"})


def _has_future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__" and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def _import_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether an import sits in a try block whose handlers catch ImportError (or everything)."""
    child = node
    parent = parents.get(child)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                if caught is None or any(isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError", "Exception") for name in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def check(path: Path) -> list[str]:
    """Return the problems of one file, as ``path:line:column: message`` lines."""
    name = path.as_posix()
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=name, feature_version=TARGET_VERSION)
    except SyntaxError as error:
        return [f"{name}:{error.lineno or 0}:{error.offset or 0}: not valid Python 3.9: {error.msg}"]

    problems = []
    if source.strip() and "module_utils" in path.parts and not _has_future_annotations(tree):
        problems.append(f"{name}:1:1: missing 'from __future__ import annotations'")
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}:{getattr(node, 'col_offset', 0) + 1}"
        if isinstance(node, ast.Call):
            func = node.func
            func_name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if func_name == "dataclass":
                for keyword in node.keywords:
                    if keyword.arg in NEW_DATACLASS_OPTIONS:
                        problems.append(f"{where}: dataclass option {keyword.arg}= needs Python 3.10 or newer")
            if func_name in ("isinstance", "issubclass") and len(node.args) == 2:
                if isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr):
                    problems.append(f"{where}: {func_name}() with 'X | Y' needs Python 3.10 or newer; use a tuple")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module == "tomllib" and not _import_guarded(node, parents):
                    problems.append(f"{where}: tomllib is Python 3.11 or newer; import it in a try block with a tomli fallback")
    return sorted(problems, key=_position)


def _position(problem: str) -> tuple[int, int]:
    """(line, column) of a ``path:line:column: message`` line, for reporting in file order."""
    _path, line, column, _message = problem.split(":", 3)
    return int(line), int(column)


def main() -> int:
    """Check plugins/modules and plugins/module_utils of the current directory (the collection root)."""
    paths = sorted(Path("plugins/modules").rglob("*.py")) + sorted(Path("plugins/module_utils").rglob("*.py"))
    problems = [problem for path in paths for problem in check(path)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
