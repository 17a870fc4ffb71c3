"""Teaching the recognizer new words: the package's transfer recognizer (``createTransfer``).

    >>> from sightsound import speech
    >>> base = speech.create("BROWSER_FFT")  # doctest: +SKIP
    >>> t = base.create_transfer("my-words")  # doctest: +SKIP
    >>> t.collect_example("hello", source="hello-1.wav")  # doctest: +SKIP
    >>> t.collect_example("_background_noise_", source="room.wav", duration_sec=3)  # doctest: +SKIP
    >>> t.train(epochs=25)  # doctest: +SKIP
    >>> t.recognize(samples).word  # doctest: +SKIP
    >>> t.save("runs/my-words")  # then speech.create("BROWSER_FFT", model="runs/my-words")  # doctest: +SKIP

As in ``@tensorflow-models/speech-commands`` 0.5.4: examples are normalised
spectrograms (:mod:`sightsound.speech.dataset`, whose binary format the package
reads and writes); the words are the examples' labels, sorted; the model is a
new softmax head (a one-layer Sequential named ``NewHeadDense``) on the output
of the base model's second-last dense layer, with the whole base frozen; the
optional fine-tuning unfreezes that dense layer. The transfer model shares the
base model's layers, so training moves the base's batch-normalisation
statistics, as it does in TF.js (create another base for an untouched one).
Two deliberate differences:
the package keeps a model built for an older word list after new words are
collected (and then fails on the shapes), here the head is rebuilt; and the
package trains through ``fitDataset`` once the examples exceed a minute, which
changes only its memory use, so here training always runs on arrays.

One addition: ``train(other_speech=...)`` also teaches examples of ordinary
speech as ``_unknown_``. A head taught only the new words and room noise has
never heard other speech, and calls much of it one of its words; the package
has no answer but recording other speech yourself. sightsound ships such
examples beside its model (:func:`other_speech_examples`), and its command line
and web app teach them by default; the Python API, like the package, only when
asked::

    >>> t.train(epochs=25, other_speech=speech.other_speech_examples())  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError, ModelFormatError, TrainingError
from ..runtime import set_seed
from . import frontend, model_files
from .dataset import Dataset, Example, balanced_split, training_windows
from .recognizer import Recognizer
from .results import SpectrogramData
from .sources import as_source, to_float_chunk
from .wav import read_wav

DEFAULT_WINDOW_HOP_RATIO = 0.25  #: the package's hop between training windows, as a fraction of a window
DEFAULT_EPOCHS = 20  #: ``train()``'s epochs when not given, as the package
HEAD_NAME = "NewHeadDense"  #: the new head's dense layer, named as the package names it
#: With other speech, the _unknown_ windows together weigh in the loss as much as this many times the windows
#: of the word with the most: many more of them than of a word otherwise teach a head to doubt its own words.
OTHER_SPEECH_WEIGHT = 4.0


class TransferRecognizer(Recognizer):
    """A recognizer of the words in its collected examples (see the module docstring)."""

    def __init__(self, name: str, base: Recognizer):
        if not isinstance(name, str) or not name:
            raise ValueError(f"The name of a transfer model must be a non-empty string, but got {name!r}")
        if not hasattr(base.model, "layers") or not hasattr(base.model, "inputs"):
            raise ModelFormatError(f"{base.where}: transfer learning needs a sightsound model (with layers), "
                                   f"not a {type(base.model).__name__}")
        super().__init__(base.model, base.words, base.num_frames, where=f"transfer model '{name}'")
        self.name = name
        self.base_model = base.model
        self.model = None
        self.words = []
        self.dataset = Dataset()
        self.second_last_dense = None
        self.validation_data = None  #: the validation windows ``(xs, ys)`` of the last ``train()``, if any

    # -- examples -------------------------------------------------------------------------------------

    def collect_example(self, word: str, source=None, *, sample_rate: int | None = None,
                        duration_multiplier: float | None = None, duration_sec: float | None = None,
                        snippet_duration_sec: float | None = None, on_snippet=None,
                        include_raw_audio: bool = False) -> SpectrogramData:
        """Add one example of ``word`` (``_background_noise_`` for room noise); ``collectExample``.

        ``source``: a WAV path, a 1-D array of samples (at ``sample_rate``, default 44.1 kHz), ``None``
        (the microphone) or an audio source. The example covers the model's 43 frames, or
        ``round(43 * duration_multiplier)`` frames, or ``ceil(duration_sec / 23.22 ms)`` frames, from
        the start of the audio (zero-padded when it is shorter). With ``snippet_duration_sec``,
        ``on_snippet(SpectrogramData)`` receives the raw frames piece by piece as the package's
        streaming collection does. Returns the raw (dB) spectrogram; the example stores it normalised.
        """
        if not isinstance(word, str) or not word:
            raise ValueError("Must provide a non-empty string when collecting transfer-learning example")
        count = self._example_frames(duration_multiplier, duration_sec)
        if (snippet_duration_sec is None) != (on_snippet is None):
            raise ValueError("snippet_duration_sec and on_snippet must be given together")
        if snippet_duration_sec is not None and not snippet_duration_sec > 0:
            raise ValueError(f"snippetDurationSec is expected to be > 0, but got {snippet_duration_sec}")
        samples = _read_audio(source, sample_rate, frontend.FFT_SIZE + (count - 1) * frontend.HOP)
        raw = frontend.frames(samples)
        if snippet_duration_sec is not None:
            step = max(1, round(snippet_duration_sec / frontend.FRAME_SECONDS))
            for begin in range(0, count, step):
                on_snippet(SpectrogramData(raw[begin:begin + step].copy()))
        example = Example(word, frontend.normalize(raw),
                          raw_audio=samples.astype(np.float32) if include_raw_audio else None,
                          raw_audio_sample_rate=frontend.SAMPLE_RATE if include_raw_audio else None)
        self.dataset.add_example(example)
        self._collate_words()
        return SpectrogramData(raw)

    def _example_frames(self, duration_multiplier, duration_sec) -> int:
        if duration_multiplier is not None and duration_sec is not None:
            raise ValueError("durationMultiplier and durationSec are mutually exclusive, but are both specified.")
        if duration_sec is not None:
            if not duration_sec > 0:
                raise ValueError(f"Expected durationSec to be > 0, but got {duration_sec}")
            return math.ceil(duration_sec / frontend.FRAME_SECONDS)
        if duration_multiplier is not None:
            if not duration_multiplier >= 1:
                raise ValueError(f"Expected duration multiplier to be >= 1, but got {duration_multiplier}")
            return round(self.num_frames * duration_multiplier)
        return self.num_frames

    def _collate_words(self) -> None:
        self.words = self.dataset.vocabulary()

    def count_examples(self) -> dict[str, int]:
        """Examples per word (``countExamples``)."""
        if self.dataset.empty():
            raise ValueError(f"No examples have been collected for transfer-learning model named "
                             f"'{self.name}' yet.")
        return self.dataset.counts()

    def get_examples(self, word: str) -> list[tuple[str, Example]]:
        """``(uid, example)`` of ``word`` in the order collected (``getExamples``)."""
        return self.dataset.get_examples(word)

    def remove_example(self, uid: str) -> None:
        self.dataset.remove_example(uid)
        self._collate_words()

    def set_example_key_frame_index(self, uid: str, index: int) -> None:
        self.dataset.set_key_frame_index(uid, index)

    def clear_examples(self) -> None:
        if self.dataset.empty():
            raise ValueError(f"No transfer learning examples exist for model name {self.name}")
        self.dataset.clear()
        self.words = []

    def is_dataset_empty(self) -> bool:
        return self.dataset.empty()

    def serialize_examples(self, words=None) -> bytes:
        """The examples (all, or of ``words``) in the package's ``TFJSSCDS`` format."""
        return self.dataset.serialize(words)

    def load_examples(self, data: bytes, clear: bool = False, where: str = "dataset") -> None:
        """Add the examples of ``TFJSSCDS`` bytes (``loadExamples``); ``clear`` drops the current ones
        first. Bytes with a wrong descriptor, version or length are refused before anything changes."""
        incoming = Dataset.from_bytes(data, where)
        if clear and not self.dataset.empty():
            self.clear_examples()
        self.dataset.merge(incoming)
        self._collate_words()

    # -- the model ------------------------------------------------------------------------------------

    def _build_model(self) -> None:
        """``createTransferModelFromBaseModel``: the head on the second-last dense layer's output."""
        import sightsound
        from sightsound import layers

        base_layers = self.base_model.layers
        index = next((i for i in range(len(base_layers) - 2, -1, -1)
                      if type(base_layers[i]).__name__.lower() == "dense"), None)
        if index is None:
            raise ModelFormatError("Cannot find a hidden dense layer in the base model.")
        for layer in base_layers:  # the package freezes the base when it loads it
            layer.trainable = False
        self.second_last_dense = base_layers[index]
        truncated = self.second_last_dense.output
        device = getattr(self.base_model, "device", "cpu")
        head = sightsound.sequential([layers.dense(units=len(self.words), activation="softmax",
                                                   input_shape=list(truncated.shape[1:]), name=HEAD_NAME)],
                                     device=device)
        self.model = sightsound.model(inputs=self.base_model.inputs, outputs=head.apply(truncated), device=device)
        self._model_words = list(self.words)

    def _check_words(self) -> None:
        if not self.words:
            raise TrainingError(f"Cannot train transfer-learning model '{self.name}' because no transfer "
                                f"learning example has been collected.")
        if len(self.words) < 2:
            raise TrainingError(f"Cannot train transfer-learning model '{self.name}' because only 1 word label "
                                f"({self.words}) has been collected for transfer learning. Requires at least 2.")

    def training_data(self, window_hop_ratio: float | None = None, augment_by_mixing_noise_ratio=None,
                      rng: np.random.Generator | None = None, other_speech=None) -> tuple[np.ndarray, np.ndarray]:
        """The windows training uses (``collectTransferDataAsTensors``): ``xs`` and one-hot ``ys`` over the
        words, of the collected examples and of ``other_speech``'s (as :meth:`train` takes it)."""
        return self._windows(self._training_set(other_speech), window_hop_ratio, augment_by_mixing_noise_ratio, rng)

    def _windows(self, dataset: Dataset, window_hop_ratio, augment_by_mixing_noise_ratio, rng):
        ratio = window_hop_ratio or DEFAULT_WINDOW_HOP_RATIO
        xs, labels = training_windows(dataset, self.num_frames, max(1, round(ratio * self.num_frames)),
                                      augment_by_mixing_noise_ratio, rng)
        columns = np.array([self.words.index(word) for word in dataset.vocabulary()])  # by name: a head
        return xs, np.eye(len(self.words), dtype=np.float32)[columns[labels]]  # taught other speech has more words

    def _training_set(self, other_speech) -> Dataset:
        """The examples ``train`` learns from: the collected ones, and ``other_speech``'s if given."""
        if other_speech is None:
            return self.dataset
        extra = other_speech if isinstance(other_speech, Dataset) else Dataset.from_bytes(other_speech,
                                                                                           "other speech")
        wrong = [word for word in extra.vocabulary() if word != model_files.UNKNOWN_TAG]
        if extra.empty() or wrong:
            raise DataError(f"other speech: expected examples labelled {model_files.UNKNOWN_TAG} only, got "
                            f"{', '.join(wrong[:5]) or 'none'}")
        merged = Dataset()
        merged.merge(self.dataset)
        merged.merge(extra)
        return merged

    def train(self, epochs: int | None = None, batch_size: int = 32, validation_split: float | None = None,
              fine_tuning_epochs: int | None = None, optimizer="sgd", fine_tuning_optimizer="sgd",
              augment_by_mixing_noise_ratio: float | None = None, window_hop_ratio: float | None = None,
              callbacks=None, fine_tuning_callbacks=None, seed: int | None = None, other_speech=None):
        """Train the head, then (``fine_tuning_epochs``) the head and the second-last dense layer.

        As the package's ``train``: categorical cross-entropy, ``sgd`` by default, the windows of
        :meth:`training_data` shuffled, a class-balanced validation split when ``validation_split`` is
        given; ``seed`` makes a run repeat. ``other_speech`` (a :class:`Dataset` or its bytes, every example
        labelled ``_unknown_``, e.g. :func:`other_speech_examples`) is taught beside the collected examples,
        weighing together :data:`OTHER_SPEECH_WEIGHT` times the windows of the most-collected word; the words
        then include ``_unknown_``, which ``listen`` does not report. Returns the
        :class:`~sightsound.engine.callbacks.History`, or ``[history, fine_tuning_history]`` after fine-tuning.
        Fewer than two words: :class:`TrainingError`.
        """
        self._check_words()
        if fine_tuning_epochs is not None and (not isinstance(fine_tuning_epochs, int) or fine_tuning_epochs < 0):
            raise ValueError(f"If specified, fineTuningEpochs must be a non-negative integer, but received "
                             f"{fine_tuning_epochs}")
        if seed is not None:  # the new head's initial weights, dropout and the shuffles repeat
            set_seed(seed)
        dataset = self._training_set(other_speech)
        self.words = dataset.vocabulary()
        if self.model is None or self._model_words != self.words:
            self._build_model()
        rng = np.random.default_rng(seed)
        xs, ys = self._windows(dataset, window_hop_ratio, augment_by_mixing_noise_ratio, rng)
        if other_speech is not None:
            _weigh_unknown(ys, self.words)
        order = rng.permutation(len(xs))
        xs, ys = xs[order], ys[order]
        validation = None
        if validation_split is not None:
            train, val = balanced_split(ys.argmax(axis=1), validation_split, rng)
            xs, ys, validation = xs[train], ys[train], (xs[val], ys[val])
        self.validation_data = validation
        self.second_last_dense.trainable = False
        history = self._fit(optimizer, xs, ys, validation, epochs or DEFAULT_EPOCHS, batch_size, callbacks)
        if not fine_tuning_epochs:
            return history
        self.second_last_dense.trainable = True
        try:
            tuned = self._fit(fine_tuning_optimizer, xs, ys, validation, fine_tuning_epochs, batch_size,
                              fine_tuning_callbacks)
        finally:
            self.second_last_dense.trainable = False
        return [history, tuned]

    def _fit(self, optimizer, xs, ys, validation, epochs, batch_size, callbacks):
        self.model.compile(optimizer=optimizer, loss="categoricalCrossentropy", metrics=["acc"])
        return self.model.fit(xs, ys, batch_size=batch_size, epochs=epochs, validation_data=validation,
                              callbacks=callbacks)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise TrainingError(f"transfer model '{self.name}' has not been trained yet: call train() first")
        return super()._predict(x)

    def evaluate(self, word_prob_thresholds, window_hop_ratio: float | None = None) -> dict:
        """``evaluate``: the ROC of telling words from ``_background_noise_`` over the training windows.

        A window counts as a word when its highest word probability exceeds the threshold. Returns
        ``{"roc_curve": [{"prob_threshold", "fpr", "tpr"}...], "auc"}`` (trapezoids between
        consecutive thresholds, as the package sums them).
        """
        thresholds = list(word_prob_thresholds or [])
        if not thresholds:
            raise ValueError("Received null or empty wordProbThresholds")
        if not self.words or self.words[0] != model_files.BACKGROUND_NOISE_TAG:
            raise ValueError(f"Cannot perform evaluation when the first tag is not "
                             f"{model_files.BACKGROUND_NOISE_TAG}")
        xs, ys = self.training_data(window_hop_ratio)
        is_noise = ys.argmax(axis=1) == 0
        word_probs = self._predict(xs)[:, 1:].max(axis=1)
        curve, auc = [], 0.0
        for i, threshold in enumerate(thresholds):
            said = word_probs > threshold
            curve.append({"prob_threshold": float(threshold), "fpr": float(said[is_noise].mean()),
                          "tpr": float(said[~is_noise].mean())})
            if i:
                auc += abs(curve[i - 1]["fpr"] - curve[i]["fpr"]) * (curve[i - 1]["tpr"] + curve[i]["tpr"]) / 2
        return {"roc_curve": curve, "auc": auc}

    def word_accuracy(self, xs: np.ndarray, ys: np.ndarray) -> dict[str, float | None]:
        """Accuracy per word of the windows ``xs`` with one-hot ``ys`` (None: no window of that word)."""
        predicted = self._predict(xs).argmax(axis=1)
        truth = ys.argmax(axis=1)
        return {word: float((predicted[truth == i] == i).mean()) if (truth == i).any() else None
                for i, word in enumerate(self.words)}

    def collect_folder(self, folder, include_raw_audio: bool = False) -> dict[str, int]:
        """One example per WAV of ``folder/<word>/`` (``_background_noise_`` included), each as long
        as its file (at least one model input): training then keeps the windows around a word's
        loudest frame and every window of noise. Returns the examples added per word."""
        from pathlib import Path

        added = {}
        for word_dir in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
            for wav in sorted(word_dir.glob("*.wav")):
                samples, rate = read_wav(wav)
                seconds = max(samples.size / rate, self.num_frames * frontend.FRAME_SECONDS)
                self.collect_example(word_dir.name, samples, sample_rate=rate, include_raw_audio=include_raw_audio,
                                     duration_sec=seconds)
                added[word_dir.name] = added.get(word_dir.name, 0) + 1
        if not added:
            raise DataError(f"{folder}: no examples: expected a folder per word holding WAV files")
        return added

    def save(self, folder) -> None:
        """Write the model (``model.json`` + weights) and ``metadata.json`` into ``folder``: what
        ``speech.create("BROWSER_FFT", model=folder)`` and the package's ``create`` load."""
        if self.model is None:
            raise TrainingError(f"transfer model '{self.name}' has not been trained yet: nothing to save")
        self.model.save(str(folder))
        model_files.write_metadata(folder, self.words, model_name=self.name)

    def create_transfer(self, name: str):
        raise RuntimeError("Creating transfer-learned recognizer from a transfer-learned recognizer is not "
                           "supported.")


