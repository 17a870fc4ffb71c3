"""The project's own error types.

Every loader, parser and endpoint turns bad input into one of these, with a
message that names the file (or URL, or argument) and the problem. Callers can
catch :class:`SightsoundError` to handle all of them.
"""

import errno


class SightsoundError(Exception):
    """Base class of every error sightsound raises on purpose."""


class DataError(SightsoundError):
    """A dataset file is missing, corrupt, truncated or inconsistent."""


class DownloadError(DataError):
    """A file could not be fetched from any mirror."""


class FetchError(SightsoundError):
    """A URL could not be fetched (HTTP error, timeout, refused redirect, too large...).

    ``problem`` is the message without the URL, for lists of tried URLs;
    ``status`` the HTTP status code, when the server answered with an error.
    """

    def __init__(self, message: str, url: str, problem: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.problem = problem
        self.status = status


class ModelFormatError(SightsoundError):
    """A model.json / weights file is malformed, unsafe or unsupported."""


class ShapeError(SightsoundError, ValueError):
    """An array has the wrong shape, dtype or value range for the model."""


class DeviceError(SightsoundError, ValueError):
    """The device asked for (``--device cuda``) is not there or not known."""


class TrainingError(SightsoundError):
    """Training cannot go on (for example the loss became NaN)."""


class ImageError(SightsoundError):
    """An image cannot be read or holds nothing usable."""


class AudioError(SightsoundError):
    """Audio cannot be read or has unusable content."""


class OutputError(SightsoundError, OSError):
    """A file or folder cannot be written (read-only, disk full, no permission...).

    The message names the path and the problem. It is also an :class:`OSError`
    (with the original ``errno``), so code that caught the underlying
    ``OSError`` before still does.
    """

    REASONS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
               errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.EDQUOT: "the disk quota is exceeded", errno.ENOTDIR: "a part of the path is a file",
               errno.EEXIST: "a file of that name is in the way", errno.ENAMETOOLONG: "the name is too long"}

    def __init__(self, message: str, path=None, code: int | None = None):
        super().__init__(message)
        self.errno = code  # with strerror unset, str() stays the message
        self.path = path

    @classmethod
    def from_os_error(cls, error: OSError, path, action: str) -> "OutputError":
        """``cannot <action> <path>: <reason> (<strerror>)`` for an OSError raised while writing."""
        reason = cls.REASONS.get(error.errno)
        detail = error.strerror or str(error)
        inside = str(error.filename or "").startswith(str(path))  # the folder's own (temporary) files
        where = f" ({error.filename})" if error.filename and not inside else ""
        text = f"{reason} ({detail}){where}" if reason else f"{detail}{where}"
        return cls(f"cannot {action} {path}: {text}", path=path, code=error.errno)
