"""Opens and closes llm/local many times while calls are being cancelled; run in a child process.

A close that hangs inside llama.cpp holds the GIL, so no thread of the hanging process
could fail the test: the test runs this script with a hard time limit and reads one JSON
line from it. Under load: the script runs on one CPU shared with busy processes, so
llama.cpp's threads wait for their turn, as on a busy CI machine.
If the rounds have not ended after LIMIT_S seconds, the script prints every thread's
stack and exits with status 1 (faulthandler's watchdog needs no GIL).
Usage: python close_local_models.py PEPPERPY_HOME ROUNDS BUSY_PROCESSES LIMIT_S
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import subprocess
import sys
from contextlib import aclosing, suppress
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

STORY = "Write a very long story about a dragon."


class Ticker:
    """A task that counts how often the event loop lets it run."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1


async def stream_until_cancelled(pepper: PepperPy, started: asyncio.Event) -> None:
    async with aclosing(pepper.chat.with_user(STORY).stream()) as chunks:
        async for chunk in chunks:
            if chunk.content:
                started.set()


async def one_round(manager: PluginManager, ticker: Ticker, close_at_once: bool) -> int:
    """Open a model, start calls, cancel them (one racing the close), close; the ticks seen during the close."""
    pepper = PepperPy(plugin_manager=manager).with_llm("local", temperature=0, seed=7, max_tokens=100, n_threads=1)
    await pepper.__aenter__()
    calls: list[asyncio.Task] = []
    if not close_at_once:  # else closed right after opening, as a test that only checks the open state does
        started = asyncio.Event()
        calls = [
            asyncio.create_task(stream_until_cancelled(pepper, started)),
            asyncio.create_task(stream_until_cancelled(pepper, asyncio.Event())),  # queued behind the first
            asyncio.create_task(pepper.chat.with_user(STORY).generate()),
        ]
        await started.wait()
        calls[1].cancel()  # cancelled while waiting inside llama.cpp for the busy slot
        calls[2].cancel()
        await asyncio.sleep(0)
    before = ticker.ticks
    closing = asyncio.create_task(pepper.__aexit__(None, None, None))
    await asyncio.sleep(0)
    if calls:
        calls[0].cancel()  # the streaming call is cancelled while the close is under way
    await closing
    ticks = ticker.ticks - before
    for call in calls:
        with suppress(BaseException):
            await call
    return ticks


async def main(home: Path, rounds: int) -> None:
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=home)
    ticker = Ticker()
    ticks = [await one_round(manager, ticker, close_at_once=i % 2 == 0) for i in range(rounds)]
    async with PepperPy(plugin_manager=manager).with_llm("local", temperature=0, seed=7, max_tokens=20) as pepper:
        answer = (await pepper.chat.with_system("Be brief.").with_user("What is the capital of France?").generate()).content
    ticker.task.cancel()
    print(json.dumps({"ticks_during_close": ticks, "answer": answer}), flush=True)


def busy_on_one_cpu(count: int) -> list[subprocess.Popen]:
    """Move this process to one CPU and start ``count`` busy processes there (they inherit the affinity)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    spin = f"import os\nwhile os.getppid() == {os.getpid()}: pass"  # ends with this process, however it ends
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


if __name__ == "__main__":
    faulthandler.dump_traceback_later(float(sys.argv[4]), exit=True)
    busy = busy_on_one_cpu(int(sys.argv[3]))
    try:
        asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
    finally:
        for process in busy:
            process.kill()
            process.wait()
