"""Transfer-learning examples and the speech-commands binary dataset format (``TFJSSCDS``, version 1).

The package's ``Dataset`` (``dataset.ts``) in Python: labelled spectrograms
(optionally with their raw audio), the windows training cuts from long ones,
mixing with background noise, and the binary format of
``serializeExamples()``/``loadExamples()``, so that examples recorded in the
browser demo train here and examples recorded here load there::

    8 bytes   the descriptor "TFJSSCDS"
    4 bytes   the version, uint32 little-endian (1)
    4 bytes   the length of the JSON manifest, uint32 little-endian
    manifest  UTF-8 JSON: one spec per example, in order
              {label, spectrogramNumFrames, spectrogramFrameSize[, spectrogramKeyFrameIndex]
               [, rawAudioNumSamples, rawAudioSampleRateHz]}
    data      per example: its spectrogram (frames x frameSize float32), then its raw audio (float32)

Examples are written label by label (labels sorted), each label's in the order
they were added, as the package does.

    >>> d = Dataset()
    >>> uid = d.add_example(Example("yes", np.zeros((2, 3), np.float32)))
    >>> Dataset.from_bytes(d.serialize()).counts()
    {'yes': 1}
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from . import frontend
from .model_files import BACKGROUND_NOISE_TAG

DESCRIPTOR = b"TFJSSCDS"  #: ``DATASET_SERIALIZATION_DESCRIPTOR``
VERSION = 1  #: ``DATASET_SERIALIZATION_VERSION``, the only one the package has written
_HEADER = struct.Struct("<8sII")  # descriptor, version, manifest length
FLOAT_BYTES = 4


@dataclass
class Example:
    """One example: ``spectrogram`` ``[frames, frame_size]`` float32 (normalised when collected),
    ``key_frame_index`` (the frame training windows keep; None: the loudest), optional raw audio."""

    label: str
    spectrogram: np.ndarray
    key_frame_index: int | None = None
    raw_audio: np.ndarray | None = None
    raw_audio_sample_rate: int | None = None

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"Expected label to be a non-empty string, but got {self.label!r}")
        spec = np.asarray(self.spectrogram, dtype=np.float32)
        if spec.ndim != 2 or 0 in spec.shape:
            raise ValueError(f"an example's spectrogram must be [frames, frame_size], got {list(spec.shape)}")
        self.spectrogram = spec
        if self.raw_audio is not None:
            self.raw_audio = np.asarray(self.raw_audio, dtype=np.float32).reshape(-1)

    @property
    def num_frames(self) -> int:
        return int(self.spectrogram.shape[0])

    def spec(self) -> dict:
        """This example's manifest entry (the package's ``SerializedExample.spec``)."""
        out = {"label": self.label, "spectrogramNumFrames": self.num_frames,
               "spectrogramFrameSize": int(self.spectrogram.shape[1])}
        if self.key_frame_index is not None:
            out["spectrogramKeyFrameIndex"] = int(self.key_frame_index)
        if self.raw_audio is not None:
            out["rawAudioNumSamples"] = int(self.raw_audio.size)
            out["rawAudioSampleRateHz"] = self.raw_audio_sample_rate
        return out


def new_uid() -> str:
    """A random id shaped like the package's ``getUID()`` (8-4-4-4-12 hex digits)."""
    return str(uuid.uuid4())


