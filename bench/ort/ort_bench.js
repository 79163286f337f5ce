#!/usr/bin/env node
// ONNX Runtime's side of bench/ort_compare.py: times one .onnx model at inference on the CPU, the
// way `lenz bench MODEL.onnx --batch N --json` times it in Lenz, and prints one JSON line.
//
//   node bench/ort/ort_bench.js MODEL.onnx [--batch 1] [--warmup 3] [--runs 20] [--threads 2]
//                               [--profile PREFIX]
//
// The input is random float32 of the model's declared input shape, its free batch dimension set to
// --batch. After --warmup untimed runs, each of --runs calls of session.run is timed (including the
// hop through Node's event loop that every call of the binding makes), and the median is reported
// as lenz bench reports it: the middle run of the sorted times (the upper middle for an even count).
// Memory: the process's peak resident set (getrusage), and that peak less the resident set just
// before the session is created, when Node and ONNX Runtime's library are loaded (as Lenz reports
// peak_rss_above_start_bytes: its bare process against its peak).
// --profile PREFIX turns on ONNX Runtime's own profiler (a time per node and run, which slows each
// run a little) and writes its JSON to PREFIX_<date>.json, whose path the JSON line gives as
// `profile` (bench/ort_profile.py reads it).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const USAGE = 'usage: node ort_bench.js MODEL.onnx [--batch N] [--warmup W] [--runs R] [--threads T] [--profile PREFIX]';

// Positive integer options, with lenz bench's defaults for a model file (3 warm-up runs, 20 timed).
const OPTIONS = { batch: 1, warmup: 3, runs: 20, threads: 2 };

function parseCommandLine() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' }])),
        profile: { type: 'string' },
      },
    });
  } catch (e) {
    fail(`${e.message}\n${USAGE}`);
  }
  if (parsed.positionals.length !== 1) fail(USAGE);
  const args = { model: parsed.positionals[0], profile: parsed.values.profile };
  if (args.profile === '') fail('--profile takes a path prefix');
  for (const [name, fallback] of Object.entries(OPTIONS)) {
    const text = parsed.values[name];
    const n = text === undefined ? fallback : Number(text);
    const least = name === 'warmup' ? 0 : 1;
    if (!Number.isInteger(n) || n < least) fail(`--${name} takes an integer of at least ${least}, not '${text}'`);
    args[name] = n;
  }
  return args;
}

function fail(message) {
  console.error(`ort_bench.js: ${message}`);
  process.exit(2);
}

// The input's shape with the batch dimension filled in. The model must have one float32 input
// whose dimensions are all fixed except the first; a fixed first dimension must equal the batch.
function inputShape(session, batch) {
  if (session.inputMetadata.length !== 1) fail(`the model has ${session.inputMetadata.length} inputs; expected one`);
  const meta = session.inputMetadata[0];
  if (!meta.isTensor || meta.type !== 'float32') fail(`input '${meta.name}' is not a float32 tensor`);
  const [first, ...rest] = meta.shape;
  if (meta.shape.length === 0 || rest.some((d) => typeof d !== 'number' || d < 1)) {
    fail(`input '${meta.name}' has shape [${meta.shape}]; expected a free or fixed batch, then fixed dimensions`);
  }
  if (typeof first === 'number' && first >= 1 && first !== batch) {
    fail(`input '${meta.name}' has a fixed batch of ${first}; pass --batch ${first}`);
  }
  return [batch, ...rest];
}

// The file ONNX Runtime's profiler wrote: PREFIX_<date and time>.json (the binding's endProfiling
// returns nothing), the newest if there are several.
function profileWritten(prefix) {
  const folder = path.dirname(prefix), stem = `${path.basename(prefix)}_`;
  const written = fs.readdirSync(folder)
    .filter((name) => name.startsWith(stem) && name.endsWith('.json'))
    .map((name) => path.join(folder, name))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (written.length === 0) fail(`ONNX Runtime wrote no profile ${prefix}_*.json`);
  return written[0];
}

async function main() {
  const args = parseCommandLine();
  const rssBefore = process.memoryUsage.rss();
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    ...(args.profile ? { enableProfiling: true, profileFilePrefix: args.profile } : {}),
  });
  const shape = inputShape(session, args.batch);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; ++i) data[i] = 2 * Math.random() - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };

  for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < args.runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const peak = process.resourceUsage().maxRSS * 1024;
  if (args.profile) session.endProfiling();
  await session.release();
  const profile = args.profile ? profileWritten(args.profile) : undefined;

  console.log(JSON.stringify({
    engine: 'onnxruntime',
    onnxruntime: ort.env.versions.node,
    model: args.model,
    batch: args.batch,
    threads: args.threads,
    warmup: args.warmup,
    runs: args.runs,
    latency_ms: median,
    images_per_s: (args.batch * 1000) / median,
    peak_rss_bytes: peak,
    peak_rss_above_start_bytes: peak - rssBefore,
    ...(profile ? { profile } : {}),
  }));
}

main().catch((e) => {
  console.error(`ort_bench.js: ${e.message}`);
  process.exit(1);
});
