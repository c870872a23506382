"""The loader contract: Markdown sections with heading paths, suffix choice on the search path, the base's errors."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest

from pepperpy._loaders import load_path, suffix_table
from pepperpy._paths import builtin_plugins_dir
from pepperpy.errors import FileLoadError
from pepperpy.loaders import markdown_sections

GUIDE = """Intro before any heading.

# Guide

Welcome.

## Install

```sh
# a comment in code, not a heading
pip install pepperpy
```

### On Windows

Use py.

## Use

Call it.

# Appendix

More.
"""


def test_markdown_sections_carry_heading_paths_and_the_first_title():
    sections = markdown_sections(GUIDE)
    assert [(s.id, s.metadata.get("heading")) for s in sections] == [
        ("s0", None), ("s1", "Guide"), ("s2", "Guide > Install"), ("s3", "Guide > Install > On Windows"),
        ("s4", "Guide > Use"), ("s5", "Appendix"),
    ]
    assert "# a comment in code, not a heading" in sections[2].text
    assert {s.metadata["title"] for s in sections[1:]} == {"Guide"}, "the title is the first level-1 heading"
    assert markdown_sections("## Only\n\ntext", title="Given")[0].metadata == {"heading": "Only", "title": "Given"}


def test_a_heading_with_no_text_under_it_is_no_section_of_its_own():
    """``# Guide`` alone was a chunk of its own (``#s1#0``) that ranked for unrelated questions: it is in the heading
    path of the sections below it instead, and they keep their numbers (their ids do not change)."""
    sections = markdown_sections("# Guide\n\n\n## Install\n\nRun it.\n\n## Empty\n   \n# Appendix\n\nMore.\n")
    assert [(s.id, s.metadata["heading"], s.text.strip()) for s in sections] == [
        ("s2", "Guide > Install", "## Install\n\nRun it."), ("s4", "Appendix", "# Appendix\n\nMore."),
    ]
    assert markdown_sections("# Only a heading\n") == []


def test_the_built_in_loaders_cover_their_suffixes(builtin_manager):
    assert suffix_table(builtin_manager) == {
        ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf",
        ".docx": "docx", ".html": "html", ".htm": "html", ".xhtml": "html",
    }


async def test_a_loader_later_on_the_search_path_takes_over_a_suffix(tmp_path, make_plugin, manager):
    """A folder in ./plugins (or any later search path) wins a suffix over a built-in loader."""
    shutil.copytree(builtin_plugins_dir() / "loader_markdown", tmp_path / "plugins" / "loader_markdown")
    late = tmp_path / "late"
    (late / "loader_shout").mkdir(parents=True)
    manifest = {"name": "loader_shout", "version": "0.1.0", "category": "loader", "provider_name": "shout",
                "entry_point": "provider:Shout", "pepperpy_compatibility": ">=0.1.0", "suffixes": [".md"]}
    (late / "loader_shout" / "plugin.json").write_text(json.dumps(manifest))
    (late / "loader_shout" / "provider.py").write_text(
        "from pepperpy.loaders import LoaderProvider, read_utf8, section\n"
        "class Shout(LoaderProvider):\n"
        "    def read(self, path):\n"
        "        return [section('', read_utf8(path).upper())]\n"
    )
    note = tmp_path / "note.md"
    note.write_text("# hi\n\nthere")
    assert [s.text for s in await load_path(note, manager=manager)] == ["# hi\n\nthere"]
    manager.register_plugin_path(late)
    assert [s.text for s in await load_path(note, manager=manager)] == ["# HI\n\nTHERE"]
    assert [s.text for s in await load_path(note, "markdown", manager=manager)] == ["# hi\n\nthere"]


async def test_a_loader_that_fails_is_a_file_load_error_naming_file_and_loader(tmp_path, manager):
    folder = tmp_path / "plugins" / "loader_broken"
    folder.mkdir(parents=True)
    manifest = {"name": "loader_broken", "version": "0.1.0", "category": "loader", "provider_name": "broken",
                "entry_point": "provider:Broken", "pepperpy_compatibility": ">=0.1.0", "suffixes": [".bad"]}
    (folder / "plugin.json").write_text(json.dumps(manifest))
    (folder / "provider.py").write_text(
        "from pepperpy.loaders import LoaderProvider\n"
        "class Broken(LoaderProvider):\n"
        "    def read(self, path):\n"
        "        raise ValueError('byte 7 is wrong')\n"
    )
    file = tmp_path / "x.bad"
    file.write_text("?")
    with pytest.raises(FileLoadError, match=r"x\.bad: loader/broken cannot read it \(ValueError: byte 7 is wrong, "
                       r"raised at .*loader_broken[/\\]provider\.py:4\)") as raised:
        await load_path(file, manager=manager)
    assert isinstance(raised.value.__cause__, ValueError), "the loader's own traceback stays attached"
    with pytest.raises(FileLoadError, match="is a folder, not a file"):
        await load_path(tmp_path, "broken", manager=manager)


async def test_an_unknown_suffix_names_the_loader_folders_that_failed_validation(tmp_path, manager):
    """A loader whose plugin.json is broken is skipped: "no loader reads .csv files" alone sent its author looking
    at the data file; the error names the folder and what is wrong with it."""
    folder = tmp_path / "plugins" / "loader_csv"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text('{"name": "loader_csv", "category": "loader",}')
    (tmp_path / "people.csv").write_text("name\nAda\n")
    with pytest.raises(FileLoadError) as raised:
        await load_path(tmp_path / "people.csv", manager=manager)
    reason = raised.value.reason
    assert reason.startswith("no loader reads .csv files")
    assert f"the plugin folder {folder} failed validation and was skipped: " in reason
    assert "line 1 ends with a comma before the closing '}'" in reason


def test_file_load_error_keeps_path_and_reason_across_processes():
    error = pickle.loads(pickle.dumps(FileLoadError("/data/a.pdf", "the PDF is encrypted")))
    assert (error.path, error.reason) == ("/data/a.pdf", "the PDF is encrypted")
    assert str(error) == "/data/a.pdf: the PDF is encrypted"


async def test_a_string_naming_a_file_is_stored_as_text_with_a_warning(tmp_path, builtin_manager, monkeypatch):
    """``rag.add("docs/notes.md")`` stored the nine characters: strings are texts (the README), but one that names
    a file was meant as its path, and the user is told so."""
    from pepperpy._loaders import to_chunks

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("# Notes\n\nTuesday.")
    with pytest.warns(UserWarning, match=r"'notes\.md', which names a file or folder.*pass Path\('notes\.md'\)") as seen:
        documents, _, _ = await to_chunks("notes.md", manager=builtin_manager)
    assert [w.filename for w in seen] == [__file__], "the warning points at the caller's line, not PepperPy's"
    assert [d.text for d in documents] == ["notes.md"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        documents, _, _ = await to_chunks(["A plain sentence.", "x" * 5000], manager=builtin_manager)
    assert [len(d.text) for d in documents] == [17, 5000]
