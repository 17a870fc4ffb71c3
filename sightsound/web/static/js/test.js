// Test results page: a grid of MNIST test images, predicted vs true label, wrong ones highlighted (figure 4.10);
// the chosen model can be downloaded (with snippets to load it in TF.js and Python) or deleted.
import { coded, drawGray, explain, fetchJSON, fillModelSelect, say, sayError } from "./common.js";

const form = document.getElementById("test-form");
const modelSelect = document.getElementById("model");
const summary = document.getElementById("summary");
const grid = document.getElementById("grid");
const modelStatus = document.getElementById("model-status");
const tools = document.getElementById("model-tools");
const confirmDialog = document.getElementById("confirm-delete");

let models = [];

/** One grid cell: the image, "pred / true", and the class "wrong" when they differ. */
function cell(item, width, height) {
  const box = document.createElement("div");
  box.className = item.predicted === item.label ? "cell" : "cell wrong";
  box.dataset.index = item.index;
  const canvas = document.createElement("canvas");
  drawGray(canvas, item.pixels, width, height);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `test image ${item.index}`);
  const caption = document.createElement("div");
  const predicted = document.createElement("span");
  predicted.className = "pred";
  predicted.textContent = `pred ${item.predicted}`;
  caption.append(predicted, ` · true ${item.label}`);
  caption.title = `test image #${item.index}, p = ${item.probability}`;
  box.append(canvas, caption);
  return box;
}

async function show() {
  const model = modelSelect.value;
  if (!model) {
    grid.replaceChildren();
    say(summary, explain(coded("no_model")), "error");
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
    sayError(summary, err);
  }
}

// ---------------------------------------------------------------------------- taking the model away

/** The copy-paste snippets for one model, with its own name and input shape. */
function snippets(model) {
  const shape = [1, ...(model.input_shape || [28, 28, 1])];
  const what = model.kind === "speech" ? "spectrogram" : "28×28 grayscale image, values 0..1";
  const tfjs = `import * as tf from "@tensorflow/tfjs";

const model = await tf.loadLayersModel("${model.name}/model.json");
const input = tf.zeros([${shape.join(", ")}]);  // one ${what}
model.predict(input).print();  // the probability of each of its ${model.labels.length} labels`;
  const python = `import numpy as np
from sightsound import load_layers_model

model = load_layers_model("${model.name}")  # the unzipped folder
x = np.zeros((${shape.join(", ")}), dtype="float32")  # one ${what}
print(model.predict(x))  # the probability of each of its ${model.labels.length} labels`;
  return { tfjs, python };
}

function showTools() {
  const model = models.find((m) => m.name === modelSelect.value);
  tools.hidden = !model;
  if (!model) return;
  const download = document.getElementById("download");
  download.href = model.download;
  download.setAttribute("download", `${model.name}.zip`);
  document.getElementById("delete").hidden = model.builtin;
  for (const span of document.querySelectorAll(".model-name")) span.textContent = model.name;
  const { tfjs, python } = snippets(model);
  document.getElementById("snippet-tfjs").textContent = tfjs;
  document.getElementById("snippet-python").textContent = python;
}

async function deleteModel() {
  const name = modelSelect.value;
  try {
    await fetchJSON(`/api/models/${encodeURIComponent(name)}`, { method: "DELETE" });
  } catch (err) {
    sayError(modelStatus, err);
    return;
  }
  history.replaceState(null, "", location.pathname);  // a ?model= naming the deleted model would be unknown
  await loadModels();
  say(modelStatus, `Deleted ${name}.`, "notice");
  modelSelect.focus();  // the dialog gave the focus back to Delete; the list is what changed
  show();
}

async function loadModels() {
  models = await fillModelSelect(modelSelect, "mnist", modelStatus);
  showTools();
}

document.getElementById("delete").addEventListener("click", () => {
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
});
confirmDialog.addEventListener("close", () => {
  if (confirmDialog.returnValue === "delete") deleteModel();
});
for (const button of document.querySelectorAll("button.copy")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (_) {
      button.textContent = "Select the text and copy it";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  show();
});
modelSelect.addEventListener("change", () => {
  say(modelStatus, "", "notice");
  showTools();
});

loadModels()
  .then(() => show())
  .catch((err) => sayError(summary, err))
  .finally(() => { document.body.dataset.ready = "1"; });
