"""Plugin dependencies (pepperpy/_dependencies.py): declared, created, shared, opened first, closed last."""

from __future__ import annotations

import json

import pytest

from pepperpy import PepperPy
from pepperpy.core import PepperpyPlugin, auto_context
from pepperpy.errors import PluginDependencyError
from pepperpy.plugin_manager import PluginManager

EVENTS: list[str] = []


class Demo(PepperpyPlugin):
    label: str = ""

    async def initialize(self) -> None:
        EVENTS.append(f"open {self.plugin_id}")

    async def cleanup(self) -> None:
        EVENTS.append(f"close {self.plugin_id}")


class Alpha(Demo):
    pass


class Beta(Demo):
    pass


class Gamma(Demo):
    pass


@pytest.fixture(autouse=True)
def _clear_events():
    EVENTS.clear()


@pytest.fixture
def demo(manager: PluginManager) -> PluginManager:
    for category, cls in (("alpha", Alpha), ("beta", Beta), ("gamma", Gamma)):
        manager.register_plugin(category, "one", cls)
        manager.register_plugin(category, "two", cls)
    return manager


async def test_required_and_optional_are_created_with_the_dependent_and_opened_first(demo):
    demo.register_plugin_metadata("alpha", "one", {
        "dependencies": [
            {"type": "beta", "provider": "one"},
            {"type": "gamma", "provider": "nowhere", "dependency_type": "optional"},
        ]
    })
    alpha = demo.create_instance("alpha", "one")
    assert list(alpha.dependencies) == ["beta"], "the optional one that cannot be created is skipped"
    beta = alpha.dependencies["beta"]
    assert beta.plugin_id == "beta/one" and alpha.dependency("beta") is beta
    assert await demo.load_dependencies("alpha", "one") == {"beta": beta}
    with pytest.raises(TypeError):
        alpha.dependencies["beta"] = beta  # read-only
    async with auto_context(alpha):
        assert beta.initialized
    assert EVENTS == ["open beta/one", "open alpha/one", "close alpha/one", "close beta/one"]


async def test_a_bare_initialize_opens_the_dependencies_too(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "two"}]})
    alpha = demo.create_provider("alpha", "one")
    await alpha.initialize()
    assert alpha.dependencies["beta"].initialized
    await alpha.cleanup()
    assert EVENTS == ["open beta/two", "open alpha/one", "close alpha/one", "close beta/two"]


def test_a_missing_required_dependency_names_the_path(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "nowhere"}]})
    with pytest.raises(PluginDependencyError, match=r"^alpha/one -> beta/nowhere: .*no beta plugin named 'nowhere'"):
        demo.create_instance("alpha", "one")


def test_a_cycle_is_refused_with_its_path(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "one"}]})
    demo.register_plugin_metadata("beta", "one", {"dependencies": [{"type": "gamma", "provider": "one"}]})
    demo.register_plugin_metadata("gamma", "one", {"dependencies": [{"type": "alpha", "provider": "one"}]})
    with pytest.raises(PluginDependencyError, match=r"alpha/one -> beta/one -> gamma/one -> alpha/one; make one of them 'optional'"):
        demo.create_instance("alpha", "one")
    # as the error says: an optional edge breaks the circle (it is created at first use, not with the plugin)
    demo.register_plugin_metadata("gamma", "one", {"dependencies": [{"type": "alpha", "provider": "one", "dependency_type": "optional"}]})
    assert demo.create_instance("alpha", "one").dependencies["beta"].dependencies["gamma"].dependency("alpha") is None


def test_invalid_metadata_is_refused(demo):
    with pytest.raises(PluginDependencyError, match="dependency_type"):
        demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "dependency_type": "soon"}]})


async def test_a_runtime_dependency_is_created_at_first_use_and_closed_with_the_dependent(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "one", "dependency_type": "runtime"}]})
    alpha = demo.create_instance("alpha", "one")
    assert dict(alpha.dependencies) == {}
    async with alpha:
        assert EVENTS == ["open alpha/one"], "not created at initialize"
        beta = await alpha.load_dependency("beta")
        assert beta.initialized and alpha.dependencies["beta"] is beta
        assert await alpha.load_dependency("beta") is beta
    assert EVENTS == ["open alpha/one", "open beta/one", "close alpha/one", "close beta/one"]
    with pytest.raises(PluginDependencyError, match="no dependency 'gamma' is declared"):
        await alpha.load_dependency("gamma")


