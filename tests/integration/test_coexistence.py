# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Foreign objects shaped like Docker's survive ``present`` and ``absent`` byte for byte, and
``absent`` removes every owned object: links, the table, dnsmasq, its files."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root

# What Docker installs through iptables-nft, without counters (which traffic would change) and
# without a drop policy. nft lists it with tabs; written with spaces here, as pep8 wants.
DOCKER_RULESET = """\
table ip nat {
    chain DOCKER {
        iifname "docker0" return
    }

    chain PREROUTING {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local jump DOCKER
    }

    chain OUTPUT {
        type nat hook output priority -100; policy accept;
        ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER
    }

    chain POSTROUTING {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
    }
}
table ip filter {
    chain DOCKER {
    }

    chain DOCKER-USER {
        return
    }

    chain FORWARD {
        type filter hook forward priority filter; policy accept;
        jump DOCKER-USER
        oifname "docker0" ct state related,established accept
        oifname "docker0" jump DOCKER
        iifname "docker0" oifname != "docker0" accept
        iifname "docker0" oifname "docker0" accept
    }
}
""".replace("    ", "\t")


def foreign_state(lab, ns: str) -> dict:
    """The foreign objects as the kernel lists them: Docker's tables with rule handles, docker0
    and the uplink with their addresses, and the routes through them."""
    def listing(*argv: str) -> str:
        return lab.run(ns, *argv).stdout

    links = {link["ifname"]: link for link in lab.kernel_state(ns)["links"]}  # without timers
    routes = json.loads(listing("ip", "-j", "route", "show", "table", "all"))
    return {
        "nat": listing("nft", "-a", "list", "table", "ip", "nat"),
        "filter": listing("nft", "-a", "list", "table", "ip", "filter"),
        "links": [links["docker0"], links["up0"]],
        "addresses": [listing("ip", "-j", "addr", "show", "dev", name) for name in ("docker0", "up0")],
        "routes": [route for route in routes if route.get("dev") in ("docker0", "up0")],
    }


def test_docker_objects_survive_present_and_absent(site, nat_dev, task, run_play) -> None:
    lab, host = site.lab, site.host
    lab.run(host, "nft", "-f", "-", input=DOCKER_RULESET)
    lab.run(host, "ip", "link", "add", "docker0", "type", "bridge")
    lab.addr(host, "docker0", "172.17.0.1/16")
    lab.run(host, "ip", "link", "set", "docker0", "up")
    lab.add_client(host, "dev1p", "dev1", "10.33.0.10/24", "10.33.0.1")
    foreign = foreign_state(lab, host)
    assert lab.run(host, "nft", "list", "table", "ip", "nat").stdout == DOCKER_RULESET.split("table ip filter", maxsplit=1)[0]

    common = {"netns": host, "state_dir": str(site.state_dir)}
    topology = {"version": 1, "interfaces": {"uplink": "up0"}, "networks": {"nat_dev": nat_dev}}
    (present,) = run_play([task("ghostwarden_apply", topology=topology, **common)])
    assert present.changed, present
    assert foreign_state(lab, host) == foreign
    assert lab.pids(host, "dnsmasq")
    # docker0 is not a port of anything the collection made.
    assert "master" not in lab.links(host)["docker0"]

    (absent,) = run_play([task("ghostwarden_apply", state="absent", **common)])
    assert absent.changed, absent
    assert {"delete_link", "delete_ruleset", "remove_file"} <= set(absent.kinds())
    assert foreign_state(lab, host) == foreign
    links = lab.links(host)
    assert [name for name, link in links.items() if link.get("ifalias", "").startswith("ghostwarden:")] == []
    assert sorted(links) == ["dev1p", "docker0", "lo", "up0"]
    assert lab.run(host, "nft", "list", "tables").stdout.splitlines() == ["table ip nat", "table ip filter"]
    assert lab.pids(host, "dnsmasq") == []
    # Config, pid and start record go; the lease file stays (docs/plan.md 4.1), so that clients
    # keep their addresses when the network comes back.
    assert sorted(path.name for path in (site.state_dir / "dnsmasq").iterdir()) == ["nat_dev.leases"]

    (again,) = run_play([task("ghostwarden_apply", state="absent", **common)])
    assert not again.changed and again["plan"] == [], again
