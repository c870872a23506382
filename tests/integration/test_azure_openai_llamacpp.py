"""The ``azure`` preset of llm/openai end to end against a real server: llama.cpp's (SmolLM2) behind
tests/servers/azure_proxy.py, which serves Azure OpenAI's routes on 127.0.0.1 and forwards them to llama.cpp's
``/v1/...``. The answers, streamed events and Responses are llama.cpp's own; what the proxy checks and answers
itself — the ``api-key`` header or Entra ID bearer token, ``api-version`` on the deployment route, the deployment
in the path, and Azure's error bodies for a wrong key or api-version — is scripted after Azure's documented
behaviour, because no Azure service can run here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pepperpy import PepperPy
from pepperpy.errors import AuthenticationError, ProviderError
from tests.servers.azure_proxy import AzureProxy

pytestmark = pytest.mark.integration
KEY = "xxx-test-secret-not-real"
SETTINGS = {"temperature": 0, "max_tokens": 12, "max_retries": 0}
VARIABLES = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION",
             "OPENAI_API_KEY", "OPENAI_BASE_URL")


@pytest.fixture(scope="module")
def proxy(llama_server) -> Iterator[AzureProxy]:
    server = AzureProxy(llama_server, api_key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def azure(proxy, monkeypatch) -> AzureProxy:
    """The proxy with its request log emptied and no Azure/OpenAI variables of this machine."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    proxy.requests.clear()
    proxy.tokens.clear()
    return proxy


def question(pepper):
    return pepper.chat.with_system("Be brief.").with_user("What is the capital of France?")


def open_azure(remote_manager, **config) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm("azure", **SETTINGS, **config)


async def test_chat_on_the_deployment_route_with_the_api_key_header(remote_manager, azure):
    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, azure_deployment="smol-prod",
                          api_version="2024-10-21", api_key=KEY) as pepper:
        result = await question(pepper).generate()
    assert "Paris" in result.content and result.usage.completion_tokens > 0
    (request,) = azure.requests
    assert request.path == "/openai/deployments/smol-prod/chat/completions?api-version=2024-10-21"
    assert request.route == "deployment" and request.deployment == "smol-prod" and request.status == 200
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


async def test_a_stream_on_the_v1_route_with_the_sdk_variables_and_an_entra_id_token(remote_manager, azure, monkeypatch):
    token = "entra-token-from-env-not-real"
    azure.tokens.add(token)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure.endpoint)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", token)
    async with open_azure(remote_manager, model="smol-v1") as pepper:
        chunks = [chunk async for chunk in question(pepper).stream()]
    assert len([c for c in chunks if c.content]) > 1 and "Paris" in "".join(c.content for c in chunks)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"] and chunks[-1].usage is not None
    (request,) = azure.requests
    assert request.path == "/openai/v1/chat/completions" and request.route == "v1" and request.status == 200
    assert request.json()["model"] == "smol-v1" and request.json()["stream"] is True
    assert request.headers["authorization"] == f"Bearer {token}" and "api-key" not in request.headers


async def test_the_api_key_endpoint_and_api_version_variables(remote_manager, azure, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", azure.endpoint + "/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-06-01")
    async with open_azure(remote_manager, model="smol-env") as pepper:
        assert "Paris" in (await question(pepper).generate()).content
    (request,) = azure.requests
    assert request.path == "/openai/deployments/smol-env/chat/completions?api-version=2024-06-01"
    assert request.headers["api-key"] == KEY and request.status == 200


@pytest.mark.parametrize("version", ["2025-04-01-preview", None])
async def test_responses_generate_and_stream_on_both_routes(remote_manager, azure, version):
    extra = {"api_version": version} if version else {}
    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, api_key=KEY, api="responses",
                          model="smol-responses", **extra) as pepper:
        whole = await question(pepper).generate()
        chunks = [chunk async for chunk in question(pepper).stream()]
    assert "Paris" in whole.content and whole.metadata["id"].startswith("resp_")
    assert "".join(c.content for c in chunks) == whole.content and chunks[-1].usage is not None
    expected = "/openai/responses?api-version=2025-04-01-preview" if version else "/openai/v1/responses"
    assert [r.path for r in azure.requests] == [expected, expected]
    assert all(r.status == 200 and r.json()["model"] == "smol-responses" for r in azure.requests)
    assert azure.requests[0].json()["instructions"] == "Be brief." and azure.requests[1].json()["stream"] is True


async def test_the_token_provider_is_asked_per_request_and_an_expired_token_is_refused(remote_manager, azure):
    issued: list[str] = []
    expired = False  # once set, the tokens the provider returns are ones Azure no longer takes

    def token_provider() -> str:
        issued.append(f"entra-token-{len(issued)}-not-real")
        if not expired:
            azure.tokens.add(issued[-1])
        return issued[-1]

    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, azure_ad_token_provider=token_provider,
                          api_version="2024-10-21", model="smol") as pepper:
        assert "Paris" in (await question(pepper).generate()).content
        azure.tokens.clear()  # the first token has expired: the stream must get a fresh one
        chunks = [chunk async for chunk in question(pepper).stream()]
        assert "Paris" in "".join(c.content for c in chunks)
        expired = True
        with pytest.raises(AuthenticationError) as caught:
            await question(pepper).generate()
    sent = [r.headers["authorization"] for r in azure.requests]
    assert sent == [f"Bearer {token}" for token in issued] and len(set(sent)) == 3
    assert [r.status for r in azure.requests] == [200, 200, 401]
    assert "HTTP 401" in str(caught.value) and "Access denied due to invalid subscription key" in str(caught.value)
    assert not any(token in str(caught.value) for token in issued)


async def test_a_wrong_api_version_gets_azures_own_message(remote_manager, azure):
    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, api_version="1999-01-01", api_key=KEY) as pepper:
        with pytest.raises(ProviderError) as chat:
            await question(pepper).generate()
        with pytest.raises(ProviderError) as stream:
            [chunk async for chunk in question(pepper).stream()]
    for caught in (chat, stream):
        message = str(caught.value)
        assert "HTTP 400" in message and "API version not supported" in message, message
        assert "api-version=1999-01-01" in message and KEY not in message
    assert [r.status for r in azure.requests] == [400, 400] and not any(r.route for r in azure.requests)


async def test_a_wrong_key_is_refused_with_azures_message_and_never_shown(remote_manager, azure):
    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, api_version="2024-10-21",
                          api_key="yyy-wrong-test-secret-not-real") as pepper:
        with pytest.raises(AuthenticationError) as caught:
            await question(pepper).generate()
    assert "Access denied" in str(caught.value) and "yyy-wrong-test-secret-not-real" not in str(caught.value)


async def test_a_token_provider_returning_no_token_fails_before_sending(remote_manager, azure):
    async with open_azure(remote_manager, azure_endpoint=azure.endpoint, azure_ad_token_provider=lambda: None,
                          model="smol") as pepper:
        with pytest.raises(AuthenticationError, match=r"azure_ad_token_provider returned NoneType, not a token"):
            await question(pepper).generate()
    assert azure.requests == []
