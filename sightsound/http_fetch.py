"""Every network read of sightsound: model.json and weights, speech metadata.json, dataset mirrors.

One place decides what a fetch may do: only http(s) URLs, a timeout per
request, an optional byte cap, at most :data:`MAX_REDIRECTS` redirects, only
to http(s) and never from https down to http. A redirect to another origin
(scheme, host, port) carries none of the caller's headers: urllib's own
redirect handler copies every header, so a 302 to another host would receive
the caller's ``Authorization``; browsers drop it. Every failure is a
:class:`~sightsound.errors.FetchError` naming the URL.

Example::

    >>> from sightsound.http_fetch import fetch_bytes, open_url
    >>> fetch_bytes("https://example.com/metadata.json", max_bytes=2**20)  # doctest: +SKIP
    b'{"words": [...]}'
    >>> with open_url("https://example.com/big.bin") as (body, length):  # doctest: +SKIP
    ...     first = body.read(2**20)
"""

from __future__ import annotations

import contextlib
import http.client
import string
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping

from .version import __version__
from .errors import FetchError

DEFAULT_TIMEOUT = 30.0  # seconds, for each request (each redirect hop is one)
MAX_REDIRECTS = 10
SCHEMES = ("http", "https")
USER_AGENT = f"sightsound/{__version__} (+python-urllib)"
CHUNK_SIZE = 1 << 20

_REDIRECT_CODES = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def request_settings(request_options: Mapping | None) -> tuple[dict[str, str], float]:
    """``(headers, timeout)`` from TF.js-style ``request_options``.

    Headers come from ``{"headers": {...}}`` or, as TF.js's ``http`` handler
    takes them, ``{"requestInit": {"headers": {...}}}``; ``timeout`` is in seconds.

    >>> request_settings({"requestInit": {"headers": {"X-Token": 1}}, "timeout": 5})
    ({'X-Token': '1'}, 5.0)
    """
    options = dict(request_options or {})
    headers = options.get("headers")
    if headers is None:
        headers = (options.get("requestInit") or {}).get("headers")
    timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
    if not timeout > 0:
        raise ValueError(f"request_options timeout must be a positive number of seconds, got {timeout:g}")
    return {str(k): str(v) for k, v in dict(headers or {}).items()}, timeout


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` with the default port filled in, as browsers compare origins.

    >>> origin("HTTP://Example.com/a") == origin("http://example.com:80/b")
    True
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, parts.hostname or "", port or _DEFAULT_PORTS.get(scheme)


@contextlib.contextmanager
def open_url(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
             max_bytes: int | None = None) -> Iterator[tuple[Body, int | None]]:
    """GET ``url``, following redirects; yields ``(body, Content-Length or None)``.

    A Content-Length above ``max_bytes`` is refused before reading; ``body``
    stops reading one byte past ``max_bytes`` and raises. Raises
    :class:`FetchError` for every failure, while opening and while reading.
    """
    sent = {str(k): str(v) for k, v in dict(headers or {}).items()}
    response, final = _follow(url, sent, timeout)
    where = final if final == url else f"{final} (redirected from {url})"
    with response:
        header = response.headers.get("Content-Length", "")
        length = int(header) if header.isdigit() else None
        if max_bytes is not None and length is not None and length > max_bytes:
            raise _too_large(final, where, max_bytes, f" (it announces {length} bytes)")
        yield Body(response, final, where, timeout, max_bytes, length), length


def fetch_bytes(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                max_bytes: int) -> bytes:
    """The whole body of ``url``, at most ``max_bytes`` long (else :class:`FetchError`)."""
    with open_url(url, headers=headers, timeout=timeout, max_bytes=max_bytes) as (body, _):
        return body.read()


class Body:
    """A response body that keeps to ``max_bytes``, checks Content-Length at the end and names the URL on failure."""

    def __init__(self, response, url: str, where: str, timeout: float, max_bytes: int | None,
                 length: int | None):
        self._response = response
        self._url, self._where, self._timeout = url, where, timeout
        self.max_bytes, self.length = max_bytes, length
        self.received = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); ``b""`` at the end."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_SIZE), b""))
        data = self._guarded(self._response.read, self._allowance(size)) if size else b""
        self._count(len(data), size)
        return data

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` (or its start) like ``RawIOBase.readinto``; 0 at the end."""
        view = memoryview(buffer).cast("B")
        wanted = self._allowance(len(view))
        n = self._guarded(self._response.readinto, view[:wanted]) if wanted else 0
        self._count(n, wanted)
        return n

    def _allowance(self, size: int) -> int:
        # One byte past the cap is enough to know the body is too large.
        return size if self.max_bytes is None else min(size, self.max_bytes + 1 - self.received)

    def _guarded(self, read, arg):
        try:
            return read(arg)
        except (OSError, http.client.HTTPException) as err:
            raise _error(err, self._url, self._where, self._timeout) from None

    def _count(self, n: int, asked: int) -> None:
        self.received += n
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise _too_large(self._url, self._where, self.max_bytes, "")
        if n == 0 and asked and self.length is not None and self.received < self.length:
            problem = f"incomplete transfer: the server announced {self.length} bytes and sent {self.received}"
            raise FetchError(f"{self._where}: {problem}", self._url, problem)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hands every 3xx back to :func:`_follow`, which decides where the caller's headers may go."""

    def http_error_302(self, req, fp, code, msg, headers):
        return None  # the default handler then raises HTTPError with the 3xx status and headers

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _follow(url: str, headers: dict[str, str], timeout: float):
    """``(open response, final URL)`` for GET ``url``; redirects checked hop by hop."""
    _check_scheme(url)
    opener = urllib.request.build_opener(_NoRedirects)
    sent = {"User-Agent": USER_AGENT, **headers}
    current, seen = url, {url}
    for _ in range(MAX_REDIRECTS + 1):
        where = current if current == url else f"{current} (redirected from {url})"
        try:
            return opener.open(urllib.request.Request(current, headers=sent), timeout=timeout), current
        except urllib.error.HTTPError as err:
            location = err.headers.get("Location") if err.code in _REDIRECT_CODES else None
            err.close()
            if location is None:
                raise _error(err, current, where, timeout) from None
        except (OSError, ValueError, http.client.HTTPException) as err:
            raise _error(err, current, where, timeout) from None
        target = urllib.parse.urljoin(current, urllib.parse.quote(location, safe=string.punctuation))
        _check_redirect(current, target)
        if target in seen:
            problem = f"redirect loop: {current} redirects to {target}, which was already fetched"
            raise FetchError(f"cannot fetch {url}: {problem}", url, problem)
        if origin(target) != origin(current):
            sent = {"User-Agent": USER_AGENT}  # credentials stay with the origin they were meant for
        seen.add(target)
        current = target
    problem = f"more than {MAX_REDIRECTS} redirects"
    raise FetchError(f"cannot fetch {url}: {problem}", url, problem)


