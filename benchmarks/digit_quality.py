"""Digit quality: accuracy of an MNIST-trained convnet on digits that are not from MNIST,
with and without ``sightsound.image.prepare_digit``.

The test set is made here, deterministically (``--seed``):

* ``canvas``     - strokes drawn white on black in a 280x280 canvas, as in the chapter's drawing demo;
* ``strokes``    - strokes drawn dark on light paper, with varied thickness, slant, size, position;
* ``thin-small`` - thin strokes, small and off-centre, on large light canvases;
* ``fonts``      - digits typed in the DejaVu / Liberation fonts (regular, bold, italic, mono, serif);
* ``photo-like`` - coloured ink on coloured paper, uneven lighting, blur, sensor noise, JPEG;
* ``transparent``- RGBA PNGs whose ink is only in the alpha channel (a canvas exported with no background).

Listing 4.1 is trained on real MNIST (``$SIGHTSOUND_DATA`` or ``--data-dir``) for ``--epochs``
epochs (or loaded with ``--model DIR``); then each image goes through ``predict --raw``'s path
(``fromPixels(img, 1)`` -> ``resizeBilinear(28, 28)`` -> ``/255``, the browser code) and through
``prepare_digit``, and the accuracies are printed per category. The MNIST test set is scored both
ways too, to show that preparation does not hurt MNIST-like input.

    SIGHTSOUND_DATA=/path/to/datasets nice -n 10 python benchmarks/digit_quality.py --epochs 2
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sightsound import image as ssimage  # noqa: E402

CATEGORIES = ("canvas", "strokes", "thin-small", "fonts", "photo-like", "transparent")
SUPERSAMPLE = 4  # strokes are drawn this many times larger, then shrunk: anti-aliased edges


# -- digit skeletons: polylines in a unit box (x right, y down) ----------------------------------

def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, steps: int = 24):
    angles = np.radians(np.linspace(start_deg, end_deg, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _curve(p0, p1, p2, steps: int = 16):
    """A quadratic Bezier curve from p0 to p2 pulled towards p1."""
    t = np.linspace(0, 1, steps)[:, None]
    points = (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * np.array(p1) + t ** 2 * np.array(p2)
    return [tuple(p) for p in points]


def skeleton(digit: int, variant: int) -> list[list[tuple[float, float]]]:
    """Strokes of ``digit`` (two handwriting styles per digit, picked by ``variant``)."""
    style = variant % 2
    if digit == 0:
        return [_arc(0.5, 0.5, 0.36, 0.48, -90, 275, 40)]
    if digit == 1:
        return [[(0.5, 0.0), (0.5, 1.0)]] if style == 0 else [[(0.25, 0.22), (0.55, 0.0), (0.55, 1.0)]]
    if digit == 2:
        top = _arc(0.5, 0.3, 0.33, 0.28, 190, 380, 24)
        return [top + [(0.12, 1.0), (0.9, 1.0)]] if style == 0 else \
            [top + _curve(top[-1], (0.35, 0.75), (0.1, 0.98)) + _curve((0.1, 0.98), (0.5, 0.85), (0.92, 1.0))]
    if digit == 3:
        return [_arc(0.48, 0.26, 0.3, 0.25, -160, 90, 24) + _arc(0.48, 0.74, 0.33, 0.26, -90, 160, 24)]
    if digit == 4:
        return [[(0.68, 1.0), (0.68, 0.0), (0.08, 0.68), (0.92, 0.68)]] if style == 0 else \
            [[(0.3, 0.0), (0.15, 0.6), (0.9, 0.6)], [(0.7, 0.2), (0.68, 1.0)]]
    if digit == 5:
        return [[(0.82, 0.0), (0.25, 0.0), (0.2, 0.45)] + _arc(0.48, 0.7, 0.33, 0.3, -130, 155, 24)]
    if digit == 6:
        return [_curve((0.78, 0.02), (0.2, 0.1), (0.2, 0.7)) + _arc(0.5, 0.7, 0.3, 0.29, 180, 540, 36)]
    if digit == 7:
        return [[(0.08, 0.0), (0.92, 0.0), (0.38, 1.0)]] if style == 0 else \
            [[(0.08, 0.05), (0.92, 0.0), (0.45, 1.0)], [(0.3, 0.52), (0.8, 0.5)]]
    if digit == 8:
        return [_arc(0.5, 0.25, 0.25, 0.24, 90, 450, 32), _arc(0.5, 0.73, 0.32, 0.27, -90, 270, 36)]
    if digit == 9:
        return [_arc(0.5, 0.3, 0.3, 0.28, 0, 360, 32) + [(0.8, 0.3), (0.7 if style == 0 else 0.8, 1.0)]]
    raise ValueError(digit)


def draw_strokes(digit: int, rng: np.random.Generator, canvas: int, height_frac: float, stroke_frac: float,
                 ink: float = 255.0, paper: float = 0.0, centre=(0.5, 0.5)) -> np.ndarray:
    """A float32 ``[canvas, canvas]`` grey image of ``digit`` with random slant, rotation, aspect."""
    size = canvas * SUPERSAMPLE
    picture = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(picture)
    digit_h = height_frac * size
    aspect = rng.uniform(0.5, 0.8) if digit != 1 else rng.uniform(0.3, 0.6)
    slant = rng.uniform(-0.3, 0.3)
    angle = math.radians(rng.uniform(-10, 10))
    width = max(SUPERSAMPLE, stroke_frac * digit_h)
    cx, cy = centre[0] * size, centre[1] * size
    for stroke in skeleton(digit, int(rng.integers(0, 2))):
        points = []
        for x, y in stroke:
            u, v = (x - 0.5) * aspect * digit_h, (y - 0.5) * digit_h
            u -= slant * v
            points.append((cx + u * math.cos(angle) - v * math.sin(angle),
                           cy + u * math.sin(angle) + v * math.cos(angle)))
        pen.line(points, fill=255, width=int(width), joint="curve")
        for px, py in (points[0], points[-1]):  # round pen tips
            pen.ellipse([px - width / 2, py - width / 2, px + width / 2, py + width / 2], fill=255)
    coverage = np.asarray(picture.resize((canvas, canvas), Image.Resampling.BOX), dtype=np.float32) / 255
    return paper + (ink - paper) * coverage


def _fonts() -> list[Path]:
    """TrueType fonts available here: the system DejaVu/Liberation fonts, else matplotlib's DejaVu."""
    found = sorted(Path("/usr/share/fonts/truetype").glob("*/*.ttf"))
    found = [p for p in found if p.name.startswith(("DejaVu", "Liberation"))]
    if not found:
        import matplotlib

        found = sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("DejaVu*.ttf"))
    return [p for p in found if "ExtraLight" not in p.name]


