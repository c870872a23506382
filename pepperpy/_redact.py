"""Secret values known to this process, and ``redact(text)`` that hides them in errors and logs.

A service may echo the key it was sent ("invalid key sk-..."): every PepperPy error
built from a response body, and every log line, goes through ``redact`` so that the
key never leaves the process in a message. The registry holds the ``SecretStr``
options of remote providers and the keys read from keys.json. It is process-wide on
purpose (a key must be hidden whichever provider's error shows it), so it lives on the
process-wide PluginManager. Values shorter than ``MIN_LENGTH`` are not registered:
hiding every "abc" in every message would hide text, not keys.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
MIN_LENGTH = 6


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


def _registry() -> SecretRegistry:
    from pepperpy.plugin_manager import PluginManager

    return PluginManager.instance().secrets


def remember(value: Any) -> None:
    """Register a secret (a ``str`` or a ``pydantic.SecretStr``) so that ``redact`` hides it from now on."""
    _registry().remember(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (never creates the manager: it is called for
    every log line, also while the manager is being built)."""
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager._instance
    return text if manager is None else manager.secrets.redact(text)


__all__ = ["MASK", "MIN_LENGTH", "SecretRegistry", "redact", "remember"]
