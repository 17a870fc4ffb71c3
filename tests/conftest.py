"""Shared fixtures, and the one rule for tests whose dependencies are missing.

A test that needs something outside this repository (espeak-ng, Chromium, Node
with ``npm ci``'s packages, a pip extra, the real MNIST in ``$SIGHTSOUND_DATA``)
checks it through :func:`require` (inside a test or fixture, or at module
level) or the :func:`needs` marker. When the environment variable ``CI`` is
non-empty (``.ci/run`` exports ``CI=1``) a missing dependency FAILS with the
install step that fixes it; elsewhere it is skipped with that reason (``-ra``
prints it). Test modules import the helpers with ``from conftest import ...``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: ``ddp_worker.py`` trains a model at import time (torchrun runs it); never collect it, even for doctests.
collect_ignore = ["ddp_worker.py"]


# --------------------------------------------------------------------------- missing dependencies

def in_ci() -> bool:
    """True when ``$CI`` is set and non-empty: missing dependencies fail instead of skipping."""
    return bool(os.environ.get("CI"))


def require(available: bool, what: str, fix: str, *, skip_outside_ci: bool = True) -> None:
    """Nothing when ``available``; otherwise fail (under CI) or skip (elsewhere) naming ``what`` and ``fix``.

    ``fix`` is the install step that provides ``what``. Works in tests, fixtures and at module level (a
    module-level failure is a collection error, which fails the run too). ``skip_outside_ci=False`` makes
    the dependency mandatory everywhere (Chromium and Node: the browser and TF.js checks never skip).
    """
    if available:
        return
    message = f"{what} is missing. Fix: {fix}"
    if in_ci():
        pytest.fail(f"{message} [CI={os.environ['CI']}: a missing dependency fails the run]", pytrace=False)
    if not skip_outside_ci:
        pytest.fail(message, pytrace=False)
    pytest.skip(f"{message} [skipped outside CI; with CI=1 this fails]", allow_module_level=True)


def needs(available: bool, what: str, fix: str) -> pytest.MarkDecorator:
    """A marker for a test or a module (``pytestmark``): :func:`require` runs in each test's setup."""
    return pytest.mark.needs(available=available, what=what, fix=fix)


def require_import(name: str, fix: str):
    """``importlib.import_module(name)`` or :func:`require` failing/skipping with ``fix``; the CI-aware
    ``pytest.importorskip`` for third-party packages (never for sightsound's own modules)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        require(False, f"the Python package {name} ({error})", fix)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(available, what, fix): a dependency checked by conftest.require")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        require(**mark.kwargs)


# The project's dependencies, each with the step that installs it.

APT_FIX = ("run `make setup` (scripts/setup-system.sh installs the Debian packages in apt-packages.txt), "
           "or `sudo apt-get install {package}`")
PIP_DEV_FIX = "run `make setup`, or `.venv/bin/python -m pip install -e '.[dev,onnx,voices]'`"
NPM_FIX = "run `npm ci` in the repository root (`make setup` does; see package.json)"
DATA_FIX = ("export SIGHTSOUND_DATA=<folder holding mnist/>; the Makefile and .ci/run set it to "
            "../shared/datasets (e.g. export SIGHTSOUND_DATA=/work/shared/datasets)")


def espeak_available() -> bool:
    from sightsound.data import synth

    return synth.espeak_available()


def require_espeak(*, skip_outside_ci: bool = True) -> None:
    require(espeak_available(), "espeak-ng (the speech synthesiser for the corpus)",
            APT_FIX.format(package="espeak-ng"), skip_outside_ci=skip_outside_ci)


def needs_espeak() -> pytest.MarkDecorator:
    return needs(espeak_available(), "espeak-ng (the speech synthesiser for the corpus)",
                 APT_FIX.format(package="espeak-ng"))


def require_node() -> str:
    """The ``node`` program, with ``npm ci``'s @tensorflow/tfjs; mandatory even outside CI."""
    node = shutil.which("node")
    require(node is not None, "Node.js (`node`; the TF.js checks run real TensorFlow.js in Node 18 or newer)",
            APT_FIX.format(package="nodejs npm") + ", then `npm ci` in the repository root",
            skip_outside_ci=False)
    require((REPO / "node_modules" / "@tensorflow" / "tfjs").is_dir(), "node_modules/@tensorflow/tfjs",
            NPM_FIX, skip_outside_ci=False)
    return node


def run_node_script(script: Path, *args) -> None:
    """Run ``node tests/js/<script> args...`` (real TF.js); a failure fails the test with Node's stderr."""
    node = require_node()
    proc = subprocess.run([node, str(script), *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"node {script.name} {args[0] if args else ''} failed (exit {proc.returncode}):\n"
                    f"{proc.stderr[-4000:]}")


def mnist_root() -> str:
    """``$SIGHTSOUND_DATA`` when it holds ``mnist/``; otherwise :func:`require` fails or skips."""
    root = os.environ.get("SIGHTSOUND_DATA")
    require(bool(root), "the real MNIST (SIGHTSOUND_DATA is not set)", DATA_FIX)
    require((Path(root) / "mnist").is_dir(), f"the real MNIST (SIGHTSOUND_DATA={root} has no mnist/ folder)",
            DATA_FIX)
    return root


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def real_mnist():
    """The real MNIST from $SIGHTSOUND_DATA/mnist; absent: a failure under CI, a skip elsewhere."""
    root = mnist_root()
    from sightsound.data import mnist

    return mnist.load_mnist(root, download=False)


@pytest.fixture(scope="module")
def private_speech_cache(tmp_path_factory):
    """Spectrogram caches go to the test session's temp folder, not the user's cache. Modules use it with
    ``pytestmark = pytest.mark.usefixtures("private_speech_cache")`` so it is set before their fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGHTSOUND_CACHE", str(tmp_path_factory.getbasetemp() / "speech-cache"))
        yield
