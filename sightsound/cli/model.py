"""``sightsound summary`` and ``sightsound export``: look at and convert saved models.

    sightsound summary --model mnist-conv
    sightsound summary runs/conv
    sightsound summary https://example.com/model/model.json --header "Authorization: Bearer abc"
    sightsound export runs/conv --format onnx -o model.onnx
"""

from __future__ import annotations

import argparse

from ..errors import SightsoundError
from .common import add_device


class CommandError(SightsoundError):
    """A command-line argument is unusable (printed as one line, exit code 2)."""


def register(sub) -> None:
    summary = sub.add_parser("summary", help="print the layer table of a preset or a saved model",
                             description="Print the table TF.js's model.summary() prints, for one of the "
                                         "chapter's presets (--model) or a saved TF.js Layers model (a folder, "
                                         "a model.json path, a file:// or http(s):// URL).")
    which = summary.add_mutually_exclusive_group(required=True)
    which.add_argument("source", nargs="?", metavar="DIR_OR_URL", help="a saved model: folder, model.json or URL")
    which.add_argument("--model", metavar="PRESET", help="a preset: mnist-conv, mnist-dense, mnist-enhanced, "
                                                         "speech-conv")
    _add_headers(summary)
    summary.set_defaults(func=run_summary)

    export = sub.add_parser("export", help="convert a saved model to another format (ONNX)",
                            description="Load a saved TF.js Layers model and write it as ONNX: input 'input' "
                                        "(NHWC float32, any batch size), output 'output'.")
    export.add_argument("source", metavar="DIR_OR_URL", help="a saved model: folder, model.json or URL")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="output format (default: onnx)")
    export.add_argument("-o", "--output", default="model.onnx", metavar="FILE",
                        help="where to write (default: model.onnx)")
    _add_headers(export)
    export.set_defaults(func=run_export)


def _add_headers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="extra HTTP request header for URL models (repeatable)")
    add_device(parser)


def _request_options(headers: list[str]) -> dict | None:
    """``["Authorization: Bearer x"]`` -> ``{"headers": {"Authorization": "Bearer x"}}``."""
    if not headers:
        return None
    parsed = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise CommandError(f"--header {header!r}: expected 'Name: value'")
        parsed[name.strip()] = value.strip()
    return {"headers": parsed}


def _load(args: argparse.Namespace):
    from ..tfjs import load_layers_model

    return load_layers_model(args.source, request_options=_request_options(args.header), device=args.device)


def run_summary(args: argparse.Namespace) -> int:
    if args.model:
        from .. import presets

        if args.model not in presets.PRESETS:
            raise CommandError(f"unknown preset {args.model!r}; choose one of {', '.join(presets.PRESETS)}")
        model = presets.build(args.model, device="cpu")
    else:
        model = _load(args)
    model.summary()
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..onnx_export import export_onnx, onnx_names

    model = _load(args)
    path = export_onnx(model, args.output)
    names = onnx_names(model)
    shapes = [s if isinstance(s, list) else [s] for s in (model.input_shape, model.output_shape)]
    inputs, outputs = (", ".join(f"'{n}' [batch,{','.join(map(str, shape))}]" for n, shape in zip(n_, s_))
                       for n_, s_ in zip(names, shapes))
    print(f"Wrote {path} (ONNX; input {inputs}, output {outputs})")
    return 0
