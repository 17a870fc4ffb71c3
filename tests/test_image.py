"""Tests for sightsound.image and the ``predict`` / ``image resize`` commands.

* Resizes match real TensorFlow.js (Node, ``tests/js/tfjs_resize.js``) within 1e-5 for a grid of
  sizes (up, down, odd, 1 px) and every allowed flag combination.
* ``from_pixels`` reads every kind of source like ``tf.browser.fromPixels``.
* ``prepare_digit`` turns synthetic drawings (thick, thin, off-centre, dark on light, colour,
  transparent, noisy, unevenly lit) into MNIST-like inputs: centre of mass at (14, 14), box <= 20 px.
* Bad input gives ImageError / NoDigitFound with the input's name, never another exception.
* ``sightsound predict``: output format, --json, --top-k, stdin, exit codes 0 / 2 / 3.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, PngImagePlugin
from scipy import ndimage

import sightsound.tfjs  # noqa: F401  (`sightsound predict` loads saved models with it)
from conftest import require_node
from sightsound import image
from sightsound.errors import ImageError, ShapeError, SightsoundError
from sightsound.image import NoDigitFound

REPO = Path(__file__).resolve().parents[1]
NODE_SCRIPT = REPO / "tests" / "js" / "tfjs_resize.js"


# ---------------------------------------------------------------------------
# helpers: drawings and encodings

def png_bytes(array: np.ndarray, mode: str | None = None, **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG", **save_options) if mode else \
        Image.fromarray(array).save(buffer, "PNG", **save_options)
    return buffer.getvalue()


def draw(shape: str, size: int = 200, stroke: int = 16, centre=(0.5, 0.5), height: float = 0.6) -> np.ndarray:
    """Ink coverage in [0, 1] (float32 [size, size]) of a "0", "1", "4" or "7", anti-aliased."""
    scale = 4
    picture = Image.new("L", (size * scale, size * scale), 0)
    pen = ImageDraw.Draw(picture)
    h = height * size * scale
    cx, cy = centre[0] * size * scale, centre[1] * size * scale
    width = max(1, int(stroke * scale))

    def point(x, y):  # unit box -> canvas
        return cx + (x - 0.5) * 0.6 * h, cy + (y - 0.5) * h

    if shape == "0":
        pen.ellipse([point(0.0, 0.0), point(1.0, 1.0)], outline=255, width=width)
    elif shape == "1":
        pen.line([point(0.5, 0.0), point(0.5, 1.0)], fill=255, width=width)
    elif shape == "4":
        pen.line([point(0.7, 1.0), point(0.7, 0.0), point(0.0, 0.65), point(1.0, 0.65)], fill=255, width=width,
                 joint="curve")
    elif shape == "7":
        pen.line([point(0.0, 0.0), point(1.0, 0.0), point(0.35, 1.0)], fill=255, width=width, joint="curve")
    else:
        raise ValueError(shape)
    return np.asarray(picture.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255


def paint(coverage: np.ndarray, ink, paper) -> np.ndarray:
    """An RGB uint8 picture: ``ink`` colour where the coverage is 1, ``paper`` where it is 0."""
    ink = np.broadcast_to(np.asarray(ink, dtype=np.float32), (3,))
    paper = np.broadcast_to(np.asarray(paper, dtype=np.float32), (3,))
    rgb = paper * (1 - coverage[..., None]) + ink * coverage[..., None]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def assert_mnist_like(digit: np.ndarray, tolerance: float = 1.0) -> None:
    """float32 [28, 28, 1] in [0, 1], peak 1, box <= 20 px with its longer side ~20, centre of mass near (14, 14)."""
    assert digit.shape == (28, 28, 1) and digit.dtype == np.float32
    plane = digit[..., 0]
    assert plane.min() >= 0 and plane.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(plane > 0)
    box_h, box_w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert box_h <= 20 and box_w <= 20 and max(box_h, box_w) >= 19, (box_h, box_w)
    com = ndimage.center_of_mass(plane)
    assert abs(com[0] - 14) <= tolerance and abs(com[1] - 14) <= tolerance, com


# ---------------------------------------------------------------------------
# resize: sightsound vs real TensorFlow.js

RESIZE_SIZES = [(1, 1), (2, 3), (3, 2), (5, 7), (4, 14), (9, 13), (16, 11), (11, 16), (1, 9), (17, 3)]
RESIZE_FLAGS = [(False, False), (True, False), (False, True)]  # TF.js refuses align + half-pixel together


def resize_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {
        "int32-1x5x7x2": rng.integers(0, 256, size=(1, 5, 7, 2)).astype(np.int32),
        "float32-2x8x6x3": (rng.normal(size=(2, 8, 6, 3)) * 100).astype(np.float32),
        "float32-1x1x1x1": np.array([[[[3.25]]]], dtype=np.float32),
        "float32-1x3x4x1": np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1) / 7,
        "int32-1x2x2x1": np.array([[[[0], [255]], [[128], [7]]]], dtype=np.int32),
    }


def resize_cases() -> list[dict]:
    cases = []
    for name, array in resize_inputs().items():
        for size in RESIZE_SIZES:
            for align, half in RESIZE_FLAGS:
                for op in ("bilinear", "nearest"):
                    cases.append({"id": len(cases), "input": name, "op": op, "shape": list(array.shape),
                                  "dtype": str(array.dtype), "values": array.ravel().tolist(), "size": list(size),
                                  "alignCorners": align, "halfPixelCenters": half})
    return cases


def run_node(*args, stdin: str) -> None:
    node = require_node()
    proc = subprocess.run([node, str(NODE_SCRIPT), *map(str, args)], cwd=REPO, input=stdin, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"node {NODE_SCRIPT.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="module")
def tfjs_resized(tmp_path_factory):
    """{case id: (case, TF.js result)} for the whole grid, from one Node run."""
    cases = resize_cases()
    out = tmp_path_factory.mktemp("tfjs_resize") / "out.json"
    run_node(out, stdin=json.dumps({"cases": cases}))
    reply = json.loads(out.read_text())
    assert reply["tfjs"].startswith("4.") and reply["backend"] == "cpu"
    return {r["id"]: (cases[r["id"]], r) for r in reply["results"]}


@pytest.mark.parametrize("op", ["bilinear", "nearest"])
@pytest.mark.parametrize("align,half", RESIZE_FLAGS)
def test_resize_matches_tfjs(tfjs_resized, op, align, half):
    inputs = resize_inputs()
    checked = 0
    for case, result in tfjs_resized.values():
        if case["op"] != op or (case["alignCorners"], case["halfPixelCenters"]) != (align, half):
            continue
        resize = image.resize_bilinear if op == "bilinear" else image.resize_nearest_neighbor
        ours = resize(inputs[case["input"]], tuple(case["size"]), align_corners=align, half_pixel_centers=half)
        theirs = np.asarray(result["values"], dtype=np.float64).reshape(result["shape"])
        where = f"{op} {case['input']} -> {case['size']} align={align} half={half}"
        assert list(ours.shape) == result["shape"], where
        assert str(ours.dtype) == result["dtype"], where
        assert np.abs(ours.astype(np.float64) - theirs).max(initial=0) <= 1e-5, where
        checked += 1
    assert checked == len(resize_inputs()) * len(RESIZE_SIZES)


def test_resize_rank3_and_argument_errors():
    x = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    assert np.array_equal(image.resize_bilinear(x, (6, 8)), image.resize_bilinear(x[None], (6, 8))[0])
    assert image.resize_nearest_neighbor(x, (2, 2)).shape == (2, 2, 1)
    with pytest.raises(ValueError, match="alignCorners must be false"):
        image.resize_bilinear(x, (2, 2), align_corners=True, half_pixel_centers=True)
    with pytest.raises(ShapeError, match="rank 3 or 4"):
        image.resize_nearest_neighbor(np.zeros((4, 4)), (2, 2))
    with pytest.raises(ShapeError, match="positive"):
        image.resize_bilinear(x, (0, 3))
    # uint8 pixels become int32 for nearest (as from_pixels gives) and float32 for bilinear
    pixels = np.full((2, 2, 3), 200, dtype=np.uint8)
    assert image.resize_nearest_neighbor(pixels, (3, 3)).dtype == np.int32
    assert image.resize_bilinear(pixels, (3, 3)).dtype == np.float32


def test_nearest_rounding_rules():
    row = np.arange(4, dtype=np.int32).reshape(1, 4, 1)
    # 4 -> 6: ratio 2/3, floor(0, .67, 1.33, 2, 2.67, 3.33)
    assert image.resize_nearest_neighbor(row, (1, 6))[0, :, 0].tolist() == [0, 0, 1, 2, 2, 3]
    # align corners: ratio 3/5, Math.round(0, .6, 1.2, 1.8, 2.4, 3)
    assert image.resize_nearest_neighbor(row, (1, 6), align_corners=True)[0, :, 0].tolist() == [0, 1, 1, 2, 2, 3]
    # half-pixel centres: floor(2/3 * (i + .5)) = floor(.33, 1, 1.67, 2.33, 3, 3.67)
    assert image.resize_nearest_neighbor(row, (1, 6), half_pixel_centers=True)[0, :, 0].tolist() == \
        [0, 1, 1, 2, 3, 3]
    # Math.round sends halves up: 3 -> 5 with align corners samples 0, .5, 1, 1.5, 2
    three = np.arange(3, dtype=np.int32).reshape(1, 3, 1)
    assert image.resize_nearest_neighbor(three, (1, 5), align_corners=True)[0, :, 0].tolist() == [0, 1, 1, 2, 2]


# ---------------------------------------------------------------------------
# from_pixels and tensor helpers

def test_from_pixels_arrays_like_fromPixels():
    grey = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    out = image.from_pixels(grey)
    assert out.dtype == np.int32 and out.shape == (2, 2, 3) and out[0, 1].tolist() == [128, 128, 128]
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for channels in (1, 2, 3, 4):
        assert np.array_equal(image.from_pixels(rgba, channels), rgba[..., :channels].astype(np.int32))
    assert image.from_pixels(rgba, 1).shape == (2, 3, 1)  # the red channel, as TF.js does
    assert image.from_pixels(np.ones((2, 2), dtype=np.float32)).max() == 255  # 0-1 floats
    assert image.from_pixels(np.full((2, 2), 200.0)).max() == 200  # 0-255 floats
    assert image.from_pixels(np.full((2, 2), 1000, dtype=np.uint16)).max() == round(1000 / 257)
    with pytest.raises(ValueError, match="num_channels"):
        image.from_pixels(grey, 5)


def test_from_pixels_files_bytes_and_pil(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3)).astype(np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(rgb))
    for source in (path, str(path), path.read_bytes(), Image.fromarray(rgb)):
        assert np.array_equal(image.from_pixels(source), rgb)
    assert np.array_equal(image.from_pixels(path, 4)[..., 3], np.full((5, 7), 255))
    # a transparent PNG reads like an <img> drawn on a canvas: fully transparent pixels are (0, 0, 0, 0)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[0, 0, 3], rgba[0, 1, 3] = 255, 0
    out = image.from_pixels(png_bytes(rgba, "RGBA"), 4)
    assert out[0, 0].tolist() == [200, 200, 200, 255] and out[0, 1].tolist() == [0, 0, 0, 0]
    # ... while canvas ImageData (an RGBA array) passes through untouched
    assert image.from_pixels(rgba, 4)[0, 1].tolist() == [200, 200, 200, 0]


def test_from_pixels_palette_16bit_and_jpeg():
    palette = Image.new("P", (4, 4))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 1), 1)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    out = image.from_pixels(buffer.getvalue())
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [0, 0, 255]
    sixteen = np.array([[0, 65535], [257 * 100, 32768]], dtype=np.uint16)
    out = image.from_pixels(png_bytes(sixteen), 1)[..., 0]
    assert out.tolist() == [[0, 255], [100, 128]]
    buffer = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 200, 30)).save(buffer, "JPEG", quality=95)
    assert np.abs(image.from_pixels(buffer.getvalue()) - [10, 200, 30]).max() <= 3


def test_decoded_images_are_turned_upright_by_their_exif_or_xmp_orientation():
    lying = Image.new("L", (30, 20), 255)  # 30 wide, 20 high; orientation 6 says: turn it a quarter right
    exif = lying.getexif()
    exif[0x0112] = 6
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    png_text = PngImagePlugin.PngInfo()
    png_text.add_text("XML:com.adobe.xmp", xmp)
    oriented = {"JPEG exif": ("JPEG", {"exif": exif}), "PNG exif": ("PNG", {"exif": exif}),
                "WebP exif": ("WEBP", {"exif": exif}), "TIFF tag": ("TIFF", {"exif": exif}),
                "PNG xmp": ("PNG", {"pnginfo": png_text}), "JPEG xmp": ("JPEG", {"xmp": xmp.encode()})}
    for label, (file_format, options) in oriented.items():
        buffer = io.BytesIO()
        lying.save(buffer, file_format, **options)
        assert image.read_image(buffer.getvalue()).size == (20, 30), label
    for file_format in ("PNG", "GIF", "BMP"):  # no orientation: as stored
        buffer = io.BytesIO()
        lying.save(buffer, file_format)
        assert image.read_image(buffer.getvalue()).size == (30, 20), file_format


def test_from_pixels_frames_canvases_and_pixel_data():
    import torch
    from matplotlib.figure import Figure

    frame = torch.full((4, 6, 3), 9, dtype=torch.uint8)  # a video frame from a decoder, as a tensor
    assert image.from_pixels(frame).shape == (4, 6, 3)
    pixel_data = {"data": bytes(range(8)), "width": 2, "height": 1}
    assert image.from_pixels(pixel_data, 4).tolist() == [[[0, 1, 2, 3], [4, 5, 6, 7]]]
    with pytest.raises(ImageError, match="RGBA bytes"):
        image.from_pixels({"data": b"123", "width": 2, "height": 1})
    figure = Figure(figsize=(1, 0.5), dpi=20)
    assert image.from_pixels(figure, 4).shape == (10, 20, 4)


def test_tensor_helpers():
    import torch

    x = image.to_tensor4d(list(range(784)), [1, 28, 28, 1])
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    assert image.to_tensor4d([[[[1.7]]]], dtype="int32").tolist() == [[[[1]]]]
    with pytest.raises(ShapeError, match="should have 784 values but has 100"):
        image.to_tensor4d(list(range(100)), [1, 28, 28, 1])
    assert image.expand_dims(np.zeros((28, 28, 1))).shape == (1, 28, 28, 1)
    batch = np.random.default_rng(1).random((2, 5, 4, 3)).astype(np.float32)
    assert image.nhwc_to_nchw(batch).shape == (2, 3, 5, 4)
    assert np.array_equal(image.nchw_to_nhwc(image.nhwc_to_nchw(batch)), batch)
    assert image.nhwc_to_nchw(batch[0]).shape == (3, 5, 4)
    assert tuple(image.nhwc_to_nchw(torch.from_numpy(batch)).shape) == (2, 3, 5, 4)
    assert image.normalize(np.array([0, 255], dtype=np.int32)).tolist() == [0.0, 1.0]
    assert image.top_k([0.1, 0.6, 0.3], 2) == [(1, 0.6), (2, 0.3)]


# ---------------------------------------------------------------------------
# bad input

def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (valid CRC) followed by a tiny data stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("reader", [image.from_pixels, image.prepare_digit])
def test_bad_inputs_raise_image_errors(tmp_path, reader):
    good = png_bytes((draw("7", 64, 6) * 255).astype(np.uint8))
    empty_file = tmp_path / "empty.png"
    empty_file.write_bytes(b"")
    cases = {
        "not an image": (b"this is a text file, not a picture\n" * 3, "not an image"),
        "truncated": (good[: len(good) // 2], "truncated or corrupt"),
        "empty bytes": (b"", "empty"),
        "empty file": (empty_file, "empty"),
        "missing file": (tmp_path / "nope.png", "no such file"),
        "directory": (tmp_path, "directory"),
        "bomb": (png_header_claiming(60_000, 60_000), "decompression bomb"),
        "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),
        "zero-size array": (np.zeros((0, 5), dtype=np.uint8), "empty"),
        "batch": (np.zeros((1, 28, 28, 1), dtype=np.uint8), "batch"),
        "nan": (np.full((4, 4), np.nan), "NaN"),
        "out of range": (np.full((4, 4), 300, dtype=np.int32), "0..255"),
        "strings": (np.array([["a"]]), "numbers"),
        "object": (object(), "not an image source"),
    }
    for label, (source, message) in cases.items():
        with pytest.raises(ImageError, match=message) as caught:
            reader(source)
        assert not isinstance(caught.value, NoDigitFound), label
    with pytest.raises(ImageError, match=str(tmp_path / "nope.png").replace("\\", "\\\\")):
        reader(tmp_path / "nope.png")


def test_pixel_cap_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(image.decode, "MAX_IMAGE_PIXELS", 1000)  # the one cap, in the one decoder
    with pytest.raises(ImageError, match="more than the 1,000 allowed"):
        image.from_pixels(png_bytes(np.zeros((40, 40), dtype=np.uint8)))
    assert image.from_pixels(png_bytes(np.zeros((20, 20), dtype=np.uint8))).shape == (20, 20, 3)


def test_read_image_narrows_formats_and_names_its_refusals():
    png = png_bytes(np.zeros((4, 6), dtype=np.uint8))
    assert image.read_image(png, formats=("PNG",)).size == (6, 4)
    with pytest.raises(image.ImageFormatRefused, match="upload: the image is PNG, not JPEG") as refused:
        image.read_image(png, name="upload", formats=("JPEG",))
    assert refused.value.found == "PNG" and isinstance(refused.value, ImageError)
    with pytest.raises(image.ImageTooLarge, match="more than the 10 allowed"):
        image.read_image(png, max_pixels=10)


def saved(picture: Image.Image, file_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, file_format, **options)
    return buffer.getvalue()


def test_read_pixels_decodes_plain_pngs_to_pillows_pixels():
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, size=(23, 37, 4), dtype=np.uint8)
    pictures = {"L": Image.fromarray(noise[..., 0]), "RGB": Image.fromarray(noise[..., :3]),
                "RGBA": Image.fromarray(noise)}
    for mode, picture in pictures.items():
        # compressed hard, interlaced, with colour-space and resolution chunks: still plain
        for options in ({}, {"optimize": True}, {"interlace": 1}, {"dpi": (96, 96), "icc_profile": b"\0" * 128}):
            data = saved(picture, **options)
            decoded = image.read_pixels(data, name="drawing")
            assert isinstance(decoded, image.DecodedPixels) and decoded.format == "PNG", (mode, options)
            assert np.array_equal(decoded.pixels, np.asarray(Image.open(io.BytesIO(data)))), (mode, options)
            assert image.describe_source(decoded) == "<PNG image 37x23>"
    # every reader gives what it gave from Pillow's decoding: bytes, files and an upload decoded first
    drawing = png_bytes((draw("7", 80, 7) * 255).astype(np.uint8))
    from_pillow = Image.open(io.BytesIO(drawing))
    assert np.array_equal(image.prepare_digit(drawing), image.prepare_digit(from_pillow))
    assert np.array_equal(image.prepare_digit(image.read_pixels(drawing)), image.prepare_digit(from_pillow))
    rgba = saved(pictures["RGBA"])
    assert np.array_equal(image.from_pixels(rgba, 4), image.from_pixels(Image.open(io.BytesIO(rgba)), 4))
    large = saved(Image.fromarray(np.kron(noise[..., 0], np.ones((20, 20), dtype=np.uint8))))  # shrunk first
    assert np.array_equal(image.prepare_digit(large), image.prepare_digit(Image.open(io.BytesIO(large))))


def test_read_pixels_leaves_other_pngs_and_formats_to_pillow():
    grey = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10))
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "drawn by hand")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: Pillow's path turns it upright
    others = {"palette": saved(grey.convert("P")), "transparency key": saved(grey, transparency=0),
              "text": saved(grey, pnginfo=text), "exif": saved(grey, exif=exif),
              "grey and alpha": saved(grey.convert("LA")), "16 bits": saved(grey.convert("I;16")),
              "jpeg": saved(grey, "JPEG")}
    for label, data in others.items():
        assert isinstance(image.read_pixels(data), Image.Image), label
    assert image.from_pixels(others["exif"]).shape[:2] == (10, 10)
    assert np.array_equal(image.from_pixels(others["exif"])[..., 0], np.rot90(np.asarray(grey), -1))


def test_read_pixels_refuses_what_read_image_refuses(monkeypatch):
    data = png_bytes(np.zeros((4, 6), dtype=np.uint8))
    with pytest.raises(image.ImageFormatRefused, match="upload: the image is PNG, not JPEG"):
        image.read_pixels(data, name="upload", formats=("JPEG",))
    monkeypatch.setattr(image.decode.pyspng, "load", lambda *_: pytest.fail("decoded a refused image"))
    with pytest.raises(image.ImageTooLarge, match="upload: 6x4 = 24 pixels is more than the 10 allowed"):
        image.read_pixels(data, max_pixels=10, name="upload")
    with pytest.raises(image.ImageTooLarge, match="decompression bomb"):
        image.read_pixels(png_header_claiming(60_000, 60_000))
    monkeypatch.undo()
    # a checksum that does not match, or a stream libspng cannot decode: Pillow reads it, or words its error
    broken = bytearray(data)
    broken[-13] ^= 0xFF  # the last byte of the IDAT chunk's CRC
    assert isinstance(image.read_pixels(bytes(broken)), Image.Image)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        image.read_pixels(png_header_claiming(60, 40))  # a valid header, too little pixel data


def test_blank_and_noise_images_have_no_digit():
    rng = np.random.default_rng(7)
    speck = np.zeros((100, 100), dtype=np.uint8)
    speck[50, 50] = 255
    blanks = {
        "white": np.full((64, 64), 255, dtype=np.uint8),
        "black": np.zeros((64, 64, 3), dtype=np.uint8),
        "grey with sensor noise": np.clip(rng.normal(128, 3, size=(80, 80)), 0, 255).astype(np.uint8),
        "transparent": np.zeros((40, 40, 4), dtype=np.uint8),
        "speck": speck,
        "pure noise": rng.integers(0, 256, size=(64, 64)).astype(np.uint8),
    }
    for label, picture in blanks.items():
        with pytest.raises(NoDigitFound, match="no digit found"):
            image.prepare_digit(picture)
        with pytest.raises(NoDigitFound):  # the same as a file
            image.prepare_digit(png_bytes(picture))
    assert issubclass(NoDigitFound, ImageError) and issubclass(ImageError, SightsoundError)


# ---------------------------------------------------------------------------
# prepare_digit on synthetic drawings

def test_prepare_digit_light_on_dark_and_dark_on_light_agree():
    coverage = draw("7", 200, 16)
    light_on_dark = image.prepare_digit(paint(coverage, 255, 0))
    dark_on_light = image.prepare_digit(paint(coverage, 0, 255))
    assert_mnist_like(light_on_dark)
    assert_mnist_like(dark_on_light)
    assert np.abs(light_on_dark - dark_on_light).mean() < 0.02


@pytest.mark.parametrize("stroke", [2, 8, 30])
@pytest.mark.parametrize("shape", ["0", "1", "4", "7"])
def test_prepare_digit_thick_and_thin_strokes(shape, stroke):
    digit = image.prepare_digit(paint(draw(shape, 200, stroke), 20, 240))
    assert_mnist_like(digit)
    ink = digit[..., 0] > 0.5
    width = 2 * ink.sum() / max((ink & ~ndimage.binary_erosion(ink)).sum(), 1)
    assert 1.5 <= width <= 7, width  # thin strokes are thickened to MNIST's, thick ones stay bold
    if shape == "1":
        rows, cols = np.nonzero(digit[..., 0] > 0)
        assert rows.max() - rows.min() + 1 >= 19 and cols.max() - cols.min() + 1 <= 8  # aspect kept


@pytest.mark.parametrize("centre", [(0.2, 0.2), (0.8, 0.25), (0.5, 0.8)])
def test_prepare_digit_off_centre(centre):
    coverage = draw("4", 300, 8, centre=centre, height=0.3)
    reference = image.prepare_digit(paint(draw("4", 300, 8, height=0.3), 255, 0))
    moved = image.prepare_digit(paint(coverage, 255, 0))
    assert_mnist_like(moved)
    assert np.abs(moved - reference).mean() < 0.03


def test_prepare_digit_colour_photo_with_noise_and_uneven_light():
    rng = np.random.default_rng(3)
    coverage = draw("7", 240, 12, centre=(0.45, 0.55))
    photo = paint(coverage, (150, 30, 20), (230, 210, 80)).astype(np.float32)  # red ink, yellow paper
    yy, xx = np.mgrid[0:240, 0:240] / 240
    photo *= (1 - 0.4 * xx)[..., None]  # light falls off to the right
    photo += rng.normal(0, 10, size=photo.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=70)
    digit = image.prepare_digit(buffer.getvalue())
    assert_mnist_like(digit)
    clean = image.prepare_digit(paint(coverage, 255, 0))
    assert np.abs(digit - clean).mean() < 0.06


def test_prepare_digit_transparent_png():
    coverage = draw("0", 120, 10)
    rgba = np.zeros((120, 120, 4), dtype=np.uint8)
    rgba[..., :3] = (20, 20, 160)  # colour everywhere; only alpha says where the ink is
    rgba[..., 3] = np.rint(coverage * 255).astype(np.uint8)
    digit = image.prepare_digit(png_bytes(rgba, "RGBA"))
    assert_mnist_like(digit)
    assert np.abs(digit - image.prepare_digit(paint(coverage, 255, 0))).mean() < 0.02
    # white ink on a transparent background works as well
    rgba[..., :3] = 255
    assert_mnist_like(image.prepare_digit(png_bytes(rgba, "RGBA")))


def test_prepare_digit_palette_16bit_and_large_photo(tmp_path):
    coverage = draw("1", 100, 8)
    reference = image.prepare_digit(paint(coverage, 255, 0))
    palette = Image.fromarray(paint(coverage, 0, 255)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    sixteen = np.rint((1 - coverage) * 65535).astype(np.uint16)
    big = Image.fromarray(paint(draw("1", 100, 8), 0, 255)).resize((3000, 3000), Image.Resampling.BILINEAR)
    big_path = tmp_path / "big.jpg"
    big.save(big_path, "JPEG", quality=85)
    for source in (palette, png_bytes(sixteen), big_path, Image.fromarray(paint(coverage, 0, 255)).convert("L")):
        digit = image.prepare_digit(source)
        assert_mnist_like(digit)
        assert np.abs(digit - reference).mean() < 0.03


def test_prepare_digit_keeps_mnist_like_input():
    coverage = draw("7", 28 * 4, 9, height=0.7)
    mnist_like = np.asarray(Image.fromarray((coverage * 255).astype(np.uint8)).resize((28, 28), Image.BOX))
    digit = image.prepare_digit(mnist_like)
    assert_mnist_like(digit)
    again = image.prepare_digit(digit)  # float [28, 28, 1] in [0, 1] is accepted, and preparation is stable
    assert np.abs(again - digit).mean() < 0.02


def test_prepare_digit_same_on_uint8_pixels_and_their_float_copy():
    """0-255 levels of one channel take the uint8 path, their float32 copy the float path: the same digit, bit
    for bit (or the same refusal)."""
    rng = np.random.default_rng(11)
    across = np.linspace(0, 1, 160, endpoint=False)  # light falls off to the right
    columns = np.arange(90)[None, :]
    uneven = paint(draw("4", 160, 3), 30, 230).astype(np.float32) * (1 - 0.5 * across[:, None])
    pictures = {
        "light on dark": paint(draw("7", 200, 16), 255, 0)[..., 0],
        "dark on light": paint(draw("0", 120, 6), 10, 250)[..., 0],
        "grey background": paint(draw("1", 90, 8), 200, 37)[..., 0],  # levels shifted: the background is 37
        "two-tone background": paint(draw("1", 90, 8), 200, 36)[..., 0] + (columns >= 45).astype(np.uint8),  # 36.5
        "thin strokes": paint(draw("4", 280, 2), 255, 0),
        "grey stored as RGB": paint(draw("7", 280, 18), 255, 0),
        "red ink on yellow": paint(draw("7", 100, 9), (150, 30, 20), (230, 210, 80)),
        "uneven light": np.clip(uneven + 0.5, 0, 255).astype(np.uint8),
        "noisy": np.clip(paint(draw("1", 64, 5), 240, 20) + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8),
        "blank": np.full((40, 40), 77, dtype=np.uint8),
        "noise": rng.integers(0, 256, size=(50, 50)).astype(np.uint8),
    }
    for label, picture in pictures.items():
        outcomes = []
        for pixels in (picture, picture.astype(np.float32)):
            try:
                outcomes.append(image.prepare_digit(pixels, name=label))
            except NoDigitFound as err:
                outcomes.append(str(err))
        uint8_digit, float_digit = outcomes
        assert type(uint8_digit) is type(float_digit), label
        assert uint8_digit == float_digit if isinstance(uint8_digit, str) else \
            np.array_equal(uint8_digit, float_digit), label


def test_prepare_digit_on_real_mnist(real_mnist):
    images = real_mnist.test_images[:200]
    diffs = [np.abs(image.prepare_digit(x)[..., 0] - x / 255).mean() for x in images]
    assert np.median(diffs) < 0.04  # MNIST digits are already prepared: little changes


def test_model_input_raw_is_the_browser_pipeline():
    picture = paint(draw("7", 56, 5), (255, 0, 0), 0)
    raw = image.model_input(picture, (28, 28, 1), raw=True)
    expected = image.resize_bilinear(image.from_pixels(picture, 1), (28, 28)) / 255
    assert raw.dtype == np.float32 and np.array_equal(raw, expected.astype(np.float32))
    assert image.model_input(picture, (32, 32, 3)).shape == (32, 32, 3)


# ---------------------------------------------------------------------------
# sightsound predict / image resize

SHAPES = ("0", "1", "4", "7")


def drawing(shape: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A random dark-on-light RGB drawing of ``shape``: thickness, size and position vary."""
    height = rng.uniform(0.4, 0.8)
    margin = height / 2 + 0.05
    coverage = draw(shape, size, rng.uniform(2, 9), height=height,
                    centre=(rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin)))
    return paint(coverage, rng.uniform(0, 60, size=3), rng.uniform(190, 255, size=3))


