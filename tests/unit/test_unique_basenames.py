"""Test files share one module namespace (pytest's default rootdir import mode, no __init__.py): two files with the
same basename in different folders stop the whole run at collection, so every basename must be unique."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_basename_is_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
