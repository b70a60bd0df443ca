# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Guest NICs (``netN``) of Proxmox VE, as plain data: parse, print, compute, compare.

A NIC is a dict of PVE property keys to canonical value strings. Canonical means the form PVE
prints (QEMU: ``model=MAC`` first, LXC: ``name=`` first, then the other keys alphabetically,
booleans ``1``/``0``, LXC ``type=veth``) and, beyond that, one spelling per value - numbers
without redundant zeros (``rate=10.0`` is ``rate=10``), MAC addresses upper case, trunk VLAN
lists sorted (QEMU ranges merged) - so that two NICs are equal exactly when their dicts are.

Also here: the NIC a task asks for (keeping the existing MAC), the first free ``netN``, a
guest's configuration read from ``GET .../pending`` (running values, values after the pending
changes, the digest), whether a change will wait for a restart, and a topology network as the
bridge and VLAN tag a guest attaches to. Pure: no Ansible, no proxmoxer, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._reading import show_repr

QEMU = "qemu"
LXC = "lxc"
GUEST_TYPES = (QEMU, LXC)
MAX_INTERFACES = 32
INTERFACE_RE = re.compile(r"net([0-9]|[12][0-9]|3[01])")
QEMU_MODELS = ("e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
               "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3")
DEFAULT_QEMU_MODEL = "virtio"
QEMU_KEYS = ("bridge", "firewall", "link_down", "macaddr", "model", "mtu", "queues", "rate", "tag", "trunks")
LXC_KEYS = ("bridge", "firewall", "gw", "gw6", "host-managed", "hwaddr", "ip", "ip6", "link_down", "mtu", "name",
            "rate", "tag", "trunks", "type")
MAC_KEY = {QEMU: "macaddr", LXC: "hwaddr"}
# Keys whose change needs the `network` hotplug feature on a running VM (qemu-server vmconfig_update_net).
QEMU_REPLUG_KEYS = ("macaddr", "model", "mtu", "queues")
DEFAULT_HOTPLUG = ("disk", "network", "usb")
TRUE_WORDS = ("1", "on", "yes", "true")
FALSE_WORDS = ("0", "off", "no", "false")
MAC_RE = re.compile(r"[0-9A-Fa-f][02468aceACE](:[0-9A-Fa-f]{2}){5}")
IDENT_RE = re.compile(r"[-_.A-Za-z0-9]+")
NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
INTEGER_RE = re.compile(r"[+-]?\d+")
VLAN_MIN, VLAN_MAX = 1, 4094
MTU_RANGE = {QEMU: (1, 65520), LXC: (64, 65535)}
QUEUES_RANGE = (0, 64)


class _Bad(ValueError):
    """A value PVE would refuse; the message names the value."""


def _kind_name(guest_type: str) -> str:
    return "QEMU" if guest_type == QEMU else "LXC"


# -- values -----------------------------------------------------------------------------------

