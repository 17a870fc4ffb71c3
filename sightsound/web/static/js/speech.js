// Speech page: microphone -> AudioWorklet -> /ws/audio (float32 PCM) -> the server's streaming recognizer.
// Shows the recognised word large with its probability and one-second spectrogram, the live spectrogram,
// the model's word list and a threshold slider.
import { coded, explain, fillModelSelect, say, sayError, serverInfo } from "./common.js";

const SEND_SAMPLES = 4096; // samples per websocket message (about 85 ms at 48 kHz)
const HISTORY_LENGTH = 20; // words kept in the Heard list

const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const live = $("spectrogram");
// Each new column scrolls the live view by reading its pixels back: keep it in CPU memory.
const liveContext = live.getContext("2d", { willReadFrequently: true });

let session = null; // {socket, context, stream, node}
let models = []; // the speech models GET /api/models lists
let heardCount = 0; // words heard since the page opened: the Heard list numbers them in order
let messageOverrides = {}; // this page's sentence for "no model at all" (it names the models folder)

// ---------------------------------------------------------------------------- drawing

/** Decode base64 uint8 pixels. */
function bytesOf(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Scroll the live spectrogram left and paint new columns (each column: 232 bins, low frequencies at the bottom). */
function paintColumns(message) {
  const bytes = bytesOf(message.pixels);
  const { count, bins } = message;
  const image = liveContext.getImageData(count, 0, live.width - count, live.height);
  liveContext.putImageData(image, 0, 0);
  const columns = liveContext.createImageData(count, live.height);
  for (let c = 0; c < count; c++) {
    for (let b = 0; b < bins && b < live.height; b++) {
      const v = bytes[c * bins + b];
      const at = 4 * ((live.height - 1 - b) * count + c);
      columns.data[at] = v;
      columns.data[at + 1] = v;
      columns.data[at + 2] = Math.min(255, v * 1.4);
      columns.data[at + 3] = 255;
    }
  }
  liveContext.putImageData(columns, live.width - count, 0);
  live.dataset.columns = String(Number(live.dataset.columns) + count);
}

/** A word's spectrogram: frames across, bins up. */
function paintWordSpectrogram(spectrogram) {
  const canvas = $("word-spectrogram");
  const { frames, bins } = spectrogram;
  const bytes = bytesOf(spectrogram.pixels);
  canvas.width = frames;
  canvas.height = bins;
  const context = canvas.getContext("2d");
  const image = context.createImageData(frames, bins);
  for (let f = 0; f < frames; f++) {
    for (let b = 0; b < bins; b++) {
      const v = bytes[f * bins + b];
      const at = 4 * ((bins - 1 - b) * frames + f);
      image.data[at] = v;
      image.data[at + 1] = v;
      image.data[at + 2] = Math.min(255, v * 1.4);
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

/** The words a person can say to the chosen model (the server leaves out noise and unknown). */
function showWords(words) {
  $("words").replaceChildren(...words.map((word) => {
    const span = document.createElement("span");
    span.textContent = word;
    span.dataset.word = word;
    return span;
  }));
}

function showWord(message) {
  $("word").textContent = message.word;
  $("word").dataset.word = message.word;
  $("word-prob").textContent = `p = ${message.score.toFixed(3)} at ${message.time.toFixed(2)} s`;
  if (message.spectrogram) paintWordSpectrogram(message.spectrogram);
  for (const span of $("words").children) span.classList.toggle("hit", span.dataset.word === message.word);
  // Oldest first, numbered from the first word heard (kept when older ones scroll away).
  const item = document.createElement("li");
  item.value = ++heardCount;
  item.textContent = `${message.word} (${message.score.toFixed(2)}) at ${message.time.toFixed(2)} s`;
  $("history").append(item);
  while ($("history").children.length > HISTORY_LENGTH) $("history").firstChild.remove();
}

// ---------------------------------------------------------------------------- listening

/** Lock the controls while listening; the keyboard focus follows the button that can be pressed. */
function setListening(listening) {
  const focused = document.activeElement;
  $("listen").disabled = listening || !models.length;
  $("stop").disabled = !listening;
  $("model").disabled = listening || !models.length;
  $("overlap").disabled = listening;
  if (listening && focused === $("listen")) $("stop").focus();
  if (!listening && focused === $("stop") && !$("listen").disabled) $("listen").focus();
}

async function openMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw coded("no_media_api");
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
  } catch (err) {
    throw coded("microphone_denied", { detail: err.message });
  }
}

async function startListening() {
  let stream;
  try {
    stream = await openMicrophone();
  } catch (err) {
    sayError(statusLine, err);
    return;
  }
  say(statusLine, "Loading the model…", "muted");
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/js/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-capture");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/audio`);
  socket.binaryType = "arraybuffer";
  session = { socket, context, stream, node, ready: false };
  setListening(true);
  node.port.onmessage = sender(session);
  socket.onopen = () => {
    socket.send(JSON.stringify({
      model: $("model").value || undefined, sample_rate: context.sampleRate,
      threshold: Number($("threshold").value), overlap: Number($("overlap").value),
    }));
  };
  socket.onmessage = (event) => receive(session, JSON.parse(event.data));
  socket.onclose = () => stopListening(false);
}

/** Batch the worklet's sample blocks into SEND_SAMPLES-long messages once the server is ready. */
function sender(current) {
  let pending = new Float32Array(SEND_SAMPLES);
  let filled = 0;
  return (event) => {
    if (!current.ready || current.socket.readyState !== WebSocket.OPEN) return;
    let block = event.data;
    while (block.length) {
      const take = Math.min(block.length, SEND_SAMPLES - filled);
      pending.set(block.subarray(0, take), filled);
      filled += take;
      block = block.subarray(take);
      if (filled === SEND_SAMPLES) {
        current.socket.send(pending.buffer);
        pending = new Float32Array(SEND_SAMPLES);
        filled = 0;
      }
    }
  };
}

/** One message from the server. */
function receive(current, message) {
  if (message.type === "ready") {
    current.ready = true;
    say(statusLine, `Listening with ${message.model} at ${current.context.sampleRate} Hz.`, "muted");
    current.context.createMediaStreamSource(current.stream).connect(current.node);
  } else if (message.type === "frames") {
    paintColumns(message);
  } else if (message.type === "word") {
    showWord(message);
  } else if (message.type === "error") {
    sayError(statusLine, coded(message.code || "internal", { detail: message.error }), messageOverrides);
  }
}

function stopListening(tellServer = true) {
  if (!session) return;
  const { socket, context, stream } = session;
  session = null;
  if (tellServer && socket.readyState === WebSocket.OPEN) socket.send("stop");
  stream.getTracks().forEach((track) => track.stop());
  context.close();
  setListening(false);
  if (!statusLine.classList.contains("error")) say(statusLine, "Stopped.", "muted");
}

// ---------------------------------------------------------------------------- start

function showModel() {
  const model = models.find((m) => m.name === $("model").value);
  showWords(model ? model.words : []);
}

async function start() {
  liveContext.fillStyle = "#000";
  liveContext.fillRect(0, 0, live.width, live.height);
  try {
    const [found, info] = await Promise.all([fillModelSelect($("model"), "speech", statusLine), serverInfo()]);
    models = found;
    messageOverrides = { no_model: noModelSentence(info) };
    if (!models.length) sayError(statusLine, coded("no_model"), messageOverrides);
  } catch (err) {
    sayError(statusLine, err);
  }
  setListening(false);
  showModel();
  $("model").addEventListener("change", showModel);
  $("threshold").addEventListener("input", () => {
    const value = Number($("threshold").value);
    $("threshold-value").textContent = value.toFixed(2);
    if (session && session.socket.readyState === WebSocket.OPEN) {
      session.socket.send(JSON.stringify({ type: "threshold", value }));
    }
  });
  $("listen").addEventListener("click", startListening);
  $("stop").addEventListener("click", () => stopListening(true));
  document.body.dataset.ready = "1";
}

/** "No speech model" with what to do about it on this server (its models folder, the built-in model). */
function noModelSentence(info) {
  return explain(coded("no_speech_model", { models_dir: info.models_dir, builtin_speech: info.builtin_speech }));
}

start();
