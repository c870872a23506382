"""Sync scripts that never call pepper.close(): interpreter exit closes their providers, silently, in real processes.

At exit Python stops its thread pools before ``atexit`` runs, so a cleanup or a state save that uses
``asyncio.to_thread`` must run before that (pepperpy/_session.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

COUNTING_LLM = '''
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import persistent_plugin


@persistent_plugin
class CountingLLM(LLMProvider):
    """Answers with how many calls it has served, over every run."""

    calls: int = 0

    async def generate(self, messages, **options):
        self.calls += 1
        return GenerationResult(content=str(self.calls))
'''

ENDINGS = {
    "the end of the script": ("", 0),
    "sys.exit(3)": ("import sys; sys.exit(3)", 3),
    "an uncaught exception": ("raise RuntimeError('the script failed')", 1),
}


def run_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture
def counting_env(tmp_path, make_plugin) -> dict[str, str]:
    make_plugin("counting", files={"provider.py": COUNTING_LLM}, entry_point="provider:CountingLLM")
    return {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home"), "PEPPERPY_PLUGIN_PATH": str(tmp_path / "plugins")}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_persistent_plugin_used_by_a_sync_script_saves_its_state_at_exit(counting_env, tmp_path, ending):
    end, returncode = ENDINGS[ending]
    script = f"""
        from pepperpy import PepperPy

        pepper = PepperPy().with_llm("counting")
        print(pepper.chat.with_user("hi").generate_sync().content, flush=True)
        {end}
    """
    first, second = run_script(script, counting_env), run_script(script, counting_env)

    for done in (first, second):
        assert done.returncode == returncode
        if ending == "an uncaught exception":
            assert done.stderr.strip().endswith("RuntimeError: the script failed"), done.stderr
            assert done.stderr.count("Traceback") == 1, done.stderr
        else:
            assert done.stderr == ""
    assert [first.stdout.strip(), second.stdout.strip()] == ["1", "2"], "the second run continues the first"
    state = tmp_path / "home" / "state" / "llm" / "counting.json"
    assert json.loads(state.read_text()) == {"calls": 2}


def test_a_thread_still_calling_after_the_main_thread_ends_is_served_before_the_close(counting_env, tmp_path):
    """Python waits for non-daemon threads at exit; the sync loop closes only after them, so none hangs or fails."""
    done = run_script(
        """
        import threading
        from pepperpy import PepperPy

        pepper = PepperPy().with_llm("counting")
        print(pepper.chat.with_user("hi").generate_sync().content, flush=True)

        def work():
            for _ in range(3):
                print(pepper.chat.with_user("hi").generate_sync().content, flush=True)

        threading.Thread(target=work).start()
        """,
        counting_env,
    )
    assert (done.returncode, done.stderr, done.stdout.split()) == (0, "", ["1", "2", "3", "4"])
    assert json.loads((tmp_path / "home" / "state" / "llm" / "counting.json").read_text()) == {"calls": 4}


def test_the_local_store_and_model_close_silently_when_a_sync_script_ends(session_home, local_manager, tmp_path):
    """The issue's scripts: llm/local's generate_sync and the default rag/local store's add_sync/search_sync."""
    collection = f"sync-exit-{tmp_path.name}"
    env = {**os.environ, "PEPPERPY_HOME": str(session_home)}
    env.pop("PEPPERPY_PLUGIN_PATH", None)
    done = run_script(
        f"""
        from pepperpy import PepperPy

        pepper = PepperPy().with_llm("local", max_tokens=2, temperature=0).with_rag(collection={collection!r})
        print(pepper.chat.with_user("Say hi.").generate_sync().content.strip() != "", flush=True)
        pepper.rag.add_sync(["The release is signed off by Ana."])
        print(pepper.rag.search_sync("Who signs off the release?", k=1)[0].document.text, flush=True)
        """,
        env,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split("\n")[:2] == ["True", "The release is signed off by Ana."]
    assert (Path(session_home) / "rag" / f"{collection}.sqlite3").is_file(), "the default store's file"


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_thread_making_its_first_sync_call_after_the_main_thread_ends_is_served(counting_env, tmp_path, ending):
    """A normal thread still sleeping when the main thread ends (also by sys.exit or an uncaught exception) has
    made no call yet: the exit waits for it too, not only for the threads that called before."""
    end, returncode = ENDINGS[ending]
    done = run_script(
        f"""
        import threading
        from pepperpy import PepperPy

        pepper = PepperPy().with_llm("counting")
        print(pepper.chat.with_user("hi").generate_sync().content, flush=True)
        go = threading.Event()

        def work():
            go.wait()
            print(pepper.chat.with_user("hi").generate_sync().content, flush=True)

        threading.Thread(target=work).start()
        threading._register_atexit(go.set)  # runs when the main thread has ended, before Python joins threads
        {end}
        """,
        counting_env,
    )
    assert (done.returncode, done.stdout.split()) == (returncode, ["1", "2"]), done.stderr
    assert "sync loop is closed" not in done.stderr
    assert json.loads((tmp_path / "home" / "state" / "llm" / "counting.json").read_text()) == {"calls": 2}


def test_a_daemon_thread_calling_after_the_exit_closed_the_loop_is_told_so(counting_env):
    done = run_script(
        """
        import threading
        from pepperpy import PepperPy
        from pepperpy.errors import PepperPyError

        pepper = PepperPy().with_llm("counting")
        pepper.chat.with_user("hi").generate_sync()
        go, told = threading.Event(), threading.Event()

        def work():
            go.wait()
            try:
                pepper.chat.with_user("hi").generate_sync()
            except PepperPyError as exc:
                print(exc, flush=True)
            told.set()

        def at_exit():
            go.set()
            told.wait()

        threading.Thread(target=work, daemon=True).start()
        import atexit
        atexit.register(at_exit)  # after the sync loop closed
        """,
        counting_env,
    )
    assert done.returncode == 0, done.stderr
    assert "the program is exiting" in done.stdout and "a daemon thread" in done.stdout, done.stdout
