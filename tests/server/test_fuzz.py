"""Hypothesis-generated bodies never make the server answer 5xx (a real jupyter server process)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import AiinfraError

CLUSTER_FIELDS = [
    "name", "backend", "workers", "threads", "memory", "gpus", "rmm_pool", "rmm-pool",
    "device_memory_limit", "protocol", "adapt", "address",
]  # fmt: skip
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["local", "cuda", "address", "auto", "0,1", "1:4", "2GB"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)  # fmt: skip
BODIES = st.dictionaries(st.sampled_from(CLUSTER_FIELDS) | st.text(max_size=10), VALUES, max_size=4)
RAW = (
    st.binary(max_size=64)
    | BODIES.map(lambda b: json.dumps(b).encode())
    | VALUES.map(lambda v: json.dumps(v).encode())
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # seeded: the same bodies every run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _would_start(body: dict) -> bool:
    try:
        ClusterSpec.from_options(body)
    except (AiinfraError, TypeError, ValueError):
        return False
    return True


@FUZZ
@given(body=BODIES)
def test_cluster_bodies_never_5xx(live_server, body):
    assume(not _would_start(body))  # valid specs start real clusters: the lifecycle test's job
    code, reply = live_server.request("POST", "aiinfra/api/clusters", json.dumps(body).encode())
    assert code == 400, reply
    assert json.loads(reply)["message"]


@FUZZ
@given(raw=RAW, route=st.sampled_from(
    ["aiinfra/api/clusters/nope", "aiinfra/api/pipelines/runs", "aiinfra/api/clusters"]
))  # fmt: skip
def test_raw_bodies_never_5xx(live_server, raw, route):
    if route == "aiinfra/api/clusters":
        try:
            body = json.loads(raw) if raw.strip() else {}  # an empty body means defaults
        except ValueError:
            body = None
        assume(not (isinstance(body, dict) and _would_start(body)))
    method = "PATCH" if route.endswith("nope") else "POST"
    code, reply = live_server.request(method, route, raw)
    assert 400 <= code < 500, (code, reply)
    assert json.loads(reply)["message"]