class Dataset:
    """A mutable set of :class:`Example` s by uid, grouped by label (the package's ``Dataset``)."""

    def __init__(self):
        self.examples: dict[str, Example] = {}
        self.label_ids: dict[str, list[str]] = {}

    # -- contents ---------------------------------------------------------------------------------------

    def add_example(self, example: Example) -> str:
        """Add ``example``; returns its uid."""
        uid = new_uid()
        self.examples[uid] = example
        self.label_ids.setdefault(example.label, []).append(uid)
        return uid

    def get_examples(self, label: str) -> list[tuple[str, Example]]:
        """``(uid, example)`` of ``label``, in the order they were added."""
        if label not in self.label_ids:
            raise KeyError(f'No example of label "{label}" exists in dataset')
        return [(uid, self.examples[uid]) for uid in self.label_ids[label]]

    def remove_example(self, uid: str) -> None:
        if uid not in self.examples:
            raise KeyError(f"Nonexistent example UID: {uid}")
        label = self.examples.pop(uid).label
        self.label_ids[label].remove(uid)
        if not self.label_ids[label]:
            del self.label_ids[label]

    def set_key_frame_index(self, uid: str, index: int) -> None:
        if uid not in self.examples:
            raise KeyError(f"Nonexistent example UID: {uid}")
        frames = self.examples[uid].num_frames
        if not isinstance(index, int) or not 0 <= index < frames:
            raise ValueError(f"Invalid keyFrameIndex: {index}. Must be >= 0, < {frames}, and an integer.")
        self.examples[uid].key_frame_index = index

    def clear(self) -> None:
        self.examples.clear()
        self.label_ids.clear()

    def size(self) -> int:
        return len(self.examples)

    def empty(self) -> bool:
        return not self.examples

    def counts(self) -> dict[str, int]:
        """Examples per label, labels sorted."""
        return {label: len(self.label_ids[label]) for label in self.vocabulary()}

    def vocabulary(self) -> list[str]:
        """The labels, sorted (code-point order, as JavaScript's ``sort()`` for these strings)."""
        return sorted(self.label_ids)

    def merge(self, other: "Dataset") -> None:
        if other is self:
            raise ValueError("Cannot merge a dataset into itself")
        for label in other.vocabulary():
            for _, example in other.get_examples(label):
                self.add_example(example)

    # -- the binary format ------------------------------------------------------------------------------

    def serialize(self, words=None) -> bytes:
        """The ``TFJSSCDS`` bytes of every example, or of the examples of ``words`` (a word or a list)."""
        if self.empty():
            raise ValueError("Cannot serialize empty Dataset")
        vocab = self.vocabulary()
        if words is not None:
            words = [words] if isinstance(words, str) else list(words)
            for word in words:
                if word not in vocab:
                    raise ValueError(f'Word label "{word}" does not exist in the vocabulary of this dataset. '
                                     f"The vocabulary is: {json.dumps(vocab)}.")
        manifest, chunks = [], []
        for label in vocab:
            if words is not None and label not in words:
                continue
            for _, example in self.get_examples(label):
                manifest.append(example.spec())
                chunks.append(example.spectrogram.astype("<f4").tobytes())
                if example.raw_audio is not None:
                    chunks.append(example.raw_audio.astype("<f4").tobytes())
        text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return _HEADER.pack(DESCRIPTOR, VERSION, len(text)) + text + b"".join(chunks)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "dataset") -> "Dataset":
        """Read ``TFJSSCDS`` bytes; :class:`~sightsound.errors.DataError` names what is wrong
        (descriptor, version, length, manifest) and where."""
        data = bytes(data)
        manifest, offset = _read_header(data, where)
        needed = sum(_example_bytes(spec, i, where) for i, spec in enumerate(manifest))
        if len(data) - offset != needed:
            raise DataError(f"{where}: wrong length: the manifest's {len(manifest)} examples need {needed} bytes "
                            f"of data, the file has {len(data) - offset}")
        out = cls()
        for spec in manifest:
            out.add_example(_read_example(spec, data, offset))
            offset += _example_bytes(spec, 0, where)
        return out


