# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Results stay small: a capped plan without contents, a one-line summary, diffs of what changed only."""

from __future__ import annotations

import json

from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import (
    Address,
    HostState,
    LinkState,
    Operation,
    Route,
    summarise,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.host._results import (
    PLAN_SHOWN,
    changed_diff,
    kind_counts,
    nonzero_counts,
    plan_keys,
    summary_line,
)

RULESET = "table inet ghostwarden {\n" + "".join(f"\tchain n{index} {{\n\t}}\n" for index in range(400)) + "}\n"


def bridge(name: str) -> LinkState:
    return LinkState(name, "bridge", f"ghostwarden:{name}", {"state": "up", "ifalias": f"ghostwarden:{name}"})


def operations(count: int) -> list[Operation]:
    ops = [Operation("create_link", f"link:gw-n{index}", {"kind": "bridge"}) for index in range(count)]
    ops.append(Operation("replace_ruleset", "ruleset:inet ghostwarden", {"content": RULESET, "sha256": "ab", "lines": 802}))
    return ops


def test_a_compact_plan_lists_the_first_operations_without_contents() -> None:
    plan = operations(3)
    keys = plan_keys(plan, full=False)
    assert keys == {"plan": [
        {"kind": "create_link", "target": "link:gw-n0", "details": {"kind": "bridge"}},
        {"kind": "create_link", "target": "link:gw-n1", "details": {"kind": "bridge"}},
        {"kind": "create_link", "target": "link:gw-n2", "details": {"kind": "bridge"}},
        {"kind": "replace_ruleset", "target": "ruleset:inet ghostwarden", "details": {"sha256": "ab", "lines": 802}},
    ]}
    assert plan_keys(plan, full=True)["plan"][-1]["details"]["content"] == RULESET


def test_a_long_plan_is_cut_and_says_how_much_is_left_out() -> None:
    plan = operations(1000)
    keys = plan_keys(plan, full=False)
    assert len(keys["plan"]) == PLAN_SHOWN and keys["plan_omitted"] == len(plan) - PLAN_SHOWN
    assert len(json.dumps(keys)) < 10_000
    assert len(plan_keys(plan, full=True)["plan"]) == len(plan)


def test_summary_line() -> None:
    changes = nonzero_counts(summarise(operations(2)))
    assert changes == {"create_link": 2, "replace_ruleset": 1}
    assert summary_line(changes, [], check_mode=False) == "applied 3 operations (2 create_link, 1 replace_ruleset)"
    assert summary_line(changes, ["started web"], check_mode=True) == (
        "would apply 3 operations (2 create_link, 1 replace_ruleset); dnsmasq: started web")
    assert summary_line({}, [], check_mode=False) == "no change"
    assert summary_line({}, ["restarted web"], check_mode=False) == "applied dnsmasq: restarted web"


def test_kind_counts_keep_plan_order() -> None:
    assert kind_counts(["b", "a", "b"]) == {"b": 2, "a": 1}


def test_a_diff_shows_only_what_changed() -> None:
    links = [bridge(f"gw-n{index}") for index in range(300)]
    before = HostState(links=links, addresses=[Address("gw-n1", "10.1.0.1/24", True)], ruleset=RULESET,
                       dnsmasq_files={"/var/lib/gw/dnsmasq/a.conf": "interface=gw-a\n"})
    after = HostState(links=[*links, bridge("gw-new")],
                      addresses=[Address("gw-n1", "10.1.0.1/24", True), Address("gw-new", "10.9.0.1/24", True)],
                      ruleset=RULESET.replace("chain n7 {", "chain n7 {\n\t\taccept"),
                      dnsmasq_files={"/var/lib/gw/dnsmasq/a.conf": "interface=gw-a\n"})
    diff = changed_diff(before, after)
    assert len(diff) == 2  # the unchanged dnsmasq file has no item
    objects, ruleset = (item["prepared"] for item in diff)
    assert objects.startswith("--- owned links, addresses, FDB, ports, routes, sysctls (before)\n")
    assert [line for line in objects.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        "+address gw-new 10.9.0.1/24", "+link gw-new bridge ifalias=ghostwarden:gw-new state=up"]
    assert ruleset.startswith("--- nft table inet ghostwarden (before)\n") and "+\t\taccept" in ruleset
    assert len(objects) + len(ruleset) < 1_000
    assert changed_diff(after, after) == []


def test_an_adopted_route_shows_in_the_diff() -> None:
    route = Route(dst="0.0.0.0/0", dev="vmbr0", gateway="192.0.2.1", owned=True, adopted_from="eno1")
    (item,) = changed_diff(HostState(), HostState(routes=[route]))
    assert "+route 0.0.0.0/0 dev vmbr0 via 192.0.2.1 table 254 metric 0\n" in item["prepared"]


def test_foreign_objects_stay_out_of_the_diff() -> None:
    foreign = LinkState("eth0", "other", None, {"state": "up"})
    assert changed_diff(HostState(links=[foreign]), HostState(links=[foreign, bridge("gw-a")])) == [{
        "prepared": "--- owned links, addresses, FDB, ports, routes, sysctls (before)\n"
                    "+++ owned links, addresses, FDB, ports, routes, sysctls (after)\n"
                    "@@ -0,0 +1 @@\n"
                    "+link gw-a bridge ifalias=ghostwarden:gw-a state=up\n"}]
