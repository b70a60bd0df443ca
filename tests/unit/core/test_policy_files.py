# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Profile files of the original Ghostwarden CLI (TOML and YAML) and how they map."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core import _policy
from ansible_collections.ghostwarden.core.plugins.module_utils.core._deps import NETADDR, TOML, YAML
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import GhostwardenError, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange, Profile, RateLimit, Rule
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import load_profile_file, load_profile_text

FIXTURES = Path(__file__).parent / "fixtures" / "profiles"


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def load_error(path: str) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        load_profile_file(path)
    return caught.value


def test_toml_file_maps_services_to_ingress_from_allowed_cidrs_and_to_the_host() -> None:
    assert load_profile_file(fixture("web-frontend.toml")) == Profile(
        name="web-frontend",
        description="Web frontends - HTTP/HTTPS from anywhere, no outbound restriction",
        ingress_action="drop",
        egress_action="accept",  # allowed_egress_cidrs is empty: a network may reach out
        host_action="drop",
        rules=(
            Rule(direction="ingress", action="accept", protocol="tcp", ports=(PortRange(80, 80), PortRange(443, 443)),
                 sources=("0.0.0.0/0", "::/0")),
            Rule(direction="ingress", action="accept", protocol="udp", ports=(PortRange(443, 443),),
                 sources=("0.0.0.0/0", "::/0")),
            Rule(direction="ingress", action="accept", protocol="icmp", sources=("0.0.0.0/0",)),
            Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(80, 80), PortRange(443, 443))),
            Rule(direction="host", action="accept", protocol="udp", ports=(PortRange(443, 443),)),
            Rule(direction="host", action="accept", protocol="icmp"),
        ),
    )


def test_yaml_file_with_sources_ranges_and_duplicates() -> None:
    private = ("10.0.0.0/8", "192.168.0.0/16")
    assert load_profile_file(fixture("lan-services.yaml")) == Profile(
        name="lan-services",
        description="Office LAN - mDNS and file shares from private ranges, admin SSH from the ops subnet",
        ingress_action="reject",
        egress_action="reject",  # allowed_egress_cidrs given: only those destinations
        host_action="reject",
        rules=(
            Rule(direction="ingress", action="accept", protocol="udp", ports=(PortRange(5353, 5353),), sources=private),
            Rule(direction="ingress", action="accept", protocol="tcp",
                 ports=(PortRange(445, 445), PortRange(8000, 8010)), sources=private),
            Rule(direction="ingress", action="accept", protocol="tcp", ports=(PortRange(22, 22),),
                 sources=("192.168.10.0/24",)),
            Rule(direction="host", action="accept", protocol="udp", ports=(PortRange(5353, 5353),)),
            Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(445, 445), PortRange(8000, 8010))),
            Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),),
                 sources=("192.168.10.0/24",)),
            Rule(direction="egress", action="accept", destinations=private),
        ),
    )


def test_yml_file_without_default_action_uses_the_originals_drop() -> None:
    assert load_profile_file(fixture("ssh-only.yml")) == Profile(
        name="ssh-only",
        description="Only SSH to the gateway",
        ingress_action="drop",
        egress_action="accept",
        host_action="drop",
        rules=(Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),)),),
    )


def test_file_mixing_both_formats() -> None:
    assert load_profile_file(fixture("mixed.yaml")) == Profile(
        name="mixed",
        description="Build farm - artifact cache from the CI subnet, rate-limited SSH, egress to the mirror only",
        ingress_action="drop",
        egress_action="drop",
        host_action="reject",
        rules=(
            Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),),
                 rate_limit=RateLimit(rate=4, per="minute"), log=True, log_prefix="gw-ssh "),
            Rule(direction="ingress", action="accept", protocol="tcp", ports=(PortRange(8080, 8080),),
                 sources=("198.51.100.0/24",)),
            Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(8080, 8080),),
                 sources=("198.51.100.0/24",)),
            Rule(direction="egress", action="accept", destinations=("203.0.113.0/24",)),
        ),
    )


def test_toml_and_yaml_texts_mean_the_same() -> None:
    toml_text = 'name = "dns"\ndefault_action = "drop"\n[[services]]\nprotocol = "udp"\nport = 53\n'
    yaml_text = "name: dns\ndefault_action: drop\nservices:\n  - {protocol: udp, port: 53}\n"
    assert load_profile_text(toml_text, "toml") == load_profile_text(yaml_text, "yaml") == load_profile_text(yaml_text, "yml")


def test_file_with_only_shared_keys_reads_with_the_originals_defaults() -> None:
    profile = load_profile_text("name: quiet\ndescription: nothing allowed\n", "yaml")
    assert (profile.ingress_action, profile.egress_action, profile.host_action) == ("drop", "accept", "drop")
    assert profile.rules == ()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-syntax.toml", "line 2, column 37: invalid TOML: Illegal character '\\n'"),
        ("not-a-mapping.yaml", "expected a mapping of profile settings, got a list"),
        ("profile.json", "unsupported profile file extension (expected .toml, .yaml or .yml)"),
    ],
)
def test_file_errors_are_one_line_naming_the_file(name: str, message: str) -> None:
    error = load_error(fixture(name))
    assert str(error) == f"{fixture(name)}: {message}"
    assert "\n" not in str(error)


def test_yaml_syntax_error_is_one_line_naming_the_file(tmp_path) -> None:
    # Written at test time: a broken YAML file in the tree would fail the yamllint sanity test.
    path = tmp_path / "bad-syntax.yaml"
    path.write_text("name: broken\nservices:\n  - protocol: tcp\n   port: 22\n")
    error = load_error(str(path))
    assert str(error) == (f"{path}: line 4, column 4: invalid YAML: while parsing a block collection "
                          "did not find expected '-' indicator")


