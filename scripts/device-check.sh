#!/usr/bin/env bash
# There (on the GPU machine): runs the GPU checks from device-bundle/ (made
# here by scripts/device-bundle.sh, carried as device-bundle.tar.gz and
# unpacked here) and writes logs and JSON to OUT_DIR.
#   scripts/device-check.sh OUT_DIR [STAGE,STAGE,...]     (default: every stage)
# Stages, in order (each bounded by its own timeout):
#   tests      the gpu tests: GPU experts vs CPU, GPU dense model vs CPU on every
#              family, a cluster with a GPU worker
#   memcheck   compute-sanitizer memcheck over the GPU experts test and the
#              dense model's CPU comparisons
#   reference  prompt logits of the GPU dense model vs Hugging Face transformers
#              (float32, same safetensors) for every family's tiny fixture
#   layer      one Mixtral-8x7B-shaped MoE layer: moe-gpu-expert-bench and PyTorch
#   model      makes the benchmark model: Mixtral-8x7B shape cut to 4 layers, bf16
#   bench      moe-bench on it, router and experts on the GPU: prefill 2048, decode
#              batch 1 and 8, the roofline (device copy bandwidth); the engine at
#              1, 8, 32, 128 concurrent requests (prompt 128, 128 new tokens)
#   hf         transformers generate on the same weights, batch 1 and 8
#   cluster    gateway + GPU router + 2 GPU workers, moe-loadgen at 8 and 32
#   nccl       the NCCL transport on one GPU: gpu_nccl_test on the tiny and the
#              4-layer model (bitwise vs gRPC, a stalled peer), per-layer exchange
#              time NCCL vs gRPC (1, 16, 128, 1024 tokens), decode tokens/s with
#              the experts in process, over NCCL (one rank) and over gRPC (a worker)
# Finds CUDA's own libraries (cudart, cuBLAS) on that machine: in
# /usr/local/cuda*, or in the Python environment's nvidia/* packages.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: device-check.sh OUT_DIR [STAGE,...]}"
stages=",${2:-tests,memcheck,reference,layer,model,bench,hf,cluster,nccl},"
mkdir -p "$out"
log="$out/device-check.log"
bundle="$root/device-bundle"
exec > >(tee -a "$log") 2>&1
start=$(date +%s)
echo "== device-check $(date -u +%FT%TZ) stages ${stages}"
if [ -f "$root/device-bundle.tar.gz" ] && [ ! -d "$bundle/bin" -o "$root/device-bundle.tar.gz" -nt "$bundle/bin" ]; then
  rm -rf "$bundle" && tar -C "$root" -xzf "$root/device-bundle.tar.gz"
fi
[ -d "$bundle/bin" ] || { echo "no $bundle: run scripts/device-bundle.sh here and carry device-bundle.tar.gz"; exit 1; }
want() { [[ "$stages" == *",$1,"* ]]; }
elapsed() { echo $(( $(date +%s) - start )); }

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
missing=$(ldd "$bundle/bin/gpu_dense_test" | grep "not found" || true)
[ -z "$missing" ] || echo "MISSING LIBRARIES:"$'\n'"$missing"
bin="$bundle/bin"
families=""
for f in mixtral qwen2_moe qwen3_moe olmoe; do families+="$root/tests/testdata/tiny-$f,"; done

status_tests=-1 status_memcheck=-1 status_reference=-1 status_layer=-1 status_bench=-1 status_hf=-1 status_cluster=-1
status_nccl=-1
if want tests; then
  status_tests=0
  echo "== [$(elapsed) s] gpu tests: GPU experts vs CPU"
  ( cd "$root" && timeout 120 "$bin/cuda_expert_runner_test" --gtest_output="json:$out/gpu_experts_tests.json" ) \
    || status_tests=$?
  echo "== [$(elapsed) s] gpu tests: the dense model on the GPU vs the CPU, every family"
  ( cd "$root" && timeout 240 "$bin/gpu_dense_test" --gtest_output="json:$out/gpu_dense_tests.json" ) \
    || status_tests=$?
  echo "== [$(elapsed) s] gpu tests: the NCCL transport on one GPU (tiny model)"
  ( cd "$root" && timeout 150 "$bin/gpu_nccl_test" --gtest_output="json:$out/gpu_nccl_tests.json" ) \
    || status_tests=$?
  echo "== [$(elapsed) s] gpu cluster test (CPU router, one GPU worker, one CPU worker)"
  ( cd "$root" && timeout 150 "$bin/gpu_cluster_test" ) || status_tests=$?
