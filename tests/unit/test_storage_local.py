"""storage/local: async key/value and blobs on local files, written atomically."""

from __future__ import annotations

import re

import pytest

from pepperpy.errors import ConfigError, ProviderError


@pytest.fixture
async def storage(builtin_manager, tmp_path):
    provider = builtin_manager.create_provider("storage", "local", path=tmp_path / "data")
    await provider.initialize()
    yield provider
    await provider.cleanup()


async def test_set_get_list_delete(storage):
    await storage.set("a.txt", b"one")
    await storage.set("dir/b.bin", b"\x00\x01")
    assert await storage.get("a.txt") == b"one"
    assert await storage.get("dir/b.bin") == b"\x00\x01"
    assert await storage.get("missing") is None
    assert await storage.list() == ["a.txt", "dir/b.bin"]
    assert await storage.list("dir/") == ["dir/b.bin"]
    await storage.delete("a.txt")
    await storage.delete("a.txt")
    assert await storage.list() == ["dir/b.bin"]


async def test_overwrite_is_atomic_and_leaves_no_temporary_files(storage, tmp_path):
    for n in range(5):
        await storage.set("k", str(n).encode() * 1000)
    assert await storage.get("k") == b"4" * 1000
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["k"]


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../escape", "a/../b", "a//b"])
async def test_keys_outside_the_folder_are_refused(storage, key):
    with pytest.raises(ConfigError, match="invalid key"):
        await storage.set(key, b"x")


async def test_values_must_be_bytes(storage):
    with pytest.raises(ConfigError, match="values are bytes"):
        await storage.set("k", "text")  # type: ignore[arg-type]


@pytest.fixture
async def storage_under_a_file(builtin_manager, tmp_path):
    (tmp_path / "afile").write_text("a file where the storage folder should be\n")
    provider = builtin_manager.create_provider("storage", "local", path=tmp_path / "afile" / "data")
    async with provider:
        yield provider


async def test_writing_under_a_regular_file_names_the_file(storage_under_a_file, tmp_path):
    with pytest.raises(ProviderError) as raised:
        await storage_under_a_file.set("k", b"v")
    message = str(raised.value)
    assert f"storage/local: cannot write {tmp_path / 'afile' / 'data' / 'k'}" in message
    assert "pass another path=" in message


async def test_reading_and_deleting_under_a_regular_file_name_the_file(storage_under_a_file, tmp_path):
    file = tmp_path / "afile" / "data" / "k"
    with pytest.raises(ProviderError, match=re.escape(f"cannot read {file} (Not a directory")):
        await storage_under_a_file.get("k")
    with pytest.raises(ProviderError, match=re.escape(f"cannot delete {file} (Not a directory")):
        await storage_under_a_file.delete("k")
    assert await storage_under_a_file.list() == []


async def test_a_key_whose_folder_is_another_key_names_the_file(storage, tmp_path):
    await storage.set("a", b"one")
    with pytest.raises(ProviderError, match=re.escape(f"cannot write {tmp_path / 'data' / 'a' / 'b'} (File exists")):
        await storage.set("a/b", b"two")
    await storage.set("dir/x", b"three")
    with pytest.raises(ProviderError, match=re.escape(f"cannot write {tmp_path / 'data' / 'dir'} (Is a directory")):
        await storage.set("dir", b"four")
    assert await storage.list() == ["a", "dir/x"]
