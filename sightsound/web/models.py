"""The folder of saved models the web app lists, loads and serves.

Every model is a sub-folder ``<models_dir>/<name>/`` with a TF.js
``model.json`` (plus weights, and ``metadata.json`` for speech models). Names
come from URLs and forms, so they are checked against :data:`NAME_PATTERN`
and every resolved path must stay inside ``models_dir``: ``../`` and friends
are refused before anything is read.

The speech model shipped with sightsound is listed too, after the saved
ones, as :data:`BUILTIN_SPEECH_MODEL`: the Speech page uses it when the
folder holds no speech model. That name is reserved; a folder of that name
in ``models_dir`` is not listed. ``builtin_speech=False``
(``sightsound serve --no-builtin-speech``) leaves it out, as on an install
without it.

A model can be taken away as a zip (:meth:`ModelStore.archive`: ``NAME/``
with ``model.json``, its weight files and ``metadata.json`` if any, which
``tf.loadLayersModel`` loads once unzipped) and deleted
(:meth:`ModelStore.delete`: only a real sub-folder of ``models_dir``, never
the built-in model or anything a link leads to).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import tfjs
from ..errors import ModelFormatError, SightsoundError
from ..speech import model_files
from .errors import WebError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STATIC_FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(json|bin)$")
MNIST_INPUT = [28, 28, 1]
MAX_LABELS = 4096
BUILTIN_SPEECH_MODEL = "built-in"  #: the name of the shipped speech model in lists, URLs and audio sessions


class BadModelName(WebError):
    """A model name that is not a plain folder name (``../x``, ``a/b``, empty...)."""

    code = "bad_model_name"


class ModelNotFound(WebError):
    """No saved model of that name (``no_model``: none of the kind asked for at all)."""

    status = 404
    code = "model_not_found"


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
    stopped: bool = False  # a training run stopped before its last epoch: kept, but never the default

    @property
    def words(self) -> list:
        """A speech model's words a person can say (its labels without noise and unknown); else []."""
        return [w for w in self.labels if w not in model_files.NOISE_WORDS] if self.kind == "speech" else []

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "input_shape": self.input_shape, "labels": self.labels,
                "words": self.words, "preset": self.preset, "test_accuracy": self.test_accuracy,
                "modified": self.modified, "builtin": self.builtin, "stopped": self.stopped,
                "model_json": f"/models/{self.name}/model.json", "download": f"/api/models/{self.name}/download"}


