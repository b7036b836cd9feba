"""Write tests/file_seconds.json, the seconds each test file took, from a JUnit XML report.

    python -m pytest ... --junitxml=/tmp/junit.xml tests
    python tests/file_seconds.py /tmp/junit.xml

conftest.py starts the longest files first from it (``longest_first``). It only
orders the files: a stale or missing table makes the run slower, never wrong.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = Path(__file__).with_name("file_seconds.json")


def longest_first(items: list, seconds: dict[str, float] | None = None) -> None:
    """Order the files longest first, each file's tests as they were.

    ``make test`` hands whole files to pytest-xdist's workers (``--dist loadfile``) in
    this order (``--no-loadscope-reorder``; xdist's own order puts the files with the
    most tests first, so the few long browser and SLURM files came last and one worker
    ran them while the others idled). Longest first is the classic greedy schedule. A
    file missing from the table (a new one) counts as a long one, so it starts early.
    """
    if seconds is None:
        try:
            seconds = json.loads(TABLE.read_text())
        except (OSError, ValueError):
            return
    unknown = max(seconds.values(), default=0.0) / 2
    rank = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        rank.setdefault(path, (-seconds.get(path, unknown), len(rank)))
    items.sort(key=lambda item: rank[item.nodeid.split("::", 1)[0]])


def source_file(classname: str) -> str | None:
    """``tests.browser.test_sidebar[.TestClass]`` -> ``tests/browser/test_sidebar.py``."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (ROOT / path).is_file():
            return path
    return None


def file_seconds(report: Path) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        path = source_file(case.get("classname", ""))
        if path is not None:
            seconds[path] += float(case.get("time") or 0.0)
    return {path: round(s, 1) for path, s in sorted(seconds.items(), key=lambda kv: -kv[1])}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/file_seconds.py JUNIT_XML", file=sys.stderr)
        return 2
    table = file_seconds(Path(argv[0]))
    TABLE.write_text(json.dumps(table, indent=0) + "\n")
    print(f"{len(table)} files, {sum(table.values()):.0f} s in all -> {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