def draw_font_digit(digit: int, font_path: Path, rng: np.random.Generator, canvas: int) -> np.ndarray:
    """``digit`` typed in ``font_path``, dark on light, at a random size and position (float32 grey)."""
    size_px = int(canvas * rng.uniform(0.35, 0.8))
    font = ImageFont.truetype(str(font_path), size_px)
    picture = Image.new("L", (canvas, canvas), 235)
    pen = ImageDraw.Draw(picture)
    left, top, right, bottom = pen.textbbox((0, 0), str(digit), font=font)
    room_x, room_y = max(1, canvas - (right - left)), max(1, canvas - (bottom - top))
    x, y = rng.uniform(0.1, 0.9) * room_x - left, rng.uniform(0.1, 0.9) * room_y - top
    pen.text((x, y), str(digit), fill=int(rng.integers(0, 60)), font=font)
    return np.asarray(picture, dtype=np.float32)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(array: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def make_example(category: str, digit: int, rng: np.random.Generator) -> bytes:
    """One encoded image (PNG or JPEG bytes) of ``digit`` in the style of ``category``."""
    if category == "canvas":  # the chapter's drawing canvas: thick white strokes on black, 280x280
        grey = draw_strokes(digit, rng, 280, rng.uniform(0.55, 0.85), rng.uniform(0.07, 0.14),
                            centre=(rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)))
        return _png(np.repeat(grey[..., None], 3, axis=2))
    if category == "strokes":  # pen on paper, scanned
        canvas = int(rng.integers(48, 220))
        height = rng.uniform(0.4, 0.85)
        margin = height / 2 + 0.02
        grey = draw_strokes(digit, rng, canvas, height, rng.uniform(0.05, 0.2), ink=rng.uniform(0, 70),
                            paper=rng.uniform(200, 255),
                            centre=(rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin)))
        return _png(grey)
    if category == "thin-small":  # a small, thin digit somewhere on a big sheet
        canvas = int(rng.integers(160, 360))
        height = rng.uniform(0.15, 0.35)
        margin = height / 2 + 0.03
        grey = draw_strokes(digit, rng, canvas, height, rng.uniform(0.02, 0.05), ink=rng.uniform(0, 60),
                            paper=rng.uniform(210, 255),
                            centre=(rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin)))
        return _png(grey)
    if category == "fonts":
        fonts = _fonts()
        return _png(draw_font_digit(digit, fonts[int(rng.integers(0, len(fonts)))], rng, int(rng.integers(40, 200))))
    if category == "photo-like":
        canvas = int(rng.integers(96, 320))
        height = rng.uniform(0.4, 0.75)
        margin = height / 2 + 0.05
        coverage = draw_strokes(digit, rng, canvas, height, rng.uniform(0.06, 0.16), ink=1.0, paper=0.0,
                                centre=(rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin)))
        paper = rng.uniform(150, 255, size=3)
        ink = rng.uniform(0, 120, size=3) * rng.uniform(0.3, 1.0, size=3)
        colour = paper * (1 - coverage[..., None]) + ink * coverage[..., None]
        yy, xx = np.mgrid[0:canvas, 0:canvas] / canvas
        direction = rng.uniform(0, 2 * math.pi)
        lighting = 1 - rng.uniform(0.0, 0.45) * (0.5 + 0.5 * (np.cos(direction) * xx + np.sin(direction) * yy))
        colour = colour * lighting[..., None]
        colour = np.asarray(Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))), dtype=np.float32)
        colour += rng.normal(0, rng.uniform(2, 14), size=colour.shape)
        return _jpeg(colour, int(rng.integers(50, 90)))
    if category == "transparent":  # an exported canvas with no background: ink only in alpha
        canvas = int(rng.integers(64, 280))
        coverage = draw_strokes(digit, rng, canvas, rng.uniform(0.5, 0.85), rng.uniform(0.06, 0.15), ink=255.0,
                                paper=0.0)
        rgba = np.zeros((canvas, canvas, 4), dtype=np.uint8)
        rgba[..., :3] = rng.integers(0, 90, size=3)  # dark ink colour everywhere; alpha says where it is
        rgba[..., 3] = np.clip(np.rint(coverage), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
        return buffer.getvalue()
    raise ValueError(f"unknown category {category!r}")


def make_test_set(per_digit: int, seed: int) -> dict[str, list[tuple[bytes, int]]]:
    """``{category: [(encoded image, label), ...]}`` with ``per_digit`` images of each digit per category."""
    rng = np.random.default_rng(seed)
    return {category: [(make_example(category, digit, rng), digit)
                       for digit in range(10) for _ in range(per_digit)] for category in CATEGORIES}


# -- evaluation -------------------------------------------------------------------------------

def _train(epochs: int, data, seed: int):
    import sightsound
    from sightsound import presets
    from sightsound.data.mnist import one_hot, to_float_images

    sightsound.set_seed(seed)
    model = presets.build("mnist-conv", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    model.fit(to_float_images(data.train_images), one_hot(data.train_labels), batch_size=320, epochs=epochs,
              validation_split=0.15)
    return model


def _accuracy(model, inputs: list[np.ndarray | None], labels: list[int]) -> tuple[float, int]:
    """Accuracy, counting images with no prediction (no digit found) as wrong; and how many had none."""
    ready = [i for i, x in enumerate(inputs) if x is not None]
    correct = 0
    if ready:
        predicted = model.predict(np.stack([inputs[i] for i in ready])).argmax(axis=1)
        correct = int(sum(int(p) == labels[i] for p, i in zip(predicted, ready)))
    return correct / max(len(labels), 1), len(labels) - len(ready)


def _inputs(sources, raw: bool) -> list[np.ndarray | None]:
    out = []
    for source in sources:
        try:
            out.append(ssimage.model_input(source, (28, 28, 1), raw=raw))
        except ssimage.NoDigitFound:
            out.append(None)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="MNIST training epochs for Listing 4.1 (default 2)")
    parser.add_argument("--model", default=None, help="use this saved model instead of training one")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $SIGHTSOUND_DATA)")
    parser.add_argument("--per-digit", type=int, default=20, help="images per digit and category (default 20)")
    parser.add_argument("--mnist-test", type=int, default=2000, help="MNIST test images scored both ways")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--save-samples", default=None, metavar="DIR", help="write a few test images there")
    return parser.parse_args(argv)


