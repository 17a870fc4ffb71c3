"""The browser-FFT front end: resampling, dB frames and the model's spectrogram.

This module (the role of speech-commands' ``browser_fft_extractor.ts``)
reproduces the front end of the package's ``BROWSER_FFT`` recognizer, which reads a Web Audio ``AnalyserNode`` with
``fftSize`` 2048 and ``smoothingTimeConstant`` 0 once every 1,024 samples at
44,100 Hz. For a frame that *ends* at sample ``t`` the values are::

    w[n]  = 0.42 - 0.5 cos(2 pi n / 2048) + 0.08 cos(4 pi n / 2048)   (n = 0..2047)
    X[k]  = sum_n x[t - 2048 + n] w[n] exp(-2 pi i k n / 2048)
    dB[k] = 20 log10(|X[k]| / 2048)                                     (k = 0..231)

Frame ``i`` of a signal ends at sample ``2048 + 1024 i``, so one second of
model input (43 frames) needs exactly :data:`CLIP_SAMPLES` = 45,056 samples,
the first frame coming from samples 0-2047. Bin ``k`` is centred on
``k * 44100 / 2048`` Hz (21.53 Hz a bin; 232 bins reach about 5 kHz).

**Digital silence.** ``|X[k]| = 0`` has no finite dB value: the browser
reports -Infinity and the TF.js extractor skips such frames. Offline clips do
contain exact zeros (padding, gated recordings), so every value here is
floored at :data:`SILENCE_DB` (-160 dB, about 20 dB below the quantisation
noise of 16-bit audio, so real recordings never reach it). The same floor is
used for training, recognition and the web front end; import it from here.

**Clip length.** :func:`spectrogram` turns any clip into one ``[43, 232, 1]``
input: a shorter clip is padded with zeros *at the end*; a longer clip is cut
to its *first* 45,056 samples. :func:`spectrograms` gives one spectrogram per
window of 43 frames, stepping ``hop_frames`` frames (default 43: consecutive,
non-overlapping windows of 44,032 samples), the last window padded with zeros.

**Streaming resampling** (:class:`StreamResampler`). Audio at another rate is
converted with the polyphase low-pass filter of ``scipy.signal.resample_poly``
(the same ``firwin`` Kaiser-window design, beta 5, and the same reduced ratio as
:func:`resample`), evaluated incrementally: output sample
``m`` is ``sum_n x[n] h[m*down + D - n*up]`` with ``D`` the filter's
half-length, which is exactly what ``resample_poly`` computes on the whole
signal. The resampler keeps only the last ``len(h)/up`` input samples (about
20) between chunks, so pushing a signal in any chunking and then calling
:meth:`StreamResampler.flush` gives ``resample_poly`` of the whole signal, to
float rounding, with bounded memory and a latency of ``D/up`` input samples
(0.23 ms at 16 kHz -> 44.1 kHz).

Example::

    >>> import numpy as np
    >>> from sightsound.speech import frontend as audio
    >>> t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    >>> spec = audio.spectrogram(np.sin(2 * np.pi * 1000 * t), audio.SAMPLE_RATE)
    >>> spec.shape, spec.dtype
    ((43, 232, 1), dtype('float32'))
    >>> int(spec[0, :, 0].argmax()) == round(1000 / audio.BIN_HZ)
    True
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.fft
from scipy.signal import firwin, resample_poly

from ..errors import AudioError

SAMPLE_RATE = 44100  #: the browser AudioContext rate the recognizer runs at
FFT_SIZE = 2048  #: AnalyserNode ``fftSize`` (twice the recognizer's ``fftSize`` of 1024)
HOP = 1024  #: samples between consecutive frames (the recognizer's ``fftSize``)
FRAME_SIZE = 232  #: frequency bins kept per frame (``columnTruncateLength``)
NUM_FRAMES = 43  #: frames per model input (about one second)
CLIP_SAMPLES = FFT_SIZE + (NUM_FRAMES - 1) * HOP  #: 45,056 samples give exactly 43 frames
BIN_HZ = SAMPLE_RATE / FFT_SIZE  #: width of a frequency bin, about 21.53 Hz
FRAME_SECONDS = HOP / SAMPLE_RATE  #: time between frames, about 23.2 ms
FRAME_DURATION_MILLIS = HOP / SAMPLE_RATE * 1e3  #: 23.22 ms, as the speech-commands package computes it
SPECTROGRAM_SHAPE = (NUM_FRAMES, FRAME_SIZE, 1)

SILENCE_DB = -160.0  #: floor for every dB value (exact digital silence has no finite dB)
SILENCE_AMPLITUDE = 10.0 ** (SILENCE_DB / 20.0)  #: ``|X| / 2048`` at the floor
NORMALIZE_EPSILON = 1e-7  #: TF.js float32 backend epsilon, added to the std in :func:`normalize`

MIN_SAMPLE_RATE = 1000  #: lowest sample rate accepted anywhere (WAV files, streams, clips)
MAX_SAMPLE_RATE = 768000  #: highest sample rate accepted anywhere

_BLOCK_FRAMES = 4096  # frames per FFT batch: bounds temporary memory on long signals
_WINDOW = (0.42 - 0.5 * np.cos(2 * np.pi * np.arange(FFT_SIZE) / FFT_SIZE)
           + 0.08 * np.cos(4 * np.pi * np.arange(FFT_SIZE) / FFT_SIZE))
_WINDOW.setflags(write=False)


def blackman_window() -> np.ndarray:
    """The Web Audio Blackman window (alpha 0.16), 2048 points, float64.

    >>> w = blackman_window(); w.shape, round(float(w[1024]), 6), abs(float(w[0])) < 1e-12
    ((2048,), 1.0, True)
    """
    return _WINDOW.copy()


# -- resampling ---------------------------------------------------------------

def _as_samples(samples, what: str = "samples") -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioError(f"{what}: expected a 1-D array of mono samples, got shape {list(x.shape)}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise AudioError(f"{what}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if x.size and not np.isfinite(x).all():
        raise AudioError(f"{what}: contains NaN or infinite values")
    return x


def check_rate(rate, what: str = "sample_rate") -> int:
    """``rate`` as an int number of Hz, if it is whole and within :data:`MIN_SAMPLE_RATE`-:data:`MAX_SAMPLE_RATE`."""
    ok = not isinstance(rate, bool) and (isinstance(rate, (int, np.integer)) or
                                         isinstance(rate, (float, np.floating)) and float(rate).is_integer())
    if not ok:
        raise AudioError(f"{what} must be a whole number of Hz, got {rate!r}")
    rate = int(rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{what} {rate} Hz is outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    return rate


def _ratio(from_rate: int, to_rate: int) -> Fraction:
    """``to_rate / from_rate``, exact when its terms are at most 1,000, else the nearest such fraction."""
    ratio = Fraction(to_rate, from_rate)
    if max(ratio.numerator, ratio.denominator) > 1000:
        ratio = ratio.limit_denominator(1000)
    return ratio


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with a polyphase filter (``scipy.signal.resample_poly``), float32 out.

    The ratio ``to_rate / from_rate`` is used exactly when its reduced
    numerator and denominator are at most 1,000 (all common rates: 16 kHz ->
    44.1 kHz is 441/160), else the nearest such fraction (error < 1e-6).

    >>> import numpy as np
    >>> resample(np.zeros(16000), 16000).shape
    (44100,)
    """
    x = _as_samples(samples)
    from_rate, to_rate = check_rate(from_rate, "from_rate"), check_rate(to_rate, "to_rate")
    if from_rate == to_rate or x.size == 0:
        return x.astype(np.float32)
    ratio = _ratio(from_rate, to_rate)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


