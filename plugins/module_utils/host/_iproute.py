# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Plan operations as iproute2 batch lines and POSIX sh, for replay without Python.

The confirm timer's rollback and the boot restore run when no Python may be available (or
wanted): they replay the same netlink operations the backend executes, through ``ip -batch``,
``bridge -batch`` and writes to ``/proc/sys``. Every line here asks the kernel for what
``NetlinkBackend`` asks for the same operation (``docs/transactions.md`` has the mapping), so
observing the result gives the same state. Pure: no kernel, no files.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import DetailValue, Operation, sysctl_path

# The operation kinds that are kernel state (everything but the ruleset and dnsmasq files).
NETLINK_KINDS = frozenset({
    "set_sysctl", "remove_fdb", "remove_address", "remove_bridge_vlan", "release_master", "delete_link",
    "create_link", "modify_link", "set_master", "add_bridge_vlan", "add_address", "add_fdb",
    "restore_address", "copy_neighbours", "restore_route", "adopt_address", "adopt_route", "drop_port_address",
})
TOOLS = ("sysctl", "ip", "bridge")

# Attributes of a link kind's own data (``type <kind> ...`` in ip); the others are generic.
KIND_ATTRS = {
    "bridge": ("stp", "vlan_filtering"),
    "vlan": ("vlan_id",),
    "vxlan": ("dev", "dstport", "learning", "local", "vni"),
}
# Attributes the kernel cannot change in place; the planner recreates the link instead.
IMMUTABLE_ATTRS = frozenset({"parent", "vlan_id", "vni", "dstport", "local", "dev"})
LINK_ATTRS = frozenset({"ifalias", "mac", "master", "mtu", "parent", "state"}).union(*KIND_ATTRS.values())

# ip's batch reader (makeargs) splits at blanks, honours one level of '...' or "..." without
# escapes, and ends a line at a word starting with '#': a plain word must not need any of that.
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_.:@+%=/,-]+$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SYSCTL_VALUE = re.compile(r"^[^\x00-\x1f\x7f=]*$")


@dataclass(frozen=True)
class KernelStep:
    """Consecutive operations for one tool: ``ip`` and ``bridge`` batch lines, or ``sysctl`` ``key=value``."""

    tool: str
    lines: Tuple[str, ...]


@dataclass(frozen=True)
class KernelScript:
    """Operations as tool steps, in plan order (a tool's lines only move past another tool's when
    the plan puts them next to each other)."""

    steps: Tuple[KernelStep, ...] = ()

    def lines(self, tool: str) -> Tuple[str, ...]:
        return tuple(line for step in self.steps if step.tool == tool for line in step.lines)

    @property
    def ip_lines(self) -> Tuple[str, ...]:
        return self.lines("ip")

    @property
    def bridge_lines(self) -> Tuple[str, ...]:
        return self.lines("bridge")

    @property
    def sysctls(self) -> Tuple[Tuple[str, str], ...]:
        return tuple((key, value) for key, value in (line.split("=", 1) for line in self.lines("sysctl")))

    def __bool__(self) -> bool:
        return bool(self.steps)


def _fail(operation: Operation, message: str) -> RenderError:
    return RenderError(f"{operation}: {message}")


def batch_word(value: str) -> str:
    """``value`` as one word of an ``ip``/``bridge`` batch line, quoted when it has to be.

    Raises ``RenderError`` for a value the batch reader cannot carry as one word (both quote
    characters, a line break, NUL) or an empty one.
    """
    if _PLAIN_WORD.match(value):
        return value
    if not value or any(char in value for char in "\n\r\x00"):
        raise RenderError(f"{value!r} cannot be written as one word of an ip batch line")
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise RenderError(f"{value!r} has both quote characters and cannot be written to an ip batch line")


