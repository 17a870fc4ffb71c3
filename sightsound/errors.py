"""The project's own error types.

Every loader, parser and endpoint turns bad input into one of these, with a
message that names the file (or URL, or argument) and the problem. Callers can
catch :class:`SightsoundError` to handle all of them.
"""


class SightsoundError(Exception):
    """Base class of every error sightsound raises on purpose."""


class DataError(SightsoundError):
    """A dataset file is missing, corrupt, truncated or inconsistent."""


class DownloadError(DataError):
    """A file could not be fetched from any mirror."""


class ModelFormatError(SightsoundError):
    """A model.json / weights file is malformed, unsafe or unsupported."""


class ShapeError(SightsoundError, ValueError):
    """An array has the wrong shape, dtype or value range for the model."""


class TrainingError(SightsoundError):
    """Training cannot go on (for example the loss became NaN)."""


class ImageError(SightsoundError):
    """An image cannot be read or holds nothing usable."""


class AudioError(SightsoundError):
    """Audio cannot be read or has unusable content."""
