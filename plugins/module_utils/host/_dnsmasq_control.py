# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""dnsmasq process control: one dnsmasq per config file in ``<state_dir>/dnsmasq``.

The config files are rendered by the pure core (``core._dnsmasq``); this file starts, restarts
and stops the processes so that they match them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import posixpath
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.ghostwarden.core.plugins.module_utils.core._dnsmasq import INSTANCE_NAME, InstancePaths, instance_paths
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import (
    check_state_dir,
    make_state_dir,
    write_atomically,
)


STARTED_SUFFIX = ".started"
SYSTEMD_UNIT_PREFIX = "ghostwarden-dnsmasq-"
# How often a start or stop looks again at the process.
_POLL_SECONDS = 0.05
# After SIGKILL the kernel ends the process at once; this only covers the scheduler.
_KILL_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class InstanceStatus:
    """One network's dnsmasq instance as found on the host."""

    network: str
    config: str  # path of its config file
    configured: bool  # the config file exists
    running: bool  # a live dnsmasq with this --conf-file in the runner's network namespace
    pid: int | None  # that process, None when not running
    current: bool  # running, and started from the config file as it is now

    def to_dict(self) -> dict:
        return {"network": self.network, "config": self.config, "configured": self.configured,
                "running": self.running, "pid": self.pid, "current": self.current}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _dnsmasq_message(result: CommandResult) -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    # dnsmasq starts each message with its own name; the step already says "dnsmasq <network>".
    lines = [line[len("dnsmasq: "):] if line.startswith("dnsmasq: ") else line for line in lines]
    return "; ".join(lines) or f"dnsmasq exited with status {result.rc}"


def _lease(fields: list[str]) -> dict | None:
    """One line of a lease file as a dict, None for a line that is not a lease."""
    if len(fields) != 5 or not fields[0].isdigit():
        return None
    try:
        address = ipaddress.ip_address(fields[2])
    except ValueError:
        return None
    v6 = address.version == 6
    return {
        "expiry": int(fields[0]),  # seconds since the epoch, 0 for an infinite lease
        "mac": None if v6 else fields[1].lower(),
        "iaid": fields[1] if v6 else None,
        "ip": str(address),
        "hostname": None if fields[3] == "*" else fields[3],
        "client_id": None if fields[4] == "*" else fields[4],
    }


def _exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (its sockets closed), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return True
    # The state is the first field after the command name, which is in parentheses and may hold spaces.
    state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
    return state in (b"Z", b"X", b"x")


