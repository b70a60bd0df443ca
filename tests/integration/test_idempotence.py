# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module's check / real / repeat / repeat-in-check quartet, and drift repair.

The quartet must report changed / changed / unchanged / unchanged. "No kernel write" is
checked on the kernel itself: the ``inet ghostwarden`` table with rule handles (any reload
renumbers them), ``ip -d -j link``, ``ip -j addr``, the VXLAN FDB, the forwarding sysctls and the
dnsmasq pids are the same before and after a run that must change nothing (check mode, and the
repeats). The state directory must not change in check mode either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.root

OVERLAY = {"type": "vxlan", "vni": 1200, "bridge": "br-overlay", "peers": ["10.0.0.12"], "ports": ["ov1p"]}


POLICY_KEYS = ("policy_profile", "forwards", "masq_out")


def links_part(network: dict) -> dict:
    """A network entry without what ghostwarden_policy manages (ghostwarden_network refuses it)."""
    return {key: value for key, value in network.items() if key not in POLICY_KEYS}


@dataclass
class Quartet:
    """What a module is asked (``subject``) after ``setup`` ran, and what its real run must plan."""

    setup: list[dict]
    subject: dict
    kinds: set[str]


def quartets(site, nat_dev: dict, task: Callable[..., dict]) -> dict[str, Quartet]:
    common = {"netns": site.host, "state_dir": str(site.state_dir)}
    interfaces = {"uplink": "up0"}
    topology = {"version": 1, "interfaces": interfaces, "networks": {"nat_dev": nat_dev, "overlay_lab": OVERLAY}}
    network_task = task("ghostwarden_network", name="nat_dev", network=links_part(nat_dev), interfaces=interfaces, **common)
    return {
        "ghostwarden_apply": Quartet(
            [], task("ghostwarden_apply", topology=topology, **common),
            {"set_sysctl", "create_link", "set_master", "add_address", "add_fdb", "write_file", "replace_ruleset"}),
        "ghostwarden_network": Quartet(
            [], network_task, {"create_link", "set_master", "add_address", "write_file"}),
        "ghostwarden_policy": Quartet(
            [network_task],
            task("ghostwarden_policy", name="nat_dev", policy_profile="routed-tight", forwards=nat_dev["forwards"],
                 masq_out="uplink", interfaces=interfaces, **common),
            {"set_sysctl", "replace_ruleset"}),  # forwarding: nat_dev masquerades and forwards
    }


def ok(results) -> list:
    failures = [str(result) for result in results if result.failed]
    assert not failures and results, "\n".join(failures) or results.output
    return results


def prepare_ports(site) -> None:
    site.lab.add_client(site.host, "dev1p", "dev1", "10.33.0.10/24", "10.33.0.1")
    site.lab.add_client(site.host, "ov1p", "ov1", "10.55.0.1/24")


def diff_headers(diff: list[dict]) -> list[str]:
    """The first line of each prepared diff: which part (owned objects, the table, a file) changed."""
    return [item["prepared"].split("\n", 1)[0] for item in diff]


@pytest.mark.parametrize("module", ["ghostwarden_apply", "ghostwarden_network", "ghostwarden_policy"])
def test_quartet(site, nat_dev, task, run_play, read_state_files, module: str) -> None:
    prepare_ports(site)
    quartet = quartets(site, nat_dev, task)[module]
    if quartet.setup:
        ok(run_play(quartet.setup))

    before = site.lab.settled_state(site.host)
    files_before = read_state_files(site.state_dir)
    (check,) = ok(run_play([quartet.subject], check=True, diff=True))
    assert check.changed
    assert check.get("diff"), check
    assert site.lab.settled_state(site.host) == before, "check mode changed the kernel"
    assert read_state_files(site.state_dir) == files_before, "check mode changed the state directory"

    (real,) = ok(run_play([quartet.subject], diff=True))
    assert real.changed
    assert set(real.kinds()) == quartet.kinds
    assert real["plan"] == check["plan"], "check mode planned something else than the real run did"
    # Both diffs show what changed (prepared unified diffs); check mode's "after" is the prediction,
    # the real run's what it observed (which may add attributes the kernel chose, such as the MTU),
    # so the parts changed are the same, not every line.
    assert diff_headers(real["diff"]) == diff_headers(check["diff"]) != []

    settled = site.lab.settled_state(site.host)
    assert settled != before
    repeat_check = dict(quartet.subject, check_mode=True, name=f"{quartet.subject['name']} in check mode")
    repeat, repeat_in_check = ok(run_play([quartet.subject, repeat_check]))
    assert (repeat.changed, repeat_in_check.changed) == (False, False), f"{repeat}\n{repeat_in_check}"
    assert repeat["plan"] == [] and repeat_in_check["plan"] == []
    assert site.lab.settled_state(site.host) == settled, "the repeat wrote to the kernel"


