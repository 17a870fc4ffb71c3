"""Planning a corpus: espeak-ng and Kokoro speakers with their splits, and every clip's settings."""

from __future__ import annotations

import hashlib

import numpy as np

from ..speech_commands import AUX_WORDS, TARGET_WORDS
from .spec import (EXTRA_UNKNOWN, KOKORO_BLEND_CHANCE, KOKORO_SPEED, READ_SENTENCES, SENTENCE_WORD, SPLIT_SHARES,
                   TAKE_TEXTS, ClipJob, Speaker, SynthSize)


def _speaker_hash(seed: int, voice: str) -> str:
    return hashlib.sha1(f"sightsound-synth:{seed}:{voice}".encode()).hexdigest()[:8]


def plan_speakers(size: SynthSize, seed: int, bases: tuple[str, ...], variants: tuple[str, ...]) -> list[Speaker]:
    """Speakers with their split: variants are shuffled and the first 10 % validate, the next 10 % test."""
    rng = np.random.default_rng([seed, 1])
    pool = ("",) + tuple(variants)  # "" = the base voice without a variant
    order = [pool[i] for i in rng.permutation(len(pool))]
    if size.speakers is not None:
        order = order[:size.speakers]
    n_val = max(1, round(len(order) * SPLIT_SHARES["validation"]))
    n_test = max(1, round(len(order) * SPLIT_SHARES["testing"]))
    split_of = {v: ("validation" if i < n_val else "testing" if i < n_val + n_test else "training")
                for i, v in enumerate(order)}
    pairs = []
    for variant in order:
        if size.speakers is None:
            pairs += [(base, variant) for base in bases]
        else:
            pairs.append((bases[int(rng.integers(len(bases)))], variant))
    speakers = []
    for base, variant in pairs:
        voice = f"{base}+{variant}" if variant else base
        speakers.append(Speaker(hash=_speaker_hash(seed, voice), voice=voice, variant=variant or "-",
                                pitch=float(rng.uniform(25, 75)), rate=float(rng.uniform(130, 205)),
                                split=split_of[variant]))
    return speakers


def _kokoro_hash(seed: int, voice: str, partner: str, weight: float, speed: float) -> str:
    return hashlib.sha1(f"sightsound-synth:kokoro:{seed}:{voice}:{partner}:{weight}:{speed}".encode()).hexdigest()[:8]


def kokoro_voice_splits(seed: int) -> dict[str, str]:
    """Each English Kokoro voice's split: 3 validate and 3 test (a US female, a US male and a UK voice
    each, drawn with the seed); the other 22 train.

    >>> splits = kokoro_voice_splits(0)
    >>> sorted(sum(1 for s in splits.values() if s == k) for k in ("training", "validation", "testing"))
    [3, 3, 22]
    """
    from ..voices import VOICES

    rng = np.random.default_rng([seed, 4])
    groups = {g: [names[i] for i in rng.permutation(len(names))] for g, names in VOICES.items()}
    uk = ["bf", "bm"] if rng.integers(2) == 0 else ["bm", "bf"]
    held = {"validation": [groups["af"][0], groups["am"][0], groups[uk[0]][0]],
            "testing": [groups["af"][1], groups["am"][1], groups[uk[1]][0]]}
    split = {v: "training" for names in VOICES.values() for v in names}
    for name, voices in held.items():
        for v in voices:
            split[v] = name
    return split


def plan_kokoro_speakers(size: SynthSize, seed: int) -> list[Speaker]:
    """``size.kokoro_speakers`` Kokoro speakers: a voice (cycling through the split's voices), perhaps
    blended with another voice of the same split, at a speed of its own; 10 % validate, 10 % test."""
    n = size.kokoro_speakers
    if n <= 0:
        return []
    if n < 3:
        raise ValueError(f"a corpus with Kokoro needs at least 3 Kokoro speakers (one per split), got {n}")
    splits = kokoro_voice_splits(seed)
    rng = np.random.default_rng([seed, 5])
    n_val = max(1, round(n * SPLIT_SHARES["validation"]))
    n_test = max(1, round(n * SPLIT_SHARES["testing"]))
    speakers: list[Speaker] = []
    seen: set[str] = set()
    for split, count in (("validation", n_val), ("testing", n_test), ("training", n - n_val - n_test)):
        pool = sorted(v for v, s in splits.items() if s == split)
        order = [pool[i] for i in rng.permutation(len(pool))]
        for k in range(count):
            voice = order[k % len(order)]
            partner, weight = "", 1.0
            # the first pass over the split's voices keeps them pure; later speakers may blend two
            if k >= len(order) and rng.uniform() < KOKORO_BLEND_CHANCE:
                partner = pool[int(rng.integers(len(pool)))]
                if partner == voice:
                    partner = ""
                else:
                    weight = round(float(rng.uniform(0.35, 0.8)), 2)
            speed = round(float(rng.uniform(*KOKORO_SPEED)), 3)
            h = _kokoro_hash(seed, voice, partner, weight, speed)
            while h in seen:  # never: speeds are drawn from a continuum; kept for safety
                speed = round(speed + 0.001, 3)
                h = _kokoro_hash(seed, voice, partner, weight, speed)
            seen.add(h)
            speakers.append(Speaker(hash=h, voice=voice, variant=voice, pitch=0.0, rate=0.0, split=split,
                                    engine="kokoro", partner=partner, weight=weight, speed=speed))
    return speakers


