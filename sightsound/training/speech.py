"""Training, evaluating and using the chapter's spoken-command convnet (Listing 4.8).

``train_speech`` is what ``sightsound speech train DATA_DIR MODEL_DIR`` runs:
load a Speech Commands folder (real or synthetic) as 20 classes, build
Listing 4.8, compile it with sgd(0.01) and categorical cross-entropy, train
with fresh augmentation every epoch and validation after each, evaluate on
the test split and write into MODEL_DIR::

    model.json, weights.bin   the TF.js Layers model
    metadata.json             {"words": [...], "frameSize": 232, ...} for the speech-commands package
    history.json              per-epoch and per-batch loss/accuracy, plus the test figures
    curves.png                loss and accuracy curves
    confusion.png             the test confusion matrix
    test_results.json         test loss/accuracy, per-class accuracy, confusion matrix

Example::

    >>> from sightsound.training.speech import train_speech, recognize_files
    >>> result = train_speech("corpus/", "runs/speech", epochs=2)  # doctest: +SKIP
    >>> result.test_accuracy, result.per_class["yes"]  # doctest: +SKIP
    (0.91, 0.95)
    >>> recognize_files("runs/speech", ["yes.wav"])[0].top[0]  # doctest: +SKIP
    ('yes', 0.98)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import presets
from ..data import speech_commands as sc
from ..engine.callbacks import concat_histories
from ..errors import DataError, ModelFormatError, SightsoundError
from ..fileio import atomic_write, write_json_atomic
from ..runtime import set_seed
from ..speech import frontend, model_files, wav
from ..speech.model_files import metadata  # re-exported: the metadata.json document
from ..speech.recognizer import Recognizer, create
from ..speech.results import ClipRecognition as Recognition
from .checkpoint import CHECKPOINT_DIR, find_checkpoint, load_checkpoint, save_checkpoint
from .schedules import LearningRateScheduler, OneCycle
from .targets import smooth_labels

PRESET = "speech-conv"  #: Listing 4.8, and the key of the speech job's settings in presets.RECIPES


@dataclass
class SpeechEvaluation:
    """Test-split figures of a model: loss, accuracy, per-class accuracy and confusion counts."""

    words: tuple[str, ...]
    loss: float
    accuracy: float
    per_class: dict[str, float]
    counts: dict[str, int]
    confusion: np.ndarray  # [true, predicted] counts

    def to_json(self) -> dict:
        return {"loss": self.loss, "accuracy": self.accuracy, "words": list(self.words),
                "per_class_accuracy": self.per_class, "examples_per_class": self.counts,
                "confusion": self.confusion.tolist()}

    def table(self) -> str:
        """Per-class accuracy as aligned text lines."""
        width = max(len(w) for w in self.words)
        lines = [f"{'class':<{width}}  examples  accuracy"]
        for w in self.words:
            acc = self.per_class.get(w, float("nan"))
            lines.append(f"{w:<{width}}  {self.counts.get(w, 0):>8}  {acc:>8.3f}")
        lines.append(f"{'all':<{width}}  {sum(self.counts.values()):>8}  {self.accuracy:>8.3f}")
        return "\n".join(lines)


@dataclass
class SpeechTrainResult:
    words: tuple[str, ...]
    params: int
    epochs: int
    seconds: float
    evaluation: SpeechEvaluation
    history: dict
    examples: dict[str, int]  # per split
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    model: object = None
    settings: dict = field(default_factory=dict)  # how it was trained: recipe, optimizer, augmentation...

    @property
    def test_accuracy(self) -> float:
        return self.evaluation.accuracy

    @property
    def test_loss(self) -> float:
        return self.evaluation.loss

    @property
    def per_class(self) -> dict[str, float]:
        return self.evaluation.per_class


# -- metrics -----------------------------------------------------------------------------

def evaluate_predictions(probs: np.ndarray, labels: np.ndarray, words: tuple[str, ...]) -> SpeechEvaluation:
    """Cross-entropy (probabilities clipped at 1e-7 as TF.js does), accuracy, per-class accuracy, confusion."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise DataError("no test examples to evaluate")
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7)
    predicted = probs.argmax(axis=1)
    k = len(words)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = {w: (float(confusion[i, i] / totals[i]) if totals[i] else float("nan")) for i, w in enumerate(words)}
    return SpeechEvaluation(words=tuple(words), loss=float(-np.log(picked).mean()),
                            accuracy=float((predicted == labels).mean()), per_class=per_class,
                            counts={w: int(totals[i]) for i, w in enumerate(words)}, confusion=confusion)


