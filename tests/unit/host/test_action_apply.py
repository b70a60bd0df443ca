# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of the confirm window, with a fake connection, a fake module and a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.ghostwarden.core.plugins.action.ghostwarden_apply import ActionModule

TOKEN = "5f3a9c1d2e4b6a70"
APPLY_ARGS = {"topology": {"version": 1, "networks": {}}, "state_dir": "/var/lib/gw/lab", "netns": "lab",
              "confirm_timeout": 30}
CONFIRM_ARGS = {"state": "confirmed", "confirm_token": TOKEN, "state_dir": "/var/lib/gw/lab", "netns": "lab"}
APPLIED = {"changed": True, "generation": 4, "rolled_back": False,
           "confirm": {"token": TOKEN, "deadline_in": 30, "rollback_generation": 3}}


class FakeShell:
    tmpdir = None


class FakeConnection:
    """Records resets and the connect timeout; ``timeout=None`` behaves like a plugin without that option."""

    def __init__(self, log: list, timeout: int | None = 10) -> None:
        self._shell = FakeShell()
        self.log = log
        self.options = {} if timeout is None else {"timeout": timeout}

    def reset(self) -> None:
        self.log.append(("reset",))

    def close(self) -> None:
        self.log.append(("close",))

    def get_option(self, name: str) -> Any:
        return self.options[name]

    def set_option(self, name: str, value: Any) -> None:
        self.log.append(("set_option", name, value))
        self.options[name] = value


class FakeTask:
    def __init__(self, args: dict, check_mode: bool = False) -> None:
        self.args = args
        self.check_mode = check_mode
        self.async_val = 0
        self.action = "ghostwarden.core.ghostwarden_apply"
        self.resolved_action = "ghostwarden.core.ghostwarden_apply"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def action(answers: list, *, args: dict | None = None, check_mode: bool = False, timeout: int | None = 10,
           attempt_seconds: float = 0.5) -> tuple[ActionModule, list, Clock]:
    """An ActionModule whose module runs answer from ``answers`` (a dict, or an exception to raise)."""
    log: list = []
    clock = Clock()
    plugin = ActionModule(FakeTask(APPLY_ARGS if args is None else args, check_mode), FakeConnection(log, timeout),
                          None, None, None)
    plugin._monotonic = clock.monotonic
    plugin._sleep = clock.sleep

    def execute_module(module_name: str, module_args: dict, task_vars: dict | None) -> dict:
        log.append(("module", module_name, module_args, clock.now))
        answer = answers.pop(0)
        if log[-1][2].get("state") == "confirmed":
            clock.now += attempt_seconds
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    plugin._execute_module = execute_module  # type: ignore[method-assign]
    return plugin, log, clock


def test_a_confirmed_change_returns_the_first_result():
    plugin, log, dummy = action([APPLIED, {"changed": True, "confirmed": True}])
    result = plugin.run(task_vars={})
    assert result == {**APPLIED, "confirmed": True}
    assert log == [
        ("module", "ghostwarden.core.ghostwarden_apply", APPLY_ARGS, 1000.0),
        ("reset",),
        ("set_option", "timeout", 10),
        ("module", "ghostwarden.core.ghostwarden_apply", CONFIRM_ARGS, 1000.0),
        ("set_option", "timeout", 10),
    ]


def test_reconnects_until_the_host_answers_within_the_window():
    unreachable = AnsibleConnectionFailure("Failed to connect to the host via ssh: Connection timed out")
    plugin, log, clock = action([APPLIED, unreachable, {"unreachable": True, "msg": "no route"},
                                 {"failed": True, "msg": "another apply holds /var/lib/gw/lab/lock (waited 60 s)"},
                                 {"changed": True, "confirmed": True}])
    result = plugin.run(task_vars={})
    assert result["confirmed"] is True and "failed" not in result
    confirm_runs = [entry for entry in log if entry[0] == "module"][1:]
    # Each attempt 0.5 s, then 2 s apart.
    assert [entry[3] for entry in confirm_runs] == [1000.0, 1002.5, 1005.0, 1007.5]
    assert [entry for entry in log if entry[0] == "reset"] == [("reset",)] * 4
    assert clock.now == 1008.0


