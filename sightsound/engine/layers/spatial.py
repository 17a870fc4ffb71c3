"""Image-size changes: :class:`ZeroPadding2D`, :class:`Cropping2D` and :class:`UpSampling2D`.

Each works on ``[h, w, c]`` images (NCHW inside the engine) and has no weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, base_kwargs, check_data_format, non_negative_pairs, pair, shape_text


class _ImageLayer(Layer):
    """A weightless layer over ``[h, w, c]`` images, channels_last as in TF.js."""

    def check_input(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")


class ZeroPadding2D(_ImageLayer):
    """Zeros around an image: ``padding`` is ``n``, ``[rows, cols]`` or ``[[top, bottom], [left, right]]``
    (``tf.layers.zeroPadding2d``; default 1 all round)."""

    class_name = "ZeroPadding2D"

    def __init__(self, padding=1, data_format="channels_last", **base):
        super().__init__(**base)
        self.padding = non_negative_pairs(1 if padding is None else padding, f"{self.name}: padding")
        check_data_format(data_format, self.name)

    def own_config(self):
        return {"padding": self.padding, "data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        return cls(padding=c.get("padding"), data_format=c.get("data_format"), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        self.check_input(input_shape)
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        (top, bottom), (left, right) = self.padding
        return _Pad((left, right, top, bottom))


class _Pad(nn.Module):
    def __init__(self, pads):
        super().__init__()
        self.pads = pads

    def forward(self, x):
        return F.pad(x, self.pads)


class Cropping2D(_ImageLayer):
    """Cuts rows and columns off an image's edges: ``cropping`` is ``n``, ``[rows, cols]`` or
    ``[[top, bottom], [left, right]]`` (``tf.layers.cropping2D``, where it is required)."""

    class_name = "Cropping2D"

    def __init__(self, cropping, data_format="channels_last", **base):
        super().__init__(**base)
        self.cropping = non_negative_pairs(cropping, f"{self.name}: cropping")
        check_data_format(data_format, self.name)

    def own_config(self):
        return {"cropping": self.cropping, "data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        return cls(cropping=c["cropping"], data_format=c.get("data_format"), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        self.check_input(input_shape)
        (top, bottom), (left, right) = self.cropping
        h, w = input_shape[0] - top - bottom, input_shape[1] - left - right
        if h <= 0 or w <= 0:
            raise ShapeError(f"{self.name}: cropping {self.cropping} leaves nothing of input {shape_text(input_shape)}")
        return (h, w, input_shape[2])

    def build_module(self, input_shape):
        h, w, _ = self.compute_output_shape(input_shape)
        return _Crop(self.cropping[0][0], h, self.cropping[1][0], w)


class _Crop(nn.Module):
    def __init__(self, top: int, height: int, left: int, width: int):
        super().__init__()
        self.top, self.height, self.left, self.width = top, height, left, width

    def forward(self, x):
        return x[:, :, self.top:self.top + self.height, self.left:self.left + self.width]


class UpSampling2D(_ImageLayer):
    """Enlarges an image ``size`` times (``tf.layers.upSampling2d``): ``nearest`` repeats pixels; ``bilinear``
    interpolates as TF.js's ``resizeBilinear`` without half-pixel centres (which Keras's layer uses, so a Keras
    model with bilinear up-sampling computes here as it does in TF.js, not as in Keras)."""

    class_name = "UpSampling2D"

    def __init__(self, size=(2, 2), data_format="channels_last", interpolation="nearest", **base):
        super().__init__(**base)
        self.size = pair(size, f"{self.name}: size")
        check_data_format(data_format, self.name)
        if interpolation not in ("nearest", "bilinear"):
            raise ModelFormatError(f"{self.name}: interpolation must be 'nearest' or 'bilinear', "
                                   f"got {interpolation!r:.80}")
        self.interpolation = interpolation

    def own_config(self):
        return {"size": self.size, "data_format": "channels_last", "interpolation": self.interpolation}

    @classmethod
    def from_config(cls, c):
        return cls(size=c.get("size", (2, 2)), data_format=c.get("data_format"),
                   interpolation=c.get("interpolation", "nearest"), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        self.check_input(input_shape)
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])

    def build_module(self, input_shape):
        new_h, new_w, _ = self.compute_output_shape(input_shape)
        # The resize rules live with the image ops (TF.js's tf.image resizes); imported here, at build time,
        # so that importing the engine does not load the image stack (PIL, SciPy).
        from ...image.ops import bilinear_taps, nearest_indices

        old_h, old_w = input_shape[:2]
        if self.interpolation == "nearest":
            return _Resize([nearest_indices(old_h, new_h)], [nearest_indices(old_w, new_w)])
        return _Resize(bilinear_taps(old_h, new_h), bilinear_taps(old_w, new_w))


class _Resize(nn.Module):
    """Gathers source rows and columns; with (low, high, weight) taps, blends them as TF.js's resizeBilinear:
    along the columns first, then the rows."""

    def __init__(self, rows, cols):
        super().__init__()
        for name, taps in (("rows", rows), ("cols", cols)):
            for i, tap in enumerate(taps):
                dtype = torch.long if i < 2 else torch.float32
                self.register_buffer(f"{name}{i}", torch.as_tensor(tap, dtype=dtype), persistent=False)
        self.bilinear = len(rows) == 3

    def forward(self, x):
        if not self.bilinear:
            return x.index_select(2, self.rows0).index_select(3, self.cols0)
        col_weight = self.cols2.to(x.dtype)
        row_weight = self.rows2.to(x.dtype)[:, None]

        def blend_columns(rows):
            left, right = rows.index_select(3, self.cols0), rows.index_select(3, self.cols1)
            return left + (right - left) * col_weight

        upper = blend_columns(x.index_select(2, self.rows0))
        lower = blend_columns(x.index_select(2, self.rows1))
        return upper + (lower - upper) * row_weight
