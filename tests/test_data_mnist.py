"""Tests for sightsound.data.mnist: IDX parsing, loading, npz, helpers and download."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from conftest import mnist_root
from sightsound import paths
from sightsound.data import mnist
from sightsound.data.mnist import (
    FILES,
    MnistData,
    load_mnist,
    load_mnist_npz,
    one_hot,
    read_idx,
    to_float_images,
)
from sightsound.errors import DataError, DownloadError, ShapeError

TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
              np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as an uncompressed IDX file."""
    array = np.asarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def make_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def small_mnist_arrays() -> dict[str, np.ndarray]:
    train_images, train_labels = make_split(6, seed=1)
    test_images, test_labels = make_split(4, seed=2)
    return {"train_images": train_images, "train_labels": train_labels,
            "test_images": test_images, "test_labels": test_labels}


def encoded_files(arrays: dict[str, np.ndarray]) -> tuple[dict[str, bytes], dict[str, str]]:
    """IDX bytes per file name and the SHA-256 of those (decompressed) bytes."""
    raw_by_name = {FILES[key]: idx_bytes(array) for key, array in arrays.items()}
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in raw_by_name.items()}
    return raw_by_name, checksums


def write_mnist_dir(root: Path, arrays: dict[str, np.ndarray], compress: bool) -> dict[str, str]:
    """Write the four files into ``root/mnist``; return the checksums of the raw bytes."""
    directory = root / "mnist"
    directory.mkdir(parents=True, exist_ok=True)
    raw_by_name, checksums = encoded_files(arrays)
    for name, data in raw_by_name.items():
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return checksums


def assert_same_data(data: MnistData, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        np.testing.assert_array_equal(getattr(data, key), expected)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64


# --------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)])
def test_read_idx_round_trip_every_type_and_rank(dtype, shape):
    array = (np.arange(np.prod(shape)) - 3).reshape(shape).astype(dtype)
    parsed = read_idx(idx_bytes(array))
    assert parsed.shape == shape
    assert parsed.dtype == np.dtype(dtype) and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, array)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip_files(tmp_path, compress):
    images, _ = make_split(5, seed=3)
    data = idx_bytes(images)
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path), images)
    np.testing.assert_array_equal(read_idx(path.read_bytes()), images)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    labels = np.array([1, 2, 3], dtype=np.uint8)
    gz_named_plain = tmp_path / "labels.gz"
    gz_named_plain.write_bytes(idx_bytes(labels))
    plain_named_gz = tmp_path / "labels-idx1-ubyte"
    plain_named_gz.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(gz_named_plain), labels)
    np.testing.assert_array_equal(read_idx(plain_named_gz), labels)


def test_read_idx_wrong_magic_names_file(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="bad magic") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "dimension count 0"),
    (b"\x00\x00\x08\x05", "dimension count 5"),
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
])
def test_read_idx_bad_headers(data, message):
    with pytest.raises(DataError, match=message) as caught:
        read_idx(data, name="header-test.idx")
    assert "header-test.idx" in str(caught.value)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated_payload_reports_expected_and_actual(tmp_path, compress):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))[:-100]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError, match="truncated payload") as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "3136" in message and "3036" in message


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_trailing_bytes_reports_expected_and_actual(tmp_path, compress):
    data = idx_bytes(np.zeros(10, dtype=np.uint8)) + b"extra"
    path = tmp_path / "long"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError, match="5 trailing bytes") as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "needs 10 payload bytes, got 15" in message


def test_read_idx_corrupt_gzip(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8))))
    bad_method = bytearray(compressed)
    bad_method[2] = 7  # gzip compression method must be 8 (deflate)
    bad_crc = bytearray(compressed)
    bad_crc[-8] ^= 0xFF  # CRC-32 in the gzip trailer
    for variant, data in (("method", bad_method), ("crc", bad_crc)):
        path = tmp_path / f"corrupt-{variant}.gz"
        path.write_bytes(bytes(data))
        with pytest.raises(DataError, match="corrupt gzip") as caught:
            read_idx(path)
        assert str(path) in str(caught.value)


def test_read_idx_truncated_gzip(tmp_path):
    images, _ = make_split(20, seed=4)
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match="truncated gzip") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)
    # Cut inside the 8-byte trailer: the payload is complete, the stream is not.
    path.write_bytes(compressed[:-3])
    with pytest.raises(DataError, match="truncated gzip"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dims", [(10**9, 28, 28), (10**8 + 1,), (2**16, 2**16)])
def test_read_idx_huge_header_rejected_fast_without_allocating(tmp_path, compress, dims):
    data = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + b"\x00" * 1000
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DataError, match="refusing to read") as caught:
            read_idx(path)
        elapsed = time.perf_counter() - started
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak_bytes < 10 * 2**20
    assert str(path) in str(caught.value)