class StreamResampler:
    """Stateful polyphase resampler: ``process(chunk)`` as audio arrives, ``flush()`` at the end.

    Gives the same samples as ``scipy.signal.resample_poly`` on the whole
    signal (see the module docstring), ``ceil(N * up / down)`` of them in all.

    >>> import numpy as np
    >>> from scipy.signal import resample_poly
    >>> x = np.random.default_rng(0).standard_normal(1600)
    >>> r = StreamResampler(16000, 44100)
    >>> y = np.concatenate([r.process(x[:700]), r.process(x[700:]), r.flush()])
    >>> bool(np.allclose(y, resample_poly(x, 441, 160), atol=1e-12))
    True
    """

    _BLOCK = 65536  # output samples per vectorised step (bounds temporary memory)

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE):
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        ratio = _ratio(self.from_rate, self.to_rate)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down
        if self.identity:
            return
        half_len = 10 * max(self.up, self.down)  # as resample_poly
        h = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.delay = half_len
        self.taps = -(-len(h) // self.up)  # input samples that touch one output sample
        padded = np.zeros(self.taps * self.up)
        padded[:len(h)] = h
        # phases[p, k] = h[p + k*up]: the taps applied to x[n_hi - k] for an output of phase p
        self.phases = padded.reshape(self.taps, self.up).T.copy()
        self._buf = np.zeros(0)  # input samples from index self._buf_start on
        self._buf_start = 0
        self._received = 0  # input samples pushed so far
        self._next_out = 0  # index of the next output sample
        self._flushed = False

    def _n_hi(self, m: np.ndarray | int):
        return (m * self.down + self.delay) // self.up

    def _emit(self, stop: int) -> np.ndarray:
        """Compute outputs ``self._next_out .. stop - 1`` from the buffer."""
        outs = []
        while self._next_out < stop:
            end = min(stop, self._next_out + self._BLOCK)
            m = np.arange(self._next_out, end, dtype=np.int64)
            t = m * self.down + self.delay
            n_hi, phase = t // self.up, t % self.up
            idx = n_hi[:, None] - np.arange(self.taps)[None, :] - self._buf_start
            valid = idx >= 0  # indices before the first sample stand for zeros
            vals = np.where(valid, self._buf[np.where(valid, idx, 0)], 0.0)
            outs.append(np.einsum("ij,ij->i", vals, self.phases[phase]))
            self._next_out = end
        # keep only what the next output still needs
        keep_from = int(self._n_hi(self._next_out)) - self.taps + 1
        drop = min(max(0, keep_from - self._buf_start), self._buf.size)
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return np.concatenate(outs) if outs else np.zeros(0)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Push input samples; return the output samples (float32) they complete."""
        x = np.asarray(chunk, dtype=np.float64).reshape(-1)
        if self.identity:
            return x.astype(np.float32)
        if self._flushed:
            raise RuntimeError("StreamResampler.process() after flush()")
        if x.size:
            self._buf = np.concatenate([self._buf, x]) if self._buf.size else x.copy()
            self._received += x.size
        # output m is complete once input n_hi(m) has arrived
        stop = max(0, -(-(self._received * self.up - self.delay) // self.down))
        return self._emit(stop).astype(np.float32)

    def flush(self) -> np.ndarray:
        """End of input: return the remaining outputs (input continued by zeros)."""
        if self.identity or self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        total = -(-self._received * self.up // self.down)  # ceil(N * up / down), as resample_poly
        if total <= self._next_out:
            return np.zeros(0, dtype=np.float32)
        need = int(self._n_hi(total - 1)) + 1 - (self._buf_start + self._buf.size)
        if need > 0:
            self._buf = np.concatenate([self._buf, np.zeros(need)])
        return self._emit(total).astype(np.float32)


# -- frames -------------------------------------------------------------------

def _db_of_windows(windows: np.ndarray) -> np.ndarray:
    """dB frames ``[k, 232]`` float32 of raw windows ``[k, 2048]`` (the one frame function)."""
    out = np.empty((len(windows), FRAME_SIZE), dtype=np.float32)
    for start in range(0, len(windows), _BLOCK_FRAMES):
        block = windows[start:start + _BLOCK_FRAMES] * _WINDOW
        spec = scipy.fft.rfft(block, axis=-1)[:, :FRAME_SIZE]
        mag = np.abs(spec)
        mag *= 1.0 / FFT_SIZE
        np.maximum(mag, SILENCE_AMPLITUDE, out=mag)
        out[start:start + _BLOCK_FRAMES] = 20.0 * np.log10(mag)
    return out


def _windows(x: np.ndarray, count: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, FFT_SIZE)[::HOP][:count]


def num_frames(num_samples: int) -> int:
    """How many whole frames ``num_samples`` samples give (frame i ends at 2048 + 1024 i).

    >>> num_frames(45056), num_frames(2047), num_frames(44100)
    (43, 0, 42)
    """
    return 0 if num_samples < FFT_SIZE else 1 + (num_samples - FFT_SIZE) // HOP


def frames(samples: np.ndarray) -> np.ndarray:
    """All dB frames ``[n, 232]`` (float32) of a 44.1-kHz signal; frame i uses samples
    ``1024 i .. 1024 i + 2047``. Values are floored at :data:`SILENCE_DB`.

    >>> frames(np.zeros(45056)).shape
    (43, 232)
    """
    x = _as_samples(samples)
    return _db_of_windows(_windows(x, num_frames(x.size)))


def silent_frames(samples: np.ndarray) -> np.ndarray:
    """Boolean mask of the frames the browser would report as -Infinity (first bin exactly 0)."""
    x = _as_samples(samples)
    w = _windows(x, num_frames(x.size))
    return (w @ _WINDOW) == 0.0


class FrameExtractor:
    """Incremental frames for streaming: push 44.1-kHz PCM chunks, get the new dB frames.

    Every frame is computed once, by the same function as :func:`frames`, so
    pushing a signal in any chunking yields exactly ``frames(signal)``.
    ``frame_end`` is the sample index (from the first pushed sample) at which
    the next returned frame ends. With ``skip_silent=True`` frames whose first
    bin is exactly zero (the browser's -Infinity) are dropped, as the TF.js
    extractor does; by default they are kept at :data:`SILENCE_DB`.

    >>> fx = FrameExtractor()
    >>> fx.push(np.zeros(3000)).shape, fx.push(np.zeros(3000)).shape
    ((1, 232), (3, 232))
    """

    def __init__(self, skip_silent: bool = False):
        self.skip_silent = skip_silent
        self.reset()

    def reset(self) -> None:
        """Forget buffered audio and start counting samples from zero."""
        self._buffer = np.zeros(0, dtype=np.float64)
        self.frame_end = FFT_SIZE  # where the next frame ends, in samples since the start
        self.frames_emitted = 0  # frames computed so far (including skipped silent ones)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Append samples; return the frames ``[k, 232]`` float32 completed by them (k may be 0)."""
        x = _as_samples(chunk, "chunk")
        buf = np.concatenate([self._buffer, x]) if self._buffer.size else x
        count = num_frames(buf.size)
        if count == 0:
            self._buffer = buf.copy()
            return np.zeros((0, FRAME_SIZE), dtype=np.float32)
        win = _windows(buf, count)
        out = _db_of_windows(win)
        if self.skip_silent:
            out = out[(win @ _WINDOW) != 0.0]
        self._buffer = buf[count * HOP:].copy()
        self.frame_end += count * HOP
        self.frames_emitted += count
        return out


class StreamFrontend:
    """The streaming front end: PCM at ``sample_rate`` in, new dB frames out, each frame computed once.

    A :class:`StreamResampler` to 44.1 kHz feeding a :class:`FrameExtractor`;
    what :class:`sightsound.speech.StreamProcessor` listens through.

    >>> fe = StreamFrontend(16000)
    >>> len(fe.push(np.zeros(16000))) + len(fe.flush())
    42
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self.sample_rate = check_rate(sample_rate)
        self.resampler = StreamResampler(self.sample_rate, SAMPLE_RATE)
        self.extractor = FrameExtractor()

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Source samples in; the frames ``[k, 232]`` float32 they complete out."""
        return self.extractor.push(self.resampler.process(samples))

    def flush(self) -> np.ndarray:
        """End of input: the frames that the resampler's last samples complete."""
        return self.extractor.push(self.resampler.flush())

    def silence(self, samples: int) -> np.ndarray:
        """Continue the 44.1-kHz stream with ``samples`` zeros (after :meth:`flush`); the frames completed."""
        return self.extractor.push(np.zeros(int(samples)))


# -- spectrograms ---------------------------------------------------------------

def normalize(spec: np.ndarray) -> np.ndarray:
    """Z-normalise over all values: ``(x - mean) / (std + 1e-7)``, float32, as speech-commands does.

    >>> normalize(np.array([1.0, 3.0])).tolist()
    [-0.9999998807907104, 0.9999998807907104]
    """
    x = np.asarray(spec, dtype=np.float64)
    if x.size == 0:
        raise AudioError("normalize(): empty spectrogram")
    mean = x.mean()
    std = math.sqrt(max(float(((x - mean) ** 2).mean()), 0.0))
    return ((x - mean) / (std + NORMALIZE_EPSILON)).astype(np.float32)


def _prepare(samples, sample_rate) -> np.ndarray:
    x = _as_samples(samples)
    if x.size == 0:
        raise AudioError("samples: no audio (zero samples)")
    rate = check_rate(sample_rate, "sample_rate")
    if rate != SAMPLE_RATE:
        x = resample(x, rate, SAMPLE_RATE).astype(np.float64)
    return x


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    if x.size >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - x.size)])


