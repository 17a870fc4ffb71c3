"""The streaming recognizer (``sightsound.speech``): TF.js listen() semantics, sources, threads, bad input.

Most tests drive the recognizer with a stub model whose ``predict`` returns
chosen scores; the last group uses a tiny model trained on the small espeak-ng
corpus (without espeak-ng: skipped, or a failure when $CI is set).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
import tracemalloc
import types

import numpy as np
import pytest
import soundfile as sf
from conftest import require_espeak
from scipy.signal import resample_poly

from sightsound import audio, speech
from sightsound.errors import AudioError, ModelFormatError, ShapeError
from sightsound.speech import frontend
from sightsound.speech.frontend import StreamResampler
from sightsound.speech.sources import to_float_chunk

WORDS = ["_background_noise_", "_unknown_", "no", "yes"]
RATE = audio.SAMPLE_RATE
HOP = audio.HOP


class Stub:
    """A model: ``rows`` are the scores of successive windows (cycled); records every input."""

    input_shape = (43, 232, 1)

    def __init__(self, rows=None, words=WORDS):
        self.output_shape = (len(words),)
        self.rows = [np.asarray(r, dtype=np.float32) for r in (rows or [[0.05, 0.05, 0.1, 0.8]])]
        self.inputs = []
        self.calls = 0

    def predict(self, x):
        out = []
        for window in x:
            self.inputs.append(np.array(window))
            out.append(self.rows[self.calls % len(self.rows)])
            self.calls += 1
        return np.stack(out) if out else np.zeros((0, self.output_shape[0]), np.float32)


def noise(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def chunks(x: np.ndarray, sizes=(1000, 4096, 333, 20000, 1)):
    out, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(x[i:i + n])
        i, k = i + n, k + 1
    return out


def run(recognizer, x, rate=RATE, **options):
    results = []
    recognizer.listen(results.append, source=speech.ChunkSource(chunks(x), rate), **options)
    assert recognizer.wait(timeout=30)
    return results


def counter_of(result) -> int:
    """The frame counter (1-based) at which the package's Tracker fired for this result."""
    return int(round((result.time * RATE - audio.FFT_SIZE) / HOP)) + 1


def frame_end(counter: int) -> float:
    return (audio.FFT_SIZE + (counter - 1) * HOP) / RATE


# -- the package's listen() semantics --------------------------------------------------------------------

def test_default_overlap_runs_every_22_frames_after_a_full_window():
    x = noise(5.0)
    results = run(speech.Recognizer(Stub(), WORDS), x)
    n = audio.num_frames(x.size)  # 213 frames; the end-of-stream flush adds frames up to the next run
    expected = list(range(44, n + 22, 22))
    assert [round(r.time, 6) for r in results] == [round(frame_end(c), 6) for c in expected]
    assert all(r.word == "yes" and r.spectrogram is None for r in results)
    assert results[1].time - results[0].time == pytest.approx(22 * HOP / RATE)


@pytest.mark.parametrize("overlap,period", [(0.0, 43), (0.25, 32), (0.5, 22), (0.75, 11), (0.9, 4)])
def test_overlap_sets_recognitions_per_second(overlap, period):
    stub = Stub()
    results = run(speech.Recognizer(stub, WORDS), noise(10.0), overlap_factor=overlap)
    assert speech.ListenOptions(overlap_factor=overlap).period(43) == period  # round(43 * (1 - f)), JS rounding
    counters = np.round((np.array([r.time for r in results]) * RATE - audio.FFT_SIZE) / HOP).astype(int) + 1
    assert (counters % period == 0).all() and counters[0] >= 43 and counters[0] - period < 43
    per_second = len(results) / 10.0
    assert per_second == pytest.approx(RATE / HOP / period, rel=0.12)


