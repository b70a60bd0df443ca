#!/usr/bin/python
# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ghostwarden_apply
short_description: Turn a whole ghostwarden topology into host state
version_added: 0.1.0
description:
  - Validates a declarative network topology (routed, bridge, VLAN and VXLAN networks, port forwards,
    masquerade, DHCP/DNS and policy profiles) and computes everything a host needs for it - the
    C(inet ghostwarden) nftables table, the dnsmasq configuration of each network and the ordered plan of
    netlink and file operations.
  - With O(state=present) the host's owned objects become exactly the topology - links through netlink
    (pyroute2), the whole C(inet ghostwarden) table replaced in one checked C(nft -f) transaction, dnsmasq
    configuration files and processes. Owned objects that are not in the topology are removed. Foreign links,
    addresses, routes and nft tables are never changed.
  - With O(state=absent) every owned object is removed. With O(state=gathered) the live owned state is
    returned as a topology. With O(state=rendered) nothing on the host is read or changed; the module runs
    anywhere, without root and without pyroute2, so a topology can be reviewed and tested in CI before it is applied.
  - Topology files of the original Ghostwarden CLI (C(ghostnet.toml), C(ghostnet.yaml)) load unchanged.
  - "Input errors are reported as one line naming the field path and the value, for example
    C(networks.nat_dev.forwards[0].public: port 70000 is out of range 1-65535); all errors are returned in RV(errors)."
author:
  - ghostwarden.core maintainers (@ghostwarden)
extends_documentation_fragment:
  - ghostwarden.core._attributes
  - ghostwarden.core._attributes.platform
  - ghostwarden.core._host
  - ghostwarden.core._host.lockout
  - ghostwarden.core._host.results
attributes:
  idempotent:
    support: full
  check_mode:
    support: full
    details: >-
      Check mode returns the full plan that a real run would execute, and the dnsmasq processes it would start. It
      writes nothing - not the state directory, its lock file, journal, history or boot files, no dnsmasq file or
      process, no timer. An unfinished earlier apply is reported in RV(recovery) and not rolled back; RV(plan) is
      then what the real run executes after rolling it back. A new ruleset is checked with C(nft -c) in the target
      namespace; a ruleset the kernel refuses fails the check run naming its line, as it fails a real run before
      any change.
  diff_mode:
    support: full
    details: >-
      The diff shows the owned links, addresses, FDB entries and ports as JSON, the nft table as text, and each
      dnsmasq file that changes.
