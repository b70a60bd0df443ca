# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private to this collection: names and behaviour may change in any release.
"""Other programs that filter the same packets or manage the same links: found, and said.

The host wing hands in the foreign part of the ruleset as ``nft -j`` lists it (parsed JSON), the
services it found on the host (:class:`ServiceFacts`) and the topology; :func:`find_conflicts`
returns one :class:`Conflict` per cause and :func:`conflict_warnings` words them as warnings.
docs/coexistence.md explains every case.

Why it matters: an accept in ``inet ghostwarden`` ends only that table's base chain. Every base
chain of every table registered at the same hook still sees the packet, and a drop in any of them
is final. So a foreign base chain at ``input`` or ``forward`` whose policy is drop, or that has
rules that drop or reject (itself or in the regular chains it jumps to), can drop traffic that the
topology's profiles accept.

How a chain is judged: for each network, the packets its traffic is made of (into the host from
its interface; routed from it to each other network and uplink, and back) walk the chain's rules.
Interface matches (``iifname``, ``oifname``, ``iif``, ``oif``, ``ibrname``, ``obrname``) and verdict
maps keyed on them are decided for those names; every other match may or may not hold. A rule that
certainly matches and accepts ends the walk (what follows, the policy included, cannot drop that
packet), and a ``return`` that may match lets it go on in the calling chain, down to the policy;
rules that drop or reject on the way are counted; ``ct state invalid`` drops are not (the owned
table drops invalid packets too). ``jump`` and ``goto`` are followed into the regular chains of the
same table, at most :data:`MAX_DEPTH` deep. JSON that does not have the expected shape is skipped,
never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Optional

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import is_accept_ra_key
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import NFT_FAMILY, NFT_TABLE, Topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._plan import desired_state, uplinks

# The hooks where a foreign drop takes traffic that the owned table accepts.
HOOKS = ("input", "forward")
L3_FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}
MAX_DEPTH = 16  # jumps followed from a base chain
MAX_STEPS = 20000  # rules evaluated per base chain and packet, whatever the jumps
# meta keys naming interfaces, and the part of a packet they look at
_IFACE_KEYS = {"iifname": "iif", "iif": "iif", "oifname": "oif", "oif": "oif", "ibrname": "ibr", "obrname": "obr"}
# statements that neither decide nor restrict what a rule matches
_NEUTRAL = frozenset({"counter", "log", "mangle", "notrack", "set", "ct helper", "ct timeout", "ct expectation"})
_ACCEPTING = frozenset({"accept", "masquerade", "snat", "dnat", "redirect", "queue"})
_DROPPING = frozenset({"drop", "reject"})
_VERDICTS = _ACCEPTING | _DROPPING | {"return", "jump", "goto", "continue", "vmap"}

# Recognised owners of foreign tables, in the order their warnings come; a chain that more than one
# of them touches (iptables-nft's "ip filter" holds ufw's and Docker's chains) belongs to the first.
OWNERS = ("firewalld", "ufw", "pve-firewall", "docker", "fail2ban", "crowdsec")
_OWNER_LABELS = {
    "firewalld": "firewalld",
    "ufw": "ufw",
    "pve-firewall": "the Proxmox VE firewall",
    "docker": "Docker",
    "fail2ban": "fail2ban",
    "crowdsec": "the CrowdSec firewall bouncer",
}
NETWORKMANAGER = "NetworkManager"
NETWORKD = "systemd-networkd"


@dataclass(frozen=True)
class Conflict:
    """One cause: ``kind`` (an owner of :data:`OWNERS`, ``drop-chain``, ``NetworkManager``,
    ``systemd-networkd``), ``subject`` (who), ``effect`` (what happens to the traffic or the links),
    ``advice`` (what to do), and the ``networks`` and foreign ``chains`` (``family table chain``) it concerns."""

    kind: str
    subject: str
    effect: str
    advice: str
    networks: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()

    @property
    def warning(self) -> str:
        return f"{self.subject}: {self.effect}. {self.advice}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "effect": self.effect, "advice": self.advice,
                "networks": list(self.networks), "chains": list(self.chains)}


@dataclass(frozen=True)
class NetworkdFile:
    """A systemd-networkd ``.network`` file as far as matching goes: its ``[Match] Name=`` patterns
    (empty: every link, unless ``other_match``), whether some other ``[Match]`` key restricts it
    (then only ``Name=`` is judged, and a file without one is left out) and ``[Link] Unmanaged=``."""

    path: str
    names: tuple[str, ...] = ()
    other_match: bool = False
    unmanaged: bool = False


@dataclass(frozen=True)
class ServiceFacts:
    """What the host's files say about the other programs (the host wing reads them).

    ``running``: (service, how it was found) for firewalld, ufw (enabled), fail2ban, crowdsec,
    docker, NetworkManager, systemd-networkd. ``links_checked``: whether the links of the root
    namespace were looked at (not when the module runs in another network namespace).
    ``nm_devices``: interface and ``managed`` from NetworkManager's device state files;
    ``nm_unmanaged``: (device spec, file) NetworkManager's configuration leaves unmanaged;
    ``networkd_links``: interface and its ``ADMIN_STATE``; ``networkd_files`` in the order networkd tries them.
    """

    running: tuple[tuple[str, str], ...] = ()
    links_checked: bool = False
    nm_devices: tuple[tuple[str, bool], ...] = ()
    nm_unmanaged: tuple[tuple[str, str], ...] = ()
    networkd_links: tuple[tuple[str, str], ...] = ()
    networkd_files: tuple[NetworkdFile, ...] = ()

    def evidence(self, service: str) -> str | None:
        for name, how in self.running:
            if name == service:
                return how
        return None


@dataclass(frozen=True)
class NetworkView:
    """What the conflicts need of a network: its L3 interface, address families, whether it is a
    bridge, its subnets, and every link the topology creates, enslaves, addresses or uses as a VLAN parent."""

    name: str
    iface: Optional[str]
    families: tuple[int, ...] = ()
    bridge: bool = False
    subnets: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


# A network standing for "any": the host has no topology to judge by (ghostwarden_info before any apply).
_ANY = NetworkView(name="", iface=None, families=(4, 6), bridge=True)


def network_views(topology: Topology) -> tuple[NetworkView, ...]:
    views = []
    for network in topology.networks:
        links = {network.iface, *network.ports}
        links.update(name for name in (network.vlan_iface, network.vxlan_iface, network.parent) if name)
        views.append(NetworkView(
            name=network.name,
            iface=network.iface,
            families=tuple(sorted({subnet.family for subnet in network.subnets})),
            bridge=network.type != "vlan",
            subnets=tuple(subnet.cidr for subnet in network.subnets),
            links=tuple(sorted(links)),
        ))
    return tuple(views)


def accept_ra_uplinks(topology: Topology) -> tuple[str, ...]:
    """The uplinks whose accept_ra the topology sets (to 2, while it forwards IPv6)."""
    try:
        sysctls = desired_state(topology, ruleset="", dnsmasq_files={}).sysctls
    except GhostwardenError:
        return ()
    return tuple(sorted(key.split(".")[3].replace("/", ".") for key, _value in sysctls if is_accept_ra_key(key)))


# -- the foreign ruleset ------------------------------------------------------------------------

def _object(item: object, kind: str) -> dict | None:
    value = item.get(kind) if isinstance(item, dict) else None
    return value if isinstance(value, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class _Table:
    family: str
    name: str
    chains: dict[str, dict] = field(default_factory=dict)
    rules: dict[str, list[tuple[object, list]]] = field(default_factory=dict)
    maps: dict[str, list] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.family} {self.name}"


def _tables(ruleset: object) -> list[_Table]:
    """The foreign tables of ``nft -j list ruleset`` output (or the concatenated table listings)."""
    items = ruleset.get("nftables") if isinstance(ruleset, dict) else None
    if not isinstance(items, list):
        return []
    tables: dict[tuple[str, str], _Table] = {}

    def table(obj: dict, key: str = "table") -> _Table | None:
        family, name = _text(obj.get("family")), _text(obj.get(key))
        if family is None or name is None or (family, name) == (NFT_FAMILY, NFT_TABLE):
            return None
        return tables.setdefault((family, name), _Table(family, name))

    for item in items:
        if (obj := _object(item, "table")) is not None:
            table(obj, "name")
        elif (obj := _object(item, "chain")) is not None:
            found = table(obj)
            if found is not None and _text(obj.get("name")):
                found.chains[obj["name"]] = obj
                found.rules.setdefault(obj["name"], [])
        elif (obj := _object(item, "rule")) is not None:
            found = table(obj)
            expr = obj.get("expr")
            if found is not None and _text(obj.get("chain")) and isinstance(expr, list):
                found.rules.setdefault(obj["chain"], []).append((obj.get("handle"), expr))
        elif (obj := _object(item, "map")) is not None:
            found = table(obj)
            if found is not None and _text(obj.get("name")):
                elements = obj.get("elem")
                found.maps[obj["name"]] = elements if isinstance(elements, list) else []
        elif (obj := _object(item, "set")) is not None:
            found = table(obj)
            if found is not None and _text(obj.get("name")):
                found.sets.append(obj["name"])
    return sorted(tables.values(), key=lambda item: (item.family, item.name))


def table_owners(table: _Table) -> list[str]:
    """The recognised programs that made (part of) a table, by its name and the names of its chains and sets."""
    chains = list(table.chains)
    owners = set()
    if table.name == "firewalld" and table.family in L3_FAMILIES:
        owners.add("firewalld")
    if any(name.startswith(("ufw-", "ufw6-")) for name in chains):
        owners.add("ufw")
    if table.name in ("proxmox-firewall", "proxmox-firewall-guests") or any(name.startswith("PVEFW-") for name in chains):
        owners.add("pve-firewall")
    if table.name == "docker-bridges" or any(name in ("DOCKER", "DOCKER-USER", "DOCKER-FORWARD")
                                             or name.startswith("DOCKER-ISOLATION") for name in chains):
        owners.add("docker")
    if table.name == "f2b-table" or any(name.startswith("f2b-") for name in chains):
        owners.add("fail2ban")
    if table.name in ("crowdsec", "crowdsec6") or any(name.startswith("crowdsec") for name in table.sets):
        owners.add("crowdsec")
    return [owner for owner in OWNERS if owner in owners]


# -- walking a base chain -------------------------------------------------------------------------

def _pattern_matches(pattern: str, name: str) -> bool:
    """nft's interface name patterns: a trailing ``*`` matches any rest, ``\\*`` is a star."""
    if pattern.endswith("*") and not pattern.endswith("\\*"):
        return name.startswith(pattern[:-1].replace("\\*", "*"))
    return name == pattern.replace("\\*", "*")


