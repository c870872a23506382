"""llm/bedrock against recorded Bedrock traffic (tests/fixtures/cassettes/bedrock, recorded from the real service
by pydantic-ai's test suite: Converse JSON, and ConverseStream's binary event-stream frames), served from
127.0.0.1 by tests/cassette_server.py.

Each test checks that every part of the recorded answer is parsed and that the request llm/bedrock builds for
the same input carries what the recorded request carried, validated against botocore's Converse service model
(a misspelled field fails), and signed with a SigV4 signature that botocore computes again from the bytes
received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session
from botocore.validate import ParamValidator
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import LLMError
from pepperpy.llm import Message, MessageRole, ReasoningPart, TextPart
from pepperpy.parts import File
from tests.cassette_server import CassetteServer, Interaction, Received

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "bedrock"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLENOTREAL01", "recorded-test-secret-not-real"
CONVERSE = get_session().get_service_model("bedrock-runtime").operation_model("Converse").input_shape


def conforms(body: dict[str, Any], path: str) -> None:
    """The body (with the model id of its path) validates against botocore's Converse input shape."""
    params = {"modelId": unquote(path.split("/")[2]), **body}
    report = ParamValidator().validate(params, CONVERSE)
    assert not report.has_errors(), report.generate_report()


def signed_correctly(request: Received, base_url: str) -> None:
    """botocore, given the bytes received, computes the same SigV4 signature the request carries."""
    authorization = request.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/") and SECRET_KEY not in authorization
    date = request.headers["x-amz-date"]
    again = AWSRequest(method=request.method, url=base_url + request.path, data=request.body,
                       headers={"content-type": request.headers["content-type"], "X-Amz-Date": date})
    again.context["timestamp"] = date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", "us-east-1")
    signature = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert authorization.endswith(f"Signature={signature}")


def without_empty(body: dict[str, Any]) -> dict[str, Any]:
    """A body without empty fields (the recorder sends "system": [] and "inferenceConfig": {}; we leave them out)."""
    return {key: value for key, value in body.items() if value not in ([], {})}


@pytest.fixture(scope="module")
def cassettes() -> Iterator[CassetteServer]:
    server = CassetteServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, tmp_path):
    """Static test keys from the environment, and no ~/.aws files of this machine's user."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def bedrock(remote_manager, server: CassetteServer, model: str, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm(
        "bedrock", base_url=server.base_url, model=model, max_retries=0, **config
    )


def sent(server: CassetteServer, recorded: list[Interaction]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(our request body, the recorded one) for each request: same path, conforming, correctly signed."""
    assert len(server.requests) == len(recorded)
    pairs = []
    for request, interaction in zip(server.requests, recorded):
        assert request.path == interaction.path
        body = request.json()
        conforms(body, request.path)
        signed_correctly(request, server.base_url)
        pairs.append((without_empty(body), without_empty(interaction.request_json())))
    return pairs


async def test_text_answer_system_and_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        result = await pepper.chat.with_system("You are a chatbot.").with_user("Hello!").generate()
    assert result.content.startswith("Hello! How can I assist you today?") and result.content.endswith("here to help.")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 30)
    assert result.metadata["finish_reason"] == "stop" and result.metadata["stop_reason"] == "end_turn"
    assert result.metadata["latency_ms"] == 268 and result.reasoning == ""
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


async def test_stream_frames_deltas_finish_and_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_stream.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What is the capital of France?")
        chunks = [chunk async for chunk in chat.with_options(temperature=0.0).stream()]
    text = "".join(c.content for c in chunks)
    assert text.startswith("The capital of France is Paris. Paris is not only the capital city but also the most")
    assert len([c for c in chunks if c.content]) > 10, "one chunk per recorded contentBlockDelta"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].metadata["stop_reason"] == "end_turn"
    assert chunks[-1].usage.prompt_tokens > 0 and chunks[-1].usage.completion_tokens > 0
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


async def test_max_tokens_is_sent_and_length_reported(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_max_tokens.yaml")
    theirs_body = recorded[0].request_json()
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system(theirs_body["system"][0]["text"]).with_user(theirs_body["messages"][0]["content"][0]["text"])
        result = await chat.with_options(max_tokens=theirs_body["inferenceConfig"]["maxTokens"]).generate()
    assert result.metadata["finish_reason"] == "length"
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs
