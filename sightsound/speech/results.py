"""What the recognizer reports (the role of speech-commands' ``types.ts``).

:class:`RecognitionResult` is one result of ``recognize()`` or of a
``listen()`` callback; :class:`SpectrogramData` the window it saw;
:class:`ClipRecognition` the best guesses for a whole clip, as
``sightsound speech recognize`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frontend import FRAME_DURATION_MILLIS, FRAME_SIZE


@dataclass
class SpectrogramData:
    """The window the recognizer saw: raw dB values ``[frames, 232, 1]`` float32 (``data``)."""

    data: np.ndarray
    frame_size: int = FRAME_SIZE
    frame_duration_millis: float = FRAME_DURATION_MILLIS


@dataclass
class RecognitionResult:
    """One result: ``scores`` in ``word_labels()`` order, the arg-max ``word``, the stream ``time``
    in seconds (``None`` for :meth:`Recognizer.recognize`) and ``spectrogram`` (or ``None``)."""

    scores: np.ndarray
    word: str
    time: float | None = None
    spectrogram: SpectrogramData | None = None

    @property
    def score(self) -> float:
        """The highest score (the probability of ``word``)."""
        return float(self.scores.max())


@dataclass
class ClipRecognition:
    """The result for one clip (a file): the best three (word, probability) pairs of the chosen window.

    >>> ClipRecognition("yes.wav", [("yes", 0.9), ("no", 0.05), ("up", 0.01)], 0, 1).line()
    'yes.wav\\tyes\\t0.9000\\tno:0.0500\\tup:0.0100'
    """

    path: str
    top: list[tuple[str, float]]
    window: int  # index of the 1-s window reported (0 for clips up to one second)
    windows: int

    def line(self) -> str:
        """``PATH<TAB>WORD<TAB>PROB<TAB>WORD:PROB<TAB>WORD:PROB``."""
        (word, prob), rest = self.top[0], self.top[1:]
        return "\t".join([self.path, word, f"{prob:.4f}"] + [f"{w}:{p:.4f}" for w, p in rest])


__all__ = ["SpectrogramData", "RecognitionResult", "ClipRecognition"]
