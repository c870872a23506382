"""Real uv installs of a real package from the package index into a temporary PEPPERPY_HOME.

The test plugin needs ``text-unidecode``, a small pure-Python package that PepperPy
itself does not depend on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pepperpy.errors import PluginInstallError
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

REQUIREMENT = "text-unidecode==1.3"
PROVIDER = '''
from text_unidecode import unidecode

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
'''

CHILD = textwrap.dedent(
    '''
    import asyncio, json, subprocess, sys
    from loguru import logger
    from pepperpy.llm import Message
    from pepperpy.plugin_manager import PluginManager

    started = []
    class CountingPopen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            started.append(args)
            super().__init__(args, *rest, **kwargs)
    subprocess.Popen = CountingPopen
    installs = []
    logger.enable("pepperpy")
    logger.add(lambda m: installs.append(m) if "installed requirements" in m else None, level="INFO")
    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
    provider = manager.create_provider("llm", "unidecoder")
    async def generate():
        async with provider:
            return await provider.generate([Message(role="user", content="Résumé ☺ naïve")])
    result = asyncio.run(generate())
    print(json.dumps({"content": result.content, "subprocesses": len(started), "installed": len(installs)}))
    '''
)


@pytest.fixture
def plugin_root(tmp_path, make_plugin) -> Path:
    make_plugin("unidecoder", files={"provider.py": PROVIDER, "requirements.txt": f"{REQUIREMENT}\n"})
    return tmp_path / "plugins"


def run_child(plugin_root: Path, home: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(plugin_root), str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def outcome(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


def test_first_use_installs_then_a_second_process_takes_the_fast_path(plugin_root, tmp_path):
    home = tmp_path / "home"
    first = outcome(run_child(plugin_root, home))
    assert first == {"content": "Resume  naive", "subprocesses": 1, "installed": 1}
    env_dirs = [p for p in (home / "envs").iterdir() if p.is_dir()]
    assert [p.name.rsplit("-", 1)[0] for p in env_dirs] == ["llm-unidecoder"]
    assert (env_dirs[0] / "text_unidecode").is_dir()
    assert (env_dirs[0] / ".pepperpy-stamp").is_file()
    second = outcome(run_child(plugin_root, home))
    assert second["content"] == first["content"]
    assert second["subprocesses"] == 0 and second["installed"] == 0


def test_four_processes_on_a_fresh_home_install_once(plugin_root, tmp_path):
    home = tmp_path / "fresh-home"
    processes = [run_child(plugin_root, home) for _ in range(4)]
    results = [outcome(p) for p in processes]
    assert [r["content"] for r in results] == ["Resume  naive"] * 4
    assert sum(r["installed"] for r in results) == 1
    assert len([p for p in (home / "envs").iterdir() if p.is_dir()]) == 1


def test_unknown_requirement_fails_clearly_and_leaves_nothing(make_plugin, tmp_path):
    make_plugin(
        "ghost",
        files={"requirements.txt": "pepperpy-surely-no-such-package-4242==1.0\n"},
    )
    make_plugin("plain")
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    with pytest.raises(PluginInstallError) as raised:
        manager.create_provider("llm", "ghost")
    message = str(raised.value)
    assert "llm/ghost" in message and "pepperpy-surely-no-such-package-4242==1.0" in message
    assert "uv said" in message
    leftovers = [p.name for p in (home / "envs").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [], f"half-installed state left behind: {leftovers}"
    assert manager.create_provider("llm", "plain").name == "plain"


def test_model_packages_install_without_their_dependencies(make_plugin, tmp_path):
    """``model_packages`` go in with --no-deps: python-slugify arrives without text-unidecode."""
    make_plugin("datapkg", model_packages=["python-slugify==8.0.4"])
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    manager.create_provider("llm", "datapkg")
    (env_dir,) = [p for p in (home / "envs").iterdir() if p.is_dir()]
    installed = {p.name.split("-")[0] for p in env_dir.glob("*.dist-info")}
    assert installed == {"python_slugify"}
    sys.path.remove(str(env_dir))


def test_wheel_ships_the_builtin_plugins(tmp_path):
    """`pip install .` into a fresh venv, run from outside the repo, finds the built-in plugins."""
    from uv import find_uv_bin

    repo = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    uv = find_uv_bin()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), str(repo)], check=True, timeout=300)
    listing = subprocess.run(
        [str(venv / "bin" / "pepperpy"), "plugins"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")},
    )
    assert "llm/mock" in listing.stdout
    location = subprocess.run(
        [str(python), "-c", "from pepperpy.plugin_manager import builtin_plugins_dir; print(builtin_plugins_dir())"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert location.endswith("pepperpy/_builtin_plugins") and str(repo) not in location
    shipped = {p.parent.name for p in Path(location).glob("*/requirements.lock")}
    assert shipped == {p.parent.name for p in (repo / "plugins").glob("*/requirements.txt")}  # every lock ships
