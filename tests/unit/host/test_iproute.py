# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operations as iproute2 batch lines and sh, without a kernel: exact lines, quoting, refusals."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._iproute import (
    KernelScript,
    KernelStep,
    batch_word,
    heredoc,
    render_batches,
    render_shell,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import Operation

ZERO = "00:00:00:00:00:00"


def lines(*operations: Operation) -> list[tuple[str, tuple[str, ...]]]:
    return [(step.tool, step.lines) for step in render_batches(operations).steps]


@pytest.mark.parametrize("operation, expected", [
    (Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1", "was": "0"}),
     ("sysctl", ("net.ipv4.ip_forward=1",))),
    (Operation("create_link", "link:br0", {"type": "bridge", "ifalias": "ghostwarden:lan", "state": "up", "stp": False,
                                           "vlan_filtering": False}),
     ("ip", ("link add name br0 type bridge", "link set dev br0 alias ghostwarden:lan up"))),
    (Operation("create_link", "link:br0", {"type": "bridge", "ifalias": "ghostwarden:lan", "state": "up", "stp": True,
                                           "vlan_filtering": True, "mtu": 9000}),
     ("ip", ("link add name br0 type bridge stp_state 1 vlan_filtering 1",
             "link set dev br0 mtu 9000 alias ghostwarden:lan up"))),
    (Operation("create_link", "link:vx0", {"type": "vxlan", "ifalias": "ghostwarden:ov", "state": "up", "vni": 1200,
                                           "dstport": 4789, "learning": False, "local": "10.0.0.1", "dev": "eth0",
                                           "master": "br-ov", "mtu": 1450}),
     ("ip", ("link add name vx0 type vxlan id 1200 dstport 4789 local 10.0.0.1 dev eth0 nolearning",
             "link set dev vx0 mtu 1450 alias ghostwarden:ov master br-ov up"))),
    (Operation("create_link", "link:eth0.20", {"type": "vlan", "ifalias": "ghostwarden:v", "state": "down",
                                               "parent": "eth0", "vlan_id": 20}),
     ("ip", ("link add link eth0 name eth0.20 type vlan id 20", "link set dev eth0.20 alias ghostwarden:v down"))),
    (Operation("modify_link", "link:br0", {"mtu": 1400, "state": "up"}), ("ip", ("link set dev br0 mtu 1400 up",))),
    (Operation("modify_link", "link:br0", {"master": None}), ("ip", ("link set dev br0 nomaster",))),
    (Operation("modify_link", "link:br0", {"stp": False, "ifalias": "ghostwarden:x"}),
     ("ip", ("link set dev br0 alias ghostwarden:x type bridge stp_state 0",))),
    (Operation("modify_link", "link:vx0", {"learning": True}), ("ip", ("link set dev vx0 type vxlan learning",))),
    (Operation("delete_link", "link:br0", {"type": "bridge", "reason": "not in the topology"}),
     ("ip", ("link del dev br0",))),
    (Operation("set_master", "port:eth1", {"master": "br0"}), ("ip", ("link set dev eth1 master br0",))),
    (Operation("release_master", "port:eth1", {"master": "br0"}), ("ip", ("link set dev eth1 nomaster",))),
    (Operation("add_address", "address:br0:10.0.0.1/24", {"iface": "br0", "address": "10.0.0.1/24"}),
     ("ip", ("address add 10.0.0.1/24 brd + dev br0",))),
    (Operation("add_address", "address:br0:10.0.0.0/31", {"iface": "br0", "address": "10.0.0.0/31"}),
     ("ip", ("address add 10.0.0.0/31 dev br0",))),
    (Operation("add_address", "address:br0:2001:db8::1/64", {"iface": "br0", "address": "2001:db8::1/64"}),
     ("ip", ("address add 2001:db8::1/64 dev br0",))),
    (Operation("remove_address", "address:br0:10.0.0.1/24", {"iface": "br0", "address": "10.0.0.1/24"}),
     ("ip", ("address del 10.0.0.1/24 dev br0",))),
    (Operation("add_fdb", "fdb:vx0:192.0.2.11", {"iface": "vx0", "mac": ZERO, "dst": "192.0.2.11"}),
     ("bridge", ("fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.11 self permanent",))),
    (Operation("remove_fdb", "fdb:vx0:2001:db8::b", {"iface": "vx0", "mac": ZERO, "dst": "2001:db8::b"}),
     ("bridge", ("fdb del 00:00:00:00:00:00 dev vx0 dst 2001:db8::b self",))),
    (Operation("add_bridge_vlan", "bridge_vlan:br0:1", {"bridge": "br0", "port": "br0", "self": True, "pvid": True,
                                                        "untagged": True, "vid_first": 1, "vid_last": 1}),
     ("bridge", ("vlan add vid 1 dev br0 pvid untagged self",))),
    (Operation("add_bridge_vlan", "bridge_vlan:eth1:10-20", {"bridge": "br0", "port": "eth1", "self": False,
                                                             "pvid": False, "untagged": False, "vid_first": 10,
                                                             "vid_last": 20}),
     ("bridge", ("vlan add vid 10-20 dev eth1",))),
    (Operation("remove_bridge_vlan", "bridge_vlan:br0:30", {"port": "br0", "self": True, "vid_first": 30,
                                                            "vid_last": 30}),
     ("bridge", ("vlan del vid 30 dev br0 self",))),
], ids=lambda value: value.kind if isinstance(value, Operation) else "")
def test_each_kernel_operation_kind(operation: Operation, expected: tuple) -> None:
    assert lines(operation) == [expected]


