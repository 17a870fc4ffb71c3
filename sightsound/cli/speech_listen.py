"""``sightsound speech listen``: continuous recognition of a long file or the microphone.

    sightsound speech listen --file long.wav                          # the shipped model, as fast as possible
    sightsound speech listen --model runs/speech --file long.wav --realtime   # paced like a live stream
    sightsound speech listen --model 18w --mic --threshold 0.9        # until Ctrl-C

One line per detection, ``TIME_S<TAB>WORD<TAB>PROB``: stream seconds (3
decimals) at the end of the window that heard the word, the word, its
probability (3 decimals). Registered by ``cli/speech.py`` through
:func:`add_listen_command`.
"""

from __future__ import annotations

import argparse
import sys

from .common import add_device, add_speech_model, speech_recognizer

DEFAULT_THRESHOLD = 0.75  #: the chapter's example (the API's default is 0, as TF.js's)


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _overlap(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 1, got {text}")
    return value


def _millis(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_listen_command(speech_subparsers) -> argparse.ArgumentParser:
    """Add ``listen`` to the ``sightsound speech`` sub-command parsers."""
    listen = speech_subparsers.add_parser(
        "listen", help="recognise words continuously in a long WAV or from the microphone",
        description="Stream a long WAV (--file) or the microphone (--mic, needs `pip install "
                    "'sightsound[mic]'`) through the recognizer, as the speech-commands package's listen() "
                    "does, and print one line per detected word: TIME_S<TAB>WORD<TAB>PROB. "
                    "Background noise and _unknown_ are not printed.")
    add_speech_model(listen)
    where = listen.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", metavar="WAV", help="a WAV file (any rate, bit depth, channels)")
    where.add_argument("--mic", action="store_true", help="the default microphone, until Ctrl-C")
    listen.add_argument("--threshold", type=_unit_interval, default=DEFAULT_THRESHOLD, metavar="P",
                        help=f"probabilityThreshold: report words at least this probable "
                             f"(default {DEFAULT_THRESHOLD})")
    listen.add_argument("--overlap", type=_overlap, default=0.5, metavar="F",
                        help="overlapFactor in [0, 1): the recognizer runs every round(43 * (1 - F)) frames "
                             "(default 0.5: about every 0.51 s)")
    listen.add_argument("--suppression", type=_millis, default=0, metavar="MS",
                        help="suppressionTimeMillis: skip recognition this long after a detection (default 0)")
    listen.add_argument("--realtime", action="store_true",
                        help="with --file: replay at the speed of real time instead of as fast as possible")
    add_device(listen)
    listen.set_defaults(func=run_listen)
    return listen


def run_listen(args: argparse.Namespace) -> int:
    from .. import speech

    if args.realtime and not args.file:
        print("sightsound: note: --realtime only applies to --file", file=sys.stderr)
    # the source first: a missing file or microphone is reported before the model is loaded
    source = speech.WavFileSource(args.file, realtime=args.realtime) if args.file else speech.MicrophoneSource()
    recognizer = speech_recognizer(args)

    def show(result) -> None:
        print(f"{result.time:.3f}\t{result.word}\t{result.score:.3f}", flush=True)

    recognizer.listen(show, probability_threshold=args.threshold, overlap_factor=args.overlap,
                      suppression_time_millis=args.suppression, source=source)
    try:
        recognizer.wait()
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`)
        sys.stderr.close()
        return 0
    finally:
        recognizer.stop_listening()
    return 0