def _names_match(right: object, name: str) -> bool | None:
    """Whether the interface ``name`` is among ``right`` (a name, a pattern, an anonymous set); None: cannot tell."""
    if isinstance(right, str):
        return None if right.startswith("@") else _pattern_matches(right, name)
    elements = right.get("set") if isinstance(right, dict) else right
    if not isinstance(elements, list):
        return None
    unknown = False
    for element in elements:
        if isinstance(element, str):
            if _pattern_matches(element, name):
                return True
        else:
            unknown = True
    return None if unknown else False


def _meta_key(expression: object) -> str | None:
    meta = _object(expression, "meta")
    return meta.get("key") if meta is not None and isinstance(meta.get("key"), str) else None


def _invalid_only(match: dict) -> bool:
    """``ct state invalid``: the owned table drops those packets too."""
    ct = _object(match.get("left"), "ct")
    if ct is None or ct.get("key") != "state" or match.get("op", "==") not in ("==", "in"):
        return False
    right = match.get("right")
    states = right.get("set") if isinstance(right, dict) else right
    states = [states] if isinstance(states, str) else states
    return isinstance(states, list) and bool(states) and all(state == "invalid" for state in states)


def _match(match: dict, packet: Mapping[str, Optional[str]]) -> bool | None:
    part = _IFACE_KEYS.get(_meta_key(match.get("left")) or "")
    if part is None:
        return None
    value = packet.get(part)
    if value is None:
        return None
    hit = _names_match(match.get("right"), value)
    op = match.get("op", "==")
    if hit is None or op not in ("==", "in", "!="):
        return None
    return hit if op != "!=" else not hit


