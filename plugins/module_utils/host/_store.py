# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""What the collection remembers between runs, kept under ``state_dir``.

The kernel cannot mark an address, an FDB entry or an enslavement as the collection's (links
carry an ifalias mark, these have nowhere to put one), so the records say which ones it added.
They also keep the value a sysctl had before the collection first set it, the topology last
applied and a generation counter. ``docs/plan.md`` (section 6) describes the file and the lock.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, Issue, ValidationError

RecordT = TypeVar("RecordT")

STATE_FILE = "state.json"
LOCK_FILE = "lock"
DNSMASQ_DIR = "dnsmasq"
# Bumped when the layout of the file changes; a file of another format is refused, not guessed at.
STATE_FORMAT = 1
# How often a waiting lock() tries again.
LOCK_POLL_SECONDS = 0.1

# The state directory also holds the dnsmasq files, whose paths dnsmasq reads up to a comma.
_PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f,]")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _canonical_address(value: str) -> str:
    return str(ipaddress.ip_interface(value))


def _canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _canonical_route(entry: tuple) -> tuple[str, str, str, str, str]:
    bridge, table, dst, metric, port = entry
    return (str(bridge), str(int(table)), str(ipaddress.ip_network(dst)), str(int(metric)), str(port))


def _canonical_mac(value: str) -> str:
    mac = value.lower()
    if not _MAC.match(mac):
        raise ValueError(f"{value!r} is not a MAC address")
    return mac


