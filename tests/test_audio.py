"""sightsound.audio: WAV reading, resampling and the browser-FFT spectrogram."""

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from sightsound import audio
from sightsound.errors import AudioError

RATE = 44100


def web_audio_frames(x: np.ndarray, ends) -> np.ndarray:
    """An independent reading of the Web Audio AnalyserNode (fftSize 2048, smoothing 0):
    for each frame end t, the direct DFT sum of x[t-2048:t] * Blackman, |X|/N, in dB."""
    n = np.arange(2048)
    window = 0.42 - 0.5 * np.cos(2 * np.pi * n / 2048) + 0.08 * np.cos(4 * np.pi * n / 2048)
    k = np.arange(232)[:, None]
    basis = np.exp(-2j * np.pi * k * n[None, :] / 2048)  # direct DFT, no FFT
    out = []
    for t in ends:
        spectrum = basis @ (x[t - 2048:t] * window)
        out.append(20 * np.log10(np.abs(spectrum) / 2048))
    return np.array(out)


def tone(freq, seconds=1.1, rate=RATE, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def wav_bytes(x, rate, subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


# -- the spectrogram against the Web Audio formula -------------------------------------------

def test_constants():
    assert audio.CLIP_SAMPLES == 45056
    assert audio.SPECTROGRAM_SHAPE == (43, 232, 1)
    assert audio.BIN_HZ == pytest.approx(21.533, abs=1e-3)
    assert audio.num_frames(45056) == 43 and audio.num_frames(45055) == 42


def test_frames_match_independent_web_audio_computation():
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal(audio.CLIP_SAMPLES) + tone(700, 45056 / RATE) + tone(3100, 45056 / RATE, amp=0.1)
    ours = audio.spectrogram(x, RATE, normalized=False)[..., 0]
    ends = [2048 + 1024 * i for i in range(43)]
    reference = web_audio_frames(x, ends)
    assert ours.shape == (43, 232)
    np.testing.assert_allclose(ours, reference, atol=2e-3)  # float32 output, dB scale
    expected = (reference - reference.mean()) / (reference.std() + 1e-7)
    np.testing.assert_allclose(audio.spectrogram(x, RATE)[..., 0], expected, atol=1e-4)


def test_normalized_spectrogram_statistics():
    spec = audio.spectrogram(tone(440), RATE)
    assert spec.dtype == np.float32 and spec.shape == (43, 232, 1)
    assert abs(float(spec.mean())) < 1e-5 and float(spec.std()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 2000.0, 4000.0])
def test_pure_tone_peaks_at_its_bin(freq):
    db = audio.spectrogram(tone(freq), RATE, normalized=False)[..., 0]
    peaks = db.argmax(axis=1)
    assert set(peaks.tolist()) == {round(freq / (RATE / 2048))}
    assert audio.bin_frequencies()[peaks[0]] == pytest.approx(freq, abs=RATE / 2048 / 2)


def test_tone_at_16k_is_resampled_to_the_same_bin():
    db = audio.spectrogram(tone(1000, 1.0, 16000), 16000, normalized=False)[..., 0]
    assert int(np.median(db.argmax(axis=1))) == round(1000 / audio.BIN_HZ) == 46


def test_frame_timing_first_frame_is_samples_0_to_2047():
    # frame i covers samples 1024 i .. 1024 i + 2047 (the Blackman window is 0 at n = 0)
    x = np.zeros(audio.CLIP_SAMPLES)
    x[1900:2048] = 0.5  # ends at sample 2047: frames 0 and 1 only
    db = audio.frames(x)
    assert db.shape == (43, 232)
    assert (db[0] > audio.SILENCE_DB).all() and (db[1] > audio.SILENCE_DB).all()
    assert (db[2:] == audio.SILENCE_DB).all()
    x = np.zeros(audio.CLIP_SAMPLES)
    x[2048:2200] = 0.5  # starts at sample 2048: frames 1 and 2 only
    db = audio.frames(x)
    assert (db[0] == audio.SILENCE_DB).all() and (db[1] > audio.SILENCE_DB).all()
    assert (db[2] > audio.SILENCE_DB).all() and (db[3:] == audio.SILENCE_DB).all()
    x = np.zeros(audio.CLIP_SAMPLES)
    x[45000:] = 0.5  # only the last frame (44032..45055) sees it
    db = audio.frames(x)
    assert (db[:42] == audio.SILENCE_DB).all() and (db[42] > audio.SILENCE_DB).all()


def test_tone_onset_shows_in_the_right_frame():
    x = np.zeros(audio.CLIP_SAMPLES)
    onset = 2048 + 20 * 1024  # frame 20 ends here: frames up to 20 are silent
    x[onset:] = tone(1000, 1.1)[:audio.CLIP_SAMPLES - onset]
    db = audio.frames(x)
    assert (db[:21] == audio.SILENCE_DB).all()
    assert (db[21:, 46] > -30).all()  # a 0.5-amplitude tone: about -20 dB once the window is full


def test_silence_floor_and_constant_normalisation():
    spec = audio.spectrogram(np.zeros(1000), RATE, normalized=False)
    assert (spec == audio.SILENCE_DB).all()
    norm = audio.spectrogram(np.zeros(1000), RATE)
    assert np.isfinite(norm).all() and (norm == 0).all()
    assert (audio.silent_frames(np.zeros(4096)) == [True, True, True]).all()


def test_short_clips_are_padded_long_clips_cut():
    x = tone(500, 0.3)
    padded = np.concatenate([x, np.zeros(audio.CLIP_SAMPLES - len(x))])
    np.testing.assert_array_equal(audio.spectrogram(x, RATE), audio.spectrogram(padded, RATE))
    long = np.concatenate([padded, tone(2000, 2.0)])
    np.testing.assert_array_equal(audio.spectrogram(long, RATE), audio.spectrogram(padded, RATE))


def test_spectrograms_of_a_long_clip():
    x = np.concatenate([tone(500, 1.0), tone(1500, 1.0), tone(3000, 1.0)])
    specs = audio.spectrograms(x, RATE)
    assert specs.shape == (3, 43, 232, 1)
    np.testing.assert_array_equal(specs[0], audio.spectrogram(x, RATE))
    raw = audio.spectrograms(x, RATE, normalized=False)[..., 0]
    assert raw[1, 20].argmax() == round(1500 / audio.BIN_HZ)
    assert audio.spectrograms(x, RATE, hop_frames=22).shape[0] == 5
    assert audio.spectrograms(np.ones(100), RATE).shape == (1, 43, 232, 1)


def test_frame_extractor_matches_frames_in_any_chunking():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50000) * 0.1
    whole = audio.frames(x)
    fx = audio.FrameExtractor()
    parts, pos = [], 0
    while pos < len(x):
        step = int(rng.integers(1, 5000))
        parts.append(fx.push(x[pos:pos + step]))
        pos += step
    got = np.concatenate(parts)
    np.testing.assert_array_equal(got, whole)
    assert fx.frames_emitted == len(whole) and fx.frame_end == 2048 + 1024 * len(whole)


