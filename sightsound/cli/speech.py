"""``sightsound speech ...``: spoken-command recognition from the shell.

    sightsound speech synth corpus/ --size full --seed 0
    sightsound speech train corpus/ runs/speech --epochs 25
    sightsound speech evaluate runs/speech corpus/
    sightsound speech recognize clip1.wav clip2.wav                  # the shipped model
    sightsound speech recognize --model runs/speech clip1.wav        # a trained one (or 18w, directional4w)
    sightsound speech spectrogram clip1.wav -o clip1.png
    sightsound speech download            # the real Speech Commands v0.02, into the data dir
    sightsound speech listen --file long.wav   # streaming (cli/speech_listen.py)
    sightsound speech transfer runs/my-words --examples my-examples/   # new words (cli/speech_transfer.py)

``train`` takes the data first (as the chapter's ``yarn train DATA MODEL``);
``evaluate`` takes the model first; ``recognize`` and ``listen`` take
``--model`` (default: the model shipped with sightsound). DATA_DIR is the
dataset folder itself: the one holding the word folders and the two lists.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .. import presets
from ..data.augment import SNR_OVER
from .common import add_data_dir, add_device, add_seed, add_speech_model, speech_recognizer
from .speech_listen import add_listen_command
from .speech_transfer import add_transfer_command


def register(sub) -> None:
    speech = sub.add_parser("speech", help="spoken commands: build data, train, evaluate, recognise, plot",
                            description="The chapter's spoken-command recognizer: browser-FFT spectrograms "
                                        "and the Listing 4.8 convnet.")
    commands = speech.add_subparsers(dest="speech_command", metavar="ACTION", required=True)

    _add_train(commands)
    _add_evaluate(commands)
    _add_recognize(commands)
    _add_spectrogram(commands)
    _add_synth(commands)
    _add_download(commands)
    add_listen_command(commands)  # `speech listen` (streaming recognition) lives in its own module
    add_transfer_command(commands)  # `speech transfer` (new words), likewise


def _speech_recipes() -> list[str]:
    """The recipes that define the speech job's settings (presets.RECIPES)."""
    from ..training.speech import PRESET

    return [name for name, per_preset in presets.RECIPES.items() if PRESET in per_preset]


def _add_train(commands) -> None:
    """``speech train DATA_DIR MODEL_DIR``: train Listing 4.8 (options override the recipe)."""
    train = commands.add_parser(
        "train", help="train Listing 4.8 on a Speech Commands folder",
        description="Train the speech convnet (Listing 4.8) on a Speech Commands folder (real or from "
                    "`speech synth`), validating each epoch, then evaluate on the test split and write the "
                    "TF.js model, metadata.json, history.json, curves.png, confusion.png and "
                    "test_results.json into MODEL_DIR.")
    train.add_argument("data", metavar="DATA_DIR", help="dataset folder (word folders + validation/testing lists)")
    train.add_argument("model", metavar="MODEL_DIR", help="where to write the trained model and reports")
    train.add_argument("--recipe", default="chapter", choices=_speech_recipes(),
                       help="chapter: the book's settings (sgd 0.01, 25 epochs); robust: Adam with a one-cycle "
                            "schedule for 40 epochs, noise mixed into 85 %% of clips at -5 to 30 dB, 20 %% "
                            "_unknown_ and 10 %% noise examples, words cut at window edges, for listening in "
                            "noisy rooms; people: the shipped model's recipe, a batch-normalised convnet "
                            "(speech-bn) with robust's noise and other tempos, vocal tracts, rooms and "
                            "microphones, for voices unlike the corpus's (default: chapter). The options below "
                            "override the recipe's values")
    train.add_argument("--architecture", default=None,
                       choices=[name for name in presets.PRESETS if name.startswith("speech-")],
                       help="the model to train: speech-conv (Listing 4.8) or speech-bn (default: the recipe's; "
                            "people: speech-bn)")
    train.add_argument("--epochs", type=int, default=None, help="training epochs (default: 25; robust: 40)")
    train.add_argument("--batch-size", type=int, default=None, help="batch size (default: 64)")
    train.add_argument("--optimizer", default=None, choices=["sgd", "rmsprop", "adam"],
                       help="optimizer (default: sgd, the chapter's; robust: adam)")
    train.add_argument("--learning-rate", type=float, default=None,
                       help="learning rate (default: 0.01 for the default sgd, else the optimizer's TF.js default; "
                            "robust: 0.002, the peak of its schedule)")
    train.add_argument("--unknown-share", type=float, default=None, metavar="F",
                       help="fraction of each split that is _unknown_ (default 0.05; robust: 0.2)")
    train.add_argument("--noise-share", type=float, default=None, metavar="F",
                       help="fraction of each split that is _background_noise_ (default 0.05; robust: 0.1)")
    train.add_argument("--engine-repeats", default=None, metavar="ENGINE=N[,...]", type=_engine_repeats,
                       help="each epoch hears every clip of these synthesisers N times, freshly augmented each time "
                            "(from the corpus's manifest.jsonl; default: once; people: "
                            + ",".join(f"{engine}={n}" for engine, n in
                                       presets.RECIPES["people"]["speech-conv"]["engine_repeats"].items()) + ")")
    _add_augmentation_options(train)
    train.add_argument("--dtype-policy", default="float32", choices=["float32", "mixed_bfloat16"],
                       help="float32 = TF.js's numerics (default); mixed_bfloat16 = layers in bfloat16, weights "
                            "float32: faster on CPUs with AVX512-BF16/AMX and on recent GPUs")
    train.add_argument("--from", dest="initial_model", default=None, metavar="MODEL_DIR",
                       help="start from this saved speech model (same words) instead of fresh weights: "
                            "fine-tuning")
    add_device(train, gpu_alias=True)
    add_seed(train)
    train.set_defaults(func=run_train)


