# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs of kernel operations as one ``ip -batch``/``bridge -batch``: the lines, and which operation a
failing line belongs to (recorded runner); the same against a real kernel in a lab namespace."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import Operation
from ansible_collections.ghostwarden.core.plugins.module_utils.host._batch import BatchFailed, KernelBatch, batch_tool
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.tests.support.netns import requires_tools, throwaway_netns
from ansible_collections.ghostwarden.core.tests.support.recorder import StdinRecorder


def bridge(name: str) -> Operation:
    return Operation("create_link", f"link:{name}", {"type": "bridge", "ifalias": f"ghostwarden:{name}",
                                                     "state": "up"})


def address(iface: str, cidr: str) -> Operation:
    return Operation("add_address", f"address:{iface}:{cidr}", {"iface": iface, "address": cidr})


def test_one_run_is_one_batch_of_every_line_in_order() -> None:
    recorder = StdinRecorder(CommandResult(0, "", ""))
    KernelBatch(CommandRunner(recorder, netns="lab")).execute([bridge("gw-a"), address("gw-a", "10.1.0.1/24")])
    ((argv, stdin),) = recorder.calls
    assert argv == ["ip", "netns", "exec", "lab", "ip", "-batch", "-"]
    lines = stdin.splitlines()
    assert lines[0].startswith("link add name gw-a type bridge") and lines[1].startswith("link set dev gw-a ")
    assert lines[2] == "address add 10.1.0.1/24 brd + dev gw-a", lines


def test_the_failing_line_names_its_operation_and_what_was_done() -> None:
    # bridge("gw-a") is two lines: line 3 is the first of gw-b's.
    stderr = "RTNETLINK answers: File exists\nCommand failed -:3\n"
    recorder = StdinRecorder(CommandResult(1, "", stderr))
    operations = [bridge("gw-a"), bridge("gw-b"), address("gw-b", "10.2.0.1/24")]
    with pytest.raises(BatchFailed) as raised:
        KernelBatch(CommandRunner(recorder)).execute(operations)
    assert (raised.value.step, raised.value.cause, raised.value.done) == (
        str(operations[1]), "RTNETLINK answers: File exists", 1)


def test_a_failure_without_a_line_number_counts_nothing_as_done() -> None:
    recorder = StdinRecorder(CommandResult(255, "", "Object \"lnk\" is unknown, try \"ip help\".\n"))
    with pytest.raises(BatchFailed) as raised:
        KernelBatch(CommandRunner(recorder)).execute([bridge("gw-a")])
    assert raised.value.done == 0 and raised.value.cause.startswith("ip -batch: Object \"lnk\" is unknown")


def test_tools_by_kind() -> None:
    assert batch_tool(bridge("gw-a")) == "ip"
    assert batch_tool(Operation("add_fdb", "fdb:vx1:00:00:00:00:00:00:192.0.2.1",
                                {"iface": "vx1", "mac": "00:00:00:00:00:00", "dst": "192.0.2.1"})) == "bridge"
    assert batch_tool(Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward",
                                                                             "value": "1"})) is None


@pytest.mark.root
@requires_tools("ip")
def test_a_real_kernel_stops_at_the_failing_line() -> None:
    with throwaway_netns() as namespace:
        batch = KernelBatch(CommandRunner(netns=str(namespace)))
        batch.execute([bridge("gw-a"), address("gw-a", "10.1.0.1/24")])
        with pytest.raises(BatchFailed) as raised:
            batch.execute([bridge("gw-b"), bridge("gw-a"), bridge("gw-c")])
        assert (raised.value.step, raised.value.done) == (str(bridge("gw-a")), 1)
        assert "File exists" in raised.value.cause
        links = {link["ifname"]: link for link in json.loads(namespace.run("ip", "-j", "link", "show").stdout)}
        assert {"gw-a", "gw-b"} <= set(links) and "gw-c" not in links
        assert links["gw-b"].get("ifalias") == "ghostwarden:gw-b"
        addresses = json.loads(namespace.run("ip", "-j", "addr", "show", "dev", "gw-a").stdout)[0]["addr_info"]
        assert "10.1.0.1" in [item["local"] for item in addresses]