class _Details:
    """Typed access to an operation's details, failing with the operation named."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.values = dict(operation.details)

    def get(self, key: str) -> DetailValue:
        return self.values.get(key)

    def text(self, key: str) -> str:
        value = self.values.get(key)
        if not isinstance(value, str) or not value:
            raise _fail(self.operation, f"detail {key} is {value!r}, not a non-empty string")
        return value

    def name(self, key: str) -> str:
        value = self.text(key)
        if not _PLAIN_WORD.match(value) or len(value) > 15 or value in (".", ".."):
            raise _fail(self.operation, f"detail {key}: {value!r} is not an interface name")
        return value

    def integer(self, key: str) -> int:
        value = self.values.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(self.operation, f"detail {key} is {value!r}, not an integer")
        return value

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if not isinstance(value, bool):
            raise _fail(self.operation, f"detail {key} is {value!r}, not true or false")
        return value

    def mac(self, key: str) -> str:
        value = self.text(key).lower()
        if not _MAC.match(value):
            raise _fail(self.operation, f"detail {key}: {self.values.get(key)!r} is not a MAC address")
        return value

    def ip(self, key: str) -> str:
        try:
            return str(ipaddress.ip_address(self.text(key)))
        except ValueError:
            raise _fail(self.operation, f"detail {key}: {self.values.get(key)!r} is not an IP address") from None

    def target(self, prefix: str) -> str:
        target = self.operation.target
        name = target[len(prefix):] if target.startswith(prefix) else ""
        if not _PLAIN_WORD.match(name) or len(name) > 15:
            raise _fail(self.operation, f"target {target!r} does not name an interface ({prefix}<name>)")
        return name


def _kind_words(kind: str, details: _Details, keys: Sequence[str], *, create: bool) -> List[str]:
    words: List[str] = []
    if kind == "bridge":
        for key, word in (("stp", "stp_state"), ("vlan_filtering", "vlan_filtering")):
            if key in keys:
                enabled = details.flag(key)
                # As the backend: off is the kernel's default at creation, and a kernel without
                # bridge VLAN filtering refuses even "vlan_filtering 0".
                if enabled or not create:
                    words += [word, "1" if enabled else "0"]
    elif kind == "vlan":
        if "vlan_id" in keys:
            words += ["id", str(details.integer("vlan_id"))]
    elif kind == "vxlan":
        if "vni" in keys:
            words += ["id", str(details.integer("vni"))]
        if "dstport" in keys:
            words += ["dstport", str(details.integer("dstport"))]
        if "local" in keys:
            words += ["local", details.ip("local")]
        if "dev" in keys:
            words += ["dev", details.name("dev")]
        if "learning" in keys:
            words.append("learning" if details.flag("learning") else "nolearning")
    return words


def _generic_words(details: _Details, keys: Sequence[str]) -> List[str]:
    """``ip link set`` words for mtu, alias, master and state (the kernel applies them in that order)."""
    words: List[str] = []
    if "mac" in keys:
        words += ["address", details.mac("mac")]
    if "mtu" in keys:
        words += ["mtu", str(details.integer("mtu"))]
    if "ifalias" in keys:
        words += ["alias", batch_word(details.text("ifalias"))]
    if "master" in keys:
        words += ["nomaster"] if details.get("master") is None else ["master", details.name("master")]
    if "state" in keys:
        state = details.get("state")
        if state not in ("up", "down"):
            raise _fail(details.operation, f"detail state is {state!r}, not up or down")
        words.append(str(state))
    return words


def _create_link(details: _Details) -> List[str]:
    name = details.target("link:")
    kind = details.get("type")
    if kind not in KIND_ATTRS:
        raise _fail(details.operation, f"cannot create a link of type {kind!r}")
    keys = sorted(set(details.values) - {"type"})
    unknown = sorted(set(keys) - LINK_ATTRS)
    if unknown:
        raise _fail(details.operation, f"unknown link attributes {', '.join(unknown)}")
    add = ["link", "add"]
    if "parent" in keys:
        add += ["link", details.name("parent")]
    add += ["name", name]
    if "mac" in keys:  # in the create request, as the backend
        add += ["address", details.mac("mac")]
    add += ["type", str(kind), *_kind_words(str(kind), details, keys, create=True)]
    lines = [" ".join(add)]
    # The kernel ignores an alias in a create request, and a bridge keeps only an MTU set after
    # its creation; so, as the backend, the rest follows in a second request.
    rest = _generic_words(details, [key for key in keys if key != "mac"])
    if rest:
        lines.append(" ".join(["link", "set", "dev", name, *rest]))
    return lines


def _modify_link(details: _Details) -> List[str]:
    name = details.target("link:")
    keys = sorted(details.values)
    unknown = sorted(set(keys) - LINK_ATTRS)
    if unknown:
        raise _fail(details.operation, f"unknown link attributes {', '.join(unknown)}")
    immutable = sorted(set(keys) & IMMUTABLE_ATTRS)
    if immutable:
        raise _fail(details.operation, f"{', '.join(immutable)} cannot be changed in place (the link is recreated)")
    kinds = sorted(kind for kind, kind_keys in KIND_ATTRS.items() if set(kind_keys) & set(keys))
    if len(kinds) > 1:
        raise _fail(details.operation, f"attributes of several link types ({', '.join(kinds)}) in one change")
    words = ["link", "set", "dev", name, *_generic_words(details, keys)]
    if kinds:
        words += ["type", kinds[0], *_kind_words(kinds[0], details, keys, create=False)]
    return [" ".join(words)]


def _address(details: _Details, add: bool, nodad: bool = False) -> List[str]:
    iface = details.name("iface")
    try:
        interface = ipaddress.ip_interface(details.text("address"))
    except ValueError:
        raise _fail(details.operation, f"detail address: {details.get('address')!r} is not an address with prefix") from None
    words = ["address", "add" if add else "del", str(interface)]
    if add and interface.version == 4 and interface.network.prefixlen <= 30:
        words += ["brd", "+"]  # the backend sets the subnet's broadcast address, as "brd +" does
    words += ["dev", iface]
    if add and nodad and interface.version == 6:
        words.append("nodad")  # as the backend: a moving address is usable at once (docs/plan.md 3.5)
    return [" ".join(words)]


def _route(details: _Details) -> List[str]:
    """``route replace``: the route through ``dev``, replacing the one of the same table, destination and metric."""
    try:
        network = ipaddress.ip_network(details.text("dst"))
    except ValueError:
        raise _fail(details.operation, f"detail dst: {details.get('dst')!r} is not a prefix") from None
    # The prefix spelled out (0.0.0.0/0, ::/0) says the family: batch lines take no -4/-6.
    words = ["route", "replace", str(network)]
    if details.get("gateway") is not None:
        words += ["via", details.ip("gateway")]
    words += ["dev", details.name("dev"), "table", str(details.integer("table")),
              "metric", str(details.integer("metric")), "proto", str(details.integer("proto")),
              "scope", str(details.integer("scope"))]
    if details.get("src") is not None:
        words += ["src", details.ip("src")]
    if details.flag("onlink"):
        words.append("onlink")
    return [" ".join(words)]


def _fdb(details: _Details, add: bool) -> List[str]:
    mac = details.text("mac").lower()
    if not _MAC.match(mac):
        raise _fail(details.operation, f"detail mac: {details.get('mac')!r} is not a MAC address")
    words = ["fdb", "append" if add else "del", mac, "dev", details.name("iface"), "dst", details.ip("dst"), "self"]
    if add:
        words.append("permanent")
    return [" ".join(words)]


def _bridge_vlan(details: _Details, add: bool) -> List[str]:
    first, last = details.integer("vid_first"), details.integer("vid_last")
    if not 1 <= first <= last <= 4094:
        raise _fail(details.operation, f"VLAN range {first}-{last} is not within 1-4094")
    vids = str(first) if first == last else f"{first}-{last}"
    words = ["vlan", "add" if add else "del", "vid", vids, "dev", details.name("port")]
    if add and details.flag("pvid"):
        words.append("pvid")
    if add and details.flag("untagged"):
        words.append("untagged")
    if details.flag("self"):
        words.append("self")
    return [" ".join(words)]


def _sysctl(details: _Details) -> List[str]:
    key, value = details.text("key"), details.get("value")
    try:
        sysctl_path(key)
    except ValueError as error:
        raise _fail(details.operation, str(error)) from None
    if not isinstance(value, str) or not _SYSCTL_VALUE.match(value):
        raise _fail(details.operation, f"sysctl value {value!r} is not a one-line value without '='")
    return [f"{key}={value}"]


def _lines(operation: Operation) -> Tuple[str, List[str]]:
    details = _Details(operation)
    kind = operation.kind
    if kind == "set_sysctl":
        return "sysctl", _sysctl(details)
    if kind == "create_link":
        return "ip", _create_link(details)
    if kind == "modify_link":
        return "ip", _modify_link(details)
    if kind == "delete_link":
        return "ip", [f"link del dev {details.target('link:')}"]
    if kind == "set_master":
        return "ip", [f"link set dev {details.target('port:')} master {details.name('master')}"]
    if kind == "release_master":
        return "ip", [f"link set dev {details.target('port:')} nomaster"]
    if kind in ("add_address", "remove_address", "drop_port_address"):
        return "ip", _address(details, kind == "add_address")
    if kind in ("adopt_address", "restore_address"):
        return "ip", _address(details, True, nodad=True)
    if kind in ("adopt_route", "restore_route"):
        return "ip", _route(details)
    if kind == "copy_neighbours":
        # Learned neighbour entries cannot be written down ahead: a replay lets the port resolve them.
        return "ip", []
    if kind in ("add_fdb", "remove_fdb"):
        return "bridge", _fdb(details, kind == "add_fdb")
    if kind in ("add_bridge_vlan", "remove_bridge_vlan"):
        return "bridge", _bridge_vlan(details, kind == "add_bridge_vlan")
    raise _fail(operation, f"{kind} is not a kernel operation (the ruleset and dnsmasq files are replayed apart)")


def render_batches(operations: Sequence[Operation]) -> KernelScript:
    """The kernel operations of a plan as ``ip``/``bridge`` batch lines and sysctl assignments.

    The order of the operations is kept; consecutive operations of one tool form one step.
    Guarantees: each line asks the kernel for what ``NetlinkBackend.execute`` asks for the same
    operation, every value is checked (names, addresses, MACs, numbers) and quoted for the batch
    reader, and equal operations give equal lines. Raises ``RenderError`` naming the operation for
    any other kind (ruleset, files) or a detail that cannot be written safely.
    """
    steps: List[Tuple[str, List[str]]] = []
    for operation in operations:
        tool, lines = _lines(operation)
        if not lines:
            continue
        if steps and steps[-1][0] == tool:
            steps[-1][1].extend(lines)
        else:
            steps.append((tool, list(lines)))
    return KernelScript(tuple(KernelStep(tool, tuple(lines)) for tool, lines in steps))


# --- shell -----------------------------------------------------------------------------------


def quote(value: str) -> str:
    """``value`` as one POSIX sh word."""
    return shlex.quote(value)


def in_netns(netns: Optional[str], argv: Sequence[str]) -> str:
    """A shell command line running ``argv`` (inside ``netns`` through ``ip netns exec`` when set)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return " ".join(quote(word) for word in [*prefix, *argv])


