# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault injection: ``ghostwarden_apply`` SIGKILLed after its K-th operation, at 30 points K.

One lab host namespace. Topology A is applied and committed (generation 1); the fingerprints of
a clean A and a clean B (see ``txn_support.owned_fingerprint``: links, addresses, FDB, the owned
table normalised, sysctls, dnsmasq files and processes) are taken first. Then for each K (a
fixed-seed sample of 1..len(plan of A -> B)):

* apply B with ``GHOSTWARDEN_TEST_KILL_AFTER=K``: the process dies by SIGKILL and prints nothing;
  every JSON file of the state directory parses, and ``journal.json`` holds the whole plan the
  check-mode run showed (so the next run knows everything the dead one may have created);
* the next run recovers: on even iterations apply B (it must report the recovery, succeed, and
  leave exactly B's fingerprint; then A is applied again and must give exactly A's), on odd
  ones apply A directly (exactly A's fingerprint). Never a mix: whole fingerprints compare.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.tests.integration.lab import Lab
from ansible_collections.ghostwarden.core.tests.integration.txn_support import (
    KILL_AFTER_ENV,
    fingerprint_difference,
    make_site,
    succeeded,
    topology_a,
    topology_b,
    unparsable_state_files,
)

pytestmark = pytest.mark.root

KILL_POINTS = 30
SEED = 4


def test_apply_killed_at_30_points_recovers_to_a_committed_state(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path)
    first = succeeded(site.run(topology_a()))
    assert (first["changed"], first["generation"], first["rolled_back"]) == (True, 1, False)
    clean_a = site.fingerprint()

    planned = succeeded(site.run(topology_b(), check=True, return_content=True))["plan"]
    assert len(planned) >= KILL_POINTS, f"B is only {len(planned)} operations away from A"
    succeeded(site.run(topology_b()))
    clean_b = site.fingerprint()
    assert clean_b != clean_a
    succeeded(site.run(topology_a()))
    assert site.fingerprint() == clean_a, "applying A after B does not give A's state"

    points = sorted(random.Random(SEED).sample(range(1, len(planned) + 1), KILL_POINTS))
    for iteration, kill_after in enumerate(points):
        where = f"killed after operation {kill_after} of {len(planned)} ({planned[kill_after - 1]['kind']} " \
                f"{planned[kill_after - 1]['target']})"
        killed = site.run(topology_b(), env={KILL_AFTER_ENV: str(kill_after)})
        assert (killed.rc, killed.stdout) == (-9, ""), f"{where}: {killed}"
        assert unparsable_state_files(site.state_dir) == [], where
        with open(site.state_dir / "journal.json", encoding="utf-8") as stream:
            journal = json.load(stream)
        assert journal["planned"] == planned, f"{where}: the journal does not hold the plan"

        if iteration % 2 == 0:
            recovered = succeeded(site.run(topology_b()))
            assert recovered["recovered"].endswith("was rolled back because it was interrupted"), where
            got = site.fingerprint()
            assert got == clean_b, f"{where}, then B applied:\n{fingerprint_difference(got, clean_b)}"
            succeeded(site.run(topology_a()))
        else:
            recovered = succeeded(site.run(topology_a()))
            assert recovered["recovered"].endswith("was rolled back because it was interrupted"), where
        got = site.fingerprint()
        assert got == clean_a, f"{where}, then A applied:\n{fingerprint_difference(got, clean_a)}"
        assert not (site.state_dir / "journal.json").exists(), where
        assert unparsable_state_files(site.state_dir) == [], where
