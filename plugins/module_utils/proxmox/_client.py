# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""A small client of the Proxmox VE API on top of proxmoxer, with one error type.

It connects with an API token (``user@realm!tokenid`` and its secret) or with a password
ticket, sends parameters the way PVE's schema check wants them (booleans as ``1``/``0``,
lists comma-joined), turns every failure - HTTP errors, refused connections, certificate
problems, failed tasks - into a :class:`ProxmoxError` whose message names the request, the
status and PVE's own words, and finds a guest's node with one ``/cluster/resources`` call per
client. Secrets never appear in a message.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import PROXMOXER, REQUESTS
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError, Issue, ValidationError


DEFAULT_PORT = 8006
GUEST_TYPES = ("qemu", "lxc")
# PVE's own words for a write whose digest no longer matches the file (qemu-server, pve-container).
DIGEST_MISMATCH_MARKERS = ("checksum mismatch", "detected modified configuration")
USER_RE = re.compile(r"[^\s@!:]+@[A-Za-z][A-Za-z0-9._-]*")
TOKEN_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]+")
UPID_RE = re.compile(r"UPID:(?P<node>[^:]+):[0-9A-Fa-f]{8,}:[0-9A-Fa-f]{8,}:[0-9A-Fa-f]{8,}:"
                     r"(?P<type>[^:]*):(?P<id>[^:]*):(?P<user>[^:]+):")
VERSION_RE = re.compile(r"(\d+)\.(\d+)")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Seconds between two polls of a task's status: quick at first (most config tasks take
# milliseconds), then once a second as proxmoxer's blocking_status does.
POLL_INTERVALS = (0.05, 0.1, 0.2, 0.4, 0.8)
POLL_INTERVAL_MAX = 1.0


@dataclass(frozen=True)
class ConnectionParams:
    """Where the API is and who talks to it (the ``api_*`` options of the modules).

    ``api_token_id`` is ``user@realm!tokenid``, or just ``tokenid`` with ``api_user``
    (community.proxmox's split form). ``ca_path`` is a PEM bundle to verify the
    server's certificate with, used when ``validate_certs`` is true.
    """

    api_host: str
    api_port: int = DEFAULT_PORT
    api_user: str | None = None
    api_password: str | None = None
    api_token_id: str | None = None
    api_token_secret: str | None = None
    validate_certs: bool = True
    ca_path: str | None = None
    timeout: int = 30

    def __repr__(self) -> str:
        # No secrets in tracebacks or debug output.
        return (f"ConnectionParams(api_host={self.api_host!r}, api_port={self.api_port!r}, "
                f"identity={self.identity!r}, validate_certs={self.validate_certs!r}, ca_path={self.ca_path!r})")

    @property
    def url(self) -> str:
        host = f"[{self.api_host}]" if ":" in self.api_host and not self.api_host.startswith("[") else self.api_host
        return f"https://{host}:{self.api_port}/api2/json"

    @property
    def identity(self) -> str:
        """Who the requests are made as: ``user@realm!tokenid`` or ``user@realm`` (never a secret)."""
        if self.api_token_id:
            if "!" in self.api_token_id or not self.api_user:
                return self.api_token_id
            return f"{self.api_user}!{self.api_token_id}"
        return self.api_user or ""


@dataclass(frozen=True)
class Guest:
    """A VM or container as ``/cluster/resources?type=vm`` lists it."""

    vmid: int
    name: str | None
    node: str
    type: str  # "qemu" | "lxc"
    status: str  # "running" | "stopped" | "unknown"

    @property
    def path(self) -> str:
        return f"/nodes/{self.node}/{self.type}/{self.vmid}"

    @property
    def kind(self) -> str:
        """``VM`` or ``container``, for messages."""
        return "VM" if self.type == "qemu" else "container"

    def __str__(self) -> str:
        return f"{self.kind} {self.vmid} on {self.node}"


