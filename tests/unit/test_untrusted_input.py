"""Untrusted plugin files: requirement lines are data, manifest paths and identifiers stay in bounds, sibling
modules stay in the plugin folder.

Each refusal is a PluginManifestError or PluginLoadError naming the plugin, the file (and
line) or field, quoting at most the offending line, and saying what to write instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import pytest

from pepperpy import _install
from pepperpy.errors import PluginLoadError, PluginManifestError
from tests.conftest import manifest_for

SENTINEL = "sk-sentinel-7d1f0c2b9a4e"

REFUSED_LINES = [
    "evilmod-1.0-py3-none-any.whl",
    "evil.zip",
    "x.tar.gz",
    "evil.zip[extra]",
    "evil.zip ; python_version > '3'",
    "./x",
    "../x",
    "/abs/path",
    "~/x",
    "file:///tmp/pkg",
    "file:pkg",
    "git+https://example.invalid/pkg.git",
    "https://example.invalid/pkg.whl",
    "http://example.invalid/pkg.tar.gz",
    "pkg @ https://example.invalid/pkg.whl",
    "pkg@file:///tmp/pkg",
    "-e .",
    "-r other.txt",
    "-c constraints.txt",
    "--index-url https://example.invalid/simple",
    "--hash=sha256:abcd",
    "--hash=sha256:" + "a" * 64,
    "pkg --config-settings=x=y",
    "pkg==1.0 --hash sha256:abcd",
    "pkg==1.3 --hash=sha256:zz",
    "${PACKAGE}",
    "pkg==${VERSION}",
    "pkg \\",
    "six\x0c./evil.whl",
    "six\u2028./evil.whl",
]

ACCEPTED_LINES = {
    "httpx": "httpx",
    "zope.interface>=5": "zope.interface>=5",
    "pkg~=1.0": "pkg~=1.0",
    "requests[socks]>=2 ; python_version >= '3.9'": 'requests[socks]>=2; python_version >= "3.9"',
    "six==1.16.0 --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926 "
    "--hash=sha256:" + "a" * 64: "six==1.16.0",
    "tabulate\t# a comment after a tab": "tabulate",
}


@pytest.mark.parametrize("line", REFUSED_LINES)
def test_lines_uv_would_read_as_a_path_url_or_option_are_refused(tmp_path, line):
    path = tmp_path / "plugins" / "evil" / "requirements.txt"
    path.parent.mkdir(parents=True)
    path.write_text(f"httpx\n# a comment\n{line}\n", encoding="utf-8")
    with pytest.raises(PluginManifestError) as raised:
        _install.parse_requirements_file(path, plugin_id="llm/evil")
    message = str(raised.value)
    assert message.startswith(f"plugin llm/evil: {path}:3: ")
    assert message.rsplit("; ", 1)[1].split()[0] in {"write", "list", "remove"}, "it says what to write instead"


@pytest.mark.parametrize(("line", "parsed"), ACCEPTED_LINES.items())
def test_plain_requirements_are_accepted(line, parsed):
    assert str(_install.parse_requirement_line(line, "requirements.txt:1")) == parsed


@pytest.mark.parametrize("entry", ["pkg\x00", "pkg\n./evil.whl", "pkg\r", "evil.zip"])
def test_bad_model_package_entries_are_refused(entry):
    with pytest.raises(PluginManifestError, match=r"plugin.json model_packages: "):
        _install.parse_requirement_line(entry, "plugins/x/plugin.json model_packages")


def test_a_wheel_name_suggests_the_package_and_version():
    with pytest.raises(PluginManifestError, match=r"e\.g\. 'evilmod==1\.0'"):
        _install.parse_requirement_line("evilmod-1.0-py3-none-any.whl", "requirements.txt:1")


def test_crlf_requirements_files_are_fine(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"httpx>=0.27\r\n# comment\r\npydantic\r\n")
    assert [str(r) for r in _install.parse_requirements_file(path)] == ["httpx>=0.27", "pydantic"]


@pytest.mark.parametrize("line", ["evil.zip", "evilmod-1.0-py3-none-any.whl", "x.tar.gz", "./x", "evil.zip[extra]"])
def test_refused_archive_lines_are_files_to_uv_itself(tmp_path, line):
    """The refusals are needed: the real uv, offline and dry-run, reads these lines as local files."""
    from uv import find_uv_bin

    (tmp_path / "requirements.txt").write_text(line + "\n")
    done = subprocess.run(
        [find_uv_bin(), "pip", "install", "--dry-run", "--offline", "--no-config", "--python", sys.executable,
         "--target", str(tmp_path / "target"), "-r", str(tmp_path / "requirements.txt")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "file://" in done.stderr or "file extension" in done.stderr, done.stderr
    with pytest.raises(PluginManifestError):
        _install.parse_requirement_line(line, "requirements.txt:1")


def test_a_bad_line_is_quoted_alone_and_cut_never_the_whole_file(tmp_path):
    """Like /proc/self/environ: NUL-free lines of VAR=value, a key among them; the error shows line 1 only."""
    path = tmp_path / "requirements.txt"
    path.write_text(f"PATH=/usr/bin:/bin\nOPENAI_API_KEY={SENTINEL}\nHOME=/root\n")
    with pytest.raises(PluginManifestError) as raised:
        _install.parse_requirements_file(path, plugin_id="llm/evil")
    message = str(raised.value)
    assert f"{path}:1" in message and "PATH=/usr/bin:/bin" in message
    assert SENTINEL not in message and "HOME" not in message


def test_a_long_bad_line_is_cut_to_about_80_characters(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("pkg ; " + "x" * 100 + SENTINEL + "\n")
    with pytest.raises(PluginManifestError) as raised:
        _install.parse_requirements_file(path)
    assert SENTINEL not in str(raised.value) and "..." in str(raised.value)
    assert len(str(raised.value)) < len(str(path)) + 400


def test_a_requirements_file_with_nul_bytes_names_the_file_and_quotes_nothing(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"PATH=/bin\x00OPENAI_API_KEY=" + SENTINEL.encode() + b"\x00")
    with pytest.raises(PluginManifestError) as raised:
        _install.parse_requirements_file(path, plugin_id="llm/evil")
    assert str(path) in str(raised.value) and SENTINEL not in str(raised.value)


def test_a_bad_model_package_fails_the_plugin_on_use(manager, make_plugin):
    make_plugin("modelled", model_packages=["evilmod-1.0-py3-none-any.whl"])
    with pytest.raises(PluginManifestError, match=r"model_packages.*evilmod==1\.0"):
        manager.create_provider("llm", "modelled")


def test_a_bad_line_in_a_plugin_fails_on_use_naming_the_file_and_line(manager, make_plugin):
    folder = make_plugin("wheeled", files={"requirements.txt": "httpx\nevil.zip\n"})
    with pytest.raises(PluginManifestError) as raised:
        manager.create_provider("llm", "wheeled")
    assert f"{folder / 'requirements.txt'}:2" in str(raised.value) and "'evil.zip'" in str(raised.value)


# -- the manifest's requirements field --------------------------------------------------------------


@pytest.mark.parametrize("value", ["../../x.txt", "/proc/self/environ", "sub/../../x.txt", "", "   "])
def test_requirements_outside_the_folder_are_refused_naming_the_field(manager, make_plugin, value):
    folder = make_plugin("escaping", requirements=value)
    manager.discover()
    (broken,) = manager.broken
    assert broken.path == folder.resolve()
    assert "field 'requirements'" in broken.problem and str(folder / "plugin.json") in broken.problem
    assert "inside the plugin folder" in broken.problem


def test_requirements_symlinked_outside_the_folder_are_refused(manager, make_plugin, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text(f"OPENAI_API_KEY={SENTINEL}\n")
    folder = make_plugin("linked")
    (folder / "requirements.txt").symlink_to(outside)
    manager.discover()
    (broken,) = manager.broken
    assert "field 'requirements'" in broken.problem and str(outside) in broken.problem
    assert str(folder.resolve()) in broken.problem and SENTINEL not in broken.problem


def test_requirements_that_are_a_fifo_are_refused_without_waiting(manager, make_plugin):
    folder = make_plugin("piped")
    os.mkfifo(folder / "requirements.txt")
    manager.discover()
    (broken,) = manager.broken
    assert "not a regular file" in broken.problem


def test_requirements_in_a_subfolder_inside_are_fine(manager, make_plugin):
    make_plugin("nested", requirements="deps/requirements.txt", files={"deps/requirements.txt": "pydantic>=2\n"})
    assert manager.create_provider("llm", "nested").name == "nested"


def test_a_huge_plugin_json_is_refused_by_size(manager, make_plugin):
    folder = make_plugin("huge", description="x" * (2 << 20))
    manager.discover()
    (broken,) = manager.broken
    assert broken.path == folder.resolve() and "larger than 1024 KB" in broken.problem


# -- identifiers: a trailing newline is not part of a name ---------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "trailing\n"}, "name"),
        ({"category": "llm\n"}, "category"),
        ({"provider_name": "trailing\n"}, "provider_name"),
        ({"entry_point": "provider:EchoProvider\n"}, "entry_point"),
        ({"entry_point": "provider..x:EchoProvider"}, "entry_point"),
        ({"aliases": {"other\n": {}}}, "aliases"),
        ({"env": {"api_key": "OPENAI_API_KEY\n"}}, "env"),
        ({"env": {"api key": "OPENAI_API_KEY"}}, "env"),
        ({"aliases": {"other": {"env": {"api_key": "X\n"}}}}, "aliases.other.env"),
        ({"dependencies": [{"type": "embeddings\n"}]}, "dependencies.0.type"),
        ({"dependencies": [{"type": "embeddings", "provider": "local\n"}]}, "dependencies.0.provider"),
        ({"version": "0.1.0\n"}, "version"),
    ],
)
def test_identifier_fields_refuse_trailing_newlines(manager, make_plugin, overrides, field):
    make_plugin("trailing", manifest={**manifest_for("trailing"), **overrides})
    manager.discover()
    (broken,) = manager.broken
    assert f"field '{field}'" in broken.problem
    assert manager.plugins == {}


# -- sibling modules must resolve inside the folder -------------------------------------------------

WIRE_USER = """
from pepperpy.llm import GenerationResult, LLMProvider

