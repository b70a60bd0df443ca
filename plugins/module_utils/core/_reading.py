# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Reading user input: the one vocabulary every reader of topologies, profiles and options uses.

- Field paths: :func:`join` appends a key to a path (``networks.lan.cidr``, ``zones['a b']``).
- Value descriptions: :func:`show` (the value, bounded), :func:`show_repr` (its whole ``repr``,
  optionally clipped), :func:`kind` (``a string``, ``a list``...) and :func:`describe` (kind and
  value in one phrase). ``null``, ``true`` and ``false`` are written as YAML writes them.
- Key checks: :class:`Keys` (the keys a mapping may have) and :func:`unknown_keys`.
- Type tests: :func:`is_int` (an integer that is not a boolean), :func:`is_choice`.
- Issues: :class:`Issues` collects :class:`Issue`\\ s (``fail(path, message)``), tells whether
  any appeared since a :meth:`~Issues.mark`, and raises them together as one
  :class:`ValidationError`; :class:`Reader` adds the typed getters (required values, booleans,
  integers in a range, strings, choices, lists, lists without repeats) that report in the
  standard words (``expected an integer, got 'x' (a string)``).

Every message names the field path and shows the offending value. Readers stay fast on valid
input (a topology of 1,000 networks is read in well under a second): no exceptions for control
flow, no deep copies, one set comparison for the keys of a mapping.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError

_Item = TypeVar("_Item")

# A key that can follow a dot in a path and keep it one readable line.
PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_SHOW = reprlib.Repr()
_SHOW.maxstring = 70
_SHOW.maxother = 70
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 4
_SHOW.maxdict = 3
_SHOW.maxlevel = 2


# -- field paths ------------------------------------------------------------------------------

def join(base: str, key: object) -> str:
    """``base.key``; keys that are not plain words go in brackets, quoted, so a path stays one line."""
    if isinstance(key, str) and PLAIN_KEY_RE.fullmatch(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{show(key)}]"


# -- value descriptions -----------------------------------------------------------------------

def show(value: object) -> str:
    """The value as a message shows it: one line, bounded (long strings and lists are elided)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _SHOW.repr(value)


def show_repr(value: object, width: int | None = None) -> str:
    """The value's whole ``repr`` (``null``, ``true``, ``false`` as YAML writes them).

    With ``width``, a longer text is cut to ``width`` characters, the last three ``...``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    if width is None or len(text) <= width:
        return text
    return f"{text[:width - 3]}..."


def kind(value: object) -> str:
    """What the value is, with its article: ``a string``, ``an integer``, ``a mapping``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def show_with_kind(value: object) -> str:
    """``'x' (a string)``: how :meth:`Reader.expected` shows a value of the wrong type."""
    return f"{show(value)} ({kind(value)})"


def describe(value: object) -> str:
    """Kind and value in one phrase: ``string 'x'``, ``integer 3``, ``boolean true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = str(value)
    return f"{type(value).__name__} {text[:40]!r}"


# -- type tests -------------------------------------------------------------------------------

def is_int(value: object) -> bool:
    """An integer, and not a boolean (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_choice(value: object, choices: Collection[str]) -> bool:
    """A string among ``choices``."""
    return isinstance(value, str) and value in choices


# -- key checks -------------------------------------------------------------------------------

class Keys:
    """The keys a mapping may have: ``names`` in the order messages list them (``listed``), and
    ``allowed``, the same as a set, so that a mapping of known keys costs one set comparison."""

    __slots__ = ("names", "allowed", "listed")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.allowed = frozenset(self.names)
        self.listed = ", ".join(self.names)

    def __repr__(self) -> str:
        return f"Keys({self.names!r})"


def unknown_keys(data: Mapping, keys: Keys) -> Sequence[object]:
    """The keys of ``data`` that ``keys`` does not allow, in the mapping's order."""
    if data.keys() <= keys.allowed:
        return ()
    return [key for key in data if key not in keys.allowed]


# -- issues -----------------------------------------------------------------------------------

