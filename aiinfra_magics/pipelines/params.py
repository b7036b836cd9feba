"""Parameters as papermill reads them, and the names and file names they give nodes.

``-p`` values are typed by papermill's CLI rules (its ``_resolve_type``: ``None``,
``True``, ``010`` -> 10, ``1e3`` -> 1000.0, anything else a string), ``-r`` keeps the
raw string, ``-y`` and ``-f`` are YAML read as papermill's loader reads them (no dates:
a date stays the string the user wrote). Later sources win, in papermill's order:
``-f``, ``-y``, ``-p``, ``-r``.

The two rules are restated here rather than imported: ``import papermill`` pulls
nbformat, jsonschema and rfc3987_syntax (1.6 s and more at every CLI start, issue 24),
and neither rule needs them. tests/pipelines/test_params_parity.py holds both to
papermill's own functions.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import AiinfraError, field_error

KEY = re.compile(r"(?:(?P<step>[^.=]+)\.)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)")
# Characters kept as they are in a node's notebook file name; anything else is replaced.
SAFE_FILE = re.compile(r"[A-Za-z0-9._,=+\[\]-]+")
PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.+-]+")
MAX_FILE = 120


def typed_value(text: str) -> Any:
    """A ``-p`` value as papermill's CLI types it (``papermill.cli._resolve_type``)."""
    if text in _WORDS:
        return _WORDS[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


_WORDS: dict[str, Any] = {"True": True, "False": False, "None": None}


class NoDatesSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader without the timestamp rule, as ``papermill.iorw``'s loader."""

    yaml_implicit_resolvers = {
        first: [rule for rule in rules if rule[0] != "tag:yaml.org,2002:timestamp"]
        for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class StrictLoader(NoDatesSafeLoader):
    """papermill's YAML loader (dates stay strings) that refuses duplicate keys.

    PyYAML keeps the last of two equal keys silently: a step written twice would
    vanish without a word. It also refuses aliases that expand past a bound
    (``_check_expansion``), measured on the composed nodes before anything is built.
    """

    _aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        if self._aliases:  # without aliases a document is no larger than its text
            _check_expansion(node)
        return node


def _no_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        try:
            first = seen.setdefault(key, line)
        except TypeError:  # an unhashable key: let PyYAML report it
            continue
        if first != line:
            raise AiinfraError(
                f"line {line}: duplicate key {key!r} (first on line {first}); "
                "allowed: each key once per mapping",
                field=str(key),
            )
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)

# An alias reuses a node, so a few hundred bytes of nested aliases stand for
# billions of values once anything walks them (JSON for the lab, the runner's
# copies): issue 25 saw 464 bytes become 39 MB. Far above any real spec.
MAX_EXPANDED_VALUES = 100_000
MAX_EXPANDED_CHARS = 10_000_000
ALIASES_ALLOWED = (
    f"aliases (*name) that expand to at most {MAX_EXPANDED_VALUES} values and "
    f"{MAX_EXPANDED_CHARS} characters in all, none inside its own anchor"
)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past the bounds, or into themselves."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters), expanded
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise AiinfraError(
                f"line {node.start_mark.line + 1}: an alias inside its own anchor; "
                f"allowed: {ALIASES_ALLOWED}",
                field="yaml",
            )
        if isinstance(node, yaml.ScalarNode):
            total = (1, len(node.value))
        else:
            open_nodes.add(key)
            values, chars = 1, 0
            for child in node.value:  # nodes (sequence) or (key, value) pairs (mapping)
                for part in child if isinstance(child, tuple) else (child,):
                    v, c = size(part)
                    values, chars = values + v, chars + c
                    if values > MAX_EXPANDED_VALUES or chars > MAX_EXPANDED_CHARS:
                        raise AiinfraError(
                            f"line {node.start_mark.line + 1}: aliases expand to more than "
                            f"{MAX_EXPANDED_VALUES} values or {MAX_EXPANDED_CHARS} characters; "
                            f"allowed: {ALIASES_ALLOWED}",
                            field="yaml",
                        )
            open_nodes.discard(key)
            total = (values, chars)
        sizes[key] = total
        return total

    size(root)


def load_yaml(text: str) -> Any:
    """YAML as papermill reads it, refusing duplicate keys and alias bombs (AiinfraError)."""
    return yaml.load(text, Loader=StrictLoader)


def plain(value: Any) -> Any:
    """A value papermill can inject and JSON can hold: dates become ISO strings, tuples lists."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def json_safe(value: Any) -> Any:
    """For records read by browsers: NaN and infinities as strings (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value


Override = tuple[str | None, str, Any]  # (step or None, key, value)


def _split(where: str, item: str, text: str) -> tuple[str | None, str]:
    match = KEY.fullmatch(text)
    if not match:
        raise field_error(where, item, "KEY=VALUE or STEP.KEY=VALUE with KEY a Python identifier")
    return match.group("step"), match.group("key")


def _pairs(where: str, items: list[str] | None, typed: bool) -> list[Override]:
    out = []
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise field_error(where, item, "KEY=VALUE or STEP.KEY=VALUE")
        step, name = _split(where, item, key)
        out.append((step, name, typed_value(text) if typed else text))
    return out


def _mapping(where: str, source: str, data: Any) -> list[Override]:
    if data is None:
        return []
    if not isinstance(data, dict):
        raise field_error(where, source, "YAML mapping KEY: VALUE (or STEP.KEY: VALUE)")
    out = []
    for key, value in data.items():
        step, name = _split(where, str(key), str(key))
        out.append((step, name, plain(value)))
    return out


def collect(
    params: list[str] | None = None,
    raw: list[str] | None = None,
    yaml_texts: list[str] | None = None,
    files: list[str] | None = None,
    typed: dict[str, Any] | None = None,
) -> list[Override]:
    """Every override, in papermill's order of precedence (the last one wins).

    ``typed`` holds values already typed (JSON from the REST door), keyed KEY or STEP.KEY.
    """
    out: list[Override] = []
    for path in files or []:
        try:
            text = _read_parameters_file(path)
        except Exception as exc:
            raise field_error("-f", path, f"a readable YAML file ({type(exc).__name__})") from None
        try:
            out += _mapping("-f", path, load_yaml(text))
        except yaml.YAMLError as exc:
            raise field_error("-f", path, f"valid YAML ({getattr(exc, 'problem', exc)})") from None
    for text in yaml_texts or []:
        try:
            out += _mapping("-y", text, load_yaml(text))
        except yaml.YAMLError as exc:
            raise field_error("-y", text, f"valid YAML ({getattr(exc, 'problem', exc)})") from None
    out += _pairs("-p", params, typed=True)
    out += _pairs("-r", raw, typed=False)
    for key, value in (typed or {}).items():
        step, name = _split("params", key, key)
        out.append((step, name, plain(value)))
    return out


def _read_parameters_file(path: str) -> str:
    """A ``-f`` file: local paths read directly, URLs through papermill's I/O registry."""
    if "://" not in path:
        return Path(path).expanduser().read_text()
    from papermill.iorw import papermill_io  # s3://, gs://, http(s)://...: papermill's handlers

    return papermill_io.read(path, [".json", ".yaml", ".yml"])


def value_text(value: Any) -> str:
    """How a grid value appears in a node name; distinct values never print alike.

    A string that would read back as something else (``"1"``, ``"True"``, ``"nan"``)
    or that holds punctuation is quoted, so ``i=1`` and ``i="1"`` are two nodes.
    """
    if isinstance(value, str):
        reads_back = typed_value(value) == value and yaml.safe_load(value) == value
        if PLAIN_VALUE.fullmatch(value) and reads_back:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def file_name(node: str, suffix: str = ".ipynb") -> str:
    """A safe file name for a node: the name itself when it is safe, else a cleaned name
    plus a short hash of the real one (so two nodes never share a file)."""
    if SAFE_FILE.fullmatch(node) and len(node) <= MAX_FILE:
        return node + suffix
    cleaned = re.sub(r"[^A-Za-z0-9._,=+\[\]-]+", "_", node)[:MAX_FILE].lstrip(".")
    return f"{cleaned}-{hashlib.sha256(node.encode()).hexdigest()[:8]}{suffix}"


def check_inside(where: str, path: str) -> str:
    """A product path after grid values were filled in must stay in the pipeline folder."""
    if Path(path).is_absolute() or ".." in Path(path).parts or "\0" in path:
        raise field_error(
            where, path, "paths inside the pipeline folder (grid values without '..')"
        )
    return path
