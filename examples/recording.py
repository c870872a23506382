"""Record a real model's answers once, then replay them without the model: how to test code that calls LLMs.

The first run of a recording calls llm/local (SmolLM2 on the CPU) and writes every call, with its streamed
chunks, to a JSON file; later runs answer from the file: the same answers and chunks, and the model is never
loaded. In a pytest suite the `pepperpy_recording` fixture does this for each test (README: "Testing code that
calls models").
"""

import asyncio
import tempfile
import time
from pathlib import Path

from pepperpy import PepperPy


async def colours(path: Path, mode: str) -> tuple[str, list[str], float, bool]:
    """An answer and a stream through a recording: (answer, chunks, seconds taken, whether the model was loaded)."""
    pepper = PepperPy().with_llm("local", temperature=0, max_tokens=32).with_recording(path, mode=mode)
    chat = pepper.chat.with_system("Be brief.").with_user("Name three colours.")
    started = time.perf_counter()
    answer = await chat.generate()
    chunks = [chunk.content async for chunk in chat.stream()]
    took, loaded = time.perf_counter() - started, pepper.llm.initialized
    await pepper.aclose()
    return answer.content, chunks, took, loaded


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "colours.json"
        answer, chunks, took, loaded = await colours(path, "once")  # no file yet: the model answers, calls are recorded
        print(f"recorded: {answer!r} and {len(chunks)} chunks in {took:.2f} s (model loaded: {loaded})")
        again, replayed, took, loaded = await colours(path, "replay")  # from the file alone
        print(f"replayed: {again!r} and {len(replayed)} chunks in {took * 1000:.1f} ms (model loaded: {loaded})")
        print(f"same answer and chunks: {(again, replayed) == (answer, chunks)}")
        print("the file starts:", *path.read_text().splitlines()[:12], sep="\n  ")


if __name__ == "__main__":
    asyncio.run(main())
