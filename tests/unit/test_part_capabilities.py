"""A provider says which parts it takes; a part it cannot take fails before any request, naming the provider,
the model, the part and what it takes. A provider that takes no media gets plain-text messages, as before parts."""

from __future__ import annotations

from typing import ClassVar

import pytest

from pepperpy import Audio, File, Image, PepperPy
from pepperpy.errors import ConfigError, InvalidInputError
from pepperpy.llm import GenerationResult, LLMProvider, Message, ReasoningPart, TextPart
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "


class Counting(LLMProvider):
    model: str = "base-1"
    sent: ClassVar[list[list[Message]]] = []

    async def generate(self, messages, **options):
        Counting.sent.append(messages)
        return GenerationResult(content="ok")


class Seeing(Counting):
    """Takes PNG and JPEG images, and PDFs on its 'docs' models."""

    media_types = frozenset({"image/png", "image/jpeg"})

    def media_types_for(self, model):
        return self.media_types | {"application/pdf"} if model and model.startswith("docs") else self.media_types


@pytest.fixture
def manager(tmp_path):
    Counting.sent.clear()
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")
    manager.register_plugin("llm", "textonly", Counting)
    manager.register_plugin("llm", "seeing", Seeing)
    return manager


async def test_a_part_the_provider_cannot_take_fails_before_any_request(manager):
    async with PepperPy(plugin_manager=manager).with_llm("seeing", model="vision-2") as pepper:
        with pytest.raises(InvalidInputError) as caught:
            await pepper.chat.with_user("Listen", Audio(WAV)).generate()
        assert Counting.sent == []
        assert str(caught.value) == (
            "llm/seeing (model vision-2) cannot take the audio part (audio/wav, 16 bytes); it takes image/jpeg, image/png. "
            "Use a provider or model that takes it, or leave the part out"
        )
        await pepper.chat.with_user("Look", Image(PNG)).generate()
        assert Counting.sent[-1][0].content[1].media_type == "image/png"


async def test_the_per_model_hook_decides_with_the_calls_model(manager):
    async with PepperPy(plugin_manager=manager).with_llm("seeing", model="vision-2") as pepper:
        chat = pepper.chat.with_user("Summarize", File(b"%PDF-1.4", name="c.pdf"))
        with pytest.raises(InvalidInputError, match=r"\(model vision-2\) cannot take the document part"):
            await chat.generate()
        await chat.with_options(model="docs-1").generate()
    assert len(Counting.sent) == 1


async def test_a_provider_without_media_types_refuses_media_and_gets_plain_text(manager):
    async with PepperPy(plugin_manager=manager).with_llm("textonly") as pepper:
        with pytest.raises(InvalidInputError, match="llm/textonly \\(model base-1\\) cannot take the image part .* it takes text only"):
            await pepper.chat.with_user("Look", Image(PNG)).generate()
        history = [
            Message(role="system", content=[TextPart(text="Be brief.", cache=True)]),
            Message(role="user", content="2+2?"),
            Message(role="assistant", content=[ReasoningPart(text="two and two", signature="s"), "4"]),
            Message(role="user", content=["And ", "3+3?"]),
        ]
        await pepper.chat.with_messages(history).generate()
    assert [m.content for m in Counting.sent[-1]] == ["Be brief.", "2+2?", "4", "And 3+3?"]


async def test_the_reasoning_option_is_refused_by_a_provider_that_does_not_offer_it(manager):
    async with PepperPy(plugin_manager=manager).with_llm("textonly") as pepper:
        with pytest.raises(ConfigError, match="does not take the call option 'reasoning'"):
            await pepper.chat.with_user("Hi").with_options(reasoning="high").generate()
    async with PepperPy(plugin_manager=manager).with_llm("mock") as pepper:
        with pytest.raises(ConfigError, match="call option 'reasoning' must be 'low', 'medium', 'high'"):
            await pepper.chat.with_user("Hi").with_options(reasoning="max").generate()


TEXT_ONLY = """
from pepperpy.llm import GenerationResult, LLMProvider


class TextOnly(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content="text only")
"""


async def test_a_fallback_chain_moves_on_to_a_member_that_takes_the_part(tmp_path, make_plugin):
    make_plugin("textonly", files={"provider.py": TEXT_ONLY}, entry_point="provider:TextOnly")
    manager = PluginManager(search_paths=[tmp_path / "plugins", builtin_plugins_dir()], home=tmp_path / "home")
    async with PepperPy(plugin_manager=manager).with_llm(["textonly", "mock"]) as pepper:
        result = await pepper.chat.with_user("Look", Image(PNG)).generate()
        assert result.metadata["fallback"]["served_by"] == "mock"
        assert "cannot take the image part" in str(result.metadata["fallback"])
        assert (await pepper.chat.with_user("Just text").generate()).content == "text only"


class Projectable(Counting):
    """Text only unless given a projector: says how to make it take images when it refuses one."""

    media_hint = "pass mmproj_path= (a multimodal projector) to give it images"
    projector: str | None = None

    def media_types_for(self, model):
        return frozenset({"image/png"}) if self.projector else frozenset()


async def test_a_text_only_provider_says_how_to_make_it_take_media(manager):
    """llm/local is text only until given ``mmproj_path=``: its refusal says so (``media_hint``), and the hint is
    not said when it takes some media but not this part (a PDF to a projector-loaded model)."""
    manager.register_plugin("llm", "projectable", Projectable)
    async with PepperPy(plugin_manager=manager).with_llm("projectable") as pepper:
        with pytest.raises(InvalidInputError, match=r"it takes text only; pass mmproj_path= \(a multimodal projector\) "
                                                    r"to give it images\. Use a provider"):
            await pepper.chat.with_user("Look", Image(PNG)).generate()
    async with PepperPy(plugin_manager=manager).with_llm("projectable", projector="p.gguf") as pepper:
        with pytest.raises(InvalidInputError) as caught:
            await pepper.chat.with_user("Read", File(b"%PDF-1.4", name="c.pdf")).generate()
        assert "mmproj_path" not in str(caught.value) and "it takes image/png." in str(caught.value)
