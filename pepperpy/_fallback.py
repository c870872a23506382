"""Fallback chains of LLMs: when a member fails for a reason that is not the caller's, the next one serves.

``PepperPy().with_llm(["openai", "local"])``, ``with_llm([("openai", {"model": "x"}), "local"])``, or
``register_plugin_fallbacks("llm", ["openai", "anthropic", "local"])`` (then asking for ``openai``
gets the chain). Rules:

- Members are created and opened lazily, in order: a member never reached is never installed.
- Falls through: a member that cannot be created or opened (a missing key, a failed install,
  an unreachable server), connection errors, timeouts, 429, 5xx, malformed or empty answers,
  and 401/403 (logged; ``fallback_on_auth=False`` turns that off).
- Never falls through on the caller's mistakes: an unknown or invalid option, invalid
  messages, a 400 other than "context length exceeded"; those raise at once.
- Inside a chain, remote members do not retry refused connections and do not wait for a
  ``Retry-After`` longer than ``MAX_RETRY_AFTER_S``: the next member serves instead.
- A stream falls back only before its first chunk; a failure after it raises (no duplicate output).
- ``result.metadata["fallback"]`` says which member answered and which failed, and why.
  When all fail, one ``PepperPyErrorGroup`` lists every member's failure.
- A member that failed is closed, and tried again on the next call.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pepperpy._categories import plain_name
from pepperpy._log import logger
from pepperpy.errors import (
    AuthenticationError,
    ConfigError,
    LLMError,
    MissingKeyError,
    PepperPyErrorGroup,
    ProviderError,
    UnsupportedPartError,
)
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message

MAX_RETRY_AFTER_S = 2.0
CHAIN_DEFAULTS = {"retry_connect": False, "max_retry_after": MAX_RETRY_AFTER_S}
MemberSpec = str | tuple[str, dict[str, Any]]


@dataclass
class Member:
    """One provider of a chain: its name, its own config, and the provider once created."""

    name: str
    config: dict[str, Any]
    provider: Any = None
    failures: list[str] = field(default_factory=list)


def _caller_mistake(exc: BaseException) -> bool:
    if isinstance(exc, (MissingKeyError, UnsupportedPartError)):  # another member may have the key, take the part
        return False
    if isinstance(exc, ConfigError):  # unknown or invalid option, invalid messages
        return True
    if isinstance(exc, ProviderError) and exc.status_code is not None and 400 <= exc.status_code < 500:
        if exc.status_code in (401, 403, 408, 429):
            return False
        return not (exc.status_code == 400 and "context" in str(exc).lower())
    return False


def _refuse_unknown(config: dict[str, Any], options: set[str], who: str) -> None:
    for key in config:
        if key not in options:
            close = difflib.get_close_matches(key, sorted(options), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"options are: {', '.join(sorted(options))}"
            raise ConfigError(f"unknown option {key!r} for {who}; {hint}")


class FallbackLLM(LLMProvider):
    """An LLM made of several: each call is served by the first member that can (see the module docstring)."""

    call_options: ClassVar[frozenset[str] | None] = None  # each member checks its own
    media_types: ClassVar[frozenset[str]] = frozenset({"*/*"})  # and the parts it takes

    def __init__(
        self, manager: Any, members: list[MemberSpec], shared_config: dict[str, Any] | None = None,
        fallback_on_auth: bool = True,
    ):
        super().__init__()
        self.manager = manager
        self.members = [Member(*self._spec(spec)) for spec in members]
        if not self.members:
            raise ConfigError("a fallback chain needs at least one member, e.g. with_llm(['openai', 'local'])")
        self.shared_config = dict(shared_config or {})
        self.fallback_on_auth = fallback_on_auth
        self.plugin_ids = [manager.resolve("llm", m.name)[0].id for m in self.members]  # unknown names fail now
        self._check_options()

    def _check_options(self) -> None:
        """Refuse option names no member could take, now (members not installed yet are checked when reached)."""
        known: set[str] = set(CHAIN_DEFAULTS)
        all_loaded = True
        for member in self.members:
            if self.manager.needs_install("llm", member.name) or self._isolated(member):
                all_loaded = False  # an isolated member's class loads in its worker: it checks its own options
                continue
            options = set(self.manager.load_class("llm", member.name).option_specs())
            known |= options
            _refuse_unknown(member.config, options, f"llm/{member.name} (fallback member)")
        if all_loaded:
            _refuse_unknown(self.shared_config, known, "every member of the fallback chain")

    def _spec(self, spec: MemberSpec) -> tuple[str, dict[str, Any]]:
        exists = getattr(self.manager, "has_provider", None)
        if isinstance(spec, str):
            return plain_name("llm", spec, exists), {}
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
            return plain_name("llm", spec[0], exists), dict(spec[1])
        raise ConfigError(f"a fallback member is a name or a (name, config) pair, not {spec!r:.80}")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.plugin_ids[0].rsplit("/", 1)[-1]

    @property
    def plugin_id(self) -> str:  # type: ignore[override]
        return self.plugin_ids[0]

    def __repr__(self) -> str:
        return f"FallbackLLM({', '.join(self.plugin_ids)})"

    # -- members ---------------------------------------------------------------------

    def _isolated(self, member: Member) -> bool:
        from pepperpy._isolation import is_isolated

        return is_isolated(self.manager, "llm", member.name, member.config)

    def _member_config(self, member: Member) -> dict[str, Any]:
        if self._isolated(member):
            return dict(member.config)
        options = self.manager.load_class("llm", member.name).option_specs()
        shared = {k: v for k, v in {**CHAIN_DEFAULTS, **self.shared_config}.items() if k in options}
        return {**shared, **member.config}

    async def _opened(self, member: Member) -> Any:
        if member.provider is None:
            def create() -> Any:
                return self.manager.create_plugin_provider("llm", member.name, **self._member_config(member))

            member.provider = await asyncio.to_thread(create)
        await member.provider.initialize()
        return member.provider

    async def _failed(self, member: Member, exc: Exception, failures: list[tuple[str, Exception]]) -> None:
        """Record a failure that falls through (or re-raise one that must not), and close what it opened."""
        opening = member.provider is None or not member.provider.initialized
        if (not opening and _caller_mistake(exc)) or (opening and isinstance(exc, ConfigError) and not isinstance(exc, MissingKeyError)):
            raise exc
        if isinstance(exc, AuthenticationError):
            logger.warning("fallback: {} rejected the credentials: {}", member.name, exc)
            if not self.fallback_on_auth:
                raise exc
        failures.append((member.name, exc))
        if member.provider is not None:
            try:
                await member.provider.cleanup()
            except Exception as cleanup_error:  # the member failed already; report and go on
                logger.warning("fallback: closing {} failed: {}", member.name, cleanup_error)

    async def cleanup(self) -> None:
        for member in reversed(self.members):
            if member.provider is not None:
                await member.provider.cleanup()

    @staticmethod
    def _report(served_by: str, failures: list[tuple[str, Exception]]) -> dict[str, Any]:
        failed = [{"member": name, "error": f"{type(exc).__name__}: {exc}"} for name, exc in failures]
        return {"served_by": served_by, "failed": failed}

    def _all_failed(self, failures: list[tuple[str, Exception]]) -> PepperPyErrorGroup:
        names = ", ".join(name for name, _ in failures)
        for name, exc in failures:
            exc.add_note(f"(fallback member {name!r})")
        return PepperPyErrorGroup(f"every member of the llm fallback chain failed ({names})", [e for _, e in failures])

    # -- calls -------------------------------------------------------------------------

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        failures: list[tuple[str, Exception]] = []
        for member in self.members:
            try:
                provider = await self._opened(member)
                result = await provider.generate(messages, **options)
                if not result.content.strip() and not result.tool_calls:
                    raise LLMError(f"{provider.plugin_id}: the answer was empty")
            except Exception as exc:
                await self._failed(member, exc, failures)
                continue
            result.metadata = {**result.metadata, "fallback": self._report(member.name, failures)}
            return result
        raise self._all_failed(failures)

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        failures: list[tuple[str, Exception]] = []
        for member in self.members:
            try:
                provider = await self._opened(member)
                chunks = provider.generate_stream(messages, **options)
                first = await anext(chunks)
            except StopAsyncIteration:
                await self._failed(member, LLMError(f"llm/{member.name}: the stream ended without a chunk"), failures)
                continue
            except Exception as exc:
                await self._failed(member, exc, failures)
                continue
            async with aclosing(chunks):
                first.metadata = {**first.metadata, "fallback": self._report(member.name, failures)}
                yield first
                async for chunk in chunks:  # after the first chunk, a failure raises: output is never repeated
                    yield chunk
            return
        raise self._all_failed(failures)


__all__ = ["FallbackLLM", "MAX_RETRY_AFTER_S", "Member"]
