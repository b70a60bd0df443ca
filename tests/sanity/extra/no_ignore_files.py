# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when tests/sanity holds an ansible-test ignore file: sanity findings are fixed, never ignored."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Report every tests/sanity/ignore-*.txt below the current directory (the collection root)."""
    found = sorted(Path("tests/sanity").glob("ignore-*.txt"))
    for path in found:
        print(f"{path.as_posix()}:0:0: ignore files are not allowed; fix the finding instead")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
