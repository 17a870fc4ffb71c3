"""sightsound.http_fetch and its callers: credentials stay with their origin; limits and errors name the URL.

Each caller (load_layers_model, speech.create's metadata.json, download_file
and the MNIST mirrors behind it) is fetched from origin A, which redirects to
A itself, to B (another port) or to A under the name ``localhost`` (another
host): only the same-origin hop may carry the caller's headers.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass

import numpy as np
import pytest
from http_helpers import LocalServer, local_server
from test_data_mnist import assert_same_data, encoded_files, small_mnist_arrays
from test_speech_stream import WORDS, save_tiny_model

import sightsound
from sightsound import http_fetch, presets, speech
from sightsound.data.download import download_file
from sightsound.data.mnist import FILES, load_mnist
from sightsound.errors import DownloadError, FetchError, ModelFormatError

SECRETS = {"Authorization": "Bearer SECRET", "X-Token": "t"}


@pytest.fixture
def a():
    with local_server() as server:
        yield server


@pytest.fixture
def b():
    with local_server() as server:
        yield server


@dataclass
class Target:
    """Where A redirects to: ``server`` reached under ``host``."""

    server: LocalServer
    host: str
    same_origin: bool

    def url(self, path: str) -> str:
        return self.server.url(path, host=self.host)

    def assert_headers(self) -> None:
        """The caller's headers arrived here only if this is A's own origin; something arrived at all."""
        seen = self.server.headers_sent_to(self.host)
        assert seen, "nothing was fetched from the redirect target"
        for headers in seen:
            if self.same_origin:
                assert headers.get("Authorization") == "Bearer SECRET" and headers.get("X-Token") == "t"
            else:
                assert "Authorization" not in headers and "X-Token" not in headers, headers


@pytest.fixture(params=["same origin", "other port", "other host name"])
def target(request, a, b):
    if request.param == "same origin":
        return Target(a, "127.0.0.1", True)
    if request.param == "other port":
        return Target(b, "127.0.0.1", False)
    return Target(a, "localhost", False)


def redirect_folder(a: LocalServer, target: Target, folder) -> None:
    """Every file of ``folder`` at target's ``/elsewhere/<name>``, and A's ``/m/<name>`` redirecting there."""
    target.server.serve_folder("/elsewhere", folder)
    for path in folder.iterdir():
        a.redirect(f"/m/{path.name}", target.url(f"/elsewhere/{path.name}"))


def assert_a_got_the_headers(a: LocalServer) -> None:
    first = a.headers_sent_to("127.0.0.1")[0]
    assert first.get("Authorization") == "Bearer SECRET" and first.get("X-Token") == "t"


# --------------------------------------------------------------------------- each caller, redirected

def test_load_layers_model_keeps_headers_to_its_origin(a, target, tmp_path):
    sightsound.set_seed(0)
    model = presets.build("mnist-dense", device="cpu")
    model.save(tmp_path / "model")
    redirect_folder(a, target, tmp_path / "model")
    loaded = sightsound.load_layers_model(a.url("/m/model.json"), request_options={"headers": SECRETS},
                                          device="cpu")
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert_a_got_the_headers(a)
    target.assert_headers()


def test_speech_metadata_keeps_headers_to_its_origin(a, target, tmp_path):
    save_tiny_model(tmp_path / "speech", 4, WORDS)
    redirect_folder(a, target, tmp_path / "speech")
    options = {"requestInit": {"headers": SECRETS}, "timeout": 5}  # TF.js's form of the headers
    recognizer = speech.create("BROWSER_FFT", model=a.url("/m/model.json"), request_options=options, device="cpu")
    assert recognizer.word_labels() == WORDS
    assert "/elsewhere/metadata.json" in [path for path, _ in target.server.requests]
    assert_a_got_the_headers(a)
    target.assert_headers()


def test_download_file_keeps_headers_to_its_origin(a, target, tmp_path):
    target.server.routes["/elsewhere/f.bin"] = (200, b"payload", {})
    a.redirect("/m/f.bin", target.url("/elsewhere/f.bin"))
    dest = download_file([a.url("/m/f.bin")], tmp_path / "f.bin", headers=SECRETS, progress=False)
    assert dest.read_bytes() == b"payload"
    assert_a_got_the_headers(a)
    target.assert_headers()


def test_mnist_mirror_redirected_to_another_origin_loads(a, b, tmp_path):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    served = tmp_path / "served"
    served.mkdir()
    for name, data in raw_by_name.items():
        (served / f"{name}.gz").write_bytes(gzip.compress(data))
    redirect_folder(a, Target(b, "127.0.0.1", False), served)
    data = load_mnist(tmp_path / "data", mirrors=[a.url("/m/")], checksums=checksums, progress=False)
    assert_same_data(data, arrays)
    assert f"/elsewhere/{FILES['train_images']}.gz" in [path for path, _ in b.requests]
    assert all("sightsound" in headers["User-Agent"] for _, headers in b.requests)


# --------------------------------------------------------------------------- redirects that are refused

def test_redirect_loop_is_an_error(a):
    a.redirect("/loop", "/loop")
    a.redirect("/x", "/y")
    a.redirect("/y", a.url("/x"))
    for path in ("/loop", "/x"):
        with pytest.raises(FetchError, match=rf"cannot fetch {re.escape(a.url(path))}: redirect loop"):
            http_fetch.fetch_bytes(a.url(path), max_bytes=100)


def test_too_many_redirects_is_an_error(a):
    limit = http_fetch.MAX_REDIRECTS
    for i in range(limit + 1):
        a.redirect(f"/r{i}", f"/r{i + 1}")
    a.routes[f"/r{limit + 1}"] = (200, b"one hop too far", {})
    with pytest.raises(FetchError, match=rf"cannot fetch {re.escape(a.url('/r0'))}: more than {limit} redirects"):
        http_fetch.fetch_bytes(a.url("/r0"), max_bytes=100)
    a.routes[f"/r{limit}"] = (200, b"just in time", {})  # after exactly MAX_REDIRECTS redirects
    assert http_fetch.fetch_bytes(a.url("/r0"), max_bytes=100) == b"just in time"


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/model.json"])
def test_redirect_to_another_scheme_is_refused(a, tmp_path, location):
    a.redirect("/m/model.json", location)
    with pytest.raises(ModelFormatError, match=rf"refused redirect to {re.escape(location)} "
                                               r"\(only http and https URLs are followed\)"):
        sightsound.load_layers_model(a.url("/m/model.json"), device="cpu")
    with pytest.raises(DownloadError, match=re.escape(location)):
        download_file([a.url("/m/model.json")], tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_https_to_http_redirect_is_refused_as_a_downgrade():
    with pytest.raises(FetchError, match=r"refused redirect to http://b\.example/x \(a downgrade from https"):
        http_fetch._check_redirect("https://a.example/x", "http://b.example/x")
    http_fetch._check_redirect("http://a.example/x", "https://b.example/x")  # an upgrade is fine


def test_only_http_and_https_urls_are_fetched():
    with pytest.raises(FetchError, match=r"cannot fetch ftp://h/x: unsupported URL scheme 'ftp' "
                                         r"\(allowed: http, https\)"):
        http_fetch.fetch_bytes("ftp://h/x", max_bytes=1)


# --------------------------------------------------------------------------- limits and error messages

def test_body_larger_than_max_bytes_is_refused(a):
    a.routes["/announced"] = (200, b"x" * 5000, {})
    a.routes["/unannounced"] = (200, b"x" * 5000, {"Content-Length": None})  # read until the server closes
    url = a.url("/announced")
    with pytest.raises(FetchError, match=rf"{re.escape(url)}: larger than the 1000-byte limit "
                                         r"\(it announces 5000 bytes\)"):
        http_fetch.fetch_bytes(url, max_bytes=1000)
    url = a.url("/unannounced")
    with http_fetch.open_url(url, max_bytes=1000) as (body, length):
        assert length is None
        with pytest.raises(FetchError, match=rf"{re.escape(url)}: larger than the 1000-byte limit$"):
            while body.read(300):
                pass
        assert body.received == 1001  # stopped one byte past the limit
    assert http_fetch.fetch_bytes(url, max_bytes=5000) == b"x" * 5000


def test_timeout_names_the_url(a):
    a.routes["/slow"] = (200, b"late", {})
    a.delays["/slow"] = 1.5
    url = a.url("/slow")
    with pytest.raises(FetchError, match=rf"^timed out after 0.3 s fetching {re.escape(url)}$"):
        http_fetch.fetch_bytes(url, timeout=0.3, max_bytes=100)


def test_errors_name_the_url_status_and_reason(a, tmp_path):
    url = a.url("/missing")
    with pytest.raises(FetchError, match=rf"^HTTP 404 Not Found for {re.escape(url)}$") as caught:
        http_fetch.fetch_bytes(url, max_bytes=100)
    assert caught.value.status == 404 and caught.value.problem == "HTTP 404 Not Found"
    a.redirect("/moved", "/missing")
    with pytest.raises(FetchError, match=rf"HTTP 404 Not Found for {re.escape(url)} "
                                         rf"\(redirected from {re.escape(a.url('/moved'))}\)"):
        http_fetch.fetch_bytes(a.url("/moved"), max_bytes=100)
    a.routes["/short"] = (200, b"abc", {"Content-Length": "10"})
    with pytest.raises(FetchError, match="incomplete transfer: the server announced 10 bytes and sent 3"):
        http_fetch.fetch_bytes(a.url("/short"), max_bytes=100)


def test_connection_refused_names_the_url():
    with local_server() as server:
        url = server.url("/x")  # closed after the block: nobody listens on the port
    with pytest.raises(FetchError, match=rf"^cannot fetch {re.escape(url)}: connection refused$"):
        http_fetch.fetch_bytes(url, max_bytes=100)


def test_request_settings_reads_both_tfjs_forms():
    assert http_fetch.request_settings(None) == ({}, http_fetch.DEFAULT_TIMEOUT)
    assert http_fetch.request_settings({"headers": {"A": "1"}, "timeout": 2}) == ({"A": "1"}, 2.0)
    assert http_fetch.request_settings({"requestInit": {"headers": {"A": 1}}}) == ({"A": "1"},
                                                                                   http_fetch.DEFAULT_TIMEOUT)
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        http_fetch.request_settings({"timeout": 0})
