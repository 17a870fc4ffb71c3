'use strict';
// A TF.js IO handler reading a Layers model from a local folder: model.json and the weight files its
// manifest names, relative to it (what tfjs-node's `file://` loader does, for pure-JS @tensorflow/tfjs).
// Shared by tests/js/tfjs_models.js and tests/js/keras_models.js; `tf` is passed in by the caller.
const fs = require('fs');
const path = require('path');

function fileLoader(tf, dir) {
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

module.exports = {fileLoader};
