#!/usr/bin/env node
/*
 * Real TensorFlow.js (4.22) side of tests/test_layers_tfjs.py: the convnet layers beyond the chapter's.
 *
 *   node tfjs_layers.js make OUTDIR
 *       Builds small Sequential models that use those layers, with random weights, saves each to
 *       OUTDIR/<name>/ (as tfjs-node's `file://` handler writes) and writes OUTDIR/expect.json: for each
 *       model fixed inputs, TF.js's predictions and model.summary() lines (and for one, a training step
 *       and the predictions after it); and for the merge layers, which a Sequential cannot hold, each
 *       layer's saved config with concrete inputs and the output of layer.apply(inputs).
 *
 * The reverse direction (sightsound saves, TF.js loads) uses `tfjs_models.js check`.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const {fixedInputs, randomizeWeights, summaryLines, predict, fileSaver} = require('./tfjs_io.js')(tf);
const {trainStep} = require('./tfjs_models.js');

const L = tf.layers;

// [name, input batch shape, layers]; every layer class added by the convnet-layers work appears at least once.
const MODELS = [
  ['padding-depthwise', [3, 7, 6, 3], () => [
    L.zeroPadding2d({inputShape: [7, 6, 3], padding: [[1, 2], [0, 1]]}),
    L.depthwiseConv2d({kernelSize: [3, 2], depthMultiplier: 2, strides: 2, padding: 'same', activation: 'relu'}),
    L.cropping2D({cropping: [[1, 0], [0, 1]]}),
    L.upSampling2d({size: [2, 3]}),
    L.separableConv2d({filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh'}),
    L.zeroPadding2d({}),
    L.separableConv2d({filters: 3, kernelSize: [2, 3], dilationRate: 2, useBias: false}),
    L.globalMaxPooling2d({}),
  ]],
  ['bilinear-prelu', [3, 4, 5, 2], () => [
    L.upSampling2d({inputShape: [4, 5, 2], size: [3, 2], interpolation: 'bilinear'}),
    L.prelu({sharedAxes: [1, 2]}),
    L.conv2d({filters: 3, kernelSize: 3, strides: 2, padding: 'same'}),
    L.prelu({}),
    L.depthwiseConv2d({kernelSize: 2, padding: 'same'}),
    L.reLU({maxValue: 0.5}),
    L.globalAveragePooling2d({}),
    L.softmax({}),
  ]],
  ['sequence', [3, 12, 3], () => [
    L.conv1d({inputShape: [12, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same'}),
    L.batchNormalization(),
    L.conv1d({filters: 5, kernelSize: 2, dilationRate: 2, activation: 'elu'}),
    L.maxPooling1d({poolSize: 2, strides: 1, padding: 'same'}),
    L.averagePooling1d({poolSize: 3, padding: 'same'}),
    L.leakyReLU({alpha: 0.2}),
    L.permute({dims: [2, 1]}),
    L.thresholdedReLU({theta: -0.02}),
    L.elu({}),
    L.globalMaxPooling1d({}),
    L.dense({units: 4}),
  ]],
  ['sequence-pools', [3, 9, 4], () => [
    L.maxPooling1d({inputShape: [9, 4], poolSize: 3, strides: 2}),
    L.averagePooling1d({poolSize: 2, strides: 1}),
    L.prelu({sharedAxes: 1}),
    L.globalAveragePooling1d({}),
    L.softmax({axis: -1}),
  ]],
  // axis 1 of [c, h, w] data, as a channels-first model writes it; then 2, then the default -1. TF.js's CPU
  // kernel gets a batch norm over any axis but the last wrong: see referencePredictions.
  ['batchnorm-axes', [3, 3, 4, 5], () => [
    L.batchNormalization({inputShape: [3, 4, 5], axis: 1}),
    L.batchNormalization({axis: 2}),
    L.batchNormalization({axis: -1}),
    L.permute({dims: [3, 1, 2]}),
    L.softmax({axis: [1, 2]}),
  ]],
  // Keras 2's spelling: a list of one axis.
  ['batchnorm-list-axis', [3, 4, 4, 3], () => [
    L.conv2d({inputShape: [4, 4, 3], filters: 2, kernelSize: 1}),
    L.batchNormalization({axis: [3], center: false}),
  ]],
  ['input-layer', [3, 6], () => [
    L.inputLayer({inputShape: [6]}),
    L.dense({units: 4, activation: 'relu'}),
  ]],
  // TF.js saves -1 as null, and states the output shape as unknown.
  ['reshape-unknown', [3, 4, 3], () => [
    L.reshape({inputShape: [4, 3], targetShape: [-1, 2]}),
    L.dense({units: 3}),
    L.reshape({targetShape: [2, -1]}),
  ]],
];

// [name, layer, input shapes (batch 2), inputs' low and high values]
const MERGES = [
  ['add-images', () => L.add({}), [[2, 3, 4, 5], [2, 3, 4, 5]]],
  ['add-three', () => L.add({}), [[2, 6], [2, 6], [2, 6]]],
  ['multiply-broadcast', () => L.multiply({}), [[2, 3, 4, 5], [2, 1, 1, 5]]],
  ['average-ranks', () => L.average({}), [[2, 4, 5], [2, 5]]],
  ['maximum-image-vector', () => L.maximum({}), [[2, 3, 4, 5], [2, 5]]],
  ['minimum', () => L.minimum({name: 'the_minimum'}), [[2, 6], [2, 6], [2, 6]]],
  ['concatenate-channels', () => L.concatenate({}), [[2, 3, 4, 5], [2, 3, 4, 2]]],
  ['concatenate-rows', () => L.concatenate({axis: 1}), [[2, 3, 4, 5], [2, 2, 4, 5]]],
  ['concatenate-width', () => L.concatenate({axis: 2}), [[2, 3, 4, 5], [2, 3, 1, 5]]],
  ['concatenate-sequence', () => L.concatenate({axis: 1}), [[2, 3, 4], [2, 5, 4]]],
  ['dot-vectors', () => L.dot({axes: 1}), [[2, 6], [2, 6]]],
  ['dot-cosine', () => L.dot({axes: -1, normalize: true}), [[2, 6], [2, 6]]],
  ['dot-matrices', () => L.dot({axes: 2}), [[2, 3, 4], [2, 5, 4]]],
  ['dot-matrices-first', () => L.dot({axes: [1, 1]}), [[2, 3, 4], [2, 3, 2]]],
  ['dot-matrix-vector', () => L.dot({axes: [2, 1]}), [[2, 3, 4], [2, 4]]],
  ['dot-vector-matrix', () => L.dot({axes: [1, 2]}), [[2, 4], [2, 3, 4]]],
];

// The predictions the layers define, for a model whose BatchNormalization layers normalise an axis other than
// the last: TF.js 4.22's CPU batchNorm kernel reads the [1, c, 1, 1]-shaped statistics the layer passes it as
// if they ran along the last axis (element i takes statistic i % c), so model.predict is wrong there. This
// normalises with broadcasting ops instead: beta + (x - mean) * gamma / sqrt(variance + epsilon), as the
// kernel computes it for the last axis.
async function referencePredictions(model, inputs, shape) {
  let x = tf.tensor(inputs, shape);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') {
      x = layer.apply(x);
      continue;
    }
    const axis = layer.axis < 0 ? layer.axis + x.rank : layer.axis;
    const along = x.shape.map((d, i) => (i === axis ? d : 1));
    const [gamma, beta, mean, variance] = layer.getWeights().map(w => w.reshape(along));
    x = tf.add(beta, tf.div(tf.mul(tf.sub(x, mean), gamma), tf.sqrt(tf.add(variance, layer.epsilon))));
  }
  return Array.from(await x.data());
}

async function makeModels(outDir, expect, seed) {
  for (const [name, shape, build] of MODELS) {
    const model = tf.sequential({layers: build()});
    randomizeWeights(model, seed++);
    const inputs = fixedInputs(shape, seed++, -1, 1);
    const entry = {input_shape: shape, inputs, predictions: await predict(model, inputs, shape),
                   summary: summaryLines(model)};
    if (name === 'batchnorm-axes') {
      Object.assign(entry, {cpu_kernel_predictions: entry.predictions,
                            predictions: await referencePredictions(model, inputs, shape)});
    }
    if (name === 'bilinear-prelu') {  // and one SGD step, gradients included
      // metrics: [] as sightsound writes for none (TF.js writes {} when compile() is given no metrics at all)
      model.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError', metrics: []});
      await model.save(fileSaver(path.join(outDir, name)), {includeOptimizer: true});
      const out = model.outputs[0].shape.slice(1);
      const step = {x: fixedInputs(shape, seed++, -1, 1), x_shape: shape,
                    y: fixedInputs([shape[0], ...out], seed++), y_shape: [shape[0], ...out]};
      await trainStep(model, step);
      Object.assign(entry, {step, after_step: await predict(model, inputs, shape)});
    } else {
      await model.save(fileSaver(path.join(outDir, name)));
    }
    expect.models[name] = entry;
  }
  return seed;
}

function makeMerges(expect, seed) {
  for (const [name, build, shapes] of MERGES) {
    const layer = build();
    const symbolic = shapes.map(s => tf.input({shape: s.slice(1)}));
    const model = tf.model({inputs: symbolic, outputs: layer.apply(symbolic)});
    const config = model.toJSON(null, false).config.layers.find(l => l.name === layer.name);
    const inputs = shapes.map(s => fixedInputs(s, seed++, -1, 1));
    const output = layer.apply(inputs.map((values, i) => tf.tensor(values, shapes[i])));
    expect.merges[name] = {class_name: config.class_name, config: config.config, input_shapes: shapes, inputs,
                           output_shape: output.shape, output: Array.from(output.dataSync())};
  }
  return seed;
}

async function make(outDir) {
  fs.mkdirSync(outDir, {recursive: true});
  const expect = {tfjs_version: tf.version.tfjs, models: {}, merges: {}};
  const seed = await makeModels(outDir, expect, 101);
  makeMerges(expect, seed);
  fs.writeFileSync(path.join(outDir, 'expect.json'), JSON.stringify(expect));
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'make' && args.length === 1) return make(args[0]);
  console.error('usage: tfjs_layers.js make OUTDIR');
  process.exit(2);
}

main().catch(err => {
  console.error(err && err.stack || err);
  process.exit(1);
});
