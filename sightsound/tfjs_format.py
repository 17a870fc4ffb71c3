"""The TF.js Layers model format: ``model.json`` + weight files, both ways.

This is the one module that knows the format and the layout mapping between
the engine (PyTorch: NCHW, conv kernels ``[out, in, kh, kw]``, dense kernels
``[out, in]``) and TF.js (NHWC, ``[kh, kw, in, out]``, ``[in, out]``).

Saving writes what TF.js 4.22's ``model.save('file://dir')`` (tfjs-node's
file writer) writes: ``JSON.stringify`` of ``{modelTopology, weightsManifest,
format, generatedBy, convertedBy[, trainingConfig][, userDefinedMetadata]}``
with JavaScript's number formatting, and ``weights.bin``: every weight's
little-endian float32 values in TF.js's order (all trainable weights first, then
the non-trainable ones; with ``include_optimizer=True`` the optimizer's
``iter`` and slots follow, marked ``"group": "optimizer"``). Only
``generatedBy`` differs, saying honestly that sightsound wrote the file.

Saving is crash-safe: the weights are written under a fresh name and synced,
then ``model.json`` is atomically replaced, so a kill at any moment leaves the
previous or the new model complete. Other files in the folder are never
touched.

Example::

    >>> import sightsound, tempfile
    >>> from sightsound import presets
    >>> model = presets.build("mnist-dense", device="cpu")
    >>> folder = tempfile.mkdtemp()
    >>> model.save(folder)["weightDataBytes"]
    133600
    >>> sightsound.load_layers_model(folder, device="cpu").count_params()
    33400
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import secrets
import stat
import time
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from numbers import Integral, Real
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
import torch

from . import __version__, http_fetch, optimizers
from .errors import FetchError, ModelFormatError, OutputError, SightsoundError
from .naming import camel_case, snake_case

MODEL_JSON = "model.json"
WEIGHTS_BIN = "weights.bin"
TFJS_LAYERS_VERSION = "4.22.0"
GENERATED_BY = f"sightsound {__version__} (TF.js Layers format of tfjs-layers v{TFJS_LAYERS_VERSION})"
KERAS_VERSION = f"tfjs-layers {TFJS_LAYERS_VERSION}"
BACKEND = "tensor_flow.js"

MAX_MODEL_JSON_BYTES = 32 * 2**20  # model.json is topology + manifest: small
MAX_WEIGHT_BYTES = 2 * 2**30  # all weight files of one model together
MAX_RANK = 8

# Engine layout -> TF.js layout, as a permutation of the engine tensor's axes.
_TO_TFJS_AXES: dict[tuple[str, str], tuple[int, ...]] = {
    ("Conv2D", "kernel"): (2, 3, 1, 0),  # [out, in, kh, kw] -> [kh, kw, in, out]
    ("Dense", "kernel"): (1, 0),  # [out, in] -> [in, out]
}
# Bytes per element of each stored dtype (after quantization, if any).
_ITEM_BYTES = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1}
_QUANTIZED = ("uint8", "uint16", "float16")

# Our own file names in a model folder; only these are ever created or removed.
_STAGED_WEIGHTS = re.compile(r"^weights\.[0-9a-f]{16}\.bin$")
_OUR_TEMP = re.compile(r"^\.(model\.json|weights\.bin)\.[0-9a-f]{16}\.tmp$")


# ---------------------------------------------------------------------------
# JSON exactly as JavaScript's JSON.stringify writes it


def js_number(value: float) -> str:
    """A number as JavaScript's ``String(x)`` / ``JSON.stringify`` writes it.

    >>> [js_number(v) for v in (1.0, 0.25, 1e-07, 1e21, 123456789.0, -0.0)]
    ['1', '0.25', '1e-7', '1e+21', '123456789', '0']
    """
    if isinstance(value, Integral):
        value = int(value)
        if abs(value) < 10**21:
            return str(value)
        value = float(value)
    value = float(value)
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    decimal = Decimal(repr(abs(value))).as_tuple()  # shortest round-trip digits, as JS uses
    all_digits = "".join(map(str, decimal.digits))
    digits = all_digits.rstrip("0")
    n = len(all_digits) + decimal.exponent  # the decimal point sits after n digits
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text


def js_json(value: Any) -> str:
    """``JSON.stringify(value)``: compact, keys in insertion order, JS numbers.

    >>> js_json({"rate": 0.5, "eps": 1e-7, "n": [1, 2.0], "s": "é"})
    '{"rate":0.5,"eps":1e-7,"n":[1,2],"s":"é"}'
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, np.generic):
        return js_json(value.item())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (Integral, Real)):
        return js_number(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {key!r}")
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{js_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r:.80}")


# ---------------------------------------------------------------------------
# Weights in TF.js order and layout


@dataclass
class _Weight:
    """One model weight: TF.js name and shape, the engine tensor, its layout permutation."""

    name: str
    shape: tuple[int, ...]
    tensor: torch.Tensor
    axes: tuple[int, ...] | None

    def to_tfjs(self, tensor: torch.Tensor | None = None) -> np.ndarray:
        t = (self.tensor if tensor is None else tensor).detach()
        if self.axes is not None:
            t = t.permute(self.axes)
        array = np.ascontiguousarray(t.to("cpu", torch.float32).numpy(), dtype="<f4")
        if array.shape != self.shape:
            raise ModelFormatError(f"weight {self.name}: engine tensor maps to shape {list(array.shape)}, "
                                   f"TF.js expects {list(self.shape)}")
        return array

    def from_tfjs(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        if self.axes is not None:
            t = t.permute(tuple(int(i) for i in np.argsort(self.axes)))
        return t


def _tfjs_order(model) -> list[tuple[int, Any, Any]]:
    """``(layer index, layer, weight spec)`` in the order of TF.js's ``model.weights``.

    That is every trainable weight of the trainable layers, in layer order, then
    the non-trainable ones: the non-trainable weights of trainable layers
    (BatchNormalization's moving statistics) and all weights of layers with
    ``trainable: false``, again in layer order. Needs no built modules.
    """
    trainable, frozen = [], []
    for i, (layer, (shape_in, _)) in enumerate(zip(model.layers, model.shapes)):
        specs = layer.weight_specs(shape_in)
        for spec in [s for s in specs if s.trainable] + [s for s in specs if not s.trainable]:
            (trainable if spec.trainable and layer.trainable else frozen).append((i, layer, spec))
    return trainable + frozen


def model_weights(model) -> list[_Weight]:
    """The model's weights, with their engine tensors, in the order TF.js saves them."""
    model.build()
    weights = []
    for i, layer, spec in _tfjs_order(model):
        tensors = layer.tfjs_weights(model.net.blocks[i])
        if spec.suffix not in tensors:
            raise ModelFormatError(f"{layer.name}: the built module lacks weight {spec.suffix!r}")
        weights.append(_Weight(f"{layer.name}/{spec.suffix}", tuple(spec.shape), tensors[spec.suffix],
                               _TO_TFJS_AXES.get((layer.class_name, spec.suffix))))
    return weights


def _trainable_count(model) -> int:
    return sum(1 for layer, (shape_in, _) in zip(model.layers, model.shapes) if layer.trainable
               for spec in layer.weight_specs(shape_in) if spec.trainable)


# ---------------------------------------------------------------------------
# The optimizer: trainingConfig and weights, TF.js's names and order


def _training_config(model) -> dict:
    opt = model.optimizer
    config = dict(opt.get_config())
    if "learning_rate" in config:  # TF.js writes camelCase optimizer configs
        config = {("learningRate" if k == "learning_rate" else k): v for k, v in config.items()}
    return {"loss": snake_case(model.loss), "metrics": [snake_case(m) for m in model.metrics],
            "optimizer_config": {"class_name": opt.class_name, "config": config}}


def _optimizer_weights(model, weights: list[_Weight]) -> list[tuple[dict, bytes]]:
    """TF.js ``optimizer.getWeights()``: ``iter``, then each slot kind for every trainable weight.

    RMSProp: ``<weight>/rms`` for all weights, then ``<weight>/momentum``; Adam:
    ``/m`` then ``/v``; SGD: ``iter`` only. Like TF.js, an optimizer that has
    not stepped yet has no slots to write.
    """
    opt = model.optimizer
    entries = [({"name": "iter", "shape": [], "dtype": "int32", "group": "optimizer"},
                np.array(opt.iterations, dtype="<i4").tobytes())]
    if opt.iterations == 0:
        return entries
    index = {id(p): i for i, p in enumerate(opt.params)}
    for slot in opt.slot_names:
        for weight in weights[:_trainable_count(model)]:
            i = index.get(id(weight.tensor))
            value = opt.slots[slot][i] if i is not None else torch.zeros_like(weight.tensor)
            entries.append(({"name": f"{weight.name}/{slot}", "shape": list(weight.shape), "dtype": "float32",
                             "group": "optimizer"}, weight.to_tfjs(value).tobytes()))
    return entries


# ---------------------------------------------------------------------------
# Saving


def save_model(model, path, include_optimizer: bool = False, user_defined_metadata: dict | None = None) -> dict:
    """Write ``model.json`` + ``weights.bin`` into the folder ``path`` (``"dir"`` or ``"file:///abs/dir"``).

    Returns TF.js's ``modelArtifactsInfo`` for the save. ``user_defined_metadata``
    defaults to the metadata the model was loaded with, as in TF.js.

    >>> from sightsound import presets
    >>> import tempfile
    >>> info = save_model(presets.build("mnist-conv", device="cpu"), "file://" + tempfile.mkdtemp())
    >>> info["weightDataBytes"] // 4
    56714
    """
    directory = _local_save_dir(path)
    weights = model_weights(model)
    specs = [{"name": w.name, "shape": list(w.shape), "dtype": "float32"} for w in weights]
    chunks = [w.to_tfjs().tobytes() for w in weights]
    training_config = None
    if include_optimizer and model.optimizer is not None:
        training_config = _training_config(model)
        for spec, data in _optimizer_weights(model, weights):
            specs.append(spec)
            chunks.append(data)
    if user_defined_metadata is None:
        user_defined_metadata = getattr(model, "user_defined_metadata", None)
    if user_defined_metadata is not None and not isinstance(user_defined_metadata, dict):
        raise TypeError(f"user_defined_metadata must be a dict, got {type(user_defined_metadata).__name__}")
    topology = {"class_name": "Sequential", "config": model.get_config(), "keras_version": KERAS_VERSION,
                "backend": BACKEND}

    def model_json(weights_path: str) -> bytes:
        doc = {"modelTopology": topology, "weightsManifest": [{"paths": [weights_path], "weights": specs}],
               "format": "layers-model", "generatedBy": GENERATED_BY, "convertedBy": None}
        if training_config is not None:
            doc["trainingConfig"] = training_config
        if user_defined_metadata is not None:
            doc["userDefinedMetadata"] = user_defined_metadata
        return js_json(doc).encode("utf-8")

    model_json(WEIGHTS_BIN)  # fail on unserialisable metadata before touching the folder
    try:
        _commit(directory, model_json, chunks)
    except OSError as err:  # read-only, disk full...: the previous model there is unchanged
        raise OutputError.from_os_error(err, directory, "save the model to") from err
    return {"dateSaved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "modelTopologyType": "JSON", "modelTopologyBytes": len(js_json(topology).encode("utf-8")),
            "weightSpecsBytes": len(js_json(specs).encode("utf-8")),
            "weightDataBytes": sum(len(c) for c in chunks)}


def _local_save_dir(path) -> Path:
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        raise ModelFormatError(f"cannot save to {text!r}: sightsound saves to a folder, 'dir' or 'file:///abs/dir'")
    directory = Path(_file_url_path(text) if text.startswith("file://") else text).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ModelFormatError(f"cannot save to {directory}: it exists as a file; give a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError.from_os_error(err, directory, "create the model folder") from err
    return directory


def _file_url_path(url: str) -> str:
    """``file:///abs/dir`` -> ``/abs/dir``; ``file://rel/dir`` -> ``rel/dir`` (as tfjs-node)."""
    rest = url[len("file://"):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    return urllib.parse.unquote(rest)


def _commit(directory: Path, model_json: Callable[[str], bytes], chunks: list[bytes]) -> None:
    """Crash-safe replacement of the model in ``directory``.

    1. the weights go to a fresh ``weights.<token>.bin`` (synced);
    2. ``model.json`` naming it replaces the old one atomically: the new model is
       now complete, and the old one was complete until this instant;
    3. the weights are hard-linked to ``weights.bin`` (atomic rename) and
       ``model.json`` is atomically rewritten to name it, as TF.js does; the
       staged name is removed. Where hard links are unsupported the staged
       name stays in use.
    Leftovers of an interrupted save (only our own names) are removed later.
    """
    token = secrets.token_hex(8)
    staged = f"weights.{token}.bin"
    try:
        _write_synced(directory / staged, chunks)
        _replace_synced(directory, MODEL_JSON, model_json(staged), token)
    except BaseException:
        _remove_quietly(directory / staged)
        raise
    final = staged
    link = directory / f".{WEIGHTS_BIN}.{token}.tmp"
    try:
        os.link(directory / staged, link)
        os.replace(link, directory / WEIGHTS_BIN)
        _fsync_dir(directory)
        _replace_synced(directory, MODEL_JSON, model_json(WEIGHTS_BIN), token)
        final = WEIGHTS_BIN
    except OSError:
        _remove_quietly(link)  # no hard links here: keep the staged name
    _remove_leftovers(directory, keep=final)


def _write_synced(path: Path, chunks: list[bytes]) -> None:
    with open(path, "xb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def _replace_synced(directory: Path, name: str, data: bytes, token: str) -> None:
    temp = directory / f".{name}.{token}.tmp"
    try:
        _write_synced(temp, [data])
        os.replace(temp, directory / name)
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on this platform (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _remove_leftovers(directory: Path, keep: str) -> None:
    """Remove staged weights and temp files of earlier saves: only names sightsound creates."""
    for entry in os.scandir(directory):
        if entry.name != keep and (_STAGED_WEIGHTS.match(entry.name) or _OUR_TEMP.match(entry.name)):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# Loading: sources


class _Source:
    """Where model.json and its weight files come from."""

    where: str  # model.json's path or URL, for messages

    def stamp(self):
        """Identifies the current model.json; a change during a load means a save replaced it."""
        return None

    def read_model_json(self) -> bytes:
        raise NotImplementedError

    def check_weight_path(self, path: str) -> None:
        _check_relative(path, self.where)

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        raise NotImplementedError


def _check_relative(path, where: str) -> None:
    """Reject weight paths that could leave model.json's folder or host."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ModelFormatError(f"{where}: weight path {path!r} must be a non-empty file name")
    parts = urllib.parse.urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith("//"):
        raise ModelFormatError(f"{where}: weight path {path!r} points to another host or scheme; weight paths "
                               f"must be relative to model.json")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise ModelFormatError(f"{where}: weight path {path!r} is absolute; weight paths must be relative "
                               f"to model.json")
    for candidate in (path, urllib.parse.unquote(path)):
        if ".." in re.split(r"[/\\]", candidate):
            raise ModelFormatError(f"{where}: weight path {path!r} contains '..'; weight paths must stay in "
                                   f"model.json's folder")


class _LocalSource(_Source):
    def __init__(self, model_json: Path):
        self.path = model_json
        self.where = str(model_json)

    def stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def read_model_json(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_MODEL_JSON_BYTES:
                    raise ModelFormatError(f"{self.where}: {size} bytes is larger than the "
                                           f"{MAX_MODEL_JSON_BYTES}-byte limit for model.json")
                return f.read(MAX_MODEL_JSON_BYTES + 1)
        except OSError as err:
            raise ModelFormatError(f"cannot read {self.where}: {err.strerror or err}") from None

    def check_weight_path(self, path: str) -> None:
        """Also refuse weight files that are links leading out of model.json's folder, or not regular files."""
        super().check_weight_path(path)
        folder = self.path.parent
        file = folder.joinpath(*PurePosixPath(path).parts)
        try:
            real, base = file.resolve(), folder.resolve()
            if not file.exists():
                return  # reported as missing when read
        except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable folder
            raise ModelFormatError(f"{self.where}: weight path {path!r} cannot be resolved: {err}") from None
        if real != base and base not in real.parents:
            raise ModelFormatError(f"{self.where}: weight file {path!r} is a symbolic link leading out of the "
                                   f"model folder (to {real}); weight files must be inside {base}")
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:  # removed since exists(): a save replaced it; reported as missing when read
            return
        except OSError as err:
            raise ModelFormatError(f"{self.where}: weight file {path!r} cannot be read: {err}") from None
        if not stat.S_ISREG(mode):
            raise ModelFormatError(f"{self.where}: weight file {path!r} is not a regular file")

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        offset = 0
        for rel in paths:
            file = self.path.parent.joinpath(*PurePosixPath(rel).parts)
            try:
                with open(file, "rb") as f:
                    length = os.fstat(f.fileno()).st_size
                    if offset + length > size:
                        raise ModelFormatError(_size_message(self.where, paths, size, offset + length, file))
                    got = f.readinto(view[offset:offset + length])
                    offset += got
            except FileNotFoundError:
                raise ModelFormatError(f"{self.where}: weight file {rel!r} is missing ({file})") from None
            except OSError as err:
                raise ModelFormatError(f"{self.where}: cannot read weight file {file}: {err.strerror or err}") from None
        if offset != size:
            raise ModelFormatError(_size_message(self.where, paths, size, offset, None))
        return buffer


def _size_message(where: str, paths: list[str], expected: int, found: int, at) -> str:
    """``at`` names the file where reading stopped early because the data ran past the manifest."""
    if found > expected:
        what = f"{'at least ' if at is not None else ''}{found - expected} extra bytes"
    else:
        what = f"{expected - found} bytes missing"
    return (f"{where}: the weight files {paths} hold {'more than ' if at is not None else ''}"
            f"{found if at is None else expected} bytes but the manifest describes {expected} ({what}); "
            f"the weights do not belong to this model.json or are corrupt")


class _HttpSource(_Source):
    """model.json over http(s); weight URLs relative to it, with its query string, as TF.js's ``http`` handler."""

    def __init__(self, url: str, request_options: dict | None):
        self.headers, self.timeout = http_fetch.request_settings(request_options)
        self.url = url
        self.where = url
        parts = urllib.parse.urlsplit(url)
        self.query = parts.query
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def check_weight_path(self, path: str) -> None:
        super().check_weight_path(path)
        url = self._weight_url(path)
        if http_fetch.origin(url) != http_fetch.origin(self.url):
            raise ModelFormatError(f"{self.where}: weight path {path!r} resolves to another host ({url})")

    def _weight_url(self, path: str) -> str:
        url = urllib.parse.urljoin(self.base, path)
        return f"{url}?{self.query}" if self.query else url

    def read_model_json(self) -> bytes:
        with _model_format_errors():
            return http_fetch.fetch_bytes(self.url, headers=self.headers, timeout=self.timeout,
                                          max_bytes=MAX_MODEL_JSON_BYTES)

    def read_weights(self, paths: list[str], size: int) -> bytearray:
        buffer = bytearray(size + 1)  # one spare byte detects extra data
        view = memoryview(buffer)
        offset = 0
        for rel in paths:
            with _model_format_errors(), http_fetch.open_url(
                    self._weight_url(rel), headers=self.headers, timeout=self.timeout) as (body, length):
                if length is not None and offset + length > size:  # refuse before reading
                    raise ModelFormatError(_size_message(self.where, paths, size, offset + length, rel))
                while offset <= size:
                    n = body.readinto(view[offset:])
                    if not n:
                        break
                    offset += n
            if offset > size:
                raise ModelFormatError(_size_message(self.where, paths, size, offset, rel))
        view.release()
        if offset != size:
            raise ModelFormatError(_size_message(self.where, paths, size, offset, None))
        buffer.pop()
        return buffer


@contextlib.contextmanager
def _model_format_errors():
    """A failed fetch is a ModelFormatError, like every other reason a model cannot load."""
    try:
        yield
    except FetchError as err:
        raise ModelFormatError(str(err)) from None


def _open_source(url_or_path, request_options) -> _Source:
    text = os.fspath(url_or_path) if not isinstance(url_or_path, str) else url_or_path
    if text.startswith(("http://", "https://")):
        return _HttpSource(text, request_options)
    if "://" in text and not text.startswith("file://"):
        raise ModelFormatError(f"cannot load {text!r}: supported are a folder, a model.json path, file:// and "
                               f"http(s):// URLs")
    path = Path(_file_url_path(text) if text.startswith("file://") else text).expanduser()
    if path.is_dir():
        path = path / MODEL_JSON
    if not path.is_file():
        raise ModelFormatError(f"no TF.js model at {path}: expected a folder with model.json or a model.json path")
    return _LocalSource(path)


# ---------------------------------------------------------------------------
# Loading: model.json


def _parse_json(raw: bytes, where: str) -> dict:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{where}: not UTF-8 text (byte {err.start}); is this a model.json?") from None

    def no_constants(name):
        raise ValueError(f"{name} is not valid JSON")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise ModelFormatError(f"{where}: malformed JSON at line {err.lineno}, column {err.colno} "
                               f"(character {err.pos}): {err.msg}") from None
    except (ValueError, RecursionError) as err:
        raise ModelFormatError(f"{where}: malformed JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where}: expected a JSON object with modelTopology and weightsManifest, "
                               f"got {type(doc).__name__}")
    return doc


def _sequential_config(doc: dict, where: str) -> dict:
    fmt = doc.get("format")
    if fmt is not None and fmt != "layers-model":
        raise ModelFormatError(f"{where}: format {fmt!r} is not a TF.js Layers model ('layers-model'); "
                               f"graph models (converted SavedModels) cannot be loaded")
    topology = doc.get("modelTopology")
    if isinstance(topology, dict) and isinstance(topology.get("model_config"), dict):
        topology = topology["model_config"]  # written by the Keras-to-TF.js converter
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{where}: modelTopology is missing or not an object")
    if topology.get("class_name") != "Sequential":
        raise ModelFormatError(f"{where}: model class {topology.get('class_name')!r} is not supported; "
                               f"sightsound loads Sequential models")
    config = topology.get("config")
    if not isinstance(config, (dict, list)):
        raise ModelFormatError(f"{where}: the Sequential config is missing")
    return config


def _topology(config, device, where: str):
    """The Sequential model of ``config``, its modules not built yet."""
    from .model import Sequential

    try:
        model = Sequential.from_config(config, device=device)
    except SightsoundError as err:
        raise ModelFormatError(f"{where}: {err}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ModelFormatError(f"{where}: invalid model topology: {err}") from None
    return model


@dataclass
class _Entry:
    """One manifest entry, validated: where its bytes are and how to decode them."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    stored: str  # dtype of the bytes: the quantization dtype, else dtype
    scale: float
    minimum: float
    group: str | None
    offset: int  # within its manifest group's bytes
    size: int  # bytes
    manifest_group: int


def _plan(doc: dict, where: str) -> tuple[list[tuple[list[str], int]], list[_Entry]]:
    """Validate the manifest (paths, shapes, dtypes, sizes) before reading any weight."""
    manifest = doc.get("weightsManifest", [])
    if not isinstance(manifest, list):
        raise ModelFormatError(f"{where}: weightsManifest must be a list of groups")
    groups, entries, total = [], [], 0
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) or \
                not isinstance(group.get("weights"), list):
            raise ModelFormatError(f"{where}: weightsManifest[{g}] must be an object with 'paths' and 'weights' lists")
        offset = 0
        for spec in group["weights"]:
            entry = _entry(spec, where, offset, g)
            offset += entry.size
            entries.append(entry)
        total += offset
        if total > MAX_WEIGHT_BYTES:
            raise ModelFormatError(f"{where}: the manifest describes more than {MAX_WEIGHT_BYTES} bytes of weights")
        if offset and not group["paths"]:
            raise ModelFormatError(f"{where}: weightsManifest[{g}] has weights but no paths")
        groups.append((list(group["paths"]), offset))
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelFormatError(f"{where}: the manifest lists {duplicates} more than once")
    return groups, entries


def _entry(spec, where: str, offset: int, group: int) -> _Entry:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ModelFormatError(f"{where}: a manifest weight must be an object with a name, got {spec!r:.120}")
    name = spec["name"]
    shape = spec.get("shape")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or \
            any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
        raise ModelFormatError(f"{where}: weight {name}: shape {shape!r} must be a list of at most {MAX_RANK} "
                               f"non-negative ints")
    count = math.prod(shape)
    dtype = spec.get("dtype", "float32")
    if dtype not in ("float32", "int32"):
        raise ModelFormatError(f"{where}: weight {name}: dtype {dtype!r} is not supported (float32, int32)")
    stored, scale, minimum = dtype, 1.0, 0.0
    quantization = spec.get("quantization")
    if quantization is not None:
        stored = quantization.get("dtype") if isinstance(quantization, dict) else None
        if stored not in _QUANTIZED:
            raise ModelFormatError(f"{where}: weight {name}: quantization dtype {stored!r} is not supported "
                                   f"({', '.join(_QUANTIZED)})")
        if stored == "float16" and dtype != "float32":
            raise ModelFormatError(f"{where}: weight {name}: float16 quantization needs dtype float32, got {dtype}")
        if stored != "float16":
            scale, minimum = quantization.get("scale"), quantization.get("min")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (scale, minimum)):
                raise ModelFormatError(f"{where}: weight {name}: {stored} quantization needs numeric "
                                       f"'scale' and 'min'")
    size = count * _ITEM_BYTES[stored]
    if size > MAX_WEIGHT_BYTES:
        raise ModelFormatError(f"{where}: weight {name}: shape {shape} is larger than the "
                               f"{MAX_WEIGHT_BYTES}-byte limit")
    group_name = spec.get("group")
    return _Entry(name, tuple(shape), dtype, stored, float(scale), float(minimum), group_name, offset, size, group)


def _decode(entry: _Entry, data: bytearray) -> np.ndarray:
    """The entry's values as TF.js's ``decodeWeights`` computes them (float32 or int32)."""
    count = math.prod(entry.shape)
    raw = np.frombuffer(data, dtype={"float32": "<f4", "int32": "<i4", "float16": "<f2", "uint16": "<u2",
                                     "uint8": "u1"}[entry.stored], count=count, offset=entry.offset)
    if entry.stored in ("uint8", "uint16"):
        values = raw.astype(np.float64) * entry.scale + entry.minimum  # JS: doubles, then stored
        values = np.floor(values + 0.5).astype(np.int32) if entry.dtype == "int32" else values.astype(np.float32)
    elif entry.stored == "float16":
        values = raw.astype(np.float32)
    else:
        values = raw.astype(np.float32 if entry.dtype == "float32" else np.int32)  # a native-endian copy
    return values.reshape(entry.shape)


# ---------------------------------------------------------------------------
# Loading: putting it together


def load_layers_model(url_or_path, request_options: dict | None = None, device="auto"):
    """Load a TF.js Layers model: a folder, a ``model.json`` path, ``file://…`` or ``http(s)://…/model.json``.

    ``request_options`` (HTTP only): ``{"headers": {...}, "timeout": seconds}``
    (TF.js's ``{"requestInit": {"headers": ...}}`` works too); a redirect to
    another origin gets none of the headers (:mod:`sightsound.http_fetch`). Weight files are
    resolved relative to ``model.json``; single ``weights.bin`` and sharded
    ``group1-shardKofN.bin``, float32 and the converter's float16 / uint8 /
    uint16 quantization are read. With a ``trainingConfig`` the model comes
    back compiled, with the saved optimizer state. A local model that a save
    replaces while it is being read is read again.

    >>> import sightsound
    >>> model = sightsound.load_layers_model("https://example.com/models/mnist/model.json",
    ...                                      {"headers": {"Authorization": "Bearer abc"}})  # doctest: +SKIP
    >>> model.predict(x_test[:4]).argmax(axis=1)  # doctest: +SKIP
    """
    source = _open_source(url_or_path, request_options)
    model, doc, matched, entries, data = _read_consistent(source, device)
    where = source.where
    weights = model_weights(model)  # builds the modules
    with torch.no_grad():
        for weight in weights:
            entry = matched[weight.name]
            weight.tensor.copy_(weight.from_tfjs(_decode(entry, data[entry.manifest_group])))
    training = doc.get("trainingConfig")
    if training is not None:
        _compile(model, training, where)
        optimizer_entries = [e for e in entries if e.group == "optimizer"]
        if optimizer_entries:
            _restore_optimizer(model, weights, optimizer_entries, data, where)
    metadata = doc.get("userDefinedMetadata")
    model.user_defined_metadata = metadata if isinstance(metadata, dict) else None
    return model


_READ_ATTEMPTS = 5


def _read_consistent(source: _Source, device):
    """``_read``, again if a save replaced model.json meanwhile (local folders)."""
    for attempt in range(_READ_ATTEMPTS):
        last = attempt + 1 == _READ_ATTEMPTS
        stamp = source.stamp()
        try:
            result = _read(source, device)
        except ModelFormatError:
            if last or source.stamp() == stamp:
                raise
        else:
            if last or source.stamp() == stamp:
                return result
        time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _read(source: _Source, device):
    """Read and check everything, in the order that fails early and reads no unsafe path.

    model.json -> topology (layers, shapes; no weights allocated yet) -> the
    manifest: sizes capped, every layer weight present with its shape, every
    path safe -> only then the weight bytes, right after model.json as TF.js does.
    """
    where = source.where
    doc = _parse_json(source.read_model_json(), where)
    model = _topology(_sequential_config(doc, where), device, where)
    groups, entries = _plan(doc, where)
    expected = [(f"{layer.name}/{spec.suffix}", tuple(spec.shape)) for _, layer, spec in _tfjs_order(model)]
    matched = _match_weights(expected, [e for e in entries if e.group != "optimizer"], where)
    for paths, _ in groups:
        for path in paths:
            source.check_weight_path(path)  # every path, before reading any
    data = [source.read_weights(paths, size) if size else bytearray() for paths, size in groups]
    return model, doc, matched, entries, data


def _match_weights(weights: list[tuple[str, tuple]], entries: list[_Entry], where: str) -> dict[str, _Entry]:
    """Pair every layer weight with its manifest entry, by name, as TF.js's strict ``loadWeights``.

    Like TF.js, a name ``layer/cell/kernel`` (TF 2.2+ exports) also matches ``layer/kernel``.
    """
    wanted = {name for name, _ in weights}
    listed: dict[str, _Entry] = {}
    unused = []
    for entry in entries:
        name = entry.name
        if name not in wanted:
            tokens = name.split("/")
            name = "/".join(tokens[:-2] + tokens[-1:])
        if name in wanted and name not in listed:
            listed[name] = entry
        else:
            unused.append(entry.name)
    if unused:
        raise ModelFormatError(f"{where}: the manifest has weights no layer uses: {', '.join(unused[:10])}"
                               f"{' ...' if len(unused) > 10 else ''}")
    for name, shape in weights:
        entry = listed.get(name)
        if entry is None:
            raise ModelFormatError(f"{where}: weight {name} (shape {list(shape)}) is missing from "
                                   f"the weightsManifest")
        if entry.shape != shape:
            raise ModelFormatError(f"{where}: weight {name} has shape {list(entry.shape)} in the manifest "
                                   f"but the layer needs {list(shape)}")
        if entry.dtype != "float32":
            raise ModelFormatError(f"{where}: weight {name} has dtype {entry.dtype}; layer weights are float32")
    return listed


def _compile(model, training: dict, where: str) -> None:
    """``compile()`` from ``trainingConfig``, as TF.js's ``loadTrainingConfig``."""
    if not isinstance(training, dict):
        raise ModelFormatError(f"{where}: trainingConfig must be an object")
    for key in ("weighted_metrics", "loss_weights", "sample_weight_mode"):
        if training.get(key) is not None:
            raise ModelFormatError(f"{where}: trainingConfig.{key} is not supported")
    loss = training.get("loss")
    if isinstance(loss, list) and len(loss) == 1:
        loss = loss[0]
    if not isinstance(loss, str):
        raise ModelFormatError(f"{where}: trainingConfig.loss must be one loss name, got {loss!r:.100}")
    metrics = training.get("metrics") or []
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ModelFormatError(f"{where}: trainingConfig.metrics must be a list of names, got {metrics!r:.100}")
    opt_config = training.get("optimizer_config")
    if not isinstance(opt_config, dict):
        raise ModelFormatError(f"{where}: trainingConfig.optimizer_config is missing")
    if (opt_config.get("config") or {}).get("centered"):
        raise ModelFormatError(f"{where}: centered RMSProp is not supported")
    try:
        optimizer = optimizers.make(opt_config)
        model.compile(optimizer=optimizer, loss=camel_case(loss), metrics=[camel_case(m) for m in metrics])
    except SightsoundError as err:
        raise ModelFormatError(f"{where}: trainingConfig: {err}") from None
    except (ValueError, TypeError) as err:
        raise ModelFormatError(f"{where}: trainingConfig: {err}") from None


def _restore_optimizer(model, weights: list[_Weight], entries: list[_Entry], data: list[bytearray],
                       where: str) -> None:
    """``optimizer.setWeights()``: ``iter`` first, then slots named ``<weight>/<slot>``."""
    opt = model.optimizer
    first, rest = entries[0], entries[1:]
    if first.shape != () or first.size == 0:
        raise ModelFormatError(f"{where}: the first optimizer weight ({first.name}) must be the scalar 'iter'")
    opt.iterations = int(_decode(first, data[first.manifest_group]))
    if not rest:
        return  # saved before the first step: slots start at zero
    by_name = {e.name: e for e in rest}
    index = {id(p): i for i, p in enumerate(opt.params)}
    expected = []
    for slot in opt.slot_names:
        for weight in weights[:_trainable_count(model)]:
            expected.append(f"{weight.name}/{slot}")
            entry = by_name.get(f"{weight.name}/{slot}")
            if entry is None:
                raise ModelFormatError(f"{where}: optimizer weight {weight.name}/{slot} is missing "
                                       f"({opt.class_name} saves {', '.join(opt.slot_names)} for every weight)")
            if entry.shape != weight.shape:
                raise ModelFormatError(f"{where}: optimizer weight {entry.name} has shape {list(entry.shape)}, "
                                       f"expected {list(weight.shape)}")
            i = index.get(id(weight.tensor))
            if i is not None:
                with torch.no_grad():
                    opt.slots[slot][i].copy_(weight.from_tfjs(_decode(entry, data[entry.manifest_group])))
    unused = sorted(set(by_name) - set(expected))
    if unused:
        raise ModelFormatError(f"{where}: optimizer weights {', '.join(unused[:5])} do not belong to a "
                               f"{opt.class_name} optimizer of this model")
