"""The ``sightsound`` command line.

Each command group lives in its own module with a ``register(subparsers)``
function: ``mnist``, ``model`` (summary, export, predict), ``image``,
``speech``, ``serve``, ``experiment``. Errors that sightsound raises on
purpose print one line and exit 2; other failures keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import SightsoundError
from ..runtime import TUNE_HEAP_ENV, resolve_device, tune_cpu_heap

GROUPS = ("mnist", "model", "image", "speech", "serve", "experiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sightsound", description=(
        "Recognise images and sounds with convnets: TF.js-style models trained and run by PyTorch."))
    from ..version import __version__

    parser.add_argument("--version", action="version", version=f"sightsound {__version__}")
    parser.add_argument("--no-heap-tuning", action="store_true",
                        help=f"leave glibc's heap as it is (as {TUNE_HEAP_ENV}=0): uses less memory, but CPU "
                             f"training steps may page-fault and run slower")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_heap_tuning:
        os.environ[TUNE_HEAP_ENV] = "0"  # also for the processes this one starts (distributed training)
    # A command-line run owns its process: tune now, before anything large is allocated, and keep the
    # heap's freed memory for the next step instead of giving it back after each call.
    tune_cpu_heap(keep_memory=True)
    try:
        if getattr(args, "device", None) is not None:
            resolve_device(args.device)  # a missing GPU is reported before any work starts
        code = args.func(args)
    except SightsoundError as err:
        print(f"sightsound: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sightsound: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
