"""storage/local: async key/value and blobs on local files, written atomically."""

from __future__ import annotations

import pytest

from pepperpy.errors import ConfigError


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
