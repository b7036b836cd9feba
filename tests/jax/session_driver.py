"""Run ``%aiinfra`` lines (and ``py:`` statements) in one fresh IPython shell.

Reads a JSON list of steps on stdin; prints one JSON list of outcomes, one per step.
"""

from __future__ import annotations

import json
import sys

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell


def main() -> None:
    steps = json.load(sys.stdin)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    ns = shell.user_ns
    results = []
    for step in steps:
        if step.startswith("py:"):
            ns.pop("_value", None)
            exec(step[3:], ns)
            results.append({"value": ns.get("_value")})
            continue
        try:
            session = shell.run_line_magic("aiinfra", step)
        except UsageError as exc:
            results.append({"error": str(exc)})
            continue
        mesh = ns.get("mesh")
        results.append(
            {
                "session": session.to_dict(),
                "text": str(session),
                "html": session._repr_html_(),
                "mesh": dict(mesh.shape) if mesh is not None else None,
                "jax_bound": getattr(ns.get("jax"), "__name__", None),
            }
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
