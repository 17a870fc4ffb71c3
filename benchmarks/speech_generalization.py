"""Speech on voices never trained on: command words, ``_unknown_``, streaming and false alarms, per voice and sex.

A model that scores well on held-out voices of the synthesiser it was trained
on may still fail on other voices. This benchmark trains on some voices and
tests on voices that no training clip (and no blend) contains, from a corpus
made by ``sightsound speech synth --engines espeak,kokoro`` (its
``manifest.jsonl`` names every clip's engine and voice). Two folds:

``kokoro-speakers``
    train on the corpus's training split (espeak-ng and 22 of Kokoro's 28
    English voices, with blends among them); test on the Kokoro speakers of
    its test split: 3 voices never heard (a US female, a US male and a UK
    voice) and blends among only those. Goals: >= 90 % of command words
    right; streaming precision >= 0.95 and recall >= 0.90 at the threshold;
    at most 1 false alarm a minute on ordinary sentences.
``no-kokoro``
    train on the espeak-ng clips only (a view of the corpus; the same recipe
    and augmentation); test on every Kokoro clip (28 voices, none heard).
    Goal: >= 80 % of command words right.

Figures per fold: command-word accuracy (the top word of the clip's
one-second window is the word said), ``_unknown_`` handling (the share of
non-command clips -- Speech Commands' auxiliary words, other everyday words
and short phrases -- answered ``_unknown_`` or ``_background_noise_``), both
per voice, per sex and per accent. For ``kokoro-speakers`` also streaming:
long recordings of the held-out speakers' clips (command words and 15 %
non-command distractors over near-silence and the corpus's noise at 0-30 dB,
built and scored as ``benchmarks/streaming.py`` does) heard by
``Recognizer.listen``; and false alarms: the held-out voices reading ordinary
sentences that hold no command word and no homophone of one ("to", "for",
"know", "write"...), about three minutes each, over a faint noise floor; every
detection there is a false alarm; and every window phase: each command clip
in near-silence scored in every window position, the share of the phases
``listen``'s windows can take at which some window names the word at the
threshold (and at any confidence), which tells a model that is unsure of a
voice from one that hears the word in the wrong place.

Training uses ``--recipe`` (default ``people``, the shipped model's). Only the
corpus's validation split (other voices) is seen while training; nothing is
tuned on the test voices: ``--held-out validation`` runs ``kokoro-speakers``
on the validation split's 3 Kokoro voices instead (also never trained on),
which is where recipes are compared; the figures quoted are the test
voices'. ``--model DIR`` evaluates a trained model on the ``kokoro-speakers``
voices instead of training (it must not have heard them: the shipped model's
card says which voices it held out).

Examples (the corpus: ``sightsound speech synth CORPUS --size full --engines
espeak,kokoro``, about an hour on 2 cores)::

    python benchmarks/speech_generalization.py --corpus CORPUS --quick     # <= 20 min: one fold, 6 epochs
    python benchmarks/speech_generalization.py --corpus CORPUS             # both folds, the recipe's epochs
    python benchmarks/speech_generalization.py --corpus CORPUS --model sightsound/speech/pretrained
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming  # noqa: E402  (the recordings and scoring of the streaming benchmark)

from sightsound import audio, speech  # noqa: E402
from sightsound.data import speech_commands as sc  # noqa: E402
from sightsound.data.synth import SENTENCE_WORD  # noqa: E402
from sightsound.data.voices import voice_group  # noqa: E402

#: Ordinary sentences without a command word or a homophone of one, for counting false alarms.
SENTENCES = (
    "The market was busy this morning and the baker sold fresh bread.",
    "Children played near the fountain while their parents talked about the weather.",
    "A gardener watered the flowers beside the old library.",
    "We watched a film about mountains, rivers and the history of the city.",
    "My sister bought a new bicycle with a bright red basket.",
    "The train was late again, so we had coffee at the station.",
    "Could you please pass the salt and pepper?",
    "The museum opens at noon and closes in the evening.",
    "I think the meeting is on Thursday afternoon.",
    "The cat slept all day in a warm patch of sunlight.",
    "Please remember the tickets and the map.",
    "Our neighbours are painting their kitchen blue.",
    "He called his friend and asked about the football match.",
    "The soup was hot, and the bread was still warm.",
    "The library keeps old maps of the harbour in a glass cabinet.",
    "Maria baked a lemon cake and shared it with the neighbours.",
    "The bus driver smiled and waved at the children.",
    "We walked along the beach and collected shells and pebbles.",
    "The orchestra practised the symphony in the empty hall.",
    "A small boat drifted slowly across the calm lake.",
    "Their garden is full of tomatoes, beans and herbs.",
    "The doctor asked me about my sleep and my diet.",
    "Heavy clouds gathered over the hills in the afternoon.",
    "She painted a portrait of her grandmother with soft colours.",
    "The teacher handed back the essays at the end of the lesson.",
    "A farmer was selling apples and honey at the market square.",
    "The kettle whistled while we were reading the newspaper.",
    "Please close the window when the rain begins.",
    "They visited a castle with a tall tower and a deep moat.",
    "The baby laughed at the puppy chasing its tail.",
    "Our flight was delayed because of the thick fog.",
    "The chef chopped leeks, carrots and garlic in the kitchen.",
    "I borrowed a novel about sailors and a lighthouse.",
    "The students built a model bridge with paper and glue.",
    "After dinner we played cards while the radio played jazz.",
    "The shopkeeper wrapped the present in silver paper.",
    "A gentle breeze carried the smell of the sea.",
    "My uncle repairs clocks in a tiny workshop.",
    "The hikers rested by a waterfall and shared sandwiches.",
    "The photographer waited patiently until the light was perfect.",
)
SENTENCES_KEY = hashlib.sha256("\n".join(SENTENCES).encode()).hexdigest()[:12]
QUIET = (speech.BACKGROUND_NOISE_TAG, speech.UNKNOWN_TAG)


def read_manifest(corpus: Path) -> list[dict]:
    entries = sc.read_manifest(corpus)
    if entries is None:
        raise SystemExit(f"{corpus}: no {sc.MANIFEST}; make the corpus with `sightsound speech synth "
                         f"{corpus} --size full --engines espeak,kokoro`")
    if not any(e["engine"] == "kokoro" for e in entries):
        raise SystemExit(f"{corpus}: no Kokoro clips; build it with --engines espeak,kokoro")
    return entries


def espeak_view(corpus: Path, entries: list[dict], out: Path) -> Path:
    """A Speech Commands folder of the corpus's espeak-ng clips only (symbolic links), with its noise."""
    if (out / "testing_list.txt").is_file():
        return out
    keep = [e for e in entries if e["engine"] == "espeak"]
    for e in keep:
        link = out / e["path"]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(corpus / e["path"])
    noise = out / sc.BACKGROUND_NOISE
    noise.mkdir(parents=True, exist_ok=True)
    for wav in (corpus / sc.BACKGROUND_NOISE).glob("*.wav"):
        if not (noise / wav.name).exists():
            (noise / wav.name).symlink_to(wav)
    for split, name in sc.LISTS.items():
        (out / name).write_text("".join(f"{e['path']}\n" for e in keep if e["split"] == split))
    return out


