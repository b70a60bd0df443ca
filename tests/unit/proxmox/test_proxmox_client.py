# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Proxmox VE client: identity checks, parameters on the wire, error messages, tasks, guest lookup.

The first part drives the client over a stand-in for proxmoxer's resource object; the second
part (root only, skipped otherwise) drives it over HTTPS against the test server in a throwaway
network namespace.
"""

from __future__ import annotations

import pytest
import requests
from proxmoxer import ResourceException

from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox import _client
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._client import (
    ConnectionParams,
    Guest,
    GuestNotFoundError,
    ProxmoxClient,
    ProxmoxError,
    ProxmoxTaskError,
    check_connection_params,
)
from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.support.pve.fixtures import pve_server, requires_schema  # noqa: F401  pylint: disable=unused-import
from ansible_collections.ghostwarden.core.tests.support.pve.server import PveServer

SECRET = "5f0e3c36-1c62-4d7b-9a55-2b9a1f0c7e11"
UPID = "UPID:pve1:0000A1B2:0012D687:6745A1B2:qmconfig:100:root@pam!ci:"


class FakeApi:
    """proxmoxer's ProxmoxAPI as the client uses it: ``api(path).get/post/put/delete(**params)``."""

    def __init__(self, answers: dict[tuple[str, str], list]) -> None:
        self.answers = {key: list(values) for key, values in answers.items()}
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, path: str) -> FakeResource:
        return FakeResource(self, "/" + path)


class FakeResource:
    def __init__(self, api: FakeApi, path: str) -> None:
        self.api, self.path = api, path

    def _answer(self, method: str, params: dict) -> object:
        self.api.calls.append((method, self.path, params))
        answer = self.api.answers[(method, self.path)].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, **params):
        return self._answer("GET", params)

    def post(self, **params):
        return self._answer("POST", params)

    def put(self, **params):
        return self._answer("PUT", params)

    def delete(self, **params):
        return self._answer("DELETE", params)


def client(answers: dict[tuple[str, str], list]) -> tuple[ProxmoxClient, FakeApi]:
    api = FakeApi(answers)
    params = ConnectionParams("pve.example", api_token_id="root@pam!ci", api_token_secret=SECRET)
    return ProxmoxClient(api, params), api


