"""pepperpy.plugins.first_key (a key from the first of several variables) and versioned_url (a base URL's default
API version), the helpers llm/gemini, embeddings/gemini and llm/anthropic share, as a plugin author uses them."""

from __future__ import annotations

import pytest

from pepperpy.errors import MissingKeyError
from pepperpy.plugins import first_key, versioned_url

TWO_VARIABLES = """
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import first_key


class TwoVariables(LLMProvider):
    api_key: str = ""

    def __init__(self, **config):
        if config.get("api_key") is None:
            config["api_key"] = first_key("ACME_API_KEY", "ACME_TOKEN")
        super().__init__(**config)

    async def generate(self, messages, **options):
        return GenerationResult(content=self.api_key)
"""


@pytest.fixture
def acme(make_plugin, manager, monkeypatch):
    for name in ("ACME_API_KEY", "ACME_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    make_plugin("acme", files={"provider.py": TWO_VARIABLES}, entry_point="provider:TwoVariables")
    return manager


def test_the_first_variable_set_wins_from_the_environment_or_keys_json(acme, monkeypatch):
    from pepperpy._config import save_key

    save_key(acme.home, "ACME_TOKEN", "saved-token-not-real")
    assert acme.create_provider("llm", "acme").api_key == "saved-token-not-real"
    monkeypatch.setenv("ACME_API_KEY", "env-key-not-real")
    assert acme.create_provider("llm", "acme").api_key == "env-key-not-real"
    assert acme.create_provider("llm", "acme", api_key="given-not-real").api_key == "given-not-real"


def test_none_set_names_the_plugin_every_variable_and_what_to_run(acme):
    with pytest.raises(MissingKeyError) as caught:
        acme.create_provider("llm", "acme")
    assert str(caught.value) == (
        "llm/acme needs 'api_key': pass api_key=..., set the ACME_API_KEY (or ACME_TOKEN) environment variable, "
        "or run `pepperpy keys set ACME_API_KEY`"
    )


def test_outside_a_plugin_the_caller_names_itself(monkeypatch):
    monkeypatch.delenv("NOTHING_SET_HERE_KEY", raising=False)
    with pytest.raises(MissingKeyError, match=r"^my/tool needs 'token': pass token=..., set the NOTHING_SET_HERE_KEY "):
        first_key("NOTHING_SET_HERE_KEY", option="token", plugin="my/tool")


@pytest.mark.parametrize("given, expected", [
    ("https://host", "https://host/v1beta"),
    ("https://host/", "https://host/v1beta"),
    ("https://host/proxy/gemini", "https://host/proxy/gemini/v1beta"),
    ("https://host/v1beta/", "https://host/v1beta"),
    ("https://host/v1", "https://host/v1"),
    ("https://host/v2alpha1", "https://host/v2alpha1"),
    ("http://127.0.0.1:8080/version", "http://127.0.0.1:8080/version/v1beta"),
])
def test_versioned_url_appends_the_version_unless_one_is_there(given, expected):
    assert versioned_url(given, "v1beta") == expected
