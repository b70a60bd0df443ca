# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conflicts seen and said (docs/coexistence.md): foreign tables shaped like firewalld's, ufw's,
Docker's nftables backend, fail2ban's and CrowdSec's, loaded into the lab host namespace with
``nft -f``, are named by ghostwarden_info and warned about by ghostwarden_apply (check mode and
real), and stay byte for byte what they were. Every nft command runs inside the lab namespace.

The services themselves (a running firewalld, NetworkManager, ...) are found from files of the
root namespace, which a module running with ``netns`` does not consult: tests/unit/host/
test_conflicts_facts.py fakes them under a temporary root.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

# firewalld (nftables backend) with a drop policy on its input chain; its zones send up0 to "public".
FIREWALLD = """\
table inet firewalld {
    chain filter_INPUT {
        type filter hook input priority filter + 10; policy drop;
        ct state { established, related } accept
        ct status dnat accept
        iifname "lo" accept
        ct state invalid drop
        jump filter_INPUT_ZONES
        reject with icmpx admin-prohibited
    }

    chain filter_FORWARD {
        type filter hook forward priority filter + 10; policy accept;
        ct state { established, related } accept
        ct status dnat accept
        iifname "lo" accept
        ct state invalid drop
        jump filter_FORWARD_ZONES
        reject with icmpx admin-prohibited
    }

    chain filter_INPUT_ZONES {
        iifname "up0" goto filter_IN_public
        goto filter_IN_public
    }

    chain filter_IN_public {
        tcp dport 22 accept
    }

    chain filter_FORWARD_ZONES {
        iifname "up0" goto filter_FWD_public
        goto filter_FWD_public
    }

    chain filter_FWD_public {
    }
}
"""

# ufw through iptables-nft: default policies drop on INPUT and FORWARD.
UFW = """\
table ip filter {
    chain INPUT {
        type filter hook input priority filter; policy drop;
        jump ufw-before-input
        jump ufw-after-input
    }

    chain FORWARD {
        type filter hook forward priority filter; policy drop;
        jump ufw-before-forward
        jump ufw-after-forward
    }

    chain OUTPUT {
        type filter hook output priority filter; policy accept;
    }

    chain ufw-before-input {
        iifname "lo" accept
        ct state related,established accept
        ct state invalid drop
        udp sport 67 udp dport 68 accept
        jump ufw-not-local
        jump ufw-user-input
    }

    chain ufw-not-local {
        fib daddr type local return
        fib daddr type multicast return
        fib daddr type broadcast return
        drop
    }

    chain ufw-user-input {
        tcp dport 22 accept
    }

    chain ufw-after-input {
    }

    chain ufw-before-forward {
        ct state related,established accept
        jump ufw-user-forward
    }

    chain ufw-user-forward {
    }

    chain ufw-after-forward {
    }
}
"""

# Docker's nftables backend for a new daemon (moby's integration/network/bridge/nftablesdoc).
DOCKER_BRIDGES = """\
table ip docker-bridges {
    map filter-forward-in-jumps {
        type ifname : verdict
        elements = { "docker0" : jump filter-forward-in__docker0 }
    }

    map filter-forward-out-jumps {
        type ifname : verdict
        elements = { "docker0" : jump filter-forward-out__docker0 }
    }

    chain filter-FORWARD {
        type filter hook forward priority filter; policy accept;
        oifname vmap @filter-forward-in-jumps
        iifname vmap @filter-forward-out-jumps
    }

    chain nat-PREROUTING {
        type nat hook prerouting priority dstnat; policy accept;
    }

    chain filter-forward-in__docker0 {
        ct state established,related counter packets 0 bytes 0 accept
        iifname "docker0" counter packets 0 bytes 0 accept comment "ICC"
        counter packets 0 bytes 0 drop comment "UNPUBLISHED PORT DROP"
    }

    chain filter-forward-out__docker0 {
        ct state established,related counter packets 0 bytes 0 accept
        counter packets 0 bytes 0 accept comment "OUTGOING"
    }
}
"""

