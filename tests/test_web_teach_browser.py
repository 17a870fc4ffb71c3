"""The Teach words page in headless Chromium (Playwright) with a fake microphone.

Three new words, four examples each, sent from WAV files through the page's own upload path
(``window.teach.addExample``: what a recording sends); background noise recorded by clicking the
page's button, from Chromium's fake microphone playing a noise file; then Train (its live curve), and
a new example of each word recognised.
"""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from conftest import needs_espeak
from test_web_browser import SCREENSHOTS, TIMEOUT_MS
from web_helpers import CHROMIUM_ARGS, serve
from transfer_words import RATE, SETTINGS, WORDS, noise_clip, word_clip

pytestmark = needs_espeak()


def wav_bytes(samples) -> list[int]:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return list(buffer.getvalue())


@pytest.fixture(scope="module")
def teach_server(tmp_path_factory):
    """``sightsound serve`` on a free port with an empty models folder."""
    with serve(tmp_path_factory.mktemp("teach-models")) as url:
        yield url


def test_teach_three_words_then_recognise_a_new_example(teach_server, chromium, tmp_path, request):
    from playwright.sync_api import expect, sync_playwright

    room = tmp_path / "room.wav"
    sf.write(room, noise_clip(4, 3), RATE, subtype="PCM_16")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=CHROMIUM_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                  f"--use-file-for-fake-audio-capture={room}",
                                  "--autoplay-policy=no-user-gesture-required"])
        try:
            tab = browser.new_context(viewport={"width": 1280, "height": 1000}, permissions=["microphone"]).new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(teach_server + "teach")
            tab.wait_for_selector("body[data-ready='1']")
            for word in WORDS:
                for i, (pitch, rate) in enumerate(SETTINGS[:4]):
                    tab.evaluate("([w, b]) => teach.addExample(w, new Uint8Array(b).buffer)",
                                 [word, wav_bytes(word_clip(word, pitch, rate, i))])
            tab.click("#record-noise")
            expect(tab.locator(".word-examples[data-word='_background_noise_']")).to_contain_text(
                "_background_noise_: 1", timeout=20_000)
            expect(tab.locator(".word-examples button")).to_have_count(13)
            expect(tab.locator("#epochs")).to_have_value("50")  # the server's default and bounds
            assert tab.eval_on_selector("#epochs", "e => [e.min, e.max]") == ["1", "500"]
            tab.fill("#seed", "0")  # a run that repeats
            tab.click("#train")
            expect(tab.locator("#train-status")).to_have_attribute("data-done", "1", timeout=180_000)
            for word in WORDS:
                tab.evaluate("(b) => teach.recognizeWav(new Uint8Array(b).buffer)",
                             wav_bytes(word_clip(word, 60, 165, 7)))
                expect(tab.locator("#heard")).to_have_attribute("data-word", word)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
