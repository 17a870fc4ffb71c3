#!/usr/bin/env node
/*
 * Prints the modelTopology real TensorFlow.js (4.22) writes for a functional model with two inputs, a
 * nested Sequential and a regularizer: tests/test_tfjs_dialects.py checks that sightsound.tfjs.dialects
 * leaves TF.js's own dialect unchanged.
 */
'use strict';
const tf = require('@tensorflow/tfjs');

const a = tf.input({shape: [6], name: 'a'});
const b = tf.input({shape: [4, 4, 3], name: 'b'});
const x = tf.layers.dense({units: 4, activation: 'relu', kernelRegularizer: tf.regularizers.l2({l2: 0.01})}).apply(a);
const y = tf.layers.globalAveragePooling2d({}).apply(
    tf.layers.separableConv2d({filters: 4, kernelSize: 3, padding: 'same'}).apply(b));
const z = tf.layers.leakyReLU({alpha: 0.2}).apply(
    tf.layers.batchNormalization({axis: -1}).apply(tf.layers.add().apply([x, y])));
const inner = tf.sequential({layers: [tf.layers.dense({inputShape: [4], units: 2}), tf.layers.reLU({maxValue: 6})]});
const model = tf.model({inputs: [a, b], outputs: [inner.apply(z), tf.layers.elu().apply(x)]});
process.stdout.write(JSON.stringify(model.toJSON(null, false)));
