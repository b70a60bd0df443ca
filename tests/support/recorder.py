# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A recorded run function for ``CommandRunner``: answers from a list and keeps what was run.

    recorder = Recorder(CommandResult(0, "", ""))
    CommandRunner(recorder, netns="lab").run(["ip", "link"])
    assert recorder.calls == [["ip", "netns", "exec", "lab", "ip", "link"]]

:class:`StdinRecorder` keeps ``(argv, stdin)`` pairs, for commands that read a script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult


class Recorder:
    """A run function that answers from a list and records every argv."""

    def __init__(self, *answers: CommandResult) -> None:
        self.answers = list(answers)
        self.calls: list[Any] = []

    def record(self, argv: Sequence[str], stdin: str | None) -> Any:
        return list(argv)

    def __call__(self, argv: Sequence[str], stdin: str | None) -> CommandResult:
        self.calls.append(self.record(argv, stdin))
        return self.answers.pop(0)


class StdinRecorder(Recorder):
    """A :class:`Recorder` that records ``(argv, stdin)``."""

    def record(self, argv: Sequence[str], stdin: str | None) -> tuple[list[str], str | None]:
        return list(argv), stdin