# -- files ---------------------------------------------------------------------------------

def read_metadata(model_dir: str | os.PathLike) -> tuple[str, ...]:
    """The word list of a model folder's ``metadata.json`` (see :mod:`sightsound.speech.model_files`)."""
    return tuple(model_files.folder_words(model_dir))


def plot_confusion(evaluation: SpeechEvaluation, path: str | os.PathLike, title: str | None = None) -> Path:
    """Row-normalised confusion matrix (true class down, predicted across), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = evaluation.confusion
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    k = len(evaluation.words)
    fig, ax = plt.subplots(figsize=(0.45 * k + 3, 0.45 * k + 2))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), evaluation.words, rotation=90)
    ax.set_yticks(range(k), evaluation.words)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title or f"test accuracy {evaluation.accuracy:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    out = Path(path)
    try:
        with atomic_write(out) as handle:
            fig.savefig(handle, dpi=110, format="png")
    finally:
        plt.close(fig)
    return out


# -- training ------------------------------------------------------------------------------

RECIPE = object()  #: ``augmentation=`` default: the recipe's augmentation


def recipe_augmentation(recipe: str = "chapter", **overrides) -> sc.Augmentation:
    """The training augmentation of a recipe for Listing 4.8, with some fields replaced
    (``None`` values keep the recipe's)."""
    options = dict(presets.training_defaults(PRESET, recipe).get("augmentation", {}))
    options.update({k: v for k, v in overrides.items() if v is not None})
    # ranges are tuples in Augmentation (recipes, JSON and the command line give lists)
    return sc.Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


@dataclass(frozen=True)
class SpeechSettings:
    """Everything that decides a Listing 4.8 training run, in one object, built by :meth:`of` from a
    recipe (:data:`sightsound.presets.RECIPES`) and overrides; ``history.json`` records it.

    >>> SpeechSettings.of().batch_size, SpeechSettings.of("robust").optimizer
    (64, 'adam')
    """

    recipe: str
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float | None
    unknown_share: float
    noise_share: float
    augmentation: sc.Augmentation | None  # None: the clips as they are
    schedule: dict | None = None
    dtype_policy: str = "float32"
    initial_model: str | None = None  # a saved speech model to start from (fine-tuning)
    model: str = PRESET  # the preset to build (``speech-conv``: Listing 4.8; ``speech-bn``)
    label_smoothing: float = 0.0
    engine_repeats: dict | None = None  # {"kokoro": 3}: each epoch hears those engines' clips that often

    @classmethod
    def of(cls, recipe: str = "chapter", *, augmentation=RECIPE, **overrides) -> "SpeechSettings":
        """The settings of ``recipe``, with the ``overrides`` that are not None. ``augmentation`` is the
        recipe's unless given (``None`` turns it off). A different ``optimizer`` takes its own default
        learning rate unless one is given."""
        defaults = presets.training_defaults(PRESET, recipe)
        given = {key: value for key, value in overrides.items() if value is not None}
        if "optimizer" in given and "learning_rate" not in given:
            defaults.pop("learning_rate", None)
        values = {"learning_rate": None, "unknown_share": sc.DEFAULT_SHARE, "noise_share": sc.DEFAULT_SHARE,
                  **{k: v for k, v in defaults.items() if k != "augmentation"}, **given}
        if "initial_model" in values:
            values["initial_model"] = str(values["initial_model"])
        settings = cls(recipe=recipe, augmentation=recipe_augmentation(recipe) if augmentation is RECIPE
                       else augmentation, **values)
        if isinstance(settings.epochs, bool) or not isinstance(settings.epochs, int) or settings.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {settings.epochs!r}")
        if isinstance(settings.batch_size, bool) or not isinstance(settings.batch_size, int) \
                or settings.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {settings.batch_size!r}")
        if not settings.model.startswith("speech-") or settings.model not in presets.PRESETS:
            raise ValueError(f"model must be a speech preset, got {settings.model!r}; choose "
                             f"{', '.join(p for p in presets.PRESETS if p.startswith('speech-'))}")
        smooth_labels(np.zeros((1, 2), np.float32), settings.label_smoothing)  # checks the range
        repeats = settings.engine_repeats
        if repeats is not None and not (isinstance(repeats, dict) and all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for k, v in repeats.items())):
            raise ValueError(f"engine_repeats must map engine names to whole numbers >= 1, got {repeats!r}")
        return settings

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def train_speech(data_dir: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                 settings: SpeechSettings | None = None, *, device: str = "auto", seed: int | None = None,
                 progress: bool = False, cache_dir: str | os.PathLike | None = None, workers: int = 2,
                 data: sc.SpeechCommandsData | None = None, callbacks=None, recipe: str = "chapter",
                 augmentation: sc.Augmentation | None = RECIPE, **overrides) -> SpeechTrainResult:
    """Train a speech model (Listing 4.8, or the recipe's ``model`` preset) on a Speech Commands folder;
    evaluate on its test split; save into ``model_dir`` (an interrupted run continues from its checkpoint).

    ``settings`` (a :class:`SpeechSettings`) decides the run; without it the
    settings are ``SpeechSettings.of(recipe, augmentation=..., **overrides)``:
    ``epochs``, ``batch_size``, ``optimizer``, ``learning_rate``,
    ``unknown_share``, ``noise_share``, ``dtype_policy``, ``initial_model``.
    The chapter's recipe: sgd with learning rate 0.01, batch 64, 25 epochs,
    5 % ``_unknown_`` and 5 % noise examples, each epoch freshly augmented
    (``augmentation=None`` trains on the clips as they are). ``recipe="robust"``
    takes :data:`sightsound.presets.RECIPES` ``["robust"]`` instead, for a
    recognizer that listens in noisy rooms. ``initial_model`` (a saved speech
    model folder with the same words) starts from its weights instead of a
    fresh network: fine-tuning. ``dtype_policy="mixed_bfloat16"`` trains in
    mixed precision (see :meth:`sightsound.engine.sequential.Sequential.compile`).
    """
    if settings is None:
        settings = SpeechSettings.of(recipe, augmentation=augmentation, **overrides)
    elif overrides or recipe != "chapter" or augmentation is not RECIPE:
        raise ValueError("train_speech(settings=...) takes no separate settings (use dataclasses.replace)")
    s = settings
    if seed is not None:
        set_seed(seed)
    start = time.perf_counter()
    data = data or sc.load_speech_commands(data_dir, unknown_share=s.unknown_share, noise_share=s.noise_share,
                                           seed=seed or 0, cache_dir=cache_dir, workers=workers,
                                           progress=progress)
    words = data.words
    train, val, test = data.split("training"), data.split("validation"), data.split("testing")
    train = sc.repeat_engines(train, data.root, s.engine_repeats or {})
    rng = np.random.default_rng([seed or 0, 99])
    run = {"settings": s.to_json(), "seed": seed, "data": str(data.root)}  # what a checkpoint must match
    folder = Path(model_dir) / CHECKPOINT_DIR if model_dir is not None else None
    model, parts, spent, peak = _resumed(folder, run, rng, device)
    if model is None:
        model, peak = _initial_model(s, data, device)
    steps = math.ceil(len(train) / s.batch_size)
    extra = _callbacks(s, peak, steps, len(train), progress, callbacks)
    checkpoint = (lambda epoch: save_checkpoint(model, folder, {
        **run, "epochs_done": epoch + 1, "parts": parts, "seconds": spent + time.perf_counter() - start,
        "peak": peak, "numpy_rng": json.dumps(rng.bit_generator.state)})) if folder is not None else None
    _fit_epochs(model, s, train, val, rng, parts, extra, checkpoint)
    test_x, test_labels = test.arrays(one_hot=False)
    evaluation = evaluate_predictions(model.predict(test_x), test_labels, words)
    seconds = spent + time.perf_counter() - start
    result = SpeechTrainResult(words=words, params=model.count_params(), epochs=len(parts), seconds=seconds,
                               evaluation=evaluation, history=concat_histories(*parts),
                               examples={s: len(data.split(s)) for s in sc.SPLITS}, model=model,
                               settings={**s.to_json(), "optimizer": model.optimizer.class_name, "seed": seed})
    if model_dir is not None:
        result.out_dir = Path(model_dir)
        result.files = save_speech_run(model, result, data.root)
        shutil.rmtree(folder, ignore_errors=True)  # the finished run replaces it
    return result