def _read_header(data: bytes, where: str) -> tuple[list, int]:
    if len(data) < _HEADER.size:
        raise DataError(f"{where}: wrong length: {len(data)} bytes, shorter than the {_HEADER.size}-byte "
                        f"TFJSSCDS header")
    descriptor, version, length = _HEADER.unpack_from(data)
    if descriptor != DESCRIPTOR:
        raise DataError(f"{where}: wrong descriptor {descriptor!r}: not a speech-commands dataset "
                        f"(expected {DESCRIPTOR.decode()})")
    if version != VERSION:
        raise DataError(f"{where}: unsupported version {version} of the TFJSSCDS format (this reads version "
                        f"{VERSION})")
    if length > len(data) - _HEADER.size:
        raise DataError(f"{where}: wrong length: the manifest is declared as {length} bytes but only "
                        f"{len(data) - _HEADER.size} bytes follow the header")
    try:
        manifest = json.loads(data[_HEADER.size:_HEADER.size + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DataError(f"{where}: the manifest is not valid JSON ({err})") from None
    if not isinstance(manifest, list):
        raise DataError(f"{where}: the manifest must be a JSON list of example specs")
    return manifest, _HEADER.size + length


def _positive_int(spec: dict, key: str, i: int, where: str, optional: bool = False) -> int:
    value = spec.get(key)
    if value is None and optional:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if optional else 1):
        raise DataError(f"{where}: example {i}: {key} must be a positive integer, got {value!r}")
    return value


def _example_bytes(spec, i: int, where: str) -> int:
    if not isinstance(spec, dict) or not isinstance(spec.get("label"), str) or not spec["label"]:
        raise DataError(f"{where}: example {i}: a spec needs a non-empty string label")
    values = (_positive_int(spec, "spectrogramNumFrames", i, where)
              * _positive_int(spec, "spectrogramFrameSize", i, where))
    values += _positive_int(spec, "rawAudioNumSamples", i, where, optional=True)
    return FLOAT_BYTES * values


def _read_example(spec: dict, data: bytes, offset: int) -> Example:
    frames, size = spec["spectrogramNumFrames"], spec["spectrogramFrameSize"]
    spec_values = np.frombuffer(data, "<f4", frames * size, offset).astype(np.float32).reshape(frames, size)
    raw, rate = None, None
    if spec.get("rawAudioNumSamples") is not None:
        raw = np.frombuffer(data, "<f4", spec["rawAudioNumSamples"], offset + FLOAT_BYTES * frames * size)
        raw, rate = raw.astype(np.float32), spec.get("rawAudioSampleRateHz")
    return Example(spec["label"], spec_values, spec.get("spectrogramKeyFrameIndex"), raw, rate)


# -- training data -----------------------------------------------------------------------------------------

def valid_windows(length: int, focus: int | None, window: int, hop: int) -> list[tuple[int, int]]:
    """``getValidWindows``: ``[begin, end)`` windows of ``window`` frames, ``hop`` apart, in a snippet
    of ``length`` frames; all of them when ``focus`` is None, else those that contain frame ``focus``.

    >>> valid_windows(10, None, 4, 3), valid_windows(10, 5, 4, 1)
    ([(0, 4), (3, 7), (6, 10)], [(2, 6), (3, 7), (4, 8), (5, 9)])
    """
    if window > length:
        raise ValueError(f"windowLength ({window}) exceeds snippetLength ({length})")
    if window == length:
        return [(0, length)]
    if focus is None:
        return [(b, b + window) for b in range(0, length - window + 1, hop)]
    left = min(max(focus - window // 2, 0), length - window)
    while left - hop >= 0 and focus < left - hop + window:  # back to the first window that holds the focus
        left -= hop
    out = []
    while left + window <= length and focus >= left:
        out.append((left, left + window))
        left += hop
    return out


def key_frame(example: Example) -> int | None:
    """The frame a word's training windows must contain: its key frame, else its loudest (the highest
    mean over the frame); None for background noise, which is cut into windows everywhere."""
    if example.label == BACKGROUND_NOISE_TAG:
        return None
    if example.key_frame_index is not None:
        return example.key_frame_index
    return int(np.argmax(example.spectrogram.mean(axis=1)))


def training_windows(dataset: Dataset, num_frames: int, hop_frames: int, augment_ratio: float | None = None,
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``getData(null, {numFrames, hopFrames, augmentByMixingNoiseRatio})``: every example's valid windows,
    each normalised, ``xs [N, num_frames, frame_size, 1]`` and label indices ``[N]`` into the
    vocabulary; with ``augment_ratio``, one more window per word window mixed with a random noise
    window (``normalize(word + ratio * noise)``). Unshuffled."""
    vocab = dataset.vocabulary()
    if dataset.empty():
        raise ValueError("Cannot get spectrograms as tensors because the dataset is empty")
    sizes = {e.spectrogram.shape[1] for e in dataset.examples.values()}
    if len(sizes) > 1:
        raise ValueError(f"Mismatch in frameSize among the examples: {sorted(sizes)}")
    shortest = min(e.num_frames for e in dataset.examples.values())
    if num_frames > shortest:
        raise ValueError(f"numFrames ({num_frames}) exceeds the minimum numFrames ({shortest}) among the "
                         f"examples of the Dataset")
    xs, labels = [], []
    for index, label in enumerate(vocab):
        for _, example in dataset.get_examples(label):
            for begin, end in valid_windows(example.num_frames, key_frame(example), num_frames, hop_frames):
                xs.append(frontend.normalize(example.spectrogram[begin:end]))
                labels.append(index)
    if augment_ratio is not None:
        _mix_noise(xs, labels, vocab, augment_ratio, rng or np.random.default_rng())
    return np.stack(xs)[..., None], np.asarray(labels, dtype=np.int64)


def _mix_noise(xs: list, labels: list, vocab: list[str], ratio: float, rng: np.random.Generator) -> None:
    noise = [i for i, y in enumerate(labels) if vocab[y] == BACKGROUND_NOISE_TAG]
    if not noise:
        raise ValueError(f"Cannot perform augmentation by mixing with noise when there is no example with "
                         f"label {BACKGROUND_NOISE_TAG}")
    words = [i for i, y in enumerate(labels) if vocab[y] != BACKGROUND_NOISE_TAG]
    for i in words:
        xs.append(frontend.normalize(xs[i] + ratio * xs[noise[int(rng.integers(len(noise)))]]))
        labels.append(labels[i])


def balanced_split(labels: np.ndarray, validation_split: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``balancedTrainValSplit``: per class, a shuffled ``round(n * (1 - split))`` train, the rest
    validation; returns the train and validation indices."""
    if not 0 < validation_split < 1:
        raise ValueError(f"validationSplit is expected to be >0 and <1, but got {validation_split}")
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(np.floor(len(members) * (1 - validation_split) + 0.5))  # Math.round
        train.extend(members[:cut])
        val.extend(members[cut:])
    return np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64)


__all__ = ["DESCRIPTOR", "VERSION", "Example", "Dataset", "valid_windows", "key_frame", "training_windows",
           "balanced_split", "new_uid"]
