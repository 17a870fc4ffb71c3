"""Speech Commands loading, cache, augmentation, download/extraction, and the espeak-ng corpus."""

import dataclasses
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sightsound import audio
from sightsound.data import speech_commands as sc
from sightsound.data import spectrograms, synth
from sightsound.errors import DataError

from conftest import needs_espeak, require_espeak


pytestmark = pytest.mark.usefixtures("private_speech_cache")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """The ``small`` corpus for seed 0, built once per test session (shared with test_speech_cli)."""
    path = tmp_path_factory.getbasetemp() / "speech-small-seed0"
    require_espeak()
    if not path.is_dir():
        synth.build_corpus(path, "small", seed=0, progress=False)
    return path


def write_clip(path: Path, freq: float, rate: int = 16000, seconds: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, subtype="PCM_16")


def make_fake_dataset(root: Path, per_word: int = 3, aux=("bed", "cat")) -> Path:
    """A tiny dataset in the v0.02 layout: tones for words, two noise files, lists."""
    val, test = [], []
    for w_i, word in enumerate(sc.TARGET_WORDS + tuple(aux)):
        for n in range(per_word):
            name = f"{w_i:04x}{n:04x}_nohash_0.wav"
            write_clip(root / word / name, 200 + 40 * w_i, seed=w_i * 10 + n)
            (val if n == 1 else test if n == 2 else []).append(f"{word}/{name}")
    (root / "validation_list.txt").write_text("".join(f"{e}\n" for e in val))
    (root / "testing_list.txt").write_text("".join(f"{e}\n" for e in test))
    rng = np.random.default_rng(5)
    (root / sc.BACKGROUND_NOISE).mkdir(parents=True)
    for name in ("white_noise.wav", "pink_noise.wav"):
        sf.write(root / sc.BACKGROUND_NOISE / name, 0.1 * rng.standard_normal(16000 * 12), 16000, subtype="PCM_16")
    return root


# -- class order -------------------------------------------------------------------------

def test_words_follow_the_speech_commands_convention():
    assert len(sc.WORDS) == 20 and sc.WORDS[0] == "_background_noise_" and sc.WORDS[1] == "_unknown_"
    assert list(sc.WORDS) == sorted(sc.WORDS)  # the package sorts its vocabulary
    assert set(sc.WORDS[2:]) == set(sc.TARGET_WORDS) and len(sc.TARGET_WORDS) == 18
    assert not set(sc.AUX_WORDS) & set(sc.TARGET_WORDS) and len(sc.AUX_WORDS) == 17


# -- the synthetic corpus ----------------------------------------------------------------------

@needs_espeak()
def test_small_corpus_layout(small_corpus):
    root = small_corpus
    name = re.compile(r"^[0-9a-f]{8}_nohash_\d+\.wav$")
    for word in sc.TARGET_WORDS:
        files = sorted((root / word).iterdir())
        assert len(files) == 20, word
        assert all(name.match(f.name) for f in files)
    assert any((root / w).is_dir() for w in sc.AUX_WORDS)
    for f in root.glob("*/*.wav"):
        if f.parent.name == sc.BACKGROUND_NOISE:
            continue
        info = sf.info(f)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16"), f
    x, _ = audio.read_wav(root / "yes" / sorted(os.listdir(root / "yes"))[0])
    assert np.count_nonzero(x == 0) < 200  # a noise floor, not digital silence
    assert np.abs(x).max() > 0.05  # a word is in there
    noise = sorted((root / sc.BACKGROUND_NOISE).glob("*.wav"))
    assert {p.name for p in noise} >= {"white_noise.wav", "pink_noise.wav", "brown_noise.wav", "hum.wav",
                                       "babble.wav"}
    assert all(sf.info(p).frames >= 16000 * 10 for p in noise)