def _resumed(folder: Path | None, run: dict, rng: np.random.Generator, device: str):
    """The model, per-epoch histories and seconds spent of an interrupted run of the same settings, seed
    and data whose checkpoint is in ``folder`` (``rng`` set to where it was) and its peak learning rate;
    ``(None, [], 0.0, None)`` otherwise."""
    fresh = None, [], 0.0, None
    if folder is None or find_checkpoint(folder) != folder:
        return fresh
    try:
        model, state = load_checkpoint(folder, device)
    except SightsoundError as error:
        warnings.warn(f"{error}; starting afresh", stacklevel=3)
        return fresh
    if {k: state.get(k) for k in run} != json.loads(json.dumps(run)):
        warnings.warn(f"{folder} holds a run with other settings, seed or data; starting afresh", stacklevel=3)
        return fresh
    model.set_dtype_policy(run["settings"]["dtype_policy"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])  # a string: JSON numbers lose big ints
    return model, list(state["parts"]), float(state["seconds"]), float(state["peak"])


def _fit_epochs(model, s: SpeechSettings, train: sc.SpeechSplit, val: sc.SpeechSplit, rng: np.random.Generator,
                parts: list, callbacks: list, checkpoint) -> None:
    """The epochs not in ``parts`` yet, each on freshly augmented examples, validated, then ``checkpoint(epoch)``."""
    val_x, val_y = val.arrays() if len(val) else (None, None)
    for epoch in range(len(parts), s.epochs):
        x, y = train.arrays(s.augmentation, rng)
        history = model.fit(x, smooth_labels(y, s.label_smoothing), batch_size=s.batch_size, epochs=epoch + 1,
                            initial_epoch=epoch, validation_data=(val_x, val_y) if val_x is not None else None,
                            callbacks=callbacks)
        parts.append(history.to_json())
        del x, y
        if checkpoint is not None:
            checkpoint(epoch)
        if model.stop_training:
            break