def test_consecutive_operations_of_one_tool_share_a_step_and_the_order_is_kept() -> None:
    script = render_batches([
        Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1"}),
        Operation("remove_fdb", "fdb:vx0:192.0.2.12", {"iface": "vx0", "mac": ZERO, "dst": "192.0.2.12"}),
        Operation("delete_link", "link:br1", {"type": "bridge"}),
        Operation("set_master", "port:eth1", {"master": "br0"}),
        Operation("add_fdb", "fdb:vx0:192.0.2.11", {"iface": "vx0", "mac": ZERO, "dst": "192.0.2.11"}),
    ])
    assert script == KernelScript((
        KernelStep("sysctl", ("net.ipv4.ip_forward=1",)),
        KernelStep("bridge", ("fdb del 00:00:00:00:00:00 dev vx0 dst 192.0.2.12 self",)),
        KernelStep("ip", ("link del dev br1", "link set dev eth1 master br0")),
        KernelStep("bridge", ("fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.11 self permanent",)),
    ))
    assert script.ip_lines == ("link del dev br1", "link set dev eth1 master br0")
    assert script.bridge_lines == ("fdb del 00:00:00:00:00:00 dev vx0 dst 192.0.2.12 self",
                                   "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.11 self permanent")
    assert script.sysctls == (("net.ipv4.ip_forward", "1"),)
    assert not render_batches([])


