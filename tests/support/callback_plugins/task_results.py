# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stdout callback of the tests' playbook runs (tests/support/playbook.py): every task result, whole, as JSON.

ansible-core has no JSON stdout callback (``json`` lives in ansible.posix), and the tests must
read each task's full return value (``plan``, ``changes``, ``diff``, ``warnings``), which the
screen callbacks abridge. The document goes to the file named by ``GHOSTWARDEN_TEST_RESULTS``;
stdout gets one line per task for a person reading a failed test's output.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: task_results
type: stdout
short_description: Write every task result as JSON to a file (integration tests)
description:
  - Records each task's status (V(ok), V(changed), V(failed), V(skipped), V(unreachable)) and its complete
    result, and writes them with the play recap to the file named by E(GHOSTWARDEN_TEST_RESULTS).
author:
  - ghostwarden.core contributors
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "task_results"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: list[dict] = []

    def _record(self, result, status: str) -> None:
        # ansible-core 2.19 hands callbacks plain Python data through `result`; older ones `_result`.
        data = getattr(result, "result", None)
        if data is None:
            data = result._result  # pylint: disable=protected-access
        entry = {
            "task": result.task_name or "",
            "action": result._task.action,  # pylint: disable=protected-access
            "host": result._host.get_name(),  # pylint: disable=protected-access
            "status": status,
            "result": data,
        }
        self.tasks.append(entry)
        self._display.display(f"{status}: [{entry['host']}] {entry['task']}")

    def v2_runner_on_ok(self, result) -> None:
        self._record(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        document = {"tasks": self.tasks, "stats": recap}
        with open(os.environ["GHOSTWARDEN_TEST_RESULTS"], "w", encoding="utf-8") as output:
            json.dump(document, output, default=str, sort_keys=True)