def batch_command(tool: str, source: str, *, netns: Optional[str], force: bool) -> str:
    """``ip``/``bridge`` reading a batch from ``source`` (a path, ``-`` for stdin), in ``netns``.

    ``force`` keeps going after a failing line (and still exits non-zero at the end).
    """
    if tool not in ("ip", "bridge"):
        raise ValueError(f"{tool!r} reads no batch")
    words = [tool]
    if netns:
        words += ["-n", netns]
    if force:
        words.append("-force")
    words += ["-batch", source]
    return " ".join(quote(word) for word in words)


def sysctl_command(key: str, value: str, *, netns: Optional[str]) -> str:
    """Write one sysctl through /proc/sys (in ``netns``: the file belongs to the opener's namespace)."""
    path = sysctl_path(key)
    if not _SYSCTL_VALUE.match(value):
        raise RenderError(f"sysctl {key}: value {value!r} is not a one-line value without '='")
    if netns:
        return in_netns(netns, ["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", value, path])
    return f"printf '%s\\n' {quote(value)} > {quote(path)}"


def heredoc(command: str, content: str, marker: str = "GHOSTWARDEN_EOF", on_error: str = "") -> List[str]:
    """``command`` fed ``content`` through a quoted here-document (no expansion inside).

    ``on_error`` (``|| ...``) follows the redirection on the first line, so it applies to ``command``.

    ``content`` must end with a newline (a here-document always does) and no line of it may be
    the end marker; ``RenderError`` otherwise.
    """
    if not content.endswith("\n"):
        raise RenderError("a here-document must end with a newline")
    if marker in content.split("\n"):
        raise RenderError(f"the content has a line {marker!r}, the end marker of its here-document")
    first = f"{command} <<'{marker}'" + (f" {on_error}" if on_error else "")
    return [first, *content[:-1].split("\n"), marker]