from .wire import VALUE


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=VALUE)
"""

HELPERS_USER = WIRE_USER.replace("from .wire import VALUE", "from . import helpers\n\nVALUE = helpers.VALUE")


def test_a_sibling_module_symlinked_outside_the_folder_is_refused(manager, make_plugin, tmp_path):
    outside = tmp_path / "elsewhere" / "wire.py"
    outside.parent.mkdir()
    outside.write_text("VALUE = 'from outside'\n")
    folder = make_plugin("linker", files={"provider.py": WIRE_USER})
    (folder / "wire.py").symlink_to(outside)
    with pytest.raises(PluginLoadError) as raised:
        manager.create_provider("llm", "linker")
    message = str(raised.value)
    assert "plugin llm/linker" in message and "'wire'" in message and str(outside) in message
    assert "outside the plugin folder" in message and "inside its folder" in message
    assert not any(name.endswith(".wire") and "linker" in name for name in sys.modules)


def test_a_sibling_package_symlinked_outside_the_folder_is_refused(manager, make_plugin, tmp_path):
    outside = tmp_path / "elsewhere" / "helpers"
    outside.mkdir(parents=True)
    (outside / "__init__.py").write_text("VALUE = 'from outside'\n")
    folder = make_plugin("pkglinker", files={"provider.py": HELPERS_USER})
    (folder / "helpers").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PluginLoadError, match=r"'helpers'.*outside the plugin folder"):
        manager.create_provider("llm", "pkglinker")


async def test_siblings_inside_the_folder_load_also_through_a_symlink_inside(manager, make_plugin):
    folder = make_plugin("inside", files={"provider.py": WIRE_USER, "real_wire.py": "VALUE = 'inside'\n"})
    (folder / "wire.py").symlink_to(folder / "real_wire.py")
    async with manager.create_provider("llm", "inside") as provider:
        assert (await provider.generate("hi")).content == "inside"


def test_an_entry_file_replaced_by_a_symlink_after_discovery_is_refused(manager, make_plugin, tmp_path):
    outside = tmp_path / "outside_provider.py"
    folder = make_plugin("swapped")
    outside.write_text((folder / "provider.py").read_text())
    manager.discover()
    (folder / "provider.py").unlink()
    (folder / "provider.py").symlink_to(outside)
    with pytest.raises(PluginLoadError, match=r"outside the plugin folder"):
        manager.create_provider("llm", "swapped")


def test_the_same_fields_without_the_newline_are_valid(manager, make_plugin):
    """The control for the refusals above: the overrides minus their newline make a working plugin."""
    make_plugin(
        "fine", aliases={"other": {"env": {"api_key": "X_KEY"}}}, env={"api_key": "OPENAI_API_KEY"},
        dependencies=[{"type": "embeddings", "provider": "local", "dependency_type": "optional"}],
    )
    manager.discover()
    assert manager.broken == [] and "llm/fine" in manager.plugins
