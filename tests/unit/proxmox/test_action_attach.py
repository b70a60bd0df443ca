# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of proxmox_attach: the task read with the module's own argument spec, a fake API."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.ghostwarden.core.plugins.action import proxmox_attach
from ansible_collections.ghostwarden.core.plugins.action.proxmox_attach import ActionModule
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import ConnectionParams, Guest

GUESTS = (Guest(vmid=100, name="web1", node="pve1", type="qemu", status="running"),
          Guest(vmid=101, name="db1", node="pve2", type="lxc", status="stopped"))


class FakeShell:
    tmpdir = None


class FakeConnection:
    def __init__(self, transport: str) -> None:
        self._shell = FakeShell()
        self.transport = transport


class FakeTask:
    def __init__(self, args: dict, environment: Any = None) -> None:
        self.args = args
        self.environment = environment
        self.check_mode = False
        self.async_val = 0
        self.action = self.resolved_action = "ghostwarden.core.proxmox_attach"


class FakeClient:
    def __init__(self, log: list, params: ConnectionParams) -> None:
        log.append(params)

    def guests(self) -> tuple[Guest, ...]:
        return GUESTS


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list:
    """The ConnectionParams of every lookup; a fresh guest map; no PROXMOX_* variables of the test's own."""
    log: list = []
    monkeypatch.setattr(proxmox_attach, "_GUESTS", {})
    monkeypatch.setattr(proxmox_attach.ProxmoxClient, "connect", classmethod(lambda cls, params: FakeClient(log, params)))
    for name in ("HOST", "PORT", "USER", "PASSWORD", "TOKEN_ID", "TOKEN_SECRET", "VALIDATE_CERTS", "CA_PATH"):
        monkeypatch.delenv(f"PROXMOX_{name}", raising=False)
    return log


def attach(args: dict, *, transport: str = "local", environment: Any = None) -> list:
    """Run the plugin; the module arguments it passed on."""
    calls: list = []
    plugin = ActionModule(FakeTask(args, environment), FakeConnection(transport), None, None, None)

    def execute_module(module_name: str, module_args: dict, task_vars: dict | None, wrap_async: bool) -> dict:
        calls.append(module_args)
        return {"changed": False}

    plugin._execute_module = execute_module  # type: ignore[method-assign]
    plugin.run(task_vars={"inventory_hostname": "localhost"})
    return calls


def test_the_environment_fallbacks_of_the_module_spec_connect_the_lookup(connections, monkeypatch):
    monkeypatch.setenv("PROXMOX_HOST", "pve.example.org")
    monkeypatch.setenv("PROXMOX_PORT", "8443")
    monkeypatch.setenv("PROXMOX_TOKEN_ID", "ansible@pve!gw")
    monkeypatch.setenv("PROXMOX_TOKEN_SECRET", "s3cret")
    monkeypatch.setenv("PROXMOX_VALIDATE_CERTS", "no")
    [module_args] = attach({"name": "db1", "bridge": "vmbr1"})
    assert module_args == {"bridge": "vmbr1", "vmid": 101, "node": "pve2", "guest_type": "lxc",
                           "guest_status": "stopped"}
    expected = ConnectionParams("pve.example.org", api_port=8443, api_token_id="ansible@pve!gw",
                                api_token_secret="s3cret", validate_certs=False, timeout=30)
    assert connections == [expected]


def test_one_lookup_serves_every_guest_and_options_are_converted(connections):
    options = {"api_host": "pve1", "api_token_id": "a@pve!t", "api_token_secret": "x", "api_timeout": "5"}
    first = attach({**options, "vmid": "100", "bridge": "vmbr1"})
    second = attach({**options, "vmid": 101, "bridge": "vmbr1"})
    assert (first[0]["node"], second[0]["node"]) == ("pve1", "pve2")
    assert [params.timeout for params in connections] == [5]


@pytest.mark.parametrize("args", [
    {"api_host": "pve1", "vmid": 100, "name": "web1", "bridge": "vmbr1"},  # mutually exclusive
    {"api_host": "pve1", "vmid": 100, "network": "lab", "bridge": "vmbr1"},  # network needs topology
    {"api_host": "pve1", "vmid": "one hundred", "bridge": "vmbr1"},  # not an int
    {"api_host": "pve1", "vmid": 100, "bridge": "vmbr1", "brige": "vmbr2"},  # not an option
    {"vmid": 100, "bridge": "vmbr1"},  # no api_host, not in the environment either
    {"api_host": "pve1", "vmid": 100, "bridge": "vmbr1", "node": "pve1", "guest_type": "qemu"},  # hints given
])
def test_options_the_module_would_refuse_or_hints_leave_the_lookup_to_the_module(connections, args):
    assert attach(args) == [args]
    assert connections == []


def test_no_lookup_over_a_remote_connection_or_with_proxmox_variables_in_the_task_environment(connections):
    args = {"api_host": "pve1", "vmid": 100, "bridge": "vmbr1"}
    assert attach(args, transport="ssh") == [args]
    assert attach(args, environment=[{"PROXMOX_HOST": "other"}]) == [args]
    assert connections == []
