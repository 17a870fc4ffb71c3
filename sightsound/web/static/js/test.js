// Test results page: a grid of MNIST test images, predicted vs true label, wrong ones highlighted (figure 4.10).
import { drawGray, fetchJSON, fillModelSelect, markNav, say } from "./common.js";

const form = document.getElementById("test-form");
const modelSelect = document.getElementById("model");
const summary = document.getElementById("summary");
const grid = document.getElementById("grid");

/** One grid cell: the image, "pred / true", and the class "wrong" when they differ. */
function cell(item, width, height) {
  const box = document.createElement("div");
  box.className = item.predicted === item.label ? "cell" : "cell wrong";
  box.dataset.index = item.index;
  const canvas = document.createElement("canvas");
  drawGray(canvas, item.pixels, width, height);
  const caption = document.createElement("div");
  caption.innerHTML = `<span class="pred">pred ${item.predicted}</span> · true ${item.label}`;
  caption.title = `test image #${item.index}, p = ${item.probability}`;
  box.append(canvas, caption);
  return box;
}

async function show() {
  const model = modelSelect.value;
  if (!model) {
    say(summary, "No MNIST model saved yet: train one on the Train page.", "error");
    return;
  }
  say(summary, "Predicting…", "muted");
  const offset = Number(document.getElementById("offset").value || 0);
  const count = Number(document.getElementById("count").value);
  try {
    const result = await fetchJSON(
      `/api/test-results/${encodeURIComponent(model)}?offset=${offset}&count=${count}`);
    const onlyWrong = document.getElementById("only-wrong").checked;
    const items = onlyWrong ? result.items.filter((i) => i.predicted !== i.label) : result.items;
    grid.replaceChildren(...items.map((item) => cell(item, result.width, result.height)));
    say(summary, `${result.model}: ${result.wrong} wrong of ${result.count} test images ` +
      `#${result.offset}–${result.offset + result.count - 1} (accuracy ${(result.accuracy * 100).toFixed(1)}%).`);
  } catch (err) {
    grid.replaceChildren();
    say(summary, err.message, "error");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  show();
});

markNav();
fillModelSelect(modelSelect, "mnist")
  .then((models) => (models.length ? show() : say(summary, "No MNIST model saved yet: train one on the Train page.", "error")))
  .catch((err) => say(summary, err.message, "error"));
