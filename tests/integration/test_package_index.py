"""The local package index (tests/servers/package_index.py) is one uv really installs from, with upload times."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from uv import find_uv_bin

from tests.servers.package_index import JSON_TYPE


def uv_install(target, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [find_uv_bin(), "pip", "install", "--python", sys.executable, "--no-config", "--target", str(target)]
    return subprocess.run(command + list(arguments), capture_output=True, text=True, env=dict(os.environ), timeout=120)


def test_pages_are_pep_691_json_with_upload_times_and_head_answered(package_index):
    page = httpx.get(package_index.url + "pp-young/")
    assert page.headers["content-type"] == JSON_TYPE
    files = page.json()["files"]
    assert page.json()["meta"]["api-version"] == "1.1"
    assert all(f["upload-time"].endswith("Z") and len(f["hashes"]["sha256"]) == 64 for f in files)
    assert sorted(page.json()["versions"]) == ["1.0", "2.0"]
    head = httpx.head(package_index.url.removesuffix("/simple/") + files[0]["url"])
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


def test_uv_installs_from_it_and_its_upload_times_drive_exclude_newer(use_package_index, tmp_path):
    latest = uv_install(tmp_path / "latest", "pp-young", "pp-app")
    assert latest.returncode == 0, latest.stderr
    assert (tmp_path / "latest" / "pp_young-2.0.dist-info").is_dir()
    assert (tmp_path / "latest" / "pp_plain-1.0.dist-info").is_dir()  # pp-app's dependency
    cooled = uv_install(tmp_path / "cooled", "pp-young", "--exclude-newer", "1 day")
    assert cooled.returncode == 0, cooled.stderr
    assert (tmp_path / "cooled" / "pp_young-1.0.dist-info").is_dir()


def test_the_startup_package_installs_a_pth_file_that_runs_at_interpreter_start(use_package_index, tmp_path):
    done = uv_install(tmp_path / "env", "pp-startup")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env" / "pp_startup.pth").read_text() == "import pp_startup\n"
    marker = tmp_path / "ran"
    code = f"import site; site.addsitedir({str(tmp_path / 'env')!r})"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PP_STARTUP_MARKER": str(marker)}, check=True)
    assert marker.exists()


def test_the_tampered_package_is_not_the_build_a_lock_recorded(use_package_index, tmp_path):
    served = use_package_index.sha256("pp-tampered", "1.0")
    assert served != use_package_index.original_sha256("pp-tampered")
    recorded = use_package_index.original_sha256("pp-tampered")
    (tmp_path / "lock.txt").write_text(f"pp-tampered==1.0 --hash=sha256:{recorded}\n")
    done = uv_install(tmp_path / "env", "--require-hashes", "-r", str(tmp_path / "lock.txt"))
    assert done.returncode != 0 and "hash" in done.stderr.lower()
    assert served in done.stderr