# fail2ban's nftables action and the CrowdSec firewall bouncer, each with a banned address.
FAIL2BAN = """\
table inet f2b-table {
    set addr-set-sshd {
        type ipv4_addr
        elements = { 192.0.2.66 }
    }

    chain f2b-chain {
        type filter hook input priority filter - 1; policy accept;
        tcp dport 22 ip saddr @addr-set-sshd reject
    }
}
"""
CROWDSEC = """\
table ip crowdsec {
    set crowdsec-blacklists-crowdsec {
        type ipv4_addr
        flags timeout
        elements = { 203.0.113.66 }
    }

    chain crowdsec-chain-input {
        type filter hook input priority filter; policy accept;
        ip saddr @crowdsec-blacklists-crowdsec drop
    }

    chain crowdsec-chain-forward {
        type filter hook forward priority filter; policy accept;
        ip saddr @crowdsec-blacklists-crowdsec drop
    }
}
"""

# Someone's own firewall: forwarding dropped unless accepted.
OWN_FILTER = """\
table inet filter {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
    }
}
"""

NETWORKS = {
    "lan": {"type": "routed", "cidr": "10.40.0.0/24", "gw_ip": "10.40.0.1", "masq_out": "uplink",
            "policy_profile": "routed-tight"},
    "web": {"type": "routed", "cidr": "10.41.0.0/24", "gw_ip": "10.41.0.1", "masq_out": "uplink"},
}
TOPOLOGY = {"version": 1, "interfaces": {"uplink": "up0"}, "management": {"allow_from": ["198.51.100.0/24"]},
            "networks": NETWORKS}
OURS = ("gw-lan", "gw-web")


def texts(warnings: object) -> list[str]:
    """Warnings as text (the callback hands them over as strings or as mappings holding the message)."""
    return [item if isinstance(item, str) else str(item.get("msg") or item.get("message") or item)
            for item in warnings or []]


def conflict_warnings(result) -> dict[str, str]:
    """The conflict warnings of a task by what they are about (the text before the first colon)."""
    subjects = ("firewalld (", "ufw (", "Docker (", "fail2ban (", "the CrowdSec firewall bouncer (", "table ")
    return {text.split(" (", 1)[0].split(":", 1)[0]: text for text in texts(result.get("warnings"))
            if text.startswith(subjects)}


def load(site, *rulesets: str) -> dict[str, str]:
    """Load the foreign rulesets into the lab host; their listings with handles, to compare later."""
    lab, host = site.lab, site.host
    for text in rulesets:
        lab.run(host, "nft", "-f", "-", input=text.replace("    ", "\t"))
    return foreign_listings(site)


def foreign_listings(site) -> dict[str, str]:
    lab, host = site.lab, site.host
    tables = [line.split()[1:] for line in lab.run(host, "nft", "list", "tables").stdout.splitlines()]
    return {" ".join(table): lab.run(host, "nft", "-a", "list", "table", *table).stdout
            for table in tables if table != ["inet", "ghostwarden"]}


def test_firewalld_and_ufw_tables_are_named_and_left_alone(site, task, run_play) -> None:
    before = load(site, FIREWALLD, UFW)
    common = {"netns": site.host, "state_dir": str(site.state_dir)}
    apply = task("ghostwarden_apply", topology=TOPOLOGY, **common)

    first_info, check = run_play([task("ghostwarden_info", **common), apply], check=True)
    # Before any apply there is no topology to judge by: every drop at input and forward counts.
    assert [(item["kind"], item["networks"]) for item in first_info["conflicts"]] == [("firewalld", []), ("ufw", [])]
    assert "the topology's networks" in first_info["conflicts"][0]["effect"]
    assert check.changed, check
    checked = conflict_warnings(check)
    assert sorted(checked) == ["firewalld", "ufw"], texts(check.get("warnings"))
    assert checked["firewalld"] == (
        "firewalld (table inet firewalld): chain filter_FORWARD of table inet firewalld (hook forward, priority 10; "
        "1 rule that may drop or reject) drops traffic routed into and out of networks lan, web that none of its "
        "rules accepts first; chain filter_INPUT of table inet firewalld (hook input, priority 10; 1 rule that may "
        "drop or reject) drops traffic from networks lan, web to this host (DHCP, DNS and what the profiles accept) "
        "that none of its rules accepts first. Put the networks' interfaces into a zone that accepts their traffic: firewall-cmd --permanent "
        "--zone=trusted --add-interface=gw-lan (for each of gw-lan, gw-web), then firewall-cmd --reload (traffic "
        "into them from other zones, apart from replies and port forwards, also needs a firewalld policy); or stop "
        "and disable firewalld (docs/coexistence.md)")
    assert checked["ufw"].startswith(
        "ufw (table ip filter): chain FORWARD of table ip filter (hook forward, priority 0; policy drop) drops IPv4 "
        "traffic routed into and out of networks lan, web that none of its rules accepts first; chain INPUT of table "
        "ip filter (hook input, priority 0; policy drop, 1 rule that may drop or reject, also in ufw-not-local) drops "
        "IPv4 traffic from networks lan, web to this host"), checked["ufw"]
    assert "ufw route allow in on gw-lan" in checked["ufw"]
    assert foreign_listings(site) == before
    assert site.lab.run(site.host, "ip", "link", "show", "gw-lan", check=False).returncode != 0  # check mode

    applied, info = run_play([apply, task("ghostwarden_info", **common)])
    assert applied.changed, applied
    assert conflict_warnings(applied) == checked
    conflicts = {item["kind"]: item for item in info["conflicts"]}
    assert sorted(conflicts) == ["firewalld", "ufw"]
    assert conflicts["ufw"]["chains"] == ["ip filter FORWARD", "ip filter INPUT"]
    assert conflicts["ufw"]["networks"] == ["lan", "web"]
    assert conflicts["firewalld"]["subject"] == "firewalld (table inet firewalld)"
    assert f"{conflicts['firewalld']['subject']}: {conflicts['firewalld']['effect']}. " \
           f"{conflicts['firewalld']['advice']}" == checked["firewalld"]
    assert foreign_listings(site) == before