@needs_espeak()
def test_small_corpus_splits_are_voice_disjoint(small_corpus):
    root = small_corpus
    lists = {s: (root / f"{s}_list.txt").read_text().split() for s in ("validation", "testing")}
    assert lists["validation"] and lists["testing"]
    assert not set(lists["validation"]) & set(lists["testing"])
    for entries in lists.values():
        assert all((root / e).is_file() for e in entries)
    manifest = json.loads((root / "synth.json").read_text())
    variant_of = {s["hash"]: s["variant"] for s in manifest["speakers"]}
    held = {s: {sc.speaker_of(e.split("/")[1]) for e in lists[s]} for s in lists}
    all_clips = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*.wav") if p.parent.name != sc.BACKGROUND_NOISE}
    train_speakers = {sc.speaker_of(c.split("/")[1]) for c in all_clips - set(lists["validation"]) - set(lists["testing"])}
    for split, speakers in held.items():
        assert not speakers & train_speakers, split
        assert not {variant_of[s] for s in speakers} & {variant_of[s] for s in train_speakers}, split


@needs_espeak()
def test_corpus_is_deterministic_per_seed(tmp_path):
    tiny = synth.SynthSize("tiny", speakers=3, clips_per_word=2, aux_per_speaker=1, noise_seconds=10)
    a = synth.build_corpus(tmp_path / "a", tiny, seed=7, progress=False, workers=2)
    synth.build_corpus(tmp_path / "b", tiny, seed=7, progress=False, workers=1)
    synth.build_corpus(tmp_path / "c", tiny, seed=8, progress=False, workers=1)

    def digest(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    da, db, dc = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert da == db
    assert da != dc
    assert a.clips == 18 * 2 + 3 and a.clips_per_word["yes"] == 2
    with pytest.raises(DataError, match="not empty"):
        synth.build_corpus(tmp_path / "a", tiny, seed=7, progress=False)
    assert not list(tmp_path.glob(".*partial"))


def test_synth_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="size"):
        synth.build_corpus(tmp_path / "x", "huge")
    with pytest.raises(ValueError, match="seed"):
        synth.build_corpus(tmp_path / "x", "small", seed=-1)


# -- loading ------------------------------------------------------------------------------------

@needs_espeak()
def test_load_small_corpus_counts_and_shares(small_corpus):
    data = sc.load_speech_commands(small_corpus, progress=False)
    assert data.words == sc.WORDS
    train = data.split("training")
    counts = train.counts()
    assert counts["yes"] == 16 and counts[sc.UNKNOWN] == 16 and counts[sc.BACKGROUND_NOISE] == 16
    assert data.split("testing").counts()["zero"] == 2
    more = sc.load_speech_commands(small_corpus, unknown_share=0.1, noise_share=0.0, progress=False,
                                   splits=("training",))
    c = more.split("training").counts()
    assert c[sc.BACKGROUND_NOISE] == 0 and c[sc.UNKNOWN] == 32
    with pytest.raises(ValueError):
        sc.load_speech_commands(small_corpus, unknown_share=0.6, noise_share=0.5)


def test_engine_repeats_hear_one_synthesisers_clips_more_often(tmp_path):
    root = make_fake_dataset(tmp_path / "data")
    data = sc.load_speech_commands(root, progress=False, splits=("training",))
    train = data.split("training")
    assert sc.repeat_engines(train, root, {"kokoro": 3}) is train  # no manifest: nothing to repeat
    kokoro = {f"{c.path.parent.name}/{c.path.name}" for c in train.clips[::2]}
    (root / sc.MANIFEST).write_text("".join(json.dumps({"path": f"{c.path.parent.name}/{c.path.name}",
                                                        "engine": "kokoro" if f"{c.path.parent.name}/{c.path.name}"
                                                        in kokoro else "espeak"}) + "\n" for c in train.clips))
    more = sc.repeat_engines(train, root, {"kokoro": 3})
    assert len(more.clips) == len(train.clips) + 2 * len(kokoro)
    assert len(more) == len(more.clips) + train.noise_examples  # the noise examples stay as they were
    for clip, frames in zip(more.clips, more.clip_frames):
        original = train.clips.index(clip)
        np.testing.assert_array_equal(frames, train.clip_frames[original])
    names = [f"{c.path.parent.name}/{c.path.name}" for c in more.clips]
    assert all(names.count(n) == (3 if n in kokoro else 1) for n in set(names))
    x, y = more.arrays(sc.Augmentation(), np.random.default_rng(0))
    assert x.shape[0] == y.shape[0] == len(more)
    with pytest.raises(ValueError, match="count >= 1"):
        train.repeated(np.zeros(len(train.clips), dtype=int))
    (root / sc.MANIFEST).write_text('{"path": "yes/a.wav", "engine": "kokoro"}\nnot json\n')
    with pytest.raises(DataError, match="line 2: not JSON"):
        sc.repeat_engines(train, root, {"kokoro": 3})


