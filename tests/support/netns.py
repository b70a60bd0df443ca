# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Throwaway network namespaces: the one helper of every test that touches the kernel.

Anything a test does to links, addresses, routes, nft or processes happens inside a namespace it
makes with a unique name, and that namespace is deleted afterwards whatever happens (with every
process still running inside). Use the fixtures (import them into the test module)::

    from ansible_collections.ghostwarden.core.tests.support.netns import netns  # noqa: F401

    pytestmark = pytest.mark.root

    def test_loads(netns):
        netns.nft("table inet t { }")

or the context manager :func:`throwaway_netns` for several namespaces in one test, and
:func:`inside_netns` to move the calling thread into one (sockets made there stay there).

Root: a test that makes a namespace carries the ``root`` marker; tests/conftest.py skips such a
test for any other user before it starts, and that is the only place that skips for the user. A
forgotten marker shows: a test using the ``netns``, ``lab_netns`` or ``pve_server`` fixture
without it is refused at collection (as root too), and a namespace asked for by an unmarked test
that another user runs fails with a message saying so, before any ``ip netns add``. Missing
tools skip (``requires_netns``, :func:`missing_requirement`), as does a kernel that refuses
namespaces.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

TOOLS = ("ip", "nft")
ROOT_MARKER = "root"
NOT_ROOT = "needs root: it makes network namespaces (tests marked root are skipped for other users)"
CLONE_NEWNET = 0x40000000


def missing_requirement(tools: Sequence[str] = TOOLS) -> str | None:
    """Which of ``tools`` are not installed (a skip reason), or None when all are.

    Root is not checked here: that is the ``root`` marker's business (tests/conftest.py).
    """
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return f"needs {', '.join(missing)}" if missing else None


def requires_tools(*tools: str) -> pytest.MarkDecorator:
    """A skipif marker for tests that need ``tools`` (root is the ``root`` marker's business)."""
    return pytest.mark.skipif(missing_requirement(tools) is not None, reason=missing_requirement(tools) or "present")


# For module- or test-level use, beside the root marker: pytestmark = [pytest.mark.root, requires_netns]
requires_netns = requires_tools(*TOOLS)


class NetnsError(AssertionError):
    """A command inside a namespace failed (an assertion: the test fails with its output)."""


def netns_exec(name: str, *argv: str, input: str | None = None, check: bool = True,
               env: Mapping[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``ip netns exec <name> argv...`` with its output; :class:`NetnsError` when it fails and ``check``."""
    environment = None if env is None else {**os.environ, **env}
    result = subprocess.run(["ip", "netns", "exec", name, *argv], input=input, capture_output=True, text=True,
                            timeout=timeout, env=environment, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"[{name}] {shlex.join(argv)} exited {result.returncode}:\n{result.stderr.strip()}")
    return result


def netns_spawn(name: str, *argv: str, **popen_kwargs: object) -> subprocess.Popen:
    """A background process inside ``name`` in a session of its own (:func:`stop_processes` ends it)."""
    return subprocess.Popen(["ip", "netns", "exec", name, *argv], start_new_session=True,  # type: ignore[call-overload]
                            **popen_kwargs)


def stop_processes(processes: Iterable[subprocess.Popen]) -> None:
    """Kill each process (with its session) that still runs, and reap it."""
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                process.kill()
        process.wait(timeout=10)


class NetnsRefused(NetnsError):
    """The kernel would not make a namespace (no permission in a container, a name in use)."""


def create_netns(name: str) -> None:
    """``ip netns add <name>`` with ``lo`` up; :class:`NetnsRefused` when the kernel says no."""
    if os.geteuid() != 0:
        pytest.fail(f"network namespace {name}: {NOT_ROOT}; mark the test with pytest.mark.{ROOT_MARKER}",
                    pytrace=False)
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        raise NetnsRefused(f"ip netns add {name} exited {created.returncode}: {created.stderr.strip()}")
    try:
        netns_exec(name, "ip", "link", "set", "lo", "up")
    except BaseException:
        delete_netns(name)
        raise


def delete_netns(name: str) -> None:
    """Kill every process still inside ``name`` (a daemon that detached too), then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


class NetNS:
    """A network namespace made by :func:`throwaway_netns`; commands run inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.processes: list[subprocess.Popen] = []

    def __str__(self) -> str:
        return self.name

    def run(self, *argv: str, input: str | None = None, check: bool = True, env: Mapping[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        return netns_exec(self.name, *argv, input=input, check=check, env=env, timeout=timeout)

    def spawn(self, *argv: str, **popen_kwargs: object) -> subprocess.Popen:
        """A background process inside the namespace, killed when the namespace goes."""
        process = netns_spawn(self.name, *argv, **popen_kwargs)
        self.processes.append(process)
        return process

    def nft(self, script: str, *, check_only: bool = False, check: bool = True,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        """Feed ``script`` to ``nft -f -`` (``nft -c -f -`` with check_only)."""
        argv = ["nft", "-c", "-f", "-"] if check_only else ["nft", "-f", "-"]
        return self.run(*argv, input=script, check=check, env=env)

    def list_table(self, family: str, name: str, env: Mapping[str, str] | None = None) -> str:
        return self.run("nft", "list", "table", family, name, env=env).stdout

    def list_ruleset(self) -> str:
        return self.run("nft", "list", "ruleset").stdout


@contextmanager
def throwaway_netns(prefix: str = "gwt", tools: Sequence[str] = TOOLS) -> Iterator[NetNS]:
    """A fresh namespace named ``<prefix>-<random>`` with ``lo`` up; always deleted on exit.

    Skips the test when one of ``tools`` is missing or the kernel refuses to make the namespace.
    """
    reason = missing_requirement(tools)
    if reason:
        pytest.skip(reason)
    name = f"{prefix}-{secrets.token_hex(4)}"
    try:
        create_netns(name)
    except NetnsRefused as refused:
        pytest.skip(f"cannot create a network namespace: {refused}")
    namespace = NetNS(name)
    try:
        yield namespace
    finally:
        stop_processes(namespace.processes)
        delete_netns(name)


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A throwaway namespace for one test."""
    with throwaway_netns() as namespace:
        yield namespace


@pytest.fixture
def lab_netns() -> Iterator[str]:
    """The name of a throwaway namespace for one test, for callers that only need the name."""
    with throwaway_netns() as namespace:
        yield namespace.name


# -- the calling thread in a namespace (setns is per thread) -------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns into {what}: {os.strerror(error)}")


@contextmanager
def inside_netns(name: str) -> Iterator[None]:
    """Run the body with this thread in /run/netns/<name>; sockets made there stay there."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target, f"network namespace {name}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original, "the original network namespace")
    finally:
        os.close(original)