def spectrogram(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, normalized: bool = True) -> np.ndarray:
    """The model input ``[43, 232, 1]`` float32 for one clip (any rate; resampled to 44.1 kHz).

    Uses the first 45,056 samples at 44.1 kHz (zero-padded at the end when
    shorter). ``normalized=False`` returns the dB values before z-normalisation.
    """
    x = _fit(_prepare(samples, sample_rate), CLIP_SAMPLES)
    db = _db_of_windows(_windows(x, NUM_FRAMES))
    return (normalize(db) if normalized else db).reshape(SPECTROGRAM_SHAPE)


def spectrograms(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_frames: int = NUM_FRAMES,
                 normalized: bool = True) -> np.ndarray:
    """One spectrogram per 43-frame window, windows ``hop_frames`` frames apart: ``[K, 43, 232, 1]``.

    The frames of the whole signal are computed once; window j covers frames
    ``j*hop_frames .. j*hop_frames + 42``. The signal is zero-padded at the end
    so that the last window is complete; ``K >= 1``.

    >>> spectrograms(np.zeros(3 * 44100), 44100).shape
    (3, 43, 232, 1)
    """
    if not isinstance(hop_frames, (int, np.integer)) or hop_frames < 1:
        raise ValueError(f"hop_frames must be a positive int, got {hop_frames!r}")
    x = _prepare(samples, sample_rate)
    available = max(num_frames(x.size), NUM_FRAMES)
    count = 1 + math.ceil((available - NUM_FRAMES) / hop_frames)
    total = (count - 1) * hop_frames + NUM_FRAMES
    x = _fit(x, FFT_SIZE + (total - 1) * HOP)
    db = _db_of_windows(_windows(x, total))
    out = np.stack([db[j * hop_frames:j * hop_frames + NUM_FRAMES] for j in range(count)])
    if normalized:
        out = np.stack([normalize(s) for s in out])
    return out.reshape(count, *SPECTROGRAM_SHAPE)


