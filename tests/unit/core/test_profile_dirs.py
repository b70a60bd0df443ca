# Copyright (c) ghostwarden.core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Profile files looked up by name in directories (``policy_dirs``, ``policies/`` beside ``src``).

The search is pure: most cases give :class:`ProfileDirs` a fake ``is_file`` and ``read``; the
rest use a temporary directory to show the files the modules would read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from ansible_collections.ghostwarden.core.plugins.module_utils.core._compile import (
    compile_topology,
    read_topology_input,
    rendered_result,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._errors import Issue, ValidationError
from ansible_collections.ghostwarden.core.plugins.module_utils.core._model import PortRange, Profile, Rule
from ansible_collections.ghostwarden.core.plugins.module_utils.core._policy import (
    BUILTIN_PROFILES,
    ProfileDirs,
    load_profile_file,
    profile_dirs_option,
    profile_to_dict,
)
from ansible_collections.ghostwarden.core.plugins.module_utils.core._topology import (
    load_topology_file,
    normalise_topology,
    parse_topology,
    parse_topology_with_files,
    topology_to_dict,
)

ROOT = Path(__file__).resolve().parents[3]
BUILTIN_NAMES = ", ".join(sorted(BUILTIN_PROFILES))
# With allow_from, a profile that drops SSH to the host brings no management warning along.
ALLOW_MANAGEMENT = {"allow_from": ["192.0.2.0/24"]}

WEB_TOML = """\
# The original CLI's format.
name = "web"
description = "Web servers - HTTPS from anywhere"
allowed_ingress_cidrs = ["0.0.0.0/0"]

[[services]]
protocol = "tcp"
port = 443
"""
WEB_YAML = """\
# This collection's format.
name: web
description: Web servers from the yaml file
host_action: drop
rules:
  - {direction: host, protocol: tcp, port: 8443}
"""
WEB_FROM_TOML = Profile(
    name="web",
    description="Web servers - HTTPS from anywhere",
    ingress_action="drop",
    egress_action="accept",
    host_action="drop",
    rules=(
        Rule(direction="ingress", action="accept", protocol="tcp", ports=(PortRange(443, 443),),
             sources=("0.0.0.0/0",)),
        Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(443, 443),)),
    ),
)


def topology(profile: str = "web", **top: object) -> dict:
    return {"version": 1, "networks": {"dmz": {"type": "routed", "cidr": "10.33.0.0/24", "gw_ip": "10.33.0.1",
                                               "policy_profile": profile}}, **top}


def write(directory: Path, name: str, text: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return str(path)


def issues(data: object, dirs: ProfileDirs | None) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_topology(data, profile_dirs=dirs)
    return [str(issue) for issue in caught.value.issues]


class FakeFiles:
    """``is_file`` and ``read`` of a :class:`ProfileDirs` over an in-memory set of files."""

    def __init__(self, files: dict[str, Profile]) -> None:
        self.files = files
        self.tried: list[str] = []
        self.read: list[str] = []

    def dirs(self, *directories: str) -> ProfileDirs:
        return ProfileDirs(tuple(directories), is_file=self.is_file, read=self.load)

    def is_file(self, path: str) -> bool:
        self.tried.append(path)
        return path in self.files

    def load(self, path: str) -> Profile:
        self.read.append(path)
        return self.files[path]


def tried_for(directories: Iterable[str], name: str) -> list[str]:
    return [f"{directory}/{name}{suffix}" for directory in directories for suffix in (".toml", ".yaml", ".yml")]


# -- the pure search ----------------------------------------------------------------------------


def test_each_directory_in_order_then_each_suffix_first_match_wins() -> None:
    fake = FakeFiles({"/b/web.yml": WEB_FROM_TOML, "/c/web.toml": WEB_FROM_TOML})
    dirs = fake.dirs("/a", "/b", "/c")
    assert dirs.find("web") == "/b/web.yml"  # /b's .yml before /c's .toml: the directory decides first
    assert fake.tried == tried_for(["/a", "/b"], "web")


def test_found_in_the_first_directory(tmp_path: Path) -> None:
    first = write(tmp_path / "first", "web.toml", WEB_TOML)
    write(tmp_path / "second", "web.yaml", WEB_YAML)
    dirs = ProfileDirs((str(tmp_path / "first"), str(tmp_path / "second")))
    topology_, files = parse_topology_with_files(topology(), profile_dirs=dirs)
    assert topology_.profile("web") == WEB_FROM_TOML
    assert files == {"web": first}


def test_a_later_directory_when_the_first_lacks_it(tmp_path: Path) -> None:
    second = write(tmp_path / "second", "web.yaml", WEB_YAML)
    dirs = ProfileDirs((str(tmp_path / "missing"), str(tmp_path / "second")))
    topology_, files = parse_topology_with_files(topology(), profile_dirs=dirs)
    assert topology_.profile("web").rules == (
        Rule(direction="host", action="accept", protocol="tcp", ports=(PortRange(8443, 8443),)),)
    assert topology_.profile("web").ingress_action == "accept"  # this collection's defaults: it has rules
    assert files == {"web": second}


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "Web", ".hidden", "a/b", "", 7])
def test_names_that_are_not_profile_names_never_become_paths(name: object) -> None:
    fake = FakeFiles({})
    dirs = fake.dirs("/a")
    assert dirs.candidates(name) == ()  # type: ignore[arg-type]
    assert dirs.find(name) is None  # type: ignore[arg-type]
    assert fake.tried == []


