# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""PveServer: an in-process HTTPS server that behaves like the Proxmox VE 8/9 API.

Usage (inside a throwaway network namespace; see :mod:`.fixtures`)::

    server = PveServer(version=8)
    server.add_node("pve1")
    server.add_qemu(100, node="pve1", name="web1", running=False,
                    config={"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"})
    server.start(netns="gwpve-ab12")
    ...  # proxmoxer against server.host/server.port with server.ca_path
    server.stop()

Every request is authenticated (API token or ticket + CSRF), validated against the official schema
of the emulated version (when ../shared/pve is present), dispatched to the PVE behaviour in
:mod:`.state`, logged in :attr:`PveServer.requests`, and answered the way pve-http-server does:
``{"data": ...}`` or an error status whose reason phrase is the first line of PVE's message.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ansible_collections.ghostwarden.core.tests.support.netns import inside_netns
from ansible_collections.ghostwarden.core.tests.support.pve.schema import (
    LXC_NET_FORMAT, LXC_NET_FORMAT_V9, QEMU_NET_FORMAT, ApiSchema, locate_schema_dir, property_for, split_list,
    template_regex, validate_parameters,
)
from ansible_collections.ghostwarden.core.tests.support.pve.state import (
    FIREWALL_MACROS, FIREWALL_RULE_KEYS, PROTOCOLS_WITH_PORTS, SDN_ZONE_COMMON, SDN_ZONE_OPTIONS, SDN_ZONE_REQUIRED,
    ApiError, Cluster, FirewallFile, Guest, GuestUpdate, Node, ip_version, param_error, rule_listing,
)

VERSIONS = {8: {"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"},
            9: {"version": "9.0.3", "release": "9.0", "repoid": "025864202ebb6109"}}
# Endpoints only PVE 9 has (used when the schema files are absent).
V9_ONLY = {("/cluster/sdn/lock", "POST"), ("/cluster/sdn/lock", "DELETE"), ("/cluster/sdn/rollback", "POST")}
STATUS_PHRASES = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error",
                  501: "Not Implemented"}
SECRET_PARAMS = ("password",)
QEMU_CONTROL = ("node", "vmid", "digest", "delete", "revert", "force", "skiplock", "background_delay")
# Value types of config keys when the schema is absent (the schema's types are used otherwise).
FALLBACK_CONFIG_TYPES = {
    "qemu": {"cores": "integer", "sockets": "integer", "vcpus": "integer", "balloon": "integer",
             "shares": "integer", "cpuunits": "integer", "onboot": "boolean", "acpi": "boolean", "kvm": "boolean",
             "tablet": "boolean", "numa": "boolean", "protection": "boolean", "template": "boolean",
             "localtime": "boolean", "cpulimit": "number"},
    "lxc": {"cores": "integer", "memory": "integer", "swap": "integer", "tty": "integer", "cpuunits": "integer",
            "onboot": "boolean", "console": "boolean", "protection": "boolean", "template": "boolean",
            "unprivileged": "boolean", "debug": "boolean", "cpulimit": "number"},
}


@dataclass
class RequestRecord:
    """One request as the server saw it: ``path`` without /api2/json and query; secrets masked."""
    method: str
    path: str
    params: dict[str, Any]
    status: int
    template: str | None = None
    user: str | None = None


@dataclass
class Reply:
    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    template: str
    path: str
    params: dict[str, Any]
    user: str

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return default if value is None else value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        return default if value is None else value == "1"

    def number(self, name: str) -> int | None:
        value = self.params.get(name)
        return None if value is None else int(value)


Handler = Callable[[Call], Any]