@pytest.mark.parametrize("operation, message", [
    (Operation("replace_ruleset", "ruleset:inet ghostwarden", {"content": "table inet ghostwarden {}\n"}),
     "replace_ruleset is not a kernel operation (the ruleset and dnsmasq files are replayed apart)"),
    (Operation("write_file", "file:/x.conf", {"path": "/x.conf", "content": ""}),
     "write_file is not a kernel operation (the ruleset and dnsmasq files are replayed apart)"),
    (Operation("create_link", "link:x0", {"type": "veth"}), "cannot create a link of type 'veth'"),
    (Operation("create_link", "link:x0", {"type": "bridge", "colour": "red"}), "unknown link attributes colour"),
    (Operation("create_link", "link:x0 ; reboot", {"type": "bridge"}),
     "target 'link:x0 ; reboot' does not name an interface (link:<name>)"),
    (Operation("create_link", "link:averyveryverylongname", {"type": "bridge"}),
     "target 'link:averyveryverylongname' does not name an interface (link:<name>)"),
    (Operation("modify_link", "link:vx0", {"vni": 5}), "vni cannot be changed in place (the link is recreated)"),
    (Operation("modify_link", "link:x0", {"stp": True, "learning": True}),
     "attributes of several link types (bridge, vxlan) in one change"),
    (Operation("modify_link", "link:x0", {"mtu": "1500"}), "detail mtu is '1500', not an integer"),
    (Operation("modify_link", "link:x0", {"state": "sideways"}), "detail state is 'sideways', not up or down"),
    (Operation("set_master", "port:eth1", {"master": "br0\nlink del dev eth0"}),
     "detail master: 'br0\\nlink del dev eth0' is not an interface name"),
    (Operation("add_address", "address:br0:x", {"iface": "br0", "address": "10.0.0.1/33"}),
     "detail address: '10.0.0.1/33' is not an address with prefix"),
    (Operation("add_fdb", "fdb:vx0:x", {"iface": "vx0", "mac": "zz", "dst": "192.0.2.1"}),
     "detail mac: 'zz' is not a MAC address"),
    (Operation("add_fdb", "fdb:vx0:x", {"iface": "vx0", "mac": ZERO, "dst": "peer"}),
     "detail dst: 'peer' is not an IP address"),
    (Operation("add_bridge_vlan", "bridge_vlan:br0:0", {"port": "br0", "self": True, "pvid": False,
                                                        "untagged": False, "vid_first": 0, "vid_last": 4095}),
     "VLAN range 0-4095 is not within 1-4094"),
    (Operation("set_sysctl", "sysctl:kernel.panic", {"key": "kernel.panic", "value": "1"}),
     "sysctl key 'kernel.panic' is not a net.* key in sysctl(8) notation"),
    (Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1\n0"}),
     "sysctl value '1\\n0' is not a one-line value without '='"),
], ids=lambda value: value.kind if isinstance(value, Operation) else "")
def test_what_cannot_be_written_safely_is_refused_naming_the_operation(operation: Operation, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_batches([operation])
    assert str(caught.value) == f"{operation}: {message}"


def test_batch_words_are_quoted_for_the_batch_reader() -> None:
    assert batch_word("ghostwarden:lan-1") == "ghostwarden:lan-1"
    assert batch_word("two words") == '"two words"'
    assert batch_word("#comment") == '"#comment"'
    assert batch_word('say "hi"') == "'say \"hi\"'"
    for bad in ("", "a\nb", "it's \"x\""):
        with pytest.raises(RenderError):
            batch_word(bad)
    # The alias reaches the batch line quoted, as one word.
    operation = Operation("modify_link", "link:br0", {"ifalias": "ghostwarden:my lan"})
    assert lines(operation) == [("ip", ('link set dev br0 alias "ghostwarden:my lan"',))]


def test_heredoc_refuses_content_it_cannot_carry() -> None:
    assert heredoc("cat", "a\nb\n", "END", "|| exit 1") == ["cat <<'END' || exit 1", "a", "b", "END"]
    with pytest.raises(RenderError, match="must end with a newline"):
        heredoc("cat", "a")
    with pytest.raises(RenderError, match="the end marker"):
        heredoc("cat", "a\nEND\n", "END")


SCRIPT = render_batches([
    Operation("set_sysctl", "sysctl:net.ipv4.ip_forward", {"key": "net.ipv4.ip_forward", "value": "1"}),
    Operation("create_link", "link:br0", {"type": "bridge", "ifalias": "ghostwarden:lan", "state": "up"}),
    Operation("add_fdb", "fdb:vx0:192.0.2.11", {"iface": "vx0", "mac": ZERO, "dst": "192.0.2.11"}),
])


def test_render_shell_in_a_namespace_with_force() -> None:
    assert render_shell(SCRIPT, netns="lab-1", nft_file="/var/lib/gw x/persist/ghostwarden.nft", force=True) == (
        "#!/bin/sh\n"
        "# Generated by ghostwarden.core: replays planned kernel operations with iproute2 and nft.\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH\n"
        "status=0\n"
        "ip netns exec lab-1 nft -f '/var/lib/gw x/persist/ghostwarden.nft' || status=1\n"
        "ip netns exec lab-1 sh -c 'printf \"%s\\n\" \"$1\" > \"$2\"' sh 1 /proc/sys/net/ipv4/ip_forward || status=1\n"
        "ip -n lab-1 -force -batch - <<'GHOSTWARDEN_IP' || status=1\n"
        "link add name br0 type bridge\n"
        "link set dev br0 alias ghostwarden:lan up\n"
        "GHOSTWARDEN_IP\n"
        "bridge -n lab-1 -force -batch - <<'GHOSTWARDEN_BRIDGE' || status=1\n"
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.11 self permanent\n"
        "GHOSTWARDEN_BRIDGE\n"
        'exit "$status"\n'
    )


def test_render_shell_on_the_host_stops_at_the_first_failure() -> None:
    text = render_shell(SCRIPT, netns=None)
    assert text.splitlines()[4:7] == [
        "printf '%s\\n' 1 > /proc/sys/net/ipv4/ip_forward || exit 1",
        "ip -batch - <<'GHOSTWARDEN_IP' || exit 1",
        "link add name br0 type bridge",
    ]
    assert "nft -f" not in text
    # Valid sh (parsed, not run).
    assert subprocess.run(["sh", "-n", "-c", text], check=False).returncode == 0