def test_every_profile_is_read_once_whatever_the_number_of_networks() -> None:
    fake = FakeFiles({"/a/web.toml": WEB_FROM_TOML})
    data = topology()
    data["networks"]["dmz2"] = {"type": "routed", "cidr": "10.34.0.0/24", "gw_ip": "10.34.0.1", "policy_profile": "web"}
    parsed = parse_topology(data, profile_dirs=fake.dirs("/a"))
    assert [network.policy_profile for network in parsed.networks] == ["web", "web"]
    assert fake.read == ["/a/web.toml"]


def test_without_directories_nothing_is_looked_up() -> None:
    assert issues(topology(), None) == [f"networks.dmz.policy_profile: unknown profile 'web' (known: {BUILTIN_NAMES})"]


# -- beside the src file ------------------------------------------------------------------------


def test_the_policies_directory_beside_src_comes_first(tmp_path: Path) -> None:
    src = write(tmp_path / "site", "ghostnet.toml", 'version = 1\n[networks.dmz]\ntype = "routed"\n'
                                                    'cidr = "10.33.0.0/24"\ngw_ip = "10.33.0.1"\npolicy_profile = "web"\n')
    beside = write(tmp_path / "site" / "policies", "web.yaml", WEB_YAML)
    write(tmp_path / "etc", "web.toml", WEB_TOML)
    dirs = profile_dirs_option([str(tmp_path / "etc")], src)
    assert dirs.dirs == (str(tmp_path / "site" / "policies"), str(tmp_path / "etc"))
    compiled = compile_topology(read_topology_input(None, src), profile_dirs=dirs)
    assert compiled.profile_files == {"web": beside}
    assert compiled.topology.profile("web").description == "Web servers from the yaml file"
    assert "8443" in compiled.ruleset


def test_policy_dirs_are_absolute_and_searched_once() -> None:
    assert profile_dirs_option(["/etc/ghostwarden/policies", "/etc/ghostwarden/policies/"], "/srv/net/ghostnet.toml").dirs \
        == ("/srv/net/policies", "/etc/ghostwarden/policies")
    assert profile_dirs_option(None).dirs == ()
    with pytest.raises(ValidationError) as caught:
        profile_dirs_option(["/etc/ghostwarden/policies", "policies"])
    assert caught.value.issues == [Issue("policy_dirs[1]", "'policies' is not an absolute path (profile directories "
                                                           "are searched on the node the module runs on)")]


# -- precedence ---------------------------------------------------------------------------------


def test_a_profile_defined_in_the_topology_wins_over_a_file() -> None:
    fake = FakeFiles({"/a/web.toml": WEB_FROM_TOML})
    inline = {"web": {"description": "inline", "ingress_action": "drop"}}
    topology_, files = parse_topology_with_files(topology(policies=inline), profile_dirs=fake.dirs("/a"))
    assert topology_.profile("web").description == "inline"
    assert files == {}
    assert fake.tried == [] and fake.read == []


