"""Training jobs for the Train page: one thread per job, progress as events.

Each job has a random id. Its thread runs :func:`sightsound.training.mnist.train_mnist`
with a callback that appends events (``start``, ``batch``, ``epoch``,
``status``, ``done``/``stopped``/``error``) to that job's own list; websocket
handlers read the list from a cursor and are woken through their own asyncio
loop, so two browser tabs each following their own job never see the other's
events. A finished run is saved as ``<models_dir>/<name>/`` (written into a
hidden temporary folder first, then renamed, so the models list never shows a
half-written model).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine.callbacks import Callback
from ..errors import DataError, SightsoundError
from ..fileio import staged_directory
from ..presets import MNIST_MODELS
from ..training.mnist import MnistSettings
from .models import BUILTIN_SPEECH_MODEL, check_name
from .errors import INTERNAL, WebError, error_fields
from .security import INTERNAL_ERROR

_log = logging.getLogger(__name__)

#: What one Train-page request may ask for: (lowest, highest) of each setting. The request model and the
#: page's inputs (through ``GET /api/train/options``) both take them from here.
TRAIN_LIMITS = {"epochs": (1, 100), "batch_size": (1, 4096), "validation_split": (0.0, 0.5),
                "train_limit": (10, 60_000), "test_limit": (10, 10_000)}
MAX_SEED = 2**31 - 1  #: the highest training seed a request may give (Train and Teach pages)
MAX_EVENTS = 50_000
_SAVE_LOCK = threading.Lock()  # matplotlib's pyplot (used when saving plots) is not thread-safe


class JobError(WebError):
    """A training request that cannot be accepted; ``status`` is the HTTP status, ``code`` the page's key."""


@dataclass(frozen=True)
class TrainParams:
    """What a Train page asks for (already validated): a model, its settings, and the job's own options."""

    model: str
    settings: MnistSettings
    name: str | None = None
    seed: int | None = None

    @classmethod
    def of(cls, model: str = "conv", name: str | None = None, seed: int | None = None,
           **overrides) -> "TrainParams":
        """The chapter's settings for ``model``, with the ``overrides`` that are not None."""
        return cls(model, MnistSettings.of(model, **overrides), name, seed)

    def to_json(self) -> dict:
        s = self.settings
        return {"model": self.model, "epochs": s.epochs, "batch_size": s.batch_size,
                "validation_split": s.validation_split, "train_limit": s.train_limit, "test_limit": s.test_limit,
                "name": self.name, "seed": self.seed}


def train_options() -> dict:
    """The Train page's menu: each model with its chapter defaults, and the limits of each setting."""
    models = [{"name": name, "title": entry["title"], "preset": entry["preset"],
               "defaults": {key: getattr(MnistSettings.of(name), key)
                            for key in ("epochs", "batch_size", "validation_split")}}
              for name, entry in MNIST_MODELS.items()]
    return {"models": models, "default_model": models[0]["name"],
            "limits": {key: list(bounds) for key, bounds in TRAIN_LIMITS.items()}}


class _ProgressCallback(Callback):
    """Turns fit's hooks into job events; stops fit when the job is asked to stop."""

    def __init__(self, job: "TrainingJob", batches_per_epoch: int):
        self.job = job
        self.batches_per_epoch = batches_per_epoch
        self.total = batches_per_epoch * job.params.settings.epochs
        self.done_batches = 0

    def _check_stop(self) -> None:
        if self.job.stop_requested.is_set() and self.model is not None:
            self.model.stop_training = True

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.done_batches += 1
        self.job.emit({"type": "batch", "batch": self.done_batches, "epoch": self.job.epoch,
                       "loss": logs.get("loss"), "acc": logs.get("acc"),
                       "progress": self.done_batches / max(self.total, 1)})
        self._check_stop()

    def on_epoch_begin(self, epoch, logs=None):
        self.job.epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.done_batches = (epoch + 1) * self.batches_per_epoch if not self.job.stop_requested.is_set() \
            else self.done_batches
        self.job.emit({"type": "epoch", "epoch": epoch + 1, "batch": self.done_batches, **logs,
                       "progress": self.done_batches / max(self.total, 1)})
        self._check_stop()

    def on_train_end(self, logs=None):
        self.job.emit({"type": "status", "state": "evaluating",
                       "message": "evaluating on the test images and saving the model"})


