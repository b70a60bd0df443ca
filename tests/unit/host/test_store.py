# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The records file: exact content, round trip, atomic replacement, corrupt files, the apply lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import time

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.host import _store
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.host._store import Records, StateStore

TOPOLOGY = {"version": 1, "interfaces": {}, "management": {"allow_from": [], "ports": [22], "enforce": True},
            "policies": {}, "networks": {"nat_dev": {"type": "routed", "cidr": "10.33.0.0/24"}}}

EXPECTED_FILE = """\
{
  "format": 1,
  "generation": 7,
  "nft_digests": {},
  "owned_addresses": [
    [
      "br-a",
      "2001:db8::1/64"
    ],
    [
      "gw-nat_dev",
      "10.33.0.1/24"
    ]
  ],
  "owned_enslavements": [
    [
      "eth1",
      "br-a"
    ]
  ],
  "owned_fdb": [
    [
      "vx-lab",
      "00:00:00:00:00:00",
      "10.0.0.11"
    ]
  ],
  "sysctl_previous": {
    "net.ipv4.ip_forward": "0",
    "net.ipv6.conf.all.forwarding": "0"
  },
  "topology": {
    "interfaces": {},
    "management": {
      "allow_from": [],
      "enforce": true,
      "ports": [
        22
      ]
    },
    "networks": {
      "nat_dev": {
        "cidr": "10.33.0.0/24",
        "type": "routed"
      }
    },
    "policies": {},
    "version": 1
  }
}
"""


def sample() -> Records:
    return Records(
        owned_addresses=frozenset({("gw-nat_dev", "10.33.0.1/24"), ("br-a", "2001:DB8:0::1/64")}),
        owned_fdb=frozenset({("vx-lab", "00:00:00:00:00:00", "10.0.0.11")}),
        owned_enslavements=frozenset({("eth1", "br-a")}),
        sysctl_previous={"net.ipv6.conf.all.forwarding": "0", "net.ipv4.ip_forward": "0"},
        topology=TOPOLOGY,
        generation=7,
    )


