"""Front-end libraries for the web app, served from the project's ``node_modules``.

Nothing third-party is copied into the repository: ``make setup`` (``npm ci``)
installs Chart.js and TensorFlow.js from npm, and the server maps a short list
of their files to ``/vendor/...`` URLs. The ``node_modules`` folder is found
in this order: an explicit path (``sightsound serve --assets DIR``), the
environment variable ``SIGHTSOUND_NODE_MODULES``, the folders above this
package (a source checkout), then the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SightsoundError

ENV_VAR = "SIGHTSOUND_NODE_MODULES"

#: URL name under /vendor/ -> file inside node_modules.
VENDOR_FILES: dict[str, str] = {
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "tf.min.js": "@tensorflow/tfjs/dist/tf.min.js",
}

#: The one file whose presence marks a usable node_modules folder.
REQUIRED = VENDOR_FILES["chart.umd.min.js"]


class AssetsMissing(SightsoundError):
    """The npm packages the pages need are not installed."""


def _candidates(explicit: str | os.PathLike | None) -> list[Path]:
    """Folders that may be ``node_modules``, in the order they are tried."""
    if explicit:
        return [Path(explicit).expanduser()]
    found = []
    if os.environ.get(ENV_VAR):
        found.append(Path(os.environ[ENV_VAR]).expanduser())
    for parent in Path(__file__).resolve().parents:
        found.append(parent / "node_modules")
    found.append(Path.cwd() / "node_modules")
    return found


def find_node_modules(explicit: str | os.PathLike | None = None) -> Path:
    """The ``node_modules`` folder holding Chart.js, or :class:`AssetsMissing` saying how to install it."""
    tried = _candidates(explicit)
    for folder in tried:
        if (folder / REQUIRED).is_file():
            return folder.resolve()
    where = explicit or f"${ENV_VAR}, the folders above {Path(__file__).parent} and the current directory"
    raise AssetsMissing(
        f"front-end libraries not found: no node_modules/{REQUIRED} in {where}. "
        f"Install them with `make setup` (or `npm ci` in the sightsound checkout), then pass "
        f"`--assets PATH/TO/node_modules` or set {ENV_VAR} if the folder is elsewhere.")


def vendor_path(node_modules: Path, name: str) -> Path | None:
    """The file behind ``/vendor/<name>``, or None when ``name`` is not one of :data:`VENDOR_FILES`."""
    relative = VENDOR_FILES.get(name)
    if relative is None:
        return None
    path = node_modules / relative
    return path if path.is_file() else None
