"""The plugin author's guide (docs/plugins.md) runs as written: its manifest, its provider and its direct-use snippet."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from pepperpy import Document, PepperPy
from pepperpy.embeddings import EmbeddingProvider
from pepperpy.errors import AuthenticationError, ConfigError, LLMError
from tests.conftest import manifest_for
from tests.servers.scripted import Reply

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def block_after(marker: str, language: str) -> str:
    start = GUIDE.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(GUIDE, start)
    assert match is not None, f"no {language} block after {marker!r}"
    return match.group(1)


async def test_the_plugin_guide_runs_as_written(tmp_path, manager):
    manifest = json.loads(block_after("## The folder, the manifest and the class", "json"))
    provider = block_after("## The folder, the manifest and the class", "python")
    usage = block_after("Then `PepperPy().with_llm(\"shout\"", "python")
    folder = tmp_path / "plugins" / "llm_shout"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(json.dumps(manifest))
    (folder / "provider.py").write_text(provider)

    from pepperpy.plugin_manager import PluginManager

    PluginManager._instance, saved = manager, PluginManager._instance  # the snippet uses the process-wide manager
    try:
        namespace: dict = {}
        exec(compile("async def main():\n" + textwrap.indent(usage, "    "), "docs/plugins.md", "exec"), namespace)
        printed = []
        namespace["print"] = lambda *args: printed.append(" ".join(map(str, args)))
        await namespace["main"]()
    finally:
        PluginManager._instance = saved
    assert printed == ["WHAT IS THE CAPITAL OF FRANCE?!"]

    from pepperpy import PepperPy

    async with PepperPy(plugin_manager=manager).with_llm("shout", model="tenor", suffix="!!") as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "HI!!"
        assert pepper.llm.name == "shout"


class Words(EmbeddingProvider):
    """Counts of a few words: texts about the same thing get close vectors. Registered as embeddings/words."""

    vocabulary = ("paris", "france", "python", "code", "sun", "star")

    async def embed(self, texts):
        return [[float(text.lower().count(word)) for word in self.vocabulary] for text in texts]


class FewerWords(Words):
    """Another model, of another size (4 dimensions): embeddings/fewer."""

    vocabulary = ("paris", "france", "python", "code")


async def test_the_vector_store_of_the_guide_works_and_refuses_other_embeddings(tmp_path, manager):
    folder = tmp_path / "plugins" / "rag_json"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(json.dumps(manifest_for("rag_json", "rag", provider_name="json",
                                                                entry_point="provider:JsonStore")))
    (folder / "provider.py").write_text(block_after("## Writing a vector store", "python"))
    manager.register_plugin("embeddings", "words", Words)
    manager.register_plugin("embeddings", "fewer", FewerWords)
    store = tmp_path / "notes.json"
    documents = [
        Document(id="paris", text="Paris is the capital of France.", metadata={"topic": "geography"}),
        Document(id="python", text="Python code is read more than written.", metadata={"topic": "code"}),
        Document(id="sun", text="The Sun is the star at the center.", metadata={"topic": "space"}),
    ]

    async with PepperPy(plugin_manager=manager).with_embeddings("words").with_rag("json", path=str(store)) as pepper:
        await pepper.rag.add(documents)
        assert [hit.document for hit in await pepper.rag.search("Where is France?", k=1)] == documents[:1]
        assert {hit.document.id for hit in await pepper.rag.search("any", filter={"topic": ["code", "space"]})} == {
            "python", "sun"}
        await pepper.rag.delete(["sun"])
    async with PepperPy(plugin_manager=manager).with_embeddings("words").with_rag("json", path=str(store)) as again:
        assert await again.rag.count() == 2, "reopened from its file"

    refused = (
        rf"^rag/json: the store {re.escape(str(store))} holds 6-dimension vectors from 'embeddings/words', but the "
        r"current embeddings give 4-dimension vectors from 'embeddings/fewer', and vectors of two models or sizes "
        r"cannot be compared; use the embeddings the store was built with"
    )
    async with PepperPy(plugin_manager=manager).with_embeddings("fewer").with_rag("json", path=str(store)) as other:
        with pytest.raises(ConfigError, match=refused):
            await other.rag.search("Where is France?")
        with pytest.raises(ConfigError, match=refused):
            await other.rag.add([Document(id="x", text="Python code")])
        assert await other.rag.count() == 2


async def test_the_parts_section_runs_as_written(manager):
    provider = block_after("## Messages with images, files and reasoning", "python")
    usage = block_after("Used with a part, and with one it does not take:", "python")
    from pepperpy.plugin_manager import PluginManager

    namespace: dict = {}
    exec(compile(provider, "docs/plugins.md", "exec"), namespace)
    printed: list[str] = []
    namespace["print"] = lambda *args: printed.append(" ".join(map(str, args)))
    PluginManager._instance, saved = manager, PluginManager._instance  # the snippet registers on the process-wide one
    try:
        exec(compile("async def main():\n" + textwrap.indent(usage, "    "), "docs/plugins.md", "exec"), namespace)
        await namespace["main"]()
    finally:
        PluginManager._instance = saved
    assert printed[0] == "What is here? I see: image/png of 32 bytes. | Looked at every image."
    assert "llm/seeing (model eye-1) cannot take the audio part (audio/wav, 16 bytes); it takes image/jpeg, image/png" in printed[1]


def test_the_docs_say_what_a_plugins_exception_carries_in_each_isolation():
    """In-process the original is the ``__cause__``; from a worker process it cannot be, and a note holds its
    traceback (tests/integration/test_isolation.py checks both)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for text in (" ".join(readme.split()), " ".join(GUIDE.split())):
        said = text[text.index("raised ValueError: boom"):][:500]
        assert "`__cause__` None" in said or "`__cause__` is None" in said, said
        assert "`__notes__`" in said, said


