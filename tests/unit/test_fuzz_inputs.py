"""Fuzzing untrusted input with hypothesis (derandomized: the same examples on every run, bounded in number).

Random plugin.json contents, requirements files, plugin folder names and ``with_llm("mock",
**config)`` config: every outcome is a result or a PepperPyError subclass with a non-empty
message, never another exception type. Installs cannot run: the home lies under a regular
file, so a plugin needing packages fails with PluginInstallError before uv starts.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pepperpy import PepperPy, _install
from pepperpy.errors import PepperPyError, PluginManifestError
from pepperpy.plugin_manager import BrokenPlugin, PluginManager, builtin_plugins_dir
from tests.conftest import SIMPLE_PROVIDER, manifest_for

FUZZ = settings(
    derandomize=True, max_examples=120, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ---------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
MANIFEST_FIELDS = [*manifest_for("fuzz"), "requirements", "model_packages", "config", "env", "aliases", "dependencies"]
TRICKY_TEXT = st.sampled_from([
    "fuzz\n", "llm\n", "provider:EchoProvider\n", "../../x.txt", "/proc/self/environ", "", " ", "\x00", "x" * 300,
    "évian", "provider:Echo Provider", "a..b:C", "requirements.txt\x00", ">=0.1.0\n", "0.1.0\n", "~/x", "sub/../../x",
])


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid manifest with a few fields replaced by random JSON values or tricky strings, or added."""
    manifest: dict[str, Any] = manifest_for("fuzz")
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.one_of(st.sampled_from(MANIFEST_FIELDS), st.text(max_size=12)))
        manifest[field] = draw(st.one_of(json_values, TRICKY_TEXT, st.lists(TRICKY_TEXT, max_size=3),
                                         st.dictionaries(TRICKY_TEXT, TRICKY_TEXT, max_size=2)))
    return manifest


manifest_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
    st.builds(lambda manifest: json.dumps(manifest).encode(), mutated_manifests()),
    st.builds(lambda manifest, prefix: prefix + json.dumps(manifest).encode(), mutated_manifests(),
              st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xe9", b"  \n"])),
    st.builds(lambda manifest: json.dumps(manifest, ensure_ascii=False).encode("utf-16"), mutated_manifests()),
    st.builds(lambda depth: b"[" * depth + b"]" * depth, st.sampled_from([10, 5_000, 200_000])),
    st.builds(lambda size: json.dumps(manifest_for("fuzz", description="d" * size)).encode(), st.sampled_from([10, 2 << 20])),
)

REQUIREMENT_PIECES = st.sampled_from([
    "httpx", "httpx>=0.27", "pydantic[email]>=2 ; python_version >= '3.9'", "zope.interface", "six==1.16.0 --hash=sha256:ab",
    "evilmod-1.0-py3-none-any.whl", "evil.zip", "x.tar.gz", "./x", "../x", "/abs", "~/x", "file:///etc/passwd", "file:x",
    "git+https://example.invalid/x.git", "https://example.invalid/x.whl", "pkg @ https://example.invalid/x.whl",
    "-e .", "-r other.txt", "-c c.txt", "--index-url https://example.invalid", "--hash=sha256:00", "pkg --no-deps",
    "${VAR}", "pkg==$V", "pkg \\", "# comment", "   ", "", "pkg ; os_name == 'posix' and extra == 'x'", "pkg[a,b]",
    "pkg ; python_version >", "pkg[", "pkg>=", "\x00", "\x0c", "\u2028", "\r", "x" * 5000,
])
requirement_lines = st.one_of(REQUIREMENT_PIECES, st.text(max_size=40), st.builds(lambda a, b: f"{a} {b}", REQUIREMENT_PIECES, st.text(max_size=10)))
requirement_files = st.one_of(
    st.builds(lambda lines, end: "\n".join(lines).encode("utf-8", "surrogatepass") + end,
              st.lists(requirement_lines, max_size=6), st.sampled_from([b"", b"\n", b"\xff", b"\x00"])),
    st.binary(max_size=200),
    st.builds(lambda lines: "\r\n".join(lines).encode("utf-16"), st.lists(REQUIREMENT_PIECES, max_size=4)),
)

folder_names = st.text(min_size=1, max_size=40).filter(
    lambda name: "/" not in name and "\x00" not in name and name not in (".", "..") and _encodable(name)
)


def _encodable(name: str) -> bool:
    try:
        return len(name.encode("utf-8")) <= 255
    except UnicodeEncodeError:
        return False


