"""The speech-commands package's published models (``'18w'``, ``'directional4w'``): their URLs and the cache.

``SpeechCommands.create('BROWSER_FFT', '18w')`` loads
``https://storage.googleapis.com/tfjs-models/tfjs/speech-commands/v0.5/browser_fft/18w/model.json``
and the ``metadata.json`` beside it: the package builds the URL from its
version's major.minor (``0.5`` for 0.5.4, :data:`SPEECH_COMMANDS_VERSION`)
and accepts the vocabularies in :data:`VOCABULARIES`. Here the first
:func:`ensure_model` downloads model.json, its weight files and
metadata.json (through :mod:`sightsound.http_fetch`) into
``<cache dir>/speech-commands/v0.5/browser_fft/<vocabulary>/``; later calls
use that copy without the network. The files go into a hidden folder that is
renamed into place only when every one of them has arrived with the size its
manifest gives, so an interrupted download never looks complete.
``$SIGHTSOUND_SPEECH_MODELS_URL`` replaces the base URL (a mirror of the
``browser_fft`` folder, or a test server).

    >>> model_url("18w")  # doctest: +SKIP
    'https://storage.googleapis.com/tfjs-models/tfjs/speech-commands/v0.5/browser_fft/18w/model.json'
    >>> check_vocabulary("20w")
    Traceback (most recent call last):
    ...
    ValueError: Invalid vocabulary name: '20w' (the published models are '18w', 'directional4w')
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path, PurePosixPath

from .. import http_fetch, paths
from ..errors import FetchError, ModelFormatError, OutputError
from ..fileio import atomic_write, staged_directory
from ..tfjs.constants import MAX_MODEL_JSON_BYTES, MODEL_JSON
from ..tfjs.manifest import plan
from ..tfjs.sources import HttpSource
from ..tfjs.topology import parse_model_json
from . import model_files
from .model_files import METADATA_JSON, SPEECH_COMMANDS_VERSION

VOCABULARIES = ("18w", "directional4w")  #: the package's ``VALID_VOCABULARY_NAMES``
MODELS_VERSION = ".".join(SPEECH_COMMANDS_VERSION.split(".")[:2])  #: the package's ``getMajorAndMinorVersion``
DEFAULT_MODELS_URL = f"https://storage.googleapis.com/tfjs-models/tfjs/speech-commands/v{MODELS_VERSION}/browser_fft"
MODELS_URL_ENV = "SIGHTSOUND_SPEECH_MODELS_URL"  #: replaces :data:`DEFAULT_MODELS_URL` when set
CACHE_SUBDIR = ("speech-commands", f"v{MODELS_VERSION}", "browser_fft")  #: under :func:`sightsound.paths.cache_dir`


def check_vocabulary(vocabulary) -> str:
    """``vocabulary`` if it names a published model, else ValueError listing them."""
    if vocabulary not in VOCABULARIES:
        known = ", ".join(repr(v) for v in VOCABULARIES)
        raise ValueError(f"Invalid vocabulary name: {vocabulary!r} (the published models are {known})")
    return vocabulary


def models_url() -> str:
    """The folder holding one sub-folder per vocabulary: ``$SIGHTSOUND_SPEECH_MODELS_URL`` or the package's."""
    return (os.environ.get(MODELS_URL_ENV) or DEFAULT_MODELS_URL).rstrip("/")


def model_url(vocabulary: str) -> str:
    """The published ``model.json`` of ``vocabulary``."""
    return f"{models_url()}/{check_vocabulary(vocabulary)}/{MODEL_JSON}"


def metadata_url(vocabulary: str) -> str:
    """The published ``metadata.json`` (the words) of ``vocabulary``."""
    return f"{models_url()}/{check_vocabulary(vocabulary)}/{METADATA_JSON}"


def cache_folder(vocabulary: str) -> Path:
    """Where the download of ``vocabulary`` is kept: ``<cache dir>/speech-commands/v0.5/browser_fft/<vocabulary>``."""
    return paths.cache_dir().joinpath(*CACHE_SUBDIR, check_vocabulary(vocabulary))


def is_complete(folder: Path) -> bool:
    """A folder only appears once its download is complete, so its model.json and metadata.json say so."""
    return (folder / MODEL_JSON).is_file() and (folder / METADATA_JSON).is_file()


def ensure_model(vocabulary: str, request_options: dict | None = None) -> Path:
    """The cached folder of ``vocabulary``'s published model, downloaded first if it is not there yet.

    Raises ValueError for an unknown vocabulary, :class:`FetchError` naming the
    URL when the download fails, :class:`ModelFormatError` when what arrived is
    not a model with its word list, :class:`OutputError` when the cache cannot
    be written.
    """
    folder = cache_folder(vocabulary)
    if is_complete(folder):
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError.from_os_error(err, folder.parent, "create the speech model cache") from None
    try:
        with staged_directory(folder) as staging:
            _download(vocabulary, staging, request_options)
    except FetchError as err:
        raise FetchError(f"cannot download the speech-commands model {vocabulary!r}: {err}. Once downloaded it "
                         f"is kept in {folder} and used from there without the network, but no copy is there yet: "
                         f"connect to the network (or set {MODELS_URL_ENV} to a mirror) and try again",
                         err.url, err.problem, err.status) from None
    except OSError as err:
        if is_complete(folder):  # another process published the same download first
            return folder
        raise OutputError.from_os_error(err, folder, "save the downloaded speech model to") from None
    return folder


def _download(vocabulary: str, staging: Path, request_options: dict | None) -> None:
    """model.json, every weight file its manifest lists (sizes checked) and metadata.json into ``staging``."""
    headers, timeout = http_fetch.request_settings(request_options)
    url = model_url(vocabulary)
    raw = http_fetch.fetch_bytes(url, headers=headers, timeout=timeout, max_bytes=MAX_MODEL_JSON_BYTES)
    groups, _ = plan(parse_model_json(raw, url), url)
    source = HttpSource(url, request_options)
    for names, size in groups:
        for name in names:
            source.check_weight_path(name)  # relative, inside the model's folder, on its host
        received = 0
        for name in names:
            received += _fetch_to(urllib.parse.urljoin(url, name), staging.joinpath(*PurePosixPath(name).parts),
                                  headers, timeout, size - received)
        if received != size:
            raise ModelFormatError(f"{url}: the weight files {names} hold {received} bytes but the manifest "
                                   f"describes {size}")
    meta_url = metadata_url(vocabulary)
    meta = http_fetch.fetch_bytes(meta_url, headers=headers, timeout=timeout,
                                  max_bytes=model_files.MAX_METADATA_BYTES)
    model_files.parse_metadata(meta, meta_url)  # a word list, or the download is refused
    with atomic_write(staging / METADATA_JSON) as handle:
        handle.write(meta)
    with atomic_write(staging / MODEL_JSON) as handle:
        handle.write(raw)


def _fetch_to(url: str, path: Path, headers: dict, timeout: float, max_bytes: int) -> int:
    """Stream ``url`` into ``path`` (at most ``max_bytes``); the number of bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with http_fetch.open_url(url, headers=headers, timeout=timeout, max_bytes=max_bytes) as (body, _), \
            atomic_write(path) as handle:
        for block in iter(lambda: body.read(http_fetch.CHUNK_SIZE), b""):
            handle.write(block)
            written += len(block)
    return written


__all__ = ["VOCABULARIES", "MODELS_VERSION", "DEFAULT_MODELS_URL", "MODELS_URL_ENV", "CACHE_SUBDIR",
           "check_vocabulary", "models_url", "model_url", "metadata_url", "cache_folder", "is_complete",
           "ensure_model"]
