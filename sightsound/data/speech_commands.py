"""Speech Commands v0.02: download, layout checks, the chapter's 20 classes, cached spectrograms, augmentation.

A dataset folder (the real one, or one made by :mod:`sightsound.data.synth`)
holds one folder of 16-kHz WAVs per word, ``validation_list.txt`` and
``testing_list.txt`` (paths like ``yes/0a7c2a8d_nohash_0.wav``; every other
clip trains) and ``_background_noise_/`` with long noise recordings. The
real dataset lives in ``paths.data_dir() / "speech_commands"`` and is
downloaded there when missing and the directory is writable
(:func:`ensure_speech_commands`); commands take the folder itself.

**Classes.** The chapter's 20: the 18 :data:`TARGET_WORDS`, ``_unknown_``
(clips of every other word folder) and ``_background_noise_`` (one-second
windows cut from the noise files). They are ordered as the speech-commands
package orders a vocabulary (JavaScript's default sort, which puts
``_background_noise_`` first): :data:`WORDS`. That is the model's output
order and the ``words`` list of ``metadata.json``.

**Shares.** ``unknown_share`` and ``noise_share`` (default 1/20 each) are the
fractions of each split made of ``_unknown_`` and ``_background_noise_``
examples, so each is about as large as an average word class. Unknown clips
are a seeded sample of the split's other-word clips (all of them when fewer
are available). The noise files carry no split, so each file is divided in
time: its first 80 % feeds training, the next 10 % validation and the last
10 % testing.

**Cache.** Each WAV's frames are computed once (decode, polyphase resampling
to 44.1 kHz, browser-FFT frames, see :mod:`sightsound.audio`) and stored
under ``paths.cache_dir() / "speech-spectrograms"`` keyed by the file's
absolute path, size and modification time. A clip's entry holds the 43
frames of the clip plus :data:`CONTEXT_FRAMES` frames of zero-padding on
each side, as float16 dB values (rounding <= 0.03 dB), so later epochs and
later runs read instead of recomputing.

**Augmentation** (training split only, fresh every epoch) works on those
cached frames: a random time shift of up to ``shift_frames`` whole frames
(23 ms each, the step the browser's recognizer moves in), background noise
from the training part of the noise files mixed at a random SNR (powers
add: ``|S|^2 + g^2 |N|^2``, the expected power of the waveform sum) and a
random gain (after z-normalisation a gain only shows where a value sits at
:data:`~sightsound.audio.SILENCE_DB`).

Example::

    >>> from sightsound.data.speech_commands import load_speech_commands
    >>> data = load_speech_commands("/data/speech_commands")  # doctest: +SKIP
    >>> x, y = data.split("training").arrays()  # doctest: +SKIP
    >>> x.shape[1:], y.shape[1]  # doctest: +SKIP
    ((43, 232, 1), 20)
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import audio, paths
from ..errors import AudioError, DataError, DownloadError
from ..fileio import atomic_write
from .download import download_file, progress_bar, safe_extract
from ..speech.model_files import BACKGROUND_NOISE_TAG as BACKGROUND_NOISE
from ..speech.model_files import UNKNOWN_TAG as UNKNOWN

URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
ARCHIVE_NAME = "speech_commands_v0.02.tar.gz"
SUBDIR = "speech_commands"

TARGET_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "up", "down", "left", "right", "go", "stop", "yes", "no")
AUX_WORDS = ("backward", "bed", "bird", "cat", "dog", "follow", "forward", "happy", "house", "learn",
             "marvin", "off", "on", "sheila", "tree", "visual", "wow")
#: The 20 classes in model-output order (speech-commands sorts its vocabulary; "_" sorts first).
WORDS = tuple(sorted((BACKGROUND_NOISE, UNKNOWN) + TARGET_WORDS))
LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
SPLITS = ("training", "validation", "testing")
NOISE_RANGES = {"training": (0.0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0)}
DEFAULT_SHARE = 1 / 20

CONTEXT_FRAMES = 4  #: frames of padding cached on each side of a clip: the largest possible time shift
CACHE_VERSION = "v1"  # bump when the front end or the cache layout changes


def default_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """``paths.data_dir(data_dir) / "speech_commands"``: where the real dataset is kept."""
    return paths.data_dir(data_dir) / SUBDIR


# -- download and extraction -------------------------------------------------------------

def is_dataset_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` has both split lists (a complete Speech Commands layout)."""
    f = Path(folder)
    return all((f / name).is_file() for name in LISTS.values())