def plan_clips(size: SynthSize, seed: int, speakers: list[Speaker]) -> list[ClipJob]:
    """Every clip of the corpus, in a fixed order (its index seeds the clip's noise)."""
    rng = np.random.default_rng([seed, 2])
    takes: dict[tuple[str, str], int] = {}
    entries: list[tuple[str, Speaker]] = []
    for word in TARGET_WORDS:
        chosen = list(range(len(speakers)))
        extra = size.clips_per_word - len(chosen)
        if extra < 0:
            chosen = sorted(rng.choice(len(speakers), size.clips_per_word, replace=False).tolist())
        elif extra > 0:
            chosen += rng.choice(len(speakers), extra, replace=extra > len(speakers)).tolist()
        entries += [(word, speakers[i]) for i in chosen]
    others = AUX_WORDS + EXTRA_UNKNOWN
    for s in speakers:
        count = min(size.aux_per_speaker, len(others))
        for i in sorted(rng.choice(len(others), count, replace=False).tolist()):
            entries.append((others[i], s))
    jobs = []
    for index, (word, s) in enumerate(entries):
        n = takes.get((word, s.hash), 0)
        takes[(word, s.hash)] = n + 1
        text = TAKE_TEXTS[int(rng.integers(len(TAKE_TEXTS)))].format(w=word.replace("_", " "))
        pitch = int(np.clip(round(s.pitch + rng.uniform(-8, 8)), 0, 99))
        factor = rng.uniform(0.88, 1.12)  # the take's speaking rate; for Kokoro half as much speed change
        common = dict(position=float(rng.uniform(0, 1)), **take_levels(rng))
        relpath = f"{word}/{s.hash}_nohash_{n}.wav"
        if s.engine == "kokoro":
            jobs.append(ClipJob(index=index, relpath=relpath, word=word, voice=s.voice, text=text, pitch=0, rate=0,
                                engine="kokoro", partner=s.partner, weight=s.weight,
                                speed=round(float(np.clip(s.speed * (1 + (factor - 1) / 2), 0.7, 1.35)), 3),
                                **common))
        else:
            jobs.append(ClipJob(index=index, relpath=relpath, word=word, voice=s.voice, text=text, pitch=pitch,
                                rate=int(round(s.rate * factor)), **common))
    return jobs + plan_sentence_windows(size, seed, speakers, len(jobs))


def take_levels(rng: np.random.Generator) -> dict:
    """A clip's peak level, noise floor (level and colour) and noise seed."""
    return dict(peak_db=float(rng.uniform(-24, -2)), floor_db=float(rng.uniform(-75, -50)),
                floor_color=("white", "pink", "brown")[int(rng.integers(3))], seed=int(rng.integers(2**63)))


def plan_sentence_windows(size: SynthSize, seed: int, speakers: list[Speaker], first_index: int) -> list[ClipJob]:
    """The :data:`SENTENCE_WORD` clips: each training Kokoro speaker reads ``size.sentences_per_speaker`` of
    :data:`READ_SENTENCES` at its own speed, and ``size.windows_per_sentence`` one-second windows spread over
    each reading (one in each equal part of it, at a random place there) become clips, each at its own
    level over its own noise floor. Held-out speakers read none: the sentences teach, they do not measure."""
    rng = np.random.default_rng([seed, 6])
    count, per = size.sentences_per_speaker, size.windows_per_sentence
    jobs: list[ClipJob] = []
    for s in speakers:
        if s.engine != "kokoro" or s.split != "training" or count <= 0:
            continue
        n = 0
        for i in sorted(rng.choice(len(READ_SENTENCES), min(count, len(READ_SENTENCES)), replace=False).tolist()):
            for k in range(per):
                jobs.append(ClipJob(index=first_index + len(jobs), relpath=f"{SENTENCE_WORD}/{s.hash}_nohash_{n}.wav",
                                    word=SENTENCE_WORD, voice=s.voice, text=READ_SENTENCES[i], pitch=0, rate=0,
                                    position=float((k + rng.uniform()) / per), **take_levels(rng), engine="kokoro",
                                    partner=s.partner, weight=s.weight, speed=s.speed, excerpt=True))
                n += 1
    return jobs


def clip_settings(job: ClipJob) -> dict:
    """What the manifest records of a clip's rendering: the engine's own settings and the common ones."""
    if job.engine == "kokoro":
        own = {"voice": job.voice, "blend": job.partner or None, "weight": job.weight if job.partner else None,
               "speed": job.speed}
    else:
        own = {"voice": job.voice, "pitch": job.pitch, "rate": job.rate}
    excerpt = {"excerpt": True} if job.excerpt else {}  # position: where in the sentence the second starts
    return {**own, "text": job.text, "position": round(job.position, 4), **excerpt, "peak_db": round(job.peak_db, 2),
            "floor_db": round(job.floor_db, 2), "floor_color": job.floor_color}
