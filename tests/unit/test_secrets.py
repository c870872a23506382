"""Keys never leave the process in a message: not in errors, reprs, logs or tracebacks with locals.

A sentinel key is sent to the scripted server (tests/servers/scripted.py: a real HTTP server
on 127.0.0.1 that answers what it is told; no real service echoes a key on demand), which
echoes it back in its error bodies; the sentinel is then searched for in the error text,
``repr(provider)``, loguru's output with ``diagnose=True`` and ``traceback``'s
``capture_locals`` rendering. Also here: keys.json's private, locked, atomic writes.
"""

from __future__ import annotations

import io
import json
import os
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from pydantic import SecretStr

from pepperpy import PepperPy, _redact
from pepperpy._config import read_keys, save_key
from pepperpy.errors import AuthenticationError, ConfigError, ProviderError
from pepperpy.http import SecretHeaders, bearer
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.servers.scripted import Reply

SENTINEL = "sk-sentinel-given-4f6c1e0a9d"
SAVED_SENTINEL = "sk-sentinel-saved-8b2d7e3f15"


@pytest.fixture
def remote_manager(tmp_path: Path) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


@pytest.fixture
def loguru_output() -> Iterator[io.StringIO]:
    """PepperPy's logs at DEBUG with loguru's ``diagnose=True`` (values of variables in tracebacks)."""
    output = io.StringIO()
    handler = logger.add(output, level="DEBUG", format="{message}", diagnose=True, backtrace=True, colorize=False)
    logger.enable("pepperpy")
    try:
        yield output
    finally:
        logger.remove(handler)
        logger.disable("pepperpy")


def echo(status: int, key: str) -> Reply:
    """An error answer whose message quotes the key it was sent, as some services do."""
    return Reply(status=status, json={"error": {"message": f"Incorrect API key provided: {key}. Check it."}})


def with_locals(error: BaseException) -> str:
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


async def test_a_key_echoed_by_the_service_is_redacted_everywhere(remote_manager, scripted, loguru_output):
    scripted.reset(echo(500, SENTINEL), echo(401, SENTINEL))
    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=scripted.base_url, api_key=SENTINEL, model="m", max_retries=1, retry_budget=5
    )
    async with pepper:
        with pytest.raises(AuthenticationError) as raised:
            await pepper.chat.with_user("hi").generate()
        try:
            raise raised.value
        except AuthenticationError:
            logger.opt(exception=True).error("the call failed")
        provider_repr = repr(pepper.llm)
    assert scripted.requests[0].headers["authorization"] == f"Bearer {SENTINEL}", "the service still gets the key"
    message = str(raised.value)
    assert "Incorrect API key provided: ***. Check it." in message and SENTINEL not in message
    assert SENTINEL not in provider_repr and "api_key=SecretStr('**********')" in provider_repr
    logs = loguru_output.getvalue()
    assert "retrying" in logs and "the call failed" in logs and "_post_with_retries" in logs
    assert SENTINEL not in logs
    rendered = with_locals(raised.value)
    assert "SecretHeaders" in rendered or "headers" in rendered, "the frames' locals were rendered"
    assert SENTINEL not in rendered


