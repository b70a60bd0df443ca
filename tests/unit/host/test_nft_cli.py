# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""NftCli: the live table through the nft command.

The first part drives it with a recorded runner (what it runs, how it reads nft's answers);
the second runs the real nft as root inside throwaway namespaces.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import compile_topology
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import BackendError, RenderError
from ansible_collections.ghostwarden.core.plugins.module_utils.host import _driver
from ansible_collections.ghostwarden.core.plugins.module_utils.core._nft import render_replace_script
from ansible_collections.ghostwarden.core.plugins.module_utils.host._nft_cli import NftCli
from ansible_collections.ghostwarden.core.plugins.module_utils.host._runner import CommandResult, CommandRunner
from ansible_collections.ghostwarden.core.tests.support.netns import NetNS, netns, requires_netns
from ansible_collections.ghostwarden.core.tests.support.recorder import StdinRecorder as Recorder
from ansible_collections.ghostwarden.core.tests.unit.core.test_nft import golden_ruleset
from ansible_collections.ghostwarden.core.tests.unit.host.test_driver import TOPOLOGY as DRIVER_TOPOLOGY
from ansible_collections.ghostwarden.core.tests.unit.host.test_driver import FakeBatch, FakeDnsmasq, FakeKernel

__all__ = ["netns"]  # the fixture, imported for pytest

FOREIGN = """table ip foreign {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 1 drop
\t}
}
"""
NO_TABLE = CommandResult(1, "", "Error: No such file or directory\nlist table inet ghostwarden\n"
                                "                ^^^^^^^^^^^\n")
SMALL = """table inet ghostwarden {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tudp dport 9 counter comment "discard"
\t\tudp dport 10 counter
\t\tudp dport 11 accept
\t}
}
"""


def recorded(*answers: CommandResult, netns_name: str | None = None) -> tuple[NftCli, Recorder]:
    recorder = Recorder(*answers)
    return NftCli(CommandRunner(recorder, netns=netns_name)), recorder


# --- with a recorded runner --------------------------------------------------------------------


def test_list_table_runs_nft_in_the_namespace():
    cli, recorder = recorded(CommandResult(0, "table inet ghostwarden {\n}\n", ""), netns_name="lab")
    assert cli.list_table() == "table inet ghostwarden {\n}\n"
    assert recorder.calls == [(["ip", "netns", "exec", "lab", "nft", "list", "table", "inet", "ghostwarden"], None)]


def test_an_absent_table_is_none():
    cli, _recorder = recorded(NO_TABLE)
    assert cli.list_table() is None


@pytest.mark.parametrize("stderr, message", [
    ('exec of "nft" failed: No such file or directory\n', 'nft list: exec of "nft" failed: No such file or directory'),
    ('Cannot open network namespace "lab": No such file or directory\n',
     'nft list: Cannot open network namespace "lab": No such file or directory'),
    ("Error: Could not process rule: Operation not permitted\n",
     "nft list: Error: Could not process rule: Operation not permitted"),
    ("", "nft list: nft exited with status 1"),
])
def test_other_listing_failures_are_errors_not_an_absent_table(stderr, message):
    cli, _recorder = recorded(CommandResult(1, "", stderr))
    with pytest.raises(BackendError) as caught:
        cli.list_table()
    assert str(caught.value) == message


def test_a_missing_nft_binary_is_a_backend_error():
    def missing(argv, stdin):
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(BackendError) as caught:
        NftCli(CommandRunner(missing)).list_table()
    assert str(caught.value) == "nft list: cannot run nft list table inet ghostwarden: No such file or directory"


def test_replace_checks_then_applies_the_replace_script():
    cli, recorder = recorded(CommandResult(0, "", ""), CommandResult(0, "", ""))
    cli.replace(SMALL)
    script = render_replace_script(SMALL)
    assert recorder.calls == [(["nft", "-c", "-f", "-"], script), (["nft", "-f", "-"], script)]


def test_a_failed_check_never_applies():
    stderr = ("/dev/stdin:6:8-14: Error: Could not process rule: No such file or directory\n"
              "\t\tjump nowhere\n\t\t     ^^^^^^^\n")
    cli, recorder = recorded(CommandResult(1, "", stderr))
    with pytest.raises(BackendError) as caught:
        cli.replace(SMALL)
    assert caught.value.step == "nft check"
    assert caught.value.cause == (
        "ruleset line 4, columns 8-14: Could not process rule: No such file or directory "
        "(at 'nowhere' in 'jump nowhere')"
    )
    assert len(recorder.calls) == 1


def test_check_runs_only_nft_c_of_the_replace_script():
    cli, recorder = recorded(CommandResult(0, "", ""), netns_name="lab")
    cli.check(SMALL)
    assert recorder.calls == [(["ip", "netns", "exec", "lab", "nft", "-c", "-f", "-"], render_replace_script(SMALL))]


def test_a_refused_check_names_the_ruleset_line():
    stderr = ("/dev/stdin:6:8-14: Error: Could not process rule: No such file or directory\n"
              "\t\tjump nowhere\n\t\t     ^^^^^^^\n")
    cli, _recorder = recorded(CommandResult(1, "", stderr))
    with pytest.raises(BackendError) as caught:
        cli.check(SMALL)
    assert str(caught.value) == ("nft check: ruleset line 4, columns 8-14: Could not process rule: No such file or "
                                 "directory (at 'nowhere' in 'jump nowhere')")


def test_installed_looks_for_nft_on_the_path():
    assert NftCli(CommandRunner(Recorder()), which=lambda name: f"/usr/sbin/{name}").installed()
    assert not NftCli(CommandRunner(Recorder()), which=lambda name: None).installed()


def test_a_failed_apply_after_a_good_check():
    cli, _recorder = recorded(CommandResult(0, "", ""),
                              CommandResult(1, "", "Error: Could not process rule: Cannot allocate memory\n"))
    with pytest.raises(BackendError) as caught:
        cli.replace(SMALL)
    assert str(caught.value) == "nft apply: Error: Could not process rule: Cannot allocate memory"


def test_only_our_table_is_replaced():
    cli, recorder = recorded()
    with pytest.raises(RenderError):
        cli.replace(FOREIGN)
    assert recorder.calls == []


def test_counters_from_json():
    listing = (
        '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "ghostwarden"}},'
        ' {"rule": {"chain": "zeta", "handle": 4, "expr": [{"counter": {"packets": 1, "bytes": 60}}]}},'
        ' {"rule": {"chain": "alpha", "handle": 5, "expr": [{"accept": null}]}},'
        ' {"rule": {"chain": "alpha", "handle": 6, "comment": "web",'
        ' "expr": [{"match": {}}, {"counter": {"packets": 7, "bytes": 420}}, {"accept": null}]}}]}'
    )
    cli, recorder = recorded(CommandResult(0, listing, ""))
    assert cli.counters() == [
        {"chain": "alpha", "rule": 1, "comment": "web", "packets": 7, "bytes": 420},
        {"chain": "zeta", "rule": 0, "comment": None, "packets": 1, "bytes": 60},
    ]
    assert recorder.calls == [(["nft", "-j", "list", "table", "inet", "ghostwarden"], None)]


def test_counters_of_an_absent_table_and_bad_json():
    cli, _recorder = recorded(NO_TABLE, CommandResult(0, "{}", ""))
    assert cli.counters() == []
    with pytest.raises(BackendError) as caught:
        cli.counters()
    assert str(caught.value) == "nft list: unexpected JSON from nft -j: 'nftables'"


def test_matches_compares_normalised():
    listed = SMALL.replace("counter comment", "counter packets 3 bytes 114 comment").replace("\t", "    ")
    assert NftCli.matches(listed, SMALL)
    assert not NftCli.matches(listed, SMALL.replace("dport 11", "dport 12"))


# --- the driver's nft calls, with a recorded runner ---------------------------------------------


OK = CommandResult(0, "", "")
LIST = ["nft", "list", "table", "inet", "ghostwarden"]
CHECK = ["nft", "-c", "-f", "-"]
LOAD = ["nft", "-f", "-"]


@pytest.fixture
def recorded_driver(tmp_path, monkeypatch):
    """A HostDriver whose nft runs through a recorded runner (inside namespace lab); kernel and dnsmasq faked."""
    monkeypatch.setattr(_driver, "DnsmasqControl", lambda runner, state_dir: FakeDnsmasq())
    recorder = Recorder()
    host = _driver.HostDriver(state_dir=str(tmp_path), netns="lab", runner=CommandRunner(recorder, netns="lab"))
    host.nft = NftCli(host.runner, which=lambda name: f"/usr/sbin/{name}")
    host._netlink = FakeKernel()
    host.batch = FakeBatch(host)
    return host, recorder


def nft_calls(recorder: Recorder) -> list[tuple[list[str], bool]]:
    """What was run, without the namespace prefix, and whether it read the replace script of TOPOLOGY."""
    return [(argv[4:], stdin is not None) for argv, stdin in recorder.calls]


def test_a_real_apply_checks_the_table_before_its_transaction(recorded_driver):
    driver, recorder = recorded_driver
    compiled = compile_topology(DRIVER_TOPOLOGY, state_dir=driver.state_dir)
    listed = CommandResult(0, compiled.desired.ruleset, "")
    recorder.answers = [NO_TABLE, OK, OK, listed]
    driver.apply(compiled.desired, check_mode=False)
    # The table is checked, then the journal written and the table loaded first; then read back once:
    # the listing gives the digests for the next run's fast comparison and is the host after the change.
    assert nft_calls(recorder) == [(LIST, False), (CHECK, True), (LOAD, True), (LIST, False)]
    script = render_replace_script(compiled.desired.ruleset)
    assert recorder.calls[1][1] == recorder.calls[2][1] == script


def test_a_refused_check_ends_a_real_apply_before_its_journal(recorded_driver):
    driver, recorder = recorded_driver
    refused = CommandResult(1, "", "/dev/stdin:5:9-15: Error: Could not process rule: No such file or directory\n"
                                   "\tchain nowhere {\n\t      ^^^^^^^\n")
    recorder.answers = [NO_TABLE, refused]
    compiled = compile_topology(DRIVER_TOPOLOGY, state_dir=driver.state_dir)
    with pytest.raises(BackendError) as caught:
        driver.apply(compiled.desired, check_mode=False)
    assert caught.value.step == "nft check" and caught.value.cause.startswith("ruleset line 3, columns 9-15: ")
    assert nft_calls(recorder) == [(LIST, False), (CHECK, True)]
    assert driver.netlink.executed == [] and driver.journals.read() is None
    assert os.listdir(driver.state_dir) == []


def test_check_mode_lists_and_checks_and_loads_nothing(recorded_driver):
    driver, recorder = recorded_driver
    recorder.answers = [NO_TABLE, OK]
    compiled = compile_topology(DRIVER_TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True)
    assert result.operations[0].kind == "replace_ruleset"
    assert nft_calls(recorder) == [(LIST, False), (CHECK, True)]
    assert os.listdir(driver.state_dir) == []


def test_check_mode_without_a_table_change_does_not_call_nft_c(recorded_driver):
    driver, recorder = recorded_driver
    compiled = compile_topology(DRIVER_TOPOLOGY, state_dir=driver.state_dir)
    recorder.answers = [CommandResult(0, compiled.desired.ruleset, "")]
    driver.apply(compiled.desired, check_mode=True)
    assert nft_calls(recorder) == [(LIST, False)]


def test_check_mode_without_nft_runs_no_nft(recorded_driver):
    driver, recorder = recorded_driver
    driver.nft = NftCli(driver.runner, which=lambda name: None)
    compiled = compile_topology(DRIVER_TOPOLOGY, state_dir=driver.state_dir)
    result = driver.apply(compiled.desired, check_mode=True)
    assert recorder.calls == []
    assert result.warnings == [_driver.NFT_MISSING_WARNING]


# --- the real nft, inside a throwaway namespace -------------------------------------------------


def cli_in(namespace: NetNS) -> NftCli:
    return NftCli(CommandRunner(netns=namespace.name))


@pytest.mark.root
@requires_netns
def test_replace_twice_delete_twice_and_a_foreign_table_survives(netns: NetNS):
    cli = cli_in(netns)
    netns.nft(FOREIGN)
    assert cli.list_table() is None
    for name in ("original_example", "original_example", "dual_stack"):
        ruleset = golden_ruleset(name)
        cli.replace(ruleset)
        listing = cli.list_table()
        assert listing is not None and cli.matches(listing, ruleset)
    assert not cli.matches(cli.list_table(), golden_ruleset("original_example"))
    assert netns.list_table("ip", "foreign") == FOREIGN
    cli.delete()
    assert cli.list_table() is None
    cli.delete()
    assert netns.list_ruleset() == FOREIGN


@pytest.mark.root
@requires_netns
def test_a_broken_ruleset_fails_the_check_and_keeps_the_previous_table(netns: NetNS):
    cli = cli_in(netns)
    good = golden_ruleset("original_example")
    cli.replace(good)
    before = cli.list_table()
    lines = good.splitlines(keepends=True)
    number = lines.index("\t\tiifname vmap @host_chains\n") + 2  # the inserted line, counted from 1
    broken = "".join([*lines[:number - 1], "\t\tjump nowhere\n", *lines[number - 1:]])
    with pytest.raises(BackendError) as caught:
        cli.replace(broken)
    assert caught.value.step == "nft check"
    assert caught.value.cause == (
        f"ruleset line {number}, columns 8-14: Could not process rule: No such file or directory "
        "(at 'nowhere' in 'jump nowhere')"
    )
    assert cli.list_table() == before


@pytest.mark.root
@requires_netns
def test_syntax_errors_name_the_line_and_count_the_rest(netns: NetNS):
    cli = cli_in(netns)
    broken = SMALL.replace("\t\tudp dport 11 accept\n", "\t\tfoo bar\n\t\tudp sport bogus accept\n")
    with pytest.raises(BackendError) as caught:
        cli.replace(broken)
    assert str(caught.value) == (
        "nft check: ruleset line 6, columns 3-5: No symbol type information (at 'foo' in 'foo bar') "
        "(and 1 more error)"
    )
    assert cli.list_table() is None


@pytest.mark.root
@requires_netns
def test_counters_count_real_packets(netns: NetNS):
    cli = cli_in(netns)
    assert cli.counters() == []
    cli.replace(SMALL)
    netns.run("python3", "-c", "import socket\n"
                               "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                               "for _ in range(3):\n"
                               "    s.sendto(b'0123456789', ('127.0.0.1', 9))\n")
    # 20 bytes IPv4 header + 8 bytes UDP header + 10 bytes payload, three times.
    assert cli.counters() == [
        {"chain": "output", "rule": 0, "comment": "discard", "packets": 3, "bytes": 114},
        {"chain": "output", "rule": 1, "comment": None, "packets": 0, "bytes": 0},
    ]
    assert cli.matches(cli.list_table(), SMALL)


@pytest.mark.root
@requires_netns
def test_counters_of_a_rendered_ruleset(netns: NetNS):
    cli = cli_in(netns)
    cli.replace(golden_ruleset("profiles"))
    assert [(counter["chain"], counter["rule"], counter["comment"]) for counter in cli.counters()] == [
        ("net_office_egress", 0, None),
        ("net_office_egress", 1, None),
        ("net_web_ingress", 0, "web"),
        ("net_web_ingress", 1, "web"),
    ]
