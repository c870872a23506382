"""Hot reload with real watchfiles events on real files: edit, break, fix, requirements, saves right after the
first load, atomic saves, bursts, a deleted folder, the document's example."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pepperpy import PepperPy
from pepperpy._log import logger
from pepperpy.plugin_manager import PluginManager
from pepperpy.plugins import hot_reloadable_plugin, start_hot_reload, stop_hot_reload

pytestmark = pytest.mark.integration
DEADLINE_S = 10.0
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import hot_reloadable_plugin

from .helper import tag


@hot_reloadable_plugin
class EchoProvider(LLMProvider):
    prefix: str = ""

    async def generate(self, messages, **options):
        return GenerationResult(content=self.prefix + tag() + ":" + (messages[-1].content or ""))
'''


def helper(version: str) -> str:
    return f"def tag():\n    return {version!r}\n"


@pytest.fixture
def logs() -> Iterator[list[str]]:
    records: list[str] = []
    logger.enable("pepperpy")
    sink = logger.add(lambda message: records.append(str(message)), level="INFO")
    yield records
    logger.remove(sink)
    logger.disable("pepperpy")


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    records: list[str] = []
    logger.enable("pepperpy")
    sink = logger.add(lambda message: records.append(message.record["message"]), level="WARNING",
                      filter=lambda record: record["level"].name == "WARNING")
    yield records
    logger.remove(sink)
    logger.disable("pepperpy")


@pytest.fixture
def reloading() -> Iterator[Callable[[PluginManager], Any]]:
    def start(manager: PluginManager) -> Any:
        return start_hot_reload(manager)

    yield start
    stop_hot_reload()


def save(path: Path, text: str) -> None:
    """Write ``text`` as an editor saves a file: a fresh modification time, whatever the clock's resolution."""
    path.write_text(text)


