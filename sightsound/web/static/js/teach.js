// The Teach words page: record examples (microphone -> WAV -> the server's collect_example), delete bad
// ones, record background noise, train with a live curve, test a new word, save or load the examples.
import { chartLibrary, fetchJSON, say } from "/static/js/common.js";

const $ = (id) => document.getElementById(id);
let NOISE, UNKNOWN;  // the labels of noise and other speech, as the server names them
const statusLine = $("status");
let sid = null;
let chart = null;

/** 16-bit mono PCM WAV bytes of float samples. */
function wavBytes(samples, rate) {
  const buffer = new ArrayBuffer(44 + 2 * samples.length);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * samples.length, true); text(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * samples.length, true);
  samples.forEach((x, i) => view.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, x)) * 32767, true));
  return buffer;
}

/** `seconds` of microphone audio as WAV bytes. */
async function recordWav(seconds) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  });
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule("/static/js/pcm-worklet.js");
    const node = new AudioWorkletNode(context, "pcm-capture");
    const wanted = Math.round(seconds * context.sampleRate);
    const samples = new Float32Array(wanted);
    let filled = 0;
    await new Promise((resolve) => {
      node.port.onmessage = (event) => {
        const take = Math.min(event.data.length, wanted - filled);
        samples.set(event.data.subarray(0, take), filled);
        filled += take;
        if (filled >= wanted) resolve();
      };
      context.createMediaStreamSource(stream).connect(node);
    });
    return wavBytes(samples, context.sampleRate);
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
  }
}

/** Paint raw dB frames [frames][bins]: time across, low frequencies at the bottom. */
function paintSpectrogram(frames) {
  const canvas = $("example-spectrogram");
  canvas.width = frames.length;
  const bins = frames[0].length;
  const flat = frames.flat();
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const context = canvas.getContext("2d");
  const image = context.createImageData(frames.length, bins);
  frames.forEach((row, x) => row.forEach((v, b) => {
    const i = 4 * ((bins - 1 - b) * frames.length + x);
    const level = Math.round(255 * (v - lo) / Math.max(hi - lo, 1e-6));
    image.data[i] = image.data[i + 1] = image.data[i + 2] = level;
    image.data[i + 3] = 255;
  }));
  context.putImageData(image, 0, 0);
}

/** The example list: a count per word and a delete button per example. */
function showExamples(state) {
  const box = $("examples");
  box.replaceChildren();
  for (const word of state.words) {
    const line = document.createElement("div");
    line.className = "word-examples";
    line.dataset.word = word;
    line.append(`${word}: ${state.counts[word]} `);
    for (const example of state.examples.filter((e) => e.word === word)) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "✕";
      button.title = `delete example ${example.uid}`;
      button.onclick = () => run(async () => showExamples(
        await fetchJSON(`/api/teach/${sid}/examples/${example.uid}`, { method: "DELETE" })));
      line.append(button);
    }
    box.append(line);
  }
}

/** Send one example (WAV bytes) of `word`. Exposed for tests, which send WAV files instead of the microphone. */
async function addExample(word, wav) {
  const reply = await fetchJSON(`/api/teach/${sid}/examples?word=${encodeURIComponent(word)}`, {
    method: "POST", headers: { "Content-Type": "audio/wav" }, body: wav,
  });
  paintSpectrogram(reply.spectrogram);
  showExamples(reply);
  say(statusLine, `Added an example of "${word}".`);
  return reply;
}

async function recognizeWav(wav) {
  const reply = await fetchJSON(`/api/teach/${sid}/recognize`, {
    method: "POST", headers: { "Content-Type": "audio/wav" }, body: wav,
  });
  const p = Math.max(...reply.scores);
  $("heard").textContent = `${reply.word} (${p.toFixed(2)})`;
  $("heard").dataset.word = reply.word;
  return reply;
}

function plot(epochs) {
  const Chart = chartLibrary();
  const labels = epochs.map((e) => e.epoch);
  if (!chart) {
    chart = new Chart($("curve"), {
      type: "line",
      data: { labels, datasets: [{ label: "loss", data: [] }, { label: "accuracy", data: [] }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false },
    });
  }
  chart.data.labels = labels;
  chart.data.datasets[0].data = epochs.map((e) => e.loss);
  chart.data.datasets[1].data = epochs.map((e) => e.acc);
  chart.update();
}

function trainOptions() {
  // a seed, when given, makes the head's initial weights and shuffles repeat
  const seed = $("seed").value.trim();
  const options = { epochs: Number($("epochs").value) };
  if (seed !== "") options.seed = Number(seed);
  return options;
}

async function train() {
  await fetchJSON(`/api/teach/${sid}/train`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(trainOptions()),
  });
  say($("train-status"), "Training…");
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const state = await fetchJSON(`/api/teach/${sid}/train`);
    plot(state.epochs);
    if (state.error) throw new Error(state.error);
    if (!state.running) break;
  }
  say($("train-status"), "Trained: say a word to test it, or save the model.");
  $("train-status").dataset.done = "1";
  $("test").disabled = $("save").disabled = false;
}

async function save() {
  const name = $("model-name").value;
  await fetchJSON(`/api/teach/${sid}/save`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }),
  });
  const links = ["model.json", "weights.bin", "metadata.json"]
    .map((f) => `<a href="/models/${name}/${f}" download>${f}</a>`).join(" ");
  $("saved").innerHTML = `Saved: ${links} · <a href="/speech">listen with it on the Speech page</a>`;
}

async function run(action) {
  try {
    await action();
  } catch (err) {
    say(statusLine, err.message, "error");
  }
}

async function start() {
  const session = await fetchJSON("/api/teach", { method: "POST" });
  ({ id: sid, noise_label: NOISE, unknown_label: UNKNOWN } = session);
  Object.assign($("epochs"), { min: session.epochs.min, max: session.epochs.max, value: session.epochs.default });
  Object.assign($("seed"), { min: session.seed.min, max: session.seed.max });
  $("other-speech-note").textContent = `Training also teaches ${session.other_speech_examples} examples of ` +
    `other speech shipped with sightsound (as ${UNKNOWN}), so that the new model stays quiet when people say other things.`;
  $("download").href = `/api/teach/${sid}/examples.bin`;
  $("record").onclick = () => run(async () => {
    const word = $("new-word").value.trim();
    if (!word) throw new Error("Type the word first.");
    say(statusLine, `Say "${word}" now…`);
    await addExample(word, await recordWav(1));
  });
  $("record-noise").onclick = () => run(async () => {
    say(statusLine, "Recording the room's noise: stay quiet for 3 seconds…");
    await addExample(NOISE, await recordWav(3));
  });
  $("record-other").onclick = () => run(async () => {
    // other words, taught as _unknown_ (listening does not report it): the model then fires less on other speech
    say(statusLine, "Say any other word now…");
    await addExample(UNKNOWN, await recordWav(1));
  });
  $("train").onclick = () => run(train);
  $("test").onclick = () => run(async () => recognizeWav(await recordWav(1)));
  $("save").onclick = () => run(save);
  $("upload").onchange = () => run(async () => {
    const file = $("upload").files[0];
    showExamples(await fetchJSON(`/api/teach/${sid}/examples.bin`, { method: "POST", body: await file.arrayBuffer() }));
    say(statusLine, `Loaded the examples of ${file.name}.`);
  });
  window.teach = { addExample, recognizeWav, train, sessionId: () => sid };
  document.body.dataset.ready = "1";
}

run(start);
