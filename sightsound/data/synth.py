"""An offline spoken-command corpus in the Speech Commands v0.02 layout, made with espeak-ng.

The real dataset cannot be downloaded on every machine, so this module
speaks the chapter's 18 target words (and auxiliary words for
``_unknown_``) with espeak-ng and writes them exactly as Speech Commands
lays them out::

    OUT_DIR/
      zero/ one/ ... yes/ no/          18 target words
      bed/ bird/ ... wow/              auxiliary words (become _unknown_)
      _background_noise_/*.wav         generated noise, 16 kHz, tens of seconds each
      validation_list.txt              "word/<speaker>_nohash_<n>.wav", one a line
      testing_list.txt
      synth.json                       how the corpus was made (seed, size, voices, split)

Every clip is a 16 kHz mono 16-bit WAV of exactly one second named
``<speaker hash>_nohash_<n>.wav``. A *speaker* is an espeak-ng English
voice with a voice variant (``gmw/en-US+m3``) plus its own pitch and speaking
rate; each take varies rate, pitch, intonation (``stop``, ``stop!``,
``stop?``), loudness, position of the word in the second and a faint noise
floor (so no clip holds digital silence). The validation and test lists are
split by *variant*: every speaker built on a held-out variant is in the same
list, so test voices (timbres) are never heard in training.

The corpus is deterministic for a seed (given the same espeak-ng
installation) and built in parallel. ``small`` has 20 clips per target word
(seconds), ``full`` 1,100 per target word (a few minutes on 2 cores).

Example::

    >>> from sightsound.data.synth import build_corpus
    >>> report = build_corpus("/tmp/speech-small", size="small", seed=0)  # doctest: +SKIP
    >>> report.clips_per_word["yes"]  # doctest: +SKIP
    20
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import staged_directory
from .download import progress_bar
from .speech_commands import AUX_WORDS, BACKGROUND_NOISE, TARGET_WORDS

RATE = 16000  #: sample rate of every clip and noise file
CLIP = RATE  #: samples per clip (one second)
ESPEAK = "espeak-ng"
EXCLUDED_VARIANTS = frozenset({"fast"})  # espeak-ng's own "unstable" speed-test variant
TAKE_TEXTS = ("{w}", "{w}", "{w}.", "{w}!", "{w}?")  # intonation variety, plain word most often
SPLIT_SHARES = {"validation": 0.1, "testing": 0.1}  # of the variants; the rest train


@dataclass(frozen=True)
class SynthSize:
    """How big a corpus is: speakers, takes per target word, auxiliary words, noise length."""

    name: str
    speakers: int | None  # None: every base voice x every variant
    clips_per_word: int  # takes of each target word (extra takes come from random speakers)
    aux_per_speaker: int  # distinct auxiliary words each speaker says once
    noise_seconds: int


SIZES = {
    "small": SynthSize("small", speakers=20, clips_per_word=20, aux_per_speaker=4, noise_seconds=15),
    "full": SynthSize("full", speakers=None, clips_per_word=1100, aux_per_speaker=8, noise_seconds=60),
}


@dataclass(frozen=True)
class Speaker:
    hash: str
    voice: str  # espeak-ng -v argument, e.g. "gmw/en-US+m3"
    variant: str
    pitch: float  # espeak-ng -p, 0-99
    rate: float  # espeak-ng -s, words per minute
    split: str  # training, validation or testing


@dataclass(frozen=True)
class ClipJob:
    """Everything needed to render one clip; rendering is a pure function of it."""

    index: int
    relpath: str
    word: str
    voice: str
    text: str
    pitch: int
    rate: int
    position: float  # 0..1: where in the free room of the second the word starts
    peak_db: float  # peak level of the word, dBFS
    floor_db: float  # RMS of the noise floor, dBFS
    floor_color: str  # white, pink or brown
    seed: int


@dataclass
class SynthReport:
    out_dir: Path
    size: str
    seed: int
    clips: int
    clips_per_word: dict[str, int]
    speakers: dict[str, int]  # per split
    noise_files: list[str]
    seconds: float


# -- espeak-ng ------------------------------------------------------------------

def espeak_available() -> bool:
    """True when the ``espeak-ng`` program can be run."""
    return shutil.which(ESPEAK) is not None


def _run_espeak(args: list[str], timeout: float = 60) -> bytes:
    try:
        done = subprocess.run([ESPEAK, *args], capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DataError("espeak-ng is not installed; install the Debian package espeak-ng "
                        "(listed in apt-packages.txt)") from None
    if done.returncode != 0:
        raise DataError(f"espeak-ng {' '.join(args)} failed ({done.returncode}): "
                        f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _columns(listing: str) -> list[dict[str, str]]:
    """Parse ``espeak-ng --voices`` output into Language and File per row.

    Columns are fixed-width but long voice names overflow them, so the file is
    found as the first token holding a ``/``, running up to the "Other
    Languages" part (tokens in parentheses); file names may contain a space.
    """
    rows = []
    for line in listing.splitlines()[1:]:
        tokens = line.split()
        if len(tokens) < 4:
            continue
        slash = next((i for i, t in enumerate(tokens) if "/" in t and i >= 3), None)
        if slash is None:
            continue
        file_tokens = [tokens[slash]]
        for t in tokens[slash + 1:]:
            if t.startswith("("):
                break
            file_tokens.append(t)
        rows.append({"Language": tokens[1], "File": " ".join(file_tokens)})
    return rows


@lru_cache(maxsize=1)
def list_voices() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(English base voice files, variant names), sorted; MBROLA voices are left out.

    >>> bases, variants = list_voices()  # doctest: +SKIP
    >>> bases[:2], "m3" in variants  # doctest: +SKIP
    (('gmw/en', 'gmw/en-029'), True)
    """
    bases = sorted({r["File"] for r in _columns(_run_espeak(["--voices=en"]).decode())
                    if r["File"] and not r["File"].startswith("mb/") and r["Language"].startswith("en")})
    variants = sorted({r["File"].split("/", 1)[1] for r in _columns(_run_espeak(["--voices=variant"]).decode())
                       if r["File"].startswith("!v/")} - EXCLUDED_VARIANTS)
    if not bases:
        raise DataError("espeak-ng lists no English voice (espeak-ng --voices=en)")
    return tuple(bases), tuple(variants)


