"""llm/bedrock's checks before any request: AWS credentials (naming the chain it tried), the region, Bedrock's
documented image and document limits, reasoning on a model family it does not map; and its event-stream
reader against botocore's on the recorded ConverseStream bytes. A base_url nothing listens on shows no
request was needed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, InvalidInputError, MissingKeyError, ProviderError, UnsupportedPartError
from pepperpy.http import EventTooLarge
from pepperpy.llm import Message, MessageRole
from pepperpy.parts import Audio, File, Image, TextPart

NOWHERE = "http://127.0.0.1:9"  # the discard port: a request would fail with a connection error instead
MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
RECORDED_STREAM = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "bedrock" / "test_bedrock_model_thinking_part_stream.yaml"


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No AWS settings at all: no keys, no files, no instance metadata service to ask."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.fixture
def keys(no_aws, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLENOTREAL03")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret-not-real")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def wire(builtin_manager) -> Any:
    provider_class = builtin_manager.load_class("llm", "bedrock")
    return importlib.import_module(provider_class.__module__.rsplit(".", 1)[0] + ".wire")


def body(builtin_manager, *messages: Message, model: str = MODEL, **options: Any) -> dict[str, Any]:
    defaults = {"model": model, "structured_output": "tool"}
    return wire(builtin_manager).request_body("llm/bedrock", defaults, list(messages), options)


def user(*content: Any) -> Message:
    return Message(role=MessageRole.USER, content=list(content))


async def test_missing_credentials_name_the_chain_tried_and_what_to_do(builtin_manager, no_aws):
    with pytest.raises(MissingKeyError) as caught:  # when it opens: the chain is looked through once, off the loop
        async with PepperPy(plugin_manager=builtin_manager).with_llm("bedrock", region="us-east-1", base_url=NOWHERE) as pepper:
            await pepper.chat.with_user("Hello").generate()
    message = str(caught.value)
    assert message.startswith("llm/bedrock found no AWS credentials")
    for tried in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "the profile 'default'", "SSO", "instance role",
                  "container", "AWS_PROFILE", "aws sso login", "AWS_BEARER_TOKEN_BEDROCK"):
        assert tried in message


async def test_an_expired_sso_login_says_to_log_in_again(builtin_manager, no_aws):
    (no_aws / "aws-config").write_text(
        "[profile work]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
        "sso_account_id = 123456789012\nsso_role_name = Dev\nregion = eu-central-1\n"
    )
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("bedrock", profile="work", base_url=NOWHERE)
    with pytest.raises(ConfigError, match="could not be loaded: .*SSO Token.*aws sso login"):
        async with pepper:
            await pepper.chat.with_user("Hello").generate()
    assert builtin_manager.create_provider("llm", "bedrock", profile="work").region == "eu-central-1", "the profile's region"


async def test_a_profile_s_keys_are_used(builtin_manager, no_aws):
    (no_aws / "aws-credentials").write_text(
        "[work]\naws_access_key_id = AKIDPROFILENOTREAL04\naws_secret_access_key = profileSecretNotReal\n"
    )
    async with PepperPy(plugin_manager=builtin_manager).with_llm("bedrock", profile="work", region="us-east-2") as pepper:
        signer = pepper.llm.endpoint.auth
        assert signer.credentials.access_key == "AKIDPROFILENOTREAL04" and "profileSecret" not in repr(signer)
        assert pepper.llm.base_url == "https://bedrock-runtime.us-east-2.amazonaws.com"


def test_a_missing_region_says_where_to_set_one(builtin_manager, no_aws):
    with pytest.raises(ConfigError, match="needs an AWS region: pass region=.*AWS_REGION"):
        builtin_manager.create_provider("llm", "bedrock")
    with pytest.raises(ConfigError, match="needs an AWS region"):  # an endpoint alone: still a region to sign for
        builtin_manager.create_provider("llm", "bedrock", base_url=NOWHERE)
    assert builtin_manager.create_provider("llm", "bedrock", base_url=NOWHERE, api_key="not-real").region is None


def test_images_and_documents_go_as_bytes_with_their_formats(builtin_manager, keys, tmp_path):
    pdf = tmp_path / "my.contract_v2 (final).pdf"
    pdf.write_bytes(b"%PDF-1.4 test")
    sent = body(builtin_manager, user("Compare", Image(PNG), File(pdf), File(b"a,b\n1,2\n", "text/csv")))
    image, document, table = sent["messages"][0]["content"][1:]
    assert image == {"image": {"format": "png", "source": {"bytes": Image(PNG).base64()}}}
    assert document["document"]["format"] == "pdf" and document["document"]["name"] == "my contract v2 (final)"
    assert table["document"]["format"] == "csv" and table["document"]["name"] == "Document 2"
    conforms(sent)


def conforms(sent: dict[str, Any]) -> None:
    """The body validates against botocore's Converse service model (a misspelled field fails)."""
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    shape = get_session().get_service_model("bedrock-runtime").operation_model("Converse").input_shape
    report = ParamValidator().validate({"modelId": MODEL, **sent}, shape)
    assert not report.has_errors(), report.generate_report()


