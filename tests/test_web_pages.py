"""The four pages as a person uses them, at 1280x800 and on a 390x844 phone (issue 21), in Chromium.

One ``sightsound serve --no-builtin-speech`` for the module, on a models folder
holding a copy of the session's trained MNIST model (``conftest.browser_models``)
and no speech model, so that the Speech page's "no model" state is real; tests
that need a speech model add one for their duration. Every test runs at both
sizes. Each page is checked with axe-core (``node_modules/axe-core``, injected,
never copied): no serious or critical violation. Screenshots of every page at
both sizes go to ``runs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import NPM_FIX, require, require_node
from web_helpers import BROWSER_MODEL, REPO, png_bytes, save_speech_model, serve

from sightsound.web import pages

SCREENSHOTS = REPO / "runs" / "screenshots"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PAGE_ORDER = [f"/{name}" for name in pages.PAGES]  # the chapter's order, from its one home
TIMEOUT_MS = 30_000
SPEECH_MODEL = "speech-pages"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def models(browser_models, tmp_path_factory) -> Path:
    """This module's own models folder: the trained MNIST model only (tests add and delete models here)."""
    folder = tmp_path_factory.mktemp("pages-models")
    shutil.copytree(browser_models / BROWSER_MODEL, folder / BROWSER_MODEL)
    return folder


@pytest.fixture(scope="module")
def site(models):
    """One server for the module, without the built-in speech model."""
    with serve(models, "--no-builtin-speech") as url:
        yield url


@pytest.fixture(scope="module")
def axe_source() -> str:
    require(AXE.is_file(), "node_modules/axe-core (the accessibility checker)", NPM_FIX, skip_outside_ci=False)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture()
def tab(browser, viewport):
    """A fresh tab at ``viewport`` (the phone one with touch); its JavaScript errors fail the test."""
    phone = viewport == "phone"
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=phone, has_touch=phone,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture()
def speech_model(models):
    """A (random-weight) speech model in the folder for the test's duration: words _background_noise_,
    _unknown_, no, yes."""
    folder = save_speech_model(models / SPEECH_MODEL)
    yield SPEECH_MODEL
    shutil.rmtree(folder, ignore_errors=True)


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def screenshot(page, name: str, viewport: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport}.png"), full_page=True)


def serious_violations(page, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    page.add_script_tag(content=axe_source)
    violations = page.evaluate("""async () => (await axe.run(document, { resultTypes: ['violations'] }))
        .violations.filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)""")
    return violations


# --------------------------------------------------------------------------- every page

#: Per page: what must sit in a live region (read out when it changes), canvases read back often, and
#: buttons that belong side by side.
LIVE = {"/train": ["#status"], "/test": ["#summary", "#model-status"], "/draw": ["#message", "#top-label"],
        "/speech": ["#status", "#word"], "/teach": ["#status", "#train-status", "#heard"]}
READ_BACK = {"/draw": ["#pad"], "/speech": ["#spectrogram"]}
SIDE_BY_SIDE = {"/train": ("#start", "#stop"), "/speech": ("#listen", "#stop")}


def assert_fits_the_screen(page, path: str, width: int) -> None:
    """Nothing scrolls sideways (a phone browser would zoom out to show it all), no navigation link breaks
    over two lines, paired buttons share a row, and form controls use the page's font size."""
    content = page.evaluate("document.documentElement.scrollWidth")
    assert content <= width, f"{path} is {content} px wide on a {width} px screen: it scrolls sideways"
    links = page.locator("header nav a")
    font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('header nav a')).fontSize)")
    heights = [links.nth(i).bounding_box()["height"] for i in range(links.count())]
    assert max(heights) < 2 * font, f"a navigation link breaks over two lines: {heights} px high, font {font} px"
    if path in SIDE_BY_SIDE:
        first, second = (page.locator(selector).bounding_box() for selector in SIDE_BY_SIDE[path])
        assert abs(first["y"] - second["y"]) < 2, f"{SIDE_BY_SIDE[path][1]} sits alone on its own line"
    sizes = page.evaluate("""() => [...document.querySelectorAll('main input, main select, main button')]
        .map((e) => parseFloat(getComputedStyle(e).fontSize))""")
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert sizes and set(sizes) == {body}, f"form controls in another font size than the page's {body}: {sizes}"