# Option names that collide with the parameters of with_llm/create_provider raise TypeError today: left out here and
# pinned by test_an_option_named_like_a_parameter_is_a_config_error below (a fix belongs to pepperpy.py/plugin_manager.py).
PARAMETER_NAMES = {"self", "category", "name"}  # provider_type is with_llm's documented keyword: taken, not an option
config_keys = st.one_of(
    st.sampled_from(["replies", "cycle", "temperature", "timeout", "api_key"]), st.text(max_size=12)
).filter(lambda key: key not in PARAMETER_NAMES)
odd_values = st.sampled_from([math.nan, math.inf, b"bytes", object(), {1, 2}, ("t",), -1, 10**30, "\x00", "x" * 10_000])
mock_configs = st.dictionaries(config_keys, st.one_of(json_values, odd_values), max_size=4)

# -- helpers --------------------------------------------------------------------------------------------


@contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh folder per example (hypothesis runs many examples per test function)."""
    root = Path(tempfile.mkdtemp(prefix="pepperpy-fuzz-"))
    try:
        (root / "not-a-folder").write_text("a file: the home below it cannot be created, so nothing installs\n")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def manager_for(root: Path) -> PluginManager:
    return PluginManager(search_paths=[root / "plugins"], home=root / "not-a-folder" / "home")


def assert_useful(error: BaseException) -> None:
    assert isinstance(error, PepperPyError), f"{type(error).__name__}: {error}"
    assert str(error).strip(), f"{type(error).__name__} with an empty message"


# -- the fuzz tests -------------------------------------------------------------------------------------------


@FUZZ
@given(content=manifest_bytes)
def test_random_plugin_json_is_a_plugin_or_a_broken_folder(content: bytes):
    with sandbox() as root:
        folder = root / "plugins" / "fuzz"
        folder.mkdir(parents=True)
        (folder / "plugin.json").write_bytes(content)
        (folder / "provider.py").write_text(SIMPLE_PROVIDER)
        manager = manager_for(root)
        found = manager.discover()
        if not found:
            (broken,) = manager.broken
            assert isinstance(broken, BrokenPlugin) and broken.problem.strip()
            assert len(broken.problem) < 3000, "a problem quotes fields, never the whole file"
            return
        (info,) = found.values()
        try:
            manager.create_provider(info.manifest.category, info.manifest.provider_name)
        except Exception as exc:
            assert_useful(exc)


@FUZZ
@given(content=requirement_files)
def test_random_requirements_files_parse_or_fail_naming_the_file(content: bytes):
    with sandbox() as root:
        path = root / "requirements.txt"
        path.write_bytes(content)
        try:
            requirements = _install.parse_requirements_file(path, plugin_id="llm/fuzz")
        except PluginManifestError as exc:
            message = str(exc)
            assert message.startswith(f"plugin llm/fuzz: {path}") and message.strip()
            assert len(message) < len(str(path)) + 600, "at most the offending line, cut, is quoted"
            return
        except Exception as exc:  # any other type is a bug
            assert_useful(exc)
            return
        for requirement in requirements:
            assert requirement.url is None and not requirement.name.lower().endswith((".whl", ".zip", ".tar.gz", ".tgz"))


@FUZZ
@given(line=requirement_lines)
def test_random_model_package_entries_parse_or_fail(line: str):
    try:
        _install.parse_requirement_line(line, "plugin.json model_packages")
    except Exception as exc:
        assert_useful(exc)


@FUZZ
@given(name=folder_names, broken=st.booleans())
def test_any_folder_name_holds_a_plugin(name: str, broken: bool):
    with sandbox() as root:
        folder = root / "plugins" / name
        folder.mkdir(parents=True)
        manifest = manifest_for("fuzz", version="not a version" if broken else "0.1.0")
        (folder / "plugin.json").write_text(json.dumps(manifest))
        (folder / "provider.py").write_text(SIMPLE_PROVIDER)
        manager = manager_for(root)
        if broken:
            manager.discover()
            (problem,) = manager.broken
            assert str(folder) in problem.problem and "field 'version'" in problem.problem
        else:
            assert manager.create_provider("llm", "fuzz").name == "fuzz"


@pytest.fixture(scope="module")
def mock_manager(tmp_path_factory: pytest.TempPathFactory) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path_factory.mktemp("fuzz-home"))


@settings(FUZZ, max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(config=mock_configs)
def test_random_config_for_the_mock_llm_is_a_result_or_a_pepperpy_error(mock_manager: PluginManager, config: dict[str, Any]):
    try:
        pepper = PepperPy(plugin_manager=mock_manager).with_llm("mock", **config)
    except Exception as exc:
        assert_useful(exc)
        return
    try:
        result = pepper.chat.with_user("hello there").generate_sync()
        assert isinstance(result.content, str)
    except Exception as exc:
        assert_useful(exc)
    finally:
        pepper.close()


@pytest.mark.parametrize("option", sorted(PARAMETER_NAMES))
def test_an_option_named_like_a_parameter_is_a_config_error(mock_manager: PluginManager, option: str):
    with pytest.raises(PepperPyError):
        PepperPy(plugin_manager=mock_manager).with_llm("mock", **{option: "x"})