def _boolean(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and value in (0, 1):
        return str(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return "1"
        if word in FALSE_WORDS:
            return "0"
    raise _Bad(f"{show_repr(value)} is not a boolean (1/0, on/off, yes/no, true/false)")


def _integer(value: object, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Bad(f"{show_repr(value)} is not an integer")
    if isinstance(value, str):
        if not INTEGER_RE.fullmatch(value.strip()):
            raise _Bad(f"{show_repr(value)} is not an integer")
        value = int(value.strip())
    if not low <= value <= high:
        raise _Bad(f"{value} is out of range {low}-{high}")
    return str(value)


def _rate(value: object) -> str:
    """MB/s as a number >= 0, written without exponent or redundant zeros (``10.0`` -> ``10``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"{show_repr(value)} is not a number")
    text = value.strip() if isinstance(value, str) else repr(value)
    if not NUMBER_RE.fullmatch(text):
        raise _Bad(f"{show_repr(value)} is not a number")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Bad(f"{show_repr(value)} is not a number") from None
    if number < 0:
        raise _Bad(f"{show_repr(value)} is negative (the rate limit is in MB/s, 0 or more)")
    written = format(number.normalize(), "f")
    return "0" if written in ("-0", "") else written


def _mac(value: object) -> str:
    if not isinstance(value, str) or not MAC_RE.fullmatch(value.strip()):
        raise _Bad(f"{show_repr(value)} is not a unicast MAC address XX:XX:XX:XX:XX:XX")
    return value.strip().upper()


def _ident(value: object, what: str) -> str:
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
        raise _Bad(f"{show_repr(value)} is not a {what} (letters, digits, '-', '_', '.')")
    return value


def _model(value: object) -> str:
    if value not in QEMU_MODELS:
        raise _Bad(f"{show_repr(value)} is not a QEMU NIC model ({', '.join(QEMU_MODELS)})")
    return str(value)


def _vlan(text: str, original: object) -> int:
    if not text.isdigit():
        raise _Bad(f"{show_repr(original)} is not a VLAN id")
    vid = int(text)
    if not VLAN_MIN <= vid <= VLAN_MAX:
        raise _Bad(f"VLAN id {vid} is out of range {VLAN_MIN}-{VLAN_MAX}")
    return vid


def _trunk_items(value: object) -> list[object]:
    if isinstance(value, str):
        return list(value.split(";"))
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    raise _Bad(f"{show_repr(value)} is not a list of VLAN ids (e.g. [10, '20-30'] or '10;20-30')")


def trunk_ranges(value: object, guest_type: str) -> tuple[PortRange, ...]:
    """The VLANs of a ``trunks`` value, merged into sorted ranges (LXC: single ids only)."""
    ranges: list[PortRange] = []
    for item in _trunk_items(value):
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise _Bad(f"{show_repr(item)} is not a VLAN id or range")
        text = str(item).strip()
        first_text, dash, last_text = text.partition("-")
        first = _vlan(first_text, item)
        last = _vlan(last_text, item) if dash else first
        if dash and guest_type == LXC:
            raise _Bad(f"{show_repr(item)} is a range; LXC containers take single VLAN ids (10;20;30)")
        if last < first:
            raise _Bad(f"{show_repr(item)} is an empty VLAN range")
        ranges.append(PortRange(first, last))
    if not ranges:
        raise _Bad(f"{show_repr(value)} lists no VLAN")
    merged: list[PortRange] = []
    for current in sorted(ranges):
        if merged and current.first <= merged[-1].last + (1 if guest_type == QEMU else 0):
            merged[-1] = PortRange(merged[-1].first, max(merged[-1].last, current.last))
        else:
            merged.append(current)
    return tuple(merged)


def _trunks(value: object, guest_type: str) -> str:
    return ";".join(str(item) for item in trunk_ranges(value, guest_type))


def _ip_config(value: object, version: int) -> str:
    words = ("dhcp", "manual") if version == 4 else ("auto", "dhcp", "manual")
    if isinstance(value, str) and value in words:
        return value
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise _Bad(f"{show_repr(value)} is not an IPv{version} address with prefix length or "
                   f"{' or '.join(words)}") from None
    if interface.version != version:
        raise _Bad(f"{show_repr(value)} is not an IPv{version} address")
    return str(interface)


def _gateway(value: object, version: int) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _Bad(f"{show_repr(value)} is not an IPv{version} address") from None
    if address.version != version:
        raise _Bad(f"{show_repr(value)} is not an IPv{version} address")
    return str(address)


def _veth(value: object) -> str:
    if value != "veth":
        raise _Bad(f"{show_repr(value)} is not a container NIC type (veth)")
    return "veth"


def canonical_value(key: str, value: object, guest_type: str) -> str:
    """``value`` of NIC key ``key`` in canonical form; raises ValueError naming the value if PVE would refuse it."""
    if key in ("firewall", "link_down", "host-managed"):
        return _boolean(value)
    if key == "tag":
        return _integer(value, VLAN_MIN, VLAN_MAX)
    if key == "mtu":
        return _integer(value, *MTU_RANGE[guest_type])
    if key == "queues":
        return _integer(value, *QUEUES_RANGE)
    if key == "rate":
        return _rate(value)
    if key in ("macaddr", "hwaddr"):
        return _mac(value)
    if key == "bridge":
        return _ident(value, "bridge name")
    if key == "name":
        return _ident(value, "container interface name")
    if key == "model":
        return _model(value)
    if key == "trunks":
        return _trunks(value, guest_type)
    if key in ("ip", "ip6"):
        return _ip_config(value, 4 if key == "ip" else 6)
    if key in ("gw", "gw6"):
        return _gateway(value, 4 if key == "gw" else 6)
    if key == "type":
        return _veth(value)
    raise _Bad(f"unknown key {key!r}")


# -- netN strings -----------------------------------------------------------------------------

def interface_number(interface: str) -> int:
    """``3`` for ``net3``; ValidationError for anything but net0..net31."""
    match = INTERFACE_RE.fullmatch(interface) if isinstance(interface, str) else None
    if match is None:
        raise ValidationError(Issue("interface", f"{show_repr(interface)} is not a guest NIC net0..net{MAX_INTERFACES - 1}"))
    return int(match.group(1))


def is_interface(key: str) -> bool:
    return isinstance(key, str) and INTERFACE_RE.fullmatch(key) is not None


def parse_nic(text: object, guest_type: str, *, path: str = "net", strict: bool = True) -> dict[str, str]:
    """A ``netN`` property string as a canonical dict.

    ``strict`` refuses keys this collection does not know; otherwise (for values read from a
    cluster that may be newer) they are kept verbatim so that rewriting the NIC keeps them.
    """
    kind = _kind_name(guest_type)

    def bad(reason: str) -> ValidationError:
        return ValidationError(Issue(path, f"{show_repr(text)} is not a valid {kind} NIC: {reason}"))

    if not isinstance(text, str) or not text.strip():
        raise bad("expected a property string such as " +
                  ("'virtio,bridge=vmbr0'" if guest_type == QEMU else "'name=eth0,bridge=vmbr0'"))
    known = QEMU_KEYS if guest_type == QEMU else LXC_KEYS
    fields: dict[str, str] = {}

    def put(key: str, value: object) -> None:
        if key in fields:
            raise bad(f"duplicate key {key}")
        if key not in known:
            if strict:
                raise bad(f"unknown key {key!r}")
            fields[key] = str(value)
            return
        try:
            fields[key] = canonical_value(key, value, guest_type)
        except _Bad as error:
            raise bad(f"{key}: {error}") from None

    for part in text.split(","):
        if not part.strip():
            continue  # PVE skips empty items
        key, equals, value = part.partition("=")
        key = key.strip()
        if not equals:
            if guest_type == LXC:
                raise bad(f"{part!r} has no key (name=..., bridge=...)")
            put("model", key)
        elif guest_type == QEMU and key in QEMU_MODELS:
            put("model", key)
            put("macaddr", value)
        else:
            put(key, value)
    if guest_type == QEMU and "model" not in fields:
        raise bad("no model (e.g. virtio)")
    if guest_type == LXC:
        if "name" not in fields:
            raise bad("no name (the interface inside the container, e.g. name=eth0)")
        fields.setdefault("type", "veth")  # PVE sets it on every write
    return fields


def format_nic(fields: Mapping[str, str], guest_type: str) -> str:
    """The canonical ``netN`` string of a parsed NIC."""
    if guest_type == QEMU:
        head = fields["model"] + (f"={fields['macaddr']}" if fields.get("macaddr") else "")
        rest = sorted(key for key in fields if key not in ("model", "macaddr"))
    else:
        head = f"name={fields['name']}"
        rest = sorted(key for key in fields if key != "name")
    return ",".join([head] + [f"{key}={fields[key]}" for key in rest])


def canonical_nic(text: object, guest_type: str, *, path: str = "net") -> str:
    """``format_nic(parse_nic(text))`` for a value read from a cluster (unknown keys kept)."""
    return format_nic(parse_nic(text, guest_type, path=path, strict=False), guest_type)


def nic_mac(fields: Mapping[str, str] | None, guest_type: str) -> str | None:
    return None if fields is None else fields.get(MAC_KEY[guest_type])


# -- what the task asks for -------------------------------------------------------------------

@dataclass(frozen=True)
class NicSettings:
    """The NIC settings of a task; None means "leave as it is".

    ``bridge`` and ``tag`` are the attachment point and go together: when ``bridge`` is
    given (directly or from a topology network) a NIC without ``tag`` ends up untagged.
    ``trunks`` may be a list (``[10, "20-30"]``), a PVE string (``10;20-30``) or empty to remove them.
    """

    bridge: str | None = None
    tag: int | None = None
    trunks: object = None
    firewall: bool | None = None
    link_down: bool | None = None
    rate: object = None
    mtu: int | None = None
    queues: int | None = None
    model: str | None = None
    mac: str | None = None
    container_interface: str | None = None
    ip: str | None = None
    ip6: str | None = None
    gw: str | None = None
    gw6: str | None = None


# option name -> NIC key, per guest type; None = not for that type
_OPTION_KEYS: dict[str, dict[str, str | None]] = {
    "bridge": {QEMU: "bridge", LXC: "bridge"},
    "tag": {QEMU: "tag", LXC: "tag"},
    "trunks": {QEMU: "trunks", LXC: "trunks"},
    "firewall": {QEMU: "firewall", LXC: "firewall"},
    "link_down": {QEMU: "link_down", LXC: "link_down"},
    "rate": {QEMU: "rate", LXC: "rate"},
    "mtu": {QEMU: "mtu", LXC: "mtu"},
    "queues": {QEMU: "queues", LXC: None},
    "model": {QEMU: "model", LXC: None},
    "mac": {QEMU: "macaddr", LXC: "hwaddr"},
    "container_interface": {QEMU: None, LXC: "name"},
    "ip": {QEMU: None, LXC: "ip"},
    "ip6": {QEMU: None, LXC: "ip6"},
    "gw": {QEMU: None, LXC: "gw"},
    "gw6": {QEMU: None, LXC: "gw6"},
}


def desired_nic(guest_type: str, interface: str, current: Mapping[str, str] | None,
                settings: NicSettings) -> dict[str, str]:
    """The NIC ``interface`` should be: ``current`` (None for a new NIC) with ``settings`` applied.

    The existing MAC is kept unless ``settings.mac`` is given; a new NIC gets none here (PVE
    generates it once, at creation). A new QEMU NIC is ``virtio``, a new LXC NIC is named
    ``eth<N>`` for ``net<N>``.
    """
    number = interface_number(interface)
    issues: list[Issue] = []
    for option, keys in _OPTION_KEYS.items():
        if getattr(settings, option) is not None and keys[guest_type] is None:
            other = "LXC containers" if guest_type == QEMU else "QEMU VMs"
            issues.append(Issue(option, f"{show_repr(getattr(settings, option))}: only for {other}, and the guest is "
                                        f"{'a QEMU VM' if guest_type == QEMU else 'an LXC container'}"))
    if issues:
        raise ValidationError(issues)
    if current is None:
        if settings.bridge is None:
            raise ValidationError(Issue("bridge", f"{interface} does not exist yet: give network or bridge to "
                                                  "attach it to"))
        fields: dict[str, str] = ({"model": DEFAULT_QEMU_MODEL} if guest_type == QEMU
                                  else {"name": f"eth{number}", "type": "veth"})
    else:
        fields = dict(current)
    if settings.bridge is not None:
        fields.pop("tag", None)  # the attachment point is bridge and tag together
    for option, keys in _OPTION_KEYS.items():
        value = getattr(settings, option)
        key = keys[guest_type]
        if value is None or key is None:
            continue
        if option == "trunks" and value in ("", [], ()):
            fields.pop("trunks", None)
            continue
        try:
            fields[key] = canonical_value(key, value, guest_type)
        except _Bad as error:
            issues.append(Issue(option, str(error)))
    if issues:
        raise ValidationError(issues)
    if guest_type == QEMU and "mtu" in fields and fields["model"] != "virtio":
        raise ValidationError(Issue("mtu", f"{fields['mtu']}: only virtio NICs take an MTU, and {interface} is "
                                           f"{fields['model']}"))
    return fields


def find_attached(nics: Mapping[str, Mapping[str, str]], bridge: str, tag: int | None) -> str | None:
    """The lowest ``netN`` on ``bridge`` with VLAN ``tag`` (None: untagged), if any."""
    wanted_tag = None if tag is None else str(tag)
    for interface in sorted(nics, key=interface_number):
        fields = nics[interface]
        if fields.get("bridge") == bridge and fields.get("tag") == wanted_tag:
            return interface
    return None


def first_free_interface(used: Iterable[str]) -> str:
    taken = {interface_number(key) for key in used if is_interface(key)}
    for number in range(MAX_INTERFACES):
        if number not in taken:
            return f"net{number}"
    raise ValidationError(Issue("interface", f"all {MAX_INTERFACES} NICs net0..net{MAX_INTERFACES - 1} are in use"))


# -- a guest's configuration ------------------------------------------------------------------

@dataclass(frozen=True)
class GuestConfig:
    """A guest's configuration as ``GET .../pending`` lists it.

    ``current`` holds the running values, ``merged`` the values once the pending changes are
    applied (what ``GET .../config`` shows), ``pending`` the keys with a pending change or
    deletion, sorted.
    """

    digest: str | None
    current: Mapping[str, str]
    merged: Mapping[str, str]
    pending: tuple[str, ...]

    def nics(self, guest_type: str, *, running: bool = False) -> dict[str, dict[str, str]]:
        """Every ``netN`` parsed (from ``current`` when ``running``, else ``merged``)."""
        source = self.current if running else self.merged
        return {key: parse_nic(value, guest_type, path=key, strict=False)
                for key, value in source.items() if is_interface(key)}

    def nic(self, interface: str, guest_type: str) -> dict[str, str] | None:
        value = self.merged.get(interface)
        return None if value is None else parse_nic(value, guest_type, path=interface, strict=False)

    def current_nic(self, interface: str, guest_type: str) -> dict[str, str] | None:
        value = self.current.get(interface)
        return None if value is None else parse_nic(value, guest_type, path=interface, strict=False)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def guest_config_from_pending(items: object) -> GuestConfig:
    """Read the answer of ``GET /nodes/{node}/{qemu|lxc}/{vmid}/pending``."""
    if not isinstance(items, list):
        raise ValidationError(Issue("pending", f"expected a list of configuration keys, got {type(items).__name__}"))
    digest = None
    current: dict[str, str] = {}
    merged: dict[str, str] = {}
    pending: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        key = item["key"]
        if key == "digest":
            digest = _text(item.get("value")) if item.get("value") is not None else None
            continue
        if item.get("value") is not None:
            current[key] = _text(item["value"])
        if item.get("delete"):
            pending.add(key)
        elif item.get("pending") is not None:
            merged[key] = _text(item["pending"])
            pending.add(key)
        elif key in current:
            merged[key] = current[key]
    return GuestConfig(digest=digest, current=dict(sorted(current.items())), merged=dict(sorted(merged.items())),
                       pending=tuple(sorted(pending)))


def hotplug_features(value: str | None) -> tuple[str, ...]:
    """The features of a QEMU ``hotplug`` setting (default ``network,disk,usb``; ``0`` none; ``1`` the default)."""
    if value is None or value.strip() == "1":
        return DEFAULT_HOTPLUG
    if value.strip() == "0":
        return ()
    return tuple(sorted(part.strip() for part in value.split(",") if part.strip()))


def stays_pending(guest_type: str, running: bool, hotplug: str | None, before: Mapping[str, str] | None,
                  after: Mapping[str, str] | None) -> bool:
    """Whether PVE will leave this NIC change pending until the guest restarts.

    Only a running QEMU VM without the ``network`` hotplug feature does that, for adding or
    removing a NIC or changing its model, MAC, queues or MTU or whether it has a bridge at all
    (qemu-server's ``vmconfig_update_net``); bridge, tag, trunks, firewall, rate and link_down
    change live.
    Containers change their NICs live.
    """
    if guest_type != QEMU or not running or before == after or "network" in hotplug_features(hotplug):
        return False
    if before is None or after is None or not (before.get("bridge") and after.get("bridge")):
        return True  # plugging, unplugging, and moving to or from user-mode networking need hotplug
    return any(before.get(key) != after.get(key) for key in QEMU_REPLUG_KEYS)


# -- topology networks ------------------------------------------------------------------------

@dataclass(frozen=True)
class Attachment:
    """Where a guest NIC goes for a topology network: a bridge, and a VLAN tag or None."""

    network: str
    bridge: str
    tag: int | None


def network_attachment(topology: Topology, name: str, tag: int | None = None) -> Attachment:
    """The bridge and VLAN tag of topology network ``name`` for a guest NIC.

    Routed, bridge and vxlan networks are bridges the host modules create (``iface``); their
    guests are untagged (a bridge network's ``vlan`` is carried by its VLAN sub-interface), or
    tagged with ``tag`` on a VLAN-aware bridge (``vlan_filtering``) that carries it. A ``vlan``
    network is a VLAN device on ``parent``: its guests go on ``parent`` (a bridge on a Proxmox
    node, usually the VLAN-aware ``vmbr0``) tagged with the network's VLAN.
    """
    names = [network.name for network in topology.networks]
    try:
        network = topology.network(name)
    except KeyError:
        known = ", ".join(names) if names else "none"
        raise ValidationError(Issue("network", f"{show_repr(name)} is not a network of the topology "
                                               f"(networks: {known})")) from None
    if network.type == "vlan":
        if tag is not None and tag != network.vlan:
            raise ValidationError(Issue("tag", f"{tag}: network {name} is VLAN {network.vlan} on {network.parent}, "
                                               f"so its guests are tagged {network.vlan}"))
        if not network.parent:
            raise ValidationError(Issue("network", f"{name} is a vlan network without a parent link"))
        return Attachment(network=name, bridge=network.parent, tag=network.vlan)
    if tag is not None:
        if not network.vlan_filtering:
            raise ValidationError(Issue("tag", f"{tag}: network {name} is not a VLAN-aware bridge (vlan_filtering), "
                                               "its guests are untagged"))
        if network.vids and not any(vids.first <= tag <= vids.last for vids in network.vids):
            carried = ", ".join(str(vids) for vids in network.vids)
            raise ValidationError(Issue("tag", f"{tag} is not among the VLANs of network {name} ({carried})"))
        if not VLAN_MIN <= tag <= VLAN_MAX:
            raise ValidationError(Issue("tag", f"{tag} is out of range {VLAN_MIN}-{VLAN_MAX}"))
    return Attachment(network=name, bridge=network.iface, tag=tag)
