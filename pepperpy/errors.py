"""PepperPy's exceptions: one root, branches by whose fault it is.

    PepperPyError
    ├── ConfigError                  the caller's mistake: unknown option, missing key
    ├── PluginError                  a plugin folder or its machinery
    │   ├── PluginNotFoundError      no plugin with that id (lists close names)
    │   ├── PluginManifestError      plugin.json is broken
    │   ├── PluginLoadError          the entry point cannot be imported
    │   ├── PluginInstallError       uv could not install its requirements
    │   └── PluginDependencyError    conflicting versions, dependency cycles
    └── ProviderError                the service or model behind a provider
        ├── LLMError                 the LLM-side name kept for compatibility
        ├── AuthenticationError      rejected credentials (never retried)
        ├── RateLimitError           429 after the retry budget
        └── ProviderTimeoutError     no answer within the timeout

Every message names the plugin, file or setting involved and ends with what to do.
"""

from __future__ import annotations


class PepperPyError(Exception):
    """Root of every error PepperPy raises."""


class ConfigError(PepperPyError):
    """A setting is unknown, missing or invalid."""


class PluginError(PepperPyError):
    """Something is wrong with a plugin folder or with loading it."""


class PluginNotFoundError(PluginError):
    """No plugin matches the requested category/name."""


class PluginManifestError(PluginError):
    """A plugin.json file is invalid."""


class PluginLoadError(PluginError):
    """A plugin's entry point could not be imported or is not a provider."""


class PluginInstallError(PluginError):
    """A plugin's requirements could not be installed."""


class PluginDependencyError(PluginError):
    """A plugin's requirements conflict with what is already loaded."""


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


__all__ = [
    "AuthenticationError",
    "ConfigError",
    "LLMError",
    "PepperPyError",
    "PluginDependencyError",
    "PluginError",
    "PluginInstallError",
    "PluginLoadError",
    "PluginManifestError",
    "PluginNotFoundError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
]
