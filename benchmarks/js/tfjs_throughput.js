#!/usr/bin/env node
// TF.js (pure-JS CPU backend, what a browser without WebGL runs) throughput for
// the chapter's MNIST models. Called by benchmarks/throughput.py, which writes
// the data files; it can also be run by hand:
//
//   node benchmarks/js/tfjs_throughput.js --data DIR --model conv --samples 640 \
//        --batch 320 --repeats 1 --predict-samples 640 --predict-batch 1024
//
// DIR holds train_x.f32 (float32 NHWC [N,28,28,1], values in [0,1]),
// train_y.u8 (labels [N]), test_x.f32 and test_y.u8, all little-endian raw.
// The result is one line on stdout starting with "@@RESULT " followed by JSON.
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const args = {model: 'conv', samples: 640, batch: 320, repeats: 1, predictSamples: 640,
                predictBatch: 1024, warmup: 32};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = argv[i + 1];
    args[key] = ['data', 'model'].includes(key) ? value : Number(value);
  }
  if (!args.data) throw new Error('--data DIR is required');
  return args;
}

function readF32(file, count) {
  const buf = fs.readFileSync(file);
  const n = Math.min(count, buf.length / 4);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(4 * i);
  return out;
}

function buildModel(tf, kind) {
  const {mnistConv, mnistEnhanced} = require('../../tests/js/listings.js').listings(tf);
  const build = {conv: mnistConv, enhanced: mnistEnhanced}[kind];  // Listings 4.1 and 4.5
  if (!build) throw new Error(`unknown model ${kind}`);
  const m = build();
  m.compile({optimizer: 'rmsprop', loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  return m;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main() {
  const args = parseArgs(process.argv);
  // Keep the "install tfjs-node" banner off stdout: it goes to stderr.
  const log = console.log;
  console.log = (...a) => console.error(...a);
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();

  const pixels = 28 * 28;
  const nTrain = Math.floor(args.samples / args.batch) * args.batch;
  const nWarm = Math.min(args.warmup, nTrain);
  const trainX = readF32(path.join(args.data, 'train_x.f32'), nTrain * pixels);
  const trainY = Array.from(fs.readFileSync(path.join(args.data, 'train_y.u8')).subarray(0, nTrain));
  const xs = tf.tensor4d(trainX, [nTrain, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(trainY, 'int32'), 10).toFloat();
  const nTest = args.predictSamples;
  const testX = readF32(path.join(args.data, 'test_x.f32'), nTest * pixels);
  const px = tf.tensor4d(testX, [testX.length / pixels, 28, 28, 1]);

  const model = buildModel(tf, args.model);
  const rssSetupKb = process.resourceUsage().maxRSS;

  // Warm-up: one small batch of training (first-call allocations); prediction's comes after training.
  await model.fit(xs.slice(0, nWarm), ys.slice(0, nWarm), {batchSize: nWarm, epochs: 1, verbose: 0});

  const train = [];
  for (let r = 0; r < args.repeats; r++) {
    const t0 = process.hrtime.bigint();
    await model.fit(xs, ys, {batchSize: args.batch, epochs: 1, shuffle: true, verbose: 0});
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    train.push(nTrain / sec);
    console.error(`tfjs ${args.model}: repeat ${r + 1}: ${(nTrain / sec).toFixed(2)} samples/s`);
  }
  const peakTrainKb = process.resourceUsage().maxRSS;
  tf.tidy(() => model.predict(px.slice(0, Math.min(8, px.shape[0]))).dataSync());
  const predict = [];
  for (let r = 0; r < args.repeats; r++) {
    const t0 = process.hrtime.bigint();
    tf.tidy(() => model.predict(px, {batchSize: args.predictBatch}).dataSync());
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    predict.push(px.shape[0] / sec);
  }
  log('@@RESULT ' + JSON.stringify({
    engine: 'tfjs', model: args.model, version: tf.version.tfjs, backend: tf.getBackend(),
    train_samples: nTrain, batch: args.batch, train_per_s: train, train_median: median(train),
    predict_samples: px.shape[0], predict_per_s: predict, predict_median: median(predict),
    train_best: Math.max(...train), predict_best: Math.max(...predict),
    rss_setup_mb: rssSetupKb / 1024, peak_rss_train_mb: peakTrainKb / 1024, threads: 1,
  }));
}

main().catch((err) => { console.error(err && err.stack || err); process.exit(1); });
