"""The plugin author's guide (docs/plugins.md) runs as written: its manifest, its provider and its direct-use snippet."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

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