def test_engine_repeats_are_checked_where_they_are_given():
    import argparse

    from sightsound.cli.speech import _engine_repeats
    from sightsound.training.speech import SpeechSettings

    assert SpeechSettings.of("people", engine_repeats={"espeak": 2}).engine_repeats == {"espeak": 2}
    with pytest.raises(ValueError, match="engine_repeats"):
        SpeechSettings.of("people", engine_repeats={"kokoro": 0})
    assert _engine_repeats("kokoro=3, espeak=1") == {"kokoro": 3, "espeak": 1}
    with pytest.raises(argparse.ArgumentTypeError, match="ENGINE=N"):
        _engine_repeats("kokoro=three")


@needs_espeak()
def test_cached_frames_match_the_spectrogram_and_are_not_recomputed(small_corpus, monkeypatch):
    data = sc.load_speech_commands(small_corpus, splits=("testing",), progress=False)
    test = data.split("testing")
    x, labels = test.arrays(one_hot=False)
    x2, _ = test.arrays(one_hot=False)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (len(test), 43, 232, 1) and x.dtype == np.float32
    for i in (0, 5):
        samples, rate = audio.read_wav(test.clips[i].path)
        np.testing.assert_allclose(x[i], audio.spectrogram(samples, rate), atol=0.01)
    assert (labels[-test.noise_examples:] == 0).all()

    def boom(*args):
        raise AssertionError("recomputed a cached spectrogram")

    monkeypatch.setattr(spectrograms, "compute_entry", boom)
    again = sc.load_speech_commands(small_corpus, splits=("testing",), progress=False, workers=1)
    np.testing.assert_array_equal(again.split("testing").arrays()[0], x)


def test_augmentation_shift_noise_gain(tmp_path):
    root = make_fake_dataset(tmp_path / "ds")
    data = sc.load_speech_commands(root, progress=False, workers=1)
    train = data.split("training")
    clean, _ = train.arrays(one_hot=False)
    n = len(train.clips)
    shifted, _ = train.arrays(sc.Augmentation(shift_frames=2, noise_probability=0.0, gain_db=(0.0, 0.0)),
                              np.random.default_rng(3), one_hot=False)
    for i in range(n):
        options = [sc.normalize_batch(train.clip_frames[i:i + 1, 4 - k:4 - k + 43].astype(np.float32))[0]
                   for k in range(-2, 3)]
        assert any(np.allclose(shifted[i, ..., 0], o, atol=1e-4) for o in options), i
    noisy, _ = train.arrays(sc.Augmentation(shift_frames=0, noise_probability=1.0, snr_db=(0.0, 0.0)),
                            np.random.default_rng(4), one_hot=False)
    assert np.isfinite(noisy).all()
    assert np.abs(noisy[:n] - clean[:n]).mean() > 0.05
    assert np.abs(noisy.mean(axis=(1, 2, 3))).max() < 1e-4
    e1, y1 = train.arrays(sc.Augmentation(), np.random.default_rng(1))
    e2, y2 = train.arrays(sc.Augmentation(), np.random.default_rng(2))
    assert not np.array_equal(e1, e2) and np.array_equal(y1, y2)
    assert y1.shape == (len(train), 20) and (y1.sum(axis=1) == 1).all()


