"""One run that sends a sentinel key every way a key travels — keys.json, the environment, an explicit option,
a plugin in a worker process — against a service that echoes it back in its errors, with loguru logging
everything (``diagnose=True``: the locals of every frame) and the call log on. Then every error, repr,
traceback with locals, log line, call-log row, worker stderr file and file under the home is searched for it.

The service is the scripted server (tests/servers/scripted.py): a real service that echoes keys on demand
cannot run here.
"""

from __future__ import annotations

import io
import traceback
import uuid
from pathlib import Path

import pytest
from loguru import logger

from pepperpy import PepperPy
from pepperpy._config import save_key
from pepperpy.errors import AuthenticationError, PepperPyError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
SENTINEL = f"sk-SENTINEL-{uuid.uuid4().hex}"


def echo(status: int) -> Reply:
    return Reply(status=status, json={"error": {"message": f"Incorrect API key provided: {SENTINEL}."}})


def answer(text: str) -> Reply:
    return Reply(json={"id": "1", "model": "m", "choices": [{"message": {"role": "assistant", "content": text},
                                                              "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 1}})


def rendered(error: BaseException) -> str:
    """The error as a debugger would show it: message, repr, traceback with every frame's locals."""
    frames = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    return f"{error}\n{error!r}\n{frames}"


async def test_a_sentinel_key_appears_nowhere_but_in_the_request_and_keys_json(tmp_path, scripted, monkeypatch):
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=home)
    save_key(home, "OPENAI_API_KEY", SENTINEL)  # the only file that may hold it
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    output = io.StringIO()
    sink = logger.add(output, level="DEBUG", diagnose=True, backtrace=True)
    logger.enable("pepperpy")
    seen: list[str] = []
    try:
        scripted.reset(answer("fine"), echo(401), echo(401))
        settings = {"base_url": scripted.base_url, "model": "m", "max_retries": 0}
        async with PepperPy(plugin_manager=manager).with_llm("openai", **settings).with_logging() as pepper:
            assert (await pepper.chat.with_user("hello").generate()).content == "fine"
            with pytest.raises(AuthenticationError) as in_process:
                await pepper.chat.with_user("again").generate()
            seen += [rendered(in_process.value), repr(pepper), repr(pepper.llm), str(vars(pepper.llm))]
            logger.opt(exception=in_process.value).error("the call failed")
            isolated = PepperPy(plugin_manager=manager).with_llm("openai", isolation="process", api_key=SENTINEL,
                                                                  **settings).with_logging()
            async with isolated:
                with pytest.raises(PepperPyError) as in_worker:
                    await isolated.chat.with_user("from the worker").generate()
                seen += [rendered(in_worker.value), repr(isolated.llm)]
                logger.opt(exception=in_worker.value).error("the isolated call failed")
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")

    assert [r.headers["authorization"] for r in scripted.requests] == [f"Bearer {SENTINEL}"] * 3, "the service got it"
    assert "***" in str(in_process.value) and "***" in str(in_worker.value)
    logs = output.getvalue()
    assert "the call failed" in logs and "the isolated call failed" in logs
    files = [p for p in home.rglob("*") if p.is_file() and "envs" not in p.relative_to(home).parts]
    assert home / "logs.db" in files
    places = {"logs": logs, **{f"text #{n}": text for n, text in enumerate(seen)}}
    places |= {str(p): p.read_bytes().decode("utf-8", "replace") for p in files if p.name != "keys.json"}
    leaks = [where for where, text in places.items() if SENTINEL in text]
    assert leaks == [], f"the key leaked into {leaks}"
    assert SENTINEL in (home / "keys.json").read_text()
