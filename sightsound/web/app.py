"""The web app behind ``sightsound serve``: the chapter's browser demos, with Python doing the work.

Pages (HTML + plain JS modules under ``static/``, in the chapter's order,
see :mod:`.pages`): ``/train``, ``/test``, ``/draw``, ``/speech``, ``/teach``
(its API: :mod:`sightsound.web.teach`). JSON API:

===============================  ==================================================================
``GET  /api/info``               version, the models folder's name and the trainable models
``GET  /api/models``             saved models (name, kind, labels, test accuracy) and each kind's default
``GET  /api/models/{m}/download`` a model as a zip (``m/model.json``, weights; ``tf.loadLayersModel``)
``DELETE /api/models/{m}``        delete a saved model (not the built-in one)
``POST /api/predict``            an image (multipart ``file`` or a raw ``image/*`` body) -> top-k
``POST /api/train``              start a training job -> ``job_id``
``GET  /api/train/{id}``         a job's state and result
``POST /api/train/{id}/stop``    stop a job after its current batch
``GET  /api/test-results/{m}``   test images with true and predicted labels (the figure 4.10 grid)
``GET  /models/{m}/{file}``      a saved model as static TF.js files (``tf.loadLayersModel``)
``WS   /ws/train/{id}``          one job's progress events
``WS   /ws/audio``               PCM in, recognised words and spectrogram columns out
===============================  ==================================================================

Every error is JSON ``{"error": message, "code": code}`` with a fitting
status (:mod:`.errors`: the pages turn the code into a sentence for people);
an unknown page asked for by a browser gets an HTML "page not found" page
instead. Nothing a client sends can crash the server. Requests naming another ``Host``, and
cross-origin websockets and POSTs, are refused (:mod:`sightsound.web.security`);
error messages carry no server paths and unexpected failures no exception text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..version import __version__
from ..errors import SightsoundError
from ..presets import MNIST_MODELS
from . import assets, audio_stream, pages, teach
from .errors import INTERNAL, WebError, error_fields
from .jobs import MAX_SEED, TRAIN_LIMITS, JobError, JobManager, TrainParams, train_options
from .models import MNIST_INPUT, ModelStore
from .pool import WorkPool
from .predict import (ALLOWED_CONTENT_TYPES, MAX_UPLOAD_BYTES, READABLE_FORMATS, UploadRejected, check_content_type,
                      decode_image, predict_image)
from .security import DEFAULT_MAX_AUDIO_SESSIONS, INTERNAL_ERROR, BrowserGuard, MessageRate, redact_paths

STATIC_DIR = pages.STATIC_DIR
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024  # an upload plus its multipart envelope
MAX_TEST_RESULTS = 500
WS_MAX_TEXT = 1024  # bytes of a control message on /ws/train
WS_MAX_MESSAGES_PER_SECOND = 20

log = logging.getLogger("sightsound.web")


class TrainRequest(BaseModel):
    """The body of ``POST /api/train``."""

    model_config = ConfigDict(extra="forbid")

    # Settings left out take the chapter's value for the model (GET /api/train/options lists them).
    model: str = Field(next(iter(MNIST_MODELS)), pattern=f"^({'|'.join(MNIST_MODELS)})$")
    epochs: int | None = Field(None, ge=TRAIN_LIMITS["epochs"][0], le=TRAIN_LIMITS["epochs"][1])
    batch_size: int | None = Field(None, ge=TRAIN_LIMITS["batch_size"][0], le=TRAIN_LIMITS["batch_size"][1])
    validation_split: float | None = Field(None, ge=TRAIN_LIMITS["validation_split"][0],
                                           le=TRAIN_LIMITS["validation_split"][1])
    train_limit: int | None = Field(None, ge=TRAIN_LIMITS["train_limit"][0], le=TRAIN_LIMITS["train_limit"][1])
    test_limit: int | None = Field(None, ge=TRAIN_LIMITS["test_limit"][0], le=TRAIN_LIMITS["test_limit"][1])
    name: str | None = Field(None, min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)


# --------------------------------------------------------------------------- errors

def error_response(status: int, message: str, code: str, **extra) -> JSONResponse:
    """The one error shape of this app: ``{"error": message, "code": code, ...}`` (codes: :mod:`.errors`)."""
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status)


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    return "invalid request: " + "; ".join(parts)


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}  # codes of the framework's own HTTP errors


def install_error_handlers(app: FastAPI) -> None:
    """Turn every kind of failure into a JSON error response (an HTML page for a browser's unknown page)."""

    @app.exception_handler(SightsoundError)
    async def sightsound_error(request: Request, error: SightsoundError):
        status, code = error_fields(error)
        extra = error.details if isinstance(error, WebError) else {}
        return error_response(status, request.app.state.web.public(str(error)), code, **extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 404 and pages.wants_page(request.url.path, request.headers.get("accept", "")):
            return HTMLResponse(pages.not_found(request.url.path), status_code=404)
        return error_response(error.status_code, str(error.detail), HTTP_CODES.get(error.status_code, "http_error"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError):
        return error_response(400, _describe_validation(error), "invalid_request")

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(_request: Request, error: "BodyTooLarge"):
        return error_response(413, str(error), "too_large")


class BodyTooLarge(Exception):
    """A request body longer than the app accepts."""


class GuardMiddleware:
    """Caps request bodies and turns any unexpected exception into a JSON 500 (the server never crashes)."""

    def __init__(self, app, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"the request body is larger than {self.max_body} bytes"
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0 or declared > self.max_body:
                reply = error_response(413 if declared > 0 else 400,
                                       too_large if declared > 0 else "invalid Content-Length",
                                       "too_large" if declared > 0 else "bad_request")
                return await reply(scope, receive, send)
        started = False
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(too_large)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:  # last line of defence: log the traceback, answer without it, keep serving
            if started:
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await error_response(500, INTERNAL_ERROR, INTERNAL)(scope, receive, send)


class BrowserGuardMiddleware:
    """Refuses foreign ``Host`` headers and cross-origin websockets and POSTs (see :mod:`.security`)."""

    def __init__(self, app, guard: BrowserGuard):
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send):
        refusal = self.guard.refusal(scope) if scope["type"] in ("http", "websocket") else None
        if refusal is None:
            return await self.app(scope, receive, send)
        status, message = refusal
        log.info("refused %s %s: %s", scope["type"], scope.get("path"), message)
        code = "cross_origin" if status == 403 else "foreign_host"
        if scope["type"] == "http" or "websocket.http.response" in (scope.get("extensions") or {}):
            return await error_response(status, message, code)(scope, receive, send)
        await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers HTTP 403


# --------------------------------------------------------------------------- the app

class WebState:
    """What the endpoints share: the models, the MNIST data (loaded once) and the jobs."""

    def __init__(self, models_dir: Path, data_dir, node_modules: Path, predict_workers: int | None = None,
                 builtin_speech: bool = True):
        from ..paths import data_dir as resolve_data_dir

        self.store = ModelStore(models_dir, builtin_speech)
        self.predictions = WorkPool(predict_workers, name="sightsound-predict")
        self.store.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.node_modules = node_modules
        self._data = None
        self._data_lock = threading.Lock()
        self.jobs = JobManager(self.store.root, self.mnist)
        data_root = resolve_data_dir(data_dir)
        self._named_roots = [(self.store.root, self.store.root.name), (data_root, data_root.name)]

    def public(self, message: str) -> str:
        """``message`` fit for a client: the models folder by name, no other absolute server path."""
        return redact_paths(message, self._named_roots)

    def job_json(self, job) -> dict:
        """A job's snapshot for clients (its error message without server paths)."""
        snapshot = job.snapshot()
        if snapshot.get("error"):
            snapshot["error"] = self.public(snapshot["error"])
        return snapshot

    def mnist(self):
        """MNIST, loaded on first use (downloaded only where the data dir is writable)."""
        with self._data_lock:
            if self._data is None:
                from ..data import mnist

                self._data = mnist.load_mnist(self.data_dir, progress=False)
            return self._data


def create_app(models_dir: str | Path, data_dir: str | Path | None = None,
               assets_dir: str | Path | None = None, predict_workers: int | None = None,
               allowed_hosts: Iterable[str] = (), max_audio_sessions: int = DEFAULT_MAX_AUDIO_SESSIONS,
               builtin_speech: bool = True) -> FastAPI:
    """The FastAPI app serving pages, API and websockets for the models in ``models_dir``.

    ``data_dir`` is the dataset root (MNIST under ``<data_dir>/mnist``; default
    ``$SIGHTSOUND_DATA``). ``assets_dir`` is the ``node_modules`` folder with
    Chart.js (found automatically in a source checkout); a missing one raises
    :class:`sightsound.web.assets.AssetsMissing` with set-up instructions.
    ``predict_workers`` threads run image predictions (default: half the CPUs),
    so that a flood of uploads cannot starve audio streams and training.
    ``allowed_hosts`` are the ``Host`` names served besides the loopback ones
    (:data:`sightsound.web.security.LOOPBACK_HOSTS`); ``max_audio_sessions``
    caps the ``/ws/audio`` sessions open at once. ``builtin_speech=False``
    leaves out the speech model shipped with sightsound (the app then works as
    on an install without it).
    """
    guard = BrowserGuard(allowed_hosts)
    if max_audio_sessions < 1:
        raise ValueError(f"max_audio_sessions must be at least 1, got {max_audio_sessions}")
    node_modules = assets.find_node_modules(assets_dir)
    state = WebState(Path(models_dir), data_dir, node_modules, predict_workers, builtin_speech)

    async def lifespan(_app):
        yield
        await run_in_threadpool(state.jobs.stop_all)
        await run_in_threadpool(state.predictions.shutdown)

    app = FastAPI(title="sightsound", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.web = state
    app.add_middleware(GuardMiddleware)
    app.add_middleware(BrowserGuardMiddleware, guard=guard)  # added last: runs first
    install_error_handlers(app)
    _add_pages(app, state)
    _add_model_routes(app, state)
    _add_model_file_routes(app, state)
    _add_training_routes(app, state)
    audio_stream.add_routes(app, state, max_audio_sessions)
    teach.add_routes(app, state)  # the Teach words page's API (web/teach.py)
    return app


# --------------------------------------------------------------------------- pages and files

def _add_pages(app: FastAPI, state: WebState) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return RedirectResponse(pages.FIRST_PAGE)

    @app.get("/{page}", include_in_schema=False)
    async def page(request: Request, page: str):
        if page not in pages.PAGES:
            if pages.wants_page(request.url.path, request.headers.get("accept", "")):
                return HTMLResponse(pages.not_found(request.url.path), status_code=404)
            return error_response(404, f"no page {page!r}; pages: {', '.join('/' + p for p in pages.PAGES)}",
                                  "not_found")
        return HTMLResponse(pages.render(page))

    @app.get("/vendor/{name}", include_in_schema=False)
    async def vendor(name: str):
        path = assets.vendor_path(state.node_modules, name)
        if path is None:
            return error_response(404, f"no vendor file {name!r}", "not_found")
        return FileResponse(path, media_type="text/javascript")

    @app.get("/api/info")
    async def info():
        return {"version": __version__, "models_dir": state.store.root.name, "train_models": list(MNIST_MODELS),
                "builtin_speech": state.store.builtin_speech,
                "upload": {"types": list(ALLOWED_CONTENT_TYPES), "formats": READABLE_FORMATS,
                           "max_bytes": MAX_UPLOAD_BYTES}}


def _add_model_routes(app: FastAPI, state: WebState) -> None:
    @app.get("/api/models")
    async def list_models():
        def listing():
            infos = state.store.list()
            defaults = {}
            for kind in ("mnist", "speech"):
                try:
                    defaults[kind] = state.store.default(kind, infos)
                except SightsoundError:
                    defaults[kind] = None
            return {"models": [info.to_json() for info in infos], "defaults": defaults}

        return await run_in_threadpool(listing)

    @app.post("/api/predict")
    async def predict(request: Request):
        upload, fields = await _read_image_request(request)
        name = fields.get("model") or await run_in_threadpool(state.store.default, "mnist")
        top = _int_field(fields, "top_k", 3)
        raw = str(fields.get("raw", "")).lower() in ("1", "true", "yes", "on")

        def work():
            info = state.store.info(name)
            if info.input_shape != MNIST_INPUT:
                raise UploadRejected(f"model {name!r} takes input {info.input_shape}, not 28x28 digit images",
                                     code="not_mnist")
            image = decode_image(upload[0], check_content_type(upload[1]))
            started = time.perf_counter()
            prediction = predict_image(state.store.predictor(name), image, info.labels, k=top, raw=raw)
            return {"model": name, "raw": raw, **prediction.to_json(),
                    "ms": round((time.perf_counter() - started) * 1000, 2)}

        return await state.predictions.run(work)

    @app.get("/api/test-results/{name}")
    async def test_results(name: str, offset: int = 0, count: int = 100):
        if not 0 <= offset < 10_000 or not 1 <= count <= MAX_TEST_RESULTS:
            raise UploadRejected(f"offset must be in 0..9999 and count in 1..{MAX_TEST_RESULTS}")
        return await state.predictions.run(_test_results, state, name, offset, count)


def _add_model_file_routes(app: FastAPI, state: WebState) -> None:
    """A model's files for TF.js, the model as a zip to take away, and deleting it."""

    @app.get("/models/{name}/{filename}")
    async def model_file(name: str, filename: str):
        path = state.store.static_file(name, filename)
        media = "application/json" if path.suffix == ".json" else "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/api/models/{name}/download")
    async def download(name: str):
        data = await run_in_threadpool(state.store.archive, name)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}.zip"',
                                 "Cache-Control": "no-cache"})

    @app.delete("/api/models/{name}")
    async def delete(name: str):
        await run_in_threadpool(state.store.delete, name)
        return {"deleted": name}


