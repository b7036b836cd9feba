"""The slurm backend's pure parts: options, defaults from dask config, the job script."""

from __future__ import annotations

import dask
import pytest

from aiinfra_magics.clusters.slurm import SlurmBackend, default_lifetime, walltime_seconds
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import InputError

BASE = {"name": "hpc", "backend": "slurm", "cores": 2, "memory": "2GB", "walltime": "01:00:00"}


def spec(**changes):
    return ClusterSpec.from_options({**BASE, **changes})


def script(**changes) -> str:
    return SlurmBackend().job_script(spec(**changes))


def directives(text: str) -> list[str]:
    return [
        line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH")
    ]


def test_walltime_formats():
    assert walltime_seconds("30") == 1800
    assert walltime_seconds("45:00") == 2700
    assert walltime_seconds("2:00:00") == 7200
    assert walltime_seconds("1-12") == 36 * 3600
    assert walltime_seconds("1-00:30:00") == 86400 + 1800
    for bad in ("2h", "1:2:3:4", "-5", "0"):
        with pytest.raises(InputError, match="^walltime: "):
            walltime_seconds(bad)


def test_options_reach_the_job_script():
    text = script(partition="gpu", account="lab42", job_extra=["--qos=long"])
    lines = directives(text)
    assert "-p gpu" in lines and "-A lab42" in lines and "--qos=long" in lines
    assert "--cpus-per-task=2" in lines and "-t 01:00:00" in lines and "--mem=2G" in lines
    assert "-J aiinfra-hpc" in lines
    assert " -m distributed.cli.dask_worker " in text


def test_defaults_come_from_dask_jobqueue_config():
    site = {"queue": "batch", "account": "site-acct", "cores": 8, "memory": "16GB",
            "walltime": "04:00:00", "job-script-prologue": ["module load python"]}  # fmt: skip
    with dask.config.set({f"jobqueue.slurm.{k}": v for k, v in site.items()}):
        s = ClusterSpec.from_options({"name": "hpc", "backend": "slurm"})
        text = SlurmBackend().job_script(s)
        flags = SlurmBackend().job_script(spec(partition="gpu"))
    lines = directives(text)
    assert "-p batch" in lines and "-A site-acct" in lines and "--cpus-per-task=8" in lines
    assert "-t 04:00:00" in lines and "module load python" in text
    assert "-p gpu" in directives(flags)  # a flag beats the config


def test_cores_and_memory_are_required_somewhere():
    with pytest.raises(InputError, match="^cores: required with --backend slurm"):
        SlurmBackend().launch_kwargs(
            ClusterSpec.from_options({"backend": "slurm"}), death_timeout=1
        )
    s = ClusterSpec.from_options({"backend": "slurm", "cores": 1})
    with pytest.raises(InputError, match="^memory: required"):
        SlurmBackend().launch_kwargs(s, death_timeout=1)


def test_gpu_jobs_use_gres_and_dask_cuda_one_worker_per_gpu():
    kwargs = SlurmBackend().launch_kwargs(spec(gpus_per_job=2, cores=4), death_timeout=1)
    assert kwargs["processes"] == 2  # one dask-cuda worker per GPU
    text = script(gpus_per_job=2, cores=4)
    assert "--gres=gpu:2" in directives(text)
    assert " -m dask cuda worker " in text and "--nthreads 2" in text
    assert "--nworkers" not in text  # dask cuda worker starts one per visible GPU itself


def test_gpu_request_style_from_option_or_config():
    assert "--gpus=1" in directives(script(gpus_per_job=1, gpu_request="gpus"))
    with dask.config.set({"jobqueue.slurm.gpu-request": "gpus"}):
        assert "--gpus=1" in directives(script(gpus_per_job=1))


def test_no_mem_line_beside_mem_per_gpu():
    lines = directives(script(gpus_per_job=1, job_extra=["--mem-per-gpu=32G"]))
    assert "--mem-per-gpu=32G" in lines
    assert not [line for line in lines if line.startswith("--mem=")]
    assert [line for line in directives(script()) if line.startswith("--mem=")]


def test_lifetime_a_margin_under_walltime_with_stagger():
    assert default_lifetime(3600) == (3240, 180)
    assert default_lifetime(600) == (540, 30)
    life, stagger = default_lifetime(60)
    assert life + stagger < 60
    text = script()
    assert "DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION=3240s" in text
    assert "DASK_DISTRIBUTED__WORKER__LIFETIME__STAGGER=180s" in text
    assert "LIFETIME__DURATION=40s" in script(lifetime="40s")
    assert "LIFETIME" not in script(lifetime="off")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"threads": 2}, "threads"),
        ({"memory": "0.5"}, "memory"),
        ({"gpus_per_job": 2, "processes": 3}, "processes"),
        ({"cores": 1, "processes": 2}, "cores"),
        ({"lifetime": "2h"}, "lifetime"),
        ({"walltime": "soon"}, "walltime"),
        ({"gpu_request": "cards"}, "gpu-request"),
    ],
)
def test_bad_combinations_name_the_field(changes, field):
    with pytest.raises(InputError, match=f"^{field}: "):
        spec(**changes)


