# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The PVE test server inside a throwaway network namespace.

No packet may leave a namespace the test made itself, not even to 127.0.0.1 of the root
namespace: the server listens on 127.0.0.1 inside ``gwpve-<hex>`` and clients talk to it from
there (in-process: ``with inside_netns(server.netns): ...``; a playbook:
``ip netns exec <ns> ansible-playbook ...``). Usage::

    from ansible_collections.ghostwarden.core.tests.pve.fixtures import pve_server  # noqa: F401

    def test_x(pve_server):                       # PVE 8; for 9: parametrize indirect
        pve_server.add_qemu(100, node="pve1", name="web1")
        with inside_netns(pve_server.netns):
            api = pve_server.client()             # proxmoxer, token auth, CA-verified
            ...

    @pytest.mark.parametrize("pve_server", [8, 9], indirect=True)
    def test_both(pve_server): ...

The fixture (and :func:`pve_lab`) adds node ``pve1`` and skips the test when not root or without ``ip``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ansible_collections.ghostwarden.core.tests.pve.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.pve.schema import locate_schema_dir
from ansible_collections.ghostwarden.core.tests.pve.server import PveServer

__all__ = ["inside_netns", "missing_requirement", "pve_lab", "pve_server", "requires_netns", "throwaway_netns"]


def missing_requirement() -> str | None:
    """Why the namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace for the PVE test server"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


requires_netns = pytest.mark.skipif(missing_requirement() is not None,
                                    reason=missing_requirement() or "namespace tests can run")


# The official schema is reference data beside the project, not part of it: without it the
# server accepts what its own NIC parsers accept, and tests of schema refusals cannot run.
requires_schema = pytest.mark.skipif(
    locate_schema_dir() is None,
    reason="the official PVE API schema (apidata-v8/v9.json, ../shared/pve or $GHOSTWARDEN_PVE_SCHEMA_DIR) is not here",
)


@contextmanager
def throwaway_netns(prefix: str = "gwpve") -> Iterator[str]:
    """``ip netns add <prefix>-<hex>`` with lo up; always deleted afterwards."""
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}-{secrets.token_hex(4)}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], capture_output=True, text=True, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True, check=False)


@contextmanager
def pve_lab(version: int = 8, node: str = "pve1") -> Iterator[PveServer]:
    """A started PveServer (node ``node`` added) in its own namespace (``server.netns``); cleaned up always."""
    with throwaway_netns() as namespace:
        server = PveServer(version=version)
        server.add_node(node)
        server.start(netns=namespace)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def pve_server(request: pytest.FixtureRequest) -> Iterator[PveServer]:
    """PveServer for PVE 8 (or ``request.param`` via indirect parametrization), node pve1, started."""
    version = getattr(request, "param", 8)
    with pve_lab(version=version) as server:
        yield server