def check_name(name: str) -> str:
    """``name`` if it is a safe model folder name, else :class:`BadModelName`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:  # fullmatch: no "x\n"
        raise BadModelName(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                           f"(at most 64 characters, no path separators and no '..')")
    return name


class ModelStore:
    """Lists, resolves and loads (with a cache) the models under one folder."""

    def __init__(self, models_dir: str | Path, builtin_speech: bool = True):
        self.root = Path(models_dir).expanduser().resolve()
        self.builtin_speech = builtin_speech
        self._cache: dict[str, tuple[int, object]] = {}
        self._served: dict[str, tuple[int, object]] = {}  # name -> (stamp, OnnxPredictor, or None while made)
        self._lock = threading.Lock()

    # -- paths -----------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The folder of model ``name`` (which must exist), guarded against traversal."""
        if check_name(name) == BUILTIN_SPEECH_MODEL:
            if not self.builtin_speech:
                raise ModelNotFound(f"the {BUILTIN_SPEECH_MODEL} speech model is switched off on this server "
                                    f"(--no-builtin-speech)")
            folder = model_files.pretrained_model_dir().resolve()
            if not (folder / tfjs.MODEL_JSON).is_file():
                raise ModelNotFound(f"the {BUILTIN_SPEECH_MODEL} speech model is missing: this sightsound install "
                                    f"is incomplete (reinstall it, or train a speech model into {self.root.name}/)",
                                    code="no_model")
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
                         modified=(folder / "model.json").stat().st_mtime, builtin=name == BUILTIN_SPEECH_MODEL,
                         stopped=user.get("stopped") is True)

    def list(self) -> list[ModelInfo]:
        """Every readable saved model, newest first, then the built-in speech model; broken or hidden
        folders (and a missing built-in model) are left out."""
        names = []
        if self.root.is_dir():
            names = [folder.name for folder in self.root.iterdir() if not folder.name.startswith(".")
                     and NAME_PATTERN.fullmatch(folder.name) and folder.name != BUILTIN_SPEECH_MODEL]
        saved = self._readable(names)
        builtin = self._readable([BUILTIN_SPEECH_MODEL]) if self.builtin_speech else []
        return sorted(saved, key=lambda info: info.modified, reverse=True) + builtin

    def default(self, kind: str, infos: list[ModelInfo] | None = None) -> str:
        """The model pages use when none is named: the newest of ``kind`` that finished training (a stopped
        run only when there is nothing else); :class:`ModelNotFound` with code ``no_model`` if none."""
        usable = [info for info in (self.list() if infos is None else infos) if info.kind == kind]
        if usable:
            return sorted(usable, key=lambda info: info.stopped)[0].name  # stable: newest first in each group
        if kind == "speech" and self.builtin_speech:
            self.path(BUILTIN_SPEECH_MODEL)  # says what is wrong with the shipped model, if it is missing
        raise ModelNotFound(f"no {kind} model saved yet in {self.root.name}/", code="no_model")

    def _readable(self, names: list[str]) -> list[ModelInfo]:
        found = []
        for name in names:
            try:
                found.append(self.info(name))
            except (SightsoundError, OSError, ValueError, AttributeError, TypeError):
                continue
        return found

    # -- taking away and deleting ----------------------------------------------------
    def archive(self, name: str) -> bytes:
        """Model ``name`` as a zip: ``NAME/model.json``, its weight files and ``metadata.json`` if it has one."""
        folder = self.path(name)
        doc = tfjs.read_model_json(folder / tfjs.MODEL_JSON, where=f"{name}/{tfjs.MODEL_JSON}").doc
        files = [tfjs.MODEL_JSON]
        for group in doc.get("weightsManifest") or []:
            files += [path for path in group.get("paths", []) if path not in files]
        if (folder / model_files.METADATA_JSON).is_file():
            files.append(model_files.METADATA_JSON)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for filename in files:  # each through static_file: a plain file of this folder, no link out
                path = self.static_file(name, filename)
                method = zipfile.ZIP_STORED if path.suffix == ".bin" else zipfile.ZIP_DEFLATED  # weights barely shrink
                archive.write(path, f"{name}/{filename}", compress_type=method)
        return buffer.getvalue()

    def delete(self, name: str) -> None:
        """Remove the folder of saved model ``name``; the built-in model and links are refused."""
        if check_name(name) == BUILTIN_SPEECH_MODEL:
            raise WebError(f"the {BUILTIN_SPEECH_MODEL} speech model ships with sightsound and cannot be deleted",
                           status=403, code="builtin_model")
        folder = self.path(name)
        if os.path.islink(self.root / name) or folder != self.root / name:
            raise BadModelName(f"model {name!r} is a link, not a folder of {self.root.name}/; not deleted")
        # Renamed to a hidden name first, so that no list ever shows a half-deleted model.
        doomed = self.root / f".deleting-{name}-{secrets.token_hex(4)}"
        try:
            folder.rename(doomed)
        except OSError as error:
            raise WebError(f"cannot delete model {name!r}: {error.strerror or error}", status=500,
                           code="delete_failed") from error
        with self._lock:
            self._cache.pop(name, None)
            self._served.pop(name, None)
        shutil.rmtree(doomed, ignore_errors=True)

    # -- loading ---------------------------------------------------------------
    def load(self, name: str):
        """The loaded model ``name`` (cached until its ``model.json`` changes), on the CPU."""
        return self._loaded(name)[1]

    def _loaded(self, name: str) -> tuple[int, object]:
        """``(stamp, model)``: the model's ``model.json`` modification time and the (cached) loaded model."""
        folder = self.path(name)
        stamp = (folder / "model.json").stat().st_mtime_ns
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] == stamp:
                return cached
        from ..tfjs import load_layers_model

        model = load_layers_model(str(folder), device="cpu")
        with self._lock:
            self._cache[name] = (stamp, model)
        return stamp, model

    def predictor(self, name: str):
        """What predicts with model ``name`` one image at a time: its :class:`~sightsound.onnx_export.OnnxPredictor`
        once made, the loaded model until then. The first call starts making it in the background (exporting
        takes seconds, in a child process); a model it cannot be made for (no ONNX Runtime, a layer ONNX
        lacks) stays served by PyTorch."""
        stamp, model = self._loaded(name)
        with self._lock:
            served = self._served.get(name)
            if served and served[0] == stamp:
                return served[1] or model
            self._served[name] = (stamp, None)
        threading.Thread(target=self._make_predictor, args=(name, stamp, model), name="onnx-export",
                         daemon=True).start()
        return model

    def _make_predictor(self, name: str, stamp: int, model) -> None:
        from ..onnx_export import OnnxPredictor

        folder = self.path(name)
        try:
            predictor = OnnxPredictor.from_folder(model, folder)
            if (folder / "model.json").stat().st_mtime_ns != stamp:
                return  # saved again while exporting: the next call exports the new one
        except Exception:  # noqa: BLE001  (any failure to export or load: PyTorch keeps serving this model)
            return
        with self._lock:
            if self._served.get(name) == (stamp, None):
                self._served[name] = (stamp, predictor)
