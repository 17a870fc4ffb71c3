"""Crash-safe commit of a save: a kill at any moment leaves the previous or the new model complete.

Only sightsound's own file names are ever created or removed; other files in
the folder are never touched.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Callable

from ..fileio import fsync_directory, remove_quietly
from .constants import MODEL_JSON, WEIGHTS_BIN

# Our own file names in a model folder; only these are ever created or removed.
STAGED_WEIGHTS = re.compile(r"^weights\.[0-9a-f]{16}\.bin$")
OUR_TEMP = re.compile(r"^\.(model\.json|weights\.bin)\.[0-9a-f]{16}\.tmp$")


def commit(directory: Path, model_json: Callable[[str], bytes], chunks: list[bytes]) -> None:
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
        write_synced(directory / staged, chunks)
        _replace_synced(directory, MODEL_JSON, model_json(staged), token)
    except BaseException:
        remove_quietly(directory / staged)
        raise
    final = staged
    link = directory / f".{WEIGHTS_BIN}.{token}.tmp"
    try:
        os.link(directory / staged, link)
        os.replace(link, directory / WEIGHTS_BIN)
        fsync_directory(directory)
        _replace_synced(directory, MODEL_JSON, model_json(WEIGHTS_BIN), token)
        final = WEIGHTS_BIN
    except OSError:
        remove_quietly(link)  # no hard links here: keep the staged name
    _remove_leftovers(directory, keep=final)


def write_synced(path: Path, chunks: list[bytes]) -> None:
    with open(path, "xb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def _replace_synced(directory: Path, name: str, data: bytes, token: str) -> None:
    temp = directory / f".{name}.{token}.tmp"
    try:
        write_synced(temp, [data])
        os.replace(temp, directory / name)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_directory(directory)


def _remove_leftovers(directory: Path, keep: str) -> None:
    """Remove staged weights and temp files of earlier saves: only names sightsound creates."""
    for entry in os.scandir(directory):
        if entry.name != keep and (STAGED_WEIGHTS.match(entry.name) or OUR_TEMP.match(entry.name)):
            try:
                os.unlink(entry.path)
            except OSError:
                pass
