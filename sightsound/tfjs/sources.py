"""Where model.json and its weight files come from: a local folder, or http(s) through :mod:`sightsound.http_fetch`.

Every weight path is checked before any is read: relative, inside model.json's
folder (no ``..``, no symbolic link leading out) or on model.json's host.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import urllib.parse
from pathlib import Path, PurePosixPath

from .. import http_fetch
from ..errors import FetchError, ModelFormatError
from .constants import MAX_MODEL_JSON_BYTES, MODEL_JSON


class Source:
    """Where model.json and its weight files come from."""

    where: str  # model.json's path or URL, for messages

    def stamp(self):
        """Identifies the current model.json; a change during a load means a save replaced it."""
        return None

    def read_model_json(self) -> bytes:
        raise NotImplementedError

    def check_weight_path(self, path: str) -> None:
        _check_relative(path, self.where)

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        raise NotImplementedError


def _check_relative(path, where: str) -> None:
    """Reject weight paths that could leave model.json's folder or host."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ModelFormatError(f"{where}: weight path {path!r} must be a non-empty file name")
    parts = urllib.parse.urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith("//"):
        raise ModelFormatError(f"{where}: weight path {path!r} points to another host or scheme; weight paths "
                               f"must be relative to model.json")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise ModelFormatError(f"{where}: weight path {path!r} is absolute; weight paths must be relative "
                               f"to model.json")
    for candidate in (path, urllib.parse.unquote(path)):
        if ".." in re.split(r"[/\\]", candidate):
            raise ModelFormatError(f"{where}: weight path {path!r} contains '..'; weight paths must stay in "
                                   f"model.json's folder")


class LocalSource(Source):
    """model.json in a folder; ``where`` names it in messages (default: its path)."""

    def __init__(self, model_json: Path, where: str | None = None):
        self.path = model_json
        self.where = str(model_json) if where is None else where

    def stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def read_model_json(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_MODEL_JSON_BYTES:
                    raise ModelFormatError(f"{self.where}: {size} bytes is larger than the "
                                           f"{MAX_MODEL_JSON_BYTES}-byte limit for model.json")
                return f.read(MAX_MODEL_JSON_BYTES + 1)
        except OSError as err:
            raise ModelFormatError(f"cannot read {self.where}: {err.strerror or err}") from None

    def check_weight_path(self, path: str) -> None:
        """Also refuse weight files that are links leading out of model.json's folder, or not regular files."""
        super().check_weight_path(path)
        folder = self.path.parent
        file = folder.joinpath(*PurePosixPath(path).parts)
        try:
            real, base = file.resolve(), folder.resolve()
            if not file.exists():
                return  # reported as missing when read
        except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable folder
            raise ModelFormatError(f"{self.where}: weight path {path!r} cannot be resolved: {err}") from None
        if real != base and base not in real.parents:
            raise ModelFormatError(f"{self.where}: weight file {path!r} is a symbolic link leading out of the "
                                   f"model folder (to {real}); weight files must be inside {base}")
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:  # removed since exists(): a save replaced it; reported as missing when read
            return
        except OSError as err:
            raise ModelFormatError(f"{self.where}: weight file {path!r} cannot be read: {err}") from None
        if not stat.S_ISREG(mode):
            raise ModelFormatError(f"{self.where}: weight file {path!r} is not a regular file")

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        offset = 0
        for rel in paths:
            file = self.path.parent.joinpath(*PurePosixPath(rel).parts)
            try:
                with open(file, "rb") as f:
                    length = os.fstat(f.fileno()).st_size
                    if offset + length > size:
                        raise ModelFormatError(_size_message(self.where, paths, size, offset + length, file))
                    got = f.readinto(view[offset:offset + length])
                    offset += got
            except FileNotFoundError:
                raise ModelFormatError(f"{self.where}: weight file {rel!r} is missing ({file})") from None
            except OSError as err:
                raise ModelFormatError(f"{self.where}: cannot read weight file {file}: {err.strerror or err}") from None
        if offset != size:
            raise ModelFormatError(_size_message(self.where, paths, size, offset, None))
        return buffer


def _size_message(where: str, paths: list[str], expected: int, found: int, at) -> str:
    """``at`` names the file where reading stopped early because the data ran past the manifest."""
    if found > expected:
        what = f"{'at least ' if at is not None else ''}{found - expected} extra bytes"
    else:
        what = f"{expected - found} bytes missing"
    return (f"{where}: the weight files {paths} hold {'more than ' if at is not None else ''}"
            f"{found if at is None else expected} bytes but the manifest describes {expected} ({what}); "
            f"the weights do not belong to this model.json or are corrupt")


class HttpSource(Source):
    """model.json over http(s); weight URLs relative to it, with its query string, as TF.js's ``http`` handler."""

    def __init__(self, url: str, request_options: dict | None):
        self.headers, self.timeout = http_fetch.request_settings(request_options)
        self.url = url
        self.where = url
        parts = urllib.parse.urlsplit(url)
        self.query = parts.query
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def check_weight_path(self, path: str) -> None:
        super().check_weight_path(path)
        url = self._weight_url(path)
        if http_fetch.origin(url) != http_fetch.origin(self.url):
            raise ModelFormatError(f"{self.where}: weight path {path!r} resolves to another host ({url})")

    def _weight_url(self, path: str) -> str:
        url = urllib.parse.urljoin(self.base, path)
        return f"{url}?{self.query}" if self.query else url

    def read_model_json(self) -> bytes:
        with _model_format_errors():
            return http_fetch.fetch_bytes(self.url, headers=self.headers, timeout=self.timeout,
                                          max_bytes=MAX_MODEL_JSON_BYTES)

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        buffer = bytearray(size + 1)  # one spare byte detects extra data
        view = memoryview(buffer)
        offset = 0
        for rel in paths:
            with _model_format_errors(), http_fetch.open_url(
                    self._weight_url(rel), headers=self.headers, timeout=self.timeout) as (body, length):
                if length is not None and offset + length > size:  # refuse before reading
                    raise ModelFormatError(_size_message(self.where, paths, size, offset + length, rel))
                while offset <= size:
                    n = body.readinto(view[offset:])
                    if not n:
                        break
                    offset += n
            if offset > size:
                raise ModelFormatError(_size_message(self.where, paths, size, offset, rel))
        view.release()
        if offset != size:
            raise ModelFormatError(_size_message(self.where, paths, size, offset, None))
        buffer.pop()
        return buffer


@contextlib.contextmanager
def _model_format_errors():
    """A failed fetch is a ModelFormatError, like every other reason a model cannot load."""
    try:
        yield
    except FetchError as err:
        raise ModelFormatError(str(err)) from None


def open_source(url_or_path, request_options) -> Source:
    text = os.fspath(url_or_path) if not isinstance(url_or_path, str) else url_or_path
    if text.startswith(("http://", "https://")):
        return HttpSource(text, request_options)
    if "://" in text and not text.startswith("file://"):
        raise ModelFormatError(f"cannot load {text!r}: supported are a folder, a model.json path, file:// and "
                               f"http(s):// URLs")
    path = Path(file_url_path(text) if text.startswith("file://") else text).expanduser()
    if path.is_dir():
        path = path / MODEL_JSON
    if not path.is_file():
        raise ModelFormatError(f"no TF.js model at {path}: expected a folder with model.json or a model.json path")
    return LocalSource(path)


def file_url_path(url: str) -> str:
    """``file:///abs/dir`` -> ``/abs/dir``; ``file://rel/dir`` -> ``rel/dir`` (as tfjs-node)."""
    rest = url[len("file://"):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    return urllib.parse.unquote(rest)