def shell_lines(script: KernelScript, *, netns: Optional[str], nft_file: Optional[str] = None,
                force: bool = False, status_variable: str = "status") -> List[str]:
    """sh lines replaying ``script`` (the table from ``nft_file`` first), without a header.

    Without ``force`` the first failure exits the script with status 1. With ``force`` every
    step runs, ``ip``/``bridge`` keep going after a failing line, and a failure sets
    ``$<status_variable>`` to 1 for the caller to act on.
    """
    on_error = f"|| {status_variable}=1" if force else "|| exit 1"
    lines: List[str] = []
    if nft_file is not None:
        lines.append(f"{in_netns(netns, ['nft', '-f', nft_file])} {on_error}")
    for step in script.steps:
        if step.tool == "sysctl":
            for line in step.lines:
                key, value = line.split("=", 1)
                lines.append(f"{sysctl_command(key, value, netns=netns)} {on_error}")
        else:
            lines += heredoc(batch_command(step.tool, "-", netns=netns, force=force),
                             "".join(f"{line}\n" for line in step.lines), f"GHOSTWARDEN_{step.tool.upper()}", on_error)
    return lines


def render_shell(script: KernelScript, *, netns: Optional[str], nft_file: Optional[str] = None,
                 force: bool = False) -> str:
    """A POSIX sh script that replays ``script`` with iproute2 and nft only.

    The owned table is loaded from ``nft_file`` first (when given; ``nft -f`` of a replace or
    delete script), then each step in order: sysctls written to /proc/sys, ``ip -batch -`` and
    ``bridge -batch -`` fed by quoted here-documents, all inside ``netns`` when set. Without
    ``force`` it stops at the first failure; with ``force`` it runs everything (``-force``
    batches) and exits 1 if anything failed. Equal input gives byte-identical text.
    """
    lines = [
        "#!/bin/sh",
        "# Generated by ghostwarden.core: replays planned kernel operations with iproute2 and nft.",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
        "status=0",
        *shell_lines(script, netns=netns, nft_file=nft_file, force=force),
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "KernelScript", "KernelStep", "NETLINK_KINDS", "batch_command", "batch_word", "heredoc", "in_netns", "quote",
    "render_batches", "render_shell", "shell_lines", "sysctl_command",
]
