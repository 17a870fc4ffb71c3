"""Cached spectrogram frames of Speech Commands WAVs (one role: compute once, read later).

Each WAV's frames are computed once (decode, polyphase resampling to
44.1 kHz, browser-FFT frames, see :mod:`sightsound.audio`) and stored under
``paths.cache_dir() / "speech-spectrograms"`` keyed by the file's absolute
path, size and modification time. A clip's entry holds the 43 frames of the
clip plus :data:`CONTEXT_FRAMES` frames of zero-padding on each side, as
float16 dB values (rounding <= 0.03 dB), so later epochs and later runs read
instead of recomputing.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .. import audio, paths
from ..errors import AudioError, DataError
from ..fileio import atomic_write
from .download import progress_bar

CONTEXT_FRAMES = 4  #: frames of padding cached on each side of a clip: the largest possible time shift
CACHE_VERSION = "v1"  # bump when the front end or the cache layout changes


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    return paths.cache_dir(cache_dir) / "speech-spectrograms" / CACHE_VERSION


def _cache_key(path: Path, kind: str) -> str:
    try:
        st = path.stat()
    except OSError as err:  # vanished, dangling symlink, no permission
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    ident = f"{kind}|{CONTEXT_FRAMES}|{audio.SILENCE_DB}|{path.absolute()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()  # names need not be UTF-8


def clip_frames(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """dB frames ``[43 + 2*CONTEXT_FRAMES, 232]`` of a clip with zero context on both sides.

    Rows ``CONTEXT_FRAMES .. CONTEXT_FRAMES + 42`` equal
    ``audio.spectrogram(samples, sample_rate, normalized=False)``.
    """
    x = audio.resample(samples, sample_rate) if sample_rate != audio.SAMPLE_RATE else np.asarray(samples)
    x = np.asarray(x, dtype=np.float64)[:audio.CLIP_SAMPLES]
    pad = CONTEXT_FRAMES * audio.HOP
    total = audio.NUM_FRAMES + 2 * CONTEXT_FRAMES
    length = audio.FFT_SIZE + (total - 1) * audio.HOP
    padded = np.zeros(length)
    padded[pad:pad + x.size] = x
    return audio.frames(padded)


def compute_entry(path: Path, kind: str) -> np.ndarray:
    samples, rate = audio.read_wav(path)
    if kind == "clip":
        return clip_frames(samples, rate).astype(np.float16)
    x = audio.resample(samples, rate) if rate != audio.SAMPLE_RATE else samples
    if x.size < audio.CLIP_SAMPLES:
        x = np.concatenate([x, np.zeros(audio.CLIP_SAMPLES - x.size, dtype=x.dtype)])
    return audio.frames(x).astype(np.float16)


def _load_or_compute(args) -> tuple[str, str | None]:
    """Worker: make sure one cache entry exists; returns (path, error message or None)."""
    path, kind, entry = args
    entry = Path(entry)
    if entry.is_file():
        return str(path), None
    try:
        frames = compute_entry(Path(path), kind)
    except AudioError as err:
        return str(path), str(err)
    entry.parent.mkdir(parents=True, exist_ok=True)
    # A cache may be lost in a crash (no fsync); private (0600) as mkstemp made entries before.
    with atomic_write(entry, durable=False, suffix=".part", permissions=0o600) as out:
        np.save(out, frames)
    return str(path), None


class SpectrogramCache:
    """Per-file dB frames on disk (float16 ``.npy``), keyed by path, size and mtime.

    >>> cache = SpectrogramCache()  # doctest: +SKIP
    >>> frames = cache.get_many([Path("yes/a_nohash_0.wav")])  # [N, 51, 232] float16  # doctest: +SKIP
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, workers: int = 2, progress: bool = True):
        self.root = _cache_root(cache_dir)
        self.workers = workers
        self.progress = progress

    def entry(self, path: Path, kind: str = "clip") -> Path:
        key = _cache_key(path, kind)
        return self.root / key[:2] / f"{key}.npy"

    def _ensure(self, paths_: list[Path], kind: str) -> list[Path]:
        entries = [self.entry(p, kind) for p in paths_]
        todo = [(str(p), kind, str(e)) for p, e in zip(paths_, entries) if not e.is_file()]
        if todo:
            self.root.mkdir(parents=True, exist_ok=True)
            bar = progress_bar(len(todo), "spectrograms", self.progress, unit="clip")
            errors = []
            try:
                if self.workers > 1 and len(todo) > 64:
                    with ProcessPoolExecutor(max_workers=self.workers) as pool:
                        for path, err in pool.map(_load_or_compute, todo, chunksize=32):
                            bar.update(1)
                            if err:
                                errors.append(err)
                else:
                    for item in todo:
                        path, err = _load_or_compute(item)
                        bar.update(1)
                        if err:
                            errors.append(err)
            finally:
                bar.close()
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise DataError(f"cannot read {errors[0]}{more}")
        return entries

    def get_many(self, paths_: list[Path], kind: str = "clip") -> np.ndarray:
        """Stacked clip frames ``[N, 43 + 2*CONTEXT_FRAMES, 232]`` float16 (computed when missing)."""
        entries = self._ensure(list(paths_), kind)
        rows = audio.NUM_FRAMES + 2 * CONTEXT_FRAMES
        out = np.empty((len(entries), rows, audio.FRAME_SIZE), dtype=np.float16)
        for i, e in enumerate(entries):
            out[i] = np.load(e, allow_pickle=False)
        return out

    def get(self, path: Path, kind: str = "noise") -> np.ndarray:
        """The frames of one file (for noise files: all of its frames)."""
        return np.load(self._ensure([Path(path)], kind)[0], allow_pickle=False)


__all__ = ["CONTEXT_FRAMES", "SpectrogramCache", "clip_frames", "compute_entry"]
