// Train page: start a job, follow its own websocket, plot loss and accuracy live (figure 4.8).
import { chartLibrary, fetchJSON, markNav, say } from "./common.js";

const JOB_KEY = "sightsound.trainJob"; // sessionStorage: each tab remembers only its own job

const form = document.getElementById("train-form");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const statusLine = document.getElementById("status");
const progressBar = document.getElementById("progress-bar");
const progressText = document.getElementById("progress-text");
const epochText = document.getElementById("epoch-text");
const resultBox = document.getElementById("result");

let socket = null;
let charts = null;
let redrawPending = false;

/** A line chart with training (per batch) and validation (per epoch) series on a batch-count x axis. */
function makeChart(canvas, title, yMax) {
  const Chart = chartLibrary();
  const series = (label, color, points) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: points ? 2 : 1,
    pointRadius: points ? 3 : 0, showLine: true, tension: 0,
  });
  return new Chart(canvas, {
    type: "line",
    data: { datasets: [series(`training ${title}`, "#2f6fdf", false), series(`validation ${title}`, "#e8772e", true)] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      scales: {
        x: { type: "linear", title: { display: true, text: "batch" }, min: 0 },
        y: { title: { display: true, text: title }, min: 0, max: yMax },
      },
      plugins: { title: { display: true, text: title === "loss" ? "Loss" : "Accuracy" } },
    },
  });
}

function resetCharts() {
  if (!charts) {
    charts = {
      loss: makeChart(document.getElementById("loss-chart"), "loss", undefined),
      acc: makeChart(document.getElementById("acc-chart"), "accuracy", 1),
    };
  }
  for (const chart of Object.values(charts)) {
    chart.data.datasets.forEach((d) => (d.data = []));
    chart.update("none");
    chart.canvas.dataset.points = "0";
  }
}

/** Redraw at most once per animation frame, however many events arrive. */
function scheduleRedraw() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => {
    redrawPending = false;
    for (const chart of Object.values(charts)) {
      chart.update("none");
      const count = chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
      chart.canvas.dataset.points = String(count);
    }
  });
}

function setProgress(fraction) {
  const percent = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  progressBar.style.width = `${percent}%`;
  progressText.textContent = `${percent}%`;
  progressBar.parentElement.setAttribute("aria-valuenow", String(percent));
}

function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
  for (const input of form.querySelectorAll("input, select")) input.disabled = running;
}

function showResult(event) {
  document.getElementById("final-eval").textContent =
    `Loss = ${event.test_loss.toFixed(3)}; Accuracy = ${event.test_acc.toFixed(3)}`;
  const links = document.getElementById("result-links");
  links.replaceChildren();
  for (const [text, href] of [["test results", `/test?model=${encodeURIComponent(event.model)}`],
    ["draw with it", `/draw?model=${encodeURIComponent(event.model)}`]]) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = ` ${text} `;
    links.append(" · ", a);
  }
  resultBox.hidden = false;
}

/** Apply one event from this job's websocket. */
function handleEvent(event) {
  switch (event.type) {
    case "status":
      say(statusLine, event.message || event.state, "muted");
      break;
    case "start":
      say(statusLine, `Training ${event.preset} (${event.params.toLocaleString()} parameters) on ` +
        `${event.train_examples.toLocaleString()} images: ${event.total_batches} batches.`, "muted");
      break;
    case "batch":
      charts.loss.data.datasets[0].data.push({ x: event.batch, y: event.loss });
      charts.acc.data.datasets[0].data.push({ x: event.batch, y: event.acc });
      setProgress(event.progress);
      epochText.textContent = `epoch ${event.epoch}`;
      scheduleRedraw();
      break;
    case "epoch":
      if (event.val_loss !== undefined) {
        charts.loss.data.datasets[1].data.push({ x: event.batch, y: event.val_loss });
        charts.acc.data.datasets[1].data.push({ x: event.batch, y: event.val_acc });
      }
      setProgress(event.progress);
      epochText.textContent = `epoch ${event.epoch}: loss ${event.loss.toFixed(4)}, acc ${event.acc.toFixed(4)}` +
        (event.val_acc !== undefined ? `, val_loss ${event.val_loss.toFixed(4)}, val_acc ${event.val_acc.toFixed(4)}` : "");
      scheduleRedraw();
      break;
    case "done":
    case "stopped":
      if (event.type === "done") setProgress(1);
      say(statusLine, `${event.type === "done" ? "Finished" : "Stopped"}: ${event.epochs_run} epoch(s) in ` +
        `${event.seconds.toFixed(1)} s, saved as ${event.model}.`, "");
      showResult(event);
      finish();
      break;
    case "error":
      say(statusLine, `Training failed: ${event.error}`, "error");
      finish();
      break;
  }
}