def _verdict_of(statement: object) -> tuple[str, Any] | None:
    if isinstance(statement, dict) and len(statement) == 1:
        kind, value = next(iter(statement.items()))
        if kind in _VERDICTS:
            return kind, value
    return None


@dataclass
class _Walk:
    """One packet's way through one base chain: the rules on it that may drop the packet.

    :meth:`chain` returns what can become of the packet in a chain: ``accept`` or ``drop`` when a
    rule that certainly matches decides it, ``return`` when it can leave the chain undecided (the
    end, or a ``return`` that may match). Rules that may or may not match decide nothing for
    certain; the drops among them are still counted."""

    table: _Table
    packet: Mapping[str, Optional[str]]
    drops: set = field(default_factory=set)  # (chain, rule handle or position)
    steps: int = 0

    def chain(self, name: object, depth: int = 0) -> set[str]:
        if not isinstance(name, str) or depth > MAX_DEPTH or name not in self.table.rules:
            return {"return"}
        outcomes: set[str] = set()
        for position, (handle, expressions) in enumerate(self.table.rules[name]):
            self.steps += 1
            if self.steps > MAX_STEPS:
                break
            applies, certain, invalid_only, verdict = True, True, False, None
            for expression in expressions:
                verdict = _verdict_of(expression)
                if verdict is not None:
                    break  # nothing after a verdict runs
                match = _object(expression, "match")
                if match is not None:
                    invalid_only = invalid_only or _invalid_only(match)
                    result = _match(match, self.packet)
                    if result is False:
                        applies = False
                        break
                    certain = certain and result is True
                elif not (isinstance(expression, dict) and set(expression) <= _NEUTRAL):
                    certain = False  # limit, quota, xt and anything unknown: may or may not match
            if not applies or verdict is None:
                continue
            rule = (name, handle if handle is not None else position)
            if self.verdict(verdict, rule, certain and not invalid_only, invalid_only, depth, outcomes):
                return outcomes
        outcomes.add("return")
        return outcomes

    def verdict(self, verdict: tuple[str, Any], rule: tuple, certain: bool, invalid_only: bool, depth: int,
                outcomes: set[str]) -> bool:
        """Add what ``verdict`` can make of the packet to ``outcomes``; whether the chain ends here for it."""
        kind, value = verdict
        if kind in _ACCEPTING | _DROPPING:
            if kind in _DROPPING and not invalid_only:
                self.drops.add(rule)
            if certain:
                outcomes.add("accept" if kind in _ACCEPTING else "drop")
            return certain
        if kind == "return":
            outcomes.add("return")  # some packets leave here, certainly or maybe
            return certain
        if kind in ("jump", "goto"):
            target = value.get("target") if isinstance(value, dict) else None
            reached = self.chain(target, depth + 1)
            if not certain:
                return False
            if kind == "goto" or "return" not in reached:
                outcomes.update(reached)  # a goto's chain returns to this chain's caller
                return True
            outcomes.update(reached - {"return"})
            return False
        if kind == "vmap" and isinstance(value, dict):
            return self.vmap(value, rule, certain, invalid_only, depth, outcomes)
        return False

    def vmap(self, value: dict, rule: tuple, certain: bool, invalid_only: bool, depth: int,
             outcomes: set[str]) -> bool:
        data = value.get("data")
        if isinstance(data, str) and data.startswith("@"):
            elements = self.table.maps.get(data[1:], [])
        else:
            elements = data.get("set") if isinstance(data, dict) else data
        part = _IFACE_KEYS.get(_meta_key(value.get("key")) or "")
        name = self.packet.get(part) if part is not None else None
        for element in elements if isinstance(elements, list) else []:
            if not (isinstance(element, list) and len(element) == 2):
                continue
            key, verdict = element
            key = key.get("elem", {}).get("val") if isinstance(key, dict) and "elem" in key else key
            found = _verdict_of(verdict)
            if found is None:
                continue
            if name is not None and isinstance(key, str):
                if _pattern_matches(key, name):
                    return self.verdict(found, rule, certain, invalid_only, depth, outcomes)
                continue
            self.verdict(found, rule, False, invalid_only, depth, set())
        return False


