#!/usr/bin/env bash
# The NCCL transport between processes on different GPUs: needs a machine
# with at least 2 GPUs (none of the machines this project is built and tested
# on has two, so this runs where a user has them). Run from a build (or a
# device bundle: BIN_DIR=device-bundle/bin):
#   scripts/nccl-multi-gpu-check.sh MODEL_DIR [OUT_DIR]
# 1. Bit-exactness: the same greedy requests (with logprobs) through a
#    cluster whose router (cuda:0) reaches its workers (cuda:1 .. cuda:N-1)
#    over gRPC, then over NCCL: every token and logprob must be equal.
# 2. Failure: with NCCL, one worker is stopped (SIGSTOP) during a request;
#    the request must fail with UNAVAILABLE naming the worker within the
#    router's dispatch deadline (5 s by default) plus slack, the worker is resumed, and the
#    next request must succeed on a rebuilt communicator.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: nccl-multi-gpu-check.sh MODEL_DIR [OUT_DIR]}"
out="${2:-$(mktemp -d)}"
bin="${BIN_DIR:-$root/build/bin}"
mkdir -p "$out"
gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l)
if [ "$gpus" -lt 2 ]; then
  echo "nccl-multi-gpu-check: needs at least 2 GPUs, found $gpus" >&2
  exit 2
fi
workers=$((gpus - 1))
devices=$(seq -s, -f "cuda:%g" 1 "$workers")
prompts=("1,2,3,4,5,6,7,8" "100,200,300" "42,17,4242,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9")

start_cluster() {  # $1 = transport; prints the gateway address
  local run="$out/cluster-$1"
  mkdir -p "$run"
  "$bin/moe-cluster" up --model "$model" --workers "$workers" --router-device cuda:0 --worker-devices "$devices" \
    --expert-transport "$1" --run-dir "$run" --drain-timeout-s 1 > "$out/cluster-$1.txt" 2>&1 &
  echo $! > "$out/cluster-$1.pid"
  for _ in $(seq 1 300); do
    local g
    g=$(awk '/^gateway:/ {print $2}' "$out/cluster-$1.txt" 2>/dev/null)
    if [ -n "$g" ]; then echo "$g"; return 0; fi
    kill -0 "$(cat "$out/cluster-$1.pid")" 2>/dev/null || break
    sleep 1
  done
  echo "the $1 cluster did not come up:" >&2; tail -20 "$out/cluster-$1.txt" >&2
  return 1
}
stop_cluster() { kill -INT "$(cat "$out/cluster-$1.pid")" 2>/dev/null; wait "$(cat "$out/cluster-$1.pid")" 2>/dev/null; }

generate() {  # $1 = gateway, $2 = output file
  : > "$2"
  for p in "${prompts[@]}"; do
    "$bin/moe-client" --gateway "$1" --prompt-ids "$p" --max-tokens 32 --temperature 0 --ignore-eos --json >> "$2" \
      || return 1
  done
}

status=0
echo "== bit-exactness: gRPC vs NCCL, router on cuda:0, workers on $devices"
g=$(start_cluster grpc) || exit 1
generate "$g" "$out/grpc.jsonl" || status=1
stop_cluster grpc
g=$(start_cluster nccl) || exit 1
generate "$g" "$out/nccl.jsonl" || status=1
if cmp -s "$out/grpc.jsonl" "$out/nccl.jsonl"; then
  echo "bitwise equal: $(wc -l < "$out/grpc.jsonl") stream messages"
else
  echo "DIFFERENT (see $out/grpc.jsonl and $out/nccl.jsonl)"; status=1
fi

echo "== failure: a stopped worker is aborted within the deadline, the next request succeeds"
worker_pid=$(pgrep -f "moe-expert-worker.*--device=cuda:1" | head -1)
if [ -z "$worker_pid" ]; then
  echo "cannot find the worker on cuda:1"; status=1
else
  "$bin/moe-client" --gateway "$g" --prompt-ids 1,2,3 --max-tokens 400 --temperature 0 --ignore-eos \
    > "$out/stalled.txt" 2>&1 &
  client=$!
  sleep 1
  kill -STOP "$worker_pid"
  t0=$(date +%s)
  wait $client
  rc=$?
  t1=$(date +%s)
  kill -CONT "$worker_pid"
  echo "the request ended after $((t1 - t0)) s with exit $rc: $(tail -1 "$out/stalled.txt")"
  { [ $rc -ne 0 ] && grep -q "UNAVAILABLE\|unavailable" "$out/stalled.txt"; } || { echo "expected UNAVAILABLE"; status=1; }
  [ $((t1 - t0)) -le 12 ] || { echo "took too long"; status=1; }
  sleep 2
  if "$bin/moe-client" --gateway "$g" --prompt-ids 1,2,3 --max-tokens 8 --temperature 0 > "$out/after.txt" 2>&1; then
    echo "the next request succeeded"
  else
    echo "the next request failed: $(tail -2 "$out/after.txt")"; status=1
  fi
fi
stop_cluster nccl
echo "logs: $out"
exit $status
