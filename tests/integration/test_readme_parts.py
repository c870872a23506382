"""The README's examples of images, files, reasoning, streaming Gemini and Bedrock chats, an Azure call, a cost
total and retrieval (on the local model and embeddings, no recording), run as written in a fresh process (each placed in an async function: the README shows them at top level with ``await``),
against recorded traffic of the real services (tests/fixtures/cassettes) served from 127.0.0.1 by
tests/cassette_server.py. Each provider is pointed at it by the variables the README documents
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``),
with dummy keys and AWS credentials. The snippets are read from the README files by heading, so a change there
runs here.

What the recordings cannot match is said where it happens: the cassette server answers by path, so a recording
made for another model (or another image) is served at the path the snippet's model calls, and the answers are
those recorded; no Chat Completions traffic was recorded, so the OpenAI image/PDF lines run on ``api="responses"``
(which takes the same parts); the image question and PDF summary also run on Anthropic, Gemini and Bedrock with
each one's line from the README's list of hosted models. The Azure line runs against llama.cpp's real server behind
tests/servers/azure_proxy.py. What PepperPy sent is checked against what the snippet asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cassette_server import Interaction, load_cassette

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "tests" / "fixtures" / "cassettes"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # enough to be sniffed as PNG
PDF = b"%PDF-1.4\n%%EOF\n"
AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLENOTREAL01", "AWS_SECRET_ACCESS_KEY": "recorded-test-secret-not-real",
       "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials"}


def python_blocks(readme: Path, heading: str) -> list[str]:
    """The ```python blocks of the section under ``heading`` (up to the next heading), dedented."""
    text = "\n" + readme.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = re.search(r"\n#{1,6} ", text[start + len(heading) + 2:])
    section = text[start: start + len(heading) + 2 + end.start()] if end else text[start:]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, f"no python block under {heading!r} in {readme}"
    return [textwrap.dedent(block) for block in blocks]


def at(path: str, *recorded: Interaction) -> list[Interaction]:
    """Recorded interactions served at ``path`` (the snippet's model or route instead of the recorded one)."""
    return [dataclasses.replace(interaction, path=path) for interaction in recorded]


def run(snippet: str, after: str, home: Path, cwd: Path, **env: str) -> str:
    script = "import asyncio\n\nasync def main():\n" + textwrap.indent(snippet + after, "    ") + "\nasyncio.run(main())\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**clean, "PEPPERPY_HOME": str(home), "PYTHONPATH": str(ROOT), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The files the README names, in the folder the snippets run in."""
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "contract.pdf").write_bytes(PDF)
    return tmp_path


def parts_sent(body: dict, kinds: tuple[str, ...]) -> list[str]:
    """The part types of a request body that are among ``kinds`` (searched through the whole body)."""
    found: list[str] = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("type") in kinds:
                found.append(value["type"])
            found.extend(key for key in value if key in kinds)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return found


def test_images_files_and_reasoning(session_home, remote_manager, cassettes, files):
    """The section's example: an image question and a PDF summary (OpenAI), then Anthropic's reasoning apart."""
    (snippet,) = python_blocks(ROOT / "README.md", "### Images, files and reasoning")
    assert 'with_llm("openai", model="gpt-4o-mini")' in snippet
    snippet = snippet.replace('with_llm("openai", model="gpt-4o-mini")', 'with_llm("openai", api="responses", model="gpt-4o-mini")')
    responses, anthropic = CASSETTES / "openai_responses", CASSETTES / "anthropic"
    cassettes.serve([
        *load_cassette(responses / "test_openai_responses_image_url_input.yaml"),
        *load_cassette(responses / "test_openai_responses_document_as_binary_content_input.yaml"),
        *at("/v1/messages", load_cassette(anthropic / "test_anthropic_model_thinking_part.yaml")[0]),
    ])
    output = run(snippet, "print('SUMMARY', summary.content[:40])\n", session_home, files,
                 OPENAI_BASE_URL=cassettes.base_url + "/v1", OPENAI_API_KEY="sk-not-real",
                 ANTHROPIC_BASE_URL=cassettes.base_url, ANTHROPIC_API_KEY="sk-ant-not-real")
    image, document, thinking = (request.json() for request in cassettes.requests)
    assert parts_sent(image, ("input_image",)) == ["input_image"] and parts_sent(document, ("input_file",)) == ["input_file"]
    assert thinking["thinking"]["type"] == "enabled" and thinking["model"] == "claude-sonnet-4-5"
    recorded = load_cassette(anthropic / "test_anthropic_model_thinking_part.yaml")[0]
    blocks = {block["type"]: block for block in json.loads(recorded.body)["content"]}
    reasoning, answer = blocks["thinking"]["thinking"], blocks["text"]["text"]
    assert output.startswith(reasoning.strip()[:60]) and answer.strip()[:60] in output
    assert "SUMMARY " in output and output.split("SUMMARY ", 1)[1].strip()


def hosted_line(name: str) -> str:
    """The ``with_llm("name", ...)`` call of the README's list of hosted models."""
    (block,) = python_blocks(ROOT / "README.md", "### Hosted models, keys, tools and structured output")[:1]
    return re.search(rf'with_llm\("{name}"[^)]*\)', block).group(0)


HOSTED = {  # provider -> (recorded image answer, recorded document answer, the request's part keys, environment)
    "anthropic": (("anthropic", "test_image_url_input.yaml", "/v1/messages"),
                  ("anthropic", "test_document_binary_content_input.yaml", "/v1/messages"),
                  ("image", "document"), {"ANTHROPIC_API_KEY": "sk-ant-not-real"}),
    "gemini": (("google", "test_google_model_image_as_binary_content_input.yaml",
                "/v1beta/models/gemini-2.5-flash:generateContent"),
               ("google", "test_google_model.yaml", "/v1beta/models/gemini-2.5-flash:generateContent"),
               ("inlineData", "inlineData"), {"GEMINI_API_KEY": "gemini-not-real"}),
    "bedrock": (("bedrock", "test_bedrock_model.yaml", "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"),
                ("bedrock", "test_bedrock_cache_write_and_read.yaml",
                 "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"),
                ("image", "document"), AWS),
}


@pytest.mark.parametrize("provider", sorted(HOSTED))
def test_the_image_question_and_pdf_summary_on_each_hosted_provider(session_home, remote_manager, cassettes, files,
                                                                     provider):
    """The section's image question and PDF summary with the provider's line from the list of hosted models.

    Recorded with images: Anthropic (an image URL), Gemini (inline bytes); with documents: Anthropic (a PDF), Bedrock
    (a text document, so its answer is about that one). Where no such recording exists (Gemini's PDF, Bedrock's
    image) a recorded plain answer of the same service is served: the request PepperPy sent is still checked for the
    part. OpenAI's run is test_images_files_and_reasoning."""
    (snippet,) = python_blocks(ROOT / "README.md", "### Images, files and reasoning")
    openai_part = snippet.split("\n\n")[1]  # the block after the imports: the openai image question and summary
    assert 'with_llm("openai", model="gpt-4o-mini")' in openai_part and "File(" in openai_part
    code = snippet.split("\n\n")[0] + "\n" + openai_part.replace('with_llm("openai", model="gpt-4o-mini")',
                                                                   hosted_line(provider)) + "\n"
    image, document, kinds, env = HOSTED[provider]
    served = []
    for folder, name, path in (image, document):
        served += at(path, load_cassette(CASSETTES / folder / name)[0])
    cassettes.serve(served)
    base = {"anthropic": "ANTHROPIC_BASE_URL", "gemini": "GOOGLE_GEMINI_BASE_URL",
            "bedrock": "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"}[provider]
    output = run(code, "print('IMAGE', result.content)\nprint('SUMMARY', summary.content)\n", session_home, files,
                 **{base: cassettes.base_url}, **env)
    image_request, document_request = (request.json() for request in cassettes.requests)
    assert parts_sent(image_request, (kinds[0],)), f"the picture was not sent to {provider}"
    assert parts_sent(document_request, (kinds[1],)), f"the PDF was not sent to {provider}"
    assert "application/pdf" in json.dumps(document_request) or '"format": "pdf"' in json.dumps(document_request)
    answers = [json.loads(load_cassette(CASSETTES / folder / name)[0].body) for folder, name, _ in (image, document)]
    for label, answer in zip(("IMAGE", "SUMMARY"), answers):
        said = output.split(f"{label} ", 1)[1].strip()
        assert said and said.split()[0] in json.dumps(answer), (label, said, answer)


@pytest.mark.parametrize("plugin", ["llm_gemini", "llm_bedrock"])
def test_a_streaming_chat_with_an_image_question(session_home, remote_manager, cassettes, files, plugin):
    """The plugin README's example: an image question, then a reasoning chat that streams its thinking and answer."""
    (snippet,) = python_blocks(ROOT / "plugins" / plugin / "README.md", f"# llm/{plugin[4:]}")
    if plugin == "llm_gemini":
        google = CASSETTES / "google"
        prefix = "/v1beta/models/gemini-2.5-flash"
        cassettes.serve([
            *at(f"{prefix}:generateContent", *load_cassette(google / "test_google_model_image_as_binary_content_input.yaml")),
            *at(f"{prefix}:streamGenerateContent?alt=sse", *load_cassette(google / "test_google_model_thinking_part_iter.yaml")),
        ])
        env = {"GOOGLE_GEMINI_BASE_URL": cassettes.base_url, "GEMINI_API_KEY": "gemini-not-real"}
        image_kind = ("inlineData",)
    else:
        bedrock = CASSETTES / "bedrock"  # no image was recorded: the image question gets a recorded text answer
        cassettes.serve([
            *at("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse", load_cassette(bedrock / "test_bedrock_model.yaml")[0]),
            *load_cassette(bedrock / "test_bedrock_model_thinking_part_stream.yaml"),
        ])
        env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": cassettes.base_url, **AWS}
        image_kind = ("image",)
    output = run(snippet, "print()\nprint('IMAGE', result.content[:40])\n", session_home, files, **env)
    image_request, stream_request = (request.json() for request in cassettes.requests)
    assert parts_sent(image_request, image_kind), "the picture was sent"
    assert "thinkingConfig" in str(stream_request) or "thinking" in str(stream_request), "reasoning was asked for"
    streamed, image_line = output.rsplit("IMAGE ", 1)
    assert streamed.strip() and image_line.strip()


def test_cost_total(session_home, remote_manager, cassettes, files):
    """Usage and Cost: a conversation whose instructions Anthropic caches, each answer's cost, and the total."""
    blocks = python_blocks(ROOT / "README.md", "### Cache, call log, usage, tracing and your own hooks")
    snippet = next(block for block in blocks if "pepper.usage.total" in block)
    recorded = load_cassette(CASSETTES / "anthropic" / "test_anthropic_cache_real_api.yaml")
    first = recorded[0].request_json()
    setup = "from pepperpy import PepperPy  # imported in the README's tour\n" + f"long_instructions = {first['system']!r}\n"
    questions = [interaction.request_json()["messages"][-1]["content"][0]["text"] for interaction in recorded]
    setup += f"questions = {questions!r}\n"
    cassettes.serve(at("/v1/messages", *recorded))
    output = run(setup + snippet, "", session_home, files,
                 ANTHROPIC_BASE_URL=cassettes.base_url, ANTHROPIC_API_KEY="sk-ant-not-real")
    lines = output.splitlines()
    assert re.fullmatch(r"2 calls, \d+ prompt tokens \(\d+ read from the cache\): \$\d+\.\d{4}", lines[2]), output
    assert all(re.fullmatch(r"(\d+|None) \d+\.\d+", line) for line in lines[:2]), output


def test_the_azure_call(session_home, files, llama_server):
    """The README's Azure line, with the endpoint and key from the openai SDK's variables, against llama.cpp's real
    server behind tests/servers/azure_proxy.py (Azure's deployment route and api-key check on 127.0.0.1)."""
    from tests.servers.azure_proxy import AzureProxy

    blocks = python_blocks(ROOT / "README.md", "### Hosted models, keys, tools and structured output")
    (line,) = [block.strip() for block in blocks if 'with_llm("azure"' in block]
    body = "\n    result = await pepper.chat.with_user('What is the capital of France?').generate()\n    print(result.content)\n"
    proxy = AzureProxy(llama_server, api_key="xxx-test-secret-not-real").start()
    try:
        output = run("from pepperpy import PepperPy  # imported in the README's tour\n" + line + body, "", session_home, files, AZURE_OPENAI_ENDPOINT=proxy.endpoint,
                     AZURE_OPENAI_API_KEY="xxx-test-secret-not-real")
    finally:
        proxy.stop()
    (request,) = proxy.requests
    assert request.path == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    # the README's line sets no temperature, so SmolLM2 samples: an answer printed is what is checked, not its facts
    assert request.status == 200 and output.strip()


def test_cost_total_when_no_call_is_priced(session_home, files):
    """The same README snippet on llm/mock (never priced: ``total.cost`` is None) runs as written and says so,
    rather than a TypeError from formatting None."""
    blocks = python_blocks(ROOT / "README.md", "### Cache, call log, usage, tracing and your own hooks")
    snippet = next(block for block in blocks if "pepper.usage.total" in block)
    snippet = snippet.replace('with_llm("anthropic", model="claude-sonnet-4-5")', 'with_llm("mock")')
    assert 'with_llm("mock")' in snippet, snippet
    setup = "from pepperpy import PepperPy\nlong_instructions = 'Be brief.'\nquestions = ['Hi', 'And then?']\n"
    output = run(setup + snippet, "", session_home, files)
    assert re.fullmatch(r"2 calls, \d+ prompt tokens \(\d+ read from the cache\): unpriced", output.splitlines()[2]), output


def test_the_retrieval_example(session_home, local_manager, chroma_manager, tmp_path):
    """The retrieval example as written (its imports included), with the local model and embeddings: the hits and
    the answer's sources print as the README's text says (``SearchResult`` with ``document`` and ``score``), and the
    collection lands in ``<PEPPERPY_HOME>/rag/<collection>.sqlite3``."""
    (snippet,) = python_blocks(ROOT / "README.md", "### Embeddings and retrieval")
    assert "import" in snippet and 'with_rag(collection="handbook")' in snippet
    (tmp_path / "notes.md").write_text("# Releases\n\nAna Souza signs off every release before it ships.\n")
    store = session_home / "rag" / "handbook.sqlite3"
    store.unlink(missing_ok=True)
    try:
        out = run(snippet, '\nprint("sources:", type(answer.sources[0]).__name__, [h.document.id for h in hits])\n',
                  session_home, tmp_path)
        assert store.is_file()
    finally:
        for leftover in store.parent.glob("handbook.sqlite3*"):
            leftover.unlink()
    assert "sources: SearchResult ['x']" in out
    assert " x {'team': 'a'} ..." in out, "the example prints each hit's score, id, metadata and text"