class ProxmoxError(GhostwardenError):
    """A request to the API failed; the message is ``<METHOD> <path>: <status> <PVE message>[; param: msg, ...]``.

    ``status`` is the HTTP status (None when no answer came), ``pve_message`` PVE's reason
    phrase and ``errors`` its per-parameter messages.
    """

    def __init__(self, message: str, *, method: str | None = None, path: str | None = None,
                 status: int | None = None, pve_message: str = "", errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.pve_message = pve_message
        self.errors = dict(errors or {})

    @classmethod
    def from_response(cls, method: str, path: str, status: int, pve_message: str,
                      errors: dict[str, str] | None = None) -> ProxmoxError:
        pve_message = " ".join(str(pve_message or "").split())
        text = f"{method} {path}: {status} {pve_message}".rstrip()
        if errors:
            text += "; " + ", ".join(f"{key}: {' '.join(str(value).split())}" for key, value in sorted(errors.items()))
        return cls(text, method=method, path=path, status=status, pve_message=pve_message, errors=errors)

    @property
    def is_digest_mismatch(self) -> bool:
        """The write was refused because someone else changed the configuration since it was read."""
        return any(marker in self.pve_message for marker in DIGEST_MISMATCH_MARKERS)

    def to_result(self) -> dict:
        result: dict = {}
        if self.status is not None:
            result["status_code"] = self.status
        if self.errors:
            result["api_errors"] = dict(sorted(self.errors.items()))
        return result


class ProxmoxTaskError(ProxmoxError):
    """A task (UPID) ended with an exit status other than OK, or did not end in time."""

    def __init__(self, message: str, *, upid: str, exitstatus: str | None) -> None:
        super().__init__(message, pve_message=exitstatus or "")
        self.upid = upid
        self.exitstatus = exitstatus

    def to_result(self) -> dict:
        return {"upid": self.upid, "exitstatus": self.exitstatus}


class GuestNotFoundError(ProxmoxError):
    """No guest (or more than one, for a name) matches in ``/cluster/resources``."""


def _plain(value: Any) -> Any:
    """A parameter value as PVE's schema check accepts it."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, (list, tuple)):
        return ",".join(str(_plain(item)) for item in value)
    return value


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in sorted(params.items()) if value is not None}


def _error_map(errors: object) -> dict[str, str]:
    if isinstance(errors, dict):
        return {str(key): value if isinstance(value, str) else str(value) for key, value in errors.items()}
    return {}


def _connection_problem(params: ConnectionParams, error: Exception) -> str:
    """One line saying why no answer came, without the long urllib3 chains."""
    text = str(error)
    where = f"cannot reach the Proxmox VE API at {params.url}"
    requests = REQUESTS.module
    if requests is not None and isinstance(error, requests.exceptions.SSLError):
        reason = re.search(r"certificate verify failed: ([^(\"')]+)", text)
        detail = reason.group(1).strip() if reason else "the TLS handshake failed"
        return (f"{where}: its TLS certificate could not be verified ({detail}); give ca_path (the cluster CA is "
                "/etc/pve/pve-root-ca.pem on a node) or, for a lab only, validate_certs: false")
    if requests is not None and isinstance(error, requests.exceptions.Timeout):
        return f"{where}: no answer within {params.timeout} s"
    for pattern, phrase in ((r"Connection refused", "connection refused"),
                            (r"Name or service not known|nodename nor servname|Temporary failure in name resolution",
                             "the host name does not resolve"),
                            (r"No route to host", "no route to host"),
                            (r"Network is unreachable", "network is unreachable")):
        if re.search(pattern, text):
            return f"{where}: {phrase}"
    return f"{where}: {' '.join(text.split())}"


def check_connection_params(params: ConnectionParams) -> None:
    """Raise one :class:`ValidationError` line for an unusable host or identity (before any request)."""
    host = (params.api_host or "").strip()
    if not host:
        raise ValidationError(Issue("api_host", "missing: give the Proxmox VE host name or address (or PROXMOX_HOST)"))
    if "://" in host or "/" in host:
        raise ValidationError(Issue("api_host", f"{host!r} is a URL; give only the host name or address"))
    if isinstance(params.api_port, bool) or not isinstance(params.api_port, int) or not 1 <= params.api_port <= 65535:
        raise ValidationError(Issue("api_port", f"{params.api_port!r} is not a TCP port 1-65535"))
    if isinstance(params.timeout, bool) or not isinstance(params.timeout, int) or params.timeout < 1:
        # requests raises a bare ValueError for a timeout of 0 or less, at the first request
        raise ValidationError(Issue("api_timeout", f"{params.timeout!r} is not a number of seconds of 1 or more"))
    if params.validate_certs and params.ca_path and not os.path.isfile(params.ca_path):
        raise ValidationError(Issue("ca_path", f"{params.ca_path} is not a file"))
    user = params.api_user
    if user is not None and not USER_RE.fullmatch(user):
        raise ValidationError(Issue("api_user", f"{user!r} is not a user id of the form user@realm (e.g. root@pam)"))
    if params.api_token_id:
        token_id = params.api_token_id
        if "!" in token_id:
            owner, name = token_id.split("!", 1)
            if not USER_RE.fullmatch(owner) or not TOKEN_NAME_RE.fullmatch(name):
                raise ValidationError(Issue("api_token_id", f"{token_id!r} is not a token id of the form "
                                                            "user@realm!tokenid"))
            if user is not None and user != owner:
                raise ValidationError(Issue("api_token_id", f"{token_id!r} belongs to {owner}, not to api_user {user}"))
        else:
            if not TOKEN_NAME_RE.fullmatch(token_id):
                raise ValidationError(Issue("api_token_id", f"{token_id!r} is not a token id (user@realm!tokenid, "
                                                            "or tokenid with api_user)"))
            if user is None:
                raise ValidationError(Issue("api_token_id", f"{token_id!r} names a token but not its user: give "
                                                            f"user@realm!{token_id} or api_user"))
        if not params.api_token_secret:
            raise ValidationError(Issue("api_token_secret", f"missing: the API token {params.identity} needs its "
                                                            "secret (or PROXMOX_TOKEN_SECRET)"))
        if CONTROL_RE.search(params.api_token_secret):
            # The secret goes into the Authorization header, which http.client refuses with a ValueError
            # quoting the whole header - secret included; the value is not shown here either.
            raise ValidationError(Issue("api_token_secret", "contains a line break, tab or other control character "
                                                            "(a trailing newline from a YAML block scalar?); give "
                                                            "the secret alone"))
        return
    if params.api_token_secret:
        raise ValidationError(Issue("api_token_id", "missing: api_token_secret is given without the token's id"))
    if params.api_password:
        if user is None:
            raise ValidationError(Issue("api_user", "missing: password login needs the user as user@realm "
                                                    "(or PROXMOX_USER)"))
        return
    if user is not None:
        raise ValidationError(Issue("api_password", f"missing: give the password of {user}, or an API token "
                                                    "(api_token_id and api_token_secret)"))
    raise ValidationError(Issue("api_token_id", "no credentials: give api_token_id and api_token_secret, or api_user "
                                                "and api_password (or the PROXMOX_* environment variables)"))


def _guest_from_resource(entry: object) -> Guest | None:
    if not isinstance(entry, dict) or entry.get("type") not in GUEST_TYPES:
        return None
    try:
        vmid = int(entry["vmid"])
    except (KeyError, TypeError, ValueError):
        return None
    name = entry.get("name")
    return Guest(vmid=vmid, name=str(name) if name not in (None, "") else None, node=str(entry.get("node", "")),
                 type=str(entry["type"]), status=str(entry.get("status") or "unknown"))


class ProxmoxClient:
    """Requests to one Proxmox VE cluster as one identity. Make one with :meth:`connect`."""

    def __init__(self, api: Any, params: ConnectionParams) -> None:
        self._api = api
        self.params = params
        self._version: tuple[int, int] | None = None
        self._guests: tuple[Guest, ...] | None = None

    @classmethod
    def connect(cls, params: ConnectionParams) -> ProxmoxClient:
        """A client for ``params``; a password login happens here, a token is only sent with each request."""
        check_connection_params(params)
        requests = REQUESTS.require("to reach the Proxmox VE API")
        proxmoxer = PROXMOXER.require("to reach the Proxmox VE API")
        verify: bool | str = (params.ca_path or True) if params.validate_certs else False
        arguments: dict[str, Any] = {"port": params.api_port, "verify_ssl": verify, "timeout": params.timeout,
                                     "backend": "https", "service": "PVE"}
        if params.api_token_id:
            owner, name = params.identity.split("!", 1)
            arguments.update(user=owner, token_name=name, token_value=params.api_token_secret)
        else:
            arguments.update(user=params.api_user, password=params.api_password)
        try:
            api = proxmoxer.ProxmoxAPI(params.api_host, **arguments)
        except proxmoxer.AuthenticationError as error:
            status = re.search(r"code: (\d+)", str(error))
            code = int(status.group(1)) if status else 401
            raise ProxmoxError(f"POST /access/ticket: {code} authentication failed for {params.api_user}",
                               method="POST", path="/access/ticket", status=code,
                               pve_message="authentication failed") from None
        except requests.exceptions.RequestException as error:
            raise ProxmoxError(_connection_problem(params, error)) from None
        return cls(api, params)

    # -- requests ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        path = "/" + path.strip("/")
        resource = self._api(path.strip("/"))
        proxmoxer, requests = PROXMOXER.module, REQUESTS.module  # imported by connect()
        plain = _plain_params(params)
        try:
            if method == "GET":
                return resource.get(**plain)
            if method == "POST":
                return resource.post(**plain)
            if method == "PUT":
                return resource.put(**plain)
            return resource.delete(**plain)
        except proxmoxer.ResourceException as error:
            raise ProxmoxError.from_response(method, path, error.status_code, error.content or error.status_message,
                                             _error_map(error.errors)) from None
        except proxmoxer.AuthenticationError as error:  # a ticket renewal failed
            raise ProxmoxError(f"{method} {path}: the login ticket could not be renewed ({error})",
                               method=method, path=path, status=401) from None
        except requests.exceptions.RequestException as error:
            raise ProxmoxError(_connection_problem(self.params, error), method=method, path=path) from None

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        return self._call("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        return self._call("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        return self._call("DELETE", path, params)

    # -- tasks ------------------------------------------------------------------------------

    def wait_task(self, upid: str, timeout: float = 300) -> None:
        """Wait until the task ends; raise :class:`ProxmoxTaskError` unless it ended OK (or with warnings only)."""
        match = UPID_RE.fullmatch(upid) if isinstance(upid, str) else None
        if match is None:
            raise ProxmoxError(f"the API returned {upid!r} where a task id (UPID) was expected")
        node, task = match.group("node"), f"{match.group('type')} {match.group('id')}".strip()
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            status = self.get(f"/nodes/{node}/tasks/{upid}/status")
            if isinstance(status, dict) and status.get("status") == "stopped":
                exitstatus = status.get("exitstatus")
                if exitstatus == "OK" or (isinstance(exitstatus, str) and exitstatus.startswith("WARNINGS")):
                    return
                raise ProxmoxTaskError(f"task {task} on {node} failed: {exitstatus or 'no exit status'} ({upid})",
                                       upid=upid, exitstatus=exitstatus)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProxmoxTaskError(f"task {task} on {node} still running after {timeout:g} s ({upid})",
                                       upid=upid, exitstatus=None)
            interval = POLL_INTERVALS[polls] if polls < len(POLL_INTERVALS) else POLL_INTERVAL_MAX
            polls += 1
            time.sleep(min(interval, remaining))

    # -- cluster ----------------------------------------------------------------------------

    def version(self) -> tuple[int, int]:
        """The (major, minor) release of the node answering, e.g. ``(8, 2)``; asked once per client."""
        if self._version is None:
            data = self.get("/version")
            text = str(data.get("version") or data.get("release") or "") if isinstance(data, dict) else ""
            match = VERSION_RE.match(text)
            if match is None:
                raise ProxmoxError(f"GET /version: the API reported no usable version ({text!r})")
            self._version = (int(match.group(1)), int(match.group(2)))
        return self._version

    def guests(self) -> tuple[Guest, ...]:
        """Every VM and container of the cluster, by vmid; one ``/cluster/resources`` request per client."""
        if self._guests is None:
            data = self.get("/cluster/resources", type="vm")
            found = (_guest_from_resource(entry) for entry in (data if isinstance(data, list) else []))
            self._guests = tuple(sorted((guest for guest in found if guest is not None), key=lambda g: g.vmid))
        return self._guests

    def forget_guests(self) -> None:
        """Drop the cached guest list, so that the next lookup asks the cluster again."""
        self._guests = None

    def locate_guest(self, vmid: int | None = None, name: str | None = None) -> Guest:
        """The guest with ``vmid`` (whose name must then be ``name`` if given too) or the only one named ``name``."""
        if vmid is None and not name:
            raise ValidationError(Issue("vmid", "give the guest's vmid or name"))
        guests = self.guests()
        if vmid is not None:
            for guest in guests:
                if guest.vmid == vmid:
                    if name and guest.name != name:
                        raise GuestNotFoundError(f"vmid {vmid} is {guest}, named {guest.name or '(no name)'}, "
                                                 f"not {name}")
                    return guest
            raise GuestNotFoundError(f"no VM or container with vmid {vmid} in the cluster")
        matches = [guest for guest in guests if guest.name == name]
        if not matches:
            raise GuestNotFoundError(f"no VM or container named {name} in the cluster")
        if len(matches) > 1:
            ids = ", ".join(str(guest.vmid) for guest in matches)
            raise GuestNotFoundError(f"{len(matches)} guests are named {name} (vmids {ids}); give vmid instead")
        return matches[0]
