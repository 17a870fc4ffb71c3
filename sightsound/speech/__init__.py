"""Spoken commands: the ``@tensorflow-models/speech-commands`` BROWSER_FFT recognizer in Python.

    >>> from sightsound import speech
    >>> recognizer = speech.create("BROWSER_FFT")  # the model shipped with sightsound  # doctest: +SKIP
    >>> recognizer.listen(print, probability_threshold=0.75,
    ...                   source=speech.WavFileSource("long.wav"))  # doctest: +SKIP

One role per module, as in the package's ``src/``:

==================  ===========================================================================
``frontend``        the browser-FFT front end: resampling, dB frames, the model's spectrogram
``wav``             WAV files in and out
``sources``         audio sources for ``listen``: files, the microphone, chunk iterators, pushes
``model_files``     ``metadata.json`` (the model's words), read and written only here; the special
                    words ``_background_noise_`` and ``_unknown_``; where the shipped model is
``published``       the package's published models (``'18w'``, ``'directional4w'``): URLs, the cache
``results``         what the recognizer reports
``stream``          ``listen()``'s options and semantics on a stream, and its threads
``recognizer``      ``create``, and the :class:`Recognizer` (``recognize``, ``listen``)
``dataset``         transfer-learning examples and the package's binary dataset format (``TFJSSCDS``)
``transfer``        ``create_transfer``: the :class:`TransferRecognizer` that learns new words; the
                    other-speech examples shipped beside the model
==================  ===========================================================================

:mod:`sightsound.audio` re-exports the front end and WAV functions under
their older, shorter name.
"""

from .frontend import FRAME_DURATION_MILLIS, StreamResampler
from .model_files import BACKGROUND_NOISE_TAG, METADATA_JSON, UNKNOWN_TAG, pretrained_model_dir
from .published import VOCABULARIES
from .recognizer import FFT_TYPES, Recognizer, create
from .results import ClipRecognition, RecognitionResult, SpectrogramData
from .sources import AudioSource, ChunkSource, MicrophoneSource, PushSource, WavFileSource
from .stream import STOP_TIMEOUT, ListenOptions, StreamProcessor
from .transfer import TransferRecognizer, other_speech_examples

__all__ = ["create", "Recognizer", "RecognitionResult", "SpectrogramData", "ClipRecognition", "ListenOptions",
           "StreamProcessor", "WavFileSource", "MicrophoneSource", "ChunkSource", "PushSource", "AudioSource",
           "StreamResampler", "BACKGROUND_NOISE_TAG", "UNKNOWN_TAG", "METADATA_JSON", "pretrained_model_dir",
           "VOCABULARIES", "FFT_TYPES", "FRAME_DURATION_MILLIS", "STOP_TIMEOUT", "TransferRecognizer",
           "other_speech_examples"]
