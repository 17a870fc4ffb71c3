// Speech page: microphone -> AudioWorklet -> /ws/audio (float32 PCM) -> the server's streaming recognizer.
// Shows the recognised word large with its probability and one-second spectrogram, the live spectrogram,
// the model's word list and a threshold slider.
import { fillModelSelect, markNav, say } from "./common.js";

const SEND_SAMPLES = 4096; // samples per websocket message (about 85 ms at 48 kHz)

const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const live = $("spectrogram");
const liveContext = live.getContext("2d");

let session = null; // {socket, context, stream, node}

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
  const item = document.createElement("li");
  item.textContent = `${message.word} (${message.score.toFixed(2)}) at ${message.time.toFixed(2)} s`;
  $("history").prepend(item);
  while ($("history").children.length > 20) $("history").lastChild.remove();
}

// ---------------------------------------------------------------------------- listening

function setListening(listening) {
  $("listen").disabled = listening;
  $("stop").disabled = !listening;
  $("model").disabled = listening;
  $("overlap").disabled = listening;
}

async function startListening() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say(statusLine, "This browser gives no microphone access here (use http://127.0.0.1 or https).", "error");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
  } catch (err) {
    say(statusLine, `No microphone: ${err.message}`, "error");
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/js/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-capture");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/audio`);
  socket.binaryType = "arraybuffer";
  session = { socket, context, stream, node };
  setListening(true);

  let pending = new Float32Array(SEND_SAMPLES);
  let filled = 0;
  let ready = false;
  node.port.onmessage = (event) => {
    if (!ready || socket.readyState !== WebSocket.OPEN) return;
    let block = event.data;
    while (block.length) {
      const take = Math.min(block.length, SEND_SAMPLES - filled);
      pending.set(block.subarray(0, take), filled);
      filled += take;
      block = block.subarray(take);
      if (filled === SEND_SAMPLES) {
        socket.send(pending.buffer);
        pending = new Float32Array(SEND_SAMPLES);
        filled = 0;
      }
    }
  };
  socket.onopen = () => {
    socket.send(JSON.stringify({
      model: $("model").value || undefined, sample_rate: context.sampleRate,
      threshold: Number($("threshold").value), overlap: Number($("overlap").value),
    }));
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      ready = true;
      showWords(message.words);
      say(statusLine, `Listening with ${message.model} at ${context.sampleRate} Hz.`, "muted");
      context.createMediaStreamSource(stream).connect(node);
    } else if (message.type === "frames") {
      paintColumns(message);
    } else if (message.type === "word") {
      showWord(message);
    } else if (message.type === "error") {
      say(statusLine, message.error, "error");
    }
  };
  socket.onclose = () => stopListening(false);
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

async function start() {
  markNav();
  liveContext.fillStyle = "#000";
  liveContext.fillRect(0, 0, live.width, live.height);
  try {
    const models = await fillModelSelect($("model"), "speech");
    if (!models.length) {
      say(statusLine, "No speech model: the built-in one is missing from this install and the models folder " +
        "holds none (train one with `sightsound speech train`).", "error");
    }
  } catch (err) {
    say(statusLine, err.message, "error");
  }
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

start();