async def until(check: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return outcome
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {deadline_s}s")
        await asyncio.sleep(0.02)


async def watching(reloader: Any, folder: Path) -> None:
    await until(lambda: os.path.realpath(folder) in reloader.watching, f"watch on {folder}")


def hot_plugin(make_plugin: Any) -> Path:
    return make_plugin("hot", files={"provider.py": PROVIDER, "helper.py": helper("v1")})


async def test_edit_break_fix_through_an_open_pepperpy(manager, make_plugin, reloading, logs):
    folder = hot_plugin(make_plugin)
    pepper = PepperPy(plugin_manager=manager).with_llm("hot", prefix="> ")

    async def answer() -> str:
        return (await pepper.chat.with_user("hi").generate()).content

    async with pepper:
        assert await answer() == "> v1:hi"
        first = pepper.llm
        reloader = reloading(manager)
        await watching(reloader, folder)

        save(folder / "helper.py", helper("v2"))  # a sibling module: the whole folder is imported again
        await until(lambda: answer_is(answer, "> v2:hi"), "new code serving")
        assert pepper.llm is not first and pepper.llm.prefix == "> "  # same config, new instance
        await until(lambda: not first.initialized, "the old instance closed")  # no call of ours is running
        assert manager.generation("llm/hot") == 1
        created = manager.create_provider("llm", "hot")
        assert type(created) is type(pepper.llm) and type(created) is not type(first)

        broken = PROVIDER.replace("    prefix: str = \"\"", "    prefix: str = (\n")
        save(folder / "provider.py", broken)
        line = next(n for n, text in enumerate(broken.splitlines(), 1) if text.endswith("= ("))
        failure = await until(lambda: [r for r in logs if "hot reload of llm/hot failed" in r], "failure log")
        assert f'File "{os.path.realpath(folder / "provider.py")}", line {line}' in failure[0], failure[0]
        assert "SyntaxError" in failure[0] and "last good version keeps serving" in failure[0]
        assert await answer() == "> v2:hi"  # the last good version serves on

        logs.clear()
        missing = PROVIDER.replace("from .helper import tag", "import no_such_module_xyz\nfrom .helper import tag")
        save(folder / "provider.py", missing)
        failure = await until(lambda: [r for r in logs if "hot reload of llm/hot failed" in r], "failure log")
        line = missing.splitlines().index("import no_such_module_xyz") + 1
        assert f'File "{os.path.realpath(folder / "provider.py")}", line {line}' in failure[0], failure[0]
        assert "ModuleNotFoundError" in failure[0]
        assert "no_such_module_xyz" in failure[0]
        assert await answer() == "> v2:hi"

        save(folder / "helper.py", helper("v3"))  # still broken: provider.py is imported too
        await asyncio.sleep(0.3)
        assert await answer() == "> v2:hi"
        save(folder / "provider.py", PROVIDER)  # the fix is picked up, with the v3 helper
        await until(lambda: answer_is(answer, "> v3:hi"), "fixed code serving")
        assert manager.generation("llm/hot") == 2

    stop_hot_reload()
    assert not reloader.thread.is_alive()


async def answer_is(answer: Callable[[], Any], expected: str) -> bool:
    return await answer() == expected


async def test_a_call_in_progress_finishes_on_the_old_code(manager, make_plugin, reloading):
    slow = PROVIDER.replace(
        "    async def generate(self, messages, **options):\n",
        "    async def generate(self, messages, **options):\n        import asyncio\n"
        "        if messages[-1].content == 'slow':\n            await asyncio.sleep(0.5)\n",
    )
    folder = make_plugin("hot", files={"provider.py": slow, "helper.py": helper("v1")})
    pepper = PepperPy(plugin_manager=manager).with_llm("hot")
    async with pepper:
        assert (await pepper.chat.with_user("x").generate()).content == "v1:x"
        old = pepper.llm
        reloader = reloading(manager)
        await watching(reloader, folder)
        in_flight = asyncio.ensure_future(pepper.chat.with_user("slow").generate())
        await asyncio.sleep(0.05)
        save(folder / "helper.py", helper("v2"))
        await until(lambda: manager.generation("llm/hot") == 1, "reload")
        assert (await pepper.chat.with_user("x").generate()).content == "v2:x"
        assert old.initialized  # the slow call still runs on it
        assert (await in_flight).content == "v1:slow"
        await until(lambda: not old.initialized, "the old instance closed after its call")


async def test_plugin_json_edit_and_a_failing_class_check(manager, make_plugin, reloading, logs):
    folder = hot_plugin(make_plugin)
    provider = manager.create_provider("llm", "hot")
    reloader = reloading(manager)
    await watching(reloader, folder)
    save(folder / "provider.py", PROVIDER.replace("LLMProvider):", "object):").replace(
        "from pepperpy.llm import GenerationResult, LLMProvider", "from pepperpy.llm import GenerationResult"))
    failure = await until(lambda: [r for r in logs if "hot reload of llm/hot failed" in r], "failure log")
    assert "must subclass LLMProvider" in failure[0]
    assert type(manager.create_provider("llm", "hot")) is type(provider)
    save(folder / "provider.py", PROVIDER.replace("prefix: str = \"\"", "prefix: str = \"json \""))
    await until(lambda: manager.generation("llm/hot") == 1, "reload")
    assert manager.create_provider("llm", "hot").prefix == "json "


async def test_requirements_of_an_imported_package_are_refused(manager, make_plugin, reloading, logs):
    folder = hot_plugin(make_plugin)
    (folder / "requirements.txt").write_text("")
    manager.create_provider("llm", "hot")
    reloader = reloading(manager)
    await watching(reloader, folder)
    save(folder / "requirements.txt", "httpx>=0.1\n")  # imported by pepperpy itself
    refusal = await until(lambda: [r for r in logs if "refused" in r], "refusal log")
    assert "httpx" in refusal[0] and "restart the process" in refusal[0]
    assert manager.generation("llm/hot") == 0
    save(folder / "requirements.txt", "")  # back to what was loaded: reloads resume
    save(folder / "helper.py", helper("v2"))
    await until(lambda: manager.generation("llm/hot") >= 1, "reload")


async def test_new_requirements_not_imported_are_installed_first(manager, make_plugin, reloading, logs):
    """A real install from the package index into the test's home, then the new code that needs it serves."""
    folder = hot_plugin(make_plugin)
    manager.create_provider("llm", "hot")
    reloader = reloading(manager)
    await watching(reloader, folder)
    assert "text_unidecode" not in sys.modules
    uses_it = PROVIDER.replace("from .helper import tag", "from text_unidecode import unidecode\n\ndef tag():\n"
                               "    return unidecode('R\u00e9sum\u00e9')")
    save(folder / "requirements.txt", "text-unidecode==1.3\n")
    save(folder / "provider.py", uses_it)

    def new_code() -> Any:
        provider = manager.create_provider("llm", "hot")
        return provider if hasattr(sys.modules[type(provider).__module__], "unidecode") else None

    provider = await until(new_code, "reload with the new requirement", deadline_s=120)
    async with provider:
        assert (await provider.generate("x")).content == "Resume:x"
    assert any((manager.home / "envs").iterdir())  # installed into the plugin's env dir, not the running env
    assert not any("refused" in r for r in logs)


async def answer_of(pepper: PepperPy) -> str:
    return (await pepper.chat.with_user("hi").generate()).content


async def until_it_answers(pepper: PepperPy, expected: str, what: str) -> None:
    await until(lambda: answer_is(lambda: answer_of(pepper), expected), what)


@pytest.mark.parametrize("delay_s", [0.0, 0.1, 0.2, 0.3, 0.4])
async def test_a_save_right_after_the_first_load_is_served(manager, make_plugin, reloading, delay_s):
    """The watcher runs before the plugin loads (a program that starts it first): the folder joins the watch set
    up to 0.5 s after the load, and a save made before that is found by comparing the folder's files with the
    ones it had at import. v1 -> v2 keeps the size, and at 0.0 s often the file time too: the content decides."""
    folder = hot_plugin(make_plugin)
    reloading(manager)
    async with PepperPy(plugin_manager=manager).with_llm("hot") as pepper:
        assert await answer_of(pepper) == "v1:hi"  # the first load
        await asyncio.sleep(delay_s)
        save(folder / "helper.py", helper("v2"))
        await until_it_answers(pepper, "v2:hi", f"new code from the save made {delay_s}s after the load")
        assert manager.generation("llm/hot") == 1


async def test_a_save_before_start_hot_reload_is_served(manager, make_plugin, reloading):
    folder = hot_plugin(make_plugin)
    manager.create_provider("llm", "hot")
    save(folder / "helper.py", helper("v2"))
    reloading(manager)
    await until(lambda: manager.generation("llm/hot") == 1, "reload of the save made before the watch")
    async with manager.create_provider("llm", "hot") as provider:
        assert (await provider.generate("x")).content == "v2:x"


async def test_an_atomic_save_is_seen(manager, make_plugin, reloading):
    """An editor's atomic save: the new text goes to a temporary file that is renamed over the old one. The
    renamed file may keep the old one's time and size (here it does: ``os.utime``), so the content decides."""
    folder = hot_plugin(make_plugin)

    def atomic_save(version: str) -> None:
        temporary = folder / ".helper.py.tmp"
        temporary.write_text(helper(version))
        old = os.stat(folder / "helper.py")
        os.utime(temporary, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(temporary, folder / "helper.py")

    reloader = reloading(manager)
    async with PepperPy(plugin_manager=manager).with_llm("hot") as pepper:
        assert await answer_of(pepper) == "v1:hi"
        atomic_save("v2")  # before the folder is watched
        await until_it_answers(pepper, "v2:hi", "new code from the atomic save made before the watch")
        await watching(reloader, folder)
        atomic_save("v3")  # under a live watch
        await until_it_answers(pepper, "v3:hi", "new code from the atomic save made under the watch")


async def test_a_burst_of_saves_serves_the_last(manager, make_plugin, reloading):
    """Twenty saves 30 ms apart, over both files, while a second marked plugin loads (the watch restarts)."""
    folder = hot_plugin(make_plugin)
    make_plugin("other", files={"provider.py": PROVIDER, "helper.py": helper("o1")})
    reloader = reloading(manager)
    async with PepperPy(plugin_manager=manager).with_llm("hot") as pepper:
        assert await answer_of(pepper) == "v1:hi"
        await watching(reloader, folder)
        for version in range(2, 22):
            if version == 10:
                manager.create_provider("llm", "other")  # its folder joins the watch set
            prefix = f"p{version}"
            save(folder / "provider.py", PROVIDER.replace('prefix: str = ""', f"prefix: str = {prefix!r}"))
            save(folder / "helper.py", helper(f"v{version}"))
            await asyncio.sleep(0.03)
        await until_it_answers(pepper, "p21v21:hi", "new code from the last save")


async def test_a_deleted_folder_keeps_the_last_good_version_serving(manager, make_plugin, reloading,
                                                                     warnings_logged):
    folder = hot_plugin(make_plugin)
    reloader = reloading(manager)
    async with PepperPy(plugin_manager=manager).with_llm("hot") as pepper:
        assert await answer_of(pepper) == "v1:hi"
        await watching(reloader, folder)
        shutil.rmtree(folder)
        warning = await until(lambda: [r for r in warnings_logged if "llm/hot" in r], "warning of the deleted folder")
        assert os.path.realpath(folder) in warning[0] and "last good version keeps serving" in warning[0], warning
        assert await answer_of(pepper) == "v1:hi"
        assert manager.generation("llm/hot") == 0

        hot_plugin(make_plugin)  # the folder is back (a branch checked out again), with new code
        save(folder / "helper.py", helper("v2"))
        await until_it_answers(pepper, "v2:hi", "new code from the folder once it is back")
        assert len(warnings_logged) == 1, warnings_logged


async def test_the_documents_example(tmp_path, reloading):
    """The plugin-system document's example, as written, in a plugin folder used from an async function."""
    folder = tmp_path / "plugins" / "mine"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(
        '{"name": "mine", "version": "0.1.0", "category": "demo", "provider_name": "mine", '
        '"description": "hot example", "entry_point": "provider:MyPlugin", "author": "tests", '
        '"pepperpy_compatibility": ">=0.1.0"}'
    )
    example = textwrap.dedent('''
        from pepperpy.plugins import PepperpyPlugin
        from pepperpy.plugins import hot_reloadable_plugin, start_hot_reload

        @hot_reloadable_plugin
        class MyPlugin(PepperpyPlugin):
            pass

        start_hot_reload()
    ''')
    (folder / "provider.py").write_text(example)
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home")
    original, PluginManager._instance = PluginManager._instance, manager  # the example uses the process-wide one
    try:
        from pepperpy.plugins import auto_context, create_provider_instance

        async def use() -> Any:
            plugin = create_provider_instance("demo", "mine")
            async with auto_context(plugin):
                return plugin

        first = await use()
        from pepperpy import _reload

        await watching(_reload._reloader, folder)
        save(folder / "provider.py", example.replace("    pass", "    def hello(self):\n        return 'v2'"))
        await until(lambda: manager.generation("demo/mine") == 1, "reload")
        second = await use()
        assert second.hello() == "v2" and not hasattr(first, "hello")
    finally:
        PluginManager._instance = original


def test_marking_changes_nothing_else():
    from pepperpy.plugins import PepperpyPlugin

    class Plain(PepperpyPlugin):
        pass

    assert hot_reloadable_plugin(Plain) is Plain and Plain.__pepperpy_hot_reloadable__ is True


def test_import_pepperpy_does_not_import_watchfiles():
    code = "import pepperpy, pepperpy.plugins, sys; pepperpy.plugins.hot_reloadable_plugin; print('watchfiles' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_hot_reload_example(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "hot_reload.py")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "before: Hello from v1" in done.stdout and "after: Hello from v2" in done.stdout


async def test_a_process_isolated_plugin_restarts_its_worker_with_the_new_code(manager, make_plugin, reloading, logs):
    """A real worker process in its own venv: an edit starts a new worker at the next call (the old one stops once
    its calls are done); a broken edit leaves the last good worker serving, with the error logged; a fix is
    picked up."""
    folder = hot_plugin(make_plugin)
    pepper = PepperPy(plugin_manager=manager).with_llm("hot", prefix="> ", isolation="process")
    async with pepper:
        assert await answer_of(pepper) == "> v1:hi"
        first_pid = pepper.llm.worker_pid
        reloader = reloading(manager)
        await watching(reloader, folder)

        save(folder / "helper.py", helper("v2"))
        await until_it_answers(pepper, "> v2:hi", "the new code served by a new worker")
        assert pepper.llm.worker_pid != first_pid
        await until(lambda: not pid_alive(first_pid), "the old worker stopped")

        broken = PROVIDER.replace("    prefix: str = \"\"", "    prefix: str = (\n")
        save(folder / "provider.py", broken)

        async def failure_logged() -> list[str]:
            await answer_of(pepper)  # the next call tries the new code
            return [r for r in logs if "hot reload of llm/hot failed" in r]

        failure = await until(failure_logged, "failure log")
        assert "SyntaxError" in failure[0] and "last good version keeps serving" in failure[0], failure[0]
        assert await answer_of(pepper) == "> v2:hi"

        save(folder / "provider.py", PROVIDER)
        save(folder / "helper.py", helper("v3"))
        await until_it_answers(pepper, "> v3:hi", "the fixed code served")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie not reaped yet has exited
        return handle.read().split(") ", 1)[1][0] != "Z"
