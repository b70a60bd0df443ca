# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ``ghostwarden_apply``'s confirm window (docs/confirm-window.md).

The module applies the topology on the target, arms a rollback timer there and returns
``confirm: {token, deadline_in, rollback_generation}``. This plugin then drops the connection and
must reach the host again, through a new connection, to run the module with ``state: confirmed``
before the deadline. Only a confirmation the host accepted keeps the change; anything else (no
new connection, a confirmation that came too late) leaves the host to roll back by itself, and
the task fails saying so. No async job, no remote status file: the target's timer is the
authority, the controller only ever tries to stop it.

The task's options are checked first with the module's own argument spec: options the module
would refuse fail the task here, with the module's message, before anything runs on the host.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    APPLY_ARGUMENT_SPEC,
    APPLY_OPTION_RULES,
    HOST_ARGUMENT_SPEC,
)

display = Display()

MODULE = "ghostwarden.core.ghostwarden_apply"
# Seconds between two attempts to reach the host again.
RETRY_INTERVAL = 2.0


class ActionModule(ActionBase):
    """Run ``ghostwarden_apply``, then confirm its change over a new connection within the window."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False  # the window must not depend on Ansible's async machinery

    # Replaced in tests to run the window on a fake clock.
    _monotonic = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        """The module's result; with a confirm window, ``confirmed: true`` or a failure with ``rolled_back: true``.

        Without ``confirm`` in the module's result (check mode, ``confirm_timeout: 0``, no change,
        other states) the module's result is returned unchanged.
        """
        result = super().run(tmp, task_vars)
        del tmp
        module_name = getattr(self._task, "resolved_action", None) or MODULE
        refusal = _refusal(module_name, self._task.args)
        if refusal is not None:
            result.update(failed=True, msg=refusal)
            return result
        applied = self._execute_module(module_name=module_name, module_args=dict(self._task.args),
                                       task_vars=task_vars)
        result.update(applied)
        window = applied.get("confirm")
        if self._task.check_mode or applied.get("failed") or window is None:
            return result
        problem = _window_problem(window)
        if problem:
            result.update(failed=True, msg=f"the module returned an unusable confirm window ({problem}): {window!r}; "
                                           "the host rolls back by itself when its timer fires",
                          rolled_back=True, rollback_reason="unusable confirm window")
            return result
        return self._confirm(result, window, module_name, task_vars)

    def _confirm(self, result: dict[str, Any], window: dict[str, Any], module_name: str,
                 task_vars: dict[str, Any] | None) -> dict[str, Any]:
        deadline_in = float(window["deadline_in"])
        deadline = self._monotonic() + deadline_in
        generation = window.get("rollback_generation")
        target = "the previous generation" if generation is None else f"generation {generation}"
        arguments = {"state": "confirmed", "confirm_token": window["token"]}
        # Where the transaction is: the options every host module has, as the task gave them.
        arguments.update({key: self._task.args[key] for key in HOST_ARGUMENT_SPEC if key in self._task.args})
        last_error = "no attempt could start"
        attempts = 0
        original_timeout = self._connect_timeout()
        try:
            while True:
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    break
                attempts += 1
                self._new_connection(remaining, original_timeout)
                display.vv(f"ghostwarden_apply: confirm attempt {attempts}, {remaining:.1f} s left in the window")
                try:
                    answer = self._execute_module(module_name=module_name, module_args=dict(arguments),
                                                  task_vars=task_vars)
                except AnsibleConnectionFailure as error:
                    last_error = f"connection failed: {error.message}"
                except AnsibleError as error:
                    last_error = f"confirm run failed: {error.message}"
                else:
                    if answer.get("confirmed") is True:
                        result["confirmed"] = True
                        return result
                    if answer.get("rolled_back") is True:
                        # The host answered but its timer fired first: nothing left to retry.
                        reason = answer.get("rollback_reason") or answer.get("msg") or "the confirm window passed"
                        result.update(failed=True, confirmed=False, rolled_back=True, rollback_reason=reason,
                                      msg=f"the confirmation reached the host too late ({reason}); the host "
                                          f"rolled back to {target}")
                        return result
                    kind = "host unreachable" if answer.get("unreachable") else "confirm run failed"
                    last_error = f"{kind}: {answer.get('msg', 'no message')}"
                display.vv(f"ghostwarden_apply: confirm attempt {attempts} failed: {last_error}")
                pause = min(RETRY_INTERVAL, deadline - self._monotonic())
                if pause > 0:
                    self._sleep(pause)
        finally:
            self._restore_connect_timeout(original_timeout)
        seconds = f"{deadline_in:g}"
        result.update(failed=True, confirmed=False, rolled_back=True,
                      rollback_reason=f"no confirmation within {seconds} s after {attempts} "
                                      f"attempt{'s' if attempts != 1 else ''}; last: {last_error}",
                      msg=f"the change cut the management path: no new connection within {seconds} s; "
                          f"the host rolls back to {target} by itself")
        return result

    def _connect_timeout(self) -> int | None:
        """The connection plugin's connect timeout option (ssh, paramiko), None when it has none."""
        try:
            value = self._connection.get_option("timeout")
        except (AnsibleError, KeyError, AttributeError):
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _restore_connect_timeout(self, original: int | None) -> None:
        if original is not None:
            self._connection.set_option("timeout", original)

    def _new_connection(self, remaining: float, original_timeout: int | None) -> None:
        """Drop the current connection so that the next module run opens a new one.

        An attempt must not outlast the window: the connect timeout shrinks to what is left of it.
        """
        try:
            self._connection.reset()
        except AnsibleError as error:
            display.vvv(f"ghostwarden_apply: connection reset failed ({error.message}), closing it instead")
            self._connection.close()
        if original_timeout is not None:
            self._connection.set_option("timeout", max(1, min(original_timeout, math.ceil(remaining))))


def _window_problem(window: Any) -> str | None:
    if not isinstance(window, dict):
        return "not a mapping"
    token = window.get("token")
    if not isinstance(token, str) or not token:
        return "no token"
    deadline_in = window.get("deadline_in")
    if (not isinstance(deadline_in, (int, float)) or isinstance(deadline_in, bool) or not math.isfinite(deadline_in)
            or deadline_in <= 0):
        return "deadline_in is not a positive number of seconds"
    return None


def _refusal(module_name: str, arguments: dict[str, Any]) -> str | None:
    """The message the module fails with for these options (as AnsibleModule words it), or None when it takes them."""
    validation = ArgumentSpecValidator(APPLY_ARGUMENT_SPEC, **APPLY_OPTION_RULES).validate(arguments)
    if not validation.error_messages:
        return None
    if isinstance(validation.errors[0], UnsupportedError):
        return f"Unsupported parameters for ({module_name}) module: {validation.errors.msg}"
    return validation.errors.msg