def test_a_file_never_replaces_a_built_in_and_the_module_says_so() -> None:
    original = Profile(name="routed-tight", description="the original's", ingress_action="drop",
                       egress_action="drop", host_action="drop")
    fake = FakeFiles({"/a/routed-tight.toml": original})
    topology_, files = parse_topology_with_files(topology("routed-tight", management=ALLOW_MANAGEMENT),
                                                 profile_dirs=fake.dirs("/a"))
    assert topology_.profile("routed-tight") == BUILTIN_PROFILES["routed-tight"]
    assert files == {}
    assert fake.read == []
    assert list(topology_.warnings) == [
        "networks.dmz.policy_profile: routed-tight is the built-in profile; the profile file /a/routed-tight.toml "
        "is not read (a file cannot replace a built-in profile: define it under policies to replace it, or give "
        "the file and the profile inside it another name)"]


def test_a_built_in_without_a_file_gives_no_warning() -> None:
    parsed = parse_topology(topology("routed-tight", management=ALLOW_MANAGEMENT), profile_dirs=FakeFiles({}).dirs("/a"))
    assert parsed.warnings == ()


# -- errors -------------------------------------------------------------------------------------


def test_an_unknown_profile_lists_where_it_was_looked_for() -> None:
    assert issues(topology(), FakeFiles({}).dirs("/srv/net/policies", "/etc/ghostwarden/policies")) == [
        f"networks.dmz.policy_profile: unknown profile 'web' (known: {BUILTIN_NAMES}; no web.toml, web.yaml, web.yml "
        f"in /srv/net/policies, /etc/ghostwarden/policies)"]
    assert issues(topology(), FakeFiles({}).dirs()) == [
        f"networks.dmz.policy_profile: unknown profile 'web' (known: {BUILTIN_NAMES}; no directories to look for "
        f"profile files in (policy_dirs is empty))"]


def test_a_bad_file_is_one_line_with_the_field_path_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", WEB_TOML.replace("port = 443", "port = 70000"))
    data = topology()
    data["networks"]["dmz2"] = {"type": "routed", "cidr": "10.34.0.0/24", "gw_ip": "10.34.0.1", "policy_profile": "web"}
    with pytest.raises(ValidationError) as caught:
        parse_topology(data, profile_dirs=ProfileDirs((str(tmp_path),)))
    assert str(caught.value) == f"networks.dmz.policy_profile: {path}: services[0].port: port 70000 is out of range 1-65535"
    assert len(caught.value.issues) == 1  # dmz2's reference to the same bad file is not reported again
    assert "\n" not in str(caught.value)


def test_a_file_with_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", 'name = "web"\ndescription = \n')
    [message] = issues(topology(), ProfileDirs((str(tmp_path),)))
    assert message.startswith(f"networks.dmz.policy_profile: {path}: line 2, column ")
    assert "invalid TOML: " in message


def test_a_file_must_hold_the_profile_of_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", WEB_TOML.replace('name = "web"', 'name = "www"'))
    assert issues(topology(), ProfileDirs((str(tmp_path),))) == [
        f"networks.dmz.policy_profile: {path}: name: 'www' differs from the file's name 'web' "
        f"(the profile in web.toml must be named web)"]


# -- the normalised topology --------------------------------------------------------------------


def test_the_normalised_topology_holds_the_profile_and_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", WEB_TOML)
    dirs = ProfileDirs((str(tmp_path),))
    compiled = compile_topology(topology(), profile_dirs=dirs)
    normalised = compiled.normalised()
    assert normalised["policies"] == {"web": {"file": path, **profile_to_dict(WEB_FROM_TOML)}}
    assert list(normalised["policies"]["web"])[0] == "file"
    assert rendered_result(compiled)["topology"] == normalised
    # Read back without directories: the copy, the same model, the same normalised form.
    assert parse_topology_with_files(normalised) == (compiled.topology, {"web": path})
    assert normalise_topology(normalised) == normalised
    assert compile_topology(normalised).ruleset == compiled.ruleset


