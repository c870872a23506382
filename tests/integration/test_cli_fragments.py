"""`pepperpy -f` fragments, run as the real command: real files, real stdin, URLs served by a local HTTP server,
and PDFs read by the real loader_pdf plugin (pypdfium2 installed by uv on first use); the call log keeps each
fragment once. llm/mock echoes the last user message, so what the command prints is what the model was sent.

The HTTP server is Python's own on 127.0.0.1; its /big-chunked and /slow pages are scripted (a body with no
length that outgrows the cap, a page that never finishes): only a scripted page can show those on time.
"""

from __future__ import annotations

import http.server
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy._calllog import default_path, recent
from pepperpy.errors import InvalidInputError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.command import ok, run_pepperpy
from tests.documents import write_pdf

pytestmark = pytest.mark.integration

PAGE = "The tide tables say high water at 06:12."


class _Pages(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []  # the paths requested, in order

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.asked.append(self.path)
        if self.path == "/tides.txt":
            self._send(PAGE.encode(), "text/plain; charset=utf-8")
        elif self.path == "/big":
            self._send(b"x" * 5000, "text/plain")
        elif self.path == "/big-chunked":  # no Content-Length: the cap is enforced while reading
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"y" * 200)
                self.wfile.flush()
            self.close_connection = True
        elif self.path == "/slow":  # headers at once, then a trickle that would take a minute
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "600")
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"z")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the client gave up, as it should
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, media_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def pepperpy(home: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return run_pepperpy(home, *args, stdin=stdin, env=env)


def failed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("pepperpy: -f ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_a_file_and_real_stdin_are_fragments_stored_once(home, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("Ship on Friday.\n")
    answer = ok(pepperpy(home, "-p", "mock", "-f", str(notes), "-f", "-", "when?", stdin="Friday is a holiday.\n"))
    assert answer == "Ship on Friday.\n\nFriday is a holiday.\n\nwhen?\n"
    ok(pepperpy(home, "-p", "mock", "-f", str(notes), "and again?"))
    first, second = recent(default_path(home), 0)
    assert [f["source"] for f in first.fragments] == [str(notes), "stdin"]
    assert second.fragments == first.fragments[:1]  # the same hash: the same stored text
    with sqlite3.connect(default_path(home)) as db:
        assert db.execute("SELECT count(*) FROM fragments").fetchone() == (2,)
    db.close()
    shown = ok(pepperpy(home, "logs", "-n", "2"))
    assert f"fragments: {notes} (sha256 {first.fragments[0]['sha256'][:12]}, 17 characters)" in shown
    assert shown.count("Ship on Friday") == 2  # in the two echoed answers, never as the logged prompt
    assert ok(pepperpy(home, "logs", "--fragment", first.fragments[1]["sha256"][:8])) == "Friday is a holiday.\n\n"
    # continuing the conversation sends the fragment's text again, from the fragments table
    assert ok(pepperpy(home, "-p", "mock", "-c", "and then?")) == "and then?\n"
    continued = recent(default_path(home), 1)[0]
    assert continued.fragments == first.fragments[:1]


def test_a_url_is_fetched_by_the_command_with_a_cap_and_a_timeout(home, pages):
    assert ok(pepperpy(home, "-p", "mock", "-f", f"{pages}/tides.txt", "when?")) == f"{PAGE}\n\nwhen?\n"
    (call,) = recent(default_path(home), 0)
    assert call.fragments[0]["source"] == f"{pages}/tides.txt"
    capped = {"PEPPERPY_FRAGMENT_MAX_BYTES": "1000", "PEPPERPY_FRAGMENT_TIMEOUT": "2"}
    for page in ("big", "big-chunked"):
        too_big = failed(pepperpy(home, "-p", "mock", "-f", f"{pages}/{page}", "x", **capped))
        assert f"{pages}/{page}: larger than the cap of 1000 bytes" in too_big
    too_slow = failed(pepperpy(home, "-p", "mock", "-f", f"{pages}/slow", "x", **capped))
    assert f"{pages}/slow: no complete answer within 2 s" in too_slow
    assert f"{pages}/missing: the server answered 404 Not Found; check the URL" in failed(
        pepperpy(home, "-p", "mock", "-f", f"{pages}/missing", "x"))
    assert "PEPPERPY_FRAGMENT_TIMEOUT='soon' is not a positive number" in pepperpy(
        home, "-p", "mock", "-f", f"{pages}/tides.txt", "x", PEPPERPY_FRAGMENT_TIMEOUT="soon").stderr
    assert len(recent(default_path(home), 0)) == 1  # no failed fetch reached the model


async def test_with_fragment_fetches_a_url_only_when_asked(pages, tmp_path):
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")
    _Pages.asked.clear()
    async with PepperPy(plugin_manager=manager).with_llm("mock") as pepper:
        chat = pepper.chat.with_user("when?")
        with pytest.raises(InvalidInputError, match="the library never fetches a URL unless asked; pass fetch=True"):
            await chat.with_fragment(f"{pages}/tides.txt").generate()
        assert _Pages.asked == []  # nothing was requested
        answer = await chat.with_fragment(f"{pages}/tides.txt", fetch=True).generate()
        assert answer.content == f"{PAGE}\n\nwhen?" and _Pages.asked == ["/tides.txt"]
        with pytest.raises(InvalidInputError, match="big: larger than the cap of 100 bytes"):
            await chat.with_fragment(f"{pages}/big", fetch=True, max_bytes=100).generate()
        with pytest.raises(InvalidInputError, match="slow: no complete answer within 0.5 s"):
            await chat.with_fragment(f"{pages}/slow", fetch=True, timeout=0.5).generate()
        with pytest.raises(InvalidInputError, match="missing: the server answered 404"):
            await chat.with_fragment(f"{pages}/missing", fetch=True).generate()



def test_a_pdf_is_read_by_the_loader_plugin_by_suffix_or_prefix(session_home, tmp_path):
    report = write_pdf(tmp_path / "report.pdf", ["Revenue grew by twelve percent.", "Error E4217 means a freeze."])
    by_suffix = ok(pepperpy(session_home, "-p", "mock", "--no-log", "-f", str(report), "sum up"))
    assert by_suffix == "Revenue grew by twelve percent.\n\nError E4217 means a freeze.\n\nsum up\n"
    assert ok(pepperpy(session_home, "-p", "mock", "--no-log", "-f", f"pdf:{report}", "sum up")) == by_suffix
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    assert "not UTF-8 text, and no loader plugin reads its suffix" in failed(
        pepperpy(session_home, "-p", "mock", "--no-log", "-f", str(tmp_path / "blob.bin"), "x"))
    assert "no loader plugin named 'pfd'" in failed(
        pepperpy(session_home, "-p", "mock", "--no-log", "-f", f"pfd:{report}", "x"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 \x00 not really")
    assert f"{broken}: " in failed(pepperpy(session_home, "-p", "mock", "--no-log", "-f", str(broken), "x"))
