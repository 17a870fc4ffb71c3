"""The recognizer: ``create`` a model and its words, then ``recognize`` clips or ``listen`` to streams.

This is the API of the ``@tensorflow-models/speech-commands`` package (0.5.4)
that the chapter uses in Listing 4.9, with Python names::

    >>> from sightsound import speech
    >>> recognizer = speech.create("BROWSER_FFT")  # the model shipped with sightsound  # doctest: +SKIP
    >>> recognizer = speech.create("BROWSER_FFT", "18w")  # the package's own, downloaded once  # doctest: +SKIP
    >>> recognizer = speech.create("BROWSER_FFT", model="runs/speech")  # doctest: +SKIP
    >>> recognizer.word_labels()  # doctest: +SKIP
    ['_background_noise_', '_unknown_', 'down', 'eight', ...]
    >>> def on_word(result):
    ...     print(f"{result.time:.3f}", result.word, result.scores.max())
    >>> recognizer.listen(on_word, probability_threshold=0.75,
    ...                   source=speech.WavFileSource("long.wav"))  # doctest: +SKIP
    >>> recognizer.wait()  # until the file has been heard  # doctest: +SKIP
    >>> with recognizer.listen(on_word, source=speech.MicrophoneSource()):  # doctest: +SKIP
    ...     time.sleep(10)  # listen for ten seconds, then stop

How ``listen`` works, and where it differs from the browser on purpose, is in
:mod:`sightsound.speech.stream`; the words come from the model's
``metadata.json`` (:mod:`sightsound.speech.model_files`).
"""


from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelFormatError, ShapeError
from ..tfjs.constants import MODEL_JSON
from . import frontend, model_files, published
from .frontend import FRAME_DURATION_MILLIS, FRAME_SIZE, NUM_FRAMES, SAMPLE_RATE
from .results import ClipRecognition, RecognitionResult, SpectrogramData
from .sources import as_source
from .stream import ListenOptions, Session, StreamProcessor

FFT_TYPES = ("BROWSER_FFT", "SOFT_FFT")


# -- the recognizer ----------------------------------------------------------------------------------