def test_a_copy_is_read_again_from_its_file_while_that_exists(tmp_path: Path) -> None:
    path = write(tmp_path / "old", "web.toml", WEB_TOML)
    normalised = compile_topology(topology(), profile_dirs=ProfileDirs((str(tmp_path / "old"),))).normalised()
    write(tmp_path / "old", "web.toml", WEB_TOML.replace("port = 443", "port = 8443"))
    write(tmp_path / "first", "web.toml", WEB_TOML.replace("port = 443", "port = 9443"))
    # Whatever the directories are now (ghostwarden_policy does not know the src a profile was beside).
    topology_, files = parse_topology_with_files(normalised, profile_dirs=ProfileDirs((str(tmp_path / "first"),)))
    assert topology_.profile("web") == load_profile_file(path)
    assert topology_.profile("web").rules[0].ports == (PortRange(8443, 8443),)
    assert files == {"web": path}
    # Without directories (ghostwarden_network, parse_topology in Python) the copy stands.
    assert parse_topology(normalised).profile("web") == WEB_FROM_TOML


def test_a_copy_stands_when_its_file_is_gone(tmp_path: Path) -> None:
    path = write(tmp_path / "old", "web.toml", WEB_TOML)
    normalised = compile_topology(topology(), profile_dirs=ProfileDirs((str(tmp_path / "old"),))).normalised()
    Path(path).unlink()
    write(tmp_path / "new", "web.toml", WEB_TOML.replace("port = 443", "port = 9443"))
    topology_, files = parse_topology_with_files(normalised, profile_dirs=ProfileDirs((str(tmp_path / "new"),)))
    assert topology_.profile("web") == WEB_FROM_TOML
    assert files == {"web": path}


def test_a_copy_whose_file_is_not_named_like_the_profile_is_never_read() -> None:
    fake = FakeFiles({"/etc/passwd": WEB_FROM_TOML, "/a/www.toml": WEB_FROM_TOML})
    for file in ("/etc/passwd", "/a/www.toml"):
        data = topology(policies={"web": {"file": file, **profile_to_dict(WEB_FROM_TOML)}})
        topology_, files = parse_topology_with_files(data, profile_dirs=fake.dirs("/a"))
        assert topology_.profile("web") == WEB_FROM_TOML
        assert files == {"web": file}
    assert fake.tried == [] and fake.read == []


def test_a_bad_file_behind_a_copy_is_reported_at_the_copy(tmp_path: Path) -> None:
    path = write(tmp_path, "web.toml", WEB_TOML)
    normalised = compile_topology(topology(), profile_dirs=ProfileDirs((str(tmp_path),))).normalised()
    write(tmp_path, "web.toml", WEB_TOML.replace("port = 443", "port = 70000"))
    assert issues(normalised, ProfileDirs(())) == [
        f"policies.web: {path}: services[0].port: port 70000 is out of range 1-65535"]


def test_a_bad_copy_marker_is_reported() -> None:
    data = topology(policies={"web": {"file": 7, "description": "x"}})
    assert issues(data, None) == ["policies.web.file: 7 is not the path of a profile file"]


def test_a_profile_without_file_normalises_as_before() -> None:
    data = topology(policies={"web": {"description": "inline"}})
    parsed = parse_topology(data)
    assert topology_to_dict(parsed) == normalise_topology(data)
    assert "file" not in topology_to_dict(parsed)["policies"]["web"]


# -- the original's example ---------------------------------------------------------------------


def test_the_originals_example_profiles_load_unchanged() -> None:
    for name in ("routed-tight", "public-web", "l2-lan"):
        profile = load_profile_file(str(ROOT / "examples" / "policies" / f"{name}.toml"))
        assert profile.name == name
        assert not profile.builtin


def test_the_originals_example_with_its_profile_files_beside_it() -> None:
    src = str(ROOT / "examples" / "ghostnet.toml")
    dirs = profile_dirs_option([], src)
    compiled = compile_topology(load_topology_file(src), profile_dirs=dirs)
    plain = compile_topology(load_topology_file(src))
    assert compiled.ruleset == plain.ruleset  # routed-tight and l2-lan are the built-ins
    assert compiled.profile_files == {}
    beside = ROOT / "examples" / "policies"
    not_read = ("is not read (a file cannot replace a built-in profile: define it under policies to replace it, or "
                "give the file and the profile inside it another name)")
    assert list(compiled.topology.warnings) == [
        f"networks.nat_dev.policy_profile: routed-tight is the built-in profile; the profile file "
        f"{beside / 'routed-tight.toml'} {not_read}",
        f"networks.br_work.policy_profile: l2-lan is the built-in profile; the profile file {beside / 'l2-lan.toml'} "
        f"{not_read}",
        *plain.topology.warnings,
    ]
