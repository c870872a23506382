"""`pepperpy plugins ...` end to end: real subprocesses, plugin folders written to tmp_path, a real uv install.

Each command runs as `python -m pepperpy` with PEPPERPY_HOME in tmp_path, the working directory
in tmp_path (so ./plugins is the test's) and PEPPERPY_PLUGIN_PATH naming the test's plugin roots.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pepperpy import _index, _install
from pepperpy.cli import plugins as plugins_cli
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

REQUIREMENT = "text-unidecode==1.3"
LAZY_UNIDECODE = '''
from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        from text_unidecode import unidecode

        return GenerationResult(content=unidecode(messages[-1].content))
'''
EAGER_UNIDECODE = "from text_unidecode import unidecode\n" + LAZY_UNIDECODE
OPTIONS_PROVIDER = '''
from pydantic import SecretStr

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    prefix: str = ""
    token: SecretStr | None = None
    size: int = 3

    async def generate(self, messages, **options):
        return GenerationResult(content=self.prefix + messages[-1].content)
'''


def pepperpy(tmp_path: Path, *args: str, roots: list[Path] | None = None, cwd: Path | None = None,
             python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}
    env["PEPPERPY_PLUGIN_PATH"] = os.pathsep.join(str(r) for r in roots or [tmp_path / "plugins"])
    return subprocess.run([python, "-m", "pepperpy", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or tmp_path, env=env)


def rows(stdout: str) -> dict[str, list[str]]:
    """The table of `plugins list` (not a terminal: plain columns) by plugin id."""
    return {line.split()[0]: line.split() for line in stdout.splitlines()[1:] if not line.startswith(" ")}


# -- list -----------------------------------------------------------------------------------------------


def test_list_shows_plugins_shadowed_and_broken_folders(tmp_path, make_plugin):
    low = make_plugin("twin", root=tmp_path / "low")
    high = make_plugin("twin", root=tmp_path / "high", version="2.0.0", aliases={"twain": {}})
    broken = make_plugin("bad", root=tmp_path / "high", manifest="{not json")
    done = pepperpy(tmp_path, "plugins", "list", roots=[tmp_path / "low", tmp_path / "high"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["ID", "VERSION", "REQUIREMENTS", "DESCRIPTION", "ALIASES", "SOURCE"]
    table = rows(done.stdout)
    assert table["llm/twin"] == ["llm/twin", "2.0.0", "none", "test", "plugin", "twin", "twain", str(high)]
    assert table["llm/mock"][:3] == ["llm/mock", "0.1.0", "none"]
    assert f"  shadowed llm/twin at {low} by {high}" in done.stdout.splitlines()
    assert f"  broken {broken}: {broken / 'plugin.json'}: invalid JSON" in done.stdout
    bare = pepperpy(tmp_path, "plugins", roots=[tmp_path / "low", tmp_path / "high"])
    assert bare.returncode == 0 and bare.stdout == done.stdout


def test_list_says_why_a_requirements_file_is_invalid(tmp_path, make_plugin):
    make_plugin("evil", files={"requirements.txt": "evil-1.0-py3-none-any.whl\n"})
    listed = pepperpy(tmp_path, "plugins", "list")
    assert listed.returncode == 0 and rows(listed.stdout)["llm/evil"][2] == "invalid"
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("  invalid requirements of llm/evil")]
    assert "requirements.txt:1" in line and "'evil==1.0'" in line


def test_list_json_is_for_scripts(tmp_path, make_plugin):
    make_plugin("uni", files={"provider.py": LAZY_UNIDECODE, "requirements.txt": REQUIREMENT + "\n"})
    broken = make_plugin("bad", manifest={"name": "bad"})
    done = pepperpy(tmp_path, "plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    uni = next(p for p in listing["plugins"] if p["id"] == "llm/uni")
    assert uni["requirements"] == [REQUIREMENT] and uni["requirements_status"] == "not installed"
    assert uni["path"] == str(tmp_path / "plugins" / "uni")
    assert uni["env_dir"].startswith(str(tmp_path / "home" / "envs"))
    assert [b["path"] for b in listing["broken"]] == [str(broken)]
    assert "missing field 'version'" in listing["broken"][0]["problem"]


def test_list_shows_the_users_aliases(tmp_path, make_plugin):
    make_plugin("echo")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "aliases.json").write_text(json.dumps({"llm": {"shout": {"target": "echo"}}}))
    done = pepperpy(tmp_path, "plugins", "list")
    assert rows(done.stdout)["llm/echo"][6:8] == ["shout", "(yours)"]


def test_list_shows_descriptions_cut_to_fit_and_isolation(tmp_path, make_plugin):
    long = "Answers in rhyme, with a rhyming dictionary of its own, kept in a folder of plain text files"
    make_plugin("poet", description=long, isolation="process", author="Ada")
    make_plugin("plain", description="short and sweet")
    done = pepperpy(tmp_path, "plugins", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "REQUIREMENTS", "ISOLATION", "DESCRIPTION", "ALIASES", "SOURCE"]
    poet = next(line for line in lines if line.startswith("llm/poet "))
    shown = long[: plugins_cli.DESCRIPTION_WIDTH - 3].rstrip() + "..."
    assert " process " in poet and f" {shown} " in poet and long not in poet
    plain = next(line for line in lines if line.startswith("llm/plain "))
    assert " short and sweet " in plain and " process " not in plain

    listing = {p["id"]: p for p in json.loads(pepperpy(tmp_path, "plugins", "list", "--json").stdout)["plugins"]}
    assert (listing["llm/poet"]["description"], listing["llm/poet"]["author"]) == (long, "Ada")  # whole in JSON
    assert (listing["llm/poet"]["isolation"], listing["llm/plain"]["isolation"]) == ("process", "inprocess")
    stored = json.loads((tmp_path / "home" / _index.INDEX_FILE).read_text())
    assert stored["folders"][str(tmp_path / "plugins" / "poet")]["plugin"]["isolation"] == "process"

    info = pepperpy(tmp_path, "plugins", "info", "llm/poet").stdout.splitlines()
    assert "isolation: process (a worker process; set in plugin.json)" in info and f"description: {long}" in info
    plain_info = pepperpy(tmp_path, "plugins", "info", "plain")
    assert plain_info.returncode == 0 and "isolation:" not in plain_info.stdout


def test_an_index_of_the_previous_format_is_read_again(tmp_path, make_plugin):
    folder = make_plugin("one", isolation="process")
    home = tmp_path / "home"
    _index.load(home, [tmp_path / "plugins"])
    stored = json.loads((home / _index.INDEX_FILE).read_text())
    entry = stored["folders"][str(folder)]["plugin"]
    del entry["isolation"], entry["author"]  # what format 1 kept
    stored["header"]["format"] = 1
    (home / _index.INDEX_FILE).write_text(json.dumps(stored))
    again = _index.load(home, [tmp_path / "plugins"])
    assert again.revalidated == [str(folder)] and again.plugins["llm/one"].isolation == "process"


# -- the index ------------------------------------------------------------------------------------------


def test_the_index_revalidates_only_what_changed(tmp_path, make_plugin):
    one, two = make_plugin("one"), make_plugin("two")
    roots, home = [tmp_path / "plugins"], tmp_path / "home"
    first = _index.load(home, roots)
    assert sorted(first.revalidated) == [str(one), str(two)] and sorted(first.plugins) == ["llm/one", "llm/two"]
    assert (home / _index.INDEX_FILE).is_file()
    assert _index.load(home, roots).revalidated == []

    manifest = json.loads((two / "plugin.json").read_text())
    (two / "plugin.json").write_text(json.dumps({**manifest, "version": "0.2.0"}))
    later = time.time_ns() + 1_000_000  # a distinct mtime even on a coarse clock
    os.utime(two / "plugin.json", ns=(later, later))
    stale = _index.load(home, roots)
    assert stale.revalidated == [str(two)] and stale.plugins["llm/two"].version == "0.2.0"

    three = make_plugin("three")
    assert _index.load(home, roots).revalidated == [str(three)]
    (two / "requirements.txt").write_text(REQUIREMENT + "\n")
    changed = _index.load(home, roots)
    assert changed.revalidated == [str(two)] and changed.plugins["llm/two"].requirements == (REQUIREMENT,)


def test_the_index_agrees_with_the_plugin_manager(tmp_path, make_plugin, monkeypatch):
    make_plugin("twin", root=tmp_path / "low")
    make_plugin("twin", root=tmp_path / "high")
    make_plugin("solo", root=tmp_path / "high")
    make_plugin("bad", root=tmp_path / "high", manifest={"name": "bad", "version": "x"})
    roots, home = [tmp_path / "low", tmp_path / "high"], tmp_path / "home"
    for _ in range(2):  # validated, then read from the index
        listing = _index.load(home, roots)
        manager = PluginManager(search_paths=roots, home=home)
        found = manager.discover()
        assert {i: p.path for i, p in listing.plugins.items()} == {i: str(p.path) for i, p in found.items()}
        assert listing.broken == [(str(b.path), b.problem) for b in manager.broken]
        assert listing.shadowed == [(s.id, str(s.path), str(s.shadowed_by)) for s in manager.shadowed]

    monkeypatch.setenv("PEPPERPY_PLUGIN_PATH", os.pathsep.join(str(r) for r in roots))
    monkeypatch.chdir(tmp_path)
    assert _index.Index(home).default_search_paths() == PluginManager(home=home).search_paths()
    plugin = listing.plugins["llm/solo"]
    needed = _install.RequirementSet(plugin_id=plugin.id)
    assert plugin.env_dir(home) == _install.env_dir(home, needed)


def test_a_fresh_index_lists_without_importing_pydantic(tmp_path, make_plugin):
    """Checked on sys.modules of a child process; the time it takes is measured in scripts/bench.py."""
    folder = make_plugin("one")
    child = textwrap.dedent("""
        import contextlib, io, json, sys
        from pepperpy.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["plugins", "list"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "loguru", "packaging", "tenacity"))
        print(json.dumps({"code": code, "listed": "llm/one" in out.getvalue(), "heavy": heavy,
                          "manager": "pepperpy.plugin_manager" in sys.modules}))
    """)

    def listing() -> dict:
        env = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home"), "PEPPERPY_PLUGIN_PATH": str(tmp_path / "plugins")}
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    assert listing()["heavy"] != []  # the first listing validates every manifest
    fresh = listing()
    assert fresh == {"code": 0, "listed": True, "heavy": [], "manager": False}
    later = time.time_ns() + 1_000_000
    os.utime(folder / "plugin.json", ns=(later, later))
    assert "pydantic" in listing()["heavy"]  # stale: validated again


# -- info -----------------------------------------------------------------------------------------------


def test_info_shows_manifest_options_requirements_and_env_dir(tmp_path, make_plugin):
    make_plugin("opts", files={"provider.py": OPTIONS_PROVIDER, "requirements.txt": REQUIREMENT + "\n"},
                config={"size": 5}, env={"token": "OPTS_TOKEN"}, aliases={"loud": {"config": {"prefix": "!"}}})
    done = pepperpy(tmp_path, "plugins", "info", "llm/opts")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "id: llm/opts" in lines and "version: 0.1.0" in lines and "description: test plugin opts" in lines
    assert f"source: {tmp_path / 'plugins' / 'opts'}" in lines and "entry point: provider:EchoProvider" in lines
    assert f"  {REQUIREMENT}: not installed" in lines
    assert any(line.startswith(f"env dir: {tmp_path / 'home' / 'envs' / 'llm-opts-'}") for line in lines)
    assert '  loud: {"prefix": "!"}' in lines
    # options need the class, so its requirements installed first
    assert any("install the plugin to see them: pepperpy plugins install llm/opts" in line for line in lines)

    (tmp_path / "plugins" / "opts" / "requirements.txt").write_text("")
    done = pepperpy(tmp_path, "plugins", "info", "llm/opts")
    lines = done.stdout.splitlines()
    assert "  prefix: str, default ''" in lines
    assert "  token: SecretStr | None, default None, env OPTS_TOKEN" in lines
    assert "  size: int, default 5 (plugin.json)" in lines


def test_info_shows_each_options_description(tmp_path, make_plugin):
    provider = OPTIONS_PROVIDER.replace("import SecretStr", "import Field, SecretStr").replace(
        '    size: int = 3\n',
        '    size: int = 3\n    model: str = Field(description="the model to ask, as the service names it")\n'
        '    temperature: float = Field(default=0.5, description="how random the answer is")\n')
    make_plugin("described", files={"provider.py": provider})
    done = pepperpy(tmp_path, "plugins", "info", "llm/described")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  model: str, required - the model to ask, as the service names it" in lines
    assert "  temperature: float, default 0.5 - how random the answer is" in lines
    assert "  prefix: str, default ''" in lines  # no description, nothing after


def test_info_of_an_alias_and_of_an_unknown_id(tmp_path, make_plugin):
    make_plugin("echo", aliases={"echoes": {"config": {"prefix": "> "}}})
    alias = pepperpy(tmp_path, "plugins", "info", "llm/echoes")
    assert alias.returncode == 0 and "alias of: llm/echo" in alias.stdout
    assert "  prefix: str, default '> ' (alias)" in alias.stdout.splitlines()
    unknown = pepperpy(tmp_path, "plugins", "info", "llm/ecko")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == [
        "pepperpy: no plugin llm/ecko; did you mean llm/echo or llm/echoes? "
        "`pepperpy plugins list` shows the plugins found"
    ]
    bare = pepperpy(tmp_path, "plugins", "info", "echo")  # a bare name, as -p and with_llm take it
    assert bare.returncode == 0 and bare.stdout.splitlines()[0] == "id: llm/echo"
    assert "alias of: llm/echo" in pepperpy(tmp_path, "plugins", "info", "echoes").stdout
    make_plugin("embeddings_echo", category="embeddings", provider_name="echo")
    both = pepperpy(tmp_path, "plugins", "info", "echo")
    assert both.returncode == 1 and both.stderr.splitlines() == [
        "pepperpy: 'echo' is a plugin of several categories: embeddings/echo or llm/echo; give the id (category/name)"
    ]
    typo = pepperpy(tmp_path, "plugins", "info", "ecko")
    assert typo.returncode == 1 and "no plugin named 'ecko' in any category; did you mean" in typo.stderr
    assert "llm/echo" in typo.stderr


# -- install --------------------------------------------------------------------------------------------


def test_install_installs_for_real_and_names_each_failure(tmp_path, make_plugin):
    make_plugin("uni", files={"provider.py": EAGER_UNIDECODE, "requirements.txt": REQUIREMENT + "\n"})
    make_plugin("ghost", files={"requirements.txt": "pepperpy-surely-no-such-package-4242==1.0\n"})
    done = pepperpy(tmp_path, "plugins", "install", "llm/ghost", "llm/uni", "llm/mock")
    assert done.returncode == 1
    (env_dir,) = [p for p in (tmp_path / "home" / "envs").iterdir() if p.is_dir()]
    assert (env_dir / "text_unidecode").is_dir() and (env_dir / _install.STAMP_FILE).is_file()
    assert f"llm/uni: installed {REQUIREMENT} into {env_dir}" in done.stdout.splitlines()
    assert "llm/mock: no requirements" in done.stdout.splitlines()
    assert "llm/ghost: FAILED: could not install the requirements of plugin llm/ghost" in done.stderr
    assert done.stderr.splitlines()[-1] == "pepperpy: 1 of 3 plugins failed to install: llm/ghost"

    again = pepperpy(tmp_path, "plugins", "install", "llm/uni")
    assert (again.returncode, again.stdout) == (0, f"llm/uni: already installed ({env_dir})\n")
    assert rows(pepperpy(tmp_path, "plugins", "list").stdout)["llm/uni"][2] == "installed"
    check = pepperpy(tmp_path, "plugins", "check", str(tmp_path / "plugins" / "uni"))
    assert check.returncode == 0 and check.stdout.startswith("ok   llm/uni")


def test_install_needs_ids_or_all(tmp_path):
    for args in ([], ["--all", "llm/mock"]):
        done = pepperpy(tmp_path, "plugins", "install", *args)
        assert done.returncode == 2 and "name the plugins to install (as llm/local) or give --all" in done.stderr


# -- check ----------------------------------------------------------------------------------------------


def test_check_names_the_problem_of_each_broken_folder(tmp_path, make_plugin):
    root = tmp_path / "suite"
    make_plugin("good", root=root)
    make_plugin("badjson", root=root, manifest="{\"name\": ")
    make_plugin("nofile", root=root, entry_point="missing_module:EchoProvider")
    make_plugin("noclass", root=root, entry_point="provider:Nope")
    make_plugin("raises", root=root, files={"provider.py": "raise RuntimeError('plugin is half written')\n"})
    make_plugin("notllm", root=root, files={"provider.py": "class EchoProvider:\n    pass\n"})
    done = pepperpy(tmp_path, "plugins", "check", str(root))
    assert done.returncode == 1
    lines = {line.split()[1]: line for line in done.stdout.splitlines()}
    assert lines["llm/good"].startswith("ok   llm/good")
    assert lines[f"{root / 'badjson'}:"].startswith("FAIL") and "invalid JSON" in lines[f"{root / 'badjson'}:"]
    assert "needs the file" in lines[f"{root / 'nofile'}:"] and "missing_module.py" in lines[f"{root / 'nofile'}:"]
    assert "has no class 'Nope'" in lines["llm/noclass"]
    assert "RuntimeError: plugin is half written" in lines["llm/raises"]
    assert "must subclass LLMProvider" in lines["llm/notllm"]
    assert done.stderr.splitlines() == ["pepperpy: 5 of 6 plugins failed the check"]


def test_check_fails_two_folders_with_one_id_in_the_same_folder(tmp_path, make_plugin):
    """A copy left unrenamed: both fail, each naming both folders and the one used. Across search folders the same
    id is an override (a higher folder shadows a lower one) and passes."""
    root = tmp_path / "suite"
    original = make_plugin("echo", root=root)
    copy = make_plugin("echo_copy", root=root, provider_name="echo")
    make_plugin("other", root=root)
    done = pepperpy(tmp_path, "plugins", "check", str(root))
    assert done.returncode == 1
    lines = {line.split(" (")[1].split(")")[0]: line for line in done.stdout.splitlines()}
    for folder in (original, copy):
        assert lines[str(folder)].startswith(f"FAIL llm/echo ({folder}): 2 plugin folders in {root} have the id "
                                             f"llm/echo: {original}, {copy}; only the last, {copy}, is used")
    assert lines[str(root / "other")].startswith("ok   llm/other")
    assert done.stderr.splitlines() == ["pepperpy: 2 of 3 plugins failed the check"]

    # PepperPy itself warns where the user sees it (not only in its log, which is off by default)
    used = pepperpy(tmp_path, "chat", "-p", "echo", "--no-log", "hi", roots=[root])
    assert used.returncode == 0 and used.stdout == "hi\n", used.stderr
    assert used.stderr.splitlines() == [
        f"pepperpy: warning: 2 plugin folders in {root} have the id llm/echo: {original}, {copy}; only the last, "
        f"{copy}, is used; give each its own provider_name in its plugin.json, or remove the copy"
    ]

    (copy / "plugin.json").unlink()
    make_plugin("echo", root=tmp_path / "override")
    overridden = pepperpy(tmp_path, "plugins", "check", roots=[root, tmp_path / "override"])
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr


def test_check_of_one_good_folder_passes(tmp_path, make_plugin):
    folder = make_plugin("good", root=tmp_path / "mine")
    done = pepperpy(tmp_path, "plugins", "check", str(folder))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"ok   llm/good ({folder})", "1 plugin checked, all ok"]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = pepperpy(tmp_path, "plugins", "check", str(empty))
    assert nothing.returncode == 1 and f"no plugin folder in {empty}" in nothing.stderr


def test_check_notes_a_category_no_facade_uses_and_a_loader_no_file_picks(tmp_path, make_plugin):
    """Both pass validation, and both were a new user's mistakes: "loaders" for "loader", and no "suffixes". A
    category of a plugin's own (far from PepperPy's) gets no note."""
    plural = make_plugin("csv", root=tmp_path / "mine", category="loaders")
    loader = make_plugin("csv2", root=tmp_path / "mine", category="loader", entry_point="provider:Csv", files={
        "provider.py": "from pepperpy.loaders import LoaderProvider, read_utf8, section\n"
                       "class Csv(LoaderProvider):\n"
                       "    def read(self, path):\n"
                       "        return [section('', read_utf8(path))]\n",
    })
    own = make_plugin("speaker", root=tmp_path / "mine", category="tts")
    done = pepperpy(tmp_path, "plugins", "check", str(tmp_path / "mine"))
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    assert done.stdout.splitlines() == [
        f"ok   loaders/csv ({plural}); note: category 'loaders' is not PepperPy's 'loader': did you mean it? (a plugin "
        "of category 'loaders' is reached only by with_plugin('loaders', 'csv'))",
        f"ok   loader/csv2 ({loader}); note: no \"suffixes\" in plugin.json: no file is read with it unless named "
        "(loader='csv2')",
        f"ok   tts/speaker ({own})",
        "3 plugins checked, all ok",
    ]


def test_check_notes_missing_requirements_and_installs_them_on_request(tmp_path, make_plugin):
    lazy = make_plugin("lazy", root=tmp_path / "suite", files={"provider.py": LAZY_UNIDECODE,
                                                               "requirements.txt": REQUIREMENT + "\n"})
    eager = make_plugin("eager", root=tmp_path / "suite", files={"provider.py": EAGER_UNIDECODE,
                                                                 "requirements.txt": REQUIREMENT + "\n"})
    done = pepperpy(tmp_path, "plugins", "check", str(tmp_path / "suite"))
    assert (done.returncode, done.stderr) == (0, "")
    lines = {line.split()[1]: line for line in done.stdout.splitlines()}
    assert lines["llm/lazy"] == (f"ok   llm/lazy ({lazy}); note: requirements not installed ({REQUIREMENT}); "
                                 "imported without them (--install installs them)")
    # its module imports a requirement at the top: without it, the class cannot be checked; not the plugin's fault
    assert lines["llm/eager"] == (f"ok   llm/eager ({eager}); note: cannot import without its requirements "
                                  f"({REQUIREMENT}); run with --install to check the class")
    assert done.stdout.splitlines()[-1] == "2 plugins checked, all ok"
    installed = pepperpy(tmp_path, "plugins", "check", "--install", str(tmp_path / "suite"))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert installed.stdout.splitlines()[-1] == "2 plugins checked, all ok"
    assert all("; note:" not in line for line in installed.stdout.splitlines())


def test_check_without_requirements_still_fails_what_they_would_not_fix(tmp_path, make_plugin):
    """With the requirements missing, only a ModuleNotFoundError for a module outside the folder is forgiven."""
    requirements = {"requirements.txt": REQUIREMENT + "\n"}
    broken = make_plugin("broken", root=tmp_path / "suite", files={
        **requirements, "provider.py": "raise RuntimeError('half written')\n" + EAGER_UNIDECODE})
    sibling = make_plugin("sibling", root=tmp_path / "suite", files={
        **requirements, "provider.py": "from . import helpers\n" + LAZY_UNIDECODE})
    done = pepperpy(tmp_path, "plugins", "check", str(tmp_path / "suite"))
    assert done.returncode == 1
    lines = {line.split()[1]: line for line in done.stdout.splitlines()}
    assert lines["llm/broken"].startswith(f"FAIL llm/broken ({broken}): ") and "half written" in lines["llm/broken"]
    assert lines["llm/sibling"].startswith(f"FAIL llm/sibling ({sibling}): ") and "helpers" in lines["llm/sibling"]
    assert done.stderr.splitlines() == ["pepperpy: 2 of 2 plugins failed the check"]


def test_check_of_every_folder_on_a_fresh_home_passes(tmp_path):
    """The built-in plugins, none installed: rag/local imports numpy at the top of its module."""
    done = pepperpy(tmp_path, "plugins", "check", roots=[])
    assert done.returncode == 0, done.stdout + done.stderr
    rag = next(line for line in done.stdout.splitlines() if line.split()[1] == "rag/local")
    if "requirements not installed" in rag or "cannot import without its requirements" in rag:
        assert "numpy" in rag and rag.startswith("ok ")


# -- new ------------------------------------------------------------------------------------------------


CATEGORIES = ["llm", "embeddings", "rag", "storage", "loader", "tts"]


def test_new_scaffolds_plugins_whose_generated_tests_pass(tmp_path):
    made = tmp_path / "made"
    for category in CATEGORIES:
        done = pepperpy(tmp_path, "plugins", "new", category, f"my-{category}", "--dir", str(made))
        assert done.returncode == 0, done.stderr
        folder = made / f"{category}_my_{category}"
        assert done.stdout.startswith(f"created {folder}: plugin.json, provider.py, README.md, test_provider.py")
        assert json.loads((folder / "plugin.json").read_text())["provider_name"] == f"my-{category}"
    check = pepperpy(tmp_path, "plugins", "check", str(made))
    assert check.returncode == 0 and check.stdout.splitlines()[-1] == "6 plugins checked, all ok"
    listed = rows(pepperpy(tmp_path, "plugins", "list", roots=[made]).stdout)
    assert {f"{c}/my-{c}" for c in CATEGORIES} <= set(listed)

    articles = {"llm": "an llm", "embeddings": "an embeddings", "rag": "a rag", "storage": "a storage", "loader": "a loader",
                "tts": "a tts"}
    for category, words in articles.items():
        manifest = json.loads((made / f"{category}_my_{category}" / "plugin.json").read_text())
        assert manifest["description"] == f"my-{category}: {words} plugin (describe it here)"

    # the generated tests, as a plugin author runs them: pytest on the folder, from elsewhere (outside this
    # repository: no configuration of ours applies), with pytest-asyncio installed and without it
    env = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")}
    env.pop("PEPPERPY_PLUGIN_PATH", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for category in CATEGORIES:
        for plugins_off in ([], ["-p", "no:asyncio"]):
            tests = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins_off,
                 str(made / f"{category}_my_{category}")], capture_output=True, text=True, cwd=elsewhere, env=env,
                timeout=600,
            )
            output = tests.stdout + tests.stderr
            assert tests.returncode == 0, output
            assert f"{2 if category == 'rag' else 1} passed in" in output and "warning" not in output.lower(), output


def test_new_refuses_an_existing_folder_and_bad_names(tmp_path):
    made = tmp_path / "made"
    assert pepperpy(tmp_path, "plugins", "new", "llm", "shout", "--dir", str(made)).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (made / "llm_shout").stat().st_mode & 0o777 == 0o777 & ~umask, "made like any folder, not mkdtemp's 0700"
    again = pepperpy(tmp_path, "plugins", "new", "llm", "shout", "--dir", str(made))
    assert again.returncode == 1
    assert again.stderr.splitlines() == [
        f"pepperpy: {made / 'llm_shout'} already exists; choose another NAME or --dir, or remove that folder first"
    ]
    bad = pepperpy(tmp_path, "plugins", "new", "llm", "Shout", "--dir", str(made))
    assert bad.returncode == 1 and bad.stderr.splitlines() == [
        "pepperpy: cannot create a plugin llm/Shout: NAME 'Shout' must be lowercase letters, digits, '_' or '-', "
        "starting with a letter"
    ]
    assert sorted(p.name for p in made.iterdir()) == ["llm_shout"]


def test_plugins_help_lists_clean_without_importing_it(tmp_path):
    child = textwrap.dedent("""
        import contextlib, io, json, sys
        from pepperpy.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["plugins", "--help"])
        print(json.dumps({"code": code, "help": out.getvalue(), "clean": "pepperpy.cli.clean" in sys.modules}))
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PEPPERPY_HOME": str(tmp_path / "home")})
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert (outcome["code"], outcome["clean"]) == (0, False)
    flat = " ".join(outcome["help"].split())
    assert "clean Remove plugin envs unused for N days and install leftovers." in flat
    for name in ("list", "info", "install", "check", "new"):
        assert f"\n  {name} " in outcome["help"]


