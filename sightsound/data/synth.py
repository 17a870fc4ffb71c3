"""An offline spoken-command corpus in the Speech Commands v0.02 layout, made with espeak-ng and Kokoro.

The real dataset cannot be downloaded on every machine, so this module
speaks the chapter's 18 target words (and auxiliary words for
``_unknown_``) with one or more *engines* -- ``espeak`` (espeak-ng, always)
and ``kokoro`` (Kokoro-82M, a neural multi-speaker synthesiser: the
``voices`` extra, see :mod:`sightsound.data.voices`) -- and writes them
exactly as Speech Commands lays them out::

    OUT_DIR/
      zero/ one/ ... yes/ no/          18 target words
      bed/ bird/ ... wow/              auxiliary words (become _unknown_)
      _background_noise_/*.wav         generated noise, 16 kHz, tens of seconds each
      validation_list.txt              "word/<speaker>_nohash_<n>.wav", one a line
      testing_list.txt
      synth.json                       how the corpus was made (seed, size, engines, speakers, split)
      manifest.jsonl                   one line per clip: path, word, split, speaker, engine, voice, settings

Every clip is a 16 kHz mono 16-bit WAV of exactly one second named
``<speaker hash>_nohash_<n>.wav``. A *speaker* is an espeak-ng English
voice with a voice variant (``gmw/en-US+m3``) plus its own pitch and speaking
rate; each take varies rate, pitch, intonation (``stop``, ``stop!``,
``stop?``), loudness, position of the word in the second and a faint noise
floor (so no clip holds digital silence). The validation and test lists are
split by *variant*: every speaker built on a held-out variant is in the same
list, so test voices (timbres) are never heard in training.

A Kokoro speaker is one of its 28 English voices (US/UK, female/male),
sometimes blended with a partner voice at a weight, at its own speed
(0.8-1.25); each take varies the speed a little and the same intonation,
level, position and noise floor as above. Kokoro voices are split the same
way: 3 voices validate and 3 test (a US female, a US male and a UK voice
each), and a blend only pairs voices of the same split, so no voice is
heard in two splits.

A build is resumable: clips are written into a hidden sibling
``.OUT_DIR.synth-partial`` with a journal of finished clips (and their
SHA-256); running the same build again (same seed, size and engines)
verifies and keeps them and renders only the rest. The folder is renamed
to ``OUT_DIR`` when every clip is there. ``max_clips`` stops a build after
that many new clips on purpose (to build in pieces).

The corpus is deterministic for a seed (given the same espeak-ng
installation; Kokoro's audio for the ONNX Runtime build) and built in
parallel. ``small`` has 20 clips per target word (seconds; about a minute
more with Kokoro), ``full`` 1,100 per target word (a few minutes on 2 cores
with espeak-ng alone; Kokoro takes about 0.8 s per clip and core, so about
an hour more for its share).

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
from ..fileio import fsync_directory, write_text_atomic
from .download import progress_bar
from .speech_commands import AUX_WORDS, BACKGROUND_NOISE, TARGET_WORDS

RATE = 16000  #: sample rate of every clip and noise file
CLIP = RATE  #: samples per clip (one second)
ESPEAK = "espeak-ng"
EXCLUDED_VARIANTS = frozenset({"fast"})  # espeak-ng's own "unstable" speed-test variant
TAKE_TEXTS = ("{w}", "{w}", "{w}.", "{w}!", "{w}?")  # intonation variety, plain word most often
SPLIT_SHARES = {"validation": 0.1, "testing": 0.1}  # of the variants; the rest train
ENGINES = ("espeak", "kokoro")
KOKORO_SPEED = (0.8, 1.25)  # a Kokoro speaker's own speed
KOKORO_BLEND_CHANCE = 0.5  # of the Kokoro speakers after a first pass over a split's voices: a blend
JOURNAL = ".progress.jsonl"  # inside the partial build: one line per finished clip
PLAN = ".plan.json"  # inside the partial build: what is being built


@dataclass(frozen=True)
class SynthSize:
    """How big a corpus is: speakers, takes per target word, auxiliary words, noise length."""

    name: str
    speakers: int | None  # None: every base voice x every variant
    clips_per_word: int  # takes of each target word (extra takes come from random speakers)
    aux_per_speaker: int  # distinct auxiliary words each speaker says once
    noise_seconds: int
    kokoro_speakers: int = 0  # Kokoro speakers, when the kokoro engine is used


SIZES = {
    "small": SynthSize("small", speakers=20, clips_per_word=20, aux_per_speaker=4, noise_seconds=15,
                       kokoro_speakers=12),
    "full": SynthSize("full", speakers=None, clips_per_word=1100, aux_per_speaker=8, noise_seconds=60,
                      kokoro_speakers=196),
}


@dataclass(frozen=True)
class Speaker:
    hash: str
    voice: str  # espeak-ng -v argument, e.g. "gmw/en-US+m3"; or a Kokoro voice, e.g. "af_heart"
    variant: str  # espeak-ng variant; for Kokoro the voice
    pitch: float  # espeak-ng -p, 0-99 (0 for Kokoro)
    rate: float  # espeak-ng -s, words per minute (0 for Kokoro)
    split: str  # training, validation or testing
    engine: str = "espeak"
    partner: str = ""  # Kokoro: the voice blended in ("" for none)
    weight: float = 1.0  # Kokoro: the share of ``voice`` in a blend
    speed: float = 1.0  # Kokoro: the speaker's speed


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
    engine: str = "espeak"
    partner: str = ""  # Kokoro blend partner
    weight: float = 1.0  # Kokoro blend weight of ``voice``
    speed: float = 1.0  # Kokoro speed of this take


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
    engines: tuple[str, ...] = ("espeak",)
    complete: bool = True  # False when ``max_clips`` stopped the build (run it again to resume)
    rendered: int = 0  # clips rendered by this run (the others were kept from an interrupted one)


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


_KOKORO: dict = {}  # (model, voices) -> KokoroVoices, one per process


def kokoro_engine(model: str | None = None, voices: str | None = None):
    """This process's :class:`~sightsound.data.voices.KokoroVoices` for ``model`` and ``voices`` (made once)."""
    from . import voices as kokoro

    key = (model, voices)
    if key not in _KOKORO:
        _KOKORO[key] = kokoro.KokoroVoices(model, voices)
    return _KOKORO[key]


