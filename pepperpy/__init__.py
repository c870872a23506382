"""PepperPy: a fluent, async-first facade over LLM, embeddings, RAG and storage plugins.

``import pepperpy`` is cheap: each public name is imported from its module the
first time it is used (PEP 562), so a script pays only for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pepperpy._lazy import lazy_exports
from pepperpy._version import __version__

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "PepperPy": "pepperpy.pepperpy",
    "ChatBuilder": "pepperpy.chat",
    "Tool": "pepperpy.tools",
    "tool_from_function": "pepperpy.tools",
    "PluginManager": "pepperpy.plugin_manager",
    "get_plugin_manager": "pepperpy.plugin_manager",
    "PepperpyPlugin": "pepperpy.core",
    "auto_context": "pepperpy.core",
    "create_provider_instance": "pepperpy.plugins",
    "register_plugin": "pepperpy.plugins",
    "register_plugin_alias": "pepperpy.plugins",
    "register_plugin_path": "pepperpy.plugins",
    "register_plugin_fallbacks": "pepperpy.plugins",
    "Conversation": "pepperpy.chat",
    "LLMProvider": "pepperpy.llm",
    "Message": "pepperpy.llm",
    "MessageRole": "pepperpy.llm",
    "GenerationResult": "pepperpy.llm",
    "GenerationChunk": "pepperpy.llm",
    "ToolCall": "pepperpy.llm",
    "Usage": "pepperpy.llm",
    "Image": "pepperpy.parts",
    "Audio": "pepperpy.parts",
    "File": "pepperpy.parts",
    "EmbeddingProvider": "pepperpy.embeddings",
    "Document": "pepperpy.rag",
    "SearchResult": "pepperpy.rag",
    "RAGProvider": "pepperpy.rag",
    "LoaderProvider": "pepperpy.loaders",
    "Answer": "pepperpy.retrieval",
    "StorageProvider": "pepperpy.storage",
    "PepperPyError": "pepperpy.errors",
    "ConfigError": "pepperpy.errors",
    "MissingKeyError": "pepperpy.errors",
    "InvalidInputError": "pepperpy.errors",
    "UnsupportedPartError": "pepperpy.errors",
    "FileLoadError": "pepperpy.errors",
    "TemplateError": "pepperpy.errors",
    "PepperPyErrorGroup": "pepperpy.errors",
    "PluginError": "pepperpy.errors",
    "PluginNotFoundError": "pepperpy.errors",
    "PluginManifestError": "pepperpy.errors",
    "PluginLoadError": "pepperpy.errors",
    "PluginInstallError": "pepperpy.errors",
    "PluginDependencyError": "pepperpy.errors",
    "ProviderError": "pepperpy.errors",
    "LLMError": "pepperpy.errors",
    "AuthenticationError": "pepperpy.errors",
    "RateLimitError": "pepperpy.errors",
    "ProviderTimeoutError": "pepperpy.errors",
    "ToolError": "pepperpy.errors",
    "RecordingError": "pepperpy.errors",
    "MCPServer": "pepperpy.mcp",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


if TYPE_CHECKING:
    from pepperpy.core import PepperpyPlugin, auto_context
    from pepperpy.plugins import create_provider_instance, register_plugin, register_plugin_fallbacks, register_plugin_path
    from pepperpy.embeddings import EmbeddingProvider
    from pepperpy.errors import (
        AuthenticationError,
        ConfigError,
        FileLoadError,
        InvalidInputError,
        UnsupportedPartError,
        LLMError,
        MissingKeyError,
        PepperPyErrorGroup,
        PepperPyError,
        PluginDependencyError,
        PluginError,
        PluginInstallError,
        PluginLoadError,
        PluginManifestError,
        PluginNotFoundError,
        ProviderError,
        ProviderTimeoutError,
        RateLimitError,
        RecordingError,
        TemplateError,
        ToolError,
    )
    from pepperpy.mcp import MCPServer
    from pepperpy.parts import Audio, File, Image
    from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, ToolCall, Usage
    from pepperpy.chat import ChatBuilder, Conversation
    from pepperpy.pepperpy import PepperPy
    from pepperpy.tools import Tool, tool_from_function
    from pepperpy.plugin_manager import PluginManager, get_plugin_manager
    from pepperpy.rag import Document, RAGProvider, SearchResult
    from pepperpy.loaders import LoaderProvider
    from pepperpy.retrieval import Answer
    from pepperpy.storage import StorageProvider