class PveServer:
    """A stateful fake PVE cluster served over HTTPS (see the module docstring)."""

    TOKEN_ID = "root@pam!ghostwarden"
    USER = "root@pam"

    def __init__(self, version: int = 8, schema_dir: str | Path | None = None) -> None:
        if version not in VERSIONS:
            raise ValueError(f"PVE version must be 8 or 9, not {version!r}")
        self.version = version
        directory = Path(schema_dir) if schema_dir is not None else locate_schema_dir()
        self.schema: ApiSchema | None = None
        if directory is not None and (directory / f"apidata-v{version}.json").is_file():
            self.schema = ApiSchema(version, directory)
        self.TOKEN_SECRET = str(uuid.uuid4())
        self.PASSWORD = secrets.token_urlsafe(12)
        self.tokens: dict[str, str] = {self.TOKEN_ID: self.TOKEN_SECRET}
        self.users: dict[str, str] = {self.USER: self.PASSWORD}
        self.tickets: dict[str, tuple[str, str, float]] = {}
        self.cluster = Cluster(version, self._net_formats())
        self.requests: list[RequestRecord] = []
        self._after_request: list[Callable[[RequestRecord], None]] = []
        self.lock = threading.RLock()
        self.netns: str | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.ca_path = ""
        self._httpd: _HttpsServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._routes = self._build_routes()

    # -- set-up API ----------------------------------------------------------------------------

    @property
    def token_user(self) -> str:
        return self.TOKEN_ID.split("!", maxsplit=1)[0]

    @property
    def token_name(self) -> str:
        return self.TOKEN_ID.split("!")[1]

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/api2/json"

    def add_node(self, name: str) -> None:
        with self.lock:
            self.cluster.nodes.setdefault(name, Node(name))

    def add_qemu(self, vmid: int, node: str, name: str | None = None, running: bool = False,
                 hotplug: str | None = None, config: Mapping[str, Any] | None = None) -> None:
        self._add_guest("qemu", vmid, node, "name", name, running, hotplug, config)

    def add_lxc(self, vmid: int, node: str, name: str | None = None, running: bool = False,
                config: Mapping[str, Any] | None = None) -> None:
        self._add_guest("lxc", vmid, node, "hostname", name, running, None, config)

    def _add_guest(self, kind: str, vmid: int, node: str, name_key: str, name: str | None, running: bool,
                   hotplug: str | None, config: Mapping[str, Any] | None) -> None:
        with self.lock:
            self.add_node(node)
            if vmid in self.cluster.guests:
                raise ValueError(f"VM {vmid} already exists")
            values = dict(config or {})
            if name is not None:
                values[name_key] = name
            if hotplug is not None:
                values["hotplug"] = hotplug
            canonical = self.cluster.canonical_config(kind, values)
            self.cluster.guests[vmid] = Guest(kind, vmid, node, running, canonical)

    def add_network(self, node: str, iface: str, type: str = "bridge", **fields: Any) -> None:  # noqa: A002
        """An active interface; keyword names use _ for - (vlan_id, vlan_raw_device, bond_primary)."""
        with self.lock:
            self.add_node(node)
            params = {_field_name(key): str(int(value)) if isinstance(value, bool) else str(value)
                      for key, value in fields.items()}
            network = self.cluster.node(node).network
            record = _interface_record(iface, type, params, network.active)
            record["priority"] = network.next_priority(network.active)
            network.active[iface] = record

    def add_token(self, token_id: str, secret: str) -> None:
        with self.lock:
            self.tokens[token_id] = secret

    def add_user(self, userid: str, password: str) -> None:
        with self.lock:
            self.users[userid] = password

    def set_running(self, vmid: int, running: bool) -> None:
        """Start or stop a guest; a start applies its pending changes like a real boot."""
        with self.lock:
            guest = self.cluster.guests[vmid]
            if running and not guest.running:
                guest.apply_all_pending()
            guest.running = running

    # -- inspection and fault injection -------------------------------------------------------------

    def guest_config(self, vmid: int, current: bool = True) -> dict[str, str]:
        with self.lock:
            guest = self.cluster.guests[vmid]
            return dict(guest.config) if current else guest.merged()

    def guest_pending(self, vmid: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.cluster.guests[vmid].pending_list()

    def guest_digest(self, vmid: int) -> str:
        with self.lock:
            return self.cluster.guests[vmid].digest

    def edit_guest(self, vmid: int, **changes: Any) -> None:
        """A concurrent edit by another user: sets (or, with None, removes) current config keys."""
        with self.lock:
            guest = self.cluster.guests[vmid]
            for key, value in changes.items():
                if value is None:
                    guest.config.pop(key, None)
                else:
                    guest.config[key] = self.cluster.canonical_config(guest.kind, {key: value})[key]

    def fail_next_task(self, message: str) -> None:
        """The next task (config POST, network apply, SDN apply) ends with this exitstatus, doing nothing."""
        with self.lock:
            self.cluster.tasks.fail_next(message)

    def set_task_running_polls(self, polls: int) -> None:
        """New tasks report status 'running' for this many status reads before 'stopped'."""
        with self.lock:
            self.cluster.tasks.running_polls = polls

    def sdn_state(self) -> dict[str, Any]:
        with self.lock:
            sdn = self.cluster.sdn
            return {"pending": copy.deepcopy(sdn.config), "running": copy.deepcopy(sdn.running),
                    "lock": sdn.lock_token}

    def firewall_state(self) -> dict[str, Any]:
        with self.lock:
            return {"cluster": self.cluster.firewall.as_dict(),
                    "guests": {vmid: fw.as_dict() for vmid, fw in sorted(self.cluster.guest_firewalls.items())}}

    def network_state(self, node: str) -> dict[str, Any]:
        with self.lock:
            network = self.cluster.node(node).network
            return {"active": copy.deepcopy(network.active), "staged": copy.deepcopy(network.staged)}

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def after_request(self, callback: Callable[[RequestRecord], None]) -> None:
        """Call ``callback(record)`` after each request is answered, still under the server lock
        (e.g. ``edit_guest`` right after a client's read, to stage a concurrent edit)."""
        with self.lock:
            self._after_request.append(callback)

    def task_list(self) -> list[dict[str, Any]]:
        """Every task so far, oldest first: upid, node, type, id, user, exitstatus."""
        with self.lock:
            return [{"upid": task.upid, "node": task.node, "type": task.type, "id": task.id, "user": task.user,
                     "exitstatus": task.exitstatus} for task in self.cluster.tasks.tasks.values()]

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, netns: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 = a free port) inside ``netns``; the socket stays in that namespace."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._tmpdir = tempfile.mkdtemp(prefix="gwpve-tls-")
        self.ca_path, cert_path, key_path = write_certificates(Path(self._tmpdir), host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        with inside_netns(netns) if netns else nullcontext():
            httpd = _HttpsServer((host, port), _RequestHandler, context, self)
        self.netns = netns
        self.host, self.port = host, httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"pve-server-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> PveServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, auth: str = "token", **kwargs: Any) -> Any:
        """A proxmoxer ProxmoxAPI for this server (token or ticket auth); call it inside the namespace."""
        from proxmoxer import ProxmoxAPI  # only the tests that use it need proxmoxer

        options: dict[str, Any] = {"port": self.port, "verify_ssl": self.ca_path, "backend": "https", "timeout": 10}
        options.update(kwargs)
        if auth == "token":
            return ProxmoxAPI(self.host, user=self.token_user, token_name=self.token_name,
                              token_value=self.TOKEN_SECRET, **options)
        return ProxmoxAPI(self.host, user=self.USER, password=self.PASSWORD, **options)

    # -- request handling ---------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, bytes]:
        """One HTTP request -> (status, reason phrase, JSON body)."""
        with self.lock:
            split = urlsplit(raw_path)
            path = unquote(split.path)
            record = RequestRecord(method, path, {}, 500)
            try:
                if not path.startswith("/api2/json/"):
                    raise ApiError(501, f"Method '{method} {path}' not implemented")
                path = path[len("/api2/json"):]
                record.path = path
                query = _form_params(split.query)
                content = _body_params(body, headers.get("Content-Type", ""))
                params = {**content, **query}
                record.params = {key: "********" if key in SECRET_PARAMS else value for key, value in params.items()}
                template, path_params, handler = self._route(method, path)
                record.template = template
                user = self._authenticate(method, template, headers, params)
                record.user = user
                params = self._prepare_params(method, template, params, path_params)
                result = handler(Call(method, template, path, params, user))
                reply = result if isinstance(result, Reply) else Reply(result)
                record.status = 200
                return 200, "OK", json.dumps({"data": reply.data, **reply.extra}).encode()
            except ApiError as error:
                record.status = error.status
                body_json: dict[str, Any] = {"data": None, "message": error.message + "\n"}
                if error.errors:
                    body_json["errors"] = error.errors
                reason = error.message.split("\n")[0] or STATUS_PHRASES.get(error.status, "Error")
                return error.status, reason, json.dumps(body_json).encode()
            finally:
                self.requests.append(record)
                for callback in list(self._after_request):
                    callback(record)

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str], Handler]:
        for template, regex, parameters, handlers in self._routes:
            match = regex.match(path)
            if not match:
                continue
            handler = handlers.get(method)
            if handler is None or not self._method_exists(template, method):
                break
            return template, {name: match.group(group) for name, group in parameters}, handler
        raise ApiError(501, f"Method '{method} {path}' not implemented")

    def _method_exists(self, template: str, method: str) -> bool:
        if self.schema is not None:
            return self.schema.method_info(template, method) is not None
        return self.version >= 9 or (template, method) not in V9_ONLY

    def _authenticate(self, method: str, template: str, headers: Mapping[str, str], params: Mapping[str, Any]) -> str:
        if template == "/access/ticket":
            return ""
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("PVEAPIToken="):
            match = re.fullmatch(r"PVEAPIToken=([^!=\s]+)!([^=\s]+)=(\S+)", authorization)
            token_id = f"{match.group(1)}!{match.group(2)}" if match else None
            if match is None or not secrets.compare_digest(self.tokens.get(token_id or "", ""), match.group(3)):
                raise ApiError(401, "authentication failure")
            info = self.schema.method_info(template, method) if self.schema else None
            if info is not None and not info.get("allowtoken", 1):
                raise ApiError(403, f"Permission check failed (URI '{template}' not available with API token, "
                                    "need proper ticket.)")
            return token_id or ""
        ticket = _cookie(headers.get("Cookie") or "", "PVEAuthCookie")
        if not ticket:
            raise ApiError(401, "No ticket")
        session = self.tickets.get(ticket)
        if session is None or time.time() - session[2] > 7200:
            raise ApiError(401, "authentication failure")
        if method != "GET" and headers.get("CSRFPreventionToken") != session[1]:
            raise ApiError(401, "Permission denied - invalid csrf token")
        return session[0]

    def _prepare_params(self, method: str, template: str, params: dict[str, Any],
                        path_params: Mapping[str, str]) -> dict[str, Any]:
        """Merge path parameters, normalise repeated keys, validate against the schema."""
        params = dict(params)
        params.pop("_dc", None)  # the GUI's cache buster, removed by pve-http-server
        for name, value in path_params.items():
            if name in params and params[name] != value:
                raise param_error({name: "duplicate parameter (already defined in URI) with conflicting values!"})
            params[name] = value
        properties = self.schema.parameters(template, method) if self.schema else {}
        for name, value in list(params.items()):
            schema = property_for(properties, name) if self.schema else None
            if isinstance(value, list):
                value_format = (schema or {}).get("format")
                if schema is not None and schema.get("type") != "array" \
                        and isinstance(value_format, str) and value_format.endswith("-list"):
                    params[name] = ",".join(value)
                elif schema is None and name in ("delete", "revert"):
                    params[name] = ",".join(value)
            elif schema is not None and schema.get("type") == "array":
                params[name] = [value]
        if self.schema is not None:
            errors = validate_parameters(properties, params)
            if errors:
                raise param_error(errors)
        return params

    # -- routes -----------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, Any, list[tuple[str, str]], dict[str, Handler]]]:
        table: dict[str, dict[str, Handler]] = {
            "/version": {"GET": self._get_version},
            "/access/ticket": {"GET": lambda call: None, "POST": self._create_ticket},
            "/nodes": {"GET": self._list_nodes},
            "/nodes/{node}/version": {"GET": self._get_node_version},
            "/cluster/resources": {"GET": self._cluster_resources},
            "/cluster/nextid": {"GET": self._next_id},
            "/nodes/{node}/tasks/{upid}": {"GET": self._task_index, "DELETE": self._task_stop},
            "/nodes/{node}/tasks/{upid}/status": {"GET": self._task_status},
            "/nodes/{node}/tasks/{upid}/log": {"GET": self._task_log},
            "/nodes/{node}/network": {"GET": self._network_list, "POST": self._network_create,
                                      "PUT": self._network_apply, "DELETE": self._network_revert},
            "/nodes/{node}/network/{iface}": {"GET": self._network_get, "PUT": self._network_update,
                                              "DELETE": self._network_delete},
            "/cluster/sdn": {"GET": self._sdn_index, "PUT": self._sdn_apply},
            "/cluster/sdn/lock": {"POST": self._sdn_lock, "DELETE": self._sdn_unlock},
            "/cluster/sdn/rollback": {"POST": self._sdn_rollback},
            "/cluster/sdn/zones": {"GET": self._sdn_list("zones"), "POST": self._zone_create},
            "/cluster/sdn/zones/{zone}": {"GET": self._sdn_get("zones"), "PUT": self._sdn_update("zones"),
                                          "DELETE": self._sdn_delete("zones")},
            "/cluster/sdn/vnets": {"GET": self._sdn_list("vnets"), "POST": self._vnet_create},
            "/cluster/sdn/vnets/{vnet}": {"GET": self._sdn_get("vnets"), "PUT": self._sdn_update("vnets"),
                                          "DELETE": self._sdn_delete("vnets")},
            "/cluster/sdn/vnets/{vnet}/subnets": {"GET": self._sdn_list("subnets"), "POST": self._subnet_create},
            "/cluster/sdn/vnets/{vnet}/subnets/{subnet}": {
                "GET": self._sdn_get("subnets"), "PUT": self._sdn_update("subnets"),
                "DELETE": self._sdn_delete("subnets")},
        }
        for kind in ("qemu", "lxc"):
            base = f"/nodes/{{node}}/{kind}"
            table[base] = {"GET": self._guest_list(kind)}
            table[f"{base}/{{vmid}}/status/current"] = {"GET": self._guest_status(kind)}
            table[f"{base}/{{vmid}}/config"] = {"GET": self._config_get(kind), "PUT": self._config_write(kind, True)}
            if kind == "qemu":
                table[f"{base}/{{vmid}}/config"]["POST"] = self._config_write(kind, False)
            table[f"{base}/{{vmid}}/pending"] = {"GET": self._pending_get(kind)}
        for prefix in ("/cluster/firewall", "/nodes/{node}/qemu/{vmid}/firewall", "/nodes/{node}/lxc/{vmid}/firewall"):
            table.update(self._firewall_routes(prefix))
        routes = []
        for template, handlers in table.items():
            regex = template_regex(template)
            if template.endswith("{cidr}"):  # an ipset entry: the CIDR's slash is part of the path
                regex = re.compile(regex.pattern.replace("(?P<p_cidr>[^/]+)$", "(?P<p_cidr>.+)$"))
            parameters = [(name, "p_" + re.sub(r"\W", "_", name)) for name in re.findall(r"\{([^}]+)\}", template)]
            routes.append((template, regex, parameters, handlers))
        return routes

    def _net_formats(self) -> dict[str, Mapping[str, Any]]:
        formats: dict[str, Mapping[str, Any]] = {
            "qemu": QEMU_NET_FORMAT, "lxc": LXC_NET_FORMAT_V9 if self.version >= 9 else LXC_NET_FORMAT}
        if self.schema is not None:
            for kind, method in (("qemu", "POST"), ("lxc", "PUT")):
                schema = self.schema.property_schema(f"/nodes/{{node}}/{kind}/{{vmid}}/config", method, "net0")
                if schema and isinstance(schema.get("format"), dict):
                    formats[kind] = schema["format"]
        return formats

    # -- basics -----------------------------------------------------------------------------------

    def _get_version(self, call: Call) -> dict[str, Any]:
        return {**VERSIONS[self.version], "console": "html5"}

    def _get_node_version(self, call: Call) -> dict[str, Any]:
        self.cluster.node(call.params["node"])
        return dict(VERSIONS[self.version])

    def _create_ticket(self, call: Call) -> dict[str, Any]:
        username = call.params["username"]
        realm = call.text("realm")
        if realm and "@" not in username:
            username = f"{username}@{realm}"
        password = call.params["password"]
        session = self.tickets.get(password)
        renewal = session is not None and session[0] == username and time.time() - session[2] <= 7200
        stored = self.users.get(username)
        if not renewal and (stored is None or not secrets.compare_digest(stored, password)):
            raise ApiError(401, "authentication failure")
        stamp = f"{int(time.time()):08X}"
        ticket = f"PVE:{username}:{stamp}::{secrets.token_hex(32)}"
        csrf = f"{stamp}:{secrets.token_hex(16)}"
        self.tickets[ticket] = (username, csrf, time.time())
        result: dict[str, Any] = {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf,
                                  "cap": {"vms": {}, "nodes": {}, "access": {}, "dc": {}, "storage": {}, "sdn": {}}}
        if self.cluster.cluster_name:
            result["clustername"] = self.cluster.cluster_name
        return result

    def _list_nodes(self, call: Call) -> list[dict[str, Any]]:
        return [{"node": node.name, "status": "online" if node.online else "offline", "id": f"node/{node.name}",
                 "type": "node", "cpu": 0.01, "maxcpu": 8, "mem": 2147483648, "maxmem": 17179869184,
                 "uptime": 86400, "level": "", "ssl_fingerprint": _FINGERPRINT}
                for node in self.cluster.nodes.values()]

    def _cluster_resources(self, call: Call) -> list[dict[str, Any]]:
        kind = call.text("type")
        result: list[dict[str, Any]] = []
        if kind in (None, "vm"):
            for vmid, guest in sorted(self.cluster.guests.items()):
                entry: dict[str, Any] = {
                    "id": f"{guest.kind}/{vmid}", "type": guest.kind, "vmid": vmid, "node": guest.node,
                    "status": "running" if guest.running else "stopped", "template": 0,
                    "uptime": 3600 if guest.running else 0, "maxcpu": 2, "cpu": 0.0, "maxmem": 2147483648,
                    "mem": 0, "maxdisk": 34359738368, "disk": 0, "netin": 0, "netout": 0, "diskread": 0,
                    "diskwrite": 0}
                if guest.name is not None:
                    entry["name"] = guest.name
                if guest.config.get("tags"):
                    entry["tags"] = guest.config["tags"]
                result.append(entry)
        if kind in (None, "node"):
            result.extend({"id": f"node/{node.name}", "type": "node", "node": node.name,
                           "status": "online" if node.online else "offline", "cgroup-mode": 2, "level": "",
                           "cpu": 0.01, "maxcpu": 8, "mem": 2147483648, "maxmem": 17179869184, "disk": 0,
                           "maxdisk": 107374182400, "uptime": 86400} for node in self.cluster.nodes.values())
        if kind in (None, "storage"):
            result.extend({"id": f"storage/{node.name}/local", "type": "storage", "storage": "local",
                           "node": node.name, "status": "available", "plugintype": "dir", "shared": 0,
                           "content": "iso,vztmpl,backup", "disk": 0, "maxdisk": 107374182400}
                          for node in self.cluster.nodes.values())
        if kind in (None, "sdn"):
            for node in self.cluster.nodes.values():
                result.append({"id": f"sdn/{node.name}/localnetwork", "type": "sdn", "sdn": "localnetwork",
                               "node": node.name, "status": "ok"})
                for zone, zone_config in sorted(self.cluster.sdn.running["zones"].items()):
                    result.append({"id": f"sdn/{node.name}/{zone}", "type": "sdn", "sdn": zone, "node": node.name,
                                   "status": "available", "zone-type": zone_config.get("type")})
        return result

    def _next_id(self, call: Call) -> str:
        wanted = call.number("vmid")
        if wanted is not None:
            if wanted in self.cluster.guests:
                raise param_error({"vmid": f"VM {wanted} already exists"})
            return str(wanted)
        vmid = 100
        while vmid in self.cluster.guests:
            vmid += 1
        return str(vmid)

    # -- tasks ------------------------------------------------------------------------------------

    def _task_index(self, call: Call) -> list[dict[str, str]]:
        self.cluster.tasks.get(call.params["node"], call.params["upid"])
        return [{"name": "log"}, {"name": "status"}]

    def _task_stop(self, call: Call) -> None:
        self.cluster.tasks.get(call.params["node"], call.params["upid"])

    def _task_status(self, call: Call) -> dict[str, Any]:
        return self.cluster.tasks.get(call.params["node"], call.params["upid"]).status()

    def _task_log(self, call: Call) -> Reply:
        task = self.cluster.tasks.get(call.params["node"], call.params["upid"])
        start = call.number("start") or 0
        limit = call.number("limit") or 50
        lines = [{"n": index + 1, "t": text} for index, text in enumerate(task.log)]
        return Reply(lines[start:start + limit], {"total": len(lines)})

    def _run_task(self, call: Call, kind: str, ident: str, work: Callable[[], list[str]]) -> str:
        node = call.params.get("node") or self.cluster.local_node
        return self.cluster.tasks.run(node, kind, ident, call.user, work).upid

    # -- guests -----------------------------------------------------------------------------------

    def _guest_list(self, kind: str) -> Handler:
        def handler(call: Call) -> list[dict[str, Any]]:
            node = call.params["node"]
            self.cluster.node(node)
            result = []
            for vmid, guest in sorted(self.cluster.guests.items()):
                if guest.kind == kind and guest.node == node:
                    entry: dict[str, Any] = {"vmid": vmid, "status": "running" if guest.running else "stopped",
                                             "uptime": 3600 if guest.running else 0}
                    if guest.name is not None:
                        entry["name"] = guest.name
                    if kind == "lxc":
                        entry["type"] = "lxc"
                    result.append(entry)
            return result
        return handler

    def _guest_status(self, kind: str) -> Handler:
        def handler(call: Call) -> dict[str, Any]:
            guest = self.cluster.guest(kind, call.params["node"], int(call.params["vmid"]))
            status: dict[str, Any] = {"vmid": guest.vmid, "status": "running" if guest.running else "stopped",
                                      "uptime": 3600 if guest.running else 0}
            if guest.name is not None:
                status["name"] = guest.name
            if kind == "qemu":
                status["qmpstatus"] = status["status"]
            return status
        return handler

    def _config_types(self, kind: str) -> Callable[[str], str | None]:
        if self.schema is None:
            table = FALLBACK_CONFIG_TYPES[kind]
            return table.get
        method = "POST" if kind == "qemu" else "PUT"
        properties = self.schema.parameters(f"/nodes/{{node}}/{kind}/{{vmid}}/config", method)

        def lookup(key: str) -> str | None:
            schema = property_for(properties, key)
            return schema.get("type") if schema else None
        return lookup

    def _typed(self, kind: str, values: Mapping[str, str]) -> dict[str, Any]:
        type_of = self._config_types(kind)
        result: dict[str, Any] = {}
        for key, value in values.items():
            value_type = type_of(key)
            if value_type in ("integer", "boolean") and re.fullmatch(r"[+-]?\d+", value):
                result[key] = int(value)
            elif value_type == "number" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value):
                number = float(value)
                result[key] = int(number) if number.is_integer() and "." not in value else number
            else:
                result[key] = value
        return result

    def _config_get(self, kind: str) -> Handler:
        def handler(call: Call) -> dict[str, Any]:
            guest = self.cluster.guest(kind, call.params["node"], int(call.params["vmid"]))
            snapshot = call.text("snapshot")
            if snapshot:
                raise ApiError(500, f"snapshot '{snapshot}' does not exist")
            values = dict(guest.config) if call.flag("current") else guest.merged()
            return {**self._typed(kind, values), "digest": guest.digest}
        return handler

    def _pending_get(self, kind: str) -> Handler:
        def handler(call: Call) -> list[dict[str, Any]]:
            guest = self.cluster.guest(kind, call.params["node"], int(call.params["vmid"]))
            return guest.pending_list()
        return handler

    def _option_exists(self, kind: str, key: str) -> bool:
        if self.schema is None:
            return True
        method = "POST" if kind == "qemu" else "PUT"
        properties = self.schema.parameters(f"/nodes/{{node}}/{kind}/{{vmid}}/config", method)
        return key not in QEMU_CONTROL and property_for(properties, key) is not None

    def _config_write(self, kind: str, sync: bool) -> Handler:
        """qemu-server update_vm_api (POST async, PUT sync) / pve-container update_vm (PUT)."""
        def handler(call: Call) -> str | None:
            params = dict(call.params)
            node = params.pop("node")
            vmid = int(params.pop("vmid"))
            guest = self.cluster.guest(kind, node, vmid)
            digest = params.pop("digest", None)
            delete = split_list(params.pop("delete", None))
            revert = split_list(params.pop("revert", None))
            force = params.pop("force", None) == "1"
            if params.pop("skiplock", None) == "1" and call.user != "root@pam":
                raise ApiError(403, "Permission check failed (skiplock)")
            background_delay = params.pop("background_delay", None)
            if not delete and not revert and not params:
                raise ApiError(500, "no options specified")
            for key in delete:
                if key in params:
                    raise param_error({"delete": f"you can't use '-{key}' and -delete {key}' at the same time"})
                if key in revert:
                    raise param_error({"revert": f"you can't use '-delete {key}' and '-revert {key}' at the same time"})
                if not self._option_exists(kind, key):
                    raise param_error({"delete": f"unknown option '{key}'"})
            for key in revert:
                if key in params:
                    raise param_error({"revert": f"you can't use '-{key}' and '-revert {key}' at the same time"})
            values = {key: self.cluster.canonical_net(kind, key, value) if key.startswith("net") and key[3:].isdigit()
                      else value for key, value in params.items()}
            update = GuestUpdate(self.cluster, guest, values, delete, revert, force)

            def check_digest() -> None:
                if digest and digest != guest.digest:
                    if kind == "qemu":
                        raise ApiError(500, "checksum mismatch (file change by other user?)")
                    raise ApiError(500, "detected modified configuration - file changed by other user? Try again.")

            check_digest()
            if sync:
                update.apply()
                return None

            def work() -> list[str]:
                check_digest()
                return update.apply()
            task = self.cluster.tasks.get(node, self._run_task(call, "qmconfig", str(vmid), work))
            if background_delay and not task.running_polls:
                if task.exitstatus == "OK" or task.exitstatus.startswith("WARNINGS: "):
                    return None
                raise ApiError(500, f"failed to update VM {vmid}: {task.exitstatus}")
            return task.upid
        return handler

    # -- node network -----------------------------------------------------------------------------

    def _network_list(self, call: Call) -> Reply:
        network = self.cluster.node(call.params["node"]).network
        extra = {}
        changes = network.changes()
        if changes:
            extra["changes"] = changes
        type_filter = call.text("type")
        listing = network.listing(type_filter)
        if type_filter in ("vnet", "any_bridge", "include_sdn"):  # applied SDN vnets are bridges on every node
            for vnet, values in sorted(self.cluster.sdn.running["vnets"].items()):
                listing.append({"iface": vnet, "type": "vnet", "active": 1, "zone": values.get("zone")})
        return Reply(listing, extra)

    def _network_create(self, call: Call) -> None:
        network = self.cluster.node(call.params["node"]).network
        params = {key: value for key, value in call.params.items() if key not in ("node", "iface")}
        iface = call.params["iface"]
        interfaces = network.view()
        if iface in interfaces:
            raise param_error({"iface": "interface already exists"})
        for key, family in (("gateway", "gateway"), ("gateway6", "gateway6")):
            if params.get(key):
                for other, item in sorted(interfaces.items()):
                    if item.get(family):
                        raise param_error({key: f"Default gateway already exists on interface '{other}'."})
        record = _interface_record(iface, params["type"], params, interfaces)
        staged = network.edit()
        record["priority"] = network.next_priority(staged)
        staged[iface] = record

    def _network_get(self, call: Call) -> dict[str, Any]:
        network = self.cluster.node(call.params["node"]).network
        item = network.view().get(call.params["iface"])
        if item is None:
            raise param_error({"iface": "interface does not exist"})
        return copy.deepcopy(item)

    def _network_update(self, call: Call) -> None:
        network = self.cluster.node(call.params["node"]).network
        iface = call.params["iface"]
        if iface not in network.view():
            raise param_error({"iface": "interface does not exist"})
        params = {key: value for key, value in call.params.items() if key not in ("node", "iface", "delete")}
        item = network.edit()[iface]
        if params.get("type") != item.get("type"):
            raise param_error({"type": f"interface type '{params.get('type')}' does not match the current type "
                                       f"'{item.get('type')}'"})
        for key in split_list(call.text("delete")):
            item.pop(key, None)
            if key in ("cidr", "address"):
                for related in ("cidr", "address", "netmask"):
                    item.pop(related, None)
            if key in ("cidr6", "address6"):
                for related in ("cidr6", "address6", "netmask6"):
                    item.pop(related, None)
        for key, family in (("gateway", "gateway"), ("gateway6", "gateway6")):
            if params.get(key):
                for other, other_item in sorted(network.view().items()):
                    if other != iface and other_item.get(family):
                        raise param_error({key: f"Default gateway already exists on interface '{other}'."})
        updated = _interface_record(iface, item["type"], params, network.view(), previous=item)
        item.clear()
        item.update(updated)

    def _network_delete(self, call: Call) -> None:
        network = self.cluster.node(call.params["node"]).network
        iface = call.params["iface"]
        if iface not in network.view():
            raise param_error({"iface": "interface does not exist"})
        del network.edit()[iface]

    def _network_apply(self, call: Call) -> str:
        network = self.cluster.node(call.params["node"]).network

        def work() -> list[str]:
            if network.staged is not None:
                network.active, network.staged = network.staged, None
            return []
        return self._run_task(call, "srvreload", "networking", work)

    def _network_revert(self, call: Call) -> None:
        self.cluster.node(call.params["node"]).network.staged = None

    # -- SDN --------------------------------------------------------------------------------------

    def _check_sdn_lock(self, call: Call) -> None:
        sdn = self.cluster.sdn
        if self.version >= 9 and sdn.lock_token is not None and call.text("lock-token") != sdn.lock_token:
            raise ApiError(500, "invalid lock token provided")

    def _sdn_index(self, call: Call) -> list[dict[str, str]]:
        names = ["vnets", "zones", "controllers", "ipams", "dns"]
        if self.version >= 9:
            names += ["fabrics", "lock", "rollback"]
        return [{"id": name} for name in names]

    def _sdn_apply(self, call: Call) -> str:
        self._check_sdn_lock(call)
        sdn = self.cluster.sdn
        release = call.flag("release-lock", True)

        def work() -> list[str]:
            sdn.running = copy.deepcopy(sdn.config)
            if self.version >= 9 and release:
                sdn.lock_token = None
            return []
        return self._run_task(call, "reloadnetworkall", "", work)

    def _sdn_lock(self, call: Call) -> str:
        sdn = self.cluster.sdn
        if sdn.lock_token is not None:
            raise ApiError(500, "could not acquire lock for SDN config - lock already held")
        if sdn.has_pending() and not call.flag("allow-pending"):
            raise ApiError(500, "there are pending changes - use allow-pending to lock anyway")
        sdn.lock_token = secrets.token_hex(16)
        return sdn.lock_token

    def _sdn_unlock(self, call: Call) -> None:
        sdn = self.cluster.sdn
        if sdn.lock_token is None:  # nothing to release (e.g. apply or rollback already released it)
            return
        if not call.flag("force") and call.text("lock-token") != sdn.lock_token:
            raise ApiError(500, "invalid lock token provided")
        sdn.lock_token = None

    def _sdn_rollback(self, call: Call) -> None:
        self._check_sdn_lock(call)
        sdn = self.cluster.sdn
        sdn.config = copy.deepcopy(sdn.running)
        if call.flag("release-lock", True):
            sdn.lock_token = None

    _SDN_ID_KEYS = {"zones": "zone", "vnets": "vnet", "subnets": "subnet"}
    _SDN_CONTROL = ("digest", "delete", "lock-token", "release-lock", "pending", "running")

    def _sdn_item(self, kind: str, ident: str, values: Mapping[str, Any], digest: str | None) -> dict[str, Any]:
        item: dict[str, Any] = {self._SDN_ID_KEYS[kind]: ident, **copy.deepcopy(dict(values))}
        if kind == "subnets":
            zone, network_address, mask = _split_subnet_id(ident)
            item.update({"cidr": f"{network_address}/{mask}", "network": network_address, "mask": mask, "zone": zone})
        if digest is not None:
            item["digest"] = digest
        return item

    def _sdn_view(self, kind: str, call: Call) -> tuple[dict[str, dict[str, Any]], str | None]:
        sdn = self.cluster.sdn
        if call.flag("pending"):
            return sdn.pending_view(kind), None
        if call.flag("running"):
            return sdn.running[kind], None
        return sdn.config[kind], sdn.digest(kind)

    def _sdn_list(self, kind: str) -> Handler:
        def handler(call: Call) -> list[dict[str, Any]]:
            view, digest = self._sdn_view(kind, call)
            result = []
            for ident, values in sorted(view.items()):
                if kind == "subnets" and values.get("vnet") != call.params["vnet"]:
                    continue
                if call.text("type") and values.get("type") != call.text("type"):
                    continue
                result.append(self._sdn_item(kind, ident, values, digest))
            return result
        return handler

    def _sdn_lookup(self, kind: str, call: Call, view: Mapping[str, Any]) -> tuple[str, Any]:
        ident = call.params[self._SDN_ID_KEYS[kind]]
        values = view.get(ident)
        if values is None or (kind == "subnets" and values.get("vnet") != call.params["vnet"]):
            raise ApiError(500, f"sdn {self._SDN_ID_KEYS[kind]} '{ident}' does not exist")
        return ident, values

    def _sdn_get(self, kind: str) -> Handler:
        def handler(call: Call) -> dict[str, Any]:
            view, digest = self._sdn_view(kind, call)
            ident, values = self._sdn_lookup(kind, call, view)
            return self._sdn_item(kind, ident, values, digest)
        return handler

    def _sdn_fields(self, call: Call, *skip: str) -> dict[str, Any]:
        fields = {key: value for key, value in call.params.items() if key not in self._SDN_CONTROL + skip}
        if isinstance(fields.get("dhcp-range"), str):  # one range, sent without the schema's array typing
            fields["dhcp-range"] = [fields["dhcp-range"]]
        return fields

    def _zone_create(self, call: Call) -> None:
        self._check_sdn_lock(call)
        zones = self.cluster.sdn.config["zones"]
        zone = call.params["zone"]
        if zone in zones:
            raise ApiError(500, f"sdn zone object ID '{zone}' already defined")
        fields = self._sdn_fields(call, "zone")
        _check_zone(fields, self.version)
        zones[zone] = fields

    def _vnet_create(self, call: Call) -> None:
        self._check_sdn_lock(call)
        vnets = self.cluster.sdn.config["vnets"]
        vnet = call.params["vnet"]
        if vnet in vnets:
            raise ApiError(500, f"sdn vnet object ID '{vnet}' already defined")
        fields = {"type": "vnet", **self._sdn_fields(call, "vnet")}
        self._check_vnet(vnet, fields)
        vnets[vnet] = fields

    def _check_vnet(self, vnet: str, fields: Mapping[str, Any]) -> None:
        """pve-network vnet_update_hook of the zone's plugin: tag rules per zone type."""
        zone = self.cluster.sdn.config["zones"].get(fields.get("zone", ""))
        if zone is None:
            raise param_error({"zone": f"zone '{fields.get('zone')}' doesn't exist"})
        tag = fields.get("tag")
        zone_type = zone.get("type")
        if zone_type == "simple" and tag is not None:
            raise param_error({"tag": "vlan tag is not allowed on simple zone"})
        if zone_type in ("vlan", "qinq"):
            if tag is None:
                raise param_error({"tag": "missing vlan tag"})
            if int(tag) > 4096:
                raise param_error({"tag": "vlan tag max value is 4096"})
        if zone_type in ("vxlan", "evpn"):
            if tag is None:
                raise param_error({"tag": "missing vxlan tag"})
            if int(tag) > 16777216:
                raise param_error({"tag": "vxlan tag max value is 16777216"})
        if tag is not None:
            for other, values in sorted(self.cluster.sdn.config["vnets"].items()):
                if other != vnet and values.get("zone") == fields.get("zone") and values.get("tag") == tag:
                    raise param_error({"tag": f"tag {tag} already exist in vnet {other}"})

    def _subnet_create(self, call: Call) -> None:
        self._check_sdn_lock(call)
        sdn = self.cluster.sdn
        vnet = call.params["vnet"]
        vnet_config = sdn.config["vnets"].get(vnet)
        if vnet_config is None:
            raise param_error({"vnet": f"vnet '{vnet}' doesn't exist"})
        cidr = call.params["subnet"]
        ident = f"{vnet_config['zone']}-{cidr.replace('/', '-')}"
        if ident in sdn.config["subnets"]:
            raise ApiError(500, f"sdn subnet object ID '{ident}' already defined")
        fields = self._sdn_fields(call, "subnet")
        _check_subnet(cidr, fields)
        sdn.config["subnets"][ident] = fields

    def _sdn_update(self, kind: str) -> Handler:
        def handler(call: Call) -> None:
            self._check_sdn_lock(call)
            sdn = self.cluster.sdn
            ident, values = self._sdn_lookup(kind, call, sdn.config[kind])
            digest = call.text("digest")
            if digest and digest != sdn.digest(kind):
                raise ApiError(500, "detected modified configuration - file changed by other user? Try again.")
            updated = dict(values)
            for key in split_list(call.text("delete")):
                updated.pop(key, None)
            path_keys = (self._SDN_ID_KEYS[kind], "vnet") if kind == "subnets" else (self._SDN_ID_KEYS[kind],)
            updated.update(self._sdn_fields(call, *path_keys))
            if kind == "zones":
                _check_zone(updated, self.version)
            elif kind == "vnets":
                self._check_vnet(ident, updated)
            else:
                _check_subnet(f"{_split_subnet_id(ident)[1]}/{_split_subnet_id(ident)[2]}", updated)
            sdn.config[kind][ident] = updated
        return handler

    def _sdn_delete(self, kind: str) -> Handler:
        def handler(call: Call) -> None:
            self._check_sdn_lock(call)
            sdn = self.cluster.sdn
            ident, _values = self._sdn_lookup(kind, call, sdn.config[kind])
            if kind == "zones":
                for vnet, values in sorted(sdn.config["vnets"].items()):
                    if values.get("zone") == ident:
                        raise ApiError(500, f"zone {ident} is used by vnet {vnet}")
            if kind == "vnets" and any(values.get("vnet") == ident for values in sdn.config["subnets"].values()):
                raise param_error({"vnet": "Can't delete vnet if subnets exists"})
            del sdn.config[kind][ident]
        return handler

    # -- firewall ---------------------------------------------------------------------------------

    def _firewall_routes(self, prefix: str) -> dict[str, dict[str, Handler]]:
        cluster_scope = prefix == "/cluster/firewall"
        names = ["aliases", "groups", "ipset", "macros", "options", "refs", "rules"] if cluster_scope \
            else ["aliases", "ipset", "log", "options", "refs", "rules"]
        rules = {"GET": self._rules_list(None), "POST": self._rule_create(None)}
        rule = {"GET": self._rule_get(None), "PUT": self._rule_update(None), "DELETE": self._rule_delete(None)}
        ipset_entry = {"GET": self._ipset_entry_get, "PUT": self._ipset_entry_update, "DELETE": self._ipset_entry_delete}
        routes: dict[str, dict[str, Handler]] = {
            prefix: {"GET": lambda call: [{"name": name} for name in names]},
            prefix + "/refs": {"GET": self._firewall_refs},
            prefix + "/rules": rules,
            prefix + "/rules/{pos}": rule,
            prefix + "/ipset": {"GET": self._ipset_list, "POST": self._ipset_create},
            prefix + "/ipset/{name}": {"GET": self._ipset_get, "POST": self._ipset_add, "DELETE": self._ipset_delete},
            prefix + "/ipset/{name}/{cidr}": ipset_entry,
            prefix + "/aliases": {"GET": self._alias_list, "POST": self._alias_create},
            prefix + "/aliases/{name}": {"GET": self._alias_get, "PUT": self._alias_update, "DELETE": self._alias_delete},
            prefix + "/options": {"GET": self._options_get, "PUT": self._options_update},
        }
        if cluster_scope:
            group_rule = {"GET": self._rule_get("group"), "PUT": self._rule_update("group"),
                          "DELETE": self._rule_delete("group")}
            routes[prefix + "/macros"] = {"GET": lambda call: [{"macro": name, "descr": f"{name} (macro)"}
                                                               for name in FIREWALL_MACROS]}
            routes[prefix + "/groups"] = {"GET": self._group_list, "POST": self._group_create}
            routes[prefix + "/groups/{group}"] = {"GET": self._rules_list("group"), "POST": self._rule_create("group"),
                                                  "DELETE": self._group_delete}
            routes[prefix + "/groups/{group}/{pos}"] = group_rule
        return routes

    def _firewall_file(self, call: Call) -> FirewallFile:
        if "vmid" in call.params:
            return self.cluster.guest_firewall(int(call.params["vmid"]))
        return self.cluster.firewall

    def _rules_of(self, call: Call, scope: str | None) -> list[dict[str, Any]]:
        firewall = self._firewall_file(call)
        if scope == "group":
            group = firewall.groups.get(call.params["group"])
            if group is None:
                raise ApiError(500, f"no such security group '{call.params['group']}'")
            return group["rules"]
        return firewall.rules

    @staticmethod
    def _assert_digest(call: Call, digest: str) -> None:
        wanted = call.text("digest")
        if wanted and wanted != digest:
            raise ApiError(500, "detected modified configuration - file changed by other user? Try again.")

    def _rules_list(self, scope: str | None) -> Handler:
        def handler(call: Call) -> list[dict[str, Any]]:
            return rule_listing(self._rules_of(call, scope), self._firewall_file(call).digest)
        return handler

    def _rule_at(self, call: Call, rules: list[dict[str, Any]]) -> dict[str, Any]:
        position = int(call.params["pos"])
        if position >= len(rules):
            raise ApiError(500, f"no rule at position {position}")
        return rules[position]

    def _rule_get(self, scope: str | None) -> Handler:
        def handler(call: Call) -> dict[str, Any]:
            rules = self._rules_of(call, scope)
            rule = self._rule_at(call, rules)
            return rule_listing([rule], self._firewall_file(call).digest)[0] | {"pos": int(call.params["pos"])}
        return handler

    def _rule_create(self, scope: str | None) -> Handler:
        def handler(call: Call) -> None:
            firewall = self._firewall_file(call)
            rules = self._rules_of(call, scope)
            self._assert_digest(call, firewall.digest)
            rule = _copy_rule_data({}, call.params)
            self._verify_rule(rule, call)
            rule.setdefault("enable", 0)
            rules.insert(0, rule)
        return handler

    def _rule_update(self, scope: str | None) -> Handler:
        def handler(call: Call) -> None:
            firewall = self._firewall_file(call)
            rules = self._rules_of(call, scope)
            self._assert_digest(call, firewall.digest)
            rule = self._rule_at(call, rules)
            position = int(call.params["pos"])
            moveto = call.number("moveto")
            if moveto is not None and moveto != position:
                rules.pop(position)
                rules.insert(min(moveto, len(rules)) if moveto <= position else min(moveto - 1, len(rules)), rule)
                return
            updated = _copy_rule_data(dict(rule), call.params)
            for key in split_list(call.text("delete")):
                updated.pop(key, None)
            self._verify_rule(updated, call)
            rule.clear()
            rule.update(updated)
        return handler

    def _rule_delete(self, scope: str | None) -> Handler:
        def handler(call: Call) -> None:
            firewall = self._firewall_file(call)
            rules = self._rules_of(call, scope)
            self._assert_digest(call, firewall.digest)
            self._rule_at(call, rules)
            rules.pop(int(call.params["pos"]))
        return handler

    def _verify_rule(self, rule: dict[str, Any], call: Call) -> None:
        """pve-firewall verify_rule (the checks a client can trip over)."""
        errors: dict[str, str] = {}
        guest_scope = "vmid" in call.params
        action = rule.get("action")
        if rule.get("type") == "group":
            if action not in self.cluster.firewall.groups:
                errors["action"] = f"security group '{action}' does not exist"
        elif action not in ("ACCEPT", "DROP", "REJECT"):
            errors["action"] = f"unknown action '{action}'"
        macro = rule.get("macro")
        if macro:
            preferred = {name.lower(): name for name in FIREWALL_MACROS}.get(macro.lower())
            if preferred is None:
                errors["macro"] = f"unknown macro '{macro}'"
            else:
                rule["macro"] = preferred
        iface = rule.get("iface")
        if iface and guest_scope and not re.fullmatch(r"net\d+", iface):
            errors["iface"] = f"invalid interface name '{iface}' - must be netN"
        proto = rule.get("proto")
        for key in ("dport", "sport"):
            if rule.get(key):
                if not proto:
                    errors["proto"] = f"missing property - '{key}' requires this property"
                elif proto.lower() not in PROTOCOLS_WITH_PORTS:
                    errors[key] = f"protocol '{proto}' does not support ports"
        if rule.get("icmp-type") and (proto or "").lower() not in ("icmp", "icmpv6", "ipv6-icmp", "1", "58"):
            errors["proto"] = "missing property - 'icmp-type' requires this property"
        for key in ("source", "dest"):
            spec = rule.get(key)
            if not spec:
                continue
            firewall = self._firewall_file(call)
            if spec.startswith("+"):
                name = spec[1:].split("/")[-1]
                scoped = spec[1:].startswith(("dc/", "guest/"))
                known = set(self.cluster.firewall.ipsets) | (set(firewall.ipsets) if not scoped else set())
                if name not in known and not spec.startswith("+guest/"):
                    errors[key] = f"no such ipset '{name}'"
            elif re.fullmatch(r"(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+", spec) and ip_version(spec) is None:
                name = spec.split("/")[-1].lower()
                if name not in self.cluster.firewall.aliases and name not in firewall.aliases:
                    errors[key] = f"no such alias '{spec}'"
        if errors:
            raise param_error(errors)

    def _firewall_refs(self, call: Call) -> list[dict[str, Any]]:
        """IP sets and aliases usable in source/dest (``dc`` scope, plus ``guest`` for a guest)."""
        scopes = [("dc", self.cluster.firewall)]
        if "vmid" in call.params:
            scopes.append(("guest", self._firewall_file(call)))
        wanted = call.text("type")
        result: list[dict[str, Any]] = []
        for scope, firewall in scopes:
            if wanted in (None, "ipset"):
                result.extend({"type": "ipset", "name": name, "ref": f"+{scope}/{name}", "scope": scope,
                               **({"comment": ipset["comment"]} if ipset.get("comment") else {})}
                              for name, ipset in sorted(firewall.ipsets.items()))
            if wanted in (None, "alias"):
                result.extend({"type": "alias", "name": name, "ref": f"{scope}/{name}", "scope": scope,
                               **({"comment": alias["comment"]} if alias.get("comment") else {})}
                              for name, alias in sorted(firewall.aliases.items()))
        return result

    def _ipset_list(self, call: Call) -> list[dict[str, Any]]:
        firewall = self._firewall_file(call)
        return [{"name": name, **({"comment": ipset["comment"]} if ipset.get("comment") else {}),
                 "digest": firewall.digest} for name, ipset in sorted(firewall.ipsets.items())]

    def _ipset_create(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        self._assert_digest(call, firewall.digest)
        name, rename, comment = call.params["name"], call.text("rename"), call.text("comment")
        if rename:
            if rename not in firewall.ipsets:
                raise ApiError(500, f"IPSet '{rename}' does not exist")
            if rename != name and name in firewall.ipsets:
                raise ApiError(500, f"IPSet '{name}' does already exist")
            ipset = firewall.ipsets.pop(rename)
            firewall.ipsets[name] = ipset
        elif name in firewall.ipsets:
            raise ApiError(500, f"IPSet '{name}' already exists")
        else:
            firewall.ipsets[name] = {"comment": None, "entries": []}
        if comment is not None:
            firewall.ipsets[name]["comment"] = comment

    def _ipset(self, call: Call) -> dict[str, Any]:
        firewall = self._firewall_file(call)
        ipset = firewall.ipsets.get(call.params["name"])
        if ipset is None:
            raise ApiError(500, f"no such IPSet '{call.params['name']}'")
        return ipset

    def _ipset_get(self, call: Call) -> list[dict[str, Any]]:
        digest = self._firewall_file(call).digest
        return [{**entry, "digest": digest} for entry in self._ipset(call)["entries"]]

    def _ipset_add(self, call: Call) -> None:
        ipset = self._ipset(call)
        cidr = call.params["cidr"]
        if any(entry["cidr"] == cidr for entry in ipset["entries"]):
            raise ApiError(500, f"address '{cidr}' already exists")
        if re.fullmatch(r"(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+", cidr):
            name = cidr.split("/")[-1].lower()
            if name not in self.cluster.firewall.aliases and name not in self._firewall_file(call).aliases:
                raise ApiError(500, f"no such alias '{cidr}'")
        entry: dict[str, Any] = {"cidr": cidr}
        if call.text("comment") is not None:
            entry["comment"] = call.params["comment"]
        if call.flag("nomatch"):
            entry["nomatch"] = 1
        ipset["entries"].append(entry)

    def _ipset_delete(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        ipset = self._ipset(call)
        if ipset["entries"] and not call.flag("force"):
            raise ApiError(500, f"IPSet '{call.params['name']}' is not empty")
        del firewall.ipsets[call.params["name"]]

    def _ipset_entry(self, call: Call) -> dict[str, Any]:
        for entry in self._ipset(call)["entries"]:
            if entry["cidr"] == call.params["cidr"]:
                return entry
        raise ApiError(500, f"can't find entry '{call.params['cidr']}'")

    def _ipset_entry_get(self, call: Call) -> dict[str, Any]:
        return {**self._ipset_entry(call), "digest": self._firewall_file(call).digest}

    def _ipset_entry_update(self, call: Call) -> None:
        self._assert_digest(call, self._firewall_file(call).digest)
        entry = self._ipset_entry(call)
        if call.text("comment") is not None:
            entry["comment"] = call.params["comment"]
        if call.text("nomatch") is not None:
            if call.flag("nomatch"):
                entry["nomatch"] = 1
            else:
                entry.pop("nomatch", None)

    def _ipset_entry_delete(self, call: Call) -> None:
        self._assert_digest(call, self._firewall_file(call).digest)
        entry = self._ipset_entry(call)
        self._ipset(call)["entries"].remove(entry)

    def _alias_list(self, call: Call) -> list[dict[str, Any]]:
        firewall = self._firewall_file(call)
        return [{"name": name, **alias, "ipversion": ip_version(alias["cidr"]), "digest": firewall.digest}
                for name, alias in sorted(firewall.aliases.items())]

    def _alias_create(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        name = call.params["name"].lower()
        if name in firewall.aliases:
            raise ApiError(500, f"alias '{name}' already exists")
        firewall.aliases[name] = {"cidr": call.params["cidr"],
                                  **({"comment": call.params["comment"]} if call.text("comment") else {})}

    def _alias(self, call: Call) -> tuple[str, dict[str, Any]]:
        name = call.params["name"].lower()
        alias = self._firewall_file(call).aliases.get(name)
        if alias is None:
            raise ApiError(500, f"no such alias '{name}'")
        return name, alias

    def _alias_get(self, call: Call) -> dict[str, Any]:
        name, alias = self._alias(call)
        return {"name": name, **alias, "ipversion": ip_version(alias["cidr"]),
                "digest": self._firewall_file(call).digest}

    def _alias_update(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        self._assert_digest(call, firewall.digest)
        name, alias = self._alias(call)
        updated = {"cidr": call.params["cidr"], **({"comment": call.params["comment"]} if call.text("comment") else {})}
        rename = (call.text("rename") or name).lower()
        if rename != name and rename in firewall.aliases:
            raise ApiError(500, f"alias '{rename}' already exists")
        del firewall.aliases[name]
        firewall.aliases[rename] = updated

    def _alias_delete(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        self._assert_digest(call, firewall.digest)
        name, _alias = self._alias(call)
        del firewall.aliases[name]

    def _options_get(self, call: Call) -> dict[str, Any]:
        firewall = self._firewall_file(call)
        return {**{key: int(value) if re.fullmatch(r"\d+", value) else value
                   for key, value in firewall.options.items()}, "digest": firewall.digest}

    def _options_update(self, call: Call) -> None:
        firewall = self._firewall_file(call)
        self._assert_digest(call, firewall.digest)
        for key in split_list(call.text("delete")):
            firewall.options.pop(key, None)
        for key, value in call.params.items():
            if key not in ("node", "vmid", "digest", "delete"):
                firewall.options[key] = value

    def _group_list(self, call: Call) -> list[dict[str, Any]]:
        firewall = self.cluster.firewall
        return [{"group": name, **({"comment": group["comment"]} if group.get("comment") else {}),
                 "digest": firewall.digest} for name, group in sorted(firewall.groups.items())]

    def _group_create(self, call: Call) -> None:
        firewall = self.cluster.firewall
        self._assert_digest(call, firewall.digest)
        name, rename, comment = call.params["group"], call.text("rename"), call.text("comment")
        if rename:
            if rename not in firewall.groups:
                raise ApiError(500, f"Security group '{rename}' does not exist")
            if rename != name and name in firewall.groups:
                raise ApiError(500, f"Security group '{name}' does already exist")
            firewall.groups[name] = firewall.groups.pop(rename)
        elif name in firewall.groups:
            raise ApiError(500, f"Security group '{name}' already exists")
        else:
            firewall.groups[name] = {"comment": None, "rules": []}
        if comment is not None:
            firewall.groups[name]["comment"] = comment

    def _group_delete(self, call: Call) -> None:
        firewall = self.cluster.firewall
        name = call.params["group"]
        group = firewall.groups.get(name)
        if group is None:
            raise ApiError(500, f"no such security group '{name}'")
        if group["rules"]:
            raise ApiError(500, f"security group '{name}' is not empty")
        del firewall.groups[name]


# ---------------------------------------------------------------------------------------------
# Helpers


_FINGERPRINT = ":".join(["AB"] * 32)


def _field_name(name: str) -> str:
    return {"vlan_id": "vlan-id", "vlan_raw_device": "vlan-raw-device", "bond_primary": "bond-primary"}.get(name, name)


def _interface_record(iface: str, kind: str, params: Mapping[str, Any], interfaces: Mapping[str, Mapping[str, Any]],
                      previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An interface as PVE stores it after create_network/update_network (method from this call's address)."""
    params = dict(params)
    params.pop("type", None)
    record: dict[str, Any] = dict(previous or {})
    record.pop("priority", None)
    record["type"] = kind
    if params.get("cidr"):
        address, _slash, bits = params["cidr"].partition("/")
        params["address"], params["netmask"] = address, bits
    elif params.get("address") and params.get("netmask"):
        netmask = params["netmask"]
        bits = netmask if netmask.isdigit() else str(ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen)
        params["cidr"] = f"{params['address']}/{bits}"
    if params.get("cidr6"):
        address6, _slash, bits6 = params["cidr6"].partition("/")
        params["address6"], params["netmask6"] = address6, bits6
    families = ["inet"]
    if params.get("address6") or (previous or {}).get("address6"):
        families = ["inet", "inet6"] if params.get("address") or (previous or {}).get("address") else ["inet6"]
    record["families"] = families
    record["method"] = "static" if params.get("address") else "manual"
    record["method6"] = "static" if params.get("address6") else "manual"
    for key in ("autostart", "bridge_vlan_aware"):
        if key in params:
            if params.pop(key) == "1":
                record[key] = 1
            else:
                record.pop(key, None)
    if kind == "bridge":
        if "bridge_ports" in params:
            ports = sorted(split_list(params.pop("bridge_ports")))
            for port in ports:
                for other, item in sorted(interfaces.items()):
                    if other != iface and port in split_list(item.get("bridge_ports", "")):
                        raise param_error({"bridge_ports": f"{port} is already used on interface '{other}'"})
            record["bridge_ports"] = " ".join(ports)
        record.setdefault("bridge_ports", "")
        record.setdefault("bridge_stp", "off")
        record.setdefault("bridge_fd", "0")
    if kind == "vlan":
        match = re.fullmatch(r"(\S+)\.(\d+)", iface)
        if match:
            record.setdefault("vlan-raw-device", match.group(1))
            record.setdefault("vlan-id", match.group(2))
        elif not params.get("vlan-raw-device") and not record.get("vlan-raw-device"):
            raise param_error({"vlan-raw-device": "vlan-raw-device is required"})
    for key, value in params.items():
        record[key] = value
    return record


def _check_zone(fields: Mapping[str, Any], version: int) -> None:
    """The zone type's SectionConfig options: required keys and keys the type does not know."""
    zone_type = fields.get("type", "")
    allowed = set(SDN_ZONE_OPTIONS.get(zone_type, ())) | set(SDN_ZONE_COMMON) | {"type"}
    for key in sorted(fields):
        if key not in allowed:
            raise ApiError(500, f"unexpected property '{key}'")
    required = SDN_ZONE_REQUIRED.get(zone_type, ())
    if zone_type == "vxlan" and version >= 9 and fields.get("fabric"):
        required = ()
    errors = {key: "property is missing and it is not optional" for key in required if fields.get(key) in (None, "")}
    if errors:
        raise param_error(errors)


def _check_subnet(cidr: str, fields: Mapping[str, Any]) -> None:
    network = ipaddress.ip_network(cidr, strict=False)
    gateway = fields.get("gateway")
    if gateway and ipaddress.ip_address(gateway) not in network:
        raise param_error({"gateway": f"gateway ip {gateway} is not part of subnet {cidr}"})


def _split_subnet_id(ident: str) -> tuple[str, str, str]:
    zone, _dash, rest = ident.partition("-")
    address, _dash, mask = rest.rpartition("-")
    return zone, address, mask


def _copy_rule_data(rule: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    for key in FIREWALL_RULE_KEYS:
        if key in params:
            rule[key] = int(params[key]) if key == "enable" else params[key]
    return rule


def _form_params(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in result:
            previous = result[key]
            result[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            result[key] = value
    return result


def _body_params(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if "application/json" in content_type:
        try:
            document = json.loads(body)
        except ValueError:
            raise ApiError(400, "malformed JSON body") from None
        if not isinstance(document, dict):
            raise ApiError(400, "malformed JSON body")
        return {key: _json_scalar(value) for key, value in document.items()}
    return _form_params(body.decode("utf-8", "replace"))


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return [_json_scalar(item) for item in value]
    return value


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _equals, value = part.strip().partition("=")
        if key == name:
            return unquote(value)
    return None


def write_certificates(directory: Path, host: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for ``host`` (made now, never committed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ghostwarden PVE test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        alt_names = [x509.DNSName(host)]
    alt_names.append(x509.DNSName("localhost"))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(ca_path), str(cert_path), str(key_path)


class _HttpsServer(ThreadingHTTPServer):
    """TLS per connection in the connection's own thread, so one slow handshake blocks nobody."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext, pve: PveServer) -> None:
        self.ssl_context = context
        self.pve = pve
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal here; handler bugs surface as 500 responses instead."""

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
    timeout = 120

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        """Quiet: the request log is PveServer.requests."""

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        pve: PveServer = self.server.pve  # type: ignore[attr-defined]
        try:
            status, reason, payload = pve.handle(method, self.path, self.headers, body)
        except Exception as error:  # a bug in the emulation must not look like a hung server
            status, reason = 500, f"internal error in the PVE test server: {error!r}"
            payload = json.dumps({"data": None, "message": reason + "\n"}).encode()
        reason = reason.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")
