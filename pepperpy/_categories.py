"""The built-in categories: the base class each one's providers subclass, and provider names given as ids."""

from __future__ import annotations

from collections.abc import Callable

from pepperpy.errors import PluginNotFoundError

# Category -> "module:BaseClass" every provider of that category must subclass; any other
# simple lowercase category needs only PepperpyPlugin. Named as strings (imported when a plugin of the
# category loads); tests/unit/test_import_strings.py imports each.
CATEGORY_BASES: dict[str, str] = {
    "llm": "pepperpy.llm:LLMProvider",
    "embeddings": "pepperpy.embeddings:EmbeddingProvider",
    "rag": "pepperpy.rag:RAGProvider",
    "storage": "pepperpy.storage:StorageProvider",
    "loader": "pepperpy.loaders:LoaderProvider",
}
GENERIC_BASE = "pepperpy.core:PepperpyPlugin"


def plain_name(category: str, name: str, exists: Callable[[str, str], bool] | None = None) -> str:
    """``name`` without a leading ``category/``: the id form (``llm/mock``) that errors and ``pepperpy plugins info``
    print is accepted wherever a provider name is. The id of another category is a PluginNotFoundError, which
    points at the way to use that plugin only when ``exists(other_category, its_name)`` says it is there."""
    if not isinstance(name, str):
        return name
    other, slash, rest = name.partition("/")
    if not (slash and other and rest):
        return name
    if other == category:
        return rest
    if exists is not None and not exists(other, rest):
        raise PluginNotFoundError(
            f"{name!r} names no plugin (there is no {other} plugin named {rest!r}); name a plugin of category "
            f"{category!r}, by its name or its id ({category}/name): `pepperpy plugins list` shows them"
        )
    if other == "loader":
        ask = f"rag.add(path, loader={rest!r})"
    elif other in CATEGORY_BASES:
        ask = f"with_{other}({rest!r})"
    else:
        ask = f"with_plugin({other!r}, {rest!r})"
    raise PluginNotFoundError(
        f"{name!r} is the id of a plugin of category {other!r}, not {category!r}; use {ask} for it, "
        f"or name a plugin of category {category!r}"
    )


__all__ = ["CATEGORY_BASES", "GENERIC_BASE", "plain_name"]