@dataclass(frozen=True)
class _Finding:
    """A foreign base chain that may drop traffic of some networks."""

    table: _Table
    chain: str
    hook: str
    priority: object
    policy_drop: bool
    certain: bool
    rules: int
    other_chains: tuple[str, ...]
    networks: tuple[NetworkView, ...]

    @property
    def label(self) -> str:
        return f"{self.table.family} {self.table.name} {self.chain}"

    def text(self, *, with_table: bool = True) -> str:
        parts = ["policy drop"] if self.policy_drop else []
        if self.rules:
            parts.append(f"{self.rules} rule{'s' if self.rules > 1 else ''} that may drop or reject"
                         + (f", also in {', '.join(self.other_chains)}" if self.other_chains else ""))
        what = "drops" if self.certain else "may drop"
        unless = " that none of its rules accepts first" if self.certain else ""
        where = f" of table {self.table.label}" if with_table else ""
        return (f"chain {self.chain}{where} (hook {self.hook}, priority {self.priority}; {', '.join(parts)}) "
                f"{what} {_traffic(self.table.family, self.hook, self.networks)}{unless}")


def _network_names(networks: Sequence[NetworkView]) -> str:
    names = [network.name for network in networks if network.name]
    if not names:
        return "the topology's networks"
    return f"network{'s' if len(names) > 1 else ''} {_listed(names)}"


def _traffic(family: str, hook: str, networks: Sequence[NetworkView]) -> str:
    who = _network_names(networks)
    if family == "bridge":
        return (f"frames bridged between the ports of {who}" if hook == "forward"
                else f"frames from the ports of {who} to this host")
    version = {"ip": "IPv4 ", "ip6": "IPv6 "}.get(family, "")
    if hook == "input":
        return f"{version}traffic from {who} to this host (DHCP, DNS and what the profiles accept)"
    return f"{version}traffic routed into and out of {who}"


def _interface_patterns(table: _Table) -> list[str]:
    """Every interface name or pattern the table's rules and interface-keyed verdict maps compare with."""
    patterns: set[str] = set()

    def add(right: object) -> None:
        elements = right.get("set") if isinstance(right, dict) else right
        for element in [elements] if isinstance(elements, str) else elements if isinstance(elements, list) else []:
            key = element[0] if isinstance(element, list) and element else element
            key = key.get("elem", {}).get("val") if isinstance(key, dict) and isinstance(key.get("elem"), dict) else key
            if isinstance(key, str) and not key.startswith("@"):
                patterns.add(key)
            elif isinstance(key, str) and key[1:] in table.maps:
                add(table.maps[key[1:]])

    for rules in table.rules.values():
        for _handle, expressions in rules:
            for expression in expressions:
                match = _object(expression, "match")
                vmap = _object(expression, "vmap")
                if match is not None and _meta_key(match.get("left")) in _IFACE_KEYS:
                    add(match.get("right"))
                elif vmap is not None and _meta_key(vmap.get("key")) in _IFACE_KEYS:
                    add(vmap.get("data"))
    return sorted(patterns)