async def test_a_failure_inside_httpx_shows_no_key_in_locals(remote_manager, loguru_output):
    """Nothing listens on the port: httpx raises deep inside, with PepperPy's frames (and their headers) on the way."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=f"http://127.0.0.1:{port}/v1", api_key=SENTINEL, model="m", max_retries=0
    )
    async with pepper:
        with pytest.raises(ProviderError) as raised:
            await pepper.chat.with_user("hi").generate()
        try:
            raise raised.value
        except ProviderError:
            logger.opt(exception=True).error("the call failed")
    rendered, logs = with_locals(raised.value), loguru_output.getvalue()
    assert "httpx" in rendered and "SecretHeaders({'x-api-key': '***'" in rendered
    assert SENTINEL not in rendered and SENTINEL not in logs and SENTINEL not in str(raised.value)


async def test_a_key_read_from_keys_json_is_redacted(remote_manager, scripted, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    save_key(remote_manager.home, "OPENAI_API_KEY", SAVED_SENTINEL)
    scripted.reset(echo(401, SAVED_SENTINEL))
    pepper = PepperPy(plugin_manager=remote_manager).with_llm("openai", base_url=scripted.base_url, model="m")
    async with pepper:
        with pytest.raises(AuthenticationError) as raised:
            await pepper.chat.with_user("hi").generate()
    assert scripted.requests[0].headers["authorization"] == f"Bearer {SAVED_SENTINEL}"
    assert SAVED_SENTINEL not in str(raised.value) and "***" in str(raised.value)


def test_read_keys_registers_each_key_for_redaction(tmp_path):
    key = "sk-read-from-file-55e0c1a7"
    (tmp_path / "keys.json").write_text(json.dumps({"X_API_KEY": key, "NOT_A_KEY": 3}))
    assert read_keys(tmp_path) == {"X_API_KEY": key}
    assert _redact.redact(f"the service said {key}!") == "the service said ***!"


def test_redact_hides_the_longest_match_and_ignores_short_values():
    _redact.remember(SecretStr("tok-abcdef-1"))
    _redact.remember("tok-abcdef-1-longer")
    _redact.remember("abc")  # too short to be a key: never hidden
    assert _redact.redact("x tok-abcdef-1-longer y tok-abcdef-1 z abc") == "x *** y *** z abc"


def test_secret_headers_hide_values_in_repr_and_give_them_to_httpx():
    import httpx

    headers = SecretHeaders({"Authorization": bearer(SecretStr(SENTINEL)), "anthropic-version": "2023-06-01"})
    assert SENTINEL not in repr(headers) and SENTINEL not in str(headers)
    assert httpx.Headers(headers)["authorization"] == f"Bearer {SENTINEL}"
    assert dict(headers)["anthropic-version"] == "2023-06-01"


# -- keys.json -------------------------------------------------------------------------------------------


def test_keys_json_ends_private_even_over_a_0644_file_and_a_zero_umask(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "keys.json").write_text(json.dumps({"OLD_KEY": "old-value"}))
    (home / "keys.json").chmod(0o644)
    previous = os.umask(0)
    try:
        save_key(home, "NEW_KEY", "new-value-123")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600
    assert read_keys(home) == {"OLD_KEY": "old-value", "NEW_KEY": "new-value-123"}


def test_a_temporary_left_by_a_killed_save_is_removed_by_the_next(tmp_path):
    """A save killed with SIGKILL leaves its temporary file; the next save (under the lock) removes it,
    and also the fixed-name ``keys.tmp`` of older versions (which could be 0644 and hold keys)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".keys.json.0123456789abcdef.tmp").write_text('{"HALF": "writ')
    (home / "keys.tmp").write_text('{"OLD": "key"}')
    save_key(home, "X_KEY", "value-1234")
    assert sorted(os.listdir(home)) == ["keys.json", "keys.json.lock"]