@pytest.fixture(autouse=True)
def permissive_umask():
    """Modes must come from the code, not from the umask of whoever runs it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- Records -----------------------------------------------------------------------------------


def test_records_are_canonical_and_serialise_sorted():
    records = sample()
    assert ("br-a", "2001:db8::1/64") in records.owned_addresses
    assert records.to_dict() == {
        "format": 1,
        "generation": 7,
        "owned_addresses": [["br-a", "2001:db8::1/64"], ["gw-nat_dev", "10.33.0.1/24"]],
        "owned_fdb": [["vx-lab", "00:00:00:00:00:00", "10.0.0.11"]],
        "owned_enslavements": [["eth1", "br-a"]],
        "sysctl_previous": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"},
        "topology": TOPOLOGY,
        "nft_digests": {},
    }
    assert list(records.sysctl_previous) == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    assert Records.from_dict(json.loads(json.dumps(records.to_dict()))) == records


def test_mac_addresses_compare_in_lower_case():
    records = Records(owned_fdb=frozenset({("vx", "AA:BB:CC:DD:EE:0F", "2001:DB8::B")}))
    assert records.owned_fdb == frozenset({("vx", "aa:bb:cc:dd:ee:0f", "2001:db8::b")})


def test_empty_records():
    assert Records.empty() == Records()
    assert Records.empty().to_dict() == {
        "format": 1, "generation": 0, "owned_addresses": [], "owned_fdb": [], "owned_enslavements": [],
        "sysctl_previous": {}, "topology": None, "nft_digests": {},
    }


@pytest.mark.parametrize("change, message", [
    ({"format": 2}, "format: 2 is not the supported format 1"),
    ({"extra": 1}, "unknown keys ['extra']"),
    ({"generation": -1}, "generation: -1 is not a non-negative integer"),
    ({"generation": True}, "generation: True is not a non-negative integer"),
    ({"sysctl_previous": {"a": 1}}, "sysctl_previous: {'a': 1} is not a mapping of strings to strings"),
    ({"topology": []}, "topology: expected a mapping or null, found list"),
    ({"owned_fdb": {}}, "owned_fdb: expected a list, found dict"),
    ({"owned_addresses": [["br-a"]]}, "owned_addresses[0]: ['br-a'] is not a list of 2 strings"),
    ({"owned_enslavements": [["eth1", None]]}, "owned_enslavements[0]: ['eth1', None] is not a list of 2 strings"),
    ({"owned_addresses": [["br-a", "10.0.0.300/24"]]},
     "owned entries: '10.0.0.300/24' does not appear to be an IPv4 or IPv6 interface"),
    ({"owned_fdb": [["vx", "zz", "10.0.0.1"]]}, "owned entries: 'zz' is not a MAC address"),
])
def test_from_dict_names_the_bad_field(change, message):
    data = {**Records.empty().to_dict(), **change}
    with pytest.raises(ValueError) as caught:
        Records.from_dict(data)
    assert str(caught.value) == message


def test_from_dict_refuses_a_non_mapping():
    with pytest.raises(ValueError) as caught:
        Records.from_dict([1])
    assert str(caught.value) == "expected a mapping, found list"


# --- StateStore --------------------------------------------------------------------------------


def test_no_file_means_empty_records(tmp_path):
    assert StateStore(str(tmp_path / "missing")).load() == Records.empty()
    assert not (tmp_path / "missing").exists()


def test_save_and_load_round_trip_with_exact_content_and_modes(tmp_path):
    state_dir = tmp_path / "state"
    store = StateStore(f"{state_dir}/")
    assert store.state_dir == str(state_dir)
    assert store.dnsmasq_dir == f"{state_dir}/dnsmasq"
    store.save(sample())
    assert (state_dir / "state.json").read_text() == EXPECTED_FILE
    assert mode(state_dir) == 0o700
    assert mode(state_dir / "state.json") == 0o600
    assert store.load() == sample()
    assert os.listdir(state_dir) == ["state.json"]  # no temp file left behind


def test_equal_records_give_byte_identical_files(tmp_path):
    first, second = StateStore(str(tmp_path / "a")), StateStore(str(tmp_path / "b"))
    first.save(sample())
    shuffled = sample()
    shuffled.sysctl_previous = dict(reversed(list(shuffled.sysctl_previous.items())))
    second.save(shuffled)
    assert (tmp_path / "a" / "state.json").read_bytes() == (tmp_path / "b" / "state.json").read_bytes()


def test_an_existing_state_dir_keeps_its_mode(tmp_path):
    (tmp_path / "state").mkdir(mode=0o750)
    os.chmod(tmp_path / "state", 0o750)
    StateStore(str(tmp_path / "state")).save(Records.empty())
    assert mode(tmp_path / "state") == 0o750


def test_a_failed_rename_leaves_the_old_file(tmp_path, monkeypatch):
    store = StateStore(str(tmp_path))
    store.save(sample())
    before = (tmp_path / "state.json").read_bytes()

    def crash(source, target):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_store.os, "replace", crash)
    with pytest.raises(BackendError) as caught:
        store.save(Records(generation=8))
    assert str(caught.value) == f"state: cannot write {tmp_path}/state.json: Input/output error"
    assert caught.value.step == "state"
    assert (tmp_path / "state.json").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    monkeypatch.undo()
    assert store.load() == sample()


def test_a_corrupt_file_is_named(tmp_path):
    (tmp_path / "state.json").write_text('{"format": 1,')
    with pytest.raises(BackendError) as caught:
        StateStore(str(tmp_path)).load()
    assert str(caught.value) == (
        f"state: {tmp_path}/state.json is corrupt (Expecting property name enclosed in double quotes: line 1 "
        "column 14 (char 13)); it records what the collection owns: repair or remove it"
    )


def test_a_file_with_bad_content_is_named(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({**Records.empty().to_dict(), "generation": "7"}))
    with pytest.raises(BackendError) as caught:
        StateStore(str(tmp_path)).load()
    assert str(caught.value) == (
        f"state: {tmp_path}/state.json is corrupt (generation: '7' is not a non-negative integer); it records what "
        "the collection owns: repair or remove it"
    )


def test_an_unreadable_file_is_named(tmp_path):
    (tmp_path / "state.json").mkdir()
    with pytest.raises(BackendError) as caught:
        StateStore(str(tmp_path)).load()
    assert str(caught.value) == f"state: cannot read {tmp_path}/state.json: Is a directory"
    (tmp_path / "state.json").rmdir()
    (tmp_path / "state.json").write_bytes(b"\xff\xfe")
    with pytest.raises(BackendError) as caught:
        StateStore(str(tmp_path)).load()
    assert str(caught.value).startswith(f"state: cannot read {tmp_path}/state.json: 'utf-8' codec can't decode")


@pytest.mark.parametrize("state_dir", ["var/lib/ghostwarden", "", None, 5, ["/var"], "/var/lib/a,b", "/var/\nx"])
def test_state_dir_must_be_a_plain_absolute_path(state_dir):
    with pytest.raises(ValidationError) as caught:
        StateStore(state_dir)
    assert str(caught.value) == (
        f"state_dir: {state_dir!r} must be an absolute path without commas or control characters"
    )


# --- the lock ----------------------------------------------------------------------------------


def hold_lock(state_dir: str, acquired, release) -> None:
    with StateStore(state_dir).lock(timeout=5):
        acquired.set()
        release.poll(30)


@pytest.fixture
def holder(tmp_path):
    """Another process that takes the lock and holds it until told to let go (or is killed).

    It waits on a pipe, not an Event: a process killed inside Event.wait can leave the
    Event's lock taken, and the test would hang on it.
    """
    context = multiprocessing.get_context("fork")
    acquired = context.Event()
    release_reader, release_writer = context.Pipe(duplex=False)
    process = context.Process(target=hold_lock, args=(str(tmp_path), acquired, release_reader))
    process.start()
    try:
        assert acquired.wait(10), "the other process did not get the lock"
        yield process, lambda: release_writer.send(b"go")
    finally:
        release_writer.close()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(10)


def test_lock_contention_between_processes(tmp_path, holder):
    process, release = holder
    store = StateStore(str(tmp_path))
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        with store.lock(timeout=0.5):
            pytest.fail("got a lock another process holds")
    waited = time.monotonic() - started
    assert str(caught.value) == f"lock: another apply holds {tmp_path}/lock (waited 0.5 s)"
    assert caught.value.step == "lock"
    assert 0.5 <= waited < 3
    release()
    with store.lock(timeout=10):  # waits until the holder lets go
        assert mode(tmp_path / "lock") == 0o600
    process.join(10)
    assert process.exitcode == 0


def test_a_killed_holder_releases_the_lock(tmp_path, holder):
    process, _release = holder
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    with StateStore(str(tmp_path)).lock(timeout=5):
        pass


def test_a_second_lock_in_the_same_process_waits_too(tmp_path):
    store = StateStore(str(tmp_path / "new"))
    with store.lock():
        assert mode(tmp_path / "new") == 0o700
        with pytest.raises(BackendError) as caught:
            with store.lock(timeout=0):
                pytest.fail("flock is per open file: a second lock() must not get it")
        assert str(caught.value) == f"lock: another apply holds {tmp_path}/new/lock (waited 0 s)"
    with store.lock(timeout=0):  # released on exit
        pass
