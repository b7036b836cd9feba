"""``slurm``: Dask workers as SLURM batch jobs, through dask-jobqueue's ``SLURMCluster``.

The scheduler lives in the owning process (a kernel or the CLI daemon on the
login node); each job runs one or more workers. Defaults come from dask's own
``jobqueue.slurm`` config, so a site's ``~/.config/dask/jobqueue.yaml`` just
works; flags override it.

What this adds to dask-jobqueue, each for a known trap:

- The job script is checked with ``sbatch --test-only`` before the cluster
  starts: a bad partition, impossible memory or a ``--gres`` the site lacks is
  one clear error, not a silent hang in ``wait_for_workers`` (dask-jobqueue
  #620, #262, #391). Later refusals (a queue limit) are recorded and shown.
- Workers retire a margin before the walltime, staggered (``--lifetime``), so
  SLURM never kills a worker mid-task; under ``adapt`` the cluster submits
  replacements (dask-jobqueue #122, #416).
- Adaptive scaling waits ``slurm_submit.ADAPT_WAIT_COUNT`` rounds before cancelling a job,
  so a dip in load does not cancel pending jobs and lose their place in the
  queue, only to resubmit them a second later (dask-jobqueue #190, #498).
- GPU jobs ask for GPUs the way the site wants (``--gres=gpu:N`` or
  ``--gpus=N``), run ``dask cuda worker`` (one worker per GPU), and leave out
  the ``--mem`` line when the site's directives say ``--mem-per-gpu`` or
  ``--mem-per-cpu`` (dask-jobqueue #698, #229).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any

from ..checks import as_duration, as_line, as_word
from ..errors import InputError, field_error
from .backends import ClusterBackend, Launched, Option
from .slurm_queue import jobs_file, queue_states, read_jobs, summarise
from .slurm_submit import AiinfraSLURMCluster, jobqueue, submit_check
from .spec import ClusterSpec

SLURM_COMMANDS = ("sbatch", "squeue", "scancel")
GPU_REQUESTS = ("gres", "gpus")
#: Directives that size memory per GPU/CPU; with them, dask-jobqueue's --mem must go.
PER_UNIT_MEMORY = ("--mem-per-gpu", "--mem-per-cpu")
_WALLTIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
WALLTIME_ALLOWED = "a SLURM time like 30, 45:00, 2:00:00 or 1-12:00:00 (D-HH:MM:SS)"
# Every text option reaches the job script or the worker's command line; each has a shape
# (full match), so a newline can never start a shell line of its own (issue 25).
_PARTITION = re.compile(r"[A-Za-z0-9_.-]+(?:,[A-Za-z0-9_.-]+)*")
PARTITION_ALLOWED = "a SLURM partition name (letters, digits, '_', '.', '-'; several joined by ',')"
_ACCOUNT = re.compile(r"[A-Za-z0-9_.@-]+")
ACCOUNT_ALLOWED = "a SLURM account name (letters, digits, '_', '.', '@', '-')"
_INTERFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
INTERFACE_ALLOWED = "a network interface name like ib0 or eth0 (up to 15 letters, digits, '_.:@-')"
_DIRECTIVE = re.compile(r"-[^\x00-\x1f\x7f-\x9f]+")
DIRECTIVE_ALLOWED = "an sbatch option like --qos=long: one line starting with '-'"
PYTHON_ALLOWED = "the path of a python executable on the compute nodes (one line)"


def walltime_seconds(value: str) -> int:
    """Seconds in a SLURM time string: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    match = _WALLTIME.fullmatch(str(value).strip())
    if match is None:
        raise field_error("walltime", value, WALLTIME_ALLOWED)
    days, a, b, c = match.groups()
    nums = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:  # D-H[:M[:S]]
        h, m, s = (nums + [0, 0])[:3]
        seconds = int(days) * 86400 + h * 3600 + m * 60 + s
    elif len(nums) == 1:
        seconds = nums[0] * 60
    elif len(nums) == 2:
        seconds = nums[0] * 60 + nums[1]
    else:
        seconds = nums[0] * 3600 + nums[1] * 60 + nums[2]
    if seconds <= 0:
        raise field_error("walltime", value, WALLTIME_ALLOWED)
    return seconds


def check_walltime(value: str) -> str:
    as_line("walltime", value, WALLTIME_ALLOWED)
    walltime_seconds(value)
    return value.strip()


def check_lifetime(value: str) -> str:
    value = as_line("lifetime", value, "a duration like 90s, 30m, 2h, or off").strip()
    if value.lower() != "off":
        as_duration("lifetime", value)
    return value.lower() if value.lower() == "off" else value


