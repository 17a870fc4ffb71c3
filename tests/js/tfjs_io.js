'use strict';
// Helpers the TF.js format checks share (tfjs_models.js, tfjs_functional.js): deterministic inputs and
// weights, summaries as lines, predictions, and file save/load handlers like tfjs-node's `file://` ones.
// `tf` is passed in so each caller uses the @tensorflow/tfjs it loaded.
const fs = require('fs');
const path = require('path');

module.exports = tf => {
  function rng(seed) {  // mulberry32: small, deterministic
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function fixedInputs(shape, seed, lo = 0, hi = 1) {
    const next = rng(seed);
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = lo + (hi - lo) * next();
    return Array.from(values);
  }

  function randomizeWeights(model, seed) {
    // Kernels keep TF.js's random initialisation; biases and BatchNorm stats get random values too.
    const next = rng(seed);
    const values = model.weights.map(w => {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const name = w.originalName || w.name;
      if (/kernel$/.test(name)) return w.read();
      const lo = /(gamma|moving_variance)$/.test(name) ? 0.5 : -0.1;
      const hi = /(gamma|moving_variance)$/.test(name) ? 1.5 : 0.1;
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * next();
      return tf.tensor(data, w.shape);
    });
    model.setWeights(values);
  }

  function summaryLines(model) {
    const lines = [];
    model.summary(undefined, undefined, line => lines.push(line));
    return lines;
  }

  async function predict(model, inputs, shape) {
    const x = tf.tensor(inputs, shape);
    const y = model.predict(x);
    const out = Array.from(await y.data());
    tf.dispose([x, y]);
    return out;
  }

  // Writes what tfjs-node's `file://` save handler (NodeFileSystem.save) writes.
  function fileSaver(dir) {
    return tf.io.withSaveHandler(async artifacts => {
      fs.mkdirSync(dir, {recursive: true});
      const modelJSON = {
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}],
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
      };
      if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata != null) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJSON), 'utf8');
      const data = Array.isArray(artifacts.weightData) ?
          Buffer.concat(artifacts.weightData.map(b => Buffer.from(b))) : Buffer.from(artifacts.weightData);
      fs.writeFileSync(path.join(dir, 'weights.bin'), data);
      return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
    });
  }

  // Reads model.json and the weight files it names, relative to its folder.
  function fileLoader(dir) {
    return {
      load: async () => {
        const modelJSON = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
        return tf.io.getModelArtifactsForJSON(modelJSON, async manifest => {
          const specs = [];
          const buffers = [];
          for (const group of manifest) {
            for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
            specs.push(...group.weights);
          }
          const all = Buffer.concat(buffers);
          return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
        });
      },
    };
  }

  return {rng, fixedInputs, randomizeWeights, summaryLines, predict, fileSaver, fileLoader};
};
