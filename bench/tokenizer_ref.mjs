// tokenizer_ref.mjs — the reference side of bench/tokenizer_bench.sh: npm `tokenizers` (the
// Hugging Face Rust library through N-API) encodes the same documents as cutkit-bench-tokenizer
// and prints one JSON line of the same shape.
//
//   node bench/tokenizer_ref.mjs --refdir DIR --tokenizer tokenizer.json --input DOCS.jsonl
//        [--repeats R] [--warmup W] [--mode encode|batch]
//
// DIR is the folder where `npm install --ignore-scripts tokenizers@0.23.2` was run.
// --mode encode awaits encode() once per document (what a caller encoding texts one by one
// gets, N-API round trip included); --mode batch hands all documents to encodeBatch(), which
// runs on Rayon's thread pool (RAYON_NUM_THREADS bounds it). The time is the median pass.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.refdir || !args.tokenizer || !args.input) {
  console.error('usage: node tokenizer_ref.mjs --refdir DIR --tokenizer tokenizer.json --input DOCS.jsonl ' +
                '[--repeats R] [--warmup W] [--mode encode|batch]');
  process.exit(2);
}
const repeats = Number(args.repeats ?? 5), warmup = Number(args.warmup ?? 1), mode = args.mode ?? 'encode';
const req = createRequire(path.join(path.resolve(args.refdir), 'package.json'));
const { Tokenizer } = req('tokenizers');
const version = JSON.parse(fs.readFileSync(req.resolve('tokenizers/package.json'), 'utf8')).version;

const docs = fs.readFileSync(args.input, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).text)
  .filter((t) => typeof t === 'string');
const bytes = docs.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);

let t0 = process.hrtime.bigint();
const tk = Tokenizer.fromFile(args.tokenizer);
const loadS = Number(process.hrtime.bigint() - t0) / 1e9;

const opts = { addSpecialTokens: false };
let last = null;
const times = [];
for (let pass = 0; pass < warmup + repeats; pass++) {
  t0 = process.hrtime.bigint();
  let encodings;
  if (mode === 'batch') {
    encodings = await tk.encodeBatch(docs, opts);
  } else {
    encodings = [];
    for (const d of docs) encodings.push(await tk.encode(d, null, opts));
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (pass >= warmup) times.push(s);
  last = encodings;
}
// Same checksum as bench_tokenizer.c: h = h * 31 + id + 1 over all ids, modulo 2^32.
let checksum = 0, tokens = 0;
for (const e of last) {
  for (const id of e.getIds()) checksum = (Math.imul(checksum, 31) + id + 1) >>> 0;
  tokens += e.getIds().length;
}
times.sort((a, b) => a - b);
const median = times[Math.floor(repeats / 2)];
console.log(JSON.stringify({
  impl: `tokenizers@${version} ${mode}`, tokenizer: args.tokenizer, threads: Number(process.env.RAYON_NUM_THREADS ?? 0),
  docs: docs.length, bytes, tokens, checksum, load_s: Number(loadS.toFixed(4)), encode_s: Number(median.toFixed(4)),
  mb_per_s: Number((bytes / 1e6 / median).toFixed(3)),
}));
