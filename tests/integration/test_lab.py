# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's own instruments, checked where the collection is not involved: the frame capture
that tests/vm/test_vlan.py relies on sees 802.1Q tags (this runs on kernels without VLAN devices
too), and the TCP helpers tell a drop from a refusal."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def test_frame_capture_reports_the_vlan_tag(lab) -> None:
    sender, receiver = lab.add_ns("sender"), lab.add_ns("receiver")
    lab.veth(sender, "eth0", receiver, "eth0")
    capture = lab.capture_frames(receiver, "eth0", 1.5)
    lab.send_frame(sender, "eth0", 0x88B5, b"tagged", vlan=20)
    lab.send_frame(sender, "eth0", 0x88B5, b"untagged")
    probes = [(frame.vlan, frame.payload.rstrip(b"\0")) for frame in capture.frames() if frame.ethertype == 0x88B5]
    assert probes == [(20, b"tagged"), (None, b"untagged")]


def test_connect_tells_a_drop_from_a_refusal(lab) -> None:
    server, client = lab.add_ns("server"), lab.add_ns("client")
    lab.veth(server, "eth0", client, "eth0")
    lab.addr(server, "eth0", "192.0.2.1/24")
    lab.addr(client, "eth0", "192.0.2.2/24")
    lab.serve_tcp(server, "SERVER", 7000)
    lab.run(server, "nft", "-f", "-",
            input="table inet lab {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 7001 drop\n }\n}\n")
    assert lab.connect_tcp(client, "192.0.2.1", 7000) == "SERVER 192.0.2.2"
    assert lab.connect_tcp(client, "192.0.2.1", 7001, timeout=0.5) == "failed: TimeoutError"
    assert lab.connect_tcp(client, "192.0.2.1", 7002) == "failed: ConnectionRefusedError"
