#!/usr/bin/env node
/*
 * Real TensorFlow.js (4.22, pure JS) on the converter's files: tests/test_keras_converter.py.
 *
 *   node keras_models.js SPEC.json OUT.json
 *
 * SPEC.json: {"models": [{"key": "...", "dir": "/abs/model/folder", "inputs": ["/abs/x0.npy", ...]}]}.
 * Each folder is loaded with tf.loadLayersModel and a file IO handler (weight paths relative to
 * model.json) and predicts its inputs (little-endian float32 .npy files, C order). OUT.json gets, by
 * key, {"outputs": [[flat float32 values], ...]} or, when TF.js cannot load or run the model,
 * {"error": "its message"}.
 */
'use strict';
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
const {fileLoader} = require('./tfjs_io.js')(tf);

// A .npy file (format 1.0-3.0) of little-endian float32 in C order, as a tensor.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: expected little-endian float32 in C order, header ${header}`);
  }
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter(s => s.trim()).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return tf.tensor(data, shape);
}

async function run(item) {
  const model = await tf.loadLayersModel(fileLoader(item.dir));
  const xs = item.inputs.map(readNpy);
  const ys = model.predict(xs.length === 1 ? xs[0] : xs);
  const outputs = [];
  for (const y of Array.isArray(ys) ? ys : [ys]) outputs.push(Array.from(await y.data()));
  tf.dispose([xs, ys]);
  model.dispose();
  return {outputs};
}

async function main() {
  const [specPath, outPath] = process.argv.slice(2);
  if (!specPath || !outPath) {
    console.error('usage: keras_models.js SPEC.json OUT.json');
    process.exit(2);
  }
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const out = {tfjs_version: tf.version.tfjs, models: {}};
  for (const item of spec.models) {
    try {
      out.models[item.key] = await run(item);
    } catch (err) {
      out.models[item.key] = {error: String(err && err.message || err)};
    }
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().catch(err => {
  console.error(err && err.stack || err);
  process.exit(1);
});