def train(data: Path, model_dir: Path, args) -> dict:
    """Train with the recipe unless ``model_dir`` holds a finished run; returns its settings and timing."""
    from sightsound.training.speech import train_speech

    done = model_dir / "history.json"
    if done.is_file():
        print(f"  using the model already trained in {model_dir}")
    else:
        result = train_speech(data, model_dir, recipe=args.recipe, epochs=args.epochs, seed=args.seed,
                              progress=True, device=args.device)
        print(f"  trained {result.epochs} epochs in {result.seconds:.0f} s; own test split "
              f"{result.evaluation.accuracy:.4f}")
    history = json.loads(done.read_text())
    return {"seconds": history.get("seconds"), "settings": history.get("settings"),
            "own_test_accuracy": history.get("test", {}).get("acc")}


def kokoro_groups(entry: dict) -> tuple[str, ...]:
    """The groups a Kokoro clip is counted in besides ``all``: its voice, sex and accent."""
    sex, accent = voice_group(entry["voice"])
    return f"voice {entry['voice']}", f"sex {sex}", f"accent {accent}"


def clip_figures(recognizer, corpus: Path, clips: list[dict], groups_of=kokoro_groups) -> dict:
    """Command-word accuracy and _unknown_ handling, overall and per group (``groups_of(entry)``: by
    default per voice, sex and accent)."""
    targets = set(sc.TARGET_WORDS)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # right, words, quiet, others
    mistakes: dict[str, int] = defaultdict(int)
    for e in clips:
        samples, rate = audio.read_wav(corpus / e["path"])
        top = recognizer.recognize_clip(samples, rate).top[0][0]
        for key in ("all",) + tuple(groups_of(e)):
            if e["word"] in targets:
                tally[key][0] += top == e["word"]
                tally[key][1] += 1
            else:
                tally[key][2] += top in QUIET
                tally[key][3] += 1
        if e["word"] in targets and top != e["word"]:
            mistakes[f"{e['word']} -> {top}"] += 1
    out = {key: {"command_accuracy": r / max(n, 1), "command_words": n, "unknown_quiet": q / max(m, 1),
                 "non_command": m} for key, (r, n, q, m) in sorted(tally.items())}
    out["all"]["top_mistakes"] = dict(sorted(mistakes.items(), key=lambda kv: -kv[1])[:10])
    return out


