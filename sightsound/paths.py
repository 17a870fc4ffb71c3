"""Where sightsound reads datasets and writes caches.

Data directory (datasets, possibly read-only): the ``--data-dir`` flag, else
the ``SIGHTSOUND_DATA`` environment variable, else ``~/.cache/sightsound``.
Cache directory (derived data sightsound writes itself: spectrogram caches,
downloaded speech-commands models): ``SIGHTSOUND_CACHE``, else ``~/.cache/sightsound``.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path("~/.cache/sightsound")


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The dataset root: ``explicit``, else ``$SIGHTSOUND_DATA``, else ``~/.cache/sightsound``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SIGHTSOUND_DATA")
    if env:
        return Path(env).expanduser()
    return DEFAULT_HOME.expanduser()


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache root for derived data: ``explicit``, else ``$SIGHTSOUND_CACHE``, else ``~/.cache/sightsound``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SIGHTSOUND_CACHE")
    if env:
        return Path(env).expanduser()
    return DEFAULT_HOME.expanduser()


def is_writable_dir(path: Path) -> bool:
    """True when ``path`` (or the nearest existing parent) can be written to."""
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)
