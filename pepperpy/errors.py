"""PepperPy's exceptions: one root, branches by whose fault it is.

    PepperPyError
    ├── ConfigError                  the caller's mistake: unknown or invalid option
    │   ├── MissingKeyError          a required key (API key) is not set anywhere
    │   ├── TemplateError            a saved template is missing, does not parse, or lacks a variable
    │   ├── InvalidInputError        a call's input is wrong (messages, builder arguments)
    │   │   ├── UnsupportedPartError a provider cannot take a part of a message (an image, a file)
    │   │   └── FileLoadError        a file no loader can read (encrypted, damaged, no text, unknown suffix)
    │   └── RecordingError           a recording (pepperpy.hooks.record) has no answer to a request, or is unreadable
    ├── PluginError                  a plugin folder, its class or its machinery
    │   ├── PluginNotFoundError      no plugin with that id (lists close names)
    │   ├── PluginManifestError      plugin.json or requirements.txt is broken
    │   ├── PluginLoadError          the entry point cannot be imported or is not a valid provider
    │   ├── PluginInstallError       uv could not install its requirements (or the home is unwritable)
    │   └── PluginDependencyError    conflicting versions; a missing required plugin, a dependency cycle
    ├── ProviderError                the service, model or store behind a provider
    │   ├── LLMError                 raised by an LLM provider
    │   │   ├── LLMAuthenticationError, LLMRateLimitError, LLMTimeoutError
    │   ├── AuthenticationError      rejected credentials (never retried)
    │   ├── RateLimitError           429 after the retry budget
    │   ├── ProviderTimeoutError     no answer within the timeout
    │   └── ToolError                a tool's server crashed, hung past its timeout or spoke garbage
    └── PepperPyErrorGroup           several failures at once (also an ExceptionGroup)

The ``LLM*`` variants let ``except LLMError`` catch every failure of an LLM call while
``except AuthenticationError`` still catches it from any category; an embeddings failure
is never an ``LLMError``. Every message names the plugin, file or setting involved and
ends with what to do.
"""

from __future__ import annotations

from collections.abc import Sequence


class PepperPyError(Exception):
    """Root of every error PepperPy raises."""


class ConfigError(PepperPyError):
    """A setting is unknown, missing or invalid."""


class MissingKeyError(ConfigError):
    """A required key (usually an API key) is set neither in the call, the environment nor keys.json."""


class TemplateError(ConfigError):
    """A template (``<home>/templates/NAME.yaml``) is missing or broken, or a variable is missing or unknown.

    ``path`` is the template's file and ``variable`` the variable involved (None when none is)."""

    def __init__(self, message: str, path: object = None, variable: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.variable = variable

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str | None]]:
        return type(self), (str(self), self.path, self.variable)


class InvalidInputError(ConfigError):
    """The input of a call is invalid: messages, builder arguments, documents."""


class UnsupportedPartError(InvalidInputError):
    """A provider (or its model) cannot take a part of a message; a fallback chain moves on to its next member.

    ``part`` is the part refused (None when the error crossed from a worker process)."""

    def __init__(self, message: str, part: object = None):
        super().__init__(message)
        self.part = part


class FileLoadError(InvalidInputError):
    """A file that cannot be turned into documents; ``path`` names it and ``reason`` says why and what to do."""

    def __init__(self, path: object, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses worker processes with both fields
        return type(self), (self.path, self.reason)


class RecordingError(ConfigError):
    """A recording of LLM calls (``pepperpy.hooks.record``, ``with_recording``, the ``pepperpy_recording`` fixture)
    cannot answer a request in replay, or cannot be read or written; the message names the file."""


class PluginError(PepperPyError):
    """Something is wrong with a plugin folder, its provider class, or loading it."""


class PluginNotFoundError(PluginError):
    """No plugin matches the requested category/name."""


class PluginManifestError(PluginError):
    """A plugin.json or requirements file is invalid."""


class PluginLoadError(PluginError):
    """A plugin's entry point could not be imported or is not a valid provider."""


class PluginInstallError(PluginError):
    """A plugin's requirements could not be installed."""


class PluginDependencyError(PluginError):
    """A plugin's requirements conflict with what is loaded, or its plugin dependencies are missing or circular."""


class ProviderError(PepperPyError):
    """The backend behind a provider failed; the backend's message is kept."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retryable: bool = False, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the service asked us to wait (Retry-After)


class LLMError(ProviderError):
    """An LLM backend failed."""


class AuthenticationError(ProviderError):
    """The backend rejected the credentials."""


class RateLimitError(ProviderError):
    """The backend kept answering 429 beyond the retry budget."""


class ProviderTimeoutError(ProviderError):
    """The backend did not answer within the configured timeout."""


class ToolError(ProviderError):
    """A tool could not be run: its MCP server crashed, hung past ``tool_timeout`` or answered garbage.
    The message names the server and the tool. (A tool that reports an error is not one: the model is told.)"""


class LLMAuthenticationError(AuthenticationError, LLMError):
    """An LLM service rejected the credentials."""


class LLMRateLimitError(RateLimitError, LLMError):
    """An LLM service kept answering 429."""


class LLMTimeoutError(ProviderTimeoutError, LLMError):
    """An LLM call hit its time limit."""


_LLM_VARIANTS: dict[type[ProviderError], type[ProviderError]] = {
    ProviderError: LLMError,
    AuthenticationError: LLMAuthenticationError,
    RateLimitError: LLMRateLimitError,
    ProviderTimeoutError: LLMTimeoutError,
}


def provider_error_type(kind: type[ProviderError], category: str) -> type[ProviderError]:
    """The class to raise for a ``kind`` of failure in a provider of ``category`` (LLM variants for ``llm``)."""
    return _LLM_VARIANTS.get(kind, kind) if category == "llm" else kind


class PepperPyErrorGroup(PepperPyError, ExceptionGroup):  # type: ignore[misc]
    """Several failures at once (e.g. providers that failed to open); ``except*`` works on it."""

    def __new__(cls, message: str, errors: Sequence[Exception]) -> PepperPyErrorGroup:
        return super().__new__(cls, message, errors)

    def __init__(self, message: str, errors: Sequence[Exception]):
        super().__init__(message, errors)

    def derive(self, errors: Sequence[Exception]) -> PepperPyErrorGroup:  # type: ignore[override]
        return PepperPyErrorGroup(self.message, errors)

    def __str__(self) -> str:
        lines = [f"{self.message} ({len(self.exceptions)} errors):"]
        lines += [f"  {type(e).__name__}: {e}" + "".join(f" {n}" for n in getattr(e, "__notes__", ())) for e in self.exceptions]
        return "\n".join(lines)


__all__ = [
    "AuthenticationError",
    "ConfigError",
    "FileLoadError",
    "InvalidInputError",
    "LLMAuthenticationError",
    "LLMError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "MissingKeyError",
    "PepperPyError",
    "PepperPyErrorGroup",
    "PluginDependencyError",
    "PluginError",
    "PluginInstallError",
    "PluginLoadError",
    "PluginManifestError",
    "PluginNotFoundError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RecordingError",
    "TemplateError",
    "ToolError",
    "provider_error_type",
]