def _split_with_words_at(positions: list[tuple[int, int]], words=("yes", "no")) -> sc.SpeechSplit:
    """A training split whose clips are a loud block of frames [first, last) over a quiet floor."""
    frames = np.full((len(positions), audio.NUM_FRAMES + 2 * sc.CONTEXT_FRAMES, audio.FRAME_SIZE), -80.0)
    for i, (first, last) in enumerate(positions):
        frames[i, first:last] = -20.0
    all_words = tuple(sorted((sc.BACKGROUND_NOISE, sc.UNKNOWN) + words))
    clips = [sc.Clip(Path(f"{words[i % 2]}/{i}.wav"), words[i % 2], words[i % 2], f"s{i}") for i in range(len(positions))]
    return sc.SpeechSplit("training", all_words, clips, frames.astype(np.float16), [], 0, seed=0)


def test_active_spans_find_the_loud_frames():
    split = _split_with_words_at([(10, 30), (0, 5), (44, 51)])
    assert sc.active_spans(split.clip_frames).tolist() == [[10, 30], [0, 5], [44, 51]]
    frames = split.clip_frames.astype(np.float32)  # the front end's own dtype: read, never changed
    before = frames.copy()
    assert sc.active_spans(frames).tolist() == [[10, 30], [0, 5], [44, 51]]
    assert np.array_equal(frames, before)


@pytest.mark.parametrize("over, noise_db", [("word", -20.0), ("window", -20.0 + 10 * np.log10(10 / 43))])
def test_noise_snr_is_measured_over_the_word_or_the_whole_window(over, noise_db):
    """At 0 dB over the word, the noise is as loud as the word's frames; over the window, a word that fills
    10 of its 43 frames gets noise 10/43 as loud."""
    split = _split_with_words_at([(20, 30)])
    split.epoch_noise = [np.full((200, audio.FRAME_SIZE), -50.0, dtype=np.float16)]  # flat: any cut is alike
    window = split.clip_frames[:, :audio.NUM_FRAMES].astype(np.float32)
    aug = sc.Augmentation(noise_probability=1.0, snr_db=(0.0, 0.0), snr_over=over)
    mixed = split._mix_noise(window, np.random.default_rng(0), aug)  # pylint: disable=protected-access
    quiet = np.delete(mixed[0], np.arange(20, 30), axis=0)  # frames without the word: floor (-80 dB) + noise
    np.testing.assert_allclose(quiet, 10 * np.log10(10 ** (noise_db / 10) + 10 ** -8), atol=0.05)
    with pytest.raises(ValueError, match="snr_over must be one of window, word"):
        sc.Augmentation(snr_over="clip")


