"""Datasets: download helpers, MNIST, Speech Commands and the offline speech corpus.

One role per module: ``download`` (mirrors, checksums, safe tar extraction,
progress bar), ``idx`` (the guarded IDX parser), ``mnist`` (MNIST files,
verification and download), ``speech_commands`` (the Speech Commands folder:
download, layout, classes, splits), ``spectrograms`` (the cache of dB frames),
``augment`` (a split's examples and their augmentation), ``synth/`` (the
offline espeak-ng/Kokoro corpus) and ``voices`` (the Kokoro model and voices).
"""
