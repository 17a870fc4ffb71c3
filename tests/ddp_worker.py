"""Trains Listing 4.1 on fixed random data and writes the final weights (used by test_distributed.py).

Run alone, or under ``torchrun --nproc-per-node 2``; both must end with the same weights.
"""

import sys

import numpy as np
import torch

import sightsound
from sightsound import presets

sightsound.set_seed(0)
rng = np.random.default_rng(0)
x = rng.random((96, 28, 28, 1), dtype=np.float32)
y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 96)]
model = presets.build("mnist-conv", device="cpu")
# SGD: RMSProp would amplify float rounding in near-zero gradients (g / sqrt(ms) is about +-3 for any tiny g)
model.compile(optimizer="sgd", learning_rate=0.1, loss="categoricalCrossentropy", metrics=["accuracy"])
history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False)
if sightsound.engine.distributed.is_main_process():
    weights = torch.cat([p.detach().reshape(-1) for p in model.net.parameters()]).numpy()
    np.savez(sys.argv[1], weights=weights, loss=np.array(history.history["loss"]))
