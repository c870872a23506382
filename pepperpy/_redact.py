"""Which options are secrets (``is_secret_option``), the process's known secret values, and ``redact(text)``.

A service may echo the key it was sent ("invalid key sk-..."): every PepperPy error
built from a response body, and every log line, goes through ``redact`` so that the
key never leaves the process in a message. The registry holds the ``SecretStr``
options of remote providers and the keys read from keys.json. It is process-wide on
purpose (a key must be hidden whichever provider's error shows it), and this module
owns it. Values shorter than ``MIN_LENGTH`` are not registered: hiding every "abc" in
every message would hide text, not keys.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
MIN_LENGTH = 6

_SECRET_WORDS = frozenset({"apikey", "token", "password", "passwd", "secret", "credential", "credentials"})
_KEY_KINDS = frozenset({"api", "access", "secret", "private", "auth", "subscription"})  # <kind>_key is a key
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "total"})  # max_token: a number of tokens, not one
_SECRET_TYPE = re.compile(r"\bSecret(?:Str|Bytes)\b")
_WORD_BREAK = re.compile(r"[_\-]+")


def is_secret_option(name: str, value: Any = None, *, annotation: Any = None) -> bool:
    """True when the option ``name`` (or the environment variable so named), its ``value`` or its declared type
    (``annotation``) says it holds a secret. The one rule PepperPy uses to hide and refuse secrets:

    - a ``value`` that is a ``SecretStr``/``SecretBytes`` (anything with ``get_secret_value``), or an
      ``annotation`` that names ``SecretStr``/``SecretBytes`` (``SecretStr | None``, a string annotation, ...);
    - a ``name`` whose last word (case-insensitive; words split at ``_`` and ``-``) is ``apikey``, ``token``,
      ``password``, ``passwd``, ``secret`` or ``credential(s)``: ``apikey``, ``token``, ``auth_token``,
      ``access_token``, ``HF_TOKEN``, ``password``, ``client_secret``, ``VAULT_SECRET``;
    - a ``name`` ending in ``<kind>_key`` with kind ``api``, ``access``, ``secret``, ``private``, ``auth`` or
      ``subscription``: ``api_key``, ``openai_api_key``, ``OPENAI_API_KEY``, ``secret_key``.

    Not secrets: plurals and counts (``tokens``, ``max_tokens``, ``num_tokens``, ``max_token``), names that merely
    contain a word (``tokenizer``, ``key_prefix``, ``keyword``) and other keys (``key``, ``cache_key``).
    """
    if value is not None and hasattr(value, "get_secret_value"):
        return True
    if annotation is not None and _is_secret_type(annotation):
        return True
    words = [word for word in _WORD_BREAK.split(name.lower()) if word]
    if not words:
        return False
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    if last == "key":
        return before in _KEY_KINDS
    if last == "token" and before in _COUNT_WORDS:
        return False
    return last in _SECRET_WORDS


def _is_secret_type(annotation: Any) -> bool:
    if isinstance(annotation, type) and hasattr(annotation, "get_secret_value"):
        return True  # SecretStr, SecretBytes and their subclasses
    return bool(_SECRET_TYPE.search(annotation if isinstance(annotation, str) else repr(annotation)))


class SecretRegistry:
    """The secrets to hide, and one compiled pattern for them (rebuilt when one is added)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, value: Any) -> None:
        if value is None:
            return
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if not isinstance(text, str) or len(text.strip()) < MIN_LENGTH:
            return
        with self._lock:
            if text not in self._secrets:
                self._secrets.add(text)
                self._pattern = None

    def redact(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                longest_first = sorted(self._secrets, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(re.escape(secret) for secret in longest_first))
        return pattern.sub(MASK, text)


_registry = SecretRegistry()  # the process's: a key is hidden whichever provider or manager met it


def remember(value: Any) -> None:
    """Register a secret (a ``str`` or a ``pydantic.SecretStr``) so that ``redact`` hides it from now on."""
    _registry.remember(value)


def remember_options(provider: Any) -> None:
    """Register every secret-typed option (``SecretStr``) of a provider object, so its keys are hidden too."""
    specs = getattr(type(provider), "option_specs", None)
    if specs is None:
        return
    for name in specs():
        value = getattr(provider, name, None)
        if hasattr(value, "get_secret_value"):
            remember(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    return _registry.redact(text)


__all__ = ["MASK", "MIN_LENGTH", "SecretRegistry", "is_secret_option", "redact", "remember", "remember_options"]
