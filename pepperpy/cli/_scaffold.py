"""The files ``pepperpy plugins new`` writes: a working plugin folder per category, with a README and a test."""

from __future__ import annotations

import json

from pepperpy.cli._common import fail


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Provider"


def with_article(word: str) -> str:
    """``an llm``, ``an embeddings``, ``a rag``, ``a tts``: "an" before a vowel sound.

    A word with a vowel is read as a word (its first letter decides); one without (llm, tts) is spelled out,
    and the names of f, h, l, m, n, r, s and x start with a vowel sound.
    """
    initial = word[:1].lower()
    spelled_out = not any(letter in "aeiouy" for letter in word.lower())
    vowel_sound = initial in "aeiou" or (spelled_out and initial in "fhlmnrsx")
    return f"{'an' if vowel_sound else 'a'} {word}"


def scaffold(category: str, name: str) -> dict[str, str]:
    """The files of a new plugin folder; the manifest is validated first, as discovery would."""
    from pydantic import ValidationError

    from pepperpy._manifest import PluginManifest, field_problem
    from pepperpy._version import __version__

    class_name = _class_name(name)
    manifest = {
        "name": f"{category}_{name}".replace("-", "_"),
        "version": "0.1.0",
        "category": category,
        "provider_name": name,
        "description": f"{name}: {with_article(category)} plugin (describe it here)",
        "entry_point": f"provider:{class_name}",
        "author": "",
        "pepperpy_compatibility": f">={__version__}",
    }
    if category == "loader":  # the file suffix it reads: files named *.NAME
        manifest["suffixes"] = [f".{name.lower()}"]
    try:
        PluginManifest.model_validate(manifest)
    except ValidationError as exc:
        arguments = {"category": "CATEGORY", "provider_name": "NAME"}
        problems = [
            f"{arguments[error['loc'][0]]} {error['msg'].removeprefix('Value error, ')}"
            if error["loc"] and error["loc"][0] in arguments else field_problem(error, list(PluginManifest.model_fields))
            for error in exc.errors()
        ]
        if any(error["loc"] and error["loc"][0] in arguments for error in exc.errors()):
            problems = [p for p in problems if p.startswith(("CATEGORY", "NAME"))]  # the rest derives from them
        fail(f"cannot create a plugin {category}/{name}: {'; '.join(problems)}")
    provider, test = _TEMPLATES.get(category, _TEMPLATES["*"])
    values = {"category": category, "name": name, "class_name": class_name, "id": f"{category}/{name}",
              "a_category_capital": with_article(category).capitalize()}
    usage = _USAGE.get(category, _PEPPER.format(usage='with_plugin("{category}", "{name}", greeting="Hi")'))
    usage = usage.format(**values)
    return {
        "plugin.json": json.dumps(manifest, indent=2) + "\n",
        "provider.py": provider.format(**values),
        "README.md": _README.format(**values, usage=usage),
        "test_provider.py": test.format(**values),
        "__init__.py": _PACKAGE_MARKER,
        "pytest.ini": _PYTEST_INI,
    }


_README = """# {id}

A PepperPy plugin. {usage}

- `provider.py`: the provider class `{class_name}`; its options are the annotated class attributes.
- `plugin.json`: the manifest (id, version, entry point). Add a `requirements.txt` for packages it needs.
- `test_provider.py`: run `pytest` on this folder (`pytest.ini` configures it); `pepperpy plugins check <this folder>`
  validates it.
"""

# pytest-asyncio (when installed) warns on every run while asyncio_default_fixture_loop_scope is unset; without it,
# pytest warns that the option is unknown, which the filter silences.
_PYTEST_INI = """[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings =
    ignore:Unknown config option. asyncio_default_fixture_loop_scope:pytest.PytestConfigWarning
"""

_PACKAGE_MARKER = '''"""Gives this folder's tests a module name of their own under pytest; PepperPy never imports it."""
'''

_PEPPER = """Use it with:

```python
from pepperpy import PepperPy

pepper = PepperPy().{usage}
```"""

_LOADER_USAGE = """PepperPy reads every `*.{name}` file with it: `await pepper.rag.add(Path("notes.{name}"))`
(or `loader="{name}"`), and `pepperpy chat -f notes.{name} "..."` sends the text it reads. On its own, from the
folder that holds `plugins/`:

```python
import asyncio
from pathlib import Path

from pepperpy.plugins import create_provider_instance


async def main() -> None:
    async with create_provider_instance("loader", "{name}") as loader:
        for section in await loader.load(Path("notes.{name}")):
            print(section.text)


asyncio.run(main())
```"""

_USAGE = {
    "llm": _PEPPER.format(usage='with_llm("{name}", greeting="Hi")'),
    "embeddings": _PEPPER.format(usage='with_embeddings("{name}", dimensions=16)'),
    "rag": _PEPPER.format(usage='with_rag("{name}", collection="notes")'),
    "storage": _PEPPER.format(usage='with_storage("{name}", namespace="cache")'),
    "loader": _LOADER_USAGE,
}

