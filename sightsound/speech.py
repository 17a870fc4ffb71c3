"""The speech-commands recognizer in Python: ``create``, ``listen``, ``recognize``.

This is the API of the ``@tensorflow-models/speech-commands`` package (0.5.4)
that the chapter uses in Listing 4.9, with Python names::

    >>> from sightsound import speech
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

**How listening works (the package's semantics).** The audio becomes dB
frames of 232 bins every 1,024 samples at 44.1 kHz (:mod:`sightsound.audio`,
computed incrementally: each frame once). The last 43 frames (the model's
frame count) are kept. A frame counter ticks once per frame; the recognizer
runs when ``counter % period == 0`` with ``period = max(1, round(43 * (1 -
overlap_factor)))`` (22 frames, about 0.51 s, at the default 0.5), unless a
suppression is active: after a detection at counter ``s`` the recognizer is
skipped while ``counter - s <= round(suppression_time_millis / 23.22)``. A run
z-normalises the window, predicts, and then

* if the highest score is below ``probability_threshold``: nothing happens;
* else the word is the arg-max of the scores; if it is ``_background_noise_``
  or ``_unknown_`` and ``invoke_callback_on_noise_and_unknown`` is false,
  nothing happens;
* else ``callback(result)`` is called and a suppression period starts.

The package calls back with ``{scores, spectrogram}``; here the result also
carries ``word`` (that arg-max) and ``time`` (stream seconds at the end of
the window's last frame, so ``time`` is when the recognizer could first have
heard it). ``spectrogram`` is the window's raw dB values (not normalised, as
the package passes them), only when ``include_spectrogram=True``.

**Where this differs from the browser, on purpose.** (1) The package starts
firing when only ``period`` frames have arrived, padding the rest of the
window with 0 dB; a 0 dB block is louder than any real sound, so those first
recognitions are meaningless: here the recognizer waits for a full window (the
first run is at the first multiple of ``period`` that is >= 43). (2) The
browser drops frames that are exact digital silence (-Infinity dB); here they
are kept at :data:`sightsound.audio.SILENCE_DB`, the floor the models are
trained with, so stream time is exact. (3) When a finite source (a file, a
finished iterator) ends, the stream is continued with digital silence until
one more window that contains the last audio has been evaluated, so a word at
the very end is still heard. (4) The browser's ``listen`` runs on a timer;
here the stream's own clock is used, so results are the same however fast
the audio arrives (real time or faster).

**Threads.** ``listen`` returns at once. One thread reads the source (it may
block), another computes frames, runs the model and calls ``callback``. At
most 43 frames (plus one chunk) are held, whatever the stream's length.
``stop_listening()`` returns within about half a second even while the source
blocks (a reader blocked inside a foreign iterator is left to finish on its
own as a daemon thread; it delivers nothing more). An error in the source or
in the callback ends listening; :meth:`Recognizer.wait` re-raises it, or
``on_error(exc)`` receives it.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio, http_fetch, paths
from .errors import FetchError, ModelFormatError, ShapeError
from .speech_sources import (AudioSource, ChunkSource, MicrophoneSource, PushSource, StreamResampler,
                             WavFileSource, _check_rate, as_source, to_float_chunk)

BACKGROUND_NOISE_TAG = "_background_noise_"
UNKNOWN_TAG = "_unknown_"
FFT_TYPES = ("BROWSER_FFT", "SOFT_FFT")
METADATA_JSON = "metadata.json"
DEFAULT_MODEL_SUBDIR = ("models", "speech-commands")  #: under :func:`sightsound.paths.cache_dir`
FRAME_DURATION_MILLIS = audio.HOP / audio.SAMPLE_RATE * 1e3  #: 23.22 ms, as the package computes it
STOP_TIMEOUT = 0.4  #: seconds ``stop_listening`` waits for the worker thread (then 0.02 s for the reader)
_POLL = 0.05  #: seconds between checks of the stop flag in the threads
_QUEUE_CHUNKS = 64  #: chunks that may wait between the reader and the worker
_MAX_METADATA_BYTES = 1 << 20


def default_model_dir() -> Path:
    """Where ``create()`` looks without ``model``: ``<cache dir>/models/speech-commands``."""
    return paths.cache_dir().joinpath(*DEFAULT_MODEL_SUBDIR)


def _js_round(x: float) -> int:
    """JavaScript's ``Math.round`` (halves go up), which the package uses for periods."""
    return int(math.floor(x + 0.5))


