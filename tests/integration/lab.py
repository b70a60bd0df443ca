# SPDX-License-Identifier: GPL-3.0-or-later
"""A throwaway lab of network namespaces for integration tests.

Every namespace, veth pair and process a test makes lives inside namespaces this
lab creates, and all of it is removed on close. The root namespace gets nothing:
veth pairs are created directly inside lab namespaces (``ip -n``), and lab
namespaces have no default route, so no packet can leave the lab.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, prefix: str | None = None) -> None:
        # Short unique prefix: namespace names appear in `ip netns list` and must not collide
        # with a parallel run.
        self.prefix = prefix or f"gw{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []

    # -- construction -------------------------------------------------------------------------
    def add_ns(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, *, up: bool = True) -> None:
        """A veth pair with one end in each namespace, created inside ns_a (never in the root namespace)."""
        self.run(ns_a, "ip", "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)
        if up:
            self.run(ns_a, "ip", "link", "set", name_a, "up")
            self.run(ns_b, "ip", "link", "set", name_b, "up")

    def addr(self, ns: str, iface: str, address: str) -> None:
        self.run(ns, "ip", "addr", "add", address, "dev", iface)

    def route(self, ns: str, *spec: str) -> None:
        self.run(ns, "ip", "route", "add", *spec)

    # -- running things -----------------------------------------------------------------------
    def run(self, ns: str, *cmd: str, check: bool = True, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", ns, *cmd], input=input, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise LabError(f"[{ns}] {shlex.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def spawn(self, ns: str, *cmd: str, **popen_kwargs) -> subprocess.Popen:
        """A background process inside ``ns``; killed when the lab closes."""
        popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
        popen_kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], start_new_session=True, **popen_kwargs)
        self.processes.append(process)
        return process

    def wait_for(self, predicate, *, timeout: float = 10, interval: float = 0.1, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise LabError(f"timed out after {timeout:g}s waiting for {what}")

    # -- teardown ------------------------------------------------------------------------------
    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        for ns in reversed(self.namespaces):
            # Anything still running inside (e.g. a daemon that detached) dies with its namespace.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.namespaces.clear()
        self.processes.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_root() -> bool:
    return os.geteuid() == 0


def have_tools(tools: Sequence[str]) -> bool:
    from shutil import which
    return all(which(tool) for tool in tools)
