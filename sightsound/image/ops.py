"""TF.js image ops: ``tf.browser.fromPixels``, ``tf.tensor4d``, ``expandDims``, ``div(255)``, layouts, resizes.

The chapter feeds its models from typed arrays (``tf.tensor4d``), from
``<img>``/``<canvas>``/``<video>`` elements (``tf.browser.fromPixels``),
resizes with ``tf.image.resizeBilinear`` / ``resizeNearestNeighbor``, divides
by 255 and adds the batch axis. These functions do the same on NumPy arrays
with the same numbers as TF.js 4.22's CPU kernels (checked against real TF.js
in tests/test_image.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .decode import ImageSource, describe_source
from .pixels import read_planes

__all__ = ["from_pixels", "to_tensor4d", "expand_dims", "nhwc_to_nchw", "nchw_to_nhwc", "normalize",
           "resize_bilinear", "resize_nearest_neighbor"]


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
    colour, alpha, decoded = read_planes(src, name)
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


def bilinear_taps(old: int, new: int, align_corners: bool = False, half_pixel_centers: bool = False):
    """For each of ``new`` output rows (or columns) of ``resizeBilinear`` from ``old``: the lower and upper
    source index and the weight of the upper one (TF.js's float64 arithmetic; also UpSampling2D's)."""
    frac = _source_positions(old, new, align_corners, half_pixel_centers, subtract_half=True)
    low = np.maximum(0.0, np.floor(frac))
    high = np.minimum(old - 1, np.ceil(frac)).astype(np.intp)
    return low.astype(np.intp), high, frac - low


def nearest_indices(old: int, new: int, align_corners: bool = False, half_pixel_centers: bool = False):
    """The source index of each of ``new`` output rows (or columns) of ``resizeNearestNeighbor`` from ``old``."""
    frac = _source_positions(old, new, align_corners, half_pixel_centers, subtract_half=False)
    index = np.minimum(old - 1, _js_round(frac) if align_corners else np.floor(frac))
    if half_pixel_centers:
        index = np.maximum(0, index)
    return index.astype(np.intp)


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
    top, bottom, row_frac = bilinear_taps(old_h, new_h, align_corners, half_pixel_centers)
    left, right, col_frac = bilinear_taps(old_w, new_w, align_corners, half_pixel_centers)
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
    rows = nearest_indices(old_h, new_h, align_corners, half_pixel_centers)
    out = batch[:, rows][:, :, nearest_indices(old_w, new_w, align_corners, half_pixel_centers)]
    out = np.ascontiguousarray(out)
    return out[0] if squeeze else out
