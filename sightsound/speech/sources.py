"""Audio sources for the streaming recognizer (:meth:`sightsound.speech.Recognizer.listen`).

A *source* is any object with

* ``sample_rate`` - an int, in Hz (any rate from 1 kHz to 768 kHz; the
  recognizer resamples to 44,100 Hz as the audio streams in);
* ``__iter__()`` - yields mono PCM chunks as 1-D numpy arrays (float in
  [-1, 1]); it may block while waiting for audio, and it ends when the stream
  ends (an endless source never ends);
* ``close()`` (optional) - asks a blocked iterator to finish soon. It is called
  from another thread by :meth:`Recognizer.stop_listening`.

Three are provided: :class:`WavFileSource` (a file, as fast as possible or in
real time), :class:`MicrophoneSource` (through the optional ``sounddevice``
package: ``pip install 'sightsound[mic]'``) and :class:`ChunkSource` (any
iterator of PCM chunks: float32/float64, int16, int32, uint8 arrays or raw
bytes, for example from a websocket). :class:`PushSource` is a ChunkSource
that other code feeds with ``push(chunk)`` and ends with ``end()``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import AudioError
from .frontend import SAMPLE_RATE, check_rate

_WAV_CHUNK_FAST = 16384  #: frames per chunk when a WAV file is read as fast as possible
_WAV_CHUNK_REALTIME = 1024  #: frames per chunk (about 23 ms at 44.1 kHz) when replayed in real time
_POLL = 0.05  #: seconds between checks of the closed flag while a source waits


# -- chunk conversion ------------------------------------------------------------------

def to_float_chunk(chunk, dtype=None) -> np.ndarray:
    """One PCM chunk as 1-D float32 mono in [-1, 1].

    Floats pass through; int16 is divided by 32768, int32 by 2**31, uint8 is
    offset binary ``(x - 128) / 128``. ``bytes`` (and other buffers) are read
    as ``dtype`` (default little-endian int16). 2-D ``[frames, channels]``
    chunks are averaged over channels. NaN or infinite samples raise
    :class:`AudioError`.

    >>> to_float_chunk(np.array([0, 16384, -32768], dtype=np.int16)).tolist()
    [0.0, 0.5, -1.0]
    """
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        dt = np.dtype(dtype or "<i2")
        raw = bytes(chunk)
        if len(raw) % dt.itemsize:
            raise AudioError(f"a PCM chunk of {len(raw)} bytes is not a whole number of {dt} samples")
        x = np.frombuffer(raw, dtype=dt)
    else:
        x = np.asarray(chunk)
        if dtype is not None and x.dtype != np.dtype(dtype):
            x = x.astype(dtype)
    if x.ndim not in (1, 2):
        raise AudioError(f"a PCM chunk must be 1-D (mono) or 2-D [frames, channels], got shape {list(x.shape)}")
    if np.issubdtype(x.dtype, np.floating):
        out = x.astype(np.float32, copy=False)
    elif x.dtype == np.int16:
        out = x.astype(np.float32) / 32768.0
    elif x.dtype == np.int32:
        out = (x.astype(np.float64) / 2.0 ** 31).astype(np.float32)
    elif x.dtype == np.uint8:
        out = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        raise AudioError(f"unsupported integer PCM dtype {x.dtype} (use int16, int32, uint8 or floats)")
    else:
        raise AudioError(f"a PCM chunk must hold numbers, got dtype {x.dtype}")
    if out.ndim == 2:
        out = out[:, 0] if out.shape[1] == 1 else out.mean(axis=1, dtype=np.float64).astype(np.float32)
    if out.size and not np.isfinite(out).all():
        raise AudioError("a PCM chunk contains NaN or infinite samples")
    return out


def _put_dropping_oldest(bounded: queue.Queue, item) -> int:
    """Put ``item`` without blocking; when the queue is full drop the oldest items. Returns how many were dropped."""
    dropped = 0
    while True:
        try:
            bounded.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                bounded.get_nowait()
                dropped += 1
            except queue.Empty:
                pass


# -- sources -------------------------------------------------------------------------

class AudioSource:
    """Base class of the sources (see the module docstring for the protocol)."""

    sample_rate: int = SAMPLE_RATE

    def __init__(self):
        self._closed = threading.Event()

    def __iter__(self):
        raise NotImplementedError

    def close(self) -> None:
        """Ask the iterator to stop soon (safe to call from any thread, more than once)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