class TrainingJob:
    """One training run in its own thread, with its own event list."""

    def __init__(self, job_id: str, params: TrainParams, models_dir: Path, get_data):
        self.id = job_id
        self.params = params
        self.models_dir = models_dir
        self.name = params.name or f"{params.model}-{time.strftime('%Y%m%d-%H%M%S')}-{job_id[:4]}"
        self._get_data = get_data
        self.state = "queued"
        self.epoch = 0
        self.events: list[dict] = []
        self.result: dict | None = None
        self.error: str | None = None
        self.error_code: str | None = None
        self.created = time.time()
        self._started: float | None = None  # perf_counter when the thread began: events carry the time since
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.thread = threading.Thread(target=self._run, name=f"train-{job_id}", daemon=True)

    # -- events ----------------------------------------------------------------
    def emit(self, event: dict) -> None:
        """Append an event (stamped with the job id) and wake this job's websocket readers."""
        event = {"job_id": self.id, **event, "elapsed": round(self.elapsed, 3)}
        with self._lock:
            if len(self.events) < MAX_EVENTS or event["type"] != "batch":
                self.events.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that loop is closed: its reader is gone
                pass

    def events_since(self, cursor: int) -> list[dict]:
        with self._lock:
            return self.events[cursor:]

    def add_waiter(self, loop: asyncio.AbstractEventLoop, flag: asyncio.Event) -> None:
        with self._lock:
            self._waiters.add((loop, flag))

    def remove_waiter(self, loop: asyncio.AbstractEventLoop, flag: asyncio.Event) -> None:
        with self._lock:
            self._waiters.discard((loop, flag))

    @property
    def elapsed(self) -> float:
        """Seconds since the job's thread began (0 before): loading, training, evaluating and saving."""
        return 0.0 if self._started is None else time.perf_counter() - self._started

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")

    @property
    def progress(self) -> float:
        with self._lock:
            for event in reversed(self.events):
                if "progress" in event:
                    return float(event["progress"])
        return 1.0 if self.state == "done" else 0.0

    def snapshot(self) -> dict:
        """The job as JSON for ``GET /api/train/{id}`` (events are streamed over the websocket)."""
        with self._lock:
            last_epoch = next((e for e in reversed(self.events) if e["type"] == "epoch"), None)
        return {"job_id": self.id, "state": self.state, "params": self.params.to_json(), "name": self.name,
                "epoch": self.epoch, "progress": self.progress, "last_epoch": last_epoch, "result": self.result,
                "error": self.error, "code": self.error_code, "elapsed": round(self.elapsed, 3), "events": len(self.events), "created": self.created,
                "ws": f"/ws/train/{self.id}"}

    # -- running ---------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ask the job to stop after the current batch (it still evaluates and saves what it has)."""
        if not self.finished:
            self.stop_requested.set()
            self.emit({"type": "status", "state": "stopping", "message": "stopping after this batch"})

    def _run(self) -> None:
        from .. import presets
        from ..engine.trainer import training_count
        from ..training.mnist import train_mnist

        s = self.params.settings
        self._started = time.perf_counter()
        self.state = "running"
        try:
            self.emit({"type": "status", "state": "loading", "message": "loading MNIST"})
            data = self._get_data()
            n_images = min(len(data.train_images), s.train_limit or len(data.train_images))
            n_train = training_count(n_images, s.validation_split) if s.validation_split else n_images
            per_epoch = math.ceil(n_train / s.batch_size)
            self.emit({"type": "start", "name": self.name, "model": self.params.model, "preset": s.preset,
                       "params": presets.build(s.preset, device="cpu").count_params(), "epochs": s.epochs,
                       "batch_size": s.batch_size, "train_examples": n_train, "batches_per_epoch": per_epoch,
                       "total_batches": per_epoch * s.epochs})
            progress = _ProgressCallback(self, per_epoch)
            result = train_mnist(s, data=data, device="auto", seed=self.params.seed, callbacks=[progress])
            stopped = self.stop_requested.is_set()
            epochs_run = len(result.history.get("epochs", []))
            self._save(result, data, {"stopped": True, "epochs_run": epochs_run} if stopped else None)
            self.state = "stopped" if stopped else "done"
            # seconds: the whole job as the page saw it (loading, training, evaluating, saving), not fit alone
            self.result = {"test_loss": result.test_loss, "test_acc": result.test_accuracy, "epochs_run": epochs_run,
                           "seconds": round(self.elapsed, 3), "train_seconds": round(result.seconds, 3),
                           "stopped": stopped, "model": self.name, "test_results": f"/api/test-results/{self.name}"}
            self.emit({"type": self.state, "state": self.state, **self.result})
        except Exception as error:  # a job's failure is reported to its page, never raised into the server
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        """Record and announce a failure: a message meant for the user, or the internal-error one."""
        self.state = "failed"
        if isinstance(error, (WebError, DataError)):
            code = error_fields(error)[1]
        else:
            code = "training_failed" if isinstance(error, (SightsoundError, ValueError)) else INTERNAL
        if code != INTERNAL:  # meant for the user: bad settings, bad data
            self.error = str(error) or type(error).__name__
        else:  # a bug or an environment failure: the details belong in the server log, not on a page
            _log.exception("training job %s failed", self.name)
            self.error = INTERNAL_ERROR
        self.error_code = code
        self.emit({"type": "error", "state": "failed", "error": self.error, "code": code})

    def _save(self, result, data, metadata: dict | None) -> None:
        """Write the run into a hidden folder, then rename it to ``<models_dir>/<name>``; ``metadata`` goes
        into model.json (a stopped run is marked there, so the pages never make it the default)."""
        from ..data import mnist
        from ..training.mnist import save_run

        final = self.models_dir / self.name
        temporary = self.models_dir / f".training-{self.id}"
        test_x = mnist.to_float_images(data.test_images[:self.params.settings.test_limit])
        test_y = data.test_labels[:self.params.settings.test_limit]
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with staged_directory(final, staging=temporary, keep_on=(JobError,)):
            result.out_dir = temporary
            with _SAVE_LOCK:
                save_run(result.model, result, test_x, test_y, metadata=metadata)
            if os.path.lexists(final):
                raise JobError(f"a model named {self.name!r} appeared while training; kept in {temporary.name}",
                               status=409, code="name_taken")