def test_dry_run_returns_the_script_only_when_asked():
    assert SlurmBackend().dry_run(spec()) is None
    text = SlurmBackend().dry_run(spec(dry_run=True))
    assert text.startswith("#!/usr/bin/env bash") and "#SBATCH" in text


def test_scheduler_dashboard_on_loopback_and_adapt_patience():
    kwargs = SlurmBackend().launch_kwargs(spec(interface="lo"), death_timeout=1)
    assert kwargs["scheduler_options"]["dashboard_address"] == "127.0.0.1:0"
    assert kwargs["interface"] == "lo"


def test_cli_dry_run_prints_the_job_script_and_starts_nothing(aiinfra_home):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "aiinfra_magics", "cluster", "start", "hpc", "--backend",
            "slurm", "--cores", "2", "--memory", "4GB", "--partition", "gpu", "--dry-run"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH -p gpu" in proc.stdout and "#SBATCH --cpus-per-task=2" in proc.stdout
    assert not list((aiinfra_home / "clusters").glob("*.json"))
    # issue 25 item 7: no empty job log folder is left by a preview
    assert not list(aiinfra_home.glob("clusters/slurm/hpc-logs")), "log folder left behind"


def test_dask_jobqueue_import_keeps_sigint_and_works_from_a_thread():
    """dask-jobqueue 0.9.0 sets SIGINT -> sys.exit() on import (#696): a kernel's Interrupt
    would become SystemExit, and an import from a thread (the server's) would fail."""
    import subprocess
    import sys

    code = (
        "import signal, threading\n"
        "from aiinfra_magics.clusters.slurm import SlurmBackend\n"
        "from aiinfra_magics.clusters.spec import ClusterSpec\n"
        "before = signal.getsignal(signal.SIGINT)\n"
        "spec = ClusterSpec.from_options({'name': 'a', 'backend': 'slurm', 'cores': 1,"
        " 'memory': '1GB'})\n"
        "errors = []\n"
        "def build():\n"
        "    try:\n"
        "        SlurmBackend().job_script(spec)\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "t = threading.Thread(target=build); t.start(); t.join()\n"
        "assert not errors, errors\n"
        "assert signal.getsignal(signal.SIGINT) is before\n"
        "try:\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupt ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupt ok"


# Issue 25 item 3: a newline in a text option would be a shell line of its own in the script.
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"partition": "gpu\ntouch /tmp/owned"}, "partition"),
        ({"partition": "gpu;id"}, "partition"),
        ({"account": "lab42\rid"}, "account"),
        ({"job_extra": ["--qos=long\nrm -rf ~/important"]}, "job-extra"),
        ({"job_extra": ["qos=long"]}, "job-extra"),
        ({"python": "/usr/bin/python3\nrm -rf ~/important"}, "python"),
        ({"interface": "lo\nid"}, "interface"),
        ({"interface": "lo id"}, "interface"),
        ({"walltime": "01:00:00\nid"}, "walltime"),
        ({"lifetime": "30m\nid"}, "lifetime"),
    ],
)
def test_text_options_with_newlines_or_shell_are_one_line_errors(changes, field):
    with pytest.raises(InputError, match=f"^{field}: got .*; allowed: ") as caught:
        spec(**changes)
    assert "\n" not in str(caught.value)


def test_python_is_one_quoted_word_in_the_worker_command():
    text = script(python="/opt/my env/bin/python")
    assert "'/opt/my env/bin/python' -m distributed.cli.dask_worker" in text


def test_site_config_values_are_checked_too_and_named():
    with dask.config.set({"jobqueue.slurm.queue": "batch\ntouch /tmp/owned"}):
        with pytest.raises(InputError, match=r"^jobqueue\.slurm\.queue: "):
            script()


def test_the_prologue_stays_the_one_shell_hook_and_says_so():
    text = script(job_script_prologue=["module load cuda", "export A=1"])
    assert "module load cuda\nexport A=1\n" in text
    help_text = SlurmBackend.option("job_script_prologue").help
    assert "shell" in help_text and "on purpose" in help_text


def test_cli_dry_run_refuses_a_newline_in_partition(aiinfra_home):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "aiinfra_magics", "cluster", "start", "hpc", "--backend",
            "slurm", "--cores", "2", "--memory", "4GB", "--partition", "gpu\ntouch /tmp/owned",
            "--dry-run"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "partition: got 'gpu\\ntouch /tmp/owned'" in lines[0], lines