@pytest.mark.parametrize("path", PAGE_ORDER)
def test_page_layout_navigation_and_accessibility(site, tab, viewport, path, axe_source, request):
    """Each page: fits the screen (the Train charts on a phone, one-line navigation links, Stop beside
    Start, controls in the page's font); no serious axe-core violation (the upload input is labelled...);
    navigation in the chapter's order with a "Next" link; status, prediction and recognised word in live
    regions; canvases that are read back keep their pixels in memory (willReadFrequently)."""
    if path == "/speech":
        request.getfixturevalue("speech_model")  # the page as it looks with a model to choose
    open_page(tab, site + path.lstrip("/"))
    screenshot(tab, f"page-{path.strip('/')}", viewport)
    assert_fits_the_screen(tab, path, VIEWPORTS[viewport]["width"])
    assert serious_violations(tab, axe_source) == []

    links = tab.locator("header nav a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == PAGE_ORDER
    assert tab.locator("header nav a[aria-current='page']").get_attribute("href") == path
    following = PAGE_ORDER.index(path) + 1
    if following < len(PAGE_ORDER):
        assert tab.locator("footer a.next").get_attribute("href") == PAGE_ORDER[following]
    for selector in LIVE[path]:
        assert tab.evaluate(f"!!document.querySelector('{selector}').closest('[aria-live], [role=status]')"), \
            f"{selector} is not in a live region"
    for selector in READ_BACK.get(path, []):
        assert tab.evaluate(f"document.querySelector('{selector}').getContext('2d')"
                            ".getContextAttributes().willReadFrequently"), selector


def test_an_unknown_model_is_said_and_an_unknown_page_is_a_page(site, tab, viewport, axe_source):
    """``?model=does-not-exist`` says so and names the model shown instead; an unknown URL shows a page
    with the navigation, not raw JSON."""
    from playwright.sync_api import expect

    for path in ("draw", "test"):
        open_page(tab, site + f"{path}?model=does-not-exist")
        expect(tab.locator("#model")).to_have_value(BROWSER_MODEL)
        expect(tab.locator("#model-status")).to_be_visible()
        expect(tab.locator("#model-status")).to_have_text(
            f"There is no model named “does-not-exist”; showing {BROWSER_MODEL} instead.")
    answer = tab.goto(site + "no-such-page")
    assert answer.status == 404
    expect(tab.locator("h1")).to_have_text("Page not found")
    expect(tab.locator("main")).to_contain_text("/no-such-page")
    expect(tab.locator("header nav a")).to_have_count(len(PAGE_ORDER))
    assert "{" not in tab.locator("body").inner_text()
    screenshot(tab, "page-not-found", viewport)
    assert serious_violations(tab, axe_source) == []


# --------------------------------------------------------------------------- Draw

def test_a_failed_upload_leaves_nothing_of_the_last_prediction(site, tab, viewport, tmp_path):
    """After a good upload, a blank image and a text file renamed .png each show "?" and one sentence; the
    old probability, bars, top-3 list and 28x28 input are gone, the broken preview too, and the panel keeps
    its size and place."""
    from playwright.sync_api import expect

    drawing = np.full((100, 80), 255, dtype=np.uint8)
    drawing[15:85, 37:45] = 0  # a dark "1" on white paper
    good, blank, text = tmp_path / "one.png", tmp_path / "blank.png", tmp_path / "notes.png"
    good.write_bytes(png_bytes(drawing))
    blank.write_bytes(png_bytes(np.full((100, 80), 255, dtype=np.uint8)))
    text.write_text("shopping list: milk, eggs\n" * 40)
    open_page(tab, site + "draw")
    panel = tab.locator("#prediction")

    tab.set_input_files("#upload", str(good))
    expect(tab.locator("#top3-list li")).to_have_count(3)
    expect(tab.locator("#top-prob")).to_contain_text("p = ")
    expect(tab.locator("#upload-preview")).to_be_visible()
    before = panel.bounding_box(), tab.locator("#upload").bounding_box()

    for path, sentence in [(blank, "No digit found in this picture."),
                           (text, "This file is not an image we can read (PNG, JPEG, GIF, WebP, BMP).")]:
        seq = int(panel.get_attribute("data-seq"))
        tab.set_input_files("#upload", str(path))
        expect(panel).not_to_have_attribute("data-seq", str(seq))
        expect(tab.locator("#top-label")).to_have_text("?")
        expect(tab.locator("#message")).to_contain_text(sentence)
        expect(tab.locator("#top-prob")).to_have_text("")
        expect(tab.locator("#top3-list li")).to_have_count(0)
        assert tab.evaluate("Chart.getChart('top3-chart').data.datasets[0].data.every((p) => p === 0)")
        assert tab.evaluate("""() => { const c = document.getElementById('model-input');
            return c.getContext('2d').getImageData(0, 0, c.width, c.height).data
                .every((v, i) => i % 4 === 3 || v === 0); }"""), "the old 28x28 input is still shown"
        assert (panel.bounding_box(), tab.locator("#upload").bounding_box()) == before, "the layout moved"
    message = tab.locator("#message").inner_text()
    assert "BytesIO" not in message and "cannot identify" not in message and "\n" not in message
    expect(tab.locator("#upload-preview")).to_be_hidden()
    screenshot(tab, "draw-after-a-failed-upload", viewport)


# --------------------------------------------------------------------------- Speech

def test_speech_without_a_model_disables_start_and_says_what_to_do(site, tab, viewport, models):
    """No speech model on the server (none saved, the built-in one switched off): Start is disabled and
    one line says how to get one; the empty model list is a readable box."""
    from playwright.sync_api import expect

    open_page(tab, site + "speech")
    expect(tab.locator("#listen")).to_be_disabled()
    expect(tab.locator("#model")).to_be_disabled()
    expect(tab.locator("#model option")).to_have_text(["no model yet"])
    assert tab.locator("#model").bounding_box()["width"] >= 150
    status = tab.locator("#status")
    expect(status).to_have_class("error")
    text = status.inner_text()
    assert text == (f"No speech model in {models.name}/: train one with “sightsound speech train”, or serve "
                    f"without --no-builtin-speech."), text
    assert "\n" not in text and "/tmp" not in text and len(text) < 200, text
    screenshot(tab, "speech-without-a-model", viewport)


def test_speech_lists_only_the_words_a_person_can_say(site, tab, viewport, speech_model):
    """The word list leaves out _background_noise_ and _unknown_; the word panel has room to breathe."""
    from playwright.sync_api import expect

    open_page(tab, site + f"speech?model={speech_model}")
    expect(tab.locator("#listen")).to_be_enabled()
    expect(tab.locator("#words span")).to_have_text(["no", "yes"])
    # Room between the probability line, the word's spectrogram and its caption, and under the live view.
    boxes = {selector: tab.locator(selector).bounding_box() for selector in
             ("#word-prob", "#word-spectrogram", ".word-panel figcaption", "#spectrogram", ".live figcaption")}
    bottom = {selector: box["y"] + box["height"] for selector, box in boxes.items()}
    assert boxes["#word-spectrogram"]["y"] - bottom["#word-prob"] >= 8
    assert boxes[".word-panel figcaption"]["y"] - bottom["#word-spectrogram"] >= 4
    assert boxes[".live figcaption"]["y"] - bottom["#spectrogram"] >= 4


# --------------------------------------------------------------------------- Train

def _start_run(page, name: str, epochs: int) -> float:
    """Fill the form and press Start; returns the time of the press."""
    page.fill("#epochs", str(epochs))
    page.fill("#batch-size", "50")
    page.fill("#train-limit", "2000")
    page.fill("#test-limit", "10000")  # the whole test set: evaluating takes a noticeable part of the job
    page.fill("#name", name)
    started = time.monotonic()
    page.click("#start")
    return started


def test_train_keeps_its_run_over_reloads_and_a_stopped_run_is_marked(site, tab, viewport, models):
    """A reload during a run shows the run's settings, curves and progress (and again after it ends); a
    stopped run is saved marked "stopped early", is not the Test results default, and its time covers the
    whole job; a name clash afterwards leaves no old curves, epoch line or result behind."""
    from playwright.sync_api import expect

    name = f"stopped-{viewport}"
    open_page(tab, site + "train")
    started = _start_run(tab, name, epochs=30)
    expect(tab.locator("#stop")).to_be_enabled()
    assert tab.evaluate("document.activeElement.id") == "stop", "the focus was lost when Start disabled itself"
    tab.wait_for_function("Number(document.getElementById('loss-chart').dataset.points) > 0")
    tab.reload()
    tab.wait_for_selector("body[data-ready='1']")
    expect(tab.locator("#epochs")).to_have_value("30")
    expect(tab.locator("#name")).to_have_value(name)
    expect(tab.locator("#epochs")).to_be_disabled()
    tab.wait_for_function("Number(document.getElementById('loss-chart').dataset.points) > 0")
    epoch_line, progress_row = tab.locator("#epoch-text").bounding_box(), tab.locator(".progress-row").bounding_box()
    assert epoch_line["x"] == progress_row["x"] and epoch_line["y"] >= progress_row["y"] + progress_row["height"]

    tab.click("#stop")
    expect(tab.locator("#status")).to_contain_text("Stopped at epoch", timeout=120_000)
    ended = time.monotonic()
    reported = float(re.search(r"after ([0-9.]+) s", tab.locator("#status").inner_text()).group(1))
    assert reported >= (ended - started) - 1.5, f"the job took {ended - started:.1f} s, the page says {reported}"
    for link in tab.locator("#result-links a").all():
        assert link.inner_text() == link.inner_text().strip() != ""
    expect(tab.locator("#epochs")).to_have_value("30")
    expect(tab.locator("#epochs")).to_be_enabled()
    expect(tab.locator("#name")).to_have_value(name)
    screenshot(tab, "train-stopped-run", viewport)

    tab.reload()
    tab.wait_for_selector("body[data-ready='1']")
    expect(tab.locator("#status")).to_contain_text("Stopped at epoch")
    expect(tab.locator("#epochs")).to_have_value("30")
    assert json.loads((models / name / "model.json").read_text())["userDefinedMetadata"]["stopped"] is True

    tab.click("#start")  # the same name again
    expect(tab.locator("#status")).to_have_text("A model with this name exists already; choose another name.")
    expect(tab.locator("#loss-chart")).to_have_attribute("data-points", "0")
    expect(tab.locator("#epoch-text")).to_have_text("")
    expect(tab.locator("#progress-text")).to_have_text("0%")
    expect(tab.locator("#result")).to_be_hidden()

    open_page(tab, site + "test")
    expect(tab.locator("#model")).to_have_value(BROWSER_MODEL)
    expect(tab.locator(f"#model option[value='{name}']")).to_contain_text("stopped early")


# --------------------------------------------------------------------------- take a model away, delete one

NODE_LOAD = r"""
const fs = require('fs'), path = require('path');
const tf = require('@tensorflow/tfjs');
const [dir, inputFile] = process.argv.slice(2);
(async () => {
  // The unzipped files, as a browser page would fetch them: model.json and the weights it names.
  const modelJSON = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [], buffers = [];
  for (const group of modelJSON.weightsManifest) {
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const weights = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: modelJSON.modelTopology,
                                                           weightSpecs: specs, weightData: weights}));
  const input = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
  const out = model.predict(tf.tensor4d(input.values, input.shape));
  console.log(JSON.stringify(Array.from(await out.data())));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_download_a_model_and_delete_one(site, tab, viewport, models, real_mnist, tmp_path):
    """Download gives NAME.zip (NAME/model.json + weights) that real TF.js in Node loads from the unzipped
    files and that predicts what sightsound predicts; the page's Python snippet runs as pasted; Delete asks
    first, Cancel keeps the model, Delete removes it from the list and the folder."""
    from playwright.sync_api import expect

    from sightsound import load_layers_model

    node = require_node()
    name = f"take-away-{viewport}"
    shutil.copytree(models / BROWSER_MODEL, models / name)
    open_page(tab, site + f"test?model={name}")
    expect(tab.locator("#model")).to_have_value(name)
    with tab.expect_download() as download:
        tab.click("#download")
    assert download.value.suggested_filename == f"{name}.zip"
    archive = tmp_path / f"{name}.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == [f"{name}/model.json", f"{name}/weights.bin"]
        opened.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / name

    images = real_mnist.test_images[:3].astype(np.float32)[..., None] / 255.0
    (tmp_path / "input.json").write_text(json.dumps({"values": images.ravel().tolist(), "shape": [3, 28, 28, 1]}))
    (tmp_path / "load.js").write_text(NODE_LOAD)
    loaded = subprocess.run([node, str(tmp_path / "load.js"), str(folder), str(tmp_path / "input.json")],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            env={**os.environ, "NODE_PATH": str(REPO / "node_modules")})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    expected = load_layers_model(str(models / BROWSER_MODEL), device="cpu").predict(images).ravel()
    assert np.abs(np.asarray(json.loads(loaded.stdout)) - expected).max() < 1e-4

    tab.click("#snippets summary")
    expect(tab.locator("#snippet-tfjs")).to_contain_text(f'tf.loadLayersModel("{name}/model.json")')
    snippet = tab.locator("#snippet-python").inner_text()
    ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path / "unzipped", env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    probabilities = [float(v) for v in re.findall(r"[0-9.]+(?:e[-+]?\d+)?", ran.stdout)]
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3, ran.stdout
    screenshot(tab, "test-results-model-tools", viewport)

    tab.click("#delete")
    expect(tab.locator("#confirm-delete")).to_be_visible()
    expect(tab.locator("#confirm-delete")).to_contain_text(f"Delete {name}?")
    tab.click("#confirm-delete button[value=cancel]")
    expect(tab.locator("#confirm-delete")).to_be_hidden()
    assert (models / name / "model.json").is_file()
    tab.click("#delete")
    tab.click("#confirm-delete-button")
    expect(tab.locator("#model-status")).to_have_text(f"Deleted {name}.")
    expect(tab.locator(f"#model option[value='{name}']")).to_have_count(0)
    assert not (models / name).exists() and (models / BROWSER_MODEL / "model.json").is_file()
