# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Runs of link, address, route and FDB operations executed as one ``ip -batch`` or ``bridge -batch``.

A plan of hundreds of networks is hundreds of netlink requests. One request at a time from
Python costs about twice what iproute2 needs for the same requests, and building them needs
pyroute2, whose import alone costs 0.14 s. So consecutive operations of one tool go to the kernel
as the batch lines the boot files already use (``_iproute``: each line asks the kernel for what
``NetlinkBackend`` asks for the same operation). Without ``-force`` the tool stops at the first
line that fails and names it (``Command failed -:N``): the operations before it are done, that
one failed, the rest did not run, which is what a transaction needs to roll back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import Operation
from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import render_batches
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner

# Kinds that are one tool's batch lines; the rest (sysctls, learned neighbours, files, the table) run apart.
BATCH_TOOLS = {
    "remove_address": "ip", "release_master": "ip", "delete_link": "ip", "create_link": "ip", "modify_link": "ip",
    "set_master": "ip", "add_address": "ip", "adopt_address": "ip", "adopt_route": "ip", "drop_port_address": "ip",
    "restore_address": "ip", "restore_route": "ip",
    "remove_fdb": "bridge", "add_fdb": "bridge", "remove_bridge_vlan": "bridge", "add_bridge_vlan": "bridge",
}
_FAILED_LINE = re.compile(r"^Command failed -:(\d+)\s*$", re.MULTILINE)


class BatchFailed(BackendError):
    """A line of a batch failed: ``done`` operations before it were executed, the one named was not (whole)."""

    def __init__(self, operation: Operation, cause: str, done: int) -> None:
        super().__init__(str(operation), cause)
        self.done = done


def batch_tool(operation: Operation) -> str | None:
    return BATCH_TOOLS.get(operation.kind)


class KernelBatch:
    """Executes runs of operations of one tool through ``<tool> -batch -`` in the runner's namespace."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def execute(self, operations: Sequence[Operation]) -> None:
        """Execute ``operations`` (all of one tool, in order); :class:`BatchFailed` naming the first that fails."""
        if not operations:
            return
        tool = batch_tool(operations[0])
        lines: list[str] = []
        owner: list[int] = []  # batch line number - 1 -> index of its operation
        for index, operation in enumerate(operations):
            if batch_tool(operation) != tool:
                raise BackendError(str(operation), f"not a {tool} batch operation (a bug)")
            try:
                script = render_batches([operation])
            except RenderError as error:
                raise BatchFailed(operation, str(error), index) from None
            for step in script.steps:
                lines.extend(step.lines)
                owner.extend([index] * len(step.lines))
        if not lines:
            return
        result = self.runner.run([str(tool), "-batch", "-"], "".join(f"{line}\n" for line in lines))
        if result.rc == 0:
            return
        failed = _FAILED_LINE.search(result.stderr)
        message = _FAILED_LINE.sub("", result.stderr).strip() or f"{tool} -batch exited {result.rc}"
        if failed is None or not 1 <= int(failed.group(1)) <= len(lines):
            # The tool did not say which line: no operation of the run can be taken as done.
            raise BatchFailed(operations[0], f"{tool} -batch: {message}", 0)
        index = owner[int(failed.group(1)) - 1]
        raise BatchFailed(operations[index], " ".join(message.split()), index)
