"""Audio in: the browser-FFT front end and WAV I/O, under their first public name.

A re-export module (not an alias): the functions live in
:mod:`sightsound.speech.frontend` (resampling, frames, spectrograms) and
:mod:`sightsound.speech.wav` (reading and writing WAV files), two modules
that one module alias could not both stand for. ``sightsound.audio.X`` is
``sightsound.speech.frontend.X`` or ``sightsound.speech.wav.X``, the same
object.

>>> from sightsound import audio
>>> from sightsound.speech import frontend
>>> audio.spectrogram is frontend.spectrogram
True
"""

from .speech.frontend import (BIN_HZ, CLIP_SAMPLES, FFT_SIZE, FRAME_SECONDS, FRAME_SIZE, HOP, MAX_SAMPLE_RATE,
                              MIN_SAMPLE_RATE, NORMALIZE_EPSILON, NUM_FRAMES, SAMPLE_RATE, SILENCE_AMPLITUDE,
                              SILENCE_DB, SPECTROGRAM_SHAPE, FrameExtractor, bin_frequencies, blackman_window,
                              frame_times, frames, normalize, num_frames, plot_spectrogram, resample,
                              silent_frames, spectrogram, spectrograms)
from .speech.wav import MAX_SAMPLES, read_wav, write_wav

__all__ = ["SAMPLE_RATE", "FFT_SIZE", "HOP", "FRAME_SIZE", "NUM_FRAMES", "CLIP_SAMPLES", "BIN_HZ",
           "FRAME_SECONDS", "SPECTROGRAM_SHAPE", "SILENCE_DB", "SILENCE_AMPLITUDE", "NORMALIZE_EPSILON",
           "MIN_SAMPLE_RATE", "MAX_SAMPLE_RATE", "MAX_SAMPLES", "read_wav", "write_wav", "resample", "frames",
           "silent_frames", "num_frames", "FrameExtractor", "normalize", "spectrogram", "spectrograms",
           "frame_times", "bin_frequencies", "plot_spectrogram", "blackman_window"]
