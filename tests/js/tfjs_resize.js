// Resize fixed inputs with real TensorFlow.js, for tests/test_image.py.
//
// Reads JSON from stdin: {"cases": [{"id", "op": "bilinear" | "nearest", "shape": [n, h, w, c],
// "dtype": "float32" | "int32", "values": [...flat...], "size": [h, w], "alignCorners",
// "halfPixelCenters"}]} and writes {"tfjs": version, "backend", "results": [{"id", "shape",
// "dtype", "values"}]} as JSON to the file named by the first argument (stdout would mix with
// TF.js's own console messages).
//
//   node tests/js/tfjs_resize.js out.json < cases.json
'use strict';

const fs = require('fs');
const tf = require('@tensorflow/tfjs');

async function main() {
  const outPath = process.argv[2];
  if (!outPath) throw new Error('usage: node tfjs_resize.js OUT.json < cases.json');
  await tf.setBackend('cpu');
  const request = JSON.parse(fs.readFileSync(0, 'utf8'));
  const results = request.cases.map((spec) => {
    const input = tf.tensor4d(spec.values, spec.shape, spec.dtype);
    const resize = spec.op === 'bilinear' ? tf.image.resizeBilinear : tf.image.resizeNearestNeighbor;
    const output = resize(input, spec.size, spec.alignCorners, spec.halfPixelCenters);
    const result = {id: spec.id, shape: output.shape, dtype: output.dtype,
                    values: Array.from(output.dataSync())};
    input.dispose();
    output.dispose();
    return result;
  });
  fs.writeFileSync(outPath, JSON.stringify({tfjs: tf.version.tfjs, backend: tf.getBackend(), results}));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
