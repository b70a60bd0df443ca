# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Running the host's tools (nft, dnsmasq, sysctl), optionally inside a named network namespace.

Backends take a :class:`CommandRunner` instead of calling subprocess themselves, so that
modules can run commands through ``AnsibleModule.run_command`` and tests through plain
subprocess, and so that "inside namespace X" is decided in one place.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional


class CommandResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


# (argv, stdin text or None) -> CommandResult
RunFunction = Callable[[Sequence[str], Optional[str]], CommandResult]


def subprocess_run(argv: Sequence[str], stdin: str | None = None) -> CommandResult:
    completed = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)


class CommandRunner:
    """Runs argv on the host, or inside network namespace ``netns`` through ``ip netns exec``."""

    def __init__(self, run: RunFunction = subprocess_run, netns: str | None = None) -> None:
        self._run = run
        self.netns = netns

    def argv(self, argv: Sequence[str]) -> list[str]:
        if self.netns:
            return ["ip", "netns", "exec", self.netns, *argv]
        return list(argv)

    def run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        return self._run(self.argv(argv), stdin)

    def on_host(self) -> CommandRunner:
        """The same way of running commands, outside any namespace (for tools that enter it themselves)."""
        return CommandRunner(self._run, None)