def _signature(name: Optional[str], patterns: Sequence[str]) -> tuple:
    """What the table can tell about an interface: which of its patterns match it (names alike walk alike)."""
    return ("?",) if name is None else tuple(_pattern_matches(pattern, name) for pattern in patterns)


def _packets(family: str, hook: str, iface: Optional[str], peers: Sequence[Optional[str]]) -> list[dict[str, Optional[str]]]:
    """The kinds of packet a network's traffic through ``hook`` is made of, as interface names (None: any).

    ``peers``: the other ends of routed traffic (the networks' interfaces and the uplinks), one per kind."""
    if family == "bridge":
        forward = hook == "forward"
        return [{"iif": None, "oif": None if forward else "", "ibr": iface, "obr": iface if forward else ""}]
    if hook == "input":
        return [{"iif": iface, "oif": "", "ibr": "", "obr": ""}]
    return ([{"iif": iface, "oif": peer, "ibr": "", "obr": ""} for peer in peers]
            + [{"iif": peer, "oif": iface, "ibr": "", "obr": ""} for peer in peers])


def _in_scope(family: str, hook: str, network: NetworkView) -> bool:
    if family == "bridge":
        return network.bridge and (hook == "forward" or bool(network.families))
    return bool(set(L3_FAMILIES.get(family, ())) & set(network.families))


@dataclass
class _Judgement:
    """What one base chain does to the traffic of one kind of network."""

    drops: set = field(default_factory=set)
    policy_drop: bool = False
    certain: bool = False


def _judge(table: _Table, name: str, policy: object, packets: Sequence[Mapping[str, Optional[str]]]) -> _Judgement:
    judgement = _Judgement()
    for packet in packets:
        walk = _Walk(table, packet)
        outcomes = walk.chain(name)
        falls_to_drop = "return" in outcomes and policy == "drop"
        judgement.drops |= walk.drops
        judgement.policy_drop = judgement.policy_drop or falls_to_drop
        judgement.certain = judgement.certain or falls_to_drop or "drop" in outcomes
    return judgement


def _findings(table: _Table, networks: Sequence[NetworkView], others: Sequence[str]) -> list[_Finding]:
    """The table's base chains at :data:`HOOKS` that may drop some network's traffic.

    Networks (and peers) whose interfaces the table's patterns cannot tell apart are judged once."""
    if table.family not in L3_FAMILIES and table.family != "bridge":
        return []
    patterns = _interface_patterns(table)
    peers: dict[tuple, Optional[str]] = {}
    for other in others:
        peers.setdefault(_signature(other, patterns), other)
    peer_list = list(peers.values()) or [None]
    findings = []
    for name, chain in sorted(table.chains.items()):
        hook = chain.get("hook")
        if hook not in HOOKS:
            continue
        judged: dict[tuple, _Judgement] = {}
        affected, drops, policy_drop, certain = [], set(), False, False
        for network in networks:
            if not _in_scope(table.family, hook, network):
                continue
            key = _signature(network.iface, patterns)
            if key not in judged:
                judged[key] = _judge(table, name, chain.get("policy"),
                                     _packets(table.family, hook, network.iface, peer_list))
            judgement = judged[key]
            if judgement.drops or judgement.policy_drop:
                affected.append(network)
                drops |= judgement.drops
                policy_drop = policy_drop or judgement.policy_drop
                certain = certain or judgement.certain
        if affected:
            other_chains = tuple(sorted({chain_name for chain_name, _rule in drops} - {name}))
            findings.append(_Finding(table, name, hook, chain.get("prio", "?"), policy_drop, certain, len(drops),
                                     other_chains, tuple(affected)))
    return findings


# -- the conflicts --------------------------------------------------------------------------------

LIST_LIMIT = 8  # names a warning spells out before it says how many more there are


def _listed(names: Sequence[str]) -> str:
    if len(names) <= LIST_LIMIT:
        return ", ".join(names)
    return f"{', '.join(names[:LIST_LIMIT])} and {len(names) - LIST_LIMIT} more"


def _ifaces(networks: Sequence[NetworkView]) -> list[str]:
    return sorted({network.iface for network in networks if network.iface}) or ["gw-<network>"]


def _nft_names(ifaces: Sequence[str]) -> str:
    """Interface names as the right side of an nft match; many names that share ghostwarden's prefix as ``"gw-*"``."""
    if len(ifaces) > LIST_LIMIT and all(name.startswith("gw-") for name in ifaces):
        return '"gw-*"'
    quoted = ", ".join(f'"{name}"' for name in ifaces)
    return quoted if len(ifaces) == 1 else f"{{ {quoted} }}"


def _each(ifaces: Sequence[str]) -> str:
    return f" (for each of {_listed(ifaces)})" if len(ifaces) > 1 else ""


