# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Request validation the way PVE's ``PVE::JSONSchema`` does it.

The official API schema (``apidata-v8.json`` / ``apidata-v9.json``, a tree of
``{path, info: {METHOD: {parameters: {properties}}}, children}``) is read from
``$GHOSTWARDEN_PVE_SCHEMA_DIR`` or ``<repo>/../shared/pve``; without it the server skips the
check. The checks, their order and their messages follow ``check_prop``/``check_type``/
``check_format``/``parse_property_string`` of pve-common, so a request refused here is refused by a
real PVE with the same ``errors`` text. Named formats that this file does not know are accepted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

SCHEMA_DIR_ENV = "GHOSTWARDEN_PVE_SCHEMA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[3]

ParamValue = Union[str, list]


class FormatError(Exception):
    """A value that a format check refuses; ``str()`` is PVE's ``$@`` text (ends with a newline)."""


def locate_schema_dir() -> Path | None:
    """The directory with apidata-v8/v9.json: $GHOSTWARDEN_PVE_SCHEMA_DIR, else <repo>/../shared/pve."""
    configured = os.environ.get(SCHEMA_DIR_ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "pve")
    for candidate in candidates:
        if (candidate / "apidata-v8.json").is_file() or (candidate / "apidata-v9.json").is_file():
            return candidate
    return None


