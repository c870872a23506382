"""An OpenTelemetry span per LLM call, following the GenAI semantic conventions, when opentelemetry-api is installed.

PepperPy never depends on OpenTelemetry: without it no hook is added. With it, the
spans go wherever the application's tracer provider sends them; while no tracer provider
is set (OpenTelemetry's default, where every span would be dropped), the hook is skipped,
checked at every call, so a provider set later is used from the next call on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pepperpy._tally import StreamTally
from pepperpy.hooks import Call, CallNext, Hook, closing_stream
from pepperpy.llm import GenerationChunk, Usage

# Usage details, where the service reports them (GenAI semantic conventions' names).
_USAGE_DETAILS = {"cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
                  "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
                  "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens"}
_REQUEST_OPTIONS = {"temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
                    "top_p": "gen_ai.request.top_p", "seed": "gen_ai.request.seed"}


def tracing_hook() -> Hook | None:
    """The tracing hook, or None when OpenTelemetry is not installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    from pepperpy._version import __version__

    return Tracer(trace, trace.get_tracer("pepperpy", __version__))


class Tracer:
    """Wraps each call in a ``chat {model}`` CLIENT span (streams: until the last chunk)."""

    def __init__(self, trace: Any, tracer: Any):
        self.trace, self.tracer = trace, tracer
        self._unset = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)

    def enabled(self) -> bool:
        """False while no tracer provider is set: spans would go nowhere, so the call skips this hook."""
        return not isinstance(self.trace.get_tracer_provider(), self._unset)

    def _start(self, call: Call) -> Any:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.provider.rsplit("/", 1)[-1],
        }
        if call.model:
            attributes["gen_ai.request.model"] = call.model
        if call.conversation_id:
            attributes["gen_ai.conversation.id"] = call.conversation_id
        for option, attribute in _REQUEST_OPTIONS.items():
            value = call.options.get(option)
            if isinstance(value, (int, float)):
                attributes[attribute] = value
        name = f"chat {call.model}" if call.model else "chat"
        return self.tracer.start_span(name, kind=self.trace.SpanKind.CLIENT, attributes=attributes)

    @staticmethod
    def _finish(span: Any, usage: Usage | None, metadata: dict[str, Any]) -> None:
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            for field, attribute in _USAGE_DETAILS.items():
                if getattr(usage, field) is not None:
                    span.set_attribute(attribute, getattr(usage, field))
        if metadata.get("model"):
            span.set_attribute("gen_ai.response.model", str(metadata["model"]))
        if metadata.get("finish_reason"):
            span.set_attribute("gen_ai.response.finish_reasons", [str(metadata["finish_reason"])])
        if metadata.get("cache") == "hit":
            span.set_attribute("pepperpy.cache_hit", True)

    def _failed(self, span: Any, exc: BaseException) -> None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, str(exc)[:200]))

    async def __call__(self, call: Call, call_next: CallNext) -> Any:
        span = self._start(call)
        if call.stream:
            try:
                with self.trace.use_span(span, end_on_exit=False):
                    chunks = await call_next(call)
            except BaseException as exc:
                self._failed(span, exc)
                span.end()
                raise
            return self._traced_stream(span, chunks)
        try:
            with self.trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = await call_next(call)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        else:
            self._finish(span, result.usage, result.metadata)
        finally:
            span.end()
        return result

    async def _traced_stream(self, span: Any, chunks: Any) -> AsyncIterator[GenerationChunk]:
        tally = StreamTally()
        try:
            async with closing_stream(chunks) as stream:
                async for chunk in stream:
                    tally.add(chunk)
                    yield chunk
        except GeneratorExit:  # the caller stopped reading: not an error
            span.set_attribute("pepperpy.stream_closed_early", True)
            raise
        except BaseException as exc:
            self._failed(span, exc)
            raise
        else:
            self._finish(span, tally.usage, {**tally.metadata, "finish_reason": tally.finish_reason})
        finally:
            span.end()


__all__ = ["Tracer", "tracing_hook"]
