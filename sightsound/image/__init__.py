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

The package, one role per module:

- :mod:`~sightsound.image.decode`: the one guarded decoder of untrusted bytes and files
  (format allow-list, pixel cap, EXIF orientation, first frame, clear errors).
- :mod:`~sightsound.image.pixels`: any source (decoded image, array, video frame, canvas)
  as colour and alpha planes.
- :mod:`~sightsound.image.ops`: the TF.js ops (``fromPixels``, ``tensor4d``, resizes, ...).
- :mod:`~sightsound.image.digits`: :func:`prepare_digit`, MNIST-style digit preparation.
- :mod:`~sightsound.image.model_io`: :func:`model_input` and :func:`top_k`.
"""

from __future__ import annotations

from .decode import (MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, SUPPORTED_FORMATS, DecodedPixels, ImageFormatRefused,
                     ImageSource, ImageTooLarge, describe_source, read_image, read_pixels)
from .digits import MNIST_BOX, MNIST_CENTRE, MNIST_SIZE, NoDigitFound, prepare_digit
from .model_io import model_input, top_k
from .ops import (expand_dims, from_pixels, nchw_to_nhwc, nhwc_to_nchw, normalize, resize_bilinear,
                  resize_nearest_neighbor, to_tensor4d)

__all__ = [
    "MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES", "SUPPORTED_FORMATS", "NoDigitFound", "read_image", "read_pixels",
    "DecodedPixels", "from_pixels",
    "to_tensor4d", "expand_dims", "nhwc_to_nchw", "nchw_to_nhwc", "normalize", "resize_bilinear",
    "resize_nearest_neighbor", "prepare_digit", "model_input", "top_k", "describe_source",
    "ImageTooLarge", "ImageFormatRefused", "ImageSource", "MNIST_SIZE", "MNIST_BOX", "MNIST_CENTRE",
]
