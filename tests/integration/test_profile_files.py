# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Profile files read by the modules (``policy_dirs``, ``policies/`` beside ``src``), applied to lab namespaces.

The original Ghostwarden example (examples/ghostnet.toml) with the original's profile files beside
it (examples/policies/) applies from ``src`` as it is, and the repeat changes nothing. Its profile
names are built-ins here, which files do not replace: the apply warns that the two files are not
read. The file is applied in place when the kernel has 802.1Q (its ``br_work`` has ``vlan = 20``);
otherwise that case is skipped and a copy without the ``vlan = 20`` line, with the profile files
copied beside it unchanged, shows the rest (as tests/integration/test_example_playbook.py does).

A topology that names profiles the collection does not have gets them from the files: beside
``src``, then from ``policy_dirs``; an edited file takes effect on the next apply and through
``ghostwarden_policy``, which starts from the recorded topology.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology, read_topology_input
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import profile_dirs_option

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOT_READ = ("is not read (a file cannot replace a built-in profile: define it under policies to replace it, or give "
            "the file and the profile inside it another name)")

WEB_FRONTEND = """\
name = "web-frontend"
description = "Web frontends - HTTP/HTTPS from anywhere"
default_action = "drop"
allowed_ingress_cidrs = ["0.0.0.0/0"]
{extra}
[[services]]
protocol = "tcp"
port = 80

[[services]]
protocol = "tcp"
port = 443
"""
SSH_ONLY = """\
name: ssh-only
description: Only SSH to the gateway
services:
  - {protocol: tcp, port: 22}
"""
TOPOLOGY = """\
version = 1

[interfaces]
uplink = "up0"

[networks.web]
type = "routed"
cidr = "10.60.0.0/24"
gw_ip = "10.60.0.1"
masq_out = "uplink"
policy_profile = "web-frontend"
"""


def ok(results) -> list:
    failures = [str(result) for result in results if result.failed]
    assert not failures and results, "\n".join(failures) or results.output
    return results


def one(results):
    [result] = ok(results)
    return result


def owned_table(lab, host: str) -> str:
    return lab.run(host, "nft", "list", "table", "inet", "ghostwarden").stdout


@pytest.mark.parametrize("variant", ["as-is", "without-its-vlan"])
def test_the_original_example_with_its_profile_files_applies_from_src(lab, run_play, task, tmp_path: Path,
                                                                      variant: str) -> None:
    host, inet = lab.add_ns("host"), lab.add_ns("inet")
    lab.veth(host, "enp6s0", inet, "eth0")  # the example's uplink, by its name there
    if variant == "as-is":
        unsupported = lab.link_kind_unsupported(host, "enp6s0.20", "link", "enp6s0", "type", "vlan", "id", "20")
        if unsupported:
            pytest.skip(f"the kernel has no 802.1Q ({unsupported}); the without-its-vlan case covers the rest")
        src = EXAMPLES / "ghostnet.toml"  # in place, with examples/policies/ beside it
    else:
        text = (EXAMPLES / "ghostnet.toml").read_text()
        assert text.count("vlan = 20\n") == 1
        site = tmp_path / "site"
        shutil.copytree(EXAMPLES / "policies", site / "policies")
        src = site / "ghostnet.toml"
        src.write_text(text.replace("vlan = 20\n", ""))
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    apply = task("ghostwarden_apply", src=str(src), netns=host, state_dir=str(state_dir), return_content=True)

    first = one(run_play([apply]))
    assert first.changed, first
    beside = src.parent / "policies"
    assert first["warnings"][:2] == [
        f"networks.nat_dev.policy_profile: routed-tight is the built-in profile; the profile file "
        f"{beside / 'routed-tight.toml'} {NOT_READ}",
        f"networks.br_work.policy_profile: l2-lan is the built-in profile; the profile file "
        f"{beside / 'l2-lan.toml'} {NOT_READ}",
    ]
    assert first["topology"]["policies"] == {}  # built-ins are implied
    assert first["ruleset"] == compile_topology(read_topology_input(None, str(src))).ruleset

    second = one(run_play([apply]))
    assert (second.status, second["plan"]) == ("ok", []), second

    links = lab.links(host)
    assert links["gw-nat_dev"].get("ifalias") == "ghostwarden:nat_dev"
    assert links["br-work"].get("ifalias") == "ghostwarden:br_work"
    assert ("enp6s0.20" in links) == (variant == "as-is")
    assert "tcp . 4022 : 10.33.0.10 . 22" in owned_table(lab, host)


