# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the working tree importable as ``ansible_collections.ghostwarden.core``.

Module code imports its module_utils through the collection namespace, as Ansible
requires; a symlink under ``.cache/collections`` gives plain pytest the same view
without installing the collection.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS_ROOT = ROOT / ".cache" / "collections"
_LINK = COLLECTIONS_ROOT / "ansible_collections" / "ghostwarden" / "core"

if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        _LINK.symlink_to(ROOT, target_is_directory=True)
    except FileExistsError:  # another worker made it first
        pass

if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_ROOT))

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