def _initial_model(s: SpeechSettings, data: sc.SpeechCommandsData, device: str):
    """A fresh model of the settings' preset, or the saved one to fine-tune (which must know the same words),
    compiled with the settings, and its peak learning rate (the compiled one, a schedule's top)."""
    if s.initial_model is None:
        model = presets.build(s.model, num_classes=len(data.words), device=device)
    else:
        model, known = load_speech_model(s.initial_model, device=device)
        if known != data.words:
            raise ModelFormatError(f"{s.initial_model} knows the words {list(known)} but {data.root} has "
                                   f"{list(data.words)}; fine-tuning needs the same word list")
    model.compile(optimizer=s.optimizer, loss="categoricalCrossentropy", metrics=["accuracy"],
                  learning_rate=s.learning_rate, dtype_policy=s.dtype_policy)
    return model, model.optimizer.learning_rate


def _callbacks(s: SpeechSettings, peak: float, steps: int, examples: int, progress: bool, callbacks) -> list:
    """The learning-rate schedule (one cycle over the whole run), a progress bar and the caller's callbacks."""
    out = []
    if s.schedule:
        schedule = OneCycle.from_config({**s.schedule, "peak": peak,
                                         "total_steps": steps * s.epochs})
        out.append(LearningRateScheduler(schedule, steps_per_epoch=steps))
    out += list(callbacks or [])
    if progress:
        from ..engine.callbacks import ProgressBar

        out.append(ProgressBar(steps, s.epochs, examples))
    return out


_TITLES = {"speech-conv": "Listing 4.8", "speech-bn": "speech-bn convnet"}