def ensure_speech_commands(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                           urls: tuple[str, ...] = (URL,), sha256: str | None = SHA256,
                           keep_archive: bool = False, progress: bool = True, timeout: float = 60) -> Path:
    """The dataset folder ``<data dir>/speech_commands``, downloading and extracting it when missing.

    The archive (about 2.3 GB) is fetched atomically with a progress bar and
    checked against :data:`SHA256`, then extracted safely (:func:`.download.safe_extract`)
    and deleted unless ``keep_archive``. A read-only data directory or a
    failed download raises :class:`DataError` saying what to do instead.
    """
    folder = default_folder(data_dir).absolute()
    if is_dataset_folder(folder):
        return folder
    how = (f"Download {URL} yourself and extract it into {folder}, or build the offline corpus with "
           f"`sightsound speech synth DIR` and pass DIR.")
    if not download:
        raise DataError(f"Speech Commands not found in {folder}. {how}")
    if not paths.is_writable_dir(folder.parent):
        raise DataError(f"Speech Commands not found in {folder}, and {folder.parent} is read-only, "
                        f"so nothing was downloaded. {how}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    archive = folder.parent / ARCHIVE_NAME
    if not archive.is_file():
        try:
            download_file(list(urls), archive, sha256=sha256, progress=progress, timeout=timeout)
        except DownloadError as err:
            raise DataError(f"{err}\n{how}") from None
    safe_extract(archive, folder, progress=progress)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    if not is_dataset_folder(folder):
        raise DataError(f"{archive.name} did not contain validation_list.txt and testing_list.txt; "
                        f"is it the Speech Commands v0.02 archive?")
    return folder


# -- layout --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    """One word recording: ``word`` is its folder, ``label`` its class (a target word or ``_unknown_``)."""

    path: Path
    word: str
    label: str
    speaker: str


def speaker_of(file_name: str) -> str:
    """The speaker hash of ``<hash>_nohash_<n>.wav`` (the part before ``_nohash_``)."""
    return file_name.split("_nohash_")[0]


def _read_list(folder: Path, name: str, words: set[str]) -> set[str]:
    path = folder / name
    if not path.is_file():
        raise DataError(f"{folder} is not a Speech Commands folder: {name} is missing "
                        f"(it lists the held-out clips as word/file.wav, one a line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    entries = set()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("/")
        if len(parts) != 2 or not parts[1].lower().endswith(".wav") or ".." in parts:
            raise DataError(f"{path}, line {number}: expected word/file.wav, got {line!r}")
        if parts[0] not in words:
            raise DataError(f"{path}, line {number}: {line!r} names a word folder that does not exist")
        entries.add(line)
    return entries


def scan_folder(folder: str | os.PathLike, targets: tuple[str, ...] = TARGET_WORDS
                ) -> tuple[dict[str, list[Clip]], list[Path]]:
    """Clips per split and the noise files of a dataset folder; :class:`DataError` on a bad layout."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    word_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    words = {p.name for p in word_dirs}
    missing = [w for w in targets if w not in words]
    if missing:
        raise DataError(f"{root}: no folder for the target word(s) {', '.join(missing)}")
    lists = {split: _read_list(root, name, words) for split, name in LISTS.items()}
    overlap = lists["validation"] & lists["testing"]
    if overlap:
        raise DataError(f"{root}: {len(overlap)} clip(s) are in both lists, e.g. {sorted(overlap)[0]}")
    target_set = set(targets)
    splits: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    for d in word_dirs:
        files = sorted(f.name for f in d.iterdir() if f.suffix.lower() == ".wav" and f.is_file())
        if not files:
            raise DataError(f"{d}: word folder holds no .wav files")
        label = d.name if d.name in target_set else UNKNOWN
        for name in files:
            rel = f"{d.name}/{name}"
            seen.add(rel)
            split = "validation" if rel in lists["validation"] else "testing" if rel in lists["testing"] else "training"
            splits[split].append(Clip(d / name, d.name, label, speaker_of(name)))
    for split, entries in lists.items():
        absent = sorted(entries - seen)
        if absent:
            raise DataError(f"{root / LISTS[split]} lists {len(absent)} file(s) that do not exist, "
                            f"e.g. {absent[0]}")
    noise_dir = root / BACKGROUND_NOISE
    noise = sorted(p for p in noise_dir.glob("*") if p.suffix.lower() == ".wav" and p.is_file()) \
        if noise_dir.is_dir() else []
    return splits, noise


# -- spectrogram cache ----------------------------------------------------------------------

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


def _compute_entry(path: Path, kind: str) -> np.ndarray:
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
        frames = _compute_entry(Path(path), kind)
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


# -- augmentation ------------------------------------------------------------------------

@dataclass(frozen=True)
class Augmentation:
    """Random changes applied to every training example, fresh each epoch.

    ``shift_frames``: time shift of up to that many frames either way (at most
    :data:`CONTEXT_FRAMES`); ``noise_probability``: chance of mixing in
    background noise, at an SNR drawn from ``snr_db``; ``gain_db``: range of a
    random gain. ``fragment_probability``: chance that a clip is shifted so far
    that only a ``fragment_visible`` share of its word (its frames within
    30 dB of the loudest) stays in the window, at either edge, and is labelled
    ``_unknown_``: a streaming recognizer sees such windows as the word enters
    or leaves, and a model that never saw one guesses a word from the
    fragment. ``partial_probability``: chance that a clip is shifted so that a
    ``partial_visible`` share of its word stays, keeping its label (a window
    that hears most of "seven" should say "seven", not "six").
    ``Augmentation.none()`` turns everything off.
    """

    shift_frames: int = CONTEXT_FRAMES
    noise_probability: float = 0.7
    snr_db: tuple[float, float] = (3.0, 30.0)
    gain_db: tuple[float, float] = (-12.0, 12.0)
    fragment_probability: float = 0.0
    fragment_visible: tuple[float, float] = (0.05, 0.35)
    partial_probability: float = 0.0
    partial_visible: tuple[float, float] = (0.6, 1.0)

    def __post_init__(self):
        if not 0 <= self.shift_frames <= CONTEXT_FRAMES:
            raise ValueError(f"shift_frames must be in 0..{CONTEXT_FRAMES}, got {self.shift_frames}")
        if not 0 <= self.noise_probability <= 1:
            raise ValueError(f"noise_probability must be in [0, 1], got {self.noise_probability}")
        low, high = self.snr_db
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"snr_db must be a finite (min, max) range in dB, got {self.snr_db}")
        for name in ("fragment", "partial"):
            probability, (low, high) = getattr(self, f"{name}_probability"), getattr(self, f"{name}_visible")
            if not 0 <= probability <= 1:
                raise ValueError(f"{name}_probability must be in [0, 1], got {probability}")
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name}_visible must be a (min, max) share in (0, 1], got {(low, high)}")

    @classmethod
    def none(cls) -> "Augmentation":
        return cls(shift_frames=0, noise_probability=0.0, snr_db=(0.0, 0.0), gain_db=(0.0, 0.0))


def normalize_batch(x: np.ndarray) -> np.ndarray:
    """:func:`sightsound.audio.normalize` for every example of ``[N, ...]`` at once, in place (float32).

    Runs on PyTorch's threads (a single numpy pass over an epoch of speech
    examples took seconds); each example's mean and variance are taken in one
    float64 pass over it.
    """
    t = torch.from_numpy(x)
    for start in range(0, len(x), 1024):
        block = t[start:start + 1024]
        var, mean = torch.var_mean(block.double(), dim=tuple(range(1, x.ndim)), correction=0, keepdim=True)
        block.sub_(mean.float()).div_((var.sqrt() + audio.NORMALIZE_EPSILON).float())
    return x


def _float32(a: np.ndarray) -> np.ndarray:
    """float16 -> float32 with PyTorch's vectorised conversion (numpy's is several times slower)."""
    return torch.from_numpy(np.ascontiguousarray(a)).float().numpy()


def _windows(frames: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """43-frame windows from ``starts``; for ``[N, F, 232]`` clips, frames beyond either end
    repeat the clip's first or last frame (its background)."""
    idx = starts[:, None] + np.arange(audio.NUM_FRAMES)[None, :]
    if frames.ndim == 3:
        return frames[np.arange(len(starts))[:, None], np.clip(idx, 0, frames.shape[1] - 1)]
    return frames[idx]