@dataclass
class Records:
    """The collection's memory of what it did to the host.

    Tuples are canonical (addresses as ``ipaddress`` prints them, MACs in lower case), so they
    compare equal to what the observer reports.
    """

    owned_addresses: frozenset[tuple[str, str]] = frozenset()  # (iface, "10.33.0.1/24")
    owned_fdb: frozenset[tuple[str, str, str]] = frozenset()  # (iface, mac, dst)
    owned_enslavements: frozenset[tuple[str, str]] = frozenset()  # (port, master)
    sysctl_previous: Mapping[str, str] = field(default_factory=dict)  # key -> value before the first set
    topology: dict | None = None  # topology_to_dict() of the topology last applied
    generation: int = 0
    # sha256 of the owned table as nft listed it after the last load, and of the rendering loaded:
    # while both still match, a no-op run need not normalise and compare the two texts.
    nft_digests: Mapping[str, str] = field(default_factory=dict)
    # What adopt_port_addresses moved from a port to its bridge, so that it goes back to the port:
    # (bridge, "192.0.2.2/24", port) and (bridge, table, dst, metric, port), numbers as text.
    adopted_addresses: frozenset[tuple[str, str, str]] = frozenset()
    adopted_routes: frozenset[tuple[str, str, str, str, str]] = frozenset()

    def __post_init__(self) -> None:
        self.owned_addresses = frozenset((str(iface), _canonical_address(address))
                                         for iface, address in self.owned_addresses)
        self.owned_fdb = frozenset((str(iface), _canonical_mac(mac), _canonical_ip(dst))
                                   for iface, mac, dst in self.owned_fdb)
        self.owned_enslavements = frozenset((str(port), str(master)) for port, master in self.owned_enslavements)
        self.sysctl_previous = {str(key): str(value) for key, value in sorted(self.sysctl_previous.items())}
        self.nft_digests = {str(key): str(value) for key, value in sorted(self.nft_digests.items())}
        self.adopted_addresses = frozenset((str(bridge), _canonical_address(address), str(port))
                                           for bridge, address, port in self.adopted_addresses)
        self.adopted_routes = frozenset(_canonical_route(entry) for entry in self.adopted_routes)

    def adopted_address_ports(self) -> dict[tuple[str, str], str]:
        """(bridge, address) -> the port it was adopted from."""
        return {(bridge, address): port for bridge, address, port in self.adopted_addresses}

    def adopted_route_ports(self) -> dict[tuple[int, str, int, str], str]:
        """Route key (table, dst, metric, bridge) -> the port it was adopted from."""
        return {(int(table), dst, int(metric), bridge): port for bridge, table, dst, metric, port in self.adopted_routes}

    def adoption_links(self) -> set[str]:
        """The ports and bridges of the recorded adoptions."""
        return ({entry[0] for entry in self.adopted_addresses} | {entry[2] for entry in self.adopted_addresses}
                | {entry[0] for entry in self.adopted_routes} | {entry[4] for entry in self.adopted_routes})

    @classmethod
    def empty(cls) -> Records:
        return cls()

    def to_dict(self) -> dict:
        """JSON-able, every collection sorted: equal records give equal dicts and equal files."""
        return {
            "format": STATE_FORMAT,
            "generation": self.generation,
            "owned_addresses": [list(entry) for entry in sorted(self.owned_addresses)],
            "owned_fdb": [list(entry) for entry in sorted(self.owned_fdb)],
            "owned_enslavements": [list(entry) for entry in sorted(self.owned_enslavements)],
            "sysctl_previous": dict(sorted(self.sysctl_previous.items())),
            "topology": self.topology,
            "nft_digests": dict(self.nft_digests),
            # Only when there are any: records without adoptions keep their file as before.
            **({"adopted_addresses": [list(entry) for entry in sorted(self.adopted_addresses)]}
               if self.adopted_addresses else {}),
            **({"adopted_routes": [list(entry) for entry in sorted(self.adopted_routes)]}
               if self.adopted_routes else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Records:
        """Records from :meth:`to_dict` output; ``ValueError`` naming the first bad field otherwise."""
        check_format(data, STATE_FORMAT)
        unknown = sorted(set(data) - set(cls().to_dict()) - {"adopted_addresses", "adopted_routes"})
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        generation = data.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise ValueError(f"generation: {generation!r} is not a non-negative integer")
        sysctls = data.get("sysctl_previous")
        if not isinstance(sysctls, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in sysctls.items()
        ):
            raise ValueError(f"sysctl_previous: {sysctls!r} is not a mapping of strings to strings")
        digests = data.get("nft_digests", {})
        if not isinstance(digests, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in digests.items()
        ):
            raise ValueError(f"nft_digests: {digests!r} is not a mapping of strings to strings")
        topology = data.get("topology")
        if topology is not None and not isinstance(topology, dict):
            raise ValueError(f"topology: expected a mapping or null, found {type(topology).__name__}")
        tuples = {name: _string_tuples(data.get(name), name, size)
                  for name, size in (("owned_addresses", 2), ("owned_fdb", 3), ("owned_enslavements", 2))}
        tuples.update({name: _string_tuples(data.get(name, []), name, size)
                       for name, size in (("adopted_addresses", 3), ("adopted_routes", 5))})
        try:
            return cls(generation=generation, sysctl_previous=sysctls, topology=topology, nft_digests=digests,
                       **tuples)
        except ValueError as error:  # an address or MAC that does not parse
            raise ValueError(f"owned entries: {error}") from None


def _string_tuples(value: Any, name: str, size: int) -> frozenset[tuple]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a list, found {type(value).__name__}")
    entries = set()
    for index, entry in enumerate(value):
        if not isinstance(entry, list) or len(entry) != size or not all(isinstance(item, str) for item in entry):
            raise ValueError(f"{name}[{index}]: {entry!r} is not a list of {size} strings")
        entries.add(tuple(entry))
    return frozenset(entries)


def _fsync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: str, content: str | Callable[[TextIO], None], mode: int) -> None:
    """Replace ``path`` with ``content`` so that a crash leaves the old file or the new one, whole.

    ``content`` is the text, or a function that writes it to the stream it is given (a large JSON
    document written in pieces never exists whole in memory). Temp file in the same directory,
    fsync, rename over the target, fsync the directory (the rename itself is only durable then).
    The temp file is removed when anything fails. ``OSError`` propagates for the caller to name its step.
    """
    directory = posixpath.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{posixpath.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            if callable(content):
                content(stream)
            else:
                stream.write(content)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def json_writer(document: Any) -> Callable[[TextIO], None]:
    """For :func:`write_atomically`: ``document`` as JSON with sorted keys and a two-space indent, and a newline."""
    def write(stream: TextIO) -> None:
        json.dump(document, stream, indent=2, sort_keys=True)
        stream.write("\n")

    return write


def check_state_dir(state_dir: Any) -> str:
    """``state_dir`` normalised; ``ValidationError`` for a value that cannot be a state directory."""
    if not isinstance(state_dir, str) or not posixpath.isabs(state_dir) or _PATH_FORBIDDEN.search(state_dir):
        raise ValidationError(Issue("state_dir", f"{state_dir!r} must be an absolute path without commas or "
                                                 "control characters"))
    return posixpath.normpath(state_dir)


def make_state_dir(state_dir: str) -> None:
    """Create ``state_dir`` (0700: the records say what the collection owns) if it is missing."""
    try:
        os.makedirs(state_dir, mode=0o700)
    except FileExistsError:
        return
    # makedirs applies the umask; the mode must not depend on it.
    os.chmod(state_dir, 0o700)


class StateStore:
    """The records file ``<state_dir>/state.json`` and the apply lock ``<state_dir>/lock``."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = check_state_dir(state_dir)
        self.path = posixpath.join(self.state_dir, STATE_FILE)
        self.lock_path = posixpath.join(self.state_dir, LOCK_FILE)

    @property
    def dnsmasq_dir(self) -> str:
        return posixpath.join(self.state_dir, DNSMASQ_DIR)

    def load(self) -> Records:
        """The saved records; empty records when nothing was saved yet."""
        records = read_record(self.path, "state", Records.from_dict,
                              why_it_matters="it records what the collection owns: repair or remove it")
        return Records.empty() if records is None else records

    def save(self, records: Records) -> None:
        text = json.dumps(records.to_dict(), indent=2, sort_keys=True) + "\n"
        try:
            make_state_dir(self.state_dir)
            write_atomically(self.path, text, 0o600)
        except OSError as error:
            raise BackendError("state", f"cannot write {self.path}: {_reason(error)}") from None

    @contextmanager
    def lock(self, timeout: float = 60) -> Iterator[None]:
        """Hold the apply lock (``flock`` on ``<state_dir>/lock``), waiting up to ``timeout`` seconds.

        flock locks belong to an open file: a second ``lock()`` waits even in the same process,
        and the lock goes away with the process however it ends.
        """
        try:
            make_state_dir(self.state_dir)
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise BackendError("lock", f"cannot open {self.lock_path}: {_reason(error)}") from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise BackendError("lock", f"cannot lock {self.lock_path}: {_reason(error)}") from None
                if time.monotonic() >= deadline:
                    raise BackendError("lock", f"another apply holds {self.lock_path} (waited {timeout:g} s)")
                time.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(descriptor)  # releases the lock


def check_format(data: Any, supported: int) -> dict:
    """``data`` as a record mapping of format ``supported``; ``ValueError`` saying what it is otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a mapping, found {type(data).__name__}")
    if data.get("format") != supported:
        raise ValueError(f"format: {data.get('format')!r} is not the supported format {supported}")
    return data


def read_record(path: str, step: str, parse: Callable[[Any], RecordT], *, why_it_matters: str = "") -> RecordT | None:
    """The JSON record file ``path`` read through ``parse``; None when the file does not exist.

    A file that cannot be read or parsed is a ``BackendError(step)`` naming it, never skipped:
    ``why_it_matters`` tells the operator what it holds before they repair or remove it.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise BackendError(step, f"cannot read {path}: {_reason(error)}") from None
    try:
        return parse(json.loads(text))
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        suffix = f"; {why_it_matters}" if why_it_matters else ""
        raise BackendError(step, f"{path} is corrupt ({error}){suffix}") from None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