@pytest.fixture(scope="module")
def trained_model():
    """Listing 4.1 trained briefly on prepared synthetic drawings of 0, 1, 4 and 7."""
    import sightsound
    from sightsound import presets

    sightsound.set_seed(0)
    rng = np.random.default_rng(0)
    labels = [int(s) for s in SHAPES for _ in range(60)]
    x = np.stack([image.prepare_digit(drawing(str(label), rng)) for label in labels])
    model = presets.build("mnist-conv", device="cpu")
    model.compile(optimizer="rmsprop", loss="sparseCategoricalCrossentropy", metrics=["accuracy"])
    model.fit(x, np.array(labels), batch_size=32, epochs=6)
    return model


@pytest.fixture()
def digit_files(tmp_path):
    rng = np.random.default_rng(99)
    paths = {}
    for shape in SHAPES:
        path = tmp_path / f"digit-{shape}.png"
        path.write_bytes(png_bytes(drawing(shape, rng)))
        paths[shape] = path
    blank = tmp_path / "blank.png"
    blank.write_bytes(png_bytes(np.full((50, 50), 250, dtype=np.uint8)))
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths["7"].read_bytes()[:60])
    return {**paths, "blank": blank, "broken": broken}


def run_cli(monkeypatch, capsys, model, argv: list[str], stdin: bytes | None = None):
    """``sightsound ARGV`` in-process, with MODEL loading replaced by ``model``; (exit code, stdout, stderr)."""
    import sightsound
    from sightsound.cli import main

    monkeypatch.setattr(sightsound.tfjs, "load_layers_model", lambda *a, **k: model)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_recognises_drawings(trained_model):
    rng = np.random.default_rng(123)
    hits = 0
    for shape in SHAPES:
        for _ in range(10):
            probs = trained_model.predict(image.model_input(drawing(shape, rng))[None])[0]
            hits += int(np.argmax(probs)) == int(shape)
    assert hits >= 36  # of 40


