"""The provider ``with_llm()`` and friends use when none is named, and where that name came from.

Read by the facade (``pepperpy.pepperpy``) and by dependency resolution (``_dependencies``), so it lives below both.
"""

from __future__ import annotations

import os
from typing import Any

# Override with ``PepperPy(config={"llm": "mock"})`` or ``PEPPERPY_LLM=mock``.
DEFAULT_PROVIDERS: dict[str, str] = {"llm": "local", "embeddings": "local", "rag": "local", "storage": "local"}


def default_provider_name(category: str, config: dict[str, Any] | None = None) -> str | None:
    """The provider ``with_<category>()`` uses when none is named: config, ``PEPPERPY_<CATEGORY>`` (without
    surrounding spaces), or the built-in default."""
    configured = (config or {}).get(category) or os.environ.get(f"PEPPERPY_{category.upper()}", "").strip()
    return configured or DEFAULT_PROVIDERS.get(category)


def default_provider_source(category: str, config: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """Where ``default_provider_name`` took its name from and how to change it, for errors; None for the
    built-in default."""
    if (config or {}).get(category):
        setting = f"PepperPy(config={{{category!r}: ...}})"
        return setting, f"fix {setting}"
    variable = f"PEPPERPY_{category.upper()}"
    if os.environ.get(variable, "").strip():
        return f"the environment variable {variable}", f"fix or unset {variable}"
    return None


__all__ = ["DEFAULT_PROVIDERS", "default_provider_name", "default_provider_source"]
