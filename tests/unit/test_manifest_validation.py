"""Every kind of broken plugin folder is reported with its path and problem, skipped, and raised only on request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pepperpy.errors import PepperPyError, PluginLoadError, PluginManifestError, PluginNotFoundError
from tests.conftest import manifest_for


def problem_of(manager, folder: Path) -> str:
    manager.discover()
    matches = [b.problem for b in manager.broken if b.path == folder.resolve()]
    assert matches, f"{folder} was not reported as broken: {manager.broken}"
    return matches[0]


def test_valid_plugin_is_discovered(manager, make_plugin):
    make_plugin("echo")
    plugins = manager.discover()
    assert list(plugins) == ["llm/echo"]
    assert manager.broken == []


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({k: v for k, v in manifest_for("bad").items() if k != "entry_point"}, "missing field 'entry_point'"),
        (manifest_for("bad", entrypoint="provider:X"), "unknown field 'entrypoint'; did you mean 'entry_point'?"),
        (manifest_for("bad", version="one"), "field 'version': 'one' is not a version"),
        (manifest_for("bad", pepperpy_compatibility="=>1"), "field 'pepperpy_compatibility': '=>1' is not a version"),
        (manifest_for("bad", pepperpy_compatibility=">=99"), "needs pepperpy >=99 but this is pepperpy"),
        (manifest_for("bad", entry_point="../x/provider:EchoProvider"), "points outside the plugin folder"),
        (manifest_for("bad", entry_point="/etc/provider:EchoProvider"), "points outside the plugin folder"),
        (manifest_for("bad", entry_point="missing:EchoProvider"), "missing.py, which does not exist"),
        (manifest_for("bad", provider_name="Bad Name"), "field 'provider_name'"),
    ],
    ids=[
        "invalid-json",
        "not-an-object",
        "missing-field",
        "unknown-field",
        "bad-version",
        "bad-specifier",
        "incompatible",
        "dotdot-entry",
        "absolute-entry",
        "missing-entry-file",
        "bad-name",
    ],
)
def test_broken_manifest_is_reported_skipped_and_raised_on_request(manager, make_plugin, manifest, expected):
    make_plugin("good")
    folder = make_plugin("bad", manifest=manifest)
    problem = problem_of(manager, folder)
    assert expected in problem
    assert str(folder / "plugin.json") in problem
    assert "llm/good" in manager.plugins
    assert manager.create_provider("llm", "good").name == "good"
    with pytest.raises(PluginNotFoundError) as raised:
        manager.create_provider("llm", "bad")
    assert expected in str(raised.value), "the not-found error lists the broken folders with their problem"


def test_entry_point_symlink_escaping_the_folder_is_rejected(manager, make_plugin, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("raise SystemExit('must never run')\n")
    folder = make_plugin("escape", entry_point="linked:EchoProvider")
    os.symlink(outside, folder / "linked.py")
    assert "outside the plugin folder" in problem_of(manager, folder)


def test_missing_class_is_a_load_error_naming_the_file(manager, make_plugin):
    make_plugin("noclass", entry_point="provider:Nope")
    with pytest.raises(PluginLoadError, match=r"has no class 'Nope'.*plugin\.json"):
        manager.create_provider("llm", "noclass")


def test_class_of_wrong_category_is_rejected(manager, make_plugin):
    make_plugin("wrongbase", category="embeddings")
    with pytest.raises(PluginLoadError, match="must subclass EmbeddingProvider"):
        manager.create_provider("embeddings", "wrongbase")


def test_exception_while_importing_the_entry_point_is_wrapped_with_the_original(manager, make_plugin):
    make_plugin("explodes", files={"provider.py": "raise RuntimeError('boom at import')\n"})
    make_plugin("fine")
    with pytest.raises(PluginLoadError, match=r"llm/explodes.*RuntimeError: boom at import") as raised:
        manager.create_provider("llm", "explodes")
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert manager.create_provider("llm", "fine").name == "fine"


def test_unknown_name_suggests_close_names(manager, make_plugin):
    make_plugin("openai")
    with pytest.raises(PluginNotFoundError, match=r"did you mean llm/openai\?"):
        manager.create_provider("llm", "opnai")


def test_unknown_category_lists_categories(manager):
    with pytest.raises(PluginNotFoundError, match="no plugin has the category 'vision'; categories found: embeddings, llm, rag, storage"):
        manager.create_provider("vision", "x")


def test_every_plugin_error_is_a_pepperpy_error():
    for error in (PluginManifestError, PluginLoadError, PluginNotFoundError):
        assert issubclass(error, PepperPyError)
