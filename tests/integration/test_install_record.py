"""What an install records and what runs at start-up, with a real wheel that installs a ``.pth`` file.

``pp-startup`` 1.0 comes from the local PEP 691 index (tests/servers/package_index.py), installed by uv for real
under the default cooldown; its ``pp_startup.pth`` touches the file named by ``PP_STARTUP_MARKER`` when an
interpreter reads it as a site folder. An in-process plugin's env is put on ``sys.path``, so the marker must
never appear; a worker's venv is a site folder, so there it runs, and ``plugins info`` and ``doctor`` list it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pepperpy import PepperPy, _install_record
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

PACKAGE, PTH_FILE = "pp-startup", "pp_startup.pth"
PROVIDER = """
import importlib.util

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):  # finds the module without running it (importing it touches too)
        return GenerationResult(content=importlib.util.find_spec("pp_startup").name)
"""
USE = textwrap.dedent(
    """
    import sys
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager
    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
    print(PepperPy(plugin_manager=manager).with_llm(sys.argv[3]).chat.with_user("hi").generate_sync().content)
    """
)


@pytest.fixture
def index(use_package_index, monkeypatch, tmp_path):
    monkeypatch.setenv("PP_STARTUP_MARKER", str(tmp_path / "marker"))
    return use_package_index


def cli(home: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PEPPERPY_HOME": str(home), "PEPPERPY_PLUGIN_PATH": str(root)}
    return subprocess.run([sys.executable, "-m", "pepperpy", *args], capture_output=True, text=True, timeout=600,
                          cwd=home.parent, env=env)


def test_an_in_process_env_never_runs_a_pth_and_its_record_flags_it(index, tmp_path, make_plugin):
    digest = "sha256:" + index.sha256(PACKAGE, "1.0")
    make_plugin("marked", files={"provider.py": PROVIDER, "requirements.txt": f"{PACKAGE}==1.0 --hash={digest}\n"})
    root, home, marker = tmp_path / "plugins", tmp_path / "home", tmp_path / "marker"
    manager = PluginManager(search_paths=[root], home=home)
    pepper = PepperPy(plugin_manager=manager).with_llm("marked")
    assert pepper.chat.with_user("hi").generate_sync().content == "pp_startup"
    (env,) = _install_record.installed_envs(home / "envs")
    assert (env / PTH_FILE).is_file() and str(env) in sys.path
    assert not marker.exists()  # joined this process through sys.path: the .pth was not run
    again = subprocess.run([sys.executable, "-c", USE, str(root), str(home), "marked"], capture_output=True,
                           text=True, timeout=300)
    assert (again.returncode, again.stdout) == (0, "pp_startup\n"), again.stderr
    assert not marker.exists()  # nor by a new process taking the fast path
    control = subprocess.run([sys.executable, "-c", f"import site; site.addsitedir({str(env)!r})"], timeout=60)
    assert control.returncode == 0 and marker.exists()  # the same folder read as a site folder runs it

    record = json.loads((env / _install_record.RECORD_FILE).read_text())
    assert (record["plugin"], record["kind"]) == ("llm/marked", "inprocess")
    assert (record["cooldown"], record["cooldown_source"], record["allow_newer"]) == ("7 days", "the default", [])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["installed_at"])
    assert record["distributions"] == [{"name": PACKAGE, "version": "1.0", "pth": [PTH_FILE], "hashes": [digest]}]

    info = cli(home, root, "plugins", "info", "llm/marked")
    assert info.returncode == 0, info.stderr
    assert (f"  {PACKAGE} 1.0 ({digest}); installs {PTH_FILE}, never run (the env is on sys.path, not a site "
            "folder)") in info.stdout.splitlines()
    when = [line for line in info.stdout.splitlines() if line.startswith("installed at: ")]
    assert len(when) == 1 and when[0].endswith(" UTC, cooldown 7 days (the default)")

    table = cli(home, root, "plugins", "audit")
    assert table.returncode == 0, table.stderr
    (row,) = [line.split() for line in table.stdout.splitlines()[1:]]
    assert row[:4] == ["llm/marked", "inprocess", PACKAGE, "1.0"] and row[-2:] == [PTH_FILE, env.name]
    assert row[4:9] == [*record["installed_at"].rstrip("Z").split("T"), "7", "days", digest[:21] + "..."]
    found = json.loads(cli(home, root, "plugins", "audit", "--json", "--package", f"{PACKAGE}==1.0").stdout)
    assert [(e["env"], [d["name"] for d in e["distributions"]]) for e in found["envs"]] == [(str(env), [PACKAGE])]
    other = cli(home, root, "plugins", "audit", "--package", "PP_Startup>=2")
    assert other.stdout == f"no plugin env holds PP_Startup>=2 (under {home / 'envs'})\n"
    bad = cli(home, root, "plugins", "audit", "--package", "litellm 1.82.8")
    assert bad.returncode == 1 and "--package 'litellm 1.82.8' is not a package name" in bad.stderr

    (env / _install_record.RECORD_FILE).unlink()  # an env installed before records: read from its dist-info
    old = json.loads(cli(home, root, "plugins", "audit", "--json").stdout)["envs"]
    assert [(e["plugin"], e["recorded"], e["cooldown"], e["distributions"]) for e in old] == [
        ("llm/marked", False, None, [{"name": PACKAGE, "version": "1.0", "pth": [PTH_FILE], "hashes": []}])
    ]
    (row,) = [line.split() for line in cli(home, root, "plugins", "audit").stdout.splitlines()[1:]]
    assert "(no record)" in " ".join(row) and "unknown" in row


def test_an_isolated_plugins_worker_venv_lists_the_pth_that_runs_there(index, tmp_path, make_plugin):
    make_plugin("walled", files={"provider.py": PROVIDER, "requirements.txt": f"{PACKAGE}==1.0\n"},
                isolation="process")
    root, home, marker = tmp_path / "plugins", tmp_path / "home", tmp_path / "marker"
    home.mkdir()
    (home / "install.json").write_text(json.dumps({"allow_newer": {"llm/walled": [PACKAGE]}}))
    manager = PluginManager(search_paths=[root], home=home)

    async def use() -> str:
        async with PepperPy(plugin_manager=manager).with_llm("walled") as pepper:
            return (await pepper.chat.with_user("hi").generate()).content

    assert asyncio.run(use()) == "pp_startup"
    assert marker.exists()  # the worker's venv is a site folder: the .pth ran at the worker's start
    (venv,) = _install_record.installed_envs(home / "envs")
    site = _install_record.site_folder(venv)
    names = {f.path.name: f for f in _install_record.start_up_files(site)}
    assert {PTH_FILE, "_pepperpy_host.pth"} <= set(names) <= {PTH_FILE, "_pepperpy_host.pth", "_virtualenv.pth"}
    assert [n for n, f in names.items() if not f.allowed] == [PTH_FILE]
    record = _install_record.read(venv)
    assert (record["kind"], record["recorded"]) == ("worker", True)
    assert (record["cooldown"], record["allow_newer"]) == ("7 days", [PACKAGE])
    assert [(d["name"], d["pth"]) for d in record["distributions"]] == [(PACKAGE, [PTH_FILE])]

    info = cli(home, root, "plugins", "info", "llm/walled").stdout.splitlines()
    assert f"  {PACKAGE} 1.0; installs {PTH_FILE}, run at every start of the worker" in info
    assert "start-up files (.pth) outside the allow-list:" in info
    assert f"  {PTH_FILE} (from {PACKAGE})" in info
    assert any(line.endswith(f" UTC, cooldown 7 days (the default), any age allowed for {PACKAGE}") for line in info)
    doctor = cli(home, root, "doctor").stdout.splitlines()
    assert f"  {PTH_FILE} (from {PACKAGE}) runs at every start of {venv.name}'s worker ({site / PTH_FILE})" in doctor


def test_a_worker_venv_without_extra_pth_files_says_none(tmp_path, make_plugin):
    make_plugin("plainwalled", isolation="process")
    root, home = tmp_path / "plugins", tmp_path / "home"
    done = cli(home, root, "plugins", "install", "llm/plainwalled")
    assert done.returncode == 0, done.stderr
    info = cli(home, root, "plugins", "info", "llm/plainwalled").stdout.splitlines()
    assert "start-up files (.pth) outside the allow-list: none" in info
    assert "installed: none" in info
    doctor = cli(home, root, "doctor").stdout.splitlines()
    assert "  none (1 worker venv)" in doctor
