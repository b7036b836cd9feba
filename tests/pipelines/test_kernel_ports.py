"""Issue 10 items 4 and 5: the kernel-port ledger is private and bounded; progress titles escape."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import types

import pytest

from aiinfra_magics.errors import OperationError
from aiinfra_magics.pipelines import kernel_pool
from aiinfra_magics.pipelines.progress import WidgetProgress


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The temp dir the ledger lives under, for this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_ledger_lives_in_a_private_directory(private_tmp):
    ports = kernel_pool.reserve_ports("127.0.0.1", 5)
    assert len(set(ports)) == 5
    folder = private_tmp / f"aiinfra-{os.getuid()}"
    ledger = folder / "kernel-ports.json"
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(ledger).st_mode) == 0o600
    assert sorted(int(p) for p in json.loads(ledger.read_text())) == sorted(ports)
    # A second launch never gets a port the first still holds.
    assert not set(kernel_pool.reserve_ports("127.0.0.1", 5)) & set(ports)


def test_a_link_in_place_of_the_ledger_is_not_followed(private_tmp):
    victim = private_tmp / "victim.txt"
    victim.write_text("precious")
    folder = private_tmp / f"aiinfra-{os.getuid()}"
    folder.mkdir(mode=0o700)
    (folder / "kernel-ports.json").symlink_to(victim)
    with pytest.raises(OperationError, match="cannot open the ledger"):
        kernel_pool.reserve_ports("127.0.0.1", 5)
    assert victim.read_text() == "precious"


def test_a_linked_or_shared_folder_is_refused(private_tmp):
    elsewhere = private_tmp / "elsewhere"
    elsewhere.mkdir()
    (private_tmp / f"aiinfra-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(OperationError, match="not a private directory"):
        kernel_pool.reserve_ports("127.0.0.1", 5)
    assert list(elsewhere.iterdir()) == []


def test_a_ledger_that_holds_every_port_is_an_error_not_a_hang(private_tmp, monkeypatch):
    monkeypatch.setattr(kernel_pool, "MAX_PORT_TRIES", 200)
    folder = private_tmp / f"aiinfra-{os.getuid()}"
    folder.mkdir(mode=0o700)
    forever = 4e9
    (folder / "kernel-ports.json").write_text(json.dumps({p: forever for p in range(1, 65536)}))
    with pytest.raises(OperationError, match="no 5 free ports on 127.0.0.1 in 200 tries"):
        kernel_pool.reserve_ports("127.0.0.1", 5)


def test_progress_title_shows_the_pipeline_name_as_text(tmp_path):
    import ipywidgets  # noqa: F401 - a dependency: missing means a broken install

    shown = []
    run = types.SimpleNamespace(
        data={"pipeline": "<img src=x onerror=alert(1)>"},
        run_id="r<1>",
        steps={},
        folder=tmp_path,
    )
    WidgetProgress(shown.append).begin(run)
    title = shown[0].children[0].value
    assert "<img" not in title and "&lt;img src=x onerror=alert(1)&gt;" in title
    assert "r&lt;1&gt;" in title
