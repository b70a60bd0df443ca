# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""One exception hierarchy for the collection.

Modules catch :class:`GhostwardenError` once and turn it into ``fail_json``;
nothing else may escape to the user as a traceback.
"""

from __future__ import annotations


class GhostwardenError(Exception):
    """Base of every error the collection raises on purpose."""

    def to_result(self) -> dict:
        """Extra keys for the failed task result (besides ``msg``)."""
        return {}


class Issue:
    """One problem in the user's input: the field path and what is wrong with it.

    ``str(issue)`` is the one line a user sees, e.g.
    ``networks.nat_dev.forwards[2].public: port 70000 is out of range 1-65535``.
    The message must mention the offending value.
    """

    __slots__ = ("path", "message")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __repr__(self) -> str:
        return f"Issue({self.path!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Issue) and (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


class ValidationError(GhostwardenError):
    """The input is invalid. Carries every issue found, in input order."""

    def __init__(self, issues: list[Issue] | Issue) -> None:
        if isinstance(issues, Issue):
            issues = [issues]
        self.issues = list(issues)
        super().__init__(self._line())

    def _line(self) -> str:
        if not self.issues:
            return "invalid input"
        first = str(self.issues[0])
        more = len(self.issues) - 1
        return first if not more else f"{first} (and {more} more error{'s' if more > 1 else ''})"

    @property
    def paths(self) -> list[str]:
        return [issue.path for issue in self.issues]

    def to_result(self) -> dict:
        return {"errors": [str(issue) for issue in self.issues]}


class DangerousTopologyError(ValidationError):
    """The topology is valid but would cut off management access (DESIGN 4.5)."""


class MissingDependencyError(GhostwardenError):
    """A Python library the operation needs is not installed on the host that runs it."""

    def __init__(self, library: str, requirement: str, purpose: str, trace: str | None) -> None:
        self.library = library
        self.requirement = requirement  # what to install, for missing_required_lib()
        self.trace = trace
        super().__init__(f"the Python library {requirement} is required {purpose}")


class RenderError(GhostwardenError):
    """A valid model could not be rendered (a bug or an unsupported combination)."""


class BackendError(GhostwardenError):
    """A host operation failed (netlink, nft, dnsmasq, file I/O)."""

    def __init__(self, step: str, cause: str) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"{step}: {cause}")

    def to_result(self) -> dict:
        return {"failed_step": self.step}


class ConflictError(GhostwardenError):
    """The desired state needs an object that exists but is not the collection's (DESIGN 4.1).

    Raised by the planner instead of adopting or changing a foreign link silently.
    Carries every conflict found, one readable line each.
    """

    def __init__(self, conflicts: list[str] | str) -> None:
        if isinstance(conflicts, str):
            conflicts = [conflicts]
        self.conflicts = list(conflicts)
        more = len(self.conflicts) - 1
        first = self.conflicts[0] if self.conflicts else "conflict with objects the collection does not own"
        super().__init__(first if more < 1 else f"{first} (and {more} more conflict{'s' if more > 1 else ''})")

    def to_result(self) -> dict:
        return {"conflicts": list(self.conflicts)}


class RolledBackError(BackendError):
    """An apply failed part-way and the host was put back to the state before it."""

    def __init__(self, step: str, cause: str, generation: int) -> None:
        self.generation = generation
        super().__init__(step, f"{cause}; rolled back to generation {generation}")
        self.cause = cause

    def to_result(self) -> dict:
        return {"failed_step": self.step, "rolled_back": True, "rollback_reason": f"{self.step}: {self.cause}",
                "generation": self.generation}


class RollbackFailedError(BackendError):
    """An apply failed part-way and putting the host back failed as well; the journal is kept."""

    def to_result(self) -> dict:
        return {"failed_step": self.step, "rolled_back": False}
