"""@persistent_plugin across real processes: state continues, concurrent writers never corrupt the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = ROOT / "examples" / "plugins" / "counter"

WIDE_PLUGIN = '''
from pepperpy.plugins import PepperpyPlugin, persistent_plugin


@persistent_plugin
class Wide(PepperpyPlugin):
    total: int = 0
    a0: int = 0
    a1: int = 0
    a2: int = 0
    a3: int = 0
'''

MANIFEST = {
    "version": "0.1.0", "category": "demo", "author": "tests", "pepperpy_compatibility": ">=0.1.0",
}


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A fresh PEPPERPY_HOME, and a plugin path holding the example's counter plugin and a wider one."""
    plugins = tmp_path / "plugins"
    (plugins / "counter").mkdir(parents=True)
    for file in ("plugin.json", "provider.py"):
        (plugins / "counter" / file).write_text((EXAMPLE_PLUGIN / file).read_text())
    (plugins / "wide").mkdir()
    (plugins / "wide" / "plugin.json").write_text(
        json.dumps({**MANIFEST, "name": "wide", "provider_name": "wide", "entry_point": "provider:Wide"})
    )
    (plugins / "wide" / "provider.py").write_text(WIDE_PLUGIN)
    return {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home"), "PEPPERPY_PLUGIN_PATH": str(plugins)}


def python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr
    return done


COUNT = """
import asyncio, sys
from pepperpy import PepperPy

async def main():
    for _ in range(int(sys.argv[1])):
        async with PepperPy().with_plugin("demo", "counter") as pepper:
            await pepper.provider("demo").increment()
            print(pepper.provider("demo").counter)

asyncio.run(main())
"""


def test_two_blocks_in_one_process_and_one_in_another_read_3(env, tmp_path):
    assert python(COUNT, env, "2").stdout.split() == ["1", "2"]
    assert python(COUNT, env, "1").stdout.split() == ["3"]
    state = tmp_path / "home" / "state" / "demo" / "counter.json"
    assert json.loads(state.read_text()) == {"counter": 3}


def test_a_corrupt_file_is_reported_on_stderr_set_aside_and_counting_restarts(env, tmp_path):
    state = tmp_path / "home" / "state" / "demo" / "counter.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"counter": 7')  # cut short
    done = python(COUNT, env, "1")
    assert done.stdout.split() == ["1"]
    assert "RuntimeWarning" in done.stderr and "is unusable: it is not valid JSON" in done.stderr
    [aside] = state.parent.glob("counter.json.corrupt-*")
    assert aside.read_text() == '{"counter": 7'


WRITER = """
import asyncio, sys, time
from pathlib import Path
from pepperpy import PepperPy

index, rounds, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)

async def main():
    for _ in range(rounds):
        async with PepperPy().with_plugin("demo", "wide") as pepper:
            wide = pepper.provider("demo")
            setattr(wide, f"a{index}", getattr(wide, f"a{index}") + 1)
            wide.total += 1

asyncio.run(main())
"""

READER = """
import json, sys, time
from pathlib import Path

state, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads = 0
while not stop.exists():
    try:
        data = json.loads(state.read_text())
    except FileNotFoundError:
        continue
    assert isinstance(data, dict), data
    reads += 1
print(reads)
"""


def test_concurrent_processes_never_corrupt_the_file_and_merge_by_attribute(env, tmp_path):
    rounds, writers = 15, 4
    state = tmp_path / "home" / "state" / "demo" / "wide.json"
    go, stop = tmp_path / "go", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(state), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(i), str(rounds), str(go)], stderr=subprocess.PIPE, text=True, env=env,
        )
        for i in range(writers)
    ]
    time.sleep(0.5)
    go.touch()  # all writers start at once
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    stop.touch()
    reads, reader_errors = reader.communicate(timeout=60)
    assert reader.returncode == 0, reader_errors  # every read saw a whole JSON object
    assert int(reads) > 0

    data = json.loads(state.read_text())
    # Each process alone changes its own attribute: merged under the lock, none is lost.
    assert [data[f"a{i}"] for i in range(writers)] == [rounds] * writers
    # All of them change `total`: for one attribute the last process to close wins (documented).
    assert rounds <= data["total"] <= rounds * writers
    leftovers = sorted(p.name for p in state.parent.iterdir())
    assert leftovers == ["wide.json", "wide.json.lock"]  # no corrupt-* file, no temporary file


def test_the_state_persistence_example_continues_where_the_last_run_stopped(tmp_path):
    env = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "state_persistence.py")], capture_output=True, text=True,
            timeout=300, env=env, cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first, second = run(), run()
    state = tmp_path / "home" / "state" / "demo" / "counter.json"
    assert first.splitlines() == ["counter: 1", "counter: 2", f"saved in {state}"]
    assert second.splitlines()[:2] == ["counter: 3", "counter: 4"]
    assert json.loads(state.read_text()) == {"counter": 4}
