"""Audio in: WAV reading, resampling and the browser-FFT spectrogram.

This module reproduces the front end of the speech-commands package's
``BROWSER_FFT`` recognizer, which reads a Web Audio ``AnalyserNode`` with
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

Example::

    >>> import numpy as np
    >>> from sightsound import audio
    >>> t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    >>> spec = audio.spectrogram(np.sin(2 * np.pi * 1000 * t), audio.SAMPLE_RATE)
    >>> spec.shape, spec.dtype
    ((43, 232, 1), dtype('float32'))
    >>> int(spec[0, :, 0].argmax()) == round(1000 / audio.BIN_HZ)
    True
"""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.fft
from scipy.signal import resample_poly

from .errors import AudioError

SAMPLE_RATE = 44100  #: the browser AudioContext rate the recognizer runs at
FFT_SIZE = 2048  #: AnalyserNode ``fftSize`` (twice the recognizer's ``fftSize`` of 1024)
HOP = 1024  #: samples between consecutive frames (the recognizer's ``fftSize``)
FRAME_SIZE = 232  #: frequency bins kept per frame (``columnTruncateLength``)
NUM_FRAMES = 43  #: frames per model input (about one second)
CLIP_SAMPLES = FFT_SIZE + (NUM_FRAMES - 1) * HOP  #: 45,056 samples give exactly 43 frames
BIN_HZ = SAMPLE_RATE / FFT_SIZE  #: width of a frequency bin, about 21.53 Hz
FRAME_SECONDS = HOP / SAMPLE_RATE  #: time between frames, about 23.2 ms
SPECTROGRAM_SHAPE = (NUM_FRAMES, FRAME_SIZE, 1)

SILENCE_DB = -160.0  #: floor for every dB value (exact digital silence has no finite dB)
SILENCE_AMPLITUDE = 10.0 ** (SILENCE_DB / 20.0)  #: ``|X| / 2048`` at the floor
NORMALIZE_EPSILON = 1e-7  #: TF.js float32 backend epsilon, added to the std in :func:`normalize`

MIN_SAMPLE_RATE = 1000  #: lowest sample rate :func:`read_wav` accepts
MAX_SAMPLE_RATE = 768000  #: highest sample rate :func:`read_wav` accepts
MAX_SAMPLES = 1 << 26  #: cap on frames x channels a WAV may declare (about 25 min of 44.1-kHz stereo)

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


# -- reading ------------------------------------------------------------------

def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<WAV bytes>"


def read_wav(source: str | os.PathLike | bytes | bytearray | memoryview,
             max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, int]:
    """Read a WAV file (path or bytes) as float32 mono samples in [-1, 1] and its rate.

    Handles 8-bit (unsigned), 16-, 24- and 32-bit integer and 32/64-bit float
    PCM, any channel count (channels are averaged into mono). Raises
    :class:`~sightsound.errors.AudioError`, naming the file, when the input
    is not a WAV, its header is truncated or malformed, it declares more than
    ``max_samples`` samples (checked before anything is allocated), its rate
    lies outside 1 kHz-768 kHz, it holds no samples, or it holds NaN/inf.
    A data chunk cut short is read up to where the file ends.

    >>> import io, numpy as np, soundfile as sf
    >>> buf = io.BytesIO(); sf.write(buf, np.zeros((160, 2)), 16000, format="WAV", subtype="PCM_24")
    >>> x, rate = read_wav(buf.getvalue()); x.shape, x.dtype, rate
    ((160,), dtype('float32'), 16000)
    """
    import soundfile as sf

    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{name}: no such file" if not path.exists() else f"{name}: not a regular file")
        try:
            with open(path, "rb") as handle:
                head = handle.read(12)
        except OSError as err:
            raise AudioError(f"{name}: cannot open: {err.strerror or err}") from None
        opener = os.fsencode(path)  # bytes: soundfile cannot encode names that are not valid UTF-8
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        head = data[:12]
        opener = io.BytesIO(data)
    else:
        raise TypeError(f"read_wav() takes a path or bytes, got {type(source).__name__}")

    if len(head) < 12:
        raise AudioError(f"{name}: truncated: {len(head)} bytes is too short for a WAV header")
    if head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a WAV file (no RIFF/WAVE header; starts with {head[:4]!r})")
    try:
        handle = sf.SoundFile(opener)
    except (sf.SoundFileError, RuntimeError, ValueError) as err:
        detail = str(err).split(": ", 1)[-1] if str(err) else type(err).__name__
        raise AudioError(f"{name}: unreadable or truncated WAV header ({detail})") from None
    with handle:
        rate, channels, frames = handle.samplerate, handle.channels, handle.frames
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(f"{name}: sample rate {rate} Hz is outside the supported "
                             f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
        if channels < 1:
            raise AudioError(f"{name}: declares {channels} channels")
        if frames * channels > max_samples:
            raise AudioError(f"{name}: declares {frames} frames x {channels} channels, more than the "
                             f"cap of {max_samples} samples ({max_samples / rate / 60:.1f} min at {rate} Hz)")
        try:
            block = handle.read(frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as err:
            raise AudioError(f"{name}: cannot decode the sample data ({err})") from None
    if block.shape[0] == 0:
        raise AudioError(f"{name}: the WAV holds no samples")
    samples = block[:, 0] if channels == 1 else block.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono float samples as a WAV (16-bit PCM by default); values are clipped to [-1, 1].

    >>> import tempfile, numpy as np
    >>> p = write_wav(tempfile.mkdtemp() + "/a.wav", np.zeros(16000), 16000)
    >>> read_wav(p)[1]
    16000
    """
    import soundfile as sf

    x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    sf.write(str(path), x, int(sample_rate), format="WAV", subtype=subtype)
    return Path(path)


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


def _check_rate(rate, what: str) -> int:
    ok = not isinstance(rate, bool) and (isinstance(rate, (int, np.integer)) or
                                         isinstance(rate, (float, np.floating)) and float(rate).is_integer())
    if not ok:
        raise AudioError(f"{what} must be a whole number of Hz, got {rate!r}")
    rate = int(rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{what} {rate} Hz is outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    return rate


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
    from_rate, to_rate = _check_rate(from_rate, "from_rate"), _check_rate(to_rate, "to_rate")
    if from_rate == to_rate or x.size == 0:
        return x.astype(np.float32)
    ratio = Fraction(to_rate, from_rate)
    if max(ratio.numerator, ratio.denominator) > 1000:
        ratio = ratio.limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


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
    rate = _check_rate(sample_rate, "sample_rate")
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
           "FRAME_SECONDS", "SPECTROGRAM_SHAPE", "SILENCE_DB", "NORMALIZE_EPSILON", "MAX_SAMPLES",
           "read_wav", "write_wav", "resample", "frames", "silent_frames", "num_frames", "FrameExtractor",
           "normalize", "spectrogram", "spectrograms", "frame_times", "bin_frequencies", "plot_spectrogram",
           "blackman_window"]
