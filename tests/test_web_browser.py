"""The web demos in a real browser: Debian's Chromium, headless, driven by Playwright (Python).

A session fixture trains Listing 4.1 briefly on real MNIST, starts
``sightsound serve`` on a free 127.0.0.1 port in a subprocess, and every test
drives the pages like a user. Screenshots go to ``runs/screenshots/`` (kept as
CI artifacts, not committed). Chromium missing is a failure with install
instructions, not a skip.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require_espeak
from web_helpers import BROWSER_MODEL, CHROMIUM_ARGS, REPO, serve

SCREENSHOTS = REPO / "runs" / "screenshots"
MODEL = BROWSER_MODEL
TIMEOUT_MS = 30_000


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def server(browser_models):
    """``sightsound serve --port 0`` (a free port) in a subprocess; yields its base URL."""
    with serve(browser_models) as url:
        yield url


@pytest.fixture()
def page(browser, request):
    """A fresh tab; its JavaScript errors fail the test; a screenshot is saved at the end."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    try:
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def draw_stroke(page, points: list[tuple[float, float]]) -> None:
    """Press, move through ``points`` (pad pixels, 280x280) and release, like a mouse user."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    at = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=15)
    page.mouse.up()


def expect_top_label(page, label: str, source: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#prediction")).to_have_attribute("data-source", source)
    expect(page.locator("#top-label")).to_have_text(label)


# --------------------------------------------------------------------------- tests

def test_draw_seven_and_one(server, page):
    from playwright.sync_api import expect

    page.goto(server + f"draw?model={MODEL}")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#model")).to_have_value(MODEL)
    draw_stroke(page, [(70, 60), (210, 60), (120, 235)])  # a "7": top bar, then the diagonal
    expect_top_label(page, "7", "drawing")
    expect(page.locator("#top3-list li")).to_have_count(3)
    page.screenshot(path=str(SCREENSHOTS.joinpath("draw-7.png")))
    page.click("#clear")
    expect(page.locator("#top-label")).to_have_text("")
    draw_stroke(page, [(150, 45), (135, 240)])  # a "1": one slightly slanted stroke
    expect_top_label(page, "1", "drawing")


def test_upload_png_digit(server, page, real_mnist, browser_models, tmp_path):
    from PIL import Image

    from sightsound import load_layers_model
    from sightsound.image import model_input

    model = load_layers_model(str(browser_models / MODEL), device="cpu")
    images, labels = real_mnist.test_images, real_mnist.test_labels
    for index in np.flatnonzero(labels == 3)[:50]:
        # Dark ink on white paper at 4x size: the upload path has to invert, crop and scale it.
        png = io.BytesIO()
        Image.fromarray(255 - images[index]).resize((112, 112), Image.Resampling.BILINEAR).save(png, "PNG")
        probs = model.predict(model_input(png.getvalue())[None])[0]
        if probs.argmax() == 3:
            break
    else:
        pytest.fail("the fixture model recognises none of the first 50 test 3s")
    path = tmp_path / "three.png"
    path.write_bytes(png.getvalue())
    page.goto(server + f"draw?model={MODEL}")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#upload", str(path))
    expect_top_label(page, "3", "upload")


def test_train_page_tiny_run(server, page):
    from playwright.sync_api import expect

    page.goto(server + "train")
    page.select_option("#model", "conv")
    page.fill("#epochs", "2")
    page.fill("#batch-size", "64")
    page.fill("#train-limit", "3000")
    page.fill("#test-limit", "500")
    page.fill("#name", "tiny-browser-run")
    # Record every value the loss chart's point count takes, to see it grow while training runs.
    page.evaluate("""() => {
        const chart = document.getElementById('loss-chart');
        window.pointsSeen = [];
        new MutationObserver(() => window.pointsSeen.push(Number(chart.dataset.points)))
            .observe(chart, { attributes: true, attributeFilter: ['data-points'] });
    }""")
    page.click("#start")
    expect(page.locator("#stop")).to_be_enabled()
    expect(page.locator("#final-eval")).to_contain_text("Accuracy =", timeout=120_000)
    accuracy = float(re.search(r"Accuracy = ([0-9.]+)", page.locator("#final-eval").inner_text()).group(1))
    assert accuracy > 0.6
    expect(page.locator("#progress-text")).to_have_text("100%")
    assert page.evaluate("document.getElementById('progress-bar').style.width") == "100%"
    seen = page.evaluate("window.pointsSeen")
    per_epoch = -(-int(3000 * 0.85) // 64)
    assert seen[-1] == 2 * per_epoch + 2, seen  # training per batch + validation per epoch
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"the chart did not grow step by step: {seen}"
    assert page.evaluate("Number(document.getElementById('acc-chart').dataset.points)") == 2 * per_epoch + 2
    expect(page.locator("#start")).to_be_enabled()
    expect(page.locator("#result-links a").first).to_have_attribute("href", "/test?model=tiny-browser-run")


def test_test_results_grid_highlights_wrong_ones(server, page):
    from playwright.sync_api import expect

    page.goto(server + f"test?model={MODEL}")
    expect(page.locator(".cell")).to_have_count(100)
    summary = page.locator("#summary").inner_text()
    wrong = int(re.search(r"(\d+) wrong of 100", summary).group(1))
    expect(page.locator(".cell.wrong")).to_have_count(wrong)
    assert wrong < 15


def test_saved_model_loads_in_tfjs(server, page, real_mnist):
    """``/models/NAME/model.json`` is a real TF.js model: tf.loadLayersModel predicts what the server does."""
    page.goto(server + "test")
    page.add_script_tag(url="/vendor/tf.min.js")
    pixels = real_mnist.test_images[:4].astype(np.float32).ravel() / 255.0
    browser_probs = page.evaluate("""async ({url, pixels}) => {
        const model = await tf.loadLayersModel(url);
        const out = model.predict(tf.tensor4d(pixels, [4, 28, 28, 1]));
        return Array.from(await out.data());
    }""", {"url": f"/models/{MODEL}/model.json", "pixels": pixels.tolist()})
    from sightsound import load_layers_model

    model = load_layers_model(server + f"models/{MODEL}/model.json", device="cpu")
    expected = model.predict(pixels.reshape(4, 28, 28, 1)).ravel()
    assert np.abs(np.asarray(browser_probs) - expected).max() < 1e-4


def test_webcam_frames_reach_the_predictor(server, browser, chromium, request):
    """With Chromium's fake camera, "Start webcam" sends a frame every N ms through /api/predict."""
    from playwright.sync_api import expect

    camera = browser.browser_type.launch(
        executable_path=chromium, headless=True,
        args=CHROMIUM_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
    try:
        context = camera.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        predictions = []
        tab.on("response", lambda r: predictions.append(r.status) if r.url.endswith("/api/predict") else None)
        tab.goto(server + f"draw?model={MODEL}")
        tab.wait_for_selector("body[data-ready='1']")
        tab.fill("#interval", "300")
        tab.click("#camera-toggle")
        expect(tab.locator("#camera")).to_be_visible()
        expect(tab.locator("#prediction")).to_have_attribute("data-source", "webcam")
        deadline = time.monotonic() + 30
        while len(predictions) < 2 and time.monotonic() < deadline:
            tab.wait_for_timeout(100)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        tab.click("#camera-toggle")
        expect(tab.locator("#camera")).to_be_hidden()
        assert len(predictions) >= 2 and set(predictions) <= {200, 422}, predictions  # a label or "no digit"
    finally:
        camera.close()


# --------------------------------------------------------------------------- speech

SPEECH_MODEL = "speech-browser"
SPEECH_WORDS = ["_background_noise_", "_unknown_", "no", "yes"]
SPEECH_VOICES = [("gmw/en-US", 50, 175), ("gmw/en", 40, 160), ("gmw/en-GB-x-rp", 60, 190),
                 ("gmw/en-US+m3", 45, 150)]
SPEECH_EPOCHS = 12
OTHER_WORDS = ["up", "down", "go", "stop", "left", "right", "bird", "seven"]


def _window(rng, utterance=None, offset: float = 0.0):
    """One model window (45,056 samples at 44.1 kHz): a faint noise floor, the utterance at ``offset`` s."""
    from sightsound import audio
    from sightsound.data import synth

    window = synth.colored_noise(audio.CLIP_SAMPLES, rng.choice(["white", "pink", "brown"]), rng)
    window *= 10 ** rng.uniform(-3.5, -2.0)
    if utterance is not None:
        start = min(int(offset * audio.SAMPLE_RATE), audio.CLIP_SAMPLES - len(utterance))
        window[start:start + len(utterance)] += utterance * 10 ** rng.uniform(-0.3, 0.0)
    return window


def _speak(word: str, voice: str, pitch: int, rate: int):
    from sightsound import audio
    from sightsound.data import synth

    samples = audio.resample(synth.speak(word, voice, pitch=pitch, rate=rate), synth.RATE, audio.SAMPLE_RATE)
    peak = float(np.abs(samples).max()) or 1.0
    return (0.5 * samples / peak)[:int(0.9 * audio.SAMPLE_RATE)]


def train_tiny_speech_model(folder: Path) -> Path:
    """A small convnet for ``yes`` / ``no`` / unknown / noise, trained on espeak-ng clips made here (seconds).

    The Speech page test checks the browser-to-recognizer plumbing, so the model only has to know these
    voices well; the chapter's Listing 4.8 on the full corpus is the benchmarks' business.
    """
    from sightsound import audio, set_seed
    from sightsound.engine import layers as L
    from sightsound.engine.sequential import Sequential

    rng = np.random.default_rng(0)
    examples, labels = [], []
    for label, word in ((2, "no"), (3, "yes")):
        for voice, pitch, rate in SPEECH_VOICES:
            utterance = _speak(word, voice, pitch, rate)
            for offset in np.linspace(0.0, 0.5, 6):
                examples.append(_window(rng, utterance, offset))
                labels.append(label)
    for i, word in enumerate(OTHER_WORDS):
        voice, pitch, rate = SPEECH_VOICES[i % len(SPEECH_VOICES)]
        utterance = _speak(word, voice, pitch, rate)
        for offset in (0.05, 0.3, 0.5):
            examples.append(_window(rng, utterance, offset))
            labels.append(1)
    for _ in range(30):
        noise = _window(rng)
        noise *= 10 ** rng.uniform(0, 2.5)  # from a faint floor up to loud noise
        examples.append(np.clip(noise, -1, 1))
        labels.append(0)
    x = np.stack([audio.spectrogram(e, audio.SAMPLE_RATE) for e in examples])
    y = np.eye(len(SPEECH_WORDS), dtype=np.float32)[labels]
    set_seed(0)  # the same weights every run: an unlucky start sometimes learned to hear nothing
    model = Sequential([  # small and quick to train: the test is about the page, not the model
        L.average_pooling2d(input_shape=[43, 232, 1], pool_size=[2, 4]),
        L.flatten(),
        L.dense(units=32, activation="relu"),
        L.dense(units=len(SPEECH_WORDS), activation="softmax"),
    ], device="cpu")
    model.compile(optimizer="adam", loss="categoricalCrossentropy", metrics=["accuracy"], learning_rate=0.003)
    model.fit(x, y, batch_size=32, epochs=SPEECH_EPOCHS)
    out = folder / SPEECH_MODEL
    model.save(str(out))
    (out / "metadata.json").write_text(json.dumps({"words": SPEECH_WORDS, "frameSize": 232}))
    return out


@pytest.fixture(scope="session")
def speech_setup(browser_models, tmp_path_factory):
    """(model folder, WAV of "yes"); espeak-ng missing is a failure."""
    from sightsound import audio, speech

    require_espeak(skip_outside_ci=False)
    model_dir = train_tiny_speech_model(browser_models)
    rng = np.random.default_rng(1)
    voice, pitch, rate = SPEECH_VOICES[0]
    clip = np.concatenate([_window(rng)[:int(0.6 * audio.SAMPLE_RATE)], _window(rng, _speak("yes", voice, pitch, rate), 0.0),
                           _window(rng)[:int(0.4 * audio.SAMPLE_RATE)]])
    wav = audio.write_wav(tmp_path_factory.mktemp("speech") / "yes.wav", clip, audio.SAMPLE_RATE)
    heard = []
    recognizer = speech.create("BROWSER_FFT", model=str(model_dir), device="cpu")
    recognizer.listen(lambda result: heard.append(result.word), probability_threshold=0.75, source=str(wav))
    recognizer.wait(30)
    assert heard and set(heard) == {"yes"}, f"the test model hears {heard} in yes.wav (offline)"
    return model_dir, wav


def test_speech_page(server, page):
    """The recognizer is part of sightsound (a plain import, not optional): the page shows its controls."""
    from playwright.sync_api import expect

    page.goto(server + "speech")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#speech-ui")).to_be_visible()


def test_speech_page_hears_a_word_from_a_fake_microphone(server, browser, chromium, speech_setup, request):
    """Chromium's fake microphone plays yes.wav (espeak-ng) in a loop; the page must show "yes" and a live
    spectrogram, keep the focus on a button when Start disables itself, list what it heard oldest first
    numbered from 1, and read the live view back without Chrome's slow-readback warning."""
    from playwright.sync_api import expect

    _, wav = speech_setup
    microphone = browser.browser_type.launch(
        executable_path=chromium, headless=True,
        args=CHROMIUM_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                              f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"])
    try:
        context = microphone.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on("console", lambda message: errors.append(message.text) if "willReadFrequently" in message.text
               else None)
        tab.goto(server + f"speech?model={SPEECH_MODEL}")
        tab.wait_for_selector("body[data-ready='1']")
        expect(tab.locator("#model")).to_have_value(SPEECH_MODEL)
        tab.click("#listen")
        expect(tab.locator("#stop")).to_be_focused()
        expect(tab.locator("#words span")).to_have_text(["no", "yes"])  # noise and unknown are no words
        expect(tab.locator("#status")).to_contain_text("Listening with")
        try:
            expect(tab.locator("#word")).to_have_text("yes", timeout=45_000)
            tab.wait_for_function("Number(document.getElementById('spectrogram').dataset.columns) > 43")
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        expect(tab.locator("#words span.hit")).to_have_text("yes")
        expect(tab.locator("#history li")).to_have_count(2, timeout=45_000)  # the clip again, a loop later
        heard = tab.locator("#history li")
        assert [heard.nth(i).evaluate("li => li.value") for i in range(2)] == [1, 2]
        times = [float(re.search(r"at ([0-9.]+) s", heard.nth(i).inner_text()).group(1)) for i in range(2)]
        assert times[0] < times[1], f"the Heard list is not oldest first: {heard.all_inner_texts()}"
        assert "no" not in tab.locator("#history").inner_text().split()
        tab.click("#stop")
        expect(tab.locator("#listen")).to_be_enabled()
        expect(tab.locator("#listen")).to_be_focused()
        assert not errors, errors
    finally:
        microphone.close()
