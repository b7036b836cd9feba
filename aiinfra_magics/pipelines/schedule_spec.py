"""A schedule as given: what to run (a pipeline.yaml or one notebook), when, and how.

Every field is checked when the schedule is added, by the same function at every door
(CLI, REST), so nothing that could not run is ever stored: a bad cron, zone, interval,
overlap, name, path, parameter or notify target is one :class:`InputError` naming its field.
A firing then becomes ``aiinfra pipeline run PATH ...`` with each value one argv item.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import as_line, as_name, only_fields
from ..errors import field_error
from .triggers import Trigger

OVERLAPS = ("skip", "queue", "allow")
#: The fields a REST body may carry (``POST aiinfra/api/schedules``): typed JSON values, never
#: a file to read. Listed here, not derived, so a field new to the core reaches REST only
#: when it is added to this list on purpose.
BODY_FIELDS = (
    "name",
    "path",
    "cron",
    "tz",
    "every",
    "params",
    "cluster",
    "overlap",
    "notify",
    "force",
)
#: Every field a schedule takes, by the CLI's option names: the body's, papermill's
#: -r/-y/-f, and ``values`` (the typed JSON parameters the REST door makes of ``params``).
FIELDS = (*BODY_FIELDS, "raw", "yaml_params", "param_files", "values")
#: The one-step pipeline made for a notebook schedule, beside the notebook (its runs/ too).
NOTEBOOK_SPEC = ".aiinfra-schedule-{name}.yaml"
GENERATED_MARK = "# written by `aiinfra pipeline schedule` for one notebook; removed with it\n"


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule's checked settings (what the store keeps, as JSON)."""

    name: str
    path: str  # absolute: the pipeline.yaml, or the notebook
    trigger: Trigger
    params: tuple[str, ...] = ()  # -p KEY=VALUE, typed as papermill types them
    raw: tuple[str, ...] = ()  # -r
    yaml_params: tuple[str, ...] = ()  # -y
    param_files: tuple[str, ...] = ()  # -f (absolute paths, or URLs)
    values: dict[str, Any] = field(default_factory=dict)  # typed JSON values (REST)
    cluster: str | None = None
    overlap: str = "skip"
    notify: tuple[str, ...] = ()
    force: bool = False
    created: float = 0.0

    @property
    def is_notebook(self) -> bool:
        return self.path.endswith(".ipynb")

    @property
    def pipeline_file(self) -> Path:
        """The pipeline.yaml a firing runs (for a notebook: its one-step spec beside it)."""
        path = Path(self.path)
        if self.is_notebook:
            return path.parent / NOTEBOOK_SPEC.format(name=self.name)
        return path

    @property
    def folder(self) -> Path:
        """Where the runs go (``runs/<run_id>/``): the pipeline's folder."""
        return Path(self.path).parent

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "trigger": {**self.trigger.to_dict(), "anchor": self.trigger.anchor},
            "params": list(self.params),
            "raw": list(self.raw),
            "yaml_params": list(self.yaml_params),
            "param_files": list(self.param_files),
            "values": self.values,
            "cluster": self.cluster,
            "overlap": self.overlap,
            "notify": list(self.notify),
            "force": self.force,
            "created": self.created,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ScheduleSpec:
        """Read back what :meth:`to_dict` stored, checking the trigger again.

        Raises:
            InputError: the stored trigger is no longer valid (a hand-edited store).
        """
        trig = data["trigger"]
        trigger = Trigger.from_fields(
            trig.get("cron"),
            trig.get("tz") if trig.get("cron") is not None else None,
            trig.get("seconds") if trig.get("cron") is None else None,
            float(trig.get("anchor") or 0.0),
        )
        return cls(
            name=as_name("name", data["name"]),
            path=str(data["path"]),
            trigger=trigger,
            params=tuple(data.get("params") or ()),
            raw=tuple(data.get("raw") or ()),
            yaml_params=tuple(data.get("yaml_params") or ()),
            param_files=tuple(data.get("param_files") or ()),
            values=dict(data.get("values") or {}),
            cluster=data.get("cluster"),
            overlap=data.get("overlap") or "skip",
            notify=tuple(data.get("notify") or ()),
            force=bool(data.get("force")),
            created=float(data.get("created") or 0.0),
        )

    def run_argv(self, options: set[str]) -> list[str]:
        """``pipeline run`` arguments after ``aiinfra`` (one value per item, no shell).

        ``options`` are the long options ``pipeline run`` knows here: ``--trigger`` and
        ``--notify`` are passed only where it has them.
        """
        argv = ["pipeline", "run", str(self.pipeline_file)]
        for flag, items in (
            ("-f", self.param_files),
            ("-y", self.yaml_params),
            ("-p", self.params),
            ("-r", self.raw),
        ):
            for item in items:
                argv += [flag, item]
        if self.values:  # typed JSON is YAML: the values reach the notebook with their types
            argv += ["-y", json.dumps(self.values)]
        if self.cluster:
            argv += ["--cluster", self.cluster]
        if self.force or self.is_notebook:
            argv.append("--force")  # a notebook job runs each time, as jupyter-scheduler's do
        if "--trigger" in options:
            argv += ["--trigger", f"schedule:{self.name}"]
        if "--notify" in options:
            for target in self.notify:
                argv += ["--notify", target]
        return argv