def test_an_interrupted_write_leaves_no_temporary_and_the_old_keys(tmp_path, monkeypatch):
    """A KeyboardInterrupt while the data is flushed to disk; ``os.fsync`` is patched to raise it, since no
    real Ctrl-C can be timed to land inside one system call."""
    home = tmp_path / "home"
    save_key(home, "OLD_KEY", "old-value")

    def interrupted(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_key(home, "NEW_KEY", "new-value")
    monkeypatch.undo()
    assert sorted(os.listdir(home)) == ["keys.json", "keys.json.lock"]
    assert read_keys(home) == {"OLD_KEY": "old-value"}


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe{}", b""])
def test_a_corrupt_keys_json_is_not_overwritten(tmp_path, content):
    home = tmp_path / "home"
    home.mkdir()
    (home / "keys.json").write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        save_key(home, "X_KEY", "value-5678")
    assert str(home / "keys.json") in str(raised.value) and "value-5678" not in str(raised.value)
    assert "delete it" in str(raised.value)
    assert (home / "keys.json").read_bytes() == content


@pytest.mark.parametrize(("variable", "value"), [("", "v-12345"), ("BAD NAME", "v-12345"), ("X\n", "v"), ("X", "  ")])
def test_bad_key_names_and_empty_keys_are_config_errors(tmp_path, variable, value):
    with pytest.raises(ConfigError, match="cannot save"):
        save_key(tmp_path / "home", variable, value)
    assert not (tmp_path / "home" / "keys.json").exists()


# -- the one rule: which options are secrets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True), ("apikey", True), ("openai_api_key", True), ("OPENAI_API_KEY", True),
        ("ApiKey", True), ("secret_key", True), ("access_key", True), ("private_key", True),
        ("token", True), ("auth_token", True), ("access_token", True), ("HF_TOKEN", True), ("hf-token", True),
        ("password", True), ("db_password", True), ("secret", True), ("client_secret", True),
        ("VAULT_SECRET", True), ("credentials", True),
        ("max_tokens", False), ("tokens", False), ("num_tokens", False), ("max_token", False),
        ("max_new_tokens", False), ("tokenizer", False), ("token_limit", False), ("key", False),
        ("cache_key", False), ("key_prefix", False), ("keyword", False), ("secrets_dir", False),
        ("model", False), ("temperature", False), ("", False),
    ],
)
def test_is_secret_option_by_name(name, secret):
    assert _redact.is_secret_option(name) is secret


def test_is_secret_option_by_value_and_by_declared_type():
    from pydantic import SecretBytes

    assert _redact.is_secret_option("region", SecretStr("x"))
    assert _redact.is_secret_option("blob", SecretBytes(b"x"))
    assert not _redact.is_secret_option("region", "eu")
    for annotation in (SecretStr, SecretStr | None, "SecretStr | None", "pydantic.SecretBytes"):
        assert _redact.is_secret_option("region", annotation=annotation), annotation
    for annotation in (str, int | None, "str", "Secretary"):
        assert not _redact.is_secret_option("region", annotation=annotation), annotation


def test_hooks_the_call_log_isolation_state_and_the_command_use_the_one_rule(tmp_path):
    """max_tokens is shown everywhere; an apikey is hidden everywhere (the rules used to disagree on both)."""
    from pepperpy._calllog import _option_value
    from pepperpy._isolation.providers import public_options
    from pepperpy.cli.settings import HIDDEN, is_key, shown
    from pepperpy.hooks import provider_config
    from pepperpy.llm import LLMProvider

    class Options(LLMProvider):
        apikey: str = "k" * 12
        max_tokens: int = 64
        cache_key: str = "c"

        async def generate(self, messages, **options):  # pragma: no cover - never called
            raise NotImplementedError

    assert provider_config(Options()) == {"max_tokens": 64, "cache_key": "c"}
    assert public_options({"apikey": "k", "max_tokens": 64}) == {"max_tokens": 64}
    assert _option_value("apikey", "k") == "***" and _option_value("max_tokens", 64) == 64
    assert shown("max_tokens", 64, {}) == "64" and shown("apikey", "k", {}) == HIDDEN
    assert is_key("region", {"region": "VAULT_SECRET"}) and not is_key("region", {"region": "VAULT_REGION"})


def test_the_registry_belongs_to_redact_not_to_the_plugin_manager():
    """Redacting needs no PluginManager: _redact imports nothing of PepperPy's (it sits below logging)."""
    import subprocess
    import sys

    code = ("import sys, pepperpy._redact as r; r.remember('sk-no-manager-123'); "
            "print(r.redact('x sk-no-manager-123'), 'pepperpy.plugin_manager' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["x", "***", "False"]
    assert not hasattr(PluginManager(search_paths=[]), "secrets")
