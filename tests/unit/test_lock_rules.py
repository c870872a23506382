"""Reading a plugin's requirements.lock and checking it against requirements.txt (pepperpy/_lockfile.py)."""

from __future__ import annotations

import os

import pytest
from packaging.requirements import Requirement

from pepperpy import _index, _install
from pepperpy._lockfile import check, explain_mismatch, read_lock
from pepperpy.errors import PluginManifestError

H1 = "sha256:" + "1" * 64
H2 = "sha256:" + "2" * 64
LOCK = f"""# written by pepperpy plugins lock
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash={H1} \\
    --hash={H2}
    # via usearch
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash={H1}
Psycopg_Binary==3.3.9 --hash={H2}
psycopg==3.3.9 --hash={H1}
colorama==0.4.6 ; sys_platform == 'win32' --hash={H1}
"""


def write(tmp_path, text):
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return path


def test_entries_are_joined_across_continuations_with_their_markers_and_hashes(tmp_path):
    entries = read_lock(write(tmp_path, LOCK), "rag/local")
    assert [(e.name, e.version) for e in entries] == [
        ("numpy", "2.4.6"), ("numpy", "2.5.5"), ("psycopg-binary", "3.3.9"), ("psycopg", "3.3.9"), ("colorama", "0.4.6")
    ]
    assert entries[0].hashes == (H1, H2) and str(entries[0].requirement.marker) == 'python_full_version < "3.12"'


@pytest.mark.parametrize("line", [
    "numpy>=2 --hash=" + H1, "numpy==2.4.6", "numpy==2.4.6,<3 --hash=" + H1, "--index-url http://x/simple",
    "numpy @ file:///tmp/numpy.whl --hash=" + H1, "not a requirement !",
])
def test_anything_but_pinned_hashed_lines_is_refused_naming_file_and_line(tmp_path, line):
    path = write(tmp_path, f"# header\n{line}\n")
    with pytest.raises(PluginManifestError, match=rf"plugin rag/local: {path}:2: .*pepperpy plugins lock rag/local"):
        read_lock(path, "rag/local")


def test_the_check_compares_canonical_names_and_specifiers_of_requirements_that_apply_here(tmp_path):
    path = write(tmp_path, LOCK)
    entries = read_lock(path, "rag/local")
    ok = [Requirement("NumPy>=2.4"), Requirement("psycopg[binary]==3.3.9"), Requirement("pywin32; sys_platform=='x'")]
    check("rag/local", ok, entries, path, tmp_path / "requirements.txt")
    with pytest.raises(PluginManifestError, match=r"asks for numpy>=2.5, but the lock pins numpy==2.4.6"):
        check("rag/local", [Requirement("numpy>=2.5")], entries, path, tmp_path / "requirements.txt")
    with pytest.raises(PluginManifestError, match=r"asks for colorama, but the lock does not list colorama"):
        check("rag/local", [Requirement("colorama")], entries, path, tmp_path / "requirements.txt")  # win32 only


def test_uvs_hash_mismatch_is_said_with_plugin_package_and_file(tmp_path):
    said = "error: Failed to download `pp-tampered==1.0`\n  cause: Hash mismatch for `pp-tampered==1.0`\n"
    message = explain_mismatch(said, "llm/x", tmp_path / "requirements.lock")
    assert message.startswith("plugin llm/x: the file the package index serves for pp-tampered 1.0 does not have "
                              f"the hash recorded in {tmp_path / 'requirements.lock'}")
    assert explain_mismatch("error: No solution found", "llm/x", tmp_path) is None


def test_the_lock_is_part_of_the_env_fingerprint_also_for_the_index_after_an_in_place_edit(manager, make_plugin,
                                                                                         tmp_path):
    folder = make_plugin("locked", files={"requirements.txt": "psycopg==3.3.9\n"})
    unlocked = manager.requirement_set(manager.discover()["llm/locked"]).fingerprint()
    (folder / "requirements.lock").write_text(f"psycopg==3.3.9 --hash={H1}\n")
    locked = manager.requirement_set(manager.discover()["llm/locked"])
    assert locked.lock_file == folder / "requirements.lock" and locked.fingerprint() != unlocked
    assert _index.load(manager.home, [tmp_path / "plugins"]).plugins["llm/locked"].fingerprint == locked.fingerprint()
    folder_times, lock_times = os.stat(folder), os.stat(folder / "requirements.lock")
    (folder / "requirements.lock").write_text(f"psycopg==3.3.9 --hash={H2}\n")  # in place: same folder mtime
    os.utime(folder / "requirements.lock", ns=(lock_times.st_atime_ns, lock_times.st_mtime_ns + 10**7))  # coarse clock
    os.utime(folder, ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))
    refreshed = manager.requirement_set(manager.discover()["llm/locked"]).fingerprint()
    assert refreshed != locked.fingerprint()
    assert _index.load(manager.home, [tmp_path / "plugins"]).plugins["llm/locked"].fingerprint == refreshed
    assert _install.env_dir(manager.home, locked).name.startswith("llm-locked-")


def test_a_lock_that_is_not_a_regular_file_is_refused_not_waited_on(manager, make_plugin):
    folder = make_plugin("locked", files={"requirements.txt": "psycopg==3.3.9\n"})
    os.mkfifo(folder / "requirements.lock")
    with pytest.raises(PluginManifestError, match="requirements.lock"):
        manager.requirement_set(manager.discover()["llm/locked"])


def test_the_env_follows_the_locks_bytes_not_its_modification_time(manager, make_plugin, tmp_path):
    folder = make_plugin("locked", files={"requirements.txt": "psycopg==3.3.9\n"})
    lock = folder / "requirements.lock"
    lock.write_text(f"psycopg==3.3.9 --hash={H1}\n")
    first = manager.requirement_set(manager.discover()["llm/locked"])
    times = os.stat(lock)
    lock.write_text(f"psycopg==3.3.9 --hash={H1}\n")  # what `pepperpy plugins lock` or a `git checkout` does
    os.utime(lock, ns=(times.st_atime_ns, times.st_mtime_ns + 10**9))
    same = manager.requirement_set(manager.discover()["llm/locked"])
    assert _install.env_dir(manager.home, same) == _install.env_dir(manager.home, first)
    assert _index.load(manager.home, [tmp_path / "plugins"]).plugins["llm/locked"].fingerprint == first.fingerprint()
    lock.write_text(f"psycopg==3.3.9 --hash={H1} \n")  # one byte more
    os.utime(lock, ns=(times.st_atime_ns, times.st_mtime_ns + 2 * 10**9))
    changed = manager.requirement_set(manager.discover()["llm/locked"])
    assert _install.env_dir(manager.home, changed) != _install.env_dir(manager.home, first)
    assert _index.load(manager.home, [tmp_path / "plugins"]).plugins["llm/locked"].fingerprint == changed.fingerprint()


def test_a_lock_too_large_to_hash_is_named_with_its_plugin(manager, make_plugin):
    folder = make_plugin("locked", files={"requirements.txt": "psycopg==3.3.9\n"})
    (folder / "requirements.lock").write_text("#" * (1 << 20) + "\n")
    with pytest.raises(PluginManifestError, match=r"^plugin llm/locked: .*requirements.lock: the file is larger than"):
        manager.requirement_set(manager.discover()["llm/locked"])