def _check_scheme(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        problem = f"unsupported URL scheme {scheme!r} (allowed: {', '.join(SCHEMES)})"
        raise FetchError(f"cannot fetch {url}: {problem}", url, problem)


def _check_redirect(current: str, target: str) -> None:
    """Refuse a redirect to a non-http(s) URL or from https down to http."""
    scheme = urllib.parse.urlsplit(target).scheme.lower()
    if scheme not in SCHEMES:
        problem = f"refused redirect to {target} (only http and https URLs are followed)"
    elif scheme == "http" and urllib.parse.urlsplit(current).scheme.lower() == "https":
        problem = f"refused redirect to {target} (a downgrade from https to http)"
    else:
        return
    raise FetchError(f"cannot fetch {current}: {problem}", current, problem)


def _too_large(url: str, where: str, max_bytes: int, detail: str) -> FetchError:
    problem = f"larger than the {max_bytes}-byte limit{detail}"
    return FetchError(f"{where}: {problem}", url, problem)


def _error(err: BaseException, url: str, where: str, timeout: float) -> FetchError:
    """One FetchError for an HTTP status, timeout or connection failure."""
    if isinstance(err, urllib.error.HTTPError):
        problem = f"HTTP {err.code} {err.reason}"
        return FetchError(f"{problem} for {where}", url, problem, err.code)
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError):
        problem = f"timed out after {timeout:g} s"
        return FetchError(f"{problem} fetching {where}", url, problem)
    if isinstance(reason, ConnectionRefusedError):
        problem = "connection refused"
    elif isinstance(reason, OSError) and reason.strerror:
        problem = reason.strerror
    else:
        problem = str(reason) or type(reason).__name__
    return FetchError(f"cannot fetch {where}: {problem}", url, problem)