# -- results -------------------------------------------------------------------------------------

@dataclass
class SpectrogramData:
    """The window the recognizer saw: raw dB values ``[frames, 232, 1]`` float32 (``data``)."""

    data: np.ndarray
    frame_size: int = audio.FRAME_SIZE
    frame_duration_millis: float = FRAME_DURATION_MILLIS


@dataclass
class RecognitionResult:
    """One result: ``scores`` in ``word_labels()`` order, the arg-max ``word``, the stream ``time``
    in seconds (``None`` for :meth:`Recognizer.recognize`) and ``spectrogram`` (or ``None``)."""

    scores: np.ndarray
    word: str
    time: float | None = None
    spectrogram: SpectrogramData | None = None

    @property
    def score(self) -> float:
        """The highest score (the probability of ``word``)."""
        return float(self.scores.max())


@dataclass
class ListenOptions:
    """``listen()``'s options, checked as the package checks them."""

    probability_threshold: float = 0.0
    invoke_callback_on_noise_and_unknown: bool = False
    overlap_factor: float = 0.5
    include_spectrogram: bool = False
    suppression_time_millis: float = 0.0

    def __post_init__(self):
        t = self.probability_threshold
        if t is None:
            self.probability_threshold = t = 0.0
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 1:
            raise ValueError(f"Invalid probabilityThreshold value: {t!r} (expected a number in [0, 1])")
        f = self.overlap_factor
        if f is None:
            self.overlap_factor = f = 0.5
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 <= f < 1:
            raise ValueError(f"Expected overlapFactor to be >= 0 and < 1, but got {f!r}")
        s = self.suppression_time_millis
        if s is None:
            self.suppression_time_millis = s = 0.0
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not s >= 0 or not math.isfinite(s):
            raise ValueError(f"suppressionTimeMillis is expected to be >= 0, but got {s!r}")

    def period(self, num_frames: int) -> int:
        """Frames between recognizer runs: ``max(1, round(num_frames * (1 - overlap_factor)))``."""
        return max(1, _js_round(num_frames * (1 - self.overlap_factor)))

    def suppression_frames(self) -> int:
        return _js_round(self.suppression_time_millis / FRAME_DURATION_MILLIS)


# -- the stream, without threads ----------------------------------------------------------------------

