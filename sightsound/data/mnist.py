"""MNIST: loading from disk (IDX, gzipped IDX or Keras' mnist.npz) and download.

The data lives in ``paths.data_dir(data_dir) / "mnist"`` as the four classic
files, each either uncompressed (``train-images-idx3-ubyte``) or gzipped
(``train-images-idx3-ubyte.gz``). Missing files are downloaded from
:data:`MIRRORS` when the directory is writable. Every file is checked against
the SHA-256 of its *decompressed* bytes (:data:`SHA256_RAW`), so gzip files
from any mirror or compressor are accepted.

Example::

    >>> from sightsound.data.mnist import load_mnist, to_float_images, one_hot
    >>> mnist = load_mnist()  # doctest: +SKIP
    >>> mnist.train_images.shape, mnist.train_labels.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('int64'))
    >>> x = to_float_images(mnist.train_images)  # float32 [60000, 28, 28, 1]  # doctest: +SKIP
    >>> y = one_hot(mnist.train_labels)          # float32 [60000, 10]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sightsound import paths
from sightsound.data.download import download_file
from sightsound.data.idx import GZIP_MAGIC, IDX_DTYPES, MAX_ITEMS, MAX_PAYLOAD_BYTES, read_idx
from sightsound.errors import DataError, DownloadError, ShapeError

FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: SHA-256 of the *decompressed* IDX files, keyed by file name.
SHA256_RAW: dict[str, str] = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}

#: Base URLs tried in order; the files there are ``<name>.gz``.
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

SUBDIR = "mnist"
NPZ_NAME = "mnist.npz"
NPZ_KEYS = {"train_images": "x_train", "train_labels": "y_train",
            "test_images": "x_test", "test_labels": "y_test"}
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

# --------------------------------------------------------------------------- dataset

@dataclass(frozen=True)
class MnistData:
    """The four MNIST arrays.

    ``*_images``: uint8 ``[N, 28, 28]`` (0 = background, 255 = ink).
    ``*_labels``: int64 ``[N]`` with values 0..9 (ready for ``torch.from_numpy``
    and cross-entropy losses).
    """

    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (f"MnistData(train_images={self.train_images.shape}, train_labels={self.train_labels.shape}, "
                f"test_images={self.test_images.shape}, test_labels={self.test_labels.shape})")


def _validated_split(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> tuple:
    """Check one images/labels pair; return (uint8 images, int64 labels)."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
        raise DataError(
            f"{images_name}: expected uint8 images of shape [N, 28, 28], got {images.dtype} {list(images.shape)}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{labels_name}: expected a 1-D integer label array, got {labels.dtype} {list(labels.shape)}")
    if len(images) != len(labels):
        raise DataError(
            f"MNIST count mismatch: {images_name} has {len(images)} images but "
            f"{labels_name} has {len(labels)} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
        raise DataError(
            f"{labels_name}: labels must be 0..{NUM_CLASSES - 1}, found {bad.size} outside "
            f"(for example {bad[0]})"
        )
    return images, labels.astype(np.int64)


def _assemble(arrays: dict[str, np.ndarray], names: dict[str, str]) -> MnistData:
    train_images, train_labels = _validated_split(
        arrays["train_images"], arrays["train_labels"], names["train_images"], names["train_labels"])
    test_images, test_labels = _validated_split(
        arrays["test_images"], arrays["test_labels"], names["test_images"], names["test_labels"])
    return MnistData(train_images, train_labels, test_images, test_labels)


def load_mnist_npz(path: str | os.PathLike) -> MnistData:
    """Load Keras' ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``).

    >>> data = load_mnist_npz("~/.keras/datasets/mnist.npz")  # doctest: +SKIP
    >>> data.test_images.shape  # doctest: +SKIP
    (10000, 28, 28)
    """
    npz_path = Path(path).expanduser()
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS.values() if key not in archive.files]
            if missing:
                raise DataError(
                    f"{npz_path}: not a Keras MNIST archive: missing keys {missing} (found {sorted(archive.files)})"
                )
            arrays = {field_name: archive[key] for field_name, key in NPZ_KEYS.items()}
    except FileNotFoundError:
        raise DataError(f"{npz_path}: file not found") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as error:
        raise DataError(f"{npz_path}: not a readable .npz archive: {error}") from error
    names = {field_name: f"{npz_path}[{key}]" for field_name, key in NPZ_KEYS.items()}
    return _assemble(arrays, names)


