#!/usr/bin/env bash
# Decode throughput with N expert workers (separate processes on loopback)
# against in-process experts, alternating runs so both see the same machine.
# usage: scripts/bench-workers.sh [MODEL_DIR] [WORKERS] [RUNS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BUILD_DIR:-$root/build}/bin"
model="${1:-$root/models/bench-1024}"
workers="${2:-2}"
runs="${3:-3}"
threads="${WORKER_THREADS:-0}"  # 0: every CPU (the pools sleep while idle)
# 1: worker i serves on CPU i (mod the CPUs) under SCHED_BATCH, as on a host
# that router and workers share (docs/dispatch.md); 0: no placement.
place="${PLACE_WORKERS:-1}"
ncpu="$(nproc)"
if [ ! -f "$model/config.json" ]; then
  "$bin/moe-model" make-tiny --out "$model" --hidden 1024 --layers 8 --heads 16 --kv-heads 4 \
    --experts 8 --top-k 2 --ffn 2816 --vocab 32000
fi
dir="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for ((i = 0; i < workers; i++)); do
  placement=()
  if [ "$place" = 1 ]; then placement=(--cpus "$((i % ncpu))" --batch-scheduling); fi
  "$bin/moe-expert-worker" --model "$model" --experts "mod:$i/$workers" --listen 127.0.0.1:0 \
    --address-file "$dir/w$i" --threads "$threads" "${placement[@]}" 2>"$dir/w$i.log" &
  pids+=($!)
done
addrs=()
for ((i = 0; i < workers; i++)); do
  for _ in $(seq 600); do [ -s "$dir/w$i" ] && break; sleep 0.1; done
  addrs+=("$(cat "$dir/w$i")")
done
list="$(IFS=,; echo "${addrs[*]}")"
echo "workers: $list (threads each: $threads, placed: $place)"
ratios1=()
ratios16=()
for ((r = 1; r <= runs; r++)); do
  for mode in "$list" local; do
    line="$("$bin/moe-bench" --model "$model" --workers "$mode" --decode-steps 48 --bandwidth-mib 64 --json)"
    b1="$(echo "$line" | sed -n 's/.*"decode_batch1_tokens_per_s": \([0-9.]*\).*/\1/p')"
    b16="$(echo "$line" | sed -n 's/.*"decode_batchN_tokens_per_s": \([0-9.]*\).*/\1/p')"
    if [ "$mode" = local ]; then
      printf 'run %d local    decode batch 1: %8.2f tok/s   batch 16: %8.2f tok/s' "$r" "$b1" "$b16"
      ratios1+=("$(echo "$w1 $b1" | awk '{printf "%.3f", $1 / $2}')")
      ratios16+=("$(echo "$w16 $b16" | awk '{printf "%.3f", $1 / $2}')")
      printf '   workers/local: %s, %s\n' "${ratios1[-1]}" "${ratios16[-1]}"
    else
      w1="$b1"
      w16="$b16"
      printf 'run %d workers  decode batch 1: %8.2f tok/s   batch 16: %8.2f tok/s\n' "$r" "$b1" "$b16"
      # Per exchange at batch 1: send-to-reply time against the worker's own compute.
      echo "$line" | python3 -c '
import json, sys
for d in json.load(sys.stdin).get("dispatch_batch1", []):
    print("      %s: %d exchanges, mean %.0f us, of which %.0f us computing, %.0f us outside" % (
        d["worker"], d["calls"], d["mean_us"], d["worker_compute_mean_us"],
        d["mean_us"] - d["worker_compute_mean_us"]))'
    fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "workers/local over $runs runs: batch 1 median $(median "${ratios1[@]}") (${ratios1[*]});" \
  "batch 16 median $(median "${ratios16[@]}") (${ratios16[*]})"
