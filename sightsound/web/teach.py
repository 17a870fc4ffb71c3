"""The Teach words page's API: transfer-learning sessions (``create_transfer``) held by the server.

The page records each example from the microphone, sends it as a WAV, and the
server collects it (:meth:`TransferRecognizer.collect_example`), so that the
spectrograms are the recognizer's own. Registered by ``app.py`` through
:func:`add_routes`:

=====================================  =========================================================
``POST   /api/teach``                  a new session on the shipped model -> ``{"id"}``, the labels of
                                       noise and other words, the epochs' default and bounds, the seed's bounds
``GET    /api/teach/{id}``             its examples (uid, word) and counts, its words
``POST   /api/teach/{id}/examples``    ``?word=W`` and a WAV body -> the example's uid and spectrogram
``DELETE /api/teach/{id}/examples/U``  remove example U
``POST   /api/teach/{id}/train``       ``{"epochs", "seed"}``: start training (one at a time); a seed
                                       makes the head's initial weights and shuffles repeat. Training
                                       also teaches the other-speech examples shipped beside the model
                                       as ``_unknown_`` (``speech.other_speech_examples``)
``GET    /api/teach/{id}/train``       its progress: the epochs so far, done, error
``POST   /api/teach/{id}/recognize``   a WAV body -> the word and the probabilities
``GET    /api/teach/{id}/examples.bin``  the examples in the speech-commands format (download)
``POST   /api/teach/{id}/examples.bin``  add the examples of such a file
``POST   /api/teach/{id}/save``        ``{"name"}``: save the model into the models folder (the
                                       Speech page listens with it; its files download from /models/)
=====================================  =========================================================
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..engine.callbacks import Callback
from ..errors import DataError, SightsoundError
from ..speech.model_files import BACKGROUND_NOISE_TAG, UNKNOWN_TAG
from ..speech.wav import read_wav
from .jobs import MAX_SEED
from .models import NAME_PATTERN

MAX_SESSIONS = 8  #: sessions kept; the oldest goes when a new one starts
MIN_EPOCHS, MAX_EPOCHS = 1, 500
DEFAULT_EPOCHS = 50


class TeachError(SightsoundError):
    """A request the Teach page's API refuses (unknown session, bad word or name...)."""


@dataclass
class Session:
    transfer: object
    lock: threading.Lock = field(default_factory=threading.Lock)
    epochs: list = field(default_factory=list)
    running: bool = False
    error: str | None = None


class _Progress(Callback):
    def __init__(self, session: Session):
        self.session = session

    def on_epoch_end(self, epoch, logs=None):
        self.session.epochs.append({"epoch": len(self.session.epochs) + 1,
                                    **{k: float(v) for k, v in (logs or {}).items()}})


class Sessions:
    """The sessions of one app, each on its own copy of the shipped model: training a head moves the base's
    batch-normalisation statistics (as in TF.js), which must not change another session's model."""

    def __init__(self):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._other_speech = None

    def other_speech(self):
        """The shipped other-speech examples (read once), which every session's training also teaches."""
        from ..speech.transfer import shipped_other_speech

        if self._other_speech is None:
            self._other_speech = shipped_other_speech()
        return self._other_speech

    def create(self) -> str:
        from .. import speech

        sid = uuid.uuid4().hex
        session = Session(speech.create("BROWSER_FFT", device="cpu").create_transfer(f"teach-{sid[:8]}"))
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[sid] = session
        return sid

    def get(self, sid: str) -> Session:
        session = self._sessions.get(sid)
        if session is None:
            raise TeachError(f"no Teach session {sid[:40]!r}: start a new one")
        return session


def describe(session: Session) -> dict:
    t = session.transfer
    examples = [{"uid": uid, "word": word} for word in t.dataset.vocabulary() for uid, _ in t.get_examples(word)]
    return {"words": t.word_labels(), "counts": t.dataset.counts(), "examples": examples,
            "trained": t.model is not None}


def train_in_background(session: Session, epochs: int, seed: int | None = None, other_speech=None) -> None:
    def work():
        try:
            session.transfer.train(epochs=epochs, optimizer="adam", callbacks=[_Progress(session)], seed=seed,
                                   other_speech=other_speech)
        except SightsoundError as err:
            session.error = str(err)
        finally:
            session.running = False

    with session.lock:
        if session.running:
            raise TeachError("training is already running")
        session.transfer._check_words()  # fewer than two words: refused now, with the package's message
        session.running, session.error, session.epochs = True, None, []
    threading.Thread(target=work, name="teach-train", daemon=True).start()


