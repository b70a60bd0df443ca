# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transactions against a real kernel: automatic rollback, serialised applies, reboot, history.

Each test has its own lab host namespace (``txn_support.make_site``) with topology A committed
as generation 1 and compares whole owned-state fingerprints (``txn_support.owned_fingerprint``)
with those of clean applies:

* a failing probe, an ``nft`` that checks but refuses to load B's table and a ``dnsmasq`` that cannot start B's new
  network (the last step of the apply, after every netlink change) each fail the task naming the
  step and the cause, with ``rolled_back: true``, and leave exactly A's state;
* a rollback that itself fails (dnsmasq refusing A's configuration) is reported as not rolled
  back, naming the first cause and the rollback's, keeps the journal, and the next run finishes it;
* two module processes started at once on one state directory both succeed, one after the
  other, and the host is exactly one of the two topologies;
* reboot: the namespace deleted and created again with its foreign links only, ``restore.sh``
  brings back exactly B's state and a check-mode apply of B has nothing to do;
* ``state: rolled_back`` shows the way back in check mode without changing anything, then
  restores generation 1 as generation 3.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.tests.integration.conftest import state_files
from ansible_collections.ghostwarden.core.tests.integration.lab import INET_ADDRESS, UPLINK, UPLINK_ADDRESS, Lab
from ansible_collections.ghostwarden.core.tests.integration.txn_support import (
    TransactionSite,
    add_ports,
    finish_module,
    fingerprint_difference,
    make_site,
    start_module,
    succeeded,
    topology_a,
    topology_b,
    topology_c,
    unparsable_state_files,
)

pytestmark = pytest.mark.root


def committed_a(site: TransactionSite) -> dict:
    """Apply A (generation 1) and return its fingerprint."""
    result = succeeded(site.run(topology_a()))
    assert (result["generation"], result["rolled_back"]) == (1, False)
    return site.fingerprint()


def assert_rolled_back_to_a(site: TransactionSite, run, clean_a: dict, step: str, cause_start: str) -> None:
    result = run.result
    assert run.rc == 1 and result is not None and result["failed"], str(run)
    assert (result["failed_step"], result["rolled_back"], result["generation"]) == (step, True, 1), str(run)
    assert result["msg"].startswith(f"{step}: {cause_start}"), result["msg"]
    assert result["msg"].endswith("; rolled back to generation 1"), result["msg"]
    assert result["rollback_reason"] == result["msg"][:-len("; rolled back to generation 1")]
    got = site.fingerprint()
    assert got == clean_a, fingerprint_difference(got, clean_a)
    assert not (site.state_dir / "journal.json").exists()
    assert json.loads((site.state_dir / "state.json").read_text())["generation"] == 1
    assert [path.name for path in sorted(site.state_dir.glob("rolled-back-*"))] != []
    assert unparsable_state_files(site.state_dir) == []


def test_failing_probe_rolls_back(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    # The "internet" namespace answers on its address but nothing listens on port 9: refused.
    failed = site.run(topology_b(), probes=[{"tcp": f"{INET_ADDRESS}:9", "timeout": 2}])
    assert_rolled_back_to_a(site, failed, clean_a, "probes", f"tcp {INET_ADDRESS}:9: ")
    assert "refused" in failed.result["msg"], failed.result["msg"]


def test_passing_probe_commits(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    committed_a(site)
    lab.serve_tcp(site.inet, "inet", 7070)
    result = succeeded(site.run(topology_b(), probes=[{"tcp": f"{INET_ADDRESS}:7070", "timeout": 2}]))
    assert (result["generation"], result["rolled_back"]) == (2, False)
    assert [(probe["name"], probe["ok"]) for probe in result["probes"]] == [(f"tcp {INET_ADDRESS}:7070", True)]
    assert [path.name for path in sorted((site.state_dir / "history").iterdir())] == ["000001.json", "000002.json"]
    assert not (site.state_dir / "journal.json").exists()


def wrapper(directory: Path, tool: str, script: str) -> Path:
    """An executable ``tool`` in ``directory`` (put first on the module's PATH) running ``script``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / tool
    path.write_text(script)
    path.chmod(0o755)
    return directory


# Refuses to load any nft -f input that mentions B's network new_net (A's table does not), so the
# rollback's own load of A's table goes through. nft -c passes: the load is what fails here (a table
# refused by the check fails before the transaction, tests/integration/test_check_mode.py).
NFT_WRAPPER = """#!/bin/sh
real=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v nft)
case " $* " in
*" -c "*)
    exec "$real" "$@"
    ;;
*" -f "*)
    input=$(mktemp); trap 'rm -f "$input"' EXIT
    for last; do :; done
    if [ "$last" = - ]; then cat > "$input"; else cat "$last" > "$input"; fi
    if grep -q new_net "$input"; then
        echo "Error: test wrapper refuses this ruleset" >&2
        exit 1
    fi
    if [ "$last" = - ]; then "$real" "$@" < "$input"; else "$real" "$@"; fi
    exit $?
    ;;