class JobManager:
    """Creates, finds and stops training jobs; caps how many run at once and how many are kept."""

    def __init__(self, models_dir: Path, get_data, max_running: int = 2, max_kept: int = 50):
        self.models_dir = Path(models_dir)
        self.get_data = get_data
        self.max_running = max_running
        self.max_kept = max_kept
        self.jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()

    def create(self, params: TrainParams) -> TrainingJob:
        """Validate nothing more than capacity and name clashes, then start a job."""
        if params.name is not None:
            if check_name(params.name) == BUILTIN_SPEECH_MODEL:
                raise JobError(f"{BUILTIN_SPEECH_MODEL!r} names the speech model shipped with sightsound; choose "
                               f"another name", status=409, code="name_reserved")
            if os.path.lexists(self.models_dir / params.name):  # lexists: a dangling link is in the way too
                raise JobError(f"a model named {params.name!r} already exists; choose another name", status=409,
                               code="name_taken")
        with self._lock:
            running = [j for j in self.jobs.values() if not j.finished]
            if len(running) >= self.max_running:
                raise JobError(f"{len(running)} training jobs are already running (at most {self.max_running}); "
                               f"wait for one to finish or stop it", status=429, code="too_many_jobs")
            if params.name is not None and any(j.name == params.name for j in running):
                raise JobError(f"a job is already training a model named {params.name!r}", status=409,
                               code="name_taken")
            self._forget_old()
            job = TrainingJob(secrets.token_hex(8), params, self.models_dir, self.get_data)
            self.jobs[job.id] = job
        job.start()
        return job

    def get(self, job_id: str) -> TrainingJob:
        job = self.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise JobError(f"no training job with id {job_id!r}", status=404, code="job_not_found")
        return job

    def _forget_old(self) -> None:
        finished = sorted((j for j in self.jobs.values() if j.finished), key=lambda j: j.created)
        while len(self.jobs) >= self.max_kept and finished:
            self.jobs.pop(finished.pop(0).id, None)

    def stop_all(self, timeout: float = 5.0) -> None:
        """Ask every job to stop and wait a little for their threads (server shutdown)."""
        for job in list(self.jobs.values()):
            job.stop()
        deadline = time.monotonic() + timeout
        for job in list(self.jobs.values()):
            job.thread.join(max(0.0, deadline - time.monotonic()))