def test_profiles_the_collection_lacks_come_from_the_files(site, run_play, task, tmp_path: Path) -> None:
    bundle = tmp_path / "site"
    (bundle / "policies").mkdir(parents=True)
    src = bundle / "ghostnet.toml"
    src.write_text(TOPOLOGY)
    beside = bundle / "policies" / "web-frontend.toml"
    beside.write_text(WEB_FRONTEND.format(extra=""))
    etc = tmp_path / "etc-policies"
    etc.mkdir()
    (etc / "web-frontend.toml").write_text('name = "web-frontend"\ndescription = "never read: beside src wins"\n')
    shared = etc / "ssh-only.yaml"
    shared.write_text(SSH_ONLY)
    common = {"netns": site.host, "state_dir": str(site.state_dir), "policy_dirs": [str(etc)]}
    apply = task("ghostwarden_apply", src=str(src), return_content=True, **common)

    first = one(run_play([apply]))
    assert first.changed, first
    assert first["topology"]["policies"]["web-frontend"]["file"] == str(beside)
    assert first["topology"]["policies"]["web-frontend"]["description"] == "Web frontends - HTTP/HTTPS from anywhere"
    expected = compile_topology(read_topology_input(None, str(src)), profile_dirs=profile_dirs_option([str(etc)], str(src)))
    assert first["ruleset"] == expected.ruleset
    assert "443" in owned_table(site.lab, site.host)

    rendered = one(run_play([task("ghostwarden_apply", src=str(src), state="rendered", **common)]))
    assert rendered["topology"] == first["topology"]
    assert rendered["ruleset"] == first["ruleset"]

    second = one(run_play([apply]))
    assert (second.status, second["plan"]) == ("ok", []), second

    beside.write_text(WEB_FRONTEND.format(extra='\n[[services]]\nprotocol = "tcp"\nport = 8443\n'))
    edited = one(run_play([apply]))
    assert edited.changed and edited.kinds() == ["replace_ruleset"], edited
    assert "8443" in owned_table(site.lab, site.host)

    # ghostwarden_policy starts from the recorded topology: web-frontend is read again from the file
    # beside src it was recorded from (not from policy_dirs), ssh-only comes from policy_dirs.
    policy = task("ghostwarden_policy", name="web", policy_profile="ssh-only", masq_out="uplink", **common)
    changed = one(run_play([policy]))
    assert changed.changed and changed.kinds() == ["replace_ruleset"], changed
    repeat = one(run_play([policy]))
    assert (repeat.status, repeat["plan"]) == ("ok", []), repeat

    gathered = one(run_play([task("ghostwarden_apply", state="gathered", netns=site.host,
                                  state_dir=str(site.state_dir))]))
    policies = gathered["topology"]["policies"]
    files = {name: entry["file"] for name, entry in policies.items()}
    assert files == {"ssh-only": str(shared), "web-frontend": str(beside)}
    assert gathered["topology"]["networks"]["web"]["policy_profile"] == "ssh-only"
    assert gathered["drift"] == []


def test_an_unknown_profile_fails_naming_where_it_looked(site, run_play, task, tmp_path: Path) -> None:
    bundle = tmp_path / "site"
    bundle.mkdir()
    src = bundle / "ghostnet.toml"
    src.write_text(TOPOLOGY)
    etc = tmp_path / "etc-policies"
    [failed] = run_play([task("ghostwarden_apply", src=str(src), netns=site.host, state_dir=str(site.state_dir),
                              policy_dirs=[str(etc)])])
    assert failed.failed
    assert failed["msg"].startswith("networks.web.policy_profile: unknown profile 'web-frontend' (known: ")
    assert failed["msg"].endswith(f"; no web-frontend.toml, web-frontend.yaml, web-frontend.yml in "
                                  f"{bundle / 'policies'}, {etc})")
    assert "Traceback" not in str(failed.result)
    assert site.lab.run(site.host, "nft", "list", "table", "inet", "ghostwarden", check=False).returncode != 0
