"""The CLI's step table names a step's worker as the lab's run view does (runs.ts
``workerLabel``): host and worker name, not the worker's address."""

from __future__ import annotations

import pytest

from aiinfra_magics.pipelines.record import RunRecord, worker_label


@pytest.mark.parametrize(
    ("step", "label"),
    [
        ({"worker": "tcp://10.0.0.3:40123", "worker_name": "0", "host": "node-3"}, "node-3 · worker 0"),
        ({"worker": "tcp://10.0.0.3:40123", "worker_name": "hpc-7", "slurm_node": "n7"}, "n7 · hpc-7"),
        ({"worker": "tcp://10.0.0.3:40123", "host": "node-3"}, "node-3 · port 40123"),
        ({"worker": "tcp://10.0.0.3:40123"}, "10.0.0.3:40123"),
        ({"worker": "inproc://192.0.2.2/28619/4", "worker_name": "inproc://x/1"}, "in-process worker 4"),
        ({"worker": "local"}, "this process"),
        ({}, ""),
    ],
)  # fmt: skip
def test_worker_label(step, label):
    assert worker_label(step) == label


def test_the_table_shows_the_label_not_the_address(tmp_path):
    record = RunRecord.__new__(RunRecord)
    record.data = {"steps": {"a": {"status": "ok", "duration": 0.5, "attempts": 1,
                                   "worker": "tcp://127.0.0.1:40123", "worker_name": "0",
                                   "host": "box"}}}  # fmt: skip
    table = record.table()
    assert "box · worker 0" in table and "tcp://" not in table
