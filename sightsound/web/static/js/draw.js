// Draw page: canvas (mouse + touch) with live top-3 predictions, image upload and webcam frames.
// Every image goes to POST /api/predict, which prepares it like `sightsound predict` does.
import { chartLibrary, drawGray, fetchJSON, fillModelSelect, markNav, say } from "./common.js";

const LIVE_INTERVAL_MS = 150; // at most one live request per this interval while drawing
const STROKE_WIDTH = 18;

const pad = document.getElementById("pad");
const context = pad.getContext("2d");
const modelSelect = document.getElementById("model");
const panel = document.getElementById("prediction");
const topLabel = document.getElementById("top-label");
const topProb = document.getElementById("top-prob");
const topList = document.getElementById("top3-list");
const message = document.getElementById("message");

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

function clearPrediction(text = "") {
  shownSeq = ++requestSeq;
  topLabel.textContent = "";
  topLabel.dataset.label = "";
  topProb.textContent = "";
  topList.replaceChildren();
  chart.data.labels = ["", "", ""];
  chart.data.datasets[0].data = [0, 0, 0];
  chart.update("none");
  say(message, text, "muted");
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
  drawGray(document.getElementById("model-input"), result.input.pixels, result.input.width, result.input.height);
  panel.dataset.source = source;
  panel.dataset.seq = String(seq);
  document.getElementById("source").textContent = `(${source})`;
  say(message, "");
}

/** POST one image blob; show the answer unless a newer request was answered first. */
async function predictBlob(blob, source, filename) {
  const model = modelSelect.value;
  if (!model) {
    say(message, "No MNIST model saved yet: train one on the Train page.", "error");
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
    panel.dataset.source = source;
    panel.dataset.seq = String(seq);
    if (err.body && err.body.no_digit) {
      topLabel.textContent = "?";
      topLabel.dataset.label = "";
      say(message, "No digit found.", "muted");
    } else {
      say(message, err.message, "error");
    }
  }
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
  clearPrediction();
});

// ---------------------------------------------------------------------------- upload

document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const preview = document.getElementById("upload-preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
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
    say(cameraStatus, "This browser gives no camera access here (use http://127.0.0.1 or https).", "error");
    return;
  }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
  } catch (err) {
    say(cameraStatus, `No webcam: ${err.message}`, "error");
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
  markNav();
  resetPad();
  chart = makeChart();
  clearPrediction();
  try {
    const models = await fillModelSelect(modelSelect, "mnist");
    if (!models.length) say(document.getElementById("model-status"), "No MNIST model yet: train one on the Train page.", "error");
  } catch (err) {
    say(document.getElementById("model-status"), err.message, "error");
  }
  modelSelect.addEventListener("change", () => {
    if (!hasInk) return;
    dirty = true;
    sendPad(true);
  });
  document.body.dataset.ready = "1";
}

start();