def test_fragment_and_partial_augmentation_cut_the_word_at_a_window_edge():
    positions = [(14, 34), (20, 28), (8, 40)] * 40
    split = _split_with_words_at(positions)
    aug = sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0), fragment_probability=1.0)
    x, labels = split.arrays(aug, np.random.default_rng(0), one_hot=False)
    assert (labels == split.words.index(sc.UNKNOWN)).all()
    ends = {"start": 0, "end": 0}
    for (first, last), example in zip(positions, x[..., 0]):
        loud = np.flatnonzero(example.mean(axis=1) > 0)  # normalised: the word's frames are above the mean
        assert len(loud) > 0, "nothing of the word is left"
        assert len(loud) <= round(0.35 * (last - first)) + 1  # at most 35 % of it
        assert loud[0] == 0 or loud[-1] == audio.NUM_FRAMES - 1  # cut by an edge of the window
        assert np.array_equal(loud, np.arange(loud[0], loud[-1] + 1))
        ends["start" if loud[0] == 0 else "end"] += 1
    assert min(ends.values()) > 30  # both edges, about evenly
    half, half_labels = split.arrays(sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0),
                                                     fragment_probability=0.5), np.random.default_rng(1),
                                     one_hot=False)
    assert 30 < (half_labels == split.words.index(sc.UNKNOWN)).sum() < 90
    plain = sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0))
    kept, kept_labels = split.arrays(plain, np.random.default_rng(0), one_hot=False)
    assert np.array_equal(kept_labels, split.labels)  # off by default: the word stays whole and labelled
    partial = sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0), partial_probability=1.0)
    x, partial_labels = split.arrays(partial, np.random.default_rng(2), one_hot=False)
    assert np.array_equal(partial_labels, split.labels)  # most of the word stays: so does its label
    for (first, last), example in zip(positions, x[..., 0]):
        loud = np.flatnonzero(example.mean(axis=1) > 0)
        assert round(0.6 * (last - first)) - 1 <= len(loud) <= last - first
        assert loud[0] == 0 or loud[-1] == audio.NUM_FRAMES - 1
    with pytest.raises(ValueError, match="fragment_probability"):
        sc.Augmentation(fragment_probability=1.5)
    with pytest.raises(ValueError, match="fragment_visible"):
        sc.Augmentation(fragment_visible=(0.0, 0.3))
    with pytest.raises(ValueError, match="partial_visible"):
        sc.Augmentation(partial_visible=(0.8, 0.6))


def test_placement_hears_the_whole_word_anywhere_in_the_window():
    # words near the clip's middle, one at its start, one near its end
    positions = [(20, 30), (22, 40), (0, 12), (30, 45)] * 400
    split = _split_with_words_at(positions)
    placed = sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0), placement_probability=1.0)
    x, labels = split.arrays(placed, np.random.default_rng(3), one_hot=False)
    assert np.array_equal(labels, split.labels)
    onsets = {}
    for (first, last), example in zip(positions, x[..., 0]):
        loud = np.flatnonzero(example.mean(axis=1) > 0)
        assert len(loud) == last - first  # all of the word, nothing repeated
        onsets.setdefault((first, last), set()).add(int(loud[0]))
    # anywhere: from the window's first frame to where the word ends at the window's last
    assert onsets[(20, 30)] == set(range(0, audio.NUM_FRAMES - 10 + 1))
    assert min(onsets[(22, 40)]) == 0 and max(onsets[(22, 40)]) == audio.NUM_FRAMES - 18
    assert onsets[(0, 12)] == {0}  # a word at the clip's start: frames before it would repeat the word
    assert onsets[(30, 45)] == set(range(0, audio.NUM_FRAMES - 15 + 1))
    centred, _ = split.arrays(sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0)),
                              np.random.default_rng(3), one_hot=False)
    assert {int(np.flatnonzero(e.mean(axis=1) > 0)[0]) for e in centred[::4, ..., 0]} == {20 - sc.CONTEXT_FRAMES}
    with pytest.raises(ValueError, match="placement_probability"):
        sc.Augmentation(placement_probability=-0.1)