def test_predict_output_format(monkeypatch, capsys, trained_model, digit_files):
    argv = ["predict", "model-dir", str(digit_files["7"]), str(digit_files["1"])]
    code, out, err = run_cli(monkeypatch, capsys, trained_model, argv)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    for line, path, expected in zip(lines, (digit_files["7"], digit_files["1"]), ("7", "1")):
        fields = line.split("\t")
        assert fields[0] == str(path) and fields[1] == expected and len(fields) == 5
        probs = [float(fields[2])] + [float(f.split(":")[1]) for f in fields[3:]]
        assert probs == sorted(probs, reverse=True) and 0 <= probs[-1] and probs[0] <= 1
        assert all(len(f.split(":")) == 2 and f.split(":")[0].isdigit() for f in fields[3:])

    code, out, _ = run_cli(monkeypatch, capsys, trained_model, argv + ["--top-k", "1"])
    assert code == 0 and all(len(line.split("\t")) == 3 for line in out.splitlines())


def test_predict_json_and_stdin(monkeypatch, capsys, trained_model, digit_files):
    payload = digit_files["4"].read_bytes()
    code, out, _ = run_cli(monkeypatch, capsys, trained_model,
                           ["predict", "m", "-", str(digit_files["0"]), "--json", "--top-k", "2"], stdin=payload)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == ["-", str(digit_files["0"])]
    assert records[0]["top"][0][0] == 4 and records[1]["top"][0][0] == 0
    assert all(len(r["top"]) == 2 and isinstance(r["top"][0][1], float) for r in records)


