"""Crash-safe file and folder writes: build next to the target, then rename onto it.

A reader of a path written here sees either what was there before (or
nothing) or the complete new content -- never a half-written file or folder.
On any failure the temporary file or folder is removed and the error is
raised unchanged (callers that name the folder in an
:class:`~sightsound.errors.OutputError` wrap these calls, as ``save_run``
does).

* :func:`atomic_write` -- a context manager yielding a file handle on a hidden
  temporary file next to ``path``; on success it is flushed, fsynced and
  renamed onto ``path`` (``os.replace``), then the folder is fsynced.
* :func:`write_bytes_atomic`, :func:`write_text_atomic`,
  :func:`write_json_atomic` -- one-call forms of it.
* :func:`staged_directory` -- the same for a whole folder: build it in a
  hidden sibling, rename it onto ``dest`` at the end.
* :func:`fsync_directory`, :func:`remove_quietly` -- the two small pieces.

Temporary names start with a dot and carry a random token, so concurrent
writers never share one: ``.<name>.<16 hex digits>.tmp`` for files and
``.<name>.<8 hex digits>.partial`` for folders.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_write(folder / "a.bin") as handle:
...     _ = handle.write(b"abc")
>>> (folder / "a.bin").read_bytes(), sorted(p.name for p in folder.iterdir())
(b'abc', ['a.bin'])
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def fsync_directory(path: str | os.PathLike) -> None:
    """Persist the renames inside folder ``path``; silently skipped where folders cannot be opened (Windows).

    >>> import tempfile
    >>> fsync_directory(tempfile.mkdtemp())
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_quietly(path: str | os.PathLike) -> None:
    """Delete the file ``path``; nothing happens when it is already gone.

    >>> import tempfile, pathlib
    >>> remove_quietly(pathlib.Path(tempfile.mkdtemp()) / "never-made")
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 durable: bool = True, suffix: str = ".tmp", permissions: int = 0o666) -> Iterator[IO]:
    """Write ``path`` through a hidden temporary file in its folder; rename it onto ``path`` on success.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, with ``encoding``). The
    handle's ``name`` is the temporary file's path, so content can be checked
    before it is published (raise inside the ``with`` to drop it). On leaving
    the block normally the file is flushed, fsynced (unless ``durable`` is
    false: for caches that may be lost in a crash), closed and renamed with
    ``os.replace``, and the folder is fsynced. On any exception the temporary
    file is removed and ``path`` is untouched. ``path``'s folder must exist.
    The file gets ``permissions`` less the umask, like ``open`` gives (pass
    ``0o600`` for a private file); ``suffix`` ends the temporary name.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_write(p, "w", encoding="utf-8") as f:
    ...     _ = f.write("first")
    >>> try:
    ...     with atomic_write(p, "w", encoding="utf-8") as f:
    ...         _ = f.write("second")
    ...         raise RuntimeError("changed my mind")
    ... except RuntimeError:
    ...     pass
    >>> p.read_text(), [q.name for q in p.parent.iterdir()]
    ('first', ['note.txt'])
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    dest = Path(path)
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}{suffix}")

    def opener(name, flags):
        return os.open(name, flags | os.O_EXCL, permissions)

    try:
        with open(temp, mode, encoding=encoding, opener=opener) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        remove_quietly(temp)
        raise
    if durable:
        fsync_directory(dest.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` with :func:`atomic_write`; return ``path`` as a :class:`Path`.

    >>> import tempfile, pathlib
    >>> write_bytes_atomic(pathlib.Path(tempfile.mkdtemp()) / "hello.bin", b"hi").read_bytes()
    b'hi'
    """
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str | None = "utf-8") -> Path:
    """Write ``text`` to ``path`` with :func:`atomic_write` (text mode, like ``Path.write_text``).

    >>> import tempfile, pathlib
    >>> write_text_atomic(pathlib.Path(tempfile.mkdtemp()) / "hello.txt", "hi\\n").read_text()
    'hi\\n'
    """
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, doc, indent: int | None = 1) -> Path:
    """Write ``json.dumps(doc, indent=indent)`` and a newline to ``path`` (UTF-8) with :func:`atomic_write`.

    >>> import tempfile, pathlib
    >>> write_json_atomic(pathlib.Path(tempfile.mkdtemp()) / "a.json", {"a": [1]}).read_text()
    '{\\n "a": [\\n  1\\n ]\\n}\\n'
    """
    return write_text_atomic(path, json.dumps(doc, indent=indent) + "\n", encoding="utf-8")


@contextmanager
def staged_directory(dest: str | os.PathLike, *, replace: bool = False, staging: str | os.PathLike | None = None,
                     keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """Build a folder in a hidden sibling of ``dest`` and rename it onto ``dest`` at the end.

    Yields the new, empty staging folder (``.<dest name>.<8 hex digits>.partial``
    next to ``dest``, or ``staging`` when given; made like ``mkdir``, so it
    gets the umask's permissions). When the block ends normally, whatever is
    at ``dest`` is removed first -- the whole folder when ``replace``, else
    only an empty folder (anything else there fails with an :class:`OSError`)
    -- then the staging folder is renamed onto ``dest`` and
    the parent folder fsynced. On any exception the staging folder is
    deleted, unless the exception is one of ``keep_on`` (for a caller that
    tells the user where the finished folder was kept). ``dest``'s parent
    must exist.

    >>> import tempfile, pathlib
    >>> parent = pathlib.Path(tempfile.mkdtemp())
    >>> with staged_directory(parent / "corpus") as folder:
    ...     _ = (folder / "a.txt").write_text("a")
    >>> sorted(str(p.relative_to(parent)) for p in parent.rglob("*"))
    ['corpus', 'corpus/a.txt']
    """
    dest = Path(dest)
    temp = Path(staging) if staging is not None else dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    os.mkdir(temp, 0o777)
    try:
        yield temp
        publish_directory(temp, dest, replace=replace, durable=False)
    except BaseException as error:
        if not isinstance(error, keep_on):
            shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_directory(dest.parent)


def publish_directory(finished: str | os.PathLike, dest: str | os.PathLike, *, replace: bool = False,
                      durable: bool = True) -> None:
    """Rename the folder ``finished`` onto ``dest``: whatever is at ``dest`` goes first (the whole folder when
    ``replace``, else only an empty folder; anything else fails with :class:`OSError`); then, when
    ``durable``, the parent folder is fsynced. For builds that keep their own staging folder (to resume)."""
    dest = Path(dest)
    if os.path.lexists(dest):
        if replace:
            shutil.rmtree(dest)
        else:
            dest.rmdir()
    os.replace(finished, dest)
    if durable:
        fsync_directory(dest.parent)


__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic", "write_json_atomic", "staged_directory",
           "publish_directory", "fsync_directory", "remove_quietly"]
