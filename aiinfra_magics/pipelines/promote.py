"""``%aiinfra promote``: make the current notebook a step of ``pipeline.yaml``.

Never loses user content: the YAML is edited round-trip (comments and order
kept), a notebook cell is only ever tagged or split (its text is kept whole),
the result is validated before anything is written, and every write is atomic.
"""

from __future__ import annotations

import ast
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ..errors import AiinfraError, field_error
from .cache import write_text_atomic
from .dag import parse_overrides
from .spec import PARAM_NAME, PipelineSpec

RELOAD = (
    "if the notebook is open, reload it from disk (File > Reload Notebook from Disk) before saving"
)


@dataclass
class Promoted:
    step: str
    pipeline: Path
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.notes)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def current_notebook(namespace: dict[str, Any] | None) -> Path | None:
    """The notebook this kernel serves, when the front end tells us.

    jupyter-server (JupyterLab, Notebook 7) sets ``JPY_SESSION_NAME`` in the kernel's
    environment to the notebook's absolute path (2.x; older servers gave the path
    relative to the root, and the kernel starts in the notebook's folder).
    VS Code sets ``__vsc_ipynb_file__``.
    """
    if namespace and namespace.get("__vsc_ipynb_file__"):
        return Path(namespace["__vsc_ipynb_file__"])
    session = os.environ.get("JPY_SESSION_NAME")
    if not session:
        return None
    candidates = [Path(session), Path.cwd() / Path(session).name, Path.cwd() / session]
    return next((p.resolve() for p in candidates if p.suffix == ".ipynb" and p.is_file()), None)


