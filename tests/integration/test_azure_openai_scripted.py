"""The ``azure`` preset of llm/openai against the local scripted server. No Azure OpenAI resource exists here,
so these check what PepperPy sends — URLs (deployment route with api-version, or the v1 route), the
``api-key`` header or ``Authorization: Bearer`` with a Microsoft Entra ID token, the token provider asked on
every request, the openai SDK's environment variables — and that the service's own error message (the shape
Azure answers a wrong api-version with) is passed through. The answers follow OpenAI's documented formats."""

from __future__ import annotations

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, MissingKeyError, ProviderError
from tests.servers.scripted import Reply, chat_answer

pytestmark = pytest.mark.integration
KEY = "azure-key-not-real-0123456789abcdef"
RESPONSE = {
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4o-mini",
    "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]}],
    "usage": {"input_tokens": 9, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 0}},
}


@pytest.fixture
def azure_env(monkeypatch):
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION",
                 "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def endpoint(scripted):
    return scripted.base_url.removesuffix("/v1")


async def ask(remote_manager, **config):
    async with PepperPy(plugin_manager=remote_manager).with_llm("azure", max_retries=0, **config) as pepper:
        return await pepper.chat.with_user("Capital of France?").generate()


async def test_deployment_route_with_api_version_and_the_api_key_header(remote_manager, scripted, azure_env):
    scripted.reset(Reply(json=chat_answer("Paris.")))
    result = await ask(remote_manager, azure_endpoint=endpoint(scripted) + "/", azure_deployment="my-gpt4o",
                       api_version="2024-10-21", api_key=KEY)
    assert result.content == "Paris."
    (request,) = scripted.requests
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


async def test_the_sdk_environment_variables(remote_manager, scripted, azure_env):
    azure_env.setenv("AZURE_OPENAI_ENDPOINT", endpoint(scripted))
    azure_env.setenv("AZURE_OPENAI_API_KEY", KEY)
    azure_env.setenv("OPENAI_API_VERSION", "2024-06-01")
    scripted.reset(Reply(json=chat_answer("Paris.")))
    await ask(remote_manager, model="gpt-4o-mini")
    (request,) = scripted.requests
    assert request.path == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01"
    assert request.headers["api-key"] == KEY


async def test_v1_route_with_an_entra_id_token_from_the_environment(remote_manager, scripted, azure_env):
    azure_env.setenv("AZURE_OPENAI_AD_TOKEN", "entra-token-from-env-0123456789")
    scripted.reset(Reply(json=chat_answer("Paris.")))
    await ask(remote_manager, azure_endpoint=endpoint(scripted), model="gpt-4o-mini")
    (request,) = scripted.requests
    assert request.path == "/openai/v1/chat/completions" and request.json()["model"] == "gpt-4o-mini"
    assert request.headers["authorization"] == "Bearer entra-token-from-env-0123456789"
    assert "api-key" not in request.headers


async def test_the_token_provider_is_asked_on_every_request(remote_manager, scripted, azure_env):
    issued: list[str] = []

    def token_provider() -> str:
        issued.append(f"entra-token-{len(issued)}-abcdefgh")
        return issued[-1]

    scripted.reset(Reply(json=chat_answer("one")), Reply(json=chat_answer("two")))
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "azure", azure_endpoint=endpoint(scripted), azure_ad_token_provider=token_provider, model="gpt-4o-mini"
    ) as pepper:
        await pepper.chat.with_user("a").generate()
        await pepper.chat.with_user("b").generate()
    sent = [r.headers["authorization"] for r in scripted.requests]
    assert sent == [f"Bearer {token}" for token in issued] and sent[0] != sent[1]  # asked per request, never before


async def test_responses_on_both_routes(remote_manager, scripted, azure_env):
    scripted.reset(Reply(json=RESPONSE), Reply(json=RESPONSE))
    for version in ("2025-04-01-preview", None):
        async with PepperPy(plugin_manager=remote_manager).with_llm(
            "azure", azure_endpoint=endpoint(scripted), api_key=KEY, api="responses", model="my-deployment",
            **({"api_version": version} if version else {}),
        ) as pepper:
            assert (await pepper.chat.with_user("Capital of France?").generate()).content == "Paris."
    deployment_route, v1 = scripted.requests
    assert deployment_route.path == "/openai/responses?api-version=2025-04-01-preview"
    assert v1.path == "/openai/v1/responses"
    assert deployment_route.json()["model"] == v1.json()["model"] == "my-deployment"


async def test_a_wrong_api_version_passes_the_services_message_through(remote_manager, scripted, azure_env):
    scripted.reset(Reply(status=404, json={"error": {"code": "404", "message": "Resource not found"}}),
                   Reply(status=400, json={"error": {"code": "BadRequest", "message": "API version not supported"}}))
    errors = []
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await ask(remote_manager, azure_endpoint=endpoint(scripted), api_version="1999-01-01", api_key=KEY)
        errors.append(str(caught.value))
    assert "HTTP 404" in errors[0] and "Resource not found" in errors[0]
    assert "HTTP 400" in errors[1] and "API version not supported" in errors[1]
    assert all("api-version=1999-01-01" in e and KEY not in e for e in errors)


async def test_without_an_endpoint_or_credentials_the_error_says_what_to_set(remote_manager, azure_env):
    with pytest.raises(ConfigError, match=r"needs 'azure_endpoint'.*AZURE_OPENAI_ENDPOINT"):
        PepperPy(plugin_manager=remote_manager).with_llm("azure", api_key=KEY).llm
    with pytest.raises(MissingKeyError, match="AZURE_OPENAI_API_KEY"):
        PepperPy(plugin_manager=remote_manager).with_llm("azure", azure_endpoint="https://x.openai.azure.com").llm


async def test_with_nothing_set_one_error_names_the_endpoint_and_every_way_to_authenticate(remote_manager, azure_env):
    """The README's Azure line with no variable set: one error says all there is to set (the endpoint, and a key or
    an Entra ID token), naming the preset, rather than the key first and the endpoint on the next try."""
    with pytest.raises(MissingKeyError) as caught:
        PepperPy(plugin_manager=remote_manager).with_llm("azure", azure_deployment="gpt-4o-mini", api_version="2024-10-21").llm
    message = str(caught.value)
    assert message.startswith("llm/openai (azure) needs"), message
    for named in ("AZURE_OPENAI_API_KEY", "pepperpy keys set AZURE_OPENAI_API_KEY", "azure_ad_token", "AZURE_OPENAI_AD_TOKEN",
                  "azure_ad_token_provider", "azure_endpoint", "AZURE_OPENAI_ENDPOINT"):
        assert named in message, (named, message)
    azure_env.setenv("AZURE_OPENAI_AD_TOKEN", KEY)  # a token but no endpoint: only the endpoint is missing
    with pytest.raises(ConfigError) as caught:
        PepperPy(plugin_manager=remote_manager).with_llm("azure", azure_deployment="gpt-4o-mini").llm
    assert "needs 'azure_endpoint'" in str(caught.value) and "AZURE_OPENAI_API_KEY" not in str(caught.value)
    assert KEY not in str(caught.value)


async def test_a_connection_failure_names_azure_endpoint(remote_manager, azure_env):
    """Nothing listens on the port: the error points at the option the user set, not at base_url."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError, match=r"cannot connect to .*; check azure_endpoint and the network"):
        await ask(remote_manager, azure_endpoint=f"http://127.0.0.1:{port}", azure_deployment="d",
                  api_version="2024-10-21", api_key=KEY)