def test_bedrock_s_size_and_count_limits_are_checked_before_sending(builtin_manager, keys):
    with pytest.raises(UnsupportedPartError, match="3.75 MB per image"):
        body(builtin_manager, user("Look", Image(PNG + b"\x00" * 3_750_000)))
    with pytest.raises(InvalidInputError, match="4.5 MB per document"):
        body(builtin_manager, user("Read", File(b"%PDF-" + b"\x00" * 4_500_000, name="big")))
    with pytest.raises(InvalidInputError, match="at most 5 documents per request"):
        body(builtin_manager, user("Read", *[File(b"%PDF-1.4", name=f"doc {i}") for i in range(6)]))
    with pytest.raises(InvalidInputError, match="document name 'notes.v2' is not one Bedrock takes"):
        body(builtin_manager, user("Read", File(b"%PDF-1.4", name="notes.v2")))
    with pytest.raises(InvalidInputError, match="Converse takes bytes"):
        body(builtin_manager, user("Look", Image("https://example.com/cat.png")))


async def test_a_part_bedrock_cannot_take_fails_before_any_request(builtin_manager, keys):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("bedrock", base_url=NOWHERE) as pepper:
        with pytest.raises(InvalidInputError, match="llm/bedrock .*cannot take the audio part"):
            await pepper.chat.with_user("Listen", Audio(b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav")).generate()


def test_reasoning_maps_per_model_family(builtin_manager, keys):
    hello = Message(role=MessageRole.USER, content="Hi")
    claude = body(builtin_manager, hello, reasoning="high", max_tokens=1000)
    assert claude["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 16384}}
    assert claude["inferenceConfig"]["maxTokens"] == 1000 + 16384, "the budget comes on top of the answer's tokens"
    assert body(builtin_manager, hello, reasoning=2048)["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2048
    assert "additionalModelRequestFields" not in body(builtin_manager, hello, reasoning=False)
    conforms(claude)
    nova = body(builtin_manager, hello, model="us.amazon.nova-2-lite-v1:0", reasoning="low")
    assert nova["additionalModelRequestFields"] == {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}
    with pytest.raises(InvalidInputError, match="not for meta.llama3-1-8b-instruct-v1:0; .*additional_model_request_fields"):
        body(builtin_manager, hello, model="meta.llama3-1-8b-instruct-v1:0", reasoning=True)


def test_consecutive_tool_results_and_a_user_turn_join_one_user_turn(builtin_manager, keys):
    from pepperpy.llm import ToolCall

    calls = [ToolCall(id="a", name="f", arguments={}), ToolCall(id="b", name="f", arguments={"x": 1})]
    sent = body(builtin_manager, Message(role=MessageRole.USER, content="Go"),
                Message(role=MessageRole.ASSISTANT, content="", tool_calls=calls),
                Message(role=MessageRole.TOOL, content="1", tool_call_id="a"),
                Message(role=MessageRole.TOOL, content="2", tool_call_id="b"),
                Message(role=MessageRole.USER, content="And?"))
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assert [list(block) for block in sent["messages"][2]["content"]] == [["toolResult"], ["toolResult"], ["text"]]
    assert sent["messages"][1]["content"] == [{"toolUse": {"toolUseId": "a", "name": "f", "input": {}}},
                                              {"toolUse": {"toolUseId": "b", "name": "f", "input": {"x": 1}}}]


def recorded_stream() -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.cassette_server import load_cassette

    return load_cassette(RECORDED_STREAM)[0].body


def decoder_module(builtin_manager) -> Any:
    provider_class = builtin_manager.load_class("llm", "bedrock")
    return importlib.import_module(provider_class.__module__.rsplit(".", 1)[0] + ".eventstream")


def test_the_event_stream_reader_agrees_with_botocore_s_byte_by_byte(builtin_manager):
    from botocore.eventstream import EventStreamBuffer

    data = recorded_stream()
    reader = decoder_module(builtin_manager).EventStreamDecoder(1024 * 1024)
    ours = [frame for i in range(len(data)) for frame in reader.feed(data[i:i + 1])]
    theirs = EventStreamBuffer()
    theirs.add_data(data)
    expected = [(m.headers[":event-type"], m.payload.decode()) for m in theirs]
    assert [(f.event, f.data) for f in ours] == expected and expected


def test_a_corrupted_or_oversized_frame_is_refused(builtin_manager):
    module = decoder_module(builtin_manager)
    data = bytearray(recorded_stream())
    data[40] ^= 0xFF  # a byte of the first frame's headers
    with pytest.raises(ProviderError, match="malformed event-stream frame: its message checksum does not match"):
        module.EventStreamDecoder(1024 * 1024).feed(bytes(data))
    with pytest.raises(EventTooLarge):
        module.EventStreamDecoder(64).feed(recorded_stream()[:12])  # refused from its prelude alone


def test_a_tool_result_with_an_image_keeps_it_as_an_image_block(builtin_manager, keys):
    """An MCP tool's result (text and an image) stays whole in its toolResult; a plain one stays text."""
    from pepperpy.llm import ToolCall

    calls = [ToolCall(id="a", name="picture", arguments={}), ToolCall(id="b", name="add", arguments={})]
    sent = body(builtin_manager, Message(role=MessageRole.USER, content="Go"),
                Message(role=MessageRole.ASSISTANT, content="", tool_calls=calls),
                Message(role=MessageRole.TOOL, content=[TextPart(text="a dot"), Image(PNG)], tool_call_id="a"),
                Message(role=MessageRole.TOOL, content="5", tool_call_id="b"))
    picture, added = (block["toolResult"]["content"] for block in sent["messages"][2]["content"])
    assert picture == [{"text": "a dot"}, {"image": {"format": "png", "source": {"bytes": Image(PNG).base64()}}}]
    assert added == [{"text": "5"}]
    conforms(sent)
