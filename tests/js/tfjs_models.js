#!/usr/bin/env node
/*
 * Real TensorFlow.js (4.22, pure JS) side of sightsound's format tests.
 *
 *   node tfjs_models.js make OUTDIR
 *       Builds the chapter's four listings (and two small coverage models) in
 *       TF.js with random weights, saves each to OUTDIR/<name>/ with a
 *       file-writing save handler that writes what tfjs-node's `file://`
 *       handler writes, and writes OUTDIR/expect.json: fixed inputs, TF.js's
 *       predictions and model.summary() lines for each model.
 *
 *   node tfjs_models.js check SPEC.json OUT.json
 *       Loads each model folder named in SPEC.json with tf.loadLayersModel and
 *       a file IO handler (weight paths relative to model.json), predicts the
 *       given inputs, prints summaries; optionally runs one training step on a
 *       given batch (restored optimizer state) and predicts again.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

// --- listings (identical to sightsound/presets.py) --------------------------
const {IMAGE, SPEECH, listings} = require('./listings.js');
const {fileLoader, fileSaver, fixedInputs, predict, randomizeWeights, summaryLines} = require('./tfjs_io.js')(tf);
const {mnistConv, mnistDense, mnistEnhanced, speechConv} = listings(tf);

// Not a listing: 'same' padding, strides, BatchNormalization (one frozen), average pooling.
function coverage() {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({inputShape: [12, 10, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same',
                          activation: 'elu'}));
  m.add(tf.layers.batchNormalization());
  m.add(tf.layers.maxPooling2d({poolSize: 3, strides: 2, padding: 'same'}));
  m.add(tf.layers.conv2d({filters: 6, kernelSize: [2, 3], padding: 'same', useBias: false}));
  m.add(tf.layers.batchNormalization({trainable: false}));
  m.add(tf.layers.activation({activation: 'relu6'}));
  m.add(tf.layers.averagePooling2d({poolSize: 2, padding: 'same'}));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({units: 7, activation: 'tanh'}));
  m.add(tf.layers.dense({units: 5, activation: 'softmax'}));
  return m;
}

async function trainStep(model, step) {
  const x = tf.tensor(step.x, step.x_shape);
  const y = tf.tensor(step.y, step.y_shape);
  await model.fit(x, y, {batchSize: step.x_shape[0], epochs: 1, shuffle: false, verbose: 0});
  tf.dispose([x, y]);
}

// --- commands -------------------------------------------------------------------
async function make(outDir) {
  fs.mkdirSync(outDir, {recursive: true});
  const plan = [
    ['mnist-conv', mnistConv, [3, ...IMAGE], 0, 1],
    ['mnist-dense', mnistDense, [3, ...IMAGE], 0, 1],
    ['mnist-enhanced', mnistEnhanced, [3, ...IMAGE], 0, 1],
    ['speech-conv', speechConv, [2, ...SPEECH], -1, 1],
    ['coverage', coverage, [3, 12, 10, 3], -1, 1],
  ];
  const expect = {tfjs_version: tf.version.tfjs, models: {}};
  let seed = 1;
  for (const [name, build, shape, lo, hi] of plan) {
    const model = build();
    randomizeWeights(model, seed++);
    if (name === 'speech-conv') {
      model.setUserDefinedMetadata({words: ['_background_noise_', '_unknown_', 'zero'], frameSize: 232});
    }
    const inputs = fixedInputs(shape, seed++, lo, hi);
    await model.save(fileSaver(path.join(outDir, name)));
    expect.models[name] = {input_shape: shape, inputs, predictions: await predict(model, inputs, shape),
                           summary: summaryLines(model)};
  }
  // Trained models saved with their optimizer (trainingConfig + optimizer weights).
  const trained = [
    // [name, listing, optimizer, input batch shape, classes, record one more step after saving?]
    ['trained-adam', mnistDense, tf.train.adam(0.01), [4, ...IMAGE], 10, true],
    ['trained-rmsprop', coverage, tf.train.rmsprop(0.01, 0.9, 0.5), [4, 12, 10, 3], 5, false],
  ];
  for (const [name, build, optimizer, shape, classes, stepAgain] of trained) {
    const model = build();
    randomizeWeights(model, seed++);
    model.compile({optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});
    const n = shape[0];
    const labels = Array.from({length: n}, (_, i) => i % classes);
    const step = {x: fixedInputs(shape, seed++), x_shape: shape,
                  y: Array.from(tf.oneHot(tf.tensor1d(labels, 'int32'), classes).dataSync()),
                  y_shape: [n, classes]};
    for (let i = 0; i < 3; i++) await trainStep(model, step);
    await model.save(fileSaver(path.join(outDir, name)), {includeOptimizer: true});
    const inputs = fixedInputs(shape, seed++);
    const entry = {input_shape: shape, inputs, predictions: await predict(model, inputs, shape),
                   summary: summaryLines(model)};
    if (stepAgain) {  // one more step from the saved state
      await trainStep(model, step);
      Object.assign(entry, {step, after_step: await predict(model, inputs, shape)});
    }
    expect.models[name] = entry;
  }
  fs.writeFileSync(path.join(outDir, 'expect.json'), JSON.stringify(expect));
}

async function check(specPath, outPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const out = {};
  for (const item of spec.models) {
    const model = await tf.loadLayersModel(fileLoader(item.dir));
    const result = {predictions: await predict(model, item.inputs, item.input_shape),
                    summary: summaryLines(model)};
    if (model.optimizer != null) {
      result.optimizer = {class_name: model.optimizer.getClassName(), iterations: model.optimizer.iterations,
                          loss: model.loss};
    }
    if (item.step) {
      await trainStep(model, item.step);
      result.after_step = await predict(model, item.inputs, item.input_shape);
    }
    out[item.name] = result;
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'make' && args.length === 1) return make(args[0]);
  if (command === 'check' && args.length === 2) return check(args[0], args[1]);
  console.error('usage: tfjs_models.js make OUTDIR | check SPEC.json OUT.json');
  process.exit(2);
}

// tfjs_layers.js trains with this too.
module.exports = {trainStep};

if (require.main === module) {
  main().catch(err => {
    console.error(err && err.stack || err);
    process.exit(1);
  });
}
