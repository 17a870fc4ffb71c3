"""Speech on other synthesisers: a speech model on flite and Festival voices, which sightsound never trains on.

sightsound's corpora come from espeak-ng and Kokoro (``speech synth``). flite
and Festival, two other synthesisers from Debian's packages, stay out of
training and out of recipe tuning, so that they remain an independent check
of how a model does on voices made another way. Eight voices: flite's kal
(8 kHz diphones), kal16, awb (Scottish), rms and slt, and Festival's
kal_diphone, ked_diphone and cmu_us_slt_arctic_hts (slt, the one female
voice the two packages have, rendered by HTS).

Each voice says the 18 command words ``--takes`` times and every non-command
word of ``speech synth`` (Speech Commands' auxiliary words, everyday words and
short phrases) once. Each take has its own speed, intonation (``stop``,
``stop!``, ``stop?``), peak level, place in the second and noise floor, placed
as ``speech synth`` places its words. Per engine, as
``speech_generalization.py`` reports its folds:
- command words right and non-command words answered ``_unknown_``/noise,
  per voice, sex and accent;
- every window phase;
- streaming precision and recall on long recordings of the engine's clips
  with noise and non-command words between them;
- false alarms while each voice reads that benchmark's 40 ordinary sentences.

Examples::

    python benchmarks/other_engines.py                          # the shipped model
    python benchmarks/other_engines.py --model runs/speech --json other.json

Needs the Debian packages of ``apt-packages.txt`` (``make setup`` installs
them): flite, festival, festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speech_generalization as generalization  # noqa: E402  (its figures and report)

from sightsound import audio, speech  # noqa: E402
from sightsound.data import speech_commands as sc  # noqa: E402
from sightsound.data import synth  # noqa: E402
from sightsound.data.synth.spec import EXTRA_UNKNOWN  # noqa: E402
from sightsound.fileio import publish_directory  # noqa: E402
from sightsound.speech import frontend  # noqa: E402

#: name: (engine, the engine's own voice name, sex, accent)
VOICES = {
    "flite-kal": ("flite", "kal", "male", "US"),
    "flite-kal16": ("flite", "kal16", "male", "US"),
    "flite-awb": ("flite", "awb", "male", "Scottish"),
    "flite-rms": ("flite", "rms", "male", "US"),
    "flite-slt": ("flite", "slt", "female", "US"),
    "festival-kal": ("festival", "kal_diphone", "male", "US"),
    "festival-ked": ("festival", "ked_diphone", "male", "US"),
    "festival-slt": ("festival", "cmu_us_slt_arctic_hts", "female", "US"),
}
STRETCH = (0.85, 1.2)  # a take's duration stretch (1: the voice's own speed)
PACKAGES = "flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"


class OtherVoices:
    """flite and Festival, with the ``speak(text, voice)`` of :class:`sightsound.data.voices.KokoroVoices`."""

    def __init__(self):
        missing = [tool for tool in ("flite", "text2wave") if shutil.which(tool) is None]
        if missing:
            raise SystemExit(f"{', '.join(missing)} not found: install the Debian packages {PACKAGES} "
                             "(make setup does)")

    def speak(self, text: str, voice: str, stretch: float = 1.0) -> np.ndarray:
        """``text`` said by ``voice`` (a key of :data:`VOICES`), float32 at 16 kHz."""
        engine, name, _, _ = VOICES[voice]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "said.wav"
            if engine == "flite":
                command = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch:.3f}", "-t", text,
                           "-o", str(out)]
                subprocess.run(command, check=True, capture_output=True)
            else:
                # HTS voices take a speed rate through hts_engine's -r, diphone voices a duration stretch
                speed = (f'(set! hts_engine_params (cons (list "-r" {1 / stretch:.4f}) hts_engine_params))'
                         if name.endswith("_hts") else f"(Parameter.set 'Duration_Stretch {stretch:.3f})")
                command = ["text2wave", "-eval", f"(voice_{name})", "-eval", speed, "-o", str(out)]
                subprocess.run(command, input=text.encode(), check=True, capture_output=True)
            samples, rate = audio.read_wav(out)
        if samples.size == 0:
            raise RuntimeError(f"{voice} said nothing for {text!r}")
        return frontend.resample(samples, rate, synth.RATE).astype(np.float32)


def plan_takes(voices: list[str], takes: int, seed: int) -> list[tuple[synth.ClipJob, float]]:
    """Every clip to make, with its duration stretch: the command words ``takes`` times, every other word once."""
    rng = np.random.default_rng([seed, 7])
    words = [(w, takes) for w in sc.TARGET_WORDS] + [(w, 1) for w in sc.AUX_WORDS + EXTRA_UNKNOWN]
    planned = []
    for voice in voices:
        for word, count in words:
            for k in range(count):
                text = synth.TAKE_TEXTS[int(rng.integers(len(synth.TAKE_TEXTS)))].format(w=word.replace("_", " "))
                stretch = float(rng.uniform(*STRETCH))
                job = synth.ClipJob(index=len(planned), relpath=f"{word}/{voice}_nohash_{k}.wav", word=word,
                                    voice=voice, text=text, pitch=0, rate=0, position=float(rng.uniform(0, 1)),
                                    **synth.take_levels(rng), engine=VOICES[voice][0])
                planned.append((job, stretch))
    return planned


def build_clips(work: Path, voices: list[str], takes: int, seed: int, tts: OtherVoices) -> tuple[Path, list[dict]]:
    """The clips in a Speech Commands layout (all in ``testing_list.txt``, with generated noise and a
    manifest), made once per voice set, takes and seed and kept in ``work``."""
    planned = plan_takes(voices, takes, seed)
    key = hashlib.sha256(json.dumps([[vars(j), s] for j, s in planned]).encode()).hexdigest()[:12]
    folder = work / f"clips-{key}"
    if not (folder / sc.MANIFEST).is_file():
        temp = work / f".clips-{key}.partial"
        shutil.rmtree(temp, ignore_errors=True)

        def make(item: tuple[synth.ClipJob, float]) -> None:
            job, stretch = item
            (temp / job.relpath).parent.mkdir(parents=True, exist_ok=True)
            audio.write_wav(temp / job.relpath, synth.place_word(tts.speak(job.text, job.voice, stretch), job),
                            synth.RATE)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(make, planned))
        (temp / sc.BACKGROUND_NOISE).mkdir()
        for name, x in synth.noise_files(30, seed, *synth.list_voices()).items():
            audio.write_wav(temp / sc.BACKGROUND_NOISE / name, x, synth.RATE)
        (temp / "testing_list.txt").write_text("".join(f"{j.relpath}\n" for j, _ in planned))
        (temp / sc.MANIFEST).write_text("".join(json.dumps(
            {"path": j.relpath, "word": j.word, "voice": j.voice, "engine": j.engine, "sex": VOICES[j.voice][2],
             "accent": VOICES[j.voice][3], "stretch": round(s, 3), **synth.clip_settings(j)}) + "\n"
            for j, s in planned))
        publish_directory(temp, folder)
    return folder, [json.loads(line) for line in (folder / sc.MANIFEST).read_text().splitlines()]


def groups(entry: dict) -> tuple[str, ...]:
    return f"voice {entry['voice']}", f"sex {entry['sex']}", f"accent {entry['accent']}"


def engine_figures(recognizer, engine: str, folder: Path, entries: list[dict], args, tts: OtherVoices) -> dict:
    """One engine's clips, window phases, long recordings and sentences."""
    mine = [e for e in entries if e["engine"] == engine]
    work = Path(args.work) / engine
    work.mkdir(parents=True, exist_ok=True)
    voices = sorted({e["voice"] for e in mine})
    return {"description": f"{engine}: {', '.join(voices)} (never trained on)", "threshold": args.threshold,
            "clips": generalization.clip_figures(recognizer, folder, mine, groups),
            "phases": generalization.phase_figures(recognizer, folder, mine, args.threshold),
            "stream": generalization.stream_figures(recognizer, folder, mine, args, work),
            "sentences": generalization.sentence_figures(recognizer, voices, args, work, tts),
            "goals": {}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", default=None, help="a speech model folder (default: the shipped model)")
    parser.add_argument("--work", default="runs/other-engines", help="clips and recordings are kept here")
    parser.add_argument("--voices", default=",".join(VOICES), help=f"some of {', '.join(VOICES)}")
    parser.add_argument("--takes", type=int, default=5, help="takes of each command word per voice (default 5)")
    parser.add_argument("--recordings", type=int, default=3, help="long recordings per engine (default 3)")
    parser.add_argument("--words", type=int, default=100, help="words in each long recording (default 100)")
    parser.add_argument("--threshold", type=float, default=0.75, help="probability_threshold (default 0.75)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the figures as JSON")
    args = parser.parse_args()
    unknown = sorted(set(args.voices.split(",")) - set(VOICES))
    if unknown:
        parser.error(f"unknown voice(s) {', '.join(unknown)}; choose from {', '.join(VOICES)}")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    tts = OtherVoices()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    folder, entries = build_clips(Path(args.work), args.voices.split(","), args.takes, args.seed, tts)
    recognizer = speech.create("BROWSER_FFT", model=args.model, device="cpu")
    results = {"model": args.model or "shipped", "clips": str(folder), "threshold": args.threshold, "engines": {}}
    for engine in sorted({e["engine"] for e in entries}):
        results["engines"][engine] = engine_figures(recognizer, engine, folder, entries, args, tts)
        generalization.report(engine, results["engines"][engine])
    both = generalization.clip_figures(recognizer, folder, entries, lambda e: (f"sex {e['sex']}",))
    results["all"] = both
    by_sex = "; ".join(f"{k}: {v['command_accuracy']:.4f}" for k, v in both.items() if k != "all")
    print(f"\nboth engines: command words {both['all']['command_accuracy']:.4f} ({both['all']['command_words']}), "
          f"non-command quiet {both['all']['unknown_quiet']:.4f}; {by_sex}")
    generalization.finish(results, started, args.json)


if __name__ == "__main__":
    main()