def _add_augmentation_options(train) -> None:
    """``speech train``'s options that override the recipe's augmentation."""
    train.add_argument("--no-augment", action="store_true", help="train on the clips as they are")
    train.add_argument("--noise-probability", type=float, default=None, metavar="P",
                       help="share of training clips mixed with background noise (default 0.7; robust: 0.85)")
    train.add_argument("--snr", type=float, nargs=2, default=None, metavar=("MIN_DB", "MAX_DB"),
                       help="signal-to-noise range of that mix in dB (default 3 30; robust: -5 30); lower "
                            "makes the model hold up in louder noise")
    train.add_argument("--snr-over", choices=SNR_OVER, default=None,
                       help="what --snr is measured over: the whole 1-s window (default) or the word in it, as a "
                            "listener hears a word against a room's noise")
    train.add_argument("--fragment-probability", type=float, default=None, metavar="P",
                       help="share of training clips cut to a 5-35 %% sliver of their word at a window edge and "
                            "labelled _unknown_, as a streaming window sees a word come and go (default 0; "
                            "robust: 0.1)")
    train.add_argument("--partial-probability", type=float, default=None, metavar="P",
                       help="share of training clips cut to 60-100 %% of their word at a window edge, keeping "
                            "their label (default 0; robust: 0.15)")
    train.add_argument("--running-speech-probability", type=float, default=None, metavar="P",
                       help="share of _unknown_ training clips followed at once by another non-command word, as "
                            "in running speech, still _unknown_ (default 0)")
    train.add_argument("--placement-probability", type=float, default=None, metavar="P",
                       help="share of training clips heard anywhere in the window that keeps their whole word, "
                            "as a streaming recognizer's windows fall (default 0)")


def _add_evaluate(commands) -> None:
    """``speech evaluate MODEL_DIR DATA_DIR``: a saved model on the test split."""
    evaluate = commands.add_parser("evaluate", help="accuracy of a trained model on a dataset's test split",
                                   description="Print loss, accuracy and per-class accuracy of a saved speech "
                                               "model on the test split of a dataset folder.")
    evaluate.add_argument("model", metavar="MODEL_DIR", help="folder with model.json and metadata.json")
    evaluate.add_argument("data", metavar="DATA_DIR", help="dataset folder")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of the _unknown_ sample and noise windows (default 0, as train uses "
                               "without --seed)")
    add_device(evaluate)
    evaluate.set_defaults(func=run_evaluate)


