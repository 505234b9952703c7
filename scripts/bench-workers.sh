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
threads="${WORKER_THREADS:-1}"
if [ ! -f "$model/config.json" ]; then
  "$bin/moe-model" make-tiny --out "$model" --hidden 1024 --layers 8 --heads 16 --kv-heads 4 \
    --experts 8 --top-k 2 --ffn 2816 --vocab 32000
fi
dir="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for ((i = 0; i < workers; i++)); do
  "$bin/moe-expert-worker" --model "$model" --experts "mod:$i/$workers" --listen 127.0.0.1:0 \
    --address-file "$dir/w$i" --threads "$threads" 2>"$dir/w$i.log" &
  pids+=($!)
done
addrs=()
for ((i = 0; i < workers; i++)); do
  for _ in $(seq 600); do [ -s "$dir/w$i" ] && break; sleep 0.1; done
  addrs+=("$(cat "$dir/w$i")")
done
list="$(IFS=,; echo "${addrs[*]}")"
echo "workers: $list (threads each: $threads)"
for ((r = 1; r <= runs; r++)); do
  for mode in "$list" local; do
    line="$("$bin/moe-bench" --model "$model" --workers "$mode" --decode-steps 48 --bandwidth-mib 64 --json)"
    b1="$(echo "$line" | sed -n 's/.*"decode_batch1_tokens_per_s": \([0-9.]*\).*/\1/p')"
    b16="$(echo "$line" | sed -n 's/.*"decode_batchN_tokens_per_s": \([0-9.]*\).*/\1/p')"
    label=$([ "$mode" = local ] && echo "local  " || echo "workers")
    printf 'run %d %s  decode batch 1: %8.2f tok/s   batch 16: %8.2f tok/s\n' "$r" "$label" "$b1" "$b16"
  done
done