def save_speech_run(model, result: SpeechTrainResult, data_root: Path | None = None) -> list[Path]:
    """Write the model, metadata.json, history.json, curves.png, confusion.png and test_results.json."""
    from .. import plots

    out = Path(result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev = result.evaluation
    preset = result.settings.get("model", PRESET)
    model.save(str(out), user_defined_metadata={"preset": preset, "words": list(result.words),
                                                "test_accuracy": ev.accuracy, "test_loss": ev.loss})
    meta = model_files.write_metadata(out, result.words)
    history = write_json_atomic(out / "history.json", {
        **result.history, "test": {"loss": ev.loss, "acc": ev.accuracy, "per_class_acc": ev.per_class},
        "preset": preset, "words": list(result.words), "examples": result.examples, "seconds": result.seconds,
        "data": str(data_root) if data_root else None, "settings": result.settings})
    results = write_json_atomic(out / "test_results.json", ev.to_json())
    curves = plots.plot_curves(result.history, out / "curves.png", title=f"{_TITLES.get(preset, preset)} on speech commands")
    confusion = plot_confusion(ev, out / "confusion.png",
                               title=f"test split: accuracy {ev.accuracy:.3f} on {sum(ev.counts.values())} examples")
    return [out / "model.json", meta, history, curves, confusion, results]


# -- using a trained model --------------------------------------------------------------------

def load_speech_model(model_dir: str | os.PathLike, device: str = "auto"):
    """(model, words) from a folder holding model.json, weights and metadata.json."""
    from ..tfjs import load_layers_model

    words = read_metadata(model_dir)
    model = load_layers_model(str(model_dir), device=device)
    if tuple(model.input_shape) != frontend.SPECTROGRAM_SHAPE:
        raise ModelFormatError(f"{model_dir}: the model takes {list(model.input_shape)}, not the speech "
                               f"spectrogram {list(frontend.SPECTROGRAM_SHAPE)}")
    if tuple(model.output_shape) != (len(words),):
        raise ModelFormatError(f"{model_dir}: the model has {model.output_shape[-1]} outputs but "
                               f"metadata.json lists {len(words)} words")
    return model, words


def evaluate_speech(model_dir: str | os.PathLike, data_dir: str | os.PathLike, *, device: str = "auto",
                    unknown_share: float = sc.DEFAULT_SHARE, noise_share: float = sc.DEFAULT_SHARE,
                    seed: int = 0, cache_dir=None, workers: int = 2, progress: bool = False) -> SpeechEvaluation:
    """Accuracy of a saved model on a dataset folder's test split (classes from its metadata.json)."""
    model, words = load_speech_model(model_dir, device)
    specials = {sc.BACKGROUND_NOISE, sc.UNKNOWN}
    if not specials <= set(words):
        raise ModelFormatError(f"{model_dir}: metadata words must include {sc.BACKGROUND_NOISE} and {sc.UNKNOWN}")
    targets = tuple(w for w in words if w not in specials)
    data = sc.load_speech_commands(data_dir, targets=targets, unknown_share=unknown_share, noise_share=noise_share,
                                   seed=seed, splits=("testing",), cache_dir=cache_dir, workers=workers,
                                   progress=progress)
    test = data.split("testing")
    x, labels = test.arrays(one_hot=False)
    return evaluate_predictions(model.predict(x), _to_model_order(labels, data.words, words), words)


def _to_model_order(labels: np.ndarray, data_words: tuple[str, ...], model_words: tuple[str, ...]) -> np.ndarray:
    """Dataset class ids -> the model's output positions (metadata order may differ from sorted order)."""
    lookup = np.array([model_words.index(w) for w in data_words], dtype=np.int64)
    return lookup[labels]


def recognize_samples(model, words: tuple[str, ...], samples: np.ndarray, sample_rate: int, path: str = "",
                      top: int = 3) -> Recognition:
    """Recognise one clip with a loaded model: :meth:`sightsound.speech.Recognizer.recognize_clip`."""
    return Recognizer(model, words).recognize_clip(samples, sample_rate, path=path, top=top)


def recognize_files(model_dir: str | os.PathLike, wav_paths: list[str | os.PathLike], device: str = "auto"
                    ) -> list[Recognition]:
    """Recognise WAV files with a saved model (see :meth:`sightsound.speech.Recognizer.recognize_clip`)."""
    recognizer = create("BROWSER_FFT", model=model_dir, device=device)
    out = []
    for p in wav_paths:
        samples, rate = wav.read_wav(p)
        out.append(recognizer.recognize_clip(samples, rate, path=str(p)))
    return out


__all__ = ["train_speech", "evaluate_speech", "recognize_files", "recognize_samples", "load_speech_model",
           "read_metadata", "metadata", "evaluate_predictions", "plot_confusion", "SpeechEvaluation",
           "SpeechTrainResult", "Recognition", "save_speech_run"]
