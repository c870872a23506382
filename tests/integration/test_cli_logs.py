"""`pepperpy logs`, run as the real command in subprocesses after real `pepperpy chat` calls (PEPPERPY_HOME in a tmp dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.command import ok, run_pepperpy

pytestmark = pytest.mark.integration

PROMPTS = ["alpha one", "beta two", "gamma three", "delta four"]


pepperpy = run_pepperpy


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A home with four chat calls logged: the first and the last in one conversation."""
    home = tmp_path_factory.mktemp("logs") / "home"
    ok(pepperpy(home, "chat", "-p", "mock", PROMPTS[0]))
    for prompt in PROMPTS[1:3]:
        ok(pepperpy(home, "chat", "-p", "mock", prompt))
    ok(pepperpy(home, "chat", "-p", "mock", "-s", "be brief", "--json", "-c", PROMPTS[3]))
    return home


def shown_prompts(output: str) -> list[str]:
    return [line.removeprefix("prompt: ") for line in output.splitlines() if line.startswith("prompt: ")]


def test_no_log_yet_says_so(tmp_path):
    home = tmp_path / "empty-home"
    result = pepperpy(home, "logs")
    assert result.returncode == 0 and "No call log yet" in result.stdout and str(home / "logs.db") in result.stdout
    assert ok(pepperpy(home, "logs", "--json")) == "[]\n"
    assert ok(pepperpy(home, "logs", "--path")) == f"{home / 'logs.db'}\n"
    assert not (home / "logs.db").exists()


def test_the_last_three_calls_newest_last(home):
    output = ok(pepperpy(home, "logs"))
    assert shown_prompts(output) == PROMPTS[1:]
    assert "answer: gamma three" in output and "llm/mock" in output and "tokens 2+2" in output
    assert shown_prompts(ok(pepperpy(home, "logs", "-n", "1"))) == PROMPTS[3:]
    assert shown_prompts(ok(pepperpy(home, "logs", "-n", "0"))) == PROMPTS


def test_json_is_a_list_of_calls(home):
    calls = json.loads(ok(pepperpy(home, "logs", "--json", "-n", "2")))
    assert [c["answer"] for c in calls] == PROMPTS[2:]
    last = calls[-1]
    assert last["stream"] is False and last["provider"] == "llm/mock" and last["outcome"] == "complete"
    assert [m["content"] for m in last["messages"]] == ["be brief", PROMPTS[2], PROMPTS[2], PROMPTS[3]]


def test_query_and_conversation_filters(home):
    assert shown_prompts(ok(pepperpy(home, "logs", "-q", "beta"))) == ["beta two"]
    assert shown_prompts(ok(pepperpy(home, "logs", "-q", "GAMMA", "-n", "0"))) == ["gamma three", "delta four"]
    nothing = ok(pepperpy(home, "logs", "-q", "zebra"))
    assert "No logged call with text 'zebra'" in nothing
    cid = json.loads(ok(pepperpy(home, "logs", "--json", "-n", "1")))[0]["conversation_id"]
    assert shown_prompts(ok(pepperpy(home, "logs", "--cid", cid, "-n", "0"))) == ["gamma three", "delta four"]


def test_a_corrupt_log_is_one_clear_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "logs.db").write_bytes(b"not sqlite " * 500)
    result = pepperpy(home, "logs")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert str(home / "logs.db") in result.stderr and "not a usable SQLite database" in result.stderr
