# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The original Ghostwarden example (examples/ghostnet.toml, via ``src``) applied to a lab
namespace by a playbook twice: changed, then ok.

The lab variant maps ``interfaces.uplink`` to the lab's uplink and leaves out the ``vlan = 20``
line of ``br_work`` (which then stays a plain bridge): this machine's kernel may have no 802.1Q.
The file as-is, VLAN included, is applied on a Debian guest of the VM lab
(tests/vm/test_vlan.py::test_the_original_example_applies_as_is).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ghostnet.toml"
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "apply_example.yml"


def test_the_example_without_its_vlan_applies_changed_then_ok(site, run_play, tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert text.count('uplink = "enp6s0"') == 1
    text = text.replace('uplink = "enp6s0"', 'uplink = "up0"')
    assert text.count("vlan = 20\n") == 1
    text = text.replace("vlan = 20\n", "")
    topology_file = tmp_path / "ghostnet-lab.toml"
    topology_file.write_text(text)
    extra_vars = {"topology_file": str(topology_file), "lab_netns": site.host, "state_dir": str(site.state_dir)}

    first = run_play.run_playbook(PLAYBOOK, extra_vars=extra_vars)
    assert (first.rc, first.stats.get("ok"), first.stats.get("changed")) == (0, 1, 1), \
        "\n".join(map(str, first)) or first.output
    second = run_play.run_playbook(PLAYBOOK, extra_vars=extra_vars)
    assert (second.rc, second.stats.get("ok"), second.stats.get("changed")) == (0, 1, 0), \
        "\n".join(map(str, second)) or second.output

    links = site.lab.links(site.host)
    assert links["gw-nat_dev"].get("ifalias") == "ghostwarden:nat_dev"
    assert links["br-work"].get("ifalias") == "ghostwarden:br_work"
    assert "up0.20" not in links
    assert site.lab.run(site.host, "ip", "-br", "-4", "addr", "show", "dev", "gw-nat_dev").stdout.split()[2:] == \
        ["10.33.0.1/24"]
    table = site.lab.run(site.host, "nft", "list", "table", "inet", "ghostwarden").stdout
    assert "tcp . 4022 : 10.33.0.10 . 22" in table
    assert len(site.lab.pids(site.host, "dnsmasq")) == 1
