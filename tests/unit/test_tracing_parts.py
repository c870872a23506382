"""OpenTelemetry spans and parts: the spans carry the GenAI call attributes (operation, provider, model, usage)
and no message content at all (PepperPy does not record prompts or answers in spans), so media bytes, their
base64 and reasoning payloads never reach a span, for a whole answer or a stream."""

from __future__ import annotations

import base64

import pytest

from pepperpy import Image, PepperPy
from pepperpy._tracing import Tracer
from pepperpy.llm import Message, MessageRole, ReasoningPart, TextPart

PNG = b"\x89PNG\r\n\x1a\n" + b"pixel-bytes-0123456789" * 8


def everything_recorded(spans) -> str:
    """Every name, attribute and event of the spans, as one text."""
    pieces = []
    for span in spans:
        pieces += [span.name, repr(dict(span.attributes))]
        pieces += [f"{event.name} {dict(event.attributes or {})!r}" for event in span.events]
    return "\n".join(pieces)


async def test_spans_carry_no_media_bytes_and_no_reasoning_payload(builtin_manager):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # this test's own: the process-wide provider is left alone
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hook = Tracer(trace, provider.get_tracer("test"))
    earlier = Message(role=MessageRole.ASSISTANT, content=[
        ReasoningPart(text="private thoughts", signature="sig-secret-1", encrypted="enc-secret-2"), TextPart(text="A cat."),
    ])
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(hook) as pepper:
        chat = pepper.chat.with_user("What is this?", Image(PNG)).with_messages([earlier]).with_user("Sure?", Image(PNG))
        await chat.generate()
        [chunk async for chunk in chat.stream()]
    spans = exporter.get_finished_spans()
    assert len(spans) == 2 and all(dict(s.attributes)["gen_ai.operation.name"] == "chat" for s in spans)
    recorded = everything_recorded(spans)
    for secret in ("pixel-bytes", base64.b64encode(PNG).decode()[:40], "data:image", "private thoughts",
                   "sig-secret-1", "enc-secret-2", "What is this?"):
        assert secret not in recorded
