"""``/ws/audio``: microphone audio from the Speech page to the streaming recognizer.

Protocol (one websocket per listening session):

1. The page sends a JSON text message
   ``{"model": NAME, "sample_rate": 48000, "threshold": 0.75, "overlap": 0.5}``
   (``model`` optional: the newest speech model in the models folder, else
   the one shipped with sightsound, listed as ``built-in``).
2. The server answers ``{"type": "ready", "words": [...], "model": NAME}``.
3. The page streams binary messages of little-endian float32 mono PCM at its
   ``sample_rate``; it may send ``{"type": "threshold", "value": 0.8}`` or
   ``"stop"`` at any time.
4. The server sends ``{"type": "frames", "count": k, "bins": 232, "pixels":
   base64}`` (new spectrogram columns, uint8, for the live view: the
   recognizer's own frames, passed on as it computes them),
   ``{"type": "scores", "scores": [...], "time": t}`` for every recognition
   window, and ``{"type": "word", "word", "score", "time", "scores",
   "spectrogram": {"frames", "bins", "pixels"}}`` when a word (not noise or
   unknown) scores at least the threshold; ``{"type": "error", "error",
   "code"}`` on failure (``code``: :mod:`sightsound.web.errors`; ``no_model``
   when there is no speech model at all).

Caps: a binary message holds at most :data:`MAX_AUDIO_MESSAGE` bytes, a text
message at most :data:`MAX_TEXT_MESSAGE`; audio may not arrive faster than
:data:`MAX_REALTIME_FACTOR` times real time. Breaking a cap closes the socket
with code 1009 (too big) or 1008 (policy: too fast). At most
``max_sessions`` sessions are open at once (each loads a model and runs a
recognizer); one more gets an error message and close code 1013 (try again
later).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ..errors import SightsoundError
from ..speech.model_files import NOISE_WORDS
from .errors import INTERNAL, WebError, error_fields
from .security import DEFAULT_MAX_AUDIO_SESSIONS, INTERNAL_ERROR, MessageRate

MAX_AUDIO_MESSAGE = 64 * 1024  # bytes: 16,384 float32 samples (about 0.34 s at 48 kHz)
MAX_TEXT_MESSAGE = 1024
MAX_REALTIME_FACTOR = 4.0
MAX_PENDING_MESSAGES = 200  # server -> page messages waiting to be sent; older ones are dropped beyond this
SPECTROGRAM_DB_RANGE = (-120.0, -20.0)  # dB mapped to 0..255 in the live view
TRY_AGAIN_LATER = 1013  # websocket close code: the server is at capacity

log = logging.getLogger("sightsound.web")


class StreamRejected(WebError):
    """A session the server refuses; ``close_code`` is the websocket close code."""

    code = "bad_stream"

    def __init__(self, message: str, close_code: int = 1008, code: str | None = None):
        super().__init__(message, code=code)
        self.close_code = close_code


def add_routes(app: FastAPI, state, max_sessions: int = DEFAULT_MAX_AUDIO_SESSIONS) -> None:
    """Register ``/ws/audio``, with at most ``max_sessions`` sessions open at once."""
    open_sessions = 0  # only touched on the event loop's thread

    @app.websocket("/ws/audio")
    async def audio_socket(websocket: WebSocket):
        nonlocal open_sessions
        await websocket.accept()
        if open_sessions >= max_sessions:
            await _fail(websocket, f"{open_sessions} audio sessions are open, the most this server allows "
                                   f"(--max-audio-sessions {max_sessions}); stop one and try again",
                        TRY_AGAIN_LATER, "server_full")
            return
        open_sessions += 1
        try:
            await AudioSession(websocket, state).run()
        except StreamRejected as error:
            await _fail(websocket, state.public(str(error)), error.close_code, error.code)
        except asyncio.TimeoutError:
            await _fail(websocket, "no start message within 30 s", 1008, "bad_stream")
        except SightsoundError as error:
            await _fail(websocket, state.public(str(error)), 4400, error_fields(error)[1])
        except (WebSocketDisconnect, RuntimeError):
            return
        except Exception:  # a bug or a library failure: log the traceback, tell the page no more than that
            log.exception("unexpected error in an audio session")
            await _fail(websocket, INTERNAL_ERROR, 1011, INTERNAL)
        finally:
            open_sessions -= 1


async def _fail(websocket: WebSocket, message: str, close_code: int, code: str) -> None:
    """Send the page ``{"type": "error", "error", "code"}`` (``code``: see :mod:`.errors`), then close."""
    try:
        await websocket.send_json({"type": "error", "error": message, "code": code})
        await websocket.close(code=close_code)
    except (WebSocketDisconnect, RuntimeError):
        pass


# --------------------------------------------------------------------------- encoding helpers

def to_gray(values: np.ndarray, low: float, high: float) -> str:
    """``values`` scaled from [low, high] to uint8 0..255, base64 (row-major)."""
    scaled = (np.asarray(values, dtype=np.float32) - low) * (255.0 / (high - low))
    return base64.b64encode(np.clip(scaled, 0, 255).astype(np.uint8).tobytes()).decode("ascii")


def _field(result, name: str, default=None):
    """``result.name`` or ``result[name]``: the recognizer's result object or a dict."""
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def spectrogram_json(spectrogram, bins: int = 232) -> dict | None:
    """A word's window (raw dB values, as the recognizer passes them) as uint8 pixels, frames x bins."""
    if spectrogram is None:
        return None
    data = _field(spectrogram, "data", spectrogram)
    bins = int(_field(spectrogram, "frame_size", None) or _field(spectrogram, "frameSize", None) or bins)
    values = np.asarray(data, dtype=np.float32).reshape(-1, bins)
    return {"frames": int(values.shape[0]), "bins": bins, "pixels": to_gray(values, *SPECTROGRAM_DB_RANGE)}


