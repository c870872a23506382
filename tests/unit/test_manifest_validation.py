"""Every kind of broken plugin folder is reported with its path and problem, skipped, and raised only on request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pepperpy.errors import PepperPyError, PluginLoadError, PluginManifestError, PluginNotFoundError
from tests.conftest import SIMPLE_PROVIDER, manifest_for


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
        (manifest_for("bad", suffixes=["pdf"]), "suffix 'pdf' must be a lowercase file suffix such as '.pdf'"),
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
        "bad-suffix",
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
    with pytest.raises(PluginNotFoundError, match="no plugin has the category 'vision'; categories found: embeddings, llm, loader, rag, storage"):
        manager.create_provider("vision", "x")


def test_every_plugin_error_is_a_pepperpy_error():
    for error in (PluginManifestError, PluginLoadError, PluginNotFoundError):
        assert issubclass(error, PepperPyError)


# -- what a plugin author sees: files and requirements.txt, never internal module names ---------------------


def load_error(manager, name: str) -> str:
    with pytest.raises(PluginLoadError) as raised:
        manager.create_provider("llm", name)
    assert "loaded_plugins" not in str(raised.value), "internal module names mean nothing to the author"
    return str(raised.value)


@pytest.mark.parametrize("importer", ["provider.py", "helpers.py"])
def test_a_missing_package_names_the_requirements_file(manager, make_plugin, importer):
    sources = {"provider.py": "from . import helpers\n" + SIMPLE_PROVIDER, "helpers.py": ""}
    sources[importer] = "import surely_not_installed_4242.sub\n" + sources[importer]
    folder = make_plugin("needs", files=sources)
    assert load_error(manager, "needs") == (
        f"plugin llm/needs: {importer} (line 1) imports 'surely_not_installed_4242', which is not installed; "
        f"add the package that provides it to {folder / 'requirements.txt'} (PepperPy installs it on first use)"
    )


@pytest.mark.parametrize(
    ("statement", "missing", "file"),
    [("from .helpers import tag", ".helpers", "helpers"), ("from . import helpers", ".helpers", "helpers"),
     ("from .tools.text import tag", ".tools.text", "tools/text")],
)
def test_a_missing_sibling_module_is_named_by_its_file(manager, make_plugin, statement, missing, file):
    folder = make_plugin("sib", files={"provider.py": statement + "\n" + SIMPLE_PROVIDER, "tools/__init__.py": ""})
    assert load_error(manager, "sib") == (
        f"plugin llm/sib: provider.py (line 1) imports {missing!r}, but there is no {folder / file}.py "
        f"(nor a package folder {folder / file}{os.sep}); add that file or fix the import"
    )


def test_a_sibling_imported_as_an_installed_package_is_told_to_import_it_relatively(manager, make_plugin):
    folder = make_plugin("abs", files={"provider.py": "import helpers\n" + SIMPLE_PROVIDER, "helpers.py": ""})
    assert load_error(manager, "abs") == (
        f"plugin llm/abs: provider.py (line 1) imports 'helpers' as an installed package, but it is a module of the "
        f"plugin folder ({folder / 'helpers.py'}); import it relatively: `from . import helpers` or "
        "`from .helpers import ...`"
    )


def test_other_import_errors_name_the_siblings_without_internal_names(manager, make_plugin):
    make_plugin("name", files={"provider.py": "from .helpers import tga\n" + SIMPLE_PROVIDER, "helpers.py": "tag=1\n"})
    assert "ImportError: cannot import name 'tga' from '.helpers'" in load_error(manager, "name")


def test_a_class_name_typo_gets_did_you_mean(manager, make_plugin):
    make_plugin("typo", entry_point="provider:EchoProvidr")
    assert load_error(manager, "typo").startswith(
        f"plugin llm/typo: {manager.plugins['llm/typo'].path / 'provider.py'} has no class 'EchoProvidr'; "
        "did you mean 'EchoProvider'? (entry_point 'provider:EchoProvidr' in"
    )
    make_plugin("far", entry_point="provider:Completely")
    described = load_error(manager, "far")
    assert "has no class 'Completely'; the classes defined there: EchoProvider (entry_point" in described


COMMENTED = {
    "line": ('{\n  // the shouting plugin\n  "name": "c"}', 2, "//"),
    "trailing": ('{\n  "name": "c", // its name\n  "version": "0.1.0"}', 2, "//"),
    "block": ('{\n  "name": "c",\n  /* its version */ "version": "0.1.0"}', 3, "/*"),
    "after-value": ('{\n  "name": "c" // no comma\n}', 2, "//"),
    "hash": ('{\n  # shell style\n  "name": "c"}', 2, "#"),
}


@pytest.mark.parametrize("kind", list(COMMENTED))
def test_comments_in_plugin_json_are_named_as_comments(manager, make_plugin, kind):
    text, line, marker = COMMENTED[kind]
    folder = make_plugin("commented", manifest=text)
    assert problem_of(manager, folder) == (
        f"{folder / 'plugin.json'}: line {line} has a comment ({marker!r}), but JSON has no comments; remove them "
        "(a note on the plugin can go in its 'description' or a README)"
    )


@pytest.mark.parametrize("text, line, closing", [
    ('{\n  "name": "c",\n  "version": "0.1.0",\n}', 3, "}"),
    ('{"name": "c", "suffixes": [".csv",  ]}', 1, "]"),
])
def test_a_trailing_comma_in_plugin_json_is_named_on_its_own_line(manager, make_plugin, text, line, closing):
    """Python's JSON error points at the bracket after the comma ("Expecting property name", the next line)."""
    folder = make_plugin("trailing", manifest=text)
    assert problem_of(manager, folder) == (
        f"{folder / 'plugin.json'}: line {line} ends with a comma before the closing {closing!r}, which JSON does not "
        "allow; remove that comma"
    )


def test_the_broken_folder_named_like_the_plugin_asked_for_comes_first(manager, make_plugin):
    make_plugin("echo")
    other = make_plugin("unrelated", manifest="{not json")
    broken = make_plugin("llm_comments", manifest=COMMENTED["line"][0])
    with pytest.raises(PluginNotFoundError) as raised:
        manager.create_provider("llm", "comments")
    first, *rest = str(raised.value).splitlines()
    assert first == (
        f"llm/comments: the plugin folder {broken} failed validation and was skipped: {broken / 'plugin.json'}: "
        "line 2 has a comment ('//'), but JSON has no comments; remove them (a note on the plugin can go in its "
        "'description' or a README)"
    )
    assert rest[0] == "(no llm plugin named 'comments'. Available llm plugins: echo.)"
    assert rest[1:] == ["Other plugin folders failed validation and were skipped:",
                        f"  {other}: {other / 'plugin.json'}: invalid JSON (Expecting property name enclosed in double "
                        "quotes: line 1 column 2 (char 1)); fix the file or remove the folder"]
    with pytest.raises(PluginNotFoundError, match=r"^no llm plugin named 'comment'\. .*\nThese plugin folders failed"):
        manager.create_provider("llm", "comment")  # another name: the usual message
