"""Tests for sightsound.data.download against a throw-away HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from http_helpers import local_server

from sightsound.data.download import download_file, sha256_file
from sightsound.errors import DataError, DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several read chunks


@pytest.fixture
def server():
    with local_server() as local:
        yield local


@pytest.fixture
def refused_url() -> str:
    """A URL on a port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _dir_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- helpers

def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(PAYLOAD)
    assert sha256_file(path) == hashlib.sha256(PAYLOAD).hexdigest()
    assert sha256_file(path, chunk_size=1000) == hashlib.sha256(PAYLOAD).hexdigest()


# --------------------------------------------------------------------------- download_file

def test_download_good_file_lands_complete(server, tmp_path):
    server.routes["/f.bin"] = (200, PAYLOAD, {})
    dest = tmp_path / "f.bin"
    result = download_file([server.url("/f.bin")], dest, hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert _dir_names(tmp_path) == ["f.bin"]


def test_download_sends_extra_headers(server, tmp_path):
    server.routes["/f.bin"] = (200, b"x", {})
    download_file([server.url("/f.bin")], tmp_path / "f.bin", headers={"X-Test": "yes"}, progress=False)
    _, sent_headers = server.requests[0]
    assert sent_headers.get("X-Test") == "yes"
    assert "sightsound" in sent_headers.get("User-Agent", "")


def test_download_falls_back_after_404_and_bad_checksum(server, tmp_path):
    server.routes["/bad/f.bin"] = (200, b"tampered" + PAYLOAD, {})
    server.routes["/good/f.bin"] = (200, PAYLOAD, {})
    urls = [server.url("/missing/f.bin"), server.url("/bad/f.bin"), server.url("/good/f.bin")]
    dest = download_file(urls, tmp_path / "f.bin", hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/missing/f.bin", "/bad/f.bin", "/good/f.bin"]
    assert _dir_names(tmp_path) == ["f.bin"]


def test_download_all_mirrors_fail_lists_every_url_and_leaves_nothing(server, refused_url, tmp_path):
    server.routes["/bad/f.bin"] = (200, b"wrong content", {})
    urls = [server.url("/missing/f.bin"), server.url("/bad/f.bin"), refused_url, "ftp://example.invalid/f.bin"]
    with pytest.raises(DownloadError) as caught:
        download_file(urls, tmp_path / "f.bin", hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    message = str(caught.value)
    for url in urls:
        assert url in message
    assert "HTTP 404" in message
    assert "SHA-256 mismatch" in message
    assert "refused" in message.lower()
    assert "unsupported URL scheme 'ftp'" in message
    assert _dir_names(tmp_path) == []


def test_download_failed_check_keeps_previous_file_untouched(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"previous good content")
    server.routes["/f.bin"] = (200, PAYLOAD, {})

    def reject(temp_path: Path) -> None:
        assert temp_path.parent == tmp_path and temp_path != dest
        assert temp_path.read_bytes() == PAYLOAD  # complete and flushed before the check
        raise DataError(f"{temp_path.name}: corrupt gzip data")

    with pytest.raises(DownloadError, match="corrupt gzip data"):
        download_file([server.url("/f.bin")], dest, decompress_check=reject, progress=False)
    assert dest.read_bytes() == b"previous good content"
    assert _dir_names(tmp_path) == ["f.bin"]


def test_download_cut_connection_is_an_error_and_leaves_nothing(server, tmp_path):
    # The server announces more bytes than it sends, then closes the connection.
    server.routes["/short.bin"] = (200, PAYLOAD[:1000], {"Content-Length": str(len(PAYLOAD))})
    with pytest.raises(DownloadError) as caught:
        download_file([server.url("/short.bin")], tmp_path / "short.bin", progress=False)
    assert server.url("/short.bin") in str(caught.value)
    assert _dir_names(tmp_path) == []


def test_download_requires_existing_directory_and_urls(tmp_path):
    with pytest.raises(DownloadError, match="does not exist"):
        download_file(["http://127.0.0.1:9/x"], tmp_path / "nope" / "x.bin", progress=False)
    with pytest.raises(DownloadError, match="no URL"):
        download_file([], tmp_path / "x.bin", progress=False)
