# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Moving the calling thread into a named network namespace and back (setns is per thread)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
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
