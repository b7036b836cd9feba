"""``pipeline.yaml``: a validated PipelineSpec.

Every error is one line naming the step, the field and what is allowed, e.g.
``steps.train.after: got 'prep'; allowed: names of other steps (evaluate, prepare)``.
Paths are relative to the spec's folder, which is also each kernel's cwd.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import AiinfraError, field_error
from .mlflow_log import check_settings as check_mlflow
from .notify import Rule, rules_from_spec
from .params import load_yaml, plain

# Patterns are used with fullmatch: "$" would also match before a trailing newline.
STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})

TOP_FIELDS = ("name", "defaults", "steps", "output", "notify", "mlflow")
# papermill's per-notebook options, by papermill's names, allowed in defaults and in a step.
PAPERMILL_FIELDS = (
    "cwd",
    "report_mode",
    "execution_timeout",
    "log_output",
    "request_save_on_cell_execute",
    "autosave_cell_every",
)
DEFAULT_FIELDS = (
    "timeout",
    "retries",
    "kernel",
    "resources",
    "memory",
    "kernel_reuse",
    *PAPERMILL_FIELDS,
)
STEP_FIELDS = (
    "notebook",
    "params",
    "after",
    "products",
    "inputs",
    "grid",
    "timeout",
    "retries",
    "kernel",
    "resources",
    "memory",
    "kernel_reuse",
    *PAPERMILL_FIELDS,
)
# Names papermill injects for every step; a user param with these names would be shadowed.
RESERVED_PARAMS = ("upstream", "product")
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class StepSpec:
    """One step as written (before grid expansion)."""

    name: str
    notebook: str
    params: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    timeout: float = 600.0  # the whole step (papermill has no such limit)
    retries: int = 1
    kernel: str | None = None  # None: the notebook's kernelspec, as papermill does
    resources: dict[str, float] = field(default_factory=dict)
    memory: int | None = None  # bytes; None means the worker's memory limit
    kernel_reuse: bool = False  # run in a warm kernel of this worker, reset between steps
    cwd: str | None = None  # relative to the pipeline folder; None: the folder itself
    report_mode: bool = False
    execution_timeout: float | None = None  # per cell, papermill's --execution-timeout
    log_output: bool = False
    request_save_on_cell_execute: bool = True
    autosave_cell_every: int = 30


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    folder: Path
    steps: dict[str, StepSpec]
    path: Path | None = None
    output: str | None = None  # where executed notebooks go: a folder or any papermill/fsspec URL
    notify: tuple[Rule, ...] = ()  # who is told when a run ends (notify.py)
    mlflow: dict[str, Any] | None = None  # {tracking_uri, experiment}: see mlflow_log.py

    @classmethod
    def from_file(cls, path: str | Path) -> PipelineSpec:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise AiinfraError(
                f"FILE: got {str(path)!r}; allowed: an existing pipeline.yaml", field="FILE"
            )
        try:
            data = load_yaml(path.read_text()) or {}
        except AiinfraError as exc:  # a duplicate key
            raise AiinfraError(f"{path.name}: {exc}", field=exc.field) from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" line {where.line + 1}" if where else ""
            # A reader error (a control character) has no problem text and spans two lines.
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise AiinfraError(f"{path.name}:{line} not valid YAML ({problem})") from None
        return cls.from_dict(data, path.parent, path=path)

    @classmethod
    def from_dict(
        cls, data: Any, folder: str | Path, *, path: Path | None = None, check_files: bool = True
    ) -> PipelineSpec:
        folder = Path(folder).resolve()
        if not isinstance(data, dict):
            raise field_error(
                "pipeline", type(data).__name__, "a mapping with keys " + ", ".join(TOP_FIELDS)
            )
        _unknown("pipeline", data, TOP_FIELDS)
        name = data.get("name", folder.name)
        if not isinstance(name, str) or not name.strip():
            raise field_error("name", name, "a non-empty string")
        defaults = _defaults(data.get("defaults") or {})
        steps_data = data.get("steps")
        if not isinstance(steps_data, dict) or not steps_data:
            raise field_error("steps", steps_data, "a non-empty mapping of step name to step")
        steps = {}
        for step_name, body in steps_data.items():
            steps[str(step_name)] = _step(step_name, body, defaults, folder, check_files)
        _check_graph(steps)
        _check_products(steps)
        output = data.get("output")
        if output is not None and (not isinstance(output, str) or not output.strip()):
            raise field_error(
                "output", output, "a folder or a URL papermill can write (s3://, ...)"
            )
        notify = rules_from_spec(data.get("notify"))
        mlflow = check_mlflow(data.get("mlflow"), folder, name.strip())
        return cls(
            name=name.strip(),
            folder=folder,
            steps=steps,
            path=path,
            output=output,
            notify=notify,
            mlflow=mlflow,
        )

    def resolve(self, relative: str) -> Path:
        return (self.folder / relative).resolve()


def parse_size(text: Any, where: str) -> int:
    """``"2GiB"`` -> bytes; also plain integers (bytes)."""
    if isinstance(text, bool):
        raise field_error(where, text, "a size such as 512MiB or 2GB")
    if isinstance(text, int) and text > 0:
        return text
    match = SIZE.fullmatch(str(text)) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise field_error(where, text, "a size such as 512MiB or 2GB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").lower()])


def _unknown(where: str, data: dict, allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise AiinfraError(
                f"{where}: unknown field {key!r}; allowed: {', '.join(allowed)}",
                field=f"{where}.{key}",
            )


def _defaults(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise field_error("defaults", data, "a mapping with keys " + ", ".join(DEFAULT_FIELDS))
    _unknown("defaults", data, DEFAULT_FIELDS)
    out: dict[str, Any] = {
        "timeout": 600.0,
        "retries": 1,
        "kernel": None,
        "resources": {},
        "memory": None,
        "kernel_reuse": False,
        "cwd": None,
        "report_mode": False,
        "execution_timeout": None,
        "log_output": False,
        "request_save_on_cell_execute": True,
        "autosave_cell_every": 30,
    }
    for key, value in data.items():
        out[key] = _common(f"defaults.{key}", key, value)
    return out


def _common(where: str, key: str, value: Any) -> Any:
    """Fields allowed both in ``defaults`` and in a step."""
    if key == "timeout":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0:
            raise field_error(where, value, "a positive number of seconds")
        return float(value)
    if key == "retries":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
            raise field_error(where, value, "an integer from 0 to 10")
        return value
    if key == "kernel":
        if not isinstance(value, str) or not value:
            raise field_error(where, value, "the name of an installed Jupyter kernel")
        known = _kernel_names()
        if known and value not in known:
            raise field_error(where, value, ", ".join(sorted(known)))
        return value
    if key == "resources":
        if not isinstance(value, dict):
            raise field_error(
                where, value, "a mapping of Dask worker resource to amount, e.g. {GPU: 1}"
            )
        for res, amount in value.items():
            ok = isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount > 0
            if not isinstance(res, str) or not ok:
                raise field_error(f"{where}.{res}", amount, "a positive number")
        return {str(k): float(v) for k, v in value.items()}
    if key == "memory":
        return None if value is None else parse_size(value, where)
    if key in ("kernel_reuse", "report_mode", "log_output", "request_save_on_cell_execute"):
        if not isinstance(value, bool):
            raise field_error(where, value, "true or false")
        return value
    if key == "execution_timeout":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and (not ok or not math.isfinite(value) or value <= 0):
            raise field_error(where, value, "a positive number of seconds per cell, or null")
        return None if value is None else float(value)
    if key == "autosave_cell_every":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise field_error(where, value, "seconds between saves of a running cell (0: never)")
        return value
    if key == "cwd":
        if value is None:
            return None
        if not isinstance(value, str):
            raise field_error(where, value, "a folder relative to the pipeline folder")
        return _paths(where, value)[0]
    raise AssertionError(key)


_KERNELS: set[str] | None = None


def _kernel_names() -> set[str]:
    global _KERNELS
    if _KERNELS is None:
        try:
            from jupyter_client.kernelspec import KernelSpecManager

            from .kernel_pool import kernel_dirs  # the same folders, without importing IPython

            _KERNELS = set(KernelSpecManager(kernel_dirs=kernel_dirs()).find_kernel_specs())
        except Exception:  # no kernelspec machinery: let papermill report it at run time
            _KERNELS = set()
    return _KERNELS


def _paths(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise field_error(where, value, "a list of paths relative to the pipeline folder")
    for v in value:
        if Path(v).is_absolute() or ".." in Path(v).parts:
            raise field_error(where, v, "paths inside the pipeline folder (relative, no '..')")
    return tuple(value)


def _json_like(value: Any) -> bool:
    if isinstance(value, SCALARS):
        return True  # NaN and infinities too: papermill injects float('nan')
    if isinstance(value, list):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


def _names(where: str, data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise field_error(where, data, f"a mapping of {what} name to value")
    for key in data:
        if not isinstance(key, str) or not PARAM_NAME.fullmatch(key):
            raise field_error(where, key, "Python identifiers as names")
        if key in RESERVED_PARAMS:
            raise field_error(
                where, key, "any name except " + ", ".join(RESERVED_PARAMS) + " (set by the runner)"
            )
    return data


def _step(name: Any, body: Any, defaults: dict, folder: Path, check_files: bool) -> StepSpec:
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise field_error(
            "steps",
            name,
            "step names made of letters, digits, '_' and '-', not starting with a digit",
        )
    where = f"steps.{name}"
    if not isinstance(body, dict):
        raise field_error(where, body, "a mapping with at least 'notebook'")
    _unknown(where, body, STEP_FIELDS)
    notebook = body.get("notebook")
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise field_error(f"{where}.notebook", notebook, "a path to an .ipynb file")
    _paths(f"{where}.notebook", notebook)
    if check_files and not (folder / notebook).is_file():
        raise field_error(f"{where}.notebook", notebook, f"an existing notebook under {folder}")
    params = plain(_names(f"{where}.params", body.get("params") or {}, "parameter"))
    for key, value in params.items():
        if not _json_like(value):
            raise field_error(
                f"{where}.params.{key}",
                value,
                "numbers, strings, booleans, null, lists and mappings",
            )
    grid = plain(_names(f"{where}.grid", body.get("grid") or {}, "grid parameter"))
    for key, values in grid.items():
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, SCALARS) for v in values)
        ):
            raise field_error(
                f"{where}.grid.{key}", values, "a non-empty list of numbers, strings or booleans"
            )
        if len(set(map(repr, values))) != len(values):
            raise field_error(f"{where}.grid.{key}", values, "distinct values")
        if key in params:
            raise field_error(f"{where}.grid.{key}", key, "names not also set in params")
    after = body.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise field_error(f"{where}.after", after, "a list of step names")
    products = _paths(f"{where}.products", body.get("products") or [])
    for product in products:
        fields = {f for _, f, _, _ in string.Formatter().parse(product) if f is not None}
        extra = fields - set(grid)
        if extra:
            raise field_error(
                f"{where}.products",
                product,
                "placeholders naming grid keys: " + (", ".join(grid) or "none"),
            )
    if grid and products:
        # Every expansion must write its own files, or they would overwrite each other.
        for product in products:
            fields = {f for _, f, _, _ in string.Formatter().parse(product) if f}
            if not set(grid) <= fields:
                missing = ", ".join("{" + k + "}" for k in grid if k not in fields)
                raise field_error(
                    f"{where}.products",
                    product,
                    f"paths that include {missing} so each grid value writes its own file",
                )
    inputs = _paths(f"{where}.inputs", body.get("inputs") or [])
    merged = dict(defaults)
    for key in DEFAULT_FIELDS:
        if key in body:
            merged[key] = _common(f"{where}.{key}", key, body[key])
    if merged["kernel"] is None and check_files:
        merged["kernel"] = notebook_kernel(folder / notebook)
    if merged["cwd"] is not None and check_files and not (folder / merged["cwd"]).is_dir():
        raise field_error(f"{where}.cwd", merged["cwd"], f"an existing folder under {folder}")
    return StepSpec(
        name=name,
        notebook=notebook,
        params=dict(params),
        after=tuple(after),
        products=products,
        inputs=inputs,
        grid={k: tuple(v) for k, v in grid.items()},
        timeout=merged["timeout"],
        retries=merged["retries"],
        kernel=merged["kernel"],
        resources=dict(merged["resources"]),
        memory=merged["memory"],
        **{k: merged[k] for k in ("kernel_reuse", *PAPERMILL_FIELDS)},
    )


def notebook_kernel(path: Path) -> str | None:
    """The kernelspec name the notebook asks for (papermill's default), if any."""
    import json

    try:
        spec = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("kernelspec")
    except (OSError, ValueError):
        return None
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else None


def _check_graph(steps: dict[str, StepSpec]) -> None:
    from graphlib import CycleError, TopologicalSorter

    for step in steps.values():
        for up in step.after:
            if up == step.name:
                raise field_error(
                    f"steps.{step.name}.after",
                    up,
                    "names of other steps (a step cannot follow itself)",
                )
            if up not in steps:
                others = ", ".join(sorted(s for s in steps if s != step.name)) or "none"
                raise field_error(
                    f"steps.{step.name}.after", up, f"names of other steps ({others})"
                )
    try:
        TopologicalSorter({s.name: s.after for s in steps.values()}).prepare()
    except CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise AiinfraError(
            f"steps: cycle {cycle}; allowed: 'after' links without cycles", field="steps"
        ) from None


def _check_products(steps: dict[str, StepSpec]) -> None:
    owner: dict[str, str] = {}
    for step in steps.values():
        for product in step.products:
            if product in owner:
                raise field_error(
                    f"steps.{step.name}.products",
                    product,
                    f"paths not already written by step {owner[product]!r}",
                )
            owner[product] = step.name