def load_or_train(args, data, started: float):
    """The model under test (``--model``, else Listing 4.1 trained here) and a line saying where it came from."""
    if args.model:
        import sightsound

        return sightsound.load_layers_model(args.model, device="cpu"), f"loaded from {args.model}"
    model = _train(args.epochs, data, args.seed)
    return model, f"Listing 4.1 trained {args.epochs} epochs on MNIST in {time.perf_counter() - started:.0f} s"


def save_samples(test_set: dict[str, list[tuple[bytes, int]]], folder: Path, per_digit: int) -> None:
    """A few test images of each category as files, to look at (every third digit's first image)."""
    folder.mkdir(parents=True, exist_ok=True)
    for category, items in test_set.items():
        for index in range(0, len(items), per_digit * 3):
            payload, label = items[index]
            suffix = "jpg" if payload[:2] == b"\xff\xd8" else "png"
            (folder / f"{category}-{index:03d}-{label}.{suffix}").write_bytes(payload)


def score_categories(model, test_set: dict[str, list[tuple[bytes, int]]]) -> list[tuple]:
    """``(category, images, raw accuracy, prepared accuracy, no digit found)`` per category."""
    rows = []
    for category, items in test_set.items():
        sources, labels = [payload for payload, _ in items], [label for _, label in items]
        raw_acc, _ = _accuracy(model, _inputs(sources, raw=True), labels)
        prep_acc, missing = _accuracy(model, _inputs(sources, raw=False), labels)
        rows.append((category, len(items), raw_acc, prep_acc, missing))
    return rows


