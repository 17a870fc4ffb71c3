"""Turning plans into audio: one clip (spoken by an engine, placed, levelled, over a noise floor)
and the ``_background_noise_`` recordings."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from .espeak import speak
from .spec import CLIP, RATE, ClipJob


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
    from .. import voices as kokoro

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


_SENTENCE: dict = {}  # the last sentence this process spoke: a sentence's windows are consecutive jobs


def _spoken_sentence(job: ClipJob, kokoro_files: dict | None) -> np.ndarray:
    key = (job.engine, job.text, job.voice, job.partner, job.weight, job.speed, job.pitch, job.rate)
    if key not in _SENTENCE:
        _SENTENCE.clear()
        _SENTENCE[key] = _trim(_speak_job(job, kokoro_files))
    return _SENTENCE[key]


def _render_excerpt(job: ClipJob, kokoro_files: dict | None, rng: np.random.Generator) -> np.ndarray:
    """The second of a spoken sentence that starts at ``job.position`` of it (0: its start, 1: its last
    second), the sentence's peak at ``job.peak_db``, over a noise floor."""
    said = _spoken_sentence(job, kokoro_files)
    said = said * (10 ** (job.peak_db / 20) / (float(np.max(np.abs(said))) or 1.0))
    clip = colored_noise(CLIP, job.floor_color, rng) * 10 ** (job.floor_db / 20)
    room = len(said) - CLIP
    if room >= 0:
        start = int(round(job.position * room))
        clip += said[start:start + CLIP]
    else:  # a sentence shorter than a second: placed like a word
        start = int(round(job.position * -room))
        clip[start:start + len(said)] += said
    return clip


def render_clip(job: ClipJob, kokoro_files: dict | None = None) -> np.ndarray:
    """The one-second clip (float64, 16 kHz) for a job: word placed, levelled, over a noise floor (or
    a second of a sentence, for an excerpt job)."""
    if job.excerpt:
        return _render_excerpt(job, kokoro_files, np.random.default_rng(job.seed))
    return place_word(_speak_job(job, kokoro_files), job)


def place_word(spoken: np.ndarray, job: ClipJob) -> np.ndarray:
    """``spoken`` (16 kHz) as a one-second clip the way ``job`` says: trimmed of its quiet ends, its peak at
    ``job.peak_db``, starting at ``job.position`` of the free room, over ``job``'s noise floor."""
    rng = np.random.default_rng(job.seed)
    word = _trim(np.asarray(spoken, dtype=np.float64))
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
    from ...audio import write_wav

    path = Path(out_dir) / job.relpath
    write_wav(path, render_clip(job, kokoro_files), RATE)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_chunk(args) -> list[dict]:
    jobs, out_dir, kokoro_files = args
    return [{"index": job.index, "path": job.relpath, "sha256": _render_job(job, out_dir, kokoro_files)}
            for job in jobs]


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
