# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""proxmox_sdn's core: ids, topology -> SDN objects, normal form, compare, rollback, and a run on a fake API."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import (
    ConflictError,
    GhostwardenError,
    ValidationError,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._sdn import (
    SDN_ID_RE,
    Change,
    SdnExportError,
    SdnState,
    alias_owner,
    check_zone_prefix,
    compare,
    derive_id,
    desired_sdn,
    export_sdn,
    managed_scope,
    normalise_live,
    pending_objects,
    rollback,
    subnet_id,
    vnet_id,
    zone_id,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import parse_topology

TOPOLOGY = {
    "interfaces": {"uplink": "vmbr0"},
    "networks": {
        "lab": {"type": "vlan", "vlan": 20, "parent": "vmbr0", "mtu": 1400, "cidr": "10.20.0.0/24",
                "gw_ip": "10.20.0.1"},
        "overlay_lab": {"type": "vxlan", "vni": 1200, "peers": ["10.0.0.12", "10.0.0.11"], "local": "10.0.0.10",
                        "dstport": 4790, "vlan_filtering": True, "cidr": "10.60.0.0/24", "gw_ip": "10.60.0.1",
                        "cidr6": "fd00:60::/64", "gw_ip6": "fd00:60::1"},
        "nat": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1"},
        "office": {"type": "bridge", "vlan": 30, "parent": "eno2"},
    },
}
OVERLAY_ZONE, OVERLAY_VNET = zone_id("gw", "overlay_lab"), vnet_id("gw", "overlay_lab")


def topology(changes: dict | None = None):
    data = copy.deepcopy(TOPOLOGY)
    for name, network in (changes or {}).items():
        if network is None:
            del data["networks"][name]
        else:
            data["networks"][name] = network
    return parse_topology(data)


# -- ids --------------------------------------------------------------------------------------


def test_ids_are_readable_when_they_fit_and_hashed_otherwise() -> None:
    assert (zone_id("gw", "lab"), vnet_id("gw", "lab")) == ("gwzlab", "gwlab")
    assert (zone_id("gw", "overlay_lab"), vnet_id("gw", "overlay_lab")) == ("gwz3f5e5", "gw3f5e55")
    assert derive_id("gw", "sixchr") == "gwsixchr" and derive_id("gwz", "sixchr") == "gwz7d826"
    assert derive_id("abcde", "x") == "abcdex"


@pytest.mark.parametrize("name", ["lab", "overlay_lab", "a", "Z9", "x" * 32, "with-dash", "sixchr"])
@pytest.mark.parametrize("prefix", ["gw", "g", "abcde", "Q1"])
def test_derived_ids_are_valid_pve_ids(prefix: str, name: str) -> None:
    for derived in (zone_id(prefix, name), vnet_id(prefix, name)):
        assert SDN_ID_RE.fullmatch(derived), derived
        assert derived.startswith(prefix)


@pytest.mark.parametrize("prefix", ["", "1gw", "abcdef", "g-w", None, 5])
def test_zone_prefix_is_checked(prefix: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_zone_prefix(prefix)
    assert str(caught.value) == (f"zone_prefix: {prefix!r} must be 1-5 letters and digits starting with a letter "
                                 f"(zone ids are the prefix, 'z' and the network, at most 8 characters)")


def test_alias_marks_ownership() -> None:
    assert (alias_owner("ghostwarden.lab"), alias_owner("ghostwarden."), alias_owner("office"),
            alias_owner(None)) == ("lab", None, None, None)
    assert subnet_id("gwzlab", "fd00:60::/64") == "gwzlab-fd00:60::-64"


# -- desired ----------------------------------------------------------------------------------


def test_vxlan_and_vlan_networks_become_zones_vnets_and_subnets() -> None:
    desired = desired_sdn(topology())
    assert desired.state.to_dict() == {
        "zones": {
            OVERLAY_ZONE: {"type": "vxlan", "peers": "10.0.0.10,10.0.0.11,10.0.0.12", "vxlan-port": 4790},
            "gwzlab": {"type": "vlan", "bridge": "vmbr0", "mtu": 1400},
        },
        "vnets": {
            OVERLAY_VNET: {"zone": OVERLAY_ZONE, "tag": 1200, "alias": "ghostwarden.overlay_lab", "vlanaware": 1},
            "gwlab": {"zone": "gwzlab", "tag": 20, "alias": "ghostwarden.lab"},
        },
        "subnets": {
            f"{OVERLAY_ZONE}-10.60.0.0-24": {"vnet": OVERLAY_VNET, "cidr": "10.60.0.0/24", "gateway": "10.60.0.1"},
            f"{OVERLAY_ZONE}-fd00:60::-64": {"vnet": OVERLAY_VNET, "cidr": "fd00:60::/64", "gateway": "fd00:60::1"},
            "gwzlab-10.20.0.0-24": {"vnet": "gwlab", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1"},
        },
    }
    assert desired.networks == {OVERLAY_VNET: "overlay_lab", "gwlab": "lab"}
    assert desired.claim_zones == frozenset({OVERLAY_ZONE, "gwzlab"})


def test_a_bridge_network_with_a_vlan_can_be_named() -> None:
    desired = desired_sdn(topology(), ["office"], "p")
    assert desired.state.to_dict() == {"zones": {"pzoffice": {"type": "vlan", "bridge": "eno2"}},
                                       "vnets": {"poffice": {"zone": "pzoffice", "tag": 30,
                                                             "alias": "ghostwarden.office"}},
                                       "subnets": {}}


@pytest.mark.parametrize(("names", "changes", "errors"), [
    (["nat"], None, ["networks.nat: network nat is a routed network without a VLAN; only vxlan networks and networks "
                     "with a vlan id become SDN vnets"]),
    (["lab", "nope", "lab"], None, ["networks[1]: 'nope' is not a network of the topology (networks: lab, nat, "
                                    "office, overlay_lab)", "networks[2]: 'lab' is listed twice"]),
    (None, {"overlay_lab": {"type": "vxlan", "vni": 7}},
     ["networks.overlay_lab: vxlan network overlay_lab has no peers; an SDN vxlan zone needs them"]),
])
def test_networks_that_cannot_be_exported_are_refused(names: list | None, changes: dict | None,
                                                      errors: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        desired_sdn(topology(changes), names)
    assert [str(issue) for issue in caught.value.issues] == errors


def test_networks_deriving_the_same_id_are_refused() -> None:
    # sha1 of both names starts with ee3906: both hash to the zone id gwzee390 (and the vnet id gwee3906).
    first, second = "n_2417", "n_5289"
    assert zone_id("gw", first) == zone_id("gw", second) == "gwzee390"
    data = {"networks": {name: {"type": "vxlan", "vni": vni, "peers": ["10.0.0.2"], "vxlan_iface": f"vx{vni}"}
                         for vni, name in ((1, first), (2, second))}}
    with pytest.raises(ValidationError) as caught:
        desired_sdn(parse_topology(data))
    assert str(caught.value) == (f"networks.{second}: network {second} and network {first} derive the same zone id "
                                 f"gwzee390; rename one of them or choose another zone_prefix")


# -- live -------------------------------------------------------------------------------------


def test_live_listing_in_normal_form() -> None:
    live = normalise_live(
        zones=[{"zone": "gwzlab", "type": "vlan", "bridge": "vmbr0", "mtu": "1400", "digest": "d1", "ipam": "pve"},
               {"zone": "z2", "type": "vxlan", "peers": "10.0.0.12, 10.0.0.2 10.0.0.11", "vxlan-port": 4789,
                "state": "new", "pending": {"mtu": 1}},
               "junk", {"type": "vlan"}],
        vnets=[{"vnet": "gwlab", "type": "vnet", "zone": "gwzlab", "tag": "20", "alias": "ghostwarden.lab",
                "vlanaware": 0, "isolate-ports": "1", "digest": "d2"}],
        subnets={"gwlab": [{"subnet": "gwzlab-10.20.0.0-24", "id": "gwzlab-10.20.0.0-24", "type": "subnet",
                            "vnet": "gwlab", "zone": "gwzlab", "network": "10.20.0.0", "mask": "24",
                            "gateway": "10.20.0.1", "snat": 0, "digest": "d3"},
                           {"subnet": "gwzlab-fd00::-64", "gateway": "FD00::1"},
                           {"subnet": "broken"}]})
    assert live.to_dict() == {
        "zones": {"gwzlab": {"bridge": "vmbr0", "ipam": "pve", "mtu": 1400, "type": "vlan"},
                  "z2": {"peers": "10.0.0.2,10.0.0.11,10.0.0.12", "type": "vxlan"}},
        "vnets": {"gwlab": {"alias": "ghostwarden.lab", "isolate-ports": 1, "tag": 20, "zone": "gwzlab"}},
        "subnets": {"gwzlab-10.20.0.0-24": {"cidr": "10.20.0.0/24", "gateway": "10.20.0.1", "vnet": "gwlab"},
                    "gwzlab-fd00::-64": {"cidr": "fd00::/64", "gateway": "fd00::1", "vnet": "gwlab"}},
    }


def state(zones: dict | None = None, vnets: dict | None = None, subnets: dict | None = None) -> SdnState:
    return SdnState(zones or {}, vnets or {}, subnets or {})


def applied(desired) -> SdnState:
    """The live state once ``desired`` was exported (what PVE lists after the first run)."""
    return SdnState(*(copy.deepcopy(dict(desired.state.of(kind))) for kind in ("zone", "vnet", "subnet")))


def test_scope_owned_vnets_their_subnets_and_zones_holding_only_them() -> None:
    live = state(
        zones={"gwzlab": {"type": "vlan"}, "mixed": {"type": "vlan"}, "empty": {"type": "vlan"},
               "gwzold": {"type": "vlan"}},
        vnets={"gwlab": {"zone": "gwzlab", "alias": "ghostwarden.lab"},
               "mine": {"zone": "mixed", "alias": "ghostwarden.other"}, "theirs": {"zone": "mixed", "alias": "x"}},
        subnets={"gwzlab-10.0.0.0-24": {"vnet": "gwlab", "cidr": "10.0.0.0/24"},
                 "mixed-10.1.0.0-24": {"vnet": "theirs", "cidr": "10.1.0.0/24"}})
    everything = managed_scope(live, None, {"gwzold"})
    assert (everything.zones, everything.vnets, everything.subnets) == (
        {"gwzlab", "gwzold"}, {"gwlab", "mine"}, {"gwzlab-10.0.0.0-24"})
    assert everything.foreign_zone_vnets == {"mixed": ("theirs",), "empty": ()}
    limited = managed_scope(live, ["other"])
    assert (limited.zones, limited.vnets, limited.subnets) == (frozenset(), {"mine"}, frozenset())


# -- compare ----------------------------------------------------------------------------------


def plan(desired, live: SdnState, networks=None) -> list[str]:
    claim = desired.claim_zones if desired is not None else ()
    return [f"{change} {change.method} {change.path} {dict(sorted(change.params.items()))}"
            for change in compare(desired, live, managed_scope(live, networks, claim))]


def test_a_fresh_cluster_gets_zones_then_vnets_then_subnets() -> None:
    desired = desired_sdn(topology(), ["lab"])
    assert plan(desired, state()) == [
        "create zone gwzlab POST /cluster/sdn/zones {'bridge': 'vmbr0', 'mtu': 1400, 'type': 'vlan', 'zone': "
        "'gwzlab'}",
        "create vnet gwlab POST /cluster/sdn/vnets {'alias': 'ghostwarden.lab', 'tag': 20, 'vnet': 'gwlab', 'zone': "
        "'gwzlab'}",
        "create subnet gwzlab-10.20.0.0-24 POST /cluster/sdn/vnets/gwlab/subnets {'gateway': '10.20.0.1', "
        "'subnet': '10.20.0.0/24', 'type': 'subnet'}",
    ]


def test_nothing_to_do_when_live_matches_even_with_foreign_settings() -> None:
    desired = desired_sdn(topology())
    live = applied(desired)
    live.zones["gwzlab"]["ipam"] = "pve"  # set by someone else: not ours to manage
    live.vnets["gwlab"]["isolate-ports"] = 1
    assert plan(desired, live) == []


def test_changed_settings_are_updated_and_dropped_ones_deleted() -> None:
    desired = desired_sdn(topology({"lab": {"type": "vlan", "vlan": 21, "parent": "vmbr0", "cidr": "10.20.0.0/24",
                                            "gw_ip": "10.20.0.2"}}), ["lab"])
    live = applied(desired_sdn(topology(), ["lab"]))
    live.zones["gwzlab"]["ipam"] = "pve"
    assert plan(desired, live) == [
        "update zone gwzlab PUT /cluster/sdn/zones/gwzlab {'delete': 'mtu'}",
        "update vnet gwlab PUT /cluster/sdn/vnets/gwlab {'tag': 21}",
        "update subnet gwzlab-10.20.0.0-24 PUT /cluster/sdn/vnets/gwlab/subnets/gwzlab-10.20.0.0-24 {'gateway': "
        "'10.20.0.2'}",
    ]
    change = compare(desired, live, managed_scope(live, None))[0]
    assert (change.before, change.after) == ({"bridge": "vmbr0", "ipam": "pve", "mtu": 1400, "type": "vlan"},
                                             {"bridge": "vmbr0", "ipam": "pve", "type": "vlan"})
    assert change.to_dict()["after"] == {"type": "vlan", "bridge": "vmbr0"}


def test_a_zone_type_change_replaces_the_zone_with_its_vnet_and_subnets() -> None:
    old = desired_sdn(topology(), ["lab"])
    new = desired_sdn(topology({"lab": {"type": "vxlan", "vni": 20, "peers": ["10.0.0.2"], "cidr": "10.20.0.0/24",
                                        "gw_ip": "10.20.0.1"}}), ["lab"])
    assert [line.split(" {")[0] for line in plan(new, applied(old))] == [
        "delete subnet gwzlab-10.20.0.0-24 DELETE /cluster/sdn/vnets/gwlab/subnets/gwzlab-10.20.0.0-24",
        "delete vnet gwlab DELETE /cluster/sdn/vnets/gwlab",
        "delete zone gwzlab DELETE /cluster/sdn/zones/gwzlab",
        "create zone gwzlab POST /cluster/sdn/zones",
        "create vnet gwlab POST /cluster/sdn/vnets",
        "create subnet gwzlab-10.20.0.0-24 POST /cluster/sdn/vnets/gwlab/subnets",
    ]


def test_objects_of_networks_gone_from_the_topology_are_removed_unless_networks_are_named() -> None:
    live = applied(desired_sdn(topology()))
    desired = desired_sdn(topology({"overlay_lab": None}))
    assert [line.split(" DELETE")[0] for line in plan(desired, live)] == [
        f"delete subnet {OVERLAY_ZONE}-10.60.0.0-24", f"delete subnet {OVERLAY_ZONE}-fd00:60::-64",
        f"delete vnet {OVERLAY_VNET}", f"delete zone {OVERLAY_ZONE}"]
    assert plan(desired_sdn(topology(), ["lab"]), live, networks=["lab"]) == []


def test_removal_takes_only_what_the_module_owns() -> None:
    live = applied(desired_sdn(topology()))
    live.zones["office"] = {"type": "vlan", "bridge": "vmbr1"}
    live.vnets["office"] = {"zone": "office", "tag": 30}
    live.vnets["shared"] = {"zone": "gwzlab", "tag": 31, "alias": "someone"}  # a foreign vnet in our zone
    assert [line.split(" DELETE")[0] for line in plan(None, live)] == [
        f"delete subnet {OVERLAY_ZONE}-10.60.0.0-24", f"delete subnet {OVERLAY_ZONE}-fd00:60::-64",
        "delete subnet gwzlab-10.20.0.0-24", f"delete vnet {OVERLAY_VNET}", "delete vnet gwlab",
        f"delete zone {OVERLAY_ZONE}"]


def test_ids_taken_by_foreign_objects_are_conflicts() -> None:
    desired = desired_sdn(topology())
    live = state(zones={"gwzlab": {"type": "vlan", "bridge": "vmbr0"}},
                 vnets={"gwlab": {"zone": "gwzlab", "tag": 20, "alias": "office"}})
    with pytest.raises(ConflictError) as caught:
        compare(desired, live, managed_scope(live, None, desired.claim_zones))
    assert caught.value.conflicts == [
        "zone gwzlab exists and is not ghostwarden's (it holds gwlab)",
        "vnet gwlab exists and is not ghostwarden's network lab (its alias is 'office')",
    ]


def test_an_empty_zone_with_a_derived_id_is_taken_over() -> None:
    desired = desired_sdn(topology(), ["lab"])
    live = state(zones={"gwzlab": {"type": "vlan", "bridge": "vmbr9"}})
    assert plan(desired, live)[0] == "update zone gwzlab PUT /cluster/sdn/zones/gwzlab {'bridge': 'vmbr0', 'mtu': 1400}"


# -- rollback and pending ---------------------------------------------------------------------


def test_rollback_inverts_every_change_in_reverse_order() -> None:
    old = desired_sdn(topology(), ["lab"])
    live = applied(old)
    live.zones["gwzlab"]["ipam"] = "pve"
    new = desired_sdn(topology({"lab": {"type": "vlan", "vlan": 20, "parent": "vmbr1", "cidr": "10.21.0.0/24",
                                        "gw_ip": "10.21.0.1"}}), ["lab"])
    changes = compare(new, live, managed_scope(live, None))
    assert [str(change) for change in changes] == ["delete subnet gwzlab-10.20.0.0-24", "update zone gwzlab",
                                                   "create subnet gwzlab-10.21.0.0-24"]
    undo = rollback(changes)
    assert [(str(change), change.method, change.path, dict(change.params)) for change in undo] == [
        ("delete subnet gwzlab-10.21.0.0-24", "DELETE", "/cluster/sdn/vnets/gwlab/subnets/gwzlab-10.21.0.0-24", {}),
        ("update zone gwzlab", "PUT", "/cluster/sdn/zones/gwzlab", {"bridge": "vmbr0", "mtu": 1400}),
        ("create subnet gwzlab-10.20.0.0-24", "POST", "/cluster/sdn/vnets/gwlab/subnets",
         {"gateway": "10.20.0.1", "subnet": "10.20.0.0/24", "type": "subnet"}),
    ]
    assert rollback(undo) == changes


def test_pending_objects() -> None:
    config = state(zones={"a": {"type": "vlan"}, "b": {"type": "vlan", "mtu": 1}},
                   subnets={"s": {"vnet": "v", "cidr": "10.0.0.0/24"}})
    running = state(zones={"b": {"type": "vlan"}, "c": {"type": "vlan"}},
                    subnets={"s": {"vnet": "v", "cidr": "10.0.0.0/24"}})
    assert pending_objects(config, running) == {("zone", "a"): "new", ("zone", "b"): "changed",
                                                ("zone", "c"): "deleted"}


# -- a run against a fake SDN API -------------------------------------------------------------


class FakeSdn:
    """PVE's SDN as far as a run sees it: staged and running configuration, the PVE 9 lock, tasks."""

    def __init__(self, version: tuple[int, int] = (9, 0)) -> None:
        self._version = version
        self.config: dict[str, dict[str, dict]] = {"zones": {}, "vnets": {}, "subnets": {}}
        self.running = copy.deepcopy(self.config)
        self.requests: list[tuple[str, str, dict]] = []
        self.token: str | None = None
        self.fail_task: str | None = None
        self.fail_request: tuple[str, str] | None = None
        self.tasks = 0

    # -- client interface
    def version(self) -> tuple[int, int]:
        return self._version

    def get(self, path: str, **params: Any) -> Any:
        self.requests.append(("GET", path, params))
        view = self.running if params.get("running") else self.config
        if path == "/cluster/sdn/zones":
            return [{"zone": key, **value, "digest": "z"} for key, value in sorted(view["zones"].items())]
        if path == "/cluster/sdn/vnets":
            return [{"vnet": key, "type": "vnet", **value} for key, value in sorted(view["vnets"].items())]
        vnet = path.split("/")[4]
        return [{"subnet": key, "type": "subnet", "zone": key.split("-")[0], **value}
                for key, value in sorted(view["subnets"].items()) if value["vnet"] == vnet]

    def post(self, path: str, **params: Any) -> Any:
        return self._write("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        return self._write("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        return self._write("DELETE", path, params)

    def wait_task(self, upid: str, timeout: float = 300) -> None:
        if self.fail_task:
            message, self.fail_task = self.fail_task, None
            raise GhostwardenError(f"task reloadnetworkall failed: {message}")
        self.running = copy.deepcopy(self.config)
        if self.release_after_task:
            self.token = None

    # -- behaviour
    def _write(self, method: str, path: str, params: dict) -> Any:
        self.requests.append((method, path, params))
        if self.fail_request == (method, path):
            raise GhostwardenError(f"{method} {path}: 500 refused")
        params = dict(params)
        token = params.pop("lock-token", None)
        if path == "/cluster/sdn/lock":
            if method == "POST":
                assert self.token is None, "locked twice"
                self.token = "tok-1"
                return self.token
            assert token == self.token
            self.token = None
            return None
        if self._version >= (9, 0):
            assert token == self.token, f"{method} {path} without the lock token"
        else:
            assert token is None, "PVE 8 has no lock-token"
        if path == "/cluster/sdn/rollback":
            self.config = copy.deepcopy(self.running)
            self.token = None
            return None
        if path == "/cluster/sdn":
            # As PVE: the pending configuration is committed here; the task only reloads the nodes.
            self.running = copy.deepcopy(self.config)
            self.tasks += 1
            self.release_after_task = bool(params.get("release-lock", 1))
            return f"UPID:pve1:0000AAAA:0000BBBB:0000CCCC:reloadnetworkall::root@pam:{self.tasks}"
        parts = path.strip("/").split("/")
        if parts[2] == "zones":
            self._object("zones", method, parts[3] if len(parts) > 3 else params.pop("zone"), params)
        elif len(parts) <= 4:
            self._object("vnets", method, parts[3] if len(parts) > 3 else params.pop("vnet"), params)
        else:
            vnet = parts[3]
            if method == "POST":
                cidr = params.pop("subnet")
                params.pop("type")
                key = f"{self.config['vnets'][vnet]['zone']}-{cidr.replace('/', '-')}"
                params.update(vnet=vnet, cidr=cidr)
            else:
                key = parts[5]
            self._object("subnets", method, key, params)
        return None

    def _object(self, kind: str, method: str, key: str, params: dict) -> None:
        objects = self.config[kind]
        if method == "POST":
            assert key not in objects, f"{key} exists"
            objects[key] = params
        elif method == "PUT":
            for name in params.pop("delete", "").split(","):
                objects[key].pop(name, None)
            objects[key].update(params)
        else:
            del objects[key]

    release_after_task = True

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _params in self.requests if method != "GET"]


def export(api: FakeSdn, desired=None, *, networks=None, apply: bool = True, check_mode: bool = False):
    return export_sdn(api, desired, networks=networks, apply=apply, check_mode=check_mode)


def test_pve9_run_locks_stages_applies_once_and_is_idempotent() -> None:
    api = FakeSdn((9, 0))
    desired = desired_sdn(topology(), ["lab"])
    result = export(api, desired)
    assert result.changed and result.applied
    assert api.writes() == [
        ("POST", "/cluster/sdn/lock"), ("POST", "/cluster/sdn/zones"), ("POST", "/cluster/sdn/vnets"),
        ("POST", "/cluster/sdn/vnets/gwlab/subnets"), ("PUT", "/cluster/sdn"), ("DELETE", "/cluster/sdn/lock")]
    assert all(params.get("lock-token") == "tok-1" for method, path, params in api.requests
               if method != "GET" and path != "/cluster/sdn/lock" or method == "DELETE")
    assert [params for method, path, params in api.requests if path == "/cluster/sdn"] == [
        {"lock-token": "tok-1", "release-lock": 0}]
    assert api.running == api.config and api.token is None
    assert [change["action"] for change in result.changes] == ["create", "create", "create", "apply"]
    assert result.after == {"zones": {"gwzlab": {"type": "vlan", "bridge": "vmbr0", "mtu": 1400}},
                            "vnets": {"gwlab": {"zone": "gwzlab", "tag": 20, "alias": "ghostwarden.lab"}},
                            "subnets": {"gwzlab-10.20.0.0-24": {"vnet": "gwlab", "cidr": "10.20.0.0/24",
                                                                "gateway": "10.20.0.1"}}}
    assert result.before == {"zones": {}, "vnets": {}, "subnets": {}}

    api.requests.clear()
    again = export(api, desired)
    assert (again.changed, again.changes, api.writes()) == (False, [], [])
    assert again.before == again.after == result.after
    assert export(api, desired, check_mode=True).changed is False


def test_pve8_run_has_no_lock() -> None:
    api = FakeSdn((8, 2))
    export(api, desired_sdn(topology(), ["lab"]))
    assert api.writes() == [("POST", "/cluster/sdn/zones"), ("POST", "/cluster/sdn/vnets"),
                            ("POST", "/cluster/sdn/vnets/gwlab/subnets"), ("PUT", "/cluster/sdn")]
    assert [params for method, path, params in api.requests if path == "/cluster/sdn"] == [{}]


@pytest.mark.parametrize("version", [(8, 2), (9, 0)])
def test_check_mode_reads_only(version: tuple[int, int]) -> None:
    api = FakeSdn(version)
    result = export(api, desired_sdn(topology()), check_mode=True)
    assert result.changed and not result.applied
    assert [change["action"] for change in result.changes] == ["create"] * 7 + ["apply"]
    assert api.writes() == [] and api.config["zones"] == {}


@pytest.mark.parametrize("version", [(8, 2), (9, 0)])
def test_a_failed_reload_applies_the_previous_configuration_again(version: tuple[int, int]) -> None:
    # PVE commits at PUT /cluster/sdn: nothing is pending when the reload task fails, so the
    # rollback endpoint could not help; the previous configuration is staged and applied again.
    api = FakeSdn(version)
    export(api, desired_sdn(topology(), ["lab"]))
    before = copy.deepcopy(api.config)
    api.requests.clear()
    api.fail_task = "ifreload failed on pve2"
    with pytest.raises(SdnExportError) as caught:
        export(api, desired_sdn(topology({"lab": {"type": "vlan", "vlan": 21, "parent": "vmbr0"}}), ["lab"]))
    assert str(caught.value) == (
        "apply task (reloadnetworkall): task reloadnetworkall failed: ifreload failed on pve2; PVE had committed the "
        "configuration before the reload failed; the 3 change(s) were undone and the previous configuration applied "
        "again (PUT /cluster/sdn)")
    assert caught.value.to_result()["rolled_back"] is True
    assert caught.value.to_result()["failed_step"] == "apply task (reloadnetworkall)"
    writes = [write for write in api.writes() if write[1] != "/cluster/sdn/lock"]
    assert writes == [
        ("DELETE", "/cluster/sdn/vnets/gwlab/subnets/gwzlab-10.20.0.0-24"), ("PUT", "/cluster/sdn/zones/gwzlab"),
        ("PUT", "/cluster/sdn/vnets/gwlab"), ("PUT", "/cluster/sdn"),
        ("PUT", "/cluster/sdn/vnets/gwlab"), ("PUT", "/cluster/sdn/zones/gwzlab"),
        ("POST", "/cluster/sdn/vnets/gwlab/subnets"), ("PUT", "/cluster/sdn")]
    assert ("POST", "/cluster/sdn/rollback") not in api.writes()
    assert api.config == before and api.running == before and api.token is None


def test_a_failed_second_apply_is_reported_as_not_rolled_back() -> None:
    api = FakeSdn((8, 2))
    export(api, desired_sdn(topology(), ["lab"]))
    api.fail_task = "ifreload failed"
    original_wait = api.wait_task

    def fail_twice(upid: str, timeout: float = 300) -> None:
        api.fail_task = api.fail_task or "ifreload failed again"
        original_wait(upid, timeout)

    api.wait_task = fail_twice  # type: ignore[method-assign]
    with pytest.raises(SdnExportError) as caught:
        export(api, desired_sdn(topology({"lab": {"type": "vlan", "vlan": 21, "parent": "vmbr0"}}), ["lab"]))
    assert caught.value.to_result()["rolled_back"] is False
    assert str(caught.value).endswith(
        "the 3 change(s) were undone, but applying the previous configuration again failed too (task reloadnetworkall "
        "failed: ifreload failed again): the nodes may run either")


@pytest.mark.parametrize("version", [(8, 2), (9, 0)])
def test_a_refused_write_is_undone_and_names_its_step(version: tuple[int, int]) -> None:
    api = FakeSdn(version)
    api.fail_request = ("POST", "/cluster/sdn/vnets")
    with pytest.raises(SdnExportError) as caught:
        export(api, desired_sdn(topology(), ["lab"]))
    assert caught.value.step == "step 2 of 3: create vnet gwlab (POST /cluster/sdn/vnets)"
    assert caught.value.cause == "POST /cluster/sdn/vnets: 500 refused"
    assert api.config == {"zones": {}, "vnets": {}, "subnets": {}} and api.token is None
    assert ("PUT", "/cluster/sdn") not in api.writes()
    undo = ("POST", "/cluster/sdn/rollback") if version >= (9, 0) else ("DELETE", "/cluster/sdn/zones/gwzlab")
    assert api.writes()[-1] == undo


def test_pending_changes_of_others_are_not_applied() -> None:
    api = FakeSdn((8, 2))
    api.config["zones"]["office"] = {"type": "simple"}
    with pytest.raises(GhostwardenError) as caught:
        export(api, desired_sdn(topology(), ["lab"]))
    assert str(caught.value) == ("the SDN configuration has pending changes this module did not make (zone office "
                                 "(new)); applying would apply them too - apply or revert them in Proxmox VE first")
    assert api.writes() == []
    assert export(api, desired_sdn(topology(), ["lab"]), apply=False).changed  # staging alone is fine


def test_staged_changes_are_applied_by_a_later_run() -> None:
    api = FakeSdn((9, 0))
    desired = desired_sdn(topology(), ["lab"])
    staged = export(api, desired, apply=False)
    assert staged.changed and not staged.applied and api.running["zones"] == {}
    assert ("PUT", "/cluster/sdn") not in api.writes() and api.token is None
    api.requests.clear()
    result = export(api, desired)
    assert result.changed and [change["action"] for change in result.changes] == ["apply"]
    assert api.writes() == [("POST", "/cluster/sdn/lock"), ("PUT", "/cluster/sdn"), ("DELETE", "/cluster/sdn/lock")]
    assert [params for method, path, params in api.requests if path == "/cluster/sdn/lock"][0] == {"allow-pending": 1}
    assert api.running == api.config


def test_absent_removes_only_the_modules_objects() -> None:
    api = FakeSdn((9, 0))
    export(api, desired_sdn(topology()))
    api.config["zones"]["office"] = {"type": "vlan", "bridge": "vmbr1"}
    api.config["vnets"]["office"] = {"zone": "office", "tag": 30, "alias": "office lan"}
    api.running = copy.deepcopy(api.config)
    result = export(api, None)
    assert api.config == {"zones": {"office": {"type": "vlan", "bridge": "vmbr1"}},
                          "vnets": {"office": {"zone": "office", "tag": 30, "alias": "office lan"}}, "subnets": {}}
    assert result.after == {"zones": {}, "vnets": {}, "subnets": {}}
    assert sorted(result.before["vnets"]) == sorted([OVERLAY_VNET, "gwlab"])
    assert export(api, None).changed is False


def test_change_to_dict_shows_managed_settings() -> None:
    change = Change("update", "zone", "gwzlab", "PUT", "/cluster/sdn/zones/gwzlab", {"mtu": 1500},
                    {"type": "vlan", "bridge": "vmbr0", "ipam": "pve"}, {"type": "vlan", "bridge": "vmbr0",
                                                                         "ipam": "pve", "mtu": 1500})
    assert change.to_dict() == {"action": "update", "kind": "zone", "id": "gwzlab", "method": "PUT",
                                "path": "/cluster/sdn/zones/gwzlab", "params": {"mtu": 1500},
                                "before": {"type": "vlan", "bridge": "vmbr0"},
                                "after": {"type": "vlan", "bridge": "vmbr0", "mtu": 1500}}


def test_a_failed_lock_release_after_the_apply_is_not_rolled_back() -> None:
    api = FakeSdn((9, 0))
    api.fail_request = ("DELETE", "/cluster/sdn/lock")
    with pytest.raises(GhostwardenError) as caught:
        export(api, desired_sdn(topology(), ["lab"]))
    assert not isinstance(caught.value, SdnExportError)
    assert str(caught.value) == ("the SDN changes were made and applied, but releasing the SDN lock (DELETE "
                                 "/cluster/sdn/lock) failed: DELETE /cluster/sdn/lock: 500 refused")
    assert api.running == api.config and sorted(api.config["zones"]) == ["gwzlab"]
    assert ("POST", "/cluster/sdn/rollback") not in api.writes()
