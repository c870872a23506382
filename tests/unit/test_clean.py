"""`pepperpy plugins clean` on real folders in a tmp home: age by last-used record, locks held by real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pepperpy import _install
from pepperpy.cli.clean import clean, clean_envs, freed_bytes

DAY = 86400
HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def envs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "envs"
    folder.mkdir(parents=True)
    return folder


def make_env(envs: Path, name: str, age_days: float | None, payload: int = 1000, record: bool = True) -> Path:
    """An env as install leaves it: a package file, a stamp, a last-used record aged ``age_days`` (None: no stamp)."""
    env = envs / name
    (env / "pkg").mkdir(parents=True)
    (env / "pkg" / "data.bin").write_bytes(b"x" * payload)
    (envs / f"{name}.lock").touch()
    if age_days is None:
        return env
    aged = time.time() - age_days * DAY
    stamp = env / _install.STAMP_FILE
    stamp.write_text("fingerprint!")
    os.utime(stamp, (aged, aged))
    if record:
        (env / _install.LAST_USED_FILE).touch()
        os.utime(env / _install.LAST_USED_FILE, (aged, aged))
    return env


@pytest.fixture
def holder():
    """Start a real process that holds a lock file until the test ends."""
    started: list[subprocess.Popen] = []

    def hold(path: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "held"
        started.append(process)
        return process

    yield hold
    for process in started:
        process.communicate()


def test_removes_envs_unused_for_n_days_and_keeps_fresh_ones(envs):
    old = make_env(envs, "llm-old-0123456789ab", age_days=45)
    fresh = make_env(envs, "llm-fresh-0123456789ab", age_days=2)
    result = clean_envs(envs, days=30)
    assert [r.path for r in result.removed] == [old]
    assert result.removed[0].reason == "unused for 45 days"
    assert not old.exists() and fresh.is_dir()
    assert not (envs / "llm-old-0123456789ab.lock").exists()
    assert (envs / "llm-fresh-0123456789ab.lock").exists()
    assert [p.name for p in envs.iterdir() if p.name.startswith(".")] == []


def test_the_record_wins_over_the_stamp_and_an_env_without_record_counts_by_its_stamp(envs):
    used_lately = make_env(envs, "llm-used-0123456789ab", age_days=60)
    (used_lately / _install.LAST_USED_FILE).touch()  # used just now, installed 60 days ago
    unrecorded = make_env(envs, "llm-norecord-0123456789ab", age_days=40, record=False)
    result = clean_envs(envs, days=30)
    assert [r.path for r in result.removed] == [unrecorded]
    assert used_lately.is_dir()


def test_an_env_whose_lock_is_held_is_kept_until_the_lock_is_free(envs, holder):
    old = make_env(envs, "llm-busy-0123456789ab", age_days=90)
    process = holder(envs / "llm-busy-0123456789ab.lock")
    result = clean_envs(envs, days=30)
    assert result.removed == [] and result.locked == [old]
    assert old.is_dir()
    process.communicate()  # the holder exits: its lock is released
    assert [r.path for r in clean_envs(envs, days=30).removed] == [old]
    assert not old.exists()


def test_interrupted_installs_go_when_their_lock_is_free_and_stay_while_it_is_held(envs, holder):
    make_env(envs, "llm-a-0123456789ab", age_days=1)
    free = envs / ".llm-a-0123456789ab.partial-k2j4_x9q"
    (free / "pkg").mkdir(parents=True)
    (free / "pkg" / "mod.py").write_text("print('half')\n")
    legacy = envs / ".llm-a-0123456789ab-abcd1234"  # the name older versions gave their temp folders
    legacy.mkdir()
    busy = envs / ".llm-b-0123456789ab.partial-zz11yy22"
    busy.mkdir()
    holder(envs / "llm-b-0123456789ab.lock")
    result = clean_envs(envs, days=30)
    assert sorted(r.path.name for r in result.removed) == sorted([free.name, legacy.name])
    assert {r.reason for r in result.removed} == {"interrupted install"}
    assert result.freed == len("print('half')\n")
    assert result.locked == [busy] and busy.is_dir()
    assert (envs / "llm-a-0123456789ab").is_dir()


def test_an_unstamped_env_folder_is_an_incomplete_install(envs):
    broken = make_env(envs, "llm-broken-0123456789ab", age_days=None)
    result = clean_envs(envs, days=30)
    assert [(r.path, r.reason) for r in result.removed] == [(broken, "incomplete install (no stamp)")]


def test_folders_pepperpy_did_not_make_are_left_alone(envs):
    (envs / "my-notes").mkdir()
    (envs / ".cache").mkdir()
    (envs / "llm-file-0123456789ab").write_text("a file, not an env")
    assert clean_envs(envs, days=0).removed == []
    assert sorted(p.name for p in envs.iterdir()) == [".cache", "llm-file-0123456789ab", "my-notes"]


def test_dry_run_lists_without_removing(envs):
    old = make_env(envs, "llm-old-0123456789ab", age_days=45, payload=2500)
    result = clean_envs(envs, days=30, dry_run=True)
    assert [r.path for r in result.removed] == [old]
    assert result.freed == freed_bytes(old) >= 2500
    assert old.is_dir() and (envs / "llm-old-0123456789ab.lock").exists()


def test_freed_bytes_leave_out_files_linked_from_elsewhere(envs, tmp_path):
    env = make_env(envs, "llm-linked-0123456789ab", age_days=45, payload=100)
    cache_file = tmp_path / "cache-file"
    cache_file.write_bytes(b"y" * 5000)
    os.link(cache_file, env / "pkg" / "linked.bin")  # how uv installs from its cache
    stamp, record = env / _install.STAMP_FILE, env / _install.LAST_USED_FILE
    assert freed_bytes(env) == 100 + stamp.stat().st_size + record.stat().st_size


def test_command_without_a_terminal_runs_without_asking(envs):
    old = make_env(envs, "llm-old-0123456789ab", age_days=45, payload=1234)
    expected = freed_bytes(old)
    make_env(envs, "llm-fresh-0123456789ab", age_days=1)
    result = CliRunner().invoke(clean, [])
    assert result.exit_code == 0, result.output
    assert "llm-old-0123456789ab" in result.output and "unused for 45 days" in result.output
    assert f"removed 1 folder from {envs}" in result.output and f"({expected} bytes) freed" in result.output
    assert "llm-fresh" not in result.output
    assert not old.exists()


def test_command_dry_run_and_days(envs):
    old = make_env(envs, "llm-old-0123456789ab", age_days=10)
    listed = CliRunner().invoke(clean, ["--dry-run", "--days", "7"])
    assert listed.exit_code == 0, listed.output
    assert "would remove 1 folder" in listed.output and "would be freed" in listed.output
    assert old.is_dir()
    kept = CliRunner().invoke(clean, ["--days", "30", "--yes"])
    assert "nothing to clean" in kept.output and old.is_dir()
    removed = CliRunner().invoke(clean, ["--days", "7", "--yes"])
    assert "removed 1 folder" in removed.output and not old.exists()


def test_command_reports_a_held_lock(envs, holder):
    make_env(envs, "llm-busy-0123456789ab", age_days=90)
    holder(envs / "llm-busy-0123456789ab.lock")
    result = CliRunner().invoke(clean, [])
    assert result.exit_code == 0
    assert "kept llm-busy-0123456789ab: its lock is held" in result.output


def test_negative_days_is_a_usage_error(envs):
    result = CliRunner().invoke(clean, ["--days", "-1"])
    assert result.exit_code == 2 and "--days" in result.output


def test_no_envs_folder_is_nothing_to_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "empty-home"))
    result = CliRunner().invoke(clean, [])
    assert result.exit_code == 0 and "nothing to clean" in result.output
    assert not (tmp_path / "empty-home").exists()
