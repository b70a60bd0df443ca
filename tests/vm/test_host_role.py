# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host role on a bare Debian guest: its install path, for real, from an apt repository.

The guest's only apt source is the lab's repository (the .deb files the image build downloaded,
served from the lab namespace); its package lists start empty, as on a fresh cloud image. The test
removes what the collection needs (nftables, dnsmasq-base, netbase, python3-pyroute2), then runs
the role: it must refresh the lists, install them from the repository, apply in a confirm window
over SSH and enable the boot unit; a second run changes nothing.
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.ghostwarden.core.tests.vm.conftest import ping

pytestmark = pytest.mark.vm

REMOVED = ("nftables", "dnsmasq-base", "netbase", "python3-pyroute2")


def topology() -> dict:
    return {"version": 1, "networks": {
        "nat_dev": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1", "dhcp": True,
                    "dns": {"enabled": True, "zones": ["dev.lan"]}, "policy_profile": "routed-tight"},
    }}


def role_play() -> list[dict]:
    return [{"name": "host role", "ansible.builtin.include_role": {"name": "ghostwarden.core.host"},
             "vars": {"ghostwarden_topology": topology()}}]


def test_the_host_role_installs_what_a_bare_host_lacks(guests, plays) -> None:
    vm1 = guests["vm1"]
    vm1.ssh(f"DEBIAN_FRONTEND=noninteractive apt-get purge -y -q {' '.join(REMOVED)} >/dev/null")
    assert vm1.ssh("command -v nft dnsmasq", check=False).stdout == ""
    assert vm1.ssh("python3 -c 'import pyroute2'", check=False).returncode != 0
    assert vm1.ssh("test -e /etc/protocols", check=False).returncode != 0
    assert vm1.ssh("ls /var/lib/apt/lists | grep -c _Packages || true").stdout.strip() == "0"
    requests_before = (guests.workdir / "repo.log").read_text()

    first = plays(role_play(), hosts="vm1")
    assert first.rc == 0, first.output
    changed = [result.name for result in first if result.changed]
    assert "Install the missing tools" in changed and "Install the missing Python libraries from the distribution" \
        in changed, changed
    assert "Apply the topology" in changed and "Enable the boot restore unit" in changed, changed
    applied = next(result for result in first if result.name == "Apply the topology")
    assert applied["confirmed"] is True, applied

    # Installed from the lab's repository by apt, not found lying around.
    status = vm1.ssh(f"dpkg-query -W -f '${{Package}} ${{db:Status-Status}}\\n' {' '.join(REMOVED)}").stdout
    assert sorted(status.split("\n")[:-1]) == sorted(f"{package} installed" for package in REMOVED), status
    fetched = (guests.workdir / "repo.log").read_text()[len(requests_before):]
    assert re.search(r'"GET /(\./)?Packages HTTP/1\.1" 200', fetched), fetched
    for package in REMOVED:
        assert re.search(rf'"GET /(\./)?{re.escape(package)}_[^ ]+\.deb HTTP/1\.1" 200', fetched), (package, fetched)

    # The host works: the table is loaded, dnsmasq serves the network, the unit is enabled.
    assert "table inet ghostwarden" in vm1.ssh("nft list tables").stdout
    assert "nat_dev.conf" in vm1.ssh("pgrep -a dnsmasq").stdout
    assert vm1.ssh("systemctl is-enabled ghostwarden-restore.service").stdout.strip() == "enabled"
    assert ping(guests, "vm1", "10.33.0.1", count=1)

    second = plays(role_play(), hosts="vm1")
    assert second.rc == 0, second.output
    assert [result.name for result in second if result.changed] == [], second.output
    skipped = {result.name for result in second if result.status == "skipped"}
    assert {"Install the missing tools", "Install the missing Python libraries from the distribution"} <= skipped
