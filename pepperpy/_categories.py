"""The built-in categories: the base class each one's providers subclass, and provider names given as ids."""

from __future__ import annotations

from pepperpy.errors import PluginNotFoundError

# Category -> "module:BaseClass" every provider of that category must subclass; any other
# simple lowercase category needs only PepperpyPlugin. Named as strings (imported when a plugin of the
# category loads); tests/unit/test_import_strings.py imports each.
CATEGORY_BASES: dict[str, str] = {
    "llm": "pepperpy.llm:LLMProvider",
    "embeddings": "pepperpy.embeddings:EmbeddingProvider",
    "rag": "pepperpy.rag:RAGProvider",
    "storage": "pepperpy.storage:StorageProvider",
}
GENERIC_BASE = "pepperpy.core:PepperpyPlugin"


def plain_name(category: str, name: str) -> str:
    """``name`` without a leading ``category/``: the id form (``llm/mock``) that errors and ``pepperpy plugins info``
    print is accepted wherever a provider name is. The id of another category is a PluginNotFoundError."""
    if not isinstance(name, str):
        return name
    other, slash, rest = name.partition("/")
    if not (slash and other and rest):
        return name
    if other == category:
        return rest
    ask = f"with_{other}({rest!r})" if other in CATEGORY_BASES else f"with_plugin({other!r}, {rest!r})"
    raise PluginNotFoundError(
        f"{name!r} is the id of a plugin of category {other!r}, not {category!r}; use {ask} for it, "
        f"or name a plugin of category {category!r}"
    )


__all__ = ["CATEGORY_BASES", "GENERIC_BASE", "plain_name"]
