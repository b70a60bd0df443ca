# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check mode writes nothing, and a table the kernel refuses is caught before any change.

Each test has its own lab host namespace (``txn_support.make_site``). "Nothing written" is
checked on the raw output of the kernel's tools in that namespace (``ip -d -j link``, ``ip -j
addr``, ``ip -j route`` for both families and every table, ``nft list ruleset``, and the dnsmasq
pids), compared as text, and on every entry of the state directory (name, mode and bytes). The
only thing left out is what the kernel's clock changes by itself: the running bridge timers
(``*_timer``) of ``ip -d``.

* A stale journal (an apply of B killed half-way): a check run of B reports the recovery (action,
  reason, the rollback's operations) and writes nothing; its plan is the plan of B from A, which
  is exactly what the real run that follows recovers and executes.
* A fresh state directory: check runs of every state leave no directory, lock or file behind.
* A table the kernel refuses (a jump to a chain that does not exist, in-process through the
  driver; and an ``nft`` wrapper refusing ``nft -c``, through the module): the check run fails
  naming the ruleset line and changes nothing; the real run fails the same way before its journal,
  so no link is created and there is nothing to roll back.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import HostDriver
from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.integration.txn_support import (
    KILL_AFTER_ENV,
    TransactionSite,
    make_site,
    succeeded,
    topology_a,
    topology_b,
)

pytestmark = pytest.mark.root

_RUNNING_TIMER = re.compile(r'"(\w+_timer)":[0-9.]+')


def kernel_texts(lab: Lab, ns: str) -> dict[str, str]:
    """The raw output of the kernel's tools in ``ns`` (bridge timers, which tick, masked)."""
    return {
        "ip -d -j link": _RUNNING_TIMER.sub(r'"\1":-', lab.run(ns, "ip", "-d", "-j", "link", "show").stdout),
        "ip -j addr": lab.run(ns, "ip", "-j", "addr", "show").stdout,
        "ip -j -4 route": lab.run(ns, "ip", "-j", "-4", "route", "show", "table", "all").stdout,
        "ip -j -6 route": lab.run(ns, "ip", "-j", "-6", "route", "show", "table", "all").stdout,
        "nft list ruleset": lab.run(ns, "nft", "list", "ruleset").stdout,
        "dnsmasq pids": " ".join(map(str, lab.pids(ns, "dnsmasq"))),
    }


def state_dir_entries(state_dir: Path) -> dict[str, tuple[str, bytes | None]]:
    """Every entry under ``state_dir`` (itself included): its mode and, for a file, its bytes."""
    entries = {}
    for path in [state_dir, *sorted(state_dir.rglob("*"))]:
        info = path.lstat()
        entries[str(path.relative_to(state_dir))] = (stat.filemode(info.st_mode),
                                                     path.read_bytes() if stat.S_ISREG(info.st_mode) else None)
    return entries


def settled(site: TransactionSite) -> tuple[dict[str, str], dict[str, tuple[str, bytes | None]]]:
    """The kernel texts and state directory entries once the kernel stopped changing by itself."""
    site.lab.settled_state(site.host)
    return kernel_texts(site.lab, site.host), state_dir_entries(site.state_dir)


def assert_unchanged(site: TransactionSite, kernel: dict[str, str], files: dict) -> None:
    now = kernel_texts(site.lab, site.host)
    changed = [name for name in kernel if now[name] != kernel[name]]
    shown = "\n".join(f"{name}:\n{kernel[name]}\n---\n{now[name]}" for name in changed)
    assert changed == [], f"changed: {changed}\n{shown}"
    assert state_dir_entries(site.state_dir) == files


def test_a_check_run_reports_a_stale_journal_and_writes_nothing(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    succeeded(site.run(topology_a()))
    planned = succeeded(site.run(topology_b(), check=True))["plan"]
    kill_after = len(planned) // 2
    killed = site.run(topology_b(), env={KILL_AFTER_ENV: str(kill_after)})
    assert (killed.rc, killed.stdout) == (-9, ""), str(killed)
    assert (site.state_dir / "journal.json").exists()
    kernel, files = settled(site)

    check = succeeded(site.run(topology_b(), check=True, diff=True))
    assert_unchanged(site, kernel, files)
    assert "recovered" not in check
    recovery = check["recovery"]
    assert (recovery["action"], recovery["generation"]) == ("roll back", 1)
    assert recovery["reason"].startswith("the apply started ")
    assert recovery["reason"].endswith(f" did not finish because it was interrupted; the real run rolls it back to "
                                       f"generation 1 ({len(recovery['plan'])} operations) before it applies anything")
    assert recovery["plan"] and all("content" not in item["details"] for item in recovery["plan"])
    assert sum(recovery["changes"].values()) == len(recovery["plan"])
    # Raw module output (no callback): each warning is a summary mapping holding the message.
    assert f"{site.state_dir}/journal.json holds an unfinished transaction: {recovery['reason']}" in json.dumps(
        check["warnings"])
    # What the real run executes after rolling back: B's plan from A.
    assert check["plan"] == planned
    assert check["changed"] is True

    applied = succeeded(site.run(topology_b()))
    assert applied["recovered"].endswith("was rolled back because it was interrupted"), applied
    assert "recovery" not in applied
    assert applied["plan"] == planned
    assert (applied["generation"], applied["rolled_back"]) == (2, False)
    assert not (site.state_dir / "journal.json").exists()
    again = succeeded(site.run(topology_b(), check=True))
    assert (again["changed"], again["plan"], "recovery" in again) == (False, [], False)


def test_check_runs_on_a_fresh_state_directory_leave_nothing_behind(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    fresh = tmp_path / "fresh"
    kernel, files = settled(site)
    for arguments in ({"topology": topology_a()}, {"state": "absent"}, {"state": "gathered"},
                      {"state": "rolled_back"}, {"state": "confirmed", "confirm_token": "0" * 32}):
        run = site.run(check=True, state_dir=str(fresh), **arguments)
        if arguments.get("state") == "rolled_back":  # nothing committed yet: fails, saying so
            assert run.result is not None and "no committed generation before 0" in run.result["msg"], str(run)
        else:
            succeeded(run)
        assert not fresh.exists(), f"{arguments}: {sorted(fresh.rglob('*'))}"
    assert_unchanged(site, kernel, files)


def with_refused_jump(ruleset: str) -> tuple[str, int]:
    """``ruleset`` with ``jump nowhere`` as the last rule of its first chain (nft parses it; the kernel
    refuses a jump to a chain that does not exist), and the number of that line."""
    lines = ruleset.splitlines(keepends=True)
    first_chain = next(index for index, line in enumerate(lines) if line.startswith("\tchain "))
    end = lines.index("\t}\n", first_chain)
    return "".join([*lines[:end], "\t\tjump nowhere\n", *lines[end:]]), end + 1


def test_a_table_the_kernel_refuses_fails_check_mode_and_the_real_run_before_any_change(
        lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    succeeded(site.run(topology_a()))
    compiled = compile_topology(topology_b(), state_dir=str(site.state_dir))
    broken, line = with_refused_jump(compiled.desired.ruleset)
    desired = replace(compiled.desired, ruleset=broken)
    expected = (f"nft check: ruleset line {line}, columns 8-14: Could not process rule: No such file or directory "
                "(at 'nowhere' in 'jump nowhere')")
    kernel, files = settled(site)

    for check_mode in (True, False):
        with HostDriver(state_dir=str(site.state_dir), netns=site.host) as driver:
            with driver.locked(check_mode=check_mode), pytest.raises(BackendError) as refused:
                driver.apply(desired, check_mode=check_mode, topology=None)
        assert str(refused.value) == expected, f"check_mode={check_mode}"
        # Nothing changed: no link of B, no journal, no rolled-back marker, the table of A.
        assert_unchanged(site, kernel, files)


# Fails nft -c for any input that mentions B's network new_net, the way nft reports a refused rule
# (file:line:columns, the line, carets); everything else goes to the real nft.
NFT_CHECK_WRAPPER = r"""#!/bin/sh
real=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v nft)
case " $* " in
*" -c "*)
    input=$(mktemp); trap 'rm -f "$input"' EXIT
    cat > "$input"
    line=$(grep -n new_net "$input" | head -n 1 | cut -d: -f1)
    if [ -n "$line" ]; then
        printf '/dev/stdin:%s:3-6: Error: Could not process rule: test wrapper refuses new_net\n%s\n  ^^^^\n' \
            "$line" "$(sed -n "${line}p" "$input")" >&2
        exit 1
    fi
    "$real" "$@" < "$input"
    exit $?
    ;;
esac
exec "$real" "$@"
"""


def test_a_refused_nft_check_is_reported_with_its_line_through_the_module(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    succeeded(site.run(topology_a()))
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nft").write_text(NFT_CHECK_WRAPPER)
    (tools / "nft").chmod(0o755)
    ruleset = compile_topology(topology_b(), state_dir=str(site.state_dir)).desired.ruleset
    line = next(number for number, text in enumerate(ruleset.splitlines(), 1) if "new_net" in text)
    kernel, files = settled(site)

    for check in (True, False):
        run = site.run(topology_b(), check=check, path_prefix=tools)
        result = run.result
        assert run.rc == 1 and result is not None and result["failed"], str(run)
        assert result["failed_step"] == "nft check" and "rolled_back" not in result, str(run)
        assert result["msg"].startswith(f"nft check: ruleset line {line}, columns 3-6: Could not process rule: "
                                        "test wrapper refuses new_net (at "), result["msg"]
        assert "\n" not in result["msg"] and "Traceback" not in run.stderr
        assert_unchanged(site, kernel, files)