class StreamProcessor:
    """The listening logic on a stream, synchronously: ``push(chunk)`` -> results, ``finish()`` at the end.

    ``push`` takes PCM at ``sample_rate`` (resampled to 44.1 kHz on the fly),
    computes the new frames once each, and returns every result the package
    would have passed to its callback (those below the threshold, noise and
    unknown words are not returned unless asked for). :class:`Recognizer`
    runs one of these on its worker thread; use it directly to process audio
    without threads.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], words: list[str], num_frames: int,
                 options: ListenOptions, sample_rate: int = audio.SAMPLE_RATE):
        self.predict = predict
        self.words = list(words)
        self.num_frames = int(num_frames)
        self.options = options
        self.period = options.period(self.num_frames)
        self.suppression = options.suppression_frames()
        self.sample_rate = _check_rate(sample_rate)
        self.resampler = StreamResampler(self.sample_rate, audio.SAMPLE_RATE)
        self.extractor = audio.FrameExtractor()
        self.history = np.zeros((0, audio.FRAME_SIZE), dtype=np.float32)  # the last num_frames - 1 frames
        self.counter = 0  # frames seen (the package's Tracker counter)
        self.onset: int | None = None  # counter of the last detection
        self.runs = 0  # recognizer runs (model evaluations that were not suppressed)
        self.samples_in = 0  # source samples received
        self.finished = False
        self._skip = {i for i, w in enumerate(self.words) if w in (BACKGROUND_NOISE_TAG, UNKNOWN_TAG)}

    @property
    def time(self) -> float:
        """Stream time (s) of the audio received so far."""
        return self.samples_in / self.sample_rate

    def push(self, chunk) -> list[RecognitionResult]:
        """Add source samples (any PCM chunk type); return the results they complete."""
        if self.finished:
            raise RuntimeError("StreamProcessor.push() after finish()")
        x = to_float_chunk(chunk)
        if x.size == 0:
            return []
        self.samples_in += x.size
        return self._frames(self.extractor.push(self.resampler.process(x)))

    def finish(self) -> list[RecognitionResult]:
        """End of stream: continue with digital silence until a window holding the last audio was
        evaluated (see the module docstring); return the last results."""
        if self.finished:
            return []
        self.finished = True
        if self.samples_in == 0:
            return []
        results = self._frames(self.extractor.push(self.resampler.flush()))
        results += self._frames(self.extractor.push(np.zeros(audio.HOP)))  # a frame ends after the last sample
        n = self.counter
        target = max(self.num_frames, n)
        target = -(-target // self.period) * self.period
        if target > n:
            results += self._frames(self.extractor.push(np.zeros((target - n) * audio.HOP)))
        return results

    def _frames(self, frames: np.ndarray) -> list[RecognitionResult]:
        if len(frames) == 0:
            return []
        keep = self.num_frames - 1
        allf = np.concatenate([self.history, frames]) if len(self.history) else frames
        base = self.counter  # counter before the first new frame
        n_hist = len(allf) - len(frames)
        # frames whose tick could fire: counter % period == 0 and a full window
        fires = [j for j in range(len(frames))
                 if (base + j + 1) % self.period == 0 and base + j + 1 >= self.num_frames]
        self.counter += len(frames)
        self.history = allf[-keep:].copy() if keep > 0 else np.zeros((0, audio.FRAME_SIZE), dtype=np.float32)
        if not fires:
            return []
        # suppression depends on earlier detections; drop what is surely suppressed, batch the rest
        windows, counters = [], []
        for j in fires:
            c = base + j + 1
            if self.onset is not None and c - self.onset <= self.suppression:
                continue
            end = n_hist + j + 1
            windows.append(allf[end - self.num_frames:end])
            counters.append(c)
        if not windows:
            return []
        raw = np.stack(windows)
        x = np.stack([audio.normalize(w) for w in raw]).reshape(len(raw), self.num_frames, audio.FRAME_SIZE, 1)
        scores = np.asarray(self.predict(x), dtype=np.float32)
        if scores.shape != (len(raw), len(self.words)):
            raise ModelFormatError(f"the model returned scores of shape {list(scores.shape)}, expected "
                                   f"[{len(raw)}, {len(self.words)}]")
        results = []
        for i, c in enumerate(counters):
            if self.onset is not None and c - self.onset <= self.suppression:
                continue  # suppressed by a detection earlier in this batch
            self.runs += 1
            s = scores[i]
            index = int(np.argmax(s))
            if float(s[index]) < self.options.probability_threshold:
                continue
            if index in self._skip and not self.options.invoke_callback_on_noise_and_unknown:
                continue
            self.onset = c
            end_sample = audio.FFT_SIZE + (c - 1) * audio.HOP  # where frame c - 1 ends (44.1-kHz samples)
            spec = None
            if self.options.include_spectrogram:
                spec = SpectrogramData(raw[i].reshape(self.num_frames, audio.FRAME_SIZE, 1).copy())
            results.append(RecognitionResult(scores=s.copy(), word=self.words[index],
                                             time=end_sample / audio.SAMPLE_RATE, spectrogram=spec))
        return results


# -- the background session ----------------------------------------------------------------------------

class _End:
    pass


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class _Session:
    """One ``listen()``: a reader thread (source -> queue) and a worker thread (queue -> callback)."""

    def __init__(self, processor: StreamProcessor, source, callback, on_error):
        self.processor = processor
        self.source = source
        self.callback = callback
        self.on_error = on_error
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.error_reported = False
        self.queue: queue.Queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.reader = threading.Thread(target=self._read, name="sightsound-speech-reader", daemon=True)
        self.worker = threading.Thread(target=self._work, name="sightsound-speech-worker", daemon=True)

    def start(self) -> None:
        self.worker.start()
        self.reader.start()

    def _put(self, item) -> bool:
        while not self.stop_event.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for chunk in self.source:
                if self.stop_event.is_set() or not self._put(chunk):
                    return
            self._put(_End())
        except BaseException as err:  # handed to the worker, which ends the session
            self._put(_Failure(err))

    def _work(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    item = self.queue.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if isinstance(item, _Failure):
                    raise item.error
                if isinstance(item, _End):
                    self._deliver(self.processor.finish())
                    return
                self._deliver(self.processor.push(item))
        except BaseException as err:
            self.error = err
            if self.on_error is not None:
                self.error_reported = True
                try:
                    self.on_error(err)
                except Exception:
                    pass
        finally:
            self.stop_event.set()
            self._close_source()
            self.done.set()

    def _deliver(self, results: list[RecognitionResult]) -> None:
        for result in results:
            if self.stop_event.is_set():
                return
            self.callback(result)

    def _close_source(self) -> None:
        closer = getattr(self.source, "close", None)
        if callable(closer):
            try:
                closer()
            except Exception:
                pass

    def stop(self) -> None:
        self.stop_event.set()
        self._close_source()
        current = threading.current_thread()
        if current is not self.worker:
            self.worker.join(STOP_TIMEOUT)
        if current is not self.reader:
            self.reader.join(0.02)

    def join(self, timeout: float | None) -> bool:
        if threading.current_thread() is self.worker:
            raise RuntimeError("wait() cannot be called from the listen callback (it runs on the worker thread)")
        return self.done.wait(timeout)


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
            if input_shape[1] != audio.FRAME_SIZE:
                raise ModelFormatError(f"{where}: the model takes {input_shape[1]} frequency bins a frame; "
                                       f"the browser-FFT front end gives {audio.FRAME_SIZE}")
            if num_frames is not None and num_frames != input_shape[0]:
                raise ModelFormatError(f"{where}: num_frames {num_frames} differs from the model's {input_shape[0]}")
            num_frames = int(input_shape[0])
        output_shape = tuple(getattr(model, "output_shape", ()) or ())
        if output_shape and output_shape != (len(words),):
            raise ModelFormatError(f"{where}: mismatch between the model's output shape {list(output_shape)} "
                                   f"and the number of words ({len(words)}) in metadata.json")
        self.model = model
        self.words = words
        self.num_frames = int(num_frames or audio.NUM_FRAMES)
        if self.num_frames < 1:
            raise ModelFormatError(f"{where}: the model takes {self.num_frames} frames")
        self.where = where
        self._session: _Session | None = None
        self._lock = threading.Lock()

    # -- what the package's recognizer reports ----------------------------------------------------------

    def word_labels(self) -> list[str]:
        """The words, in the order of the model's outputs (``wordLabels()``)."""
        return list(self.words)

    def params(self) -> dict:
        """``params()``: ``sampleRateHz`` 44100, ``fftSize`` 1024 and ``spectrogramDurationMillis``
        (frames x 23.22 ms) as the package reports them, plus ``numFrames``, ``frameSize`` and
        ``frameDurationMillis`` (sightsound's additions)."""
        return {"sampleRateHz": audio.SAMPLE_RATE, "fftSize": audio.HOP,
                "spectrogramDurationMillis": self.num_frames * FRAME_DURATION_MILLIS,
                "numFrames": self.num_frames, "frameSize": audio.FRAME_SIZE,
                "frameDurationMillis": FRAME_DURATION_MILLIS}

    def model_input_shape(self) -> list:
        """``modelInputShape()``: ``[None, frames, 232, 1]``."""
        return [None, self.num_frames, audio.FRAME_SIZE, 1]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x), dtype=np.float32)

    def _result(self, scores: np.ndarray, spectrogram: SpectrogramData | None = None) -> RecognitionResult:
        return RecognitionResult(scores=scores, word=self.words[int(np.argmax(scores))], time=None,
                                 spectrogram=spectrogram)

    # -- one-shot ------------------------------------------------------------------------------------------

    def recognize(self, samples_or_spectrogram, sample_rate: int = audio.SAMPLE_RATE,
                  include_spectrogram: bool = False):
        """Recognise one clip or spectrogram(s).

        * 1-D array: mono samples at ``sample_rate`` (resampled to 44.1 kHz; the
          first 43 frames, zero-padded, as :func:`sightsound.audio.spectrogram`).
        * ``[frames, 232]`` or ``[frames, 232, 1]``: one spectrogram, given to the
          model as it is (as the package does: pass a normalised one, e.g. from
          ``audio.spectrogram``).
        * ``[N, frames, 232, 1]``: a batch; returns a list of results.

        Returns a :class:`RecognitionResult` (``time`` None); ``spectrogram``
        is filled when ``include_spectrogram`` (for samples: the raw dB values).
        """
        x = np.asarray(samples_or_spectrogram)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number)):
            raise ShapeError(f"recognize() takes numbers, got dtype {x.dtype}")
        if x.ndim == 1:
            if self.num_frames != audio.NUM_FRAMES:
                raise ShapeError(f"recognize(samples) needs a {audio.NUM_FRAMES}-frame model; this one takes "
                                 f"{self.num_frames} frames: pass a spectrogram")
            spec = audio.spectrogram(x, sample_rate)
            raw = audio.spectrogram(x, sample_rate, normalized=False) if include_spectrogram else None
            scores = self._predict(spec[None])[0]
            return self._result(scores, SpectrogramData(raw) if raw is not None else None)
        shape = (self.num_frames, audio.FRAME_SIZE)
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

    # -- streaming ------------------------------------------------------------------------------------------

    def listen(self, callback: Callable[[RecognitionResult], object], probability_threshold: float = 0,
               invoke_callback_on_noise_and_unknown: bool = False, overlap_factor: float = 0.5,
               include_spectrogram: bool = False, suppression_time_millis: float = 0, source=None,
               on_error: Callable[[BaseException], object] | None = None) -> "Recognizer":
        """Start listening in the background; return at once (``self``, usable in ``with``).

        ``source``: a path (a WAV file, as fast as possible), ``None`` (the
        microphone) or a source object (:class:`WavFileSource`,
        :class:`MicrophoneSource`, :class:`ChunkSource`, :class:`PushSource`).
        ``callback(result)`` runs on a worker thread. Errors (source or
        callback) end listening and go to ``on_error`` if given, else
        :meth:`wait` re-raises them.
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
                                        getattr(src, "sample_rate", None))
            session = _Session(processor, src, callback, on_error)
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
    def _raise_error(session: _Session) -> None:
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

def _parse_metadata(raw: bytes, where: str) -> list[str]:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{where}: not valid JSON ({err})") from None
    return _words_of(doc, where)


def _words_of(doc, where: str) -> list[str]:
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where}: expected a JSON object with a 'words' list")
    words = doc.get("wordLabels")
    if words is None:
        words = doc.get("words")
    if words is None:
        raise ModelFormatError(f'{where}: cannot find field "words" or "wordLabels"')
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise ModelFormatError(f"{where}: 'words' must be a non-empty list of strings")
    return words


def _fetch(url: str, request_options: dict | None) -> bytes:
    headers, timeout = http_fetch.request_settings(request_options)
    try:
        return http_fetch.fetch_bytes(url, headers=headers, timeout=timeout, max_bytes=_MAX_METADATA_BYTES)
    except FetchError as err:
        if err.status == 404:
            raise ModelFormatError(f"{url}: not found (HTTP 404); a speech model needs metadata.json with "
                                   f"its words beside model.json") from None
        raise ModelFormatError(str(err)) from None


def _read_words(metadata, model_ref: str, request_options) -> list[str]:
    """The word list from ``metadata`` (dict, path or URL) or from metadata.json beside the model."""
    if isinstance(metadata, dict):
        return _words_of(metadata, "metadata")
    if metadata is not None:
        ref = os.fspath(metadata)
    elif model_ref.startswith(("http://", "https://")):
        ref = urllib.parse.urljoin(model_ref, METADATA_JSON)
    else:
        path = Path(model_ref[len("file://"):] if model_ref.startswith("file://") else model_ref).expanduser()
        if not path.exists():
            raise ModelFormatError(f"no speech model at {path}: expected a folder with model.json and "
                                   f"metadata.json (or a model.json path)")
        ref = str((path if path.is_dir() else path.parent) / METADATA_JSON)
    if ref.startswith(("http://", "https://")):
        return _parse_metadata(_fetch(ref, request_options), ref)
    path = Path(ref[len("file://"):] if ref.startswith("file://") else ref).expanduser()
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing; a speech model needs metadata.json (its word list, "
                               f"as `sightsound speech train` writes it) beside model.json")
    try:
        raw = path.read_bytes()[:_MAX_METADATA_BYTES + 1]
    except OSError as err:
        raise ModelFormatError(f"cannot read {path}: {err.strerror or err}") from None
    return _parse_metadata(raw, str(path))


def create(fft_type: str = "BROWSER_FFT", vocabulary: str | None = None, model=None, metadata=None,
           device: str = "auto", request_options: dict | None = None) -> Recognizer:
    """``SpeechCommands.create('BROWSER_FFT', ...)``: load a model and its words into a :class:`Recognizer`.

    ``model``: a folder, a ``model.json`` path, ``file://`` or ``http(s)://``
    URL of a TF.js Layers model, with ``metadata.json`` (``{"words": [...]}``)
    beside it unless ``metadata`` (a dict, path or URL) is given. Without
    ``model``, the default model at ``<cache dir>/models/speech-commands``
    (:func:`default_model_dir`). The package's pretrained vocabularies
    (``'18w'``, ``'directional4w'``) are downloaded from Google's servers by
    TF.js and are not available: train one with ``sightsound speech train``.
    Raises :class:`ModelFormatError` for a missing model or metadata, or an
    output size that differs from the number of words.
    """
    if fft_type == "SOFT_FFT":
        raise ValueError("SOFT_FFT SpeechCommandRecognizer has not been implemented yet.")
    if fft_type != "BROWSER_FFT":
        raise ValueError(f"Invalid fftType: {fft_type!r} (expected 'BROWSER_FFT')")
    if vocabulary is not None:
        raise ValueError(f"vocabulary {vocabulary!r}: the package's pretrained models come from Google's servers "
                         f"and are not available here; train a model (`sightsound speech train DATA_DIR "
                         f"{default_model_dir()}`) and pass model=DIR, or leave both out to use that default")
    if model is None:
        where = default_model_dir()
        if not (where / "model.json").is_file():
            raise ModelFormatError(
                f"no speech model given and none at the default location {where}. Make one with\n"
                f"  sightsound speech synth corpus --size full\n"
                f"  sightsound speech train corpus {where}\n"
                f"or pass model=DIR_OR_URL (on the command line: the MODEL argument)")
        model = where
    if not isinstance(model, (str, os.PathLike)):
        words = _words_of(metadata, "metadata") if isinstance(metadata, dict) else None
        if words is None:
            raise TypeError("create(model=...) takes a folder, model.json path or URL; to wrap a loaded model "
                            "use Recognizer(model, words)")
        return Recognizer(model, words, where=type(model).__name__)
    ref = os.fspath(model)
    words = _read_words(metadata, ref, request_options)  # checked first: a missing metadata.json is common
    from . import load_layers_model

    loaded = load_layers_model(ref, request_options=request_options, device=device)
    recognizer = Recognizer(loaded, words, where=ref)
    recognizer._predict(np.zeros((1, recognizer.num_frames, audio.FRAME_SIZE, 1), dtype=np.float32))  # warm-up
    return recognizer


__all__ = ["create", "Recognizer", "RecognitionResult", "SpectrogramData", "ListenOptions", "StreamProcessor",
           "WavFileSource", "MicrophoneSource", "ChunkSource", "PushSource", "AudioSource", "StreamResampler",
           "BACKGROUND_NOISE_TAG", "UNKNOWN_TAG", "default_model_dir"]
