# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the working tree importable as ``ansible_collections.ghostwarden.core``, and skip root tests for others.

Module code imports its module_utils through the collection namespace, as Ansible
requires; a symlink under ``.cache/collections`` gives plain pytest the same view
without installing the collection. A user who cannot write there (the tree belongs to
root) gets the link in a directory of the temp dir instead.

A test marked ``root`` (it makes network namespaces, or needs root otherwise) is skipped
before it starts for any other user: this hook is the one place that checks.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _collections_root(root: Path) -> Path:
    """A directory whose ``ansible_collections/ghostwarden/core`` links to the working tree."""
    checkout = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    for candidate in (root / ".cache" / "collections",
                      Path(tempfile.gettempdir()) / f"ghostwarden-collections-{os.getuid()}-{checkout}"):
        link = candidate / "ansible_collections" / "ghostwarden" / "core"
        if link.is_dir() and link.resolve() == root:
            return candidate
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(root, target_is_directory=True)
        except FileExistsError:  # another worker made it first
            pass
        except OSError:  # not writable for this user: the next candidate
            continue
        if link.resolve() == root:
            return candidate
    raise RuntimeError(f"cannot link the working tree {root} as ansible_collections/ghostwarden/core anywhere")


COLLECTIONS_ROOT = _collections_root(ROOT)
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_ROOT))

# pylint: disable-next=wrong-import-position
from ansible_collections.ghostwarden.core.tests.support.netns import NOT_ROOT, ROOT_MARKER  # noqa: E402

# The namespace fixtures of tests/support: a test using one makes a namespace, so it must carry the
# root marker (checked at collection, for root too, so that a forgotten marker shows at once).
NAMESPACE_FIXTURES = frozenset({"netns", "lab_netns", "pve_server"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if NAMESPACE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                and item.get_closest_marker(ROOT_MARKER) is None]
    if unmarked:
        raise pytest.UsageError(f"these tests make network namespaces but are not marked {ROOT_MARKER}:\n  "
                                + "\n  ".join(unmarked))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(ROOT_MARKER) is not None and os.geteuid() != 0:
        pytest.skip(NOT_ROOT)


try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # the integration tests do not need it
    pass
else:
    # `make test` explores the same examples on every run, so that a red CI is a real regression
    # and not the luck of the draw; `make fuzz` explores new ones (GHOSTWARDEN_FUZZ=1).
    _hypothesis_settings.register_profile("reproducible", derandomize=True, print_blob=True)
    _hypothesis_settings.register_profile("fuzz", print_blob=True)
    _hypothesis_settings.load_profile("fuzz" if os.environ.get("GHOSTWARDEN_FUZZ") else "reproducible")
