#!/usr/bin/env node
// ONNX Runtime's answers for a whole data set, for bench/int8_agreement.py: runs MODEL.onnx on the
// CPU (all graph optimisations) over the float32 images of IN (raw little-endian, N images of the
// model's input shape), 256 at a time, and writes the outputs to OUT (raw float32, N rows).
//
//   node bench/ort/ort_predict.js MODEL.onnx IN OUT [--threads 2]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const USAGE = 'usage: node ort_predict.js MODEL.onnx IN OUT [--threads T]';

function fail(message) {
  console.error(`ort_predict.js: ${message}`);
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { threads: { type: 'string' } } });
  } catch (e) {
    fail(`${e.message}\n${USAGE}`);
  }
  if (parsed.positionals.length !== 3) fail(USAGE);
  const [model, input, output] = parsed.positionals;
  const threads = Number(parsed.values.threads ?? 2);
  if (!Number.isInteger(threads) || threads < 1) fail('--threads takes an integer of at least 1');
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const [, ...rest] = session.inputMetadata[0].shape;
  if (rest.some((d) => typeof d !== 'number' || d < 1)) fail('the input must have fixed dimensions after the batch');
  const image = rest.reduce((a, b) => a * b, 1);
  const bytes = readFileSync(input);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (all.length % image !== 0) fail(`${input} does not hold whole images of ${image} values`);
  const count = all.length / image;
  const outputs = [];
  for (let first = 0; first < count; first += 256) {
    const n = Math.min(256, count - first);
    const feeds = {
      [session.inputNames[0]]: new ort.Tensor('float32', all.slice(first * image, (first + n) * image), [n, ...rest]),
    };
    const result = await session.run(feeds);
    outputs.push(Buffer.from(result[session.outputNames[0]].data.buffer.slice(0)));
  }
  await session.release();
  writeFileSync(output, Buffer.concat(outputs));
}

main().catch((e) => {
  console.error(`ort_predict.js: ${e.message}`);
  process.exit(1);
});
