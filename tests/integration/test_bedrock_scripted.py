"""llm/bedrock against the local scripted server, for what the recordings do not hold: a throttled request
retried (and signed again), AccessDeniedException and a ValidationException passed through, exception
events inside a stream (expired credentials, throttling), a stream cut before messageStop, redacted
reasoning sent back, a Bedrock API key instead of SigV4. Replies follow the Converse API's documented format
(tests/bedrock_frames.py writes the event-stream frames)."""

from __future__ import annotations

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from pepperpy import PepperPy
from pepperpy.errors import AuthenticationError, LLMError, ProviderError, RateLimitError
from pepperpy.llm import ReasoningPart
from tests.bedrock_frames import exception, text_stream
from tests.integration.conftest import use_test_aws_keys
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLENOTREAL02", "scripted-test-secret-not-real"
MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
EVENT_STREAM = {"content-type": "application/vnd.amazon.eventstream"}
CONVERSE = get_session().get_service_model("bedrock-runtime").operation_model("Converse").input_shape


def answer(*content: dict, stop: str = "end_turn") -> dict:
    return {"output": {"message": {"role": "assistant", "content": list(content)}}, "stopReason": stop,
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}, "metrics": {"latencyMs": 9}}


def aws_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status=status, json={"message": message}, headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"})


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, tmp_path):
    use_test_aws_keys(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY)


@pytest.fixture
async def pepper(remote_manager, scripted):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "bedrock", base_url=scripted.base_url, region="eu-west-1", model=MODEL, max_retries=1, retry_budget=5
    ) as ready:
        yield ready


async def test_a_throttled_request_is_retried_and_signed_again(pepper, scripted):
    scripted.reset(aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
                   Reply(json=answer({"text": "Hi."})))
    result = await pepper.chat.with_user("Hello").generate()
    assert result.content == "Hi." and len(scripted.requests) == 2
    for request in scripted.requests:
        assert "/eu-west-1/bedrock/aws4_request" in request.headers["authorization"]
        assert request.path.endswith("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse")


async def test_a_stream_is_retried_while_throttled_before_its_answer(pepper, scripted):
    scripted.reset(aws_error(429, "ThrottlingException", "Too many requests"),
                   Reply(raw=text_stream("Hel", "lo"), headers=EVENT_STREAM))
    chunks = [chunk async for chunk in pepper.chat.with_user("Hello").stream()]
    assert "".join(c.content for c in chunks) == "Hello" and chunks[-1].usage.prompt_tokens == 5


async def test_access_denied_passes_the_service_message_with_what_to_check(pepper, scripted):
    message = "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: bedrock:InvokeModel"
    scripted.reset(aws_error(403, "AccessDeniedException", message))
    with pytest.raises(AuthenticationError) as caught:
        await pepper.chat.with_user("Hello").generate()
    text = str(caught.value)
    assert f"AccessDeniedException: {message}" in text and "bedrock:InvokeModel" in text
    assert "check the AWS credentials" in text and "API key" not in text and SECRET_KEY not in text
    assert len(scripted.requests) == 1, "a 403 is not retried"


async def test_a_validation_error_passes_through_unretried(pepper, scripted):
    scripted.reset(aws_error(400, "ValidationException", "The model returned the following errors: max_tokens: ..."))
    with pytest.raises(ProviderError, match="HTTP 400 .*ValidationException: The model returned the following errors"):
        await pepper.chat.with_user("Hello").generate()
    assert len(scripted.requests) == 1


async def test_expired_credentials_mid_stream_keep_the_partial_answer(pepper, scripted):
    expired = exception("validationException", "The security token included in the request is expired")
    scripted.reset(Reply(raw=text_stream("Hel", "lo", stop=None) + expired, headers=EVENT_STREAM))
    seen = []
    with pytest.raises(AuthenticationError) as caught:
        async for chunk in pepper.chat.with_user("Hello").stream():
            seen.append(chunk.content)
    assert seen == ["Hel", "lo"]
    text = str(caught.value)
    assert "validationException in the stream: The security token included in the request is expired" in text
    assert "aws sso login" in text and "the chunks already received stand" in text
    assert len(scripted.requests) == 1, "a stream that began is never sent again"


async def test_throttling_inside_a_stream_is_a_rate_limit_error(pepper, scripted):
    throttled = exception("throttlingException", "Too many tokens, please wait before trying again.")
    scripted.reset(Reply(raw=text_stream("Hel", stop=None) + throttled, headers=EVENT_STREAM))
    with pytest.raises(RateLimitError, match="throttlingException in the stream: Too many tokens"):
        [chunk async for chunk in pepper.chat.with_user("Hello").stream()]


async def test_a_stream_cut_before_message_stop_is_an_error(pepper, scripted):
    scripted.reset(Reply(raw=text_stream("Hel", stop=None), headers=EVENT_STREAM))
    with pytest.raises(LLMError, match="ended before messageStop"):
        [chunk async for chunk in pepper.chat.with_user("Hello").stream()]


async def test_redacted_reasoning_goes_back_unchanged(pepper, scripted):
    scripted.reset(Reply(json=answer({"reasoningContent": {"redactedContent": "RW5jcnlwdGVkIHRoaW5raW5n"}}, {"text": "42"})),
                   Reply(json=answer({"text": "Yes."})))
    conversation = pepper.conversation()
    first = await conversation.say("Think hard")
    await conversation.say("Sure?")
    assert first.content == "42" and first.reasoning == ""
    (kept,) = [p for p in conversation.messages[1].content if isinstance(p, ReasoningPart)]
    assert kept.encrypted == "RW5jcnlwdGVkIHRoaW5raW5n"
    body = scripted.requests[1].json()
    assert body["messages"][1]["content"][0] == {"reasoningContent": {"redactedContent": "RW5jcnlwdGVkIHRoaW5raW5n"}}
    report = ParamValidator().validate({"modelId": MODEL, **body}, CONVERSE)
    assert not report.has_errors(), report.generate_report()


async def test_a_bedrock_api_key_is_a_bearer_token_instead_of_a_signature(remote_manager, scripted):
    scripted.reset(Reply(json=answer({"text": "Hi."})))
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "bedrock", base_url=scripted.base_url, region="us-west-2", model=MODEL, api_key="bedrock-api-key-not-real"
    ) as pepper:
        assert "bedrock-api-key-not-real" not in repr(pepper.llm)
        await pepper.chat.with_user("Hello").generate()
    headers = scripted.requests[0].headers
    assert headers["authorization"] == "Bearer bedrock-api-key-not-real" and "x-amz-date" not in headers
