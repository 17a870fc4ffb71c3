"""Training checkpoints: the model with its optimizer, the run's state and the random generators,
saved after each epoch so that an interrupted run continues where it stopped."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import torch

from ..errors import SightsoundError

CHECKPOINT_DIR = "checkpoint"  #: inside a run's output folder
STATE_KEY = "sightsound_checkpoint"  #: where the state sits in the model's userDefinedMetadata


def save_checkpoint(model, directory: str | Path, state: dict) -> None:
    """Save ``model`` (with its optimizer) into ``directory`` (crash-safe, as every model save), with
    ``state`` and PyTorch's random generator in its metadata."""
    state = {**state, "torch_rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    model.save(str(directory), include_optimizer=True, user_defined_metadata={STATE_KEY: state})


def find_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint folder of a run folder (or the folder itself when it is one), if it holds a model."""
    folder = Path(folder).expanduser()
    for candidate in (folder / CHECKPOINT_DIR, folder):
        if (candidate / "model.json").is_file():
            return candidate
    return None


def load_checkpoint(folder: str | Path, device: str) -> tuple[object, dict]:
    """The model (with its optimizer) and the state of a checkpoint; PyTorch's generator is restored."""
    from ..tfjs import load_layers_model

    model = load_layers_model(str(folder), device=device)
    state = (model.user_defined_metadata or {}).get(STATE_KEY)
    if not state or model.optimizer is None or "epochs_done" not in state:
        raise SightsoundError(f"{folder} is a saved model, not a sightsound training checkpoint")
    rng = np.frombuffer(base64.b64decode(state["torch_rng"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(rng))
    return model, state
