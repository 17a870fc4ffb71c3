"""Streaming recognition on long recordings: precision, recall, delay and CPU share of ``listen()``.

Builds long recordings from the *held-out* clips (``testing_list.txt``) of a
Speech Commands folder (the offline espeak-ng corpus or the real one): the
18 command words at known times, with ``_unknown_`` words as distractors, on
a bed that alternates between near-silence and the corpus's background noise
recordings, with gaps of 0.3-3 s and a word-to-noise ratio of 0-30 dB. Each
recording is written as a 16-kHz WAV and heard by ``Recognizer.listen`` from a
:class:`WavFileSource` in chunks of 1,024 samples (64 ms, a live stream's
block), as fast as the recognizer takes them (``--realtime`` paces it).

Scoring. A word occurrence spans its clip's active part (the 10-ms frames
within 30 dB of the clip's loudest). A detection (``time`` t, word w) is
*correct* when w is said within its window ``[t - 0.998 s, t]``, i.e. some
occurrence of w overlaps the window by at least 40 % of that occurrence
(or by 0.15 s); it is a false alarm otherwise (a distractor, noise, a wrong
word). Precision = correct / detections; recall = target occurrences with at
least one correct detection / target occurrences. Delay = stream time of the
first correct detection minus the word's end (negative when the window that
heard it ended before the word did). CPU = process CPU time (all threads)
during ``listen`` / audio duration, i.e. the share of one core that listening
in real time costs. Goals at the default overlap 0.5 and threshold 0.75:
precision >= 0.95, recall >= 0.90, median delay <= 300 ms, CPU <= 5 %.

A model and data, from scratch (the full corpus takes minutes, training
about an hour on 2 cores)::

    sightsound speech synth /tmp/speech-full --size full
    sightsound speech train /tmp/speech-full runs/speech
    nice -n 10 python benchmarks/streaming.py --model runs/speech --data /tmp/speech-full

``--json FILE`` saves the figures; with the default suppression of 0 the
script also derives precision and recall at other thresholds from one extra
listen pass that reports every window.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sightsound import audio, speech
from sightsound.data import speech_commands as sc

RATE = 16000  #: rate of the recordings (the corpus's); the recognizer resamples while streaming
WINDOW_S = speech.FRAME_DURATION_MILLIS * audio.NUM_FRAMES / 1000  #: 0.998 s seen by one run
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


@dataclass
class Occurrence:
    word: str
    target: bool  # a command word (False: an _unknown_ distractor)
    start: float  # s, active part in the recording
    end: float
    snr_db: float | None  # None on near-silence
    recording: int
    noise: str | None = None  # the background recording under the word (None on near-silence)


def active_span(x: np.ndarray, rate: int) -> tuple[float, float]:
    """(start, end) in seconds of the frames within 30 dB of the loudest 10-ms frame."""
    hop = rate // 100
    n = max(1, x.size // hop)
    rms = np.sqrt(np.mean(x[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-20)
    db = 20 * np.log10(rms)
    on = np.flatnonzero(db >= db.max() - 30)
    return on[0] * hop / rate, (on[-1] + 1) * hop / rate


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def load_test_clips(data: Path) -> tuple[dict[str, list[Path]], dict[str, np.ndarray]]:
    listed = [line.strip() for line in (data / "testing_list.txt").read_text().splitlines() if line.strip()]
    clips: dict[str, list[Path]] = {}
    for rel in listed:
        word = rel.split("/")[0]
        if word != sc.BACKGROUND_NOISE:
            clips.setdefault(word, []).append(data / rel)
    noises = {}
    for path in sorted((data / sc.BACKGROUND_NOISE).glob("*.wav")):
        x, rate = audio.read_wav(path)
        noises[path.stem] = x if rate == RATE else audio.resample(x, rate, RATE)
    if not noises:
        raise SystemExit(f"{data}: no {sc.BACKGROUND_NOISE}/*.wav noise recordings")
    return clips, noises


def build_recording(index: int, words: int, clips: dict[str, list[Path]], targets: list[str],
                    noises: dict[str, np.ndarray], rng: np.random.Generator, distractor_share: float,
                    snr_range: tuple[float, float] = (0.0, 30.0), silence_share: float = 0.3):
    """One long recording: (samples at 16 kHz, occurrences)."""
    aux = [w for w in clips if w not in targets]
    parts, occurrences, t = [], [], 0
    ramp = np.linspace(0, 1, RATE // 100)

    names = list(noises)

    def bed(n: int, silent: bool, level: float, name: str | None = None) -> np.ndarray:
        if silent:
            return (rng.standard_normal(n) * 1e-4).astype(np.float32)  # -80 dBFS dither
        noise = noises[name]
        start = int(rng.integers(0, max(1, noise.size - n)))
        seg = np.resize(noise[start:start + n], n).astype(np.float64)
        seg *= level / rms(seg)
        seg[:ramp.size] *= ramp
        seg[-ramp.size:] *= ramp[::-1]
        return seg.astype(np.float32)

    for k in range(words):
        is_target = not aux or rng.random() >= distractor_share
        word = targets[int(rng.integers(len(targets)))] if is_target else aux[int(rng.integers(len(aux)))]
        path = clips[word][int(rng.integers(len(clips[word])))]
        clip, rate = audio.read_wav(path)
        if rate != RATE:
            clip = audio.resample(clip, rate, RATE)
        s0, s1 = active_span(clip, RATE)
        word_rms = rms(clip[int(s0 * RATE):int(s1 * RATE)])
        silent = rng.random() < silence_share
        snr = None if silent else float(rng.uniform(*snr_range))
        level = word_rms / 10 ** (snr / 20) if snr is not None else 0.0
        gap = int(rng.uniform(0.3, 3.0) * RATE)
        noise = None if silent else names[int(rng.integers(len(names)))]
        segment = bed(gap + clip.size, silent, level, noise)
        segment[gap:] += clip
        parts.append(segment)
        base = (t + gap) / RATE
        occurrences.append(Occurrence(word, is_target, base + s0, base + s1, snr, index, noise))
        t += segment.size
    tail = bed(RATE, True, 0.0)
    x = np.clip(np.concatenate(parts + [tail]), -1, 1)
    return x, occurrences


def correct_for(det_time: float, det_word: str, occurrences: list[Occurrence]) -> Occurrence | None:
    """The occurrence of ``det_word`` that the window ending at ``det_time`` heard, if any."""
    lo, hi = det_time - WINDOW_S, det_time
    best = None
    for occ in occurrences:
        if occ.word != det_word:
            continue
        overlap = min(hi, occ.end) - max(lo, occ.start)
        if overlap >= min(0.4 * (occ.end - occ.start), 0.15) and (best is None or occ.end > best.end):
            best = occ
    return best


def score(detections: list[tuple[int, float, str]], occurrences: list[Occurrence]) -> dict:
    by_rec: dict[int, list[Occurrence]] = {}
    for occ in occurrences:
        by_rec.setdefault(occ.recording, []).append(occ)
    correct, first = 0, {}
    for rec, t, word in detections:
        occ = correct_for(t, word, by_rec.get(rec, []))
        if occ is not None:
            correct += 1
            key = id(occ)
            if key not in first or t < first[key][0]:
                first[key] = (t, occ)
    targets = [o for o in occurrences if o.target]
    found = [first[id(o)] for o in targets if id(o) in first]
    delays = np.array([t - o.end for t, o in found]) if found else np.zeros(0)
    by_condition = {}
    for name, keep in (("silence", lambda o: o.snr_db is None), ("snr>=15dB", lambda o: o.snr_db is not None
                                                                  and o.snr_db >= 15),
                       ("snr<15dB", lambda o: o.snr_db is not None and o.snr_db < 15)):
        group = [o for o in targets if keep(o)]
        if group:
            by_condition[name] = round(sum(id(o) in first for o in group) / len(group), 4)
    by_snr, by_noise = {}, {}  # finer: 5-dB bands, and each background recording
    for lo in range(-10, 40, 5):
        group = [o for o in targets if o.snr_db is not None and lo <= o.snr_db < lo + 5]
        if group:
            by_snr[f"{lo}-{lo + 5}dB"] = [round(sum(id(o) in first for o in group) / len(group), 4), len(group)]
    for noise in sorted({o.noise for o in targets if o.noise}):
        group = [o for o in targets if o.noise == noise]
        by_noise[noise] = [round(sum(id(o) in first for o in group) / len(group), 4), len(group)]
    return {
        "detections": len(detections), "correct": correct,
        "precision": correct / len(detections) if detections else float("nan"),
        "recall": len(found) / len(targets) if targets else float("nan"),
        "recall_by_condition": by_condition,
        "recall_by_snr_band": by_snr,  # [recall, command words]
        "recall_by_noise": by_noise,
        "delay_median_ms": float(np.median(delays) * 1000) if delays.size else float("nan"),
        "delay_p90_ms": float(np.percentile(delays, 90) * 1000) if delays.size else float("nan"),
        "repeat_detections": correct - len(first),
        "false_alarms": sum(1 for rec, t, w in detections
                                       if correct_for(t, w, by_rec.get(rec, [])) is None),
        "false_alarms_by_cause": false_alarm_causes(detections, by_rec),
    }


def false_alarm_causes(detections, by_rec: dict[int, list[Occurrence]]) -> dict[str, int]:
    """What each false alarm heard: a sliver of the same word (an edge window), another command word,
    an ``_unknown_`` distractor, or no word at all."""
    causes = {"same word, window hears < 40 % of it": 0, "other command word": 0, "distractor": 0, "no word": 0}
    for rec, t, w in detections:
        occurrences = by_rec.get(rec, [])
        if correct_for(t, w, occurrences) is not None:
            continue
        heard = [o for o in occurrences if min(t, o.end) - max(t - WINDOW_S, o.start) > 0]
        if any(o.word == w for o in heard):
            causes["same word, window hears < 40 % of it"] += 1
        elif any(o.target for o in heard):
            causes["other command word"] += 1
        elif heard:
            causes["distractor"] += 1
        else:
            causes["no word"] += 1
    return causes


def listen_to(recognizer, wav: Path, options: dict, chunk: int, realtime: bool):
    results = []
    source = speech.WavFileSource(wav, realtime=realtime, chunk_size=chunk)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    recognizer.listen(results.append, source=source, **options)
    recognizer.wait()
    return results, time.process_time() - cpu0, time.perf_counter() - wall0, source.duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", required=True, help="trained model folder (model.json + metadata.json)")
    parser.add_argument("--data", required=True, help="Speech Commands folder (with testing_list.txt)")
    parser.add_argument("--recordings", type=int, default=12,
                        help="long recordings to build (default 12: 1,200 words, about 53 min of audio; with "
                             "4, precision moved by 0.06 between seeds)")
    parser.add_argument("--words", type=int, default=100, help="words per recording (default 100)")
    parser.add_argument("--distractors", type=float, default=0.15, help="share of _unknown_ words (default 0.15)")
    parser.add_argument("--snr", type=float, nargs=2, default=(0.0, 30.0), metavar=("MIN", "MAX"),
                        help="word-to-noise ratio range in dB on noise segments (default 0 30)")
    parser.add_argument("--silence-share", type=float, default=0.3,
                        help="share of words on near-silence instead of noise (default 0.3)")
    parser.add_argument("--threshold", type=float, default=0.75, help="probability_threshold (default 0.75)")
    parser.add_argument("--overlap", type=float, default=0.5, help="overlap_factor (default 0.5)")
    parser.add_argument("--suppression", type=float, default=0, help="suppression_time_millis (default 0)")
    parser.add_argument("--chunk", type=int, default=1024, help="samples per chunk read (default 1024 = 64 ms)")
    parser.add_argument("--realtime", action="store_true", help="replay at real-time speed (slow)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep the recordings and truth in DIR")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the figures as JSON")
    args = parser.parse_args()

    import torch

    rng = np.random.default_rng(args.seed)
    data = Path(args.data)
    clips, noises = load_test_clips(data)
    recognizer = speech.create("BROWSER_FFT", model=args.model, device=args.device)
    targets = [w for w in recognizer.word_labels() if w not in (speech.BACKGROUND_NOISE_TAG, speech.UNKNOWN_TAG)
               and w in clips]
    if not targets:
        raise SystemExit(f"{data}: the test list has none of the model's words")
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sightsound-streaming-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        run(args, recognizer, clips, noises, targets, rng, out, torch.get_num_threads())
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


def run(args, recognizer, clips, noises, targets, rng, out: Path, threads: int) -> None:
    occurrences, wavs = [], []
    for i in range(args.recordings):
        x, occ = build_recording(i, args.words, clips, targets, noises, rng, args.distractors,
                                 tuple(args.snr), args.silence_share)
        wav = audio.write_wav(out / f"recording{i}.wav", x, RATE)
        wavs.append(wav)
        occurrences += occ
    (out / "truth.json").write_text(json.dumps([asdict(o) for o in occurrences], indent=1))

    options = {"probability_threshold": args.threshold, "overlap_factor": args.overlap,
               "suppression_time_millis": args.suppression}
    detections, cpu, wall, seconds = [], 0.0, 0.0, 0.0
    for i, wav in enumerate(wavs):
        results, c, w, d = listen_to(recognizer, wav, options, args.chunk, args.realtime)
        detections += [(i, r.time, r.word) for r in results]
        cpu, wall, seconds = cpu + c, wall + w, seconds + d
    figures = score(detections, occurrences)
    figures.update({"audio_seconds": round(seconds, 1), "cpu_seconds": round(cpu, 3),
                    "cpu_share_of_one_core": cpu / seconds, "wall_seconds": round(wall, 2),
                    "speed_x_realtime": seconds / wall, "torch_threads": threads,
                    "targets": sum(o.target for o in occurrences),
                    "distractors": sum(not o.target for o in occurrences)})
    # every window once; other thresholds follow exactly (no suppression state)
    sweep = threshold_sweep(recognizer, wavs, occurrences, args) if args.suppression == 0 else {}
    goals = {"precision": figures["precision"] >= 0.95, "recall": figures["recall"] >= 0.90,
             "median_delay": figures["delay_median_ms"] <= 300, "cpu": figures["cpu_share_of_one_core"] <= 0.05}
    print_report(args, figures, goals, sweep)
    if args.keep:
        print(f"recordings and truth.json in {out}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "figures": figures, "goals_met": goals,
                                               "threshold_sweep": {str(k): v for k, v in sweep.items()}},
                                              indent=1))


def threshold_sweep(recognizer, wavs: list[Path], occurrences: list[Occurrence], args) -> dict:
    """Precision, recall and delays at each of :data:`THRESHOLDS`, from one pass over every window."""
    every = []
    for i, wav in enumerate(wavs):
        results, *_ = listen_to(recognizer, wav, {"overlap_factor": args.overlap,
                                                  "invoke_callback_on_noise_and_unknown": True},
                                args.chunk, False)
        every += [(i, r) for r in results]
    sweep = {}
    for t in THRESHOLDS:
        dets = [(i, r.time, r.word) for i, r in every if r.score >= t
                and r.word not in (speech.BACKGROUND_NOISE_TAG, speech.UNKNOWN_TAG)]
        s = score(dets, occurrences)
        sweep[t] = {k: s[k] for k in ("precision", "recall", "delay_median_ms", "delay_p90_ms", "detections")}
    return sweep


def print_report(args, figures: dict, goals: dict, sweep: dict) -> None:
    def verdict(goal: str) -> str:
        return "met" if goals[goal] else "NOT met"

    print(f"model {args.model}; data {Path(args.data)} (test split); {args.recordings} recordings, "
          f"{figures['audio_seconds']} s of audio, {figures['targets']} command words + "
          f"{figures['distractors']} distractors, SNR {args.snr[0]:g}-{args.snr[1]:g} dB; threshold {args.threshold}, overlap {args.overlap}, "
          f"suppression {args.suppression} ms")
    print(f"  precision {figures['precision']:.4f}  ({figures['correct']}/{figures['detections']} detections)"
          f"   goal >= 0.95: {verdict('precision')}")
    print(f"            false alarms by cause {figures['false_alarms_by_cause']}")
    print(f"            {figures['repeat_detections']} of the correct detections repeat a word already reported "
          f"(the next window heard it too)")
    print(f"  recall    {figures['recall']:.4f}  by condition {figures['recall_by_condition']}"
          f"   goal >= 0.90: {verdict('recall')}")
    print(f"            by SNR band {figures['recall_by_snr_band']}")
    print(f"            by noise {figures['recall_by_noise']}")
    print(f"  delay     median {figures['delay_median_ms']:.0f} ms, p90 {figures['delay_p90_ms']:.0f} ms "
          f"(stream time, word end -> callback)   goal median <= 300 ms: {verdict('median_delay')}")
    print(f"  CPU       {100 * figures['cpu_share_of_one_core']:.2f} % of one core at real time "
          f"({figures['cpu_seconds']} s CPU for {figures['audio_seconds']} s; {figures['speed_x_realtime']:.0f}x "
          f"real time wall; torch threads {figures['torch_threads']})   goal <= 5 %: {verdict('cpu')}")
    if sweep:
        print("  threshold  precision  recall  median delay  p90 delay  detections")
        for t, s in sweep.items():
            print(f"  {t:9.2f}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['delay_median_ms']:9.0f} ms"
                  f"  {s['delay_p90_ms']:6.0f} ms  {s['detections']:10d}")


if __name__ == "__main__":
    main()
