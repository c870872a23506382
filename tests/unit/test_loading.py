"""Loading entry points by file path under a synthetic package per plugin."""

from __future__ import annotations

import sys

from pepperpy.llm import LLMProvider
from tests.conftest import SIMPLE_PROVIDER

RELATIVE_PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider

from .helpers import shout
from .sub.deep import PREFIX


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=PREFIX + shout(messages[-1].content))
'''


async def test_relative_imports_inside_the_folder_work(manager, make_plugin):
    from pepperpy.llm import Message

    make_plugin(
        "relative",
        files={
            "provider.py": RELATIVE_PROVIDER,
            "helpers.py": "def shout(text):\n    return text.upper()\n",
            "sub/__init__.py": "",
            "sub/deep.py": "PREFIX = '> '\n",
        },
    )
    async with manager.create_provider("llm", "relative") as provider:
        result = await provider.generate([Message(role="user", content="hi")])
    assert result.content == "> HI"


async def test_two_plugins_with_same_module_names_coexist(manager, make_plugin):
    for name in ("alpha", "beta"):
        make_plugin(
            name,
            files={
                "provider.py": RELATIVE_PROVIDER.replace("from .sub.deep import PREFIX", "from .helpers import PREFIX"),
                "helpers.py": f"PREFIX = '{name}:'\ndef shout(text):\n    return text\n",
            },
        )
    alpha = manager.load_class("llm", "alpha")
    beta = manager.load_class("llm", "beta")
    assert alpha is not beta
    assert alpha.__module__ != beta.__module__
    assert sys.modules[alpha.__module__].__file__.endswith("alpha/provider.py")
    from pepperpy.llm import Message

    message = [Message(role="user", content="x")]
    async with alpha() as first, beta() as second:
        assert (await first.generate(message)).content == "alpha:x"
        assert (await second.generate(message)).content == "beta:x"


def test_loaded_class_is_cached(manager, make_plugin):
    make_plugin("cached")
    assert manager.load_class("llm", "cached") is manager.load_class("llm", "cached")


def test_register_plugin_in_code(manager):
    class InCode(LLMProvider):
        async def generate(self, messages, **options):
            raise NotImplementedError

    manager.register_plugin("llm", "incode", InCode)
    assert isinstance(manager.create_provider("llm", "incode"), InCode)



def test_two_managers_loading_the_same_folder_get_their_own_modules(tmp_path, make_plugin):
    from pepperpy.plugin_manager import PluginManager

    make_plugin("shared", files={"provider.py": SIMPLE_PROVIDER + "\nLOADS = []\n"})
    first, second = (PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home") for _ in range(2))
    first_class, second_class = first.load_class("llm", "shared"), second.load_class("llm", "shared")
    assert first.package_name("llm/shared") != second.package_name("llm/shared")
    first_module, second_module = sys.modules[first_class.__module__], sys.modules[second_class.__module__]
    assert first_module is not second_module and first_class is not second_class
    first_module.LOADS.append("first")
    assert second_module.LOADS == []  # no module state shared between the managers
    assert first.load_class("llm", "shared") is first_class  # each keeps its own



def test_managers_made_after_others_are_gone_never_take_their_module_names(tmp_path):
    # sys.modules keeps a manager's plugin modules after the manager is gone, so a name that came back (as an
    # address does: id() of a new manager is often a collected one's) would hand a later manager an old folder's
    # submodules (`from .helpers import x` finds them there)
    import gc

    from pepperpy.plugin_manager import PluginManager

    names = set()
    for _ in range(20):
        names.add(PluginManager(search_paths=[tmp_path], home=tmp_path / "home").package_name("llm/shared"))
        gc.collect()
    assert len(names) == 20
