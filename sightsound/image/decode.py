"""The one guarded decoder of untrusted image bytes and files.

Everything in sightsound that turns bytes or a file into pixels goes through
:func:`read_pixels` or :func:`read_image` (the CLI, :func:`~sightsound.image.from_pixels`,
:func:`~sightsound.image.prepare_digit`, the web app's ``POST /api/predict``).
Their policy:

- **Formats**: only Pillow's decoders in :data:`SUPPORTED_FORMATS` run (no EPS
  or PDF, which start external programs), and libspng for plain PNGs (below);
  ``formats=`` narrows the list further (the web app: the format its content
  type names).
- **Size**: at most :data:`MAX_IMAGE_BYTES` bytes and :data:`MAX_IMAGE_PIXELS`
  pixels, the pixel count read from the header, so a decompression bomb is
  refused before it is expanded.
- **EXIF orientation** is applied to decoded bytes and files, as browsers show
  them (a phone photo is upright, as in the page's preview); a Pillow image a
  caller opened is taken as it is.
- **Animated or multi-frame** images (GIF, APNG, WebP, TIFF pages, MPO): the
  first frame, the one a canvas draws.
- **Errors**: :class:`~sightsound.errors.ImageError` naming the input and the
  problem (:class:`ImageTooLarge` for the caps, :class:`ImageFormatRefused`
  for a format outside ``formats``); never a Pillow exception.

:func:`read_pixels` applies the same policy, and hands plain 8-bit PNGs (grey, RGB or
RGBA; no palette, transparency key, text, EXIF or animation) to
libspng instead of Pillow: the same pixels, several times faster on a drawing
canvas's small PNGs. Those come back as :class:`DecodedPixels`, everything else as
:func:`read_image`'s Pillow image.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
import pyspng
from PIL import Image, ImageOps

from ..errors import ImageError

__all__ = [
    "MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES", "SUPPORTED_FORMATS", "ImageSource", "ImageTooLarge",
    "ImageFormatRefused", "DecodedPixels", "describe_source", "check_pixel_count", "read_image", "read_pixels",
    "is_decodable",
]

#: Images with more pixels than this are refused before decoding (decompression-bomb guard); room for
#: a 48-megapixel phone photo. A server that decodes many uploads at once passes a lower ``max_pixels``.
MAX_IMAGE_PIXELS = 50_000_000
#: Files or byte strings longer than this are refused before decoding.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: Pillow decoders sightsound lets run on untrusted bytes (no EPS/PDF: they start external programs).
SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "ICO", "TGA")
# Pillow names some files by a variant of the format they were asked for: a BMP without its file
# header is a DIB; a phone JPEG holding several pictures (Multi-Picture Format) is an MPO.
_FORMAT_FAMILY = {"DIB": "BMP", "MPO": "JPEG"}
# Where Pillow's ImageOps.exif_transpose finds an orientation: these info entries, or a TIFF's own tags.
_ORIENTATION_SOURCES = frozenset({"exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The PNGs that libspng decodes for read_pixels: 8-bit grey, RGB and RGBA (the array's channels; pyspng has no
# grey-and-alpha output) ...
_PLAIN_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}
# ... and no chunk but these, which change no pixel in Pillow's decoding either (colour-space notes, resolution,
# time, background hint). Transparency keys, palettes, text and EXIF (which may hold an orientation) and
# animation chunks send a PNG to Pillow.
_PLAIN_PNG_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"pHYs", b"sBIT",
                               b"tIME", b"bKGD"})

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, Any]
_DECODABLE = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)


class ImageTooLarge(ImageError):
    """The image has more bytes or pixels than sightsound decodes (possibly a decompression bomb)."""


class ImageFormatRefused(ImageError):
    """The image is readable but not in the formats asked for; ``found`` and ``expected`` name them."""

    def __init__(self, message: str, found: str, expected: tuple[str, ...]):
        super().__init__(message)
        self.found, self.expected = found, expected


class DecodedPixels(NamedTuple):
    """An image decoded from bytes or a file, as the file stores its pixels: uint8, HxW (grey), HxWx3 (RGB) or
    HxWx4 (RGBA); ``format`` names the file format ("PNG")."""

    pixels: np.ndarray
    format: str


def describe_source(src: ImageSource) -> str:
    """A short name for an image source, used in error messages.

    >>> describe_source("digits/7.png"), describe_source(b"\\x89PNG"), describe_source(np.zeros((2, 3)))
    ('digits/7.png', '<4 bytes>', '<array 2x3 float64>')
    """
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    if isinstance(src, Image.Image):
        filename = getattr(src, "filename", "")
        return filename or f"<{src.mode} image {src.width}x{src.height}>"
    if isinstance(src, np.ndarray):
        return f"<array {'x'.join(map(str, src.shape))} {src.dtype}>"
    if isinstance(src, DecodedPixels):
        return f"<{src.format} image {src.pixels.shape[1]}x{src.pixels.shape[0]}>"
    return f"<{type(src).__name__}>"


def _read_bytes(path: str | os.PathLike, name: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
        size = p.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageTooLarge(f"{name}: the file has {size:,} bytes, more than the {MAX_IMAGE_BYTES:,} "
                                f"sightsound reads as an image")
        with open(p, "rb") as f:
            return f.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as err:
        raise ImageError(f"{name}: cannot read the file: {err.strerror or err}") from None


def check_pixel_count(width: int, height: int, name: str, max_pixels: int | None = None) -> None:
    """Refuse an empty image or one with more than ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`)."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image is empty ({width}x{height} pixels)")
    if width * height > limit:
        raise ImageTooLarge(f"{name}: {width}x{height} = {width * height:,} pixels is more than the "
                            f"{limit:,} allowed (possible decompression bomb); shrink the image first")


def _source_bytes(src: str | os.PathLike | bytes | bytearray | memoryview, name: str) -> bytes:
    """The bytes of a path or byte string, refused when empty or above :data:`MAX_IMAGE_BYTES`."""
    data = _read_bytes(src, name) if isinstance(src, (str, os.PathLike)) else bytes(src)
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(f"{name}: more than {MAX_IMAGE_BYTES:,} bytes, too large to read as an image")
    if not data:
        raise ImageError(f"{name}: empty (0 bytes), not an image")
    return data


def _open_image(src: ImageSource, name: str, max_pixels: int | None) -> Image.Image:
    """Open (header only) a path, bytes or Pillow image, with the size checked before decoding."""
    if isinstance(src, Image.Image):
        check_pixel_count(src.width, src.height, name, max_pixels)
        return src
    data = _source_bytes(src, name)
    try:
        with warnings.catch_warnings():  # our pixel cap replaces Pillow's bomb warning; bad files raise below
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too many pixels (possible decompression bomb); "
                            f"shrink the image first") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image sightsound can read "
                         f"(supported formats: {', '.join(SUPPORTED_FORMATS)})") from None
    except Exception as err:  # Pillow's header parsers raise many types on hostile bytes
        raise ImageError(f"{name}: corrupt image header ({type(err).__name__}: {err})") from None
    check_pixel_count(img.width, img.height, name, max_pixels)
    return img


def _check_format(img: Image.Image, name: str, formats: tuple[str, ...]) -> None:
    found = img.format or "unknown"
    if _FORMAT_FAMILY.get(found, found) not in {_FORMAT_FAMILY.get(f, f) for f in formats}:
        raise ImageFormatRefused(f"{name}: the image is {found}, not {' or '.join(formats)}", found, formats)


def _load(img: Image.Image, name: str, orient: bool) -> Image.Image:
    """Decode pixel data (first frame) and apply the EXIF orientation if ``orient``."""
    try:
        with warnings.catch_warnings():  # Pillow warns about odd-but-readable files (TIFF tags, EXIF)
            warnings.simplefilter("ignore")
            img.load()
            if orient and _may_have_orientation(img):  # in place: this image is ours, and a copy of
                ImageOps.exif_transpose(img, in_place=True)  # every upright image costs a full pass
        return img
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode the image") from None
    except Exception as err:  # truncated data, bad compression streams, broken EXIF, ...
        detail = str(err) or type(err).__name__
        raise ImageError(f"{name}: cannot decode the image, the file is truncated or corrupt ({detail})") from None


def _may_have_orientation(img: Image.Image) -> bool:
    """Whether ``img`` carries metadata that can hold an orientation (most PNGs, GIFs and BMPs carry none, and
    looking for it costs more than decoding a small image)."""
    return hasattr(img, "tag_v2") or not _ORIENTATION_SOURCES.isdisjoint(img.info)


def read_image(src: ImageSource, max_pixels: int | None = None, *, name: str | None = None,
               formats: tuple[str, ...] | None = None, draft_side: int | None = None) -> Image.Image:
    """Decode a path, bytes or Pillow image into a loaded Pillow image (first frame, EXIF-rotated).

    Refuses more than ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`) before decoding, and
    with ``formats`` any other format (:class:`ImageFormatRefused`). ``draft_side`` lets a
    large JPEG decode at a reduced scale that keeps its longer side above twice that (speed).
    Messages start with ``name`` (default: the path, or a description of the input). A Pillow
    image passed in is checked and loaded, never rotated or drafted (it is the caller's).

    >>> read_image(np.zeros((2, 2)))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    sightsound.errors.ImageError: <array 2x2 float64>: read_image takes a path, bytes or a Pillow image
    """
    name = name or describe_source(src)
    if not isinstance(src, _DECODABLE):
        raise ImageError(f"{name}: read_image takes a path, bytes or a Pillow image")
    img = _open_image(src, name, max_pixels)
    if formats is not None:
        _check_format(img, name, formats)
    decoded_here = not isinstance(src, Image.Image)  # never alter a caller's image
    if decoded_here and draft_side and max(img.size) > 2 * draft_side and img.format in ("JPEG", "MPO"):
        img.draft(img.mode, (img.width * draft_side // max(img.size), img.height * draft_side // max(img.size)))
    return _load(img, name, orient=decoded_here)


def read_pixels(src: ImageSource, max_pixels: int | None = None, *, name: str | None = None,
                formats: tuple[str, ...] | None = None, draft_side: int | None = None) -> Image.Image | DecodedPixels:
    """:func:`read_image`, except that a plain 8-bit PNG (see the module's notes) comes back as its
    :class:`DecodedPixels`, decoded by libspng: the pixels Pillow gives, with the same checks and errors.

    >>> buffer = io.BytesIO()
    >>> Image.new("L", (3, 2), 200).save(buffer, "PNG")
    >>> decoded = read_pixels(buffer.getvalue())
    >>> decoded.format, decoded.pixels.shape, int(decoded.pixels.max())
    ('PNG', (2, 3), 200)
    """
    name = name or describe_source(src)
    if isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)):
        src = _source_bytes(src, name)
        if formats is None or "PNG" in formats:
            decoded = _plain_png(src, name, max_pixels)
            if decoded is not None:
                return decoded
    return read_image(src, max_pixels, name=name, formats=formats, draft_side=draft_side)


def _plain_png(data: bytes, name: str, max_pixels: int | None) -> DecodedPixels | None:
    """The pixels of ``data`` when it is a well-formed plain 8-bit PNG (every chunk's checksum right), else None:
    Pillow then reads it, or words its error. Too many pixels is refused from the header, as Pillow's path does."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    channels = _PLAIN_PNG_CHANNELS.get(colour_type)
    if depth != 8 or channels is None or compression or filtering or interlace > 1 \
            or not 0 < width < 2 ** 31 or not 0 < height < 2 ** 31:
        return None
    view, position = memoryview(data), len(_PNG_SIGNATURE)
    while True:  # every chunk: an allowed type, within the data, its CRC right; IEND ends the walk
        if position + 12 > len(data):
            return None
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if kind not in _PLAIN_PNG_CHUNKS or end > len(data) \
                or zlib.crc32(view[position + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IEND":
            break
        position = end
    check_pixel_count(width, height, name, max_pixels)
    try:
        pixels = pyspng.load(data)
    except Exception:  # noqa: BLE001 -- a stream libspng cannot decode: Pillow's path words the error
        return None
    if pixels.shape[:2] != (height, width) or pixels.dtype != np.uint8 or (pixels.ndim == 3) != (channels > 1):
        return None
    return DecodedPixels(pixels, "PNG")


def is_decodable(src: Any) -> bool:
    """Whether ``src`` is something :func:`read_image` decodes (a path, bytes or a Pillow image)."""
    return isinstance(src, _DECODABLE)
