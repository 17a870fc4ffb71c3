"""``sightsound predict`` and ``sightsound image resize``: images from the shell.

``sightsound predict MODEL IMAGE...`` prints one line per image::

    digits/7.png<TAB>7<TAB>0.9812<TAB>1:0.0121<TAB>9:0.0032
    blank.png<TAB>no digit found

Exit status: 0 when every image got a prediction, 3 when some image had no
digit, 2 when some input could not be read (or the model could not be loaded).

``sightsound image resize IMAGE --size 100x100 -o out.png`` (height x width, the
TF.js order) draws bilinear and nearest-neighbour resizes side by side, with a
zoomed crop, and prints their mean absolute difference (the chapter's exercise 4).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator

import numpy as np

from .common import add_device

EXIT_NO_DIGIT = 3
EXIT_UNREADABLE = 2
PREDICT_CHUNK = 256  # images prepared and predicted together; output streams chunk by chunk


def register(sub) -> None:
    predict = sub.add_parser(
        "predict", help="recognise the digit in each image with a saved model",
        description="Prepare each image the way MNIST was built (grayscale, invert dark-on-light, denoise, crop, "
                    "scale to 20 px, centre by mass in 28x28) and print the top predictions: "
                    "PATH<TAB>LABEL<TAB>PROB<TAB>LABEL:PROB... One line per image; '-' reads an image from stdin. "
                    "Exit status 3 when an image has no digit, 2 when an input cannot be read.")
    predict.add_argument("model", metavar="MODEL", help="a model directory, model.json path or URL")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...); '-' for stdin")
    predict.add_argument("--top-k", type=int, default=3, metavar="K", help="how many labels to print (default 3)")
    predict.add_argument("--json", action="store_true",
                         help='one JSON object per line: {"path": ..., "top": [[label, prob], ...]}, '
                              'plus "error" (and an empty "top") for images without a prediction')
    predict.add_argument("--raw", action="store_true",
                         help="skip digit preparation: fromPixels -> resizeBilinear -> /255, as the browser code")
    add_device(predict)
    predict.set_defaults(func=run_predict)

    image = sub.add_parser("image", help="image tools (resize comparison)")
    commands = image.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    resize = commands.add_parser(
        "resize", help="bilinear vs nearest-neighbour resize, side by side",
        description="Resize IMAGE with TF.js's resizeBilinear and resizeNearestNeighbor, draw both side by side "
                    "with a zoomed crop, and print their mean absolute difference.")
    resize.add_argument("image", metavar="IMAGE", help="an image file")
    resize.add_argument("--size", required=True, type=parse_size, metavar="HxW",
                        help="new height x width, TF.js order (e.g. 100x100)")
    resize.add_argument("-o", "--out", required=True, metavar="PNG", help="where to write the figure")
    resize.add_argument("--align-corners", action="store_true", help="TF.js alignCorners")
    resize.add_argument("--half-pixel-centers", action="store_true", help="TF.js halfPixelCenters")
    resize.set_defaults(func=run_resize)


def parse_size(text: str) -> tuple[int, int]:
    """``"100x80"`` -> ``(100, 80)`` (height, width).

    >>> parse_size("28x28")
    (28, 28)
    """
    parts = text.lower().replace("×", "x").split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 100x100, got {text!r}") from None
    if not (1 <= height <= 10_000 and 1 <= width <= 10_000):
        raise argparse.ArgumentTypeError(f"height and width must be 1..10000, got {text!r}")
    return height, width


# -- predict -------------------------------------------------------------------

def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _labels(model, num_classes: int) -> list:
    metadata = getattr(model, "user_defined_metadata", None) or {}
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if isinstance(labels, list) and len(labels) == num_classes and all(isinstance(x, (str, int)) for x in labels):
        return labels
    return list(range(num_classes))


def format_line(path: str, top: list[tuple[object, float]]) -> str:
    """``PATH<TAB>LABEL<TAB>PROB`` then ``LABEL:PROB`` for the runners-up.

    >>> format_line("7.png", [(7, 0.98123), (1, 0.0121)])
    '7.png\\t7\\t0.9812\\t1:0.0121'
    """
    (label, prob), rest = top[0], top[1:]
    return "\t".join([path, str(label), f"{prob:.4f}"] + [f"{lab}:{p:.4f}" for lab, p in rest])


def run_predict(args: argparse.Namespace) -> int:
    from ..tfjs import load_layers_model
    from ..errors import ImageError, SightsoundError
    from ..image import MAX_IMAGE_BYTES, NoDigitFound, model_input, top_k

    if args.images.count("-") > 1:
        raise ImageError("'-' (stdin) can be given only once")
    try:
        model = load_layers_model(args.model, device=args.device)
    except ValueError as err:  # e.g. --device cuda without a GPU
        if isinstance(err, SightsoundError):
            raise
        raise SightsoundError(str(err)) from None
    input_shape = tuple(model.input_shape)
    if len(input_shape) != 3:
        raise ImageError(f"{args.model}: the model takes input {list(input_shape)}, not images [height, width, channels]")
    num_classes = int(np.prod(model.output_shape))
    if not 1 <= args.top_k <= num_classes:
        raise ImageError(f"--top-k must be between 1 and {num_classes} (the model's classes), got {args.top_k}")
    labels = _labels(model, num_classes)
    unreadable = no_digit = False

    def emit(path: str, top=None, error: str | None = None) -> None:
        if args.json:
            record = {"path": path, "top": [[labels[i], round(p, 6)] for i, p in top]} if top is not None \
                else {"path": path, "top": [], "error": error}
            print(json.dumps(record), flush=False)
        elif top is not None:
            print(format_line(path, [(labels[i], p) for i, p in top]))
        else:
            print(f"{path}\t{error}")

    for chunk in _chunks(args.images, PREDICT_CHUNK):
        inputs: list[np.ndarray | None] = []
        failures: dict[int, str] = {}
        for i, path in enumerate(chunk):
            try:
                source = sys.stdin.buffer.read(MAX_IMAGE_BYTES + 1) if path == "-" else path
                inputs.append(model_input(source, input_shape, raw=args.raw, name="<stdin>" if path == "-" else None))
            except NoDigitFound:
                inputs.append(None)
                failures[i] = "no digit found"
                no_digit = True
            except ImageError as err:
                inputs.append(None)
                failures[i] = str(err)
                print(f"sightsound: error: {err}", file=sys.stderr)
                unreadable = True
        ready = [x for x in inputs if x is not None]
        probabilities = iter(model.predict(np.stack(ready)) if ready else [])
        for i, path in enumerate(chunk):
            if i in failures:
                if args.json or failures[i] == "no digit found":
                    emit(path, error=failures[i])
            else:
                emit(path, top=top_k(next(probabilities), args.top_k))
        sys.stdout.flush()
    return EXIT_UNREADABLE if unreadable else EXIT_NO_DIGIT if no_digit else 0


# -- image resize ----------------------------------------------------------------

def run_resize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..image import from_pixels, resize_bilinear, resize_nearest_neighbor

    height, width = args.size
    pixels = from_pixels(args.image, num_channels=3)
    flags = dict(align_corners=args.align_corners, half_pixel_centers=args.half_pixel_centers)
    if flags["align_corners"] and flags["half_pixel_centers"]:
        from ..errors import ImageError

        raise ImageError("--align-corners and --half-pixel-centers cannot be combined (TF.js refuses it too)")
    bilinear = resize_bilinear(pixels, (height, width), **flags)
    nearest = resize_nearest_neighbor(pixels, (height, width), **flags)
    difference = float(np.abs(bilinear - nearest).mean())
    path = write_resize_figure(pixels, bilinear, nearest, difference, Path(args.out), args.image, flags)
    flag_text = ", ".join(k for k, v in flags.items() if v) or "default flags"
    print(f"{args.image}: {pixels.shape[0]}x{pixels.shape[1]} -> {height}x{width} (height x width), {flag_text}")
    print(f"bilinear vs nearest neighbour: mean absolute difference {difference:.3f} (pixel values 0-255)")
    print(f"wrote {path}")
    return 0


def _crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """A centred crop a quarter of each side (at least 8 px): (top, left, crop height, crop width)."""
    crop_h, crop_w = min(height, max(8, height // 4)), min(width, max(8, width // 4))
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def write_resize_figure(original: np.ndarray, bilinear: np.ndarray, nearest: np.ndarray, difference: float,
                        out, title: str, flags: dict):
    """Original, bilinear and nearest side by side, with the same zoomed crop of each below (Agg backend)."""
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from ..fileio import atomic_write

    out = Path(out)
    height, width = bilinear.shape[:2]
    top, left, crop_h, crop_w = _crop_box(height, width)
    scale_y, scale_x = original.shape[0] / height, original.shape[1] / width
    orig_box = (int(top * scale_y), int(left * scale_x),
                max(1, round(crop_h * scale_y)), max(1, round(crop_w * scale_x)))
    fig = Figure(figsize=(12, 8.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    panels = [("original", original, orig_box), ("resizeBilinear", bilinear, (top, left, crop_h, crop_w)),
              ("resizeNearestNeighbor", nearest, (top, left, crop_h, crop_w))]
    for column, (name, picture, (y, x, h, w)) in enumerate(panels):
        shown = np.clip(picture, 0, 255).astype(np.float32) / 255
        axes[0, column].imshow(shown, interpolation="nearest")
        axes[0, column].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.5))
        axes[0, column].set_title(f"{name} {picture.shape[0]}x{picture.shape[1]}")
        axes[1, column].imshow(shown[y:y + h, x:x + w], interpolation="nearest")
        axes[1, column].set_title(f"zoom: rows {y}-{y + h - 1}, cols {x}-{x + w - 1}")
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    flag_text = ", ".join(k for k, v in flags.items() if v) or "alignCorners=false, halfPixelCenters=false"
    fig.suptitle(f"{title}: bilinear vs nearest ({flag_text}); mean absolute difference {difference:.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as handle:
        fig.savefig(handle, dpi=100, format="png")
    return out