def _speak_job(job: ClipJob, kokoro_files: dict | None = None) -> np.ndarray:
    if job.engine == "espeak":
        return speak(job.text, job.voice, job.pitch, job.rate)
    if job.engine == "kokoro":
        files = kokoro_files or {}
        tts = kokoro_engine(files.get("model"), files.get("voices"))
        return tts.speak(job.text, job.voice, job.partner, job.weight, job.speed).astype(np.float64)
    raise ValueError(f"unknown engine {job.engine!r}")


def render_clip(job: ClipJob, kokoro_files: dict | None = None) -> np.ndarray:
    """The one-second clip (float64, 16 kHz) for a job: word placed, levelled, over a noise floor."""
    rng = np.random.default_rng(job.seed)
    word = _trim(_speak_job(job, kokoro_files))
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


def _render_job(job: ClipJob, out_dir: str, kokoro_files: dict | None = None) -> str:
    """Write the job's WAV; return its SHA-256."""
    from ..audio import write_wav

    path = Path(out_dir) / job.relpath
    write_wav(path, render_clip(job, kokoro_files), RATE)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _render_chunk(args) -> list[dict]:
    jobs, out_dir, kokoro_files = args
    return [{"index": job.index, "path": job.relpath, "sha256": _render_job(job, out_dir, kokoro_files)}
            for job in jobs]


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


def _kokoro_hash(seed: int, voice: str, partner: str, weight: float, speed: float) -> str:
    return hashlib.sha1(f"sightsound-synth:kokoro:{seed}:{voice}:{partner}:{weight}:{speed}".encode()).hexdigest()[:8]


def kokoro_voice_splits(seed: int) -> dict[str, str]:
    """Each English Kokoro voice's split: 3 validate and 3 test (a US female, a US male and a UK voice
    each, drawn with the seed); the other 22 train.

    >>> splits = kokoro_voice_splits(0)
    >>> sorted(sum(1 for s in splits.values() if s == k) for k in ("training", "validation", "testing"))
    [3, 3, 22]
    """
    from .voices import VOICES

    rng = np.random.default_rng([seed, 4])
    groups = {g: [names[i] for i in rng.permutation(len(names))] for g, names in VOICES.items()}
    uk = ["bf", "bm"] if rng.integers(2) == 0 else ["bm", "bf"]
    held = {"validation": [groups["af"][0], groups["am"][0], groups[uk[0]][0]],
            "testing": [groups["af"][1], groups["am"][1], groups[uk[1]][0]]}
    split = {v: "training" for names in VOICES.values() for v in names}
    for name, voices in held.items():
        for v in voices:
            split[v] = name
    return split


