"""Run a pipeline: topological order, each node a Dask task running papermill on a worker.

The loop lives in the calling process and only decides *what* runs next; the
work (kernels, notebooks) happens on the workers. Ready nodes are checked
against the cache, then submitted; independent nodes run in parallel.
"""

from __future__ import annotations

import importlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AiinfraError, OperationError
from . import cache, kinds, provenance
from .connect import _drain, _prewarm, _run_node, _runner_identity, _stop_run, open_client
from .dag import Node, apply_overrides, check_resources, expand, select
from .liveness import Heartbeat
from .mlflow_log import log_run, require_mlflow
from .notify import Rule, merge, rules_from_targets
from .outputs import ensure_handler, is_url, notebook_target
from .params import collect, file_name
from .progress import NoProgress, Progress
from .record import RunRecord, add_cost, cached_cost, new_run_id, versions
from .resume import Plan, last_overrides, last_run, plan_from, plan_resume
from .signals import terminate_raises
from .spec import PipelineSpec

if TYPE_CHECKING:  # distributed is imported only for a registered cluster (--cluster NAME)
    from distributed import Client, Future

    from .local_pool import LocalPool

# run.json is rewritten whole (indented JSON, pure-Python encoding) on every change: a
# 100-step grid spent seconds of the runner's CPU on it, taken from the worker threads
# of the embedded pool. Changes closer together than this are saved together.
SAVE_EVERY_S = 0.25


def run_pipeline(
    path: str | Path,
    *,
    cluster: str | None = None,
    params: list[str] | None = None,
    raw: list[str] | None = None,
    yaml_params: list[str] | None = None,
    param_files: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    kernel: str | None = None,
    log_output: bool = False,
    output: str | None = None,
    force: bool = False,
    only: str | list[str] | None = None,
    with_upstream: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
    client: Client | None = None,
    trigger: str | dict[str, Any] | None = None,
    resume: bool = False,
    from_step: str | list[str] | None = None,
    notify: list[str] | None = None,
) -> RunRecord:
    """Run ``path`` (a pipeline.yaml) and return its record; never raises for failed steps.

    Parameters as papermill's CLI takes them: ``params`` (``-p KEY=VALUE``, typed by
    papermill), ``raw`` (``-r``), ``yaml_params`` (``-y``), ``param_files`` (``-f``);
    ``parameters`` holds values already typed (the REST door's JSON), KEY or STEP.KEY.
    ``kernel`` is ``-k``; ``output`` a folder or URL for the executed notebooks.
    ``trigger``: who started the run, ``manual`` (default), ``lab`` or ``schedule:NAME``.
    ``resume`` and ``from_step`` are ``--resume`` and ``--from STEP`` (see resume.py);
    ``notify`` holds ``--notify`` targets, told on failure besides the spec's ``notify:``.

    Raises:
        InputError: a bad spec, parameter, step name or target (the field is named).
        OperationError: the cluster could not be reached or a worker cannot see the folder.
    """
    started_by = provenance.parse_trigger(trigger)
    if resume and (only or from_step):
        raise AiinfraError("--resume: allowed without --only and --from", field="--resume")
    if from_step and only:
        raise AiinfraError("--from: allowed without --only", field="--from")
    extra_rules = rules_from_targets(notify)  # refused before anything runs
    overrides = collect(params, raw, yaml_params, param_files, parameters)  # papermill's order
    spec = PipelineSpec.from_file(path)
    last = last_run(spec.folder) if resume else None
    if last is not None:  # the run goes on with the parameters it had
        overrides = [*last_overrides(last), *overrides]
    spec = apply_overrides(spec, overrides=overrides, kernel=kernel)
    if output is not None or log_output:
        spec = replace(spec, output=output or spec.output)
        if log_output:
            spec = replace(
                spec, steps={n: replace(s, log_output=True) for n, s in spec.steps.items()}
            )
    if spec.output:
        ensure_handler(spec.output)
    if spec.mlflow is not None:  # refused now, not after hours of steps
        require_mlflow()
    nodes = expand(spec)
    if last is not None:
        plan = plan_resume(nodes, spec.folder, last)
    elif from_step:
        plan = plan_from(nodes, from_step)
    else:
        plan = Plan(selected=select(nodes, only, with_upstream))
    selected = plan.selected
    for name in sorted(selected):
        step = nodes[name].step
        if step.kernel is None:  # papermill: "No kernel name found in notebook and no override"
            raise AiinfraError(
                f"steps.{step.name}.kernel: {step.notebook} has no kernelspec; allowed: "
                "kernel: NAME in the step or in defaults, or -k NAME",
                field=f"steps.{step.name}.kernel",
            )
    for name in selected:
        for up in nodes[name].upstream:
            missing = [p for p in nodes[up].products if not (spec.folder / p).exists()]
            if up not in selected and missing:
                flag = plan.flag.split()[0]
                fix = "add --upstream to run it too" if flag == "--only" else f"run {up} first"
                raise AiinfraError(
                    f"{flag}: upstream {up} has not written {missing[0]} yet; allowed: {fix}",
                    field=flag,
                )
    if client is not None:
        given = client

        @contextmanager
        def connect() -> Iterator[tuple[Client, dict[str, Any]]]:
            yield given, {"name": None, "scheduler": given.scheduler.address, "embedded": False}

    else:

        def connect() -> Any:
            return open_client(cluster, workers)

    rules = merge((*spec.notify, *extra_rules))
    run = _Run(spec, nodes, plan, force, progress, connect, params, only, overrides, rules)
    run.run.data.update(provenance.run_fields(spec.folder, started_by))  # lineage
    if client is None and not cluster:
        run.embedded_workers = workers  # worker threads of this process: see _open
    return run.go()