def test_read_idx_lying_gzip_header_does_not_preallocate(tmp_path):
    # Under both caps (9e7 int32 items = 360 MB claimed), but the gzip holds only 64 bytes.
    dims = (1000, 1000, 90)
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0C, 3]) + struct.pack(">3I", *dims) + b"\x01" * 64))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="truncated payload"):
            read_idx(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 50 * 2**20


def test_read_idx_checksum_mismatch_names_file_and_hashes(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8))
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(data))
    actual = hashlib.sha256(data).hexdigest()
    assert read_idx(path, expected_sha256=actual).shape == (10,)
    with pytest.raises(DataError) as caught:
        read_idx(path, expected_sha256="ab" * 32)
    message = str(caught.value)
    assert str(path) in message and "ab" * 32 in message and actual in message


def test_read_idx_missing_file():
    with pytest.raises(DataError, match="file not found"):
        read_idx("/nonexistent/dir/train-images-idx3-ubyte")


# --------------------------------------------------------------------------- load_mnist from disk

@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_generated_files(tmp_path, compress):
    arrays = small_mnist_arrays()
    checksums = write_mnist_dir(tmp_path, arrays, compress=compress)
    data = load_mnist(tmp_path, download=False, checksums=checksums)
    assert_same_data(data, arrays)
    assert "train_images=(6, 28, 28)" in repr(data)


def test_load_mnist_accepts_mixed_raw_and_gz(tmp_path):
    arrays = small_mnist_arrays()
    checksums = write_mnist_dir(tmp_path, arrays, compress=True)
    name = FILES["test_labels"]
    directory = tmp_path / "mnist"
    (directory / name).write_bytes(gzip.decompress((directory / f"{name}.gz").read_bytes()))
    (directory / f"{name}.gz").unlink()
    assert_same_data(load_mnist(tmp_path, download=False, checksums=checksums), arrays)


def test_load_mnist_uses_data_dir_env(tmp_path, monkeypatch):
    arrays = small_mnist_arrays()
    checksums = write_mnist_dir(tmp_path, arrays, compress=True)
    monkeypatch.setenv("SIGHTSOUND_DATA", str(tmp_path))
    assert_same_data(load_mnist(download=False, checksums=checksums), arrays)


def test_load_mnist_checksum_mismatch_names_file(tmp_path):
    arrays = small_mnist_arrays()
    checksums = write_mnist_dir(tmp_path, arrays, compress=True)
    wrong = dict(checksums, **{FILES["train_labels"]: "0" * 64})
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path, download=False, checksums=wrong)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert "0" * 64 in message and checksums[FILES["train_labels"]] in message
    # verify=False skips the hash check.
    assert_same_data(load_mnist(tmp_path, download=False, checksums=wrong, verify=False), arrays)


def test_load_mnist_default_checksums_reject_fake_files(tmp_path):
    write_mnist_dir(tmp_path, small_mnist_arrays(), compress=True)
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        load_mnist(tmp_path, download=False)


def test_load_mnist_count_mismatch(tmp_path):
    arrays = small_mnist_arrays()
    arrays["test_labels"] = arrays["test_labels"][:3]
    checksums = write_mnist_dir(tmp_path, arrays, compress=True)
    with pytest.raises(DataError, match="count mismatch") as caught:
        load_mnist(tmp_path, download=False, checksums=checksums)
    assert "4 images" in str(caught.value) and "3 labels" in str(caught.value)


def test_load_mnist_labels_out_of_range(tmp_path):
    arrays = small_mnist_arrays()
    arrays["train_labels"][2] = 10
    checksums = write_mnist_dir(tmp_path, arrays, compress=False)
    with pytest.raises(DataError, match=r"labels must be 0\.\.9") as caught:
        load_mnist(tmp_path, download=False, checksums=checksums)
    assert FILES["train_labels"] in str(caught.value)


def test_load_mnist_wrong_image_size(tmp_path):
    arrays = small_mnist_arrays()
    arrays["test_images"] = np.zeros((4, 32, 32), dtype=np.uint8)
    checksums = write_mnist_dir(tmp_path, arrays, compress=True)
    with pytest.raises(DataError, match=r"\[N, 28, 28\]"):
        load_mnist(tmp_path, download=False, checksums=checksums)


# --------------------------------------------------------------------------- npz

def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, x_train=arrays["train_images"], y_train=arrays["train_labels"],
             x_test=arrays["test_images"], y_test=arrays["test_labels"])


def test_load_mnist_npz(tmp_path):
    arrays = small_mnist_arrays()
    write_npz(tmp_path / "mnist.npz", arrays)
    assert_same_data(load_mnist_npz(tmp_path / "mnist.npz"), arrays)


