# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The netns connection plugin with a fake ``subprocess.Popen``, a fake /run/netns and a fake uid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.playbook.play_context import PlayContext

from ansible_collections.ghostwarden.core.plugins.connection import netns as netns_plugin

IP = "/usr/sbin/ip"
PLUGIN_NAME = "ghostwarden.core.netns"
# What the plugin loader does on loading the plugin: make its documented options known to the configuration.
C.config.initialize_plugin_configuration_definitions("connection", PLUGIN_NAME,
                                                     yaml.safe_load(netns_plugin.DOCUMENTATION)["options"])


class FakePopen:
    """Records the argv and stdin of each command; answers rc 3, b"out", b"err"."""

    calls: list[tuple[list[str], bytes | None]] = []
    last_kwargs: dict[str, object] = {}

    def __init__(self, argv: list[str], **kwargs: object) -> None:
        self.argv = argv
        FakePopen.last_kwargs = kwargs
        self.returncode = 3

    def communicate(self, in_data: bytes | None = None) -> tuple[bytes, bytes]:
        FakePopen.calls.append((self.argv, in_data))
        return b"out", b"err"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake /run/netns holding namespace ``r1``, with the controller as root and ``ip`` at /usr/sbin/ip."""
    directory = tmp_path / "netns"
    directory.mkdir()
    (directory / "r1").touch()
    monkeypatch.setattr(netns_plugin, "NETNS_RUN_DIR", str(directory))
    monkeypatch.setattr(netns_plugin, "_find_ip", lambda: IP)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns_plugin.subprocess, "Popen", FakePopen)
    FakePopen.calls = []
    return directory


def connection(**options: object) -> netns_plugin.Connection:
    plugin = netns_plugin.Connection(PlayContext())
    plugin._load_name = PLUGIN_NAME  # pylint: disable=protected-access  # the loader's job
    plugin.set_options(direct={"remote_addr": "inventory-name", **options})
    return plugin


def test_a_command_runs_through_ip_netns_exec_with_its_stdin(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.7 50000 192.0.2.1 22")
    monkeypatch.setenv("GW_UNIT_MARKER", "kept")
    plugin = connection(netns_name="r1")

    answer = plugin.exec_command("echo 'a b' | cat", in_data=b"module source")

    assert answer == (3, b"out", b"err")
    assert FakePopen.calls == [([IP, "netns", "exec", "r1", "/bin/sh", "-c", "echo 'a b' | cat"], b"module source")]
    # the operator's SSH session to the controller does not reach the namespace
    assert FakePopen.last_kwargs["env"]["GW_UNIT_MARKER"] == "kept"
    assert "SSH_CONNECTION" not in FakePopen.last_kwargs["env"]


def test_the_host_name_is_the_namespace_without_netns_name(run_dir: Path) -> None:
    (run_dir / "inventory-name").touch()

    connection().exec_command("true")

    assert FakePopen.calls == [([IP, "netns", "exec", "inventory-name", "/bin/sh", "-c", "true"], None)]


def test_a_missing_namespace_is_a_connection_failure(run_dir: Path) -> None:
    with pytest.raises(AnsibleConnectionFailure) as failure:
        connection(netns_name="r2").exec_command("true")

    assert str(failure.value) == (f"netns connection: network namespace 'r2' does not exist "
                                  f"(no {run_dir}/r2; create it with: ip netns add r2)")
    assert FakePopen.calls == []


def test_a_namespace_deleted_after_connecting_fails_the_next_command(run_dir: Path) -> None:
    plugin = connection(netns_name="r1")
    plugin.exec_command("true")
    (run_dir / "r1").unlink()

    with pytest.raises(AnsibleConnectionFailure, match="network namespace 'r1' does not exist"):
        plugin.exec_command("true")
    assert len(FakePopen.calls) == 1


@pytest.mark.parametrize("name", ["a/b", "..", "."])
def test_a_name_that_is_no_namespace_name_is_refused(run_dir: Path, name: str) -> None:
    with pytest.raises(AnsibleConnectionFailure) as failure:
        connection(netns_name=name).exec_command("true")

    assert str(failure.value) == (f"netns connection: {name!r} is not a network namespace name "
                                  "(set ansible_netns_name or the host's ansible_host)")


def test_the_connection_needs_root(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with pytest.raises(AnsibleConnectionFailure) as failure:
        connection(netns_name="r1").exec_command("true")

    assert str(failure.value) == "netns connection: entering network namespace 'r1' needs root; ansible runs as uid 1000"


def test_files_are_copied_on_the_shared_filesystem(run_dir: Path, tmp_path: Path) -> None:
    plugin = connection(netns_name="r1")
    source = tmp_path / "source.txt"
    source.write_bytes(b"payload\n")

    plugin.put_file(str(source), str(tmp_path / "put.txt"))
    plugin.fetch_file(str(tmp_path / "put.txt"), str(tmp_path / "fetched.txt"))

    assert (tmp_path / "put.txt").read_bytes() == b"payload\n"
    assert (tmp_path / "fetched.txt").read_bytes() == b"payload\n"


def test_put_file_does_not_create_parent_directories(run_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_bytes(b"payload\n")
    destination = tmp_path / "missing" / "put.txt"

    with pytest.raises(AnsibleError, match=f"^netns connection: failed to copy {source} to {destination}: "):
        connection(netns_name="r1").put_file(str(source), str(destination))


def test_a_missing_source_file_is_file_not_found(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AnsibleFileNotFound, match=f"file or module does not exist: {tmp_path}/absent.txt"):
        connection(netns_name="r1").put_file(str(tmp_path / "absent.txt"), str(tmp_path / "put.txt"))


def test_close_and_reset_drop_the_connection(run_dir: Path) -> None:
    plugin = connection(netns_name="r1")
    plugin.exec_command("true")
    assert plugin.connected

    plugin.reset()

    assert not plugin.connected
