"""Options shared by several commands."""

from __future__ import annotations

import argparse

from ..runtime import DEVICE_CHOICES


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="dataset root (default: $SIGHTSOUND_DATA, else ~/.cache/sightsound)")


def add_device(parser: argparse.ArgumentParser, gpu_alias: bool = False) -> None:
    """``--device auto|cpu|cuda``; with ``gpu_alias`` also the chapter's ``--gpu`` (``yarn train --gpu``)."""
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where to run: auto (CUDA when present), cpu or cuda (default: auto)")
    if gpu_alias:
        parser.add_argument("--gpu", dest="device", action="store_const", const="cuda",
                            help="train on the GPU: the same as --device cuda")


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable runs")


def add_speech_model(parser: argparse.ArgumentParser) -> None:
    """``--model MODEL``: a speech model folder or URL, or a published vocabulary; the shipped model when left out."""
    from ..speech.published import VOCABULARIES

    parser.add_argument("--model", default=None, metavar="MODEL",
                        help=f"speech model: a folder or URL with model.json and metadata.json, or "
                             f"{' or '.join(VOCABULARIES)} (the speech-commands package's published models, "
                             f"downloaded once into the cache; a folder of that name: ./NAME) "
                             f"(default: the model shipped with sightsound)")


def speech_recognizer(args: argparse.Namespace):
    """The recognizer ``--model`` names (see :func:`add_speech_model`), on ``--device``."""
    from .. import speech

    if args.model in speech.VOCABULARIES:
        return speech.create("BROWSER_FFT", args.model, device=args.device)
    return speech.create("BROWSER_FFT", model=args.model, device=args.device)
