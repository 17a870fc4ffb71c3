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


def _scratch_folder(prefix: str) -> Path:
    """A temporary folder removed when the process exits."""
    import atexit
    import shutil

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


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
    from sightsound.engine import layers

    model = sightsound.sequential(device="cpu")
    model.add(layers.zero_padding2d(padding=1, input_shape=[6, 6, 1]))
    model.add(layers.conv2d(filters=2, kernel_size=3, activation="relu"))
    model.add(layers.depthwise_conv2d(kernel_size=2, padding="same"))
    model.add(layers.prelu(shared_axes=[1, 2]))
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
        self.folder = _scratch_folder("sightsound-fuzz-")

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


# -- Speech Commands folders -----------------------------------------------------------------------------

SPEECH_TARGETS = ("yes", "no")
HOSTILE_LIST_LINES = ["../etc/passwd", "/etc/passwd", "yes/../no/b_nohash_0.wav", "yes/\x00.wav", "yes/missing.wav",
                      "yes/" + "a" * 5000 + ".wav", "yes", "yes/a_nohash_0.WAV", "cat/c_nohash_0.wav", "",
                      "nope/x.wav", "yes/a_nohash_0.wav/extra", "\\yes\\a_nohash_0.wav", " yes/a_nohash_0.wav "]


def _tone(seconds: float, freq: float, rate: int = 16000) -> bytes:
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    soundfile.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="PCM_16",
                    format="WAV")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _symlink_loop_ops(rng: random.Random) -> list[dict]:
    """Symlink loops: to itself, a pair, a folder holding itself, a word folder to the root."""
    loop = rng.randrange(4)
    if loop == 0:
        return [{"op": "symlink", "path": "yes/self_nohash_0.wav", "target": "self_nohash_0.wav"}]
    if loop == 1:
        return [{"op": "symlink", "path": "cat/a_nohash_0.wav", "target": "b_nohash_0.wav"},
                {"op": "symlink", "path": "cat/b_nohash_0.wav", "target": "a_nohash_0.wav"}]
    if loop == 2:
        return [{"op": "symlink", "path": rng.choice(["yes/deeper.wav", "_background_noise_/deeper.wav"]),
                 "target": "."}]
    return [{"op": "symlink", "path": rng.choice(["dog", "_background_noise_", "yes"]),
             "target": rng.choice([".", "..", "/"])}]


def _odd_format_op(rel: str, rng: random.Random) -> dict:
    """A clip at another sample rate, stereo, 8-bit or float, or very long, over ``rel`` (or a yes clip)."""
    import soundfile

    t = np.arange(int(rng.choice([0.01, 0.5, 2.5]) * 8000)) / 8000
    tone = 0.3 * np.sin(2 * np.pi * 300 * t)
    buf = io.BytesIO()
    soundfile.write(buf, np.stack([tone, tone], 1) if rng.random() < 0.5 else tone,
                    rng.choice([8000, 11025, 44100, 96000]),
                    subtype=rng.choice(["PCM_16", "PCM_U8", "FLOAT", "PCM_24"]), format="WAV")
    return {"op": "write", "path": rel if rel.endswith(".wav") and not rel.startswith("_") else "yes/y0_nohash_0.wav",
            "data": _b64(buf.getvalue())}