def notebook_spec_text(spec: ScheduleSpec) -> str:
    """The one-step pipeline.yaml of a notebook schedule (the notebook's folder is the cwd)."""
    import yaml

    notebook = Path(spec.path)
    body = {"name": notebook.stem, "steps": {_step_name(notebook): {"notebook": notebook.name}}}
    return GENERATED_MARK + yaml.safe_dump(body, sort_keys=False)


def _step_name(notebook: Path) -> str:
    """The step's name: ``promote``'s rule (``promote.step_name_for``), without importing
    promote, which imports nbformat (0.25 s a ``schedule run`` would pay for nothing)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", notebook.stem).strip("_") or "step"
    return name if re.match(r"[A-Za-z_]", name) else "step_" + name


def write_notebook_spec(spec: ScheduleSpec) -> Path:
    """Write (or refresh) a notebook schedule's one-step spec; returns its path (0600)."""
    from ..paths import atomic_write_text

    target = spec.pipeline_file
    text = notebook_spec_text(spec)
    try:
        if target.read_text() == text:
            return target
    except OSError:
        pass
    if target.is_symlink() or (target.exists() and not _generated(target)):
        raise field_error(
            "path", str(target), "a folder where the schedule's one-step spec is ours to write"
        )
    atomic_write_text(target, text)
    return target


def remove_notebook_spec(spec: ScheduleSpec) -> None:
    """Remove the one-step spec a notebook schedule wrote (only if it is still ours)."""
    target = spec.pipeline_file
    if spec.is_notebook and target.is_file() and not target.is_symlink() and _generated(target):
        target.unlink(missing_ok=True)


def _generated(path: Path) -> bool:
    try:
        return path.read_text().startswith(GENERATED_MARK)
    except OSError:
        return False


def _strings(field_name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise field_error(field_name, value, "a list of strings")
    return tuple(as_line(field_name, item) for item in items)


def check_notify(value: Any) -> tuple[str, ...]:
    """``--notify`` targets, by the rule ``pipeline run --notify`` applies (notify.py): a
    target a schedule stores is one its runs accept (``webhook:$NAME`` included)."""
    from .notify import check_target

    return tuple(check_target(target, "notify") for target in _strings("notify", value))


def build_spec(options: dict[str, Any], *, now: float) -> ScheduleSpec:
    """Check every field of a new schedule, as a door gives them (CLI options or a REST body).

    The REST door resolves ``path`` inside the server's root before it calls this.

    Raises:
        InputError: naming the first field that is not allowed.
    """
    only_fields(options, FIELDS)
    name = as_name("name", options.get("name"))
    trigger = Trigger.from_fields(
        options.get("cron"), options.get("tz"), options.get("every"), anchor=now
    )
    overlap = options.get("overlap") or "skip"
    if overlap not in OVERLAPS:
        raise field_error("overlap", overlap, " | ".join(OVERLAPS))
    cluster = options.get("cluster")
    if cluster is not None and cluster != "":
        cluster = as_name("cluster", cluster)
    force = options.get("force", False)
    if not isinstance(force, bool):
        raise field_error("force", force, "true or false")
    values = options.get("values") or {}
    spec = ScheduleSpec(
        name=name,
        path=str(_path(options.get("path"))),
        trigger=trigger,
        params=_strings("params", options.get("params")),
        raw=_strings("raw", options.get("raw")),
        yaml_params=_strings("yaml_params", options.get("yaml_params")),
        param_files=tuple(
            _param_file(f) for f in _strings("param_files", options.get("param_files"))
        ),
        values=dict(values),
        cluster=cluster or None,
        overlap=overlap,
        notify=check_notify(options.get("notify")),
        force=force,
        created=now,
    )
    check_runnable(spec)
    return spec


def _path(value: Any) -> Path:
    allowed = "an existing pipeline.yaml (or .yml) or notebook (.ipynb)"
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise field_error("path", value, allowed)
    path = Path(value).expanduser().resolve()
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml", ".ipynb"):
        raise field_error("path", value, allowed)
    return path


def _param_file(value: str) -> str:
    if "://" in value:
        return value  # papermill reads URLs at run time
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise field_error("param_files", value, "an existing YAML file (or a URL papermill reads)")
    return str(path)


def check_runnable(spec: ScheduleSpec) -> None:
    """What ``pipeline run`` would refuse (the spec, the parameters), refused now.

    Raises:
        InputError: naming ``path`` (the spec), or the parameter's option.
    """
    from .dag import apply_overrides
    from .params import collect
    from .spec import PipelineSpec

    if spec.is_notebook:
        import yaml

        data = yaml.safe_load(notebook_spec_text(spec))
        pipeline = PipelineSpec.from_dict(data, Path(spec.path).parent)
    else:
        pipeline = PipelineSpec.from_file(spec.path)
    local_files = [f for f in spec.param_files if "://" not in f]
    overrides = collect(
        list(spec.params), list(spec.raw), list(spec.yaml_params), local_files, spec.values
    )
    apply_overrides(pipeline, overrides=overrides)
