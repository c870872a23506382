"""Entry points of group ``pepperpy.plugins`` naming a provider class (``llm.awesome = "pkg.models:Awesome"``).

No install here: each test writes an installed-looking distribution (a package and its
``.dist-info`` with METADATA and entry_points.txt) into ``tmp_path`` and hands the
PluginManager a function returning that distribution's real ``importlib.metadata``
entry points. tests/integration/test_entry_point_plugins.py does the same with a real
distribution built and installed by uv.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pepperpy.errors import PluginLoadError, PluginNotFoundError
from pepperpy.llm import Message
from pepperpy.plugin_manager import ENTRY_POINT_GROUP, PluginManager

PACKAGE = "awesome_pkg_unit"
MODELS = '''
from pepperpy.llm import GenerationResult, LLMProvider


class AwesomeModel(LLMProvider):
    greeting: str = "awesome"

    async def generate(self, messages, **options):
        return GenerationResult(content=f"{self.greeting}: {messages[-1].content}")


class NotAProvider:
    pass
'''


def write_distribution(site: Path, entry_points: dict[str, str], name: str = "awesome-pkg", version: str = "1.2.0",
                       files: dict[str, str] | None = None) -> None:
    """An installed distribution as a wheel leaves it: its package and its .dist-info."""
    for relative, source in ({f"{PACKAGE}/__init__.py": "", f"{PACKAGE}/models.py": MODELS} | (files or {})).items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def entry_points_in(site: Path):
    """The injectable: the real entry points of the distributions under ``site``, in this group."""

    def read() -> list[importlib.metadata.EntryPoint]:
        return [
            entry_point
            for distribution in importlib.metadata.distributions(path=[str(site)])
            for entry_point in distribution.entry_points
            if entry_point.group == ENTRY_POINT_GROUP
        ]

    return read


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A site-packages-like folder on sys.path; the test package is forgotten before and after."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def forget() -> None:
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]

    forget()
    yield site
    forget()


def manager_for(tmp_path: Path, site: Path) -> PluginManager:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    return PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home", entry_points=entry_points_in(site))


def imported() -> list[str]:
    return sorted(m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + "."))


async def test_discovery_records_the_entry_point_without_importing_it(tmp_path, site):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    manager = manager_for(tmp_path, site)
    manager.discover()
    plugin = manager.entry_point_plugins["llm/awesome"]
    assert (plugin.category, plugin.provider_name) == ("llm", "awesome")
    assert (plugin.distribution, plugin.version, plugin.source) == ("awesome-pkg", "1.2.0", "awesome-pkg 1.2.0")
    assert plugin.entry_point.value == f"{PACKAGE}.models:AwesomeModel"
    assert imported() == [], "discovery must read metadata only"
    assert manager.needs_install("llm", "awesome") is False
    assert imported() == []


async def test_the_class_is_imported_on_first_use_checked_and_cached(tmp_path, site):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    manager = manager_for(tmp_path, site)
    provider = manager.create_provider("llm", "awesome", greeting="hi")
    assert imported() == [PACKAGE, f"{PACKAGE}.models"]
    assert provider.name == "awesome" and provider.plugin_id == "llm/awesome"
    async with provider:
        result = await provider.generate([Message(role="user", content="there")])
    assert result.content == "hi: there"
    assert manager.load_class("llm", "awesome") is type(provider) is sys.modules[f"{PACKAGE}.models"].AwesomeModel


def test_a_folder_with_the_same_id_wins_and_the_entry_point_shows_as_shadowed(tmp_path, site, make_plugin):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    folder = make_plugin("awesome")
    manager = manager_for(tmp_path, site)
    assert manager.load_class("llm", "awesome").__name__ == "EchoProvider"
    assert "llm/awesome" not in manager.entry_point_plugins
    (hidden,) = manager.shadowed_entry_points
    assert hidden.plugin.id == "llm/awesome" and hidden.shadowed_by == str(folder)
    assert imported() == []


def test_register_plugin_wins_over_an_entry_point(tmp_path, site):
    from pepperpy.llm import GenerationResult, LLMProvider

    class Registered(LLMProvider):
        async def generate(self, messages, **options):
            return GenerationResult(content="registered")

    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    manager = manager_for(tmp_path, site)
    manager.register_plugin("llm", "awesome", Registered)
    assert manager.load_class("llm", "awesome") is Registered
    assert imported() == []


def test_the_first_distribution_with_an_id_wins(tmp_path, site):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    other = tmp_path / "other-site"
    write_distribution(other, {"llm.awesome": f"{PACKAGE}.models:NotAProvider"}, name="copycat", version="9.0")
    first, second = entry_points_in(site), entry_points_in(other)
    manager = PluginManager(search_paths=[], home=tmp_path / "home", entry_points=lambda: [*first(), *second()])
    manager.discover()
    assert manager.entry_point_plugins["llm/awesome"].distribution == "awesome-pkg"
    (hidden,) = manager.shadowed_entry_points
    assert (hidden.plugin.source, hidden.shadowed_by) == ("copycat 9.0", "awesome-pkg 1.2.0")
    assert manager.load_class("llm", "awesome").__name__ == "AwesomeModel"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{PACKAGE}.missing:AwesomeModel", f"ModuleNotFoundError: No module named '{PACKAGE}.missing'"),
        (f"{PACKAGE}.models:Nope", "AttributeError"),
        (f"{PACKAGE}.boom:AwesomeModel", "RuntimeError: no GPU here; reinstall or fix awesome-pkg"),
    ],
)
def test_an_import_failure_names_the_distribution_and_the_entry_point(tmp_path, site, value, expected):
    write_distribution(site, {"llm.awesome": value}, files={f"{PACKAGE}/boom.py": "raise RuntimeError('no GPU here')"})
    manager = manager_for(tmp_path, site)
    with pytest.raises(PluginLoadError) as raised:
        manager.create_provider("llm", "awesome")
    message = str(raised.value)
    assert f"plugin llm/awesome: loading its entry point llm.awesome = '{value}' of awesome-pkg 1.2.0" in message
    assert ENTRY_POINT_GROUP in message and expected in message


def test_a_class_of_the_wrong_kind_is_refused_like_a_folder_plugins(tmp_path, site):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:NotAProvider"})
    manager = manager_for(tmp_path, site)
    with pytest.raises(PluginLoadError, match=r"llm/awesome \(entry point llm.awesome = .* of awesome-pkg 1.2.0\): "
                                              r"'NotAProvider' must subclass LLMProvider"):
        manager.load_class("llm", "awesome")


def test_misnamed_entry_points_are_reported_and_the_rest_work(tmp_path, site):
    write_distribution(site, {
        "llm.awesome": f"{PACKAGE}.models:AwesomeModel",
        "LLM.shouty": f"{PACKAGE}.models:AwesomeModel",
        "llm.": f"{PACKAGE}.models:AwesomeModel",
        "llm.modulename": f"{PACKAGE}.models",
    })
    manager = manager_for(tmp_path, site)
    manager.discover()
    assert list(manager.entry_point_plugins) == ["llm/awesome"]
    problems = {bad.name: bad.problem for bad in manager.broken_entry_points}
    assert set(problems) == {"LLM.shouty", "llm.", "llm.modulename"}
    assert "'category.provider_name'" in problems["LLM.shouty"]
    assert "must name a class" in problems["llm.modulename"]
    with pytest.raises(PluginNotFoundError, match=r"(?s)LLM.shouty = .* of awesome-pkg 1.2.0: the name must be"):
        manager.create_provider("llm", "shouty")


def test_not_found_suggests_entry_point_plugins(tmp_path, site):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel", "tts.speaker": "x.y:Z"})
    manager = manager_for(tmp_path, site)
    with pytest.raises(PluginNotFoundError, match=r"did you mean llm/awesome\?.*Available llm plugins: awesome\."):
        manager.create_provider("llm", "awesom")
    with pytest.raises(PluginNotFoundError, match=r"did you mean the category 'tts'\?"):
        manager.create_provider("ttss", "speaker")
    assert imported() == []


def test_an_entry_point_without_a_dot_still_names_a_package_of_plugin_folders(tmp_path, site, monkeypatch, make_plugin):
    write_distribution(site, {"folders": f"{PACKAGE}.folders", "llm.awesome": f"{PACKAGE}.models:AwesomeModel"},
                       files={f"{PACKAGE}/folders/__init__.py": ""})
    folder = make_plugin("foldered", root=site / PACKAGE / "folders")
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PEPPERPY_PLUGIN_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    manager = PluginManager(entry_points=entry_points_in(site))
    assert manager._entry_point_dirs() == [site / PACKAGE / "folders"]
    info = manager.discover()["llm/foldered"]
    assert info.path == folder and manager.plugin_source(info) == "awesome-pkg 1.2.0"
    assert "llm/awesome" in manager.entry_point_plugins
    assert manager.plugin_source(manager.plugins["llm/mock"]) is None


def test_pepperpy_plugins_shows_the_distribution(tmp_path, site, make_plugin):
    """`pepperpy plugins list` in a child process that has ``site`` on its path, as an installed distribution."""
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel", "llm.echo": "x:Y", "llm.Bad": "x:Y"})
    echo = make_plugin("echo")
    child = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from pepperpy.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["plugins", "list"])
        imported = sorted(m for m in sys.modules if m.startswith({PACKAGE!r}))
        print(json.dumps({{"code": code, "out": out.getvalue(), "imported": imported}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "PEPPERPY_HOME": str(tmp_path / "home"), "PEPPERPY_PLUGIN_PATH": str(tmp_path / "plugins")}
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["code"] == 0
    out = outcome["out"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if not line.startswith(" ")}
    assert rows["llm/awesome"] == ["llm/awesome", "1.2.0", "installed", f"{PACKAGE}.models:AwesomeModel", "(from",
                                   "awesome-pkg", "1.2.0)"]
    assert rows["llm/echo"] == ["llm/echo", "0.1.0", "none", "test", "plugin", "echo", str(echo)]
    assert f"  shadowed llm/echo (x:Y from awesome-pkg 1.2.0) by {echo}" in out.splitlines()
    assert "  broken entry point llm.Bad = 'x:Y' (from awesome-pkg 1.2.0): the name must be" in out
    assert outcome["imported"] == [], "listing must not import the distribution's code"


def test_a_manager_with_its_own_search_path_ignores_installed_entry_points(tmp_path):
    assert PluginManager(search_paths=[tmp_path], home=tmp_path / "home")._installed_entry_points() == []


def test_entry_points_built_directly_work_without_a_distribution(tmp_path, site):
    write_distribution(site, {})
    entry_point = importlib.metadata.EntryPoint("llm.awesome", f"{PACKAGE}.models:AwesomeModel", ENTRY_POINT_GROUP)
    manager = PluginManager(search_paths=[], home=tmp_path / "home", entry_points=lambda: [entry_point])
    manager.discover()
    assert manager.entry_point_plugins["llm/awesome"].source == "an unknown distribution"
    assert manager.load_class("llm", "awesome").__name__ == "AwesomeModel"


def test_an_entry_point_id_beats_a_folder_alias_as_ids_do_between_folders(tmp_path, site, make_plugin):
    write_distribution(site, {"llm.awesome": f"{PACKAGE}.models:AwesomeModel"})
    make_plugin("base", aliases={"awesome": {"config": {"prefix": ">"}}})
    manager = manager_for(tmp_path, site)
    assert manager.load_class("llm", "awesome").__name__ == "AwesomeModel"


def test_the_index_reads_entry_points_as_the_manager_does_without_building_one(tmp_path, site, monkeypatch):
    from pepperpy import _index

    write_distribution(site, {"folders": f"{PACKAGE}.folders", "llm.awesome": f"{PACKAGE}.models:AwesomeModel",
                              "llm.Bad": "x:Y"}, files={f"{PACKAGE}/folders/__init__.py": ""})
    manager = PluginManager(entry_points=entry_points_in(site))
    manager.discover()

    def no_manager(*args, **kwargs):
        raise AssertionError("the index built a PluginManager")

    monkeypatch.setattr(PluginManager, "__init__", no_manager)
    read = _index._read_entry_points()
    assert str(site / PACKAGE / "folders") in read["dirs"]
    assert [c["id"] for c in read["classes"] if c["source"] == "awesome-pkg 1.2.0"] == list(manager.entry_point_plugins)
    assert [b["name"] for b in read["broken"] if b["source"] == "awesome-pkg 1.2.0"] == [b.name for b in manager.broken_entry_points] == ["llm.Bad"]
