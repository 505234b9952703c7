#!/usr/bin/env bash
# Installs what is missing, builds, creates the tiny demo model under
# models/tiny-mixtral if absent, and streams a greedy continuation of a prompt.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup-deps.sh"
bash "$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
model="${MOE_MODEL_DIR:-$root/models/tiny-mixtral}"
if [ ! -f "$model/config.json" ]; then
  echo "Creating the tiny demo model in $model"
  "$build/bin/moe-model" make-tiny --out "$model"
fi
"$build/bin/moe-model" inspect "$model"
# "Hello, my dog is cute" in the tiny model's tokenizer.
prompt_ids="${MOE_PROMPT_IDS:-39,301,385,11,847,294,538,374,272,1070}"
echo
echo "Prompt ids: $prompt_ids"
echo "Streaming the greedy continuation:"
"$build/bin/moe-generate" --model "$model" --prompt-ids "$prompt_ids" --max-tokens "${MOE_MAX_TOKENS:-32}" --decode-text