_PRESENT_WITHOUT_DROPS = {
    "firewalld": "none of its chains drops the networks' traffic at the input and forward hooks now, but firewalld "
                 "rebuilds its rules on every reload, and a zone or policy change can start dropping it",
    "ufw": "none of its chains drops the networks' traffic at the input and forward hooks now, but ufw rebuilds its "
           "rules on every reload from its default policies (/etc/default/ufw) and rules",
    "docker": "none of its chains drops the networks' traffic at the input and forward hooks now, but Docker rewrites "
              "its chains whenever it starts, and when it turns on IP forwarding itself it sets the policy of its "
              "forward chain (FORWARD in table ip filter, filter-FORWARD in table ip docker-bridges) to drop, which "
              "drops traffic routed into and out of the networks",
    "fail2ban": "it drops or rejects the sources it bans, whatever ghostwarden's profiles accept",
    "crowdsec": "it drops the sources on its blocklists, whatever ghostwarden's profiles accept",
}


def _docker_advice(tables: Sequence[_Table], first: str, each: str) -> str:
    iptables = any(table.name != "docker-bridges" for table in tables) or not tables
    nftables = any(table.name == "docker-bridges" for table in tables)
    ways = []
    if iptables:
        ways.append(f"accept the networks in the DOCKER-USER chain, which Docker leaves alone: iptables -I DOCKER-USER "
                    f"-i {first} -j ACCEPT; iptables -I DOCKER-USER -o {first} -j ACCEPT{each} (ip6tables likewise), "
                    "made persistent")
    if nftables:
        ways.append("with Docker's nftables backend (tables docker-bridges, no DOCKER-USER) give the networks' "
                    "packets the mark of Docker's --bridge-accept-fwmark in a forward chain of priority filter - 1")
    ways.append("turn IP forwarding on in /etc/sysctl.d before Docker starts, so that Docker does not set its forward "
                "policy to drop")
    return f"{'; or '.join(ways)} (docs/coexistence.md)"


def _owner_advice(owner: str, networks: Sequence[NetworkView], tables: Sequence[_Table]) -> str:
    ifaces = _ifaces(networks)
    first, each = ifaces[0], _each(ifaces)
    subnets = sorted({subnet for network in networks for subnet in network.subnets}) or ["<network cidr>"]
    if owner == "firewalld":
        return (f"Put the networks' interfaces into a zone that accepts their traffic: firewall-cmd --permanent "
                f"--zone=trusted --add-interface={first}{each}, then firewall-cmd --reload (traffic into them from "
                "other zones, apart from replies and port forwards, also needs a firewalld policy); or stop and "
                "disable firewalld (docs/coexistence.md)")
    if owner == "ufw":
        return (f"Allow the networks in ufw: ufw allow in on {first}; ufw route allow in on {first}; ufw route allow "
                f"out on {first}{each}; or set DEFAULT_FORWARD_POLICY=\"ACCEPT\" in /etc/default/ufw; or ufw disable "
                "(docs/coexistence.md)")
    if owner == "docker":
        advice = _docker_advice(tables, first, each)
        return advice[:1].upper() + advice[1:]
    if owner == "fail2ban":
        return (f"Nothing to do if banning those sources is wanted; to exempt the networks' clients add "
                f"{' '.join(subnets)} to ignoreip in /etc/fail2ban/jail.local (docs/coexistence.md)")
    if owner == "crowdsec":
        return (f"Nothing to do if blocking those sources is wanted; to exempt the networks' clients whitelist "
                f"{', '.join(subnets)} in CrowdSec (a whitelist parser under /etc/crowdsec/parsers/s02-enrich/) "
                "(docs/coexistence.md)")
    return (f"Accept the networks' traffic in the Proxmox VE firewall (host rules for {_listed(ifaces)}), or disable "
            "it on this node (docs/coexistence.md)")


def _accept_rule(finding: _Finding) -> str:
    """The rule that, first in the chain, makes it accept the networks' traffic it drops."""
    names = _nft_names(_ifaces(finding.networks))
    if finding.table.family == "bridge":
        return f"meta ibrname {names} accept"
    if finding.hook == "input":
        return f"iifname {names} accept"
    return f"iifname {names} accept and oifname {names} accept"


def _chain_advice(findings: Sequence[_Finding]) -> str:
    where = "; ".join(f"{_accept_rule(finding)} first in chain {finding.chain}" for finding in findings)
    return (f"If that table should let them pass, add {where} (nft insert rule {findings[0].table.label} <chain> ...); "
            "or remove the table if nothing needs it (docs/coexistence.md)")


