"""Every bad input gives one line that names the field and what is allowed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import AiinfraError

# (magic line, substring the message must contain)
BAD_LINES = [
    ("cluster start --backend nope", "backend: got 'nope'; allowed: auto | local"),
    ("cluster start --workers 0", "workers: got 0; allowed: an integer >= 1"),
    ("cluster start --workers two", "workers: got 'two'; allowed: an integer >= 1"),
    ("cluster start --threads -1", "threads: got -1; allowed: an integer >= 1"),
    ("cluster start --adapt 5:2", "adapt: got '5:2'; allowed: MIN:MAX with 0 <= MIN <= MAX"),
    ("cluster start --adapt 5", "adapt: got '5'; allowed: MIN:MAX"),
    ("cluster start --adapt a:b", "adapt: got 'a:b'; allowed: MIN:MAX"),
    ("cluster start --memory lots", "memory: got 'lots'; allowed: a size like 4GB"),
    ("cluster start --memory 1.5", "memory: got '1.5'; allowed: a size like 4GB"),
    ("cluster start --gpus 0", "gpus: got '0'; allowed: all | N"),
    ("cluster start --gpus 0,x", "gpus: got '0,x'; allowed: all | N"),
    ("cluster start --gpus 1,1", "gpus: got '1,1'; allowed: each GPU at most once"),
    ("cluster start --backend local --gpus 2", "gpus: only allowed with --backend cuda"),
    ("cluster start --protocol smoke", "protocol: got 'smoke'; allowed: tcp | ucx"),
    ("cluster start --backend cuda", "backend: cuda needs an NVIDIA GPU"),
    ("cluster start --gpus all", "gpus: needs the cuda backend, which is unavailable here"),
    ("cluster start --backend address", "address: required with --backend address"),
    (
        "cluster start --backend address --address nowhere",
        "address: got 'nowhere'; allowed: a scheduler URL",
    ),
    (
        "cluster start --backend address --address tcp://127.0.0.1:9",
        "address: no Dask scheduler answers at tcp://127.0.0.1:9",
    ),
    ("cluster start --address tcp://127.0.0.1:9", "address: only allowed with --backend address"),
    (
        "cluster start --backend address --address tcp://127.0.0.1:9 --workers 2",
        "workers: not allowed with --backend address",
    ),
    ("cluster start Bad/Name", "name: got 'Bad/Name'; allowed: 1-63 characters"),
    ("cluster start --rmm-pool huge", "rmm-pool: got 'huge'; allowed: a size"),
    (
        "cluster start --client-var 1x --backend local",
        "client-var: got '1x'; allowed: a Python identifier",
    ),
    ("cluster status ghost", "name: no cluster named 'ghost'"),
    ("cluster scale ghost 2", "name: no cluster named 'ghost'"),
    ("cluster scale ghost -1", "n: got -1; allowed: an integer >= 0"),
    ("cluster adapt ghost 3 1", "adapt: got '3:1'; allowed: MIN:MAX with 0 <= MIN <= MAX"),
    ("cluster adapt ghost 1 3", "name: no cluster named 'ghost'"),
    ("cluster adapt ghost x 1", "adapt: got 'x'; allowed: an integer >= 0"),
    ("cluster stop ghost", "name: no cluster named 'ghost'"),
    ("cluster stop", "name: required (or --all)"),
    ("cluster connect ghost", "name: no cluster named 'ghost'"),
    ("cluster frobnicate", "invalid choice: 'frobnicate'"),
    ("nonsense", "invalid choice: 'nonsense'"),
]


@pytest.mark.parametrize(("line", "expected"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_magic_bad_input_is_one_line_usage_error(ip, line, expected):
    with pytest.raises(UsageError) as err:
        ip.run_line_magic("aiinfra", line)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message.strip()


def test_bad_input_leaves_no_record_and_no_process(ip, aiinfra_home):
    with pytest.raises(UsageError):
        ip.run_line_magic(
            "aiinfra", "cluster start half --backend address --address tcp://127.0.0.1:9"
        )
    assert list((aiinfra_home / "clusters").glob("*.json")) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cluster", "start", "--workers", "0"], "workers: got 0"),
        (["cluster", "start", "--adapt", "5:2"], "adapt: got '5:2'"),
        (["cluster", "stop", "ghost"], "name: no cluster named 'ghost'"),
        (["cluster", "start", "--backend", "cuda"], "backend: cuda needs an NVIDIA GPU"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, expected):
    proc = subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"workers": True}, "workers"),
        ({"bogus": 1}, "bogus"),
        ({"adapt": {"minimum": 3, "maximum": 1}}, "adapt"),
        ({"name": 7}, "name"),
        ({"gpus": ["0", "0"]}, "gpus"),
    ],
)
def test_spec_from_json_names_the_field(options, field):
    with pytest.raises(AiinfraError) as err:
        ClusterSpec.from_options(options)
    assert err.value.field == field
    assert str(err.value).startswith(field)


def test_spec_round_trips_through_dict():
    spec = ClusterSpec.from_options(
        {"name": "a", "backend": "local", "workers": "3", "adapt": "1:4", "memory": "2GB"}
    )
    assert spec.workers == 3 and spec.adapt == (1, 4)
    assert ClusterSpec.from_options(spec.to_dict()) == spec