async def test_the_http_provider_of_the_guide_runs_against_a_local_server(tmp_path, manager, scripted, monkeypatch):
    folder = tmp_path / "plugins" / "llm_echohttp"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(block_after("## A provider for an HTTP service", "json"))
    (folder / "provider.py").write_text(block_after("## A provider for an HTTP service", "python"))
    monkeypatch.setenv("ECHO_API_KEY", "sk-echo-guide-test")
    monkeypatch.setenv("ECHO_BASE_URL", scripted.base_url)
    scripted.reset(
        Reply(json={"text": "hello", "usage": {"input": 3, "output": 1}}),
        Reply(events=['data: {"text": "hel"}', 'data: {"text": "lo"}', "data: [DONE]"]),
        Reply(status=401, json={"error": {"message": "the key was revoked"}}),
        Reply(events=['data: {"text": "hel"}']),  # the body ends without [DONE]: an incomplete answer
    )
    async with PepperPy(plugin_manager=manager).with_llm("echohttp") as pepper:
        result = await pepper.chat.with_user("hi").generate()
        pieces = [chunk.content async for chunk in pepper.chat.with_user("hi").stream()]
        with pytest.raises(AuthenticationError, match="the key was revoked") as refused:
            await pepper.chat.with_user("hi").generate()
        cut: list[str] = []
        with pytest.raises(LLMError, match=r"llm/echohttp: the stream ended before \[DONE\]"):
            async for chunk in pepper.chat.with_user("hi").stream():
                cut.append(chunk.content)
    assert cut == ["hel"]
    assert result.content == "hello" and result.usage.total_tokens == 4 and "".join(pieces) == "hello"
    first = scripted.requests[0]
    assert first.path == "/v1/generate" and first.headers["authorization"] == "Bearer sk-echo-guide-test"
    assert first.json() == {"model": "echo-1", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    assert scripted.requests[1].json()["stream"] is True
    assert "sk-echo-guide-test" not in str(refused.value) and "llm/echohttp" in str(refused.value)
