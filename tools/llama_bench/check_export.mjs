// llama.cpp (node-llama-cpp's prebuilt CPU library) on a GGUF written by
// `moe-model export-gguf`: greedy ids for the prompts of a golden.json,
// compared with the golden ids. Prints one line per case and a summary;
// exits 1 when fewer than --min-equal cases (default: all) are equal, or when
// --first-token is given and a case's first generated id differs.
//   node check_export.mjs MODEL.gguf GOLDEN.json [--min-equal N] [--first-token]
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const [gguf, goldenPath] = args;
const minIndex = args.indexOf('--min-equal');
const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
const minEqual = minIndex >= 0 ? Number(args[minIndex + 1]) : golden.cases.length;
const firstToken = args.includes('--first-token');

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: gguf });
const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: 2 });
let equal = 0;
let firstOk = true;
for (const [i, c] of golden.cases.entries()) {
  const seq = context.getSequence();
  const out = [];
  for await (const t of seq.evaluate(c.prompt_ids, { temperature: 0 })) {
    out.push(t);
    if (out.length >= c.greedy_ids.length) break;
  }
  seq.dispose();
  let same = 0;
  while (same < out.length && out[same] === c.greedy_ids[same]) ++same;
  if (same === c.greedy_ids.length) ++equal;
  if (out[0] !== c.greedy_ids[0]) firstOk = false;
  console.log(`case ${i}: ${same}/${c.greedy_ids.length} ids equal the golden ones${same < out.length ? ` (llama.cpp ${out[same]}, golden ${c.greedy_ids[same]})` : ''}`);
}
console.log(`${equal}/${golden.cases.length} cases equal the golden greedy ids`);
await model.dispose();
if (equal < minEqual || (firstToken && !firstOk)) process.exit(1);