def check_partition(value: str, field: str = "partition") -> str:
    return as_word(field, value, _PARTITION, PARTITION_ALLOWED)


def check_account(value: str, field: str = "account") -> str:
    return as_word(field, value, _ACCOUNT, ACCOUNT_ALLOWED)


def check_interface(value: str, field: str = "interface") -> str:
    return as_word(field, value, _INTERFACE, INTERFACE_ALLOWED)


def check_job_extra(values: tuple[str, ...], field: str = "job-extra") -> tuple[str, ...]:
    return tuple(as_word(field, v, _DIRECTIVE, DIRECTIVE_ALLOWED) for v in values)


def check_python(value: str) -> str:
    if not value.strip():
        raise field_error("python", value, PYTHON_ALLOWED)
    return as_line("python", value, PYTHON_ALLOWED)


def default_lifetime(walltime_s: float) -> tuple[float, float]:
    """(lifetime, stagger) in seconds: every worker retires before SLURM kills its job.

    The margin is 10% of the walltime, at least a minute, at most ten (and never
    more than half); workers retire uniformly within +-margin/2 of walltime - margin.
    """
    margin = min(max(0.1 * walltime_s, 60.0), 600.0, walltime_s / 2)
    return walltime_s - margin, margin / 2


def config(key: str, default: Any = None) -> Any:
    """``jobqueue.slurm.<key>`` from dask's config (``~/.config/dask/jobqueue.yaml``)."""
    import dask

    return dask.config.get(f"jobqueue.slurm.{key}", default)


def _positive(field: str):
    def check(value: int) -> int:
        if value < 1:
            raise field_error(field, value, "an integer >= 1")
        return value

    return check


SLURM_OPTIONS = (
    Option(
        "partition",
        "SLURM partition (#SBATCH -p); default: jobqueue.slurm.queue",
        check=check_partition,
    ),
    Option(
        "account",
        "account to charge (#SBATCH -A); default: jobqueue.slurm.account",
        check=check_account,
    ),
    Option(
        "walltime",
        "time limit of each job, e.g. 2:00:00; default: jobqueue.slurm.walltime",
        check=check_walltime,
        metavar="[D-]HH:MM:SS",
    ),
    Option(
        "cores",
        "CPU cores per job; default: jobqueue.slurm.cores",
        type="integer",
        check=_positive("cores"),
    ),
    Option(
        "processes",
        "worker processes per job (threads = cores/processes); default 1, or one per GPU",
        type="integer",
        check=_positive("processes"),
    ),
    Option("gpus_per_job", "GPUs per job; each job runs one dask-cuda worker per GPU", "integer"),
    Option(
        "gpu_request",
        "how GPUs are asked for: gres (--gres=gpu:N) or gpus (--gpus=N); "
        "default: jobqueue.slurm.gpu-request or gres",
        choices=GPU_REQUESTS,
    ),
    Option(
        "job_extra",
        "extra #SBATCH directives, e.g. --qos=long (repeatable)",
        "list",
        check=check_job_extra,
    ),
    Option(
        "job_script_prologue",
        "shell lines run as written before the worker, e.g. 'module load cuda' (repeatable); "
        "the one option that is shell code on purpose: every other one is checked for shape",
        "list",
    ),
    Option(
        "interface",
        "network interface workers and scheduler use, e.g. ib0 (lo in tests)",
        check=check_interface,
    ),
    Option(
        "lifetime",
        "workers retire after this long (staggered), so none is killed by the walltime; "
        "default: a margin under the walltime; off: never",
        check=check_lifetime,
        metavar="DURATION|off",
    ),
    Option(
        "python",
        "python executable on the compute nodes (a path, quoted in the script); default: this one",
        check=check_python,
    ),
    Option("dry_run", "print the job script and start nothing", "boolean", default=False),
)