def test_frame_extractor_can_skip_silent_frames_like_tfjs():
    x = np.concatenate([np.zeros(6144), tone(800, 0.2)])
    kept = audio.FrameExtractor(skip_silent=True).push(x)
    allf = audio.frames(x)
    assert len(kept) == len(allf) - 5  # frames 0-4 see only zeros
    np.testing.assert_array_equal(kept, allf[5:])


def test_spectrogram_rejects_bad_arrays():
    with pytest.raises(AudioError, match="1-D"):
        audio.spectrogram(np.zeros((2, 100)), RATE)
    with pytest.raises(AudioError, match="NaN"):
        audio.spectrogram(np.array([0.0, np.nan]), RATE)
    with pytest.raises(AudioError, match="zero samples"):
        audio.spectrogram(np.zeros(0), RATE)
    with pytest.raises(AudioError, match="outside"):
        audio.spectrogram(np.zeros(10), 10)
    with pytest.raises(AudioError, match="whole number"):
        audio.spectrogram(np.zeros(10), 16000.5)


# -- resampling ----------------------------------------------------------------------------

def test_resample_lengths_and_frequency():
    y = audio.resample(tone(1000, 1.0, 16000), 16000)
    assert y.dtype == np.float32 and len(y) == 44100
    spectrum = np.abs(np.fft.rfft(y))
    assert np.fft.rfftfreq(len(y), 1 / 44100)[spectrum.argmax()] == pytest.approx(1000, abs=2)
    assert len(audio.resample(np.zeros(48000), 48000)) == 44100
    assert len(audio.resample(np.zeros(44099), 44099)) == 44099  # ratio approximated by 1/1
    np.testing.assert_array_equal(audio.resample(np.ones(5), RATE), np.ones(5, np.float32))


