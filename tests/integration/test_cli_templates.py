"""`pepperpy templates ...`, `pepperpy -t NAME -P var value`, and `--save NAME`, run as the real command in
subprocesses with PEPPERPY_HOME in a tmp dir; llm/mock echoes the last user message, so what it prints is what
the model was sent. `templates edit` runs a real editor: a shell script given as $EDITOR."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from pepperpy._calllog import default_path, recent
from tests.command import ok, run_pepperpy

pytestmark = pytest.mark.integration


def pepperpy(home: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return run_pepperpy(home, *args, stdin=stdin, env=env)


def failed(result: subprocess.CompletedProcess) -> str:
    """The one-line error of a command that failed with exit code 1."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("pepperpy: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_save_list_show_use_and_remove_a_template(home):
    saved = ok(pepperpy(home, "templates", "save", "review", "-s", "You review $language code.",
                        "--prompt", "Review ($$5 budget) for $team:", "-p", "mock", "-d", "language", "Python",
                        "-o", "temperature=0"))
    path = home / "templates" / "review.yaml"
    assert saved == f"Saved template review to {path}\n"
    assert "review" in ok(pepperpy(home, "templates", "list")) and "mock" in ok(pepperpy(home, "templates", "list"))
    assert "system: You review $language code." in ok(pepperpy(home, "templates", "show", "review"))
    # -P's value may be a word such as a command's name: it is the variable's value, not a command
    answer = ok(pepperpy(home, "-t", "review", "-P", "team", "logz", "x = 1"))
    assert answer == "Review ($5 budget) for logz:\n\nx = 1\n"
    (call,) = recent(default_path(home), 0)
    assert [m["content"] for m in call.messages] == ["You review Python code.", "Review ($5 budget) for logz:\n\nx = 1"]
    assert call.provider == "llm/mock" and call.options == {"temperature": 0}
    assert ok(pepperpy(home, "templates", "remove", "review")) == f"Removed template review ({path})\n"
    assert not path.exists() and "No templates" in ok(pepperpy(home, "templates", "list"))
    assert "no template review" in failed(pepperpy(home, "templates", "remove", "review"))


def test_save_from_a_chat_line_and_use_it(home):
    saved = ok(pepperpy(home, "-p", "mock", "-s", "Answer in $lang.", "--save", "translate", "-P", "lang", "French",
                        "Translate: $input"))
    assert saved.startswith("Saved template translate to ") and not default_path(home).exists()  # nothing sent
    assert ok(pepperpy(home, "-t", "translate", "good morning")) == "Translate: good morning\n"
    assert ok(pepperpy(home, "-t", "translate", "-P", "lang", "German", "--json", "hi")).startswith('{"content": ')
    system = [m["content"] for c in recent(default_path(home), 0) for m in c.messages if m["role"] == "system"]
    assert system == ["Answer in French.", "Answer in German."]
    assert "exists" in failed(pepperpy(home, "templates", "save", "translate", "--prompt", "x"))  # --force replaces


def test_every_template_error_is_one_line_naming_the_file_and_the_variable(home):
    ok(pepperpy(home, "templates", "save", "review", "--prompt", "Review $thing for $team: $input", "-p", "mock"))
    path = home / "templates" / "review.yaml"
    missing = failed(pepperpy(home, "-t", "review", "-P", "thing", "code", "x"))
    assert f"template review ({path}) needs $team: pass -P team VALUE" in missing
    unknown = failed(pepperpy(home, "-t", "review", "-P", "thing", "a", "-P", "taem", "b", "x"))
    assert f"({path}) has no variable $taem" in unknown and "did you mean $team?" in unknown
    no_input = failed(pepperpy(home, "-t", "review", "-P", "thing", "a", "-P", "team", "b"))
    assert "needs $input: give a prompt" in no_input
    path.write_text("prompt: [unclosed\n")
    broken = failed(pepperpy(home, "-t", "review", "x"))
    assert f"template review: {path} is not valid YAML at line" in broken and "templates edit review" in broken
    assert f"{path} is not valid YAML" in failed(pepperpy(home, "templates", "show", "review"))
    assert "no template nope" in failed(pepperpy(home, "-t", "nope", "x"))
    assert "-P sets a template's variables" in pepperpy(home, "-p", "mock", "-P", "a", "b", "x").stderr
    assert "is not a template name" in failed(pepperpy(home, "templates", "save", "../up", "--prompt", "x"))


def test_edit_opens_the_editor_and_checks_what_it_wrote(home, tmp_path):
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'system: Be $tone.\\nprompt: Say $input\\n' > \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    edited = ok(pepperpy(home, "templates", "edit", "tone", EDITOR=str(editor)))
    assert "variables $tone, $input" in edited
    assert json.loads(ok(pepperpy(home, "-p", "mock", "-t", "tone", "-P", "tone", "kind", "--json", "hi")))[
        "content"] == "Say hi"
    breaking = tmp_path / "breaking.sh"
    breaking.write_text("#!/bin/sh\nprintf 'prompt: costs $5\\n' > \"$1\"\n")
    breaking.chmod(breaking.stat().st_mode | stat.S_IEXEC)
    error = failed(pepperpy(home, "templates", "edit", "tone", EDITOR=str(breaking)))
    assert "bad placeholder near '$5'" in error and str(home / "templates" / "tone.yaml") in error
    assert (home / "templates" / "tone.yaml").read_text() == "prompt: costs $5\n"  # kept, to fix with edit again


def test_a_template_schema_asks_for_structured_output(home):
    schema = json.dumps({"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]})
    ok(pepperpy(home, "templates", "save", "score", "--prompt", "Score: $input", "-p", "mock", "--schema", schema))
    answer = ok(pepperpy(home, "-t", "score", "-o", 'replies=["{\\"score\\": 4}"]', "this"))
    assert json.loads(answer) == {"score": 4}
    (call,) = recent(default_path(home), 0)
    assert call.options == {"response_model": "Score"}
    bad = pepperpy(home, "templates", "save", "x", "--prompt", "p", "--schema", "[1]")
    assert bad.returncode == 2 and "a JSON schema is an object" in bad.stderr
