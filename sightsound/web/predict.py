"""Image uploads -> top-k predictions, the pipeline of ``sightsound predict``.

An upload's content type and byte size are checked here; the bytes are then
decoded by ``sightsound.image.read_image``, the one guarded decoder the command
line uses too: format (the one the content type names), pixel count (read from
the header, so a decompression bomb is refused without being expanded), EXIF
orientation, first frame. Then, as on the command line, the image goes through
``sightsound.image.prepare_digit`` (grayscale, invert, crop, scale to 20 px,
centre by mass in 28x28) unless ``raw`` asks for a plain resize.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from ..errors import ImageError
from .errors import WebError

ALLOWED_CONTENT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP",
                         "image/bmp": "BMP"}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Pixels an upload may have: below the library's cap, since the server decodes several uploads at once
#: (16 million pixels are 256 MB as RGBA arrays).
MAX_UPLOAD_PIXELS = 16_000_000
MAX_TOP_K = 10
#: The readable formats as people name them, for messages: "PNG, JPEG, GIF, WebP, BMP".
READABLE_FORMATS = ", ".join({"WEBP": "WebP"}.get(name, name) for name in ALLOWED_CONTENT_TYPES.values())


class UploadRejected(WebError):
    """An upload (or a request about one) refused; ``status`` is the HTTP status to answer with."""


class NotAnImage(UploadRejected):
    """The upload is not an image in one of :data:`ALLOWED_CONTENT_TYPES`; the answer lists them."""

    status = 415
    code = "not_an_image"
    details = {"formats": READABLE_FORMATS}


class NoDigit(WebError):
    """The image holds nothing that looks like a digit."""

    status = 422
    code = "no_digit"
    details = {"no_digit": True}  # the field clients read before codes existed


@dataclass
class Prediction:
    """Top-k labels with probabilities, all probabilities, and the 28x28 input the model saw."""

    top: list[tuple[object, float]]
    probabilities: list[float]
    model_input: np.ndarray  # float32 [28, 28, 1] in [0, 1]

    def to_json(self) -> dict:
        pixels = np.clip(self.model_input[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return {"top": [[label, prob] for label, prob in self.top], "probabilities": self.probabilities,
                "input": {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                          "pixels": base64.b64encode(pixels.tobytes()).decode("ascii")}}


def check_content_type(content_type: str | None) -> str:
    """The Pillow format name expected for ``content_type``, or :class:`UploadRejected` (415)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in ALLOWED_CONTENT_TYPES:
        raise NotAnImage(f"unsupported content type {content_type!r}: send one of "
                         f"{', '.join(sorted(ALLOWED_CONTENT_TYPES))}")
    return ALLOWED_CONTENT_TYPES[kind]


def decode_image(data: bytes, expected_format: str | None = None):
    """Decode an upload with ``sightsound.image.read_pixels``; its refusals become :class:`UploadRejected`.

    413 for too many pixels (code ``image_too_large``); :class:`NotAnImage` (415) when the data is not
    the format the content type names, or no image at all (400).
    """
    from .. import image

    try:
        return image.read_pixels(data, MAX_UPLOAD_PIXELS, name="the upload",
                                formats=(expected_format,) if expected_format else None)
    except image.ImageTooLarge as error:
        raise UploadRejected(str(error), status=413, code="image_too_large") from error
    except image.ImageFormatRefused as error:
        raise NotAnImage(f"the content type says {expected_format} but the data is {error.found}") from error
    except ImageError as error:
        raise NotAnImage(str(error), status=400) from error


def model_input(image, raw: bool = False) -> np.ndarray:
    """float32 ``[28, 28, 1]`` in [0, 1] via ``sightsound.image.model_input``, as ``sightsound predict`` does.

    ``prepare_digit`` (MNIST-like: crop, 20 px, centre of mass) unless ``raw``,
    which is the chapter's ``fromPixels -> resizeBilinear -> div(255)``.
    """
    from .. import image as image_mod

    try:
        return image_mod.model_input(image, (28, 28, 1), raw=raw)
    except image_mod.NoDigitFound as error:
        raise NoDigit(str(error) or "no digit found in the image") from error
    except ImageError as error:
        raise UploadRejected(str(error)) from error


def top_k(probabilities: np.ndarray, labels: list, k: int) -> list[tuple[object, float]]:
    """The ``k`` most probable ``(label, probability)`` pairs, best first (``sightsound.image.top_k``, named)."""
    from .. import image

    return [(labels[i] if i < len(labels) else i, round(p, 6)) for i, p in image.top_k(probabilities, k)]


def predict_image(model, image, labels: list, k: int = 3, raw: bool = False) -> Prediction:
    """Run ``model`` on one decoded image; :class:`NoDigit` when preparation finds nothing."""
    if not 1 <= k <= MAX_TOP_K:
        raise UploadRejected(f"top_k must be between 1 and {MAX_TOP_K}, got {k}")
    shape = tuple(getattr(model, "input_shape", (28, 28, 1)))
    if shape != (28, 28, 1):
        raise UploadRejected(f"this model takes input {list(shape)}, not 28x28 digit images", code="not_mnist")
    x = model_input(image, raw=raw)
    probabilities = np.asarray(model.predict(x[None]), dtype=np.float64)[0]
    return Prediction(top=top_k(probabilities, labels, k),
                      probabilities=[round(float(p), 6) for p in probabilities], model_input=x)
