"""A recording made against llama.cpp's real OpenAI-compatible server, replayed once the server is stopped: the same
answers and chunks, and no connection attempted (a socket listening on the stopped server's port sees none)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy

from tests.integration.conftest import running_llama_server

pytestmark = pytest.mark.integration
SECRET = "xxx-test-secret-not-real"
SETTINGS = {"temperature": 0, "seed": 3, "max_tokens": 24}


class Colour(BaseModel):
    name: str


async def calls(pepper: PepperPy) -> tuple[object, list[object], object, list[str]]:
    """A generate, a stream, a structured answer and a two-turn conversation."""
    answer = await pepper.chat.with_system("Be brief.").with_user("Name three colours.").generate()
    chunks = [c async for c in pepper.chat.with_user("Count to five.").stream()]
    structured = await pepper.chat.with_user("Name a colour.").with_options(max_tokens=48).with_response_model(Colour).generate()
    conversation = pepper.conversation(system="Be brief.")
    turns = [(await conversation.say("Hi, I am Ana.")).content, (await conversation.say("What is my name?")).content]
    return answer, chunks, structured, turns


def facade(manager, base_url: str) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("openai", base_url=base_url, api_key=SECRET, model="smollm2", **SETTINGS)


async def test_a_recording_of_llama_cpp_replays_with_the_server_stopped(local_manager, local_model_path, remote_manager,
                                                                         tmp_path):
    path = tmp_path / "llamacpp.json"
    with running_llama_server(local_model_path) as base_url:
        async with facade(remote_manager, base_url).with_recording(path) as pepper:
            answer, chunks, structured, turns = await calls(pepper)
        assert pepper._recording.recorded == 5  # generate, stream, structured, two turns: a call each
    assert answer.content and len(chunks) > 3 and structured.parsed is not None and all(turns)

    port = urlparse(base_url).port
    with socket.socket() as listener:  # where the server was: any connection attempt would wait here
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.setblocking(False)
        async with facade(remote_manager, base_url).with_recording(path, mode="replay") as replaying:
            again, replayed, structured_again, turns_again = await calls(replaying)
            assert not replaying.llm.initialized, "the provider was opened"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    assert again.model_dump() == answer.model_dump()
    assert [c.model_dump() for c in replayed] == [c.model_dump() for c in chunks]  # the same chunks, in order
    assert structured_again.parsed == structured.parsed and turns_again == turns
    assert replaying._recording.replayed == 5
    assert SECRET not in path.read_text()