def plan_kokoro_speakers(size: SynthSize, seed: int) -> list[Speaker]:
    """``size.kokoro_speakers`` Kokoro speakers: a voice (cycling through the split's voices), perhaps
    blended with another voice of the same split, at a speed of its own; 10 % validate, 10 % test."""
    n = size.kokoro_speakers
    if n <= 0:
        return []
    if n < 3:
        raise ValueError(f"a corpus with Kokoro needs at least 3 Kokoro speakers (one per split), got {n}")
    splits = kokoro_voice_splits(seed)
    rng = np.random.default_rng([seed, 5])
    n_val = max(1, round(n * SPLIT_SHARES["validation"]))
    n_test = max(1, round(n * SPLIT_SHARES["testing"]))
    speakers: list[Speaker] = []
    seen: set[str] = set()
    for split, count in (("validation", n_val), ("testing", n_test), ("training", n - n_val - n_test)):
        pool = sorted(v for v, s in splits.items() if s == split)
        order = [pool[i] for i in rng.permutation(len(pool))]
        for k in range(count):
            voice = order[k % len(order)]
            partner, weight = "", 1.0
            # the first pass over the split's voices keeps them pure; later speakers may blend two
            if k >= len(order) and rng.uniform() < KOKORO_BLEND_CHANCE:
                partner = pool[int(rng.integers(len(pool)))]
                if partner == voice:
                    partner = ""
                else:
                    weight = round(float(rng.uniform(0.35, 0.8)), 2)
            speed = round(float(rng.uniform(*KOKORO_SPEED)), 3)
            h = _kokoro_hash(seed, voice, partner, weight, speed)
            while h in seen:  # never: speeds are drawn from a continuum; kept for safety
                speed = round(speed + 0.001, 3)
                h = _kokoro_hash(seed, voice, partner, weight, speed)
            seen.add(h)
            speakers.append(Speaker(hash=h, voice=voice, variant=voice, pitch=0.0, rate=0.0, split=split,
                                    engine="kokoro", partner=partner, weight=weight, speed=speed))
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
        text = TAKE_TEXTS[int(rng.integers(len(TAKE_TEXTS)))].format(w=word)
        pitch = int(np.clip(round(s.pitch + rng.uniform(-8, 8)), 0, 99))
        factor = rng.uniform(0.88, 1.12)  # the take's speaking rate; for Kokoro half as much speed change
        common = dict(
            position=float(rng.uniform(0, 1)),
            peak_db=float(rng.uniform(-24, -2)),
            floor_db=float(rng.uniform(-75, -50)),
            floor_color=("white", "pink", "brown")[int(rng.integers(3))],
            seed=int(rng.integers(2**63)),
        )
        relpath = f"{word}/{s.hash}_nohash_{n}.wav"
        if s.engine == "kokoro":
            jobs.append(ClipJob(index=index, relpath=relpath, word=word, voice=s.voice, text=text, pitch=0, rate=0,
                                engine="kokoro", partner=s.partner, weight=s.weight,
                                speed=round(float(np.clip(s.speed * (1 + (factor - 1) / 2), 0.7, 1.35)), 3),
                                **common))
        else:
            jobs.append(ClipJob(index=index, relpath=relpath, word=word, voice=s.voice, text=text, pitch=pitch,
                                rate=int(round(s.rate * factor)), **common))
    return jobs


def clip_settings(job: ClipJob) -> dict:
    """What the manifest records of a clip's rendering: the engine's own settings and the common ones."""
    if job.engine == "kokoro":
        own = {"voice": job.voice, "blend": job.partner or None, "weight": job.weight if job.partner else None,
               "speed": job.speed}
    else:
        own = {"voice": job.voice, "pitch": job.pitch, "rate": job.rate}
    return {**own, "text": job.text, "position": round(job.position, 4), "peak_db": round(job.peak_db, 2),
            "floor_db": round(job.floor_db, 2), "floor_color": job.floor_color}


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

