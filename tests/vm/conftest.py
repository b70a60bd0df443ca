# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the VM tests: one VM lab per run, a clean guest for every test, plays over SSH.

The lab boots three guests once (``vmlab``) and saves them (qemu ``savevm``); every test starts
from that snapshot (``guests``), so tests do not see each other's changes and a guest boots once
per run. Wiring (vmlab.py has the addresses):

* ``vm1``: ``eth1`` on segment ``ab`` (with ``vm2``), ``eth2`` on segment ``ac`` (with ``vm3``);
* ``vm2``: ``eth1`` on ``ab``; ``vm3``: ``eth1`` on ``ac``;
* every ``eth0`` on the lab's management bridge (192.0.2.0/24), which the topologies leave alone.

Plays run with ansible-playbook *inside the lab namespace* (``ip netns exec``), over SSH to the
guests: the root namespace gets no interface or route, and the controller reaches nothing but
the lab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ansible_collections.ghostwarden.core.tests.support.playbook import (
    PlayResults,
    TaskResult,
    module_task,
    run_playbook,
)
from ansible_collections.ghostwarden.core.tests.support.traffic import (
    FRAME_CAPTURE,
    FrameCapture,
)
from ansible_collections.ghostwarden.core.tests.support.traffic import await_line as _await_line
from ansible_collections.ghostwarden.core.tests.vm.vmlab import GuestSpec, VmLab

REQUIRED_TOOLS = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "dpkg-scanpackages", "ssh",
                  "ssh-keygen")
PLAY_TIMEOUT = 600
GUESTS = (GuestSpec("vm1", ("ab", "ac")), GuestSpec("vm2", ("ab",)), GuestSpec("vm3", ("ac",)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A VM test that cannot run is a failure, not a skip: `make vm-test` installs what they need.
    if not any(item.get_closest_marker("vm") for item in items):
        return
    if os.geteuid() != 0:
        raise pytest.UsageError("the VM tests build a lab network namespace and boot qemu guests: run them as root")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise pytest.UsageError(f"the VM tests need {', '.join(missing)} (make deps installs them)")


def root_namespace() -> dict:
    """The root namespace's links, addresses, routes and nft ruleset (read only), without what
    changes by itself (counters, address lifetimes)."""
    def read(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    links = json.loads(read("ip", "-j", "link", "show"))
    for link in links:
        for volatile in ("stats", "stats64", "operstate"):
            link.pop(volatile, None)
    addresses = json.loads(read("ip", "-j", "address", "show"))
    for link in addresses:
        link.pop("operstate", None)
        for item in link.get("addr_info", []):
            item.pop("valid_life_time", None)
            item.pop("preferred_life_time", None)
    ruleset = re.sub(r"packets \d+ bytes \d+", "", read("nft", "list", "ruleset"))
    return {"links": links, "addresses": addresses, "routes": json.loads(read("ip", "-j", "route", "show", "table", "all")),
            "routes6": json.loads(read("ip", "-6", "-j", "route", "show", "table", "all")), "ruleset": ruleset}


@pytest.fixture(scope="session")
def vmlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmLab]:
    before = root_namespace()
    lab = VmLab(GUESTS, workdir=tmp_path_factory.mktemp("vmlab"),
                log=lambda line: print(line, file=sys.stderr, flush=True))
    with lab:
        lab.snapshot("clean")
        lab.fresh = True  # type: ignore[attr-defined]
        yield lab
    # Nothing of the lab ever touched the root namespace.
    after = root_namespace()
    assert after == before, {key: (before[key], after[key]) for key in before if before[key] != after[key]}


@pytest.fixture
def guests(vmlab: VmLab, request: pytest.FixtureRequest) -> Iterator[VmLab]:
    """The lab with every guest as it was right after boot; the consoles are attached to a failure."""
    if not getattr(vmlab, "fresh", False):
        vmlab.revert("clean")
    vmlab.fresh = False  # type: ignore[attr-defined]
    yield vmlab


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    lab = item.funcargs.get("guests") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(lab, VmLab):
        for guest in lab.guests.values():
            report.sections.append((f"console of {guest.name} (last lines)", guest.console_tail(30)))


class GuestPlays:
    """Runs plays against the lab's guests: ``plays(tasks, hosts="vm1")`` or ``plays.playbook(path)``."""

    def __init__(self, lab: VmLab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = workdir / "inventory.json"
        lab.write_inventory(self.inventory)
        self.count = 0

    def __call__(self, tasks: list[dict], *, hosts: str = "all", check: bool = False, diff: bool = False,
                 extra_vars: dict | None = None, play_vars: dict | None = None) -> PlayResults:
        self.count += 1
        play = {"name": f"vm play {self.count}", "hosts": hosts, "gather_facts": False,
                "vars": play_vars or {}, "tasks": tasks}
        playbook = self.workdir / f"play{self.count}.yml"
        playbook.write_text(yaml.safe_dump([play], sort_keys=False))
        return self.playbook(playbook, check=check, diff=diff, extra_vars=extra_vars)

    def playbook(self, playbook: Path | str, *, check: bool = False, diff: bool = False,
                 extra_vars: dict | None = None) -> PlayResults:
        """Run ``playbook`` from inside the lab's namespace (where the guests are reachable) over SSH."""
        return run_playbook(playbook, workdir=self.workdir, inventory=self.inventory, check=check, diff=diff,
                            extra_vars=extra_vars, netns=self.lab.namespace, stats_host=None, timeout=PLAY_TIMEOUT,
                            environment={
                                "ANSIBLE_HOST_KEY_CHECKING": "false",
                                "ANSIBLE_PIPELINING": "true",
                                "ANSIBLE_TIMEOUT": "30",
                                # Per run: connections a guest forgot when it was reverted are never reused.
                                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "cp"),
                            })


@pytest.fixture
def plays(guests: VmLab, tmp_path: Path) -> GuestPlays:
    return GuestPlays(guests, tmp_path / "ansible")


@pytest.fixture(scope="session")
def task():
    """``task(module, **options)``: a task dict for one of the collection's modules."""
    return module_task


def by_host(results: PlayResults, task_name_part: str = "") -> dict[str, TaskResult]:
    """The results of one task (the first whose name contains ``task_name_part``) by host."""
    found: dict[str, TaskResult] = {}
    for result in results:
        if task_name_part in result.name and result.host not in found:
            found[result.host] = result  # type: ignore[assignment]
    return found


def capture(lab: VmLab, tap: str, seconds: float) -> FrameCapture:
    """Every frame a guest sends out of the NIC whose lab side is ``tap``, with its 802.1Q tag."""
    process = lab.spawn(sys.executable, "-c", FRAME_CAPTURE, tap, str(seconds), stdout=subprocess.PIPE, text=True)
    _await_line(process, "ready", 10, f"frame capture on {tap}")
    return FrameCapture(process, seconds)


def guest_json(lab: VmLab, guest: str, command: str) -> list | dict:
    return json.loads(lab[guest].ssh(command).stdout or "[]")


def link_view(lab: VmLab, guest: str, name: str) -> dict:
    """``ip -d -j link show NAME`` without its counters: what a test compares before and after."""
    (link,) = guest_json(lab, guest, f"ip -d -j link show {name}")
    for volatile in ("stats", "stats64", "operstate"):
        link.pop(volatile, None)
    return link


def ping(lab: VmLab, guest: str, address: str, *, count: int = 3) -> bool:
    """Pings from the guest; true when at least one answer came back."""
    return lab[guest].ssh(f"ping -c {count} -i 0.3 -W 2 {address}", check=False).returncode == 0
