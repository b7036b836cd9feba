"""Papermill parity: the same notebooks through the ``papermill`` CLI and ``aiinfra
pipeline run`` give the same executed notebooks, cell by cell (real kernels).

The cases are those papermill's own tests cover: a parameterised notebook (with
papermill's -p typing, -r and -y), one without a parameters cell, an error in the
first cell and in a later one, sys.exit(0) and sys.exit(1), a failing line magic, a
cell that outlives its execution timeout, and a notebook without a kernelspec.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

PAPERMILL = [sys.executable, "-m", "papermill", "--no-progress-bar", "--log-level", "ERROR"]
AIINFRA = [sys.executable, "-m", "aiinfra_magics"]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

PARAMS = "a = 0\nb = 0.0\nc = 'c'\nd = 'd'\ne = 0.0\nf = 'f'\ng = 'g'\nh = 'h'\nmsg = None"
# name: (cells as (source, tags), papermill args, execution_timeout, has kernelspec)
CASES = {
    "simple": (
        [
            (PARAMS, ["parameters"]),
            ("import os\nprint(msg, os.path.basename(os.getcwd()))", []),
            (
                "{k: (type(v).__name__, v) for k, v in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h).items()}",
                [],
            ),
        ],
        [
            "-p",
            "a",
            "010",
            "-p",
            "b",
            "1e3",
            "-p",
            "c",
            "None",
            "-p",
            "d",
            "2019-01-01",
            "-p",
            "e",
            "nan",
            "-p",
            "f",
            "[1, 2]",
            "-r",
            "g",
            "True",
            "-y",
            "h: 2019-01-01",
            "-p",
            "msg",
            "hello",
        ],
        None,
        True,
    ),
    "noparams": ([("msg = None", []), ("print(msg)", [])], ["-p", "msg", "hi"], None, True),
    "plain": ([("x = 1", []), ("print(x + 1)", [])], [], None, True),
    "error_first": (
        [("raise ValueError('in the first cell')", []), ("print('never')", [])],
        [],
        None,
        True,
    ),
    "error_later": (
        [("x = 1", []), ("print(x)", []), ("raise KeyError('later')", []), ("print('never')", [])],
        [],
        None,
        True,
    ),
    "exit0": ([("import sys", []), ("sys.exit(0)", []), ("print('never')", [])], [], None, True),
    "exit1": ([("import sys", []), ("sys.exit(1)", []), ("print('never')", [])], [], None, True),
    "magic": ([("%undefined-line-magic", []), ("print('never')", [])], [], None, True),
    "timeout": (
        [("x = 1", []), ("import time\ntime.sleep(600)", []), ("print('never')", [])],
        [],
        10,
        True,
    ),
    "nokernel": ([("print(1)", [])], [], None, False),
}


def _write(path: Path, cells: list[tuple[str, list[str]]], kernelspec: bool) -> None:
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    if kernelspec:
        nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, str(path))


def _aiinfra_args(name: str, args: list[str]) -> list[str]:
    """papermill's ``-p K V`` as ``-p STEP.K=V`` (same typing), ``-r`` alike, ``-y`` prefixed."""
    out, i = [], 0
    while i < len(args):
        flag = args[i]
        if flag in ("-p", "-r"):
            out += [flag, f"{name}.{args[i + 1]}={args[i + 2]}"]
            i += 3
        else:  # -y
            key, _, value = args[i + 1].partition(": ")
            out += [flag, f"{name}.{key}: {value}"]
            i += 2
    return out


TRACEBACK_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py|ipykernel_\d+")


def _norm_output(output: dict) -> dict:
    out = {k: v for k, v in output.items() if k != "metadata"}
    if "traceback" in out:
        out["traceback"] = [TRACEBACK_FILE.sub("<file>", line) for line in out["traceback"]]
    return out


