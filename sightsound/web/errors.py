"""The errors the web app answers with: an HTTP status, a machine code and a message.

Every error the server sends is ``{"error": message, "code": code}``. The
message is for developers and API clients (no server paths, see
:mod:`sightsound.web.security`); the ``code`` is what the pages read: each
page turns it into one short sentence for people (the table of sentences is
``static/js/common.js``, ``MESSAGES``), so the wording on the page has one
home and the server's detail stays available (as the message's tooltip).

>>> error_fields(WebError("no such thing", status=404, code="model_not_found"))
(404, 'model_not_found')
"""

from __future__ import annotations

from ..errors import DataError, ModelFormatError, SightsoundError

INTERNAL = "internal"  #: the code of an unexpected failure (its message says only "see the server log")


class WebError(SightsoundError):
    """An error answered with ``status`` and machine ``code``; subclasses set their defaults."""

    status = 400
    code = "bad_request"
    details: dict = {}  # more fields of the answer, for the page's sentence (e.g. the readable formats)

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


def error_fields(error: BaseException) -> tuple[int, str]:
    """``(HTTP status, code)`` for an error raised while answering a request."""
    if isinstance(error, WebError):
        return error.status, error.code
    if isinstance(error, DataError):  # the server's own data is missing: not the client's fault
        return 503, "data_missing"
    if isinstance(error, ModelFormatError):
        return 422, "model_broken"
    if isinstance(error, SightsoundError):
        return 400, "bad_request"
    return 500, INTERNAL