# -- reading WAVs ---------------------------------------------------------------------------

@pytest.mark.parametrize("subtype,tol", [("PCM_U8", 1 / 100), ("PCM_16", 1e-4), ("PCM_24", 1e-6),
                                         ("PCM_32", 1e-7), ("FLOAT", 1e-7), ("DOUBLE", 1e-7)])
def test_read_wav_bit_depths(subtype, tol):
    x = tone(440, 0.1, 16000, amp=0.8)
    samples, rate = audio.read_wav(wav_bytes(x, 16000, subtype))
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == x.shape
    np.testing.assert_allclose(samples, x, atol=tol)


@pytest.mark.parametrize("channels", [2, 6])
def test_read_wav_channels_average_to_mono(channels, tmp_path):
    base = tone(300, 0.05, 22050, amp=0.4)
    x = np.stack([base * (c + 1) / channels for c in range(channels)], axis=1)
    path = tmp_path / "multi.wav"
    sf.write(path, x, 22050, subtype="PCM_24")
    samples, rate = audio.read_wav(path)
    assert rate == 22050 and samples.ndim == 1
    np.testing.assert_allclose(samples, x.mean(axis=1), atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_read_wav_rates_then_spectrogram(rate):
    samples, got = audio.read_wav(wav_bytes(tone(1000, 1.0, rate), rate))
    assert got == rate
    db = audio.spectrogram(samples, got, normalized=False)[..., 0]
    assert int(np.median(db.argmax(axis=1))) == 46


def test_read_wav_errors(tmp_path):
    good = wav_bytes(np.zeros(100), 16000)
    with pytest.raises(AudioError, match="no such file"):
        audio.read_wav(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all")
    with pytest.raises(AudioError, match="not a WAV"):
        audio.read_wav(text)
    flac = io.BytesIO()
    sf.write(flac, np.zeros(100), 16000, format="FLAC")
    with pytest.raises(AudioError, match="not a WAV"):
        audio.read_wav(flac.getvalue())
    with pytest.raises(AudioError, match="truncated"):
        audio.read_wav(good[:8])
    with pytest.raises(AudioError, match="header"):
        audio.read_wav(good[:20])
    with pytest.raises(AudioError, match="no samples"):
        audio.read_wav(good[:44])
    with pytest.raises(AudioError, match="NaN or infinite"):
        audio.read_wav(wav_bytes(np.array([0.0, np.nan, 0.1]), 16000, "FLOAT"))
    with pytest.raises(AudioError, match="NaN or infinite"):
        audio.read_wav(wav_bytes(np.array([0.0, np.inf]), 16000, "DOUBLE"))
    for bad_rate in (3, 10_000_000):
        patched = good[:24] + struct.pack("<I", bad_rate) + good[28:]
        with pytest.raises(AudioError, match="sample rate"):
            audio.read_wav(patched)
    with pytest.raises(AudioError, match="cap"):
        audio.read_wav(good, max_samples=50)
    # a data chunk cut short is read up to the end of the file
    samples, _ = audio.read_wav(good[:44 + 20])
    assert len(samples) == 10
    with pytest.raises(TypeError):
        audio.read_wav(12345)


def test_read_wav_error_names_the_file(tmp_path):
    path = tmp_path / "named.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioError, match="named.wav"):
        audio.read_wav(path)


def test_write_then_read_roundtrip(tmp_path):
    x = tone(200, 0.2, 16000, amp=0.3)
    samples, rate = audio.read_wav(audio.write_wav(tmp_path / "a.wav", x, 16000))
    np.testing.assert_allclose(samples, x, atol=1e-4)


# -- plotting -------------------------------------------------------------------------------

def test_plot_spectrogram_writes_png(tmp_path):
    out = audio.plot_spectrogram(tone(1000, 1.0, 16000), 16000, tmp_path / "s.png", title="tone")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_wav_path_that_is_not_utf8(tmp_path):
    """Found by fuzzing Speech Commands folders: soundfile could not encode such a name, so a valid clip
    was refused as "unreadable"."""
    import os
    from pathlib import Path

    path = Path(os.fsdecode(bytes(tmp_path) + b"/\xff_nohash_0.wav"))
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800), 16000, subtype="PCM_16", format="WAV")
    path.write_bytes(buffer.getvalue())
    samples, rate = audio.read_wav(path)
    assert rate == 16000 and samples.shape == (800,)
