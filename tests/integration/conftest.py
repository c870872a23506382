"""Fixtures for real parts: a PEPPERPY_HOME with the local model installed, and llama.cpp's HTTP server (plain, for
embeddings, thinking, seeing images)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.servers.package_index import PackageIndex

SERVERS = Path(__file__).resolve().parents[1] / "servers"
THINKING_GRAMMAR = 'root ::= [a-z ]{5,30} "\\n</think>\\n\\n" [A-Za-z0-9 ]{1,20}'
SMOLLM2_WIDTH = 576  # the text embedding length of SmolLM2-135M, which a projector must match


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


def use_test_aws_keys(monkeypatch, folder: Path, access_key: str, secret_key: str, region: str | None = None) -> None:
    """Static test keys from the environment, and no ~/.aws files of this machine's user (nor its profile, token,
    API key or endpoint)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    if region is not None:
        monkeypatch.setenv("AWS_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-credentials"))


@pytest.fixture(scope="session")
def package_index(tmp_path_factory) -> Iterator[PackageIndex]:
    """A PEP 691 JSON index on 127.0.0.1 serving wheels built offline (tests/servers/package_index.py lists them:
    pp-plain, pp-app, pp-young 1.0 and 2.0 (an hour old), pp-tampered, pp-startup with a .pth file)."""
    from uv import find_uv_bin

    index = PackageIndex(tmp_path_factory.mktemp("package-index"), find_uv_bin()).start()
    yield index
    index.stop()


@pytest.fixture
def use_package_index(package_index, monkeypatch, tmp_path) -> PackageIndex:
    """uv installs from the local index only (``UV_DEFAULT_INDEX``), with a fresh uv cache (a warm one would serve the
    files it saw first), and no find-links folder of this machine."""
    for name in ("UV_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_OFFLINE", "UV_EXCLUDE_NEWER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_DEFAULT_INDEX", package_index.url)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return package_index


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """One PEPPERPY_HOME for the integration session: plugins install into it for real."""
    return tmp_path_factory.mktemp("pepperpy-home")


@pytest.fixture(scope="session")
def local_manager(session_home) -> PluginManager:
    """A PluginManager over the built-in plugins with the llm/local requirements installed."""
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)
    manager.load_class("llm", "local")
    return manager


@pytest.fixture(scope="session")
def local_model_path(local_manager) -> Path:
    provider_module = sys.modules[local_manager.load_class("llm", "local").__module__]
    return provider_module.default_model_path()


@contextmanager
def running_llama_server(model_path: Path, *flags: str) -> Iterator[str]:
    """llama.cpp's real OpenAI-compatible server (tests/servers/llama_server.py) for ``model_path`` with ``flags`` on a
    free 127.0.0.1 port; yields its base_url and kills it on exit."""
    import xllamacpp

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(xllamacpp.__file__).parents[1])}
    process = subprocess.Popen(
        [sys.executable, str(SERVERS / "llama_server.py"), str(model_path), str(port), *flags],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory) -> Iterator[str]:
    """A real PostgreSQL with pgvector (tests/servers/postgres.py) on a free 127.0.0.1 port, with a test password;
    yields its DSN and always stops it."""
    from tests.servers.postgres import running_postgres

    with running_postgres(tmp_path_factory.mktemp("postgres") / "server", free_port()) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def llama_server(local_manager, local_model_path) -> Iterator[str]:
    """The local model behind llama.cpp's real OpenAI-compatible server on a free 127.0.0.1 port; yields base_url."""
    with running_llama_server(local_model_path) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def llama_embeddings_server(local_manager, local_model_path) -> Iterator[str]:
    """The local model behind llama.cpp's real /v1/embeddings (mean pooling); yields base_url."""
    with running_llama_server(local_model_path, "--embeddings") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def thinking_server(local_manager, local_model_path) -> Iterator[str]:
    """llama.cpp's server with the Qwen3-style template (tests/servers/qwen3_style.jinja, its prompt opens <think>)
    and a grammar that makes SmolLM2 (no reasoning training) write a short reasoning, </think>, then a short answer."""
    template = SERVERS / "qwen3_style.jinja"
    with running_llama_server(local_model_path, "--chat-template", str(template), "--grammar", THINKING_GRAMMAR) as url:
        yield url


@pytest.fixture(scope="session")
def projector(tmp_path_factory) -> Path:
    """A tiny random-weights multimodal projector for SmolLM2 (tests/servers/tiny_mmproj.py)."""
    from tests.servers import tiny_mmproj

    path = tmp_path_factory.mktemp("mmproj") / "tiny-mmproj.gguf"
    tiny_mmproj.write(str(path), SMOLLM2_WIDTH)
    return path


@pytest.fixture(scope="module")
def seeing_server(local_manager, local_model_path, projector) -> Iterator[str]:
    """llama.cpp's server with the tiny projector beside SmolLM2, so it takes images."""
    with running_llama_server(local_model_path, "--mmproj", str(projector)) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def remote_manager(session_home) -> PluginManager:
    """A PluginManager over the built-in plugins (the remote ones need no install)."""
    return PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)


@pytest.fixture(scope="session")
def chroma_manager(session_home) -> PluginManager:
    """A PluginManager with rag/chroma and embeddings/local installed."""
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)
    manager.load_class("rag", "chroma")
    manager.load_class("embeddings", "local")
    return manager


@pytest.fixture(scope="session")
def chroma_server(chroma_manager, tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on a free 127.0.0.1 port (its log goes to a file); yields (host, port)."""
    import chromadb

    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "PYTHONPATH": str(Path(chromadb.__file__).parents[1])}
    command = [sys.executable, "-c", "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()",
               "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)]
    with open(data / "server.log", "w") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", process, timeout_s=120)
        yield "127.0.0.1", port
    finally:
        process.kill()
        process.wait(timeout=10)