def test_running_speech_puts_another_non_command_word_right_after_a_non_command_word():
    positions = [(20, 30)] * 400
    split = _split_with_words_at(positions)
    split.clips = [dataclasses.replace(c, label=sc.UNKNOWN) if i % 2 else c for i, c in enumerate(split.clips)]
    plain = sc.Augmentation(shift_frames=0, noise_probability=0.0, gain_db=(0.0, 0.0))
    running = dataclasses.replace(plain, running_speech_probability=1.0, running_speech_cut=(12, 25))
    x, labels = split.arrays(running, np.random.default_rng(4), one_hot=False)
    alone, _ = split.arrays(plain, np.random.default_rng(4), one_hot=False)
    assert np.array_equal(labels, split.labels)  # non-command words stay _unknown_, "yes" stays "yes"
    assert np.array_equal(x[::2], alone[::2])  # command words are left alone
    ends, gaps = set(), set()
    for example in x[1::2, ..., 0]:
        loud = np.flatnonzero(example.mean(axis=1) > 0)
        end = int(loud[0]) + 10  # the first word, whole, ends here
        second = loud[loud >= end]
        gap = int(second[0]) - end
        assert 12 <= end <= 25 and 0 <= gap <= 4
        assert np.array_equal(loud, np.concatenate([np.arange(end - 10, end),
                                                    np.arange(end + gap, min(end + gap + 10, audio.NUM_FRAMES))]))
        ends.add(end)
        gaps.add(gap)
    assert ends == set(range(12, 26)) and gaps == set(range(5))
    half, _ = split.arrays(dataclasses.replace(running, running_speech_probability=0.5), np.random.default_rng(5),
                           one_hot=False)
    assert 60 < sum(not np.array_equal(a, b) for a, b in zip(half[1::2], alone[1::2])) < 140
    with pytest.raises(ValueError, match="running_speech_probability"):
        sc.Augmentation(running_speech_probability=2.0)
    with pytest.raises(ValueError, match="running_speech_cut"):
        sc.Augmentation(running_speech_cut=(0, 50))


def test_dataset_errors(tmp_path):
    root = make_fake_dataset(tmp_path / "ds")
    (root / "testing_list.txt").rename(root / "moved.txt")
    with pytest.raises(DataError, match="testing_list.txt is missing"):
        sc.load_speech_commands(root, progress=False)
    (root / "moved.txt").rename(root / "testing_list.txt")
    (root / "dog").mkdir()
    with pytest.raises(DataError, match="dog: word folder holds no .wav"):
        sc.load_speech_commands(root, progress=False)
    (root / "dog").rmdir()
    shutil.rmtree(root / "seven")
    with pytest.raises(DataError, match="seven"):
        sc.load_speech_commands(root, progress=False)
    write_clip(root / "seven" / "aaaa0000_nohash_0.wav", 300)
    with (root / "validation_list.txt").open("a") as f:
        f.write("yes/ffffffff_nohash_9.wav\n")
    with pytest.raises(DataError, match="do not exist"):
        sc.load_speech_commands(root, progress=False)
    (root / "validation_list.txt").write_text("not a path\n")
    with pytest.raises(DataError, match="line 1"):
        sc.load_speech_commands(root, progress=False)
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text("")
    (root / "yes" / "bbbb0000_nohash_0.wav").write_bytes(b"garbage, not a wav")
    with pytest.raises(DataError, match="bbbb0000_nohash_0.wav"):
        sc.load_speech_commands(root, progress=False, workers=1)
    with pytest.raises(DataError, match="no such dataset folder"):
        sc.load_speech_commands(tmp_path / "nowhere")


def test_short_noise_files_are_rejected(tmp_path):
    root = make_fake_dataset(tmp_path / "ds")
    sf.write(root / sc.BACKGROUND_NOISE / "white_noise.wav", np.zeros(16000), 16000)
    with pytest.raises(DataError, match="too short"):
        sc.load_speech_commands(root, progress=False, workers=1)


# -- extraction and download ----------------------------------------------------------------------

