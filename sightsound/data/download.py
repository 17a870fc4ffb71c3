"""Download and file-writing helpers shared by the dataset modules.

Every file is written the same safe way: stream into a temporary file in the
destination directory, ``fsync`` it, verify it, then ``os.replace`` it onto
its final name. A reader therefore sees either no file or a complete,
verified one -- never a half-written download.

Example::

    >>> from pathlib import Path
    >>> from sightsound.data.download import download_file
    >>> download_file(  # doctest: +SKIP
    ...     ["https://mirror-a.example/x.gz", "https://mirror-b.example/x.gz"],
    ...     Path("data/x.gz"),
    ...     sha256="0fa7...",
    ... )
    PosixPath('data/x.gz')
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sightsound import http_fetch
from sightsound.errors import DataError, DownloadError, FetchError

CHUNK_SIZE = 1 << 20  # 1 MiB per read while streaming and hashing


def sha256_file(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = p.write_bytes(b"")
    >>> sha256_file(p)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _temp_path_next_to(dest: Path) -> tuple[int, Path]:
    """Open a fresh hidden temp file in ``dest``'s directory; return (fd, path)."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    return fd, Path(name)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename on POSIX; silently skipped where directories can't be opened."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + os.replace).

    Either the old content (or no file) or the full new content is visible at
    ``path``; a crash or error never leaves a partial file or a temp file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> atomic_write_bytes(p, b"hi").read_bytes()
    b'hi'
    """
    dest = Path(path)
    fd, temp_path = _temp_path_next_to(dest)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, dest)
    except BaseException:
        _remove_quietly(temp_path)
        raise
    _fsync_directory(dest.parent)
    return dest


def _describe_error(error: BaseException) -> str:
    """One line for an error, e.g. 'HTTP 404 Not Found' or 'connection refused'."""
    if isinstance(error, FetchError):
        return error.problem  # the list names the URL already
    text = str(error) or type(error).__name__
    return text if isinstance(error, DataError) else f"{type(error).__name__}: {text}"


def _progress_bar(total: int | None, label: str, enabled: bool):
    """A tqdm bar on stderr, or a no-op object when disabled or tqdm is missing."""
    show = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
        show = False
    if not show:
        return _NoProgress()
    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, leave=False)


class _NoProgress:
    def update(self, _n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _fetch_one(
    url: str,
    dest: Path,
    sha256: str | None,
    decompress_check: Callable[[Path], object] | None,
    timeout: float,
    progress: bool,
    headers: Mapping[str, str] | None,
) -> None:
    """Download ``url`` into a temp file next to ``dest``, verify, then rename onto ``dest``.

    Raises on any problem; the temp file is always gone afterwards.
    """
    fd, temp_path = _temp_path_next_to(dest)
    try:
        digest = hashlib.sha256()
        with (os.fdopen(fd, "wb") as out,
              http_fetch.open_url(url, headers=headers, timeout=timeout) as (body, length)):
            bar = _progress_bar(length, dest.name, progress)
            try:
                while chunk := body.read(CHUNK_SIZE):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
            out.flush()
            os.fsync(out.fileno())
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataError(
                f"SHA-256 mismatch for downloaded {dest.name}: expected {sha256.lower()}, "
                f"got {digest.hexdigest()}"
            )
        if decompress_check is not None:
            decompress_check(temp_path)
        os.replace(temp_path, dest)
    except BaseException:
        _remove_quietly(temp_path)
        raise
    _fsync_directory(dest.parent)


def download_file(
    urls: Iterable[str],
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    decompress_check: Callable[[Path], object] | None = None,
    timeout: float = http_fetch.DEFAULT_TIMEOUT,
    progress: bool = True,
    headers: Mapping[str, str] | None = None,
) -> Path:
    """Fetch the first mirror in ``urls`` that delivers a valid file and store it at ``dest``.

    Each URL is tried in order. The body is streamed into a hidden temp file in
    ``dest``'s directory, fsynced, checked against ``sha256`` (hex digest of the
    bytes as downloaded, optional) and passed to ``decompress_check(temp_path)``
    (optional; it should raise, e.g. :class:`DataError`, when the content is
    bad -- use it to verify decompressed content). Only then is the file
    renamed onto ``dest`` with ``os.replace``. A failed attempt leaves nothing
    behind and the next mirror is tried.

    ``dest``'s parent directory must exist. ``headers`` are extra HTTP request
    headers; a redirect to another origin gets none of them
    (:mod:`sightsound.http_fetch` fetches every URL). Raises
    :class:`DownloadError` listing every URL tried and why it failed when no
    mirror worked.

    >>> download_file(["https://a.example/f.gz", "https://b.example/f.gz"],  # doctest: +SKIP
    ...               "data/f.gz", decompress_check=lambda p: check_gzip(p))
    PosixPath('data/f.gz')
    """
    dest_path = Path(dest)
    url_list = list(urls)
    if not url_list:
        raise DownloadError(f"no URL given to download {dest_path}")
    if not dest_path.parent.is_dir():
        raise DownloadError(f"cannot download {dest_path}: directory {dest_path.parent} does not exist")

    failures: list[tuple[str, str]] = []
    for url in url_list:
        try:
            _fetch_one(url, dest_path, sha256, decompress_check, timeout, progress, headers)
            return dest_path
        except (FetchError, DataError, OSError, ValueError, EOFError) as error:
            # FetchError: the network (http_fetch names the problem); DataError: a failed
            # verification; the others: writing the file or decompress_check.
            failures.append((url, _describe_error(error)))
    tried = "\n".join(f"  {url}: {reason}" for url, reason in failures)
    raise DownloadError(f"could not download {dest_path.name} to {dest_path}; tried:\n{tried}")