def test_predict_no_digit_and_unreadable_exit_codes(monkeypatch, capsys, trained_model, digit_files):
    code, out, err = run_cli(monkeypatch, capsys, trained_model,
                             ["predict", "m", str(digit_files["blank"]), str(digit_files["7"])])
    assert code == 3
    assert out.splitlines()[0] == f"{digit_files['blank']}\tno digit found"
    assert out.splitlines()[1].split("\t")[1] == "7"

    code, out, err = run_cli(monkeypatch, capsys, trained_model,
                             ["predict", "m", str(digit_files["broken"]), str(digit_files["blank"]),
                              str(digit_files["1"])])
    assert code == 2
    assert str(digit_files["broken"]) in err and "truncated or corrupt" in err
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(digit_files["blank"]), str(digit_files["1"])]

    code, out, err = run_cli(monkeypatch, capsys, trained_model,
                             ["predict", "m", "-", "--json"], stdin=b"not an image")
    assert code == 2 and "<stdin>: not an image" in err
    record = json.loads(out)
    assert record["path"] == "-" and "not an image" in record["error"] and record["top"] == []

    code, _, err = run_cli(monkeypatch, capsys, trained_model,
                           ["predict", "m", str(digit_files["7"]), "--top-k", "11"])
    assert code == 2 and "--top-k" in err


