// Draw page: canvas (mouse + touch) with live top-3 predictions, image upload and webcam frames.
// Every image goes to POST /api/predict, which prepares it like `sightsound predict` does.
import { chartLibrary, coded, drawGray, explain, fetchJSON, fillModelSelect, say, sayError, serverInfo } from "./common.js";

const LIVE_INTERVAL_MS = 150; // at most one live request per this interval while drawing
const STROKE_WIDTH = 18;

const pad = document.getElementById("pad");
// The pad is read back (toBlob) several times a second while drawing: keep it in CPU memory.
const context = pad.getContext("2d", { willReadFrequently: true });
const modelSelect = document.getElementById("model");
const panel = document.getElementById("prediction");
const topLabel = document.getElementById("top-label");
const topProb = document.getElementById("top-prob");
const topList = document.getElementById("top3-list");
const message = document.getElementById("message");
const modelInput = document.getElementById("model-input");
const preview = document.getElementById("upload-preview");
const HINT = message.textContent; // what the empty panel says (written in draw.html)

let requestSeq = 0; // every request gets a number; only the newest answer is shown
let shownSeq = 0;
let chart = null;

// ---------------------------------------------------------------------------- predictions

function makeChart() {
  const Chart = chartLibrary();
  return new Chart(document.getElementById("top3-chart"), {
    type: "bar",
    data: { labels: ["", "", ""], datasets: [{ label: "probability", data: [0, 0, 0], backgroundColor: "#2f6fdf" }] },
    options: {
      indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
      scales: { x: { min: 0, max: 1 } }, plugins: { legend: { display: false } },
    },
  });
}

/** Empty every part of the prediction (label, probability, bars, top-3 list, the 28×28 input); `label` is
 * what the big label shows instead ("?" after a failure). */
function clearPrediction(label = "") {
  topLabel.textContent = label;
  topLabel.dataset.label = "";
  topProb.textContent = "";
  topList.replaceChildren();
  chart.data.labels = ["", "", ""];
  chart.data.datasets[0].data = [0, 0, 0];
  chart.update("none");
  const input = modelInput.getContext("2d");
  input.fillStyle = "#000";
  input.fillRect(0, 0, modelInput.width, modelInput.height);
  modelInput.dataset.shown = "";
  say(message, label ? "" : HINT, "muted");
}

function showPrediction(result, source, seq) {
  const [label, prob] = result.top[0];
  topLabel.textContent = String(label);
  topLabel.dataset.label = String(label);
  topProb.textContent = `p = ${prob.toFixed(3)} (${result.ms} ms)`;
  topList.replaceChildren(...result.top.map(([l, p]) => {
    const item = document.createElement("li");
    item.textContent = `${l}: ${p.toFixed(3)}`;
    return item;
  }));
  chart.data.labels = result.top.map(([l]) => String(l));
  chart.data.datasets[0].data = result.top.map(([, p]) => p);
  chart.update("none");
  drawGray(modelInput, result.input.pixels, result.input.width, result.input.height);
  modelInput.dataset.shown = "1";
  panel.dataset.source = source;
  panel.dataset.seq = String(seq);
  document.getElementById("source").textContent = `(${source})`;
  say(message, "");
}

/** POST one image blob; show the answer unless a newer request was answered first. */
async function predictBlob(blob, source, filename) {
  const model = modelSelect.value;
  if (!model) {
    sayError(message, coded("no_model"));
    return;
  }
  const seq = ++requestSeq;
  const body = new FormData();
  body.append("file", blob, filename);
  body.append("model", model);
  body.append("top_k", "3");
  try {
    const result = await fetchJSON("/api/predict", { method: "POST", body });
    if (seq < shownSeq) return;
    shownSeq = seq;
    showPrediction(result, source, seq);
  } catch (err) {
    if (seq < shownSeq) return;
    shownSeq = seq;
    panel.dataset.seq = String(seq);
    showFailure(err, source);
  }
}

/** A failed prediction leaves nothing of the previous one: "?" and one sentence saying why. */
function showFailure(err, source) {
  clearPrediction("?");
  panel.dataset.source = source;
  document.getElementById("source").textContent = `(${source})`;
  if (err.code === "no_digit") say(message, explain(err), "muted", err.detail);
  else sayError(message, err);
  if (err.code === "not_an_image" && source === "upload") preview.hidden = true;
}

