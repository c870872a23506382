"""Requirement lines are data: strict PEP 508 parsing, and a fast path that starts no subprocess."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time

import pytest

from pepperpy import _install
from pepperpy.errors import PluginDependencyError, PluginInstallError, PluginManifestError


@pytest.mark.parametrize(
    ("line", "name", "specifier"),
    [
        ("httpx", "httpx", ""),
        ("httpx>=0.27,<1", "httpx", "<1,>=0.27"),
        ("numpy==2.1.0 ; python_version >= '3.9'", "numpy", "==2.1.0"),
        ("requests[socks]~=2.31", "requests", "~=2.31"),
        ("six==1.16.0 --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926", "six", "==1.16.0"),
        ("tabulate  # a comment", "tabulate", ""),
    ],
)
def test_accepted_lines(line, name, specifier):
    requirement = _install.parse_requirement_line(line, "requirements.txt:1")
    assert requirement is not None
    assert (requirement.name, str(requirement.specifier)) == (name, specifier)


@pytest.mark.parametrize("line", ["", "   ", "# only a comment"])
def test_blank_and_comment_lines_are_skipped(line):
    assert _install.parse_requirement_line(line, "requirements.txt:1") is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-i https://example.invalid/simple", "option lines"),
        ("--index-url https://example.invalid/simple", "option lines"),
        ("-e .", "option lines"),
        ("-r other.txt", "option lines"),
        ("-c constraints.txt", "option lines"),
        ("-f ./wheels", "option lines"),
        ("pkg @ https://example.invalid/pkg.whl", "URLs and local paths"),
        ("pkg @ file:///tmp/pkg", "URLs and local paths"),
        ("./local/path", "not a PEP 508 requirement"),
        ("${PACKAGE}", "environment references"),
        ("pkg==$VERSION", "environment references"),
        ("pkg >>= 1", "not a PEP 508 requirement"),
        ("https://example.invalid/pkg.whl", "not a PEP 508 requirement"),
    ],
)
def test_rejected_lines_name_the_file_and_line(line, reason):
    with pytest.raises(PluginManifestError) as raised:
        _install.parse_requirement_line(line, "plugins/x/requirements.txt:3")
    assert reason in str(raised.value)
    assert "plugins/x/requirements.txt:3" in str(raised.value)


def no_subprocess(*args, **kwargs):
    raise AssertionError(f"the fast path started a subprocess: {args}")


@pytest.fixture
def forbid_subprocess(monkeypatch):
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)


def test_fast_path_when_running_environment_satisfies(manager, make_plugin, forbid_subprocess, tmp_path):
    make_plugin("satisfied", files={"requirements.txt": "packaging>=20\npydantic>=2\n"})
    provider = manager.create_provider("llm", "satisfied")
    assert provider.name == "satisfied"
    assert not (tmp_path / "home" / "envs").exists()


def test_fast_path_when_env_dir_is_stamped(manager, make_plugin, forbid_subprocess):
    folder = make_plugin("stamped", files={"requirements.txt": "pepperpy-test-only-package==1.0\n"})
    info = manager.discover()["llm/stamped"]
    needed = manager.requirement_set(info)
    target = _install.env_dir(manager.home, needed)
    target.mkdir(parents=True)
    (target / _install.STAMP_FILE).write_text(needed.fingerprint())
    assert manager.create_provider("llm", "stamped").name == "stamped"
    assert str(target) in sys.path
    sys.path.remove(str(target))
    assert folder.is_dir()


def test_conflicting_installed_version_is_a_clear_error(manager, make_plugin):
    make_plugin("conflict", files={"requirements.txt": "pydantic<2\n"})
    with pytest.raises(PluginDependencyError, match=r"llm/conflict needs pydantic<2, but pydantic 2\.[\d.]+ is already installed") as caught:
        manager.create_provider("llm", "conflict")
    assert '"isolation": "process"' in str(caught.value)  # the way out: a worker process with its own environment


def test_bad_requirement_line_fails_that_plugin_only(manager, make_plugin):
    make_plugin("optioned", files={"requirements.txt": "--extra-index-url https://example.invalid\n"})
    make_plugin("plain")
    with pytest.raises(PluginManifestError, match=r"requirements\.txt:1: option lines"):
        manager.create_provider("llm", "optioned")
    assert manager.create_provider("llm", "plain").name == "plain"


def test_fingerprint_changes_with_requirements():
    a = _install.RequirementSet("llm/x", requirements=(_install.parse_requirement_line("a==1", "t"),))
    b = _install.RequirementSet("llm/x", requirements=(_install.parse_requirement_line("a==2", "t"),))
    c = _install.RequirementSet("llm/x", model_packages=(_install.parse_requirement_line("a==1", "t"),))
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def stamped_env(tmp_path, record_age_s: float | None):
    needed = _install.RequirementSet("llm/x", requirements=(_install.parse_requirement_line("a==1", "t"),))
    env = _install.env_dir(tmp_path / "home", needed)
    env.mkdir(parents=True)
    (env / _install.STAMP_FILE).write_text(needed.fingerprint())
    record = env / _install.LAST_USED_FILE
    if record_age_s is not None:
        record.touch()
        aged = time.time() - record_age_s
        os.utime(record, (aged, aged))
    return needed, env, record


def test_fast_path_refreshes_a_last_used_record_older_than_an_hour(tmp_path):
    needed, env, record = stamped_env(tmp_path, record_age_s=2 * 3600)
    before = record.stat().st_mtime
    assert _install.is_stamped(env, needed)
    assert record.stat().st_mtime > before
    assert _install.last_used(env) == record.stat().st_mtime


def test_fast_path_does_not_write_a_fresh_record(tmp_path):
    needed, env, record = stamped_env(tmp_path, record_age_s=10 * 60)
    before = record.stat().st_mtime_ns
    assert _install.is_stamped(env, needed)
    assert record.stat().st_mtime_ns == before


def test_fast_path_creates_a_missing_record_and_an_unstamped_dir_gets_none(tmp_path):
    needed, env, record = stamped_env(tmp_path, record_age_s=None)
    assert _install.last_used(env) == (env / _install.STAMP_FILE).stat().st_mtime  # counted by the stamp
    assert _install.is_stamped(env, needed) and record.is_file()
    (env / _install.STAMP_FILE).write_text("another fingerprint")
    record.unlink()
    assert not _install.is_stamped(env, needed) and not record.exists()


@pytest.mark.parametrize(
    ("name", "env"),
    [
        (".llm-local-0123456789ab.partial-a1b2_c3d", "llm-local-0123456789ab"),
        (".llm-local-0123456789ab.partial-removing", "llm-local-0123456789ab"),
        (".rag-my-store-0123456789ab-k2j4x9q1", "rag-my-store-0123456789ab"),  # older versions' temp folders
        ("llm-local-0123456789ab", None),
        ("llm-local-0123456789ab.lock", None),
        (".cache", None),
        (".llm-local-nothex.partial-a1b2", None),
    ],
)
def test_staging_names_map_to_their_env(name, env):
    assert _install.staging_target(name) == env


def test_disk_full_is_a_clear_install_error(tmp_path, monkeypatch):
    """ENOSPC raised at the os call that makes the temp folder (a monkeypatch: the real disk-full case, a tiny
    tmpfs, is in tests/integration/test_install_hardening.py and needs root)."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "home" / "envs"))

    monkeypatch.setattr(tempfile, "mkdtemp", full)
    needed = _install.RequirementSet("llm/x", requirements=(_install.parse_requirement_line("a==1", "t"),))
    with pytest.raises(PluginInstallError) as raised:
        _install.install(tmp_path / "home", needed)
    message = str(raised.value)
    assert "llm/x" in message and f"the disk holding {tmp_path / 'home'} is full" in message
    assert "PEPPERPY_HOME" in message and "already installed there keep working" in message