def phase_figures(recognizer, corpus: Path, clips: list[dict], threshold: float) -> dict:
    """Why streaming misses words the clip test gets right: every command clip in 1.2 s of near-silence
    on either side, scored in every 43-frame window; a streaming pass with ``listen``'s default overlap
    hears one window in :meth:`ListenOptions.period` of them, so at each of those phases the word is
    caught when some window there names it at ``threshold`` or above. The share caught, averaged over
    clips and phases, at the threshold and at any confidence (top word only)."""
    from sightsound.speech import frontend
    from sightsound.speech.stream import ListenOptions

    period = ListenOptions().period(frontend.NUM_FRAMES)
    words = list(recognizer.word_labels())
    caught, caught_any = [], []
    rng = np.random.default_rng(0)
    for e in (e for e in clips if e["word"] in sc.TARGET_WORDS):
        samples, rate = audio.read_wav(corpus / e["path"])
        pad = np.zeros(int(1.2 * rate))
        x = np.concatenate([pad, samples, pad]) + rng.standard_normal(samples.size + 2 * pad.size) * 1e-4
        db = frontend.frames(frontend.resample(x, rate, frontend.SAMPLE_RATE))
        windows = np.lib.stride_tricks.sliding_window_view(db, frontend.NUM_FRAMES, axis=0).transpose(0, 2, 1)
        scores = recognizer.model.predict(np.stack([frontend.normalize(w) for w in windows])[..., None])
        top = np.asarray(scores).argmax(axis=1) == words.index(e["word"])
        sure = top & (np.asarray(scores)[:, words.index(e["word"])] >= threshold)
        caught.append(np.mean([sure[phase::period].any() for phase in range(period)]))
        caught_any.append(np.mean([top[phase::period].any() for phase in range(period)]))
    return {"threshold": threshold, "period_frames": period, "command_words": len(caught),
            "caught_at_threshold": float(np.mean(caught)), "caught_at_any_confidence": float(np.mean(caught_any))}


def stream_figures(recognizer, corpus: Path, clips: list[dict], args, work: Path) -> dict:
    """Precision and recall of listen() on long recordings of the held-out speakers' clips."""
    by_word: dict[str, list[Path]] = defaultdict(list)
    for e in clips:
        by_word[e["word"]].append(corpus / e["path"])
    _, noises = streaming.load_test_clips(corpus)
    targets = [w for w in sc.TARGET_WORDS if w in by_word]
    rng = np.random.default_rng(args.seed)
    occurrences, detections, seconds = [], [], 0.0
    options = {"probability_threshold": args.threshold, "overlap_factor": 0.5}
    for i in range(args.recordings):
        x, occ = streaming.build_recording(i, args.words, dict(by_word), targets, noises, rng, 0.15)
        wav = audio.write_wav(work / f"recording{i}.wav", x, streaming.RATE)
        results, _, _, duration = streaming.listen_to(recognizer, wav, options, 1024, False)
        detections += [(i, r.time, r.word) for r in results]
        occurrences += occ
        seconds += duration
    figures = streaming.score(detections, occurrences)
    return {k: figures[k] for k in ("precision", "recall", "detections", "correct", "recall_by_condition",
                                    "recall_by_snr_band", "recall_by_noise",
                                    "false_alarms_by_cause", "delay_median_ms")} | {
        "audio_seconds": round(seconds, 1), "targets": sum(o.target for o in occurrences)}


