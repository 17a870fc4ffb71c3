"""An offline spoken-command corpus in the Speech Commands v0.02 layout, made with espeak-ng and Kokoro.

The real dataset cannot be downloaded on every machine, so this module
speaks the chapter's 18 target words (and auxiliary words for
``_unknown_``) with one or more *engines* -- ``espeak`` (espeak-ng, always)
and ``kokoro`` (Kokoro-82M, a neural multi-speaker synthesiser: the
``voices`` extra, see :mod:`sightsound.data.voices`) -- and writes them
exactly as Speech Commands lays them out::

    OUT_DIR/
      zero/ one/ ... yes/ no/          18 target words
      bed/ bird/ ... wow/              auxiliary words (become _unknown_)
      sentence_window/                 one-second windows of read sentences (opt-in; become _unknown_)
      _background_noise_/*.wav         generated noise, 16 kHz, tens of seconds each
      validation_list.txt              "word/<speaker>_nohash_<n>.wav", one a line
      testing_list.txt
      synth.json                       how the corpus was made (seed, size, engines, speakers, split)
      manifest.jsonl                   one line per clip: path, word, split, speaker, engine, voice, settings

Every clip is a 16 kHz mono 16-bit WAV of exactly one second named
``<speaker hash>_nohash_<n>.wav``. A *speaker* is an espeak-ng English
voice with a voice variant (``gmw/en-US+m3``) plus its own pitch and speaking
rate; each take varies rate, pitch, intonation (``stop``, ``stop!``,
``stop?``), loudness, position of the word in the second and a faint noise
floor (so no clip holds digital silence). The validation and test lists are
split by *variant*: every speaker built on a held-out variant is in the same
list, so test voices (timbres) are never heard in training.

A Kokoro speaker is one of its 28 English voices (US/UK, female/male),
sometimes blended with a partner voice at a weight, at its own speed
(0.8-1.25); each take varies the speed a little and the same intonation,
level, position and noise floor as above. Kokoro voices are split the same
way: 3 voices validate and 3 test (a US female, a US male and a UK voice
each), and a blend only pairs voices of the same split, so no voice is
heard in two splits. With ``SynthSize.sentences_per_speaker`` (``speech synth
--sentence-windows N``; 0 by default), each training Kokoro speaker also reads that many of
:data:`READ_SENTENCES` (no command word in any), and eight one-second
windows spread over its reading go to ``sentence_window/``: running
speech that the recogniser must answer with ``_unknown_``.

A build is resumable: clips are written into a hidden sibling
``.OUT_DIR.synth-partial`` with a journal of finished clips (and their
SHA-256); running the same build again (same seed, size and engines)
verifies and keeps them and renders only the rest. The folder is renamed
to ``OUT_DIR`` when every clip is there. ``max_clips`` stops a build after
that many new clips on purpose (to build in pieces).

The corpus is deterministic for a seed (given the same espeak-ng
installation; Kokoro's audio for the ONNX Runtime build) and built in
parallel. ``small`` has 20 clips per target word (seconds; about a minute
more with Kokoro), ``full`` 1,100 per target word (a few minutes on 2 cores
with espeak-ng alone; Kokoro takes about 0.8 s per clip and core, so about
an hour more for its share).

Example::

    >>> from sightsound.data.synth import build_corpus
    >>> report = build_corpus("/tmp/speech-small", size="small", seed=0)  # doctest: +SKIP
    >>> report.clips_per_word["yes"]  # doctest: +SKIP
    20

The package's modules, one role each: :mod:`.spec` (sizes, speakers, clip jobs, the
report), :mod:`.espeak` (the espeak-ng program), :mod:`.plan` (speakers, splits and
clips), :mod:`.render` (a clip's audio and the noise recordings) and :mod:`.build`
(the resumable build). Every public name is importable from here.
"""

from .build import build_corpus, importlib_version, partial_dir
from .espeak import ESPEAK, EXCLUDED_VARIANTS, espeak_available, espeak_version, list_voices, speak
from .plan import (clip_settings, kokoro_voice_splits, plan_clips, plan_kokoro_speakers, plan_sentence_windows,
                   plan_speakers, take_levels)
from .render import BABBLE_TEXT, colored_noise, kokoro_engine, noise_files, place_word, render_chunk, render_clip
from .spec import (
    CLIP,
    ENGINES,
    JOURNAL,
    KOKORO_BLEND_CHANCE,
    KOKORO_SPEED,
    PLAN,
    RATE,
    READ_SENTENCES,
    SENTENCE_WORD,
    SIZES,
    SPLIT_SHARES,
    TAKE_TEXTS,
    ClipJob,
    Speaker,
    SynthReport,
    SynthSize,
    parse_engines,
)

__all__ = ["SIZES", "ENGINES", "SynthSize", "Speaker", "ClipJob", "SynthReport", "build_corpus", "list_voices",
           "plan_speakers", "plan_kokoro_speakers", "plan_sentence_windows", "READ_SENTENCES", "SENTENCE_WORD",
           "kokoro_voice_splits", "plan_clips", "clip_settings",
           "parse_engines", "render_clip", "place_word", "take_levels", "speak", "noise_files", "colored_noise", "espeak_available",
           "partial_dir", "RATE", "CLIP", "ESPEAK", "EXCLUDED_VARIANTS", "TAKE_TEXTS", "SPLIT_SHARES", "KOKORO_SPEED",
           "KOKORO_BLEND_CHANCE", "JOURNAL", "PLAN", "BABBLE_TEXT", "espeak_version", "kokoro_engine", "render_chunk",
           "importlib_version"]
