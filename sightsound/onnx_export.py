"""Export a model to ONNX (``sightsound export DIR --format onnx -o model.onnx``).

The ONNX graph takes what ``model.predict`` takes: a float32 batch in TF.js's
layout (NHWC for images), with a dynamic batch axis, and returns the model's
outputs (softmax probabilities for the chapter's models). Dropout is off.

Example::

    >>> from sightsound import presets
    >>> from sightsound.onnx_export import export_onnx
    >>> export_onnx(presets.build("mnist-conv", device="cpu"), "mnist.onnx")  # doctest: +SKIP
    PosixPath('mnist.onnx')
    >>> import onnxruntime, numpy as np  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession("mnist.onnx")  # doctest: +SKIP
    >>> session.run(None, {"input": np.zeros((5, 28, 28, 1), np.float32)})[0].shape  # doctest: +SKIP
    (5, 10)
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

INPUT_NAME = "input"
OUTPUT_NAME = "output"


class _Inference(nn.Module):
    """The model's network in inference mode: NHWC float32 in, TF.js-shaped outputs out."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def export_onnx(model, path: str | os.PathLike, opset_version: int | None = None) -> Path:
    """Write ``model`` as an ONNX file at ``path``; returns the path.

    The graph's input is named ``input`` (shape ``[batch, *model.input_shape]``),
    its output ``output``. Needs the ``onnx`` extra (``onnx``, ``onnxscript``).
    """
    try:
        import onnxscript  # noqa: F401  (the torch.onnx exporter needs it)
    except ImportError as err:
        raise RuntimeError("ONNX export needs onnx and onnxscript: pip install 'sightsound[onnx]'") from err
    model.build()
    net = copy.deepcopy(model.net).to("cpu", memory_format=torch.contiguous_format).float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    module = _Inference(net).eval()
    example = torch.zeros((2, *model.input_shape), dtype=torch.float32)
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=2**20)
    with warnings.catch_warnings(), _quiet_logs("torch.onnx", "torch.export", "torch._dynamo"):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(out), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes={"x": {0: batch}}, opset_version=opset_version, dynamo=True,
                          external_data=False, verbose=False)
    return out


@contextlib.contextmanager
def _quiet_logs(*names: str):
    """Silence the exporter's informational logging (e.g. 'torchvision is not installed')."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