// ---------------------------------------------------------------------------- drawing pad

let drawing = false;
let inFlight = false;
let lastSent = 0;
let dirty = false;
let hasInk = false; // something is drawn on the pad

function resetPad() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, pad.width, pad.height);
  context.strokeStyle = "#000";
  context.lineWidth = STROKE_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

/** Send the pad now if no request is in flight and the last one is old enough; else try again soon. */
async function sendPad(force = false) {
  const now = performance.now();
  if (!dirty || inFlight || (!force && now - lastSent < LIVE_INTERVAL_MS)) {
    if (dirty && !inFlight) setTimeout(() => sendPad(), LIVE_INTERVAL_MS);
    return;
  }
  dirty = false;
  inFlight = true;
  lastSent = now;
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  await predictBlob(blob, "drawing", "drawing.png");
  inFlight = false;
  if (dirty) sendPad(!drawing);
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  const [x, y] = padPoint(event);
  context.beginPath();
  context.moveTo(x, y);
  context.lineTo(x + 0.01, y);
  context.stroke();
  dirty = true;
  hasInk = true;
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  event.preventDefault();
  const [x, y] = padPoint(event);
  context.lineTo(x, y);
  context.stroke();
  dirty = true;
  sendPad();
});

function endStroke(event) {
  if (!drawing) return;
  drawing = false;
  if (event.pointerId !== undefined && pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
  dirty = true;
  sendPad(true);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  resetPad();
  dirty = false;
  hasInk = false;
  shownSeq = ++requestSeq;  // answers still on their way are for the old drawing
  clearPrediction();
});

// ---------------------------------------------------------------------------- upload

// The preview shows only once the browser has decoded the file: a broken image never stays on the page.
preview.addEventListener("load", () => { preview.hidden = false; });
preview.addEventListener("error", () => { preview.hidden = true; });

document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  preview.hidden = true;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  await predictBlob(file, "upload", file.name);
});

// ---------------------------------------------------------------------------- webcam

const video = document.getElementById("camera");
const cameraButton = document.getElementById("camera-toggle");
const cameraStatus = document.getElementById("camera-status");
let cameraStream = null;
let cameraTimer = null;

async function grabFrame() {
  if (!cameraStream || !video.videoWidth) return;
  const frame = document.createElement("canvas");
  frame.width = video.videoWidth;
  frame.height = video.videoHeight;
  frame.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
  await predictBlob(blob, "webcam", "frame.jpg");
}

function stopCamera() {
  clearInterval(cameraTimer);
  cameraTimer = null;
  if (cameraStream) cameraStream.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  video.hidden = true;
  cameraButton.textContent = "Start webcam";
}

cameraButton.addEventListener("click", async () => {
  if (cameraStream) {
    stopCamera();
    say(cameraStatus, "Webcam stopped.", "muted");
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    sayError(cameraStatus, coded("no_media_api"));
    return;
  }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
  } catch (err) {
    sayError(cameraStatus, coded("camera_denied", { detail: err.message }));
    return;
  }
  video.srcObject = cameraStream;
  video.hidden = false;
  cameraButton.textContent = "Stop webcam";
  const interval = Math.max(200, Number(document.getElementById("interval").value) || 1000);
  cameraTimer = setInterval(grabFrame, interval);
  say(cameraStatus, `Sending a frame every ${interval} ms.`, "muted");
});

// ---------------------------------------------------------------------------- start

async function start() {
  resetPad();
  chart = makeChart();
  clearPrediction();
  const status = document.getElementById("model-status");
  try {
    const [models, info] = await Promise.all([fillModelSelect(modelSelect, "mnist", status), serverInfo()]);
    document.getElementById("upload").accept = info.upload.types.join(",");  // the server's list, not a copy
    if (!models.length) say(status, explain(coded("no_model")), "notice");
  } catch (err) {
    sayError(status, err);
  }
  modelSelect.addEventListener("change", () => {
    if (!hasInk) return;
    dirty = true;
    sendPad(true);
  });
  document.body.dataset.ready = "1";
}

start();
