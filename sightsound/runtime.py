"""Process-wide knobs every entry point shares: device choice, seeding, the CPU heap."""

from __future__ import annotations

import ctypes
import os
import random
import sys

import numpy as np
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` (and ``None``) picks CUDA when PyTorch sees a GPU, else the CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(device)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but PyTorch sees no CUDA GPU here; use --device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"unknown device {name!r}; expected one of auto, cpu, cuda, cuda:N")
    return torch.device(name)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that runs repeat (``--seed`` on the CLI)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


# ---------------------------------------------------------------------------
# glibc's heap (a no-op elsewhere)

#: Freed memory glibc keeps at the top of each heap for reuse instead of returning it to the kernel.
HEAP_TOP_PAD_BYTES = 256 << 20
#: Requests at least this large get their own mmap (and page faults on every use) instead of heap memory:
#: above the activations of a 1,024-image prediction batch (88 MB for Listing 4.5, 310 MB for 4.8).
MMAP_THRESHOLD_BYTES = 512 << 20
_MMAP_THRESHOLD_FALLBACK = 32 << 20  # the most some glibc versions accept (their dynamic maximum)
_M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -2, -3, -8  # glibc <malloc.h>
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
_heap_tuned: bool | None = None


def _glibc_mallopt(param: int, value: int) -> bool:
    """``mallopt(param, value)`` on this process's heap; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: nothing to tune
            return False
        return bool(libc.mallopt(param, value))
    except (OSError, AttributeError):
        return False


def tune_cpu_heap() -> bool:
    """Let glibc keep freed tensor memory for reuse, so CPU training steps do not page-fault.

    A training step frees and re-allocates the same large activations every
    batch. With glibc's defaults the heap may hand that memory back to the
    kernel after each free and fault it in again page by page on the next
    allocation: 2,600-22,000 page faults per training step measured here,
    which costs up to half the speed (whether it happens depends on how the heap
    happened to grow). This sets, once per process, ``M_TOP_PAD`` to
    :data:`HEAP_TOP_PAD_BYTES` (memory a step freed stays mapped for the
    next one, so the resident size stays near its peak instead of dipping
    between steps) and ``M_MMAP_THRESHOLD`` to :data:`MMAP_THRESHOLD_BYTES`
    (setting any heap option stops glibc's own threshold from rising; left at
    its 128 KiB start, every activation would get a fresh mmap; at glibc's
    usual 32 MiB maximum, prediction batches still would), as
    ``MALLOC_TOP_PAD_`` and ``MALLOC_MMAP_THRESHOLD_`` would.
    ``Sequential.fit``/``evaluate``/``predict`` call it when the model is on
    the CPU.

    Leaves the heap alone (returns False) when not on glibc, when the user set
    ``MALLOC_TOP_PAD_`` or ``MALLOC_MMAP_THRESHOLD_`` (or their
    ``GLIBC_TUNABLES``) or preloads another allocator (jemalloc, tcmalloc,
    mimalloc), or when ``SIGHTSOUND_TUNE_HEAP=0``.
    """
    global _heap_tuned
    if _heap_tuned is None:
        preload, tunables = os.environ.get("LD_PRELOAD", ""), os.environ.get("GLIBC_TUNABLES", "")
        users_own = (any(name in os.environ for name in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_"))
                     or any(name in tunables for name in ("malloc.top_pad", "malloc.mmap_threshold"))
                     or any(name in preload for name in _OTHER_ALLOCATORS))
        _heap_tuned = (os.environ.get("SIGHTSOUND_TUNE_HEAP", "1") != "0" and not users_own
                       and (_glibc_mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                            or _glibc_mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_FALLBACK))
                       and _glibc_mallopt(_M_TOP_PAD, HEAP_TOP_PAD_BYTES))
    return _heap_tuned


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) for this process; False where that is not glibc.

    glibc gives threads their own arenas (up to 8 per core) and keeps memory
    freed in one arena for that arena: a server whose requests run on changing
    threads then creeps upwards. Two arenas keep the resident size flat under
    load at no measurable cost in latency (``benchmarks/server_load.py``).
    """
    return _glibc_mallopt(_M_ARENA_MAX, arenas)
