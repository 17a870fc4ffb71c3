"""The chapter's browser demos in one local server: ``sightsound serve``.

>>> from sightsound.web import create_app
>>> app = create_app("runs")  # doctest: +SKIP
"""

from .app import create_app

__all__ = ["create_app"]
