"""@persistent_plugin: state restored at open, saved at close, explicit config > saved state > default."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pepperpy import PepperPy
from pepperpy.core import State
from pepperpy.errors import PluginError, PluginLoadError
from pepperpy.plugins import PepperpyPlugin, persistent_plugin

# The plugin-system document's example, as written there, plus the import it leaves out.
DESIGN_DOCUMENT_PLUGIN = '''
from pepperpy.plugins import PepperpyPlugin, persistent_plugin

@persistent_plugin
class MyPlugin(PepperpyPlugin):
    # State will be automatically persisted
    counter: int = 0

    async def increment(self):
        self.counter += 1
        # Counter will be saved between restarts
'''


@pytest.fixture
def counter_plugin(manager, make_plugin):
    make_plugin("counter", category="demo", entry_point="provider:MyPlugin", files={"provider.py": DESIGN_DOCUMENT_PLUGIN})
    return manager


def state_of(manager, plugin_id: str = "demo/counter") -> dict[str, Any]:
    return json.loads((manager.home / "state" / f"{plugin_id}.json").read_text())


def register(manager, cls: type, name: str = "thing") -> None:
    manager.register_plugin("demo", name, cls)


async def test_the_design_documents_example_continues_across_instances(counter_plugin):
    for expected in (1, 2, 3):
        async with PepperPy(plugin_manager=counter_plugin).with_plugin("demo", "counter") as pepper:
            await pepper.provider("demo").increment()
            assert pepper.provider("demo").counter == expected
    assert state_of(counter_plugin) == {"counter": 3}
    assert sorted(p.name for p in (counter_plugin.home / "state" / "demo").iterdir()) == [
        "counter.json", "counter.json.lock",
    ]  # no temporary file left behind


async def test_explicit_config_wins_over_saved_state_which_wins_over_the_default(counter_plugin):
    fresh = counter_plugin.create_provider("demo", "counter")
    async with fresh:
        assert fresh.counter == 0  # no file yet: the default
        fresh.counter = 5
    restored = counter_plugin.create_provider("demo", "counter")
    async with restored:
        assert restored.counter == 5  # saved state over the default
    explicit = counter_plugin.create_provider("demo", "counter", counter=10)
    async with explicit:
        assert explicit.counter == 10  # explicit config over saved state
        await explicit.increment()
    assert state_of(counter_plugin) == {"counter": 11}  # the instance's state at close is saved
    async with explicit:  # reopened: an explicit option keeps the instance's own value
        assert explicit.counter == 11


async def test_restore_precedes_initialize_and_save_follows_cleanup(manager):
    seen = []

    @persistent_plugin
    class Lifecycle(PepperpyPlugin):
        opens: int = 0

        async def initialize(self):
            seen.append(self.opens)
            self.opens += 1

        async def cleanup(self):
            self.opens *= 10

    register(manager, Lifecycle)
    for _ in range(2):
        async with manager.create_provider("demo", "thing"):
            pass
    assert seen == [0, 10]
    assert state_of(manager, "demo/thing") == {"opens": 110}


async def test_named_attributes_only_and_both_decorator_forms(manager):
    @persistent_plugin("a", "history")
    class Some(PepperpyPlugin):
        a: int = 0
        b: int = 0
        history: list[str]  # a bare annotation: persisted when named and set

    @persistent_plugin()
    class Every(PepperpyPlugin):
        a: int = 0
        b: int = 0

    register(manager, Some, "some")
    register(manager, Every, "every")
    for name in ("some", "every"):
        async with manager.create_provider("demo", name) as provider:
            provider.a, provider.b = 1, 2
    assert state_of(manager, "demo/some") == {"a": 1}  # history was never set: nothing to save
    assert state_of(manager, "demo/every") == {"a": 1, "b": 2}
    async with manager.create_provider("demo", "some") as provider:
        assert (provider.a, provider.b) == (1, 0)
        provider.history = ["x"]
    async with manager.create_provider("demo", "some") as provider:
        assert provider.history == ["x"]


async def test_keys_and_secrets_are_never_written(manager, make_plugin, monkeypatch):
    make_plugin(
        "keyed", category="demo", entry_point="provider:Keyed", env={"token": "KEYED_TOKEN"},
        files={"provider.py": '''
from pydantic import SecretStr
from pepperpy.plugins import PepperpyPlugin, persistent_plugin

@persistent_plugin
class Keyed(PepperpyPlugin):
    token: str | None = None
    api_key: SecretStr | None = None
    anything: object = None
    uses: int = 0
'''},
    )
    monkeypatch.setenv("KEYED_TOKEN", "from-the-environment")
    async with manager.create_provider("demo", "keyed", api_key="sk-secret") as provider:
        provider.uses += 1
        provider.anything = SecretStr("another-secret")  # a secret in an untyped option: skipped too
    text = (manager.home / "state" / "demo" / "keyed.json").read_text()
    assert json.loads(text) == {"uses": 1}
    assert "secret" not in text and "environment" not in text


def test_the_decorator_refuses_secrets_unknown_names_and_non_plugins():
    with pytest.raises(PluginLoadError, match="'api_key', a secret"):
        @persistent_plugin("api_key")
        class Secret(PepperpyPlugin):
            api_key: SecretStr | None = None

    with pytest.raises(PluginLoadError, match="'countr', which is not an annotated attribute"):
        @persistent_plugin("countr")
        class Typo(PepperpyPlugin):
            counter: int = 0

    with pytest.raises(PluginLoadError, match="PepperpyPlugin subclasses"):
        persistent_plugin(dict)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_a_corrupt_file_is_reported_set_aside_and_the_plugin_starts_fresh(counter_plugin, content):
    folder = counter_plugin.home / "state" / "demo"
    folder.mkdir(parents=True)
    (folder / "counter.json").write_bytes(content)
    provider = counter_plugin.create_provider("demo", "counter")
    with pytest.warns(RuntimeWarning, match=r"demo/counter: the state file .*counter\.json is unusable"):
        await provider.initialize()
    assert provider.counter == 0
    await provider.increment()
    await provider.cleanup()
    assert state_of(counter_plugin) == {"counter": 1}
    [aside] = folder.glob("counter.json.corrupt-*")
    assert aside.read_bytes() == content


async def test_an_unreadable_state_file_is_set_aside(counter_plugin):
    folder = counter_plugin.home / "state" / "demo" / "counter.json"
    folder.mkdir(parents=True)  # a folder where the file should be: reading fails
    provider = counter_plugin.create_provider("demo", "counter")
    with pytest.warns(RuntimeWarning, match="cannot read it"):
        async with provider:
            await provider.increment()
    assert state_of(counter_plugin) == {"counter": 1}
    assert list(folder.parent.glob("counter.json.corrupt-*"))


async def test_an_invalid_saved_value_is_reported_and_the_default_kept(counter_plugin):
    folder = counter_plugin.home / "state" / "demo"
    folder.mkdir(parents=True)
    (folder / "counter.json").write_text('{"counter": "many", "removed_attribute": 1}')
    provider = counter_plugin.create_provider("demo", "counter")
    with pytest.warns(RuntimeWarning, match="ignoring the saved value of 'counter'"):
        await provider.initialize()
    assert provider.counter == 0
    await provider.cleanup()
    assert state_of(counter_plugin) == {"counter": 0, "removed_attribute": 1}  # other keys are kept


@pytest.mark.parametrize("bad", [object(), float("nan"), {"k": {1, 2}}])
async def test_a_value_that_is_not_json_is_an_error_at_close_naming_the_attribute(manager, bad):
    @persistent_plugin
    class Holder(PepperpyPlugin):
        count: int = 0
        thing: Any = None

    register(manager, Holder)
    async with manager.create_provider("demo", "thing") as provider:
        provider.count = 1
    before = (manager.home / "state" / "demo" / "thing.json").read_bytes()
    provider = manager.create_provider("demo", "thing")
    await provider.initialize()
    provider.count, provider.thing = 2, bad
    with pytest.raises(PluginError, match=r"demo/thing: cannot save attribute 'thing' of Holder.*not JSON-serializable"):
        await provider.cleanup()
    assert provider.lifecycle_state is State.UNOPENED  # closed anyway
    assert (manager.home / "state" / "demo" / "thing.json").read_bytes() == before  # left as it was
    assert not [p for p in (manager.home / "state" / "demo").iterdir() if p.name.startswith(".")]


async def test_typed_options_round_trip_through_their_json_form(manager, tmp_path):
    @persistent_plugin
    class Typed(PepperpyPlugin):
        where: Path | None = None
        tags: set[str] = set()
        scores: dict[str, float] = {}

    register(manager, Typed)
    async with manager.create_provider("demo", "thing") as provider:
        provider.where, provider.tags, provider.scores = tmp_path, {"b", "a"}, {"x": 0.5}
    async with manager.create_provider("demo", "thing") as provider:
        assert (provider.where, provider.tags, provider.scores) == (tmp_path, {"a", "b"}, {"x": 0.5})


async def test_instances_open_at_once_merge_the_attributes_each_changed(manager):
    @persistent_plugin
    class Two(PepperpyPlugin):
        a: int = 0
        b: int = 0
        shared: str = ""

    register(manager, Two)
    first, second = manager.create_provider("demo", "thing"), manager.create_provider("demo", "thing")
    await asyncio.gather(first.initialize(), second.initialize())
    first.a, first.shared = 1, "first"
    second.b, second.shared = 2, "second"
    await first.cleanup()
    await second.cleanup()
    assert state_of(manager, "demo/thing") == {"a": 1, "b": 2, "shared": "second"}  # same attribute: last closer wins


async def test_many_instances_in_one_process_never_lose_their_own_attribute(manager):
    @persistent_plugin
    class Wide(PepperpyPlugin):
        slots: dict[str, int] = {}
        a0: int = 0
        a1: int = 0
        a2: int = 0
        a3: int = 0
        a4: int = 0

    register(manager, Wide)

    async def bump(index: int) -> None:
        for _ in range(5):
            async with manager.create_provider("demo", "thing") as provider:
                setattr(provider, f"a{index}", getattr(provider, f"a{index}") + 1)

    await asyncio.gather(*(bump(i) for i in range(5)))
    assert state_of(manager, "demo/thing") == {"slots": {}, **{f"a{i}": 5 for i in range(5)}}


async def test_a_plugin_without_the_mark_writes_nothing(manager):
    class Plain(PepperpyPlugin):
        counter: int = 0

    register(manager, Plain)
    async with manager.create_provider("demo", "thing") as provider:
        provider.counter = 3
    assert not (manager.home / "state").exists()


async def test_a_cleanup_failure_still_saves_and_closes(manager):
    @persistent_plugin
    class Failing(PepperpyPlugin):
        counter: int = 0

        async def cleanup(self):
            raise RuntimeError("cleanup broke")

    register(manager, Failing)
    provider = manager.create_provider("demo", "thing")
    await provider.initialize()
    provider.counter = 4
    with pytest.raises(PluginError, match=r"cleanup\(\) raised RuntimeError: cleanup broke"):
        await provider.cleanup()
    assert state_of(manager, "demo/thing") == {"counter": 4}
    assert provider.lifecycle_state is State.UNOPENED


def test_the_export_is_lazy():
    code = (
        "import sys, pepperpy.plugins as p; assert 'pepperpy._state' not in sys.modules; "
        "assert p.persistent_plugin.__module__ == 'pepperpy._state'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_manifest_config_presets_count_as_explicit(manager, make_plugin):
    make_plugin(
        "preset", category="demo", entry_point="provider:MyPlugin", config={"counter": 100},
        files={"provider.py": DESIGN_DOCUMENT_PLUGIN},
    )
    for _ in range(2):
        async with manager.create_provider("demo", "preset") as provider:
            assert provider.counter == 100  # the preset reaches __init__ as config: it wins over the saved 101
            await provider.increment()
    assert state_of(manager, "demo/preset") == {"counter": 101}


TALLY = """
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import persistent_plugin


