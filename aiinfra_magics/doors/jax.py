"""``jax ...`` and ``spmd ...``: JAX sessions and multi-process SPMD cells."""

from __future__ import annotations

import argparse
import keyword
from pathlib import Path
from typing import Any

from ..errors import AiinfraError, field_error
from .words import Context


def run_jax(args: argparse.Namespace, ctx: Context) -> Any:
    from ..jax.session import start_session
    from ..jax.spec import JaxSessionSpec

    spec = JaxSessionSpec.from_options(
        {
            "platform": args.platform,
            "devices": args.devices,
            "cpu_devices": args.cpu_devices,
            "no_preallocate": args.no_preallocate,
            "mem_fraction": args.mem_fraction,
            "allocator": args.allocator,
            "mesh": args.mesh,
            "force": args.force,
        }
    )
    session = start_session(spec)
    for note in session.notes:
        ctx.say(note)
    if ctx.namespace is not None:  # the magic binds what the session set up
        import jax

        ctx.namespace["jax"] = jax
        ctx.namespace["mesh"] = session.mesh
    return session.to_dict() if ctx.door == "cli" and args.json else session


def run_spmd(args: argparse.Namespace, ctx: Context) -> Any:
    from ..jax.spmd import SpmdOptions, run_cell

    if args.file is not None:
        try:
            code = Path(args.file).read_text()
        except OSError as exc:
            raise AiinfraError(
                f"file: cannot read {args.file} ({exc.strerror})", field="file"
            ) from None
    elif ctx.cell is not None:
        code = ctx.cell
    else:
        raise AiinfraError(
            "spmd: needs code: use the cell magic %%aiinfra spmd or give FILE", field="file"
        )
    options = SpmdOptions.from_options(
        {
            "cluster": args.cluster,
            "processes": args.processes,
            "platform": args.platform,
            "cpu_devices": args.cpu_devices,
            "timeout": args.timeout,
            "join_timeout": args.join_timeout,
        }
    )
    out = args.out
    if out is not None and (not out.isidentifier() or keyword.iskeyword(out)):
        raise field_error("out", out, "a Python variable name")
    if out is not None and ctx.namespace is None:
        raise AiinfraError("out: only in a notebook (%%aiinfra spmd --out NAME)", field="out")
    hidden = getattr(ctx.shell, "user_ns_hidden", ())
    values = run_cell(code, options, say=ctx.say, namespace=ctx.namespace, hidden=hidden)
    if out is not None:  # one value per process, by process id
        ctx.namespace[out] = values
        return None
    return None if all(v is None for v in values) else values


def add_jax(jax: argparse.ArgumentParser) -> None:
    jax.description = (
        "Apply JAX settings before the backend starts, start it, and bind `jax` "
        "and `mesh` in the notebook. Repeating the same settings shows the session."
    )
    jax.add_argument("--platform", metavar="cpu|gpu|tpu", help="backend (default: JAX's choice)")
    jax.add_argument("--devices", metavar="0,1", help="GPU indices JAX may use")
    jax.add_argument("--cpu-devices", metavar="N", help="number of CPU devices (platform cpu)")
    jax.add_argument(
        "--no-preallocate", action="store_true", help="do not reserve GPU memory up front"
    )
    jax.add_argument(
        "--mem-fraction", metavar="F", help="fraction of GPU memory to preallocate, (0, 1]"
    )
    jax.add_argument("--allocator", metavar="NAME", help="default|platform|bfc|cuda_async|vmm")
    jax.add_argument("--mesh", metavar="data=4,model=2", help="named mesh axes over all devices")
    jax.add_argument(
        "--force", action="store_true", help="use GPUs held by this kernel's Dask cluster"
    )
    jax.add_argument("--json", action="store_true", help="(CLI) print the session as JSON")
    jax.set_defaults(run=run_jax)


def add_spmd(spmd: argparse.ArgumentParser) -> None:
    spmd.description = (
        "Run the cell (or FILE) on every worker of a Dask cluster as one "
        "multi-process JAX program; returns the last expression of each process, by process id."
    )
    where = spmd.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="NAME", help="a cluster from `cluster list`")
    where.add_argument("--processes", metavar="N", help="a temporary local cluster of N processes")
    spmd.add_argument(
        "--platform",
        metavar="auto|cpu|gpu|tpu",
        help="default auto: tpu on a TPU slice, gpu where every worker has one, else cpu",
    )
    spmd.add_argument(
        "--cpu-devices", metavar="N", help="CPU devices per process (platform cpu), default 1"
    )
    spmd.add_argument("--timeout", metavar="S", help="seconds before every process is stopped")
    spmd.add_argument(
        "--join-timeout",
        metavar="S",
        help="seconds every process has to check in before JAX joins them (default 60); "
        "those that did not are named and every process is stopped",
    )
    spmd.add_argument(
        "--out", metavar="NAME", help="bind the per-process results (a list, by process id) to NAME"
    )
    spmd.add_argument("file", nargs="?", help="(CLI) a Python file to run instead of a cell")
    spmd.set_defaults(run=run_spmd)
