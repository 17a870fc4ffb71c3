"""Listening to a stream: ``listen()``'s options, the stream logic, and its two threads.

:class:`StreamProcessor` is the package's listening logic on a stream
(synchronous: PCM in, results out); :class:`Session` runs one on a worker
thread, fed by a reader thread, for :meth:`sightsound.speech.Recognizer.listen`.

**How listening works (the package's semantics).** The audio becomes dB
frames of 232 bins every 1,024 samples at 44.1 kHz (:mod:`~sightsound.speech.frontend`,
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
are kept at :data:`~sightsound.speech.frontend.SILENCE_DB`, the floor the models are
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

import math
import queue
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ModelFormatError
from .frontend import FFT_SIZE, FRAME_DURATION_MILLIS, FRAME_SIZE, HOP, SAMPLE_RATE, StreamFrontend, normalize
from .model_files import NOISE_WORDS
from .results import RecognitionResult, SpectrogramData
from .sources import to_float_chunk

STOP_TIMEOUT = 0.4  #: seconds ``stop_listening`` waits for the worker thread (then 0.02 s for the reader)
_POLL = 0.05  #: seconds between checks of the stop flag in the threads
_QUEUE_CHUNKS = 64  #: chunks that may wait between the reader and the worker


def _js_round(x: float) -> int:
    """JavaScript's ``Math.round`` (halves go up), which the package uses for periods."""
    return int(math.floor(x + 0.5))


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
    unknown words are not returned unless asked for). ``on_frames(frames)``,
    if given, receives each block of new raw dB frames ``[k, 232]`` that
    ``push`` computes, before the results they complete (a live spectrogram
    view; not the silence ``finish`` appends). :class:`Recognizer` runs one of
    these on its worker thread; use it directly to process audio without
    threads.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], words: list[str], num_frames: int,
                 options: ListenOptions, sample_rate: int = SAMPLE_RATE,
                 on_frames: Callable[[np.ndarray], object] | None = None):
        self.predict = predict
        self.words = list(words)
        self.num_frames = int(num_frames)
        self.options = options
        self.period = options.period(self.num_frames)
        self.suppression = options.suppression_frames()
        self.frontend = StreamFrontend(sample_rate)
        self.sample_rate = self.frontend.sample_rate
        self.on_frames = on_frames
        self.history = np.zeros((0, FRAME_SIZE), dtype=np.float32)  # the last num_frames - 1 frames
        self.counter = 0  # frames seen (the package's Tracker counter)
        self.onset: int | None = None  # counter of the last detection
        self.runs = 0  # recognizer runs (model evaluations that were not suppressed)
        self.samples_in = 0  # source samples received
        self.finished = False
        self._skip = {i for i, w in enumerate(self.words) if w in NOISE_WORDS}

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
        frames = self.frontend.push(x)
        if self.on_frames is not None and len(frames):
            self.on_frames(frames)
        return self._frames(frames)

    def finish(self) -> list[RecognitionResult]:
        """End of stream: continue with digital silence until a window holding the last audio was
        evaluated (see the module docstring); return the last results."""
        if self.finished:
            return []
        self.finished = True
        if self.samples_in == 0:
            return []
        results = self._frames(self.frontend.flush())
        results += self._frames(self.frontend.silence(HOP))  # a frame ends after the last sample
        n = self.counter
        target = max(self.num_frames, n)
        target = -(-target // self.period) * self.period
        if target > n:
            results += self._frames(self.frontend.silence((target - n) * HOP))
        return results

    def _suppressed(self, counter: int) -> bool:
        return self.onset is not None and counter - self.onset <= self.suppression

    def _frames(self, frames: np.ndarray) -> list[RecognitionResult]:
        """Take new frames; evaluate the windows whose ticks fire (counter % period == 0, full window)."""
        if len(frames) == 0:
            return []
        keep = self.num_frames - 1
        allf = np.concatenate([self.history, frames]) if len(self.history) else frames
        base = self.counter  # counter before the first new frame
        n_hist = len(allf) - len(frames)
        self.counter += len(frames)
        self.history = allf[-keep:].copy() if keep > 0 else np.zeros((0, FRAME_SIZE), dtype=np.float32)
        # suppression depends on earlier detections: drop what is surely suppressed, batch the rest
        windows, counters = [], []
        for j in range(len(frames)):
            c = base + j + 1
            if c % self.period == 0 and c >= self.num_frames and not self._suppressed(c):
                end = n_hist + j + 1
                windows.append(allf[end - self.num_frames:end])
                counters.append(c)
        return self._evaluate(np.stack(windows), counters) if windows else []

    def _evaluate(self, raw: np.ndarray, counters: list[int]) -> list[RecognitionResult]:
        """Run the model on raw windows ``[k, frames, 232]`` that end at frame ``counters``."""
        x = np.stack([normalize(w) for w in raw]).reshape(len(raw), self.num_frames, FRAME_SIZE, 1)
        scores = np.asarray(self.predict(x), dtype=np.float32)
        if scores.shape != (len(raw), len(self.words)):
            raise ModelFormatError(f"the model returned scores of shape {list(scores.shape)}, expected "
                                   f"[{len(raw)}, {len(self.words)}]")
        results = []
        for i, c in enumerate(counters):
            if self._suppressed(c):
                continue  # suppressed by a detection earlier in this batch
            self.runs += 1
            s = scores[i]
            index = int(np.argmax(s))
            if float(s[index]) < self.options.probability_threshold:
                continue
            if index in self._skip and not self.options.invoke_callback_on_noise_and_unknown:
                continue
            self.onset = c
            end_sample = FFT_SIZE + (c - 1) * HOP  # where frame c - 1 ends (44.1-kHz samples)
            spec = None
            if self.options.include_spectrogram:
                spec = SpectrogramData(raw[i].reshape(self.num_frames, FRAME_SIZE, 1).copy())
            results.append(RecognitionResult(scores=s.copy(), word=self.words[index],
                                             time=end_sample / SAMPLE_RATE, spectrogram=spec))
        return results


# -- the background session ----------------------------------------------------------------------------

class _End:
    pass


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Session:
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


__all__ = ["ListenOptions", "StreamProcessor", "Session", "STOP_TIMEOUT"]