def frame_times(count: int) -> np.ndarray:
    """Start time (s) of each frame's 2048-sample window: ``1024 i / 44100``."""
    return np.arange(count) * FRAME_SECONDS


def bin_frequencies(count: int = FRAME_SIZE) -> np.ndarray:
    """Centre frequency (Hz) of each kept bin: ``k * 44100 / 2048``."""
    return np.arange(count) * BIN_HZ


# -- plotting -------------------------------------------------------------------

def plot_spectrogram(samples: np.ndarray, sample_rate: int, out_path: str | os.PathLike,
                     title: str | None = None) -> Path:
    """Draw the whole clip's dB frames like the chapter's figure 4.12 and save a PNG.

    Time runs across (seconds, each column placed at its window's start),
    frequency up (Hz, 0 to about 5 kHz), darker = more energy. Clips shorter
    than 45,056 samples at 44.1 kHz are padded to one full second.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = _prepare(samples, sample_rate)
    x = _fit(x, max(x.size, CLIP_SAMPLES))
    db = frames(x)
    seconds = db.shape[0] * FRAME_SECONDS
    fig, ax = plt.subplots(figsize=(max(5.0, 4.0 * seconds), 4.0), dpi=100)
    finite_floor = db[db > SILENCE_DB]
    vmin = float(np.percentile(finite_floor, 5)) if finite_floor.size else SILENCE_DB
    image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="gray_r", interpolation="nearest",
                      extent=(0.0, seconds, 0.0, FRAME_SIZE * BIN_HZ), vmin=vmin, vmax=float(db.max()))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, label="dB (darker = more energy)")
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out)
    plt.close(fig)
    return out


__all__ = ["SAMPLE_RATE", "FFT_SIZE", "HOP", "FRAME_SIZE", "NUM_FRAMES", "CLIP_SAMPLES", "BIN_HZ",
           "FRAME_SECONDS", "FRAME_DURATION_MILLIS", "SPECTROGRAM_SHAPE", "SILENCE_DB", "SILENCE_AMPLITUDE",
           "NORMALIZE_EPSILON", "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "check_rate", "resample", "StreamResampler",
           "frames", "silent_frames", "num_frames", "FrameExtractor", "StreamFrontend",
           "normalize", "spectrogram", "spectrograms", "frame_times", "bin_frequencies", "plot_spectrogram",
           "blackman_window"]