def test_no_new_connection_before_the_deadline_fails_and_names_the_rollback():
    refused = [AnsibleConnectionFailure("Failed to connect to the host via ssh: Connection timed out")
               for dummy in range(20)]
    plugin, log, clock = action([APPLIED, *refused], attempt_seconds=1)
    result = plugin.run(task_vars={})
    assert result["failed"] is True and result["rolled_back"] is True and result["confirmed"] is False
    assert result["msg"] == ("the change cut the management path: no new connection within 30 s; "
                             "the host rolls back to generation 3 by itself")
    assert result["rollback_reason"] == ("no confirmation within 30 s after 10 attempts; last: connection failed: "
                                         "Failed to connect to the host via ssh: Connection timed out")
    assert result["generation"] == 4 and result["changed"] is True
    confirm_runs = [entry for entry in log if entry[0] == "module"][1:]
    assert len(confirm_runs) == 10
    assert all(entry[3] < 1030.0 for entry in confirm_runs)
    assert clock.now == 1030.0
    # The connect timeout never reaches past the deadline, and is restored afterwards.
    timeouts = [entry[2] for entry in log if entry[0] == "set_option"]
    assert timeouts == [10, 10, 10, 10, 10, 10, 10, 9, 6, 3, 10]


def test_a_confirmation_after_the_host_rolled_back_fails_without_retrying():
    too_late = {"failed": True, "rolled_back": True, "rollback_reason": "the confirm window passed",
                "msg": "confirm token 5f3a9c1d2e4b6a70 is no longer pending"}
    plugin, log, dummy = action([APPLIED, too_late])
    result = plugin.run(task_vars={})
    assert result["failed"] is True and result["rolled_back"] is True
    assert result["msg"] == ("the confirmation reached the host too late (the confirm window passed); "
                             "the host rolled back to generation 3")
    assert len([entry for entry in log if entry[0] == "module"]) == 2


def test_without_a_window_the_module_result_is_returned_as_is():
    plain = {"changed": False, "generation": 4, "rolled_back": False}
    plugin, log, dummy = action([plain])
    assert plugin.run(task_vars={}) == plain
    assert log == [("module", "ghostwarden.core.ghostwarden_apply", APPLY_ARGS, 1000.0)]


def test_check_mode_has_no_confirm_step():
    plugin, log, dummy = action([APPLIED], check_mode=True)
    assert plugin.run(task_vars={}) == APPLIED
    assert [entry[0] for entry in log] == ["module"]


def test_a_failed_apply_is_returned_without_confirming():
    failed = {"failed": True, "msg": "nft: Error: syntax error", "rolled_back": True, "confirm": APPLIED["confirm"]}
    plugin, log, dummy = action([failed])
    assert plugin.run(task_vars={}) == failed
    assert len(log) == 1


def test_connection_without_a_timeout_option_and_only_the_carried_options():
    plugin, log, dummy = action([APPLIED, {"confirmed": True}], args={"topology": {}, "confirm_timeout": 30},
                                timeout=None)
    assert plugin.run(task_vars={})["confirmed"] is True
    confirm_call = ("module", "ghostwarden.core.ghostwarden_apply", {"state": "confirmed", "confirm_token": TOKEN},
                    1000.0)
    assert log[1:] == [("reset",), confirm_call]


@pytest.mark.parametrize("window, problem", [
    ({"deadline_in": 30}, "no token"),
    ({"token": TOKEN, "deadline_in": 0}, "deadline_in is not a positive number of seconds"),
    ({"token": TOKEN, "deadline_in": "30"}, "deadline_in is not a positive number of seconds"),
    ("soon", "not a mapping"),
])
def test_an_unusable_window_fails_clearly(window, problem):
    plugin, log, dummy = action([{**APPLIED, "confirm": window}])
    result = plugin.run(task_vars={})
    assert result["failed"] is True and result["rolled_back"] is True
    assert result["msg"] == (f"the module returned an unusable confirm window ({problem}): {window!r}; "
                             "the host rolls back by itself when its timer fires")
    assert len(log) == 1


def test_async_is_refused():
    from ansible.errors import AnsibleActionFail

    plugin, dummy, dummy2 = action([APPLIED])
    plugin._task.async_val = 60
    with pytest.raises(AnsibleActionFail, match="does not support async"):
        plugin.run(task_vars={})


@pytest.mark.parametrize("args, message", [
    ({"topology": {}, "src": "/etc/ghostwarden/ghostnet.toml"}, "parameters are mutually exclusive: topology|src"),
    ({"state": "confirmed"}, "state is confirmed but all of the following are missing: confirm_token"),
    ({"topology": {}, "confirm_timout": 30},
     "Unsupported parameters for (ghostwarden.core.ghostwarden_apply) module: confirm_timout. Supported parameters "
     "include: allow_lockout, confirm_timeout, confirm_token, generation, history, management_from_connection, netns, policy_dirs, "
     "probes, return_content, src, state, state_dir, topology."),
])
def test_options_the_module_refuses_fail_before_it_runs(args, message):
    plugin, log, dummy = action([], args=args)
    result = plugin.run(task_vars={})
    assert (result["failed"], result["msg"]) == (True, message)
    assert log == []
