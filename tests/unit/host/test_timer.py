# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The confirm window's rollback timer: detached waiter for real, systemd through a recorded runner."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host import _timer
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.tests.support.netns import throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.recorder import Recorder

TOKEN = "0123abcd"
REPO_TESTS = Path(__file__).resolve().parents[2]


def write_script(directory: Path, output: Path, text: str = "fired") -> Path:
    script = directory / "rollback.sh"
    script.write_text(f"echo {text} > {output}\n")
    return script


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_script_runs_after_the_arming_process_exited(tmp_path):
    delay = 3  # seconds
    output = tmp_path / "out"
    script = write_script(tmp_path, output)
    program = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_TESTS)!r})
        import conftest  # noqa: F401  (makes the collection importable)
        from ansible_collections.ghostwarden.core.plugins.module_utils.host import _timer
        from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandRunner
        handle = _timer.arm({str(script)!r}, {delay}, token={TOKEN!r}, runner=CommandRunner(), use_systemd=False)
        print(handle.pid)
    """)
    started = time.monotonic()
    # capture_output: the arming process's stdout is a pipe, like a module's under pipelining;
    # run() returning means every holder of that pipe closed it.
    armed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=True)
    arming_seconds = time.monotonic() - started
    # The arming process returns at once, not after the timer (a busy machine may take a second to start Python).
    assert arming_seconds < delay, arming_seconds
    assert not output.exists()
    waiter = int(armed.stdout)
    assert wait_for(output.exists, delay + 5)
    assert output.read_text() == "fired\n"
    assert time.monotonic() - started >= delay
    assert wait_for(lambda: process_gone(waiter), 5)
    record = json.loads((tmp_path / f"timer-{TOKEN}.json").read_text())
    assert record["kind"] == "process" and record["pid"] == waiter and record["script"] == str(script)


def test_the_waiter_holds_only_dev_null_in_its_own_session(tmp_path):
    script = write_script(tmp_path, tmp_path / "out")
    inherited_read, inherited_write = os.pipe()
    os.set_inheritable(inherited_write, True)
    try:
        handle = _timer.arm(str(script), 30, token=TOKEN, runner=CommandRunner(), use_systemd=False)
    finally:
        os.close(inherited_read)
        os.close(inherited_write)
    try:
        for pid in (handle.pid, handle.sleep_pid):
            descriptors = sorted(os.listdir(f"/proc/{pid}/fd"), key=int)
            assert descriptors == ["0", "1", "2"], (pid, descriptors)
            assert [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in descriptors] == ["/dev/null"] * 3
        assert os.getsid(handle.pid) == handle.pid != os.getsid(0)
        assert open(f"/proc/{handle.pid}/cmdline").read().split("\0")[3] == f"ghostwarden-rollback-{TOKEN}"
    finally:
        assert _timer.disarm(TOKEN, str(tmp_path), CommandRunner()) is True


def test_disarm_before_the_deadline_stops_it_and_is_idempotent(tmp_path):
    output = tmp_path / "out"
    script = write_script(tmp_path, output)
    handle = _timer.arm(str(script), 1, token=TOKEN, runner=CommandRunner(), use_systemd=False)
    assert _timer.disarm(TOKEN, str(tmp_path), CommandRunner()) is True
    assert not (tmp_path / f"timer-{TOKEN}.json").exists()
    assert wait_for(lambda: process_gone(handle.pid) and process_gone(handle.sleep_pid), 5)
    time.sleep(1.5)
    assert not output.exists()
    assert _timer.disarm(TOKEN, str(tmp_path), CommandRunner()) is False
    assert _timer.disarm(handle, str(tmp_path), CommandRunner()) is False


def test_disarm_after_the_timer_fired_is_not_an_error(tmp_path):
    output = tmp_path / "out"
    script = write_script(tmp_path, output)
    _timer.arm(str(script), 0.2, token=TOKEN, runner=CommandRunner(), use_systemd=False)
    assert wait_for(output.exists, 5)
    assert _timer.disarm(TOKEN, str(tmp_path), CommandRunner()) is False
    assert not (tmp_path / f"timer-{TOKEN}.json").exists()


def test_disarm_never_kills_a_process_that_is_not_the_timers_sleep(tmp_path):
    unrelated = subprocess.Popen(["sleep", "30"])
    try:
        handle = _timer.TimerHandle(TOKEN, "process", str(tmp_path / "rollback.sh"), str(tmp_path), 0.0,
                                    pid=os.getpid(), sleep_pid=unrelated.pid)
        assert _timer.disarm(handle, str(tmp_path), CommandRunner()) is False
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


@pytest.mark.root
def test_the_script_runs_inside_the_runners_namespace(tmp_path):
    with throwaway_netns() as namespace:
        output = tmp_path / "out"
        script = tmp_path / "rollback.sh"
        script.write_text(f"ip netns identify $$ > {output}\n")
        _timer.arm(str(script), 0.2, token=TOKEN, runner=CommandRunner(netns=namespace.name), use_systemd=False)
        assert wait_for(lambda: output.exists() and output.read_text(), 5)
        assert output.read_text() == f"{namespace.name}\n"


def test_systemd_path_runs_a_transient_timer_and_stops_only_the_timer(tmp_path):
    recorder = Recorder(CommandResult(0, "", "Running timer as unit: ghostwarden-rollback-0123abcd.timer\n"),
                        CommandResult(0, "", ""))
    runner = CommandRunner(recorder)
    handle = _timer.arm("/var/lib/gw/rollback.sh", 30, token=TOKEN, runner=runner, state_dir=str(tmp_path),
                        use_systemd=True)
    assert recorder.calls == [["systemd-run", "--unit=ghostwarden-rollback-0123abcd", "--on-active=30000ms",
                               "--timer-property=AccuracySec=1s", "/bin/sh", "/var/lib/gw/rollback.sh"]]
    assert (handle.kind, handle.unit, handle.pid) == ("systemd", "ghostwarden-rollback-0123abcd", None)
    assert json.loads((tmp_path / f"timer-{TOKEN}.json").read_text())["unit"] == "ghostwarden-rollback-0123abcd"
    assert _timer.disarm(TOKEN, str(tmp_path), runner) is True
    assert recorder.calls[1] == ["systemctl", "stop", "ghostwarden-rollback-0123abcd.timer"]
    assert not (tmp_path / f"timer-{TOKEN}.json").exists()


def test_systemd_path_enters_the_namespace_in_the_units_command(tmp_path):
    recorder = Recorder(CommandResult(0, "", ""))
    _timer.arm(str(tmp_path / "rollback.sh"), 2.5, token=TOKEN, runner=CommandRunner(recorder, netns="lab"),
               use_systemd=True)
    assert recorder.calls == [["ip", "netns", "exec", "lab", "systemd-run", "--unit=ghostwarden-rollback-0123abcd",
                               "--on-active=2500ms", "--timer-property=AccuracySec=1s",
                               "ip", "netns", "exec", "lab", "/bin/sh", str(tmp_path / "rollback.sh")]]


def test_systemd_timer_that_already_fired_disarms_quietly_and_errors_are_named(tmp_path):
    not_loaded = CommandResult(5, "", "Failed to stop ghostwarden-rollback-0123abcd.timer: Unit not loaded.\n")
    recorder = Recorder(CommandResult(0, "", ""), not_loaded)
    runner = CommandRunner(recorder)
    _timer.arm(str(tmp_path / "rollback.sh"), 30, token=TOKEN, runner=runner, use_systemd=True)
    assert _timer.disarm(TOKEN, str(tmp_path), runner) is False

    recorder = Recorder(CommandResult(0, "", ""), CommandResult(1, "", "Access denied\n"))
    runner = CommandRunner(recorder)
    _timer.arm(str(tmp_path / "rollback.sh"), 30, token=TOKEN, runner=runner, use_systemd=True)
    with pytest.raises(BackendError) as raised:
        _timer.disarm(TOKEN, str(tmp_path), runner)
    assert str(raised.value) == ("confirm timer: systemctl stop ghostwarden-rollback-0123abcd.timer exited 1: "
                                 "Access denied")


def test_a_refused_systemd_run_is_named(tmp_path):
    runner = CommandRunner(Recorder(CommandResult(1, "", "Failed to start transient timer unit: Unit exists\n")))
    with pytest.raises(BackendError) as raised:
        _timer.arm(str(tmp_path / "rollback.sh"), 30, token=TOKEN, runner=runner, use_systemd=True)
    assert str(raised.value) == "confirm timer: systemd-run exited 1: Failed to start transient timer unit: Unit exists"
    assert not (tmp_path / f"timer-{TOKEN}.json").exists()


def test_a_launcher_without_pids_is_an_error(tmp_path):
    runner = CommandRunner(Recorder(CommandResult(127, "", "sh: 1: setsid: not found\n")))
    with pytest.raises(BackendError) as raised:
        _timer.arm(str(tmp_path / "rollback.sh"), 30, token=TOKEN, runner=runner, use_systemd=False)
    assert str(raised.value) == ("confirm timer: could not start the detached waiter (exit 127, output '', "
                                 "'sh: 1: setsid: not found')")


@pytest.mark.parametrize("token, delay, script, message", [
    ("XYZ", 30, "/s.sh", "confirm_token: 'XYZ' is not 8 to 64 lower-case hex digits"),
    (None, 30, "/s.sh", "confirm_token: None is not 8 to 64 lower-case hex digits"),
    (TOKEN, 0, "/s.sh", "confirm_timeout: 0 is not a number of seconds in (0, 86400]"),
    (TOKEN, True, "/s.sh", "confirm_timeout: True is not a number of seconds in (0, 86400]"),
    (TOKEN, float("nan"), "/s.sh", "confirm_timeout: nan is not a number of seconds in (0, 86400]"),
    (TOKEN, "30", "/s.sh", "confirm_timeout: '30' is not a number of seconds in (0, 86400]"),
    (TOKEN, 30, "s.sh", "script: 's.sh' is not an absolute path"),
])
def test_bad_arguments_are_refused_before_anything_runs(token, delay, script, message):
    recorder = Recorder()
    with pytest.raises(ValidationError) as raised:
        _timer.arm(script, delay, token=token, runner=CommandRunner(recorder), use_systemd=False)
    assert str(raised.value) == message
    assert recorder.calls == []


def test_confirm_writes_the_marker_atomically(tmp_path):
    state_dir = tmp_path / "state"
    assert _timer.confirmed(TOKEN, str(state_dir)) is False
    path = _timer.confirm(TOKEN, str(state_dir))
    assert path == f"{state_dir}/confirm-{TOKEN}"
    assert Path(path).read_text() == f"{TOKEN}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert _timer.confirm(TOKEN, str(state_dir)) == path
    assert _timer.confirmed(TOKEN, str(state_dir)) is True
    assert [name for name in os.listdir(state_dir) if name.endswith(".tmp")] == []


def test_a_corrupt_record_is_reported(tmp_path):
    (tmp_path / f"timer-{TOKEN}.json").write_text('{"token": "0123abcd"}')
    with pytest.raises(BackendError) as raised:
        _timer.disarm(TOKEN, str(tmp_path), CommandRunner(Recorder()))
    assert str(raised.value).startswith(f"confirm timer: {tmp_path}/timer-{TOKEN}.json is corrupt (keys ['token'] are not")


def test_handles_round_trip_through_their_dict():
    handle = _timer.TimerHandle(TOKEN, "process", "/s.sh", "/var/lib/gw", 12.5, netns="lab", pid=10, sleep_pid=11)
    assert _timer.TimerHandle.from_dict(handle.to_dict()) == handle
    with pytest.raises(ValueError, match="pid, sleep_pid: a process timer needs both"):
        _timer.TimerHandle.from_dict({**handle.to_dict(), "sleep_pid": None})
    with pytest.raises(ValueError, match=r"pid: True is not a process id or null"):
        _timer.TimerHandle.from_dict({**handle.to_dict(), "pid": True})
