"""Export a model to ONNX (``sightsound export DIR --format onnx -o model.onnx``).

The ONNX graph takes what ``model.predict`` takes: a float32 batch in TF.js's
layout (NHWC for images), with a dynamic batch axis, and returns the model's
outputs (softmax probabilities for the chapter's models). Dropout is off.
A model with one input and one output (every ``Sequential``) names them ``input``
and ``output``; a functional model with several names them after its input and
output layers (:func:`onnx_names`).

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
import tempfile
import warnings
from pathlib import Path

import numpy as np

import torch
from torch import nn

INPUT_NAME = "input"
OUTPUT_NAME = "output"


class _Inference(nn.Module):
    """The model's network in inference mode: NHWC float32 in (one tensor per input), TF.js-shaped outputs out."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *xs: torch.Tensor):
        return self.net(*xs)


def onnx_names(model) -> tuple[list[str], list[str]]:
    """The graph's input and output names: ``input``/``output`` for a model with one of each, else the input
    layers' and output layers' names (``_2``, ``_3``... when a layer gives several outputs)."""
    inputs = getattr(model, "inputs", None) or [None]
    outputs = getattr(model, "outputs", None) or [None]
    if len(inputs) == 1 and len(outputs) == 1:
        return [INPUT_NAME], [OUTPUT_NAME]
    input_names = [t.source_layer.name for t in inputs]
    output_names, seen = [], {}
    for t in outputs:
        name = t.source_layer.name
        seen[name] = seen.get(name, 0) + 1
        output_names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return input_names, output_names


def export_onnx(model, path: str | os.PathLike, opset_version: int | None = None) -> Path:
    """Write ``model`` as an ONNX file at ``path``; returns the path.

    The graph's input is named ``input`` (shape ``[batch, *model.input_shape]``),
    its output ``output``; several inputs and outputs are named by :func:`onnx_names`.
    Needs the ``onnx`` extra (``onnx``, ``onnxscript``).
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
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    examples = tuple(torch.zeros((2, *shape), dtype=torch.float32) for shape in shapes)
    input_names, output_names = onnx_names(model)
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=2**20)
    with warnings.catch_warnings(), _quiet_logs("torch.onnx", "torch.export", "torch._dynamo"):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, examples, str(out), input_names=input_names, output_names=output_names,
                          dynamic_shapes={"xs": tuple({0: batch} for _ in examples)}, opset_version=opset_version,
                          dynamo=True, external_data=False, verbose=False)
    return out


class OnnxPredictor:
    """``model.predict`` through ONNX Runtime on one thread, for serving one input at a time.

    A model as small as the chapter's spends most of a PyTorch call on the per-layer dispatch that ONNX
    Runtime does not have. The graph comes from ``onnx_file`` (``sightsound export`` of the model's saved
    folder: :meth:`from_folder`) or is exported from the model's weights now; the outputs match
    ``model.predict``'s within float32 rounding. One input and one output (every ``Sequential``); needs the
    ``onnx`` extra. Thread-safe, as ONNX Runtime's sessions are.
    """

    def __init__(self, model, onnx_file: str | os.PathLike | None = None):
        import onnxruntime

        if onnx_names(model) != ([INPUT_NAME], [OUTPUT_NAME]):
            raise ValueError("OnnxPredictor takes a model with one input and one output")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        if onnx_file is not None:
            self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        else:
            with tempfile.TemporaryDirectory() as folder:
                path = export_onnx(model, Path(folder) / "model.onnx")
                self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_shape = model.input_shape
        self.output_shape = model.output_shape

    @classmethod
    def from_folder(cls, model, folder: str | os.PathLike, timeout: float = 600) -> "OnnxPredictor":
        """For ``model`` as saved in ``folder``: the export runs in a child process (``sightsound export``),
        since the exporter traces by patching PyTorch for the whole process, which threads that train or
        predict meanwhile must not meet. :class:`RuntimeError` names what failed."""
        import subprocess
        import sys

        with tempfile.TemporaryDirectory() as work:
            out = Path(work) / "model.onnx"
            done = subprocess.run([sys.executable, "-m", "sightsound", "export", str(folder), "-o", str(out)],
                                  capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0 or not out.is_file():
                raise RuntimeError(f"exporting {folder} to ONNX failed: {done.stderr.strip()[-500:]}")
            return cls(model, out)

    def predict(self, x) -> np.ndarray:
        """The outputs for a batch ``x`` (``[N, *input_shape]``), as ``model.predict`` gives them."""
        return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]


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
