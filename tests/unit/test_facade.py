"""The PepperPy builder, the chat builder, the lifecycle and the sync path."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from pepperpy import Document, PepperPy
from pepperpy._paths import builtin_plugins_dir
from pepperpy.errors import ConfigError, LLMError, PepperPyError, PluginError, PluginNotFoundError
from pepperpy.llm import Message, MessageRole

RECORDING_PROVIDER = '''
from typing import Any

from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.storage import StorageProvider


class Recording:
    events: Any = None
    label: str = ""
    fail_setup: bool = False

    async def initialize(self):
        self.events.append(f"setup {self.label}")
        await __import__("asyncio").sleep(0)
        if self.fail_setup:
            raise RuntimeError(f"setup of {self.label} failed")

    async def cleanup(self):
        self.events.append(f"teardown {self.label}")


class RecordingLLM(Recording, LLMProvider):
    async def generate(self, messages, **options):
        self.events.append(("generate", [(m.role.value, m.content) for m in messages], options))
        return GenerationResult(content="ok")


class RecordingStorage(Recording, StorageProvider):
    async def get(self, key):
        return None

    async def set(self, key, value):
        pass

    async def delete(self, key):
        pass

    async def list(self, prefix=""):
        return []
'''


@pytest.fixture
def pepper(manager, make_plugin):
    make_plugin("recording", entry_point="provider:RecordingLLM", files={"provider.py": RECORDING_PROVIDER})
    make_plugin(
        "recording", category="storage", entry_point="provider:RecordingStorage",
        root=manager.search_paths()[0].parent / "storage_plugins", files={"provider.py": RECORDING_PROVIDER},
    )
    manager.register_plugin_path(manager.search_paths()[0].parent / "storage_plugins")
    return PepperPy(plugin_manager=manager)


def test_with_llm_chains_and_names_the_provider(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["x"])
    assert isinstance(pepper, PepperPy)
    assert pepper._llm_provider.name == "mock"
    assert not pepper._llm_provider.initialized, "with_llm opens nothing"


def test_unknown_provider_fails_at_with_llm(builtin_manager):
    with pytest.raises(PluginNotFoundError, match="did you mean llm/mock"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mokc")


def test_unknown_option_fails_at_with_llm_with_suggestion(builtin_manager):
    with pytest.raises(ConfigError, match=r"unknown option 'replys' for llm/mock; did you mean 'replies'\?"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mock", replys=["x"])


def test_default_llm_provider_comes_from_config(builtin_manager, monkeypatch):
    pepper = PepperPy(config={"llm": "mock"}, plugin_manager=builtin_manager).with_llm()
    assert pepper.llm.name == "mock"
    monkeypatch.setenv("PEPPERPY_LLM", "mock")
    assert PepperPy(plugin_manager=builtin_manager).with_llm().llm.name == "mock"


def test_chat_without_llm_says_what_to_do(builtin_manager):
    with pytest.raises(ConfigError, match=r"no llm provider is configured; call .*with_llm"):
        PepperPy(plugin_manager=builtin_manager).chat


async def test_chat_builder_assembles_messages_and_options(pepper):
    events = []
    pepper.with_llm("recording", events=events)
    await (
        pepper.chat.with_system("sys")
        .with_user("u1")
        .with_assistant("a1")
        .with_messages([{"role": "user", "content": "u2"}, Message(role=MessageRole.TOOL, content="t")])
        .with_options(temperature=0.2)
        .with_options(max_tokens=5)
        .generate()
    )
    call = events[-1]
    assert call == (
        "generate",
        [("system", "sys"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("tool", "t")],
        {"temperature": 0.2, "max_tokens": 5},
    )
    await pepper.aclose()


async def test_each_chat_is_a_fresh_builder(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    first = pepper.chat.with_user("one")
    second = pepper.chat.with_user("two")
    assert [m.content for m in first.messages] == ["one"]
    assert [m.content for m in second.messages] == ["two"]


async def test_async_with_initializes_all_and_cleans_up_in_reverse(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm").with_storage("recording", events=events, label="storage")
    async with pepper as ready:
        assert ready.llm.initialized and ready.provider("storage").initialized
        assert sorted(events) == ["setup llm", "setup storage"]
    assert events[2:] == ["teardown storage", "teardown llm"]
    assert not pepper.llm.initialized


async def test_cleanup_runs_when_the_body_raises(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm").with_storage("recording", events=events, label="storage")
    with pytest.raises(ValueError, match="body failed"):
        async with pepper:
            raise ValueError("body failed")
    assert events[2:] == ["teardown storage", "teardown llm"]


async def test_failed_initialization_cleans_up_the_others(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    pepper.with_storage("recording", events=events, label="storage", fail_setup=True)
    with pytest.raises(PluginError, match="storage/recording: initialize\\(\\) raised RuntimeError: setup of storage failed"):
        async with pepper:
            pytest.fail("the body must not run")
    assert "teardown llm" in events
    assert "teardown storage" not in events


async def test_lazy_use_outside_async_with_and_aclose_twice(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    await pepper.chat.with_user("hi").generate()
    await pepper.chat.with_user("again").generate()
    assert events.count("setup llm") == 1
    await pepper.aclose()
    await pepper.aclose()
    assert events.count("teardown llm") == 1


async def test_concurrent_first_use_initializes_once(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    await asyncio.gather(*(pepper.chat.with_user(str(i)).generate() for i in range(10)))
    assert events.count("setup llm") == 1
    await pepper.aclose()


def test_generate_sync_in_a_plain_script(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["sync answer"])
    assert pepper.chat.with_user("hi").generate_sync().content == "sync answer"
    assert pepper.llm.initialized, "the sync path keeps the provider open between calls"
    pepper.close()
    assert not pepper.llm.initialized


async def test_generate_sync_refuses_inside_a_running_loop(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    with pytest.raises(PepperPyError, match="inside async code, use `await`"):
        pepper.chat.with_user("hi").generate_sync()


async def test_mock_replies_cycle_exhaust_echo_and_stream(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["a", "b"]) as pepper:
        answers = [(await pepper.chat.with_user("q").generate()).content for _ in range(3)]
        assert answers == ["a", "b", "a"]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["only"], cycle=False) as pepper:
        await pepper.chat.with_user("q").generate()
        with pytest.raises(LLMError, match="all 1 scripted replies were used"):
            await pepper.chat.with_user("q").generate()
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        result = await pepper.chat.with_system("s").with_user("echo this back").generate()
        assert result.content == "echo this back"
        assert result.usage.completion_tokens == 3
        chunks = [chunk async for chunk in pepper.chat.with_user("stream these words").stream()]
        assert "".join(c.content for c in chunks) == "stream these words"
        assert len(chunks) == 4 and chunks[-1].finish_reason == "stop"
        assert [m[-1].content for m in pepper.llm.calls] == ["echo this back", "stream these words"]


# -- contract v2: builders, conversations, lifecycle ----------------------------------------

def test_the_migration_plans_own_tests(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("openai", api_key="fake_key")
    assert pepper._llm_provider is not None
    assert pepper._llm_provider.name == "openai"
    chat = pepper.chat.with_system("You are helpful.").with_user("Tell me about Python.")
    assert len(chat._messages) == 2 and isinstance(chat._messages, list)


async def test_a_stored_builder_does_not_accumulate(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        brief = pepper.chat.with_system("Be brief.")
        await brief.with_user("Q1").generate()
        await brief.with_user("Q2").generate()
        sent = [[(m.role.value, m.content) for m in call] for call in pepper.llm.calls]
    assert sent == [[("system", "Be brief."), ("user", "Q1")], [("system", "Be brief."), ("user", "Q2")]]
    assert [m.content for m in brief._messages] == ["Be brief."]


def test_builder_options_are_not_shared_between_branches(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    base = pepper.chat.with_options(temperature=0.1)
    hot = base.with_options(temperature=0.9)
    assert base.options == {"temperature": 0.1} and hot.options == {"temperature": 0.9}


@pytest.mark.parametrize("call", ["with_user", "with_system", "with_assistant"])
def test_builder_input_of_the_wrong_type_is_an_input_error(builtin_manager, call):
    from pepperpy.errors import InvalidInputError

    chat = PepperPy(plugin_manager=builtin_manager).with_llm("mock").chat
    with pytest.raises(InvalidInputError, match=rf"{call}\(\) takes the message text as a str, got int"):
        getattr(chat, call)(123)
    with pytest.raises(InvalidInputError, match=r"with_messages\(\): .*not a message"):
        chat.with_messages([{"role": "user", "content": 5}, "x"])


async def test_a_conversation_keeps_its_history(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["Paris.", "About 2.1 million."]) as pepper:
        conv = pepper.conversation(system="Be brief.")
        assert (await conv.say("Capital of France?")).content == "Paris."
        assert (await conv.say("Population?")).content == "About 2.1 million."
        assert [(m.role.value, m.content) for m in pepper.llm.calls[-1]] == [
            ("system", "Be brief."), ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "Population?"),
        ]
        streamed = "".join([chunk.content async for chunk in conv.stream("And the river?")])
        assert conv.messages[-1].content == streamed == "Paris."
        assert len(conv.messages) == 7


def test_sync_helpers_keep_providers_open_between_calls(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["one", "two"])
    conv = pepper.conversation()
    assert conv.say_sync("a").content == "one"
    provider = pepper.llm
    assert conv.say_sync("b").content == "two"
    assert pepper.llm is provider and provider.initialized
    assert len(conv.messages) == 4
    pepper.close()
    assert not provider.initialized
    pepper.close()  # twice is fine
    assert pepper.chat.with_user("again").generate_sync().content == "one", "usable again after close()"
    pepper.close()


def test_a_garbage_collected_pepperpy_closes_its_sync_loop(builtin_manager):
    import gc

    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    pepper.chat.with_user("x").generate_sync()
    provider = pepper.llm
    del pepper
    gc.collect()
    assert not provider.initialized


async def test_several_failures_to_open_are_raised_together(pepper):
    from pepperpy.errors import PepperPyErrorGroup

    events = []
    pepper.with_llm("recording", events=events, label="llm", fail_setup=True)
    pepper.with_storage("recording", events=events, label="storage", fail_setup=True)
    with pytest.raises(PepperPyErrorGroup) as raised:
        async with pepper:
            pytest.fail("the body must not run")
    assert isinstance(raised.value, PepperPyError) and isinstance(raised.value, ExceptionGroup)
    assert sorted(str(e.__cause__) for e in raised.value.exceptions) == ["setup of llm failed", "setup of storage failed"]
    assert "setup of llm failed" in str(raised.value) and "setup of storage failed" in str(raised.value)


async def test_a_pepperpy_can_be_entered_again(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    for _ in range(2):
        async with pepper:
            await pepper.chat.with_user("x").generate()
    assert [e for e in events if isinstance(e, str)] == ["setup llm", "teardown llm"] * 2


FAKE_RAG = '''
from typing import Any

from pepperpy.embeddings import EmbeddingProvider
from pepperpy.rag import Document, RAGProvider, SearchResult


class CountingEmbeddings(EmbeddingProvider):
    events: Any = None

    async def initialize(self):
        self.events.append("open embeddings")

    async def cleanup(self):
        self.events.append("close embeddings")

    async def embed(self, texts):
        return [[float(len(t)), 1.0] for t in texts]


class ListStore(RAGProvider):
    events: Any = None

    async def initialize(self):
        self.events.append("open store")
        self.docs = {}

    async def cleanup(self):
        self.events.append("close store")

    async def add(self, documents, vectors=None):
        vectors = vectors or await self.embed_texts([d.text for d in documents])
        self.docs.update({d.id: (d, v) for d, v in zip(documents, vectors)})

    async def search(self, query, k=5, filter=None):
        vector = await self.query_vector(query)
        ranked = sorted(self.docs.values(), key=lambda dv: abs(dv[1][0] - vector[0]))
        return [SearchResult(document=d, score=1.0) for d, _ in ranked[:k]]

    async def delete(self, ids):
        for i in ids:
            self.docs.pop(i, None)

    async def count(self):
        return len(self.docs)
'''


@pytest.fixture
def rag_pepper(manager, make_plugin):
    make_plugin("counting", category="embeddings", entry_point="provider:CountingEmbeddings", files={"provider.py": FAKE_RAG})
    make_plugin("list", category="rag", entry_point="provider:ListStore", files={"provider.py": FAKE_RAG})
    events = []
    pepper = PepperPy(plugin_manager=manager).with_embeddings("counting", events=events).with_rag("list", events=events)
    return pepper, events


async def test_the_lazy_path_closes_the_embeddings_a_store_opened(rag_pepper):
    pepper, events = rag_pepper
    await pepper.rag.add(["a short text", "a much longer piece of text"])
    assert events == ["open embeddings", "open store"], "the store's dependency opens first"
    await pepper.aclose()
    assert events[2:] == ["close store", "close embeddings"]
    assert not pepper.provider("embeddings").initialized


def test_rag_sync_helpers_and_ask_sync(rag_pepper, make_plugin, manager):
    pepper, events = rag_pepper
    make_plugin("echo")
    pepper.with_llm("echo", prefix="answer: ")
    pepper.rag.add_sync(["tiny", "a rather long passage"])
    assert [hit.document.text for hit in pepper.rag.search_sync("tiny", k=1)] == ["tiny"]
    answer = pepper.ask_sync("tiny?", k=1)
    assert answer.content == "answer: tiny?" and [s.document.text for s in answer.sources] == ["tiny"]
    pepper.close()
    assert events[-2:] == ["close store", "close embeddings"]


async def test_search_modes_on_a_store_without_keyword_search(rag_pepper, make_plugin):
    """keyword_search gives None (the base class's): keyword mode says so, hybrid ranks by vectors alone."""
    from pepperpy.errors import ConfigError, InvalidInputError

    pepper, _ = rag_pepper
    await pepper.rag.add(["tiny", "a rather long passage"])
    vector = await pepper.rag.search("tiny", k=2, mode="vector")
    assert await pepper.rag.search("tiny", k=2) == vector, "hybrid, the default, falls back to the vectors"
    with pytest.raises(ConfigError, match=r"rag/list has no keyword search; use mode='vector'"):
        await pepper.rag.search("tiny", mode="keyword")
    with pytest.raises(InvalidInputError, match=r"pepper.rag.search: unknown search mode 'fuzzy'"):
        await pepper.rag.search("tiny", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"mode='hybrid' needs a non-empty text query"):
        await pepper.rag.search("  ")
    make_plugin("echo")
    pepper.with_llm("echo", prefix="answer: ")
    with pytest.raises(InvalidInputError, match=r"pepper.ask: unknown search mode 'both'"):
        await pepper.ask("tiny?", mode="both")  # type: ignore[arg-type]
    answer = await pepper.ask("tiny?", k=1, mode="vector")
    assert [s.document.text for s in answer.sources] == ["tiny"]
    await pepper.aclose()


def test_interpreter_exit_closes_what_the_sync_path_opened(tmp_path, make_plugin):
    import subprocess
    import sys
    import textwrap

    marker = tmp_path / "closed.txt"
    source = f'''
from pepperpy.llm import GenerationResult, LLMProvider


class Marking(LLMProvider):
    async def cleanup(self):
        with open({str(marker)!r}, "w") as handle:
            handle.write("closed")

    async def generate(self, messages, **options):
        return GenerationResult(content="ok")
'''
    make_plugin("marking", entry_point="provider:Marking", files={"provider.py": source})
    script = textwrap.dedent(
        """
        import sys
        from pepperpy import PepperPy
        from pepperpy.plugin_manager import PluginManager
        pepper = PepperPy(plugin_manager=PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])).with_llm("marking")
        print(pepper.chat.with_user("hi").generate_sync().content)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", script, str(tmp_path / "plugins"), str(tmp_path / "home")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert marker.read_text() == "closed", "the provider was closed at interpreter exit"
    assert done.stderr == ""


def test_pepper_rag_names_its_provider_like_pepper_llm(rag_pepper):
    pepper, _ = rag_pepper
    assert (pepper.rag.plugin_id, pepper.rag.name) == ("rag/list", "list")
    assert pepper.rag.provider is pepper.provider("rag")
    assert repr(pepper.rag) == "Retrieval(rag/list)"


async def test_rag_add_takes_one_item_alone(rag_pepper, tmp_path):
    pepper, _ = rag_pepper
    for loader in ("loader_text", "loader_markdown"):  # files are read by the built-in loader plugins
        shutil.copytree(builtin_plugins_dir() / loader, tmp_path / "plugins" / loader)
    (tmp_path / "docs" / "more").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("A file.")
    (tmp_path / "docs" / "more" / "b.txt").write_text("Another file.")
    assert [d.text for d in await pepper.rag.add("A whole sentence.")] == ["A whole sentence."]
    assert [d.text for d in await pepper.rag.add(tmp_path / "docs" / "a.md")] == ["A file."]
    assert [d.id for d in await pepper.rag.add(Document(id="mine", text="Mine."))] == ["mine"]
    assert [d.text for d in await pepper.rag.add(tmp_path / "docs")] == ["A file.", "Another file."]
    assert await pepper.rag.count() == 4, "the file added twice is updated, not duplicated"


def test_rag_add_sync_takes_one_item_and_refuses_others_before_storing(rag_pepper, tmp_path):
    from pepperpy.errors import InvalidInputError

    pepper, _ = rag_pepper
    assert [d.text for d in pepper.rag.add_sync("One sentence.")] == ["One sentence."]
    with pytest.raises(InvalidInputError, match="cannot add int; pass a Document, a text"):
        pepper.rag.add_sync(["fine", 42])
    assert pepper.rag.search_sync("fine", k=5)[0].document.text == "One sentence.", "nothing of the bad list stored"
    assert pepper.run_sync(pepper.rag.count()) == 1
    pepper.close()


@pytest.fixture
def ask_pepper(rag_pepper, make_plugin):
    pepper, events = rag_pepper
    make_plugin("recording", entry_point="provider:RecordingLLM", files={"provider.py": RECORDING_PROVIDER})
    return pepper.with_llm("recording", events=events, label="llm"), events


async def test_ask_on_an_empty_store_says_so_without_asking_the_model(ask_pepper):
    from pepperpy.retrieval import NO_SOURCES

    pepper, events = ask_pepper
    answer = await pepper.ask("Who signs off releases?")
    assert (answer.content, answer.sources, answer.result) == (NO_SOURCES, [], None)
    assert str(answer) == "No passage in the store matches the question, so it was not answered."
    assert not [e for e in events if e[0] == "generate"], "the model was not asked"
    await pepper.aclose()


async def test_ask_answers_without_sources_only_when_the_user_opts_in(ask_pepper):
    pepper, events = ask_pepper
    answer = await pepper.ask("Who signs off releases?", answer_without_sources=True, temperature=0)
    assert answer.content == "ok" and answer.sources == [] and answer.result is not None
    (generate,) = [e for e in events if e[0] == "generate"]
    (system, question), options = generate[1], generate[2]
    assert system[0] == "system" and "general knowledge" in system[1] and "passages below" not in system[1]
    assert question == ("user", "Who signs off releases?") and options == {"temperature": 0}
    await pepper.aclose()


def test_ask_sync_with_sources_still_answers_from_them(ask_pepper):
    pepper, events = ask_pepper
    pepper.rag.add_sync("Ana signs off releases.")
    answer = pepper.ask_sync("Who signs off releases?", k=1)
    assert answer.content == "ok" and [s.document.text for s in answer.sources] == ["Ana signs off releases."]
    (generate,) = [e for e in events if e[0] == "generate"]
    assert "[1] Ana signs off releases." in generate[1][0][1]
    pepper.close()


def test_ask_without_an_llm_is_a_config_error_even_on_an_empty_store(rag_pepper):
    pepper, _ = rag_pepper
    with pytest.raises(ConfigError, match="no llm provider is configured"):
        pepper.ask_sync("anything?")
    pepper.close()
