"""Fuzz targets for every parser that reads untrusted bytes, shared by tests and benchmarks/fuzz.py.

Each target takes bytes, feeds them to a sightsound parser, and must end with a
result or a :class:`sightsound.SightsoundError`; any other exception, a hang or
a blow-up is a bug. Inputs are mutations of valid files (bit flips, byte
overwrites with boundary values, insertions, deletions, truncation), which
reach far deeper into a parser than random bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import signal
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sightsound.errors import SightsoundError

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
               b"\x80\x00\x00\x00", b"\x00\x00\x01\x00", b"\x3b\x9a\xca\x00"]


def mutate(data: bytes, rng: random.Random, rounds: int | None = None) -> bytes:
    """A random mutation of ``data``, biased towards its header (the first 64 bytes)."""
    buf = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        if not buf:
            buf += rng.randbytes(rng.randint(1, 16))
            continue
        limit = len(buf) if rng.random() < 0.3 else min(len(buf), 64)
        pos = rng.randrange(limit)
        op = rng.randrange(6)
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            value = rng.choice(INTERESTING)
            buf[pos:pos + len(value)] = value
        elif op == 2:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del buf[pos:pos + rng.randint(1, 8)]
        elif op == 4:
            del buf[rng.randrange(len(buf)):]
        else:
            buf[pos] = rng.randrange(256)
    return bytes(buf)


class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    def expire(signum, frame):
        raise CaseTimeout(f"case took over {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- seeds: valid inputs to mutate -------------------------------------------------------------------------

def idx_seed() -> bytes:
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    return struct.pack(">HBB3I", 0, 0x08, 3, 3, 4, 4) + images.tobytes()


def idx_gz_seed() -> bytes:
    return gzip.compress(idx_seed(), mtime=0)


def wav_seed() -> bytes:
    import soundfile

    t = np.arange(1600) / 16000
    buf = io.BytesIO()
    soundfile.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16",
                    format="WAV")
    return buf.getvalue()


def image_seeds() -> list[bytes]:
    """A drawn "1" as PNG, JPEG, BMP, GIF and transparent PNG."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(img).line([(16, 4), (16, 28)], fill="black", width=4)
    seeds = []
    for fmt, picture in (("PNG", img), ("JPEG", img), ("BMP", img), ("GIF", img.convert("P")),
                         ("PNG", img.convert("LA"))):
        buf = io.BytesIO()
        picture.save(buf, format=fmt)
        seeds.append(buf.getvalue())
    return seeds


def model_seed() -> tuple[bytes, bytes]:
    import sightsound
    from sightsound import layers

    model = sightsound.sequential(device="cpu")
    model.add(layers.conv2d(filters=2, kernel_size=3, activation="relu", input_shape=[6, 6, 1]))
    model.add(layers.max_pooling2d(pool_size=2))
    model.add(layers.flatten())
    model.add(layers.dense(units=3, activation="softmax"))
    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        return (Path(folder) / "model.json").read_bytes(), (Path(folder) / "weights.bin").read_bytes()


# -- targets ------------------------------------------------------------------------------------------------

def target_idx(data: bytes):
    from sightsound.data import mnist

    return mnist.read_idx(data, name="fuzz.idx")


def target_wav(data: bytes):
    from sightsound import audio

    samples, rate = audio.read_wav(data)
    return audio.spectrogram(samples, rate)


def target_image(data: bytes):
    from sightsound import image

    pixels = image.from_pixels(data, num_channels=4)
    return pixels.shape, image.prepare_digit(data)


def _json_mutation(doc, rng: random.Random):
    """Replace one random node of a JSON document with a hostile value."""
    hostile = [None, -1, 0, 2**31, 10**12, 1e308, float("nan"), "", "../../etc/passwd", "/abs/path", [],
               {}, [2**20, 2**20], "http://other.host/w.bin", True, "float64", [[1]], -0.0]
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + [i])

    walk(doc, [])
    path = rng.choice(paths[1:])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    action = rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(hostile)
    return doc


class ModelTarget:
    """load_layers_model on a folder holding a mutated model.json and/or weights.bin."""

    def __init__(self):
        self.model_json, self.weights = model_seed()
        self.folder = Path(tempfile.mkdtemp(prefix="sightsound-fuzz-"))

    def make_case(self, rng: random.Random) -> bytes:
        """A case is JSON text + b'\\0SPLIT\\0' + weight bytes."""
        model_json, weights = self.model_json, self.weights
        choice = rng.random()
        if choice < 0.5:
            model_json = json.dumps(_json_mutation(json.loads(model_json), rng)).encode()
        elif choice < 0.75:
            model_json = mutate(model_json, rng)
        else:
            weights = mutate(weights, rng)
        return model_json + b"\0SPLIT\0" + weights

    def __call__(self, data: bytes):
        import sightsound

        model_json, _, weights = data.partition(b"\0SPLIT\0")
        (self.folder / "model.json").write_bytes(model_json)
        (self.folder / "weights.bin").write_bytes(weights)
        return sightsound.load_layers_model(str(self.folder), device="cpu")


SEEDS = {"idx": lambda: [idx_seed(), idx_gz_seed()], "wav": lambda: [wav_seed()], "image": image_seeds}
TARGETS = {"idx": target_idx, "wav": target_wav, "image": target_image}


def run_case(target, data: bytes, seconds: float = 5.0) -> str:
    """'ok' or 'rejected' (our own error); anything else propagates as a bug."""
    with time_limit(seconds):
        try:
            target(data)
        except SightsoundError as err:
            if not str(err):
                raise AssertionError("a SightsoundError without a message") from err
            return "rejected"
    return "ok"


def cases(name: str, count: int, seed: int = 0):
    """``count`` deterministic fuzz cases for target ``name`` as (target, data) pairs."""
    rng = random.Random(seed)
    if name == "model":
        target = ModelTarget()
        for _ in range(count):
            yield target, target.make_case(rng)
        return
    seeds, target = SEEDS[name](), TARGETS[name]
    for _ in range(count):
        yield target, mutate(rng.choice(seeds), rng)


ALL = ("idx", "wav", "image", "model")