class WavFileSource(AudioSource):
    """A WAV (or other ``soundfile``-readable) file, streamed in chunks.

    ``realtime=False`` (default) yields the audio as fast as the recognizer
    takes it; ``realtime=True`` paces the chunks (``chunk_size`` frames,
    default 1,024) with the wall clock, like a live stream. The file is read
    block by block, so its length is not limited by memory. Channels are
    averaged into mono. Missing or unreadable files raise :class:`AudioError`
    at construction.
    """

    def __init__(self, path: str | os.PathLike, realtime: bool = False, chunk_size: int | None = None):
        import soundfile as sf

        super().__init__()
        self.path = Path(path)
        self.realtime = bool(realtime)
        self.chunk_size = int(chunk_size or (_WAV_CHUNK_REALTIME if realtime else _WAV_CHUNK_FAST))
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size!r}")
        if not self.path.is_file():
            raise AudioError(f"{self.path}: no such file" if not self.path.exists() else
                             f"{self.path}: not a regular file")
        try:
            info = sf.info(str(self.path))
        except Exception as err:  # soundfile raises several types for bad headers
            raise AudioError(f"{self.path}: not a readable audio file ({str(err).split(': ', 1)[-1]})") from None
        if info.frames == 0:
            raise AudioError(f"{self.path}: the file holds no samples")
        self.sample_rate = check_rate(info.samplerate)
        self.channels = info.channels
        self.frames = info.frames

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def __iter__(self):
        import soundfile as sf

        start = time.monotonic()
        sent = 0
        try:
            handle = sf.SoundFile(str(self.path))
        except Exception as err:
            raise AudioError(f"{self.path}: cannot open ({err})") from None
        with handle:
            while not self.closed:
                try:
                    block = handle.read(self.chunk_size, dtype="float32", always_2d=True)
                except Exception as err:
                    raise AudioError(f"{self.path}: cannot decode the sample data ({err})") from None
                if block.shape[0] == 0:
                    return
                x = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
                if not np.isfinite(x).all():
                    raise AudioError(f"{self.path}: contains NaN or infinite samples")
                if self.realtime:
                    due = start + sent / self.sample_rate
                    delay = due - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        return
                sent += x.size
                yield np.ascontiguousarray(x)


class ChunkSource(AudioSource):
    """Any iterable of PCM chunks at ``sample_rate`` (see :func:`to_float_chunk` for the types).

    Empty chunks are skipped. ``dtype`` says how to read ``bytes`` chunks
    (default little-endian int16) and, for arrays, forces a conversion first.
    ``close()`` also closes the iterable when it has a ``close`` method (a
    generator), if that is possible at that moment.
    """

    def __init__(self, iterable: Iterable, sample_rate: int = SAMPLE_RATE, dtype=None):
        super().__init__()
        if isinstance(iterable, (bytes, bytearray, memoryview, np.ndarray)) or not hasattr(iterable, "__iter__"):
            raise TypeError("ChunkSource() takes an iterable of chunks (for one array, use [array])")
        self.iterable = iterable
        self.sample_rate = check_rate(sample_rate)
        self.dtype = dtype

    def __iter__(self):
        for chunk in self.iterable:
            if self.closed:
                return
            if chunk is None:
                continue
            x = to_float_chunk(chunk, self.dtype)
            if x.size:
                yield x

    def close(self) -> None:
        super().close()
        closer = getattr(self.iterable, "close", None)
        if callable(closer):
            try:
                closer()
            except (ValueError, RuntimeError):  # a generator running in another thread cannot be closed
                pass