def score_mnist(model, data, count: int) -> tuple:
    """The control row: the first ``count`` MNIST test images, scored both ways like the categories."""
    from sightsound.data.mnist import to_float_images

    mnist_x = to_float_images(data.test_images[:count])
    mnist_labels = [int(v) for v in data.test_labels[:count]]
    raw_acc, _ = _accuracy(model, list(mnist_x), mnist_labels)
    # prepare_digit takes the image as a user would give it: uint8 grey, not the model's [0, 1] input
    prep_acc, missing = _accuracy(model, _inputs([(img * 255).astype(np.uint8)[..., 0] for img in mnist_x],
                                                 raw=False), mnist_labels)
    return "MNIST test (control)", len(mnist_labels), raw_acc, prep_acc, missing


def _table_line(name: str, count: int, raw_acc: float, prep_acc: float, missing: int) -> str:
    return f"{name:<22}{count:>8}{raw_acc:>9.1%}{prep_acc:>10.1%}{prep_acc - raw_acc:>+9.1%}{missing:>10}"


def print_report(rows: list[tuple], mnist_row: tuple, trained: str, seed: int, started: float) -> None:
    total = sum(r[1] for r in rows)
    overall_raw = sum(r[1] * r[2] for r in rows) / total
    overall_prep = sum(r[1] * r[3] for r in rows) / total

    print(f"\nDigit quality ({trained}; test set seed {seed})\n")
    print(f"{'test set':<22}{'images':>8}{'raw':>9}{'prepared':>10}{'gain':>9}{'no digit':>10}")
    print("-" * 68)
    for row in rows:
        print(_table_line(*row))
    print("-" * 68)
    print(_table_line("all non-MNIST", total, overall_raw, overall_prep, sum(r[4] for r in rows)))
    print(_table_line(*mnist_row))
    print(f"\nraw = fromPixels(img, 1) -> resizeBilinear([28, 28]) -> /255 (the browser code, `predict --raw`);"
          f"\nprepared = prepare_digit (`predict`). 'no digit' images count as wrong. "
          f"Total {time.perf_counter() - started:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import torch

    from sightsound.data.mnist import load_mnist

    torch.set_num_threads(2)
    started = time.perf_counter()
    data = load_mnist(args.data_dir)
    model, trained = load_or_train(args, data, started)
    test_set = make_test_set(args.per_digit, args.seed)
    if args.save_samples:
        save_samples(test_set, Path(args.save_samples), args.per_digit)
    rows = score_categories(model, test_set)
    mnist_row = score_mnist(model, data, args.mnist_test)
    print_report(rows, mnist_row, trained, args.seed, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
