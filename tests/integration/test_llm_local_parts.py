"""llm/local with parts: images through a multimodal projector loaded beside SmolLM2 (``mmproj_path=``: the tiny
random-weights projector of tests/servers/tiny_mmproj.py; llama.cpp really decodes and encodes each image, so
each adds the projector's fixed number of prompt tokens), and reasoning from a chat template llama.cpp splits
(``chat_template=``: the Qwen3-style template of tests/servers/qwen3_style.jinja, whose prompt opens <think>)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pepperpy import Image, PepperPy
from pepperpy.errors import ConfigError, InvalidInputError, LLMError
from tests.integration.conftest import SERVERS
from tests.integration.test_images_llamacpp import png
from tests.servers import tiny_mmproj

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeing(local_manager, projector) -> AsyncIterator[PepperPy]:
    async with PepperPy(plugin_manager=local_manager).with_llm(
        "local", mmproj_path=projector, temperature=0, max_tokens=3, n_ctx=1024
    ) as ready:
        yield ready


async def test_each_image_adds_the_projectors_prompt_tokens(seeing, tmp_path):
    (tmp_path / "red.png").write_bytes(png(40, 30, (255, 0, 0)))
    question = "What is in this picture?"
    text_only = await seeing.chat.with_user(question).generate()
    one = await seeing.chat.with_user(question, Image(tmp_path / "red.png")).generate()
    chunks = [c async for c in seeing.chat.with_user(Image(png(64, 64, (0, 0, 255))), question, Image(tmp_path / "red.png")).stream()]
    (two,) = [c.usage for c in chunks if c.usage]
    assert one.usage.prompt_tokens == text_only.usage.prompt_tokens + tiny_mmproj.TOKENS_PER_IMAGE
    assert two.prompt_tokens == text_only.usage.prompt_tokens + 2 * tiny_mmproj.TOKENS_PER_IMAGE


async def test_a_broken_image_is_llama_cpps_own_clear_error_and_the_next_call_works(seeing):
    with pytest.raises(LLMError, match=r"llm/local: llama\.cpp .*image") as caught:
        await seeing.chat.with_user("What is this?", Image(b"\x89PNG\r\n\x1a\nbroken")).generate()
    assert "base64" not in str(caught.value) and len(str(caught.value)) < 400, "the bytes are never in the error"
    assert (await seeing.chat.with_user("Hi").generate()).usage.completion_tokens > 0


@pytest.mark.parametrize("call", ["generate", "stream", "say"])
async def test_a_refused_part_fails_before_the_model_loads(local_manager, call):
    """Outside ``async with`` the first call opens the provider (loads the model): a part it cannot take is
    refused before that, and the model stays unloaded."""
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", max_tokens=3)
    chat = pepper.chat.with_user("What is this?", Image(png(8, 8, (0, 0, 0))))
    attempt = {
        "generate": chat.generate,
        "stream": lambda: anext(chat.stream()),
        "say": lambda: pepper.conversation().say("What is this?", Image(png(8, 8, (0, 0, 0)))),
    }[call]
    with pytest.raises(InvalidInputError, match=r"llm/local.*cannot take the image part.*text only"):
        await attempt()
    assert not pepper.llm.initialized and getattr(pepper.llm, "_server", None) is None, "the model was loaded"
    await pepper.aclose()


async def test_without_a_projector_an_image_fails_before_any_request(local_manager):
    async with PepperPy(plugin_manager=local_manager).with_llm("local", max_tokens=3) as pepper:
        with pytest.raises(InvalidInputError, match=r"llm/local.*cannot take the image part.*text only; pass mmproj_path="):
            await pepper.chat.with_user("What is this?", Image(png(8, 8, (0, 0, 0)))).generate()
        assert pepper.llm.media_types_for(None) == frozenset()


def test_a_projector_that_is_not_gguf_names_the_setting(local_manager, tmp_path):
    (tmp_path / "mmproj.bin").write_bytes(b"not a projector")
    with pytest.raises(ConfigError, match=r"llm/local: mmproj_path .*mmproj\.bin.* is not a GGUF file"):
        PepperPy(plugin_manager=local_manager).with_llm("local", mmproj_path=tmp_path / "mmproj.bin").llm


async def test_a_template_that_opens_think_gives_the_reasoning_apart(local_manager):
    template = (SERVERS / "qwen3_style.jinja").read_text()
    async with PepperPy(plugin_manager=local_manager).with_llm(
        "local", chat_template=template, temperature=0, seed=3, max_tokens=12
    ) as pepper:
        result = await pepper.chat.with_user("What is 2+2?").generate()
        chunks = [c async for c in pepper.chat.with_user("What is 2+2?").stream()]
    assert result.reasoning.strip() and "<think>" not in result.reasoning + result.content
    assert "".join(c.reasoning for c in chunks) == result.reasoning and "".join(c.content for c in chunks) == result.content
    assert result.messages[-1].reasoning == result.reasoning
