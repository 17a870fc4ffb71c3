"""WAV files in and out: :func:`read_wav` (any PCM or float WAV, as float32 mono) and :func:`write_wav`.

The limits (:data:`~sightsound.speech.frontend.MIN_SAMPLE_RATE` ..
:data:`~sightsound.speech.frontend.MAX_SAMPLE_RATE`, :data:`MAX_SAMPLES`) are
checked from the header, before any sample is allocated.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import AudioError
from .frontend import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

MAX_SAMPLES = 1 << 26  #: cap on frames x channels a WAV may declare (about 25 min of 44.1-kHz stereo)


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
    head, opener = _open_source(source, name)
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
        rate, channels = handle.samplerate, handle.channels
        _check_header(name, rate, channels, handle.frames, max_samples)
        try:
            block = handle.read(handle.frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as err:
            raise AudioError(f"{name}: cannot decode the sample data ({err})") from None
    if block.shape[0] == 0:
        raise AudioError(f"{name}: the WAV holds no samples")
    samples = block[:, 0] if channels == 1 else block.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def _open_source(source, name: str):
    """The first 12 bytes of a path or bytes, and what soundfile opens it from."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{name}: no such file" if not path.exists() else f"{name}: not a regular file")
        try:
            with open(path, "rb") as handle:
                head = handle.read(12)
        except OSError as err:
            raise AudioError(f"{name}: cannot open: {err.strerror or err}") from None
        return head, os.fsencode(path)  # bytes: soundfile cannot encode names that are not valid UTF-8
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data[:12], io.BytesIO(data)
    raise TypeError(f"read_wav() takes a path or bytes, got {type(source).__name__}")


def _check_header(name: str, rate: int, channels: int, frames: int, max_samples: int) -> None:
    """Refuse a rate, channel count or length that no caller should allocate for."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside the supported "
                         f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if channels < 1:
        raise AudioError(f"{name}: declares {channels} channels")
    if frames * channels > max_samples:
        raise AudioError(f"{name}: declares {frames} frames x {channels} channels, more than the "
                         f"cap of {max_samples} samples ({max_samples / rate / 60:.1f} min at {rate} Hz)")


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



__all__ = ["read_wav", "write_wav", "MAX_SAMPLES"]
