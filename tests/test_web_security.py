"""What other web pages can do to ``sightsound serve``: nothing.

* DNS rebinding: a request or websocket handshake naming another ``Host``
  (``evil.example``) is refused; the loopback names, the bound address and
  ``--allowed-host`` names are served.
* Cross-origin pages: a foreign or ``null`` ``Origin`` cannot open a websocket
  or POST; same-origin requests and requests without ``Origin`` (curl, Python)
  work.
* ``/ws/audio`` sessions are capped; one more is told the limit and how many
  are open, and is admitted again once a session closes.
* Error answers carry no exception text, traceback or absolute server path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from sightsound import presets
from sightsound.cli import build_parser, main
from sightsound.errors import DataError
from sightsound.web import create_app
from sightsound.web import app as web_app
from sightsound.web.security import INTERNAL_ERROR, MessageRate, redact_paths
from test_web_api import (MODEL, SPEECH_MODEL, assert_json_error, client, collect_events,  # noqa: F401
                          data_dir, digit_one_png, models_dir, speech_models)
from web_helpers import TESTCLIENT_HOST, save_speech_model

FOREIGN_ORIGINS = ["http://evil.example", "null", "http://127.0.0.1:9999", "https://testserver",
                   "http://testserver.evil.example"]
SERVER_PATH = re.compile(r"(?<![\w.~/:-])/(?:tmp|root|home|work|usr|var)\b")


def assert_denied(handshake, status: int) -> str:
    """The websocket handshake was refused with an HTTP ``status`` and a JSON error; returns the message."""
    with pytest.raises(WebSocketDenialResponse) as denied:
        with handshake:
            pass
    return assert_json_error(denied.value, status)


def assert_no_server_path(text: str, *roots: Path) -> None:
    for root in (*roots, Path.home()):
        assert str(root) not in text and str(Path(root).resolve()) not in text, text
    assert not SERVER_PATH.search(text), text


# --------------------------------------------------------------------------- Host

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "a b",
                                  "localhost:80:80"])
def test_a_rebound_host_is_refused(client, host):
    for url in ("/draw", "/api/models", f"/models/{MODEL}/model.json"):
        message = assert_json_error(client.get(url, headers={"host": host}), 400)
        assert "--allowed-host" in message or "Host header" in message
    for url in ("/ws/audio", "/ws/train/x"):
        assert_denied(client.websocket_connect(url, headers={"host": host}), 400)
    assert_json_error(client.post("/api/train", json={"model": "dense"}, headers={"host": host}), 400)
    assert not client.app.state.web.jobs.jobs


@pytest.mark.parametrize("host", ["localhost", "localhost:8123", "127.0.0.1", "127.0.0.1:80", "[::1]:9000",
                                  "LOCALHOST:8000", TESTCLIENT_HOST])
def test_loopback_names_are_served_on_any_port(client, host):
    response = client.get("/api/models", headers={"host": host})
    assert response.status_code == 200 and response.json()["models"][0]["name"] == MODEL


def test_without_allowed_hosts_only_loopback_names_are_served(models_dir, data_dir):
    with TestClient(create_app(models_dir, data_dir=data_dir)) as plain:
        assert "--allowed-host" in assert_json_error(plain.get("/api/models"), 400)  # Host: testserver
        assert plain.get("/api/models", headers={"host": "127.0.0.1:8000"}).status_code == 200


# --------------------------------------------------------------------------- Origin

@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_a_foreign_origin_cannot_open_websockets_or_post(client, origin):
    for url in ("/ws/audio", "/ws/train/x"):
        assert "cross-origin" in assert_denied(client.websocket_connect(url, headers={"origin": origin}), 403)
    answer = client.post("/api/train", json={"model": "dense", "epochs": 1}, headers={"origin": origin})
    assert "cross-origin" in assert_json_error(answer, 403)
    assert not client.app.state.web.jobs.jobs
    answer = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                         headers={"origin": origin})
    assert_json_error(answer, 403)
    assert_json_error(client.post("/api/train/x/stop", headers={"origin": origin}), 403)


@pytest.mark.parametrize("headers, status, code", [
    *[({"origin": origin}, 403, "cross_origin") for origin in FOREIGN_ORIGINS],
    ({"host": "evil.example"}, 400, "foreign_host"),
    ({"host": "evil.example", "origin": "http://evil.example"}, 400, "foreign_host"),
])
def test_another_page_cannot_delete_a_model(client, models_dir, headers, status, code):
    """DELETE is state-changing: a foreign Origin or Host is refused before the model is looked at."""
    assert_json_error(client.delete(f"/api/models/{MODEL}", headers=headers), status, code)
    assert (models_dir / MODEL / "model.json").is_file()


def test_same_origin_and_no_origin_requests_work(client):
    for headers in ({"origin": "http://testserver"}, {"origin": "http://testserver:80"}, {}):
        answer = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                             headers=headers)
        assert answer.status_code == 200, answer.text
        with client.websocket_connect("/ws/train/nope", headers=headers) as socket:
            assert "no training job" in socket.receive_json()["error"]
    local = {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}
    assert client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                       headers=local).status_code == 200
    job = client.post("/api/train", json={"model": "dense", "epochs": 1, "batch_size": 100},
                      headers={"origin": "http://testserver"})
    assert job.status_code == 201, job.text
    assert collect_events(client, job.json()["job_id"])[-1]["type"] == "done"
    # a cross-origin GET is answered (the browser keeps the answer from the page: no CORS headers)
    answer = client.get("/api/models", headers={"origin": "http://evil.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


# --------------------------------------------------------------------------- the command line

def test_serve_options_parse_and_are_listed(capsys):
    args = build_parser().parse_args(["serve", "--allowed-host", "mybox.lan", "--allowed-host", "10.0.0.2",
                                      "--max-audio-sessions", "2"])
    assert args.allowed_host == ["mybox.lan", "10.0.0.2"] and args.max_audio_sessions == 2
    assert build_parser().parse_args(["serve"]).allowed_host == []
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    usage = capsys.readouterr().out
    assert "--allowed-host NAME" in usage and "--max-audio-sessions N" in usage and "--no-builtin-speech" in usage
    assert build_parser().parse_args(["serve", "--no-builtin-speech"]).builtin_speech is False
    assert build_parser().parse_args(["serve"]).builtin_speech is True


def test_allowed_host_admits_its_name_on_a_wildcard_bind(models_dir, monkeypatch, capsys):
    import uvicorn

    served = {}

    def run(server, sockets):
        served["app"] = server.config.app
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--models", str(models_dir), "--malloc-arenas", "0",
                 "--allowed-host", "mybox.lan", "--allowed-host", "192.168.1.20"]) == 0
    with TestClient(served["app"]) as cli_client:
        for host in ("mybox.lan", "mybox.lan:8000", "MyBox.LAN.", "192.168.1.20:8000", "0.0.0.0:8000",
                     "localhost:8000"):
            assert cli_client.get("/api/models", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "mybox.lan.evil.example", "192.168.1.21"):
            assert_json_error(cli_client.get("/api/models", headers={"host": host}), 400)
        same = {"host": "mybox.lan:8000", "origin": "http://mybox.lan:8000"}
        assert cli_client.post("/api/train", json={"model": "nope"}, headers=same).status_code == 400  # validation
        other = {"host": "mybox.lan:8000", "origin": "http://localhost:8000"}
        assert_json_error(cli_client.post("/api/train", json={"model": "dense"}, headers=other), 403)
    assert "--allowed-host" in capsys.readouterr().err  # the wildcard bind warning says how pages reach it


@pytest.mark.parametrize("argv, message", [
    (["--allowed-host", "mybox.lan:8000"], "without scheme or port"),
    (["--allowed-host", "http://mybox.lan"], "without scheme or port"),
    (["--max-audio-sessions", "0"], "at least 1"),
])
def test_bad_serve_options_are_refused(models_dir, argv, message, capsys):
    assert main(["serve", "--port", "0", "--models", str(models_dir), "--malloc-arenas", "0", *argv]) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- audio sessions

def start_session(app_client, exit_stack: contextlib.ExitStack):
    socket = exit_stack.enter_context(app_client.websocket_connect("/ws/audio"))
    socket.send_text(json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}))
    return socket, socket.receive_json()


def test_audio_sessions_are_capped(speech_models, data_dir):
    app = create_app(speech_models, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST], max_audio_sessions=2)
    with TestClient(app) as capped, contextlib.ExitStack() as sessions:
        first, ready = start_session(capped, sessions)
        assert ready["type"] == "ready"
        with contextlib.ExitStack() as second_stack:
            assert start_session(capped, second_stack)[1]["type"] == "ready"
            with capped.websocket_connect("/ws/audio") as refused:
                error = refused.receive_json()
                assert error["type"] == "error"
                assert "2 audio sessions are open" in error["error"] and "--max-audio-sessions 2" in error["error"]
                with pytest.raises(WebSocketDisconnect) as closed:
                    refused.receive_json()
            assert closed.value.code == 1013
            second_stack.pop_all().close()  # the second session ends...
        again, ready = start_session(capped, sessions)  # ...and a new one is admitted
        assert ready["type"] == "ready"
        first.send_text("stop")
        again.send_text("stop")


# --------------------------------------------------------------------------- error texts

def test_a_500_shows_no_exception_text_traceback_or_path(client, monkeypatch, caplog):
    def explode(*_args, **_kwargs):
        raise RuntimeError("/root/secret/path boom")

    monkeypatch.setattr(web_app, "predict_image", explode)
    with caplog.at_level(logging.ERROR, logger="sightsound.web"):
        answer = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")})
    assert answer.status_code == 500 and answer.json() == {"error": INTERNAL_ERROR, "code": "internal"}
    for leak in ("secret", "boom", "RuntimeError", "Traceback", "/root"):
        assert leak not in answer.text
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "boom" in str(logged[0].exc_info[1])  # the traceback stays in the server log


def test_user_errors_name_models_not_server_paths(tmp_path, data_dir):
    models = tmp_path / "models"
    presets.build("mnist-dense", device="cpu").save(str(models / "no-weights"))
    for weights in (models / "no-weights").glob("*.bin"):
        weights.unlink()
    with TestClient(create_app(models, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])) as fresh:
        answer = fresh.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                            data={"model": "no-weights"})
        message = assert_json_error(answer, 422)
        assert "no-weights/" in message
        assert_no_server_path(message, models, tmp_path)
        message = assert_json_error(fresh.get("/api/test-results/missing"), 404)
        assert_no_server_path(message, models)


def test_the_audio_socket_names_no_server_path(tmp_path, data_dir):
    models = tmp_path / "models"
    for weights in save_speech_model(models / "no-weights").glob("*.bin"):
        weights.unlink()
    app = create_app(models, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as speech, speech.websocket_connect("/ws/audio") as socket:
        socket.send_text(json.dumps({"model": "no-weights", "sample_rate": 16000}))
        error = socket.receive_json()
    assert error["type"] == "error" and "no-weights/model.json" in error["error"]
    assert_no_server_path(error["error"], models, tmp_path)


def test_a_failed_job_names_no_server_path(client, data_dir, monkeypatch):
    def missing_data():
        raise DataError(f"cannot read {data_dir}/mnist/mnist.npz: truncated; or {Path.home()}/x/mnist.npz")

    monkeypatch.setattr(client.app.state.web.jobs, "get_data", missing_data)
    job_id = client.post("/api/train", json={"model": "dense", "epochs": 1}).json()["job_id"]
    event = collect_events(client, job_id)[-1]
    assert event["type"] == "error" and "mnist/mnist.npz" in event["error"] and "~/x/mnist.npz" in event["error"]
    assert_no_server_path(event["error"], data_dir)
    assert_no_server_path(client.get(f"/api/train/{job_id}").json()["error"], data_dir)


def test_redact_paths_keeps_names_and_urls():
    text = ("no model in /srv/runs; /srv/runs/conv/model.json: bad; see GET /api/models or "
            "http://127.0.0.1:8000/ws/audio; cannot open '/usr/lib/x/secret.py'; " + str(Path.home()) + "/a/b")
    assert redact_paths(text, [("/srv/runs", "runs")]) == (
        "no model in runs; conv/model.json: bad; see GET /api/models or http://127.0.0.1:8000/ws/audio; "
        "cannot open 'secret.py'; ~/a/b")


def test_an_unexpected_job_failure_is_logged_not_shown(client, monkeypatch, caplog):
    def broken_data():
        raise RuntimeError("boom in /root/secret/loader.py")

    monkeypatch.setattr(client.app.state.web.jobs, "get_data", broken_data)
    with caplog.at_level("ERROR", logger="sightsound.web.jobs"):
        job_id = client.post("/api/train", json={"model": "dense", "epochs": 1}).json()["job_id"]
        event = collect_events(client, job_id)[-1]
    assert event == {**event, "type": "error", "error": INTERNAL_ERROR}
    assert client.get(f"/api/train/{job_id}").json()["error"] == INTERNAL_ERROR
    assert "boom in /root/secret/loader.py" in caplog.text and "Traceback" in caplog.text


def test_message_rate_allows_its_budget_per_second_and_no_more():
    """A websocket's cap counts what arrives within one second of wall time, then starts again."""
    now = [100.0]
    rate = MessageRate(20, clock=lambda: now[0])
    assert all(rate.allow(1) for _ in range(20))
    assert not rate.allow(1)  # the 21st message within the second
    now[0] += 0.999
    assert not rate.allow(1)
    now[0] += 0.001  # a new second: the budget is whole again
    assert all(rate.allow(1) for _ in range(20))
    assert not rate.allow(1)
    by_bytes = MessageRate(1000, clock=lambda: now[0])
    assert by_bytes.allow(600) and by_bytes.allow(400) and not by_bytes.allow(1)