def step_name_for(notebook: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", notebook.stem).strip("_") or "step"
    return name if re.match(r"[A-Za-z_]", name) else "step_" + name


def _leading_assignments(source: str) -> tuple[list[str], int | None]:
    """Names assigned literal values at the top of ``source`` and the line where that ends.

    The line is None when the whole cell is such assignments.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], 0
    names: list[str] = []
    for stmt in tree.body:
        targets = (
            stmt.targets
            if isinstance(stmt, ast.Assign)
            else [stmt.target]
            if isinstance(stmt, ast.AnnAssign)
            else None
        )
        value = getattr(stmt, "value", None)
        if not targets or value is None or not all(isinstance(t, ast.Name) for t in targets):
            return names, stmt.lineno
        try:
            ast.literal_eval(value)
        except ValueError:
            return names, stmt.lineno
        names += [t.id for t in targets]  # type: ignore[attr-defined]
    return names, None


def ensure_parameters_cell(path: Path, params: dict[str, Any]) -> str | None:
    """Make sure a cell is tagged ``parameters``; return what was done, or None if nothing."""
    nb = nbformat.read(str(path), as_version=4)
    if any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    first = code[0] if code else None
    names, stop = _leading_assignments(nb.cells[first].source) if first is not None else ([], 0)
    if first is not None and names and stop is None:
        cell = nb.cells[first]
        cell.metadata.setdefault("tags", []).append("parameters")
        done = f"tagged the first code cell as `parameters` (it assigns {', '.join(names)})"
    elif first is not None and names:
        cell = nb.cells[first]
        lines = cell.source.splitlines(keepends=True)
        head, rest = "".join(lines[: stop - 1]), "".join(lines[stop - 1 :])
        new = nbformat.v4.new_code_cell(head.rstrip("\n"))
        new.metadata["tags"] = ["parameters"]
        cell.source = rest
        nb.cells.insert(first, new)
        done = f"split the first code cell: its leading assignments ({', '.join(names)}) are now a cell tagged `parameters`"
    else:
        body = "\n".join(f"{k} = {v!r}" for k, v in params.items())
        body = body or "# Parameters: the pipeline injects its values after this cell."
        new = nbformat.v4.new_code_cell(body)
        new.metadata["tags"] = ["parameters"]
        nb.cells.insert(first if first is not None else len(nb.cells), new)
        done = "added a cell tagged `parameters`" + (f" with {', '.join(params)}" if params else "")
    nbformat.validate(nb)
    write_text_atomic(path, nbformat.writes(nb))
    return f"{path.name}: {done}; {RELOAD}"


def _quoted(value: Any) -> Any:
    """Strings a YAML 1.1 reader would take for something else, quoted.

    ruamel writes YAML 1.2, where ``on``, ``yes`` and ``off`` are plain strings;
    the spec is read with PyYAML (1.1), which turns them into booleans, so a
    param named ``on`` or valued ``"yes"`` would change type on the way.
    """
    import yaml as pyyaml

    if isinstance(value, str):
        try:
            same = isinstance(pyyaml.safe_load(value), str)
        except pyyaml.YAMLError:
            same = False
        return value if same and value.strip() == value else DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        return {_quoted(k): _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return value


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def promote(
    notebook: Path | None,
    *,
    pipeline: Path | None = None,
    name: str | None = None,
    after: list[str] | None = None,
    params: list[str] | None = None,
    products: list[str] | None = None,
    typed: dict[str, Any] | None = None,
) -> Promoted:
    """Add (or update) ``notebook`` as a step of ``pipeline``.

    ``params`` are ``-p KEY=VALUE`` texts (values read as YAML); ``typed`` holds
    parameters already typed (the REST door's JSON), applied after them.
    """
    if notebook is None:
        raise AiinfraError(
            "--notebook: this kernel does not know its notebook; allowed: --notebook PATH",
            field="--notebook",
        )
    notebook = Path(notebook).expanduser().resolve()
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise field_error("--notebook", str(notebook), "an existing .ipynb file")
    pipeline = Path(pipeline).expanduser() if pipeline else notebook.parent / "pipeline.yaml"
    if pipeline.is_dir():
        pipeline = pipeline / "pipeline.yaml"
    pipeline = pipeline.resolve()
    folder = pipeline.parent
    try:
        relative = notebook.relative_to(folder).as_posix()
    except ValueError:
        raise field_error(
            "--notebook", str(notebook), f"a notebook inside the pipeline folder {folder}"
        ) from None
    step = name or step_name_for(notebook)
    values: dict[str, Any] = {}
    for target, key, value in parse_overrides(params):
        if target:
            raise field_error(
                "-p", f"{target}.{key}", "KEY=VALUE (promote sets this step's params)"
            )
        values[key] = value
    for key, value in (typed or {}).items():
        if not isinstance(key, str) or not PARAM_NAME.fullmatch(key):
            raise field_error("params", key, "Python identifiers as parameter names")
        values[key] = value

    yaml = _yaml()
    created = not pipeline.exists()
    doc = CommentedMap() if created else yaml.load(pipeline.read_text()) or CommentedMap()
    if not isinstance(doc, dict):
        raise field_error(
            pipeline.name, type(doc).__name__, "a mapping with name, defaults and steps"
        )
    if created:
        doc["name"] = folder.name
    steps = doc.setdefault("steps", CommentedMap())
    if not isinstance(steps, dict):
        raise field_error("steps", steps, "a mapping of step name to step")
    notes = []
    if step in steps:
        entry = steps[step]
        if not isinstance(entry, dict) or entry.get("notebook") != relative:
            other = entry.get("notebook") if isinstance(entry, dict) else entry
            raise field_error(
                "--name",
                step,
                f"a name not already used by another step (it runs {other}); pick another --name",
            )
        changed = []
        if after is not None:
            entry["after"] = list(after)
            changed.append("after")
        if values:
            entry.setdefault("params", CommentedMap()).update(_quoted(values))
            changed.append("params " + ", ".join(values))
        if products:
            entry["products"] = list(products)
            changed.append("products")
        notes.append(
            f"step {step!r} already in {pipeline.name}; updated "
            + (", ".join(changed) or "nothing")
        )
    else:
        entry = CommentedMap(notebook=relative)
        if after:
            entry["after"] = list(after)
        if values:
            entry["params"] = CommentedMap(_quoted(values))
        if products:
            entry["products"] = list(products)
        steps[step] = entry
        where = f" after {', '.join(after)}" if after else ""
        notes.append(
            f"{'created' if created else 'updated'} {pipeline}: added step {step!r} ({relative}){where}"
        )

    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    text = buffer.getvalue()
    # Validate exactly what will be written, so a bad --after never reaches the file.
    import yaml as pyyaml

    PipelineSpec.from_dict(pyyaml.safe_load(text), folder, path=pipeline)
    message = ensure_parameters_cell(notebook, values)
    write_text_atomic(pipeline, text)
    if message:
        notes.append(message)
    return Promoted(step=step, pipeline=pipeline, notes=notes)
