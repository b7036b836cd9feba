"""``--hosts-from file:PATH`` and ``tpu:NAME`` (a stand-in gcloud replays a describe reply),
and an OpenSSH client config honoured on its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.clusters.ssh import target_of
from aiinfra_magics.clusters.ssh_hosts import gcloud_describe, hosts_from
from aiinfra_magics.errors import AiinfraException, InputError, OperationError

DESCRIBE = Path(__file__).parent / "data" / "tpu_vm_describe_v4_16.json"


@pytest.fixture
def gcloud(tmp_path, monkeypatch):
    """A stand-in ``gcloud`` first on PATH: answers the one describe call we expect with the
    reply in data/ (whose ``state`` a test may change), anything else with gcloud's error."""
    folder = tmp_path / "gcloud-bin"
    folder.mkdir()
    reply = tmp_path / "describe.json"
    reply.write_text(DESCRIBE.read_text())
    calls = tmp_path / "gcloud-calls.jsonl"
    script = folder / "gcloud"
    expected = gcloud_describe("slice-a", "us-central2-b", "aiinfra-test")
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"if sys.argv[1:] in ({expected[1:]!r}, {expected[1:-4] + expected[-2:]!r}):\n"
        f"    sys.stdout.write(open({str(reply)!r}).read())\n"
        "else:\n"
        "    sys.stderr.write('ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: '\n"
        "                     'Resource projects/x/locations/y/nodes/z was not found\\n')\n"
        "    sys.exit(1)\n"
    )
    script.chmod(0o700)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    class Gcloud:
        def calls(self) -> list[list[str]]:
            return [json.loads(line) for line in calls.read_text().splitlines()]

        def state(self, state: str) -> None:
            data = json.loads(reply.read_text())
            reply.write_text(json.dumps({**data, "state": state}))

    return Gcloud()


def test_a_tpu_slice_names_its_workers_in_order(gcloud):
    assert hosts_from("tpu:slice-a", "us-central2-b", "aiinfra-test") == ["127.0.0.1", "127.0.0.2"]
    assert gcloud.calls() == [
        [
            "compute", "tpus", "tpu-vm", "describe", "slice-a",
            "--zone", "us-central2-b", "--project", "aiinfra-test", "--format", "json",
        ]
    ]  # fmt: skip


def test_a_tpu_slice_starts_a_cluster_on_its_hosts(gcloud, sshd):
    options = sshd.options(hosts_from="tpu:slice-a", zone="us-central2-b", project="aiinfra-test")
    del options["hosts"]
    manager = ClusterManager()
    started = manager.start(ClusterSpec.from_options({"name": "slice", **options}))
    try:
        assert started.info.workers == 2
        hosts = manager.status("slice").data["ssh_hosts"]
        assert sorted(hosts) == ["127.0.0.1", "127.0.0.2"]
    finally:
        manager.stop("slice")


@pytest.mark.parametrize(
    ("name", "state", "error", "message"),
    [
        ("other", None, OperationError, "hosts-from: gcloud cannot describe TPU other in "
         "us-central2-b: ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND: "),
        ("slice-a", "CREATING", OperationError, "hosts-from: TPU slice-a is CREATING, not READY"),
    ],
)  # fmt: skip
def test_gcloud_refusals_are_one_line(gcloud, name, state, error, message):
    if state:
        gcloud.state(state)
    with pytest.raises(error, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        hosts_from(f"tpu:{name}", "us-central2-b", "aiinfra-test")


def test_without_gcloud_or_zone(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match=r"^hosts-from: tpu: needs the Google Cloud CLI"):
        hosts_from("tpu:slice-a", "us-central2-b")
    with pytest.raises(InputError, match="^zone: required with --hosts-from tpu:NAME"):
        ClusterSpec.from_options({"backend": "ssh", "hosts_from": "tpu:slice-a"})
    with pytest.raises(InputError, match="^zone: only with --hosts-from tpu:NAME"):
        ClusterSpec.from_options({"backend": "ssh", "hosts": "a", "zone": "us-central2-b"})
    with pytest.raises(InputError, match="^hosts-from: give --hosts or --hosts-from, not both"):
        ClusterSpec.from_options({"backend": "ssh", "hosts": "a", "hosts_from": "file:x"})


def test_a_hosts_file_skips_comments_and_blank_lines(tmp_path):
    listed = tmp_path / "hosts.txt"
    listed.write_text("# the lab's boxes\n127.0.0.1\n\n  127.0.0.2   # the second\n")
    spec = ClusterSpec.from_options({"backend": "ssh", "hosts_from": f"file:{listed}"})
    assert target_of(spec).hosts == ("127.0.0.1", "127.0.0.2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "hosts-from: cannot read {path} (No such file or directory)"),
        ("# nothing\n\n", "hosts-from: file:{path} names no host"),
        ("good\nrm -rf /\n", "hosts-from: got 'rm -rf /'"),
    ],
)
def test_a_bad_hosts_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "hosts.txt"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError) as err:
        hosts_from(f"file:{path}")
    assert str(err.value).startswith(message.format(path=path))
    assert err.value.field == "hosts_from"


def test_an_openssh_client_config_alone_reaches_the_hosts(sshd):
    """Port, key, user and known-hosts file all from --ssh-config (asyncssh reads it)."""
    spec = ClusterSpec.from_options(
        {"name": "cfg", "backend": "ssh", "hosts": "127.0.0.2", "ssh_config": str(sshd.config)}
    )
    manager = ClusterManager()
    started = manager.start(spec)
    try:
        assert started.info.workers == 1
        assert started.scheduler_address.startswith("tcp://127.0.0.2:")
    finally:
        manager.stop("cfg")
    # Without it (no port, no key): refused, naming the host.
    bare = ClusterSpec.from_options({"name": "bare", "backend": "ssh", "hosts": "127.0.0.2"})
    with pytest.raises(AiinfraException, match=r"^(hosts|known-hosts|ssh-key): 127\.0\.0\.2:22"):
        manager.start(bare)
