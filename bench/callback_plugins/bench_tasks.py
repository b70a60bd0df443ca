# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Callback of the benchmarks' playbook runs: every task's wall time and result size, as JSON.

An aggregate callback (enabled with ``ANSIBLE_CALLBACKS_ENABLED=bench_tasks``, beside any stdout
callback), so the play's output stays the usual one. It writes the file named by
``GHOSTWARDEN_BENCH_TASKS`` at the end of the run: the playbook's start and end, and per task its
name, action, start, and per host the status, the end, the size of the result as callbacks get it
(compact JSON, ``invocation`` included, as AWX would store it) and the number of loop items.
Times are ``time.monotonic()`` seconds. ansible.posix's ``profile_tasks`` would give the times,
not the sizes, and is not part of ansible-core.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_tasks
type: aggregate
short_description: Record each task's wall time and result size (benchmarks)
description:
  - Writes every task's start, each host's status, end and result size to the file named by
    E(GHOSTWARDEN_BENCH_TASKS) when the playbook ends.
requirements:
  - enabled with C(ANSIBLE_CALLBACKS_ENABLED=bench_tasks)
author:
  - ghostwarden.core contributors
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_tasks"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        self.tasks: list[dict] = []

    def _task_start(self, task) -> None:
        self.tasks.append({"name": task.get_name(), "action": task.action, "start": time.monotonic(), "hosts": []})

    def v2_playbook_on_start(self, playbook) -> None:
        self.started = time.monotonic()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._task_start(task)

    def _record(self, result, status: str) -> None:
        ended = time.monotonic()
        # ansible-core 2.19 hands callbacks plain Python data through `result`; older ones `_result`.
        data = getattr(result, "result", None)
        if data is None:
            data = result._result  # pylint: disable=protected-access
        text = json.dumps(data, default=str, separators=(",", ":"))
        items = data.get("results") if isinstance(data, dict) else None
        entry = {
            "host": result._host.get_name(),  # pylint: disable=protected-access
            "status": status,
            "end": ended,
            "bytes": len(text.encode("utf-8")),
            "items": len(items) if isinstance(items, list) else None,
            "changed": bool(data.get("changed")) if isinstance(data, dict) else False,
        }
        if self.tasks:
            self.tasks[-1]["hosts"].append(entry)

    def v2_runner_on_ok(self, result) -> None:
        self._record(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        document = {"start": self.started, "end": time.monotonic(), "tasks": self.tasks}
        with open(os.environ["GHOSTWARDEN_BENCH_TASKS"], "w", encoding="utf-8") as output:
            json.dump(document, output)
