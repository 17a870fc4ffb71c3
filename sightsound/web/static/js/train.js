// Train page: start a job, follow its own websocket, plot loss and accuracy live (figure 4.8).
// The tab remembers its last job (sessionStorage): a reload shows that job's settings, curves and result.
import { chartLibrary, coded, explain, fetchJSON, say, sayError } from "./common.js";

const JOB_KEY = "sightsound.trainJob"; // sessionStorage: each tab remembers only its own job

const form = document.getElementById("train-form");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const statusLine = document.getElementById("status");
const progressBar = document.getElementById("progress-bar");
const progressText = document.getElementById("progress-text");
const epochText = document.getElementById("epoch-text");
const resultBox = document.getElementById("result");

// The inputs of the form by the server's setting names (GET /api/train/options, POST /api/train).
const INPUTS = { epochs: "epochs", batch_size: "batch-size", validation_split: "validation-split",
                 train_limit: "train-limit", test_limit: "test-limit" };

let socket = null;
let charts = null;
let redrawPending = false;
let trainOptions = null;
let currentJob = null; // the job this page shows (its GET /api/train/{id} snapshot)

// ---------------------------------------------------------------------------- charts and progress

/** A line chart with training (per batch) and validation (per epoch) series on a batch-count x axis. */
function makeChart(canvas, title, yMax) {
  const Chart = chartLibrary();
  const series = (label, color, points) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: points ? 2 : 1,
    pointRadius: points ? 3 : 0, showLine: true, tension: 0,
  });
  return new Chart(canvas, {
    type: "line",
    data: { datasets: [series(`training ${title}`, "#2559c4", false), series(`validation ${title}`, "#d0641c", true)] },
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

/** Empty charts, progress, epoch line and result: nothing of an earlier run stays on the page. */
function resetView() {
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
  setProgress(0);
  epochText.textContent = "";
  resultBox.hidden = true;
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

// ---------------------------------------------------------------------------- the form

/** Lock the form while a job runs; keep the keyboard focus on a button that can be pressed. */
function setRunning(running) {
  const focused = document.activeElement;
  startButton.disabled = running;
  stopButton.disabled = !running;
  stopButton.removeAttribute("aria-disabled");
  stopButton.textContent = "Stop";
  for (const input of form.querySelectorAll("input, select")) input.disabled = running;
  if (running && focused === startButton) stopButton.focus();
  if (!running && focused === stopButton) startButton.focus();
}

/** The form shows `job`'s settings: while it runs the name it saves under, afterwards the name asked for. */
function showJobSettings(job) {
  const params = job.params;
  document.getElementById("model").value = params.model;
  for (const [key, id] of Object.entries(INPUTS)) document.getElementById(id).value = params[key] ?? "";
  document.getElementById("name").value = ["done", "stopped", "failed"].includes(job.state)
    ? params.name ?? "" : job.name;
}

function showDefaults(modelName) {
  const model = trainOptions.models.find((m) => m.name === modelName);
  for (const [key, value] of Object.entries(model.defaults)) document.getElementById(INPUTS[key]).value = value;
}

// The model menu, each model's chapter defaults and each setting's limits are the server's (one home).
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

// ---------------------------------------------------------------------------- the job's events

function showResult(event) {
  document.getElementById("final-eval").textContent =
    `Loss = ${event.test_loss.toFixed(3)}; Accuracy = ${event.test_acc.toFixed(3)}`;
  const name = encodeURIComponent(event.model);
  const links = [["Test results", `/test?model=${name}`], ["Draw with it", `/draw?model=${name}`],
    ["Download (.zip)", `/api/models/${name}/download`]].map(([text, href]) => {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (href.endsWith("/download")) a.setAttribute("download", `${event.model}.zip`);
    return a;
  });
  document.getElementById("result-links").replaceChildren(...links);
  resultBox.hidden = false;
}

/** The end of a run in one sentence; its time is the whole job's (testing and saving included). */
function finishedSentence(event) {
  const seconds = `${event.seconds.toFixed(1)} s`;
  if (event.type === "done") {
    return `Finished ${event.epochs_run} epoch(s) in ${seconds}, testing and saving included; saved as ${event.model}.`;
  }
  return `Stopped at epoch ${event.epochs_run} of ${currentJob.params.epochs} after ${seconds}; saved as ` +
    `${event.model}, marked “stopped early”.`;
}

/** Apply one event from this job's websocket. */
function handleEvent(event) {
  switch (event.type) {
    case "status":
      say(statusLine, `${event.message[0].toUpperCase()}${event.message.slice(1)}…`, "muted");
      break;
    case "start":
      say(statusLine, `Training ${event.preset} (${event.params.toLocaleString()} parameters) on ` +
        `${event.train_examples.toLocaleString()} images: ${event.total_batches} batches.`, "muted");
      break;
    case "batch":
      charts.loss.data.datasets[0].data.push({ x: event.batch, y: event.loss });
      charts.acc.data.datasets[0].data.push({ x: event.batch, y: event.acc });
      setProgress(event.progress);
      epochText.textContent = `Epoch ${event.epoch} of ${currentJob.params.epochs} · ${event.elapsed.toFixed(0)} s`;
      scheduleRedraw();
      break;
    case "epoch":
      if (event.val_loss !== undefined) {
        charts.loss.data.datasets[1].data.push({ x: event.batch, y: event.val_loss });
        charts.acc.data.datasets[1].data.push({ x: event.batch, y: event.val_acc });
      }
      setProgress(event.progress);
      epochText.textContent = `Epoch ${event.epoch} of ${currentJob.params.epochs}: loss ${event.loss.toFixed(4)}, ` +
        `acc ${event.acc.toFixed(4)}` + (event.val_acc !== undefined
        ? `, val_loss ${event.val_loss.toFixed(4)}, val_acc ${event.val_acc.toFixed(4)}` : "");
      scheduleRedraw();
      break;
    case "done":
    case "stopped":
      if (event.type === "done") setProgress(1);
      say(statusLine, finishedSentence(event), "");
      showResult(event);
      finish(event.type);
      break;
    case "error":
      sayError(statusLine, coded(event.code || "training_failed", { detail: event.error }));
      finish("failed");
      break;
  }
}

/** The job ended: unlock the form; it keeps the job's settings (with the name field back to what was asked). */
function finish(state) {
  if (currentJob) showJobSettings({ ...currentJob, state });
  setRunning(false);
}

/** Follow one job: its websocket replays every event from the start, then streams new ones. */
function follow(job) {
  if (socket) socket.close();
  currentJob = job;
  resetView();
  showJobSettings(job);
  setRunning(true);
  const jobId = job.job_id;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/train/${encodeURIComponent(jobId)}`);
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.job_id === jobId) handleEvent(event); // never another job's events
  };
  socket.onclose = async () => {
    if (!startButton.disabled) return;
    try {
      const latest = await fetchJSON(`/api/train/${encodeURIComponent(jobId)}`);
      if (latest.error) sayError(statusLine, coded(latest.code || "training_failed", { detail: latest.error }));
      else sayError(statusLine, coded("connection_lost"));
    } catch (err) {
      sayError(statusLine, err);
    }
    finish("failed");
  };
  stopButton.onclick = async () => {
    if (stopButton.getAttribute("aria-disabled") === "true") return;
    // Not disabled: the focus stays on it until the job ends and Start takes it back.
    stopButton.setAttribute("aria-disabled", "true");
    stopButton.textContent = "Stopping…";
    try {
      await fetchJSON(`/api/train/${encodeURIComponent(jobId)}/stop`, { method: "POST" });
    } catch (err) {
      sayError(statusLine, err);
    }
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (socket) socket.close();
  socket = null;
  currentJob = null;
  sessionStorage.removeItem(JOB_KEY);
  resetView();
  say(statusLine, "Starting…", "muted");
  try {
    const job = await fetchJSON("/api/train", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()),
    });
    sessionStorage.setItem(JOB_KEY, job.job_id);
    form.dataset.jobId = job.job_id;
    follow(job);
  } catch (err) {
    sayError(statusLine, err);
  }
});

document.getElementById("model").addEventListener("change", (event) => showDefaults(event.target.value));

async function start() {
  resetView();
  try {
    await loadTrainOptions();
  } catch (err) {
    sayError(statusLine, err);
  }
  const previous = sessionStorage.getItem(JOB_KEY);
  if (previous) {
    try {
      const job = await fetchJSON(`/api/train/${encodeURIComponent(previous)}`);
      form.dataset.jobId = job.job_id;
      follow(job);
    } catch (err) {
      sessionStorage.removeItem(JOB_KEY);
      if (err.code !== "job_not_found") sayError(statusLine, err);
      else say(statusLine, explain(err), "muted");
    }
  }
  document.body.dataset.ready = "1";
}

start();