esac
exec "$real" "$@"
"""

# Starts every instance except new_net's, which fails as dnsmasq does on a bad option.
DNSMASQ_WRAPPER = """#!/bin/sh
case " $* " in
*"/new_net.conf "*)
    echo "dnsmasq: test wrapper: cannot start new_net" >&2
    exit 1
    ;;
esac
exec "$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v dnsmasq)" "$@"
"""


def test_nft_failure_rolls_back(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    tools = wrapper(tmp_path / "bin", "nft", NFT_WRAPPER)
    failed = site.run(topology_b(), path_prefix=tools)
    assert_rolled_back_to_a(site, failed, clean_a, "nft apply", "Error: test wrapper refuses this ruleset")


def test_dnsmasq_failing_to_start_rolls_back_every_change(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    tools = wrapper(tmp_path / "bin", "dnsmasq", DNSMASQ_WRAPPER)
    failed = site.run(topology_b(), path_prefix=tools)
    assert_rolled_back_to_a(site, failed, clean_a, "dnsmasq new_net", "test wrapper: cannot start new_net")


# Refuses to start nat_dev with A's configuration (lease time 12h) once the test arms it: the
# rollback after B's failing probe then fails at its last step, restarting A's dnsmasq.
ARMED_DNSMASQ_WRAPPER = """#!/bin/sh
case " $* " in
*"/nat_dev.conf "*)
    if [ -e "$GW_TEST_ARMED" ] && grep -q ',12h$' "${1#--conf-file=}"; then
        echo "dnsmasq: test wrapper: nat_dev refused" >&2
        exit 1
    fi
    ;;