def sentence_recording(voice: str, work: Path, seed: int, tts=None) -> Path:
    """``voice`` reading :data:`SENTENCES` (Kokoro, ``tts`` or a new :class:`KokoroVoices`), each at its own
    level between -20 and -6 dBFS, 0.4-1.5 s of quiet between them, faint pink noise under it all; made once
    and kept in ``work``. The file name holds the sentence set's hash and the seed: another set or seed is
    another recording, never an old one reused."""
    wav = work / f"sentences-{voice}-{SENTENCES_KEY}-seed{seed}.wav"
    if wav.is_file():
        return wav
    from sightsound.data.synth.render import colored_noise
    from sightsound.data.voices import KokoroVoices

    tts = tts or KokoroVoices()
    rng = np.random.default_rng([seed, len(voice)])
    parts = []
    for text in SENTENCES:
        said = tts.speak(text, voice)
        said = said * (10 ** (rng.uniform(-20, -6) / 20) / max(float(np.abs(said).max()), 1e-9))
        gap = np.zeros(int(rng.uniform(0.4, 1.5) * streaming.RATE), dtype=np.float32)
        parts += [gap, said.astype(np.float32)]
    x = np.concatenate(parts + [np.zeros(streaming.RATE, dtype=np.float32)])
    x = x + (colored_noise(x.size, "pink", rng) * 10 ** (-65 / 20)).astype(np.float32)
    work.mkdir(parents=True, exist_ok=True)
    audio.write_wav(wav, x, streaming.RATE)
    return wav


def sentence_false_alarms(recognizer, wav: Path, threshold: float) -> dict:
    """What ``recognizer`` hears in a recording without command words: every word it reports is a false alarm."""
    options = {"probability_threshold": threshold, "overlap_factor": 0.5}
    results, _, _, duration = streaming.listen_to(recognizer, wav, options, 1024, False)
    return {"false_alarms": len(results), "minutes": duration / 60, "words": [r.word for r in results]}


def sentence_figures(recognizer, voices: list[str], args, work: Path, tts=None) -> dict:
    """False alarms while each voice reads :data:`SENTENCES` (about three minutes of speech each; Kokoro's
    voices unless ``tts`` speaks them)."""
    per_voice = {voice: sentence_false_alarms(recognizer, sentence_recording(voice, work, args.seed, tts),
                                              args.threshold)
                 for voice in voices}
    minutes = sum(v["minutes"] for v in per_voice.values())
    alarms = sum(v["false_alarms"] for v in per_voice.values())
    return {"false_alarms": alarms, "minutes": round(minutes, 2), "per_minute": alarms / minutes,
            "per_voice": per_voice}


def report(name: str, fold: dict) -> None:
    clips = fold["clips"]
    print(f"\n== {name}: {fold['description']}")
    print(f"  {'group':<24} {'command words':>14} {'n':>6} {'non-command quiet':>18} {'n':>6}")
    for key, v in clips.items():
        print(f"  {key:<24} {v['command_accuracy']:>14.4f} {v['command_words']:>6} "
              f"{v['unknown_quiet']:>18.4f} {v['non_command']:>6}")
    print(f"  most frequent mistakes: {clips['all']['top_mistakes']}")
    if "phases" in fold:
        p = fold["phases"]
        print(f"  every window phase ({p['period_frames']} frames apart) around {p['command_words']} command words "
              f"in near-silence: caught {p['caught_at_threshold']:.4f} at threshold {p['threshold']}, "
              f"{p['caught_at_any_confidence']:.4f} at any confidence")
    if "stream" in fold:
        s = fold["stream"]
        print(f"  streaming at threshold {fold['threshold']}: precision {s['precision']:.4f}, recall {s['recall']:.4f} "
              f"({s['targets']} command words in {s['audio_seconds']} s; by condition {s['recall_by_condition']}; "
              f"false alarms by cause {s['false_alarms_by_cause']})")
        print(f"  recall [share, command words] by SNR band {s['recall_by_snr_band']}; by noise {s['recall_by_noise']}")
    if "sentences" in fold:
        s = fold["sentences"]
        print(f"  ordinary sentences: {s['false_alarms']} false alarms in {s['minutes']} min "
              f"({s['per_minute']:.2f} a minute); per voice "
              f"{ {v: (d['false_alarms'], d['words']) for v, d in s['per_voice'].items()} }")
    for goal, met in fold["goals"].items():
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--corpus", required=True, help="a corpus from `speech synth --engines espeak,kokoro`")
    parser.add_argument("--work", default="runs/speech-generalization",
                        help="models, views and recordings are kept here; a finished fold's model is reused")
    parser.add_argument("--model", default=None, help="evaluate this model on the kokoro-speakers fold instead")
    parser.add_argument("--recipe", default="people", help="training recipe (default people)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    parser.add_argument("--quick", action="store_true",
                        help="one fold (kokoro-speakers), 6 epochs, 3 recordings: <= 20 minutes on 2 cores")
    parser.add_argument("--folds", default="kokoro-speakers,no-kokoro")
    parser.add_argument("--recordings", type=int, default=6, help="long recordings (default 6 of 100 words)")
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=0.75, help="probability_threshold (default 0.75)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None, help="write the figures as JSON")
    parser.add_argument("--held-out", default="testing", choices=("testing", "validation"),
                        help="whose Kokoro voices kokoro-speakers tests: the test split's (default; for the "
                             "figures) or the validation split's (for choosing a recipe without the test voices)")
    args = parser.parse_args()
    if args.quick:
        args.folds, args.epochs, args.recordings = "kokoro-speakers", args.epochs or 6, 3
    return args