class Issues:
    """The issues found so far in one piece of input.

    ``issues`` may be a list the caller keeps (new issues are appended to it). ``got`` is how
    :meth:`expected` shows a value of the wrong type; a reader whose messages have always shown
    it differently passes its own.
    """

    __slots__ = ("issues", "got")

    def __init__(self, issues: list[Issue] | None = None, *,
                 got: Callable[[object], str] = show_with_kind) -> None:
        self.issues: list[Issue] = [] if issues is None else issues
        self.got = got

    def fail(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def expected(self, path: str, what: str, value: object) -> None:
        """``expected WHAT, got VALUE``: the value at ``path`` is not of the type it must be."""
        self.fail(path, f"expected {what}, got {self.got(value)}")

    def mark(self) -> int:
        """A mark for :meth:`failed_since`."""
        return len(self.issues)

    def failed_since(self, mark: int) -> bool:
        """Whether an issue was found since ``mark`` was taken."""
        return len(self.issues) > mark

    def raise_if_any(self) -> None:
        """Raise every issue found as one :class:`ValidationError`; nothing when there is none."""
        if self.issues:
            raise ValidationError(self.issues)


class Reader(Issues):
    """:class:`Issues` with typed getters, for the fields of mappings read from user input.

    ``get_*`` read ``data[key]`` below ``path``: a missing key or ``null`` gives the default
    (None unless a default is given); a value of the wrong type is reported and gives the
    default too. ``check_*`` test a value already in hand at ``path``. Nothing raises.
    """

    __slots__ = ()

    def mapping(self, value: object, path: str, what: str = "a mapping") -> dict | None:
        """``value`` if it is a dict; otherwise None, reported."""
        if isinstance(value, dict):
            return value
        self.expected(path, what, value)
        return None

    def check_keys(self, data: Mapping, keys: Keys, path: str) -> None:
        """Report every key of ``data`` that ``keys`` does not allow."""
        if data.keys() <= keys.allowed:  # the common case, without a call
            return
        for key in unknown_keys(data, keys):
            self.unknown_key(path, key, keys)

    def unknown_key(self, path: str, key: object, keys: Keys) -> None:
        self.fail(join(path, key), f"unknown key {show(key)} (known keys: {keys.listed})")

    def required(self, data: Mapping, key: str, path: str, message: str = "required",
                 read: Callable[[Any, str], Any] | None = None) -> Any:
        """``data[key]``, or None when it is missing or null: then ``message`` is reported at its path.

        With ``read``, the value is what ``read(value, path of the key)`` makes of it.
        """
        value = data.get(key)
        if value is None:
            self.fail(join(path, key), message)
            return None
        return value if read is None else read(value, join(path, key))

    def get_bool(self, data: Mapping, key: str, path: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.expected(join(path, key), "a boolean (true or false)", value)
        return default

    def get_int(self, data: Mapping, key: str, path: str, low: int, high: int, what: str) -> int | None:
        """An integer in ``low``-``high``; ``what`` names it in the range message (``VLAN id 5000 is out...``)."""
        value = data.get(key)
        if value is None:
            return None
        return self.check_int(value, join(path, key), low, high, what)

    def check_int(self, value: object, path: str, low: int, high: int, what: str) -> int | None:
        if not is_int(value):
            self.expected(path, "an integer", value)
            return None
        if not low <= value <= high:  # type: ignore[operator]  # is_int said int
            self.fail(path, f"{what} {value} is out of range {low}-{high}")
            return None
        return int(value)  # type: ignore[call-overload]

    def get_str(self, data: Mapping, key: str, path: str, what: str = "a string") -> str | None:
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.expected(join(path, key), what, value)
        return None

    def get_choice(self, data: Mapping, key: str, path: str, choices: Sequence[str], what: str) -> str | None:
        """One of ``choices`` (strings); anything else is reported as ``'x' is not a WHAT (a, b, c)``."""
        value = data.get(key)
        if value is None or is_choice(value, choices):
            return value
        self.fail(join(path, key), f"{show(value)} is not a {what} ({', '.join(choices)})")
        return None

    def get_list(self, data: Mapping, key: str, path: str) -> list:
        """The items of a list (or tuple); a missing key, null or a value of another type gives []."""
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return list(value)
        self.expected(join(path, key), "a list", value)
        return []

    def get_unique_list(self, data: Mapping, key: str, path: str, read: Callable[[object, str], _Item | None],
                        label: str = "") -> list[_Item]:
        """The items of a list, each read by ``read(item, item_path)`` (None: invalid, reported there).

        An item read before is reported (``LABEL VALUE is already listed at PATH``) and left out;
        the order of the first listings is kept.
        """
        values: list[_Item] = []
        first_paths: dict[_Item, str] = {}
        list_path = join(path, key)
        for index, item in enumerate(self.get_list(data, key, path)):
            item_path = f"{list_path}[{index}]"
            value = read(item, item_path)
            if value is None:
                continue
            first = first_paths.get(value)
            if first is not None:
                self.fail(item_path, f"{label}{value} is already listed at {first}")
                continue
            first_paths[value] = item_path
            values.append(value)
        return values