def test_predict_raw_skips_preparation(monkeypatch, capsys, trained_model, digit_files):
    code, out, _ = run_cli(monkeypatch, capsys, trained_model,
                           ["predict", "m", str(digit_files["blank"]), "--raw", "--json"])
    assert code == 0 and len(json.loads(out)["top"]) == 3  # no preparation, so no "no digit found"


def test_image_resize_command(monkeypatch, capsys, tmp_path):
    from sightsound.cli import main

    picture = paint(draw("7", 40, 4), (255, 200, 0), (0, 0, 80))
    source = tmp_path / "in.png"
    source.write_bytes(png_bytes(picture))
    out = tmp_path / "figs" / "cmp.png"
    assert main(["image", "resize", str(source), "--size", "100x60", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    pixels = image.from_pixels(picture)
    expected = np.abs(image.resize_bilinear(pixels, (100, 60)) - image.resize_nearest_neighbor(pixels, (100, 60)))
    assert f"mean absolute difference {expected.mean():.3f}" in printed
    assert "40x40 -> 100x60" in printed
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.width > 600
    with pytest.raises(SystemExit):
        main(["image", "resize", str(source), "--size", "100", "-o", str(out)])
    assert main(["image", "resize", str(tmp_path / "missing.png"), "--size", "10x10", "-o", str(out)]) == 2


def test_predict_end_to_end_with_saved_model(trained_model, digit_files, tmp_path):
    model_dir = tmp_path / "model"
    trained_model.save(str(model_dir))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "sightsound", "predict", str(model_dir), str(digit_files["7"]), "-",
               str(digit_files["blank"]), "--device", "cpu"]
    proc = subprocess.run(command, input=digit_files["0"].read_bytes(), capture_output=True, env=env, timeout=300)
    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 3, proc.stderr.decode()
    assert lines[0].startswith(f"{digit_files['7']}\t7\t") and lines[1].startswith("-\t0\t")
    assert lines[2] == f"{digit_files['blank']}\tno digit found"
    proc = subprocess.run([sys.executable, "-m", "sightsound", "predict", str(tmp_path / "no-model"),
                           str(digit_files["7"])], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 2 and proc.stderr.decode().startswith("sightsound: error:")


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (2, 30), (1, 1), (3, 3)])
def test_prepare_digit_on_slivers_answers_without_numpy_warnings(shape):
    import warnings

    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        sliver = np.where(rng.random(shape) < 0.5, 0, 255).astype(np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                out = image.prepare_digit(sliver)
            except image.NoDigitFound:
                continue
        assert out.shape == (28, 28, 1) and np.isfinite(out).all()


# -- prepare_digit's fast helpers compute what the NumPy/SciPy functions they replace compute -------------------

def test_order_stats_are_numpys_percentiles_and_median_to_the_bit():
    from sightsound.image.digits import _order_stats

    rng = np.random.default_rng(5)
    for n in [1, 2, 3, 10, 11, 112, 257, 1025, 5000]:
        levels = rng.integers(0, 256, n).astype(np.uint8)
        for values in (rng.random(n, dtype=np.float32) * 255, np.round(rng.random(n) * 255).astype(np.float32),
                       levels):
            as_float = values.astype(np.float32)  # uint8 pixels give what their float32 copy gives
            quantiles, median = _order_stats(values, (10, 90))
            assert quantiles == np.percentile(as_float, [10, 90]).tolist() and median == float(np.median(as_float))
            for q in (90, 99.5):  # one Python number: NumPy interpolates in float32
                assert _order_stats(values, (q,), one_q=True)[0] == [float(np.percentile(as_float, q))]
        counts = np.bincount(levels, minlength=256)  # the counts stand in for the levels
        assert _order_stats(levels, (10, 90), counts=counts) == _order_stats(levels.astype(np.float32), (10, 90))
    assert np.isnan(_order_stats(np.zeros(0, dtype=np.float32))[1])


def test_otsu_classes_medians_are_numpys():
    from sightsound.image.digits import _class_medians, _histogram, _otsu

    rng = np.random.default_rng(8)
    for n in [1, 2, 5, 100, 784, 4900]:
        for levels in (rng.integers(0, 256, n), np.full(n, rng.integers(1, 256)), rng.choice([0, 3, 250], n)):
            levels = levels.astype(np.uint8)
            counts = _histogram(levels)
            level, _ = _otsu(counts)
            above, below = levels[levels > level], levels[levels <= level]
            for pixels in (levels, levels.astype(np.float32)):  # from the counts, and from the pixels
                medians = _class_medians(pixels, counts, level)
                if above.size == 0:
                    assert medians is None
                    continue
                assert medians[0] == np.median(above)
                assert medians[1] == np.median(below) if below.size else np.isnan(medians[1])


def test_resized_is_pillows_resize():
    from sightsound.image.digits import _resized

    rng = np.random.default_rng(9)
    for shape in [(1, 1), (3, 7), (22, 17), (213, 139)]:
        plane = (rng.random(shape, dtype=np.float32) * 300 - 20).astype(np.float32)
        for size in [(1, 1), (shape[1], shape[0]), (15, 20), (80, 52)]:
            for resample in (Image.Resampling.BOX, Image.Resampling.BILINEAR):
                expected = np.asarray(Image.fromarray(plane, "F").resize(size, resample))
                assert np.array_equal(_resized(plane, size, resample), expected)
                assert np.array_equal(_resized(plane > 100, size, resample),
                                      np.asarray(Image.fromarray((plane > 100).astype(np.float32), "F").resize(
                                          size, resample)))


def test_mask_filters_and_components_are_scipys():
    from sightsound.image.digits import _components, _cross_filter, _disk_dilation

    rng = np.random.default_rng(6)
    for _ in range(40):
        shape = tuple(rng.integers(1, 40, 2))
        mask = rng.random(shape) > rng.random() ** 0.3
        assert np.array_equal(_cross_filter(mask, np.logical_and), ndimage.binary_erosion(mask, border_value=0))
        assert np.array_equal(_cross_filter(mask, np.logical_or), ndimage.binary_dilation(mask))
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        boxed, boxed_count, (top, left), touches_edge = _components(mask)
        whole = np.zeros_like(labels)
        whole[top:top + boxed.shape[0], left:left + boxed.shape[1]] = boxed
        on_edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        assert boxed_count == count and np.array_equal(whole, labels)
        assert touches_edge.tolist() == [k in on_edge for k in range(1, count + 1)]
        radius = int(rng.integers(1, 5))
        ink = rng.random(shape, dtype=np.float32) * mask
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        expected = ndimage.grey_dilation(np.pad(ink, radius), footprint=yy ** 2 + xx ** 2 <= radius ** 2 + 0.5)
        assert np.array_equal(_disk_dilation(ink, radius), expected)