@persistent_plugin
class TallyProvider(LLMProvider):
    calls: int = 0
    prefix: str = "tally"

    async def generate(self, messages, **options):
        self.calls += 1
        return GenerationResult(content=f"{self.prefix} #{self.calls}")
"""


@pytest.mark.parametrize("how", ["options.json", "explicit"])
async def test_config_is_not_state_it_never_outlives_its_config(manager, make_plugin, how):
    """``pepperpy options set tally prefix yo``, a run, ``options remove``: the prefix is the default again."""
    from pepperpy._user_options import remove_options, save_option

    make_plugin("tally", files={"provider.py": TALLY}, entry_point="provider:TallyProvider")
    config = {}
    if how == "options.json":
        save_option(manager.home, "llm/tally", "prefix", "yo")
    else:
        config = {"prefix": "yo"}
    async with PepperPy(plugin_manager=manager).with_llm("tally", **config) as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "yo #1"
    assert state_of(manager, "llm/tally") == {"calls": 1}  # what the plugin changed, not its config
    if how == "options.json":
        remove_options(manager.home, "llm/tally", "prefix")
    async with PepperPy(plugin_manager=manager).with_llm("tally") as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "tally #2"
    async with PepperPy(plugin_manager=manager).with_llm("tally", prefix="yo") as pepper:
        pepper.llm.prefix = "changed by the plugin"  # a configured option the plugin changes is state
    async with PepperPy(plugin_manager=manager).with_llm("tally") as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "changed by the plugin #3"
