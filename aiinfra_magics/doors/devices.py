"""``devices [--json]``: the hardware inventory for the magic and the CLI."""

from __future__ import annotations

import argparse
from typing import Any

from .. import devices
from .words import Context


def run_devices(args: argparse.Namespace, ctx: Context) -> Any:
    if args.json:
        return devices.inventory()  # the CLI prints dicts as JSON
    return devices.probe()


def add_devices(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show this machine's GPUs, TPUs, CPU and memory. "
        "GPUs are read through NVML without creating a CUDA context."
    )
    parser.add_argument("--json", action="store_true", help="the inventory as JSON")
    parser.set_defaults(run=run_devices)
