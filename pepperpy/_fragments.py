"""Fragments: context text from a file, standard input, a URL or a loader plugin, sent before the prompt.

A fragment is named by where it comes from:

- a path: read by the loader plugin that takes its suffix (``report.pdf``: ``loader/pdf``; ``people.csv``: a
  ``loader/csv`` of yours), else (no loader, or ``loader/text`` / ``loader/markdown``) as UTF-8 text;
- ``-``: standard input;
- ``http://...`` / ``https://...``: fetched only when the caller asks (``fetch=True``; the command does), with
  a size cap and a timeout — the library never fetches a URL on its own;
- ``PREFIX:ARG``: read by the loader plugin named PREFIX (``pdf:report.pdf``), when no file is named so.

Each fragment becomes a ``TextPart`` whose ``source`` names it, so the call log stores its text once by hash.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pepperpy.errors import FileLoadError, InvalidInputError
from pepperpy.loaders import utf8_text
from pepperpy.parts import TextPart
from pepperpy.plugin_manager import PluginManager, get_plugin_manager

STDIN = "-"
MAX_BYTES = 5_000_000  # what a URL may send, by default
TIMEOUT = 20.0  # seconds for a whole URL fetch, by default
SEPARATOR = "\n\n"  # after each fragment's text, before what follows in the message
AS_IS_LOADERS = ("text", "markdown")  # loaders that give a file's text unchanged: the fragment is read directly
_PREFIXED = re.compile(r"^([a-z][a-z0-9_]+):(.+)$", re.DOTALL)  # two letters at least: C:\ is a drive


@dataclass(frozen=True)
class Fragment:
    """A fragment's text and where it came from (``source``)."""

    text: str
    source: str

    def part(self) -> TextPart:
        """The fragment as a message part: its text, a blank line, and its source for the call log."""
        return TextPart(text=self.text.rstrip() + SEPARATOR, source=self.source)


async def resolve(
    spec: str | os.PathLike[str], *, fetch: bool = False, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT,
    manager: PluginManager | None = None,
) -> Fragment:
    """The fragment ``spec`` names (see the module docstring); InvalidInputError naming it when it cannot be read."""
    if isinstance(spec, os.PathLike):
        return await _from_path(Path(spec), str(spec), manager)
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"a fragment is a path, '-', a URL or PREFIX:ARG, got {spec!r:.60}")
    if spec == STDIN:
        return Fragment(await asyncio.to_thread(_read_stdin), "stdin")
    if spec.startswith(("http://", "https://")):
        if not fetch:
            raise InvalidInputError(f"{spec}: the library never fetches a URL unless asked; pass fetch=True "
                                    "to with_fragment(), or download it and pass its path")
        return Fragment(await fetch_url(spec, max_bytes, timeout), spec)
    prefixed = _PREFIXED.match(spec)
    if prefixed and not Path(spec).exists():
        return await _from_loader(prefixed.group(1), prefixed.group(2), spec, manager)
    return await _from_path(Path(spec), spec, manager)


def _read_stdin() -> str:
    if sys.stdin is None:
        raise InvalidInputError("fragment '-': there is no standard input to read")
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise InvalidInputError("fragment '-': standard input is not UTF-8 text; pipe text, or pass a file") from None


async def _from_path(path: Path, source: str, manager: PluginManager | None) -> Fragment:
    """A file whose suffix a loader plugin reads goes through it; a file no loader (or the text or markdown
    loader, which keep the text as it is) claims is read as UTF-8 text."""
    from pepperpy._loaders import load_path, suffix_table

    manager = manager or get_plugin_manager()
    loader = suffix_table(manager).get(path.suffix.lower())
    if loader is None or loader in AS_IS_LOADERS:
        text = await asyncio.to_thread(_text_of, path)
        if text is not None:
            return Fragment(text, source)
        raise FileLoadError(path, "not UTF-8 text, and no loader plugin reads its suffix; pass a text file, "
                            "or name a loader: PREFIX:PATH (e.g. pdf:report.pdf)")
    _check_file(path)
    sections = await load_path(path, loader=loader, manager=manager)
    return Fragment(SEPARATOR.join(section.text for section in sections), source)


def _check_file(path: Path) -> None:
    """FileLoadError naming ``path`` when it is not a file."""
    if path.is_dir():
        raise FileLoadError(path, "is a folder; pass a file")
    if not path.exists():
        raise FileLoadError(path, "no such file; check the path")


def _text_of(path: Path) -> str | None:
    """The UTF-8 text of the file at ``path``, or None when it holds binary content; FileLoadError if unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileLoadError(path, "no such file; check the path") from None
    except IsADirectoryError:
        raise FileLoadError(path, "is a folder; pass a file") from None
    except OSError as exc:
        raise FileLoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    return utf8_text(raw)


async def _from_loader(prefix: str, argument: str, source: str, manager: PluginManager | None) -> Fragment:
    from pepperpy._loaders import load_path, suffix_table

    manager = manager or get_plugin_manager()
    loaders = sorted(set(suffix_table(manager).values()))
    if prefix not in loaders:
        raise InvalidInputError(f"fragment {source!r}: no such file, and no loader plugin named {prefix!r} "
                                f"(loaders: {', '.join(loaders) or 'none'}); check the path or the prefix")
    sections = await load_path(argument, loader=prefix, manager=manager)
    return Fragment(SEPARATOR.join(section.text for section in sections), source)


async def fetch_url(url: str, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT) -> str:
    """The text at ``url``: at most ``max_bytes`` bytes, within ``timeout`` seconds in all; InvalidInputError
    naming the URL otherwise (an error status, too big, too slow, not text)."""
    import httpx

    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client:
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise InvalidInputError(f"{url}: the server answered {response.status_code} "
                                            f"{response.reason_phrase}; check the URL")
                body = await _capped_body(response, url, max_bytes)
                encoding = response.charset_encoding or "utf-8"
    except TimeoutError:
        raise InvalidInputError(f"{url}: no complete answer within {timeout:g} s; try again, or download it and "
                                "pass the file") from None
    except httpx.TimeoutException:
        raise InvalidInputError(f"{url}: no complete answer within {timeout:g} s; try again, or download it and "
                                "pass the file") from None
    except httpx.HTTPError as exc:
        raise InvalidInputError(f"{url}: cannot be fetched ({type(exc).__name__}: {exc}); check the URL") from None
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise InvalidInputError(f"{url}: the answer is not text in {encoding}; download it and pass the file "
                                "(a loader reads PDFs and documents)") from None


async def _capped_body(response: object, url: str, max_bytes: int) -> bytes:
    import httpx

    assert isinstance(response, httpx.Response)
    too_big = InvalidInputError(f"{url}: larger than the cap of {max_bytes} bytes; download it and pass the "
                                "file, or raise the cap (max_bytes=, or PEPPERPY_FRAGMENT_MAX_BYTES for the command)")
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)


__all__ = ["Fragment", "MAX_BYTES", "STDIN", "TIMEOUT", "fetch_url", "resolve"]
