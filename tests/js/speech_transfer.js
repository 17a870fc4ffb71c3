#!/usr/bin/env node
/*
 * The real @tensorflow-models/speech-commands 0.5.4 (with @tensorflow/tfjs 4.22) side of sightsound's
 * transfer-learning checks (tests/test_speech_transfer.py).
 *
 *   node speech_transfer.js make-dataset OUTDIR
 *       Builds a dataset with the package's Dataset (words with and without a key frame, a longer
 *       background-noise example with raw audio), serializes it to OUTDIR/from_js.bin and writes what went
 *       in: OUTDIR/from_js.json (one spec per example, in serialized order) and OUTDIR/from_js.f32 (each
 *       example's spectrogram then raw audio, float32, straight from the Float32Arrays).
 *
 *   node speech_transfer.js check MODELDIR DATASET.bin SPECTROGRAMS.f32 OUT.json
 *       Loads MODELDIR (model.json + weights + metadata.json) with the package's
 *       create('BROWSER_FFT', undefined, modelArtifacts, metadata), recognizes each 43x232 spectrogram of
 *       SPECTROGRAMS.f32, loads DATASET.bin into a transfer recognizer with loadExamples, and writes
 *       {wordLabels, scores, counts, examples: [{label, frames, frameSize, keyFrameIndex, rawAudio...}]} to
 *       OUT.json and the loaded examples' data (vocabulary order) to OUT.json's name + '.f32'.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const speechCommands = require('@tensorflow-models/speech-commands');
const {fileLoader, rng} = require('./tfjs_io.js')(tf);

function values(n, seed) {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 8 - 4;
  return out;
}

function arrayBufferOf(buffer) {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

function concat(arrays) {
  return Buffer.concat(arrays.map(a => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
}

function makeDataset(outDir) {
  const dataset = new speechCommands.Dataset();
  const frameSize = 232;
  const add = (label, frames, seed, extra = {}) => {
    const spectrogram = {frameSize, data: values(frames * frameSize, seed)};
    if (extra.keyFrameIndex != null) spectrogram.keyFrameIndex = extra.keyFrameIndex;
    const example = {label, spectrogram};
    if (extra.rawAudio) example.rawAudio = {sampleRateHz: 44100, data: values(extra.rawAudio, seed + 100)};
    dataset.addExample(example);
  };
  add('zebra', 43, 1);
  add('apple', 43, 2, {keyFrameIndex: 20});
  add('_background_noise_', 90, 3, {rawAudio: 4096});
  add('zebra', 43, 4);
  add('apple', 50, 5);
  add('_background_noise_', 60, 6);
  const bin = Buffer.from(dataset.serialize());
  fs.mkdirSync(outDir, {recursive: true});
  fs.writeFileSync(path.join(outDir, 'from_js.bin'), bin);
  const {specs, data} = describe(dataset);
  fs.writeFileSync(path.join(outDir, 'from_js.json'), JSON.stringify(specs));
  fs.writeFileSync(path.join(outDir, 'from_js.f32'), data);
}

// Each example of `dataset` (vocabulary order, then the order added): its spec and its floats.
function describe(dataset) {
  const specs = [];
  const arrays = [];
  for (const label of dataset.getVocabulary()) {
    for (const {example} of dataset.getExamples(label)) {
      const s = example.spectrogram;
      specs.push({label, frames: s.data.length / s.frameSize, frameSize: s.frameSize,
                  keyFrameIndex: s.keyFrameIndex == null ? null : s.keyFrameIndex,
                  rawAudioSamples: example.rawAudio ? example.rawAudio.data.length : null,
                  rawAudioSampleRateHz: example.rawAudio ? example.rawAudio.sampleRateHz : null});
      arrays.push(s.data);
      if (example.rawAudio) arrays.push(example.rawAudio.data);
    }
  }
  return {specs, data: concat(arrays)};
}

async function check(modelDir, datasetPath, spectrogramsPath, outPath) {
  const artifacts = await fileLoader(modelDir).load();
  const metadata = JSON.parse(fs.readFileSync(path.join(modelDir, 'metadata.json'), 'utf8'));
  const recognizer = speechCommands.create('BROWSER_FFT', undefined, artifacts, metadata);
  await recognizer.ensureModelLoaded();
  const raw = fs.readFileSync(spectrogramsPath);
  const input = new Float32Array(arrayBufferOf(raw));
  const result = await recognizer.recognize(input);
  const scores = (Array.isArray(result.scores) ? result.scores : [result.scores]).map(s => Array.from(s));
  const transfer = recognizer.createTransfer('from-python');
  transfer.loadExamples(arrayBufferOf(fs.readFileSync(datasetPath)));
  const {specs, data} = describe(transfer.dataset);
  fs.writeFileSync(outPath + '.f32', data);
  fs.writeFileSync(outPath, JSON.stringify({
    wordLabels: recognizer.wordLabels(), inputShape: recognizer.modelInputShape(), scores,
    counts: transfer.countExamples(), transferWords: transfer.wordLabels(), examples: specs}));
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'make-dataset') return makeDataset(args[0]);
  if (mode === 'check') return check(...args);
  throw new Error(`unknown mode ${mode}`);
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
