"""Multi-host JAX on SLURM: one SPMD process per job's worker, jax.distributed set up for it."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from slurm_fixture import wait_for

from aiinfra_magics.jax.session import backend_started

FLAGS = "--backend slurm --cores 1 --memory 1GB --walltime 00:10:00 --interface lo"
CELL = """
import os
from jax.experimental import multihost_utils
# A collective across both jobs: each process contributes its id.
ids = multihost_utils.process_allgather(jnp.array([process_id])).ravel().tolist()
(process_id, jax.process_count(), ids, scale * (process_id + 1), os.environ["SLURM_JOB_ID"])
"""


@pytest.fixture
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    yield shell
    from aiinfra_magics.clusters import host

    host.close_all()
    for name in ("client", "scale", "res"):
        shell.user_ns.pop(name, None)


def test_spmd_cell_across_two_slurm_jobs_reads_the_notebook(ip, slurm):
    # Earlier tests in this pytest process may have started JAX; the cell must not change that.
    jax_before = backend_started()
    ip.run_line_magic("aiinfra", f"cluster start hpc {FLAGS} --workers 2")
    wait_for(
        lambda: ip.run_line_magic("aiinfra", "cluster status hpc").workers == 2,
        120,
        "two SLURM workers",
    )
    jobs = {j["job_id"] for j in ip.run_line_magic("aiinfra", "cluster status hpc").jobs}
    assert len(jobs) == 2
    ip.user_ns["scale"] = 2.5  # a notebook variable the cell reads
    assert ip.run_cell_magic("aiinfra", "spmd --cluster hpc --out res", CELL) is None
    res = ip.user_ns["res"]
    assert [r[:4] for r in res] == [(0, 2, [0, 1], 2.5), (1, 2, [0, 1], 5.0)]
    # One process in each job: the program spans both SLURM jobs.
    assert {r[4] for r in res} == jobs
    # The processes are fresh interpreters on the workers: the cell started no JAX backend in
    # the notebook's own process, so `%aiinfra jax` keeps its one-backend rule here.
    assert backend_started() == jax_before
    ip.run_line_magic("aiinfra", "cluster stop hpc")
    wait_for(lambda: not slurm.job_ids(), 60, "the queue to empty")