def _find_idx_file(directory: Path, file_name: str) -> Path | None:
    """``<name>`` if present, else ``<name>.gz``, else None."""
    for candidate in (directory / file_name, directory / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_files_message(directory: Path, missing: list[str], mirrors: list[str], reason: str) -> str:
    """Explain what was looked for, why it is not there and how to fix it by hand."""
    looked_for = ", ".join(f"{name}[.gz]" for name in missing)
    manual = "\n".join(f"  {mirrors[0] if mirrors else MIRRORS[0]}{name}.gz -> {directory / (name + '.gz')}"
                       for name in missing)
    other_mirrors = mirrors[1:] if mirrors else MIRRORS[1:]
    also = f"\n(the same files are on: {', '.join(other_mirrors)})" if other_mirrors else ""
    return (
        f"MNIST files missing: looked in {directory} for {looked_for} (and for {NPZ_NAME}).\n"
        f"{reason}\n"
        f"To place the files by hand, download them to these paths:\n{manual}{also}\n"
        f"Uncompressed IDX files or Keras' {NPZ_NAME} in {directory} work too. Or set --data-dir / "
        f"SIGHTSOUND_DATA to a directory that contains {SUBDIR}/ with the files."
    )


def _check_can_download(directory: Path, missing_names: list[str], mirror_list: list[str], download: bool) -> None:
    """Raise :class:`DownloadError` (saying how to place the files by hand) unless the missing files
    can be downloaded into ``directory`` (which is created)."""
    if not download:
        raise DownloadError(_missing_files_message(
            directory, missing_names, mirror_list, "Downloading is turned off (download=False)."))
    if not paths.is_writable_dir(directory):
        raise DownloadError(_missing_files_message(
            directory, missing_names, mirror_list,
            f"The directory {directory} is read-only (not writable), so nothing was downloaded."))
    if not mirror_list:
        raise DownloadError(_missing_files_message(
            directory, missing_names, MIRRORS, "No download mirrors were given."))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(_missing_files_message(
            directory, missing_names, mirror_list, f"Cannot create {directory}: {error}")) from error


def _download_one(directory: Path, key: str, missing_keys: list[str], parsed: dict[str, np.ndarray],
                  mirror_list: list[str], sha_by_name: dict[str, str], *, timeout: float,
                  progress: bool) -> None:
    """Download ``<name>.gz`` of ``key`` into ``directory``, kept only if its decompressed bytes check out;
    its array goes into ``parsed`` (which holds the files downloaded so far)."""
    file_name = FILES[key]
    target = directory / f"{file_name}.gz"

    def check_decompressed(temp_path: Path) -> None:
        # Runs on the temp file before it is renamed onto its final name.
        parsed[key] = read_idx(temp_path, name=f"downloaded {file_name}.gz",
                               expected_sha256=sha_by_name.get(file_name))

    try:
        download_file([f"{base}{file_name}.gz" for base in mirror_list], target,
                      decompress_check=check_decompressed, timeout=timeout, progress=progress)
    except DownloadError as error:
        parsed.pop(key, None)
        still_missing = [FILES[k] for k in missing_keys if k not in parsed]
        raise DownloadError(_missing_files_message(
            directory, still_missing, mirror_list, f"Download failed: {error}")) from error


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    mirrors: list[str] | None = None,
    checksums: dict[str, str] | None = None,
    timeout: float = 30,
) -> MnistData:
    """Load MNIST from ``paths.data_dir(data_dir) / "mnist"``, downloading missing files.

    Each of the four files may be raw (``<name>``) or gzipped (``<name>.gz``).
    When some are missing and ``mnist.npz`` (Keras) is there, that is used.
    Otherwise, if ``download`` and the directory is writable, the missing
    ``<name>.gz`` files are fetched from ``mirrors`` (default :data:`MIRRORS`)
    and kept only if their decompressed bytes match ``checksums`` (default
    :data:`SHA256_RAW`; downloads are always verified). With ``verify``,
    files already on disk are checked against ``checksums`` too.

    Raises :class:`DownloadError` (files missing and not obtainable; the
    message says where it looked, what it tried and how to place the files by
    hand) or :class:`DataError` (a file is corrupt or inconsistent).

    >>> mnist = load_mnist("/data", download=False)  # doctest: +SKIP
    >>> mnist  # doctest: +SKIP
    MnistData(train_images=(60000, 28, 28), train_labels=(60000,), test_images=(10000, 28, 28), ...)
    """
    directory = (paths.data_dir(data_dir) / SUBDIR).absolute()
    mirror_list = list(MIRRORS if mirrors is None else mirrors)
    sha_by_name = dict(SHA256_RAW if checksums is None else checksums)

    located = {key: _find_idx_file(directory, file_name) for key, file_name in FILES.items()}
    missing_keys = [key for key, found in located.items() if found is None]
    parsed: dict[str, np.ndarray] = {}

    if missing_keys:
        npz_path = directory / NPZ_NAME
        if npz_path.is_file():
            return load_mnist_npz(npz_path)
        _check_can_download(directory, [FILES[key] for key in missing_keys], mirror_list, download)
        for key in missing_keys:
            _download_one(directory, key, missing_keys, parsed, mirror_list, sha_by_name,
                          timeout=timeout, progress=progress)
            located[key] = directory / f"{FILES[key]}.gz"

    arrays = {}
    for key, file_name in FILES.items():
        if key in parsed:
            arrays[key] = parsed[key]
        else:
            arrays[key] = read_idx(located[key], expected_sha256=sha_by_name.get(file_name) if verify else None)
    return _assemble(arrays, {key: str(located[key]) for key in FILES})