def test_threshold_compares_the_highest_score():
    stub = Stub([[0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.05, 0.75], [0.2, 0.0, 0.0, 0.8]])
    results = run(speech.Recognizer(stub, WORDS), noise(4.0), probability_threshold=0.75)
    assert [r.score for r in results] == pytest.approx([0.75, 0.8, 0.75, 0.8][:len(results)])
    assert len(results) == sum(1 for i in range(stub.calls) if stub.rows[i % 3].max() >= 0.75)
    assert run(speech.Recognizer(Stub(), WORDS), noise(2.0), probability_threshold=1.0) == []


def test_noise_and_unknown_are_skipped_and_do_not_start_a_suppression():
    rows = [[0.9, 0.0, 0.0, 0.1], [0.0, 0.9, 0.0, 0.1], [0.0, 0.0, 0.2, 0.8]]
    # 600 ms = 26 frames > the 22-frame period: a detection suppresses the next run, noise/unknown do not
    results = run(speech.Recognizer(Stub(rows), WORDS), noise(7.0), suppression_time_millis=600)
    assert {r.word for r in results} == {"yes"}
    assert [counter_of(r) for r in results] == [88, 176, 264]
    everything = run(speech.Recognizer(Stub(rows), WORDS), noise(6.0), invoke_callback_on_noise_and_unknown=True)
    assert [r.word for r in everything[:4]] == ["_background_noise_", "_unknown_", "yes", "_background_noise_"]


def test_suppression_skips_runs_within_the_suppression_frames():
    # 1000 ms = round(1000 / 23.22) = 43 frames: after a detection at counter c, runs resume when counter - c > 43
    results = run(speech.Recognizer(Stub(), WORDS), noise(10.0), suppression_time_millis=1000)
    counters = np.round((np.array([r.time for r in results]) * RATE - audio.FFT_SIZE) / HOP).astype(int) + 1
    assert list(counters[:4]) == [44, 88, 132, 176]
    results = run(speech.Recognizer(Stub(), WORDS), noise(10.0), suppression_time_millis=500)  # 22 frames
    counters = np.round((np.array([r.time for r in results]) * RATE - audio.FFT_SIZE) / HOP).astype(int) + 1
    assert list(counters[:3]) == [44, 88, 132]  # 66 - 44 = 22 is not > 22


def test_incremental_frames_equal_audio_spectrogram_of_the_same_window():
    x = noise(4.0, seed=3) * np.sin(np.linspace(0, 40, int(4.0 * RATE))).astype(np.float32)
    stub = Stub()
    results = run(speech.Recognizer(stub, WORDS), x, include_spectrogram=True, overlap_factor=0.75)
    assert len(results) == len(stub.inputs) >= 10
    for r, seen in zip(results, stub.inputs):
        c = int(round((r.time * RATE - audio.FFT_SIZE) / HOP)) + 1
        start = (c - 43) * HOP
        segment = x[start:start + audio.CLIP_SAMPLES]
        raw = audio.spectrogram(segment, RATE, normalized=False)
        np.testing.assert_allclose(r.spectrogram.data, raw, atol=1e-4)
        np.testing.assert_allclose(seen, audio.spectrogram(segment, RATE), atol=1e-5)
        assert r.spectrogram.frame_size == 232


@contextlib.contextmanager
def frames_computed():
    """Count the dB frames the front end computes inside the block (a list of batch sizes)."""
    counted = []
    original = frontend._db_of_windows

    def counting(windows):
        counted.append(len(windows))
        return original(windows)

    frontend._db_of_windows = counting
    try:
        yield counted
    finally:
        frontend._db_of_windows = original


def test_one_frame_computed_once_per_hop():
    x = noise(3.0)
    with frames_computed() as counted:
        processor = speech.StreamProcessor(Stub().predict, WORDS, 43, speech.ListenOptions())
        for c in chunks(x):
            processor.push(c)
    assert sum(counted) == audio.num_frames(x.size)


