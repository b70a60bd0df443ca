# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Child processes of the tests: every wait is bounded, and a process that overruns is killed and shown."""

from __future__ import annotations

import subprocess


def communicate_within(process: subprocess.Popen, timeout: float, what: str, *, context: str = "",
                       tail: int | None = None) -> tuple[str, str]:
    """``process``'s (stdout, stderr) once it ends; killed and an AssertionError after ``timeout`` seconds.

    ``what`` names the process in the failure, ``context`` (such as its command line) comes before its
    output there, and ``tail`` keeps only the last characters of each stream.
    """
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        if tail is not None:
            stdout, stderr = stdout[-tail:], stderr[-tail:]
        raise AssertionError(f"{what} ran longer than {timeout:g}s:\n{context}{stdout}{stderr}") from None
