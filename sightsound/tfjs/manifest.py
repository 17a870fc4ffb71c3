"""The ``weightsManifest`` read: entries checked before any byte is read, paired with the layers, decoded.

Decoding covers the converter's quantization (float16, uint8, uint16) exactly as
TF.js's ``decodeWeights`` computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFormatError
from .constants import MAX_RANK, MAX_WEIGHT_BYTES

# Bytes per element of each stored dtype (after quantization, if any).
_ITEM_BYTES = {"float32": 4, "int32": 4, "float16": 2, "uint16": 2, "uint8": 1}
_QUANTIZED = ("uint8", "uint16", "float16")


@dataclass
class Entry:
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


def plan(doc: dict, where: str) -> tuple[list[tuple[list[str], int]], list[Entry]]:
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


def _entry(spec, where: str, offset: int, group: int) -> Entry:
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
    return Entry(name, tuple(shape), dtype, stored, float(scale), float(minimum), group_name, offset, size, group)


def decode(entry: Entry, data: bytearray) -> np.ndarray:
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


def match_weights(weights: list[tuple[str, tuple]], entries: list[Entry], where: str) -> dict[str, Entry]:
    """Pair every layer weight with its manifest entry, by name, as TF.js's strict ``loadWeights``.

    Like TF.js, a name ``layer/cell/kernel`` (TF 2.2+ exports) also matches ``layer/kernel``.
    """
    wanted = {name for name, _ in weights}
    listed: dict[str, Entry] = {}
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
