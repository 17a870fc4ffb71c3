"""``sightsound experiment NAME``: the chapter's exercises, answered by measurement."""

from __future__ import annotations

import argparse

from .common import add_data_dir, add_device


def register(sub) -> None:
    from ..training.experiments import EXPERIMENTS

    parser = sub.add_parser("experiment", help="run one of the chapter's exercises on real MNIST",
                            description="Train each variant --repeats times with different seeds; print and write "
                                        "a table (Markdown + JSON), curves.png, and the answer derived from the "
                                        "numbers. 'all' runs every experiment (an hour or more on 2 cores).")
    parser.add_argument("name", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--epochs", type=int, default=None, help="default: the chapter's epochs for each model")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant with seeds 0..R-1 (default 3)")
    parser.add_argument("--out", default="runs/experiments", metavar="DIR", help="output dir (default runs/experiments)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    add_data_dir(parser)
    add_device(parser)
    parser.set_defaults(func=run_experiment)


def run_experiment(args: argparse.Namespace) -> int:
    from ..data import mnist
    from ..training import experiments

    names = list(experiments.EXPERIMENTS) if args.name == "all" else [args.name]
    data = mnist.load_mnist(args.data_dir)
    for name in names:
        results = experiments.run(name, epochs=args.epochs, repeats=args.repeats, data=data, device=args.device,
                                  train_limit=args.train_limit, test_limit=args.test_limit, progress=True)
        markdown, curves = experiments.report(name, results, args.out)
        print(markdown)
        print(f"wrote {curves.parent}/report.md, report.json, {curves.name}\n")
    return 0
