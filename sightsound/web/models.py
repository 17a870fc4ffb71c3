"""The folder of saved models the web app lists, loads and serves.

Every model is a sub-folder ``<models_dir>/<name>/`` with a TF.js
``model.json`` (plus weights, and ``metadata.json`` for speech models). Names
come from URLs and forms, so they are checked against :data:`NAME_PATTERN`
and every resolved path must stay inside ``models_dir``: ``../`` and friends
are refused before anything is read.

The speech model shipped with sightsound is listed too, after the saved
ones, as :data:`BUILTIN_SPEECH_MODEL`: the Speech page uses it when the
folder holds no speech model. That name is reserved; a folder of that name
in ``models_dir`` is not listed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import tfjs
from ..errors import ModelFormatError, SightsoundError
from ..speech import model_files

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STATIC_FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(json|bin)$")
MNIST_INPUT = [28, 28, 1]
MAX_LABELS = 4096
BUILTIN_SPEECH_MODEL = "built-in"  #: the name of the shipped speech model in lists, URLs and audio sessions


class BadModelName(SightsoundError):
    """A model name that is not a plain folder name (``../x``, ``a/b``, empty...)."""


class ModelNotFound(SightsoundError):
    """No saved model of that name."""


@dataclass(frozen=True)
class ModelInfo:
    """What the pages need to know about a saved model, read from its JSON files only."""

    name: str
    kind: str  # "mnist", "speech" or "other"
    input_shape: list | None
    labels: list
    preset: str | None
    test_accuracy: float | None
    modified: float
    builtin: bool = False  # shipped with sightsound, not saved in the models folder

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "input_shape": self.input_shape, "labels": self.labels,
                "preset": self.preset, "test_accuracy": self.test_accuracy, "modified": self.modified,
                "builtin": self.builtin, "model_json": f"/models/{self.name}/model.json"}


def check_name(name: str) -> str:
    """``name`` if it is a safe model folder name, else :class:`BadModelName`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:  # fullmatch: no "x\n"
        raise BadModelName(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                           f"(at most 64 characters, no path separators and no '..')")
    return name


class ModelStore:
    """Lists, resolves and loads (with a cache) the models under one folder."""

    def __init__(self, models_dir: str | Path):
        self.root = Path(models_dir).expanduser().resolve()
        self._cache: dict[str, tuple[int, object]] = {}
        self._lock = threading.Lock()

    # -- paths -----------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The folder of model ``name`` (which must exist), guarded against traversal."""
        if check_name(name) == BUILTIN_SPEECH_MODEL:
            folder = model_files.pretrained_model_dir().resolve()
            if not (folder / tfjs.MODEL_JSON).is_file():
                raise ModelNotFound(f"the {BUILTIN_SPEECH_MODEL} speech model is missing from this sightsound "
                                    f"install (reinstall it, or train a speech model into {self.root.name}/)")
            return folder
        folder = (self.root / name).resolve()
        if folder.parent != self.root:
            raise BadModelName(f"invalid model name {name!r}")
        if not (folder / "model.json").is_file():
            raise ModelNotFound(f"no model named {name!r} in {self.root.name}/ (see GET /api/models)")
        if (folder / "model.json").resolve().parent != folder:  # as static_file: no links leading out
            raise BadModelName(f"model {name!r}: its model.json is a link leading out of the model folder")
        return folder

    def static_file(self, name: str, filename: str) -> Path:
        """A file of model ``name`` that TF.js may fetch: ``model.json``, ``metadata.json`` or weights."""
        folder = self.path(name)
        if not STATIC_FILE_PATTERN.fullmatch(filename or "") or ".." in filename:
            raise BadModelName(f"invalid model file name {filename!r}")
        path = (folder / filename).resolve()
        if path.parent != folder or not path.is_file():
            raise ModelNotFound(f"model {name!r} has no file {filename!r}")
        return path

    # -- listing ---------------------------------------------------------------
    def info(self, name: str) -> ModelInfo:
        """Describe model ``name`` from its ``model.json`` and ``metadata.json``."""
        folder = self.path(name)
        model_json = tfjs.read_model_json(folder / tfjs.MODEL_JSON, where=f"{name}/{tfjs.MODEL_JSON}")
        user, shape, units = model_json.user_defined_metadata, model_json.input_shape, model_json.output_units
        words = None  # a speech model's words, from its metadata.json (read as the recognizer reads it)
        if (folder / model_files.METADATA_JSON).is_file():
            words = model_files.folder_words(folder, where=f"{name}/{model_files.METADATA_JSON}")
        if words:
            kind, labels = "speech", words[:MAX_LABELS]
        else:
            kind = "mnist" if shape == MNIST_INPUT else "other"
            if units is not None and not 1 <= units <= MAX_LABELS:
                raise ModelFormatError(f"{name}/model.json: the last layer has {units} units "
                                       f"(at most {MAX_LABELS} labels are shown)")
            labels = list(range(units or 10))
        accuracy = user.get("test_accuracy")
        return ModelInfo(name=name, kind=kind, input_shape=shape, labels=labels, preset=user.get("preset"),
                         test_accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
                         modified=(folder / "model.json").stat().st_mtime, builtin=name == BUILTIN_SPEECH_MODEL)

    def list(self) -> list[ModelInfo]:
        """Every readable saved model, newest first, then the built-in speech model; broken or hidden
        folders (and a missing built-in model) are left out."""
        names = []
        if self.root.is_dir():
            names = [folder.name for folder in self.root.iterdir() if not folder.name.startswith(".")
                     and NAME_PATTERN.fullmatch(folder.name) and folder.name != BUILTIN_SPEECH_MODEL]
        saved, builtin = self._readable(names), self._readable([BUILTIN_SPEECH_MODEL])
        return sorted(saved, key=lambda info: info.modified, reverse=True) + builtin

    def _readable(self, names: list[str]) -> list[ModelInfo]:
        found = []
        for name in names:
            try:
                found.append(self.info(name))
            except (SightsoundError, OSError, ValueError, AttributeError, TypeError):
                continue
        return found

    # -- loading ---------------------------------------------------------------
    def load(self, name: str):
        """The loaded model ``name`` (cached until its ``model.json`` changes), on the CPU."""
        folder = self.path(name)
        stamp = (folder / "model.json").stat().st_mtime_ns
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] == stamp:
                return cached[1]
        from ..tfjs import load_layers_model

        model = load_layers_model(str(folder), device="cpu")
        with self._lock:
            self._cache[name] = (stamp, model)
        return model
