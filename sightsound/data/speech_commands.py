"""Speech Commands v0.02: download, layout checks, the chapter's 20 classes and their splits.

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

The spectrogram cache is :mod:`.spectrograms`; the examples of one split and
their augmentation are :mod:`.augment`. Their public names are importable
from here too.

Example::

    >>> from sightsound.data.speech_commands import load_speech_commands
    >>> data = load_speech_commands("/data/speech_commands")  # doctest: +SKIP
    >>> x, y = data.split("training").arrays()  # doctest: +SKIP
    >>> x.shape[1:], y.shape[1]  # doctest: +SKIP
    ((43, 232, 1), 20)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio, paths
from ..errors import DataError, DownloadError
from ..speech.model_files import BACKGROUND_NOISE_TAG as BACKGROUND_NOISE
from ..speech.model_files import UNKNOWN_TAG as UNKNOWN
from .augment import Augmentation, SpeechSplit, active_spans, normalize_batch
from .download import download_file, safe_extract
from .spectrograms import CACHE_VERSION, CONTEXT_FRAMES, SpectrogramCache, clip_frames

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
#: One JSON object a line per clip of a corpus made by ``speech synth``: path, word, split, speaker, engine, voice, settings.
MANIFEST = "manifest.jsonl"
SPLITS = ("training", "validation", "testing")
NOISE_RANGES = {"training": (0.0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0)}
DEFAULT_SHARE = 1 / 20


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


def read_manifest(folder: str | os.PathLike) -> list[dict] | None:
    """The entries of ``folder``'s :data:`MANIFEST` (each with ``path`` and ``engine``), or None when the
    folder has none (the real Speech Commands dataset); a damaged manifest raises :class:`DataError`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise DataError(f"{path}, line {number}: not JSON ({err})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                or not isinstance(entry.get("engine"), str):
            raise DataError(f"{path}, line {number}: a clip needs a \"path\" and an \"engine\" string")
        entries.append(entry)
    return entries


def repeat_engines(split: SpeechSplit, root: str | os.PathLike, repeats: dict[str, int]) -> SpeechSplit:
    """``split`` with every clip of an engine in ``repeats`` (``{"kokoro": 3}``) that many times, each
    augmented afresh in an epoch; other clips once. The engines come from ``root``'s manifest; a folder
    without one (the real dataset) has no engines to repeat, and ``split`` comes back as it is."""
    entries = read_manifest(root) if repeats else None  # no repeats asked: the manifest is not read
    if entries is None:
        return split
    engine = {e["path"]: e["engine"] for e in entries}
    counts = np.array([repeats.get(engine.get(f"{c.path.parent.name}/{c.path.name}", ""), 1) for c in split.clips])
    return split.repeated(counts)


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
           "CONTEXT_FRAMES", "CACHE_VERSION", "Clip", "SpeechSplit", "SpeechCommandsData", "SpectrogramCache",
           "Augmentation", "load_speech_commands", "ensure_speech_commands", "scan_folder", "default_folder",
           "clip_frames", "normalize_batch", "active_spans", "is_dataset_folder", "speaker_of", "safe_extract"]