def test_short_stream_is_flushed_and_heard():
    clip = noise(1.0)  # 44,100 samples: 42 frames, less than one window
    results = run(speech.Recognizer(Stub(), WORDS), clip)
    assert len(results) == 1 and results[0].time == pytest.approx(frame_end(44))


def test_other_sample_rates_are_resampled_while_streaming():
    x16 = noise(3.0, rate=16000, seed=5)
    stub16, stub44 = Stub(), Stub()
    r16 = run(speech.Recognizer(stub16, WORDS), x16, rate=16000)
    r44 = run(speech.Recognizer(stub44, WORDS), audio.resample(x16, 16000), rate=RATE)
    assert [r.time for r in r16] == pytest.approx([r.time for r in r44])
    for a, b in zip(stub16.inputs, stub44.inputs):
        np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.mark.parametrize("rates", [(16000, 44100), (48000, 44100), (8000, 44100), (44100, 16000), (22050, 44100)])
def test_stream_resampler_equals_resample_poly(rates):
    rng = np.random.default_rng(sum(rates))
    x = rng.standard_normal(12345)
    r = StreamResampler(*rates)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(0, 2500))
        parts.append(r.process(x[i:i + n]))
        i += n
    parts.append(r.flush())
    y = np.concatenate(parts)
    np.testing.assert_allclose(y, resample_poly(x, r.up, r.down), atol=1e-6)
    assert r._buf.size < 100  # only the filter's reach is kept


def test_empty_chunks_int16_and_bytes_give_the_same_results():
    x = noise(3.0, seed=2)
    pcm = np.round(x * 32767).astype(np.int16)
    base = run(speech.Recognizer(Stub(), WORDS), pcm.astype(np.float32) / 32768, include_spectrogram=True)
    mixed = []
    for i, c in enumerate(chunks(pcm)):
        mixed += [np.zeros(0, np.float32), b""] + [c if i % 2 else c.tobytes()]
    got = []
    rec = speech.Recognizer(Stub(), WORDS)
    rec.listen(got.append, source=speech.ChunkSource(mixed, RATE), include_spectrogram=True)
    assert rec.wait(10)
    assert [r.time for r in got] == [r.time for r in base]
    for a, b in zip(got, base):
        np.testing.assert_array_equal(a.spectrogram.data, b.spectrogram.data)
    assert to_float_chunk(np.array([[0, 32767], [-32768, 0]], np.int16)).shape == (2,)
    with pytest.raises(AudioError, match="NaN"):
        to_float_chunk(np.array([0.0, np.nan]))
    with pytest.raises(AudioError, match="whole number"):
        to_float_chunk(b"\x00\x01\x02")


def test_bounded_memory_on_a_long_stream():
    seconds = 180

    def endless():
        rng = np.random.default_rng(0)
        for _ in range(seconds * 10):
            yield (rng.standard_normal(1600) * 1000).astype(np.int16)  # 16 kHz int16, 0.1 s a chunk

    row = np.array([[0.05, 0.05, 0.1, 0.8]], np.float32)
    processor = speech.StreamProcessor(lambda x: np.repeat(row, len(x), axis=0), WORDS, 43,
                                       speech.ListenOptions(), 16000)
    tracemalloc.start()
    try:
        for chunk in endless():
            processor.push(chunk)
            assert len(processor.history) <= 42
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert processor.time == pytest.approx(seconds)
    assert peak < 8e6, peak  # 3 minutes at 44.1 kHz would be 32 MB of float32
    assert processor.frontend.extractor._buffer.size < audio.FFT_SIZE and processor.frontend.resampler._buf.size < 100


# -- threads, stopping, errors ----------------------------------------------------------------------------

