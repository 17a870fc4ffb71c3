"""Pixels from any image source: colour and alpha planes on the 0-255 scale.

Paths and bytes are decoded by :func:`~sightsound.image.decode.read_pixels` (the one
guarded decoder); Pillow images, NumPy arrays (HxW, HxWx1..4; uint8, uint16, other
integers, floats, bools), video frames (PyAV, anything with ``__array__``),
matplotlib canvases and figures and ``{"data", "width", "height"}`` RGBA mappings
are read here. :func:`read_planes` gives both :func:`~sightsound.image.from_pixels`
and :func:`~sightsound.image.prepare_digit` their input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError
from .decode import (DecodedPixels, ImageSource, check_pixel_count, describe_source, is_decodable,
                     read_pixels)

__all__ = ["read_planes"]


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
    check_pixel_count(arr.shape[1], arr.shape[0], name)
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


def read_planes(src: ImageSource, name: str, *, shrink_to: int | None = None, shrink_above: int | None = None):
    """Read any source into (colour planes, alpha or None, decoded-image flag).

    Colour is HxW or HxWx3 on a 0-255 scale (uint8 or float32), alpha float32 in 0-1. The flag
    is true for paths, bytes, :class:`~sightsound.image.decode.DecodedPixels` and Pillow images (pixels
    as a canvas would store them). With
    ``shrink_to``, images (not arrays) whose longer side is above ``shrink_above`` are shrunk to
    that side early (JPEG draft mode while decoding, then an area filter), for speed.
    """
    if is_decodable(src) or isinstance(src, DecodedPixels):
        img = src if isinstance(src, DecodedPixels) else read_pixels(src, name=name, draft_side=shrink_to)
        if isinstance(img, DecodedPixels):
            if not shrink_to or max(img.pixels.shape[:2]) <= (shrink_above or shrink_to):
                colour, alpha = _planes_from_array(img.pixels, name)
                return colour, alpha, True
            img = Image.fromarray(img.pixels)
        if shrink_to and max(img.size) > (shrink_above or shrink_to) and not img.mode.startswith(("I", "F")):
            img = _shrink_pil(img, shrink_to, name)
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