# -- identity ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "expected"), [
    ({}, "api_token_id: no credentials: give api_token_id and api_token_secret, or api_user and api_password "
         "(or the PROXMOX_* environment variables)"),
    ({"api_token_id": "ci", "api_token_secret": SECRET}, "api_token_id: 'ci' names a token but not its user: give "
                                                         "user@realm!ci or api_user"),
    ({"api_token_id": "root@pam!ci"}, "api_token_secret: missing: the API token root@pam!ci needs its secret "
                                      "(or PROXMOX_TOKEN_SECRET)"),
    ({"api_token_id": "root@pam!", "api_token_secret": SECRET}, "api_token_id: 'root@pam!' is not a token id of the "
                                                                "form user@realm!tokenid"),
    ({"api_token_id": "root!ci", "api_token_secret": SECRET}, "api_token_id: 'root!ci' is not a token id of the form "
                                                              "user@realm!tokenid"),
    ({"api_user": "admin@pve", "api_token_id": "root@pam!ci", "api_token_secret": SECRET},
     "api_token_id: 'root@pam!ci' belongs to root@pam, not to api_user admin@pve"),
    ({"api_token_secret": SECRET}, "api_token_id: missing: api_token_secret is given without the token's id"),
    ({"api_user": "root@pam"}, "api_password: missing: give the password of root@pam, or an API token "
                               "(api_token_id and api_token_secret)"),
    ({"api_password": "hunter2"}, "api_user: missing: password login needs the user as user@realm (or PROXMOX_USER)"),
    ({"api_user": "root", "api_password": "hunter2"}, "api_user: 'root' is not a user id of the form user@realm "
                                                      "(e.g. root@pam)"),
])
def test_identity_problems_are_one_line_without_secrets(options: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_connection_params(ConnectionParams("pve.example", **options))
    assert str(error.value) == expected
    assert SECRET not in str(error.value) and "hunter2" not in str(error.value)


@pytest.mark.parametrize(("options", "identity"), [
    ({"api_token_id": "root@pam!ci", "api_token_secret": SECRET}, "root@pam!ci"),
    ({"api_user": "root@pam", "api_token_id": "root@pam!ci", "api_token_secret": SECRET}, "root@pam!ci"),
    ({"api_user": "ansible@pve", "api_token_id": "ci", "api_token_secret": SECRET}, "ansible@pve!ci"),
    ({"api_user": "ansible@pve", "api_password": "hunter2"}, "ansible@pve"),
])
def test_accepted_identities(options: dict, identity: str) -> None:
    params = ConnectionParams("pve.example", **options)
    check_connection_params(params)
    assert params.identity == identity
    assert SECRET not in repr(params) and "hunter2" not in repr(params)


@pytest.mark.parametrize(("options", "expected"), [
    ({"api_host": ""}, "api_host: missing: give the Proxmox VE host name or address (or PROXMOX_HOST)"),
    ({"api_host": "https://pve:8006"}, "api_host: 'https://pve:8006' is a URL; give only the host name or address"),
    ({"api_host": "pve", "api_port": 0}, "api_port: 0 is not a TCP port 1-65535"),
    ({"api_host": "pve", "ca_path": "/nonexistent/ca.pem"}, "ca_path: /nonexistent/ca.pem is not a file"),
    ({"api_host": "pve", "timeout": 0}, "api_timeout: 0 is not a number of seconds of 1 or more"),
    ({"api_host": "pve", "timeout": -5}, "api_timeout: -5 is not a number of seconds of 1 or more"),
])
def test_host_problems(options: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_connection_params(ConnectionParams(api_token_id="root@pam!ci", api_token_secret=SECRET, **options))
    assert str(error.value) == expected


def test_ca_path_is_not_checked_without_certificate_validation() -> None:
    check_connection_params(ConnectionParams("pve", api_token_id="root@pam!ci", api_token_secret=SECRET,
                                             validate_certs=False, ca_path="/nonexistent/ca.pem"))


def test_url_brackets_ipv6() -> None:
    assert ConnectionParams("2001:db8::1", api_port=8443).url == "https://[2001:db8::1]:8443/api2/json"
    assert ConnectionParams("pve1").url == "https://pve1:8006/api2/json"


# -- requests ---------------------------------------------------------------------------------

def test_parameters_go_on_the_wire_as_pve_wants_them() -> None:
    proxmox, api = client({("PUT", "/nodes/pve1/qemu/100/config"): [None]})
    proxmox.put("nodes/pve1/qemu/100/config/", net0="virtio,bridge=vmbr0", firewall=True, link_down=False,
                delete=["net1", "net2"], digest=None, tag=10)
    assert api.calls == [("PUT", "/nodes/pve1/qemu/100/config",
                          {"delete": "net1,net2", "firewall": 1, "link_down": 0, "net0": "virtio,bridge=vmbr0", "tag": 10})]


def test_http_errors_become_one_line_with_pve_message_and_parameter_errors() -> None:
    refused = ResourceException(400, "Bad Request", "Parameter verification failed.",
                                errors={"tag": "value must have a maximum value of 4094",
                                        "firewall": "type check ('boolean') failed - got 'True'"})
    proxmox = client({("PUT", "/nodes/pve1/qemu/100/config"): [refused]})[0]
    with pytest.raises(ProxmoxError) as error:
        proxmox.put("/nodes/pve1/qemu/100/config", tag=5000)
    assert str(error.value) == ("PUT /nodes/pve1/qemu/100/config: 400 Parameter verification failed.; "
                                "firewall: type check ('boolean') failed - got 'True', "
                                "tag: value must have a maximum value of 4094")
    assert error.value.to_result() == {"status_code": 400, "api_errors": {
        "firewall": "type check ('boolean') failed - got 'True'", "tag": "value must have a maximum value of 4094"}}
    assert not error.value.is_digest_mismatch


@pytest.mark.parametrize("reason", ["checksum mismatch (file change by other user?)",
                                    "detected modified configuration - file changed by other user? Try again."])
def test_digest_mismatch_is_recognised(reason: str) -> None:
    refused = ResourceException(500, "Internal Server Error", reason)
    proxmox = client({("PUT", "/nodes/pve1/lxc/200/config"): [refused]})[0]
    with pytest.raises(ProxmoxError) as error:
        proxmox.put("/nodes/pve1/lxc/200/config", digest="0" * 40)
    assert str(error.value) == f"PUT /nodes/pve1/lxc/200/config: 500 {reason}"
    assert error.value.is_digest_mismatch and error.value.status == 500


def test_connection_failures_name_the_url() -> None:
    proxmox = client({("GET", "/version"): [requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='pve.example', port=8006): Max retries exceeded with url: /api2/json/version "
        "(Caused by NewConnectionError('...: Failed to establish a new connection: [Errno 111] Connection refused'))")]})[0]
    with pytest.raises(ProxmoxError) as error:
        proxmox.version()
    assert str(error.value) == "cannot reach the Proxmox VE API at https://pve.example:8006/api2/json: connection refused"