def test_stop_listening_is_prompt_when_the_source_blocks():
    release = threading.Event()
    called = []

    def blocking():
        yield noise(1.2)
        release.wait()  # blocks until the end of the test
        yield noise(0.1)

    rec = speech.Recognizer(Stub(), WORDS)
    rec.listen(called.append, source=speech.ChunkSource(blocking(), RATE))
    deadline = time.monotonic() + 5
    while not called and time.monotonic() < deadline:
        time.sleep(0.01)
    assert called and rec.is_listening()
    t = time.monotonic()
    rec.stop_listening()
    assert time.monotonic() - t <= 0.5
    assert not rec.is_listening()
    assert rec.wait(timeout=1)
    n = len(called)
    release.set()
    time.sleep(0.2)
    assert len(called) == n
    with pytest.raises(RuntimeError, match="not ongoing"):
        speech.Recognizer(Stub(), WORDS).stop_listening()


def test_callback_runs_off_the_reader_thread():
    threads = {}

    def source():
        threads["reader"] = threading.current_thread()
        yield noise(2.0)

    rec = speech.Recognizer(Stub(), WORDS)
    rec.listen(lambda r: threads.setdefault("callback", threading.current_thread()),
               source=speech.ChunkSource(source(), RATE))
    assert rec.wait(10)
    assert threads["callback"] is not threads["reader"]
    assert threading.main_thread() not in (threads["callback"], threads["reader"])


def test_a_source_raising_mid_stream_ends_cleanly_and_wait_reraises():
    def broken():
        yield noise(2.0)
        raise ConnectionResetError("the peer went away")

    rec = speech.Recognizer(Stub(), WORDS)
    got = []
    rec.listen(got.append, source=speech.ChunkSource(broken(), RATE))
    with pytest.raises(ConnectionResetError, match="peer went away"):
        rec.wait(timeout=10)
    assert got and not rec.is_listening()
    assert rec.wait(timeout=1)  # reported once
    errors = []
    rec.listen(got.append, source=speech.ChunkSource(broken(), RATE), on_error=errors.append)
    assert rec.wait(timeout=10) and isinstance(errors[0], ConnectionResetError)
    session = rec._session
    session.reader.join(1)
    assert not session.worker.is_alive() and not session.reader.is_alive()


def test_bad_chunks_and_callback_errors_end_listening():
    rec = speech.Recognizer(Stub(), WORDS)
    rec.listen(lambda r: None, source=speech.ChunkSource([noise(0.5), np.array([np.inf])], RATE))
    with pytest.raises(AudioError, match="NaN or infinite"):
        rec.wait(10)

    def boom(result):
        raise KeyError("in the callback")

    rec.listen(boom, source=speech.ChunkSource([noise(3.0)], RATE))
    with pytest.raises(KeyError):
        rec.wait(10)


def test_listen_twice_options_and_context_manager():
    rec = speech.Recognizer(Stub(), WORDS)
    endless = speech.PushSource(RATE)
    with rec.listen(lambda r: None, source=endless):
        assert rec.is_listening()
        with pytest.raises(RuntimeError, match="ongoing"):
            rec.listen(lambda r: None, source=speech.PushSource(RATE))
    assert not rec.is_listening()
    for bad in ({"probability_threshold": 1.5}, {"overlap_factor": 1.0}, {"overlap_factor": -0.1},
                {"suppression_time_millis": -1}):
        with pytest.raises(ValueError):
            rec.listen(lambda r: None, source=speech.PushSource(RATE), **bad)
    with pytest.raises(TypeError, match="ChunkSource"):
        rec.listen(lambda r: None, source=[noise(1.0)])
    with pytest.raises(AudioError, match="sample_rate"):
        speech.ChunkSource([], 100)


def test_push_source_feeds_a_stream_from_another_thread():
    rec = speech.Recognizer(Stub(), WORDS)
    src = speech.PushSource(16000)
    got = []
    rec.listen(got.append, source=src)
    x = noise(3.0, rate=16000)
    for c in chunks(x):
        src.push(np.round(c * 32767).astype(np.int16).tobytes())
    src.end()
    assert rec.wait(10) and len(got) == len(run(speech.Recognizer(Stub(), WORDS), x, rate=16000))