def _add_recognize(commands) -> None:
    """``speech recognize [--model MODEL] WAV...``: the best words of WAV files."""
    recognize = commands.add_parser(
        "recognize", help="recognise the word in WAV files",
        description="Print one line per file: PATH, the best word and its probability, then the next two "
                    "as WORD:PROB, tab-separated. Files longer than one second are scanned in windows "
                    "22 frames apart; the window most confident about anything but background noise is reported.")
    recognize.add_argument("wavs", metavar="WAV", nargs="+", help="WAV files (any rate, bit depth, channels)")
    add_speech_model(recognize)
    add_device(recognize)
    recognize.set_defaults(func=run_recognize)


def _add_spectrogram(commands) -> None:
    """``speech spectrogram WAV``: plot the frames the recognizer sees."""
    spectrogram = commands.add_parser(
        "spectrogram", help="plot a WAV's browser-FFT spectrogram (figure 4.12 style)",
        description="Plot the dB frames the recognizer sees: time across (s), frequency up (Hz, 0-5 kHz), "
                    "darker = more energy.")
    spectrogram.add_argument("wav", metavar="WAV")
    spectrogram.add_argument("-o", "--output", default=None, metavar="PNG", help="output file (default: WAV.png)")
    spectrogram.set_defaults(func=run_spectrogram)


def _add_synth(commands) -> None:
    """``speech synth OUT_DIR``: build the offline corpus."""
    synth = commands.add_parser(
        "synth", help="build an offline speech corpus with espeak-ng (and Kokoro-82M)",
        description="Speak the 18 command words and 17 auxiliary words with many voices into OUT_DIR, in the "
                    "Speech Commands v0.02 layout (validation/testing lists split by speaker; manifest.jsonl "
                    "records each clip's engine, voice and settings). An interrupted build resumes when run "
                    "again with the same arguments.")
    synth.add_argument("out", metavar="OUT_DIR", help="new (or empty) folder for the corpus")
    synth.add_argument("--size", choices=["small", "full"], default="small",
                       help="small: 20 clips per word, seconds; full: 1,100 per word, minutes (default: small)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    synth.add_argument("--engines", default="espeak", metavar="LIST", type=_engines_arg,
                       help='comma-separated engines: espeak, kokoro (Kokoro-82M: pip install "sightsound[voices]"; '
                            "about 0.8 s per clip and core) (default: espeak)")
    synth.add_argument("--sentence-windows", type=_count_arg, default=0, metavar="N",
                       help="with kokoro: every training Kokoro speaker also reads N ordinary sentences, cut into "
                            "one-second _unknown_ windows (default 0: none; see the README for what they cost)")
    synth.add_argument("--max-clips", type=int, default=None, metavar="N",
                       help="render at most N new clips, then stop (run again to resume)")
    synth.add_argument("--force", action="store_true", help="replace OUT_DIR if it is not empty")
    synth.set_defaults(func=run_synth)


def _add_download(commands) -> None:
    """``speech download``: the real Speech Commands v0.02."""
    download = commands.add_parser(
        "download", help="download and extract the real Speech Commands v0.02",
        description="Fetch speech_commands_v0.02.tar.gz (2.3 GB, SHA-256 checked) into <data dir>/speech_commands "
                    "and print that folder.")
    add_data_dir(download)
    download.set_defaults(func=run_download)


def _engine_repeats(text: str) -> dict[str, int]:
    """``kokoro=3,espeak=1`` -> ``{"kokoro": 3, "espeak": 1}``."""
    repeats = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        engine, _, count = part.partition("=")
        if not engine or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: write ENGINE=N with a whole number N >= 1, e.g. kokoro=3")
        repeats[engine.strip()] = int(count)
    return repeats


