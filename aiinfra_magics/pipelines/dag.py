"""The expanded DAG: one Node per step or per grid point (``train[lr=0.1]``)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import AiinfraError, field_error
from .params import Override, check_inside, collect, typed_value, value_text
from .spec import PARAM_NAME, RESERVED_PARAMS, PipelineSpec, StepSpec, _common


@dataclass(frozen=True)
class Node:
    name: str  # expanded name, e.g. train[lr=0.1]
    step: StepSpec
    params: dict[str, Any]  # step params merged with this node's grid values
    products: tuple[str, ...]
    upstream: tuple[str, ...]  # expanded names of the nodes this one runs after

    @property
    def base(self) -> str:
        return self.step.name


def grid_points(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def point_name(base: str, point: dict[str, Any]) -> str:
    if not point:
        return base
    return base + "[" + ",".join(f"{k}={value_text(v)}" for k, v in point.items()) + "]"


def expand(spec: PipelineSpec) -> dict[str, Node]:
    """All nodes in a topological-friendly order (the order steps are written)."""
    names: dict[str, list[str]] = {}
    nodes: dict[str, Node] = {}
    for step in spec.steps.values():
        names[step.name] = []
        for point in grid_points(step.grid):
            name = point_name(step.name, point)
            if name in nodes:  # value_text keeps distinct values apart; never drop a node
                raise field_error(f"steps.{step.name}.grid", point, "values with distinct names")
            names[step.name].append(name)
            where = f"steps.{step.name}.products"
            nodes[name] = Node(
                name=name,
                step=step,
                params={**step.params, **point},
                products=tuple(check_inside(where, p.format(**point)) for p in step.products),
                upstream=(),
            )
    for name, node in nodes.items():
        ups = tuple(n for base in node.step.after for n in names[base])
        nodes[name] = replace(node, upstream=ups)
    return nodes


def parse_overrides(items: list[str] | None) -> list[tuple[str | None, str, Any]]:
    """``-p lr=0.5`` / ``-p train.lr=0.5`` -> (step or None, key, value typed as papermill's
    ``-p`` types it): ``promote -p`` and ``pipeline run -p`` read ``010`` as 10, ``1e3`` as
    1000.0 and ``None`` as None alike (they once differed: YAML read 010 as 8)."""
    out = []
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise field_error("-p", item, "KEY=VALUE or STEP.KEY=VALUE")
        step, _, param = key.rpartition(".")
        if not PARAM_NAME.fullmatch(param):
            raise field_error("-p", item, "a Python identifier as KEY")
        out.append((step or None, param, typed_value(text)))
    return out


def apply_overrides(
    spec: PipelineSpec,
    items: list[str] | None = None,
    *,
    overrides: list[Override] | None = None,
    kernel: str | None = None,
) -> PipelineSpec:
    """Override params (or pin a grid axis to one value) from ``-p`` (papermill's typing)
    or ``overrides`` (see params.collect); ``kernel`` (``-k``) replaces every step's kernel.

    A bare KEY goes to every step whose spec sets it or whose notebook's parameters
    cell declares it (papermill's own target); STEP.KEY to that step.
    """
    steps = dict(spec.steps)
    declared: dict[str, set[str]] = {}
    for step_name, key, value in [*(overrides or []), *collect(params=items)]:
        if key in RESERVED_PARAMS:
            raise field_error(
                "-p", key, "parameters other than product and upstream (set by the runner)"
            )
        if not step_name and not any(key in st.params or key in st.grid for st in steps.values()):
            if not declared:
                declared = {s: declared_names(spec.resolve(st.notebook)) for s, st in steps.items()}
            targets = [s for s in steps if key in declared[s]]
        else:
            targets = (
                [step_name]
                if step_name
                else [s for s, st in steps.items() if key in st.params or key in st.grid]
            )
        if step_name and step_name not in steps:
            raise field_error(
                "-p", f"{step_name}.{key}", "STEP.KEY with STEP one of " + ", ".join(steps)
            )
        if not targets:
            known = sorted({k for st in steps.values() for k in (*st.params, *st.grid)})
            raise field_error(
                "-p",
                key,
                "a parameter some step declares (" + (", ".join(known) or "none") + ") or STEP.KEY",
            )
        for target in targets:
            st = steps[target]
            if key in st.grid:
                steps[target] = replace(st, grid={**st.grid, key: (value,)})
            else:
                steps[target] = replace(st, params={**st.params, key: value})
    if kernel:
        kernel = _common("-k", "kernel", kernel)
        steps = {n: replace(st, kernel=kernel) for n, st in steps.items()}
    return replace(spec, steps=steps)


def declared_names(notebook: Any) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (Python), read without nbformat."""
    import ast
    import json

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return set()
    for cell in cells:
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return set()
            names = set()
            for stmt in tree.body:
                targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            return names
    return set()


def select(
    nodes: dict[str, Node],
    only: str | Sequence[str] | None,
    with_upstream: bool,
    flag: str = "--only",
) -> set[str]:
    """Names of the nodes to run: all, or ``--only STEP`` (steps or expanded names, one or more).

    ``flag`` is the option the names came from, for the error.
    """
    if not only:
        return set(nodes)
    chosen: set[str] = set()
    for name in [only] if isinstance(only, str) else only:
        found = {n for n, node in nodes.items() if name in (n, node.base)}
        if not found:
            bases = sorted({node.base for node in nodes.values()})
            raise field_error(
                flag,
                name,
                "a step name (" + ", ".join(bases) + ") or an expanded name like train[lr=0.1]",
            )
        chosen |= found
    if with_upstream:
        todo = list(chosen)
        while todo:
            for up in nodes[todo.pop()].upstream:
                if up not in chosen:
                    chosen.add(up)
                    todo.append(up)
    return chosen


def downstream(nodes: Mapping[str, Node], names: set[str]) -> set[str]:
    """``names`` and every node that runs after one of them, directly or not."""
    after: dict[str, list[str]] = {}
    for name, node in nodes.items():
        for up in node.upstream:
            after.setdefault(up, []).append(name)
    found, todo = set(names), list(names)
    while todo:
        for down in after.get(todo.pop(), []):
            if down not in found:
                found.add(down)
                todo.append(down)
    return found


def layers(nodes: Mapping[str, Any]) -> dict[str, int]:
    """Longest-path depth of every node, for drawing left to right."""
    depth: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in depth:
            ups = nodes[name].upstream
            depth[name] = 1 + max((visit(u) for u in ups), default=-1)
        return depth[name]

    for name in nodes:
        visit(name)
    return depth


def check_resources(nodes: dict[str, Node], workers: dict[str, dict]) -> None:
    """Fail before running when a step asks for a resource no worker offers."""
    offered: dict[str, float] = {}
    for info in workers.values():
        for res, amount in (info.get("resources") or {}).items():
            offered[res] = max(offered.get(res, 0.0), float(amount))
    for node in nodes.values():
        for res, amount in node.step.resources.items():
            if offered.get(res, 0.0) < amount:
                have = ", ".join(f"{k}={v:g}" for k, v in offered.items()) or "no resources"
                raise AiinfraError(
                    f"steps.{node.base}.resources: got {res}={amount:g}; allowed: what a worker of this cluster offers ({have})",
                    field=f"steps.{node.base}.resources",
                )