def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_safe_extract_refuses_traversal_links_and_absolute_paths(tmp_path):
    def file_member(name, data=b"x"):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        return info, data

    link = tarfile.TarInfo("yes/link.wav")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases = {"traversal": [file_member("../evil.txt")], "absolute": [file_member("/tmp/evil.txt")],
             "link": [file_member("ok.txt"), (link, None)]}
    for label, members in cases.items():
        archive = make_tar(tmp_path / f"{label}.tar.gz", members)
        with pytest.raises(DataError, match="refusing"):
            sc.safe_extract(archive, tmp_path / f"out-{label}", progress=False)
        assert not (tmp_path / f"out-{label}").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not list(tmp_path.glob(".*partial"))
    good = make_tar(tmp_path / "good.tar.gz", [file_member("./yes/a.wav", b"abc")])
    out = sc.safe_extract(good, tmp_path / "good", progress=False)
    assert (out / "yes" / "a.wav").read_bytes() == b"abc"
    (tmp_path / "broken.tar.gz").write_bytes(good.read_bytes()[:30])
    with pytest.raises(DataError):
        sc.safe_extract(tmp_path / "broken.tar.gz", tmp_path / "broken", progress=False)


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_and_extract_from_a_local_server(tmp_path, http_server):
    served, base = http_server
    source = make_fake_dataset(tmp_path / "src", per_word=3)
    archive = served / sc.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:  # the real archive has its files at the top level
        for p in sorted(source.rglob("*")):
            tar.add(p, arcname="./" + str(p.relative_to(source)), recursive=False)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    data_dir = tmp_path / "data"
    url = f"{base}/{sc.ARCHIVE_NAME}"

    with pytest.raises(DataError, match="SHA-256"):
        sc.ensure_speech_commands(data_dir, urls=(url,), sha256="0" * 64, progress=False)
    assert not (data_dir / sc.SUBDIR).exists() and not (data_dir / sc.ARCHIVE_NAME).exists()

    folder = sc.ensure_speech_commands(data_dir, urls=(url,), sha256=digest, progress=False)
    assert folder == (data_dir / "speech_commands").absolute()
    assert sc.is_dataset_folder(folder) and not (data_dir / sc.ARCHIVE_NAME).exists()
    data = sc.load_speech_commands(folder, progress=False, workers=1)
    assert data.split("testing").counts()["yes"] == 1
    assert sc.ensure_speech_commands(data_dir, urls=("http://127.0.0.1:9/unused",), progress=False) == folder
    with pytest.raises(DataError, match="sightsound speech synth"):
        sc.ensure_speech_commands(tmp_path / "other", download=False)
    with pytest.raises(DataError, match="could not download"):
        sc.ensure_speech_commands(tmp_path / "other", urls=(f"{base}/missing.tar.gz",), progress=False)


def test_dangling_links_fifos_and_folders_among_noise_files_are_skipped(tmp_path):
    """Found by fuzzing: a dangling ``_background_noise_/*.wav`` symlink raised FileNotFoundError."""
    import os

    root = make_fake_dataset(tmp_path / "ds")
    noise = root / sc.BACKGROUND_NOISE
    (noise / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    os.mkfifo(noise / "pipe.wav")  # reading it would block forever
    (noise / "folder.wav").mkdir()
    data = sc.load_speech_commands(root, progress=False, workers=1, cache_dir=tmp_path / "cache")
    assert len(data.split("training")) > 0


def test_a_clip_that_vanishes_after_the_scan_is_a_data_error(tmp_path):
    root = make_fake_dataset(tmp_path / "ds")
    cache = sc.SpectrogramCache(tmp_path / "cache", workers=1, progress=False)
    with pytest.raises(DataError, match="cannot read"):
        cache.get_many([root / "yes" / "vanished_nohash_0.wav"])


def test_clips_whose_names_are_not_utf8_load(tmp_path):
    """Found by fuzzing: a clip or word folder named with bytes that are not UTF-8 raised UnicodeEncodeError
    from the cache key (and, past that, read_wav refused the clip as unreadable)."""
    root = make_fake_dataset(tmp_path / "ds")
    clip = next((root / "yes").iterdir())
    odd = Path(os.fsdecode(bytes(root / "yes") + b"/\xff\xfe_nohash_0.wav"))
    shutil.copy(clip, odd)
    odd_word = Path(os.fsdecode(bytes(root) + b"/w\xe9rd"))
    odd_word.mkdir()
    shutil.copy(clip, odd_word / "a_nohash_0.wav")
    data = sc.load_speech_commands(root, progress=False, workers=1, cache_dir=tmp_path / "cache")
    training = data.split("training")
    assert odd in [c.path for c in training.clips]
    assert [c.label for c in training.clips if c.word == odd_word.name] == [sc.UNKNOWN]
    x, _ = training.arrays()
    assert np.isfinite(x).all()