class PushSource(AudioSource):
    """A source fed from outside: ``push(chunk)`` from any thread, ``end()`` when the stream ends.

    Meant for network streams (a websocket handler pushes what it receives).
    ``max_pending`` chunks may wait; beyond that ``push`` drops the oldest
    chunk (counted in ``dropped``) rather than block the producer.
    """

    _END = object()

    def __init__(self, sample_rate: int = SAMPLE_RATE, dtype=None, max_pending: int = 256):
        super().__init__()
        self.sample_rate = check_rate(sample_rate)
        self.dtype = dtype
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_pending)))

    def push(self, chunk) -> None:
        """Queue one chunk (converted now, so bad data raises here, in the producer)."""
        x = to_float_chunk(chunk, self.dtype)
        if x.size and not self.closed:
            self._put(x)

    def end(self) -> None:
        """Mark the end of the stream (the recognizer flushes and finishes)."""
        self._put(self._END)

    def _put(self, item) -> None:
        self.dropped += _put_dropping_oldest(self._queue, item)

    def __iter__(self):
        while not self.closed:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is self._END:
                return
            yield item


class MicrophoneSource(AudioSource):
    """The default (or a chosen) input device through ``sounddevice`` (``pip install 'sightsound[mic]'``).

    Records mono float32 at 44,100 Hz when the device supports it, else at the
    device's default rate (the recognizer then resamples). Raises
    :class:`AudioError` at construction when ``sounddevice`` (or PortAudio) is
    missing or there is no usable input device. If the recognizer falls
    behind, the oldest blocks are dropped (counted in ``dropped``) so that
    latency stays bounded.
    """

    def __init__(self, device=None, sample_rate: int | None = None, blocksize: int = 1024,
                 max_pending: int = 256):
        super().__init__()
        try:
            import sounddevice as sd
        except ImportError:
            raise AudioError("the microphone needs the optional 'sounddevice' package: "
                             "pip install 'sightsound[mic]' (or pip install sounddevice)") from None
        except OSError as err:  # PortAudio library missing
            raise AudioError(f"the microphone needs PortAudio, which could not be loaded ({err}); "
                             "install it (Debian/Ubuntu: apt-get install libportaudio2)") from None
        self._sd = sd
        self.device = device
        self.blocksize = int(blocksize)
        self.dropped = 0
        try:
            info = sd.query_devices(device, kind="input")
        except Exception as err:
            raise AudioError(f"no audio input device{'' if device is None else f' {device!r}'} found ({err}); "
                             "connect a microphone or use a file (--file)") from None
        if not info or int(info.get("max_input_channels", 0)) < 1:
            raise AudioError("the chosen audio device has no input channels; connect a microphone or use --file")
        rate = sample_rate or SAMPLE_RATE
        try:
            sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=rate)
        except Exception:
            if sample_rate:
                raise AudioError(f"the input device does not support {sample_rate} Hz") from None
            rate = int(round(float(info.get("default_samplerate") or SAMPLE_RATE)))
        self.sample_rate = check_rate(rate)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_pending)))
        self._stream = None

    def _on_audio(self, indata, frames, time_info, status) -> None:  # PortAudio thread
        block = np.array(indata[:, 0] if indata.ndim == 2 else indata, dtype=np.float32)
        self.dropped += _put_dropping_oldest(self._queue, block)

    def __iter__(self):
        try:
            stream = self._sd.InputStream(device=self.device, channels=1, dtype="float32",
                                          samplerate=self.sample_rate, blocksize=self.blocksize,
                                          callback=self._on_audio)
            stream.start()
        except Exception as err:
            raise AudioError(f"cannot open the microphone ({err})") from None
        self._stream = stream
        try:
            while not self.closed:
                try:
                    yield self._queue.get(timeout=_POLL)
                except queue.Empty:
                    continue
        finally:
            self._stop_stream()

    def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:
                pass

    def close(self) -> None:
        super().close()
        self._stop_stream()


def as_source(source) -> AudioSource:
    """``None`` -> the microphone; a path -> :class:`WavFileSource`; a source object as it is."""
    if source is None:
        return MicrophoneSource()
    if isinstance(source, (str, os.PathLike)):
        return WavFileSource(source)
    if hasattr(source, "__iter__") and hasattr(source, "sample_rate"):
        return source
    raise TypeError(f"source must be a path, None (the microphone) or an audio source with sample_rate and "
                    f"__iter__ (wrap an iterator of chunks in ChunkSource(chunks, sample_rate)); "
                    f"got {type(source).__name__}")


__all__ = ["AudioSource", "WavFileSource", "MicrophoneSource", "ChunkSource", "PushSource", "to_float_chunk",
           "as_source"]