def run_train(args: argparse.Namespace) -> int:
    from .. import presets
    from ..errors import SightsoundError
    from ..training.speech import PRESET, recipe_augmentation, train_speech

    overrides = {"noise_probability": args.noise_probability, "snr_db": args.snr, "snr_over": args.snr_over,
                 "fragment_probability": args.fragment_probability, "partial_probability": args.partial_probability,
                 "placement_probability": args.placement_probability,
                 "running_speech_probability": args.running_speech_probability}
    augmentation = None
    if not args.no_augment:
        try:
            augmentation = recipe_augmentation(args.recipe, **overrides)
        except ValueError as error:
            raise SightsoundError(str(error)) from error
    elif any(v is not None for v in overrides.values()):
        given = [f"--{name.replace('_db', '').replace('_', '-')}" for name, v in overrides.items() if v is not None]
        raise SightsoundError(f"--no-augment turns augmentation off; drop {'/'.join(given)} or it")
    if args.initial_model is None:
        presets.build(args.architecture or presets.training_defaults(PRESET, args.recipe).get("model", PRESET),
                      device="cpu").summary()
    result = train_speech(args.data, args.model, model=args.architecture, epochs=args.epochs, batch_size=args.batch_size,
                          optimizer=args.optimizer, learning_rate=args.learning_rate, device=args.device,
                          seed=args.seed, augmentation=augmentation, progress=True,
                          initial_model=args.initial_model, dtype_policy=args.dtype_policy, recipe=args.recipe,
                          unknown_share=args.unknown_share, noise_share=args.noise_share,
                          engine_repeats=args.engine_repeats)
    ev = result.evaluation
    print(f"\nExamples: {result.examples['training']} training, {result.examples['validation']} validation, "
          f"{result.examples['testing']} test")
    print(f"\nTest loss = {ev.loss:.4f}; test accuracy = {ev.accuracy:.4f}\n")
    print(ev.table())
    print(f"\nTrained {result.epochs} epochs in {result.seconds:.1f} s. Wrote:")
    for path in result.files:
        print(f"  {path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..training.speech import evaluate_speech

    ev = evaluate_speech(args.model, args.data, device=args.device, seed=args.seed,
                         progress=sys.stderr.isatty())
    print(f"Test loss = {ev.loss:.4f}; test accuracy = {ev.accuracy:.4f}\n")
    print(ev.table())
    return 0


def run_recognize(args: argparse.Namespace) -> int:
    from ..errors import AudioError
    from ..speech.wav import read_wav

    recognizer = speech_recognizer(args)
    failures = 0
    for path in args.wavs:
        try:
            samples, rate = read_wav(path)
        except AudioError as err:
            print(f"sightsound: error: {err}", file=sys.stderr)
            failures += 1
            continue
        print(recognizer.recognize_clip(samples, rate, path=path).line(), flush=True)
    return 2 if failures else 0


def run_spectrogram(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..speech.frontend import plot_spectrogram
    from ..speech.wav import read_wav

    samples, rate = read_wav(args.wav)
    out = args.output or str(Path(args.wav).with_suffix(".png"))
    plot_spectrogram(samples, rate, out, title=Path(args.wav).name)
    print(out)
    return 0


def _engines_arg(text: str) -> tuple[str, ...]:
    from ..data.synth import parse_engines

    try:
        return parse_engines(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count_arg(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count of 0 or more, got {text!r}")
    return int(text)


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synth import SIZES, build_corpus

    size = SIZES[args.size]
    if args.sentence_windows:
        size = dataclasses.replace(size, sentences_per_speaker=args.sentence_windows)
    report = build_corpus(args.out, size=size, seed=args.seed, workers=args.workers, progress=True,
                          overwrite=args.force, engines=args.engines, max_clips=args.max_clips)
    from ..data.speech_commands import TARGET_WORDS

    if not report.complete:
        print(f"Stopped after {report.rendered} new clips ({report.clips} of {sum(report.clips_per_word.values())} "
              f"done); run the same command again to resume.")
        return 0

    targets = [report.clips_per_word.get(w, 0) for w in TARGET_WORDS]
    print(f"Wrote {report.clips} clips ({min(targets)}-{max(targets)} per target word) and "
          f"{len(report.noise_files)} noise files to {report.out_dir} in {report.seconds:.1f} s; speakers: "
          + ", ".join(f"{n} {s}" for s, n in report.speakers.items()))
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..data.speech_commands import ensure_speech_commands

    print(ensure_speech_commands(args.data_dir, progress=True))
    return 0
