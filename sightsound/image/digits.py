"""Digit preparation: a photo, scan or drawing of one digit as an MNIST-like 28x28 input.

:func:`prepare_digit` follows how MNIST was built (grey levels, ink bright on dark,
background and noise removed, cropped, scaled to 20 px, centred by mass in 28x28);
a readable image with no digit on it raises :class:`NoDigitFound`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

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
_POSITIONS = np.arange(MNIST_SIZE, dtype=np.float64)  # row and column numbers, for centres of mass
# Order statistics of more 0-255 levels than this are read from their counts (one pass) instead of a partial
# sort; on fewer, the sort costs less than counting all 256 levels.
_COUNT_LEVELS_ABOVE = 1024
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)  # ink pixels touching by an edge or a corner are one component


class NoDigitFound(ImageError):
    """The image was read, but holds nothing that looks like a digit (blank, a speck, all noise)."""


def _histogram(values: np.ndarray) -> np.ndarray:
    """Counts of the 0-255 levels of ``values``; float values are clipped to 0-255 and truncated."""
    if values.dtype != np.uint8:
        values = np.clip(values, 0, 255).astype(np.uint8)
    return np.bincount(values.ravel(), minlength=256)


def _otsu(hist: np.ndarray) -> tuple[int, float]:
    """Otsu's threshold of a 256-level histogram - the last level of the "low" class - and its between-class
    variance (the separation it achieves). Values above ``level + 0.5`` are the "high" class (:func:`_cut`)."""
    hist = hist.astype(np.float64)
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(hist * _LEVELS)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    # weight_low * weight_high * (mean_low - mean_high) ** 2 / weight_low[-1] ** 2, in place (fewer allocations)
    between = np.square(np.subtract(mean_low, mean_high, out=mean_low), out=mean_low)
    between *= weight_low * weight_high
    between /= weight_low[-1] ** 2
    best = int(np.argmax(between))
    return best, float(between[best])


def _cut(values: np.ndarray, level: int):
    """What to compare ``values`` with so that ``values > cut`` is the class above Otsu's ``level``: ``level + 0.5``,
    or for 0-255 integers ``level`` itself (the same pixels, compared without converting them to floats)."""
    return level if values.dtype == np.uint8 else level + 0.5


def _order_stats(values: np.ndarray, percents: tuple[float, ...] = (), *, one_q: bool = False,
                 counts: np.ndarray | None = None) -> tuple[list[float], float]:
    """``np.percentile(values, percents)`` and ``np.median(values)``: the same numbers from one partial sort,
    where NumPy's functions each copy and sort again and spend more time checking arguments than sorting
    the small arrays here. NaN for empty ``values``, as NumPy gives.

    NumPy interpolates from the nearer neighbour, in float64 for a list of percents but in the array's
    precision for one Python number (``np.percentile(values, 90)``): ``one_q`` asks for the latter.
    uint8 ``values`` give what their float32 copy gives (the precision of the pixels they stand for);
    ``counts``, their level counts when the caller has them, stand in for them.
    """
    if counts is None:
        values = np.asarray(values).ravel()
    n = values.size
    if n == 0:
        return [math.nan] * len(percents), math.nan
    positions = [(n - 1) * (p / 100) for p in percents]
    neighbours = [(math.floor(v), min(math.floor(v) + 1, n - 1)) for v in positions]
    part = _sorted_at(values, [i for pair in neighbours for i in pair] + [(n - 1) // 2, n // 2], counts)
    quantiles = []
    for position, (low, high) in zip(positions, neighbours):
        below, above, gamma = part[low], part[high], position - low
        step = above - below  # in the array's precision, as NumPy subtracts
        if not one_q:
            below, above, step = float(below), float(above), float(step)
        quantiles.append(float(above - step * (1 - gamma) if gamma >= 0.5 else below + step * gamma))
    return quantiles, float(part[n // 2] if n % 2 else (part[n // 2 - 1] + part[n // 2]) / 2)


def _sorted_at(values: np.ndarray, ranks: list[int], counts: np.ndarray | None = None):
    """``values`` in an order that has the value of each of ``ranks`` (0: the smallest) at that index, as
    ``np.partition`` gives; float32 for uint8 ``values``. For many 0-255 levels, or given their ``counts``: a
    mapping from the ranks to their values, read from the levels' cumulative counts (no sort)."""
    if counts is None:
        if values.dtype != np.uint8:
            return np.partition(values, ranks)
        if values.size <= _COUNT_LEVELS_ABOVE:
            return np.partition(values.astype(np.float32), ranks)
        counts = np.bincount(values, minlength=256)
    levels = np.searchsorted(np.cumsum(counts), ranks, side="right")
    return dict(zip(ranks, levels.astype(np.float32)))