def _cells(nb: nbformat.NotebookNode) -> list[dict]:
    rows = []
    for cell in nb.cells:
        # After a cell timeout nbclient's shutdown interrupts, then kills the kernel at once:
        # whether the interrupt's KeyboardInterrupt reaches the saved notebook is a race in
        # papermill itself, so that one output is left out on both sides.
        outputs = [o for o in cell.get("outputs", []) if o.get("ename") != "KeyboardInterrupt"]
        pm = cell.metadata.get("papermill", {})
        rows.append(
            {
                "type": cell.cell_type,
                "source": cell.source,
                "tags": cell.metadata.get("tags"),
                "jupyter": cell.metadata.get("jupyter"),
                "status": pm.get("status"),
                "exception": pm.get("exception"),
                "count": cell.get("execution_count"),
                "outputs": [_norm_output(o) for o in outputs],
            }
        )
    return rows


def _meta(nb: nbformat.NotebookNode) -> dict:
    pm = nb.metadata.get("papermill", {})
    keep = ("parameters", "default_parameters", "exception", "environment_variables", "version")
    return {
        "keys": sorted(nb.metadata),
        "papermill_keys": sorted(pm),
        "papermill": {k: pm.get(k) for k in keep},
        "kernelspec": nb.metadata.get("kernelspec"),
        "language": nb.metadata.get("language_info", {}).get("name"),
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Run every case through papermill (one process each) and one aiinfra pipeline."""
    folder = tmp_path_factory.mktemp("parity")
    steps, pm_runs = {}, []
    (folder / "papermill").mkdir()
    for name, (cells, args, timeout, kernelspec) in CASES.items():
        _write(folder / f"{name}.ipynb", cells, kernelspec)
        if name == "nokernel":
            continue  # run on its own below: aiinfra refuses the whole pipeline, as papermill does
        steps[name] = {"notebook": f"{name}.ipynb", "retries": 0}
        cmd = [*PAPERMILL, f"{name}.ipynb", f"papermill/{name}.ipynb", *args, "--cwd", str(folder)]
        if timeout:
            steps[name]["execution_timeout"] = timeout
            cmd += ["--execution-timeout", str(timeout)]
        pm_runs.append(cmd)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({"name": "parity", "steps": steps}))
    ours = [*AIINFRA, "pipeline", "run", "pipeline.yaml", "--workers", "2"]
    for name, (_, args, _, _) in CASES.items():
        if name != "nokernel":
            ours += _aiinfra_args(name, args)

    def run(cmd):
        return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)

    with ThreadPoolExecutor(max_workers=2) as pool:
        pm_results = dict(zip([c[len(PAPERMILL)] for c in pm_runs], pool.map(run, pm_runs)))
    aiinfra = run(ours)
    runs = sorted((folder / "runs").glob("2*/run.json"))
    return folder, pm_results, aiinfra, runs[-1].parent


def _pair(both, name):
    folder, pm_results, _, run_dir = both
    ours = nbformat.read(str(run_dir / f"{name}.ipynb"), as_version=4)
    theirs = nbformat.read(str(folder / "papermill" / f"{name}.ipynb"), as_version=4)
    return ours, theirs, pm_results[f"{name}.ipynb"]


@pytest.mark.parametrize("name", [n for n in CASES if n != "nokernel"])
def test_executed_notebooks_agree_cell_by_cell(both, name):
    ours, theirs, pm = _pair(both, name)
    assert _cells(ours) == _cells(theirs)
    assert _meta(ours) == _meta(theirs)
    failed = name not in ("simple", "noparams", "plain", "exit0")
    assert (pm.returncode != 0) == failed, pm.stderr[-2000:]
    step = yaml.safe_load((both[3] / "run.json").read_text())["steps"][name]
    assert step["status"] == ("failed" if failed else "ok"), step


def test_papermill_typing_and_injection(both):
    ours, _, _ = _pair(both, "simple")
    injected = ours.cells[1]
    assert injected.metadata["tags"] == ["injected-parameters"]
    # -p: 010 -> 10, 1e3 -> 1000.0, None -> None, a date stays a string, nan a float,
    # a list a string; -r keeps 'True' a string; -y keeps a date a string.
    # papermill's order: -y, then -p, then -r.
    assert injected.source == (
        '# Parameters\nh = "2019-01-01"\na = 10\nb = 1000.0\nc = None\nd = "2019-01-01"\n'
        'e = float(\'nan\')\nf = "[1, 2]"\nmsg = "hello"\ng = "True"\n'
    )
    assert ours.cells[2].outputs[0]["text"].startswith("hello ")  # ran in the pipeline folder
    plain, _, _ = _pair(both, "plain")
    assert all("injected-parameters" not in c.metadata.get("tags", []) for c in plain.cells)
    assert [c.execution_count for c in plain.cells] == [1, 2]


def test_a_notebook_without_kernelspec_fails_as_papermill_does(both):
    folder = both[0]
    pm = subprocess.run(
        [*PAPERMILL, "nokernel.ipynb", "papermill/nokernel.ipynb"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pm.returncode != 0 and "No kernel name found" in pm.stderr
    spec = folder / "nokernel.yaml"
    spec.write_text(yaml.safe_dump({"steps": {"nokernel": {"notebook": "nokernel.ipynb"}}}))
    ours = subprocess.run(
        [*AIINFRA, "pipeline", "run", str(spec)], cwd=folder, capture_output=True, text=True
    )
    assert ours.returncode == 2
    assert "steps.nokernel.kernel: nokernel.ipynb has no kernelspec" in ours.stderr
    assert "-k NAME" in ours.stderr
    assert not (folder / "papermill" / "nokernel.ipynb").exists()
    # -k supplies it, as papermill's -k does.
    ours = subprocess.run(
        [*AIINFRA, "pipeline", "run", str(spec), "-k", "python3"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ours.returncode == 0, ours.stderr[-2000:]


def test_papermill_options_per_step_and_outputs_to_fsspec_urls(tmp_path, notebook, pipeline_file):
    """cwd, report_mode, log_output, progress saving while a step runs, memory:// and file://."""
    import threading
    import time

    import fsspec

    from aiinfra_magics.pipelines.progress import NoProgress
    from aiinfra_magics.pipelines.runner import run_pipeline

    (tmp_path / "work").mkdir()
    notebook(
        tmp_path / "where.ipynb", "x = 0", "import os\nprint('cwd', os.path.basename(os.getcwd()))"
    )
    notebook(
        tmp_path / "slow.ipynb",
        "x = 0",
        "print('first cell done')",
        "import os, time\nwhile not os.path.exists('../go'):\n    time.sleep(0.1)",
    )
    path = pipeline_file(
        tmp_path,
        {
            "output": "memory://aiinfra-test/notebooks",
            "steps": {
                "where": {"notebook": "where.ipynb", "cwd": "work", "report_mode": True},
                "slow": {"notebook": "slow.ipynb", "cwd": "work", "autosave_cell_every": 1},
            },
        },
    )

    class Lines(NoProgress):
        lines: list = []

        def output(self, run, name, text, stream="stdout"):
            self.lines.append((name, text))

    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "run", run_pipeline(path, workers=2, log_output=True, progress=Lines())
        )
    )
    thread.start()
    fs = fsspec.filesystem("memory")
    try:
        # The running step's notebook is saved as it goes: its first cell can be read now.
        deadline = time.monotonic() + 300
        while True:
            found = fs.glob("/aiinfra-test/notebooks/*/slow.ipynb")
            if found and "first cell done" in fs.cat(found[0]).decode():
                break
            assert time.monotonic() < deadline, "no saved progress"
            time.sleep(0.2)
    finally:
        (tmp_path / "go").touch()
        thread.join(timeout=600)
    run = result["run"]
    assert run.status == "ok", run.summary()
    assert run.steps["where"]["notebook"].startswith("memory://aiinfra-test/notebooks/")
    nb = nbformat.reads(
        fs.cat(run.steps["where"]["notebook"].replace("memory://", "/")).decode(), 4
    )
    assert nb.cells[-1].outputs[0]["text"] == "cwd work\n"  # the step's cwd
    assert all(
        c.metadata.get("jupyter", {}).get("source_hidden")
        for c in nb.cells
        if c.cell_type == "code"
    )
    assert ("where", "cwd work\n") in Lines.lines  # log_output streamed to the progress view
    # A file:// URL goes through the same papermill registry.
    url = (tmp_path / "elsewhere").as_uri()
    run = run_pipeline(path, workers=1, output=url, force=True, only="where")
    assert run.steps["where"]["notebook"].startswith(url)
    assert list((tmp_path / "elsewhere").glob("*/where.ipynb"))