async def _read_image_request(request: Request) -> tuple[tuple[bytes, str], dict]:
    """``((bytes, content type), fields)`` from a multipart form (``file`` + fields) or a raw image body."""
    content_type = request.headers.get("content-type", "")
    fields = dict(request.query_params)
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10, max_part_size=64 * 1024)
        except BodyTooLarge:
            raise
        except Exception as error:  # malformed multipart bodies
            raise UploadRejected(f"malformed multipart form: {error}") from error
        upload = form.get("file")
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        if upload is None or isinstance(upload, str):
            raise UploadRejected("the form has no file field named 'file'")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        part_type = upload.content_type or ""
        await form.close()
    elif content_type.startswith("image/"):
        data, part_type = await request.body(), content_type
    else:
        raise UploadRejected(f"send the image as multipart/form-data (field 'file') or as an image/* body, "
                             f"not {content_type or 'no content type'}", status=415)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(f"the image is larger than {MAX_UPLOAD_BYTES} bytes", status=413)
    return (data, part_type), fields


def _int_field(fields: dict, key: str, default: int) -> int:
    value = fields.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UploadRejected(f"{key} must be an integer, got {value!r}") from None


def _test_results(state: WebState, name: str, offset: int, count: int) -> dict:
    """Test images ``offset..offset+count`` with true and predicted labels (figure 4.10)."""
    info = state.store.info(name)
    if info.input_shape != MNIST_INPUT:
        raise UploadRejected(f"model {name!r} takes input {info.input_shape}, not MNIST images", code="not_mnist")
    data = state.mnist()
    from ..data import mnist

    images = data.test_images[offset:offset + count]
    labels = data.test_labels[offset:offset + count]
    probabilities = state.store.load(name).predict(mnist.to_float_images(images))
    predicted = probabilities.argmax(axis=1)
    items = [{"index": offset + i, "label": int(labels[i]), "predicted": int(predicted[i]),
              "probability": round(float(probabilities[i, predicted[i]]), 4),
              "pixels": base64.b64encode(np.ascontiguousarray(images[i]).tobytes()).decode("ascii")}
             for i in range(len(images))]
    wrong = int((predicted != labels).sum())
    return {"model": name, "offset": offset, "count": len(items), "total": int(len(data.test_images)),
            "wrong": wrong, "accuracy": (len(items) - wrong) / max(len(items), 1), "width": 28, "height": 28,
            "items": items}


