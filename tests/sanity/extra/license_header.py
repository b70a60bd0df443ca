# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every non-empty Python file under plugins/ starts with the collection's three license lines."""

from __future__ import annotations

import sys
from pathlib import Path

HEADER = (
    "# Copyright (c) ghostwarden.core contributors",
    "# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)",
    "# SPDX-License-Identifier: GPL-3.0-or-later",
)


def check(path: Path) -> list[str]:
    """Return the problems of one file, as ``path:line:column: message`` lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return []  # empty __init__.py files, as ansible-test's empty-init test demands
    first = 1 if lines[0].startswith("#!") else 0  # a module's interpreter line may come first
    for offset, expected in enumerate(HEADER):
        index = first + offset
        actual = lines[index] if index < len(lines) else ""
        if actual != expected:
            return [f"{path.as_posix()}:{index + 1}:1: license header line {offset + 1} must be {expected!r}, found {actual!r}"]
    return []


def main() -> int:
    """Check every Python file under plugins/ of the current directory (the collection root)."""
    problems = [problem for path in sorted(Path("plugins").rglob("*.py")) for problem in check(path)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
