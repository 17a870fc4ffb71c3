#!/usr/bin/env node
/*
 * Real TensorFlow.js (4.22, pure JS) side of sightsound's functional-model checks (tests/test_functional.py).
 *
 *   node tfjs_functional.js make OUTDIR
 *       Builds functional models with tf.model (two inputs and two outputs with a shared layer and a nested
 *       tf.sequential head; a speech-commands-style transfer model; a functional model nested in another),
 *       gives them deterministic weights, saves each to OUTDIR/<name>/ like tfjs-node's `file://` handler and
 *       writes OUTDIR/expect.json: fixed inputs, TF.js's predictions and model.summary() lines.
 *
 *   node tfjs_functional.js check SPEC.json OUT.json
 *       Loads each model folder named in SPEC.json with tf.loadLayersModel, predicts the given inputs and
 *       prints its summary.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const {fileLoader, fileSaver, fixedInputs, randomizeWeights, summaryLines} = require('./tfjs_io.js')(tf);

// Two inputs, two outputs; `shared` is called on both branches; the second output is a nested sequential.
function twoBranch() {
  const left = tf.input({shape: [6], name: 'left'});
  const right = tf.input({shape: [5], name: 'right'});
  const shared = tf.layers.dense({units: 4, activation: 'tanh', name: 'shared'});
  const projected = tf.layers.dense({units: 5, activation: 'relu', name: 'project'}).apply(left);
  const a = shared.apply(projected);
  const b = shared.apply(right);
  const classes = tf.layers.dense({units: 3, activation: 'softmax', name: 'classes'}).apply(a);
  const head = tf.sequential({name: 'head', layers: [
    tf.layers.dense({units: 3, activation: 'relu', inputShape: [4], name: 'head_hidden'}),
    tf.layers.batchNormalization({name: 'head_bn'}),
    tf.layers.dense({units: 1, name: 'head_out'})]});
  return tf.model({inputs: [left, right], outputs: [classes, head.apply(b)], name: 'two_branch'});
}

// speech-commands' createTransferModelFromBaseModel: a new softmax head (a one-layer sequential) on the base
// model's second-last dense layer; the base layers are frozen, as the package freezes them.
function transfer() {
  const base = tf.sequential({name: 'base'});
  base.add(tf.layers.conv2d({inputShape: [12, 10, 1], filters: 4, kernelSize: 3, activation: 'relu'}));
  base.add(tf.layers.maxPooling2d({poolSize: 2}));
  base.add(tf.layers.conv2d({filters: 6, kernelSize: [2, 3], padding: 'same', activation: 'relu'}));
  base.add(tf.layers.batchNormalization());
  base.add(tf.layers.flatten());
  base.add(tf.layers.dropout({rate: 0.25}));
  base.add(tf.layers.dense({units: 8, activation: 'relu'}));
  base.add(tf.layers.dense({units: 5, activation: 'softmax'}));
  randomizeWeights(base, 7);
  base.layers.forEach(layer => { layer.trainable = false; });
  const truncated = base.layers[base.layers.length - 2].output;
  const head = tf.sequential();
  head.add(tf.layers.dense({units: 3, activation: 'softmax', inputShape: truncated.shape.slice(1),
                            name: 'NewHeadDense'}));
  return tf.model({inputs: base.inputs, outputs: head.apply(truncated)});
}

// A functional model called inside another, after a layer shared at two depths; the inner model's output is
// also an output of the outer one.
function nested() {
  const innerInput = tf.input({shape: [6], name: 'inner_in'});
  const inner = tf.model({inputs: innerInput, name: 'inner',
                          outputs: tf.layers.dense({units: 4, activation: 'relu', name: 'inner_dense'})
                              .apply(innerInput)});
  const x = tf.input({shape: [6], name: 'outer_in'});
  const twice = tf.layers.dense({units: 6, activation: 'tanh', name: 'twice'});
  const y = inner.apply(twice.apply(twice.apply(x)));
  const z = tf.layers.dense({units: 2, activation: 'softmax', name: 'outer_out'}).apply(y);
  return tf.model({inputs: x, outputs: [z, y], name: 'outer'});
}

function inputsFor(model, seed) {
  return model.inputs.map((t, i) => {
    const shape = [3, ...t.shape.slice(1)];
    return {shape, values: fixedInputs(shape, seed + i, -1, 1)};
  });
}

async function predictAll(model, inputs) {
  const xs = inputs.map(x => tf.tensor(x.values, x.shape));
  const result = model.predict(xs.length === 1 ? xs[0] : xs);
  const ys = Array.isArray(result) ? result : [result];
  const out = [];
  for (const y of ys) out.push(Array.from(await y.data()));
  tf.dispose([...xs, ...ys]);
  return out;
}

async function trainTransfer(model, seed) {
  model.compile({optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  const x = tf.tensor(fixedInputs([4, 12, 10, 1], seed), [4, 12, 10, 1]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
  for (let i = 0; i < 2; i++) await model.fit(x, y, {batchSize: 4, epochs: 1, shuffle: false, verbose: 0});
  tf.dispose([x, y]);
}

async function make(outDir) {
  fs.mkdirSync(outDir, {recursive: true});
  const expect = {tfjs_version: tf.version.tfjs, models: {}};
  let seed = 100;
  for (const [name, build] of [['two-branch', twoBranch], ['transfer', transfer], ['nested', nested]]) {
    const model = build();
    if (name === 'transfer') {
      await trainTransfer(model, seed++);
    } else {
      randomizeWeights(model, seed++);
    }
    const inputs = inputsFor(model, seed++);
    await model.save(fileSaver(path.join(outDir, name)), {includeOptimizer: name === 'transfer'});
    expect.models[name] = {inputs, predictions: await predictAll(model, inputs), summary: summaryLines(model),
                           weights: model.weights.map(w => w.originalName)};
  }
  fs.writeFileSync(path.join(outDir, 'expect.json'), JSON.stringify(expect));
}

async function check(specPath, outPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const out = {};
  for (const item of spec.models) {
    const model = await tf.loadLayersModel(fileLoader(item.dir));
    out[item.name] = {predictions: await predictAll(model, item.inputs), summary: summaryLines(model),
                      class_name: model.getClassName()};
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'make' && args.length === 1) return make(args[0]);
  if (command === 'check' && args.length === 2) return check(args[0], args[1]);
  console.error('usage: tfjs_functional.js make OUTDIR | check SPEC.json OUT.json');
  process.exit(2);
}

main().catch(err => {
  console.error(err && err.stack || err);
  process.exit(1);
});