def test_info_shows_the_parts_and_call_options_an_llm_takes(tmp_path, make_plugin):
    """A plugin author declares ``media_types`` and ``call_options``; a user reads them in ``plugins info`` rather
    than in the source. A text-only provider's ``media_hint`` says how to make it take media."""
    seeing = OPTIONS_PROVIDER.replace(
        "    size: int = 3\n",
        '    size: int = 3\n    media_types = frozenset({"image/png", "image/jpeg"})\n'
        '    call_options = LLMProvider.call_options | {"reasoning"}\n')
    make_plugin("seeing", files={"provider.py": seeing})
    blind = OPTIONS_PROVIDER.replace("    size: int = 3\n", '    size: int = 3\n    media_hint = "pass lens= to give it images"\n')
    make_plugin("blind", files={"provider.py": blind})
    lines = pepperpy(tmp_path, "plugins", "info", "llm/seeing").stdout.splitlines()
    assert "parts: image/jpeg, image/png (text always)" in lines, lines
    (options_line,) = [line for line in lines if line.startswith("call options: ")]
    assert "reasoning" in options_line and "temperature" in options_line, options_line
    lines = pepperpy(tmp_path, "plugins", "info", "llm/blind").stdout.splitlines()
    assert "parts: text only; pass lens= to give it images" in lines, lines
    (options_line,) = [line for line in lines if line.startswith("call options: ")]
    assert "reasoning" not in options_line, options_line


def test_the_llm_scaffold_shows_where_parts_and_call_options_are_declared(tmp_path):
    """An author writing a plugin that takes images finds the two declarations in the scaffold, commented out
    (text only by default), with the guide's section named."""
    done = pepperpy(tmp_path, "plugins", "new", "llm", "eye", "--dir", str(tmp_path / "made"))
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "made" / "llm_eye" / "provider.py").read_text()
    assert '    # media_types = frozenset({"image/png", "image/jpeg"})' in source, source
    assert '    # call_options = LLMProvider.call_options | {"reasoning"}' in source, source
    assert "Messages with images, files and reasoning" in source