class SpeechFolderTarget:
    """``load_speech_commands`` (and every split's arrays) on a small Speech Commands folder after one to
    three hostile changes: mutated WAVs or list files, hostile list lines, missing files, odd names,
    symlinks out of the folder or in a loop, FIFOs, files where folders belong, short noise."""

    def __init__(self):
        self.base = _scratch_folder("sightsound-fuzz-speech-")
        self.pristine = self.base / "pristine"
        self.work = self.base / "work"
        self.cache = self.base / "cache"
        files = {}
        for w, word in enumerate(("yes", "no", "cat")):
            for k in range(3):
                files[f"{word}/{word[0]}{k}_nohash_0.wav"] = _tone(0.4 + 0.1 * k, 300 + 100 * w + 20 * k)
        files["_background_noise_/hum.wav"] = _tone(11.0, 50.0)
        files["validation_list.txt"] = b"yes/y1_nohash_0.wav\nno/n1_nohash_0.wav\ncat/c1_nohash_0.wav\n"
        files["testing_list.txt"] = b"yes/y2_nohash_0.wav\nno/n2_nohash_0.wav\n"
        for rel, data in files.items():
            (self.pristine / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.pristine / rel).write_bytes(data)
        self.files = sorted(files)
        self.cases_run = 0

    def make_case(self, rng: random.Random) -> bytes:
        """A case is a JSON list of file-system operations on a copy of the pristine folder."""
        ops = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.randrange(12)
            ops += self._ops(kind, rng.choice(self.files), rng)
        return json.dumps(ops).encode()

    def _ops(self, kind: int, rel: str, rng: random.Random) -> list[dict]:
        """The operations of one hostile change of ``kind`` (0-11); ``rel`` is a pristine file it may use."""
        if kind == 0:
            return [{"op": "write", "path": rel, "data": _b64(mutate((self.pristine / rel).read_bytes(), rng))}]
        if kind == 1:
            return [self._list_line_op(rng)]
        if kind == 2:
            return [{"op": "delete", "path": rng.choice(self.files + ["yes", "_background_noise_"])}]
        if kind == 3:  # odd names, including ones that are not UTF-8 (surrogate-escaped bytes)
            odd = rng.choice(["yes/we ird\n.wav", "yes/\u00fc_nohash_0.wav", ".hidden/x.wav", "_odd/y.wav",
                              "yes/.wav", "yes/a" + "b" * 200 + ".wav", "new word/z_nohash_0.wav",
                              "yes/\udcff_nohash_0.wav", "\udcfe\udcff/x_nohash_0.wav", "yes/x.wav.WAV",
                              "dog/-_nohash_0.wav", "yes/%s_nohash_0.wav" % ("\u00e9" * 100)])
            return [{"op": "write", "path": odd, "data": _b64((self.pristine / "yes/y0_nohash_0.wav").read_bytes())}]
        if kind == 4:
            target = rng.choice(["/etc/passwd", "/etc", "/dev/zero", "../pristine/yes/y0_nohash_0.wav",
                                 "loop_b.wav", "/nonexistent", "../../pristine/yes/y0_nohash_0.wav"])
            return [{"op": "symlink", "path": rng.choice(["yes/loop_a.wav", "yes/y0_nohash_0.wav",
                                                          "_background_noise_/link.wav", "dog", "validation_list.txt"]),
                     "target": target}]
        if kind == 5:
            return [{"op": "fifo", "path": rng.choice(["yes/f_nohash_0.wav", "_background_noise_/f.wav",
                                                       "testing_list.txt"])}]
        if kind == 6:  # a folder where a file belongs
            return [{"op": "mkdir", "path": rng.choice(["yes/d_nohash_0.wav", "_background_noise_/d.wav",
                                                        "validation_list.txt", "yes/y1_nohash_0.wav"])}]
        if kind == 7:
            return [{"op": "write", "path": "_background_noise_/hum.wav",
                     "data": _b64(_tone(rng.choice([0.0, 0.5, 3.0]), 60.0))}]
        if kind == 8:
            return [{"op": "empty", "path": rng.choice(["yes", "cat", "_background_noise_"])}]
        if kind == 9:  # a file where a folder belongs
            return [{"op": "write", "path": rng.choice(["yes", "cat", "_background_noise_"]),
                     "data": _b64(rng.choice([b"", b"yes/y0_nohash_0.wav\n", (self.pristine / rel).read_bytes()]))}]
        if kind == 10:
            return _symlink_loop_ops(rng)
        return [_odd_format_op(rel, rng)]

    def _list_line_op(self, rng: random.Random) -> dict:
        """A validation or test list with a hostile line inserted (and perhaps mutated bytes)."""
        name = rng.choice(["validation_list.txt", "testing_list.txt"])
        lines = (self.pristine / name).read_bytes().splitlines()
        hostile = rng.choice(HOSTILE_LIST_LINES + [None] * 4)
        if hostile is None:  # bytes no text line holds: not UTF-8, NUL, a huge line, CR only
            hostile = rng.choice([b"yes/\xff\xfe_nohash_0.wav", b"\x00" * 64, b"yes/" + b"x" * 200_000,
                                  b"yes/y0_nohash_0.wav\rno/n0_nohash_0.wav", b"\xef\xbb\xbfyes/y0_nohash_0.wav"])
        else:
            hostile = hostile.encode("utf-8", "surrogatepass")
        lines.insert(rng.randrange(len(lines) + 1), hostile)
        data = b"\n".join(lines)
        if rng.random() < 0.3:
            data = mutate(data, rng)
        return {"op": "write", "path": name, "data": _b64(data)}

    def _apply(self, op: dict) -> None:
        """One operation inside ``self.work``; skipped when an earlier one made its folder a symlink or a
        file (so the harness never writes or deletes through a link out of the work folder)."""
        import base64
        import os
        import shutil

        parts = Path(op["path"]).parts
        folder = self.work
        for part in parts[:-1]:
            folder = folder / part
            if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
                return
        path = self.work / op["path"]
        if op["op"] in ("write", "symlink", "fifo", "mkdir"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif os.path.lexists(path):  # files, FIFOs, symlinks (dangling or looping too)
                path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
        if op["op"] == "write":
            path.write_bytes(base64.b64decode(op["data"]))
        elif op["op"] == "delete":
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif os.path.lexists(path):
                path.unlink()
        elif op["op"] == "symlink":
            path.symlink_to(op["target"])
        elif op["op"] == "fifo":
            os.mkfifo(path)
        elif op["op"] == "mkdir":
            path.mkdir()
        elif op["op"] == "empty" and path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                child.unlink() if not child.is_dir() or child.is_symlink() else shutil.rmtree(child)

    def __call__(self, data: bytes):
        import shutil

        from sightsound.data import speech_commands as sc

        if self.work.exists():
            shutil.rmtree(self.work)
        shutil.copytree(self.pristine, self.work, symlinks=True)
        for op in json.loads(data):
            self._apply(op)
        self.cases_run += 1
        if self.cases_run % 500 == 0:  # mutated files leave cache entries behind; start afresh now and then
            shutil.rmtree(self.cache, ignore_errors=True)
        loaded = sc.load_speech_commands(self.work, targets=SPEECH_TARGETS, cache_dir=self.cache, workers=1,
                                         progress=False)
        return [loaded.split(name).arrays() for name in sc.SPLITS]


# -- web request bodies ------------------------------------------------------------------------------------

class WebRejected(SightsoundError):
    """A 4xx/503 answer with a JSON error message: the app refused the request as it should."""


class WebBodyTarget:
    """Requests with hostile bodies, parameters and websocket messages against ``sightsound serve``'s app
    (in process, FastAPI's TestClient). 2xx is a result; 4xx (or 503 "busy") with a JSON ``error``
    message is a refusal; a 5xx, a non-JSON error, an escaping exception or a hang is a bug."""

    def __init__(self):
        import base64

        import sightsound
        from sightsound.engine import layers as L

        self.base = _scratch_folder("sightsound-fuzz-web-")
        models = self.base / "models"
        digits = sightsound.sequential(device="cpu")
        digits.add(L.flatten(input_shape=[28, 28, 1]))
        digits.add(L.dense(units=10, activation="softmax"))
        digits.save(str(models / "digits"))
        speech = sightsound.sequential(device="cpu")
        speech.add(L.max_pooling2d(pool_size=[43, 8], input_shape=[43, 232, 1]))
        speech.add(L.flatten())
        speech.add(L.dense(units=3, activation="softmax"))
        speech.save(str(models / "words"))
        (models / "words" / "metadata.json").write_text(json.dumps(
            {"words": ["_background_noise_", "_unknown_", "yes"], "frameSize": 232}))
        data = self.base / "data"
        (data / "mnist").mkdir(parents=True)
        rng = np.random.default_rng(0)
        np.savez(data / "mnist" / "mnist.npz", x_train=rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
                 y_train=np.arange(60, dtype=np.uint8) % 10, x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
                 y_test=np.arange(20, dtype=np.uint8) % 10)
        self.models, self.data = models, data
        self.png = image_seeds()[0]
        self.pcm = (0.1 * np.sin(np.arange(4096) / 5.0)).astype("<f4").tobytes()
        self.b64 = base64
        self._client = None
        self._accepted: list[str] = []  # ids of accepted training jobs not yet finished

    @property
    def client(self):
        if self._client is None:
            from fastapi.testclient import TestClient
            from web_helpers import TESTCLIENT_HOST

            from sightsound.web import create_app

            self._client = TestClient(create_app(self.models, data_dir=self.data, predict_workers=1,
                                                 allowed_hosts=[TESTCLIENT_HOST]),
                                      raise_server_exceptions=False)
        return self._client

    def make_case(self, rng: random.Random) -> bytes:
        """A case is JSON: the request's kind, then its path, query, headers, body or websocket messages."""
        kind = rng.choice(["predict-multipart", "predict-raw", "train", "test-results", "model-file", "audio",
                           "job", "page"])
        case: dict = {"kind": kind}
        getattr(self, "_" + kind.replace("-", "_") + "_case")(case, rng)
        return json.dumps(case).encode()

    def _predict_multipart_case(self, case: dict, rng: random.Random) -> None:
        """A multipart POST /api/predict: fields, a PNG (perhaps mutated), its content type, the boundary."""
        case["fields"] = {k: v for k, v in {"model": "digits", "top_k": "3", "raw": "0"}.items()
                          if rng.random() < 0.8}
        if rng.random() < 0.5:
            key = rng.choice(list(case["fields"]) or ["model"])
            case["fields"][key] = rng.choice(["", "-1", "999999999999", "../words", "words", "1e9", "\u00fc",
                                              "digits\n", "true", "null", "x" * 300, "0", "11", "-0",
                                              "9" * 5000, "\ud800", "/etc/passwd", "digits\x00"])
        if rng.random() < 0.1:  # odd form shapes: too many fields, a huge field, a second file, no file
            case["form"] = rng.choice(["many-fields", "huge-field", "two-files", "no-file", "file-as-field"])
        body = self.png if rng.random() < 0.3 else mutate(self.png, rng)
        case["file"] = self.b64.b64encode(body).decode()
        case["content_type"] = rng.choice(["image/png"] * 4 + ["image/jpeg", "text/plain", "", "image/png; x=1",
                                                               "image/webp", "image/svg+xml"])
        if rng.random() < 0.2:  # a broken envelope instead of a well-formed form
            case["envelope"] = self.b64.b64encode(mutate(self._multipart(case), rng)).decode()
        case["boundary"] = rng.choice(["B"] * 9 + ["", "C", "B" * 200, "\u00e9"])

    def _predict_raw_case(self, case: dict, rng: random.Random) -> None:
        """A raw-body POST /api/predict with an odd content type or query."""
        case["content_type"] = rng.choice(["image/png", "image/gif", "application/json", "image/", "",
                                           "image/png; charset=\u00e9", "multipart/form-data"])
        if case["content_type"] == "application/json" and rng.random() < 0.5:  # no JSON form: a refusal
            case["file"] = self.b64.b64encode(json.dumps({"image": self.b64.b64encode(self.png).decode()})
                                              .encode()).decode()
        else:
            case["file"] = self.b64.b64encode(self.png if rng.random() < 0.3 else mutate(self.png, rng)).decode()
        case["query"] = rng.choice(["", "?top_k=0", "?top_k=abc", "?model=../../etc", "?raw=1", "?top_k=11",
                                    "?top_k=-5", "?top_k=99999999999999999999", "?model=words", "?model=%00",
                                    "?model=%C3%A9", "?model=%FF", "?top_k=1&top_k=2", "?raw=%FF"])

    def _train_case(self, case: dict, rng: random.Random) -> None:
        """A POST /api/train with a mutated JSON body."""
        body = {"model": "dense", "epochs": 1, "batch_size": 10, "train_limit": 20, "test_limit": 10}
        for _ in range(rng.randint(0, 3)):
            body = _json_mutation(body, rng)
        if rng.random() < 0.2:
            body[rng.choice(["name", "seed", "validation_split", "extra"])] = rng.choice(
                ["fuzz-model", "..", "a/b", "\u00e9", "x" * 65, 2**63, -1, 0.5, None, "digits", ".hidden"])
        text = json.dumps(body)
        if rng.random() < 0.2:
            text = mutate(text.encode(), rng).decode("latin-1")
        case["json"] = text
        case["content_type"] = rng.choice(["application/json"] * 8 + ["text/plain", "", "application/json; x"])

    def _test_results_case(self, case: dict, rng: random.Random) -> None:
        """A GET /api/test-results/<model> with odd names and ranges."""
        case["path"] = "/api/test-results/" + rng.choice(["digits", "words", "..%2F..", "nope", "%00", "d" * 300,
                                                          "%FF", "%C3%A9", ".", "digits%2F..%2Fwords"])
        case["query"] = rng.choice(["", "?offset=0&count=5", "?offset=-1", "?count=100000", "?offset=x",
                                    "?offset=9999&count=500", "?count=0", "?offset=99999999999999999999999",
                                    "?count=1e3", "?count=%00", "?offset=15&count=10", "?count=-3"])

    def _model_file_case(self, case: dict, rng: random.Random) -> None:
        """A GET /models/<model>/<file> with odd names."""
        case["path"] = "/models/" + rng.choice(["digits", "words", "..", "%2e%2e", "nope", "%FF", "\u00e9",
                                                "d" * 300]) + "/" + rng.choice(
            ["model.json", "weights.bin", "metadata.json", "..%2Fsecret", "%00", "model.json%00.png", "",
             "%2e%2e", "history.json", "model.json%2F..", "w" * 300, "%FF.bin"])

    def _job_case(self, case: dict, rng: random.Random) -> None:
        """A job id (get, stop or websocket) of odd shape."""
        case["job_id"] = rng.choice(["0123456789abcdef", "..", "%00", "%FF", "x" * 1000, "%2F", "\u00e9", "-1"])
        case["how"] = rng.choice(["get", "stop", "ws"])

    def _page_case(self, case: dict, rng: random.Random) -> None:
        """A page or static path, many of them hostile."""
        case["path"] = rng.choice(["/", "/draw", "/speech", "/nope", "/%00", "/..%2F..%2Fetc%2Fpasswd",
                                   "/vendor/chart.js", "/vendor/..%2F..%2Fpackage.json", "/vendor/%00",
                                   "/vendor/" + "v" * 300, "/static/..%2F..%2Fapp.py", "/api/info",
                                   "/api/models", "/%FF"])

    def _audio_case(self, case: dict, rng: random.Random) -> None:
        """The /ws/audio websocket: a (mutated) config, PCM chunks and a text message."""
        config = {"sample_rate": 16000, "model": "words", "threshold": 0.5, "overlap": 0.5}
        for _ in range(rng.randint(0, 2)):
            config = _json_mutation(config, rng)
        case["config"] = json.dumps(config) if rng.random() < 0.85 else rng.choice(
            ["not json", "", "[]", "x" * 2000, "null", '{"model": "digits"}', '{"model": "../words"}'])
        case["config_as_bytes"] = rng.random() < 0.05
        case["chunks"] = [self.b64.b64encode(mutate(self.pcm, rng) if rng.random() < 0.4 else self.pcm).decode()
                          for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.05:  # over the message cap
            case["chunks"].append(self.b64.b64encode(bytes(70_000)).decode())
        case["text"] = rng.choice(["stop", '{"type": "threshold", "value": 2}', '{"type": "x"}', "", "[]",
                                   '{"type": "threshold", "value": 0.9}', '{"type": "stop"}', "t" * 2000,
                                   '{"type": "threshold", "value": NaN}', '{"type": "threshold"}', "\ud800"])

    def _multipart(self, case: dict) -> bytes:
        boundary = case.get("boundary", "B").encode("utf-8", "surrogatepass")
        fields = dict(case["fields"])
        form = case.get("form")
        if form == "many-fields":
            fields.update({f"f{i}": "1" for i in range(12)})
        elif form == "huge-field":
            fields["model"] = "m" * (65 * 1024)
        parts = [b"--" + boundary + f'\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode(
            "utf-8", "surrogatepass") for k, v in fields.items()]
        image = self.b64.b64decode(case["file"])
        file_part = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
                     b"Content-Type: " + case["content_type"].encode("utf-8", "surrogatepass") + b"\r\n\r\n" + image
                     + b"\r\n")
        if form == "two-files":
            parts += [file_part, file_part]
        elif form == "file-as-field":
            parts.append(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + image
                         + b"\r\n")
        elif form != "no-file":
            parts.append(file_part)
        return b"".join(parts) + b"--" + boundary + b"--\r\n"

    def _check(self, response):
        status = response.status_code
        if 200 <= status < 400:
            return response
        try:
            message = response.json().get("error")
        except (ValueError, AttributeError):
            message = None
        if (400 <= status < 500 or status == 503) and isinstance(message, str) and message:
            raise WebRejected(f"HTTP {status}: {message}")
        raise AssertionError(f"HTTP {status} with body {response.text[:200]!r}")

    def _finish_jobs(self, wait: float) -> None:
        """Wait up to ``wait`` s for accepted jobs (already told to stop) to end, then delete the models they
        saved, so that jobs and model folders never pile up over thousands of cases."""
        import shutil
        import time

        jobs = self.client.app.state.web.jobs
        deadline = time.monotonic() + wait
        for job_id in list(self._accepted):
            job = jobs.jobs.get(job_id)
            while job is not None and not job.finished and time.monotonic() < deadline:
                time.sleep(0.02)
            if job is None or job.finished:
                self._accepted.remove(job_id)
                if job is not None and job.name not in ("digits", "words"):
                    shutil.rmtree(self.models / job.name, ignore_errors=True)

    def __call__(self, data: bytes):
        case = json.loads(data)
        client, kind = self.client, case["kind"]
        if kind == "predict-multipart":
            if "envelope" in case:
                body = self.b64.b64decode(case["envelope"])
            else:
                body = self._multipart(case)
            boundary = case.get("boundary", "B").encode("utf-8", "surrogatepass")
            return self._check(client.post("/api/predict", content=body,
                                           headers={"content-type": b"multipart/form-data; boundary=" + boundary}))
        if kind == "predict-raw":
            return self._check(client.post("/api/predict" + case["query"], content=self.b64.b64decode(case["file"]),
                                           headers={"content-type": case["content_type"].encode()}))
        if kind == "train":
            self._finish_jobs(0.0)
            response = client.post("/api/train", content=case["json"].encode("latin-1"),
                                   headers={"content-type": case["content_type"]})
            if 200 <= response.status_code < 300:  # accepted (201): stop it at once so jobs never pile up
                job = response.json()["job_id"]
                self._accepted.append(job)
                self._check(client.post(f"/api/train/{job}/stop"))
                self._finish_jobs(2.5)
            return self._check(response)
        if kind in ("test-results", "model-file", "page"):
            return self._check(client.get(case["path"] + case.get("query", "")))
        if kind == "job":
            path = f"/api/train/{case['job_id']}"
            if case["how"] == "get":
                return self._check(client.get(path))
            if case["how"] == "stop":
                return self._check(client.post(path + "/stop"))
            return self._websocket(f"/ws/train/{case['job_id']}", [], (1000, 4404))
        messages = [("bytes" if case.get("config_as_bytes") else "text", case["config"])]
        messages += [("bytes", self.b64.b64decode(chunk)) for chunk in case["chunks"]]
        messages += [("text", case["text"]), ("text", "stop")]
        return self._websocket("/ws/audio", messages, (1000, 1003, 1008, 1009, 4400, 4501))

    def _websocket(self, path: str, messages: list, codes: tuple):
        """Send ``messages`` then read until the server closes; close codes outside ``codes`` are bugs."""
        from starlette.websockets import WebSocketDisconnect

        received = []
        try:
            with self.client.websocket_connect(path) as socket:
                for how, payload in messages:
                    if how == "text":
                        socket.send_text(payload)
                    else:
                        socket.send_bytes(payload if isinstance(payload, bytes) else payload.encode())
                while True:
                    message = socket.receive()
                    if message["type"] == "websocket.close":
                        if message.get("code", 1000) not in codes:
                            raise AssertionError(f"websocket closed with code {message.get('code')}")
                        break
                    if message.get("text"):
                        received.append(json.loads(message["text"]))
        except WebSocketDisconnect as closed:
            if closed.code not in codes:
                raise AssertionError(f"websocket closed with code {closed.code}") from None
        errors = [m for m in received if m.get("type") == "error"]
        if errors:
            if not all(isinstance(m.get("error"), str) and m["error"] for m in errors):
                raise AssertionError(f"an error message without text: {errors}")
            raise WebRejected(errors[0]["error"])
        return received


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
    if name in CASE_TARGETS:
        target = CASE_TARGETS[name]()
        for _ in range(count):
            yield target, target.make_case(rng)
        return
    seeds, target = SEEDS[name](), TARGETS[name]
    for _ in range(count):
        yield target, mutate(rng.choice(seeds), rng)


CASE_TARGETS = {"model": ModelTarget, "speech-folder": SpeechFolderTarget, "web-body": WebBodyTarget}
ALL = ("idx", "wav", "image", "model", "speech-folder", "web-body")