def collect(session: Session, word: str, body: bytes) -> dict:
    if not word or len(word) > 64 or not word.strip():
        raise TeachError("a word is 1 to 64 characters")
    if session.running:
        raise TeachError("wait until training ends before adding examples")
    samples, rate = read_wav(body)
    seconds = samples.size / rate
    t = session.transfer
    spec = t.collect_example(word, samples, sample_rate=rate,
                             duration_sec=seconds if seconds > 1.2 else None)  # noise takes its whole recording
    uid = t.get_examples(word)[-1][0]
    return {"uid": uid, "word": word, "frameSize": int(spec.data.shape[1]),
            "spectrogram": [[round(float(v), 1) for v in row] for row in spec.data], **describe(session)}


def add_routes(app: FastAPI, state) -> None:
    sessions = Sessions()

    @app.post("/api/teach")
    async def new_session():
        # the page records noise and other speech under these labels: theirs to ask, not to know
        return {"id": await run_in_threadpool(sessions.create), "noise_label": BACKGROUND_NOISE_TAG,
                "unknown_label": UNKNOWN_TAG,
                "other_speech_examples": len((await run_in_threadpool(sessions.other_speech)).examples),
                "epochs": {"default": DEFAULT_EPOCHS, "min": MIN_EPOCHS, "max": MAX_EPOCHS},
                "seed": {"min": 0, "max": MAX_SEED}}

    @app.get("/api/teach/{sid}")
    async def show(sid: str):
        return describe(sessions.get(sid))

    @app.post("/api/teach/{sid}/examples")
    async def add_example(sid: str, word: str, request: Request):
        session = sessions.get(sid)
        return await run_in_threadpool(collect, session, word, await request.body())

    @app.delete("/api/teach/{sid}/examples/{uid}")
    async def remove_example(sid: str, uid: str):
        session = sessions.get(sid)
        try:
            session.transfer.remove_example(uid)
        except KeyError as err:
            raise TeachError(str(err).strip("'\"")) from None
        return describe(session)

    _add_model_routes(app, sessions, state)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a number


def _add_model_routes(app: FastAPI, sessions: Sessions, state) -> None:
    @app.post("/api/teach/{sid}/train")
    async def train(sid: str, request: Request):
        options = await request.json() if await request.body() else {}
        epochs = options.get("epochs", DEFAULT_EPOCHS) if isinstance(options, dict) else None
        if not _is_int(epochs) or not MIN_EPOCHS <= epochs <= MAX_EPOCHS:
            raise TeachError(f"epochs must be an integer from {MIN_EPOCHS} to {MAX_EPOCHS}")
        seed = options.get("seed")
        if seed is not None and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
            raise TeachError(f"seed must be an integer from 0 to {MAX_SEED}, or absent")
        session = sessions.get(sid)
        train_in_background(session, epochs, seed, await run_in_threadpool(sessions.other_speech))
        return {"started": True}

    @app.get("/api/teach/{sid}/train")
    async def progress(sid: str):
        session = sessions.get(sid)
        return {"running": session.running, "epochs": session.epochs, "error": session.error,
                "trained": session.transfer.model is not None and not session.running}

    @app.post("/api/teach/{sid}/recognize")
    async def recognize(sid: str, request: Request):
        session = sessions.get(sid)
        if session.running or session.transfer.model is None:
            raise TeachError("train the model first")
        samples, rate = read_wav(await request.body())
        result = await run_in_threadpool(session.transfer.recognize, samples, rate)
        return {"word": result.word, "scores": [float(s) for s in result.scores],
                "words": session.transfer.word_labels()}

    @app.get("/api/teach/{sid}/examples.bin")
    async def download_examples(sid: str):
        data = sessions.get(sid).transfer.serialize_examples()
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="examples.bin"'})

    @app.post("/api/teach/{sid}/examples.bin")
    async def upload_examples(sid: str, request: Request):
        session = sessions.get(sid)
        try:
            session.transfer.load_examples(await request.body(), where="the uploaded file")
        except DataError as err:  # a bad file is the request's fault, not the server's (503)
            raise TeachError(str(err)) from None
        return describe(session)

    @app.post("/api/teach/{sid}/save")
    async def save(sid: str, request: Request):
        session = sessions.get(sid)
        name = (await request.json() or {}).get("name", "")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise TeachError("a model name is letters, digits, '-' and '_'")
        if session.running or session.transfer.model is None:
            raise TeachError("train the model first")
        folder = state.store.root / name
        if folder.exists():
            raise TeachError(f"a model named {name!r} exists already")
        await run_in_threadpool(session.transfer.save, folder)
        return {"name": name, "files": ["model.json", "weights.bin", "metadata.json"]}


__all__ = ["add_routes", "Sessions", "TeachError", "MAX_SESSIONS"]