def test_info_quartet_changes_nothing(site, nat_dev, task, run_play) -> None:
    prepare_ports(site)
    topology = {"version": 1, "interfaces": {"uplink": "up0"}, "networks": {"nat_dev": nat_dev}}
    ok(run_play([task("ghostwarden_apply", topology=topology, netns=site.host, state_dir=str(site.state_dir))]))
    info = task("ghostwarden_info", netns=site.host, state_dir=str(site.state_dir))
    settled = site.lab.settled_state(site.host)
    (in_check,) = ok(run_play([info], check=True, diff=True))
    real, repeat, repeat_in_check = ok(run_play([info, info, dict(info, check_mode=True)]))
    assert [result.changed for result in (in_check, real, repeat, repeat_in_check)] == [False] * 4
    assert site.lab.settled_state(site.host) == settled
    # Facts, the same whether asked in check mode or not.
    assert in_check["ruleset"] == real["ruleset"] == repeat["ruleset"] == repeat_in_check["ruleset"]
    assert "table inet ghostwarden" in real["ruleset"]
    assert real["topology"]["networks"]["nat_dev"]["cidr"] == "10.33.0.0/24"
    owners = {link["name"]: link["owner"] for link in real["links"]}
    assert {name: owners[name] for name in ("gw-nat_dev", "dev1p", "up0", "lo")} == \
        {"gw-nat_dev": "nat_dev", "dev1p": None, "up0": None, "lo": None}


def first_rule_handle(lab, ns: str, chain: str) -> tuple[str, str]:
    """The first rule of ``chain`` in the owned table: (rule text, handle)."""
    listing = lab.run(ns, "nft", "-a", "list", "chain", "inet", "ghostwarden", chain).stdout
    for line in listing.splitlines():
        text, _separator, handle = line.strip().partition(" # handle ")
        if handle and not text.startswith(("type ", "chain ")):
            return text, handle
    raise AssertionError(f"no rule in chain {chain}:\n{listing}")