esac
exec "$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v dnsmasq)" "$@"
"""


def test_failed_rollback_keeps_the_journal_for_the_next_run(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    tools = wrapper(tmp_path / "bin", "dnsmasq", ARMED_DNSMASQ_WRAPPER)
    armed = tmp_path / "armed"
    armed.touch()
    failed = site.run(topology_b(), probes=[{"tcp": f"{INET_ADDRESS}:9", "timeout": 2}], path_prefix=tools,
                      env={"GW_TEST_ARMED": str(armed)})
    result = failed.result
    assert failed.rc == 1 and result is not None and result["failed"], str(failed)
    # Not rolled back, and the task says why it failed in the first place and what stopped the rollback.
    assert result.get("rolled_back") is False, str(failed)
    assert f"probes: tcp {INET_ADDRESS}:9: " in result["msg"], result["msg"]
    assert "test wrapper: nat_dev refused" in result["msg"], result["msg"]
    assert unparsable_state_files(site.state_dir) == []
    assert (site.state_dir / "journal.json").exists()

    recovered = succeeded(site.run(topology_a()))
    assert recovered["recovered"].startswith("the apply started "), recovered
    assert (recovered["changed"], recovered["generation"]) == (False, 1)
    got = site.fingerprint()
    assert got == clean_a, fingerprint_difference(got, clean_a)
    assert not (site.state_dir / "journal.json").exists()


def test_concurrent_applies_are_serialised(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    clean = {}
    for name, topology in (("B", topology_b()), ("C", topology_c())):
        succeeded(site.run(topology))
        clean[name] = site.fingerprint()
    succeeded(site.run(topology_a()))
    got = site.fingerprint()
    assert got == clean_a, fingerprint_difference(got, clean_a)
    generation = json.loads((site.state_dir / "state.json").read_text())["generation"]

    processes = [start_module(site.workdir, site.arguments(topology))
                 for topology in (topology_b(), topology_c())]
    results = [succeeded(finish_module(process)) for process in processes]
    assert sorted(result["generation"] for result in results) == [generation + 1, generation + 2], results
    last = max(results, key=lambda result: result["generation"])
    winner = "B" if last is results[0] else "C"
    got = site.fingerprint()
    assert got == clean[winner], fingerprint_difference(got, clean[winner])
    assert unparsable_state_files(site.state_dir) == []
    assert not (site.state_dir / "journal.json").exists()
    # The second apply planned from the first one's result, not from A.
    first = min(results, key=lambda result: result["generation"])
    assert first["plan"] != last["plan"]


def recreate_host(lab: Lab, host: str, inet: str) -> None:
    """Power cycle: every process of ``host`` dies, the namespace goes and comes back with its
    foreign links (uplink to ``inet``, ports) and nothing else."""
    for pid in subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True,
                              check=True).stdout.split():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "delete", host], check=True)
    # The kernel dismantles a namespace asynchronously: the uplink's peer goes a moment later.
    lab.wait_for(lambda: lab.run(inet, "ip", "link", "show", "eth0", check=False).returncode != 0,
                 what=f"eth0 of {inet} to go with {host}")
    subprocess.run(["ip", "netns", "add", host], check=True)
    lab.run(host, "ip", "link", "set", "lo", "up")
    lab.sysctl(host, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
    lab.veth(host, UPLINK, inet, "eth0")
    lab.addr(host, UPLINK, f"{UPLINK_ADDRESS}/24")
    lab.addr(inet, "eth0", f"{INET_ADDRESS}/24")
    lab.route(host, "default", "via", INET_ADDRESS)
    add_ports(lab, host)


def test_reboot_restores_the_committed_state(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    committed_a(site)
    succeeded(site.run(topology_b()))
    clean_b = site.fingerprint()
    restore = site.state_dir / "persist" / "restore.sh"
    assert sorted(path.name for path in (site.state_dir / "persist").iterdir()) == [
        "bridge.batch", f"ghostwarden-restore-{site.host}.service", "ghostwarden.nft", "links.batch",
        "restore.sh", "sysctl.conf"]

    recreate_host(lab, site.host, site.inet)
    assert lab.run(site.host, "nft", "list", "tables").stdout == ""
    restored = subprocess.run(["sh", str(restore)], capture_output=True, text=True, timeout=60, check=False)
    assert (restored.returncode, restored.stderr) == (0, "")
    got = site.fingerprint()
    assert got == clean_b, fingerprint_difference(got, clean_b)
    again = succeeded(site.run(topology_b(), check=True))
    assert (again["changed"], again["plan"]) == (False, [])


def test_state_rolled_back_restores_generation_1(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    clean_a = committed_a(site)
    applied_b = succeeded(site.run(topology_b()))
    clean_b = site.fingerprint()
    files_before = state_files(site.state_dir)

    preview = succeeded(site.run(state="rolled_back", check=True, diff=True))
    assert preview["changed"] is True and preview["plan"] != []
    # Prepared unified diffs of what the rollback changes: owned objects first, then the table.
    assert [item["prepared"].split("\n", 1)[0] for item in preview["diff"][:2]] == [
        "--- owned links, addresses, FDB, ports, routes, sysctls (before)", "--- nft table inet ghostwarden (before)"]
    assert "\n-" in preview["diff"][0]["prepared"] or "\n+" in preview["diff"][0]["prepared"]
    assert site.fingerprint() == clean_b
    assert state_files(site.state_dir) == files_before

    restored = succeeded(site.run(state="rolled_back"))
    assert (restored["changed"], restored["generation"]) == (True, 3)
    got = site.fingerprint()
    assert got == clean_a, fingerprint_difference(got, clean_a)
    history = restored["history"]
    assert [entry["generation"] for entry in history] == [1, 2, 3]
    assert history[2]["topology_sha256"] == history[0]["topology_sha256"] != history[1]["topology_sha256"]
    assert history[1]["summary"] == applied_b["changes"]
    # Nothing left to do: generation 1's state is the live one.
    again = succeeded(site.run(state="rolled_back", generation=1, check=True))
    assert (again["changed"], again["plan"]) == (False, [])