def espeak_version() -> str:
    return _run_espeak(["--version"]).decode(errors="replace").strip()


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """Samples and rate of espeak-ng's ``--stdout`` WAV (its sizes are placeholders)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError("espeak-ng produced no WAV output")
    pos, rate, bits = 12, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if tag == b"fmt ":
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
            pos += 8 + size
        elif tag == b"data":
            if rate is None or bits != 16:
                raise DataError("espeak-ng WAV output is not 16-bit PCM")
            body = data[pos + 8:]
            body = body[:len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0, rate
        else:
            pos += 8 + size
    raise DataError("espeak-ng WAV output has no data chunk")


def speak(text: str, voice: str, pitch: int = 50, rate: int = 175) -> np.ndarray:
    """espeak-ng's rendering of ``text`` as float64 samples at 16 kHz."""
    from scipy.signal import resample_poly

    raw = _run_espeak(["-v", voice, "-p", str(int(pitch)), "-s", str(int(rate)), "--stdout", text])
    samples, rate_in = _parse_wav_stream(raw)
    if rate_in != RATE:
        g = math.gcd(RATE, rate_in)
        samples = resample_poly(samples, RATE // g, rate_in // g)
    return samples


# -- signal helpers -------------------------------------------------------------

def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: ``white`` (flat), ``pink`` (1/f power) or ``brown`` (1/f^2 power)."""
    white = rng.standard_normal(n)
    if color == "white":
        out = white
    else:
        exponent = {"pink": 0.5, "brown": 1.0}[color]
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / RATE)
        f[0] = f[1] if n > 1 else 1.0
        spec /= np.maximum(f, 20.0) ** exponent  # flatten below 20 Hz: no DC drift
        out = np.fft.irfft(spec, n)
    return out / max(float(np.sqrt(np.mean(out ** 2))), 1e-12)


def _trim(x: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing quiet parts (10-ms RMS below ``threshold_db`` of the loudest), keep 20 ms."""
    hop = RATE // 100
    count = len(x) // hop
    if count == 0:
        return x
    rms = np.sqrt(np.mean(x[:count * hop].reshape(count, hop) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (threshold_db / 20))[0]
    if loud.size == 0:
        return x
    start = max(0, (loud[0] - 2) * hop)
    end = min(len(x), (loud[-1] + 3) * hop)
    return x[start:end]


def render_clip(job: ClipJob) -> np.ndarray:
    """The one-second clip (float64, 16 kHz) for a job: word placed, levelled, over a noise floor."""
    rng = np.random.default_rng(job.seed)
    word = _trim(speak(job.text, job.voice, job.pitch, job.rate))
    if len(word) > CLIP:  # very slow takes: keep the start, fade out the end
        word = word[:CLIP].copy()
        fade = RATE // 50
        word[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.max(np.abs(word))) or 1.0
    word = word * (10 ** (job.peak_db / 20) / peak)
    start = int(round(job.position * (CLIP - len(word))))
    clip = colored_noise(CLIP, job.floor_color, rng) * 10 ** (job.floor_db / 20)
    clip[start:start + len(word)] += word
    return clip


def _render_job(job: ClipJob, out_dir: str) -> str:
    from ..audio import write_wav

    write_wav(Path(out_dir) / job.relpath, render_clip(job), RATE)
    return job.relpath


def _render_chunk(args) -> int:
    jobs, out_dir = args
    for job in jobs:
        _render_job(job, out_dir)
    return len(jobs)


# -- planning -------------------------------------------------------------------

def _speaker_hash(seed: int, voice: str) -> str:
    return hashlib.sha1(f"sightsound-synth:{seed}:{voice}".encode()).hexdigest()[:8]


def plan_speakers(size: SynthSize, seed: int, bases: tuple[str, ...], variants: tuple[str, ...]) -> list[Speaker]:
    """Speakers with their split: variants are shuffled and the first 10 % validate, the next 10 % test."""
    rng = np.random.default_rng([seed, 1])
    pool = ("",) + tuple(variants)  # "" = the base voice without a variant
    order = [pool[i] for i in rng.permutation(len(pool))]
    if size.speakers is not None:
        order = order[:size.speakers]
    n_val = max(1, round(len(order) * SPLIT_SHARES["validation"]))
    n_test = max(1, round(len(order) * SPLIT_SHARES["testing"]))
    split_of = {v: ("validation" if i < n_val else "testing" if i < n_val + n_test else "training")
                for i, v in enumerate(order)}
    pairs = []
    for variant in order:
        if size.speakers is None:
            pairs += [(base, variant) for base in bases]
        else:
            pairs.append((bases[int(rng.integers(len(bases)))], variant))
    speakers = []
    for base, variant in pairs:
        voice = f"{base}+{variant}" if variant else base
        speakers.append(Speaker(hash=_speaker_hash(seed, voice), voice=voice, variant=variant or "-",
                                pitch=float(rng.uniform(25, 75)), rate=float(rng.uniform(130, 205)),
                                split=split_of[variant]))
    return speakers


def plan_clips(size: SynthSize, seed: int, speakers: list[Speaker]) -> list[ClipJob]:
    """Every clip of the corpus, in a fixed order (its index seeds the clip's noise)."""
    rng = np.random.default_rng([seed, 2])
    takes: dict[tuple[str, str], int] = {}
    entries: list[tuple[str, Speaker]] = []
    for word in TARGET_WORDS:
        chosen = list(range(len(speakers)))
        extra = size.clips_per_word - len(chosen)
        if extra < 0:
            chosen = sorted(rng.choice(len(speakers), size.clips_per_word, replace=False).tolist())
        elif extra > 0:
            chosen += rng.choice(len(speakers), extra, replace=extra > len(speakers)).tolist()
        entries += [(word, speakers[i]) for i in chosen]
    for s in speakers:
        count = min(size.aux_per_speaker, len(AUX_WORDS))
        for i in sorted(rng.choice(len(AUX_WORDS), count, replace=False).tolist()):
            entries.append((AUX_WORDS[i], s))
    jobs = []
    for index, (word, s) in enumerate(entries):
        n = takes.get((word, s.hash), 0)
        takes[(word, s.hash)] = n + 1
        jobs.append(ClipJob(
            index=index, relpath=f"{word}/{s.hash}_nohash_{n}.wav", word=word, voice=s.voice,
            text=TAKE_TEXTS[int(rng.integers(len(TAKE_TEXTS)))].format(w=word),
            pitch=int(np.clip(round(s.pitch + rng.uniform(-8, 8)), 0, 99)),
            rate=int(round(s.rate * rng.uniform(0.88, 1.12))),
            position=float(rng.uniform(0, 1)),
            peak_db=float(rng.uniform(-24, -2)),
            floor_db=float(rng.uniform(-75, -50)),
            floor_color=("white", "pink", "brown")[int(rng.integers(3))],
            seed=int(rng.integers(2**63)),
        ))
    return jobs


# -- background noise -------------------------------------------------------------

BABBLE_TEXT = (
    "The market was busy this morning and the baker sold fresh bread to every visitor. "
    "Children played near the fountain while their parents talked about the weather. "
    "A gardener watered the flowers and a painter finished the wall beside the library. "
    "Somebody laughed at a joke about a cooking class and the waiter brought hot soup. "
    "The teacher explained the lesson about mountains, rivers and the history of the city. "
)


def _babble(n: int, rng: np.random.Generator, bases: tuple[str, ...], variants: tuple[str, ...],
            streams: int = 6) -> np.ndarray:
    """Several espeak-ng voices reading prose backwards, overlapped: speech-like but wordless."""
    out = np.zeros(n)
    for _ in range(streams):
        voice = f"{bases[int(rng.integers(len(bases)))]}+{variants[int(rng.integers(len(variants)))]}"
        speech = speak(BABBLE_TEXT, voice, int(rng.integers(20, 80)), int(rng.integers(140, 220)))[::-1]
        speech = speech / max(float(np.sqrt(np.mean(speech ** 2))), 1e-9)
        reps = int(math.ceil((n + len(speech)) / len(speech)))
        track = np.tile(speech, reps)
        start = int(rng.integers(len(speech)))
        out += track[start:start + n] * rng.uniform(0.5, 1.0)
    return out / max(float(np.sqrt(np.mean(out ** 2))), 1e-9)


def _hum(n: int, rng: np.random.Generator, mains: float) -> np.ndarray:
    t = np.arange(n) / RATE
    drift = 1 + 0.002 * np.sin(2 * np.pi * 0.05 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * mains * np.cumsum(drift) / RATE
    out = sum((0.8 ** k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    out = out / np.sqrt(np.mean(out ** 2))
    return out + 0.05 * colored_noise(n, "pink", rng)


def noise_files(seconds: int, seed: int, bases: tuple[str, ...], variants: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``_background_noise_`` recordings: white, pink, brown, hum, babble and a mix."""
    rng = np.random.default_rng([seed, 3])
    n = seconds * RATE
    babble = _babble(n, rng, bases, variants)
    hum = _hum(n, rng, 60.0)
    sounds = {
        "white_noise.wav": colored_noise(n, "white", rng),
        "pink_noise.wav": colored_noise(n, "pink", rng),
        "brown_noise.wav": colored_noise(n, "brown", rng),
        "hum.wav": _hum(n, rng, 50.0),
        "babble.wav": babble,
        "babble_hum_fan.wav": babble + 0.5 * hum + 0.7 * colored_noise(n, "brown", rng),
    }
    out = {}
    for name, x in sounds.items():
        x = x / max(float(np.max(np.abs(x))), 1e-9)  # peak at full scale, then a level per file
        out[name] = x * 10 ** (rng.uniform(-14, -4) / 20)
    return out


# -- building ---------------------------------------------------------------------

def build_corpus(out_dir: str | os.PathLike, size: str | SynthSize = "small", seed: int = 0, workers: int = 2,
                 progress: bool = True, overwrite: bool = False) -> SynthReport:
    """Write the corpus into ``out_dir`` (created; it must not exist or be empty unless ``overwrite``).

    ``size`` is ``"small"``, ``"full"`` or a custom :class:`SynthSize`. The
    corpus is assembled in a temporary sibling folder and renamed into place
    at the end, so an interrupted build leaves no half corpus.
    """
    import time
    from concurrent.futures import ProcessPoolExecutor

    from ..audio import write_wav

    if isinstance(size, SynthSize):
        spec = size
    elif size in SIZES:
        spec = SIZES[size]
    else:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZES)}")
    size = spec.name
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out} is not empty; choose a new folder (or pass overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    bases, variants = list_voices()
    speakers = plan_speakers(spec, seed, bases, variants)
    jobs = plan_clips(spec, seed, speakers)
    split_of = {s.hash: s.split for s in speakers}

    with staged_directory(out, replace=overwrite) as temp:
        for word in sorted({j.word for j in jobs}):
            (temp / word).mkdir()
        chunk = 25
        chunks = [(jobs[i:i + chunk], str(temp)) for i in range(0, len(jobs), chunk)]
        bar = progress_bar(len(jobs), f"synth {size}", progress, unit="clip")
        try:
            if workers > 1:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    for done in pool.map(_render_chunk, chunks):
                        bar.update(done)
            else:
                for c in chunks:
                    bar.update(_render_chunk(c))
        finally:
            bar.close()

        noise_dir = temp / BACKGROUND_NOISE
        noise_dir.mkdir()
        noises = noise_files(spec.noise_seconds, seed, bases, variants)
        for name, x in noises.items():
            write_wav(noise_dir / name, x, RATE)
        (noise_dir / "README.md").write_text(
            "Generated noise for the sightsound synthetic speech corpus (16 kHz, 16-bit):\n"
            "white, pink (1/f) and brown (1/f^2) noise, 50-Hz mains hum with harmonics,\n"
            "babble (espeak-ng voices reading prose backwards, overlapped) and a babble/hum/fan mix.\n")
        for split, list_name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
            lines = sorted(j.relpath for j in jobs if split_of[j.relpath.split("/")[1].split("_nohash_")[0]] == split)
            (temp / list_name).write_text("".join(f"{line}\n" for line in lines))
        counts: dict[str, int] = {}
        for j in jobs:
            counts[j.word] = counts.get(j.word, 0) + 1
        per_split = {sp: sum(1 for s in speakers if s.split == sp) for sp in ("training", "validation", "testing")}
        manifest = {
            "generator": "sightsound.data.synth", "size": size, "seed": seed, "sample_rate": RATE,
            "espeak_ng": espeak_version(), "clips": len(jobs), "clips_per_word": counts,
            "split_by": "voice variant (validation/testing variants never appear in training)",
            "speakers": [asdict(s) for s in speakers],
            "noise_files": sorted(noises),
        }
        (temp / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return SynthReport(out_dir=out, size=size, seed=seed, clips=len(jobs), clips_per_word=counts,
                       speakers=per_split, noise_files=sorted(noises), seconds=time.perf_counter() - started)


__all__ = ["SIZES", "SynthSize", "Speaker", "ClipJob", "SynthReport", "build_corpus", "list_voices",
           "plan_speakers", "plan_clips", "render_clip", "speak", "noise_files", "colored_noise",
           "espeak_available", "RATE"]
