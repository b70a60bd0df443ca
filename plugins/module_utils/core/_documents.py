# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Text documents (TOML, YAML, JSON) into plain data, for topology and profile files alike.

Duplicate keys are errors in every format (PyYAML and json would silently keep the last one),
YAML is loaded safely, and a syntax error is one line naming the document and, where the
parser knows it, the line and column. What the data must look like is the caller's business.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import TOML, YAML
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    Issue,
    ValidationError,
)

_TOML_POSITION_RE = re.compile(r"^(?P<message>.*?)\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _syntax_error(name: str, fmt: str, message: str, line: int | None = None, column: int | None = None) -> ValidationError:
    where = f"line {line}, column {column}: " if line is not None else ""
    message = " ".join(message.split())  # one line
    return ValidationError(Issue(name, f"{where}invalid {fmt.upper()}: {message}"))


_yaml = YAML.module
if _yaml is not None:
    class _UniqueKeyLoader(getattr(_yaml, "CSafeLoader", _yaml.SafeLoader)):  # type: ignore[misc]
        """A safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def _construct_unique_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor" may be overridden by explicit keys, as YAML intends
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: construct_mapping reports it
            if duplicate:
                raise _yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}",
                    key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    _UniqueKeyLoader.add_constructor(_yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


class _DuplicateJsonKey(ValueError):
    pass


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJsonKey(f"duplicate key {key!r}")
        result[key] = value
    return result


def read_document_file(path: str, what: str) -> str:
    """The text of a topology or profile file the user named; one ``ValidationError`` issue when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        raise ValidationError(Issue(path, f"cannot read the {what} file: {error.strerror or error}")) from None
    except UnicodeDecodeError as error:
        raise ValidationError(Issue(path, f"the {what} file is not UTF-8 text ({error.reason} at byte {error.start})")) from None


def parse_document(text: str, fmt: str, *, source: str, what: str) -> object:
    """Parse ``text`` in ``fmt`` ("toml", "yaml" or "json") into plain data, unchecked.

    ``source`` names the document in messages (``<fmt text>`` when empty); ``what`` says what
    the document is meant to be ("topology", "profile"). A syntax error, a duplicate key or an
    unknown format raises a one-issue :class:`ValidationError`; a missing parser library
    raises :class:`GhostwardenError` naming the library.
    """
    name = source or f"<{fmt} text>"
    if fmt == "toml":
        tomllib = TOML.require("to read TOML on Python < 3.11")
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            match = _TOML_POSITION_RE.fullmatch(str(error))
            if match:
                raise _syntax_error(name, fmt, match.group("message"), int(match.group("line")),
                                    int(match.group("column"))) from None
            raise _syntax_error(name, fmt, str(error)) from None
    if fmt == "yaml":
        yaml = YAML.require("to read YAML")
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            problem = " ".join(part for part in (error.context, error.problem) if part)
            if mark is None:
                raise _syntax_error(name, fmt, problem or str(error)) from None
            raise _syntax_error(name, fmt, problem, mark.line + 1, mark.column + 1) from None
        except yaml.YAMLError as error:
            raise _syntax_error(name, fmt, str(error)) from None
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as error:
            raise _syntax_error(name, fmt, error.msg, error.lineno, error.colno) from None
        except _DuplicateJsonKey as error:
            raise _syntax_error(name, fmt, str(error)) from None
    raise ValidationError(Issue(source, f"unknown {what} format {fmt!r} (toml, yaml or json)"))