def table_blocks(text: str) -> dict[str, tuple[list[str], set[str]]]:
    """The sets, maps and chains of a listed table: name -> (declaration and rule lines, elements).

    Elements are compared as a set: nft prints one or several per line depending on their number.
    """
    blocks: dict[str, tuple[list[str], set[str]]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.startswith("\t") or line.startswith("\t\t") or not line.endswith("{"):
            continue
        name = line.strip()[:-1].strip()
        body = []
        for inner in lines:
            if inner == "\t}":
                break
            body.append(inner.strip())
        joined = " ".join(body)
        elements: set[str] = set()
        if "elements = {" in joined:
            listed = joined.split("elements = {", 1)[1].split("}", 1)[0]
            elements = {element.strip() for element in listed.split(",")}
        declaration = [entry for entry in body if not entry.startswith("elements = {") and entry == entry.lstrip("\"")]
        blocks[name] = ([entry for entry in declaration if "elements = {" not in entry], elements)
    return blocks


def table_text(lab, ns: str) -> str:
    return lab.run(ns, "nft", "list", "table", "inet", "ghostwarden").stdout


def delete_rule(lab, ns: str, chain: str) -> str:
    """Delete the first rule of ``chain`` by its handle, as someone editing the table by hand would."""
    text, handle = first_rule_handle(lab, ns, chain)
    before = lab.run(ns, "nft", "list", "chain", "inet", "ghostwarden", chain).stdout
    lab.run(ns, "nft", "delete", "rule", "inet", "ghostwarden", chain, "handle", handle)
    after = lab.run(ns, "nft", "list", "chain", "inet", "ghostwarden", chain).stdout
    assert [line.strip() for line in after.splitlines()].count(text) == \
        [line.strip() for line in before.splitlines()].count(text) - 1
    return text


def test_apply_repairs_a_deleted_address_and_rule(site, nat_dev, task, run_play) -> None:
    prepare_ports(site)
    topology = {"version": 1, "interfaces": {"uplink": "up0"}, "networks": {"nat_dev": nat_dev}}
    apply = task("ghostwarden_apply", topology=topology, netns=site.host, state_dir=str(site.state_dir))
    ok(run_play([apply]))
    settled = site.lab.settled_state(site.host)
    table = table_text(site.lab, site.host)

    site.lab.run(site.host, "ip", "addr", "del", "10.33.0.1/24", "dev", "gw-nat_dev")
    delete_rule(site.lab, site.host, "forward")
    (repaired,) = ok(run_play([apply]))
    assert repaired.changed
    # (The order of operations is the first apply's business: test_traffic.py.)
    assert sorted(repaired.kinds()) == ["add_address", "replace_ruleset"]
    assert table_text(site.lab, site.host) == table
    restored = site.lab.settled_state(site.host)
    assert restored["addresses"] == settled["addresses"]
    assert restored["links"] == settled["links"]


def test_network_repairs_a_deleted_address_and_a_link_set_down(site, nat_dev, task, run_play) -> None:
    prepare_ports(site)
    network = task("ghostwarden_network", name="nat_dev", network=links_part(nat_dev), interfaces={"uplink": "up0"},
                   netns=site.host, state_dir=str(site.state_dir))
    ok(run_play([network]))
    settled = site.lab.settled_state(site.host)

    site.lab.run(site.host, "ip", "addr", "del", "10.33.0.1/24", "dev", "gw-nat_dev")
    site.lab.run(site.host, "ip", "link", "set", "gw-nat_dev", "down")
    (repaired,) = ok(run_play([network]))
    assert repaired.changed
    assert [(operation["kind"], operation["target"]) for operation in repaired["plan"]] == [
        ("modify_link", "link:gw-nat_dev"), ("add_address", "address:gw-nat_dev:10.33.0.1/24")]
    restored = site.lab.settled_state(site.host)
    # Setting the bridge up again makes the kernel derive a new IPv6 link-local address from the
    # bridge's current MAC: the kernel's own address, which the collection never manages.
    assert without_link_local(restored["addresses"]) == without_link_local(settled["addresses"])
    assert restored["links"] == settled["links"]


def without_link_local(addresses: list[dict]) -> list[dict]:
    return [dict(link, addr_info=[entry for entry in link.get("addr_info", [])
                                  if not entry["local"].startswith("fe80:")]) for link in addresses]


def test_policy_repairs_a_deleted_rule(site, nat_dev, task, run_play) -> None:
    prepare_ports(site)
    interfaces = {"uplink": "up0"}
    common = {"netns": site.host, "state_dir": str(site.state_dir)}
    policy = task("ghostwarden_policy", name="nat_dev", policy_profile="routed-tight", forwards=nat_dev["forwards"],
                  masq_out="uplink", interfaces=interfaces, **common)
    ok(run_play([task("ghostwarden_network", name="nat_dev", network=links_part(nat_dev), interfaces=interfaces, **common),
                 policy]))
    table = table_text(site.lab, site.host)

    delete_rule(site.lab, site.host, "input")
    (repaired,) = ok(run_play([policy]))
    assert repaired.changed and repaired.kinds() == ["replace_ruleset"]
    assert table_text(site.lab, site.host) == table


def test_policy_changes_only_its_own_network(site, nat_dev, task, run_play) -> None:
    prepare_ports(site)
    site.lab.add_client(site.host, "webp", "web", "10.44.0.10/24", "10.44.0.1")
    interfaces = {"uplink": "up0"}
    common = {"netns": site.host, "state_dir": str(site.state_dir)}
    web = {"type": "routed", "cidr": "10.44.0.0/24", "gw_ip": "10.44.0.1", "ports": ["webp"]}
    ok(run_play([
        task("ghostwarden_network", name="nat_dev", network=links_part(nat_dev), interfaces=interfaces, **common),
        task("ghostwarden_network", name="web", network=web, interfaces=interfaces, **common),
        task("ghostwarden_policy", name="nat_dev", policy_profile="routed-tight", forwards=nat_dev["forwards"],
             masq_out="uplink", interfaces=interfaces, **common),
        task("ghostwarden_policy", name="web", policy_profile="public-web", **common),
    ]))
    both = table_text(site.lab, site.host)
    assert "net_nat_dev_" in both and "net_web_" in both
    dnsmasq = site.lab.pids(site.host, "dnsmasq")

    (removed,) = ok(run_play([task("ghostwarden_policy", name="web", state="absent", **common)]))
    assert removed.changed and removed.kinds() == ["replace_ruleset"]
    only_nat_dev = table_text(site.lab, site.host)
    assert "net_web_" not in only_nat_dev and '"gw-web"' not in only_nat_dev and "10.44." not in only_nat_dev
    # Everything else is as it was: web's chains gone, web's elements gone from the shared maps.
    expected = {name: (declaration, {element for element in elements if "gw-web" not in element})
                for name, (declaration, elements) in table_blocks(both).items()
                if "net_web_" not in name and "public-web" not in name}  # web's chains, its profile's sets
    assert table_blocks(only_nat_dev) == expected

    (gone,) = ok(run_play([task("ghostwarden_network", name="web", state="absent", **common)]))
    assert gone.changed and gone.kinds() == ["delete_link"]
    links = site.lab.links(site.host)
    assert "gw-web" not in links and links["gw-nat_dev"].get("ifalias") == "ghostwarden:nat_dev"
    assert "webp" in links and "master" not in links["webp"]  # the foreign port stays, released
    assert site.lab.pids(site.host, "dnsmasq") == dnsmasq
    assert table_text(site.lab, site.host) == only_nat_dev
