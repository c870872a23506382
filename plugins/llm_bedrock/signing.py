"""AWS credentials from the standard chain, and SigV4 signatures on PepperPy's httpx requests (botocore).

botocore is imported here only, when the plugin is first used: ``import pepperpy`` never pays for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from pepperpy.errors import AuthenticationError, ConfigError, MissingKeyError, provider_error_type

SERVICE = "bedrock"  # the signing name of bedrock-runtime
CHAIN = (
    "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN for temporary keys), "
    "the profile {profile} in ~/.aws/credentials and ~/.aws/config (static keys, an assumed role, a "
    "credential_process, or AWS IAM Identity Center / SSO), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), "
    "the container's credentials (ECS/EKS) and the instance role (EC2 instance metadata)"
)
_SIGNED = ("authorization", "x-amz-date", "x-amz-security-token")


def session(profile: str | None) -> Session:
    """A botocore session for ``profile`` (None: AWS_PROFILE, else the default profile)."""
    return Session(profile=profile)


def region_of(found: Session) -> str | None:
    """The region configured for the session: AWS_REGION / AWS_DEFAULT_REGION, else the profile's ``region``."""
    return found.get_config_variable("region")


def resolve_credentials(found: Session, who: str) -> Any:
    """The credentials the chain finds (botocore's resolver, in its order), or a MissingKeyError naming the chain."""
    profile = found.profile or "default"
    try:
        credentials = found.get_credentials()
        if credentials is not None:
            credentials.get_frozen_credentials()  # loads what is loaded lazily (an SSO token, an assumed role) now
    except BotoCoreError as exc:  # a profile that does not exist, an SSO token that expired, partial keys, ...
        raise ConfigError(f"{who}: the AWS credentials could not be loaded: {exc}; fix the setting it names "
                          "(for SSO, run `aws sso login --profile ...`)") from None
    if credentials is None:
        raise MissingKeyError(
            f"{who} found no AWS credentials; it looked in {CHAIN.format(profile=repr(profile))}. "
            "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass profile=... (or set AWS_PROFILE) for a "
            "configured profile, run `aws sso login` for an SSO profile, or use a Bedrock API key: "
            "api_key=... or AWS_BEARER_TOKEN_BEDROCK"
        )
    return credentials


class SigV4(httpx.Auth):
    """Signs each request (each retry again, with its own time) with botocore's SigV4 for ``region``.

    Refreshable credentials (an assumed role, SSO, the instance role) are refreshed, off the event
    loop, when botocore says they are about to expire."""

    requires_request_body = True

    def __init__(self, credentials: Any, region: str, who: str = "llm/bedrock") -> None:
        self.credentials = credentials
        self.region = region
        self.who = who

    def __repr__(self) -> str:
        return f"SigV4(region={self.region!r})"  # never the keys

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refresh_needed = getattr(self.credentials, "refresh_needed", None)
        try:
            if refresh_needed is not None and refresh_needed():
                frozen = await asyncio.to_thread(self.credentials.get_frozen_credentials)
            else:
                frozen = self.credentials.get_frozen_credentials()
        except BotoCoreError as exc:  # a refresh failed: an SSO login or a role session that ended
            raise provider_error_type(AuthenticationError, "llm")(
                f"{self.who}: the AWS credentials could not be refreshed: {exc}; log in again (for SSO, run "
                "`aws sso login --profile ...`) or set new keys"
            ) from None
        unsigned = AWSRequest(
            method=request.method, url=str(request.url), data=request.content,
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        SigV4Auth(frozen, SERVICE, self.region).add_auth(unsigned)
        for name in _SIGNED:
            if name in unsigned.headers:
                request.headers[name] = unsigned.headers[name]
        yield request


__all__ = ["CHAIN", "SigV4", "region_of", "resolve_credentials", "session"]