class DnsmasqControl:
    """Starts, restarts and stops the dnsmasq instances so that they match the config files.

    An instance is found through the pid file its config names, and counts as running only
    when that process is alive, is dnsmasq with this ``--conf-file``, and lives in the runner's
    network namespace. Without a valid pid file the same test finds it in /proc, and the pid
    file is written again. ``<network>.started`` records the pid and the sha256 of the config it
    was started with, so a changed file restarts exactly its own instance.
    """

    def __init__(self, runner: CommandRunner, state_dir: str, *, use_systemd: bool | None = None,
                 start_timeout: float = 5.0, stop_timeout: float = 5.0) -> None:
        self.runner = runner
        self.state_dir = check_state_dir(state_dir)
        self.dnsmasq_dir = posixpath.join(self.state_dir, "dnsmasq")
        # A transient unit when systemd runs the host (sd_booted's test). systemd would start
        # the unit in its own network namespace, so inside a namespace dnsmasq daemonizes itself.
        if use_systemd is None:
            use_systemd = runner.netns is None and os.path.isdir("/run/systemd/system")
        self.use_systemd = use_systemd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout

    # -- files ----------------------------------------------------------------------------------

    def _check_config_path(self, path: str) -> str:
        if posixpath.dirname(path) != self.dnsmasq_dir or not path.endswith(".conf"):
            raise BackendError("dnsmasq files", f"{path} is not a config file in {self.dnsmasq_dir}")
        return path

    def _names(self, suffixes: tuple[str, ...]) -> list[str]:
        try:
            entries = sorted(os.scandir(self.dnsmasq_dir), key=lambda entry: entry.name)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise BackendError("dnsmasq files", f"cannot list {self.dnsmasq_dir}: {error.strerror}") from None
        return [entry.name for entry in entries if entry.name.endswith(suffixes) and entry.is_file()]

    def observe_files(self) -> dict[str, str]:
        """Every ``*.conf`` in ``<state_dir>/dnsmasq``: absolute path -> content, sorted by path."""
        files = {}
        for name in self._names((".conf",)):
            path = posixpath.join(self.dnsmasq_dir, name)
            try:
                content = _read_text(path)
            except OSError as error:
                raise BackendError("dnsmasq files", f"cannot read {path}: {error.strerror}") from None
            if content is not None:
                files[path] = content
        return files

    def write_file(self, path: str, content: str) -> None:
        """Replace a config file atomically (0644; its directory 0755, created if missing)."""
        self._check_config_path(path)
        try:
            make_state_dir(self.state_dir)
            if not os.path.isdir(self.dnsmasq_dir):
                os.mkdir(self.dnsmasq_dir)
                os.chmod(self.dnsmasq_dir, 0o755)  # mkdir applies the umask
            write_atomically(path, content, 0o644)
        except OSError as error:
            raise BackendError("dnsmasq files", f"cannot write {path}: {error.strerror or error}") from None

    def remove_file(self, path: str) -> None:
        """Remove a config file; its instance stops at the next :meth:`reconcile`."""
        self._check_config_path(path)
        try:
            _remove(path)
        except OSError as error:
            raise BackendError("dnsmasq files", f"cannot remove {path}: {error.strerror}") from None

    # -- processes ------------------------------------------------------------------------------

    def _started_path(self, network: str) -> str:
        return posixpath.join(self.dnsmasq_dir, f"{network}{STARTED_SUFFIX}")

    def _namespace_identity(self) -> tuple[int, int] | None:
        reference = f"/run/netns/{self.runner.netns}" if self.runner.netns else "/proc/self/ns/net"
        try:
            info = os.stat(reference)
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def _is_instance(self, pid: int, config: str) -> bool:
        """``pid`` is a live dnsmasq with ``--conf-file=<config>`` in the runner's namespace."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                argv = stream.read().decode(errors="replace").split("\0")
            namespace = os.stat(f"/proc/{pid}/ns/net")
        except OSError:  # gone (a zombie's cmdline is empty and fails the test below)
            return False
        if posixpath.basename(argv[0]) != "dnsmasq" or f"--conf-file={config}" not in argv:
            return False
        return (namespace.st_dev, namespace.st_ino) == self._namespace_identity()

    def _pid_from_file(self, network: str) -> int | None:
        """The pid in the instance's pid file when that process is the instance."""
        paths = instance_paths(self.state_dir, network)
        text = _read_text(paths.pid)
        if text is None or not text.strip().isdigit():
            return None
        pid = int(text.strip())
        return pid if pid > 0 and self._is_instance(pid, paths.config) else None

    def _pid(self, network: str, running: Callable[[], dict[str, int]] | None = None) -> int | None:
        """The instance's pid: from its pid file, else (the file removed, or naming another process)
        found by its command line in /proc (``running``: :meth:`_running`, possibly cached), so that
        it is kept or stopped rather than a second one started next to it. :meth:`reconcile`
        writes the pid file of an instance found that way."""
        pid = self._pid_from_file(network)
        if pid is not None:
            return pid
        return (running or self._running)().get(instance_paths(self.state_dir, network).config)

    def _running(self) -> dict[str, int]:
        """config path -> lowest pid, for every dnsmasq in /proc with ``--conf-file=<a config in
        <state_dir>/dnsmasq>`` in the runner's network namespace."""
        prefix = f"--conf-file={self.dnsmasq_dir}/"
        try:
            names = os.listdir("/proc")
        except OSError as error:
            raise BackendError("dnsmasq", f"cannot list /proc: {error.strerror}") from None
        found: dict[str, int] = {}
        for pid in sorted(int(name) for name in names if name.isdigit()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as stream:
                    argv = stream.read().decode(errors="replace").split("\0")
            except OSError:  # gone meanwhile
                continue
            if posixpath.basename(argv[0]) != "dnsmasq":
                continue
            for config in (argument[len("--conf-file="):] for argument in argv if argument.startswith(prefix)):
                if config not in found and self._is_instance(pid, config):
                    found[config] = pid
        return found

    def _running_once(self) -> Callable[[], dict[str, int]]:
        """:meth:`_running`, read on first use and at most once (only an instance without a valid
        pid file needs /proc)."""
        cache: list[dict[str, int]] = []

        def running() -> dict[str, int]:
            if not cache:
                cache.append(self._running())
            return cache[0]

        return running

    def _remember(self, network: str, pid: int) -> None:
        """Write the pid file of a running instance again when it does not name ``pid``."""
        path = instance_paths(self.state_dir, network).pid
        if (_read_text(path) or "").strip() == str(pid):
            return
        try:
            write_atomically(path, f"{pid}\n", 0o644)
        except OSError as error:
            message = f"cannot write its pid file {path}: {error.strerror or error}"
            raise BackendError(f"dnsmasq {network}", message) from None

    def _started(self, network: str) -> dict:
        text = _read_text(self._started_path(network))
        try:
            record = json.loads(text) if text is not None else {}
        except ValueError:  # a damaged record only means "not known to be current"
            return {}
        return record if isinstance(record, dict) else {}

    def status(self) -> dict[str, InstanceStatus]:
        """Every network with a config, pid or started file, sorted by network name."""
        networks = sorted({name.rsplit(".", 1)[0]
                           for name in self._names((".conf", ".pid", STARTED_SUFFIX))
                           if INSTANCE_NAME.match(name.rsplit(".", 1)[0])})
        statuses = {}
        running = self._running_once()
        for network in networks:
            config = instance_paths(self.state_dir, network).config
            pid = self._pid(network, running)
            try:
                with open(config, "rb") as stream:
                    digest: str | None = _sha256(stream.read())
            except FileNotFoundError:
                digest = None
            except OSError as error:
                raise BackendError(f"dnsmasq {network}", f"cannot read {config}: {error.strerror}") from None
            started = self._started(network)
            current = pid is not None and started.get("pid") == pid and started.get("sha256") == digest
            statuses[network] = InstanceStatus(network, config, digest is not None, pid is not None, pid, current)
        return statuses

    def reconcile(self, dry_run: bool = False) -> list[str]:
        """Make the processes match the config files; what changed (or would, with ``dry_run``).

        A config without a running instance starts one; a running instance whose config
        changed since it started restarts; an instance whose config is gone stops (its lease
        file stays). Nothing to do means no process is touched and [] is returned. The
        changes are listed in network order.
        """
        statuses = self.status()
        changes = {}
        for network, status in statuses.items():
            if not status.configured:
                if status.running:
                    changes[network] = f"stopped {network}"
            elif not status.running:
                changes[network] = f"started {network}"
            elif not status.current:
                changes[network] = f"restarted {network}"
        if not dry_run:
            # Leftover pid files of instances without a config are forgotten too.
            self._stop_and_forget([network for network, status in statuses.items() if not status.configured])
            for network, status in statuses.items():
                if status.configured and network in changes:
                    if status.pid is not None:
                        self._stop({network: status.pid})
                    self._start(network)
                elif status.configured and status.pid is not None:
                    self._remember(network, status.pid)
        return list(changes.values())

    def stop(self, network: str) -> bool:
        """Stop one instance (if it runs) and forget its pid and started files; whether it ran."""
        return bool(self._stop_and_forget([network]))

    def stop_all(self) -> list[str]:
        """Stop every instance, configured or not (``state: absent``); what was stopped."""
        return [f"stopped {network}" for network in self._stop_and_forget(list(self.status()))]

    def _stop_and_forget(self, networks: list[str]) -> list[str]:
        """Stop the instances of ``networks`` together, remove their pid and started files;
        the networks whose instance was running."""
        running = {}
        found = self._running_once()
        for network in networks:
            pid = self._pid(network, found)
            if pid is not None:
                running[network] = pid
        self._stop(running)
        for network in networks:
            try:
                _remove(instance_paths(self.state_dir, network).pid)
                _remove(self._started_path(network))
            except OSError as error:
                raise BackendError(f"dnsmasq {network}", f"cannot remove its pid files: {error.strerror}") from None
        return sorted(running)

    def _start(self, network: str) -> None:
        paths = instance_paths(self.state_dir, network)
        step = f"dnsmasq {network}"
        try:
            with open(paths.config, "rb") as stream:
                digest = _sha256(stream.read())
            # A pid file left by an instance that died would look like the new one.
            _remove(paths.pid)
            _remove(self._started_path(network))
        except OSError as error:
            raise BackendError(step, f"cannot prepare {paths.config}: {error.strerror}") from None
        started_at = time.time()
        if self.use_systemd:
            unit = f"{SYSTEMD_UNIT_PREFIX}{network}"
            # A unit of that name still loaded (its process lost its pid file) would block the name.
            self._run(step, ["systemctl", "stop", f"{unit}.service"])
            argv = ["systemd-run", f"--unit={unit}", "--collect", "dnsmasq", "-k", f"--conf-file={paths.config}"]
        else:
            # dnsmasq forks; its parent exits once the daemon is ready, or with the error.
            argv = ["dnsmasq", f"--conf-file={paths.config}"]
        result = self._run(step, argv)
        if result.rc != 0:
            raise BackendError(step, _dnsmasq_message(result))
        # The pid file only: until dnsmasq's parent exits it has the daemon's command line too.
        pid = self._wait_for(lambda: self._pid_from_file(network), self.start_timeout)
        if pid is None:
            raise BackendError(step, self._start_failure(network, paths, started_at))
        record = json.dumps({"pid": pid, "sha256": digest}, sort_keys=True) + "\n"
        try:
            write_atomically(self._started_path(network), record, 0o644)
        except OSError as error:
            raise BackendError(step, f"cannot record the start: {error.strerror or error}") from None

    def _start_failure(self, network: str, paths: InstancePaths, started_at: float) -> str:
        if self.use_systemd:
            journal = self._run(f"dnsmasq {network}", [
                "journalctl", f"--unit={SYSTEMD_UNIT_PREFIX}{network}.service", f"--since=@{int(started_at)}",
                "--output=cat", "--no-pager", "--quiet",
            ])
            message = _dnsmasq_message(CommandResult(1, "", journal.stdout))
            if journal.rc == 0 and journal.stdout.strip():
                return message
        return f"no dnsmasq process for {paths.config} after {self.start_timeout:g} s (pid file {paths.pid})"

    def _stop(self, instances: dict[str, int]) -> None:
        """SIGTERM to every instance (network -> pid), a bounded wait, then SIGKILL to what is left."""
        remaining = dict(instances)
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, _KILL_WAIT_SECONDS)):
            for network, pid in sorted(remaining.items()):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                except OSError as error:
                    raise BackendError(f"dnsmasq {network}", f"cannot signal process {pid}: {error.strerror}") from None

            def alive() -> dict[str, int]:
                # Not _is_instance: the kernel empties /proc/<pid>/cmdline before an exiting process
                # has released its sockets, and a successor would then find its address in use.
                return {network: pid for network, pid in remaining.items() if not _exited(pid)}

            self._wait_for(lambda: not alive(), wait)
            remaining = alive()
            if not remaining:
                return
        network, pid = sorted(remaining.items())[0]
        raise BackendError(f"dnsmasq {network}", f"process {pid} is still running after SIGKILL")

    @staticmethod
    def _wait_for(probe: Callable[[], Any], timeout: float) -> Any:
        """The first true value of ``probe()`` within ``timeout`` seconds, else None.

        Polls often at first (a daemon is usually ready, a process usually gone, within
        milliseconds), then every ``_POLL_SECONDS``.
        """
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            value = probe()
            if value or time.monotonic() >= deadline:
                return value or None
            time.sleep(pause)
            pause = min(pause * 2, _POLL_SECONDS)

    def _run(self, step: str, argv: list[str]) -> CommandResult:
        try:
            return self.runner.run(argv)
        except OSError as error:
            command = " ".join(self.runner.argv(argv))
            raise BackendError(step, f"cannot run {command}: {error.strerror or error}") from None

    # -- leases ---------------------------------------------------------------------------------

    def leases(self, network: str) -> list[dict]:
        """The DHCP leases of one network's instance, sorted by address; [] without a lease file.

        Each lease: expiry (epoch seconds, 0 = infinite), mac (IPv4) or iaid (IPv6), ip,
        hostname and client_id (None where dnsmasq wrote ``*``).
        """
        path = instance_paths(self.state_dir, network).leases
        try:
            text = _read_text(path)
        except OSError as error:
            raise BackendError(f"dnsmasq {network}", f"cannot read {path}: {error.strerror}") from None
        leases = [lease for lease in (_lease(line.split()) for line in (text or "").splitlines()) if lease]
        return sorted(leases, key=lambda lease: (ipaddress.ip_address(lease["ip"]).version,
                                                 ipaddress.ip_address(lease["ip"])))
