"""What a synthetic corpus is made of: its sizes, speakers, clip jobs, engines and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RATE = 16000  #: sample rate of every clip and noise file
CLIP = RATE  #: samples per clip (one second)
TAKE_TEXTS = ("{w}", "{w}", "{w}.", "{w}!", "{w}?")  # intonation variety, plain word most often
#: What the corpus says for ``_unknown_`` besides Speech Commands' auxiliary words: everyday words,
#: words that share sounds with a command word (but are not homophones of one: no "know", "too",
#: "ate", "write"), and short phrases (folders name them with "_" for spaces), so the recogniser
#: learns to stay quiet on ordinary speech. None contains a command word.
EXTRA_UNKNOWN = (
    "again", "hello", "okay", "please", "maybe", "water", "money", "table", "window", "morning",
    "yet", "yellow", "nope", "note", "ten", "twelve", "twenty", "fine", "seventy", "sticks",
    "lift", "light", "loft", "top", "stock", "goal", "toe", "town", "cup", "wait",
    "thank_you", "good_morning", "see_you_later", "how_are_you", "come_here", "not_now",
    "over_there", "I_think_so", "very_good", "what_is_this", "open_the_door", "excuse_me",
)
SPLIT_SHARES = {"validation": 0.1, "testing": 0.1}  # of the variants; the rest train
ENGINES = ("espeak", "kokoro")
KOKORO_SPEED = (0.8, 1.25)  # a Kokoro speaker's own speed
KOKORO_BLEND_CHANCE = 0.5  # of the Kokoro speakers after a first pass over a split's voices: a blend
JOURNAL = ".progress.jsonl"  # inside the partial build: one line per finished clip
PLAN = ".plan.json"  # inside the partial build: what is being built


@dataclass(frozen=True)
class SynthSize:
    """How big a corpus is: speakers, takes per target word, auxiliary words, noise length."""

    name: str
    speakers: int | None  # None: every base voice x every variant
    clips_per_word: int  # takes of each target word (extra takes come from random speakers)
    aux_per_speaker: int  # distinct auxiliary words each speaker says once
    noise_seconds: int
    kokoro_speakers: int = 0  # Kokoro speakers, when the kokoro engine is used


SIZES = {
    "small": SynthSize("small", speakers=20, clips_per_word=20, aux_per_speaker=4, noise_seconds=15,
                       kokoro_speakers=12),
    "full": SynthSize("full", speakers=None, clips_per_word=1100, aux_per_speaker=12, noise_seconds=60,
                      kokoro_speakers=196),
}


@dataclass(frozen=True)
class Speaker:
    hash: str
    voice: str  # espeak-ng -v argument, e.g. "gmw/en-US+m3"; or a Kokoro voice, e.g. "af_heart"
    variant: str  # espeak-ng variant; for Kokoro the voice
    pitch: float  # espeak-ng -p, 0-99 (0 for Kokoro)
    rate: float  # espeak-ng -s, words per minute (0 for Kokoro)
    split: str  # training, validation or testing
    engine: str = "espeak"
    partner: str = ""  # Kokoro: the voice blended in ("" for none)
    weight: float = 1.0  # Kokoro: the share of ``voice`` in a blend
    speed: float = 1.0  # Kokoro: the speaker's speed


@dataclass(frozen=True)
class ClipJob:
    """Everything needed to render one clip; rendering is a pure function of it."""

    index: int
    relpath: str
    word: str
    voice: str
    text: str
    pitch: int
    rate: int
    position: float  # 0..1: where in the free room of the second the word starts
    peak_db: float  # peak level of the word, dBFS
    floor_db: float  # RMS of the noise floor, dBFS
    floor_color: str  # white, pink or brown
    seed: int
    engine: str = "espeak"
    partner: str = ""  # Kokoro blend partner
    weight: float = 1.0  # Kokoro blend weight of ``voice``
    speed: float = 1.0  # Kokoro speed of this take


@dataclass
class SynthReport:
    out_dir: Path
    size: str
    seed: int
    clips: int
    clips_per_word: dict[str, int]
    speakers: dict[str, int]  # per split
    noise_files: list[str]
    seconds: float
    engines: tuple[str, ...] = ("espeak",)
    complete: bool = True  # False when ``max_clips`` stopped the build (run it again to resume)
    rendered: int = 0  # clips rendered by this run (the others were kept from an interrupted one)


def parse_engines(engines: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"espeak,kokoro"`` (or a sequence) as a tuple of known engines in a fixed order.

    >>> parse_engines("kokoro, espeak")
    ('espeak', 'kokoro')
    """
    names = [e.strip() for e in (engines.split(",") if isinstance(engines, str) else engines) if e.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown or not names:
        raise ValueError(f"unknown engine(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ENGINES)}")
    return tuple(e for e in ENGINES if e in names)