def _weigh_unknown(ys: np.ndarray, words: list[str]) -> None:
    """Scale the ``_unknown_`` rows of the one-hot ``ys`` (in place) to :data:`OTHER_SPEECH_WEIGHT`: a class
    weight, since categorical cross-entropy (here as in TF.js) scales with the sum of a target row."""
    counts = ys.sum(axis=0)
    unknown = words.index(model_files.UNKNOWN_TAG)
    most = max((n for word, n in zip(words, counts) if word not in model_files.NOISE_WORDS), default=0)
    if most:  # no word of the user's (noise and other speech alone): nothing to weigh against
        ys[ys[:, unknown] > 0, unknown] = min(1.0, OTHER_SPEECH_WEIGHT * most / counts[unknown])


def other_speech_examples(folder=None) -> bytes:
    """The examples of ordinary speech shipped beside the model in ``folder`` (default: the shipped model's),
    in the package's ``TFJSSCDS`` format, every one labelled ``_unknown_``: windows of sentences and everyday
    words said by the training voices of its corpus (never by a voice its benchmarks hold out). For
    ``train(other_speech=...)``, or the package's ``loadExamples``."""
    from pathlib import Path

    path = Path(folder or model_files.pretrained_model_dir()) / model_files.OTHER_SPEECH_EXAMPLES
    if not path.is_file():
        raise DataError(f"{path}: missing; the shipped model's other-speech examples are written by "
                        f"`make speech-model` (scripts/build_speech_model.py)")
    return path.read_bytes()


