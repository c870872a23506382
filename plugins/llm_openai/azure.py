"""Azure OpenAI: its URLs and its authentication, for the ``azure`` preset of llm/openai.

Two routes, as the openai SDK's ``AzureOpenAI`` client speaks them:

- with ``api_version``: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``
  and ``{endpoint}/openai/responses?api-version=...`` (the deployment named in ``azure_deployment``, else ``model``);
- without: the v1 route, ``{endpoint}/openai/v1/chat/completions`` and ``.../v1/responses``.

An API key goes in the ``api-key`` header; a Microsoft Entra ID token (``azure_ad_token``, or
``azure_ad_token_provider``, a callable asked for a token on every request, so it can refresh it) goes
in ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from pepperpy.errors import AuthenticationError, ConfigError
from pepperpy.http import remember


def base_url(endpoint: str, api_version: str | None) -> str:
    if not endpoint.startswith(("https://", "http://")):
        raise ConfigError(
            f"llm/openai (azure): endpoint {endpoint!r} is not a URL; pass the resource's endpoint, "
            "e.g. https://my-resource.openai.azure.com (azure_endpoint=..., or set AZURE_OPENAI_ENDPOINT)"
        )
    root = endpoint.rstrip("/").removesuffix("/openai/v1").removesuffix("/openai")
    return f"{root}/openai" if api_version else f"{root}/openai/v1"


def paths(api_version: str | None, deployment: str) -> tuple[str, str]:
    """``(chat path, responses path)`` relative to ``base_url``."""
    if not api_version:
        return "chat/completions", "responses"
    query = f"?api-version={quote(api_version, safe='')}"
    return f"deployments/{quote(deployment, safe='')}/chat/completions{query}", f"responses{query}"


class TokenProviderAuth(httpx.Auth):
    """Sets ``Authorization: Bearer`` to a token asked of ``provider`` for each request sent (each retry again),
    so the provider can refresh it; nothing is asked before the first request."""

    def __init__(self, provider: Callable[[], str]) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return "TokenProviderAuth()"  # never a token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._provider()
        if not isinstance(token, str) or not token:
            raise AuthenticationError(
                f"llm/openai (azure): azure_ad_token_provider returned {type(token).__name__}, not a token; it must return "
                "the token as a str (e.g. azure.identity's get_bearer_token_provider(...))"
            )
        remember(token)  # a token echoed back in an error shows as ***
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def headers(api_key: SecretStr | None, ad_token: SecretStr | None, token_provider: Callable[[], str] | None
            ) -> dict[str, str | SecretStr]:
    """The authentication headers; none with a token provider (``TokenProviderAuth`` sets them per request)."""
    if token_provider is not None:
        return {}
    if ad_token is not None and ad_token.get_secret_value():
        return {"Authorization": SecretStr(f"Bearer {ad_token.get_secret_value()}")}
    if api_key is not None and api_key.get_secret_value():
        return {"api-key": api_key}
    raise ConfigError(
        "llm/openai (azure): no credentials; pass api_key=... (or set AZURE_OPENAI_API_KEY), "
        "azure_ad_token=... (AZURE_OPENAI_AD_TOKEN), or azure_ad_token_provider=a callable returning a Microsoft Entra ID token"
    )