def parse_engines(engines: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"espeak,kokoro"`` (or a sequence) as a tuple of known engines in a fixed order.

    >>> parse_engines("kokoro, espeak")
    ('espeak', 'kokoro')
    """
    names = [e.strip() for e in (engines.split(",") if isinstance(engines, str) else engines) if e.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown or not names:
        raise ValueError(f"unknown engine(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ENGINES)}")
    return tuple(e for e in ENGINES if e in names)


def partial_dir(out_dir: str | os.PathLike) -> Path:
    """Where an unfinished build of ``out_dir`` is kept: the hidden sibling ``.<name>.synth-partial``."""
    out = Path(out_dir).absolute()
    return out.with_name(f".{out.name}.synth-partial")


def _read_journal(temp: Path, jobs: list[ClipJob]) -> set[int]:
    """Indices of the clips the journal lists whose WAV is still there with the recorded SHA-256."""
    by_index = {j.index: j for j in jobs}
    done: set[int] = set()
    journal = temp / JOURNAL
    if not journal.is_file():
        return done
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            index, path, digest = int(entry["index"]), entry["path"], entry["sha256"]
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a crash
        job = by_index.get(index)
        if job is None or job.relpath != path:
            continue
        try:
            if hashlib.sha256((temp / path).read_bytes()).hexdigest() == digest:
                done.add(index)
        except OSError:
            pass
    return done


def build_corpus(out_dir: str | os.PathLike, size: str | SynthSize = "small", seed: int = 0, workers: int = 2,
                 progress: bool = True, overwrite: bool = False, engines: str | tuple[str, ...] = ("espeak",),
                 max_clips: int | None = None) -> SynthReport:
    """Write the corpus into ``out_dir`` (created; it must not exist or be empty unless ``overwrite``).

    ``size`` is ``"small"``, ``"full"`` or a custom :class:`SynthSize`; ``engines`` is
    ``"espeak"``, ``"kokoro"`` or both (``"espeak,kokoro"``). The corpus is assembled in
    :func:`partial_dir` and renamed into place at the end, so an interrupted build leaves no half
    corpus at ``out_dir``; running the same build again resumes it (clips verified by their
    SHA-256 in the journal are kept). ``max_clips`` renders at most that many new clips, then
    returns a report with ``complete=False`` (the partial build stays for the next run).
    """
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

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
    engines = parse_engines(engines)
    if max_clips is not None and (isinstance(max_clips, bool) or not isinstance(max_clips, int) or max_clips < 0):
        raise ValueError(f"max_clips must be a non-negative int or None, got {max_clips!r}")
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out} is not empty; choose a new folder (or pass overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    kokoro_files = None
    kokoro_info = None
    if "kokoro" in engines:
        from . import voices as kokoro

        kokoro.require_extra()
        if spec.kokoro_speakers < 3:
            raise ValueError(f"size {size!r} has {spec.kokoro_speakers} Kokoro speakers; the kokoro engine needs 3 "
                             "or more (one per split)")
        model = kokoro.model_path()
        voices_file = kokoro.prepare_voices()
        kokoro_files = {"model": str(model), "voices": str(voices_file)}
        kokoro_info = {"model": model.name, "model_sha256": kokoro.expected_model_sha256(),
                       "model_packages": list(kokoro.MODEL_PACKAGES),
                       "voices_from": f"npm {kokoro.NPM_PACKAGE}@{kokoro.NPM_VERSION}",
                       "kokoro_onnx": importlib_version("kokoro-onnx"),
                       "onnxruntime": importlib_version("onnxruntime"), "sample_rate_in": kokoro.MODEL_RATE}

    bases, variants = list_voices()
    speakers = plan_speakers(spec, seed, bases, variants) if "espeak" in engines else []
    speakers += plan_kokoro_speakers(spec, seed) if "kokoro" in engines else []
    jobs = plan_clips(spec, seed, speakers)
    split_of = {s.hash: s.split for s in speakers}
    plan = {"generator": "sightsound.data.synth", "size": asdict(spec), "seed": seed, "engines": list(engines),
            "jobs": hashlib.sha256(json.dumps([asdict(j) for j in jobs]).encode()).hexdigest()}

    temp = partial_dir(out)
    if temp.is_dir():
        try:
            same = json.loads((temp / PLAN).read_text(encoding="utf-8")) == plan
        except (OSError, ValueError):
            same = False
        if not same:
            if not overwrite:
                raise DataError(f"{temp} holds an unfinished build with another seed, size or engines; run that "
                                "build again to finish it, or pass overwrite (--force) to discard it")
            shutil.rmtree(temp)
    if not temp.is_dir():
        temp.mkdir()
        write_text_atomic(temp / PLAN, json.dumps(plan) + "\n")
    done = _read_journal(temp, jobs)
    todo = [j for j in jobs if j.index not in done]
    if max_clips is not None:
        todo = todo[:max_clips]

    for word in sorted({j.word for j in jobs}):
        (temp / word).mkdir(exist_ok=True)
    chunk = 8
    chunks = [(todo[i:i + chunk], str(temp), kokoro_files) for i in range(0, len(todo), chunk)]
    bar = progress_bar(len(todo), f"synth {size} ({'+'.join(engines)})", progress, unit="clip")
    rendered = 0
    with open(temp / JOURNAL, "a", encoding="utf-8") as journal:
        def record(entries: list[dict]) -> None:
            nonlocal rendered
            journal.write("".join(json.dumps(e) + "\n" for e in entries))
            journal.flush()
            rendered += len(entries)
            done.update(e["index"] for e in entries)
            bar.update(len(entries))

        try:
            if workers > 1 and len(chunks) > 1:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    pending = {pool.submit(_render_chunk, c) for c in chunks}
                    try:
                        while pending:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for future in finished:
                                record(future.result())
                    except BaseException:
                        for future in pending:
                            future.cancel()
                        raise
            else:
                for c in chunks:
                    record(_render_chunk(c))
        finally:
            bar.close()
            os.fsync(journal.fileno())

    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.word] = counts.get(j.word, 0) + 1
    per_split = {sp: sum(1 for s in speakers if s.split == sp) for sp in ("training", "validation", "testing")}
    if len(done) < len(jobs):  # stopped on purpose by max_clips: the partial build stays for the next run
        return SynthReport(out_dir=out, size=size, seed=seed, clips=len(done), clips_per_word=counts,
                           speakers=per_split, noise_files=[], seconds=time.perf_counter() - started,
                           engines=engines, complete=False, rendered=rendered)

    noise_dir = temp / BACKGROUND_NOISE
    noise_dir.mkdir(exist_ok=True)
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
    with open(temp / "manifest.jsonl", "w", encoding="utf-8") as manifest_file:
        for j in jobs:
            speaker = j.relpath.split("/")[1].split("_nohash_")[0]
            manifest_file.write(json.dumps({"path": j.relpath, "word": j.word, "split": split_of[speaker],
                                            "speaker": speaker, "engine": j.engine, **clip_settings(j)}) + "\n")
    split_by = {"espeak": "voice variant (validation/testing variants never appear in training)",
                "kokoro": "Kokoro voice (validation/testing voices, alone or blended, never appear in training)"}
    manifest = {
        "generator": "sightsound.data.synth", "size": size, "seed": seed, "sample_rate": RATE,
        "engines": list(engines),
        "espeak_ng": espeak_version(), "clips": len(jobs), "clips_per_word": counts,
        "clips_per_engine": {e: sum(1 for j in jobs if j.engine == e) for e in engines},
        "split_by": "; ".join(f"{e}: {split_by[e]}" for e in engines),
        "speakers": [asdict(s) for s in speakers],
        "noise_files": sorted(noises),
        "manifest": "manifest.jsonl (one line per clip: path, word, split, speaker, engine, voice, settings)",
    }
    if kokoro_info is not None:
        manifest["kokoro"] = {**kokoro_info, "voice_splits": {
            v: sp for v, sp in kokoro_voice_splits(seed).items() if sp != "training"}}
    (temp / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for hidden in (JOURNAL, PLAN):
        (temp / hidden).unlink()
    if os.path.lexists(out):
        if overwrite:
            shutil.rmtree(out)
        else:
            out.rmdir()
    os.replace(temp, out)
    fsync_directory(out.parent)
    return SynthReport(out_dir=out, size=size, seed=seed, clips=len(jobs), clips_per_word=counts,
                       speakers=per_split, noise_files=sorted(noises), seconds=time.perf_counter() - started,
                       engines=engines, complete=True, rendered=rendered)


def importlib_version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


__all__ = ["SIZES", "ENGINES", "SynthSize", "Speaker", "ClipJob", "SynthReport", "build_corpus", "list_voices",
           "plan_speakers", "plan_kokoro_speakers", "kokoro_voice_splits", "plan_clips", "clip_settings",
           "parse_engines", "render_clip", "speak", "noise_files", "colored_noise", "espeak_available",
           "partial_dir", "RATE"]
