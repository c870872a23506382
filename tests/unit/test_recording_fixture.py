"""The pepperpy_recording fixture, from PepperPy's pytest11 entry point, in a real pytest run of a user's test file
(pytester, in a subprocess: the process-wide PluginManager is the inner run's own)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

USER_TEST = '''
import os
import sys

import pytest


def test_pytest_start_imports_no_pepperpy_module_but_the_plugin():
    loaded = sorted(m for m in sys.modules if m.startswith("pepperpy."))
    assert loaded == ["pepperpy._lazy", "pepperpy._version", "pepperpy.pytest_plugin"], loaded


def test_weather(pepperpy_recording):
    from pepperpy import PepperPy

    pepper = PepperPy().with_llm("mock", replies=[os.environ["MOCK_REPLY"]])
    answer = pepper.chat.with_user(os.environ.get("QUESTION", "Weather?")).generate_sync()
    pepper.close()
    print(f"ANSWER={answer.content} MODE={pepperpy_recording.mode} REPLAYED={pepperpy_recording.replayed}")


@pytest.mark.pepperpy_recording("shared.json")
def test_named(pepperpy_recording):
    print(f"PATH={pepperpy_recording.path}")


@pytest.mark.pepperpy_recording("pair.json")
@pytest.mark.parametrize("city", ["Oslo", "Rome"])
def test_pair(pepperpy_recording, city):
    from pepperpy import PepperPy

    pepper = PepperPy().with_llm("mock", replies=[os.environ["MOCK_REPLY"]])
    pepper.chat.with_user(f"Weather in {city}?").generate_sync()
    pepper.close()

'''


@pytest.fixture
def user_suite(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PEPPERPY_RECORD", raising=False)
    pytester.makepyfile(test_user=USER_TEST)
    return pytester


def run(pytester, *args: str):
    """pytest on the user's file in a new process, without the plugins it does not need (they take seconds to start)."""
    quiet = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio", "-p", "no:anyio")
    return pytester.runpytest_subprocess("-s", *quiet, *args)


def test_the_fixture_records_once_then_replays_and_fails_clearly_on_a_new_request(user_suite, monkeypatch):
    cassette = user_suite.path / "recordings" / "test_user" / "test_weather.json"
    monkeypatch.setenv("MOCK_REPLY", "Sunny.")
    first = run(user_suite)  # the whole file: also the start's imports, and the marker's file
    first.assert_outcomes(passed=5)
    first.stdout.fnmatch_lines(["*ANSWER=Sunny. MODE=once REPLAYED=0*"])
    first.stdout.fnmatch_lines([f"*PATH={user_suite.path / 'recordings' / 'test_user' / 'shared.json'}*"])
    assert json.loads(cassette.read_text())["calls"][0]["result"]["content"] == "Sunny."

    monkeypatch.setenv("MOCK_REPLY", "Rain.")  # the provider would answer otherwise now: the file answers
    run(user_suite, "-k", "weather").stdout.fnmatch_lines(["*ANSWER=Sunny. MODE=once REPLAYED=1*"])

    monkeypatch.setenv("QUESTION", "Weather in Oslo?")
    missed = run(user_suite, "-k", "weather", "--pepperpy-record=replay")
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines([f"*RecordingError: recording {cassette} (mode 'replay') cannot answer this request*",
                                 "*user: 'Weather in Oslo?'*"])

    monkeypatch.setenv("PEPPERPY_RECORD", "new")  # the environment sets the mode when the option does not
    run(user_suite, "-k", "weather").stdout.fnmatch_lines(["*ANSWER=Rain. MODE=new REPLAYED=0*"])
    assert [c["result"]["content"] for c in json.loads(cassette.read_text())["calls"]] == ["Sunny.", "Rain."]


def test_rewrite_records_every_call_afresh_and_a_shared_file_once_per_run(user_suite, monkeypatch):
    cassette = user_suite.path / "recordings" / "test_user" / "test_weather.json"
    pair = user_suite.path / "recordings" / "test_user" / "pair.json"
    monkeypatch.setenv("MOCK_REPLY", "Sunny.")
    first = run(user_suite, "-k", "weather or pair")
    first.assert_outcomes(passed=3)  # a file shared by two tests: one recording for the run, both calls recorded
    assert [c["request"]["messages"][0]["content"] for c in json.loads(pair.read_text())["calls"]] == [
        "Weather in Oslo?", "Weather in Rome?"]
    run(user_suite, "-k", "pair", "--pepperpy-record=replay").assert_outcomes(passed=2)  # and both replayed
    monkeypatch.setenv("QUESTION", "Weather in Oslo?")  # the test asks otherwise now
    monkeypatch.setenv("MOCK_REPLY", "Fog.")
    again = run(user_suite, "-k", "weather or pair", "--pepperpy-record=rewrite")
    again.assert_outcomes(passed=3)
    again.stdout.fnmatch_lines(["*ANSWER=Fog. MODE=rewrite REPLAYED=0*"])
    calls = json.loads(cassette.read_text())["calls"]
    assert [(c["request"]["messages"][0]["content"], c["result"]["content"]) for c in calls] == [
        ("Weather in Oslo?", "Fog.")]  # the old "Weather?" call is gone
    shared = json.loads(pair.read_text())["calls"]  # both tests of the file, each recorded afresh once
    assert [(c["request"]["messages"][0]["content"], c["result"]["content"]) for c in shared] == [
        ("Weather in Oslo?", "Fog."), ("Weather in Rome?", "Fog.")]


def test_a_bad_mode_is_a_usage_error(user_suite, monkeypatch):
    monkeypatch.setenv("PEPPERPY_RECORD", "twice")
    bad = run(user_suite, "-k", "named")
    bad.assert_outcomes(errors=1)
    bad.stdout.fnmatch_lines(["*PEPPERPY_RECORD='twice' is not a recording mode; use one of once, replay, new, "
                              "rewrite*"])
    run(user_suite, "--pepperpy-record=twice").stderr.fnmatch_lines(["*argument --pepperpy-record: invalid choice*"])


def test_the_plugin_s_modes_are_the_recording_s():
    from pepperpy import _recording, pytest_plugin

    assert pytest_plugin.MODES == _recording.MODES
