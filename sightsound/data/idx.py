"""IDX files (the format MNIST ships in): a guarded parser for raw or gzipped files and bytes.

The header is validated before any payload is read, sizes are capped, gzip
is detected by its magic bytes, and an expected SHA-256 of the decompressed
bytes can be checked; anything wrong raises :class:`~sightsound.errors.DataError`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from typing import BinaryIO

import numpy as np

from ..errors import DataError

#: IDX type code -> numpy dtype (IDX data is big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_PAYLOAD_BYTES = 2**31
MAX_ITEMS = 10**8
GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 22  # 4 MiB per read from a gzip stream
_TRAILING_COUNT_CAP = 1 << 26  # stop counting trailing gzip bytes after 64 MiB


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream."""
    parts = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_payload(stream: BinaryIO, payload_bytes: int, size_known: bool) -> bytearray:
    """Read up to ``payload_bytes`` bytes into a bytearray.

    When the stream size was already checked (``size_known``) the buffer is
    allocated once; otherwise (gzip) it grows with the data actually present,
    so a small file with a lying header never causes a large allocation.
    """
    if size_known:
        buffer = bytearray(payload_bytes)
        view = memoryview(buffer)
        filled = 0
        while filled < payload_bytes:
            count = stream.readinto(view[filled:])
            if not count:
                break
            filled += count
        view.release()
        del buffer[filled:]
        return buffer
    buffer = bytearray()
    while len(buffer) < payload_bytes:
        chunk = stream.read(min(_READ_CHUNK, payload_bytes - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def _count_trailing(stream: BinaryIO) -> tuple[int, bool]:
    """Bytes left in ``stream`` (counting stops at a cap); returns (count, capped)."""
    count = 0
    while count < _TRAILING_COUNT_CAP:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            return count, False
        count += len(chunk)
    return count, True


def _read_header(stream: BinaryIO, label: str) -> tuple[bytes, bytes, tuple[int, ...], np.dtype]:
    """The magic and dimension bytes, the shape and the dtype of an IDX stream's header."""
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise DataError(f"{label}: truncated: {len(magic)} bytes is too short for an IDX header (need 4)")
    if magic[0:2] != b"\x00\x00":
        raise DataError(
            f"{label}: not an IDX file: bad magic number 0x{magic.hex()} "
            "(IDX files start with 0x0000, a type code and the number of dimensions)"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise DataError(f"{label}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    if not 1 <= ndim <= 4:
        raise DataError(f"{label}: unsupported IDX dimension count {ndim} (expected 1 to 4)")
    dims_raw = _read_up_to(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(
            f"{label}: truncated IDX header: expected {4 * ndim} bytes of dimensions, got {len(dims_raw)}"
        )
    return magic, dims_raw, struct.unpack(f">{ndim}I", dims_raw), IDX_DTYPES[type_code]


def _payload_size(label: str, dims: tuple[int, ...], dtype: np.dtype, size: int | None,
                  max_payload_bytes: int, max_items: int) -> int:
    """The payload bytes the header claims, checked against the limits and (if known) the stream size."""
    item_count = math.prod(dims)
    payload_bytes = item_count * dtype.itemsize
    if item_count > max_items or payload_bytes > max_payload_bytes:
        raise DataError(
            f"{label}: IDX header claims shape {dims} = {item_count} items / {payload_bytes} bytes, "
            f"over the limit of {max_items} items / {max_payload_bytes} bytes; refusing to read it "
            "(corrupt or hostile header?)"
        )
    header_bytes = 4 + 4 * len(dims)
    if size is not None and size - header_bytes != payload_bytes:
        actual = size - header_bytes
        problem = "truncated payload" if actual < payload_bytes else f"{actual - payload_bytes} trailing bytes"
        raise DataError(
            f"{label}: {problem}: shape {dims} of {dtype.name} needs {payload_bytes} payload bytes, "
            f"got {actual}"
        )
    return payload_bytes


def _read_exact_payload(stream: BinaryIO, label: str, dims: tuple[int, ...], dtype: np.dtype,
                        payload_bytes: int, size_known: bool) -> bytearray:
    """The payload, which must fill the claimed size and be followed by nothing."""
    payload = _read_payload(stream, payload_bytes, size_known=size_known)
    if len(payload) < payload_bytes:
        raise DataError(
            f"{label}: truncated payload: shape {dims} of {dtype.name} needs {payload_bytes} "
            f"payload bytes, got {len(payload)}"
        )
    trailing, capped = _count_trailing(stream)
    if trailing:
        got = f"at least {payload_bytes + trailing}" if capped else str(payload_bytes + trailing)
        raise DataError(
            f"{label}: {'at least ' if capped else ''}{trailing} trailing bytes: shape {dims} of "
            f"{dtype.name} needs {payload_bytes} payload bytes, got {got}"
        )
    return payload


def _parse_idx_stream(
    stream: BinaryIO,
    label: str,
    *,
    size: int | None,
    expected_sha256: str | None,
    max_payload_bytes: int,
    max_items: int,
) -> np.ndarray:
    """Parse one IDX stream (already decompressed); ``size`` is its total length if known."""
    magic, dims_raw, dims, dtype = _read_header(stream, label)
    payload_bytes = _payload_size(label, dims, dtype, size, max_payload_bytes, max_items)
    payload = _read_exact_payload(stream, label, dims, dtype, payload_bytes, size_known=size is not None)
    if expected_sha256 is not None:
        digest = hashlib.sha256(magic)
        digest.update(dims_raw)
        digest.update(payload)
        actual_sha256 = digest.hexdigest()
        if actual_sha256 != expected_sha256.lower():
            raise DataError(
                f"{label}: SHA-256 mismatch of the decompressed data: expected {expected_sha256.lower()}, "
                f"got {actual_sha256} (file corrupt or not the original MNIST file; delete it to re-download)"
            )
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    return array


def read_idx(
    path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview,
    *,
    name: str | None = None,
    expected_sha256: str | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    max_items: int = MAX_ITEMS,
) -> np.ndarray:
    """Parse an IDX file (raw or gzipped) into a numpy array in native byte order.

    Gzip is detected by its magic bytes, not by the file name. The header is
    validated before any payload is read: headers claiming more than
    ``max_items`` items or ``max_payload_bytes`` bytes are rejected at once.
    ``expected_sha256`` (hex) is checked against the decompressed bytes.
    ``name`` labels the source in error messages (default: the path).
    Raises :class:`DataError` for anything wrong.

    >>> import struct
    >>> read_idx(b"\\x00\\x00\\x08\\x01" + struct.pack(">I", 3) + bytes([7, 8, 9]))
    array([7, 8, 9], dtype=uint8)
    """
    limits = {"max_payload_bytes": max_payload_bytes, "max_items": max_items}
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        label = name or "<IDX bytes>"
        raw: BinaryIO = io.BytesIO(path_or_bytes)
        raw_size = len(raw.getbuffer())
    else:
        label = name or str(path_or_bytes)
        try:
            raw = open(path_or_bytes, "rb")  # noqa: SIM115 - closed below
            raw_size = os.fstat(raw.fileno()).st_size
        except FileNotFoundError:
            raise DataError(f"{label}: file not found") from None
        except OSError as error:
            raise DataError(f"{label}: cannot open: {error}") from error

    with raw:
        try:
            is_gzip = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
        except OSError as error:
            raise DataError(f"{label}: cannot read: {error}") from error
        if not is_gzip:
            try:
                return _parse_idx_stream(raw, label, size=raw_size, expected_sha256=expected_sha256, **limits)
            except OSError as error:
                raise DataError(f"{label}: cannot read: {error}") from error
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                return _parse_idx_stream(unzipped, label, size=None, expected_sha256=expected_sha256, **limits)
        except EOFError as error:
            raise DataError(f"{label}: truncated gzip stream (file cut short: {error})") from error
        except (gzip.BadGzipFile, zlib.error) as error:
            raise DataError(f"{label}: corrupt gzip data: {error}") from error
        except OSError as error:
            raise DataError(f"{label}: cannot read: {error}") from error


__all__ = ["IDX_DTYPES", "MAX_PAYLOAD_BYTES", "MAX_ITEMS", "GZIP_MAGIC", "read_idx"]