def test_load_mnist_falls_back_to_npz_when_idx_missing(tmp_path):
    arrays = small_mnist_arrays()
    (tmp_path / "mnist").mkdir()
    write_npz(tmp_path / "mnist" / "mnist.npz", arrays)
    assert_same_data(load_mnist(tmp_path, download=False), arrays)


def test_load_mnist_npz_bad_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="garbage.npz"):
        load_mnist_npz(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="missing keys"):
        load_mnist_npz(partial)
    with pytest.raises(DataError, match="file not found"):
        load_mnist_npz(tmp_path / "absent.npz")


# --------------------------------------------------------------------------- helpers

def test_to_float_images():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    floats = to_float_images(images)
    assert floats.shape == (1, 2, 2, 1) and floats.dtype == np.float32
    np.testing.assert_allclose(floats[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)
    assert to_float_images(images[..., np.newaxis]).shape == (1, 2, 2, 1)
    with pytest.raises(ShapeError, match="uint8"):
        to_float_images(images.astype(np.float32))
    with pytest.raises(ShapeError, match="shape"):
        to_float_images(np.zeros((2, 2), np.uint8))


def test_one_hot():
    encoded = one_hot(np.array([3, 0, 9], dtype=np.uint8))
    assert encoded.shape == (3, 10) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(encoded.sum(axis=1), [1, 1, 1])
    assert one_hot(np.array([1]), num_classes=2).tolist() == [[0.0, 1.0]]
    with pytest.raises(ShapeError, match="0..9"):
        one_hot(np.array([0, 10]))
    with pytest.raises(ShapeError, match="0..9"):
        one_hot(np.array([-1]))
    with pytest.raises(ShapeError, match="integer"):
        one_hot(np.array([0.5]))


# --------------------------------------------------------------------------- download

class _FileHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.requested.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_response(404)
            body = b"not found"
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror_server():
    """Local HTTP server; put bytes in ``server.files["/path"]``; base URL in ``server.base``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    httpd.files, httpd.requested = {}, []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve_mnist(server, prefix: str, raw_by_name: dict[str, bytes]) -> str:
    for name, data in raw_by_name.items():
        server.files[f"{prefix}{name}.gz"] = gzip.compress(data)
    return f"{server.base}{prefix}"


def test_download_good_files_land_and_load(tmp_path, mirror_server):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    mirror = serve_mnist(mirror_server, "/m/", raw_by_name)
    data = load_mnist(tmp_path / "data", mirrors=[mirror], checksums=checksums, progress=False)
    assert_same_data(data, arrays)
    assert sorted(os.listdir(tmp_path / "data" / "mnist")) == sorted(f"{n}.gz" for n in FILES.values())
    # Second call reads the stored files, no new requests.
    request_count = len(mirror_server.requested)
    assert_same_data(load_mnist(tmp_path / "data", mirrors=[mirror], checksums=checksums), arrays)
    assert len(mirror_server.requested) == request_count


def test_download_404_on_first_mirror_then_second(tmp_path, mirror_server):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    second = serve_mnist(mirror_server, "/second/", raw_by_name)
    first = f"{mirror_server.base}/first/"
    data = load_mnist(tmp_path, mirrors=[first, second], checksums=checksums, progress=False)
    assert_same_data(data, arrays)
    assert mirror_server.requested[:2] == [f"/first/{FILES['train_images']}.gz",
                                          f"/second/{FILES['train_images']}.gz"]


def test_download_only_missing_files(tmp_path, mirror_server):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    write_mnist_dir(tmp_path, arrays, compress=True)
    (tmp_path / "mnist" / f"{FILES['test_labels']}.gz").unlink()
    mirror = serve_mnist(mirror_server, "/m/", raw_by_name)
    assert_same_data(load_mnist(tmp_path, mirrors=[mirror], checksums=checksums, progress=False), arrays)
    assert mirror_server.requested == [f"/m/{FILES['test_labels']}.gz"]


def test_download_corrupt_files_leave_nothing(tmp_path, mirror_server):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    # Mirror 1: valid gzip, wrong content (checksum mismatch). Mirror 2: broken gzip.
    tampered = {name: data[:-1] + bytes([data[-1] ^ 1]) for name, data in raw_by_name.items()}
    first = serve_mnist(mirror_server, "/tampered/", tampered)
    for name, data in raw_by_name.items():
        mirror_server.files[f"/broken/{name}.gz"] = gzip.compress(data)[:40]
    second = f"{mirror_server.base}/broken/"
    with pytest.raises(DataError) as caught:  # DownloadError is a DataError
        load_mnist(tmp_path, mirrors=[first, second], checksums=checksums, progress=False)
    assert isinstance(caught.value, DownloadError)
    message = str(caught.value)
    assert "SHA-256 mismatch" in message and "truncated gzip" in message
    assert f"{first}{FILES['train_images']}.gz" in message and f"{second}{FILES['train_images']}.gz" in message
    assert os.listdir(tmp_path / "mnist") == []


def test_download_one_corrupt_file_keeps_only_verified_files(tmp_path, mirror_server):
    arrays = small_mnist_arrays()
    raw_by_name, checksums = encoded_files(arrays)
    mirror = serve_mnist(mirror_server, "/m/", raw_by_name)
    mirror_server.files[f"/m/{FILES['test_images']}.gz"] = b"\x1f\x8b garbage"
    with pytest.raises(DownloadError, match="corrupt gzip") as caught:
        load_mnist(tmp_path, mirrors=[mirror], checksums=checksums, progress=False)
    assert FILES["test_images"] in str(caught.value)
    stored = sorted(os.listdir(tmp_path / "mnist"))
    assert stored == sorted(f"{FILES[k]}.gz" for k in ("train_images", "train_labels"))


def test_read_only_dir_explains_how_to_place_files(tmp_path, monkeypatch):
    read_only_root = tmp_path / "ro"
    (read_only_root / "mnist").mkdir(parents=True)
    (read_only_root / "mnist").chmod(0o555)
    if os.access(read_only_root / "mnist", os.W_OK):  # root ignores permission bits
        monkeypatch.setattr(paths, "is_writable_dir", lambda path: False)
    try:
        with pytest.raises(DownloadError) as caught:
            load_mnist(read_only_root, progress=False)
    finally:
        (read_only_root / "mnist").chmod(0o755)
    message = str(caught.value)
    directory = str(read_only_root / "mnist")
    assert directory in message and "read-only" in message
    assert "To place the files by hand" in message
    assert f"{mnist.MIRRORS[0]}{FILES['train_images']}.gz -> {directory}/{FILES['train_images']}.gz" in message
    assert "--data-dir" in message and "SIGHTSOUND_DATA" in message
    assert os.listdir(read_only_root / "mnist") == []


def test_offline_lists_tried_urls(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mirrors = [f"http://127.0.0.1:{port}/a/", f"http://127.0.0.1:{port}/b/"]
    with pytest.raises(DownloadError) as caught:
        load_mnist(tmp_path, mirrors=mirrors, progress=False, timeout=5)
    message = str(caught.value)
    for base in mirrors:
        assert f"{base}{FILES['train_images']}.gz" in message
    assert "refused" in message.lower()
    assert str(tmp_path / "mnist") in message and "To place the files by hand" in message
    assert os.listdir(tmp_path / "mnist") == []


def test_download_disabled(tmp_path):
    with pytest.raises(DownloadError, match=r"download=False") as caught:
        load_mnist(tmp_path, download=False)
    assert str(tmp_path / "mnist") in str(caught.value)
    assert not (tmp_path / "mnist").exists()


# --------------------------------------------------------------------------- real data

def test_real_mnist():
    mnist_root()
    started = time.perf_counter()
    data = load_mnist(download=False, verify=True)
    elapsed = time.perf_counter() - started
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28)
    assert data.train_labels.shape == (60000,) and data.test_labels.shape == (10000,)
    train_counts = np.bincount(data.train_labels, minlength=10)
    assert train_counts.sum() == 60000 and len(train_counts) == 10 and train_counts.min() > 5000
    assert np.bincount(data.test_labels, minlength=10).sum() == 10000
    assert data.train_labels[0] == 5 and data.test_labels[0] == 7  # well-known first labels
    assert elapsed < 1.5


def test_random_shift_moves_each_image_by_its_own_offset_within_bounds():
    from sightsound.data.mnist import random_shift

    rng = np.random.default_rng(0)
    images = np.zeros((200, 28, 28, 1), np.float32)
    images[:, 13, 13, 0] = 1.0  # one lit pixel in the middle of each image
    moved = random_shift(images, 2, rng)
    assert moved.shape == images.shape and moved.dtype == images.dtype
    rows, cols = np.nonzero(moved[..., 0].reshape(200, -1) > 0)[1] // 28, np.nonzero(moved[..., 0] > 0)[2]
    assert len(rows) == 200 and set(rows - 13) <= set(range(-2, 3)) and set(cols - 13) <= set(range(-2, 3))
    assert len(set(zip(rows, cols))) > 15  # offsets vary from image to image
    edge = np.ones((1, 28, 28, 1), np.float32)
    shifted = random_shift(np.repeat(edge, 50, axis=0), 2, rng)
    assert shifted.sum() < 50 * 28 * 28  # the space an image leaves is filled with 0
    assert np.array_equal(random_shift(images, 0, rng), images)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_shift(images, -1, rng)
