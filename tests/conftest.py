"""Shared fixtures: the real MNIST (when SIGHTSOUND_DATA points at it)."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_mnist():
    """The real MNIST from $SIGHTSOUND_DATA/mnist; skips with a printed reason when absent."""
    root = os.environ.get("SIGHTSOUND_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("SIGHTSOUND_DATA does not point at a folder with mnist/: real-MNIST test skipped")
    from sightsound.data import mnist

    return mnist.load_mnist(root, download=False)


@pytest.fixture(scope="module")
def private_speech_cache(tmp_path_factory):
    """Spectrogram caches go to the test session's temp folder, not the user's cache. Modules use it with
    ``pytestmark = pytest.mark.usefixtures("private_speech_cache")`` so it is set before their fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGHTSOUND_CACHE", str(tmp_path_factory.getbasetemp() / "speech-cache"))
        yield
