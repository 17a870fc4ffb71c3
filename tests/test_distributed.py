"""Two CPU processes (gloo) under torchrun train to the same weights as one process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, out, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args, str(out)], env=env, cwd=tmp_path, timeout=240,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_run_matches_single_process(tmp_path):
    single = _run([str(WORKER)], tmp_path / "single.npz", tmp_path)
    double = _run(["-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
                   str(WORKER)], tmp_path / "ddp.npz", tmp_path)
    assert np.allclose(single["loss"], double["loss"], atol=1e-5), (single["loss"], double["loss"])
    assert np.abs(single["weights"] - double["weights"]).max() < 1e-5