def test_wav_file_source_fast_and_realtime(tmp_path):
    path = tmp_path / "a.wav"
    x = noise(1.5, rate=22050)
    sf.write(path, np.stack([x, x], axis=1), 22050, subtype="PCM_16")
    src = speech.WavFileSource(path)
    assert src.sample_rate == 22050 and src.duration == pytest.approx(1.5)
    assert sum(c.size for c in src) == x.size
    t = time.monotonic()
    rec = speech.Recognizer(Stub(), WORDS)
    got = []
    rec.listen(got.append, source=speech.WavFileSource(path, realtime=True))
    time.sleep(0.3)
    assert rec.is_listening()
    rec.wait(5)
    assert time.monotonic() - t >= 1.4 and len(got) == 2
    rec.listen(got.append, source=speech.WavFileSource(path, realtime=True))
    t = time.monotonic()
    rec.stop_listening()
    assert time.monotonic() - t < 0.5
    with pytest.raises(AudioError, match="no such file"):
        speech.WavFileSource(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioError, match="bad.wav"):
        speech.WavFileSource(tmp_path / "bad.wav")


def test_microphone_errors_and_a_fake_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    with pytest.raises(AudioError, match="pip install"):
        speech.MicrophoneSource()

    fake = types.ModuleType("sounddevice")

    def no_device(device=None, kind=None):
        raise ValueError("No input device matching ''")

    fake.query_devices = no_device
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    with pytest.raises(AudioError, match="no audio input device"):
        speech.MicrophoneSource()

    class Stream:
        def __init__(self, callback, samplerate, blocksize, **kw):
            self.callback, self.blocksize, self.running = callback, blocksize, False

        def start(self):
            self.running = True

            def feed():
                while self.running:
                    self.callback(np.full((self.blocksize, 1), 0.01, np.float32), self.blocksize, None, None)
                    time.sleep(0.002)
            threading.Thread(target=feed, daemon=True).start()

        def stop(self):
            self.running = False

        def close(self):
            pass

    fake.query_devices = lambda device=None, kind=None: {"max_input_channels": 1, "default_samplerate": 48000.0}

    def check(samplerate=None, **kw):
        if samplerate != 48000:
            raise ValueError("Invalid sample rate")

    fake.check_input_settings = check
    fake.InputStream = Stream
    mic = speech.MicrophoneSource()
    assert mic.sample_rate == 48000  # the device's rate; the recognizer resamples
    rec = speech.Recognizer(Stub(), WORDS)
    got = []
    rec.listen(got.append, source=mic)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    rec.stop_listening()
    assert got and got[0].word == "yes"


# -- models on disk ------------------------------------------------------------------------------------------

def save_tiny_model(path, classes: int, words=None):
    import sightsound
    from sightsound.engine import layers

    model = sightsound.sequential(device="cpu")
    model.add(layers.max_pooling2d(pool_size=[43, 8], input_shape=[43, 232, 1]))
    model.add(layers.flatten())
    model.add(layers.dense(units=classes, activation="softmax"))
    model.save(str(path))
    if words is not None:
        (path / "metadata.json").write_text(json.dumps({"words": words, "frameSize": 232}))
    return path