function finish() {
  setRunning(false);
  sessionStorage.removeItem(JOB_KEY);
}

/** Follow one job: its websocket replays every event from the start, then streams new ones. */
function follow(jobId) {
  if (socket) socket.close();
  resetCharts();
  setRunning(true);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/train/${encodeURIComponent(jobId)}`);
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.job_id === jobId) handleEvent(event); // never another job's events
  };
  socket.onclose = async () => {
    if (!startButton.disabled) return;
    try {
      const job = await fetchJSON(`/api/train/${encodeURIComponent(jobId)}`);
      if (job.error) say(statusLine, `Training failed: ${job.error}`, "error");
    } catch (err) {
      say(statusLine, `Lost the connection to the job: ${err.message}`, "error");
    }
    finish();
  };
  stopButton.onclick = async () => {
    stopButton.disabled = true;
    try {
      await fetchJSON(`/api/train/${encodeURIComponent(jobId)}/stop`, { method: "POST" });
    } catch (err) {
      say(statusLine, err.message, "error");
    }
  };
}

function requestBody() {
  const value = (id) => document.getElementById(id).value.trim();
  const body = {
    model: value("model"), epochs: Number(value("epochs")), batch_size: Number(value("batch-size")),
    validation_split: Number(value("validation-split") || 0),
  };
  if (value("train-limit")) body.train_limit = Number(value("train-limit"));
  if (value("test-limit")) body.test_limit = Number(value("test-limit"));
  if (value("name")) body.name = value("name");
  return body;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  resultBox.hidden = true;
  setProgress(0);
  say(statusLine, "Starting…", "muted");
  try {
    const job = await fetchJSON("/api/train", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()),
    });
    sessionStorage.setItem(JOB_KEY, job.job_id);
    form.dataset.jobId = job.job_id;
    follow(job.job_id);
  } catch (err) {
    say(statusLine, err.message, "error");
  }
});

// The model menu, each model's chapter defaults and each setting's limits are the server's (one home).
const INPUTS = { epochs: "epochs", batch_size: "batch-size", validation_split: "validation-split",
                 train_limit: "train-limit", test_limit: "test-limit" };
let trainOptions = null;

function showDefaults(modelName) {
  const model = trainOptions.models.find((m) => m.name === modelName);
  for (const [key, value] of Object.entries(model.defaults)) document.getElementById(INPUTS[key]).value = value;
}

async function loadTrainOptions() {
  trainOptions = await fetchJSON("/api/train/options");
  const select = document.getElementById("model");
  select.replaceChildren(...trainOptions.models.map((m) => new Option(`${m.name}: ${m.title}`, m.name)));
  select.value = trainOptions.default_model;
  for (const [key, [low, high]] of Object.entries(trainOptions.limits)) {
    const input = document.getElementById(INPUTS[key]);
    input.min = low;
    input.max = high;
    if (key.endsWith("_limit")) input.placeholder = `all ${high}`;
  }
  showDefaults(select.value);
}

document.getElementById("model").addEventListener("change", (event) => showDefaults(event.target.value));

markNav();
resetCharts();
loadTrainOptions().catch((err) => say(statusLine, `Cannot load the training options: ${err.message}`, "error"));
const previous = sessionStorage.getItem(JOB_KEY);
if (previous) {
  fetchJSON(`/api/train/${encodeURIComponent(previous)}`)
    .then((job) => { form.dataset.jobId = job.job_id; follow(job.job_id); })
    .catch(() => sessionStorage.removeItem(JOB_KEY));
}
