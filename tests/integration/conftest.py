# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the integration tests: lab namespaces, and ansible-playbook runs against them.

Plays run the collection's modules from the working tree (``.cache/collections``, made by
tests/conftest.py) on ``localhost`` with the local connection; every task names a lab
namespace through the modules' ``netns`` option and a per-test ``state_dir``. The root network
namespace is never given a topology.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.support.playbook import PlayRunner, ansible_playbook, module_task

REQUIRED_TOOLS = ("ip", "nft", "bridge", "sysctl", "dnsmasq", "busybox")


def pytest_runtest_setup(item: pytest.Item) -> None:
    # After tests/conftest.py, which skips a root test for any other user (tryfirst).
    if item.get_closest_marker("root") is None:
        return
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if not ansible_playbook().exists():
        pytest.skip(f"needs {ansible_playbook()} (make deps)")


# -- ansible-playbook (tests/support/playbook.py) ---------------------------------------------

@pytest.fixture(scope="session")
def play_factory() -> Callable[[Path], PlayRunner]:
    """Make a :class:`PlayRunner` working in a given directory (for module-scoped labs)."""
    return PlayRunner


@pytest.fixture
def run_play(tmp_path: Path) -> PlayRunner:
    """``run_play(tasks, check=False, diff=False) -> list[TaskResult]`` for one test."""
    return PlayRunner(tmp_path / "ansible")


@pytest.fixture(scope="session")
def task() -> Callable[..., dict]:
    """``task(module, **options)``: a task dict for one of the collection's modules."""
    return module_task


# -- lab --------------------------------------------------------------------------------------

@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab of namespaces for one test, removed afterwards whatever happens."""
    with Lab(prefix=f"gwt-{secrets.token_hex(3)}") as made:
        yield made


@dataclass
class Site:
    """A lab host namespace with an uplink to an "internet" namespace, and a state directory."""

    lab: Lab
    host: str
    inet: str
    state_dir: Path


@pytest.fixture
def site(lab: Lab, tmp_path: Path) -> Site:
    host, inet = lab.add_uplinked_host()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    return Site(lab, host, inet, state_dir)


@pytest.fixture
def nat_dev() -> dict:
    """The original example's routed network, on ports of the lab host (a fresh copy per test)."""
    return {
        "type": "routed",
        "cidr": "10.33.0.0/24",
        "gw_ip": "10.33.0.1",
        "dhcp": True,
        "dns": {"enabled": True, "zones": ["dev.lan"], "records": {"files.dev.lan": "10.33.0.20"}},
        "masq_out": "uplink",
        "forwards": [{"public": "0.0.0.0:4022/tcp", "dst": "10.33.0.10:22"}],
        "policy_profile": "routed-tight",
        "ports": ["dev1p"],
    }


def state_files(state_dir: Path) -> dict[str, str]:
    """Every file under ``state_dir`` with its content, for comparing before and after a run.

    The apply lock (``<state_dir>/lock``, always empty) is left out: every run takes it, check
    mode too, so that it reads no half-applied state (docs/plan.md section 6).
    """
    return {str(path.relative_to(state_dir)): path.read_text(errors="replace")
            for path in sorted(state_dir.rglob("*")) if path.is_file() and path != state_dir / "lock"}


@pytest.fixture(scope="session")
def read_state_files() -> Callable[[Path], dict[str, str]]:
    return state_files