def test_certificate_failures_say_what_to_do() -> None:
    proxmox = client({("GET", "/version"): [requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='pve.example', port=8006): Max retries exceeded (Caused by SSLError(SSLCertVerification"
        "Error(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:992)')))")]})[0]
    with pytest.raises(ProxmoxError) as error:
        proxmox.version()
    assert str(error.value) == (
        "cannot reach the Proxmox VE API at https://pve.example:8006/api2/json: its TLS certificate could not be "
        "verified (self-signed certificate); give ca_path (the cluster CA is /etc/pve/pve-root-ca.pem on a node) or, "
        "for a lab only, validate_certs: false")


def test_version_is_asked_once() -> None:
    proxmox, api = client({("GET", "/version"): [{"version": "8.2.4", "release": "8.2", "repoid": "faa83925"}]})
    assert proxmox.version() == (8, 2)
    assert proxmox.version() == (8, 2)
    assert len(api.calls) == 1


# -- tasks ------------------------------------------------------------------------------------

@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(_client.time, "sleep", slept.append)
    return slept


def test_wait_task_polls_the_node_of_the_upid_until_it_stops(no_sleep: list[float]) -> None:
    status_path = f"/nodes/pve1/tasks/{UPID}/status"
    running = {"status": "running", "upid": UPID}
    proxmox, api = client({("GET", status_path): [running, running, {"status": "stopped", "exitstatus": "OK"}]})
    proxmox.wait_task(UPID)
    assert [call[1] for call in api.calls] == [status_path] * 3
    assert no_sleep == [0.05, 0.1]


def test_wait_task_accepts_warnings_and_reports_failures(no_sleep: list[float]) -> None:
    status_path = f"/nodes/pve1/tasks/{UPID}/status"
    statuses = [{"status": "stopped", "exitstatus": "WARNINGS: 1"},
                {"status": "stopped", "exitstatus": "hotplug problem - no bridge"}]
    proxmox = client({("GET", status_path): statuses})[0]
    proxmox.wait_task(UPID)
    with pytest.raises(ProxmoxTaskError) as error:
        proxmox.wait_task(UPID)
    assert str(error.value) == f"task qmconfig 100 on pve1 failed: hotplug problem - no bridge ({UPID})"
    assert error.value.to_result() == {"upid": UPID, "exitstatus": "hotplug problem - no bridge"}


def test_wait_task_times_out(no_sleep: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.0, 5.0])
    monkeypatch.setattr(_client.time, "monotonic", lambda: next(clock))
    status_path = f"/nodes/pve1/tasks/{UPID}/status"
    proxmox = client({("GET", status_path): [{"status": "running"}, {"status": "running"}]})[0]
    with pytest.raises(ProxmoxTaskError) as error:
        proxmox.wait_task(UPID, timeout=2)
    assert str(error.value) == f"task qmconfig 100 on pve1 still running after 2 s ({UPID})"