def active_spans(frames: np.ndarray, within_db: float = 30.0) -> np.ndarray:
    """``[N, 2]`` first and last+1 frame of each clip's ``[N, F, 232]`` dB frames whose total
    power is within ``within_db`` of the clip's loudest frame."""
    spans = np.empty((len(frames), 2), dtype=np.int64)
    for start in range(0, len(frames), 2048):
        power = torch.from_numpy(np.ascontiguousarray(frames[start:start + 2048])).float()
        power = power.mul_(_DB_TO_LN).exp_().sum(dim=2)
        level = power.clamp_(min=1e-30).log10_().mul_(10.0)
        on = level >= level.amax(dim=1, keepdim=True) - within_db
        spans[start:start + len(on), 0] = on.int().argmax(dim=1).numpy()
        spans[start:start + len(on), 1] = frames.shape[1] - on.flip(1).int().argmax(dim=1).numpy()
    return spans


# -- one split -------------------------------------------------------------------------------

@dataclass
class SpeechSplit:
    """The examples of one split: clips (with cached frames) plus noise windows.

    ``arrays()`` gives model-ready ``x`` ``[N, 43, 232, 1]`` float32 (z-normalised)
    and one-hot ``y`` ``[N, len(words)]``; ``labels`` holds the class ids in the
    same order (clips first, then noise windows).
    """

    name: str
    words: tuple[str, ...]
    clips: list[Clip]
    clip_frames: np.ndarray  # [N, 43 + 2*CONTEXT_FRAMES, 232] float16 dB
    noise_frames: list[np.ndarray]  # this split's part of each noise file, [F_i, 232] float16 dB
    noise_examples: int
    seed: int
    epoch_noise: list[np.ndarray] = field(default_factory=list)  # training part of noise, for mixing
    _all_noise: np.ndarray | None = field(default=None, repr=False)  # epoch_noise end to end, made on first use
    _noise_lengths: np.ndarray | None = field(default=None, repr=False)  # frames of each epoch_noise file
    _noise_offsets: np.ndarray | None = field(default=None, repr=False)  # where each starts in _all_noise
    _spans: np.ndarray | None = field(default=None, repr=False)  # active_spans(clip_frames), when needed

    @property
    def labels(self) -> np.ndarray:
        ids = {w: i for i, w in enumerate(self.words)}
        clip_ids = [ids[c.label] for c in self.clips]
        return np.array(clip_ids + [ids[BACKGROUND_NOISE]] * self.noise_examples, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips) + self.noise_examples

    def counts(self) -> dict[str, int]:
        """Examples per class, in :attr:`words` order."""
        binc = np.bincount(self.labels, minlength=len(self.words))
        return {w: int(n) for w, n in zip(self.words, binc)}

    def arrays(self, augmentation: Augmentation | None = None, rng: np.random.Generator | None = None,
               one_hot: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs and targets. Without ``augmentation`` the output is the same every call
        (noise windows drawn with the split's own seed)."""
        aug = augmentation or Augmentation.none()
        rng = rng if rng is not None else np.random.default_rng([self.seed, 7])
        fixed = np.random.default_rng([self.seed, 11])  # noise-window choice of unaugmented splits
        n_clips, n = len(self.clips), len(self)
        x = np.empty((n, audio.NUM_FRAMES, audio.FRAME_SIZE, 1), dtype=np.float32)
        view = x[..., 0]
        labels = self.labels
        fragments = aug.fragment_probability > 0 and UNKNOWN in self.words and n_clips > 0
        partials = aug.partial_probability > 0 and n_clips > 0
        if (fragments or partials) and self._spans is None:
            self._spans = active_spans(self.clip_frames)
        block = 1024
        for start in range(0, n_clips, block):
            stop = min(start + block, n_clips)
            size = stop - start
            shifts = rng.integers(-aug.shift_frames, aug.shift_frames + 1, size) if aug.shift_frames else np.zeros(size, int)
            starts = CONTEXT_FRAMES - shifts
            taken = np.zeros(size, dtype=bool)
            if fragments:
                cut = np.flatnonzero(rng.random(size) < aug.fragment_probability)
                starts[cut] = self._edge_starts(start + cut, aug.fragment_visible, rng)
                labels[start + cut] = self.words.index(UNKNOWN)
                taken[cut] = True
            if partials:
                cut = np.flatnonzero((rng.random(size) < aug.partial_probability) & ~taken)
                starts[cut] = self._edge_starts(start + cut, aug.partial_visible, rng)
            frames = _float32(_windows(self.clip_frames[start:stop], starts))
            if aug.noise_probability > 0 and self.epoch_noise:
                mix = rng.random(size) < aug.noise_probability
                if mix.any():
                    frames[mix] = self._mix_noise(frames[mix], rng, aug)
            if aug.gain_db != (0.0, 0.0):
                frames = _gain(frames, rng.uniform(*aug.gain_db, size))
            view[start:stop] = frames
        if self.noise_examples:
            sources = self.noise_frames
            pick_rng = rng if aug is not None and aug != Augmentation.none() else fixed
            which = pick_rng.integers(len(sources), size=self.noise_examples)
            for i, k in enumerate(which):
                src = sources[k]
                s = int(pick_rng.integers(0, len(src) - audio.NUM_FRAMES + 1))
                view[n_clips + i] = src[s:s + audio.NUM_FRAMES]
            if aug.gain_db != (0.0, 0.0):
                view[n_clips:] = _gain(view[n_clips:], rng.uniform(*aug.gain_db, self.noise_examples))
        normalize_batch(x)
        if not one_hot:
            return x, labels
        y = np.zeros((n, len(self.words)), dtype=np.float32)
        y[np.arange(n), labels] = 1.0
        return x, y

    def _edge_starts(self, clips: np.ndarray, visible_share: tuple[float, float],
                     rng: np.random.Generator) -> np.ndarray:
        """Window starts (in cached frames) that leave a random ``visible_share`` of each clip's word
        inside the window, the rest beyond its end or its start (at random)."""
        first, last = self._spans[clips].T
        visible = np.maximum(1, np.round(rng.uniform(*visible_share, len(clips)) * (last - first)))
        at_end = rng.random(len(clips)) < 0.5  # the word leaves through the window's end, else its start
        return np.where(at_end, first + visible - audio.NUM_FRAMES, last - visible).astype(np.int64)

    def _mix_noise(self, frames: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
        size = len(frames)
        if self._all_noise is None:  # the noise files end to end, so one gather cuts every window
            self._all_noise = np.concatenate(self.epoch_noise)
            self._noise_lengths = np.array([len(src) for src in self.epoch_noise])
            self._noise_offsets = np.concatenate([[0], np.cumsum(self._noise_lengths)[:-1]])
        which = rng.integers(len(self.epoch_noise), size=size)
        starts = rng.integers(0, self._noise_lengths[which] - audio.NUM_FRAMES + 1)  # a window of each file
        noise = _float32(_windows(self._all_noise, self._noise_offsets[which] + starts))
        snr = rng.uniform(*aug.snr_db, size)
        # powers, the mix and back to dB on PyTorch's threads (numpy's single pass was 1/4 of an epoch)
        p_s = torch.from_numpy(frames).mul(_DB_TO_LN).exp_()
        p_n = torch.from_numpy(noise).mul_(_DB_TO_LN).exp_()
        e_s, e_n = p_s.sum(dim=(1, 2)).double(), p_n.sum(dim=(1, 2)).double().clamp_(min=1e-30)
        scale = (e_s / e_n / torch.from_numpy(10.0 ** (snr / 10.0))).float()
        p = p_s.add_(p_n.mul_(scale[:, None, None])).clamp_(min=audio.SILENCE_AMPLITUDE ** 2)
        return p.log10_().mul_(10.0).numpy()


_DB_TO_LN = float(np.log(10.0) / 10.0)  #: 10^(dB/10) = exp(dB * ln(10)/10)


def _gain(frames: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Add a gain in dB, keeping values at the silence floor there (zeros stay zeros)."""
    floor = frames <= audio.SILENCE_DB
    out = frames + gains_db.astype(np.float32).reshape(-1, *([1] * (frames.ndim - 1)))
    np.maximum(out, audio.SILENCE_DB, out=out)
    out[floor] = audio.SILENCE_DB
    return out


# -- the whole dataset ---------------------------------------------------------------------

@dataclass
class SpeechCommandsData:
    """A loaded dataset folder: the three splits, ready for :meth:`SpeechSplit.arrays`."""

    root: Path
    words: tuple[str, ...]
    splits: dict[str, SpeechSplit]
    noise_files: list[Path]

    def split(self, name: str) -> SpeechSplit:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; choose one of {', '.join(self.splits)}")
        return self.splits[name]


def _share_count(targets: int, share: float, other: float) -> int:
    if not 0 <= share < 1 or share + other >= 1:
        raise ValueError(f"unknown and noise shares must be in [0, 1) and sum below 1, got {share}, {other}")
    return int(round(targets * share / (1 - share - other)))


def load_speech_commands(folder: str | os.PathLike, *, targets: tuple[str, ...] = TARGET_WORDS,
                         unknown_share: float = DEFAULT_SHARE, noise_share: float = DEFAULT_SHARE,
                         seed: int = 0, splits: tuple[str, ...] = SPLITS,
                         cache_dir: str | os.PathLike | None = None, workers: int = 2,
                         progress: bool = True) -> SpeechCommandsData:
    """Load a Speech Commands folder as the chapter's classes, with cached spectrograms.

    ``targets`` are the words kept as classes (default: the chapter's 18);
    every other word folder feeds ``_unknown_``. Classes are
    ``sorted(targets + ("_background_noise_", "_unknown_"))``. ``splits``
    limits which splits are loaded (and have their spectrograms computed).
    """
    root = Path(folder).absolute()
    targets = tuple(targets)
    if len(set(targets)) != len(targets) or not targets:
        raise ValueError(f"targets must be distinct words, got {targets!r}")
    words = tuple(sorted(targets + (BACKGROUND_NOISE, UNKNOWN)))
    by_split, noise_files = scan_folder(root, targets)
    if noise_share > 0 and not noise_files:
        raise DataError(f"{root}: no noise recordings in {BACKGROUND_NOISE}/ "
                        f"(needed for the {BACKGROUND_NOISE} class; pass noise_share=0 to go without)")
    cache = SpectrogramCache(cache_dir, workers=workers, progress=progress)
    noise_all = [cache.get(p, "noise") for p in noise_files]
    for p, frames in zip(noise_files, noise_all):
        if len(frames) < audio.NUM_FRAMES * 10:
            raise DataError(f"{p}: noise recording is too short ({len(frames)} frames); "
                            f"at least {audio.NUM_FRAMES * 10} frames (10 s) are needed to cut three splits")

    def part(frames: np.ndarray, split: str) -> np.ndarray:
        lo, hi = NOISE_RANGES[split]
        return frames[int(len(frames) * lo):int(len(frames) * hi)]

    result = {}
    for i, split in enumerate(splits):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        clips = by_split[split]
        target_clips = [c for c in clips if c.label != UNKNOWN]
        pool = [c for c in clips if c.label == UNKNOWN]
        if not target_clips:
            raise DataError(f"{root}: the {split} split has no clips of the target words")
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        n_unknown = min(len(pool), _share_count(len(target_clips), unknown_share, noise_share))
        chosen = [pool[j] for j in sorted(rng.choice(len(pool), n_unknown, replace=False))] if n_unknown else []
        n_noise = _share_count(len(target_clips), noise_share, unknown_share) if noise_files else 0
        ordered = target_clips + chosen
        frames = cache.get_many([c.path for c in ordered]) if ordered else np.zeros((0, 51, 232), np.float16)
        result[split] = SpeechSplit(
            name=split, words=words, clips=ordered, clip_frames=frames,
            noise_frames=[part(f, split) for f in noise_all], noise_examples=n_noise,
            seed=seed * 1000 + SPLITS.index(split),
            epoch_noise=[part(f, "training") for f in noise_all])
    return SpeechCommandsData(root=root, words=words, splits=result, noise_files=noise_files)


__all__ = ["URL", "SHA256", "SUBDIR", "WORDS", "TARGET_WORDS", "AUX_WORDS", "BACKGROUND_NOISE", "UNKNOWN",
           "CONTEXT_FRAMES", "Clip", "SpeechSplit", "SpeechCommandsData", "SpectrogramCache", "Augmentation",
           "load_speech_commands", "ensure_speech_commands", "scan_folder", "default_folder",
           "clip_frames", "normalize_batch", "active_spans", "is_dataset_folder", "speaker_of"]