def test_models_without_metadata_or_with_the_wrong_output_size(tmp_path):
    with pytest.raises(ModelFormatError, match="metadata.json"):
        speech.create("BROWSER_FFT", model=save_tiny_model(tmp_path / "nometa", 4), device="cpu")
    with pytest.raises(ModelFormatError, match=r"output shape \[3\].*\(4\)"):
        speech.create("BROWSER_FFT", model=save_tiny_model(tmp_path / "wrong", 3, WORDS), device="cpu")
    (tmp_path / "wrong" / "metadata.json").write_text('{"frameSize": 232}')
    with pytest.raises(ModelFormatError, match='"words"'):
        speech.create("BROWSER_FFT", model=tmp_path / "wrong", device="cpu")
    ok = speech.create("BROWSER_FFT", model=str(save_tiny_model(tmp_path / "ok", 4, WORDS) / "model.json"),
                       device="cpu")
    assert ok.word_labels() == WORDS and ok.model_input_shape() == [None, 43, 232, 1]
    assert ok.params()["sampleRateHz"] == 44100 and ok.params()["fftSize"] == 1024
    assert ok.params()["spectrogramDurationMillis"] == pytest.approx(43 * 1024 / 44100 * 1000)
    with pytest.raises(ModelFormatError, match="no speech model at"):
        speech.create("BROWSER_FFT", model=tmp_path / "absent")
    with pytest.raises(ValueError, match="Invalid fftType"):
        speech.create("FFT", model=tmp_path / "ok")
    with pytest.raises(ValueError, match="SOFT_FFT"):
        speech.create("SOFT_FFT")


def test_model_and_metadata_over_http(tmp_path):
    import functools
    import http.server

    save_tiny_model(tmp_path / "served", 4, WORDS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        rec = speech.create("BROWSER_FFT", model=f"{base}/served/model.json", device="cpu")
        assert rec.word_labels() == WORDS
        save_tiny_model(tmp_path / "bare", 4)
        with pytest.raises(ModelFormatError, match="404"):
            speech.create("BROWSER_FFT", model=f"{base}/bare/model.json", device="cpu")
        rec = speech.create("BROWSER_FFT", model=f"{base}/bare/model.json", metadata={"words": WORDS}, device="cpu")
        assert rec.recognize(noise(1.0)).word in WORDS
    finally:
        server.shutdown()


def test_recognize_samples_spectrograms_and_batches():
    stub = Stub([[0.1, 0.1, 0.7, 0.1]])
    rec = speech.Recognizer(stub, WORDS)
    clip = noise(1.0, rate=16000)
    one = rec.recognize(clip, 16000, include_spectrogram=True)
    assert one.word == "no" and one.time is None and one.spectrogram.data.shape == (43, 232, 1)
    np.testing.assert_allclose(stub.inputs[-1], audio.spectrogram(clip, 16000))
    spec = audio.spectrogram(clip, 16000)
    assert rec.recognize(spec).word == "no" and rec.recognize(spec[:, :, 0]).word == "no"
    batch = rec.recognize(np.stack([spec, spec, spec]))
    assert [r.word for r in batch] == ["no"] * 3
    with pytest.raises(ShapeError, match="got shape"):
        rec.recognize(np.zeros((43, 100)))


def test_recognize_clip_scans_long_clips_through_recognize():
    """One recognize path: recognize_clip batches 43-frame windows 22 frames apart through recognize()."""
    stub = Stub([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6], [0.1, 0.1, 0.5, 0.3]])
    rec = speech.Recognizer(stub, WORDS)
    long = noise(3.0, rate=16000)
    clip = rec.recognize_clip(long, 16000, path="long.wav")
    specs = audio.spectrograms(long, 16000, hop_frames=22)
    assert clip.windows == len(specs) == len(stub.inputs) and clip.window == 1  # noise-only window 0 passed over
    np.testing.assert_array_equal(np.stack(stub.inputs), specs)
    assert [w for w, _ in clip.top] == ["yes", "no", "_background_noise_"]
    assert [p for _, p in clip.top] == pytest.approx([0.6, 0.2, 0.1])
    assert clip.line().startswith("long.wav\tyes\t0.6000\tno:0.2000\t")
    short = noise(1.0, rate=16000)
    first = speech.Recognizer(Stub([[0.1, 0.1, 0.7, 0.1]]), WORDS)
    assert first.recognize_clip(short, 16000).top[0] == ("no", pytest.approx(0.7))
    assert first.recognize_clip(short, 16000).windows == 1
    np.testing.assert_array_equal(first.model.inputs[0], audio.spectrogram(short, 16000))
    from sightsound.training.speech import recognize_samples

    again = recognize_samples(Stub(stub.rows), WORDS, long, 16000, path="long.wav")
    assert again == clip


