"""``sightsound speech transfer``: teach a speech model new words from a few examples.

    sightsound speech transfer runs/my-words --examples my-examples/       # a folder per word of WAVs
    sightsound speech transfer runs/my-words --examples dataset.bin        # saved by the JS package's demo
    sightsound speech transfer runs/my-words --examples my-examples/ --model runs/speech --epochs 80

The examples: ``DIR/<word>/*.wav`` (``_background_noise_/`` for room noise,
each file as long as it is), or a ``.bin`` dataset in the speech-commands
package's format. Writes into OUT_DIR the model (``model.json``, weights,
``metadata.json``: loadable by ``speech.create`` and by the package's
``create('BROWSER_FFT', undefined, modelURL, metadataURL)``), ``examples.bin``,
``history.json`` and ``curves.png``, and prints the accuracy per word (on the
validation windows, or on the training windows without ``--validation-split``).
Unlike the package, it also teaches examples of ordinary speech as
``_unknown_`` (the ones shipped beside sightsound's model, or ``--other-speech
FILE``), so that the new model stays quiet when people talk about other
things; ``--no-other-speech`` trains on your examples alone.
Registered by ``cli/speech.py`` through :func:`add_transfer_command`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..speech.model_files import UNKNOWN_TAG
from .common import add_device, add_seed, add_speech_model, speech_recognizer

DEFAULT_EPOCHS = 50  #: more than the package's 20: its sgd learns slowly, the CLI uses adam by default
DEFAULT_OPTIMIZER = "adam"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be > 0 and < 1, got {text}")
    return value


def add_transfer_command(commands) -> None:
    """Add ``transfer`` to the ``speech`` sub-commands."""
    transfer = commands.add_parser(
        "transfer", help="teach a speech model new words from a few examples (transfer learning)",
        description="A new softmax head on the base model's second-last dense layer (frozen), trained on your "
                    "examples, as the speech-commands package's createTransfer.")
    transfer.add_argument("out", metavar="OUT_DIR", help="folder for the new model, its examples and curves")
    transfer.add_argument("--examples", required=True, metavar="DIR_OR_BIN",
                          help="a folder with a folder of WAVs per word (and _background_noise_), or a .bin dataset")
    add_speech_model(transfer)
    transfer.add_argument("--name", default=None, help="the model's name in metadata.json (default: OUT_DIR's name)")
    transfer.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"(default {DEFAULT_EPOCHS})")
    transfer.add_argument("--batch-size", type=int, default=32, help="(default 32)")
    transfer.add_argument("--validation-split", type=_fraction, default=None,
                          help="fraction of each word's windows kept for validation (default: none)")
    transfer.add_argument("--fine-tuning-epochs", type=int, default=None,
                          help="then train the second-last dense layer too, for this many epochs")
    transfer.add_argument("--optimizer", default=DEFAULT_OPTIMIZER,
                          help=f"(default {DEFAULT_OPTIMIZER}; the package's default is sgd)")
    transfer.add_argument("--augment-by-mixing-noise-ratio", type=float, default=None, metavar="RATIO",
                          help="add every word window mixed with background noise at this ratio")
    transfer.add_argument("--window-hop-ratio", type=_fraction, default=None,
                          help="hop between training windows of long examples, in windows (default 0.25)")
    other = transfer.add_mutually_exclusive_group()
    other.add_argument("--other-speech", default=None, metavar="BIN",
                       help="examples of other speech, all labelled _unknown_, in the package's .bin format "
                            "(default: the ones shipped beside sightsound's model)")
    other.add_argument("--no-other-speech", action="store_true",
                       help="teach your examples only, as the package does")
    add_seed(transfer)
    add_device(transfer)
    transfer.set_defaults(func=run_transfer)


def run_transfer(args: argparse.Namespace) -> int:
    from ..errors import DataError, SightsoundError

    source = Path(args.examples)
    if not source.exists():
        raise DataError(f"--examples {source}: no such folder or file")
    try:
        return _transfer(args, source)
    except ValueError as err:  # the API's checks of the options and examples, said as the package says them
        raise SightsoundError(str(err)) from None


def _other_speech(args: argparse.Namespace):
    """The other-speech examples to teach: ``--other-speech``'s, the shipped ones, or None."""
    from ..errors import DataError
    from ..speech.dataset import Dataset
    from ..speech.transfer import shipped_other_speech

    if args.no_other_speech:
        return None
    if args.other_speech is None:
        return shipped_other_speech()
    path = Path(args.other_speech)
    if not path.is_file():
        raise DataError(f"--other-speech {path}: no such file")
    return Dataset.from_bytes(path.read_bytes(), str(path))


def _transfer(args: argparse.Namespace, source: Path) -> int:
    from ..engine.callbacks import concat_histories
    from ..fileio import write_json_atomic
    from ..plots import plot_curves

    out = Path(args.out)
    name = args.name or out.resolve().name
    t = speech_recognizer(args).create_transfer(name if len(name) > 1 else "transfer")
    if source.is_dir():
        t.collect_folder(source)
    else:
        t.load_examples(source.read_bytes(), where=str(source))
    print("Examples: " + ", ".join(f"{word} {n}" for word, n in t.count_examples().items()))
    other_speech = _other_speech(args)
    if other_speech is not None:
        print(f"Other speech: {len(other_speech.examples)} examples, taught as {UNKNOWN_TAG}")
    result = t.train(epochs=args.epochs, batch_size=args.batch_size, validation_split=args.validation_split,
                     fine_tuning_epochs=args.fine_tuning_epochs, optimizer=args.optimizer,
                     fine_tuning_optimizer=args.optimizer,
                     augment_by_mixing_noise_ratio=args.augment_by_mixing_noise_ratio,
                     window_hop_ratio=args.window_hop_ratio, seed=args.seed, other_speech=other_speech)
    histories = result if isinstance(result, list) else [result]
    t.save(out)
    (out / "examples.bin").write_bytes(t.serialize_examples())
    history = concat_histories(*(h.to_json() for h in histories))
    write_json_atomic(out / "history.json", history)
    plot_curves(history, out / "curves.png", title=f"transfer: {', '.join(t.word_labels())}")
    xs, ys = t.validation_data if t.validation_data is not None \
        else t.training_data(args.window_hop_ratio, other_speech=other_speech)
    which = "validation" if t.validation_data is not None else "training"
    print(f"\nAccuracy per word ({which} windows):")
    for word, acc in t.word_accuracy(xs, ys).items():
        print(f"  {word:<24} {'-' if acc is None else f'{acc:.3f}'}")
    print(f"\nWrote {out}: model.json, weights, metadata.json, examples.bin, history.json, curves.png")
    return 0
