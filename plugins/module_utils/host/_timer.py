# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The confirm window's rollback timer: run a plain sh script after a delay, outliving the module.

Two ways, chosen when arming:

* systemd is PID 1 (``/run/systemd/system`` exists, sd_booted's test): a transient timer through
  ``systemd-run``. The unit belongs to systemd, not to the SSH session, so logind's
  ``KillUserProcesses`` cannot take it down with the session.
* otherwise a detached waiter: ``setsid`` puts a ``/bin/sh`` into a new session with stdin, stdout
  and stderr on ``/dev/null``; it runs ``sleep`` as a child and, when the sleep ends normally,
  ``exec``s ``/bin/sh <script>``. No Python runs at fire time.

Disarming never kills a rollback that already started: the systemd path stops only the
``.timer`` unit (a service it already started runs on), the detached path kills only the
``sleep`` child, after which the waiter's ``wait`` fails and it exits without running the script.
A script that did start finds the confirm marker (:func:`confirm`) under the apply lock and does
nothing. ``docs/confirm-window.md`` has the whole sequence.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Optional, Union

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import (
    check_state_dir,
    make_state_dir,
    read_record,
    write_atomically,
)

# The token names a unit, a file and a process tag: hex only, so it needs no quoting anywhere.
TOKEN_RE = re.compile(r"[0-9a-f]{8,64}")
# A confirm window longer than a day is a mistake, not a window.
MAX_DELAY_SECONDS = 86400.0
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"
# systemctl's exit status for "unit not loaded" (LSB 5: program is not installed).
SYSTEMCTL_NOT_LOADED = 5

# Started by the launcher below as: /bin/sh -c WAITER <tag> <delay> <script>.
# ``sleep`` gets /dev/null before anything else so that no process holds the launcher's stdout
# once the pids are written; the waiter then drops the pipe itself.
WAITER = ('sleep "$1" </dev/null >/dev/null 2>&1 & echo "$$ $!"; exec </dev/null >/dev/null 2>&1; '
          'wait "$!" && exec /bin/sh "$2"')
# /bin/sh -c LAUNCHER sh <waiter> <tag> <delay> <script>: the waiter goes to the background in its
# own session; the launcher exits at once, its output ends when the waiter closes the pipe.
LAUNCHER = 'setsid /bin/sh -c "$1" "$2" "$3" "$4" </dev/null 2>/dev/null &'


def unit_name(token: str) -> str:
    """The systemd unit (and process tag) of the timer with ``token``."""
    return f"ghostwarden-rollback-{token}"


def record_path(state_dir: str, token: str) -> str:
    return posixpath.join(state_dir, f"timer-{token}.json")


def marker_path(state_dir: str, token: str) -> str:
    return posixpath.join(state_dir, f"confirm-{token}")


@dataclass(frozen=True)
class TimerHandle:
    """An armed timer: enough to stop it later, from another process.

    ``kind`` is ``systemd`` (``unit`` set) or ``process`` (``pid`` of the waiter shell and
    ``sleep_pid`` of its sleep set). ``deadline`` is the wall-clock time (epoch seconds) at which
    the script runs.
    """

    token: str
    kind: str
    script: str
    state_dir: str
    deadline: float
    netns: Optional[str] = None
    unit: Optional[str] = None
    pid: Optional[int] = None
    sleep_pid: Optional[int] = None

    def to_dict(self) -> dict:
        return {
            "token": self.token,
            "kind": self.kind,
            "script": self.script,
            "state_dir": self.state_dir,
            "deadline": self.deadline,
            "netns": self.netns,
            "unit": self.unit,
            "pid": self.pid,
            "sleep_pid": self.sleep_pid,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TimerHandle:
        """A handle from :meth:`to_dict` output; ``ValueError`` naming the first bad field otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping, found {type(data).__name__}")
        expected = set(cls("0" * 8, "process", "/", "/", 0.0).to_dict())
        if set(data) != expected:
            raise ValueError(f"keys {sorted(data)} are not {sorted(expected)}")
        if not isinstance(data["token"], str) or not TOKEN_RE.fullmatch(data["token"]):
            raise ValueError(f"token: {data['token']!r} is not a hex token")
        if data["kind"] not in ("systemd", "process"):
            raise ValueError(f"kind: {data['kind']!r} is not systemd or process")
        for key in ("script", "state_dir"):
            if not isinstance(data[key], str):
                raise ValueError(f"{key}: {data[key]!r} is not a string")
        for key in ("netns", "unit"):
            if data[key] is not None and not isinstance(data[key], str):
                raise ValueError(f"{key}: {data[key]!r} is not a string or null")
        for key in ("pid", "sleep_pid"):
            value = data[key]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{key}: {value!r} is not a process id or null")
        deadline = data["deadline"]
        if not isinstance(deadline, (int, float)) or isinstance(deadline, bool):
            raise ValueError(f"deadline: {deadline!r} is not a number")
        if data["kind"] == "systemd" and not data["unit"]:
            raise ValueError("unit: a systemd timer needs its unit")
        if data["kind"] == "process" and not (data["pid"] and data["sleep_pid"]):
            raise ValueError("pid, sleep_pid: a process timer needs both")
        return cls(**{**data, "deadline": float(deadline)})


def check_token(token: Any) -> str:
    """``token`` if it is 8 to 64 lower-case hex digits; ``ValidationError`` otherwise."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValidationError(Issue("confirm_token", f"{token!r} is not 8 to 64 lower-case hex digits"))
    return token


def _check_delay(delay: Any) -> float:
    if (not isinstance(delay, (int, float)) or isinstance(delay, bool) or not math.isfinite(delay)
            or not 0 < delay <= MAX_DELAY_SECONDS):
        raise ValidationError(Issue("confirm_timeout", f"{delay!r} is not a number of seconds in "
                                                       f"(0, {MAX_DELAY_SECONDS:g}]"))
    return float(delay)


def systemd_running() -> bool:
    """Whether systemd is PID 1 here (sd_booted's test)."""
    return os.path.isdir(SYSTEMD_RUNTIME_DIR)


def arm(script_path: str, delay: float, *, token: str, runner: CommandRunner, state_dir: str | None = None,
        use_systemd: bool | None = None) -> TimerHandle:
    """Run ``/bin/sh script_path`` once, ``delay`` seconds from now, and return its handle.

    The script runs inside ``runner.netns`` when one is set. The timer survives the module's exit
    and the end of the SSH session; the process that arms it holds nothing of it (the detached
    waiter has only ``/dev/null`` open, in its own session). The handle is recorded atomically in
    ``<state_dir>/timer-<token>.json`` (``state_dir`` defaults to the script's directory) before
    this returns. ``use_systemd`` defaults to "systemd is PID 1". Raises ``ValidationError`` for a
    bad token or delay and ``BackendError("confirm timer", ...)`` when the timer cannot be armed.
    """
    token = check_token(token)
    delay = _check_delay(delay)
    if not isinstance(script_path, str) or not posixpath.isabs(script_path):
        raise ValidationError(Issue("script", f"{script_path!r} is not an absolute path"))
    state_dir = check_state_dir(posixpath.dirname(script_path) if state_dir is None else state_dir)
    if use_systemd is None:
        use_systemd = systemd_running()
    deadline = time.time() + delay
    if use_systemd:
        handle = _arm_systemd(script_path, delay, token, runner, state_dir, deadline)
    else:
        handle = _arm_process(script_path, delay, token, runner, state_dir, deadline)
    try:
        make_state_dir(state_dir)
        write_atomically(record_path(state_dir, token), json.dumps(handle.to_dict(), indent=2, sort_keys=True) + "\n",
                         0o600)
    except OSError as error:
        # An armed timer nobody can find would roll back a confirmed change: stop it again.
        _stop(handle, runner)
        raise BackendError("confirm timer", f"cannot record the timer in {state_dir}: {error.strerror or error}"
                           ) from None
    return handle


def _arm_systemd(script_path: str, delay: float, token: str, runner: CommandRunner, state_dir: str,
                 deadline: float) -> TimerHandle:
    unit = unit_name(token)
    # Milliseconds: every systemd accepts "<n>ms"; AccuracySec=1s stops systemd from
    # coalescing the expiry up to a minute late.
    argv = ["systemd-run", f"--unit={unit}", f"--on-active={math.ceil(delay * 1000)}ms",
            "--timer-property=AccuracySec=1s", *runner.argv(["/bin/sh", script_path])]
    # systemd runs the unit in the host namespace: its command enters runner.netns itself.
    result = runner.run(argv)
    if result.rc != 0:
        raise BackendError("confirm timer", f"systemd-run exited {result.rc}: {result.stderr.strip()}")
    return TimerHandle(token, "systemd", script_path, state_dir, deadline, netns=runner.netns, unit=unit)


def _arm_process(script_path: str, delay: float, token: str, runner: CommandRunner, state_dir: str,
                 deadline: float) -> TimerHandle:
    argv = ["/bin/sh", "-c", LAUNCHER, "sh", WAITER, unit_name(token), f"{delay:.3f}", script_path]
    result = runner.run(argv)
    fields = result.stdout.split()
    if result.rc != 0 or len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise BackendError("confirm timer", f"could not start the detached waiter (exit {result.rc}, output "
                                            f"{result.stdout.strip()!r}, {result.stderr.strip()!r})")
    return TimerHandle(token, "process", script_path, state_dir, deadline, netns=runner.netns,
                       pid=int(fields[0]), sleep_pid=int(fields[1]))


def load(token: str, state_dir: str) -> TimerHandle | None:
    """The recorded handle of ``token``'s timer, ``None`` when there is no record.

    ``BackendError("confirm timer", ...)`` for a record that cannot be read or parsed.
    """
    path = record_path(check_state_dir(state_dir), check_token(token))
    return read_record(path, "confirm timer", TimerHandle.from_dict)


def _process_facts(pid: int) -> tuple[int, list[str]] | None:
    """(parent pid, argv) of a live process; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stream:
            stat = stream.read()
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            cmdline = stream.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in parentheses may hold spaces and parentheses: fields follow the last ")".
    rest = stat[stat.rindex(")") + 2:].split()
    if rest[0] == "Z":
        return None
    return int(rest[1]), [part.decode("utf-8", "replace") for part in cmdline.split(b"\0")[:-1]]


def _waiting(handle: TimerHandle) -> bool:
    """Whether the handle's sleep still runs under its waiter (not a reused pid)."""
    if handle.pid is None or handle.sleep_pid is None:
        return False
    sleeper = _process_facts(handle.sleep_pid)
    waiter = _process_facts(handle.pid)
    if sleeper is None or waiter is None:
        return False
    parent, sleep_argv = sleeper
    waiter_argv = waiter[1]
    return (parent == handle.pid and bool(sleep_argv) and posixpath.basename(sleep_argv[0]) == "sleep"
            and unit_name(handle.token) in waiter_argv)


def _stop(handle: TimerHandle, runner: CommandRunner) -> bool:
    if handle.kind == "systemd":
        result = runner.run(["systemctl", "stop", f"{handle.unit}.timer"])
        if result.rc == SYSTEMCTL_NOT_LOADED:
            return False  # fired (a transient timer unloads once elapsed) or already stopped
        if result.rc != 0:
            raise BackendError("confirm timer", f"systemctl stop {handle.unit}.timer exited {result.rc}: "
                                                f"{result.stderr.strip()}")
        return True
    if not _waiting(handle):
        return False
    try:
        # Only the sleep: the waiter sees it fail and exits without running the script.
        os.kill(handle.sleep_pid, signal.SIGTERM)  # type: ignore[arg-type]
    except ProcessLookupError:
        return False
    return True


def disarm(handle_or_token: Union[TimerHandle, str], state_dir: str, runner: CommandRunner) -> bool:
    """Stop the timer before it fires and remove its record; True when a pending timer was stopped.

    Idempotent: a timer without a record, one that already fired, or one stopped before, is not
    an error (False). A rollback script that already started is never killed; it finds the confirm
    marker and does nothing. ``BackendError("confirm timer", ...)`` when systemd refuses to stop it.
    """
    state_dir = check_state_dir(state_dir)
    if isinstance(handle_or_token, TimerHandle):
        handle: TimerHandle | None = handle_or_token
        token = handle_or_token.token
    else:
        token = check_token(handle_or_token)
        handle = load(token, state_dir)
    stopped = _stop(handle, runner) if handle is not None else False
    try:
        os.unlink(record_path(state_dir, token))
    except FileNotFoundError:
        pass
    except OSError as error:
        raise BackendError("confirm timer", f"cannot remove {record_path(state_dir, token)}: "
                                            f"{error.strerror or error}") from None
    return stopped


def confirm(token: str, state_dir: str) -> str:
    """Create the confirm marker ``<state_dir>/confirm-<token>`` atomically and return its path.

    The rollback script checks for the marker under the apply lock and exits when it exists, so a
    confirm written before the script takes the lock always wins. Idempotent.
    """
    state_dir = check_state_dir(state_dir)
    path = marker_path(state_dir, check_token(token))
    try:
        make_state_dir(state_dir)
        write_atomically(path, f"{token}\n", 0o600)
    except OSError as error:
        raise BackendError("confirm", f"cannot write {path}: {error.strerror or error}") from None
    return path


def confirmed(token: str, state_dir: str) -> bool:
    """Whether :func:`confirm` ran for ``token``."""
    return os.path.exists(marker_path(check_state_dir(state_dir), check_token(token)))