class SlurmBackend(ClusterBackend):
    name = "slurm"
    description = "workers as SLURM batch jobs (dask_jobqueue.SLURMCluster)"
    options = SLURM_OPTIONS

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("dask_jobqueue") is None:
            return "needs dask-jobqueue (pip install 'aiinfra[slurm]')"
        missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
        if missing:
            return f"no SLURM client commands here ({', '.join(missing)} not on PATH)"
        return None

    def validate(self, spec: ClusterSpec) -> None:
        if spec.threads is not None:
            raise InputError(
                "threads: not used with --backend slurm; threads per worker are "
                "--cores divided by --processes",
                field="threads",
            )
        if spec.memory is not None:
            from ..checks import as_size

            as_size("memory", spec.memory, allow_fraction=False)
        gpus = spec.option("gpus_per_job") or 0
        processes = spec.option("processes")
        if gpus and processes is not None and processes != gpus:
            raise InputError(
                f"processes: got {processes}; with --gpus-per-job {gpus} each job runs one "
                f"dask-cuda worker per GPU, so leave it out (or give {gpus})",
                field="processes",
            )
        cores, processes = spec.option("cores"), processes or gpus or None
        if cores is not None and processes is not None and cores < processes:
            raise InputError(
                f"cores: got {cores}; each of the {processes} worker processes per job "
                "needs at least one core",
                field="cores",
            )
        lifetime = spec.option("lifetime")
        walltime = spec.option("walltime")
        if lifetime and lifetime != "off" and walltime:
            if as_duration("lifetime", lifetime) >= walltime_seconds(walltime):
                raise InputError(
                    f"lifetime: got {lifetime}; must be shorter than the walltime ({walltime}) "
                    "or SLURM kills workers mid-task",
                    field="lifetime",
                )

    def check(self, spec: ClusterSpec) -> None:
        super().check(spec)
        self.launch_kwargs(spec, death_timeout=60)  # the required values, from flags or config
        submit_check(self.job_script(spec))

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        """SLURMCluster keyword arguments: the flags, then dask's jobqueue.slurm config."""
        cores = spec.option("cores") or config("cores")
        memory = spec.memory or config("memory")
        if not cores:
            raise InputError(
                "cores: required with --backend slurm (CPU cores per job), "
                "or set jobqueue.slurm.cores in ~/.config/dask/jobqueue.yaml",
                field="cores",
            )
        if not memory:
            raise InputError(
                "memory: required with --backend slurm (memory per job, e.g. 16GB), "
                "or set jobqueue.slurm.memory in ~/.config/dask/jobqueue.yaml",
                field="memory",
            )
        gpus = spec.option("gpus_per_job") or 0
        processes = spec.option("processes") or gpus or config("processes") or 1
        walltime = spec.option("walltime") or config("walltime")
        extra = [
            *check_job_extra(
                tuple(config("job-extra-directives") or []), "jobqueue.slurm.job-extra-directives"
            ),
            *(spec.option("job_extra") or ()),
        ]
        prologue = [
            *(config("job-script-prologue") or []),
            *(spec.option("job_script_prologue") or ()),
        ]
        skip = list(config("job-directives-skip") or [])
        if gpus:
            how = spec.option("gpu_request") or config("gpu-request", "gres")
            if how not in GPU_REQUESTS:
                raise field_error("jobqueue.slurm.gpu-request", how, " | ".join(GPU_REQUESTS))
            extra.append(f"--gres=gpu:{gpus}" if how == "gres" else f"--gpus={gpus}")
        if any(d.strip().startswith(PER_UNIT_MEMORY) for d in extra):
            skip.append("--mem=")  # SLURM refuses --mem beside --mem-per-gpu/--mem-per-cpu
        lifetime = spec.option("lifetime")
        if lifetime != "off" and (lifetime or walltime):
            if lifetime:
                life = as_duration("lifetime", lifetime)
                stagger = min(life * 0.05, 300.0)
            else:
                life, stagger = default_lifetime(walltime_seconds(walltime))
            # Through dask's config, so `dask worker` and `dask cuda worker` both honour it.
            prologue += [
                f"export DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION={life:.0f}s",
                f"export DASK_DISTRIBUTED__WORKER__LIFETIME__STAGGER={stagger:.0f}s",
            ]
        scheduler_options = dict(config("scheduler-options") or {})
        # Loopback by default: the lab's proxy reaches it, nobody else needs to.
        scheduler_options.setdefault("dashboard_address", "127.0.0.1:0")
        log_directory = config("log-directory") or str(
            jobs_file(spec.name or "unnamed").parent / f"{spec.name}-logs"
        )
        queue = spec.option("partition") or config("queue")
        account = spec.option("account") or config("account")
        interface = spec.option("interface") or config("interface")
        # A site's config is checked as the flags are (it reaches the same script), and named.
        if queue and not spec.option("partition"):
            check_partition(queue, "jobqueue.slurm.queue")
        if account and not spec.option("account"):
            check_account(account, "jobqueue.slurm.account")
        if interface and not spec.option("interface"):
            check_interface(interface, "jobqueue.slurm.interface")
        if walltime and not spec.option("walltime"):
            as_line("jobqueue.slurm.walltime", walltime, WALLTIME_ALLOWED)
        as_line("jobqueue.slurm.log-directory", log_directory, "a folder path (one line)")
        if spec.option("python"):  # a path: one word in `PYTHON -m distributed.cli.dask_worker`
            python = shlex.quote(spec.option("python"))
        elif config("python"):  # the site's command, as dask-jobqueue reads it: one line
            python = as_line("jobqueue.slurm.python", config("python"), PYTHON_ALLOWED)
        else:
            python = shlex.quote(sys.executable)
        kwargs: dict[str, Any] = {
            "cores": cores,
            "memory": memory,
            "processes": processes,
            "queue": queue,
            "account": account,
            "walltime": walltime,
            "job_name": f"aiinfra-{spec.name}",
            "job_extra_directives": extra,
            "job_directives_skip": skip,
            "job_script_prologue": prologue,
            "interface": interface,
            "python": python,
            "death_timeout": death_timeout,
            "log_directory": log_directory,
            "scheduler_options": scheduler_options,
        }
        if gpus:
            kwargs["worker_command"] = "dask cuda worker"  # python -m dask cuda worker
        if spec.workers:
            kwargs["n_workers"] = spec.workers
        return kwargs

    def job_script(self, spec: ClusterSpec) -> str:
        """The script each job runs (scheduler address shown as a placeholder)."""
        jobqueue()
        from dask_jobqueue.slurm import SLURMJob

        kwargs = _job_kwargs(self.launch_kwargs(spec, death_timeout=60))
        # SLURMJob creates the log folder (0777); ours is 0700, and gone again after a
        # preview or a check: only a cluster that starts keeps one.
        created = _make_log_folder(kwargs["log_directory"])
        try:
            return SLURMJob(
                "tcp://<scheduler>:8786", name=f"aiinfra-{spec.name}-0", **kwargs
            ).job_script()
        finally:
            if created:
                _remove_if_empty(kwargs["log_directory"])

    def dry_run(self, spec: ClusterSpec) -> str | None:
        return self.job_script(spec) if spec.option("dry_run") else None

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        kwargs = self.launch_kwargs(spec, death_timeout=death_timeout)
        path = jobs_file(spec.name)
        path.unlink(missing_ok=True)  # a previous cluster of this name
        created = _make_log_folder(kwargs["log_directory"])
        from .cost import arm_idle, scheduler_kwargs  # late: imports distributed

        # The cost plugin from the first job on (the scheduler is in this process, as for
        # local clusters); distributed's own idle check stops it, the watcher cancels the jobs.
        kwargs["scheduler_options"] = {**kwargs["scheduler_options"], **scheduler_kwargs(spec)}
        try:
            cluster = AiinfraSLURMCluster(jobs_path=str(path), **kwargs)
        except BaseException:
            if created:  # a start that failed leaves no empty folder behind
                _remove_if_empty(kwargs["log_directory"])
            raise
        cluster.loop.add_callback(arm_idle, cluster.scheduler, spec.idle_timeout)
        notes = [
            f"jobs named {kwargs['job_name']} in partition {kwargs['queue'] or '(default)'}, "
            f"walltime {kwargs['walltime']}; job logs in {kwargs['log_directory']}"
        ]
        return Launched(
            cluster.scheduler_address, _dashboard(cluster), cluster=cluster, notes=notes
        )

    def live_details(self, record: dict[str, Any]) -> dict[str, Any]:
        """The cluster's SLURM jobs (any process may ask): state, reason, time left, node."""
        return self.live_details_many([record])[0]

    def live_details_many(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each cluster's jobs, from one squeue call for all of them (a listing re-runs often)."""
        files = [read_jobs(jobs_file(r["name"])) for r in records]
        try:
            found = queue_states([j for data in files for j in data["job_ids"]])
            problem = None
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            found, problem = {}, f"squeue failed: {exc}"
        listed = []
        for data in files:
            jobs = [found[j] for j in dict.fromkeys(data["job_ids"]) if j in found]
            details: dict[str, Any] = {"jobs": jobs, "queue": problem or summarise(jobs)}
            if data["errors"]:
                details["submit_errors"] = [e["error"] for e in data["errors"]]
            listed.append(details)
        return listed


def _make_log_folder(path: str) -> bool:
    """Create the job log folder (0700, before dask-jobqueue's 0777); True if it was not there."""
    existed = os.path.isdir(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return not existed


def _remove_if_empty(path: str) -> None:
    try:
        os.rmdir(path)  # only an empty folder: a job's logs are never removed here
    except OSError:
        pass


def _dashboard(cluster: Any) -> str | None:
    try:
        return cluster.dashboard_link
    except (AttributeError, KeyError):
        return None


_CLUSTER_ONLY = ("n_workers", "scheduler_options", "interface")


def _job_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    job = {k: v for k, v in kwargs.items() if k not in _CLUSTER_ONLY}
    job["interface"] = kwargs.get("interface")
    return job
