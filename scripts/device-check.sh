#!/usr/bin/env bash
# There (on the GPU machine): runs the GPU checks from device-bundle/ (made
# here by scripts/device-bundle.sh) and writes a log and a JSON summary to
# OUT_DIR: the gpu tests, compute-sanitizer memcheck over them, and the
# one-layer benchmark with its PyTorch side (bench.json, bench_torch.json).
# Finds CUDA's own libraries (cudart, cuBLAS) on that machine: in
# /usr/local/cuda*, or in the Python environment's nvidia/* packages.
#   scripts/device-check.sh OUT_DIR
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: device-check.sh OUT_DIR}"
mkdir -p "$out"
log="$out/device-check.log"
bundle="$root/device-bundle"
exec > >(tee "$log") 2>&1
start=$(date +%s)
echo "== device-check $(date -u +%FT%TZ)"
[ -d "$bundle/bin" ] || { echo "no $bundle: run scripts/device-bundle.sh here and carry device-bundle"; exit 1; }

# CUDA's libraries: wherever this machine has libcublas.so.13.
cuda_dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libcublas.so.13" ] && cuda_dirs+=("$d")
done
if [ ${#cuda_dirs[@]} -eq 0 ]; then
  py_dirs=$(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    for base in nvidia.__path__:
        for d in sorted(set(os.path.dirname(p) for p in glob.glob(os.path.join(base, "*", "lib", "lib*.so*")))):
            print(d)
except Exception:
    pass
PY
)
  while read -r d; do [ -n "$d" ] && cuda_dirs+=("$d"); done <<< "$py_dirs"
fi
# The tests find the test data and the binaries here, not where they were built.
export MOE_TESTDATA_DIR="$root/tests/testdata" MOE_BIN_DIR="$bundle/bin"
export LD_LIBRARY_PATH="$bundle/lib:$(IFS=:; echo "${cuda_dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "CUDA libraries from: ${cuda_dirs[*]:-(none found)}"
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader || true
missing=$(ldd "$bundle/bin/cuda_expert_runner_test" | grep "not found" || true)
[ -z "$missing" ] || echo "MISSING LIBRARIES:"$'\n'"$missing"

status_tests=0
echo "== gpu tests"
( cd "$root" && timeout 240 "$bundle/bin/cuda_expert_runner_test" --gtest_output="json:$out/gpu_tests.json" ) \
  || status_tests=$?
echo "== gpu cluster test (CPU router, one GPU worker, one CPU worker)"
( cd "$root" && timeout 200 "$bundle/bin/gpu_cluster_test" ) || status_tests=$?
status_memcheck=-1
if command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (the GPU tests)"
  ( cd "$root" && timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
      "$bundle/bin/cuda_expert_runner_test" ) > "$out/memcheck.log" 2>&1
  status_memcheck=$?
  tail -5 "$out/memcheck.log"
else
  echo "compute-sanitizer: not found"
fi
echo "== benchmark: one Mixtral-8x7B-shaped layer (hidden 4096, FFN 14336, 8 experts, top-2, bf16)"
status_bench=0
timeout 150 "$bundle/bin/moe-gpu-expert-bench" --json "$out/bench.json" || status_bench=$?
echo "== the same layer in PyTorch"
status_torch=0
PYTHONUNBUFFERED=1 timeout 150 python3 "$root/scripts/gpu_layer_bench_torch.py" --json "$out/bench_torch.json" \
  || status_torch=$?
elapsed=$(( $(date +%s) - start ))
cat > "$out/device-check.json" <<JSON
{"gpu": "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)",
 "gpu_tests_exit": $status_tests, "memcheck_exit": $status_memcheck, "bench_exit": $status_bench,
 "bench_torch_exit": $status_torch, "seconds": $elapsed}
JSON
cat "$out/device-check.json"
[ "$status_tests" -eq 0 ] && [ "$status_memcheck" -le 0 ]
