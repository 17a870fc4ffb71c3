"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc-per-node N -m sightsound mnist train ...`` sets
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; :func:`context` then joins the process
group (NCCL on GPUs, gloo on CPUs). ``Sequential.fit`` splits every global
batch across the processes and sums gradients with ``all_reduce``, so a run
with N processes computes the same updates as one process with the same global
batch. Only rank 0 writes files.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> Context:
    """The current process's place in a torchrun job (rank 0 of 1 when not distributed)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        atexit.register(_shutdown)
    return Context(dist.get_rank(), dist.get_world_size())


def _shutdown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_device(device: str) -> str:
    """Under torchrun with CUDA, each process takes the GPU of its LOCAL_RANK."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