def template_regex(template: str) -> re.Pattern:
    """``/nodes/{node}/qemu`` -> a regex with one named group per path parameter."""
    parts = []
    for segment in template.strip("/").split("/"):
        match = re.fullmatch(r"\{([^}]+)\}", segment)
        parts.append(f"(?P<{_group_name(match.group(1))}>[^/]+)" if match else re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$") if parts != [""] else re.compile("^/$")


def _group_name(parameter: str) -> str:
    return "p_" + re.sub(r"\W", "_", parameter)


class ApiSchema:
    """The method table of one PVE major version."""

    def __init__(self, version: int, schema_dir: Path) -> None:
        self.version = version
        path = Path(schema_dir) / f"apidata-v{version}.json"
        with open(path, encoding="utf-8") as handle:
            tree = json.load(handle)
        self.methods: dict[tuple[str, str], dict] = {}
        self._walk(tree)

    def _walk(self, node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                self._walk(child)
            return
        for method, info in (node.get("info") or {}).items():
            self.methods[(node["path"], method)] = info
        for child in node.get("children") or []:
            self._walk(child)

    def method_info(self, template: str, method: str) -> dict | None:
        return self.methods.get((template, method))

    def parameters(self, template: str, method: str) -> dict[str, dict]:
        info = self.method_info(template, method) or {}
        return (info.get("parameters") or {}).get("properties") or {}

    def property_schema(self, template: str, method: str, name: str) -> dict | None:
        return property_for(self.parameters(template, method), name)


# Indexed properties (``net[n]`` in the api-viewer data stand for net0..net31 in the real schema).
INDEXED_MAXIMUM = {
    "net": 32, "ipconfig": 32, "ide": 4, "sata": 6, "scsi": 31, "virtio": 16, "hostpci": 16,
    "usb": 14, "serial": 4, "parallel": 3, "numa": 8, "unused": 256, "virtiofs": 10, "mp": 256,
    "dev": 256, "link": 8, "acmedomain": 6,
}


def property_for(properties: Mapping[str, dict], name: str) -> dict | None:
    """The schema of parameter ``name`` (``net7`` finds ``net[n]``)."""
    if name in properties:
        return properties[name]
    match = re.fullmatch(r"([a-z][a-z_-]*?)(\d+)", name)
    if match:
        prefix, index = match.group(1), int(match.group(2))
        schema = properties.get(f"{prefix}[n]")
        if schema is not None and str(index) == match.group(2) and index < INDEXED_MAXIMUM.get(prefix, 1 << 30):
            return schema
    return None


# ---------------------------------------------------------------------------------------------
# Top-level validation (PVE::JSONSchema::validate with additionalProperties 0)


def validate_parameters(properties: Mapping[str, dict], params: Mapping[str, Any]) -> dict[str, str]:
    """Errors ``{param: message}`` for ``params`` (strings, or lists for repeated keys)."""
    errors: dict[str, str] = {}
    for name, schema in sorted(properties.items()):
        if name.endswith("[n]"):
            continue
        check_prop(params.get(name), schema, name, errors)
    for name in sorted(params):
        schema = property_for(properties, name)
        if schema is None:
            add_error(errors, name, "property is not defined in schema and the schema does not allow "
                                    "additional properties")
            continue
        if name not in properties:  # an indexed property: checked here, not in the loop above
            check_prop(params[name], schema, name, errors)
        requires = schema.get("requires")
        if isinstance(requires, str) and params.get(requires) is None:
            add_error(errors, requires, f"missing property - '{name}' requires this property")
    return errors


def add_error(errors: dict[str, str], path: str, message: str) -> None:
    path = path or "_root"
    errors[path] = f"{errors[path]}\\n{message}" if path in errors else message


_NUMBER = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def is_number(value: str) -> bool:
    return bool(_NUMBER.match(value))


def check_type(path: str, kind: str | None, value: Any, errors: dict[str, str]) -> bool:
    if not kind or kind == "any":
        return True
    if kind == "array":
        if not isinstance(value, list):
            add_error(errors, path, f"type check ('{kind}') failed")
            return False
        return True
    if kind == "object":
        if not isinstance(value, dict):
            add_error(errors, path, f"type check ('{kind}') failed")
            return False
        return True
    if isinstance(value, list):
        add_error(errors, path, f"type check ('{kind}') failed - got ARRAY")
        return False
    if isinstance(value, dict):
        add_error(errors, path, f"type check ('{kind}') failed - got HASH")
        return False
    if kind == "boolean":
        if value in ("1", "0"):
            return True
        add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
        return False
    if kind == "integer" and not _INTEGER.match(value):
        add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
        return False
    if kind == "number" and not is_number(value):
        add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
        return False
    return True


def perl_number(value: Any) -> str:
    """How Perl prints a schema bound: 4094, not 4094.0."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def perl_regex(pattern: str) -> str:
    """Perl's stringified ``qr//`` (``(?^i:...)``) as a Python regex."""
    pattern = pattern.replace("(?^:", "(?:")
    return re.sub(r"\(\?\^([a-z]+):", r"(?\1:", pattern)


def check_prop(value: Any, schema: Mapping[str, Any], path: str, errors: dict[str, str]) -> None:
    if value is None:
        if schema.get("type") == "null":
            return
        if not schema.get("optional") and not schema.get("alias") and not schema.get("group"):
            add_error(errors, path, "property is missing and it is not optional")
        return
    if not check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, element in enumerate(value):
                check_prop(element, items, f"{path}[{index}]", errors)
        return
    if isinstance(value, dict):
        return
    value_format = schema.get("format")
    if value_format:
        try:
            check_format(value_format, value, path)
        except FormatError as error:
            add_error(errors, path, f"invalid format - {error}")
            return
    pattern = schema.get("pattern")
    if pattern and not re.search(f"^{perl_regex(pattern)}$", value):
        add_error(errors, path, "value does not match the regex pattern")
        return
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        add_error(errors, path, f"value may only be {schema['maxLength']} characters long")
        return
    if "minLength" in schema and len(value) < schema["minLength"]:
        add_error(errors, path, f"value must be at least {schema['minLength']} characters long")
        return
    if is_number(value):
        if "maximum" in schema and float(value) > float(schema["maximum"]):
            add_error(errors, path, f"value must have a maximum value of {perl_number(schema['maximum'])}")
            return
        if "minimum" in schema and float(value) < float(schema["minimum"]):
            add_error(errors, path, f"value must have a minimum value of {perl_number(schema['minimum'])}")
            return
    enum = schema.get("enum")
    if enum and value not in [str(item) for item in enum]:
        add_error(errors, path, f"value '{value}' does not have a value in the enumeration '"
                                + ", ".join(str(item) for item in enum) + "'")


def check_format(value_format: Any, value: str, path: str) -> Any:
    if isinstance(value_format, dict):
        return parse_property_string(value_format, value, path)
    if value_format == "regex":
        return None
    match = re.match(r"^(.*?)(?:-(list|opt))?$", value_format)
    assert match is not None
    name, list_kind = match.group(1), match.group(2)
    registered = NAMED_FORMATS.get(name)
    if registered is None:
        if list_kind is None and value_format in NAMED_FORMATS:
            registered = NAMED_FORMATS[value_format]
        else:
            return None  # a format this emulation does not model: accepted
    if list_kind == "list":
        return [_apply_format(registered, name, element, path) for element in split_list(value)]
    if list_kind == "opt":
        return _apply_format(registered, name, value, path) if value else None
    return _apply_format(registered, name, value, path)


def _apply_format(registered: Any, name: str, value: str, path: str) -> Any:
    if isinstance(registered, dict):
        return parse_property_string(registered, value, path)
    return registered(value)


def split_list(text: str | None) -> list[str]:
    """PVE::Tools::split_list: NUL-, comma-, semicolon- or space-separated."""
    text = text or ""
    if "\0" in text:
        return text.split("\0")
    text = re.sub(r"[,;]", " ", text).lstrip()
    return [item for item in re.split(r"\s+", text) if item != ""] if text else []


# ---------------------------------------------------------------------------------------------
# Property strings (PVE::JSONSchema::parse_property_string / print_property_string)


def parse_boolean(text: str) -> str | None:
    if re.fullmatch(r"(1|on|yes|true)", text, re.IGNORECASE):
        return "1"
    if re.fullmatch(r"(0|off|no|false)", text, re.IGNORECASE):
        return "0"
    return None


def parse_property_string(value_format: Mapping[str, Any], data: str, path: str = "") -> dict[str, str]:
    """``virtio=AA:..,bridge=vmbr0`` -> ``{model: virtio, macaddr: AA:.., bridge: vmbr0}``."""
    result: dict[str, str] = {}
    default_key = None
    for part in data.split(","):
        if re.fullmatch(r"\s*", part):
            continue
        keyed = re.fullmatch(r"([^=]+)=(.+)", part, re.DOTALL)
        if keyed:
            key, item = keyed.group(1), keyed.group(2)
            if key in result:
                raise FormatError(f"duplicate key in comma-separated list property: {key}\n")
            schema = value_format.get(key)
            if schema and schema.get("alias"):
                key_alias = schema.get("keyAlias")
                if key_alias:
                    if key_alias in result:
                        raise FormatError(f"key alias '{key_alias}' is already defined\n")
                    result[key_alias] = key
                key = schema["alias"]
                schema = value_format.get(key)
            if not schema:
                raise FormatError(f"invalid key in comma-separated list property: {key}\n")
            if schema.get("type") == "boolean":
                parsed = parse_boolean(item)
                item = item if parsed is None else parsed
            result[key] = item
        elif "=" not in part:
            if default_key:
                raise FormatError(f"duplicate key in comma-separated list property: {default_key}\n")
            for key, schema in value_format.items():
                if schema.get("default_key"):
                    default_key = key
                    if key not in result:
                        result[key] = part
                        break
                    raise FormatError(f"duplicate key in comma-separated list property: {default_key}\n")
            if not default_key:
                raise FormatError("value without key, but schema does not define a default key\n")
        else:
            raise FormatError("missing key in comma-separated list property\n")
    errors: dict[str, str] = {}
    check_object(path, value_format, result, errors)
    if errors:
        raise FormatError("format error\n" + "".join(f"{key}: {errors[key]}\n" for key in sorted(errors)))
    return result


def check_object(path: str, value_format: Mapping[str, Any], value: Mapping[str, str], errors: dict[str, str]) -> None:
    for key, schema in sorted(value_format.items()):
        check_prop(value.get(key), schema, f"{path}.{key}" if path else key, errors)
    for key in sorted(value):
        new_path = f"{path}.{key}" if path else key
        schema = value_format.get(key)
        if schema is not None:
            requires = schema.get("requires")
            if isinstance(requires, str) and requires not in value:
                add_error(errors, f"{path}.{requires}" if path else requires,
                          f"missing property - '{new_path}' requires this property")
            continue
        add_error(errors, new_path, "property is not defined in schema and the schema does not allow additional properties")


def print_property_string(data: Mapping[str, str], value_format: Mapping[str, Any]) -> str:
    """The canonical form: default key first (merged with its keyAlias), then required keys, then the rest, sorted."""
    default_key = next((key for key, schema in value_format.items() if schema.get("default_key")), None)
    key_alias_props = {schema["keyAlias"]: schema["alias"] for schema in value_format.values()
                       if schema.get("keyAlias") and schema.get("alias")}
    parts: list[str] = []
    done: set[str] = set()

    def add(key: str, is_default: bool) -> None:
        if key in done:
            return
        done.add(key)
        item = data.get(key)
        if item is None:
            return
        combine = key_alias_props.get(key)
        if combine and data.get(combine) is not None:
            parts.append(f"{item}={data[combine]}")
            done.add(combine)
            return
        parts.append(item if is_default else f"{key}={item}")

    if default_key:
        add(default_key, True)
    for key in sorted(data):
        schema = value_format.get(key)
        if schema and not schema.get("optional"):
            add(key, False)
    for key in sorted(data):
        add(key, False)
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------
# Named formats (pve-common JSONSchema.pm, pve-firewall, pve-network, qemu-server, pve-container)


def _fail(message: str) -> FormatError:
    return FormatError(message + "\n")


CONFIGID_RE = re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE)


def _regex_format(pattern: str, message: str, flags: int = 0) -> Callable[[str], str]:
    compiled = re.compile(pattern, flags)

    def verify(value: str) -> str:
        if not compiled.search(value):
            raise _fail(message.format(value=value))
        return value
    return verify


def _ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _cidr(value: str, family: int) -> bool:
    address, _slash, bits = value.partition("/")
    if not re.fullmatch(r"\d+", bits):
        return False
    if family == 4:
        return _ipv4(address) and 7 < int(bits) <= 32
    return _ipv6(address) and 7 < int(bits) <= 128


def verify_ipv4(value: str) -> str:
    if not _ipv4(value):
        raise _fail("value does not look like a valid IPv4 address")
    return value


def verify_ipv6(value: str) -> str:
    if not _ipv6(value):
        raise _fail("value does not look like a valid IPv6 address")
    return value


def verify_ip(value: str) -> str:
    if not (_ipv4(value) or _ipv6(value)):
        raise _fail("value does not look like a valid IP address")
    return value


def verify_cidrv4(value: str) -> str:
    if not _cidr(value, 4):
        raise _fail("value does not look like a valid IPv4 CIDR network")
    return value


def verify_cidrv6(value: str) -> str:
    if not _cidr(value, 6):
        raise _fail("value does not look like a valid IPv6 CIDR network")
    return value


def verify_cidr(value: str) -> str:
    if not (_cidr(value, 4) or _cidr(value, 6)):
        raise _fail("value does not look like a valid CIDR network")
    return value


def verify_ip_or_cidr(value: str) -> str:
    if not (_ipv4(value) or _ipv6(value) or _cidr(value, 4) or _cidr(value, 6)):
        raise _fail("value does not look like a valid IP address or CIDR network")
    return value


def verify_ip_or_cidr_or_alias(value: str) -> str:
    if re.fullmatch(r"(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+", value):
        return value
    return verify_ip_or_cidr(value)


IPV4_MASKS = {str(ipaddress.IPv4Network(f"0.0.0.0/{bits}").netmask) for bits in range(33)}


def verify_ipv4mask(value: str) -> str:
    if value not in IPV4_MASKS:
        raise _fail("value does not look like a valid IP netmask")
    return value


DNS_NAME_RE = re.compile(r"^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$")


def verify_dns_name(value: str) -> str:
    if not DNS_NAME_RE.match(value):
        raise _fail("value does not look like a valid DNS name")
    return value


def verify_address(value: str) -> str:
    if not (_ipv4(value) or _ipv6(value) or DNS_NAME_RE.match(value)):
        raise _fail(f"value does not look like a valid address: {value}")
    return value


def verify_vlan_id_or_range(value: str) -> str:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
    if not match:
        raise _fail(f"invalid VLAN configuration '{value}'")
    for tag in (match.group(1), match.group(2)):
        if tag and not 2 <= int(tag) <= 4094:
            raise _fail(f"invalid VLAN tag '{tag}'")
    if match.group(2) and int(match.group(1)) >= int(match.group(2)):
        raise _fail(f"VLAN range must go from lower to higher tag '{value}'")
    return value


def verify_ipv4_config(value: str) -> str:
    if value in ("dhcp", "manual") or _cidr(value, 4):
        return value
    raise _fail("value does not look like a valid ipv4 network configuration")


def verify_ipv6_config(value: str) -> str:
    if value in ("auto", "dhcp", "manual") or _cidr(value, 6):
        return value
    raise _fail("value does not look like a valid ipv6 network configuration")


def verify_startup_order(value: str) -> str:
    for part in value.split(","):
        if part.strip() and not re.fullmatch(r"(order=)?\d+|up=\d+|down=\d+", part):
            raise _fail("unable to parse startup options")
    if not value:
        raise _fail("unable to parse startup options")
    return value


HOTPLUG_FEATURES = ("network", "disk", "cpu", "memory", "usb", "cloudinit")
DEFAULT_HOTPLUG = "network,disk,usb"


def parse_hotplug_features(value: str) -> set[str]:
    """qemu-server parse_hotplug_features: '0' none, '1' the default, else a list of features."""
    if value == "0":
        return set()
    if value == "1":
        value = DEFAULT_HOTPLUG
    features = set()
    for feature in split_list(value):
        if feature not in HOTPLUG_FEATURES:
            raise _fail(f"invalid hotplug feature '{feature}'")
        features.add(feature)
    return features


def verify_hotplug_features(value: str) -> str:
    try:
        parse_hotplug_features(value)
    except FormatError:
        raise _fail("unable to parse hotplug option") from None
    return value


def _sdn_id(kind: str) -> Callable[[str], str]:
    def verify(value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9]*[a-z0-9]", value, re.IGNORECASE):
            raise _fail(f"{kind} ID '{value}' contains illegal characters")
        if len(value) > 8:
            raise _fail(f"{kind} ID '{value}' can't be more length than 8 characters")
        return value
    return verify


def verify_sdn_subnet_id(value: str) -> str:
    if "/" in value:
        cidr = value
    else:
        pieces = value.split("-")
        cidr = f"{pieces[1]}/{pieces[2]}" if len(pieces) >= 3 else value
    if not (_cidr(cidr, 4) or _cidr(cidr, 6)):
        raise _fail("value does not look like a valid CIDR network")
    return value


def _parse_id(kind: str) -> Callable[[str], str]:
    def verify(value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9\-_.]*[a-z0-9]", value, re.IGNORECASE):
            raise _fail(f"{kind} ID '{value}' contains illegal characters")
        return value
    return verify


FIREWALL_PROTOCOLS = {
    "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8, "igp": 9, "pup": 12,
    "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37,
    "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46,
    "gre": 47, "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94,
    "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124,
    "sctp": 132, "fc": 133, "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "hip": 139,
    "shim6": 140, "wesp": 141, "rohc": 142,
}

SERVICE_NAME_RE = re.compile(r"[a-z][a-z0-9+\-]*", re.IGNORECASE)


def verify_fw_protocol(value: str) -> str:
    if re.fullmatch(r"\d+", value):
        if int(value) > 255:
            raise _fail(f"invalid protocol number '{value}'")
        return value
    if value.lower() not in FIREWALL_PROTOCOLS:
        raise _fail(f"unknown protocol '{value}'")
    return value


def verify_fw_port_spec(value: str) -> str:
    """pve-firewall parse_port_name_number_or_range: 80, 80:85, names, comma lists."""
    for item in value.split(","):
        match = re.fullmatch(r"(\d+|[a-z][a-z0-9+\-]*)(?::(\d+|[a-z][a-z0-9+\-]*))?", item, re.IGNORECASE)
        if not match:
            raise _fail(f"invalid port '{item}'")
        for port in (match.group(1), match.group(2)):
            if port and port.isdigit() and int(port) > 65535:
                raise _fail(f"invalid port '{port}'")
        if match.group(2) and match.group(1).isdigit() and match.group(2).isdigit() \
                and int(match.group(1)) > int(match.group(2)):
            raise _fail(f"invalid portrange {item}")
    return value


def verify_fw_icmp_type(value: str) -> str:
    if re.fullmatch(r"\d+(/\d+)?|[a-z][a-z0-9\-]*", value, re.IGNORECASE):
        return value
    raise _fail(f"invalid icmp-type '{value}'")


FW_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_]+")


