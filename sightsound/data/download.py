"""Download utilities shared by the dataset modules: mirrors, checksums, safe extraction, progress bars.

Every download is written the same safe way (:func:`sightsound.fileio.atomic_write`):
stream into a temporary file in the destination directory, verify it,
``fsync`` it, then ``os.replace`` it onto its final name. A reader therefore
sees either no file or a complete, verified one -- never a half-written
download. Archives are unpacked with :func:`safe_extract` (no path
traversal, links or special files; into a staged folder renamed at the end),
and long steps show a :func:`progress_bar`.

Example::

    >>> from pathlib import Path, PurePosixPath
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
import shutil
import sys
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from sightsound import http_fetch
from sightsound.errors import DataError, DownloadError, FetchError
from sightsound.fileio import atomic_write, staged_directory

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


def _describe_error(error: BaseException) -> str:
    """One line for an error, e.g. 'HTTP 404 Not Found' or 'connection refused'."""
    if isinstance(error, FetchError):
        return error.problem  # the list names the URL already
    text = str(error) or type(error).__name__
    return text if isinstance(error, DataError) else f"{type(error).__name__}: {text}"


def progress_bar(total: int | None, label: str, enabled: bool = True, *, unit: str = "it",
                 tty_only: bool = False):
    """A tqdm bar on stderr (``leave=False``), or a no-op one when disabled or tqdm is missing.

    ``unit="B"`` counts bytes (shown as KiB, MiB...). ``tty_only`` shows the
    bar only when stderr is a terminal (downloads ask for that). The result
    has ``update(n)`` and ``close()``.

    >>> bar = progress_bar(3, "demo", enabled=False, unit="clip")
    >>> bar.update(1); bar.close()
    """
    show = enabled and (not tty_only or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()))
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
        return _NoProgress()
    scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, disable=not show, leave=False, **scale)


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
    digest = hashlib.sha256()
    # A private file (0600), as tempfile.mkstemp made it before fileio existed.
    with atomic_write(dest, suffix=".part", permissions=0o600) as out:
        with http_fetch.open_url(url, headers=headers, timeout=timeout) as (body, length):
            bar = progress_bar(length, dest.name, progress, unit="B", tty_only=True)
            try:
                while chunk := body.read(CHUNK_SIZE):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataError(
                f"SHA-256 mismatch for downloaded {dest.name}: expected {sha256.lower()}, "
                f"got {digest.hexdigest()}"
            )
        if decompress_check is not None:
            out.flush()
            decompress_check(Path(out.name))


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


# -- archives ------------------------------------------------------------------------------

MAX_ARCHIVE_MEMBERS = 500_000
MAX_EXTRACTED_BYTES = 16 * 2**30


def _safe_member_path(name: str, archive: Path) -> PurePosixPath | None:
    """The member's path relative to the extraction root, or ``None`` for the root itself."""
    if "\\" in name or "\x00" in name:
        raise DataError(f"{archive}: refusing member {name!r} (backslash or NUL in the name)")
    p = PurePosixPath(name)
    if p.is_absolute():
        raise DataError(f"{archive}: refusing absolute member path {name!r}")
    parts = [part for part in p.parts if part not in (".", "")]
    if any(part == ".." for part in parts):
        raise DataError(f"{archive}: refusing member path {name!r} that leaves the extraction folder")
    return PurePosixPath(*parts) if parts else None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, progress: bool = True) -> Path:
    """Extract a .tar.gz into ``dest`` without path traversal, links or special files, atomically.

    Only regular files and directories are written; absolute paths, ``..``
    components, symlinks, hard links and devices raise :class:`DataError`, as
    do more than 500,000 members or 16 GiB of content. Extraction goes into a
    temporary sibling folder that is renamed onto ``dest`` at the end
    (:func:`sightsound.fileio.staged_directory`).
    """
    archive, dest = Path(archive), Path(dest).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"cannot extract {archive.name}: {dest} exists and is not empty")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with staged_directory(dest) as temp:
        try:
            tar = tarfile.open(archive, "r:*")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"{archive}: not a readable tar archive ({err})") from None
        with tar:
            total, count = 0, 0
            bar = progress_bar(None, f"extract {archive.name}", progress, unit="file")
            try:
                for member in tar:
                    count += 1
                    if count > MAX_ARCHIVE_MEMBERS:
                        raise DataError(f"{archive}: more than {MAX_ARCHIVE_MEMBERS} members; refusing")
                    rel = _safe_member_path(member.name, archive)
                    if rel is None:
                        continue
                    target = temp.joinpath(*rel.parts)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif member.isfile():
                        total += member.size
                        if total > MAX_EXTRACTED_BYTES:
                            raise DataError(f"{archive}: content exceeds {MAX_EXTRACTED_BYTES} bytes; refusing")
                        target.parent.mkdir(parents=True, exist_ok=True)
                        source = tar.extractfile(member)
                        with source, open(target, "wb") as out:
                            shutil.copyfileobj(source, out, 1 << 20)
                        bar.update(1)
                    else:
                        kind = "link" if member.issym() or member.islnk() else "special file"
                        raise DataError(f"{archive}: refusing {kind} member {member.name!r}")
            except (tarfile.TarError, EOFError, OSError) as err:
                if isinstance(err, DataError):
                    raise
                raise DataError(f"{archive}: corrupt or truncated archive ({err})") from None
            finally:
                bar.close()
    return dest