# --------------------------------------------------------------------------- model-ready arrays

def to_float_images(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 images ``[N, H, W]`` (or ``[N, H, W, 1]``) -> float32 ``[N, H, W, 1]`` in [0, 1].

    >>> to_float_images(np.full((2, 28, 28), 255, dtype=np.uint8)).shape
    (2, 28, 28, 1)
    """
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ShapeError(f"to_float_images expects uint8 pixels, got {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ShapeError(f"to_float_images expects shape [N, H, W] or [N, H, W, 1], got {list(images.shape)}")
    floats = images.astype(np.float32)
    floats *= np.float32(1.0 / 255.0)
    return floats[..., np.newaxis]


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer labels ``[N]`` -> float32 one-hot ``[N, num_classes]``.

    >>> one_hot(np.array([0, 2]), num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    label_array = np.asarray(labels)
    if label_array.ndim != 1:
        raise ShapeError(f"one_hot expects a 1-D label array, got shape {list(label_array.shape)}")
    if label_array.size and not np.issubdtype(label_array.dtype, np.integer):
        raise ShapeError(f"one_hot expects integer labels, got {label_array.dtype}")
    if label_array.size and (label_array.min() < 0 or label_array.max() >= num_classes):
        raise ShapeError(
            f"one_hot: labels must be in 0..{num_classes - 1}, got min {label_array.min()} "
            f"max {label_array.max()}"
        )
    encoded = np.zeros((label_array.size, num_classes), dtype=np.float32)
    encoded[np.arange(label_array.size), label_array.astype(np.intp)] = 1.0
    return encoded


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """``images`` ``[N, H, W, C]``, each moved by its own random whole-pixel offset of at most ``max_shift``
    pixels up or down and left or right, the space it leaves filled with 0 (MNIST's background).

    >>> float(random_shift(np.ones((2, 3, 3, 1), np.float32), 0, np.random.default_rng(0)).sum())
    18.0
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift!r}")
    if max_shift == 0 or len(images) == 0:
        return images.copy()
    n, height, width = images.shape[:3]
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)) + ((0, 0),) * (images.ndim - 3))
    down, right = (rng.integers(-max_shift, max_shift + 1, n) for _ in range(2))
    out = np.empty_like(images)
    for dy in range(-max_shift, max_shift + 1):  # one slice per offset: (2 * max_shift + 1)² copies in all
        for dx in range(-max_shift, max_shift + 1):
            chosen = (down == dy) & (right == dx)
            top, left = max_shift - dy, max_shift - dx
            out[chosen] = padded[chosen, top:top + height, left:left + width]
    return out


__all__ = ["FILES", "SHA256_RAW", "MIRRORS", "SUBDIR", "NPZ_NAME", "NPZ_KEYS", "IMAGE_SIZE", "NUM_CLASSES",
           "IDX_DTYPES", "MAX_PAYLOAD_BYTES", "MAX_ITEMS", "GZIP_MAGIC", "MnistData", "read_idx", "load_mnist",
           "load_mnist_npz", "to_float_images", "one_hot", "random_shift"]
