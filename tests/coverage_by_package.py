"""Print line coverage per package from combined coverage data (``make test``)."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import coverage


def main(data_file: str = ".coverage-data/coverage") -> None:
    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    data = cov.get_data()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name in data.measured_files():
        path = Path(name)
        try:
            rel = path.relative_to(Path.cwd())
        except ValueError:
            continue
        if rel.suffix != ".py" or rel.parts[0] not in ("aiinfra_magics", "kernels_gpu"):
            continue
        _, statements, _, missing, _ = cov.analysis2(name)
        package = "/".join(rel.parts[:2]) if len(rel.parts) > 2 else rel.parts[0]
        totals[package][0] += len(statements)
        totals[package][1] += len(statements) - len(missing)
    print(f"{'package':32} {'lines':>6} {'covered':>8}")
    for package, (lines, hit) in sorted(totals.items()):
        print(f"{package:32} {lines:6d} {100.0 * hit / max(lines, 1):7.1f}%")


if __name__ == "__main__":
    main(*sys.argv[1:])