async def test_the_facade_shares_its_instance_and_a_different_provider_gets_its_own(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta"}, {"type": "gamma", "provider": "two"}]})
    pepper = PepperPy(plugin_manager=demo).with_plugin("beta", "one").with_plugin("gamma", "one").with_plugin("alpha", "one")
    alpha = pepper.provider("alpha")
    assert alpha.dependencies["beta"] is pepper.provider("beta"), "no provider named: the facade's"
    gamma = alpha.dependencies["gamma"]
    assert gamma is not pepper.provider("gamma") and gamma.plugin_id == "gamma/two"
    async with pepper:
        assert all(p.initialized for p in (alpha, gamma, pepper.provider("beta")))
    assert EVENTS.index("open beta/one") < EVENTS.index("open alpha/one")
    assert EVENTS.index("close alpha/one") < EVENTS.index("close beta/one")
    assert EVENTS.index("close alpha/one") < EVENTS.index("close gamma/two")


async def test_a_dependency_configured_after_the_dependent_is_shared_too(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "two"}]})
    pepper = PepperPy(plugin_manager=demo).with_plugin("alpha", "one")
    own = pepper.provider("alpha").dependencies["beta"]
    pepper.with_plugin("beta", "two")
    assert pepper.provider("alpha").dependencies["beta"] is pepper.provider("beta") is not own


async def test_enhances_only_when_the_facade_has_the_enhanced_provider(demo):
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "dependency_type": "enhances"}]})
    assert dict(demo.create_instance("alpha", "one").dependencies) == {}
    pepper = PepperPy(plugin_manager=demo).with_plugin("beta", "one").with_plugin("alpha", "one")
    assert pepper.provider("alpha").dependencies["beta"] is pepper.provider("beta")
    await pepper.ready("alpha")
    assert EVENTS == ["open beta/one", "open alpha/one"], "the enhanced provider opens first"
    await pepper.aclose()


def test_plugin_json_dependencies_and_the_rag_default(manager, make_plugin):
    from tests.unit.test_facade import FAKE_RAG

    make_plugin("counting", category="embeddings", entry_point="provider:CountingEmbeddings", files={"provider.py": FAKE_RAG})
    make_plugin("other", category="embeddings", entry_point="provider:CountingEmbeddings", files={"provider.py": FAKE_RAG})
    make_plugin(
        "list", category="rag", entry_point="provider:ListStore", files={"provider.py": FAKE_RAG},
        dependencies=[{"type": "embeddings", "provider": "counting", "config": {"events": None}}],
    )
    store = manager.create_provider("rag", "list", events=[])
    assert store.embeddings.plugin_id == "embeddings/counting"
    pepper = PepperPy(plugin_manager=manager).with_embeddings("other", events=[]).with_rag("list", events=[])
    assert pepper.provider("rag").embeddings.plugin_id == "embeddings/counting", "a different provider: its own"


def test_a_bad_dependencies_entry_in_plugin_json_breaks_the_folder(manager, make_plugin):
    make_plugin("bad", dependencies=[{"type": "embeddings", "kind": "x"}])
    manager.discover()
    assert any("dependencies.0.kind" in b.problem for b in manager.broken), json.dumps([b.problem for b in manager.broken])


async def test_an_optional_dependency_no_facade_provider_satisfies_is_created_at_first_use_only(demo):
    """Issue 19: an optional dependency the facade does not have cost a model load for nothing; now it waits."""
    demo.register_plugin_metadata("alpha", "one", {"dependencies": [{"type": "beta", "provider": "two", "dependency_type": "optional"}]})
    pepper = PepperPy(plugin_manager=demo).with_plugin("alpha", "one")
    alpha = pepper.provider("alpha")
    assert dict(alpha.dependencies) == {}, "not created with the plugin"
    async with pepper:
        assert EVENTS == ["open alpha/one"], "not opened with it either"
        beta = await alpha.load_dependency("beta")
        assert beta.plugin_id == "beta/two" and beta.initialized and alpha.dependencies["beta"] is beta
    assert EVENTS == ["open alpha/one", "open beta/two", "close alpha/one", "close beta/two"]

    shared = PepperPy(plugin_manager=demo).with_plugin("beta", "two").with_plugin("alpha", "one")
    assert shared.provider("alpha").dependencies["beta"] is shared.provider("beta"), "the facade's is used at once"
    later = PepperPy(plugin_manager=demo).with_plugin("alpha", "one").with_plugin("beta", "two")
    assert later.provider("alpha").dependencies["beta"] is later.provider("beta"), "also when configured after"
    explicit = demo.create_instance("alpha", "one")
    assert list((await demo.load_dependencies("alpha", "one")).keys()) == ["beta"], "load_dependencies creates it now"
    assert explicit.dependencies["beta"].plugin_id == "beta/two"
