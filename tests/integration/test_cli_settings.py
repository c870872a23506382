"""`pepperpy keys|aliases|options`, run as the real command in subprocesses with PEPPERPY_HOME in a tmp dir.

What the command saves is then used by the facade in this process, as a script would use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, PluginNotFoundError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.command import ok, run_pepperpy

pytestmark = pytest.mark.integration

SENTINEL = "sk-sentinel-7f3a9c-never-shown"


pepperpy = run_pepperpy


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def facade_manager(home: Path) -> PluginManager:
    """A manager over the built-in plugins reading the same home as the command."""
    return PluginManager(search_paths=[builtin_plugins_dir()], home=home)


def test_keys_set_from_stdin_then_list_shows_the_name_and_never_the_value(home):
    outputs = [pepperpy(home, "keys", "set", "OPENAI_API_KEY", stdin=SENTINEL + "\n")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert json.loads((home / "keys.json").read_text()) == {"OPENAI_API_KEY": SENTINEL}
    outputs.append(pepperpy(home, "keys", "list"))
    listing = ok(outputs[-1])
    row = next(line for line in listing.splitlines() if line.startswith("OPENAI_API_KEY"))
    assert "keys.json" in row and "llm/openai" in row
    assert next(line for line in listing.splitlines() if line.startswith("GROQ_API_KEY")).split()[1:3] == ["not", "set"]
    outputs.append(pepperpy(home, "keys", "list", env={"GROQ_API_KEY": SENTINEL}))
    row = next(line for line in ok(outputs[-1]).splitlines() if line.startswith("GROQ_API_KEY"))
    assert "environment" in row
    outputs.append(pepperpy(home, "keys", "path"))
    assert ok(outputs[-1]).strip() == str(home / "keys.json")
    for result in outputs:
        assert SENTINEL not in result.stdout + result.stderr


def test_keys_set_refuses_an_empty_value_and_a_bad_name(home):
    empty = pepperpy(home, "keys", "set", "OPENAI_API_KEY", stdin="\n")
    assert empty.returncode == 1 and "no key given for OPENAI_API_KEY" in empty.stderr
    bad = pepperpy(home, "keys", "set", "not a name", stdin="x\n")
    assert bad.returncode == 1 and "'not a name' is not an environment variable name" in bad.stderr
    assert not (home / "keys.json").exists()


def test_keys_set_of_a_name_no_plugin_reads_asks_for_force(home):
    """A typo of a variable (OPENAI_APIKEY) is refused before the key is asked for; --force saves any name."""
    typo = pepperpy(home, "keys", "set", "OPENAI_APIKEY", stdin=SENTINEL + "\n")
    assert (typo.returncode, typo.stdout) == (1, ""), typo.stderr
    assert typo.stderr.startswith("pepperpy: no plugin reads OPENAI_APIKEY; did you mean OPENAI_API_KEY?")
    assert "pepperpy keys set --force OPENAI_APIKEY" in typo.stderr and SENTINEL not in typo.stderr
    assert not (home / "keys.json").exists()
    forced = pepperpy(home, "keys", "set", "--force", "MY_SERVICE_TOKEN", stdin=SENTINEL + "\n")
    assert f"saved MY_SERVICE_TOKEN in {home / 'keys.json'}" in ok(forced)
    assert json.loads((home / "keys.json").read_text()) == {"MY_SERVICE_TOKEN": SENTINEL}


def test_keys_remove_takes_one_key_out_of_keys_json(home, facade_manager, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ok(pepperpy(home, "keys", "set", "OPENAI_API_KEY", stdin=SENTINEL + "\n"))
    ok(pepperpy(home, "keys", "set", "GROQ_API_KEY", stdin="gsk-other\n"))
    removed = pepperpy(home, "keys", "remove", "OPENAI_API_KEY")
    assert (ok(removed), removed.stderr) == (f"removed OPENAI_API_KEY from {home / 'keys.json'}\n", "")
    assert json.loads((home / "keys.json").read_text()) == {"GROQ_API_KEY": "gsk-other"}
    assert (home / "keys.json").stat().st_mode & 0o777 == 0o600
    row = next(line for line in ok(pepperpy(home, "keys", "list")).splitlines() if line.startswith("OPENAI_API_KEY"))
    assert row.split()[1:3] == ["not", "set"]
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):  # the facade no longer finds it
        PepperPy(plugin_manager=facade_manager).with_llm("openai")

    again = pepperpy(home, "keys", "remove", "OPENAI_API_KEY")
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr.startswith(
        f"pepperpy: {home / 'keys.json'} has no key OPENAI_API_KEY (saved there: GROQ_API_KEY)")
    in_environment = pepperpy(home, "keys", "remove", "GROQ_API_KEY", env={"GROQ_API_KEY": "from-the-shell"})
    assert ok(in_environment) == f"removed GROQ_API_KEY from {home / 'keys.json'}\n"
    assert in_environment.stderr == "note: GROQ_API_KEY is still set in the environment, which plugins read first\n"
    assert json.loads((home / "keys.json").read_text()) == {}
    for result in (removed, again, in_environment):
        assert SENTINEL not in result.stdout + result.stderr


def test_aliases_set_list_remove_round_trip_and_the_facade_uses_the_alias(home, facade_manager):
    saved = pepperpy(home, "aliases", "set", "myalias", "mock", "-o", 'replies=["from the alias"]', "-o", "cycle=false")
    assert f"saved the alias llm/myalias -> llm/mock in {home / 'aliases.json'}" in ok(saved)
    ok(pepperpy(home, "aliases", "set", "second", "myalias", "--description", "an alias of an alias"))

    rows = [line.split() for line in ok(pepperpy(home, "aliases", "list")).splitlines()]
    assert ["llm/myalias", "llm/mock", 'replies=["from', 'alias"]', "cycle=false", str(home / "aliases.json")] in [
        [row[0], row[1], row[2], row[4], row[5], row[6]] for row in rows if len(row) == 7
    ]
    assert any(row[:2] == ["llm/groq", "llm/openai"] for row in rows)  # manifest aliases are listed too

    pepper = PepperPy(plugin_manager=facade_manager).with_llm("second")
    assert (pepper.llm.plugin_id, pepper.llm.alias, pepper.llm.cycle) == ("llm/mock", "second", False)
    assert pepper.chat.with_user("hi").generate_sync().content == "from the alias"
    pepper.close()

    removed = pepperpy(home, "aliases", "remove", "myalias")
    assert "removed the alias llm/myalias" in ok(removed)
    assert "note: llm/second points at llm/myalias" in removed.stderr
    names = [line.split()[0] for line in ok(pepperpy(home, "aliases", "list")).splitlines()]
    assert "llm/second" in names and "llm/myalias" not in names
    with pytest.raises(PluginNotFoundError, match="points at nothing"):
        PepperPy(plugin_manager=facade_manager).with_llm("second")
    again = pepperpy(home, "aliases", "remove", "myalias")
    assert again.returncode == 1 and f"{home / 'aliases.json'} has no alias llm/myalias" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "nothing"], "no llm plugin named 'nothing'"),
        (["mock", "llm/mock"], "llm/mock is a plugin, so an alias of that name would never be used"),
        (["big", "mock", "-o", "cylce=true"], "aliases set: llm/mock has no option 'cylce'; did you mean 'cycle'?"),
        (["big", "mock", "-o", "cycle=maybe"], "option 'cycle' for llm/mock"),
        (["mine", "openai", "-o", f"api_key={SENTINEL}"], "use `pepperpy keys set OPENAI_API_KEY`"),
        (["big", "mock", "-o", "cycle"], "'cycle' is not key=value"),
        (["big", "mock", "-o", "isolation=threads"],
         'aliases set: isolation="threads" is not a valid setting for llm/mock; use isolation=process'),
    ],
)
def test_aliases_set_refuses_bad_input_naming_it(home, args, message):
    result = pepperpy(home, "aliases", "set", *args)
    assert result.returncode != 0 and message in result.stderr
    assert SENTINEL not in result.stdout + result.stderr
    assert not (home / "aliases.json").exists()


def test_aliases_set_refuses_a_cycle(home):
    ok(pepperpy(home, "aliases", "set", "a", "mock"))
    ok(pepperpy(home, "aliases", "set", "b", "a"))
    result = pepperpy(home, "aliases", "set", "a", "b")
    assert result.returncode == 1 and "alias cycle (llm/a -> llm/b -> llm/a)" in result.stderr
    assert json.loads((home / "aliases.json").read_text())["llm"]["a"]["target"] == "mock"


def test_saved_options_reach_the_provider_and_explicit_config_wins(home, facade_manager):
    assert f"saved llm/mock cycle=false in {home / 'options.json'}" in ok(
        pepperpy(home, "options", "set", "mock", "cycle", "false")
    )
    ok(pepperpy(home, "options", "set", "llm/mock", "replies", '["saved reply"]'))
    listing = [line.split() for line in ok(pepperpy(home, "options", "list", "mock")).splitlines()]
    assert listing == [
        ["PLUGIN", "OPTION", "VALUE"], ["llm/mock", "cycle", "false"], ["llm/mock", "replies", '["saved', 'reply"]']
    ]

    pepper = PepperPy(plugin_manager=facade_manager).with_llm("mock")
    assert (pepper.llm.cycle, pepper.llm.replies) == (False, ["saved reply"])
    assert pepper.chat.with_user("hi").generate_sync().content == "saved reply"
    pepper.close()
    explicit = PepperPy(plugin_manager=facade_manager).with_llm("mock", cycle=True)
    assert (explicit.llm.cycle, explicit.llm.replies) == (True, ["saved reply"])

    ok(pepperpy(home, "aliases", "set", "scripted", "mock", "-o", 'replies=["preset"]'))
    ok(pepperpy(home, "options", "set", "scripted", "replies", '["alias saved"]'))
    ok(pepperpy(home, "options", "set", "scripted", "cycle", "true"))
    aliased = PepperPy(plugin_manager=facade_manager).with_llm("scripted")
    assert (aliased.llm.replies, aliased.llm.cycle) == (["preset"], True)  # preset > alias's saved > plugin's saved

    ok(pepperpy(home, "options", "remove", "mock", "cycle"))
    assert PepperPy(plugin_manager=facade_manager).with_llm("mock").llm.cycle is True  # the class default again
    ok(pepperpy(home, "options", "remove", "mock"))
    assert "llm/mock" not in json.loads((home / "options.json").read_text())


VAULT_PROVIDER = '''
from pydantic import SecretStr

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    credentials: SecretStr | None = None  # a key by its type
    auth_token: str = ""  # a key by its name
    region: str = "eu"  # a key by its variable (VAULT_SECRET)
    max_tokens: int = 16  # not keys, though their names hold "token"
    tokenizer: str = "bpe"

    async def generate(self, messages, **options):
        return GenerationResult(content=messages[-1].content)
'''


def test_only_keys_are_hidden_in_saved_options_and_alias_presets(home, make_plugin, tmp_path):
    """A key is an option typed SecretStr, named as a key (api_key, auth_token, ...) or read from a variable named as
    one; max_tokens and tokenizer are shown. Keys reach options.json or aliases.json only by a hand edit: the
    commands refuse them."""
    roots = {"PEPPERPY_PLUGIN_PATH": str(tmp_path / "vaults")}
    make_plugin("vault", root=tmp_path / "vaults", files={"provider.py": VAULT_PROVIDER},
                env={"region": "VAULT_SECRET"})
    ok(pepperpy(home, "options", "set", "vault", "max_tokens", "64", env=roots))
    ok(pepperpy(home, "options", "set", "vault", "tokenizer", "wordpiece", env=roots))
    ok(pepperpy(home, "aliases", "set", "vaulty", "vault", "-o", "max_tokens=100", env=roots))
    for option in ("credentials", "auth_token", "region"):
        refused = pepperpy(home, "options", "set", "vault", option, SENTINEL, env=roots)
        assert refused.returncode == 1 and f"llm/vault: {option!r} is a key" in refused.stderr, refused.stderr
    secrets = {"credentials": SENTINEL, "auth_token": SENTINEL, "region": SENTINEL}
    saved = json.loads((home / "options.json").read_text())
    (home / "options.json").write_text(json.dumps({"llm/vault": {**saved["llm/vault"], **secrets}}))
    aliases = json.loads((home / "aliases.json").read_text())
    aliases["llm"]["vaulty"]["config"].update(secrets)
    (home / "aliases.json").write_text(json.dumps(aliases))

    options = ok(pepperpy(home, "options", "list", env=roots))
    assert [line.split() for line in options.splitlines()[1:]] == [
        ["llm/vault", "auth_token", "<hidden>"], ["llm/vault", "credentials", "<hidden>"],
        ["llm/vault", "max_tokens", "64"], ["llm/vault", "region", "<hidden>"],
        ["llm/vault", "tokenizer", '"wordpiece"'],
    ]
    row = next(line for line in ok(pepperpy(home, "aliases", "list", env=roots)).splitlines()
               if line.startswith("llm/vaulty "))
    assert "max_tokens=100 credentials=<hidden> auth_token=<hidden> region=<hidden>" in " ".join(row.split())
    assert SENTINEL not in options + row


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mock", "cylce", "false"], "options set: llm/mock has no option 'cylce'; did you mean 'cycle'?"),
        (["mock", "cycle", "maybe"], "option 'cycle' for llm/mock: Input should be a valid boolean"),
        (["llm/mock", "replies", "3"], "option 'replies' for llm/mock"),
        (["openai", "api_key", SENTINEL], "'api_key' is a key"),
        (["nothing", "x", "1"], "no llm plugin named 'nothing'"),
        (["tts/nothing", "x", "1"], "no tts plugin named 'nothing'"),
        (["mock", "isolation", "threads"], "or isolation=inprocess (the default)"),
        (["mock", "isolation", "true"], 'isolation=true is not a valid setting for llm/mock'),
    ],
)
def test_options_set_refuses_bad_names_types_and_keys(home, args, message):
    result = pepperpy(home, "options", "set", *args)
    assert result.returncode == 1 and message in result.stderr
    assert SENTINEL not in result.stdout + result.stderr
    assert not (home / "options.json").exists()


def test_an_option_of_a_plugin_still_to_install_is_saved_and_checked_at_creation(home):
    result = pepperpy(home, "options", "set", "local", "n_ctx", "1024")
    assert "llm/local is not installed yet; n_ctx is checked when it is first used" in ok(result)
    assert json.loads((home / "options.json").read_text()) == {"llm/local": {"n_ctx": 1024}}


def test_a_corrupt_options_file_is_named_by_the_command_and_the_facade(home, facade_manager):
    home.mkdir()
    (home / "options.json").write_text("{not json")
    for args in (["options", "list"], ["options", "set", "mock", "cycle", "false"]):
        result = pepperpy(home, *args)
        assert result.returncode == 1
        assert f"{home / 'options.json'}: the saved options file is not valid JSON" in result.stderr
        assert "fix the file or delete it" in result.stderr
    assert (home / "options.json").read_text() == "{not json"
    with pytest.raises(ConfigError, match="fix the file or delete it"):
        PepperPy(plugin_manager=facade_manager).with_llm("mock")
    ok(pepperpy(home, "keys", "path"))  # other commands are not affected


async def test_isolation_set_by_the_command_runs_the_plugin_in_a_worker(home, facade_manager):
    """docs/plugins.md "Process isolation": `isolation` may be an alias preset or a saved option. The worker and
    its venv (made by uv in the test's home) are real; the pid shows the answer came from another process."""
    saved = ok(pepperpy(home, "aliases", "set", "isomock", "mock", "-o", "isolation=process",
                        "-o", 'replies=["from the worker"]'))
    assert "saved the alias llm/isomock -> llm/mock" in saved and "note:" not in saved
    async with PepperPy(plugin_manager=facade_manager).with_llm("isomock") as pepper:
        assert pepper.llm.isolation == "process" and pepper.llm.worker_pid not in (None, os.getpid())
        assert (await pepper.chat.with_user("hi").generate()).content == "from the worker"
    async with PepperPy(plugin_manager=facade_manager).with_llm("mock") as pepper:
        assert pepper.llm.isolation == "inprocess"  # the alias's preset is not the plugin's

    assert 'saved llm/mock isolation="process"' in ok(pepperpy(home, "options", "set", "mock", "isolation", "process"))
    async with PepperPy(plugin_manager=facade_manager).with_llm("mock") as pepper:
        assert pepper.llm.isolation == "process" and pepper.llm.worker_pid not in (None, os.getpid())
        assert (await pepper.chat.with_user("echo me").generate()).content == "echo me"
    info = ok(pepperpy(home, "plugins", "info", "llm/mock"))
    assert "isolation: process (a worker process; set in options.json)" in info.splitlines()
    ok(pepperpy(home, "options", "set", "mock", "isolation", "inprocess"))
    async with PepperPy(plugin_manager=facade_manager).with_llm("mock") as pepper:
        assert pepper.llm.isolation == "inprocess"
    assert "isolation:" not in ok(pepperpy(home, "plugins", "info", "llm/mock"))
