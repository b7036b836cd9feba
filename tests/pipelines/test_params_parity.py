"""params.py restates two papermill rules instead of importing papermill at CLI start
(issue 24): ``-p`` typing and the YAML loader without dates. Both are held here to
papermill's own functions, on papermill's own examples and on generated text."""

from __future__ import annotations

import math

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from papermill.cli import _resolve_type
from papermill.iorw import NoDatesSafeLoader as PapermillLoader

from aiinfra_magics.pipelines.params import NoDatesSafeLoader, StrictLoader, typed_value

EXAMPLES = [
    "True", "False", "None", "true", "none", "010", "-3", "+7", " 12 ", "1_000", "0x10",
    "1e3", "1E-2", ".5", "5.", "nan", "NaN", "-inf", "infinity", "1e999", "", " ", "abc",
    "1,5", "١٢", "²", "0b1", "9" * 5000, "2024-01-02", "[1, 2]", "{'a': 1}",
]  # fmt: skip


def same(ours: object, theirs: object) -> bool:
    if isinstance(theirs, float) and math.isnan(theirs):
        return isinstance(ours, float) and math.isnan(ours)
    return type(ours) is type(theirs) and ours == theirs


def test_typed_value_is_papermills_typing_on_its_examples():
    for text in EXAMPLES:
        assert same(typed_value(text), _resolve_type(text)), text


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"[-+ ]?[0-9_.eE]{1,8}[ ]?", fullmatch=True)))
def test_typed_value_is_papermills_typing_on_any_text(text):
    assert same(typed_value(text), _resolve_type(text))


YAML_TEXTS = [
    "day: 2024-01-02\nwhen: 2024-01-02 10:00:00\nn: 010\nx: 1e3\nflag: yes\nnothing: ~",
    "a: [2024-01-02, 1.5, .inf, -.nan]\nb: {c: 2001-12-14t21:59:43.10-05:00}",
    "- 2024-01-02\n- '2024-01-02'\n- !!str 5",
]


def test_yaml_loader_reads_as_papermills_loader():
    for text in YAML_TEXTS:
        ours = yaml.load(text, Loader=NoDatesSafeLoader)
        theirs = yaml.load(text, Loader=PapermillLoader)
        assert repr(ours) == repr(theirs), text
        # StrictLoader only adds the duplicate-key refusal on top.
        assert repr(yaml.load(text, Loader=StrictLoader)) == repr(theirs)
    assert yaml.load("d: 2024-01-02", Loader=NoDatesSafeLoader) == {"d": "2024-01-02"}