fi
if want memcheck; then
  if command -v compute-sanitizer >/dev/null; then
    echo "== [$(elapsed) s] compute-sanitizer memcheck"
    status_memcheck=0
    ( cd "$root" && timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
        "$bin/cuda_expert_runner_test" ) > "$out/memcheck_experts.log" 2>&1 || status_memcheck=$?
    tail -3 "$out/memcheck_experts.log"
    ( cd "$root" && timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/gpu_dense_test" \
        --gtest_filter='*PromptAndDecode*:*ChunkedPrefill*:*AloneAndInABatch*:*SameGpu*/mixtral' ) \
        > "$out/memcheck_dense.log" 2>&1 || status_memcheck=$?
    tail -3 "$out/memcheck_dense.log"
  else
    echo "compute-sanitizer: not found"
  fi
fi
if want reference; then
  echo "== [$(elapsed) s] prompt logits vs Hugging Face transformers (float32)"
  status_reference=0
  PYTHONUNBUFFERED=1 timeout 180 python3 "$root/scripts/gpu_transformers_reference.py" logits --bin "$bin" \
    --models "$families" --json "$out/reference_logits.json" || status_reference=$?
fi
if want layer; then
  echo "== [$(elapsed) s] one Mixtral-8x7B-shaped layer (hidden 4096, FFN 14336, 8 experts, top-2, bf16)"
  status_layer=0
  timeout 150 "$bin/moe-gpu-expert-bench" --json "$out/bench.json" || status_layer=$?
  PYTHONUNBUFFERED=1 timeout 150 python3 "$root/scripts/gpu_layer_bench_torch.py" --json "$out/bench_torch.json" \
    || status_layer=$?
fi
# For a dry run of the script elsewhere: MOE_CHECK_DEVICE=cpu MOE_GPU_BENCH_MODEL=tests/testdata/tiny-mixtral.
model="${MOE_GPU_BENCH_MODEL:-/tmp/moe-mixtral-4l}"
dev="${MOE_CHECK_DEVICE:-cuda:0}"
if want model; then
  echo "== [$(elapsed) s] the benchmark model: Mixtral-8x7B shape, 4 layers, bf16 -> $model"
  [ -f "$model/config.json" ] || timeout 180 "$bin/moe-model" make-tiny --out "$model" --family mixtral \
    --hidden 4096 --layers 4 --heads 32 --kv-heads 8 --ffn 14336 --experts 8 --top-k 2 --vocab 32000 \
    --base-tokenizer "$root/tests/testdata/tokenizers/qwen3/tokenizer.json.gz"
  du -sh "$model" || true
fi
if want bench; then
  echo "== [$(elapsed) s] moe-bench: dense model and experts on cuda:0"
  status_bench=0
  timeout 150 "$bin/moe-bench" --model "$model" --device "$dev" --expert-device "$dev" --prefill-tokens 2048 \
    --decode-steps 64 --batch 8 --bandwidth-mib 2048 --json > "$out/gpu_bench.json" || status_bench=$?
  cat "$out/gpu_bench.json"
  timeout 240 "$bin/moe-bench" --model "$model" --device "$dev" --expert-device "$dev" --concurrency 1,8,32,128 \
    --prompt-tokens 128 --output-tokens 128 --runs 1 --json > "$out/gpu_bench_concurrency.json" || status_bench=$?
  cat "$out/gpu_bench_concurrency.json"
fi
if want hf; then
  echo "== [$(elapsed) s] transformers generate on the same weights (bf16, greedy)"
  status_hf=0
  PYTHONUNBUFFERED=1 timeout 240 python3 "$root/scripts/gpu_transformers_reference.py" generate --model "$model" \
    --batches 1,8 --prompt 128 --new 128 --json "$out/hf_generate.json" || status_hf=$?
fi
if want cluster; then
  echo "== [$(elapsed) s] the full cluster: gateway, GPU router, 2 GPU workers; moe-loadgen at 8 and 32"
  status_cluster=0
  run_dir="$out/cluster-run"
  mkdir -p "$run_dir"
  "$bin/moe-cluster" up --model "$model" --workers 2 --router-device "$dev" --worker-devices "$dev" \
    --run-dir "$run_dir" --startup-timeout-ms 180000 > "$out/cluster.txt" 2>&1 &
  cluster_pid=$!
  gateway=""
  for _ in $(seq 1 180); do
    gateway=$(awk '/^gateway:/ {print $2}' "$out/cluster.txt" 2>/dev/null)
    router=$(awk '/^router:/ {print $2}' "$out/cluster.txt" 2>/dev/null)
    [ -n "$gateway" ] && break
    kill -0 $cluster_pid 2>/dev/null || break
    sleep 1
  done
  if [ -z "$gateway" ]; then
    echo "the cluster did not come up:"; tail -20 "$out/cluster.txt"; status_cluster=1
  else
    for c in 8 32; do
      timeout 120 "$bin/moe-loadgen" --gateway "$gateway" --router "$router" --concurrency $c --num-requests $((c * 3)) \
        --warmup-requests $c --input-len 128 --output-len 128 --json "$out/loadgen_c$c.json" || status_cluster=$?
    done
  fi
  kill -INT $cluster_pid 2>/dev/null; wait $cluster_pid 2>/dev/null
fi
if want nccl; then
  echo "== [$(elapsed) s] NCCL transport on the 4-layer model"
  status_nccl=0
  ( cd "$root" && MOE_GPU_BENCH_MODEL="$model" timeout 240 "$bin/gpu_nccl_test" \
      --gtest_filter='*MixtralShaped*' ) || status_nccl=$?
  timeout 180 "$bin/moe-dispatch-bench" --model "$model" --device "$dev" --rows 1,16,128,1024 --iterations 50 \
    --warmup 5 | tee "$out/nccl_dispatch.txt" || status_nccl=$?
  for t in grpc nccl; do
    timeout 150 "$bin/moe-bench" --model "$model" --device "$dev" --expert-device "$dev" --expert-transport $t \
      --concurrency 1,8 --prompt-tokens 128 --output-tokens 64 --runs 1 --json > "$out/decode_local_$t.json" \
      || status_nccl=$?
  done
  "$bin/moe-expert-worker" --model "$model" --listen 127.0.0.1:0 --address-file "$out/worker.addr" --device "$dev" \
    > "$out/worker.log" 2>&1 &
  worker_pid=$!
  for _ in $(seq 1 120); do [ -s "$out/worker.addr" ] && break; sleep 1; done
  if [ -s "$out/worker.addr" ]; then
    timeout 150 "$bin/moe-bench" --model "$model" --device "$dev" --workers "$(cat "$out/worker.addr")" \
      --concurrency 1,8 --prompt-tokens 128 --output-tokens 64 --runs 1 --json > "$out/decode_worker_grpc.json" \
      || status_nccl=$?
  else
    echo "the worker did not start:"; tail -5 "$out/worker.log"; status_nccl=1
  fi
  kill -INT $worker_pid 2>/dev/null; wait $worker_pid 2>/dev/null
  for f in decode_local_grpc decode_local_nccl decode_worker_grpc; do echo "$f:"; cat "$out/$f.json" 2>/dev/null; done
fi
cat > "$out/device-check.json" <<JSON
{"gpu": "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)", "stages": "$stages",
 "tests_exit": $status_tests, "memcheck_exit": $status_memcheck, "reference_exit": $status_reference,
 "layer_exit": $status_layer, "bench_exit": $status_bench, "hf_exit": $status_hf, "cluster_exit": $status_cluster,
 "nccl_exit": $status_nccl,
 "seconds": $(elapsed)}
JSON
cat "$out/device-check.json"
[ "$status_tests" -le 0 ] && [ "$status_memcheck" -le 0 ] && [ "$status_reference" -le 0 ]
