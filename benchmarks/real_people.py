"""Real people: a speech model on recordings of people that ship inside a PyPI package.

No recorded speech corpus is reachable from the machines sightsound is built
on, but PyPI is, and the source distribution of pocketsphinx 5.1.1 (CMU
Sphinx's recogniser) holds its test recordings with their transcripts:

- ``cards/001``-``005``: a person naming playing cards ("four queen of clubs",
  "five five", "eight of spades four of clubs seven of hearts"), 7 command
  words in running speech;
- ``tidigits/dhd.2934z``: a TIDIGITS speaker saying "two nine three four zero";
- ``goforward``: "go forward ten meters";
- ``librivox/*``: five sentences of a LibriVox reader (Sense and Sensibility),
  ordinary speech.

None of it is used for training or for choosing a recipe. Each recording,
with a second of near-silence before and after, goes through
``Recognizer.listen`` (threshold 0.75, overlap 0.5, as the other speech
benchmarks); a reported word is right when the transcript holds that command
word (each occurrence counts once), otherwise it is a false alarm. The
figures are small counts (13 command words, 3 speakers): they show
direction, not a rate to two decimals.

The tarball (34 MB) is downloaded once into ``$SIGHTSOUND_CACHE/real-speech``
and checked by SHA-256; ``--source`` names a copy instead::

    python benchmarks/real_people.py                       # the shipped model
    python benchmarks/real_people.py --model runs/speech --json people.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming  # noqa: E402  (listen_to)

from sightsound import audio, speech  # noqa: E402
from sightsound.data import speech_commands as sc  # noqa: E402
from sightsound.data.download import download_file  # noqa: E402
from sightsound.paths import cache_dir  # noqa: E402

SOURCE = "pocketsphinx-5.1.1.tar.gz"
URL = ("https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/"
       + SOURCE)
SHA256 = "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"
DATA = "pocketsphinx-5.1.1/test/data/"
RATE = 16000  # every recording used here (the .raw files are 16-bit little-endian mono at this rate)
#: what goforward.raw says, as pocketsphinx's own tests assert (test/unit/test_jsgf.c)
GOFORWARD = "go forward ten meters"
DIGIT_LETTERS = {"z": "zero", "o": "oh", **{str(i): w for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))}}


def fetch_source(source: str | None) -> Path:
    """The pocketsphinx tarball: ``source``, or the cached download (fetched once, SHA-256 checked)."""
    if source:
        return Path(source)
    folder = cache_dir() / "real-speech"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SOURCE
    if not path.is_file():
        download_file([URL], path, SHA256)
    return path


def recordings(tarball: Path) -> list[dict]:
    """Every recording used, as {name, group, transcript, samples (float32, 16 kHz)}, read from the tarball."""
    out = []
    with tarfile.open(tarball) as tar:
        def read(name: str) -> bytes:
            return tar.extractfile(DATA + name).read()

        def wav(name: str) -> np.ndarray:
            samples, rate = audio.read_wav(read(name))
            if rate != RATE:
                raise SystemExit(f"{name}: {rate} Hz, expected {RATE}")
            return samples.astype(np.float32)

        def raw(name: str) -> np.ndarray:
            return np.frombuffer(read(name), dtype="<i2").astype(np.float32) / 32768

        for line in read("cards/cards.transcription").decode().splitlines():
            match = re.match(r"\s*<s>(.*)</s>\s*\((\d+)\)", line)
            if match:
                out.append({"name": f"cards/{match[2]}", "group": "cards", "transcript": match[1].strip(),
                            "samples": wav(f"cards/{match[2]}.wav")})
        digits = "2934z"
        out.append({"name": f"tidigits/dhd.{digits}", "group": "tidigits",
                    "transcript": " ".join(DIGIT_LETTERS[d] for d in digits),
                    "samples": raw(f"tidigits/dhd.{digits}.raw")})
        out.append({"name": "goforward", "group": "goforward", "transcript": GOFORWARD,
                    "samples": raw("goforward.raw")})
        for member in sorted(m.name for m in tar.getmembers() if m.name.startswith(DATA + "librivox/")
                             and m.name.endswith(".txt")):
            stem = member[len(DATA):-len(".txt")]
            out.append({"name": stem, "group": "librivox", "transcript": read(stem + ".txt").decode().strip(),
                        "samples": wav(stem + ".wav")})
    return out


def score(recognizer, recording: dict, work: Path, options: dict) -> dict:
    """What ``listen`` reports on one recording, against the command words of its transcript."""
    pad = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 1e-4
    x = np.concatenate([pad, recording["samples"], pad])
    wav = audio.write_wav(work / (recording["name"].replace("/", "-") + ".wav"), x, RATE)
    results, _, _, duration = streaming.listen_to(recognizer, wav, options, 1024, False)
    said = Counter(w for w in recording["transcript"].lower().split() if w in sc.TARGET_WORDS)
    heard = Counter(r.word for r in results)
    right = sum(min(n, said[w]) for w, n in heard.items())
    return {"name": recording["name"], "group": recording["group"], "transcript": recording["transcript"],
            "command_words": sum(said.values()), "heard": [r.word for r in results], "right": right,
            "false_alarms": sum(heard.values()) - right, "seconds": round(duration, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", default=None, help="a speech model folder (default: the shipped model)")
    parser.add_argument("--source", default=None, help=f"a copy of {SOURCE} (default: download it once)")
    parser.add_argument("--work", default="runs/real-people", help="the padded recordings are written here")
    parser.add_argument("--threshold", type=float, default=0.75, help="probability_threshold (default 0.75)")
    parser.add_argument("--json", default=None, help="write the figures as JSON")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    recognizer = speech.create("BROWSER_FFT", model=args.model, device="cpu")
    options = {"probability_threshold": args.threshold, "overlap_factor": 0.5}
    rows = [score(recognizer, r, work, options) for r in recordings(fetch_source(args.source))]
    print(f"{'recording':<46} {'command words':>13} {'right':>5} {'false':>5}  heard / said")
    for row in rows:
        print(f"{row['name']:<46} {row['command_words']:>13} {row['right']:>5} {row['false_alarms']:>5}  "
              f"{' '.join(row['heard']) or '-'} / {row['transcript']}")
    words, right = sum(r["command_words"] for r in rows), sum(r["right"] for r in rows)
    alarms, minutes = sum(r["false_alarms"] for r in rows), sum(r["seconds"] for r in rows) / 60
    totals = {"command_words": words, "right": right, "recall": right / max(words, 1),
              "precision": right / max(right + alarms, 1), "false_alarms": alarms, "minutes": round(minutes, 2)}
    print(f"\ncaught {right} of {words} command words (recall {totals['recall']:.2f}); precision "
          f"{totals['precision']:.2f}; {alarms} false alarms in {minutes:.2f} min of audio")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model or "shipped", "threshold": args.threshold,
                                               "totals": totals, "recordings": rows}, indent=1))


if __name__ == "__main__":
    main()
