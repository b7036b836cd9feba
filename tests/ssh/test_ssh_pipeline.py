"""Pipelines and idle timeouts on an SSH cluster, as on every other backend."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from aiinfra_cli import aiinfra
from nbfiles import write_notebook
from waiting import wait_for

from aiinfra_magics.clusters.history import read_history
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.pipelines.record import RunRecord

STEP = (
    "import json, os\n"
    "for p in product:\n"
    "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
    "    json.dump({'ssh': os.environ.get('SSH_CONNECTION', '')}, open(p, 'w'))"
)


def one_step(folder: Path) -> Path:
    write_notebook(folder / "step.ipynb", "product = []", STEP)
    path = folder / "pipeline.yaml"
    spec = {
        "name": "onssh",
        "defaults": {"timeout": 120},
        "steps": {"step": {"notebook": "step.ipynb", "products": ["out/step.json"]}},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_pipeline_step_runs_in_a_kernel_on_an_ssh_worker(sshd, tmp_path):
    manager = ClusterManager()
    manager.start(ClusterSpec.from_options({"name": "pipe", **sshd.options(hosts="127.0.0.2")}))
    try:
        path = one_step(tmp_path / "pipe")
        proc = aiinfra("pipeline", "run", str(path), "--cluster", "pipe", timeout=600)
        assert proc.returncode == 0, proc.stderr
        run = RunRecord.load(path.parent)
        assert run.status == "ok" and run.data["cluster"]["name"] == "pipe"
        assert run.steps["step"]["worker"].startswith("tcp://127.0.0.2:")
        assert run.data["cluster"]["env_drift"] == []  # compared when the run connected
        # The kernel ran under the worker that sshd started (its session's environment).
        seen = json.loads((path.parent / "out" / "step.json").read_text())
        assert seen["ssh"].endswith(f"127.0.0.2 {sshd.port}")
    finally:
        manager.stop("pipe")


def test_an_idle_cluster_with_a_remote_scheduler_stops_itself(sshd):
    manager = ClusterManager()
    spec = ClusterSpec.from_options(
        {"name": "idle", "idle_timeout": "3s", **sshd.options(hosts="127.0.0.1")}
    )
    manager.start(spec)
    wait_for(
        lambda: "idle" not in [c.name for c in manager.list_clusters()],
        120,
        "the idle cluster to stop itself",
    )
    (entry,) = [e for e in read_history() if e["name"] == "idle"]
    assert entry["reason"] == "idle for 3s (idle timeout)"
    assert entry["cost"]["worker_hours"] > 0  # figures read from the remote scheduler's plugin
