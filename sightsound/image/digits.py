"""Digit preparation: a photo, scan or drawing of one digit as an MNIST-like 28x28 input.

:func:`prepare_digit` follows how MNIST was built (grey levels, ink bright on dark,
background and noise removed, cropped, scaled to 20 px, centred by mass in 28x28);
a readable image with no digit on it raises :class:`NoDigitFound`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import ImageError
from .decode import ImageSource, describe_source
from .pixels import read_planes

__all__ = ["MNIST_SIZE", "MNIST_BOX", "MNIST_CENTRE", "NoDigitFound", "prepare_digit"]

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
_MARGIN = 1  # the crop keeps this many pixels around the ink's box, for soft edges
_LEVELS = np.arange(256, dtype=np.float64)  # the 0-255 grey levels of a histogram
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)  # ink pixels touching by an edge or a corner are one component


class NoDigitFound(ImageError):
    """The image was read, but holds nothing that looks like a digit (blank, a speck, all noise)."""


def _otsu(values: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of 0-255 values and its between-class variance (the separation it achieves)."""
    hist = np.bincount(np.clip(values, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(hist * _LEVELS)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2 / weight_low[-1] ** 2
    best = int(np.argmax(between))
    return best + 0.5, float(between[best])  # "low" class: values <= best


def _order_stats(values: np.ndarray, percents: tuple[float, ...] = (), *,
                 one_q: bool = False) -> tuple[list[float], float]:
    """``np.percentile(values, percents)`` and ``np.median(values)``: the same numbers from one partial sort,
    where NumPy's functions each copy and sort again and spend more time checking arguments than sorting
    the small arrays here. NaN for empty ``values``, as NumPy gives.

    NumPy interpolates from the nearer neighbour, in float64 for a list of percents but in the array's
    precision for one Python number (``np.percentile(values, 90)``): ``one_q`` asks for the latter.
    """
    values = np.asarray(values).ravel()
    n = values.size
    if n == 0:
        return [math.nan] * len(percents), math.nan
    positions = [(n - 1) * (p / 100) for p in percents]
    neighbours = [(math.floor(v), min(math.floor(v) + 1, n - 1)) for v in positions]
    part = np.partition(values, [i for pair in neighbours for i in pair] + [(n - 1) // 2, n // 2])
    quantiles = []
    for position, (low, high) in zip(positions, neighbours):
        below, above, gamma = part[low], part[high], position - low
        step = above - below  # in the array's precision, as NumPy subtracts
        if not one_q:
            below, above, step = float(below), float(above), float(step)
        quantiles.append(float(above - step * (1 - gamma) if gamma >= 0.5 else below + step * gamma))
    return quantiles, float(part[n // 2] if n % 2 else (part[n // 2 - 1] + part[n // 2]) / 2)


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
    border = _border(grey)
    border_light = np.count_nonzero(border > threshold) / border.size
    light_background = border_light > 0.5 if abs(border_light - 0.5) > 0.2 \
        else np.mean(sample > threshold) > 0.5  # border mixed: the background is the larger class
    return 255.0 - grey if light_background else grey


def _flatten_background(ink: np.ndarray) -> np.ndarray:
    """Subtract the background level; uneven lighting (a gradient along the border) is estimated and removed."""
    (low, high), level = _order_stats(_border(ink), (10, 90))
    (top,), _ = _order_stats(_sample(ink), (99.5,), one_q=True)
    spread = top - level
    if high - low <= 0.15 * max(spread, _MIN_CONTRAST) or min(ink.shape) < 16:
        flat = ink - level
        return np.maximum(flat, 0, out=flat)
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
    if above.size == 0 or _order_stats(above)[1] - _order_stats(below)[1] < _MIN_CONTRAST:
        raise NoDigitFound(f"{name}: no digit found (the image is blank: almost no contrast)")
    if _neighbour_correlation(ink) < _MIN_NEIGHBOUR_CORRELATION:
        raise NoDigitFound(f"{name}: no digit found (the image is noise: neighbouring pixels are unrelated)")
    mask = ink > threshold
    labels, count, (row0, col0), touches_edge = _components(mask)
    if count == 0:
        raise NoDigitFound(f"{name}: no digit found (only isolated noise pixels)")
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = areas >= max(2, 0.03 * areas.max())
    inner = keep & ~touches_edge
    if inner.any() and areas[inner].max() >= 0.25 * areas[keep].max():
        keep &= ~touches_edge  # clutter along the edges (table, shadow, paper edge) is not the digit
    ink_pixels = int(areas[keep].sum())
    if ink_pixels < _MIN_INK_PIXELS:
        raise NoDigitFound(f"{name}: no digit found (only a speck of ink)")
    if ink_pixels > _MAX_INK_FRACTION * mask.size:
        raise NoDigitFound(f"{name}: no digit found (ink and background cannot be told apart)")
    mask, (top, bottom, left, right) = _kept_pixels(labels, keep)
    top, bottom, left, right = top + row0, bottom + row0, left + col0, right + col0
    (ink_level,), _ = _order_stats(ink[top:bottom, left:right][mask], (90,), one_q=True)
    return mask, (top, bottom, left, right), ink_level


def _kept_pixels(labels: np.ndarray, keep: np.ndarray):
    """The pixels of the kept labels in their box, and the box (top, bottom, left, right) in ``labels``."""
    if keep.all():  # the labels' box is the box of all the ink
        return labels > 0, (0, labels.shape[0], 0, labels.shape[1])
    kept = np.concatenate([[False], keep])[labels]
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return kept[top:bottom, left:right], (top, bottom, left, right)


def _components(mask: np.ndarray):
    """``ndimage.label`` of ``mask`` (8-connected) on the box around its pixels only: the labels, their
    count, the box's (row, column) offset in ``mask``, and for each label whether it touches ``mask``'s edge.

    Labels number the components in raster order, which the box keeps, so they are the labels of the whole
    mask; labelling, counting and boxing then skip the empty margin, most of a drawing canvas.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=np.int32), 0, (0, 0), np.zeros(0, dtype=bool)
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    labels, count = ndimage.label(mask[top:bottom, left:right], structure=_EIGHT_NEIGHBOURS)
    edges = [line for line, at_edge in ((labels[0], top == 0), (labels[-1], bottom == mask.shape[0]),
                                        (labels[:, 0], left == 0), (labels[:, -1], right == mask.shape[1]))
             if at_edge]
    touches_edge = np.zeros(count + 1, dtype=bool)
    if edges:
        touches_edge[np.concatenate(edges)] = True
    return labels, count, (top, left), touches_edge[1:]


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
    mean = centre.mean()
    deviation = centre - mean
    variance = (deviation * deviation).mean()  # centre.var(), computed the same way
    if variance <= 0:
        return 1.0
    return float((deviation * (right - mean)).mean() + (deviation * (below - mean)).mean()) / (2 * variance)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the boundary length."""
    boundary = mask & ~_cross_filter(mask, np.logical_and)
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
    colour, alpha, _ = read_planes(image, name, shrink_to=_WORK_SIDE, shrink_above=_SHRINK_ABOVE)
    if max(colour.shape[:2]) > _SHRINK_ABOVE:  # arrays and 16-bit images arrive at full size
        colour, alpha = _shrink_planes(colour, alpha)
    ink = _flatten_background(_ink_image(colour, alpha))
    mask, box, ink_level = _ink_mask(ink, name)
    window, mask = _digit_window(ink, mask, box)
    # Soft edges: keep the grey levels next to the ink mask, zero everything farther away (noise).
    digit = np.clip(window / max(ink_level, 1e-6), 0, 1) * _cross_filter(mask, np.logical_or)
    if normalize_stroke:
        digit = _thicken_strokes(digit, mask)
    digit = digit.astype(np.float32, copy=False)
    rows = np.flatnonzero((digit > 0.05).any(axis=1))  # the ink's own box, without faint halo
    cols = np.flatnonzero((digit > 0.05).any(axis=0))
    return _place_in_mnist(digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], name)


def _digit_window(ink: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]):
    """The ink around the box (zero outside the image) and the mask, _MARGIN px wider for soft edges.

    Crops larger than a 20-px digit needs are shrunk to about _DETAIL_SIDE (speed).
    """
    top, bottom, left, right = box
    margin = _MARGIN
    window = np.zeros((bottom - top + 2 * margin, right - left + 2 * margin), dtype=np.float32)
    src_top, src_left = max(0, top - margin), max(0, left - margin)
    src_bottom, src_right = min(ink.shape[0], bottom + margin), min(ink.shape[1], right + margin)
    window[src_top - (top - margin):src_bottom - (top - margin),
           src_left - (left - margin):src_right - (left - margin)] = ink[src_top:src_bottom, src_left:src_right]
    mask = _padded(mask, margin)
    longer = max(window.shape)
    if longer > 1.5 * _DETAIL_SIDE:  # a 20-px digit needs no more detail than this: shrink first (speed)
        size = (max(1, round(window.shape[1] * _DETAIL_SIDE / longer)),
                max(1, round(window.shape[0] * _DETAIL_SIDE / longer)))
        window = np.asarray(Image.fromarray(window, "F").resize(size, Image.Resampling.BOX))
        mask = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize(size, Image.Resampling.BOX)) > 0.25
    return window, mask


def _thicken_strokes(digit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Strokes that would be thinner than MNIST's ~2 px at 20-px scale, dilated to that width."""
    width = _stroke_width(mask)
    scale = MNIST_BOX / max(max(mask.shape) - 2 * _MARGIN, 1)
    if width * scale >= _TARGET_STROKE:
        return digit
    grow = math.ceil((_TARGET_STROKE / scale - width) / 2)
    return _disk_dilation(digit, grow)


@functools.lru_cache(maxsize=16)
def _disk(radius: int) -> list[tuple[int, int]]:
    """The (row, column) offsets of a disk of ``radius`` pixels."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return [(int(y), int(x)) for y, x in zip(*np.nonzero((yy ** 2 + xx ** 2) <= radius ** 2 + 0.5))]


def _disk_dilation(digit: np.ndarray, radius: int) -> np.ndarray:
    """``ndimage.grey_dilation(np.pad(digit, radius), footprint=disk)`` for a ``digit`` >= 0: the maximum
    over the disk's offsets, each a shifted view (the footprint reaches only the zero padding, which is
    what SciPy's border reflects too); SciPy's per-call set-up costs more than the work on a digit."""
    height, width = digit.shape[0] + 2 * radius, digit.shape[1] + 2 * radius
    source = _padded(digit, 2 * radius)
    out = source[radius:radius + height, radius:radius + width].copy()
    for row, col in _disk(radius):
        np.maximum(out, source[row:row + height, col:col + width], out=out)
    return out


def _place_in_mnist(digit: np.ndarray, name: str) -> np.ndarray:
    """The cropped digit scaled to 20 px on its longer side, placed in 28x28 with its centre of mass at (14, 14)."""
    height, width = digit.shape
    scale = MNIST_BOX / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    box = np.asarray(Image.fromarray(digit, "F").resize((new_w, new_h), Image.Resampling.BILINEAR))
    box = np.clip(box, 0, 1)
    peak = float(box.max())
    if peak <= 0:
        raise NoDigitFound(f"{name}: no digit found (the ink vanished when scaled to 20 px)")
    box = box / peak  # MNIST digits reach full intensity

    centre_row, centre_col = _centre_of_mass(box)
    place_row = min(max(round(MNIST_CENTRE - centre_row), 0), MNIST_SIZE - new_h)
    place_col = min(max(round(MNIST_CENTRE - centre_col), 0), MNIST_SIZE - new_w)
    out = np.zeros((MNIST_SIZE, MNIST_SIZE, 1), dtype=np.float32)
    out[place_row:place_row + new_h, place_col:place_col + new_w, 0] = box
    return out


def _centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    """``scipy.ndimage.center_of_mass`` of a 2-D array, computed the same way without its argument handling."""
    total = values.sum()
    rows = np.arange(values.shape[0], dtype=np.float64)[:, None]
    cols = np.arange(values.shape[1], dtype=np.float64)[None, :]
    return (values * rows).sum() / total, (values * cols).sum() / total


def _cross_filter(mask: np.ndarray, combine) -> np.ndarray:
    """``mask`` combined with its four neighbours, outside the image False: ``np.logical_and`` is
    ``ndimage.binary_erosion(mask)`` and ``np.logical_or`` ``ndimage.binary_dilation(mask)`` (a cross, one
    step, border 0), without SciPy's per-call set-up, which costs more than the work on a digit's crop."""
    padded = _padded(mask, 1)
    out = mask.copy()
    for shifted in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        combine(out, shifted, out=out)
    return out


def _padded(values: np.ndarray, width: int) -> np.ndarray:
    """``np.pad(values, width)`` (zeros around a 2-D array) without np.pad's general machinery."""
    out = np.zeros((values.shape[0] + 2 * width, values.shape[1] + 2 * width), dtype=values.dtype)
    out[width:width + values.shape[0], width:width + values.shape[1]] = values
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
