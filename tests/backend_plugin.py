"""A throwaway backend installed the way a third party would: a distribution on sys.path
whose entry point sits in the ``aiinfra.backends`` group. Nothing in aiinfra names it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

PLUGIN_MODULE = textwrap.dedent(
    """
    from aiinfra_magics.clusters.backends import Option
    from aiinfra_magics.clusters.local import LocalBackend


    class ThrowawayBackend(LocalBackend):
        name = "throwaway"
        description = "a test backend installed through the aiinfra.backends entry points"
        options = (
            Option("greeting", "a word this backend says when it starts", default="hello"),
            *LocalBackend.options,
        )

        def launch(self, spec, *, death_timeout):
            launched = super().launch(spec, death_timeout=death_timeout)
            launched.notes.append(f"throwaway says {spec.option('greeting')}")
            return launched
    """
)


def install_plugin(folder: Path) -> dict[str, str]:
    """Write the plugin distribution into ``folder``; return the env that puts it on sys.path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aiinfra_throwaway.py").write_text(PLUGIN_MODULE)
    dist = folder / "aiinfra_throwaway-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aiinfra-throwaway\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[aiinfra.backends]\nthrowaway = aiinfra_throwaway:ThrowawayBackend\n"
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}
