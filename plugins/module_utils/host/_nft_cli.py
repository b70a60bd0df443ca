# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""The ``nft`` command: reading, checking, replacing and deleting the live table ``inet ghostwarden``.

The text it loads is rendered by the pure core (``core._nft``); this file only runs ``nft``.
"""

from __future__ import annotations

import json
import re
import shutil
from typing import Callable, Optional

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import NFT_FAMILY, NFT_TABLE
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import (
    normalise_ruleset,
    render_delete_script,
    render_replace_script,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner


# nft reports a problem in its input as "<file>:<line>:<first>-<last>: Error: <message>",
# followed by the input line and a line of carets under the columns.
_NFT_LOCATED_ERROR_RE = re.compile(
    r"^(?P<file>\S+):(?P<line>\d+):(?P<first>\d+)(?:-(?P<last>\d+))?: Error: (?P<message>.*)$"
)
_NFT_NO_TABLE = "Error: No such file or directory"


def _nft_errors(result: CommandResult, script_offset: int | None = None) -> str:
    """nft's first error as one line, followed by how many more there were.

    For a replace script (``script_offset``: lines before the ruleset) the location is turned
    into a line of the ruleset, with the text nft marked and the whole line it is in.
    """
    lines = result.stderr.splitlines()
    errors: list[str] = []
    for index, line in enumerate(lines):
        if "Error:" not in line:
            continue
        located = _NFT_LOCATED_ERROR_RE.match(line)
        if located is None or script_offset is None:
            errors.append(line.strip())
            continue
        number = int(located["line"])
        first = int(located["first"])
        last = int(located["last"] or first)
        source = lines[index + 1] if index + 1 < len(lines) else ""
        marked = source[first - 1:last].strip()
        where = (f"ruleset line {number - script_offset}" if number > script_offset
                 else f"line {number} of the replace script")
        columns = f"column {first}" if first == last else f"columns {first}-{last}"
        errors.append(f"{where}, {columns}: {located['message']} (at {marked!r} in {source.strip()!r})")
    if not errors:
        errors = [line.strip() for line in lines if line.strip()][:1] or [f"nft exited with status {result.rc}"]
    more = len(errors) - 1
    return errors[0] if not more else f"{errors[0]} (and {more} more error{'s' if more > 1 else ''})"


class NftCli:
    """The live table ``inet ghostwarden`` through the ``nft`` command (in the runner's namespace).

    ``which`` finds a program on ``PATH`` (``shutil.which``; tests hand in their own).
    """

    def __init__(self, runner: CommandRunner, *, which: Callable[[str], Optional[str]] = shutil.which) -> None:
        self.runner = runner
        self._which = which

    def installed(self) -> bool:
        """Whether ``nft`` is on ``PATH``. A namespace shares the host's files, so this holds inside it too;
        asked before running it, because a module's runner fails the task on a missing program."""
        return self._which("nft") is not None

    def _run(self, step: str, argv: list[str], stdin: str | None = None) -> CommandResult:
        try:
            return self.runner.run(argv, stdin)
        except OSError as error:  # nft (or ip, for a namespace) is not installed
            command = " ".join(self.runner.argv(argv))
            raise BackendError(step, f"cannot run {command}: {error.strerror or error}") from None

    def _listing(self, step: str, argv: list[str]) -> str | None:
        result = self._run(step, argv)
        if result.rc == 0:
            return result.stdout
        # Only nft's own "no such table" means absent; "ip netns exec" reports a missing nft
        # with the same strerror, and every other failure must not pass for an empty host.
        if any(line.strip() == _NFT_NO_TABLE for line in result.stderr.splitlines()):
            return None
        raise BackendError(step, _nft_errors(result))

    def list_table(self) -> str | None:
        """``nft list table inet ghostwarden``; None when the table does not exist."""
        return self._listing("nft list", ["nft", "list", "table", NFT_FAMILY, NFT_TABLE])

    @staticmethod
    def _replace_script(ruleset: str) -> tuple[str, int]:
        """The replace script of ``ruleset`` and how many of its lines come before the ruleset."""
        script = render_replace_script(ruleset)
        body = ruleset if ruleset.endswith("\n") else ruleset + "\n"
        return script, script.count("\n") - body.count("\n")

    def check(self, ruleset: str) -> None:
        """``nft -c -f -`` of the replace script: whether the kernel would load ``ruleset``. Changes nothing.

        A refusal raises ``BackendError("nft check", ...)`` naming the ruleset line nft marked.
        """
        script, offset = self._replace_script(ruleset)
        checked = self._run("nft check", ["nft", "-c", "-f", "-"], script)
        if checked.rc != 0:
            raise BackendError("nft check", _nft_errors(checked, offset))

    def replace(self, ruleset: str, *, check_first: bool = True) -> None:
        """Replace the table with ``ruleset`` in one transaction, checked with ``nft -c`` first.

        A ruleset nft refuses raises ``BackendError("nft check", ...)`` and the host is unchanged.
        ``check_first=False`` is for callers that ran :meth:`check` themselves (the driver does,
        before its transaction starts); ``nft -f`` is one transaction, so a refused load changes
        nothing either.
        """
        script, offset = self._replace_script(ruleset)
        if check_first:
            self.check(ruleset)
        applied = self._run("nft apply", ["nft", "-f", "-"], script)
        if applied.rc != 0:
            raise BackendError("nft apply", _nft_errors(applied, offset))

    def delete(self) -> None:
        """Remove the table; nothing to do (and no error) when it is absent."""
        result = self._run("nft delete", ["nft", "-f", "-"], render_delete_script())
        if result.rc != 0:
            raise BackendError("nft delete", _nft_errors(result))

    def counters(self) -> list[dict]:
        """Every rule with a counter: chain, position in the chain, comment, packets, bytes.

        Sorted by chain; rules keep their order inside a chain. [] when the table is absent.
        """
        text = self._listing("nft list", ["nft", "-j", "list", "table", NFT_FAMILY, NFT_TABLE])
        if text is None:
            return []
        try:
            objects = json.loads(text)["nftables"]
        except (ValueError, KeyError, TypeError) as error:
            raise BackendError("nft list", f"unexpected JSON from nft -j: {error}") from None
        positions: dict[str, int] = {}
        counters = []
        for item in objects:
            rule = item.get("rule") if isinstance(item, dict) else None
            if not isinstance(rule, dict):
                continue
            chain = str(rule.get("chain"))
            position = positions.get(chain, 0)
            positions[chain] = position + 1
            for expression in rule.get("expr") or []:
                counter = expression.get("counter") if isinstance(expression, dict) else None
                if isinstance(counter, dict):
                    counters.append({"chain": chain, "rule": position, "comment": rule.get("comment"),
                                     "packets": int(counter.get("packets", 0)), "bytes": int(counter.get("bytes", 0))})
                    break
        return sorted(counters, key=lambda counter: counter["chain"])

    @staticmethod
    def matches(listing: str, ruleset: str) -> bool:
        """Whether a listing of the live table is the table ``ruleset`` describes.

        The renderer writes nft's listing form, so a small table usually lists back byte for
        byte; larger sets come back in hash order and need the normaliser.
        """
        return listing == ruleset or normalise_ruleset(listing) == normalise_ruleset(ruleset)