_HEADER = '''"""{id}: a PepperPy plugin. Options are annotated class attributes with a default."""

from __future__ import annotations

'''

_LLM = _HEADER + '''from pepperpy.llm import GenerationResult, LLMProvider, Message


class {class_name}(LLMProvider):
    greeting: str = "Hello"  # an option: with_llm("{name}", greeting="Hi")
    # Parts it takes beyond text, and per-call options beyond the usual ones (docs/plugins.md,
    # "Messages with images, files and reasoning"); without them it gets every message as plain text:
    # media_types = frozenset({{"image/png", "image/jpeg"}})
    # call_options = LLMProvider.call_options | {{"reasoning"}}

    async def initialize(self) -> None:
        """Open clients or load a model here; runs once per open."""
        self.calls = 0

    async def cleanup(self) -> None:
        """Close what initialize opened; runs once per close."""

    async def generate(self, messages: list[Message], **options) -> GenerationResult:
        self.calls += 1
        return GenerationResult(content=f"{{self.greeting}}, {{messages[-1].content}}")
'''

_LLM_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


def test_generate_greets():
    async def main():
        async with PepperPy().with_llm("{name}", greeting="Hi") as pepper:
            return await pepper.chat.with_user("Ada").generate()

    assert asyncio.run(main()).content == "Hi, Ada"
'''

_EMBEDDINGS = _HEADER + '''from pepperpy.embeddings import EmbeddingProvider, Vector


class {class_name}(EmbeddingProvider):
    dimensions: int = 8  # an option: with_embeddings("{name}", dimensions=16)

    async def initialize(self) -> None:
        """Open clients or load a model here; runs once per open."""

    async def cleanup(self) -> None:
        """Close what initialize opened; runs once per close."""

    async def embed(self, texts: list[str]) -> list[Vector]:
        """Letter counts, folded into ``dimensions`` slots: replace with a real model."""
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for character in text.lower():
                vector[ord(character) % self.dimensions] += 1.0
            vectors.append(vector)
        return vectors
'''

_EMBEDDINGS_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


def test_embed_gives_one_vector_per_text():
    async def main():
        async with PepperPy().with_embeddings("{name}", dimensions=4) as pepper:
            return await pepper.provider("embeddings").embed(["a", "bb"])

    vectors = asyncio.run(main())
    assert len(vectors) == 2 and all(len(vector) == 4 for vector in vectors)
    assert vectors[0] != vectors[1]
'''

_RAG = _HEADER + '''import math

from pepperpy.embeddings import Vector
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult


class {class_name}(RAGProvider):
    """An in-memory store; texts are embedded by the ``embeddings`` dependency."""

    collection: str = "default"  # an option: with_rag("{name}", collection="notes")

    async def initialize(self) -> None:
        """Connect to the store here; runs once per open."""
        self.rows: dict[str, tuple[Document, Vector]] = {{}}

    async def cleanup(self) -> None:
        """Close what initialize opened; runs once per close."""

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        vectors = vectors or await self.embed_texts([d.text for d in documents])
        for document, vector in zip(documents, vectors):
            self.rows[document.id] = (document, vector)

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        target = await self.query_vector(query)
        hits = [
            SearchResult(document=document, score=_cosine(target, vector))
            for document, vector in self.rows.values()
            if _matches(document.metadata, filter or {{}})
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)[:k]

    async def delete(self, ids: list[str]) -> None:
        for document_id in ids:
            self.rows.pop(document_id, None)

    async def count(self) -> int:
        return len(self.rows)


def _matches(metadata: dict, filter: Filter) -> bool:
    """Every key must match: ``{{"key": value}}`` an equal value, ``{{"key": [a, b]}}`` any of them."""
    return all(
        metadata.get(key) in wanted if isinstance(wanted, list) else metadata.get(key) == wanted
        for key, wanted in filter.items()
    )


def _cosine(a: Vector, b: Vector) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0
'''

_RAG_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy import Document, EmbeddingProvider, PepperPy
from pepperpy.plugins import register_plugin, register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


class Letters(EmbeddingProvider):
    """Small embeddings for this test only: counts of a few letters."""

    async def embed(self, texts):
        return [[float(text.count(letter)) for letter in "aeiou"] for text in texts]


register_plugin("embeddings", "letters-for-{name}", Letters)


def test_search_finds_the_closest_document():
    async def main():
        async with PepperPy().with_embeddings("letters-for-{name}").with_rag("{name}") as pepper:
            await pepper.rag.add([Document(id="a", text="banana"), Document(id="o", text="potato solo")])
            return await pepper.rag.search("aaa", k=1), await pepper.rag.count()

    hits, count = asyncio.run(main())
    assert count == 2 and [hit.document.id for hit in hits] == ["a"]