def test_docker_fail2ban_crowdsec_and_an_own_table(site, task, run_play) -> None:
    before = load(site, DOCKER_BRIDGES, FAIL2BAN, CROWDSEC, OWN_FILTER)
    common = {"netns": site.host, "state_dir": str(site.state_dir)}
    apply = task("ghostwarden_apply", topology=TOPOLOGY, **common)

    (check,) = run_play([apply], check=True)
    checked = conflict_warnings(check)
    assert sorted(checked) == ["Docker", "fail2ban", "table inet filter", "the CrowdSec firewall bouncer"], checked
    # Docker's table drops only what goes to docker0: it is said, but no chain of it is named.
    assert checked["Docker"].startswith(
        "Docker (table ip docker-bridges): none of its chains drops the networks' traffic at the input and forward "
        "hooks now, but Docker rewrites its chains whenever it starts")
    assert "--bridge-accept-fwmark" in checked["Docker"] and "DOCKER-USER -i" not in checked["Docker"]
    assert checked["fail2ban"].startswith(
        "fail2ban (table inet f2b-table): chain f2b-chain of table inet f2b-table (hook input, priority -1; 1 rule "
        "that may drop or reject) may drop traffic from networks lan, web to this host")
    assert "10.40.0.0/24 10.41.0.0/24 to ignoreip" in checked["fail2ban"]
    assert checked["the CrowdSec firewall bouncer"].startswith(
        "the CrowdSec firewall bouncer (table ip crowdsec): chain crowdsec-chain-forward of table ip crowdsec (hook "
        "forward, priority 0; 1 rule that may drop or reject) may drop IPv4 traffic routed into and out of networks "
        "lan, web; chain crowdsec-chain-input of table ip crowdsec (hook input, priority 0; 1 rule that may drop or "
        "reject) may drop IPv4 traffic from networks lan, web to this host")
    assert checked["table inet filter"] == (
        "table inet filter: chain forward (hook forward, priority 0; policy drop) drops traffic routed into and out "
        "of networks lan, web that none of its rules accepts first. If that table should let them pass, add iifname "
        '{ "gw-lan", "gw-web" } accept and oifname { "gw-lan", "gw-web" } accept first in chain forward (nft insert '
        "rule inet filter <chain> ...); or remove the table if nothing needs it (docs/coexistence.md)")
    assert foreign_listings(site) == before

    (applied,) = run_play([apply])
    assert applied.changed, applied
    assert conflict_warnings(applied) == checked
    assert foreign_listings(site) == before

    # The advice, followed: the own table's warning goes, the others stay.
    names = "{ " + ", ".join(f'"{name}"' for name in OURS) + " }"
    for direction in ("oifname", "iifname"):
        site.lab.run(site.host, "nft", f"insert rule inet filter forward {direction} {names} accept")
    (info,) = run_play([task("ghostwarden_info", **common)])
    assert [item["kind"] for item in info["conflicts"]] == ["docker", "fail2ban", "crowdsec"]
