"""espeak-ng: is it there, its English voices and variants, and a word spoken as 16-kHz samples."""

from __future__ import annotations

import math
import shutil
import subprocess
from functools import lru_cache

import numpy as np

from ...errors import DataError
from .spec import RATE

ESPEAK = "espeak-ng"
EXCLUDED_VARIANTS = frozenset({"fast"})  # espeak-ng's own "unstable" speed-test variant


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program can be run."""
    return shutil.which(ESPEAK) is not None


def _run_espeak(args: list[str], timeout: float = 60) -> bytes:
    try:
        done = subprocess.run([ESPEAK, *args], capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DataError("espeak-ng is not installed; install the Debian package espeak-ng "
                        "(listed in apt-packages.txt)") from None
    if done.returncode != 0:
        raise DataError(f"espeak-ng {' '.join(args)} failed ({done.returncode}): "
                        f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _columns(listing: str) -> list[dict[str, str]]:
    """Parse ``espeak-ng --voices`` output into Language and File per row.

    Columns are fixed-width but long voice names overflow them, so the file is
    found as the first token holding a ``/``, running up to the "Other
    Languages" part (tokens in parentheses); file names may contain a space.
    """
    rows = []
    for line in listing.splitlines()[1:]:
        tokens = line.split()
        if len(tokens) < 4:
            continue
        slash = next((i for i, t in enumerate(tokens) if "/" in t and i >= 3), None)
        if slash is None:
            continue
        file_tokens = [tokens[slash]]
        for t in tokens[slash + 1:]:
            if t.startswith("("):
                break
            file_tokens.append(t)
        rows.append({"Language": tokens[1], "File": " ".join(file_tokens)})
    return rows


@lru_cache(maxsize=1)
def list_voices() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(English base voice files, variant names), sorted; MBROLA voices are left out.

    >>> bases, variants = list_voices()  # doctest: +SKIP
    >>> bases[:2], "m3" in variants  # doctest: +SKIP
    (('gmw/en', 'gmw/en-029'), True)
    """
    bases = sorted({r["File"] for r in _columns(_run_espeak(["--voices=en"]).decode())
                    if r["File"] and not r["File"].startswith("mb/") and r["Language"].startswith("en")})
    variants = sorted({r["File"].split("/", 1)[1] for r in _columns(_run_espeak(["--voices=variant"]).decode())
                       if r["File"].startswith("!v/")} - EXCLUDED_VARIANTS)
    if not bases:
        raise DataError("espeak-ng lists no English voice (espeak-ng --voices=en)")
    return tuple(bases), tuple(variants)


def espeak_version() -> str:
    return _run_espeak(["--version"]).decode(errors="replace").strip()


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """Samples and rate of espeak-ng's ``--stdout`` WAV (its sizes are placeholders)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError("espeak-ng produced no WAV output")
    pos, rate, bits = 12, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if tag == b"fmt ":
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
            pos += 8 + size
        elif tag == b"data":
            if rate is None or bits != 16:
                raise DataError("espeak-ng WAV output is not 16-bit PCM")
            body = data[pos + 8:]
            body = body[:len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0, rate
        else:
            pos += 8 + size
    raise DataError("espeak-ng WAV output has no data chunk")


def speak(text: str, voice: str, pitch: int = 50, rate: int = 175) -> np.ndarray:
    """espeak-ng's rendering of ``text`` as float64 samples at 16 kHz."""
    from scipy.signal import resample_poly

    raw = _run_espeak(["-v", voice, "-p", str(int(pitch)), "-s", str(int(rate)), "--stdout", text])
    samples, rate_in = _parse_wav_stream(raw)
    if rate_in != RATE:
        g = math.gcd(RATE, rate_in)
        samples = resample_poly(samples, RATE // g, rate_in // g)
    return samples