def _owner_conflict(owner: str, tables: Sequence[_Table], findings: Sequence[_Finding], facts: ServiceFacts,
                    all_networks: Sequence[NetworkView]) -> Conflict | None:
    label = _OWNER_LABELS[owner]
    evidence = facts.evidence(owner)
    if not findings and (owner == "pve-firewall" or (evidence is None and not tables)):
        return None  # pve-firewall's own warning (proxmox/_host.py) covers its bridges
    found = []
    if evidence is not None:
        found.append(evidence)
    if tables:
        found.append(f"table{'s' if len(tables) > 1 else ''} {', '.join(table.label for table in tables)}")
    networks = [network for finding in findings for network in finding.networks] or list(all_networks)
    if findings:
        effect = "; ".join(finding.text() for finding in findings)
    else:
        effect = _PRESENT_WITHOUT_DROPS.get(owner, "")
    names = tuple(sorted({network.name for network in networks if network.name}))
    return Conflict(kind=owner, subject=f"{label} ({'; '.join(found)})", effect=effect,
                    advice=_owner_advice(owner, networks, tables), networks=names,
                    chains=tuple(finding.label for finding in findings))


def _nft_conflicts(ruleset: object, facts: ServiceFacts, networks: Sequence[NetworkView], others: Sequence[str], *,
                   judged: Sequence[NetworkView]) -> list[Conflict]:
    """The recognised programs and the other tables; ``judged``: the networks whose traffic the chains are walked for."""
    tables = _tables(ruleset)
    owned: dict[str, list[_Table]] = {owner: [] for owner in OWNERS}
    owned_findings: dict[str, list[_Finding]] = {owner: [] for owner in OWNERS}
    unknown: list[_Finding] = []
    for table in tables:
        owners = table_owners(table)
        for owner in owners:
            owned[owner].append(table)
        findings = _findings(table, judged, others)
        if owners:
            owned_findings[owners[0]].extend(findings)
        else:
            unknown.extend(findings)
    conflicts = []
    for owner in OWNERS:
        conflict = _owner_conflict(owner, owned[owner], owned_findings[owner], facts, networks)
        if conflict is not None:
            conflicts.append(conflict)
    by_table: dict[str, list[_Finding]] = {}
    for finding in unknown:
        by_table.setdefault(finding.table.label, []).append(finding)
    for label, findings in by_table.items():
        names = tuple(sorted({network.name for finding in findings for network in finding.networks if network.name}))
        conflicts.append(Conflict(kind="drop-chain", subject=f"table {label}",
                                  effect="; ".join(finding.text(with_table=False) for finding in findings),
                                  advice=_chain_advice(findings), networks=names,
                                  chains=tuple(finding.label for finding in findings)))
    return conflicts


# -- NetworkManager and systemd-networkd ----------------------------------------------------------

def nm_spec_matches(spec: str, name: str) -> bool:
    """Whether a NetworkManager device spec names interface ``name``: ``*``, ``interface-name:GLOB``,
    ``interface-name:=NAME``, ``interface-name:~GLOB``. Other kinds (mac:, type:, driver:, except:)
    are not judged (they match nothing here)."""
    spec = spec.strip()
    if spec == "*":
        return True
    if not spec.startswith("interface-name:"):
        return False
    pattern = spec[len("interface-name:"):]
    if pattern.startswith("="):
        return name == pattern[1:]
    if pattern.startswith("~"):
        pattern = pattern[1:]
    return fnmatchcase(name, pattern)


def networkd_file_matches(item: NetworkdFile, name: str) -> bool:
    if not item.names:
        return not item.other_match
    patterns = list(item.names)
    inverted = patterns[0].startswith("!")
    if inverted:
        patterns[0] = patterns[0][1:]
    hit = any(fnmatchcase(name, pattern) for pattern in patterns if pattern)
    return hit != inverted


def _nm_manages(facts: ServiceFacts, name: str) -> str | None:
    """Why NetworkManager manages (or may manage) ``name``; None when it leaves it alone."""
    devices = dict(facts.nm_devices)
    if name in devices:
        return "device state managed=true" if devices[name] else None
    for spec, _source in facts.nm_unmanaged:
        if nm_spec_matches(spec, name):
            return None
    return "not in unmanaged-devices"


def _networkd_manages(facts: ServiceFacts, name: str) -> str | None:
    links = dict(facts.networkd_links)
    if name in links:
        state = links[name]
        return f"ADMIN_STATE={state}" if state not in ("unmanaged", "linger", "") else None
    for item in facts.networkd_files:
        if networkd_file_matches(item, name):
            return None if item.unmanaged else f"{item.path} matches it"
    return None


def _links(networks: Sequence[NetworkView]) -> dict[str, list[str]]:
    """Each link the topology creates, enslaves, addresses or uses as a VLAN parent, with its networks."""
    links: dict[str, list[str]] = {}
    for network in networks:
        for name in network.links:
            if name != "lo":
                links.setdefault(name, []).append(network.name)
    return links


def _by_reason(managed: Mapping[str, str]) -> str:
    """``a, b (reason); c (other reason)``."""
    reasons: dict[str, list[str]] = {}
    for name, why in managed.items():
        reasons.setdefault(why, []).append(name)
    return "; ".join(f"{_listed(names)} ({why})" for why, names in reasons.items())


