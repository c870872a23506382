"""Provider options: validation, keys from the environment or keys.json, secrets never shown."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pepperpy._config import save_key
from pepperpy.errors import ConfigError, MissingKeyError

KEYED_PROVIDER = '''
from pydantic import Field, SecretStr

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    api_key: SecretStr = Field(description="the key")
    model: str = "small"

    async def generate(self, messages, **options):
        return GenerationResult(content=self.model)
'''


@pytest.fixture
def keyed(make_plugin):
    return make_plugin("keyed", files={"provider.py": KEYED_PROVIDER}, env={"api_key": "KEYED_API_KEY"})


def test_missing_key_names_the_variable_and_the_command(manager, keyed, monkeypatch):
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    with pytest.raises(MissingKeyError) as raised:
        manager.create_provider("llm", "keyed")
    message = str(raised.value)
    assert "KEYED_API_KEY" in message and "pepperpy keys set KEYED_API_KEY" in message


def test_key_from_environment_and_never_in_repr(manager, keyed, monkeypatch):
    monkeypatch.setenv("KEYED_API_KEY", "sk-secret-value-123")
    provider = manager.create_provider("llm", "keyed")
    assert provider.api_key.get_secret_value() == "sk-secret-value-123"
    assert "sk-secret-value-123" not in repr(provider)
    assert "sk-secret-value-123" not in str(provider)


def test_explicit_key_beats_environment_beats_keys_file(manager, keyed, monkeypatch, tmp_path):
    save_key(tmp_path / "home", "KEYED_API_KEY", "from-file")
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    assert manager.create_provider("llm", "keyed").api_key.get_secret_value() == "from-file"
    monkeypatch.setenv("KEYED_API_KEY", "from-env")
    assert manager.create_provider("llm", "keyed").api_key.get_secret_value() == "from-env"
    assert manager.create_provider("llm", "keyed", api_key="explicit").api_key.get_secret_value() == "explicit"


def test_keys_file_is_private(tmp_path):
    path = save_key(tmp_path / "home", "X_KEY", "v")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {"X_KEY": "v"}


def test_wrong_type_names_the_option_not_the_value(manager, keyed):
    with pytest.raises(ConfigError, match=r"option 'model' for llm/keyed") as raised:
        manager.create_provider("llm", "keyed", api_key="sk-do-not-echo", model=["not", "a", "string"])
    assert "sk-do-not-echo" not in str(raised.value)


def test_manifest_config_defaults_and_aliases(manager, make_plugin):
    make_plugin(
        "preset",
        files={"provider.py": KEYED_PROVIDER},
        config={"model": "from-manifest", "api_key": "k"},
        aliases={"big": {"config": {"model": "big-model"}, "description": "the big one"}},
    )
    assert manager.create_provider("llm", "preset").model == "from-manifest"
    aliased = manager.create_provider("llm", "big")
    assert aliased.model == "big-model"
    assert (aliased.name, aliased.plugin_id, aliased.alias) == ("preset", "llm/preset", "big")
    assert manager.create_provider("llm", "big", model="override").model == "override"
