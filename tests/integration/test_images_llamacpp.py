"""Images through llama.cpp's real server: SmolLM2 with a tiny random-weights multimodal projector written by
tests/servers/tiny_mmproj.py (the gguf package). llama.cpp decodes and encodes every image, and each adds the
same number of prompt tokens, so the counts show each image really reached the model; its answers mean nothing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from pepperpy import Image, PepperPy
from pepperpy.errors import InvalidInputError, ProviderError
from tests.servers import tiny_mmproj

pytestmark = pytest.mark.integration


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
async def pepper(remote_manager, seeing_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "llamacpp", base_url=seeing_server, temperature=0, max_tokens=3
    ) as ready:
        yield ready


async def test_each_image_reaches_the_model(pepper, tmp_path: Path):
    (tmp_path / "red.png").write_bytes(png(40, 30, (255, 0, 0)))
    question = "What is in this picture?"
    text_only = await pepper.chat.with_user(question).generate()
    one = await pepper.chat.with_user(question, Image(tmp_path / "red.png")).generate()
    two = await pepper.chat.with_user(Image(png(64, 64, (0, 0, 255))), question, Image(tmp_path / "red.png")).generate()
    base = text_only.usage.prompt_tokens
    assert one.usage.prompt_tokens == base + tiny_mmproj.TOKENS_PER_IMAGE
    assert two.usage.prompt_tokens == base + 2 * tiny_mmproj.TOKENS_PER_IMAGE


async def test_a_conversation_sends_the_image_again_with_the_next_turn(pepper):
    from pepperpy.llm import ImagePart, Message

    conv = pepper.conversation()
    await conv.say("Describe it.", Image(png(8, 8, (0, 255, 0))))
    second = await conv.say("Again.")
    asked, answered, again = conv.messages[:3]
    assert isinstance(asked.content[1], ImagePart)
    plain = await pepper.chat.with_messages([Message(role="user", content=asked.text), answered, again]).generate()
    assert second.usage.prompt_tokens == plain.usage.prompt_tokens + tiny_mmproj.TOKENS_PER_IMAGE


async def test_broken_image_bytes_get_the_servers_own_error(pepper):
    with pytest.raises(ProviderError, match="Failed to load image"):
        await pepper.chat.with_user("What is this?", Image(b"\x89PNG\r\n\x1a\nbroken")).generate()


async def test_a_part_the_provider_does_not_take_fails_before_the_request(pepper):
    from pepperpy import Audio

    with pytest.raises(InvalidInputError, match="cannot take the audio part"):
        await pepper.chat.with_user("Hear this", Audio(b"fLaC" + bytes(8))).generate()