def test_listen_hands_on_the_frames_it_computes_once():
    """on_frames gets the recognizer's own frames (what the Speech page draws), each computed once."""
    x = noise(2.0, rate=16000)
    seen = []
    with frames_computed() as counted:
        run(speech.Recognizer(Stub(), WORDS), x, rate=16000, on_frames=seen.append)
    fe = frontend.StreamFrontend(16000)
    expected = np.concatenate([fe.push(c) for c in chunks(x)])
    np.testing.assert_array_equal(np.concatenate(seen), expected)
    tail = len(fe.flush()) + len(fe.silence(HOP))
    assert sum(counted) >= len(expected) + tail and sum(counted) <= len(expected) + tail + 43  # + end padding


# -- a trained model (small espeak-ng corpus) -------------------------------------------------------------

@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    from sightsound.data import synth

    require_espeak()
    from sightsound.training.speech import train_speech

    root = tmp_path_factory.mktemp("speech-stream")
    synth.build_corpus(root / "corpus", size="small", seed=0, workers=2)
    train_speech(root / "corpus", root / "model", epochs=2, batch_size=32, device="cpu", seed=0,
                 cache_dir=root / "cache", augmentation=None)
    return root


def long_recording(corpus, path, words=("yes", "no", "stop")):
    parts, rate = [], 16000
    for w in words:
        clip, rate = audio.read_wav(sorted((corpus / w).glob("*.wav"))[0])
        parts += [np.zeros(rate // 2, np.float32), clip]
    sf.write(path, np.concatenate(parts + [np.zeros(rate // 2, np.float32)]), rate, subtype="PCM_16")
    return path


def test_trained_model_streams_a_file_like_recognize(trained_model, tmp_path):
    rec = speech.create("BROWSER_FFT", model=trained_model / "model", device="cpu")
    words = json.loads((trained_model / "model" / "metadata.json").read_text())["words"]
    assert rec.word_labels() == words and len(words) == 20
    wav = long_recording(trained_model / "corpus", tmp_path / "long.wav")
    got = []
    rec.listen(got.append, source=speech.WavFileSource(wav), invoke_callback_on_noise_and_unknown=True,
               include_spectrogram=True)
    assert rec.wait(30)
    x, rate = audio.read_wav(wav)
    x44 = audio.resample(x, rate)
    last = -(-(audio.num_frames(x44.size + HOP)) // 22) * 22  # the flush runs once more after the audio
    assert [counter_of(r) for r in got] == list(range(44, last + 1, 22))
    for r in got:
        np.testing.assert_allclose(r.scores.sum(), 1.0, atol=1e-4)
        c = int(round((r.time * RATE - audio.FFT_SIZE) / HOP)) + 1
        segment = x44[(c - 43) * HOP:(c - 43) * HOP + audio.CLIP_SAMPLES]
        np.testing.assert_allclose(r.scores, rec.recognize(segment).scores, atol=2e-3)


def test_listen_cli_prints_time_word_prob(trained_model, tmp_path, capsys):
    import argparse

    from sightsound.cli.speech_listen import add_listen_command

    parser = argparse.ArgumentParser()
    add_listen_command(parser.add_subparsers())
    wav = long_recording(trained_model / "corpus", tmp_path / "long.wav")
    args = parser.parse_args(["listen", "--model", str(trained_model / "model"), "--file", str(wav),
                              "--threshold", "0", "--device", "cpu"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all(re.fullmatch(r"\d+\.\d{3}\t\w+\t[01]\.\d{3}", line) for line in lines), lines
    for bad in (["--threshold", "2"], ["--overlap", "1"], ["--mic", "--file", str(wav)], []):
        with pytest.raises(SystemExit):
            parser.parse_args(["listen", "--model", "m"] + bad)
