"""What keeps other web pages from driving ``sightsound serve``, and server paths out of its answers.

Any page the user visits can make the browser send requests to 127.0.0.1, and
with DNS rebinding (its own name re-resolved to 127.0.0.1) even read the
answers. Two checks, made for every HTTP request and websocket handshake by
:class:`BrowserGuard`, stop that:

* **Host allow-list.** A rebound page's requests carry the page's own name in
  ``Host``. Only the loopback names (:data:`LOOPBACK_HOSTS`), the bound
  address and the names given with ``--allowed-host`` are answered, on any
  port: a rebinding page cannot choose the name, only the port, and requests
  from pages on other local ports are caught by the Origin check.
* **Same origin.** A websocket handshake or a state-changing request (POST,
  PUT, PATCH, DELETE) that carries an ``Origin`` must come from this server's
  own origin (``http://<its Host>``); ``Origin: null`` (sandboxed frames,
  ``file:`` pages) is refused. Requests without ``Origin`` (curl, Python) do
  not come from a page and pass.

Messages sent to clients go through :func:`redact_paths`, so that no absolute
path of the server (models folder, data folder, home) reaches a page.

>>> guard = BrowserGuard(["mybox.lan"])
>>> guard.refusal({"type": "http", "method": "GET", "scheme": "http", "headers": [(b"host", b"mybox.lan:8000")]})
>>> guard.refusal({"type": "http", "method": "GET", "scheme": "http", "headers": [(b"host", b"evil.example")]})[0]
400
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from ..errors import SightsoundError

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")  # always allowed, on any port
DEFAULT_MAX_AUDIO_SESSIONS = 4  # concurrent /ws/audio sessions; each loads a model and runs a recognizer
INTERNAL_ERROR = "internal error; see the server log"  # what clients see of an unexpected exception
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# A Host header: a name or IPv4 address, or an IPv6 address in brackets; then an optional port.
_HOST_HEADER = re.compile(r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9._~%-]+)(?::(?P<port>[0-9]{1,5}))?", re.IGNORECASE)


class InvalidAllowedHost(SightsoundError):
    """An ``--allowed-host`` value that is not a bare host name or address."""


def normalize_host(host: str) -> str:
    """``host`` as compared here: lower case, without IPv6 brackets or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def allowed_host(name: str) -> str:
    """An ``--allowed-host`` value, checked and normalized; :class:`InvalidAllowedHost` otherwise."""
    bare = name.strip()
    if ":" in bare and not bare.startswith("["):  # an IPv6 address given without brackets
        bare = f"[{bare}]"
    match = _HOST_HEADER.fullmatch(bare)
    if match is None or match["port"] is not None or not normalize_host(bare) or not _valid_ipv6(bare):
        raise InvalidAllowedHost(f"--allowed-host takes a host name or address without scheme or port, "
                                 f"got {name!r}")
    return normalize_host(bare)


def _valid_ipv6(host: str) -> bool:
    """False for a bracketed host that is not an IPv6 address (``[a:80]``); True for anything else."""
    if not host.startswith("["):
        return True
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True


def parse_host_header(value: str) -> tuple[str, int | None] | None:
    """``(normalized host, port or None)`` of a ``Host`` header, or None when it is malformed."""
    match = _HOST_HEADER.fullmatch(value.strip())
    if match is None:
        return None
    port = int(match["port"]) if match["port"] is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    return normalize_host(match["host"]), port


class BrowserGuard:
    """The Host allow-list and the same-origin rule for one app; :meth:`refusal` judges a request."""

    def __init__(self, allowed_hosts: Iterable[str] = ()):
        self.allowed = frozenset(LOOPBACK_HOSTS) | {allowed_host(name) for name in allowed_hosts}

    def refusal(self, scope) -> tuple[int, str] | None:
        """None when the request may go on, else ``(HTTP status, message)``."""
        hosts = [value.decode("latin-1") for key, value in scope.get("headers") or () if key == b"host"]
        if len(hosts) != 1:
            return 400, "the request must carry exactly one Host header"
        parsed = parse_host_header(hosts[0])
        if parsed is None or parsed[0] not in self.allowed:
            return 400, (f"this server does not answer to Host {hosts[0][:100]!r}; if that is its name, start it "
                         f"with sightsound serve --allowed-host NAME")
        if scope["type"] == "websocket" or scope.get("method") in STATE_CHANGING_METHODS:
            origins = [value.decode("latin-1") for key, value in scope.get("headers") or () if key == b"origin"]
            scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme"), scope.get("scheme") or "http")
            if origins and not (len(origins) == 1 and _same_origin(origins[0], scheme, *parsed)):
                return 403, (f"cross-origin request refused: Origin {origins[0][:100]!r} is not this server "
                             f"({scheme}://{hosts[0][:100]})")
        return None


class MessageRate:
    """A websocket's budget per second of wall time (messages or bytes): ``allow(amount)`` is False once the
    amounts taken in the current one-second window exceed ``budget``."""

    def __init__(self, budget: float, clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self._clock = clock
        self._window_start = clock()
        self._taken = 0.0

    def allow(self, amount: float) -> bool:
        now = self._clock()
        if now - self._window_start >= 1.0:
            self._window_start, self._taken = now, 0.0
        self._taken += amount
        return self._taken <= self.budget


def _same_origin(origin: str, scheme: str, host: str, port: int | None) -> bool:
    """True when ``origin`` is ``scheme://host:port`` (default ports written or not)."""
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:  # "null", a bad port, ...
        return False
    if parts.scheme != scheme or not parts.hostname or parts.path or parts.query or parts.username:
        return False
    default = DEFAULT_PORTS.get(scheme)
    return (normalize_host(parts.hostname) == host
            and (origin_port if origin_port is not None else default) == (port if port is not None else default))


# --------------------------------------------------------------------------- paths in messages

def redact_paths(message: str, roots: Iterable[tuple[str | os.PathLike, str]] = ()) -> str:
    """``message`` without absolute server paths.

    Each ``(root, label)`` pair turns ``root/sub/file`` into ``sub/file`` and
    ``root`` itself into ``label`` (the models folder: a model's files are
    named by the model). The home folder becomes ``~``. Any other absolute
    path that starts in one of this machine's top-level folders is cut to its
    last component; URL paths such as ``/api/models`` are left alone.
    """
    pairs = [(str(Path(root)), label) for root, label in roots]
    pairs += [(str(Path(root).resolve()), label) for root, label in roots]
    home = str(Path.home())
    for root, label in sorted(set(pairs), key=lambda pair: -len(pair[0])):
        if root not in ("", "/"):
            message = re.sub(re.escape(root) + r"(?:/+|(?=[^\w.~-]|$))",
                             lambda m: label if not m.group(0).endswith("/") else "", message)
    if home not in ("", "/"):
        message = re.sub(re.escape(home) + r"(?=[^\w.~-]|$)", "~", message)
    return _OTHER_PATH.sub(_cut_path, message)


_OTHER_PATH = re.compile(r"(?<![\w.~/:-])(?:/[^\s'\"/:,;()<>\[\]]+)+/?")


def _cut_path(match: re.Match) -> str:
    path = match.group(0)
    parts = [part for part in path.split("/") if part]
    return parts[-1] if parts and parts[0] in _top_level_folders() else path


@functools.lru_cache(maxsize=1)
def _top_level_folders() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/"))
    except OSError:
        return frozenset()
