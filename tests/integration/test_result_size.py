# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Task results stay small at scale (AWX stores every one): 500 routed networks with two forwards
each and a profile that drops SSH, applied through ansible-playbook into a lab namespace.

The apply's result (with Ansible's echo of the arguments) is under 50 KB and the no-op's under 10 KB; the 500 networks' one shared
warning comes once; ``return_content`` brings the topology, the ruleset and every operation back.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root

NETWORKS = 500


def big_topology() -> dict:
    networks = {}
    for index in range(NETWORKS):
        third, fourth = divmod(index, 256)
        prefix = f"10.{100 + third}.{fourth}"
        networks[f"n{index}"] = {
            "type": "routed", "cidr": f"{prefix}.0/24", "gw_ip": f"{prefix}.1", "policy_profile": "routed-tight",
            "forwards": [{"public": f"0.0.0.0:{20000 + 2 * index}/tcp", "dst": f"{prefix}.10:22"},
                         {"public": f"0.0.0.0:{20001 + 2 * index}/udp", "dst": f"{prefix}.10:53"}]}
    return {"version": 1, "networks": networks}


def size(result) -> int:
    return len(json.dumps(result.result))


def test_results_stay_small_at_500_networks(site, task, run_play) -> None:
    apply = task("ghostwarden_apply", topology=big_topology(), netns=site.host, state_dir=str(site.state_dir))
    applied, repeated = run_play([apply, apply])
    assert applied.status == "changed" and repeated.status == "ok", f"{applied}\n{repeated}"
    assert size(applied) < 50_000, sorted((len(json.dumps(value)), key) for key, value in applied.result.items())[-4:]
    assert size(repeated) < 10_000, size(repeated)
    assert applied["changes"]["create_link"] == NETWORKS and applied["plan_omitted"] > 0
    assert applied["summary"].startswith(f"applied {sum(applied['changes'].values())} operations (")
    assert (repeated["plan"], repeated["changes"], repeated["summary"]) == ([], {}, "no change")
    assert "topology" not in applied.result and "ruleset" not in applied.result
    # Ansible echoes the arguments: the 500 networks are echoed as their size and digest.
    echoed = applied["invocation"]["module_args"]["topology"]
    assert echoed["omitted"].endswith(f"bytes, {NETWORKS} networks; return_content: true echoes it whole"), echoed
    # One warning for the profile that drops SSH on all 500 networks, not 500.
    about_ssh = [warning for warning in applied.get("warnings", []) if "drops management port 22/tcp" in warning]
    assert len(about_ssh) == 1 and f"and {NETWORKS - 5} more ({NETWORKS} networks)" in about_ssh[0], about_ssh

    (full,) = run_play([task("ghostwarden_apply", topology=big_topology(), netns=site.host,
                             state_dir=str(site.state_dir), return_content=True)])
    assert full.status == "ok" and len(full["topology"]["networks"]) == NETWORKS
    assert full["ruleset"].startswith("table inet ghostwarden {")
