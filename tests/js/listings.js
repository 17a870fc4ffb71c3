'use strict';
// The chapter's listings in TF.js, identical to sightsound/presets.py. Shared by the format tests
// (tests/js/tfjs_models.js) and the TF.js throughput benchmark (benchmarks/js/tfjs_throughput.js);
// `tf` is passed in so each caller uses the @tensorflow/tfjs it loaded.

const IMAGE = [28, 28, 1];
const SPEECH = [43, 232, 1];

function listings(tf) {
  function mnistConv() {  // Listing 4.1
    const m = tf.sequential();
    m.add(tf.layers.conv2d({inputShape: IMAGE, kernelSize: 3, filters: 16, activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: 2, strides: 2}));
    m.add(tf.layers.conv2d({kernelSize: 3, filters: 32, activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: 2, strides: 2}));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({units: 64, activation: 'relu'}));
    m.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return m;
  }

  function mnistDense() {  // Listing 4.3
    const m = tf.sequential();
    m.add(tf.layers.flatten({inputShape: IMAGE}));
    m.add(tf.layers.dense({units: 42, activation: 'relu'}));
    m.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return m;
  }

  function mnistEnhanced() {  // Listing 4.5
    const m = tf.sequential();
    m.add(tf.layers.conv2d({inputShape: IMAGE, filters: 32, kernelSize: 3, activation: 'relu'}));
    m.add(tf.layers.conv2d({filters: 32, kernelSize: 3, activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2]}));
    m.add(tf.layers.conv2d({filters: 64, kernelSize: 3, activation: 'relu'}));
    m.add(tf.layers.conv2d({filters: 64, kernelSize: 3, activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2]}));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dropout({rate: 0.25}));
    m.add(tf.layers.dense({units: 512, activation: 'relu'}));
    m.add(tf.layers.dropout({rate: 0.5}));
    m.add(tf.layers.dense({units: 10, activation: 'softmax'}));
    return m;
  }

  function speechConv(numClasses = 20) {  // Listing 4.8
    const m = tf.sequential();
    m.add(tf.layers.conv2d({filters: 8, kernelSize: [2, 8], activation: 'relu', inputShape: SPEECH}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2], strides: [2, 2]}));
    m.add(tf.layers.conv2d({filters: 32, kernelSize: [2, 4], activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2], strides: [2, 2]}));
    m.add(tf.layers.conv2d({filters: 32, kernelSize: [2, 4], activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2], strides: [2, 2]}));
    m.add(tf.layers.conv2d({filters: 32, kernelSize: [2, 4], activation: 'relu'}));
    m.add(tf.layers.maxPooling2d({poolSize: [2, 2], strides: [1, 2]}));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dropout({rate: 0.25}));
    m.add(tf.layers.dense({units: 2000, activation: 'relu'}));
    m.add(tf.layers.dropout({rate: 0.5}));
    m.add(tf.layers.dense({units: numClasses, activation: 'softmax'}));
    return m;
  }

  return {mnistConv, mnistDense, mnistEnhanced, speechConv};
}

module.exports = {IMAGE, SPEECH, listings};