def test_a_filter_keeps_equal_values_or_any_of_a_list():
    documents = [Document(id=lang, text="text", metadata={{"lang": lang}}) for lang in ("en", "fr", "de")]

    async def main():
        async with PepperPy().with_embeddings("letters-for-{name}").with_rag("{name}") as pepper:
            await pepper.rag.add(documents)
            equal = await pepper.rag.search("text", filter={{"lang": "fr"}})
            any_of = await pepper.rag.search("text", filter={{"lang": ["en", "de"]}})
            return [hit.document.id for hit in equal], sorted(hit.document.id for hit in any_of)

    assert asyncio.run(main()) == (["fr"], ["de", "en"])
'''

_STORAGE = _HEADER + '''from pepperpy.storage import StorageProvider


class {class_name}(StorageProvider):
    """Bytes under string keys, in memory: replace with your backend."""

    namespace: str = "default"  # an option: with_storage("{name}", namespace="cache")

    async def initialize(self) -> None:
        """Connect to the backend here; runs once per open."""
        self.items: dict[str, bytes] = {{}}

    async def cleanup(self) -> None:
        """Close what initialize opened; runs once per close."""

    async def get(self, key: str) -> bytes | None:
        return self.items.get(f"{{self.namespace}}/{{key}}")

    async def set(self, key: str, value: bytes) -> None:
        self.items[f"{{self.namespace}}/{{key}}"] = value

    async def delete(self, key: str) -> None:
        self.items.pop(f"{{self.namespace}}/{{key}}", None)

    async def list(self, prefix: str = "") -> list[str]:
        start = f"{{self.namespace}}/"
        return sorted(k[len(start):] for k in self.items if k.startswith(start + prefix))
'''

_STORAGE_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


def test_set_get_list_delete():
    async def main():
        async with PepperPy().with_storage("{name}", namespace="t") as pepper:
            store = pepper.provider("storage")
            await store.set("greeting", b"hi")
            seen = await store.get("greeting"), await store.list()
            await store.delete("greeting")
            return seen, await store.get("greeting")

    (value, keys), after = asyncio.run(main())
    assert value == b"hi" and keys == ["greeting"] and after is None
'''

_GENERIC = _HEADER + '''from pepperpy.plugins import PepperpyPlugin


class {class_name}(PepperpyPlugin):
    """{a_category_capital} plugin: add the async methods your category needs."""

    greeting: str = "Hello"  # an option: with_plugin("{category}", "{name}", greeting="Hi")

    async def initialize(self) -> None:
        """Open clients or load a model here; runs once per open."""

    async def cleanup(self) -> None:
        """Close what initialize opened; runs once per close."""

    async def run(self, text: str) -> str:
        return f"{{self.greeting}}, {{text}}"
'''

_GENERIC_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


def test_run_greets():
    async def main():
        async with PepperPy().with_plugin("{category}", "{name}", greeting="Hi") as pepper:
            return await pepper.provider("{category}").run("Ada")

    assert asyncio.run(main()) == "Hi, Ada"
'''

_LOADER = _HEADER + '''from pathlib import Path

from pepperpy.loaders import LoaderProvider, read_utf8, section
from pepperpy.rag import Document


class {class_name}(LoaderProvider):
    """Reads the files whose suffix plugin.json lists (``"suffixes"``): ``await pepper.rag.add(Path("a.{name}"))``."""

    def read(self, path: Path) -> list[Document]:
        """The file's sections; blocking code is fine (it runs in a worker thread).

        One section here, the whole text. Give one per page, ``section("p1", text, page=1)``, or per heading,
        ``section("s1", text, heading="Guide > Install")``, and chunks carry them. For a file you cannot read,
        ``raise FileLoadError(path, "why; what to do")`` (from pepperpy.errors).
        """
        return [section("", read_utf8(path), title=path.stem)]
'''

_LOADER_TEST = '''"""Tests of {id}: run `pytest` on this folder."""

import asyncio
from pathlib import Path

from pepperpy.plugins import create_provider_instance, register_plugin_path

register_plugin_path(Path(__file__).resolve().parent)


def test_load_reads_the_file(tmp_path):
    file = tmp_path / "a.{name}"
    file.write_text("Hello.")

    async def main():
        async with create_provider_instance("loader", "{name}") as loader:
            return await loader.load(file)

    (section,) = asyncio.run(main())
    assert section.text == "Hello." and section.metadata == {{"title": "a"}}
'''

_TEMPLATES: dict[str, tuple[str, str]] = {
    "loader": (_LOADER, _LOADER_TEST),
    "llm": (_LLM, _LLM_TEST),
    "embeddings": (_EMBEDDINGS, _EMBEDDINGS_TEST),
    "rag": (_RAG, _RAG_TEST),
    "storage": (_STORAGE, _STORAGE_TEST),
    "*": (_GENERIC, _GENERIC_TEST),
}