@pytest.mark.parametrize("answer", [None, "", "UPID:pve1:1:2:3:qmconfig:100:root@pam:", {"upid": UPID}])
def test_wait_task_refuses_what_is_not_a_upid(answer: object) -> None:
    proxmox, api = client({})
    with pytest.raises(ProxmoxError) as error:
        proxmox.wait_task(answer)  # type: ignore[arg-type]
    assert str(error.value) == f"the API returned {answer!r} where a task id (UPID) was expected"
    assert api.calls == []


# -- guests -----------------------------------------------------------------------------------

RESOURCES = [
    {"id": "qemu/101", "type": "qemu", "vmid": 101, "node": "pve2", "status": "stopped", "name": "db1"},
    {"id": "lxc/200", "type": "lxc", "vmid": 200, "node": "pve1", "status": "running", "name": "ct1"},
    {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "status": "running", "name": "web1"},
    {"id": "qemu/102", "type": "qemu", "vmid": 102, "node": "pve1", "status": "running", "name": "web1"},
    {"id": "qemu/103", "type": "qemu", "vmid": 103, "node": "pve1", "status": "unknown"},
]


def test_guests_are_listed_once_per_client() -> None:
    proxmox, api = client({("GET", "/cluster/resources"): [RESOURCES]})
    assert proxmox.locate_guest(vmid=200) == Guest(200, "ct1", "pve1", "lxc", "running")
    assert proxmox.locate_guest(name="db1") == Guest(101, "db1", "pve2", "qemu", "stopped")
    assert proxmox.locate_guest(vmid=103) == Guest(103, None, "pve1", "qemu", "unknown")
    assert str(proxmox.locate_guest(vmid=100)) == "VM 100 on pve1"
    assert str(proxmox.locate_guest(vmid=200)) == "container 200 on pve1"
    assert api.calls == [("GET", "/cluster/resources", {"type": "vm"})]
    assert [guest.vmid for guest in proxmox.guests()] == [100, 101, 102, 103, 200]


@pytest.mark.parametrize(("lookup", "expected"), [
    ({"vmid": 999}, "no VM or container with vmid 999 in the cluster"),
    ({"name": "nope"}, "no VM or container named nope in the cluster"),
    ({"name": "web1"}, "2 guests are named web1 (vmids 100, 102); give vmid instead"),
    ({"vmid": 101, "name": "web1"}, "vmid 101 is VM 101 on pve2, named db1, not web1"),
])
def test_guest_lookup_failures(lookup: dict, expected: str) -> None:
    proxmox = client({("GET", "/cluster/resources"): [RESOURCES]})[0]
    with pytest.raises(GuestNotFoundError) as error:
        proxmox.locate_guest(**lookup)
    assert str(error.value) == expected


# -- against the PVE test server (root: it lives in a throwaway network namespace) ------------

def connect(server: PveServer, **overrides: object) -> ProxmoxClient:
    options = {"api_port": server.port, "api_token_id": server.TOKEN_ID, "api_token_secret": server.TOKEN_SECRET,
               "ca_path": server.ca_path, **overrides}
    return ProxmoxClient.connect(ConnectionParams(server.host, **options))  # type: ignore[arg-type]


@pytest.mark.root
@pytest.mark.parametrize(("pve_server", "version"), [(8, (8, 2)), (9, (9, 0))], indirect=["pve_server"])
def test_token_and_ticket_clients(pve_server: PveServer, version: tuple[int, int]) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1")
    with inside_netns(pve_server.netns):
        by_token = connect(pve_server)
        by_ticket = connect(pve_server, api_token_id=None, api_token_secret=None, api_user=pve_server.USER,
                            api_password=pve_server.PASSWORD)
        split_token = connect(pve_server, api_user=pve_server.token_user, api_token_id=pve_server.token_name)
        assert by_token.version() == by_ticket.version() == split_token.version() == version
        assert by_ticket.locate_guest(name="web1") == Guest(100, "web1", "pve1", "qemu", "stopped")
        by_ticket.put("/nodes/pve1/qemu/100/config", onboot=True, net0="virtio,bridge=vmbr0")  # CSRF token sent
    assert pve_server.guest_config(100)["onboot"] == "1"
    assert [(r.method, r.path, r.status) for r in pve_server.requests if r.path == "/access/ticket"] == [
        ("POST", "/access/ticket", 200)]


