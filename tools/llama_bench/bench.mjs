// llama.cpp's side of the side-by-side benchmark (run by compare.sh): the
// measurements of `moe-bench` on the same GGUF-exported weights, through
// node-llama-cpp's prebuilt CPU library, printed as one JSON object.
//   node bench.mjs MODEL.gguf [--threads 2] [--prefill 512] [--prefill-runs 1]
//                  [--decode 64] [--prompt 128] [--output 64] [--sequences 8,32]
// prefill: one prompt of --prefill synthetic ids, tokens per second until the
//   first generated token (median of --prefill-runs runs);
// decode, batch 1: --decode single-token forward passes after a 16-token
//   prompt (and, for reference, node-llama-cpp's own sampling loop);
// decode with N sequences: N prompts of --prompt ids at once, --output tokens
//   each; like moe-bench --concurrency, the tokens after the last sequence's
//   first token over the time from then to the last token.
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const gguf = args[0];
const threads = Number(opt('threads', '2'));
const prefillLen = Number(opt('prefill', '512'));
const prefillRuns = Number(opt('prefill-runs', '1'));
if (!Number.isInteger(prefillRuns) || prefillRuns < 1 || prefillRuns > 1000) {
  console.error('bench.mjs: --prefill-runs must be an integer in [1, 1000]');
  process.exit(2);
}
const decodeLen = Number(opt('decode', '64'));
const promptLen = Number(opt('prompt', '128'));
const outputLen = Number(opt('output', '64'));
const sequences = opt('sequences', '8,32').split(',').filter((s) => s !== '').map(Number);

// maxThreads 0: every context uses exactly its `threads` (no sharing of a
// thread budget between contexts, which left decode on one thread).
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn, maxThreads: 0 });
const model = await llama.loadModel({ modelPath: gguf });
const nVocab = model.fileInsights.tensorInfo?.find((t) => t.name === 'token_embd.weight')?.dimensions?.[1] ?? 32000;
// Synthetic prompts: a fixed-seed generator over the ordinary ids.
let state = 12345;
const rand = () => (state = (state * 1103515245 + 12345) % 2147483648);
const prompt = (n) => Array.from({ length: n }, () => 3 + (rand() % (Number(nVocab) - 8)));

async function generate(seq, tokens, n, times) {
  let k = 0;
  for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
    times.push(performance.now());
    if (++k >= n) break;
  }
}

const out = { engine: 'llama.cpp (node-llama-cpp 3.21.1, CPU)', threads, cpu_math_cores: llama.cpuMathCores ?? null };
{
  const ctx = await model.createContext({ contextSize: prefillLen + 64, batchSize: prefillLen, threads });
  // Warm-up: pages the weights in.
  await generate(ctx.getSequence(), prompt(8), 2, []);
  await ctx.dispose();
}
{
  // --prefill-runs prefills of the same prompt one after another in one
  // context, the sequence cleared before each (as moe-bench --prefill-runs);
  // the median is reported, and every run.
  const ctx = await model.createContext({ contextSize: prefillLen + 64, batchSize: prefillLen, threads });
  const seq = ctx.getSequence();
  const ids = prompt(prefillLen);
  out.prefill_tokens = prefillLen;
  out.prefill_runs_tokens_per_s = [];
  for (let r = 0; r < prefillRuns; ++r) {
    await seq.clearHistory();
    const t0 = performance.now();
    const times = [];
    await generate(seq, ids, 1, times);
    out.prefill_runs_tokens_per_s.push(prefillLen / ((times[0] - t0) / 1000));
  }
  const sorted = [...out.prefill_runs_tokens_per_s].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  out.prefill_tokens_per_s = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  await ctx.dispose();
}
{
  // Batch-1 decode as forward passes, one token each (llama_decode of one
  // token, as moe-bench times its decode steps): node-llama-cpp's sampling
  // loop adds its own per-token overhead, reported separately.
  const ctx = await model.createContext({ contextSize: 2 * (16 + decodeLen + 16), batchSize: 64, threads });
  const seq = ctx.getSequence();
  await seq.evaluateWithoutGeneratingNewTokens(prompt(16));
  const ids = prompt(decodeLen);
  const t0 = performance.now();
  for (const id of ids) await seq.evaluateWithoutGeneratingNewTokens([id]);
  out.decode_batch1_tokens_per_s = decodeLen / ((performance.now() - t0) / 1000);
  await seq.clearHistory();
  const times = [];
  await generate(seq, prompt(16), decodeLen + 1, times);
  out.decode_batch1_sampling_loop_tokens_per_s = decodeLen / ((times[times.length - 1] - times[0]) / 1000);
  await ctx.dispose();
}
out.sequences = [];
for (const n of sequences) {
  const ctx = await model.createContext({
    contextSize: n * (promptLen + outputLen + 8), sequences: n, batchSize: Math.max(512, n), threads,
  });
  const all = Array.from({ length: n }, () => []);
  await Promise.all(all.map((times) => generate(ctx.getSequence(), prompt(promptLen), outputLen, times)));
  const allFirst = Math.max(...all.map((t) => t[0]));
  const last = Math.max(...all.map((t) => t[t.length - 1]));
  const decoded = all.reduce((s, t) => s + t.filter((x) => x > allFirst).length, 0);
  out.sequences.push({ n, decode_tokens_per_s: decoded / ((last - allFirst) / 1000) });
  await ctx.dispose();
}
await model.dispose();
console.log(JSON.stringify(out));
