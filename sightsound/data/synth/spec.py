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
#: The word folder of one-second windows cut from ordinary sentences. Like every folder that is not a
#: target word it feeds ``_unknown_``: the recogniser hears running speech that holds no command word.
SENTENCE_WORD = "sentence_window"
#: What the training Kokoro speakers read for :data:`SENTENCE_WORD`: ordinary sentences with no command
#: word, no homophone of one ("to", "for", "know", "write"...) and no word that holds one ("someone",
#: "before", "going", "into"), none of them one of the generalisation benchmark's sentences (which count
#: false alarms on voices never trained on).
READ_SENTENCES = (
    "The baker opened his shop early and the street smelled of warm bread.",
    "Our little garden has roses, tulips and a tall apple tree.",
    "She carried a heavy bag of books across the busy square.",
    "The river was calm, and a heron waited quietly by the bank.",
    "My grandfather tells funny stories about his childhood in the village.",
    "We bought fresh fish, lemons and bread at the harbour market.",
    "The children built a castle of sand with a flag on the top.",
    "The library was quiet apart from the ticking of an old clock.",
    "A gentle rain fell on the roof during the whole evening.",
    "He painted the fence white and planted herbs along the path.",
    "The waiter brought us tea, biscuits and a small jug of milk.",
    "Please hang your coat by the door and wipe your shoes.",
    "The musicians tuned their violins quietly behind the curtain.",
    "A family of ducks crossed the lane behind the farmhouse.",
    "Her cousin works as a nurse at the hospital in the city.",
    "The old bridge was repaired with stone from the local quarry.",
    "We spent the afternoon sorting photographs from our holidays.",
    "The bakery on the corner sells pastries with cherries and cream.",
    "His dog barks at the postman every morning without fail.",
    "The ship sailed slowly past the lighthouse at dawn.",
    "They planted beans, lettuce and pumpkins in the vegetable patch.",
    "My friend prefers green tea with honey in the winter.",
    "The classroom walls were covered with maps and drawings.",
    "An owl called softly from the woods at midnight.",
    "The cook stirred the pot of soup and tasted it carefully.",
    "We waited at the platform while the announcer read the delays.",
    "The artist sketched the cathedral from a bench in the park.",
    "Their house has a blue door and a garden full of lavender.",
    "A swarm of bees buzzed around the flowers by the wall.",
    "The mechanic checked the brakes and the tyres of my car.",
    "The students listened carefully while the professor explained the experiment.",
    "My aunt knitted a warm scarf in dark green and grey wool.",
    "The farmer brought the horses inside as the storm approached.",
    "A little girl was feeding the pigeons in the square.",
    "We cooked pasta with tomatoes, garlic and fresh basil.",
    "The orchestra played a waltz while the couples danced.",
    "The postcard showed a beach with palm trees and white sand.",
    "Grandmother keeps her recipes in a battered leather notebook.",
    "The museum guide described the paintings in a calm voice.",
    "Frost covered the hills, and the village looked peaceful and still.",
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
    sentences_per_speaker: int = 0  # sentences each training Kokoro speaker reads for SENTENCE_WORD (opt-in)
    windows_per_sentence: int = 8  # one-second windows cut from each of them


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
    position: float  # 0..1: where in the free room of the second the word starts (excerpt: where in the sentence)
    peak_db: float  # peak level of the word, dBFS
    floor_db: float  # RMS of the noise floor, dBFS
    floor_color: str  # white, pink or brown
    seed: int
    engine: str = "espeak"
    partner: str = ""  # Kokoro blend partner
    weight: float = 1.0  # Kokoro blend weight of ``voice``
    speed: float = 1.0  # Kokoro speed of this take
    excerpt: bool = False  # ``text`` is a sentence and the clip the one second of it at ``position``


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
