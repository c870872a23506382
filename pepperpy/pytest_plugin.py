"""PepperPy's pytest plugin (entry point ``pytest11``): the ``pepperpy_recording`` fixture.

A test that asks for ``pepperpy_recording`` has every LLM call of every facade on the process's
PluginManager recorded to ``<test folder>/recordings/<test module>/<test name>.json`` the first
time and replayed afterwards, without the provider (``pepperpy.hooks.record``). The mode comes from
``--pepperpy-record=once|replay|new|rewrite``, else ``PEPPERPY_RECORD``, else ``once``;
``@pytest.mark.pepperpy_recording("name.json")`` names the file (relative to that ``recordings/``).

This module imports only pytest when pytest starts; PepperPy is imported when a test uses the fixture.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MODES = ("once", "replay", "new", "rewrite")  # pepperpy._recording.MODES (not imported: pytest's start stays light)
_RECORDINGS = pytest.StashKey[dict[Path, Any]]()  # the recording of each file in this run, shared by its tests


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("pepperpy")
    group.addoption(
        "--pepperpy-record", choices=MODES, default=None, dest="pepperpy_record",
        help="mode of the pepperpy_recording fixture: once (record when the file is missing, else replay; the "
        "default, or PEPPERPY_RECORD), replay (never call a provider), new (record the calls not recorded yet, "
        "keep the others), rewrite (call the providers and record every call afresh, dropping the old ones)",
    )


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "pepperpy_recording(path): the file of this test's pepperpy_recording fixture, relative to the "
        "recordings/ folder beside the test file",
    )


def recording_path(request: Any) -> Path:
    """``<test folder>/recordings/<module>/<test>.json``, or the marker's file in that folder."""
    folder = Path(request.path).parent / "recordings" / Path(request.path).stem
    marker = request.node.get_closest_marker("pepperpy_recording")
    if marker is not None and marker.args:
        return folder / marker.args[0]
    test = request.node.nodeid.split("::", 1)[-1]
    return folder / (re.sub(r"[^\w.=-]+", "_", test.replace("::", ".")).strip("_") + ".json")


def recording_mode(config: Any) -> str:
    mode = config.getoption("pepperpy_record") or os.environ.get("PEPPERPY_RECORD", "").strip() or "once"
    if mode not in MODES:
        raise pytest.UsageError(f"PEPPERPY_RECORD={mode!r:.40} is not a recording mode; use one of {', '.join(MODES)}")
    return mode


@pytest.fixture
def pepperpy_recording(request: Any) -> Iterator[Any]:
    """Record this test's LLM calls to its file the first time, replay them afterwards (``pepperpy.hooks.record``).

    Yields the ``Recording`` (``.path``, ``.mode``, ``.replayed``, ``.recorded``); it answers for every facade on
    the process's PluginManager that has no ``with_recording`` of its own, until the test ends. Tests that share a
    file share one ``Recording`` for the run: it records (or replays) their calls in the order they run, once."""
    from pepperpy.hooks import record
    from pepperpy.plugin_manager import get_plugin_manager

    path = recording_path(request)
    shared = request.config.stash.setdefault(_RECORDINGS, {})  # tests sharing a file (the marker) share its recording
    if path not in shared:
        shared[path] = record(path, recording_mode(request.config))  # type: ignore[arg-type]
    recording = shared[path]
    manager = get_plugin_manager()
    previous, manager.recording = manager.recording, recording
    try:
        yield recording
    finally:
        manager.recording = previous