@pytest.mark.parametrize(
    ("name", "field", "message"),
    [
        ("bad-port.toml", "services[0].port", "port 70000 is out of range 1-65535"),
        ("no-name.yaml", "name", "a profile file must give its name"),
    ],
)
def test_content_errors_name_the_file_and_the_field(name: str, field: str, message: str) -> None:
    error = load_error(fixture(name))
    assert error.paths == [f"{fixture(name)}: {field}"]
    assert str(error) == f"{fixture(name)}: {field}: {message}"


def test_several_content_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text('name = "Web"\ndefault_action = "allow"\nallowed_egress_cidrs = ["10.0.0.1/8"]\n', "toml",
                          source="web.toml")
    assert caught.value.to_result() == {"errors": [
        "web.toml: name: profile name string 'Web' must match ^[a-z0-9][a-z0-9_.-]{0,62}$ "
        "(lower-case letters, digits, '_', '.', '-'; at most 63 characters)",
        "web.toml: default_action: string 'allow' is not a valid action (expected one of: accept, drop, reject)",
        "web.toml: allowed_egress_cidrs[0]: 10.0.0.1/8 has host bits set; its network address is 10.0.0.0/8",
    ]}
    assert str(caught.value).endswith("(and 2 more errors)")


def test_values_of_other_types_from_the_parsers_are_reported() -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text("name: dated\ndescription: 2024-05-01\n", "yaml", source="dated.yaml")
    assert str(caught.value) == "dated.yaml: description: description must be a string, got date '2024-05-01'"
    with pytest.raises(ValidationError) as caught:
        load_profile_text('name = "timed"\n[[rules]]\ntime = {hours = 08:00:00}\n', "toml", source="timed.toml")
    assert str(caught.value) == "timed.toml: rules[0].time.hours: time '08:00:00' is not a time range like 08:00-18:00"


def test_text_without_source_names_only_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text("name: x\nservices: [{protocol: tcp, port: 0}]\n", "yaml")
    assert str(caught.value) == "services[0].port: port 0 is out of range 1-65535"
    with pytest.raises(ValidationError) as caught:
        load_profile_text("name: [", "yaml")
    assert str(caught.value) == (
        "<yaml text>: line 2, column 1: invalid YAML: while parsing a flow node did not find expected node content"
    )


def test_unknown_format() -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text("{}", "json", source="p.json")
    assert str(caught.value) == "p.json: unsupported profile format 'json' (expected toml or yaml)"


def test_multi_document_yaml_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text("name: a\n---\nname: b\n", "yaml", source="two.yaml")
    assert str(caught.value) == (
        "two.yaml: line 2, column 1: invalid YAML: expected a single document in the stream "
        "but found another document"
    )


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("name: a\nname: b\n", "yaml",
         "dup.yaml: line 2, column 1: invalid YAML: while constructing a mapping found duplicate key 'name'"),
        ("name: a\nservices:\n  - {protocol: tcp, port: 22, port: 23}\n", "yml",
         "dup.yml: line 3, column 31: invalid YAML: while constructing a mapping found duplicate key 'port'"),
        ('name = "a"\nname = "b"\n', "toml", "dup.toml: line 2, column 11: invalid TOML: Cannot overwrite a value"),
    ],
)
def test_duplicate_keys_are_errors_not_silently_overwritten(text: str, fmt: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_profile_text(text, fmt, source=f"dup.{fmt}")
    assert str(caught.value) == message


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.toml")
    assert str(load_error(path)) == f"{path}: cannot read the profile file: No such file or directory"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.mkdir()
    assert str(load_error(str(path))) == f"{path}: cannot read the profile file: Is a directory"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert str(load_error(str(path))) == f"{path}: the profile file is not UTF-8 text (invalid continuation byte at byte 9)"


def test_upper_case_extension(tmp_path: Path) -> None:
    path = tmp_path / "SSH.YML"
    path.write_text("name: ssh\nservices: [{protocol: tcp, port: 22}]\n", encoding="utf-8")
    assert load_profile_file(str(path)).rules == (
        Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(22, 22),)),
    )


def test_missing_parsers_are_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    for dependency in (TOML, YAML):
        monkeypatch.setattr(dependency, "_module", None)
        monkeypatch.setattr(dependency, "error", "ModuleNotFoundError")
    with pytest.raises(GhostwardenError) as caught:
        load_profile_text('name = "x"', "toml", source="x.toml")
    assert not isinstance(caught.value, ValidationError)
    assert str(caught.value) == ("the Python library tomli on Python before 3.11 (python3-tomli or pip install tomli) "
                                 "is required to read TOML on Python < 3.11")
    with pytest.raises(GhostwardenError) as caught:
        load_profile_text("name: x", "yaml", source="x.yaml")
    assert not isinstance(caught.value, ValidationError)
    assert str(caught.value) == "the Python library PyYAML (python3-yaml or pip install pyyaml) is required to read YAML"


def test_missing_netaddr_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NETADDR, "_module", None)
    monkeypatch.setattr(NETADDR, "error", "ModuleNotFoundError")
    issues: list = []
    assert _policy.parse_profile("p", {"rules": [{"source": "10.0.0.0/8"}]}, "policies.p", issues) is None
    assert [str(issue) for issue in issues] == [
        "policies.p.rules[0].source: validating addresses needs the Python library netaddr, which is not installed",
    ]
    # Profiles without addresses need no netaddr.
    assert _policy.parse_profile("p", {"rules": [{"protocol": "tcp", "port": 22}]}, "policies.p", []) is not None