@pytest.mark.root
@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # validate_certs: false, on purpose
def test_wrong_credentials_and_certificates(pve_server: PveServer) -> None:
    with inside_netns(pve_server.netns):
        with pytest.raises(ProxmoxError) as wrong_password:
            connect(pve_server, api_token_id=None, api_token_secret=None, api_user=pve_server.USER,
                    api_password="not-the-password")
        with pytest.raises(ProxmoxError) as wrong_secret:
            connect(pve_server, api_token_secret="0" * 36).version()
        with pytest.raises(ProxmoxError) as untrusted:
            connect(pve_server, ca_path=None).version()
        assert connect(pve_server, ca_path=None, validate_certs=False).version() == (8, 2)
    assert str(wrong_password.value) == "POST /access/ticket: 401 authentication failed for root@pam"
    assert str(wrong_secret.value) == "GET /version: 401 authentication failure"
    assert wrong_secret.value.status == 401
    assert str(untrusted.value) == (
        f"cannot reach the Proxmox VE API at {pve_server.url}: its TLS certificate could not be verified (unable to "
        "get local issuer certificate); give ca_path (the cluster CA is /etc/pve/pve-root-ca.pem on a node) or, for a "
        "lab only, validate_certs: false")


@pytest.mark.root
@requires_schema
def test_schema_refusals_and_tasks(pve_server: PveServer) -> None:
    pve_server.add_qemu(100, node="pve1", name="web1", running=True, config={"net0": "virtio,bridge=vmbr0"})
    with inside_netns(pve_server.netns):
        proxmox = connect(pve_server)
        with pytest.raises(ProxmoxError) as refused:
            proxmox.post("/nodes/pve1/qemu/100/config", net1="virtio,bridge=vmbr0,tag=5000", bogus=1)
        proxmox.wait_task(proxmox.post("/nodes/pve1/qemu/100/config", net1="virtio,bridge=vmbr1"))
        pve_server.fail_next_task("hotplug problem - bridge 'vmbr7' does not exist")
        upid = proxmox.post("/nodes/pve1/qemu/100/config", net2="virtio,bridge=vmbr7")
        with pytest.raises(ProxmoxTaskError) as failed:
            proxmox.wait_task(upid)
    assert str(refused.value).startswith("POST /nodes/pve1/qemu/100/config: 400 Parameter verification failed.; ")
    assert set(refused.value.errors) == {"bogus", "net1"}
    assert refused.value.errors["bogus"] == "property is not defined in schema and the schema does not allow " \
                                            "additional properties"
    assert "net1" in pve_server.guest_config(100)
    assert str(failed.value) == f"task qmconfig 100 on pve1 failed: hotplug problem - bridge 'vmbr7' does not exist " \
                                f"({upid})"
    assert "net2" not in pve_server.guest_config(100, current=False)


@pytest.mark.root
@pytest.mark.parametrize("options", [
    {"api_token_secret": SECRET + "\n"},  # a secret from a YAML block scalar (|) ends with a newline
    {"api_token_secret": SECRET + "\r\n"},
    {"api_token_secret": "\t" + SECRET},
])
def test_token_secret_with_control_characters_is_refused_without_showing_it(
        pve_server: PveServer, options: dict) -> None:
    # Sent, it ends up in the Authorization header: http.client refuses that with a ValueError that
    # quotes the header, the secret included.
    with inside_netns(pve_server.netns):
        with pytest.raises(ValidationError) as error:
            connect(pve_server, **options).version()
    assert str(error.value) == ("api_token_secret: contains a line break, tab or other control character (a "
                                "trailing newline from a YAML block scalar?); give the secret alone")
    assert SECRET not in str(error.value)
    assert pve_server.requests == []