def verify_fw_addr_spec(value: str) -> str:
    """pve-firewall parse_address_list: +ipset, an alias, or IPs/CIDRs/ranges of one family."""
    if re.fullmatch(r"\+(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+", value):
        return value
    if re.fullmatch(r"(dc/|guest/)?[A-Za-z][A-Za-z0-9\-_]+", value) and not _ipv6(value):
        return value
    elements = value.split(",")
    if value != ",".join(element for element in elements if element):
        raise _fail("extraneous commas in list")
    families = set()
    for element in elements:
        if "-" in element and "/" not in element:
            start, _dash, end = element.partition("-")
            if not ((_ipv4(start) and _ipv4(end)) or (_ipv6(start) and _ipv6(end))):
                raise _fail(f"invalid IP address range: {element}")
            families.add(4 if _ipv4(start) else 6)
            continue
        try:
            network = ipaddress.ip_network(element, strict=False)
        except ValueError:
            raise _fail(f"invalid IP address: {element}") from None
        families.add(network.version)
    if len(families) > 1:
        raise _fail("you can't mix ipv4 and ipv6 addresses")
    return value


def verify_tag(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_\-+.]*", value, re.IGNORECASE):
        raise _fail("invalid characters in tag")
    return value


def verify_urlencoded(value: str) -> str:
    if not re.fullmatch(r"[-%a-zA-Z0-9_.!~*'()]*", value):
        raise _fail(f"invalid urlencoded string: {value}")
    return value


