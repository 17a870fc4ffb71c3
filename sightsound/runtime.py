"""Process-wide knobs every entry point shares: device choice, seeding, the CPU heap."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import sys
import threading
import time

import numpy as np
import torch

from .errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` (and ``None``) picks CUDA when PyTorch sees a GPU, else the CPU.
    A device that is not there raises :class:`DeviceError` saying what PyTorch found.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(device)
    if not (name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise DeviceError(f"unknown device {name!r}; expected one of auto, cpu, cuda, cuda:N")
    if name.startswith("cuda"):
        found = _cuda_found()
        if found:
            raise DeviceError(f"device {name!r} was asked for, but {found}; use --device cpu (or auto)")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} was asked for, but PyTorch sees only "
                              f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return torch.device(name)


def _cuda_found() -> str | None:
    """Why CUDA cannot be used here, in words, or None when it can."""
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is a CPU-only build without CUDA support"
    if not torch.cuda.is_available():
        return (f"this PyTorch ({torch.__version__}, built for CUDA {torch.version.cuda}) finds no usable "
                f"CUDA GPU (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them)")
    return None


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that runs repeat (``--seed`` on the CLI).

    Python's string hashing is seeded only when the interpreter starts (``PYTHONHASHSEED``); nothing in
    sightsound depends on it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
#: ``SIGHTSOUND_TUNE_HEAP=0`` leaves glibc's heap as it is (``--no-heap-tuning`` on the command line sets it).
TUNE_HEAP_ENV = "SIGHTSOUND_TUNE_HEAP"
#: A tuned heap gives its free memory back once fit/evaluate/predict have not run for this long.
IDLE_TRIM_SECONDS = 1.0
_heap_tuned: bool | None = None
_keep_memory = False
_activity = threading.Lock()  # guards the call count, the last call's end and the trim timer
_active_calls = 0
_last_call_end = 0.0
_trim_timer: threading.Timer | None = None


def _glibc():
    """This process's C library when it is glibc, else None (musl and others: nothing to tune)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "malloc_trim") else None


def _glibc_mallopt(param: int, value: int) -> bool:
    """``mallopt(param, value)`` on this process's heap; False where the C library is not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(param, value))


def heap_environment() -> dict[str, str]:
    """The environment variables that give another process the heap :func:`tune_cpu_heap` sets up in this
    one (glibc reads them at start-up): for benchmarks that run a plain PyTorch loop on the same heap."""
    return {"MALLOC_TOP_PAD_": str(HEAP_TOP_PAD_BYTES), "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES)}


def _users_own_heap_settings() -> bool:
    """True when the user chose the heap themselves: environment, tunables, another allocator, or opted out."""
    preload, tunables = os.environ.get("LD_PRELOAD", ""), os.environ.get("GLIBC_TUNABLES", "")
    return (os.environ.get(TUNE_HEAP_ENV, "1") == "0"
            or any(name in os.environ for name in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_"))
            or any(name in tunables for name in ("malloc.top_pad", "malloc.mmap_threshold"))
            or any(name in preload for name in _OTHER_ALLOCATORS))


def tune_cpu_heap(*, keep_memory: bool = False) -> bool:
    """Let glibc keep freed tensor memory for reuse, so CPU training steps do not page-fault.

    A training step frees and re-allocates the same large activations every
    batch. With glibc's defaults the heap may hand that memory back to the
    kernel after each free and fault it in again page by page on the next
    allocation, which costs up to half the speed (whether it happens depends
    on how the heap happened to grow). This sets, once per process,
    ``M_MMAP_THRESHOLD`` to :data:`MMAP_THRESHOLD_BYTES` (setting any heap
    option stops glibc's own threshold from rising; left at its 128 KiB
    start, every activation would get a fresh mmap; at glibc's usual 32 MiB
    maximum, prediction batches still would) and ``M_TOP_PAD`` to
    :data:`HEAP_TOP_PAD_BYTES` (memory a step freed stays mapped for the next
    one), as ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TOP_PAD_`` would.

    The price is memory: the heap keeps what it freed. ``keep_memory=True``
    (the command line and the server, which tune at start-up) accepts that for
    the whole process; otherwise :func:`cpu_heap` gives freed memory back once
    ``fit``/``evaluate``/``predict`` have been idle for :data:`IDLE_TRIM_SECONDS`. ``Sequential.fit`` calls this on
    its first run on the CPU.

    Returns True when the heap settings were changed (now or before). Leaves the
    heap alone (returns False) when not on glibc, when the user set
    ``MALLOC_TOP_PAD_`` or ``MALLOC_MMAP_THRESHOLD_`` (or their
    ``GLIBC_TUNABLES``) or preloads another allocator (jemalloc, tcmalloc,
    mimalloc), or when ``SIGHTSOUND_TUNE_HEAP=0``.
    """
    global _heap_tuned, _keep_memory
    if _heap_tuned is None and not _users_own_heap_settings():
        # The threshold first: a refused value changes nothing, while a top pad, once set, freezes the
        # threshold wherever it stands. glibc never refuses a top pad, but if one did, the threshold
        # has changed all the same and the heap counts as tuned.
        _heap_tuned = (_glibc_mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                       or _glibc_mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_FALLBACK))
        if _heap_tuned:
            _glibc_mallopt(_M_TOP_PAD, HEAP_TOP_PAD_BYTES)
    if _heap_tuned and keep_memory:
        _keep_memory = True
    return bool(_heap_tuned)


def heap_is_tuned() -> bool:
    """Whether :func:`tune_cpu_heap` has changed this process's heap settings."""
    return bool(_heap_tuned)


def release_free_memory() -> bool:
    """Hand memory the heap holds but does not use back to the system (glibc's ``malloc_trim``)."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


@contextlib.contextmanager
def cpu_heap(device: torch.device, tune: bool):
    """Around ``fit``/``evaluate``/``predict``: tune the heap first when ``tune`` and the device is the
    CPU; once no such call has run for :data:`IDLE_TRIM_SECONDS`, give freed memory back, unless the
    process chose to keep it (``keep_memory``). Giving it back after every call would make the next
    call fault all of its activations in again: calls in a loop keep the memory, an idle model does not."""
    global _active_calls, _last_call_end, _trim_timer
    if device.type != "cpu":
        yield
        return
    if tune:
        tune_cpu_heap()
    with _activity:
        _active_calls += 1
    try:
        yield
    finally:
        with _activity:
            _active_calls -= 1
            _last_call_end = time.monotonic()
            if _heap_tuned and not _keep_memory and _trim_timer is None:
                _trim_timer = _start_timer(IDLE_TRIM_SECONDS)


def _start_timer(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _trim_when_idle)
    timer.daemon = True
    timer.start()
    return timer


def _trim_when_idle() -> None:
    global _trim_timer
    with _activity:
        wait = _last_call_end + IDLE_TRIM_SECONDS - time.monotonic()
        if _active_calls or wait > 0:  # busy again: look later
            _trim_timer = _start_timer(max(wait, 0.05) if not _active_calls else IDLE_TRIM_SECONDS)
            return
        _trim_timer = None
    release_free_memory()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``M_ARENA_MAX``) for this process; False where that is not glibc.

    glibc gives threads their own arenas (up to 8 per core) and keeps memory
    freed in one arena for that arena: a server whose requests run on changing
    threads then creeps upwards. Two arenas keep the resident size flat under
    load at no measurable cost in latency (``benchmarks/server_load.py``).
    """
    return _glibc_mallopt(_M_ARENA_MAX, arenas)