def _nm_specs(names: Sequence[str]) -> str:
    mine = [name for name in names if name.startswith("gw-")]
    if len(mine) > LIST_LIMIT:
        names = ["gw-*", *(name for name in names if not name.startswith("gw-"))]
    return ";".join(f"interface-name:{name}" for name in names)


def _managed_links(service: str, evidence: str, managed: Mapping[str, str], networks: Sequence[str]) -> Conflict:
    which = f"{_by_reason(managed)}, which the topology creates, enslaves or addresses"
    cut = "and the network is cut until the next apply repairs it"
    if service == NETWORKMANAGER:
        effect = (f"it manages or may manage {which} (network{'s' if len(networks) > 1 else ''} {_listed(networks)}): "
                  "when it activates or reconnects a device it may remove the addresses ghostwarden set, take the "
                  f"device down or out of its bridge, or start DHCP on it, {cut}")
        advice = (f"Tell NetworkManager to leave them alone: [keyfile] unmanaged-devices={_nm_specs(list(managed))} "
                  "in /etc/NetworkManager/conf.d/ghostwarden.conf (interface-name:gw-* covers every bridge ghostwarden "
                  "names), then nmcli general reload (docs/coexistence.md)")
    else:
        effect = (f"it manages {which} (network{'s' if len(networks) > 1 else ''} {_listed(networks)}): when it "
                  f"configures the link again it may remove addresses and routes it did not set itself, {cut}")
        advice = (f"Give them a .network file that networkd tries first (e.g. /etc/systemd/network/00-ghostwarden.network) "
                  f"with [Match] Name={' '.join(managed)} and [Link] Unmanaged=yes, then networkctl reload "
                  "(docs/coexistence.md)")
    return Conflict(kind=service, subject=f"{service} ({evidence})", effect=effect, advice=advice,
                    networks=tuple(networks))


def _managed_uplinks(service: str, evidence: str, managed: Mapping[str, str]) -> Conflict:
    return Conflict(
        kind=service, subject=f"{service} ({evidence})",
        effect=(f"it manages the uplink {_by_reason(managed)}, whose accept_ra ghostwarden sets to 2 because the "
                "topology forwards IPv6: it handles router advertisements itself and may set accept_ra back, so the "
                "kernel may not learn the uplink's IPv6 default route from them"),
        advice=(f"Nothing to do while {service} configures the uplink's IPv6 itself (it does so with forwarding on "
                "too); if the kernel's SLAAC should configure it, leave the uplink unmanaged (docs/coexistence.md)"),
    )


def _link_conflicts(facts: ServiceFacts, networks: Sequence[NetworkView], ra_uplinks: Sequence[str]) -> list[Conflict]:
    """NetworkManager and systemd-networkd managing links of the topology, or an uplink whose accept_ra it sets."""
    if not facts.links_checked:
        return []
    conflicts = []
    links = _links(networks)
    for service, manages in ((NETWORKMANAGER, _nm_manages), (NETWORKD, _networkd_manages)):
        evidence = facts.evidence(service)
        if evidence is None:
            continue
        managed = {name: why for name in sorted(links) if (why := manages(facts, name)) is not None}
        if managed:
            names = sorted({network for name in managed for network in links[name]})
            conflicts.append(_managed_links(service, evidence, managed, names))
        uplinks_managed = {name: why for name in ra_uplinks if name not in links
                           and (why := manages(facts, name)) is not None}
        if uplinks_managed:
            conflicts.append(_managed_uplinks(service, evidence, uplinks_managed))
    return conflicts


def find_conflicts(ruleset: object, facts: ServiceFacts, topology: Topology | None) -> list[Conflict]:
    """Every conflict, one per cause: the recognised programs (firewalld, ufw, the Proxmox VE firewall,
    Docker, fail2ban, CrowdSec) in that order, then each other foreign chain that may drop the networks'
    traffic, then NetworkManager and systemd-networkd. ``ruleset``: the parsed ``nft -j`` listing of the
    foreign tables (the owned table is skipped if present), or None when nft could not list it;
    ``topology``: None when there is none to judge by (every foreign drop at input or forward counts then)."""
    if topology is None:
        return _nft_conflicts(ruleset, facts, (), (), judged=(_ANY,))
    if not topology.networks:
        return []  # nothing of the topology's to drop or to reconfigure
    networks = network_views(topology)
    others = sorted({network.iface for network in topology.networks if network.subnets} | set(uplinks(topology)))
    return [*_nft_conflicts(ruleset, facts, networks, others, judged=networks),
            *_link_conflicts(facts, networks, accept_ra_uplinks(topology))]


def conflict_warnings(conflicts: Iterable[Conflict]) -> list[str]:
    """One warning per conflict (a cause that concerns several networks names them all in one)."""
    return [conflict.warning for conflict in conflicts]
