"""Test files have unique names: the test folders are not packages, so pytest imports each
file by its base name, and two files of one name make the whole run fail at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_file_names_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []


def test_the_longest_files_start_first_each_files_tests_in_order():
    from types import SimpleNamespace

    from file_seconds import longest_first

    ids = ["tests/a.py::x", "tests/a.py::y", "tests/b.py::z", "tests/c.py::w", "tests/new.py::v"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    longest_first(items, {"tests/a.py": 2.0, "tests/b.py": 30.0, "tests/c.py": 9.0})
    # b (30 s), then new (unknown: half the longest, 15 s), c (9 s), a (2 s) in its order.
    assert [i.nodeid for i in items] == [
        "tests/b.py::z", "tests/new.py::v", "tests/c.py::w", "tests/a.py::x", "tests/a.py::y",
    ]  # fmt: skip
