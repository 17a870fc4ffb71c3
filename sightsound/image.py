"""Images in: files, bytes, arrays, canvases and camera frames to tensors; digit preparation.

The chapter feeds its models from typed arrays (``tf.tensor4d``), from
``<img>``/``<canvas>``/``<video>`` elements (``tf.browser.fromPixels``),
resizes with ``tf.image.resizeBilinear`` / ``resizeNearestNeighbor``, divides
by 255 and adds the batch axis. This module does the same in Python, with the
same numbers as TF.js 4.22's CPU kernels, and adds :func:`prepare_digit`,
which turns a photo, scan or drawing of one digit into an MNIST-like input.

Example (the chapter's pipeline, then the MNIST-like one)::

    >>> import numpy as np
    >>> from sightsound import image
    >>> canvas = np.zeros((280, 280, 4), dtype=np.uint8)  # RGBA, as a canvas gives
    >>> canvas[..., 3] = 255
    >>> canvas[40:240, 130:150, :3] = 255                  # a white "1" on black
    >>> pixels = image.from_pixels(canvas, num_channels=1)  # int32 [280, 280, 1]
    >>> x = image.expand_dims(image.normalize(image.resize_bilinear(pixels, (28, 28))))
    >>> x.shape, x.dtype
    ((1, 28, 28, 1), dtype('float32'))
    >>> image.prepare_digit(canvas).shape                    # cropped, 20 px tall, centred
    (28, 28, 1)

Every reader turns bad input (not an image, truncated, empty, too many pixels)
into :class:`~sightsound.errors.ImageError` naming the input; a readable image
with no digit on it raises :class:`NoDigitFound`.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

from .errors import ImageError, ShapeError

__all__ = [
    "MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES", "SUPPORTED_FORMATS", "NoDigitFound", "read_image", "from_pixels",
    "to_tensor4d", "expand_dims", "nhwc_to_nchw", "nchw_to_nhwc", "normalize", "resize_bilinear",
    "resize_nearest_neighbor", "prepare_digit", "model_input", "top_k", "describe_source",
]

#: Images with more pixels than this are refused before decoding (decompression-bomb guard).
MAX_IMAGE_PIXELS = 40_000_000
#: Files or byte strings longer than this are refused before decoding.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: Pillow decoders sightsound lets run on untrusted bytes (no EPS/PDF: they start external programs).
SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "ICO", "TGA")

MNIST_SIZE = 28  # side of an MNIST image
MNIST_BOX = 20  # MNIST digits are scaled so that their longer side is 20 px ...
MNIST_CENTRE = 14.0  # ... and placed so that their centre of mass is at (14, 14) (measured on MNIST)

_WORK_SIDE = 256  # prepare_digit shrinks images to this longer side first (speed, not quality) ...
_SHRINK_ABOVE = 320  # ... when their longer side is above this
_MIN_CONTRAST = 24.0  # ink and background must differ by this much (0-255 scale) or the image is blank
_MIN_INK_PIXELS = 4  # fewer ink pixels than this: a speck, not a digit
_MAX_INK_FRACTION = 0.6  # more ink than this: digit and background cannot be told apart
_MIN_NEIGHBOUR_CORRELATION = 0.2  # below this the "image" is noise (digits: > 0.4, white noise: ~0)
_DETAIL_SIDE = 80  # crops with a longer side above 1.5x this are shrunk to it before the last steps
_TARGET_STROKE = 2.0  # MNIST strokes are about this wide (px) at 20-px scale; thinner ones are thickened

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, Any]


class NoDigitFound(ImageError):
    """The image was read, but holds nothing that looks like a digit (blank, a speck, all noise)."""


# -- reading -------------------------------------------------------------------

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
    return f"<{type(src).__name__}>"


def _read_bytes(path: str | os.PathLike, name: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
        size = p.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageError(f"{name}: the file has {size:,} bytes, more than the {MAX_IMAGE_BYTES:,} "
                             f"sightsound reads as an image")
        with open(p, "rb") as f:
            return f.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as err:
        raise ImageError(f"{name}: cannot read the file: {err.strerror or err}") from None


def _check_pixel_count(width: int, height: int, name: str, max_pixels: int | None) -> None:
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image is empty ({width}x{height} pixels)")
    if width * height > limit:
        raise ImageError(f"{name}: {width}x{height} = {width * height:,} pixels is more than the "
                         f"{limit:,} allowed (possible decompression bomb); shrink the image first")


def _open_image(src: ImageSource, name: str, max_pixels: int | None) -> Image.Image:
    """Open (header only) a path, bytes or PIL image, with the size checked before decoding."""
    if isinstance(src, Image.Image):
        _check_pixel_count(src.width, src.height, name, max_pixels)
        return src
    data = _read_bytes(src, name) if isinstance(src, (str, os.PathLike)) else bytes(src)
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"{name}: more than {MAX_IMAGE_BYTES:,} bytes, too large to read as an image")
    if not data:
        raise ImageError(f"{name}: empty (0 bytes), not an image")
    try:
        with warnings.catch_warnings():  # our pixel cap replaces Pillow's bomb warning; bad files raise below
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: too many pixels (possible decompression bomb); shrink the image first") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: not an image sightsound can read "
                         f"(supported formats: {', '.join(SUPPORTED_FORMATS)})") from None
    except Exception as err:  # Pillow's header parsers raise many types on hostile bytes
        raise ImageError(f"{name}: corrupt image header ({type(err).__name__}: {err})") from None
    _check_pixel_count(img.width, img.height, name, max_pixels)
    return img


def _decode(img: Image.Image, name: str, orient: bool = True) -> Image.Image:
    """Decode pixel data (first frame) and, for files, apply the EXIF orientation as browsers do."""
    try:
        with warnings.catch_warnings():  # Pillow warns about odd-but-readable files (TIFF tags, EXIF)
            warnings.simplefilter("ignore")
            img.load()
            if not orient:
                return img
            oriented = ImageOps.exif_transpose(img)
        return img if oriented is None else oriented
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode the image") from None
    except Exception as err:  # truncated data, bad compression streams, broken EXIF, ...
        detail = str(err) or type(err).__name__
        raise ImageError(f"{name}: cannot decode the image, the file is truncated or corrupt ({detail})") from None


def read_image(src: ImageSource, max_pixels: int | None = None) -> Image.Image:
    """Decode a path, bytes or Pillow image into a loaded Pillow image (first frame, EXIF-rotated).

    Refuses more than ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`) before decoding.

    >>> read_image(np.zeros((2, 2)))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    sightsound.errors.ImageError: <array 2x2 float64>: read_image takes a path, bytes or a Pillow image
    """
    name = describe_source(src)
    if not isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        raise ImageError(f"{name}: read_image takes a path, bytes or a Pillow image")
    img = _open_image(src, name, max_pixels)
    return _decode(img, name, orient=not isinstance(src, Image.Image))


def _float_scale(values: np.ndarray, name: str) -> np.ndarray:
    """Float pixel values: 0-1 intensities when all lie in [0, 1], else 0-255 levels."""
    values = values.astype(np.float32, copy=False)
    if values.size and not np.isfinite(values).all():
        raise ImageError(f"{name}: the pixel values contain NaN or infinity")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise ImageError(f"{name}: float pixel values must lie in 0..1 or 0..255, got {lo:g}..{hi:g}")
    return values * 255 if hi <= 1 else values


def _planes_from_array(arr: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour HxW or HxWx3 on a 0-255 scale, uint8 or float32; alpha float32 0-1 or None) from an array."""
    if arr.ndim == 4:
        raise ImageError(f"{name}: expected one image (HxW, HxWx1, HxWx3 or HxWx4), got a batch of shape "
                         f"{list(arr.shape)}; pass the images one by one")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ImageError(f"{name}: expected an image array shaped HxW, HxWx1, HxWx3 or HxWx4, "
                         f"got {list(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{name}: the image is empty ({arr.shape[1]}x{arr.shape[0]} pixels)")
    _check_pixel_count(arr.shape[1], arr.shape[0], name, None)
    if arr.dtype == np.bool_:
        values = arr.astype(np.float32) * 255
    elif arr.dtype == np.uint8:
        values = arr  # kept as uint8 until one plane is chosen (speed); same 0-255 scale
    elif arr.dtype == np.uint16:
        values = arr.astype(np.float32) / 257  # 16-bit to the 8-bit scale, as browsers show them
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"{name}: integer pixel values must lie in 0..255 (or use uint16 for 16-bit), "
                             f"got {lo}..{hi}")
        values = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        values = _float_scale(arr, name)
    else:
        raise ImageError(f"{name}: pixel arrays must hold real numbers, got dtype {arr.dtype}")
    if values.ndim == 3 and values.shape[2] in (2, 4):
        return values[..., :-1].squeeze(-1) if values.shape[2] == 2 else values[..., :3], \
            (values[..., -1] / np.float32(255)).astype(np.float32, copy=False)
    return (values[..., 0] if values.ndim == 3 and values.shape[2] == 1 else values), None


def _planes_from_pil(img: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour and alpha planes (see :func:`_planes_from_array`) of a decoded Pillow image."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.float32) / 257, None
    if mode == "I":  # 32-bit integer: 16-bit data when it goes above 255
        values = np.asarray(img).astype(np.float32)
        if values.min() < 0 or values.max() > 65535:
            raise ImageError(f"{name}: 32-bit integer pixels outside 0..65535 are not supported")
        return (values / 257 if values.max() > 255 else values), None
    if mode == "F":
        return _float_scale(np.asarray(img), name), None
    has_alpha = "A" in mode or "a" in mode or img.has_transparency_data
    grey = mode in ("1", "L", "LA", "La", "I", "F") or (mode in ("P", "PA") and _palette_is_grey(img))
    target = ("LA" if has_alpha else "L") if grey else ("RGBA" if has_alpha else "RGB")
    try:
        converted = img if mode == target else img.convert(target)
    except Exception as err:
        raise ImageError(f"{name}: cannot convert the {mode} image to {target} ({err})") from None
    return _planes_from_array(np.asarray(converted), name)


def _palette_is_grey(img: Image.Image) -> bool:
    palette = img.getpalette()
    if not palette:
        return True
    rgb = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


def _video_frame_array(src: Any) -> np.ndarray | None:
    """An RGB(A) array from frame-like objects (PyAV frames, matplotlib canvases/figures, PixelData)."""
    if hasattr(src, "to_ndarray") and hasattr(src, "format"):  # a PyAV VideoFrame
        return np.asarray(src.to_ndarray(format="rgb24"))
    canvas = src
    if hasattr(src, "savefig") and hasattr(src, "canvas"):  # a matplotlib Figure: draw it with Agg if need be
        canvas = src.canvas
        if not hasattr(canvas, "buffer_rgba"):
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            canvas = FigureCanvasAgg(src)
    if hasattr(canvas, "buffer_rgba"):
        if hasattr(canvas, "draw"):
            canvas.draw()
        return np.asarray(canvas.buffer_rgba())
    fields = src if isinstance(src, dict) else None
    if fields is None and all(hasattr(src, k) for k in ("width", "height", "data")):
        fields = {"width": src.width, "height": src.height, "data": src.data}
    if fields is not None and {"width", "height", "data"} <= set(fields):  # {data, width, height}, RGBA
        data = np.frombuffer(bytes(fields["data"]), dtype=np.uint8) if not isinstance(fields["data"], np.ndarray) \
            else fields["data"].astype(np.uint8, copy=False).ravel()
        width, height = int(fields["width"]), int(fields["height"])
        if data.size != width * height * 4:
            raise ImageError(f"{describe_source(src)}: pixel data of {width}x{height} needs "
                             f"{width * height * 4} RGBA bytes, got {data.size}")
        return data.reshape(height, width, 4)
    if hasattr(src, "__array__"):  # torch tensors, imageio frames, anything array-like
        return np.asarray(src)
    return None


def _planes(src: ImageSource, name: str, max_side: int | None = None):
    """Read any source into (colour planes, alpha or None, decoded-from-file flag).

    ``max_side`` shrinks large images early (JPEG draft mode, then an area filter) for speed.
    """
    if isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        img = _open_image(src, name, None)
        decoded_here = not isinstance(src, Image.Image)  # never alter a caller's image
        if decoded_here and max_side and max(img.size) > 2 * max_side and img.format in ("JPEG", "MPO"):
            img.draft(img.mode, (img.width * max_side // max(img.size), img.height * max_side // max(img.size)))
        img = _decode(img, name, orient=decoded_here)
        if max_side and max(img.size) > max_side * _SHRINK_ABOVE / _WORK_SIDE \
                and not img.mode.startswith(("I", "F")):
            img = _shrink_pil(img, max_side, name)
        colour, alpha = _planes_from_pil(img, name)
        return colour, alpha, True
    if isinstance(src, np.ndarray):
        arr = src
    else:
        try:
            arr = _video_frame_array(src)
        except ImageError:
            raise
        except Exception as err:  # a frame object or mapping that cannot give its pixels
            raise ImageError(f"{name}: cannot read pixels from it ({type(err).__name__}: {err})") from None
        if arr is None:
            raise ImageError(f"{name}: not an image source; pass a path, bytes, a Pillow image, a NumPy array "
                             f"(HxW, HxWx3, HxWx4), a video frame or {{'data', 'width', 'height'}}")
    colour, alpha = _planes_from_array(arr, name)
    return colour, alpha, False


def _shrink_pil(img: Image.Image, max_side: int, name: str) -> Image.Image:
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    try:
        if img.mode not in ("L", "LA", "RGB", "RGBA"):
            img = img.convert("RGBA" if ("A" in img.mode or img.has_transparency_data) else "RGB")
        return img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    except Exception as err:
        raise ImageError(f"{name}: cannot resize the image ({err})") from None


def from_pixels(src: ImageSource, num_channels: int = 3, *, name: str | None = None) -> np.ndarray:
    """``tf.browser.fromPixels``: an int32 ``[height, width, num_channels]`` array of 0-255 values.

    ``src`` is a path, bytes (PNG, JPEG, GIF, BMP, TIFF, WebP...), a Pillow image, a NumPy
    array (HxW grey, HxWx3 RGB, HxWx4 RGBA as a canvas's ``getImageData`` gives), a video
    frame (PyAV, or anything with ``__array__``), a matplotlib canvas or figure, or a
    ``{"data", "width", "height"}`` RGBA mapping like TF.js's ``PixelData``.

    As in TF.js the pixels are first made RGBA and the first ``num_channels`` are kept, so
    ``num_channels=1`` gives the red channel (the grey level for grey images). Decoded images
    behave like an ``<img>`` drawn on a canvas: EXIF orientation applied, fully transparent
    pixels read as (0, 0, 0, 0). 16-bit images are scaled to 8 bits; float arrays are 0-1
    intensities when all values lie in [0, 1], else 0-255 levels. ``name`` (default: the path,
    or a description) is how error messages call the input.

    >>> from_pixels(np.array([[0, 128], [255, 7]], dtype=np.uint8), num_channels=3)[0, 1].tolist()
    [128, 128, 128]
    >>> from_pixels({"data": bytes([1, 2, 3, 4]), "width": 1, "height": 1}, num_channels=4).tolist()
    [[[1, 2, 3, 4]]]
    """
    if not isinstance(num_channels, (int, np.integer)) or isinstance(num_channels, bool) \
            or not 1 <= num_channels <= 4:
        raise ValueError(f"num_channels must be 1, 2, 3 or 4 (as in tf.browser.fromPixels), got {num_channels!r}")
    name = name or describe_source(src)
    colour, alpha, decoded = _planes(src, name)
    rgba = np.empty((*colour.shape[:2], 4), dtype=np.int32)
    levels = colour if colour.dtype == np.uint8 else np.rint(colour)
    rgba[..., :3] = levels[..., None] if levels.ndim == 2 else levels
    rgba[..., 3] = 255 if alpha is None else np.rint(alpha * 255)
    if decoded and alpha is not None:  # a canvas stores premultiplied colour: transparent pixels lose it
        rgba[rgba[..., 3] == 0] = 0
    return np.ascontiguousarray(rgba[..., :num_channels])


# -- tensors ---------------------------------------------------------------------

def to_tensor4d(values, shape=None, dtype: str = "float32") -> np.ndarray:
    """``tf.tensor4d(values, shape, dtype)``: a 4-D NumPy array from flat or nested values.

    >>> to_tensor4d(list(range(4)), [1, 2, 2, 1])[0, :, :, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    if dtype not in ("float32", "int32", "bool"):
        raise ValueError(f"dtype must be 'float32', 'int32' or 'bool', got {dtype!r}")
    try:
        arr = np.asarray(values, dtype=np.float64 if dtype != "bool" else np.bool_)
    except (TypeError, ValueError) as err:
        raise ShapeError(f"tensor4d: values must be numbers ({err})") from None
    if shape is None:
        if arr.ndim != 4:
            raise ShapeError(f"tensor4d() requires a shape when values are not nested 4 levels deep; got "
                             f"values of rank {arr.ndim}")
        shape = arr.shape
    shape = [int(s) for s in shape]
    if len(shape) != 4 or any(s < 0 for s in shape):
        raise ShapeError(f"tensor4d() requires shape to have four non-negative numbers, got {shape}")
    if arr.size != math.prod(shape):
        raise ShapeError(f"Based on the provided shape, {shape}, the tensor should have {math.prod(shape)} "
                         f"values but has {arr.size}")
    if arr.ndim > 1 and arr.shape != tuple(shape):
        raise ShapeError(f"tensor4d: the nested values have shape {list(arr.shape)}, not {shape}")
    if dtype == "int32":
        arr = np.trunc(arr)  # TF.js stores numbers in an Int32Array, which truncates
    return arr.reshape(shape).astype({"float32": np.float32, "int32": np.int32, "bool": np.bool_}[dtype])


def expand_dims(x, axis: int = 0):
    """``tf.expandDims``: add a length-1 axis (default: the batch axis in front).

    >>> expand_dims(np.zeros((28, 28, 1))).shape
    (1, 28, 28, 1)
    """
    if hasattr(x, "unsqueeze") and not isinstance(x, np.ndarray):  # a torch tensor stays one
        return x.unsqueeze(axis)
    return np.expand_dims(np.asarray(x), axis)


def _permute(x, order_4d: tuple[int, ...], order_3d: tuple[int, ...], what: str):
    rank = x.dim() if hasattr(x, "dim") and not isinstance(x, np.ndarray) else np.ndim(x)
    if rank not in (3, 4):
        raise ShapeError(f"{what} takes a 3-D image or a 4-D batch, got rank {rank}")
    order = order_4d if rank == 4 else order_3d
    if hasattr(x, "permute") and not isinstance(x, np.ndarray):
        return x.permute(*order)
    return np.transpose(np.asarray(x), order)


def nhwc_to_nchw(x):
    """TF.js layout ``[N, H, W, C]`` (or ``[H, W, C]``) to PyTorch's ``[N, C, H, W]`` (``[C, H, W]``).

    >>> nhwc_to_nchw(np.zeros((2, 28, 28, 1))).shape
    (2, 1, 28, 28)
    """
    return _permute(x, (0, 3, 1, 2), (2, 0, 1), "nhwc_to_nchw")


def nchw_to_nhwc(x):
    """PyTorch's ``[N, C, H, W]`` (or ``[C, H, W]``) to TF.js layout ``[N, H, W, C]`` (``[H, W, C]``).

    >>> nchw_to_nhwc(np.zeros((2, 1, 28, 28))).shape
    (2, 28, 28, 1)
    """
    return _permute(x, (0, 2, 3, 1), (1, 2, 0), "nchw_to_nhwc")


def normalize(x, scale: float = 255.0) -> np.ndarray:
    """Pixel values to float32 in [0, 1]: ``x / 255`` as the chapter does with ``.div(255)``.

    >>> normalize(np.array([0, 51, 255])).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    return (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float32, copy=False)


# -- TF.js resize kernels ------------------------------------------------------------

def _check_resize_args(x, size, align_corners: bool, half_pixel_centers: bool, op: str):
    arr = np.asarray(x)
    if arr.ndim not in (3, 4):
        raise ShapeError(f"Error in {op}: x must be rank 3 or 4, but got rank {arr.ndim}.")
    if half_pixel_centers and align_corners:
        raise ValueError(f"Error in {op}: If halfPixelCenters is true, alignCorners must be false.")
    try:
        new_h, new_w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ShapeError(f"Error in {op}: new shape must be 2D [height, width], but got {size!r}.") from None
    if new_h < 1 or new_w < 1:
        raise ShapeError(f"Error in {op}: the new size must be positive, got {[new_h, new_w]}")
    if arr.shape[-3] < 1 or arr.shape[-2] < 1:
        raise ShapeError(f"Error in {op}: the input image is empty, shape {list(arr.shape)}")
    batch = arr if arr.ndim == 4 else arr[None]
    return batch, arr.ndim == 3, new_h, new_w


def _source_positions(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool,
                      subtract_half: bool) -> np.ndarray:
    """Fractional source coordinate of each output row/column, in TF.js's float64 arithmetic."""
    effective_in = in_size - 1 if align_corners and out_size > 1 else in_size
    effective_out = out_size - 1 if align_corners and out_size > 1 else out_size
    ratio = effective_in / effective_out
    index = np.arange(out_size, dtype=np.float64)
    if half_pixel_centers:
        return ratio * (index + 0.5) - 0.5 if subtract_half else ratio * (index + 0.5)
    return ratio * index


def resize_bilinear(x, size: tuple[int, int], align_corners: bool = False,
                    half_pixel_centers: bool = False) -> np.ndarray:
    """``tf.image.resizeBilinear``: float32 output with TF.js 4.22's (CPU kernel) numbers.

    ``x`` is ``[H, W, C]`` or ``[N, H, W, C]``; ``size`` is ``(new_height, new_width)``.
    Corner samples are blended in float64 from float32 inputs and stored as float32, as TF.js does.

    >>> resize_bilinear(np.array([[[0.], [10.]]]), (1, 4))[..., 0].tolist()
    [[0.0, 5.0, 10.0, 10.0]]
    >>> resize_bilinear(np.array([[[0.], [10.]]]), (1, 4), half_pixel_centers=True)[..., 0].tolist()
    [[0.0, 2.5, 7.5, 10.0]]
    """
    batch, squeeze, new_h, new_w = _check_resize_args(x, size, align_corners, half_pixel_centers,
                                                      "resizeBilinear")
    if np.issubdtype(batch.dtype, np.integer) or batch.dtype == np.bool_:
        values = batch.astype(np.int32).astype(np.float64)
    else:
        values = batch.astype(np.float32).astype(np.float64)  # TF.js holds floats as float32
    old_h, old_w = batch.shape[1], batch.shape[2]

    def taps(old: int, new: int):
        frac = _source_positions(old, new, align_corners, half_pixel_centers, subtract_half=True)
        low = np.maximum(0.0, np.floor(frac))
        high = np.minimum(old - 1, np.ceil(frac)).astype(np.intp)
        return low.astype(np.intp), high, frac - low

    top, bottom, row_frac = taps(old_h, new_h)
    left, right, col_frac = taps(old_w, new_w)
    col_frac = col_frac[None, None, :, None]
    row_frac = row_frac[None, :, None, None]
    rows_top, rows_bottom = values[:, top], values[:, bottom]
    top_left, top_right = rows_top[:, :, left], rows_top[:, :, right]
    bottom_left, bottom_right = rows_bottom[:, :, left], rows_bottom[:, :, right]
    upper = top_left + (top_right - top_left) * col_frac
    lower = bottom_left + (bottom_right - bottom_left) * col_frac
    out = (upper + (lower - upper) * row_frac).astype(np.float32)
    return out[0] if squeeze else out


def _js_round(values: np.ndarray) -> np.ndarray:
    """JavaScript's ``Math.round``: halves go up (towards +infinity), exactly."""
    low = np.floor(values)
    return low + (values - low >= 0.5)


def resize_nearest_neighbor(x, size: tuple[int, int], align_corners: bool = False,
                            half_pixel_centers: bool = False) -> np.ndarray:
    """``tf.image.resizeNearestNeighbor`` with TF.js 4.22's (CPU kernel) index rules.

    The source index of output ``i`` is ``floor(ratio * i)``; with ``align_corners`` it is
    ``Math.round(ratio * i)`` (ratio ``(in - 1) / (out - 1)``; halves round up); with
    ``half_pixel_centers`` it is ``floor(ratio * (i + 0.5))``; always clamped to the image.
    int32 input stays int32, anything else becomes float32.

    >>> resize_nearest_neighbor(np.arange(3).reshape(1, 3, 1), (1, 5))[..., 0].tolist()
    [[0, 0, 1, 1, 2]]
    >>> resize_nearest_neighbor(np.arange(3).reshape(1, 3, 1), (1, 5), align_corners=True)[..., 0].tolist()
    [[0, 1, 1, 2, 2]]
    """
    batch, squeeze, new_h, new_w = _check_resize_args(x, size, align_corners, half_pixel_centers,
                                                      "resizeNearestNeighbor")
    if np.issubdtype(batch.dtype, np.integer) or batch.dtype == np.bool_:
        batch = batch.astype(np.int32, copy=False)
    else:
        batch = batch.astype(np.float32, copy=False)
    old_h, old_w = batch.shape[1], batch.shape[2]

    def nearest(old: int, new: int) -> np.ndarray:
        frac = _source_positions(old, new, align_corners, half_pixel_centers, subtract_half=False)
        index = np.minimum(old - 1, _js_round(frac) if align_corners else np.floor(frac))
        if half_pixel_centers:
            index = np.maximum(0, index)
        return index.astype(np.intp)

    out = batch[:, nearest(old_h, new_h)][:, :, nearest(old_w, new_w)]
    out = np.ascontiguousarray(out)
    return out[0] if squeeze else out


# -- digit preparation -----------------------------------------------------------------

def _otsu(values: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of 0-255 values and its between-class variance (the separation it achieves)."""
    hist = np.bincount(np.clip(values, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(hist * levels)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2 / weight_low[-1] ** 2
    best = int(np.argmax(between))
    return best + 0.5, float(between[best])  # "low" class: values <= best


def _sample(values: np.ndarray, limit: int = 8192) -> np.ndarray:
    """An evenly strided subset of at most about ``limit`` pixels, for statistics (histograms, percentiles)."""
    step = max(1, math.ceil(math.sqrt(values.shape[0] * values.shape[1] / limit)))
    return values[::step, ::step]


def _border(values: np.ndarray) -> np.ndarray:
    width = max(1, min(values.shape) // 32)
    return np.concatenate([values[:width].ravel(), values[-width:].ravel(),
                           values[:, :width].ravel(), values[:, -width:].ravel()])


def _contrast_channel(colour: np.ndarray) -> np.ndarray:
    """The grey level (ITU-R 601 luma) or, when it separates ink from paper clearly better, one colour channel."""
    if colour.ndim == 2:
        return colour
    sample = _sample(colour).astype(np.float32)
    red, green, blue = sample[..., 0], sample[..., 1], sample[..., 2]
    if max(np.abs(red - green).max(), np.abs(green - blue).max()) < 4:  # grey pixels stored as RGB
        return colour[..., 1]
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    best, best_separation = None, _otsu(sample @ luma)[1]
    for channel in range(3):
        separation = _otsu(sample[..., channel])[1]
        if separation > 1.25 * best_separation:  # a clear win only: luma averages noise away
            best, best_separation = channel, separation
    return colour @ luma if best is None else colour[..., best]


def _ink_image(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A 0-255 float image in which the digit is bright and the background dark (as in MNIST)."""
    if alpha is not None and alpha.min() < 0.98:
        # Transparent background: lay the drawing on a backdrop that contrasts with its ink.
        luma = colour if colour.ndim == 2 else colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opaque = alpha >= 0.75
        if alpha.sum() == 0:  # nothing drawn at all
            backdrop = 255.0
        elif opaque.mean() < 0.5:  # ink on a transparent sheet: a backdrop that contrasts with the ink
            backdrop = 255.0 if float(np.average(luma, weights=alpha)) < 128 else 0.0
        else:  # mostly opaque: the transparent parts are background behind an opaque picture
            backdrop = 255.0 if float(np.median(luma[opaque])) >= 128 else 0.0
        a = alpha if colour.ndim == 2 else alpha[..., None]
        colour = colour * a + backdrop * (1 - a)
    grey = _contrast_channel(colour).astype(np.float32, copy=False)
    sample = _sample(grey)
    threshold, _ = _otsu(sample)
    border_light = float(np.mean(_border(grey) > threshold))
    light_background = border_light > 0.5 if abs(border_light - 0.5) > 0.2 \
        else np.mean(sample > threshold) > 0.5  # border mixed: the background is the larger class
    return 255.0 - grey if light_background else grey


def _flatten_background(ink: np.ndarray) -> np.ndarray:
    """Subtract the background level; uneven lighting (a gradient along the border) is estimated and removed."""
    border = _border(ink)
    low, high = np.percentile(border, [10, 90])
    spread = float(np.percentile(_sample(ink), 99.5) - np.median(border))
    if high - low <= 0.15 * max(spread, _MIN_CONTRAST) or min(ink.shape) < 16:
        return np.maximum(ink - float(np.median(border)), 0)
    # Uneven background: a grey opening (wider than any stroke) at low resolution keeps the lighting only.
    small_side = 48
    scale = small_side / max(ink.shape)
    small = np.asarray(Image.fromarray(ink, "F").resize(
        (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))), Image.Resampling.BOX))
    lighting = ndimage.grey_opening(small, size=(max(3, small.shape[0] // 3), max(3, small.shape[1] // 3)))
    lighting = ndimage.uniform_filter(lighting, size=5, mode="nearest")
    lighting = np.asarray(Image.fromarray(lighting.astype(np.float32), "F").resize(
        (ink.shape[1], ink.shape[0]), Image.Resampling.BILINEAR))
    return np.maximum(ink - lighting, 0)


def _ink_mask(ink: np.ndarray, name: str) -> tuple[np.ndarray, tuple[int, int, int, int], float]:
    """The digit's pixels (noise specks and edge clutter removed), their box (top, bottom, left, right), ink level."""
    sample = _sample(ink)
    threshold, _ = _otsu(sample)
    above, below = sample[sample > threshold], sample[sample <= threshold]
    if above.size == 0 or float(np.median(above)) - float(np.median(below)) < _MIN_CONTRAST:
        raise NoDigitFound(f"{name}: no digit found (the image is blank: almost no contrast)")
    if _neighbour_correlation(ink) < _MIN_NEIGHBOUR_CORRELATION:
        raise NoDigitFound(f"{name}: no digit found (the image is noise: neighbouring pixels are unrelated)")
    mask = ink > threshold
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        raise NoDigitFound(f"{name}: no digit found (only isolated noise pixels)")
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = areas >= max(2, 0.03 * areas.max())
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    touches_edge = np.zeros(count, dtype=bool)
    touches_edge[edge_labels[edge_labels > 0] - 1] = True
    inner = keep & ~touches_edge
    if inner.any() and areas[inner].max() >= 0.25 * areas[keep].max():
        keep &= ~touches_edge  # clutter along the edges (table, shadow, paper edge) is not the digit
    ink_pixels = int(areas[keep].sum())
    if ink_pixels < _MIN_INK_PIXELS:
        raise NoDigitFound(f"{name}: no digit found (only a speck of ink)")
    if ink_pixels > _MAX_INK_FRACTION * mask.size:
        raise NoDigitFound(f"{name}: no digit found (ink and background cannot be told apart)")
    boxes = [box for box, kept in zip(ndimage.find_objects(labels), keep) if kept]
    top, bottom = min(b[0].start for b in boxes), max(b[0].stop for b in boxes)
    left, right = min(b[1].start for b in boxes), max(b[1].stop for b in boxes)
    crop = labels[top:bottom, left:right]
    mask = crop > 0 if keep.all() else np.concatenate([[False], keep])[crop]
    return mask, (top, bottom, left, right), float(np.percentile(ink[top:bottom, left:right][mask], 90))


def _neighbour_correlation(values: np.ndarray) -> float:
    """Mean correlation of each pixel with its right and lower neighbours, on a strided sample of pairs.

    Drawings and photos are smooth at the pixel scale (thin-stroke digits still score above 0.4);
    random noise scores about 0.
    """
    step = max(1, math.ceil(math.sqrt(values.shape[0] * values.shape[1] / 16384)))
    centre = values[:-1:step, :-1:step].astype(np.float64)
    right, below = values[:-1:step, 1::step][:, :centre.shape[1]], values[1::step, :-1:step][:centre.shape[0]]
    if centre.size == 0:  # one pixel wide or high: no neighbour pairs, nothing that looks like noise
        return 1.0
    mean, variance = centre.mean(), centre.var()
    if variance <= 0:
        return 1.0
    return float(((centre - mean) * (right - mean)).mean() + ((centre - mean) * (below - mean)).mean()) / (2 * variance)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the boundary length."""
    boundary = mask & ~ndimage.binary_erosion(mask, border_value=0)
    return 2.0 * mask.sum() / max(int(boundary.sum()), 1)


def prepare_digit(image: ImageSource, *, normalize_stroke: bool = True, name: str | None = None) -> np.ndarray:
    """A photo, scan or drawing of one digit as an MNIST-like float32 ``[28, 28, 1]`` array in [0, 1].

    Follows how MNIST was built: grey levels (or the colour channel with the most contrast),
    transparency laid over a contrasting backdrop, inverted when the digit is dark on light,
    uneven lighting and noise removed (Otsu threshold, speck and edge-clutter removal), cropped
    to the digit, the longer side scaled to 20 px keeping the aspect ratio (anti-aliased), then
    placed in 28x28 with its centre of mass at (14, 14). Strokes so thin that they would fade
    below MNIST's ~2 px at that scale are thickened first (``normalize_stroke=False`` to skip).

    ``image`` is anything :func:`from_pixels` reads. Raises :class:`NoDigitFound` for blank
    images, specks and pure noise, and :class:`~sightsound.errors.ImageError` for unreadable ones;
    messages start with ``name`` (default: the path, or a description of the input).

    >>> drawing = np.full((100, 80), 255, dtype=np.uint8)
    >>> drawing[20:80, 50:56] = 0  # a dark "1", off-centre, on white paper
    >>> digit = prepare_digit(drawing)
    >>> digit.shape, float(digit.max())
    ((28, 28, 1), 1.0)
    >>> [float(np.round(c, 1)) for c in ndimage.center_of_mass(digit[..., 0])]  # MNIST: within 0.5 of 14
    [14.5, 14.0]
    """
    name = name or describe_source(image)
    colour, alpha, _ = _planes(image, name, max_side=_WORK_SIDE)
    if max(colour.shape[:2]) > _SHRINK_ABOVE:  # arrays and 16-bit images arrive at full size
        colour, alpha = _shrink_planes(colour, alpha)
    ink = _flatten_background(_ink_image(colour, alpha))
    mask, (top, bottom, left, right), ink_level = _ink_mask(ink, name)

    # The ink around the box (zero outside the image) and the mask, one pixel wider for soft edges.
    margin = 1
    window = np.zeros((bottom - top + 2 * margin, right - left + 2 * margin), dtype=np.float32)
    src_top, src_left = max(0, top - margin), max(0, left - margin)
    src_bottom, src_right = min(ink.shape[0], bottom + margin), min(ink.shape[1], right + margin)
    window[src_top - (top - margin):src_bottom - (top - margin),
           src_left - (left - margin):src_right - (left - margin)] = ink[src_top:src_bottom, src_left:src_right]
    mask = np.pad(mask, margin)
    longer = max(window.shape)
    if longer > 1.5 * _DETAIL_SIDE:  # a 20-px digit needs no more detail than this: shrink first (speed)
        size = (max(1, round(window.shape[1] * _DETAIL_SIDE / longer)),
                max(1, round(window.shape[0] * _DETAIL_SIDE / longer)))
        window = np.asarray(Image.fromarray(window, "F").resize(size, Image.Resampling.BOX))
        mask = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize(size, Image.Resampling.BOX)) > 0.25
    # Soft edges: keep the grey levels next to the ink mask, zero everything farther away (noise).
    digit = np.clip(window / max(ink_level, 1e-6), 0, 1) * ndimage.binary_dilation(mask)
    if normalize_stroke:
        width = _stroke_width(mask)
        scale = MNIST_BOX / max(max(mask.shape) - 2 * margin, 1)
        if width * scale < _TARGET_STROKE:
            grow = math.ceil((_TARGET_STROKE / scale - width) / 2)
            yy, xx = np.mgrid[-grow:grow + 1, -grow:grow + 1]
            digit = ndimage.grey_dilation(np.pad(digit, grow), footprint=(yy ** 2 + xx ** 2) <= grow ** 2 + 0.5)
    digit = digit.astype(np.float32, copy=False)
    rows = np.flatnonzero((digit > 0.05).any(axis=1))  # the ink's own box, without faint halo
    cols = np.flatnonzero((digit > 0.05).any(axis=0))
    digit = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    height, width = digit.shape
    scale = MNIST_BOX / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    box = np.asarray(Image.fromarray(digit, "F").resize((new_w, new_h), Image.Resampling.BILINEAR))
    box = np.clip(box, 0, 1)
    peak = float(box.max())
    if peak <= 0:
        raise NoDigitFound(f"{name}: no digit found (the ink vanished when scaled to 20 px)")
    box = box / peak  # MNIST digits reach full intensity

    centre_row, centre_col = ndimage.center_of_mass(box)
    place_row = min(max(round(MNIST_CENTRE - centre_row), 0), MNIST_SIZE - new_h)
    place_col = min(max(round(MNIST_CENTRE - centre_col), 0), MNIST_SIZE - new_w)
    out = np.zeros((MNIST_SIZE, MNIST_SIZE, 1), dtype=np.float32)
    out[place_row:place_row + new_h, place_col:place_col + new_w, 0] = box
    return out


def _shrink_planes(colour: np.ndarray, alpha: np.ndarray | None):
    scale = _WORK_SIDE / max(colour.shape[:2])
    size = (max(1, round(colour.shape[1] * scale)), max(1, round(colour.shape[0] * scale)))

    def shrink(plane: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), "F").resize(
            size, Image.Resampling.BOX))

    if colour.ndim == 3:
        colour = np.stack([shrink(colour[..., c]) for c in range(colour.shape[2])], axis=-1)
    else:
        colour = shrink(colour)
    return colour, (shrink(alpha) if alpha is not None else None)


# -- model inputs --------------------------------------------------------------------

def model_input(src: ImageSource, input_shape=(28, 28, 1), raw: bool = False, *,
                name: str | None = None) -> np.ndarray:
    """One image as a float32 ``input_shape`` array for a model (add the batch axis yourself).

    By default the digit is prepared with :func:`prepare_digit` (then resized/tiled if the model
    is not 28x28x1). ``raw=True`` does what the chapter's browser code does instead:
    ``fromPixels(img, channels)`` → ``resizeBilinear([h, w])`` → ``div(255)``.

    >>> model_input(np.zeros((50, 50), dtype=np.uint8), raw=True).shape
    (28, 28, 1)
    """
    height, width, channels = (int(s) for s in input_shape)
    if raw:
        pixels = from_pixels(src, num_channels=min(channels, 4), name=name)
        if pixels.shape[:2] != (height, width):
            pixels = resize_bilinear(pixels, (height, width))
        x = normalize(pixels)
    else:
        x = prepare_digit(src, name=name)
        if (height, width) != (MNIST_SIZE, MNIST_SIZE):
            x = resize_bilinear(x, (height, width))
    if x.shape[2] != channels:
        x = np.repeat(x[..., :1], channels, axis=2)
    return np.ascontiguousarray(x, dtype=np.float32)


def top_k(probabilities, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most probable ``(label, probability)`` pairs, best first (ties: lower label first).

    >>> top_k([0.1, 0.7, 0.2], k=2)
    [(1, 0.7), (2, 0.2)]
    """
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]
