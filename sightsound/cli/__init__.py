"""The ``sightsound`` command line.

Each command group lives in its own module with a ``register(subparsers)``
function: ``mnist``, ``model`` (summary, export, predict), ``image``,
``speech``, ``serve``, ``experiment``. Errors that sightsound raises on
purpose print one line and exit 2; other failures keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import SightsoundError

GROUPS = ("mnist", "model", "image", "speech", "serve", "experiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sightsound", description=(
        "Recognise images and sounds with convnets: TF.js-style models trained and run by PyTorch."))
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"sightsound {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        try:
            module = importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{group}":
                continue  # a group not written yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SightsoundError as err:
        print(f"sightsound: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sightsound: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
