"""The start dialog's placeholders say what Start does: each backend's ``defaults``, and ``auto``.

``GET aiinfra/api/backends`` carries what the common fields come to when left out, and
the backend ``auto`` picks here; a real cluster started with neither count given has
exactly the workers and threads the local backend declared (issue 29 item 9).
"""

from __future__ import annotations


def test_left_out_counts_start_what_the_declaration_says(run, api):
    code, body = run(api("GET", "backends"))
    assert code == 200, body
    backends = {b["name"]: b for b in body["backends"]}
    assert body["auto"] == ("cuda" if backends["cuda"]["usable"] else "local")
    declared = backends["local"]["defaults"]
    assert declared["workers"] >= 1 and declared["threads"] >= 1
    assert backends["address"]["defaults"] == {}  # nothing it could tell
    if not backends["cuda"]["usable"]:
        assert backends["cuda"]["defaults"] == {}

    code, started = run(api("POST", "clusters", body={"name": "dflt", "backend": "local"}))
    assert code == 201, started
    try:
        assert started["workers"] == declared["workers"]
        assert started["threads"] == declared["workers"] * declared["threads"]  # in all
    finally:
        code, stopped = run(api("DELETE", "clusters", "dflt"))
    assert code == 200, stopped
