# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Throwaway network namespaces for unit tests that run ``nft`` or ``ip``.

Anything that touches the kernel runs inside a namespace the test creates with a
unique name and that is deleted afterwards, whatever happens. Use the fixtures
(import them into the test module)::

    from ansible_collections.ghostwarden.core.tests.unit.netns import netns  # noqa: F401

    def test_loads(netns):
        netns.nft("table inet t { }")

or the context manager :func:`throwaway_netns` for several namespaces in one test.
Both skip the test when not root, when ``ip``/``nft`` are missing, or when the
kernel refuses to create a namespace.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

TOOLS = ("ip", "nft")


def missing_requirement(tools: Sequence[str] = TOOLS) -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    return None


# For module- or test-level use: @requires_netns
requires_netns = pytest.mark.skipif(missing_requirement() is not None,
                                    reason=missing_requirement() or "namespace tests can run")


class NetnsError(AssertionError):
    """A command inside the namespace failed (an assertion: the test fails with its output)."""


class NetNS:
    """A network namespace made by :func:`throwaway_netns`; commands run inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.processes: list[subprocess.Popen] = []

    def __str__(self) -> str:
        return self.name

    def run(self, *argv: str, input: str | None = None, check: bool = True, env: Mapping[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        environment = None if env is None else {**os.environ, **env}
        result = subprocess.run(["ip", "netns", "exec", self.name, *argv], input=input, capture_output=True,
                                text=True, timeout=timeout, env=environment, check=False)
        if check and result.returncode != 0:
            raise NetnsError(f"[{self.name}] {' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
        return result

    def spawn(self, *argv: str, **popen_kwargs: object) -> subprocess.Popen:
        """A background process inside the namespace, killed when the namespace goes."""
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **popen_kwargs)  # type: ignore[call-overload]
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


def _kill_inside(name: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@contextmanager
def throwaway_netns(prefix: str = "gwt") -> Iterator[NetNS]:
    """A fresh namespace named ``<prefix>-<random>`` with ``lo`` up; always deleted on exit."""
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}-{secrets.token_hex(4)}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.strip()}")
    namespace = NetNS(name)
    try:
        namespace.run("ip", "link", "set", "lo", "up")
        yield namespace
    finally:
        _kill_inside(name)
        for process in namespace.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


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