# --------------------------------------------------------------------------- one session

class AudioSession:
    """One page listening: PCM in, recognitions and spectrogram columns out."""

    def __init__(self, websocket: WebSocket, state):
        self.websocket = websocket
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.threshold = 0.75
        self.recognizer = None
        self.source = None
        self.words: list[str] = []

    # -- set-up ------------------------------------------------------------------
    async def _read_config(self) -> dict:
        message = await asyncio.wait_for(self.websocket.receive(), timeout=30)
        text = message.get("text")
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect()
        if text is None or len(text) > MAX_TEXT_MESSAGE:
            raise StreamRejected("start with a JSON text message: {\"sample_rate\": ..., \"model\": ...}")
        try:
            config = json.loads(text)
        except ValueError as error:
            raise StreamRejected(f"the first message is not JSON: {error}") from None
        if not isinstance(config, dict):
            raise StreamRejected("the first message must be a JSON object")
        return config

    def _start(self, config: dict) -> None:
        """Create the recognizer and start listening on a push source (runs in a worker thread)."""
        from .. import speech

        name = config.get("model") or self.state.store.default("speech")  # no_model when there is none
        if self.state.store.info(name).kind != "speech":
            raise StreamRejected(f"model {name!r} is not a speech model (it has no metadata.json word list)",
                                 code="not_speech")
        self.model_name, folder = name, str(self.state.store.path(name))
        self.threshold = _threshold(config.get("threshold", 0.75))
        overlap = config.get("overlap", 0.5)
        if not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
            raise StreamRejected(f"overlap must be a number in [0, 1), got {overlap!r}")
        sample_rate = config.get("sample_rate")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
            raise StreamRejected(f"sample_rate must be the audio's rate in Hz (a number), got {sample_rate!r:.60}")
        self.source = speech.PushSource(sample_rate=sample_rate, dtype="<f4")
        recognizer = speech.create("BROWSER_FFT", model=folder, device="cpu")
        self.words = list(recognizer.word_labels())
        recognizer.listen(self._on_result, probability_threshold=0, overlap_factor=float(overlap),
                          invoke_callback_on_noise_and_unknown=True, include_spectrogram=True, source=self.source,
                          on_error=self._on_error, on_frames=self._on_frames)
        self.recognizer = recognizer

    # -- recognizer thread -> page ------------------------------------------------
    def _post(self, message: dict) -> None:
        """Queue a message for the page from any thread (dropping it if the page is far behind)."""
        def put():
            if self.outbox.qsize() < MAX_PENDING_MESSAGES:
                self.outbox.put_nowait(message)

        try:
            self.loop.call_soon_threadsafe(put)
        except RuntimeError:
            pass

    def _on_frames(self, columns: np.ndarray) -> None:
        """New spectrogram columns for the live view: the recognizer's own frames, computed once."""
        self._post({"type": "frames", "count": int(len(columns)), "bins": int(columns.shape[1]),
                    "pixels": to_gray(columns, *SPECTROGRAM_DB_RANGE)})

    def _on_result(self, result) -> None:
        scores = [round(float(s), 4) for s in np.asarray(_field(result, "scores", []), dtype=np.float64).ravel()]
        when = round(float(_field(result, "time", 0.0) or 0.0), 3)
        self._post({"type": "scores", "scores": scores, "time": when})
        if not scores:
            return
        best = int(np.argmax(scores))
        word = self.words[best] if best < len(self.words) else str(best)
        if word in NOISE_WORDS or scores[best] < self.threshold:
            return
        self._post({"type": "word", "word": word, "score": scores[best], "time": when, "scores": scores,
                    "spectrogram": spectrogram_json(_field(result, "spectrogram"))})

    def _on_error(self, error: BaseException) -> None:
        if isinstance(error, SightsoundError):
            reason = self.state.public(str(error))
        else:
            log.error("the recognizer of an audio session failed", exc_info=error)
            reason = INTERNAL_ERROR
        self._post({"type": "error", "error": f"the recognizer stopped: {reason}", "code": "recognizer_failed"})

    # -- page -> recognizer -----------------------------------------------------------
    def _push_audio(self, payload: bytes) -> None:
        if len(payload) % 4:
            raise StreamRejected(f"audio messages must hold float32 samples; got {len(payload)} bytes", 1003)
        self.source.push(payload)

    async def _receive_loop(self) -> None:
        rate = MessageRate(MAX_REALTIME_FACTOR * float(self.source.sample_rate) * 4 + MAX_AUDIO_MESSAGE)
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if len(data) > MAX_AUDIO_MESSAGE:
                    raise StreamRejected(f"audio messages may hold at most {MAX_AUDIO_MESSAGE} bytes", 1009)
                if not rate.allow(len(data)):
                    raise StreamRejected(f"audio arrives faster than {MAX_REALTIME_FACTOR:g}x real time", 1008)
                await run_in_threadpool(self._push_audio, data)
            elif text is not None:
                if len(text) > MAX_TEXT_MESSAGE:
                    raise StreamRejected(f"text messages may hold at most {MAX_TEXT_MESSAGE} bytes", 1009)
                if text.strip() == "stop" or self._control(text) == "stop":
                    return

    def _control(self, text: str) -> str | None:
        """Apply a JSON control message; returns ``"stop"`` when the page asks to stop."""
        try:
            command = json.loads(text)
        except ValueError:
            raise StreamRejected(f"unknown message {text[:40]!r}") from None
        if isinstance(command, dict) and command.get("type") == "threshold":
            self.threshold = _threshold(command.get("value"))
        elif isinstance(command, dict) and command.get("type") == "stop":
            return "stop"
        else:
            raise StreamRejected(f"unknown message {text[:40]!r}")
        return None

    async def _send_loop(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.websocket.send_text(json.dumps(message))

    # -- the session -------------------------------------------------------------------
    async def run(self) -> None:
        config = await self._read_config()
        sender = asyncio.create_task(self._send_loop())
        try:
            await run_in_threadpool(self._start, config)
            self.outbox.put_nowait({"type": "ready", "model": self.model_name, "words": self.words,
                                    "threshold": self.threshold})
            await self._receive_loop()
            await self.websocket.close(code=1000)
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            await run_in_threadpool(self._stop)

    def _stop(self) -> None:
        """End the stream and stop the recognizer (safe whatever ``_start`` got to)."""
        if self.source is not None:
            self.source.end()
        if self.recognizer is not None:
            self.recognizer.stop_listening()


def _threshold(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise StreamRejected(f"threshold must be a number in [0, 1], got {value!r}")
    return float(value)
