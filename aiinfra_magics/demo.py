"""``make demo``: start the default cluster, compute on it, show it, stop it (headless)."""

from __future__ import annotations

import os
import sys
import tempfile


def main() -> int:
    # A private registry, so the demo never touches the user's own clusters.
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-demo-"))
    import dask.array as da

    from .clusters.manager import ClusterManager
    from .clusters.spec import ClusterSpec

    manager = ClusterManager()
    info, notes = manager.start(ClusterSpec.from_options({"name": "demo", "workers": 2}))
    for note in notes:
        print(note)
    client = manager.connect(info.name)
    try:
        x = da.random.default_rng(0).random((4000, 4000), chunks=1000)
        result = float((x @ x.T).trace().compute())
        print(
            f"trace(x @ x.T) over {len(client.scheduler_info()['workers'])} workers: {result:.1f}"
        )
        print(manager.status(info.name))
    finally:
        client.close()
        print(manager.stop(info.name))
    # Then the example pipeline: prepare -> train (a 3-value grid) -> evaluate, with its report.
    from pathlib import Path

    from .doors.cli import main as cli_main

    example = Path(__file__).resolve().parents[1] / "notebooks" / "pipeline" / "pipeline.yaml"
    if example.exists():
        return cli_main(["pipeline", "run", str(example)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
