#!/usr/bin/env bash
# ctest openai_client: starts a local cluster with the HTTP API and an API key,
# installs the pinned official OpenAI Node client with `npm ci` into the build
# tree, and runs client_test.mjs with node's test runner. Exits 77 (skipped)
# with the reason when node/npm are missing or the npm registry cannot be
# reached; no package is ever committed.
#   run.sh BIN_DIR MODEL_DIR WORK_DIR
set -euo pipefail
bin="$1"; model="$2"; work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
# Under scripts/test.sh (MOE_TEST_STRICT=1) a missing prerequisite fails the run.
skip() {
  if [ "${MOE_TEST_STRICT:-0}" = 1 ]; then echo "FAILED: prerequisite missing (MOE_TEST_STRICT=1): $*"; exit 1; fi
  echo "SKIPPED: $*"; exit 77
}

command -v node >/dev/null || skip "node is not installed"
command -v npm >/dev/null || skip "npm is not installed"
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/client_test.mjs" "$work/"
cd "$work"
# Reuse an earlier install of the same lock file; otherwise npm ci, which
# needs the registry.
if ! cmp -s package-lock.json node_modules/.package-lock.json.copy 2>/dev/null; then
  timeout 30 npm ping >/dev/null 2>&1 || skip "the npm registry cannot be reached (npm ping failed)"
  timeout 180 npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.copy
fi

run_dir="$(mktemp -d /tmp/moe-openai-client.XXXXXX)"
cluster=""
cleanup() {
  if [ -n "$cluster" ]; then kill -TERM "$cluster" 2>/dev/null || true; wait "$cluster" 2>/dev/null || true; fi
  rm -rf "$run_dir"
}
trap cleanup EXIT
key="sk-openai-client-test"
echo "$key" > "$run_dir/keys.txt"
"$bin/moe-cluster" up --model "$model" --workers 1 --worker-threads 1 --router-threads 1 --port 0 --http-port 0 \
  --api-keys-file "$run_dir/keys.txt" --run-dir "$run_dir/cluster" --bin-dir "$bin" > "$run_dir/cluster.out" 2>&1 &
cluster=$!
http=""
for _ in $(seq 1 600); do
  http="$(sed -n 's/^http: //p' "$run_dir/cluster.out" 2>/dev/null || true)"
  [ -n "$http" ] && break
  kill -0 "$cluster" 2>/dev/null || { cat "$run_dir/cluster.out" >&2; exit 1; }
  sleep 0.1
done
[ -n "$http" ] || { echo "the cluster did not start" >&2; cat "$run_dir/cluster.out" >&2; exit 1; }

MOE_HTTP_BASE_URL="http://$http/v1" MOE_API_KEY="$key" MOE_MODEL="$(basename "$model")" \
  MOE_GOLDEN_JSON="$model/golden.json" node --test client_test.mjs