def verify_lxc_ip_with_ll_iface(value: str) -> str:
    address, _percent, interface = value.partition("%")
    if not (_ipv4(address) or _ipv6(address)) or (interface and not _ipv6(address)):
        raise _fail(f"{value} is not a valid IP address")
    return value


NAMED_FORMATS: dict[str, Any] = {
    "pve-configid": _regex_format(CONFIGID_RE.pattern, "invalid configuration ID '{value}'", re.IGNORECASE),
    "pve-storage-id": _parse_id("storage"),
    "pve-bridge-id": _regex_format(r"^[-_.\w\d]+$", "invalid bridge ID '{value}'"),
    "pve-vmid": _regex_format(r"^[1-9][0-9]{2,8}$", "value does not look like a valid VM ID"),
    "pve-node": _regex_format(r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$", "value does not look like a valid node name"),
    "mac-addr": _regex_format(r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$",
                              "value does not look like a valid unicast MAC address", re.IGNORECASE),
    "ipv4": verify_ipv4,
    "ipv6": verify_ipv6,
    "ip": verify_ip,
    "ipv4mask": verify_ipv4mask,
    "CIDRv4": verify_cidrv4,
    "CIDRv6": verify_cidrv6,
    "CIDR": verify_cidr,
    "IPorCIDR": verify_ip_or_cidr,
    "IPorCIDRorAlias": verify_ip_or_cidr_or_alias,
    "dns-name": verify_dns_name,
    "address": verify_address,
    "pve-iface": _regex_format(r"^[a-z][a-z0-9_]{1,20}([:\.]\d+)?$", "invalid network interface name '{value}'",
                               re.IGNORECASE),
    "pve-vlan-id-or-range": verify_vlan_id_or_range,
    "pve-ipv4-config": verify_ipv4_config,
    "pve-ipv6-config": verify_ipv6_config,
    "pve-startup-order": verify_startup_order,
    "pve-hotplug-features": verify_hotplug_features,
    "pve-tag": verify_tag,
    "urlencoded": verify_urlencoded,
    "pve-sdn-zone-id": _sdn_id("zone"),
    "pve-sdn-vnet-id": _sdn_id("vnet"),
    "pve-sdn-controller-id": _sdn_id("controller"),
    "pve-sdn-ipam-id": _sdn_id("ipam"),
    "pve-sdn-dns-id": _sdn_id("dns"),
    "pve-sdn-fabric-id": _sdn_id("fabric"),
    "pve-sdn-subnet-id": verify_sdn_subnet_id,
    "pve-sdn-dhcp-range": {
        "start-address": {"type": "string", "format": "ip"},
        "end-address": {"type": "string", "format": "ip"},
    },
    "pve-fw-addr-spec": verify_fw_addr_spec,
    "pve-fw-dport-spec": verify_fw_port_spec,
    "pve-fw-sport-spec": verify_fw_port_spec,
    "pve-fw-protocol-spec": verify_fw_protocol,
    "pve-fw-icmp-type-spec": verify_fw_icmp_type,
    "lxc-ip-with-ll-iface": verify_lxc_ip_with_ll_iface,
}

# The two NIC formats, used to canonicalise netN when the schema files are absent (from
# apidata-v9.json; PVE 8 lacks ``host-managed`` on containers).
QEMU_NET_MODELS = ("e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551",
                   "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3")

QEMU_NET_FORMAT: dict[str, dict] = {
    "model": {"default_key": 1, "type": "string", "enum": list(QEMU_NET_MODELS)},
    "macaddr": {"type": "string", "format": "mac-addr", "optional": 1},
    "bridge": {"type": "string", "format": "pve-bridge-id", "optional": 1},
    "firewall": {"type": "boolean", "optional": 1},
    "link_down": {"type": "boolean", "optional": 1},
    "mtu": {"type": "integer", "minimum": 1, "maximum": 65520, "optional": 1},
    "queues": {"type": "integer", "minimum": 0, "maximum": 64, "optional": 1},
    "rate": {"type": "number", "minimum": 0, "optional": 1},
    "tag": {"type": "integer", "minimum": 1, "maximum": 4094, "optional": 1},
    "trunks": {"type": "string", "pattern": r"(?^:\d+(?:-\d+)?(?:;\d+(?:-\d+)?)*)", "optional": 1},
    **{model: {"alias": "macaddr", "keyAlias": "model"} for model in QEMU_NET_MODELS},
}

LXC_NET_FORMAT: dict[str, dict] = {
    "name": {"type": "string", "pattern": r"[-_.\w\d]+"},
    "bridge": {"type": "string", "pattern": r"[-_.\w\d]+", "optional": 1},
    "firewall": {"type": "boolean", "optional": 1},
    "gw": {"type": "string", "format": "ipv4", "optional": 1},
    "gw6": {"type": "string", "format": "ipv6", "optional": 1},
    "hwaddr": {"type": "string", "format": "mac-addr", "optional": 1},
    "ip": {"type": "string", "format": "pve-ipv4-config", "optional": 1},
    "ip6": {"type": "string", "format": "pve-ipv6-config", "optional": 1},
    "link_down": {"type": "boolean", "optional": 1},
    "mtu": {"type": "integer", "minimum": 64, "maximum": 65535, "optional": 1},
    "rate": {"type": "number", "optional": 1},
    "tag": {"type": "integer", "minimum": 1, "maximum": 4094, "optional": 1},
    "trunks": {"type": "string", "pattern": r"(?^:\d+(?:;\d+)*)", "optional": 1},
    "type": {"type": "string", "enum": ["veth"], "optional": 1},
}
LXC_NET_FORMAT_V9 = {**LXC_NET_FORMAT, "host-managed": {"type": "boolean", "optional": 1}}
