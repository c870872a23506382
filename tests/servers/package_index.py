"""A real package index on 127.0.0.1 for install tests: PEP 691 JSON simple pages, real wheels.

The wheels are built offline by ``uv build`` (uv's own build backend, nothing downloaded) from
tiny projects written here; the index answers ``/simple/`` and ``/simple/<name>/`` as
``application/vnd.pypi.simple.v1+json`` (api-version 1.1) with ``upload-time`` and sha256 on each
file (PEP 700), serves the files under ``/files/``, and answers HEAD on every path, as uv needs.
``html_url`` is the same index as PEP 503 HTML pages, which have no upload times.

What it serves (``PACKAGES``):
- ``pp-plain`` 1.0: an ordinary old release.
- ``pp-app`` 1.0: depends on ``pp-plain`` (a lock then has two entries).
- ``pp-young`` 1.0 (old) and 2.0 (uploaded an hour ago): a cooldown hides 2.0.
- ``pp-tampered`` 1.0: the file served is not the one a lock made earlier recorded;
  ``PackageIndex.original_sha256("pp-tampered")`` is the hash of that earlier build.
- ``pp-startup`` 1.0: installs ``pp_startup.pth`` at the top of site-packages; the line in it imports
  ``pp_startup``, which touches the file named by ``PP_STARTUP_MARKER`` (when set) at interpreter start.

Install with a fresh uv cache (``UV_CACHE_DIR``): a warm cache serves the first file it saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.servers.threaded import ThreadedServer, read_request

OLD = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    age: timedelta | None = None  # uploaded this long before the index started; None: OLD
    dependencies: tuple[str, ...] = ()
    module_text: str = "VALUE = 1\n"
    pth_line: str | None = None  # a .pth file installed at the top of site-packages


_STARTUP = textwrap.dedent("""\
    import os
    marker = os.environ.get("PP_STARTUP_MARKER")
    if marker:
        open(marker, "a").close()
    """)

PACKAGES = (
    Release("pp-plain", "1.0"),
    Release("pp-app", "1.0", dependencies=("pp-plain>=1",)),
    Release("pp-young", "1.0"),
    Release("pp-young", "2.0", age=timedelta(hours=1), module_text="VALUE = 2\n"),
    Release("pp-tampered", "1.0", module_text="VALUE = 'served'\n"),
    Release("pp-startup", "1.0", module_text=_STARTUP, pth_line="import pp_startup\n"),
)
TAMPERED_ORIGINAL = Release("pp-tampered", "1.0", module_text="VALUE = 'locked'\n")


def build_wheel(release: Release, workdir: Path, uv: str) -> Path:
    """Build ``release`` with ``uv build --offline`` (uv's built-in backend) in ``workdir``; the wheel's path."""
    module = release.name.replace("-", "_")
    project = workdir / f"{module}-{release.version}-{hashlib.sha256(release.module_text.encode()).hexdigest()[:8]}"
    (project / "src" / module).mkdir(parents=True)
    (project / "src" / module / "__init__.py").write_text(release.module_text)
    extra = ""
    if release.pth_line is not None:
        (project / "top").mkdir()
        (project / "top" / f"{module}.pth").write_text(release.pth_line)
        extra = '\n[tool.uv.build-backend]\ndata = { purelib = "top" }\n'
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{release.name}"\nversion = "{release.version}"\nrequires-python = ">=3.8"\n'
        f"dependencies = {json.dumps(list(release.dependencies))}\n\n"
        '[build-system]\nrequires = ["uv_build>=0.8,<1"]\nbuild-backend = "uv_build"\n' + extra
    )
    out = project / "dist"
    subprocess.run(
        [uv, "build", "--wheel", "--offline", "--no-config", "-q", "-o", str(out), str(project)],
        check=True, capture_output=True, env={"UV_CACHE_DIR": str(workdir / "uv-cache"), "PATH": "/usr/bin:/bin"},
    )
    (wheel,) = out.glob("*.whl")
    return wheel


@dataclass(frozen=True)
class ServedFile:
    name: str  # canonical project name
    version: str
    path: Path
    sha256: str
    upload_time: datetime


class PackageIndex(ThreadedServer):
    """``PackageIndex(workdir, uv).start()``; ``url`` is the simple index's root (for ``UV_DEFAULT_INDEX``)."""

    def __init__(self, workdir: Path, uv: str) -> None:
        super().__init__()
        started = datetime.now(UTC)
        self.files: dict[str, ServedFile] = {}  # by file name
        for release in PACKAGES:
            wheel = build_wheel(release, workdir, uv)
            uploaded = OLD if release.age is None else started - release.age
            self.files[wheel.name] = ServedFile(
                canonicalize_name(release.name), release.version, wheel, _sha256(wheel), uploaded
            )
        self._original = {"pp-tampered": _sha256(build_wheel(TAMPERED_ORIGINAL, workdir, uv))}
        self.requests: list[tuple[str, str]] = []  # (method, path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    @property
    def html_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/html/"

    def original_sha256(self, name: str) -> str:
        """The hash a lock made before the file was replaced recorded (only ``pp-tampered``)."""
        return self._original[name]

    def sha256(self, name: str, version: str) -> str:
        """The hash of the wheel served for ``name`` ``version``."""
        return next(f.sha256 for f in self.files.values() if f.name == name and f.version == version)

    def _page(self, path: str) -> tuple[int, str, bytes]:
        if path in ("/simple", "/simple/"):
            names = sorted({f.name for f in self.files.values()})
            body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            return 200, JSON_TYPE, json.dumps(body).encode()
        if path.startswith("/simple/"):
            name = canonicalize_name(path.removeprefix("/simple/").strip("/"))
            files = [f for f in self.files.values() if f.name == name]
            if not files:
                return 404, "text/plain", b"not found"
            body = {
                "meta": {"api-version": "1.1"},
                "name": name,
                "versions": sorted({f.version for f in files}),
                "files": [
                    {
                        "filename": f.path.name,
                        "url": f"/files/{f.path.name}",
                        "hashes": {"sha256": f.sha256},
                        "requires-python": ">=3.8",
                        "size": f.path.stat().st_size,
                        "upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "yanked": False,
                    }
                    for f in files
                ],
            }
            return 200, JSON_TYPE, json.dumps(body).encode()
        if path.startswith("/html/"):
            name = canonicalize_name(path.removeprefix("/html/").strip("/"))
            links = "".join(f'<a href="/files/{f.path.name}#sha256={f.sha256}">{f.path.name}</a>\n'
                            for f in self.files.values() if f.name == name)
            if not links:
                return 404, "text/plain", b"not found"
            return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
        if path.startswith("/files/") and path.removeprefix("/files/") in self.files:
            return 200, "application/octet-stream", self.files[path.removeprefix("/files/")].path.read_bytes()
        return 404, "text/plain", b"not found"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                path = request.path.split("?", 1)[0]
                self.requests.append((request.method, path))
                status, kind, body = self._page(path)
                head = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + (b"" if request.method == "HEAD" else body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
