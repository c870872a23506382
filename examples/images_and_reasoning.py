"""Images, files and reasoning, offline: an image question on llm/local with a multimodal projector, a PDF that
llm/local refuses (and llm/mock takes), and a reasoning answer shown apart as ``result.reasoning``.

Run it from the repository: ``python examples/images_and_reasoning.py`` (the first run installs llm/local).

What it shows is the API, not a vision model's quality. No vision model ships in a Python package, so the
projector here is the tiny one with random weights that the tests write (tests/servers/tiny_mmproj.py, with the
``gguf`` package): llama.cpp really decodes and encodes the picture, and the prompt grows by the projector's
tokens, but SmolLM2 cannot see, so its answer about the picture means nothing. With a real vision model, pass its
GGUF as ``model_path=`` and the ``mmproj-*.gguf`` file published beside it as ``mmproj_path=``.

llm/local takes no PDF (a PDF is not text to llama.cpp): the call fails before any request, with the provider,
the part and what it takes in the error. The hosted providers take PDFs (README, "Images, files and
reasoning"); here llm/mock stands in for one and shows what reached it.

The reasoning comes from SmolLM2 run with a Qwen3-style chat template (tests/servers/qwen3_style.jinja) whose
prompt opens ``<think>``: llama.cpp gives what the model writes before ``</think>`` as the reasoning and the rest
as the answer. SmolLM2 was never trained to close ``</think>``, so all it writes is reasoning and its answer is
empty; with a real reasoning model (a Qwen3 GGUF as ``model_path=``, its own template) both come, apart.
"""

import asyncio
import struct
import sys
import tempfile
import zlib
from pathlib import Path

from pepperpy import File, Image, PepperPy
from pepperpy.errors import UnsupportedPartError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the projector writer the tests use lives in tests/servers

from tests.servers import tiny_mmproj  # noqa: E402

SMOLLM2_WIDTH = 576  # SmolLM2-135M's embedding length: the projector's output must match it
A_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def red_png(width: int = 40, height: int = 30) -> bytes:
    """A small red PNG, written without an imaging library."""
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pepperpy-example-"))
    projector = folder / "tiny-mmproj.gguf"
    tiny_mmproj.write(str(projector), SMOLLM2_WIDTH)
    (folder / "cat.png").write_bytes(red_png())
    (folder / "contract.pdf").write_bytes(A_PDF)

    async with PepperPy().with_llm("local", mmproj_path=projector, temperature=0, max_tokens=20) as pepper:
        question = "What is in this picture?"
        without = await pepper.chat.with_user(question).generate()
        result = await pepper.chat.with_user(question, Image(folder / "cat.png")).generate()
        print(f"Image question: {result.content!r}")
        print(f"  prompt tokens: {without.usage.prompt_tokens} without the image, {result.usage.prompt_tokens} with it")

        try:
            await pepper.chat.with_user(File(folder / "contract.pdf"), "Summarize it in three lines.").generate()
        except UnsupportedPartError as refused:
            print(f"PDF on llm/local: refused before any request: {refused}")

    async with PepperPy().with_llm("mock", replies=["A one-page contract."]) as pepper:
        summary = await pepper.chat.with_user(File(folder / "contract.pdf"), "Summarize it in three lines.").generate()
        sent = pepper.llm.calls[-1][-1].content[0]
        print(f"PDF on llm/mock: {summary.content!r}; it received a {sent.media_type} of {len(sent.read())} bytes")

    template = (ROOT / "tests" / "servers" / "qwen3_style.jinja").read_text()
    async with PepperPy().with_llm("local", chat_template=template, temperature=0, seed=4, max_tokens=40) as pepper:
        result = await pepper.chat.with_user("How many r in strawberry?").generate()
        print(f"Reasoning: {result.reasoning.strip()!r}")
        print(f"Answer:    {result.content.strip()!r}" + ("" if result.content.strip() else " (SmolLM2 never closes </think>)"))


if __name__ == "__main__":
    asyncio.run(main())