class Recognizer:
    """A speech-command recognizer around a model and its word list (see :func:`create`).

    ``model`` is any object with ``predict(x) -> [N, len(words)]`` probabilities
    for ``x`` shaped ``[N, frames, 232, 1]`` and, optionally, ``input_shape``
    / ``output_shape`` (checked when present): a loaded
    :class:`sightsound.Sequential` or a stand-in.
    """

    def __init__(self, model, words, num_frames: int | None = None, where: str = "the model"):
        words = list(words)
        if not words or not all(isinstance(w, str) for w in words):
            raise ModelFormatError(f"{where}: the word list must be a non-empty list of strings")
        input_shape = tuple(getattr(model, "input_shape", ()) or ())
        if input_shape:
            if len(input_shape) != 3 or input_shape[2] != 1:
                raise ModelFormatError(f"{where}: expected a model input of shape [frames, 232, 1], "
                                       f"got {list(input_shape)}")
            if input_shape[1] != FRAME_SIZE:
                raise ModelFormatError(f"{where}: the model takes {input_shape[1]} frequency bins a frame; "
                                       f"the browser-FFT front end gives {FRAME_SIZE}")
            if num_frames is not None and num_frames != input_shape[0]:
                raise ModelFormatError(f"{where}: num_frames {num_frames} differs from the model's {input_shape[0]}")
            num_frames = int(input_shape[0])
        output_shape = tuple(getattr(model, "output_shape", ()) or ())
        if output_shape and output_shape != (len(words),):
            raise ModelFormatError(f"{where}: mismatch between the model's output shape {list(output_shape)} "
                                   f"and the number of words ({len(words)}) in metadata.json")
        self.model = model
        self.words = words
        self.num_frames = int(num_frames or NUM_FRAMES)
        if self.num_frames < 1:
            raise ModelFormatError(f"{where}: the model takes {self.num_frames} frames")
        self.where = where
        self._session: Session | None = None
        self._lock = threading.Lock()

    # -- what the package's recognizer reports ----------------------------------------------------------

    def word_labels(self) -> list[str]:
        """The words, in the order of the model's outputs (``wordLabels()``)."""
        return list(self.words)

    def params(self) -> dict:
        """``params()``: ``sampleRateHz`` 44100, ``fftSize`` 1024 and ``spectrogramDurationMillis``
        (frames x 23.22 ms) as the package reports them, plus ``numFrames``, ``frameSize`` and
        ``frameDurationMillis`` (sightsound's additions)."""
        return {"sampleRateHz": SAMPLE_RATE, "fftSize": frontend.HOP,
                "spectrogramDurationMillis": self.num_frames * FRAME_DURATION_MILLIS,
                "numFrames": self.num_frames, "frameSize": FRAME_SIZE,
                "frameDurationMillis": FRAME_DURATION_MILLIS}

    def model_input_shape(self) -> list:
        """``modelInputShape()``: ``[None, frames, 232, 1]``."""
        return [None, self.num_frames, FRAME_SIZE, 1]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x), dtype=np.float32)

    def _result(self, scores: np.ndarray, spectrogram: SpectrogramData | None = None) -> RecognitionResult:
        return RecognitionResult(scores=scores, word=self.words[int(np.argmax(scores))], time=None,
                                 spectrogram=spectrogram)

    # -- one-shot ------------------------------------------------------------------------------------------

    def recognize(self, samples_or_spectrogram, sample_rate: int = SAMPLE_RATE,
                  include_spectrogram: bool = False):
        """Recognise one clip or spectrogram(s).

        * 1-D array: mono samples at ``sample_rate`` (resampled to 44.1 kHz; the
          first 43 frames, zero-padded, as :func:`sightsound.speech.frontend.spectrogram`).
        * ``[frames, 232]`` or ``[frames, 232, 1]``: one spectrogram, given to the
          model as it is (as the package does: pass a normalised one, e.g. from
          ``frontend.spectrogram``).
        * ``[N, frames, 232, 1]``: a batch; returns a list of results.

        Returns a :class:`RecognitionResult` (``time`` None); ``spectrogram``
        is filled when ``include_spectrogram`` (for samples: the raw dB values).
        """
        x = np.asarray(samples_or_spectrogram)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number)):
            raise ShapeError(f"recognize() takes numbers, got dtype {x.dtype}")
        if x.ndim == 1:
            if self.num_frames != NUM_FRAMES:
                raise ShapeError(f"recognize(samples) needs a {NUM_FRAMES}-frame model; this one takes "
                                 f"{self.num_frames} frames: pass a spectrogram")
            spec = frontend.spectrogram(x, sample_rate)
            raw = frontend.spectrogram(x, sample_rate, normalized=False) if include_spectrogram else None
            scores = self._predict(spec[None])[0]
            return self._result(scores, SpectrogramData(raw) if raw is not None else None)
        shape = (self.num_frames, FRAME_SIZE)
        if x.ndim == 2 and x.shape == shape or x.ndim == 3 and x.shape == (*shape, 1):
            batch, single = x.reshape(1, *shape, 1), True
        elif x.ndim == 4 and x.shape[1:] == (*shape, 1):
            batch, single = x, False
        else:
            raise ShapeError(f"recognize() takes 1-D samples, a spectrogram [{shape[0]}, {shape[1]}(, 1)] or a "
                             f"batch [N, {shape[0]}, {shape[1]}, 1]; got shape {list(x.shape)}")
        batch = batch.astype(np.float32, copy=False)
        if not np.isfinite(batch).all():
            raise ShapeError("recognize(): the spectrogram contains NaN or infinite values")
        scores = self._predict(batch)
        out = [self._result(s, SpectrogramData(batch[i].copy()) if include_spectrogram else None)
               for i, s in enumerate(scores)]
        return out[0] if single else out

    def recognize_clip(self, samples, sample_rate: int = SAMPLE_RATE, path: str = "",
                       top: int = 3) -> ClipRecognition:
        """Recognise one clip of any length, as ``sightsound speech recognize`` reports it.

        The clip is cut into 43-frame windows ``ListenOptions().period(43)`` = 22
        frames apart (``listen``'s default overlap; one window for a clip up to
        one second, the same as :meth:`recognize` gives), all recognised by
        :meth:`recognize` in one batch. The window with the highest probability
        of any class other than ``_background_noise_`` is reported: its ``top``
        words and their probabilities, best first.
        """
        if self.num_frames != NUM_FRAMES:
            raise ShapeError(f"recognize_clip() needs a {NUM_FRAMES}-frame model; this one takes "
                             f"{self.num_frames} frames")
        hop = ListenOptions().period(self.num_frames)
        scores = np.stack([r.scores for r in self.recognize(frontend.spectrograms(samples, sample_rate, hop))])
        choice = 0
        if len(scores) > 1:
            keep = [i for i, w in enumerate(self.words) if w != model_files.BACKGROUND_NOISE_TAG]
            choice = int(scores[:, keep].max(axis=1).argmax())
        p = scores[choice]
        order = np.argsort(-p, kind="stable")[:top]
        return ClipRecognition(path=path, top=[(self.words[i], float(p[i])) for i in order], window=choice,
                               windows=len(scores))

    def create_transfer(self, name: str):
        """``createTransfer(name)``: a :class:`~sightsound.speech.transfer.TransferRecognizer` that learns
        new words on this model (frozen); names are unique per base recognizer, as in the package."""
        # transfer.py subclasses Recognizer: importing it by name here keeps the modules from importing each other
        transfer_class = importlib.import_module(".transfer", __package__).TransferRecognizer
        transfers = self.__dict__.setdefault("_transfers", {})
        if not isinstance(name, str) or len(name) < 2:
            raise ValueError(f"Expected the name for a transfer-learning recognizer to be a string of at least "
                             f"two characters, but got {name!r}")
        if name in transfers:
            raise ValueError(f"There is already a transfer-learning model named '{name}'")
        transfers[name] = transfer_class(name, self)
        return transfers[name]

    # -- streaming ------------------------------------------------------------------------------------------

    def listen(self, callback: Callable[[RecognitionResult], object], probability_threshold: float = 0,
               invoke_callback_on_noise_and_unknown: bool = False, overlap_factor: float = 0.5,
               include_spectrogram: bool = False, suppression_time_millis: float = 0, source=None,
               on_error: Callable[[BaseException], object] | None = None,
               on_frames: Callable[[np.ndarray], object] | None = None) -> "Recognizer":
        """Start listening in the background; return at once (``self``, usable in ``with``).

        ``source``: a path (a WAV file, as fast as possible), ``None`` (the
        microphone) or a source object (:class:`WavFileSource`,
        :class:`MicrophoneSource`, :class:`ChunkSource`, :class:`PushSource`).
        ``callback(result)`` runs on a worker thread. Errors (source or
        callback) end listening and go to ``on_error`` if given, else
        :meth:`wait` re-raises them. ``on_frames(frames)`` (sightsound's
        addition) receives every block of new raw dB frames ``[k, 232]`` as the
        worker computes them, before the results they complete: a live
        spectrogram without computing the frames twice.
        """
        if not callable(callback):
            raise TypeError("listen() needs a callback function")
        options = ListenOptions(probability_threshold, bool(invoke_callback_on_noise_and_unknown),
                                overlap_factor, bool(include_spectrogram), suppression_time_millis)
        with self._lock:
            if self._session is not None and not self._session.done.is_set():
                raise RuntimeError("Cannot start streaming again when streaming is ongoing.")
            src = as_source(source)
            processor = StreamProcessor(self._predict, self.words, self.num_frames, options,
                                        getattr(src, "sample_rate", None), on_frames=on_frames)
            session = Session(processor, src, callback, on_error)
            self._session = session
            session.start()
        return self

    def is_listening(self) -> bool:
        """True from ``listen()`` until ``stop_listening()``, an error, or the end of a finite source."""
        session = self._session
        return session is not None and not session.done.is_set() and not session.stop_event.is_set()

    def stop_listening(self) -> None:
        """Stop: no callback starts after this returns (within about 0.5 s, even if the source blocks).

        Raises RuntimeError if ``listen()`` was not called (as the package).
        Stopping a session that has already ended (its source finished) is fine.
        """
        session = self._session
        if session is None:
            raise RuntimeError("Cannot stop streaming when streaming is not ongoing.")
        session.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until listening ends (a finite source heard to its end, ``stop_listening`` or an error).

        Returns True when it has ended, False on timeout. Re-raises an error
        of the source or the callback (once; not when ``on_error`` took it).
        """
        session = self._session
        if session is None:
            raise RuntimeError("wait(): listen() has not been called")
        if timeout is None:
            while not session.join(0.1):  # short slices keep Ctrl-C working
                pass
            ended = True
        else:
            ended = session.join(timeout)
        if ended:
            self._raise_error(session)
        return ended

    @staticmethod
    def _raise_error(session: Session) -> None:
        if session.error is not None and not session.error_reported:
            session.error_reported = True
            raise session.error

    @property
    def stream_time(self) -> float:
        """Seconds of audio the current (or last) listen session has received."""
        return self._session.processor.time if self._session else 0.0

    def __enter__(self) -> "Recognizer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        session = self._session
        if session is None:
            return
        session.stop()
        if exc_type is None and session.done.is_set():
            self._raise_error(session)

    def __repr__(self) -> str:
        return (f"Recognizer({self.where}, {len(self.words)} words, "
                f"{'listening' if self.is_listening() else 'idle'})")


# -- creating a recognizer -----------------------------------------------------------------------------

def create(fft_type: str = "BROWSER_FFT", vocabulary: str | None = None, model=None, metadata=None,
           device: str = "auto", request_options: dict | None = None) -> Recognizer:
    """``SpeechCommands.create('BROWSER_FFT', ...)``: load a model and its words into a :class:`Recognizer`.

    ``model``: a folder, a ``model.json`` path, ``file://`` or ``http(s)://``
    URL of a TF.js Layers model, with ``metadata.json`` (``{"words": [...]}``)
    beside it unless ``metadata`` (a dict, path or URL) is given.
    ``vocabulary`` (``'18w'`` or ``'directional4w'``, instead of ``model``):
    the package's published model, downloaded once into the cache and used
    from there afterwards (:mod:`sightsound.speech.published`). With neither,
    the speech model shipped with sightsound
    (:func:`~sightsound.speech.model_files.pretrained_model_dir`); the package
    itself would take ``'18w'`` then. Raises :class:`ModelFormatError` for a
    missing model (also a shipped one missing from a broken install) or
    metadata, or an output size that differs from the number of words;
    :class:`~sightsound.errors.FetchError` when a published model cannot be
    downloaded; ValueError for an unknown vocabulary.
    """
    if fft_type == "SOFT_FFT":
        raise ValueError("SOFT_FFT SpeechCommandRecognizer has not been implemented yet.")
    if fft_type != "BROWSER_FFT":
        raise ValueError(f"Invalid fftType: {fft_type!r} (expected 'BROWSER_FFT')")
    if vocabulary is not None:
        if model is not None or metadata is not None:
            raise ValueError("vocabulary name must be None when a model (or its metadata) is given")
        model = published.ensure_model(vocabulary, request_options)
    elif model is None:
        model = _pretrained_model()
    if not isinstance(model, (str, os.PathLike)):
        words = model_files.words_of(metadata, "metadata") if isinstance(metadata, dict) else None
        if words is None:
            raise TypeError("create(model=...) takes a folder, model.json path or URL; to wrap a loaded model "
                            "use Recognizer(model, words)")
        return Recognizer(model, words, where=type(model).__name__)
    ref = os.fspath(model)
    words = model_files.model_words(ref, metadata, request_options)  # checked first: a missing metadata.json is common
    from ..tfjs import load_layers_model

    loaded = load_layers_model(ref, request_options=request_options, device=device)
    recognizer = Recognizer(loaded, words, where=ref)
    recognizer._predict(np.zeros((1, recognizer.num_frames, FRAME_SIZE, 1), dtype=np.float32))  # warm-up
    return recognizer


def _pretrained_model() -> Path:
    """The shipped model's folder, or ModelFormatError naming what is missing there (an incomplete install)."""
    folder = model_files.pretrained_model_dir()
    missing = [name for name in (MODEL_JSON, model_files.METADATA_JSON) if not (folder / name).is_file()]
    if missing:
        raise ModelFormatError(f"the speech model shipped with sightsound is missing: no {' and no '.join(missing)} "
                               f"in {folder}. This sightsound install is incomplete; reinstall it, or pass a model "
                               f"(model=DIR_OR_URL; on the command line --model)")
    return folder


__all__ = ["create", "Recognizer", "FFT_TYPES"]
