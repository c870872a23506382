"""examples/dependencies.py, and the plugin-system document's dependency snippet as written."""

from __future__ import annotations

import pytest

from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.integration.test_examples import run

pytestmark = pytest.mark.integration


def test_the_dependencies_example(session_home):
    output = run("dependencies.py", session_home)
    assert "dependencies: embeddings=embeddings/hash, storage=storage/local" in output
    assert "closest: a" in output and "embeddings open after cleanup: False" in output
    assert "cache wraps the facade's llm: True" in output and "first answer / first answer" in output


@pytest.fixture
def process_manager(chroma_manager, monkeypatch):
    """A fresh process-wide manager on the session home, where chromadb is already installed (real rag/chroma)."""
    monkeypatch.setattr(PluginManager, "_instance", PluginManager(search_paths=[builtin_plugins_dir()], home=chroma_manager.home))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the embeddings are created and opened, never called
    return PluginManager.instance()


async def test_the_documents_snippet_runs_as_written(process_manager):
    from pepperpy.plugins import get_plugin_manager
    manager = get_plugin_manager()
    manager.register_plugin_metadata("rag", "chroma", {
        "dependencies": [
            {"type": "embeddings", "provider": "openai"},
            {"type": "storage", "provider": "local", "dependency_type": "optional"}
        ]
    })
    rag = manager.create_instance("rag", "chroma")
    await manager.load_dependencies("rag", "chroma")
    await rag.initialize()

    embeddings, storage = rag.dependencies["embeddings"], rag.dependencies["storage"]
    assert (embeddings.plugin_id, storage.plugin_id) == ("embeddings/openai", "storage/local")
    assert rag.embeddings is embeddings and embeddings.initialized and storage.initialized
    await rag.cleanup()
    assert not embeddings.initialized and not storage.initialized
