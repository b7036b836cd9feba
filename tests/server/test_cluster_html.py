"""The cluster HTML a notebook (and the lab's output area) renders escapes every field.

Registry records are written by other processes and by external schedulers'
answers (status, address, job states, notes), so each is untrusted text.
"""

from __future__ import annotations

import re

from aiinfra_magics.clusters.info import ClusterInfo, ClusterList

EVIL = "<img src=x onerror=alert(1)>"


def _record(tag: str) -> dict:
    """Every text field of a record carries its own hostile marker."""

    def evil(field: str) -> str:
        return f"{EVIL}{tag}-{field}"

    return {
        "name": "web",
        "backend": evil("backend"),
        "status": evil("status"),
        "scheduler_address": evil("address"),
        "workers": 1,
        "threads": 2,
        "memory": 0,
        "gpus": [evil("gpus")],
        "adapt": evil("adapt"),
        "owner": {"kind": evil("owner_kind"), "pid": 1, "host": evil("owner_host")},
        "dashboard_link": "javascript:" + evil("dashboard"),
        "queue": evil("queue"),
        "jobs": [
            {"job_id": evil("job_id"), "state": evil("state"), "node": evil("node"), "reason": ""}
        ],
        "submit_errors": [evil("submit_error")],
        "notes": [evil("note")],
        "created": 0,
    }


def _fields(text: str, tag: str) -> set[str]:
    return set(re.findall(rf"{re.escape(tag)}-(\w+)", text))


def test_every_field_of_one_cluster_is_escaped():
    record = _record("one")
    page = ClusterInfo(record)._repr_html_()
    assert "<img" not in page
    expected = {
        "backend", "status", "address", "gpus", "adapt", "owner_kind", "owner_host",
        "dashboard", "queue", "job_id", "state", "node", "submit_error", "note",
    }  # fmt: skip
    # Each field is shown, and shown as text: its marker follows the escaped tag.
    assert _fields(page, "one") == expected
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for field in expected:
        assert re.search(rf"{re.escape(escaped)}one-{field}\b", page, re.IGNORECASE), field
    assert 'href="javascript' not in page  # the link is text, not a link


def test_every_field_of_the_cluster_list_and_its_problems_are_escaped():
    listing = ClusterList([ClusterInfo(_record("row"))], problems=[EVIL + "row-problem"])
    page = listing._repr_html_()
    assert "<img" not in page
    assert {"backend", "status", "gpus", "owner_kind", "dashboard", "problem"} <= _fields(
        page, "row"
    )
    empty = ClusterList([], problems=[EVIL + "none-problem"])._repr_html_()
    assert "<img" not in empty and "none-problem" in empty