def shipped_other_speech() -> Dataset:
    """:func:`other_speech_examples` of the shipped model, read (what the command line and web app teach)."""
    return Dataset.from_bytes(other_speech_examples(), "sightsound's other-speech examples")


def _read_audio(source, sample_rate: int | None, needed: int) -> np.ndarray:
    """The first ``needed`` 44.1-kHz samples of ``source`` (zero-padded), float64."""
    if isinstance(source, np.ndarray) or isinstance(source, (list, tuple)):
        x, rate = np.asarray(source, dtype=np.float64), sample_rate or frontend.SAMPLE_RATE
    elif isinstance(source, (bytes, bytearray)):
        x, rate = read_wav(source)
    else:
        src = as_source(source)
        rate = int(src.sample_rate)
        want = math.ceil(needed * rate / frontend.SAMPLE_RATE) + 1
        chunks, have = [], 0
        try:
            for chunk in src:
                chunks.append(to_float_chunk(chunk))
                have += chunks[-1].size
                if have >= want:
                    break
        finally:
            src.close()
        x = np.concatenate(chunks) if chunks else np.zeros(0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"an example needs 1-D audio samples, got shape {list(x.shape)}")
    rate = frontend.check_rate(rate)
    if rate != frontend.SAMPLE_RATE:
        x = frontend.resample(x, rate, frontend.SAMPLE_RATE)
    x = np.asarray(x[:needed], dtype=np.float64)
    return np.concatenate([x, np.zeros(needed - x.size)]) if x.size < needed else x


__all__ = ["TransferRecognizer", "DEFAULT_WINDOW_HOP_RATIO", "HEAD_NAME", "other_speech_examples",
           "shipped_other_speech"]
