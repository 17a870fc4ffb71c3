"""The chapter's browser demos in one local server: ``sightsound serve``.

>>> from sightsound.web import create_app
>>> app = create_app("runs")  # doctest: +SKIP

``create_app`` is imported on first use, so that the command line can read
the defaults in :mod:`sightsound.web.security` without loading FastAPI.
"""

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