def _class_medians(sample: np.ndarray, counts: np.ndarray, level: int) -> tuple[float, float] | None:
    """The medians of the values of ``sample`` above and at or below Otsu's ``level`` (NaN for an empty class),
    as :func:`_order_stats` gives them; None when no value is above. ``counts`` are ``sample``'s level counts,
    which for uint8 values is all it takes."""
    if sample.dtype != np.uint8:
        cut = level + 0.5
        above = sample[sample > cut]
        return None if above.size == 0 else (_order_stats(above)[1], _order_stats(sample[sample <= cut])[1])
    ranks = np.cumsum(counts)
    below, total = int(ranks[level]), int(ranks[-1])
    if below == total:
        return None
    middles = [below + (total - below - 1) // 2, below + (total - below) // 2, (below - 1) // 2, below // 2]
    levels = np.searchsorted(ranks, middles, side="right").tolist()
    # Integers up to 255: their half-sum is exact in float32 as in float64, so this is _order_stats's median.
    return (levels[0] + levels[1]) / 2, (levels[2] + levels[3]) / 2 if below else math.nan


def _sample(values: np.ndarray, limit: int = 8192) -> np.ndarray:
    """An evenly strided subset of at most about ``limit`` pixels, for statistics (histograms, percentiles)."""
    step = max(1, math.ceil(math.sqrt(values.shape[0] * values.shape[1] / limit)))
    return values[::step, ::step]


def _border(values: np.ndarray) -> np.ndarray:
    width = max(1, min(values.shape) // 32)
    return np.concatenate([values[:width].ravel(), values[-width:].ravel(),
                           values[:, :width].ravel(), values[:, -width:].ravel()])


class _InkStats(NamedTuple):
    """What :func:`_ink_image` learnt about the ink image it returns, for the steps after it."""

    border: np.ndarray  # its _border pixels
    counts: np.ndarray | None  # for uint8 ink: the level counts of its _sample
    otsu_level: int | None  # Otsu's level of those counts, when known


def _contrast_channel(colour: np.ndarray) -> np.ndarray:
    """The grey level (ITU-R 601 luma) or, when it separates ink from paper clearly better, one colour channel.

    One channel of uint8 pixels stays uint8 (contiguous: the steps after this run several passes over it).
    """
    if colour.ndim == 2:
        return colour
    sample = _sample(colour)
    # Channel by channel (NumPy is slow on a last axis of 3); 0-255 levels subtract exactly in int16.
    red, green, blue = (sample[..., c].astype(np.int16 if colour.dtype == np.uint8 else np.float32)
                        for c in range(3))
    if max(np.abs(red - green).max(), np.abs(green - blue).max()) < 4:  # grey pixels stored as RGB
        return np.ascontiguousarray(colour[..., 1])
    sample = sample.astype(np.float32)
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    best, best_separation = None, _otsu(_histogram(sample @ luma))[1]
    for channel in range(3):
        separation = _otsu(_histogram(sample[..., channel]))[1]
        if separation > 1.25 * best_separation:  # a clear win only: luma averages noise away
            best, best_separation = channel, separation
    return colour @ luma if best is None else np.ascontiguousarray(colour[..., best])


def _ink_image(colour: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, _InkStats]:
    """A 0-255 image in which the digit is bright and the background dark (as in MNIST), and what was learnt.

    uint8 when it is one channel of 0-255 levels (most pictures: the steps after this are exact on them, and
    cheaper), else float32.
    """
    if alpha is not None and alpha.min() < 0.98:
        colour = _on_backdrop(colour, alpha)
    grey = _contrast_channel(colour)
    if grey.dtype != np.uint8:
        grey = grey.astype(np.float32, copy=False)
    sample = _sample(grey)
    counts = _histogram(sample)
    level, _ = _otsu(counts)
    threshold = _cut(grey, level)
    border = _border(grey)
    border_light = np.count_nonzero(border > threshold) / border.size
    light_background = border_light > 0.5 if abs(border_light - 0.5) > 0.2 \
        else np.mean(sample > threshold) > 0.5  # border mixed: the background is the larger class
    exact = grey.dtype == np.uint8  # only counts of 0-255 integers tell their order statistics
    if not light_background:
        return grey, _InkStats(border, counts if exact else None, level if exact else None)
    if exact:  # the levels reversed: their counts too, but not Otsu's level (it is computed on floats)
        return 255 - grey, _InkStats(255 - border, counts[::-1], None)
    return 255.0 - grey, _InkStats(255.0 - border, None, None)


def _on_backdrop(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A drawing with a transparent background laid on a backdrop that contrasts with its ink (float32)."""
    luma = colour if colour.ndim == 2 else colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    opaque = alpha >= 0.75
    if alpha.sum() == 0:  # nothing drawn at all
        backdrop = 255.0
    elif opaque.mean() < 0.5:  # ink on a transparent sheet: a backdrop that contrasts with the ink
        backdrop = 255.0 if float(np.average(luma, weights=alpha)) < 128 else 0.0
    else:  # mostly opaque: the transparent parts are background behind an opaque picture
        backdrop = 255.0 if float(np.median(luma[opaque])) >= 128 else 0.0
    a = alpha if colour.ndim == 2 else alpha[..., None]
    return colour * a + backdrop * (1 - a)


def _flatten_background(ink: np.ndarray, stats: _InkStats) -> np.ndarray:
    """Subtract the background level; uneven lighting (a gradient along the border) is estimated and removed.

    uint8 ink with a whole background level stays uint8 (the same values); on a level of 0 it is ``ink`` itself.
    """
    (low, high), level = _order_stats(stats.border, (10, 90))
    (top,), _ = _order_stats(_sample(ink), (99.5,), one_q=True, counts=stats.counts)
    spread = top - level
    if high - low <= 0.15 * max(spread, _MIN_CONTRAST) or min(ink.shape) < 16:
        if ink.dtype == np.uint8 and level.is_integer():  # max(ink - level, 0) is exact in uint8 too
            return np.maximum(ink, int(level)) - int(level) if level else ink
        flat = ink.astype(np.float32) - level if ink.dtype == np.uint8 else ink - level
        return np.maximum(flat, 0, out=flat)
    # Uneven background: a grey opening (wider than any stroke) at low resolution keeps the lighting only.
    ink = ink.astype(np.float32, copy=False)
    small_side = 48
    scale = small_side / max(ink.shape)
    small = _resized(ink, (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))),
                     Image.Resampling.BOX)
    lighting = ndimage.grey_opening(small, size=(max(3, small.shape[0] // 3), max(3, small.shape[1] // 3)))
    lighting = ndimage.uniform_filter(lighting, size=5, mode="nearest")
    lighting = _resized(lighting, (ink.shape[1], ink.shape[0]), Image.Resampling.BILINEAR)
    return np.maximum(ink - lighting, 0)


def _ink_mask(ink: np.ndarray, name: str, stats: _InkStats | None = None):
    """The digit's pixels (noise specks and edge clutter removed), their box (top, bottom, left, right), ink level.

    ``stats``: what :func:`_ink_image` learnt, when ``ink`` is the image it returned.
    """
    sample = _sample(ink)
    counts = stats.counts if stats is not None and stats.counts is not None else _histogram(sample)
    level = stats.otsu_level if stats is not None and stats.otsu_level is not None else _otsu(counts)[0]
    medians = _class_medians(sample, counts, level)
    if medians is None or medians[0] - medians[1] < _MIN_CONTRAST:
        raise NoDigitFound(f"{name}: no digit found (the image is blank: almost no contrast)")
    if _neighbour_correlation(ink) < _MIN_NEIGHBOUR_CORRELATION:
        raise NoDigitFound(f"{name}: no digit found (the image is noise: neighbouring pixels are unrelated)")
    mask = ink > _cut(ink, level)
    labels, count, (row0, col0), touches_edge = _components(mask)
    if count == 0:
        raise NoDigitFound(f"{name}: no digit found (only isolated noise pixels)")
    keep, ink_pixels = _kept_labels(np.bincount(labels.ravel(), minlength=count + 1)[1:].tolist(),
                                    touches_edge.tolist())
    if ink_pixels < _MIN_INK_PIXELS:
        raise NoDigitFound(f"{name}: no digit found (only a speck of ink)")
    if ink_pixels > _MAX_INK_FRACTION * mask.size:
        raise NoDigitFound(f"{name}: no digit found (ink and background cannot be told apart)")
    mask, (top, bottom, left, right) = _kept_pixels(labels, keep)
    top, bottom, left, right = top + row0, bottom + row0, left + col0, right + col0
    (ink_level,), _ = _order_stats(ink[top:bottom, left:right][mask], (90,), one_q=True)
    return mask, (top, bottom, left, right), ink_level


def _kept_labels(areas: list[int], touches_edge: list[bool]) -> tuple[list[bool], int]:
    """Which components (by area, in pixels, and whether they touch the image's edge) are the digit, and its
    pixel count: specks are dropped, and edge clutter when a component inside is large enough to be the digit.
    (Python lists: a digit has a few components, and NumPy's calls cost more than the work on them.)"""
    floor = max(2, 0.03 * max(areas))
    keep = [area >= floor for area in areas]
    inner = [kept and not edge for kept, edge in zip(keep, touches_edge)]
    if any(inner) and max(a for a, i in zip(areas, inner) if i) >= 0.25 * max(a for a, k in zip(areas, keep) if k):
        keep = inner  # clutter along the edges (table, shadow, paper edge) is not the digit
    return keep, sum(area for area, kept in zip(areas, keep) if kept)


def _kept_pixels(labels: np.ndarray, keep: list[bool]):
    """The pixels of the kept labels in their box, and the box (top, bottom, left, right) in ``labels``."""
    if all(keep):  # the labels' box is the box of all the ink
        return labels > 0, (0, labels.shape[0], 0, labels.shape[1])
    kept = np.array([False, *keep])[labels]
    top, bottom, left, right = _bounds(kept)
    return kept[top:bottom, left:right], (top, bottom, left, right)


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (top, bottom, left, right) of the True pixels of a 2-D ``mask``; None when it has none."""
    rows = np.flatnonzero(np.logical_or.reduce(mask, axis=1))  # mask.any(axis=1) without its Python wrapper
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.logical_or.reduce(mask, axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _components(mask: np.ndarray):
    """``ndimage.label`` of ``mask`` (8-connected) on the box around its pixels only: the labels, their
    count, the box's (row, column) offset in ``mask``, and for each label whether it touches ``mask``'s edge.

    Labels number the components in raster order, which the box keeps, so they are the labels of the whole
    mask; labelling, counting and boxing then skip the empty margin, most of a drawing canvas.
    """
    box = _bounds(mask)
    if box is None:
        return np.zeros((0, 0), dtype=np.int32), 0, (0, 0), np.zeros(0, dtype=bool)
    top, bottom, left, right = box
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
    mean = _mean(centre)
    deviation = centre - mean
    variance = _mean(deviation * deviation)  # centre.var(), computed the same way
    if variance <= 0:
        return 1.0
    return float(_mean(deviation * (right - mean)) + _mean(deviation * (below - mean))) / (2 * variance)


def _mean(values: np.ndarray):
    """``values.mean()`` of a float64 array, without NumPy's Python wrapper: the same pairwise sum over all
    the values, divided by their count."""
    return np.add.reduce(values, axis=None) / values.size


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the boundary length."""
    area = np.count_nonzero(mask)
    boundary = area - np.count_nonzero(_cross_filter(mask, np.logical_and))  # the erosion lies inside the mask
    return 2.0 * area / max(boundary, 1)


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
    ink, stats = _ink_image(colour, alpha)
    flat = _flatten_background(ink, stats)
    mask, box, ink_level = _ink_mask(flat, name, stats if flat is ink else None)
    window, mask = _digit_window(flat, mask, box)
    # Soft edges: keep the grey levels next to the ink mask, zero everything farther away (noise).
    digit = np.clip(window / max(ink_level, 1e-6), 0, 1) * _cross_filter(mask, np.logical_or)
    if normalize_stroke:
        digit = _thicken_strokes(digit, mask)
    digit = digit.astype(np.float32, copy=False)
    top, bottom, left, right = _bounds(digit > 0.05)  # the ink's own box, without faint halo
    return _place_in_mnist(digit[top:bottom, left:right], name)


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
        window = _resized(window, size, Image.Resampling.BOX)
        mask = _resized(mask, size, Image.Resampling.BOX) > 0.25
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
    box = _resized(digit, (new_w, new_h), Image.Resampling.BILINEAR)
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
    """``scipy.ndimage.center_of_mass`` of a 2-D array at most 28 px a side, computed the same way without its
    argument handling."""
    total = np.add.reduce(values, axis=None)  # values.sum(), without its Python wrapper
    rows, cols = _POSITIONS[:values.shape[0], None], _POSITIONS[None, :values.shape[1]]
    return np.add.reduce(values * rows, axis=None) / total, np.add.reduce(values * cols, axis=None) / total


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
        return _resized(plane, size, Image.Resampling.BOX)

    if colour.ndim == 3:
        colour = np.stack([shrink(colour[..., c]) for c in range(colour.shape[2])], axis=-1)
    else:
        colour = shrink(colour)
    return colour, (shrink(alpha) if alpha is not None else None)


def _resized(plane: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """A 2-D ``plane`` as float32, resized by Pillow to ``size`` (width, height): what
    ``np.asarray(Image.fromarray(plane, "F").resize(size, resample))`` gives, with fewer conversions."""
    if size == (plane.shape[1], plane.shape[0]):  # Pillow copies an image "resized" to its own size
        return np.array(plane, dtype=np.float32)
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    resized = Image.frombytes("F", (plane.shape[1], plane.shape[0]), plane).resize(size, resample)
    return np.frombuffer(resized.tobytes(), dtype=np.float32).reshape(size[1], size[0])
