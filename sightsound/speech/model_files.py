"""A speech model's ``metadata.json``: the one reader and writer, and the special words it names.

A speech model is a TF.js Layers model (``model.json`` + weights) with a
``metadata.json`` beside it that lists its words in the order of the model's
outputs. The speech-commands package reads ``wordLabels`` and, failing that,
``words``; :func:`metadata` writes both (plus ``frameSize`` and the front end
the model expects), as the package's training script and its own recognizers
do. Every part of sightsound that needs a model's words reads them here: the
recognizer (:func:`sightsound.speech.create`, local or over HTTP), training
and evaluation (:mod:`sightsound.training.speech`) and the web app's model
list.

    >>> words_of({"words": ["_background_noise_", "_unknown_", "yes"]}, "metadata")
    ['_background_noise_', '_unknown_', 'yes']
    >>> sorted(metadata(("yes", "no")))[:4]
    ['fftSize', 'frameSize', 'modelName', 'numFrames']
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.parse
from pathlib import Path

from .. import http_fetch
from ..errors import FetchError, ModelFormatError
from ..fileio import write_json_atomic
from . import frontend

METADATA_JSON = "metadata.json"
BACKGROUND_NOISE_TAG = "_background_noise_"  #: the class of background noise (no word)
UNKNOWN_TAG = "_unknown_"  #: the class of words the model was not trained to tell apart
NOISE_WORDS = (BACKGROUND_NOISE_TAG, UNKNOWN_TAG)  #: the classes ``listen()`` does not report by default
SPEECH_COMMANDS_VERSION = "0.5.4"  #: the speech-commands package whose metadata format is written
DEFAULT_MODEL_NAME = "sightsound-speech-conv"
MAX_METADATA_BYTES = 1 << 20  #: a larger metadata.json is refused (read from disk or fetched)
#: The speech model shipped inside the package (model.json, weights, metadata.json, MODEL_CARD.md):
#: what ``create()``, ``speech recognize``/``listen`` and the web app's "built-in" model use by default.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: Beside a model: examples of ordinary speech (``TFJSSCDS``, all ``_unknown_``) that transfer learning
#: teaches so that a new head stays quiet on speech that is not its words.
OTHER_SPEECH_EXAMPLES = "other_speech.bin"


def pretrained_model_dir() -> Path:
    """The folder of the shipped speech model (:data:`PRETRAINED_DIR`, read when called)."""
    return PRETRAINED_DIR


# -- writing ------------------------------------------------------------------------------------------

def metadata(words, model_name: str = DEFAULT_MODEL_NAME) -> dict:
    """``metadata.json``: ``words`` and ``frameSize`` as the speech-commands training script writes
    them, ``wordLabels``/``tfjsSpeechCommandsVersion``/``modelName``/``timeStamp`` as the package's
    own recognizers save them, and the front end this model expects."""
    return {
        "words": list(words),
        "frameSize": frontend.FRAME_SIZE,
        "wordLabels": list(words),
        "tfjsSpeechCommandsVersion": SPEECH_COMMANDS_VERSION,
        "modelName": model_name,
        "timeStamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sampleRateHz": frontend.SAMPLE_RATE,
        "fftSize": frontend.HOP,
        "numFrames": frontend.NUM_FRAMES,
        "silenceDb": frontend.SILENCE_DB,
    }


def write_metadata(folder: str | os.PathLike, words, model_name: str = DEFAULT_MODEL_NAME) -> Path:
    """Write ``folder/metadata.json`` for ``words`` (through a temporary file: never half-written)."""
    return write_json_atomic(Path(folder) / METADATA_JSON, metadata(words, model_name))


# -- reading ------------------------------------------------------------------------------------------

def words_of(doc, where: str) -> list[str]:
    """The word list of a parsed metadata document: ``wordLabels``, else ``words``, checked."""
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


def parse_metadata(raw: bytes, where: str) -> list[str]:
    """The word list of metadata.json's bytes (UTF-8, a BOM allowed)."""
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFormatError(f"{where}: not valid JSON ({err})") from None
    return words_of(doc, where)


def read_words(path: str | os.PathLike, where: str | None = None) -> list[str]:
    """The word list of a local metadata.json. Errors name the file as ``where`` (default: its path)."""
    path = Path(path)
    where = str(path) if where is None else where
    if not path.is_file():
        raise ModelFormatError(f"{where}: missing; a speech model needs metadata.json (its word list, "
                               f"as `sightsound speech train` writes it) beside model.json")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as err:
        raise ModelFormatError(f"cannot read {where}: {err.strerror or err}") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise ModelFormatError(f"{where}: larger than {MAX_METADATA_BYTES} bytes; not a word list")
    return parse_metadata(raw, where)


def folder_words(folder: str | os.PathLike, where: str | None = None) -> list[str]:
    """The word list of the metadata.json in a model folder (see :func:`read_words`)."""
    return read_words(Path(folder) / METADATA_JSON, where)


def fetch_words(url: str, request_options: dict | None = None) -> list[str]:
    """The word list of a metadata.json URL (through :mod:`sightsound.http_fetch`)."""
    headers, timeout = http_fetch.request_settings(request_options)
    try:
        raw = http_fetch.fetch_bytes(url, headers=headers, timeout=timeout, max_bytes=MAX_METADATA_BYTES)
    except FetchError as err:
        if err.status == 404:
            raise ModelFormatError(f"{url}: not found (HTTP 404); a speech model needs metadata.json with "
                                   f"its words beside model.json") from None
        raise ModelFormatError(str(err)) from None
    return parse_metadata(raw, url)


def _local(ref: str) -> Path:
    return Path(ref[len("file://"):] if ref.startswith("file://") else ref).expanduser()


def model_words(model_ref: str, metadata=None, request_options: dict | None = None) -> list[str]:
    """The words of a model: from ``metadata`` (a dict, path or URL) or from metadata.json beside
    ``model_ref`` (a folder, model.json path, ``file://`` or ``http(s)://`` URL)."""
    if isinstance(metadata, dict):
        return words_of(metadata, "metadata")
    if metadata is not None:
        ref = os.fspath(metadata)
    elif model_ref.startswith(("http://", "https://")):
        ref = urllib.parse.urljoin(model_ref, METADATA_JSON)
    else:
        path = _local(model_ref)
        if not path.exists():
            raise ModelFormatError(f"no speech model at {path}: expected a folder with model.json and "
                                   f"metadata.json (or a model.json path)")
        ref = str((path if path.is_dir() else path.parent) / METADATA_JSON)
    if ref.startswith(("http://", "https://")):
        return fetch_words(ref, request_options)
    return read_words(_local(ref))


__all__ = ["METADATA_JSON", "BACKGROUND_NOISE_TAG", "UNKNOWN_TAG", "NOISE_WORDS", "SPEECH_COMMANDS_VERSION",
           "PRETRAINED_DIR", "OTHER_SPEECH_EXAMPLES", "pretrained_model_dir", "metadata", "write_metadata", "words_of", "parse_metadata",
           "read_words", "folder_words", "fetch_words", "model_words"]