# --------------------------------------------------------------------------- training

def _add_training_routes(app: FastAPI, state: WebState) -> None:
    @app.get("/api/train/options")
    async def options():
        return train_options()

    @app.post("/api/train")
    async def start_training(body: TrainRequest):
        params = TrainParams.of(**body.model_dump())
        job = await run_in_threadpool(state.jobs.create, params)
        return JSONResponse(state.job_json(job), status_code=201)

    @app.get("/api/train/{job_id}")
    async def job_state(job_id: str):
        return state.job_json(state.jobs.get(job_id))

    @app.post("/api/train/{job_id}/stop")
    async def stop_job(job_id: str):
        job = state.jobs.get(job_id)
        job.stop()
        return state.job_json(job)

    @app.websocket("/ws/train/{job_id}")
    async def training_events(websocket: WebSocket, job_id: str):
        await websocket.accept()
        try:
            job = state.jobs.get(job_id)
        except JobError as error:
            await websocket.send_json({"type": "error", "error": state.public(str(error)), "code": error.code})
            await websocket.close(code=4404)
            return
        await _stream_job(websocket, job, state.public)


async def _stream_job(websocket: WebSocket, job, public) -> None:
    """Send ``job``'s events from the first one on; accept ``stop`` from the page; close when it ends.

    Only this coroutine sends: the listener reports a broken cap as a close code, so a close is never
    lost to a send of an event that the listener's own close would have raced with."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    job.add_waiter(loop, wake)
    listener = asyncio.create_task(_listen_for_stop(websocket, job, wake))
    try:
        close_code = await _send_events(websocket, job, public, listener, wake)
        if close_code is not None:
            await websocket.close(code=close_code)
    except (WebSocketDisconnect, RuntimeError):  # the page went away
        return
    finally:
        job.remove_waiter(loop, wake)
        listener.cancel()


async def _send_events(websocket: WebSocket, job, public, listener: asyncio.Task, wake: asyncio.Event) -> int | None:
    """Send events until the job has finished (1000) or the listener ends (its close code, None: page gone)."""
    cursor = 0
    while True:
        wake.clear()
        events = job.events_since(cursor)
        for event in events:
            if event["type"] == "error":  # a failed job's message, written by its thread
                event = {**event, "error": public(str(event.get("error")))}
            await websocket.send_text(json.dumps(event))
        cursor += len(events)
        if listener.done():
            return listener.result()
        if job.finished and not job.events_since(cursor):
            return 1000
        try:
            await asyncio.wait_for(wake.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def _listen_for_stop(websocket: WebSocket, job, wake: asyncio.Event) -> int | None:
    """Read the page's control messages (``stop``) until the page leaves (None) or breaks a cap: returns
    the close code (1009: too big, 1008: too many) and wakes the sender, which closes."""
    rate = MessageRate(WS_MAX_MESSAGES_PER_SECOND)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            payload = message.get("text") or message.get("bytes") or ""
            if len(payload) > WS_MAX_TEXT:
                return 1009
            if not rate.allow(1):
                return 1008
            if payload in ("stop", b"stop"):
                job.stop()
    except (WebSocketDisconnect, RuntimeError):
        return None
    finally:
        wake.set()
