# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The PVE test server inside a throwaway network namespace.

No packet may leave a namespace the test made itself, not even to 127.0.0.1 of the root
namespace: the server listens on 127.0.0.1 inside ``gwpve-<hex>`` and clients talk to it from
there (in-process: ``with inside_netns(server.netns): ...``; a playbook:
``ip netns exec <ns> ansible-playbook ...``). Usage::

    from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
    from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server  # noqa: F401

    pytestmark = pytest.mark.root                 # it makes a namespace: root only

    def test_x(pve_server):                       # PVE 8; for 9: parametrize indirect
        pve_server.add_qemu(100, node="pve1", name="web1")
        with inside_netns(pve_server.netns):
            api = pve_server.client()             # proxmoxer, token auth, CA-verified
            ...

    @pytest.mark.parametrize("pve_server", [8, 9], indirect=True)
    def test_both(pve_server): ...

The fixture (and :func:`pve_lab`) adds node ``pve1``; a test using it carries the ``root`` marker
(tests/support/netns.py), and is skipped without ``ip``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ansible_collections.ghostwarden.core.tests.support.netns import throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.pve.schema import locate_schema_dir
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer

__all__ = ["pve_lab", "pve_server", "requires_schema"]


# The official schema is reference data beside the project, not part of it: without it the
# server accepts what its own NIC parsers accept, and tests of schema refusals cannot run.
requires_schema = pytest.mark.skipif(
    locate_schema_dir() is None,
    reason="the official PVE API schema (apidata-v8/v9.json, ../shared/pve or $GHOSTWARDEN_PVE_SCHEMA_DIR) is not here",
)


@contextmanager
def pve_lab(version: int = 8, node: str = "pve1") -> Iterator[PveServer]:
    """A started PveServer (node ``node`` added) in its own namespace (``server.netns``); cleaned up always."""
    with throwaway_netns("gwpve", tools=("ip",)) as namespace:
        server = PveServer(version=version)
        server.add_node(node)
        server.start(netns=namespace.name)
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