options:
  topology:
    description:
      - The topology as a dictionary, usually the C(ghostwarden_topology) variable.
      - See the collection's C(docs/topology.md) for every field and its default.
      - Exactly one of O(topology) and O(src) is required, except with O(state=absent) and O(state=gathered).
    type: dict
  src:
    description:
      - Path of a topology file on the managed node, in this collection's format or the original CLI's.
      - The format follows the suffix - C(.toml), C(.yaml), C(.yml) or C(.json).
      - Exactly one of O(topology) and O(src) is required, except with O(state=absent) and O(state=gathered).
      - Profile files in the directory C(policies) beside this file are found before those of O(policy_dirs).
    type: path
  policy_dirs:
    description:
      - Directories on the node the module runs on where a network's C(policy_profile) is looked for when it names
        neither a profile under C(policies) of the topology nor a built-in profile.
      - In each directory, in the order given, C(<name>.toml), C(<name>.yaml) and C(<name>.yml) are tried; the first
        file found is read. With O(src), the directory C(policies) beside the topology file is searched first.
        Directories that do not exist are skipped. Every entry must be an absolute path.
      - A profile file holds one profile in the original Ghostwarden CLI's format or this collection's, with its
        C(name) inside equal to the file's name. A file never replaces a built-in profile (a warning says so when a
        network uses a built-in that has a file of its name) nor a profile under C(policies).
      - The profiles read become part of the normalised topology (RV(topology)), under C(policies), each with
        C(file), the path it was read from. Given back (as O(topology)), such a copy is read again from that file
        while it exists, else used as written.
      - The default is this collection's directory, then the original CLI's. V([]) searches only beside O(src).
    type: list
    elements: path
    default: [/etc/ghostwarden/policies, /etc/gwarden/policies]
  state:
    description:
      - V(present) makes the host's owned objects exactly the topology.
      - V(absent) removes every object the collection owns on the host (the O(topology) is not needed).
      - V(gathered) returns the live owned state as a topology in RV(topology), without changing anything.
      - V(rendered) validates the topology and returns the rendered ruleset, dnsmasq files and the plan of
        operations against an empty host, without touching the host.
      - V(rolled_back) makes the host what the committed generation O(generation) was (default the one before
        the current), as a new generation; check and diff mode show what would change.
      - V(confirmed) is used by the action plugin to keep a change applied with a confirm window; it needs
        O(confirm_token).
    type: str
    default: present
    choices: [present, absent, gathered, rendered, rolled_back, confirmed]
  confirm_timeout:
    description:
      - Seconds the controller has to reach the host again over a new connection after the change. Until it
        does, a rollback timer armed on the host (a transient systemd timer, or a detached process where
        systemd does not run) is pending; when the window closes without a confirmation the host restores
        the previous state by itself, with kernel tools only, and the task fails saying that the change cut
        the management path.
      - V(0) commits at once. Left out, the window is 60 seconds when the module runs over SSH
        (C(SSH_CONNECTION) is set on the managed node) and off otherwise.
    type: int
  probes:
    description:
      - Checks run on the managed node (inside O(netns)) after the change; if one fails the change is rolled
        back and the task fails naming the probe.
      - Each item has exactly one of C(tcp) (V(host:port), IPv6 as V([addr]:port)), C(ping) (a host) and
        C(dns) (a name resolved with the node's resolver), and optionally C(timeout) in seconds (default 5).
    type: list
    elements: dict
    default: []
  history:
    description:
      - How many committed generations the state directory keeps for O(state=rolled_back).
    type: int
    default: 10
  generation:
    description:
      - The committed generation to return to with O(state=rolled_back).
    type: int
  confirm_token:
    description:
      - The token of the pending change, with O(state=confirmed) (the action plugin passes it).
    type: str
  management_from_connection:
    description:
      - Accept the address of the SSH client the play runs over (from C(SSH_CONNECTION) on the managed node)
        on the management ports before any policy, in addition to C(management.allow_from) of the topology.
    type: bool
    default: true
requirements:
  - netaddr
  - pyroute2 (not for O(state=rendered))
  - nft, ip and dnsmasq on the managed node (not for O(state=rendered))
  - PyYAML (for YAML topology and profile files)
  - tomli on Python older than 3.11 (for TOML topology and profile files)
notes:
  - On a Proxmox VE node whose firewall is active, a warning names every bridge that pve-firewall (guest NICs with
    C(firewall=1)) and a network's policy profile would both filter; see M(ghostwarden.core.ghostwarden_info)'s
    RV(ghostwarden.core.ghostwarden_info#module:proxmox).
  - The topology's built-in policy profiles are C(routed-tight), C(public-web), C(l2-lan), C(proxmox-cluster),
    C(proxmox-storage), C(proxmox-backup) and C(proxmox-dmz); see C(docs/policy-profiles.md). Other profiles are
    defined under C(policies) of the topology or read from profile files (O(policy_dirs)).
seealso:
  - name: nftables wiki
    description: The nftables project's documentation of the syntax the rendered ruleset uses.
    link: https://wiki.nftables.org/
"""

EXAMPLES = r"""
- name: Apply the topology from the inventory
  ghostwarden.core.ghostwarden_apply:
    topology: "{{ ghostwarden_topology }}"
  register: applied

- name: Apply inside a lab network namespace, keeping state apart
  ghostwarden.core.ghostwarden_apply:
    src: /etc/ghostwarden/ghostnet.toml
    netns: lab-host1
    state_dir: /var/lib/ghostwarden/lab-host1

- name: Remove everything ghostwarden owns on the host
  ghostwarden.core.ghostwarden_apply:
    state: absent

- name: Read the live owned state back as a topology
  ghostwarden.core.ghostwarden_apply:
    state: gathered
  register: live

- name: Render the topology from the inventory and show the ruleset
  ghostwarden.core.ghostwarden_apply:
    topology: "{{ ghostwarden_topology }}"
    state: rendered
  register: rendered
  delegate_to: localhost

- name: Show the nft table that would be loaded
  ansible.builtin.debug:
    msg: "{{ rendered.ruleset }}"

- name: Render a topology file of the original Ghostwarden CLI
  ghostwarden.core.ghostwarden_apply:
    src: /etc/ghostwarden/ghostnet.toml
    state: rendered

- name: Apply a topology whose networks name profile files kept in a directory of their own
  ghostwarden.core.ghostwarden_apply:
    src: /srv/net/ghostnet.toml  # profile files in /srv/net/policies/ are found first
    policy_dirs:
      - /srv/shared-policies
      - /etc/ghostwarden/policies

- name: A routed NAT network with DHCP, DNS and a port forward
  ghostwarden.core.ghostwarden_apply:
    state: rendered
    topology:
      version: 1
      interfaces:
        uplink: enp6s0
      management:
        allow_from: [192.0.2.0/24]
      networks:
        nat_dev:
          type: routed
          cidr: 10.33.0.0/24
          gw_ip: 10.33.0.1
          dhcp: true
          dns:
            enabled: true
            zones: [dev.lan]
          masq_out: uplink
          forwards:
            - public: "0.0.0.0:4022/tcp"
              dst: "10.33.0.10:22"
          policy_profile: routed-tight
"""

RETURN = r"""
topology:
  description:
    - The normalised topology, every default filled in, in this collection's format.
    - Profiles read from files (O(policy_dirs)) are under C(policies), each with C(file), the path it was read from.
    - With O(state=gathered), the live owned state as a topology.
  returned: with O(state=rendered) and O(state=gathered); with O(state=present) when O(return_content=true)
  type: dict
  sample:
    version: 1
    interfaces: {uplink: enp6s0}
    networks:
      nat_dev: {type: routed, iface: gw-nat_dev, cidr: 10.33.0.0/24, gw_ip: 10.33.0.1}
ruleset:
  description: The whole C(inet ghostwarden) nftables table as C(nft -f) text (with O(state=gathered), as listed by nft).
  returned: with O(state=rendered) and O(state=gathered); with O(state=present) when O(return_content=true)
  type: str
  sample: "table inet ghostwarden {\n  ...\n}\n"
plan:
  description:
    - The ordered operations executed (in check mode - that would be executed) on the host.
    - In check mode with RV(recovery), the operations the real run executes after that recovery.
    - With O(state=rendered), the operations that would bring an empty host to the topology.
    - With O(state=gathered) and O(state=confirmed), empty.
    - Each item has C(kind) (for example V(create_link), V(add_address), V(replace_ruleset)), C(target)
      (for example V(link:gw-nat_dev)) and C(details).
    - Unless O(return_content=true) (and except with O(state=rendered)), only the first 50 operations, without file
      and ruleset contents (their C(sha256) and C(lines) stay); RV(plan_omitted) counts the rest.
  returned: success
  type: list
  elements: dict
  sample:
    - {kind: create_link, target: "link:gw-nat_dev", details: {kind: bridge}}
plan_omitted:
  description: How many operations RV(plan) leaves out (RV(changes) counts them all); O(return_content=true) lists them.
  returned: when the plan has more than 50 operations and O(return_content=false)
  type: int
  sample: 1450
summary:
  description: One line saying what the run did (in check mode, would do), or V(no change).
  returned: with O(state=present), O(state=absent) and O(state=rolled_back)
  type: str
  sample: "applied 3 operations (2 create_link, 1 replace_ruleset); dnsmasq: started nat_dev"
dnsmasq:
  description:
    - With O(state=rendered), the dnsmasq configuration of every network with DHCP or DNS, file path to content.
    - Otherwise the dnsmasq process changes made (or, in check mode, due), such as V(started nat_dev).
  returned: success, except with O(state=gathered)
  type: raw
  sample: ["started nat_dev"]
changes:
  description: How many operations of each kind RV(plan) has (kinds with none are left out).
  returned: success
  type: dict
  sample: {create_link: 2, add_address: 1, replace_ruleset: 1}
generation:
  description: The number of applies that changed this host's owned state so far (from the state directory).
  returned: with O(state=present) and O(state=absent)
  type: int
  sample: 3
rolled_back:
  description: Whether the change was undone - on failure after a failed step or probe, or when the confirm window closed.
  returned: with O(state=present), O(state=absent) and O(state=rolled_back), and on failure
  type: bool
  sample: false
rollback_reason:
  description: Why the change was rolled back.
  returned: when RV(rolled_back) is true
  type: str
  sample: "probes: tcp 10.33.0.10:22: connection refused"
confirm:
  description:
    - The pending change while its confirm window is open (the action plugin confirms it and removes this key).
  returned: when a confirm window was opened
  type: dict
  sample: {token: 4f2c..., deadline_in: 59.6, rollback_generation: 2}
confirmed:
  description: Whether the change was confirmed over a new connection within its window.
  returned: when a confirm window was opened
  type: bool
  sample: true
boot_unit:
  description:
    - The systemd unit that restores the committed state at boot, as written under O(state_dir) (C(persist/)) on every
      commit - C(name) (V(ghostwarden-restore.service), or V(ghostwarden-restore-<netns>.service) with O(netns)) and
      C(path). The host role installs it from there.
    - With a confirm window the unit is written when the change is confirmed.
  returned: >-
    with O(state=present), O(state=absent), O(state=rolled_back) and O(state=confirmed), when the unit file exists
    or a confirm window is open
  type: dict
  sample: {name: ghostwarden-restore.service, path: /var/lib/ghostwarden/persist/ghostwarden-restore.service}
recovered:
  description: An earlier apply that was interrupted or whose window closed, and that this run rolled back first.
  returned: when it happened (never in check mode; see RV(recovery))
  type: str
  sample: "the apply started 2026-11-25T18:00:00Z was rolled back because it was interrupted"
recovery:
  description:
    - In check mode, the unfinished earlier apply whose journal is in O(state_dir) (it was interrupted, or its confirm
      window closed). A real run deals with it before its own plan; check mode only reports it (also as a warning)
      and changes nothing. RV(plan) is what the real run executes after it.
  returned: in check mode, when an earlier apply did not finish
  type: dict
  contains:
    action:
      description:
        - V(roll back) - the host returns to the state before that apply.
        - V(finish commit) - the apply was confirmed and only its commit (history, boot files) is written.
      type: str
    reason:
      description: When that apply started, why it did not finish, and what the real run does with it.
      type: str
    generation:
      description: The committed generation the host is at after the recovery.
      type: int
    plan:
      description:
        - The operations of the rollback, in order, as in RV(plan) but without file and ruleset contents
          (C(sha256) and C(lines) stay).
      type: list
      elements: dict
    changes:
      description: How many operations of each kind RV(recovery.plan) has.
      type: dict
  sample:
    action: roll back
    generation: 1
    reason: >-
      the apply started 2026-11-25T18:00:00Z did not finish because it was interrupted; the real run rolls it back to
      generation 1 (2 operations) before it applies anything
    plan:
      - {kind: remove_file, target: "file:/var/lib/ghostwarden/dnsmasq/web.conf", details: {path: /var/lib/ghostwarden/dnsmasq/web.conf}}
      - {kind: delete_link, target: "link:gw-web", details: {reason: not in the topology, type: bridge}}
    changes: {remove_file: 1, delete_link: 1}
history:
  description: The committed generations kept, oldest first, each with C(generation), C(time), C(user), C(topology_sha256) and C(summary).
  returned: with O(state=rolled_back)
  type: list
  elements: dict
  sample: [{generation: 1, time: "2026-11-25T18:00:00Z", user: root, topology_sha256: "9f...", summary: {create_link: 2}}]
probes:
  description: The result of each probe, with C(name), C(ok), C(detail) and C(seconds).
  returned: when O(probes) were given and the change was made
  type: list
  elements: dict
  sample: [{name: "tcp 10.33.0.10:22", ok: true, detail: connected, seconds: 0.01}]
drift:
  description: With O(state=gathered), the differences between the live owned state and the last recorded apply.
  returned: with O(state=gathered)
  type: list
  elements: str
  sample: ["networks.old: recorded as applied but none of its links exist"]
errors:
  description: Every input error found, one line each, when validation failed.
  returned: failure
  type: list
  elements: str
  sample: ["networks.nat_dev.gw_ip: 10.34.0.1 is not inside cidr 10.33.0.0/24"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import (
    compile_topology,
    read_topology_input,
    rendered_result,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._gather import gather_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.host._module import (
    APPLY_ARGUMENT_SPEC,
    APPLY_OPTION_RULES,
    HOST_LIBRARIES,
    apply_result,
    connection_sources,
    host_driver,
    lockout_guard,
    run,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._host_state import empty_state
from ansible_collections.ghostwarden.core.plugins.module_utils.core._lockout import find_lockouts
from ansible_collections.ghostwarden.core.plugins.module_utils.host._driver import HostDriver, recovery_keys
from ansible_collections.ghostwarden.core.plugins.module_utils.host._conflicts import host_conflict_warnings
from ansible_collections.ghostwarden.core.plugins.module_utils.host._probe import check_probes
from ansible_collections.ghostwarden.core.plugins.module_utils.host._txn import boot_unit
from ansible_collections.ghostwarden.core.plugins.module_utils.proxmox._host import detect_proxmox, double_filtering_warnings
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import profile_dirs_option
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import normalise_topology


DEFAULT_CONFIRM_TIMEOUT = 60


def confirm_window(params: dict) -> int:
    """The window in seconds: as given, else on when the module runs over SSH."""
    if params["confirm_timeout"] is not None:
        if params["confirm_timeout"] < 0:
            raise ValidationError(Issue("confirm_timeout", f"{params['confirm_timeout']} is not 0 or more seconds"))
        return params["confirm_timeout"]
    return DEFAULT_CONFIRM_TIMEOUT if connection_sources(True) else 0


def with_boot_unit(output: dict, driver: HostDriver, *, pending: bool = False) -> dict:
    """``output`` with ``boot_unit`` when the unit file exists, or will once a pending change is confirmed."""
    unit = boot_unit(driver.state_dir, driver.netns, pending=pending)
    return {**output, "boot_unit": unit} if unit is not None else output


def apply_topology(module: AnsibleModule) -> dict:
    params = module.params
    state = params["state"]
    if state == "rendered":
        compiled = compile_topology(read_topology_input(params["topology"], params["src"]),
                                    state_dir=params["state_dir"],
                                    profile_dirs=profile_dirs_option(params["policy_dirs"], params["src"]))
        refused = [f"an apply would refuse this unless allow_lockout is true: {issue}"
                   for issue in find_lockouts(compiled.topology)]
        return {"changed": False, "warnings": [*compiled.topology.warnings, *refused], **rendered_result(compiled)}
    if params["history"] < 1:
        raise ValidationError(Issue("history", f"{params['history']} is not a positive number of generations"))
    check_probes(params["probes"])

    # Check mode and state=gathered write nothing, not even the state directory or its lock file.
    with host_driver(module) as driver, driver.locked(check_mode=module.check_mode or state == "gathered"):
        keep = params["history"]
        if state == "confirmed":
            return with_boot_unit(driver.confirm(params["confirm_token"], keep, check_mode=module.check_mode), driver)
        if state == "gathered":
            records = driver.store.load()
            observed = driver.observe(records, empty_state())
            topology, drift = gather_topology(observed, records.topology)
            try:  # the same normalised form state=present returns
                topology = normalise_topology(topology)
            except ValidationError as error:
                drift.append(f"the live owned state is not a valid topology: {error}")
            return {"changed": False, "topology": topology, "drift": drift, "ruleset": observed.ruleset}
        if state == "absent":
            result = driver.remove_everything(check_mode=module.check_mode, want_after=module._diff, history_keep=keep)
            return with_boot_unit({**apply_result(module, result), **recovery_keys(result),
                                   "warnings": result.warnings}, driver)
        if state == "rolled_back":
            result = driver.roll_back_to(params["generation"], check_mode=module.check_mode,
                                         want_after=module._diff, history_keep=keep)
            return with_boot_unit({**apply_result(module, result), **recovery_keys(result), "warnings": result.warnings,
                                   "history": driver.history.list()}, driver)
        compiled = compile_topology(read_topology_input(params["topology"], params["src"]),
                                    state_dir=params["state_dir"],
                                    extra_management=connection_sources(params["management_from_connection"]),
                                    profile_dirs=profile_dirs_option(params["policy_dirs"], params["src"]))
        # Other firewalls and network managers, seen before the change (docs/coexistence.md).
        conflicts = host_conflict_warnings(driver.runner, compiled.topology)
        result = driver.apply(compiled.desired, check_mode=module.check_mode, want_after=module._diff,
                              topology=compiled.normalised(), probes=params["probes"],
                              confirm_timeout=0 if module.check_mode else confirm_window(params), history_keep=keep,
                              guard=lockout_guard(module, compiled.topology,
                                                  protect_connection=params["management_from_connection"]))
        filtered = [network.iface for network in compiled.topology.networks if network.policy_profile]
        warnings = [*compiled.topology.warnings, *double_filtering_warnings(detect_proxmox(), filtered),
                    *conflicts, *result.warnings]
        output = {**apply_result(module, result), **recovery_keys(result), "warnings": warnings}
        if params["return_content"]:
            output.update(topology=compiled.normalised(), ruleset=compiled.ruleset)
        if result.probes:
            output["probes"] = result.probes
        return with_boot_unit(output, driver, pending=result.confirm is not None)


def main() -> None:
    module = AnsibleModule(argument_spec=APPLY_ARGUMENT_SPEC, supports_check_mode=True, **APPLY_OPTION_RULES)
    run(module, apply_topology, needs=(NETADDR,) if module.params["state"] == "rendered" else HOST_LIBRARIES)


if __name__ == "__main__":
    main()
