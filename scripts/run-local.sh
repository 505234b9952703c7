#!/usr/bin/env bash
# Installs what is missing, builds, creates the tiny demo model under
# models/tiny-FAMILY if absent, starts the local cluster on loopback (expert
# workers, router, gateway), sends one request and prints the streamed answer,
# then keeps serving until Ctrl-C.
#
# Environment: MOE_MODEL_DIR (model), MOE_FAMILY (the demo model's family when
# it is created: mixtral (default), qwen2_moe, qwen3_moe or olmoe), MOE_WORKERS (expert workers, default 2),
# MOE_PORT (gateway port, default 50051; 0 = any free port), MOE_HTTP_PORT
# (the gateway's OpenAI-compatible HTTP API, default 8080; 0 = any free
# port), MOE_PROMPT,
# MOE_MAX_TOKENS, BUILD_DIR, MOE_SKIP_BUILD=1 (use the existing build as is).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${MOE_SKIP_BUILD:-0}" != 1 ]; then  # the smoke test runs it from an existing build
  bash "$root/scripts/setup-deps.sh"
  bash "$root/scripts/build.sh"
fi
build="${BUILD_DIR:-$root/build}"
bin="$build/bin"
family="${MOE_FAMILY:-mixtral}"
model="${MOE_MODEL_DIR:-$root/models/tiny-$family}"
if [ ! -f "$model/config.json" ]; then
  echo "Creating the tiny $family demo model in $model"
  "$bin/moe-model" make-tiny --family "$family" --out "$model"
fi

run_dir="$(mktemp -d /tmp/moe-run-local.XXXXXX)"
"$bin/moe-cluster" up --model "$model" --workers "${MOE_WORKERS:-2}" --port "${MOE_PORT:-50051}" \
  --http-port "${MOE_HTTP_PORT:-8080}" --run-dir "$run_dir" > "$run_dir/cluster.out" 2>&1 &
cluster=$!
stop() {
  kill -TERM "$cluster" 2>/dev/null || true
  wait "$cluster" 2>/dev/null || true
  rm -rf "$run_dir"
}
trap 'echo; echo "Stopping"; stop; exit 0' INT TERM
trap 'stop' EXIT

gateway=""
for _ in $(seq 1 1200); do
  gateway="$(sed -n 's/^gateway: //p' "$run_dir/cluster.out" 2>/dev/null || true)"
  [ -n "$gateway" ] && break
  if ! kill -0 "$cluster" 2>/dev/null; then
    echo "The cluster failed to start:" >&2
    cat "$run_dir/cluster.out" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$gateway" ]; then
  echo "The cluster did not start in time:" >&2
  cat "$run_dir/cluster.out" >&2
  exit 1
fi
cat "$run_dir/cluster.out"

prompt="${MOE_PROMPT:-Hello, my dog is cute}"
echo
echo "Prompt: $prompt"
echo "Answer (streamed, greedy):"
"$bin/moe-client" --gateway "$gateway" --prompt "$prompt" --max-tokens "${MOE_MAX_TOKENS:-32}" --temperature 0
echo
http="$(sed -n 's/^http: //p' "$run_dir/cluster.out")"
model_id="$(basename "$model")"
echo "The cluster keeps serving at $gateway (gRPC, moe.v1.Inference) and http://$http/v1 (HTTP, OpenAI-compatible)."
echo "Ctrl-C stops it."
echo "Try: $bin/moe-client --gateway $gateway --prompt 'Once upon a time'"
echo "  or: curl -s http://$http/v1/completions -H 'Content-Type: application/json' \\"
echo "        -d '{\"model\": \"$model_id\", \"prompt\": \"Once upon a time\", \"max_tokens\": 16}'"
wait "$cluster"
