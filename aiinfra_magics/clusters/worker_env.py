"""A worker plugin that sets environment variables in every worker process.

Its own module so that workers unpickle it by reference, and so that importing
the cuda backend does not import distributed.
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class WorkerEnv(WorkerPlugin):
    name = "aiinfra-worker-env"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)

    def setup(self, worker: Any) -> None:
        os.environ.update(self.env)