def run_fold(name: str, corpus: Path, entries: list[dict], work: Path, args: argparse.Namespace) -> dict:
    """Train (or take ``--model``) and measure one fold: its clips, and for kokoro-speakers the window
    phases, the long recordings and the sentences; with each goal met or not."""
    if name == "kokoro-speakers":
        test = [e for e in entries if e["engine"] == "kokoro" and e["split"] == args.held_out]
        data, description = corpus, (f"trained on espeak-ng + 22 Kokoro voices; tested on the 3 Kokoro voices "
                                     f"of the {args.held_out} split, never trained on")
    elif name == "no-kokoro":  # words; the windows of read sentences are training material, not tests
        test = [e for e in entries if e["engine"] == "kokoro" and e["word"] != SENTENCE_WORD]
        data = espeak_view(corpus, entries, work / "espeak-only")
        description = "trained on espeak-ng only; tested on all 28 Kokoro voices"
    else:
        raise SystemExit(f"unknown fold {name!r}; choose kokoro-speakers, no-kokoro")
    model_dir = Path(args.model) if args.model else work / name / "model"
    print(f"{name}: {len(test)} test clips; model {model_dir}")
    fold = {"description": description, "threshold": args.threshold,
            "training": {"model": str(model_dir)} if args.model else train(data, model_dir, args)}
    recognizer = speech.create("BROWSER_FFT", model=str(model_dir), device="cpu")
    fold["clips"] = clip_figures(recognizer, corpus, test)
    if name == "kokoro-speakers":
        fold["phases"] = phase_figures(recognizer, corpus, test, args.threshold)
        fold["stream"] = stream_figures(recognizer, corpus, test, args, work)
        fold["sentences"] = sentence_figures(recognizer, sorted({e["voice"] for e in test}), args, work)
        fold["goals"] = {"command words >= 90 %": fold["clips"]["all"]["command_accuracy"] >= 0.90,
                         "stream precision >= 0.95": fold["stream"]["precision"] >= 0.95,
                         "stream recall >= 0.90": fold["stream"]["recall"] >= 0.90,
                         "false alarms <= 1 a minute": fold["sentences"]["per_minute"] <= 1.0}
    else:
        fold["goals"] = {"command words >= 80 %": fold["clips"]["all"]["command_accuracy"] >= 0.80}
    return fold


def main() -> None:
    args = parse_args()
    corpus = Path(args.corpus).resolve()
    entries = read_manifest(corpus)
    work = Path(args.work) / ("quick" if args.quick else args.recipe)
    if args.held_out != "testing":
        work = work / args.held_out
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"corpus": str(corpus), "recipe": args.recipe, "quick": args.quick, "threshold": args.threshold,
               "held_out": args.held_out, "folds": {}}
    folds = ["kokoro-speakers"] if args.model else [f.strip() for f in args.folds.split(",") if f.strip()]
    for name in folds:
        results["folds"][name] = run_fold(name, corpus, entries, work, args)
        report(name, results["folds"][name])
    finish(results, started, args.json, f"; work folder {work}")


def finish(results: dict, started: float, json_path: str | None, where: str = "") -> None:
    """Print how long the run took and write ``results`` as JSON when asked to."""
    results["seconds"] = time.perf_counter() - started
    print(f"\n{results['seconds']:.0f} s in all{where}")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