class _Run:
    def __init__(
        self,
        spec: PipelineSpec,
        nodes: dict[str, Node],
        plan: Plan,
        force: bool,
        progress: Progress | None,
        connect: Callable[[], Any],
        params: list[str] | None,
        only: str | list[str] | None,
        overrides: list[Any] | None = None,
        rules: tuple[Rule, ...] = (),
    ) -> None:
        self.spec, self.nodes, self.force = spec, nodes, force
        self.plan, self.selected, self.rules = plan, plan.selected, rules
        self.progress = progress or NoProgress()
        # The cluster is opened on the first submission: a fully cached run needs none.
        self.connect = connect
        self.stack = ExitStack()
        self._client: Client | LocalPool | None = None
        self.folder = spec.folder
        run_id = new_run_id()
        self.run = RunRecord(
            {
                "run_id": run_id,
                "pipeline": spec.name,
                "file": str(spec.path),
                "status": "running",
                "start": time.time(),
                "end": None,
                "duration": None,
                "cluster": None,
                "params": params or [],
                "overrides": [{"step": st, "key": k, "value": v} for st, k, v in overrides or []],
                "runner": _runner_identity(),
                "force": force,
                "only": only,
                **plan.fields,
                "versions": versions(),
                "steps": {n: self._blank(node) for n, node in nodes.items()},
            },
            spec.folder,
        )
        self.topic = f"aiinfra-pipeline-{run_id}"
        self.events: queue.Queue = queue.Queue()
        self.products: dict[str, dict[str, str | None]] = {}
        self.broken: set[str] = set()
        self.running: dict[Future, str] = {}
        self.delayed: list[tuple[float, str]] = []
        self.unsubmitted = set(self.selected)
        self.warm_outstanding = 0
        self.wake = threading.Event()
        # Set for the run's own pool, whose workers are threads of this process: kernels
        # started here before it (under this run's own pool name) serve them.
        self.embedded_workers: int | None = None
        self.pool = f"runner-{self.topic}"
        self._saved_at = 0.0  # time.monotonic() of the last save of run.json
        self._defer_imports = False  # see connect._load_execute
        self._unsaved = False
        self._resources_unchecked = False  # no worker yet when the cluster was opened
        self.shared: Any = None  # placement.SharedCheck on a cluster of other processes

    def _blank(self, node: Node) -> dict[str, Any]:
        return {
            "step": node.base,
            "status": "pending",
            "params": node.params,
            "upstream": list(node.upstream),
            "products": list(node.products),
            "notebook": None,
            "source": node.step.notebook,
            "attempts": 0,
        }

    # -- the loop ---------------------------------------------------------------------------
    def _open(self, first: str) -> Client | LocalPool:
        """The run's client (or pool), connected on the first submission (``first``)."""
        if self._client is not None:
            return self._client
        kernels = {self.nodes[n].step.kernel for n in self.selected}
        more = len(kernels) == 1 and len(self.unsubmitted) > 0
        if self.embedded_workers:
            # Before the pool: the first step's kernel starts in its own process while
            # this one imports papermill (about a kernel start on this 2-core VM), so the
            # first step waits for the longer of the two instead of their sum. Only one
            # kernel: a second starting beside it took the CPU the imports need (first
            # step 0.92 s in, 0.71 s with one, when a Dask cluster started here too).
            from . import kernel_pool

            step = self.nodes[first].step
            self.stack.callback(kernel_pool.drain, self.pool, self.topic)
            kernel_pool.warm(step.kernel, self._cwd(step), 1, owner=self.pool, run=self.topic)
            importlib.import_module(f"{__package__}.execute")  # the workers are threads here
        client, info = self.stack.enter_context(self.connect())
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if workers:
            check_resources({n: self.nodes[n] for n in self.selected}, workers)
        else:
            # An adaptive cluster at 0 workers: the steps' tasks bring workers up (Dask
            # scales for tasks no worker can run yet), so refusing now would refuse every
            # resource. The first workers to join are checked instead (_wait).
            self._resources_unchecked = True
        if not info["embedded"]:  # workers elsewhere (SLURM nodes) must share the folder
            from .placement import SharedCheck

            self.shared = SharedCheck(self.folder, self.run.run_dir)
            self.stack.callback(self.shared.close)
            self.shared.check_now(client)
        self.run.data["cluster"] = {**info, "workers": len(workers)}
        client.subscribe_topic(self.topic, self.events.put)
        self.stack.callback(client.unsubscribe_topic, self.topic)
        self.stack.callback(_drain, client, self.topic)
        if self.embedded_workers:
            # Now a kernel per worker when more steps wait (the first one is on its way).
            from . import kernel_pool

            step = self.nodes[first].step
            count = min(len(workers), 1 + len(self.unsubmitted)) if more else 1
            kernel_pool.warm(step.kernel, self._cwd(step), count, owner=self.pool, run=self.topic)
            self.warm_outstanding = count
        elif more:
            # Every worker starts a kernel (and loads papermill) while the first tasks are
            # scheduled.
            client.run(
                _prewarm, kernels.pop(), str(self.folder), bool(info.get("ours")), self.topic
            )
            self.warm_outstanding = len(workers)
        self._defer_imports = bool(info.get("ours"))
        self._client = client
        return client

    def _cwd(self, step: Any) -> str:
        return str(self.folder / step.cwd) if step.cwd else str(self.folder)

    def go(self) -> RunRecord:
        with terminate_raises():
            return self._go()

    def _go(self) -> RunRecord:
        self.run.run_dir.mkdir(parents=True, exist_ok=True)
        self.run.save()
        # Any door tells a live run from a killed one by this (and the record's runner).
        self.stack.callback(Heartbeat(self.run.run_dir).start().stop)
        self.progress.begin(self.run)
        sorter = TopologicalSorter({n: node.upstream for n, node in self.nodes.items()})
        sorter.prepare()
        try:
            while sorter.is_active():
                for name in sorter.get_ready():
                    if self._ready(name):
                        sorter.done(name)
                self._wait(sorter)
        except BaseException as exc:
            for future in self.running:
                future.cancel()
            if self._client is not None and self.running:
                try:  # cancelling a running task does not stop its kernel: kill those
                    self._client.run(_stop_run, self.topic)
                except Exception:
                    pass
            if isinstance(exc, KeyboardInterrupt):
                why = f"interrupted ({exc.args[0] if exc.args else 'SIGINT'})"
                self.run.data["status"] = "interrupted"
            else:
                why = f"{type(exc).__name__}: {exc}"
                self.run.data.update(status="failed", error=why)
            self.run.finalise(why)
            raise
        finally:
            try:
                self.stack.close()
            finally:
                self._finish()
        return self.run

    def _finish(self) -> None:
        data = self.run.data
        data["end"] = time.time()
        data["duration"] = data["end"] - data["start"]
        self.run.finalise("the run ended before this step")  # no-op after a normal run
        shared: dict[str, list[str]] = {}
        for name, step in self.run.steps.items():
            if step.get("kernel_id"):
                shared.setdefault(step["kernel_id"], []).append(name)
        if shared:  # which steps ran in the same (reused) kernel, in order of use
            data["kernels"] = shared
        data["cost"] = self.run.total_cost()
        data["suggestions"] = self.run.suggestions()  # right-sizing from the measured peaks
        if data["status"] == "running":
            data["status"] = (
                "failed" if any(s["status"] == "failed" for s in self.run.steps.values()) else "ok"
            )
        self.run.save()
        self.progress.end(self.run)
        if self.spec.mlflow is not None:  # a failure to log is recorded, never raised
            from .report import write_report

            data["mlflow"] = log_run(self.run, self.spec.mlflow, write_report)
            self.run.save()
        if self.rules:
            self._notify()

    def _notify(self) -> None:
        """Tell the rules' targets (never raises: an undelivered one is recorded)."""
        from .notify import send_all
        from .report import write_report

        try:
            report: Path | None = write_report(self.run)  # the message links to it
        except Exception:  # noqa: BLE001 - the message goes out without a report link
            report = None
        self.run.data["notifications"] = send_all(self.rules, self.run.data, report)
        self.run.save()

    def _set(self, name: str, **fields: Any) -> None:
        self.run.steps[name].update(fields)
        if "cost" in fields:  # the run's total so far, for status while it runs
            self.run.data["cost"] = self.run.total_cost()
        self._unsaved = True
        # A step that starts is on disk before its kernel can run: a runner killed
        # outright then leaves a record whose reader names that step (RunRecord.load).
        self._save(soon=fields.get("status") != "running")
        self.progress.update(self.run, name)

    def _save(self, soon: bool = False) -> None:
        """Write run.json now, or (``soon``) unless it was written less than SAVE_EVERY_S ago;
        the loop writes what is left within a wake-up (0.2 s) of that."""
        now = time.monotonic()
        if self._unsaved and (not soon or now - self._saved_at >= SAVE_EVERY_S):
            self.run.save()
            self._saved_at, self._unsaved = now, False

    def _ready(self, name: str) -> bool:
        """Resolve a ready node now (True) or submit it (False)."""
        node = self.nodes[name]
        if name not in self.selected:
            self.products[name] = self._hash_products(node)
            self._set(name, status="skipped", reason=f"not selected ({self.plan.flag})")
            return True
        if name in self.plan.kept:
            self._keep(name)
            return True
        bad = [u for u in node.upstream if u in self.broken]
        if bad:
            self.broken.add(name)
            self.unsubmitted.discard(name)
            self._set(name, status="skipped", reason=f"upstream {bad[0]} did not finish")
            return True
        hashes = cache.node_hashes(
            self.folder, node, {u: self.products.get(u, {}) for u in node.upstream}
        )
        forced = self.force or name in self.plan.forced
        hit = None if forced else cache.lookup(self.folder, node, hashes["key"])
        if hit:
            self.products[name] = self._hash_products(node)
            self.unsubmitted.discard(name)
            self._set(
                name,
                status="cached",
                hashes=hashes,
                reason=f"unchanged since run {hit.get('run_id')}",
                product_sha256=self.products[name],
                duration=0.0,
                cost=cached_cost(),  # not run: nothing held (the run that made it paid)
                notebook=hit.get("notebook")
                or _rel(self.folder, self.run.run_dir.parent / hit["run_id"] / file_name(name)),
            )
            return True
        self.run.steps[name]["hashes"] = hashes
        self._submit(name)
        return False

    def _keep(self, name: str) -> None:
        """``--resume``: a node the resumed run finished stays as it is, without running."""
        before = self.plan.kept[name]
        self.products[name] = self._hash_products(self.nodes[name])
        self.unsubmitted.discard(name)
        origin = before.get("kept_from") or self.plan.fields.get("resumed_from")
        self._set(
            name,
            status="cached",
            kept_from=origin,
            hashes=before.get("hashes"),
            reason=f"kept from run {origin} (--resume)",
            product_sha256=self.products[name],
            duration=0.0,
            cost=cached_cost(),  # not run here: the run that made it paid
            notebook=before.get("notebook"),
        )

    def _submit(self, name: str) -> None:
        node = self.nodes[name]
        step = self.run.steps[name]
        attempt = step["attempts"] + 1
        self.unsubmitted.discard(name)
        client = self._open(name)  # opens the cluster on the first submission
        # Warm kernels: this task most likely takes one; ask its worker for a replacement
        # only while more nodes wait than warm kernels are already on their way.
        self.warm_outstanding = max(0, self.warm_outstanding - 1)
        st = node.step
        waiting = len(self.unsubmitted) + len(self.delayed) > self.warm_outstanding
        warm = 1 if waiting and not st.kernel_reuse else 0
        self.warm_outstanding += warm
        output = notebook_target(
            self.spec.output, self.folder, self.run.run_dir, self.run.run_id, file_name(name)
        )
        if not is_url(output):
            Path(output).parent.mkdir(parents=True, exist_ok=True)
        task = {
            "name": name,
            "notebook": str(self.folder / st.notebook),
            "output": output,
            "cwd": self._cwd(st),
            "kernel": st.kernel,
            "timeout": st.timeout,
            "memory": st.memory,
            "parameters": dict(node.params),
            # Added on the worker only where the step has them or the notebook declares them.
            "runner_params": {
                "product": list(node.products),
                "upstream": {u: list(self.nodes[u].products) for u in node.upstream},
            },
            "kernel_reuse": st.kernel_reuse,
            "report_mode": st.report_mode,
            "execution_timeout": st.execution_timeout,
            "log_output": st.log_output,
            "request_save_on_cell_execute": st.request_save_on_cell_execute,
            "autosave_cell_every": st.autosave_cell_every,
            "resources": dict(st.resources or {}),  # what the step's cost counts as held
            "topic": self.topic,
            "attempt": attempt,
            "warm": warm,
        }
        if self.shared is not None:  # the worker reads the marker before the step runs
            task["shared_check"] = self.shared.task_field()
        if self.embedded_workers:
            task["prestarted"] = self.pool
        if self._defer_imports:
            task["defer_imports"] = True
        future = client.submit(
            _run_node,
            task,
            key=f"aiinfra-{name}-{self.run.run_id}-{attempt}",
            pure=False,
            resources=node.step.resources or None,
        )
        future.add_done_callback(lambda _: self.wake.set())
        self.running[future] = name
        notebook = output if is_url(output) else _rel(self.folder, Path(output))
        self._set(name, status="running", attempts=attempt, notebook=notebook)

    def _wait(self, sorter: TopologicalSorter) -> None:
        self._save(soon=True)
        if self._resources_unchecked and self._client is not None:
            workers = self._client.scheduler_info(n_workers=-1)["workers"]
            if workers:  # the first workers of an adaptive cluster: what do they offer?
                self._resources_unchecked = False
                check_resources({n: self.nodes[n] for n in self.selected}, workers)
        now = time.time()
        for due, name in sorted(self.delayed):
            if due <= now:
                self.delayed.remove((due, name))
                self._submit(name)
        self._drain_events()
        if not self.running:
            if self.delayed:
                self._save()  # the retry's reason, before sleeping until it is due
                time.sleep(max(0.0, min(d for d, _ in self.delayed) - time.time()))
            return
        # Done-callbacks wake the loop (distributed.wait would need a default client).
        self.wake.wait(0.2)
        self.wake.clear()
        for future in [f for f in self.running if f.done()]:
            name = self.running.pop(future)
            if future.status == "finished":
                result = future.result()
            else:
                result = {
                    "status": "failed",
                    "kind": kinds.WORKER_LOST,
                    "error": f"worker lost: {future.exception()!r}",
                }
            if self._done(name, result):
                sorter.done(name)

    def _done(self, name: str, result: dict[str, Any]) -> bool:
        """Record a finished attempt; True when the node is final (not being retried)."""
        node = self.nodes[name]
        step = self.run.steps[name]
        timing = {
            k: result.get(k)
            for k in (
                "start",
                "end",
                "worker",
                "worker_name",  # the lab shows host and worker name, not the address
                "devices",
                "peak_rss",
                "kernel_wait",
                "kernel_warm",
                "kernel_pid",
                "kernel_id",
                "kernel_uses",
                "kernel_retired",
            )
            if k in result
        }
        from .placement import fields

        timing.update(fields(result))  # host, SLURM job and node of the step
        if isinstance(result.get("cost"), dict):  # every attempt held its worker: they add up
            timing["cost"] = add_cost(step.get("cost"), result["cost"])
        if result.get("start") and result.get("end"):
            timing["duration"] = result["end"] - result["start"]
        if result["status"] == "ok":
            missing = [p for p in node.products if not (self.folder / p).exists()]
            if missing:
                result = {
                    "status": "failed",
                    "kind": kinds.USER_ERROR,
                    "error": f"declared product {missing[0]} was not written",
                }
        if result["status"] == "ok":
            self.products[name] = self._hash_products(node)
            cache.store(
                self.folder, node, step["hashes"]["key"], self.run.run_id, self.products[name]
            )
            if is_url(step.get("notebook") or ""):  # a cached node links to its URL
                record = cache.lookup(self.folder, node, step["hashes"]["key"]) or {}
                cache.write_json_atomic(
                    cache._record_path(self.folder, name), {**record, "notebook": step["notebook"]}
                )
            ok = {"status": "ok", "error": None, "kind": None}
            self._set(name, **ok, product_sha256=self.products[name], **timing)
            return True
        if result.get("kind") == kinds.NOT_SHARED:  # a worker cannot see the folder: stop
            self.broken.add(name)
            self._set(name, status="failed", error=result["error"], kind=kinds.NOT_SHARED, **timing)
            raise OperationError(result["error"], field="cluster")
        retry = kinds.retried(result.get("kind"), step["attempts"], node.step.retries)
        failure = {
            "error": result.get("error"),
            "kind": result.get("kind"),
            "cell": result.get("cell"),
        }
        step.setdefault("failures", []).append(failure)
        if retry:
            delay = kinds.backoff(step["attempts"])
            self.delayed.append((time.time() + delay, name))
            self._set(
                name,
                status="pending",
                reason=f"retrying in {delay:g} s after: {failure['error']}",
                **timing,
            )
            return False
        self.broken.add(name)
        self._set(name, status="failed", **failure, **timing)
        return True

    def _drain_events(self) -> None:
        while True:
            try:
                _, msg = self.events.get_nowait()
            except queue.Empty:
                return
            if msg.get("event") == "cell" and msg.get("node") in self.run.steps:
                self.progress.update(self.run, msg["node"], cell=msg.get("index"))
            elif msg.get("event") == "output" and msg.get("node") in self.run.steps:
                show = getattr(self.progress, "output", None)  # log_output
                if show is not None:
                    show(self.run, msg["node"], msg.get("text", ""), msg.get("stream", "stdout"))

    def _hash_products(self, node: Node) -> dict[str, str | None]:
        return {p: cache.file_hash(self.folder / p) for p in node.products}


def _rel(folder: Path, path: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)
