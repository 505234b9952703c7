#!/usr/bin/env bash
# Here (where the project builds): builds with CUDA and collects what the GPU
# machine runs into device-bundle/ (ignored by git; at most 64 MiB with the
# repository): stripped binaries (what scripts/device-check.sh runs), and the shared libraries they need (found
# with ldd) except the C library and CUDA's own (cudart, cuBLAS: the GPU
# machine has them; scripts/device-check.sh finds them there).
#   scripts/device-bundle.sh     then carry device-bundle.tar.gz to the GPU machine
#                                (run: carry ["device-bundle.tar.gz"]) and run
#                                scripts/device-check.sh there
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
out="$root/device-bundle"
bash "$root/scripts/setup-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOE_CUDA=ON >/dev/null
targets=(cuda_expert_runner_test gpu_dense_test gpu_nccl_test gpu_cluster_test moe_gpu_expert_bench moe_expert_worker
         moe_router moe_gateway moe_cluster moe_generate moe_bench moe_model moe_loadgen moe_dispatch_bench moe_client)
cmake --build "$build" --target "${targets[@]}" -- -j"$(nproc)" >/dev/null
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
bins=("$build/experts/cuda_expert_runner_test" "$build/tests/gpu_dense_test" "$build/tests/gpu_nccl_test"
      "$build/tests/gpu_cluster_test")
for b in moe-gpu-expert-bench moe-expert-worker moe-router moe-gateway moe-cluster moe-generate moe-bench \
         moe-model moe-loadgen moe-dispatch-bench moe-client; do
  bins+=("$build/bin/$b")
done
# Symbols too: the repository and the bundle must fit in 64 MiB together.
for b in "${bins[@]}"; do
  strip --strip-all -o "$out/bin/$(basename "$b")" "$b"
done
# Every shared library the binaries load, but the C library's own and CUDA's.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcuda\.so|libcudart\.so|libcublas\.so|libcublasLt\.so|libnccl\.so)'
for b in "${bins[@]}"; do
  ldd "$b" | awk '$2 == "=>" && $3 != "" {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ ! "$name" =~ $skip ]]; then
    strip --strip-debug -o "$out/lib/$name" "$path" 2>/dev/null || cp -L "$path" "$out/lib/$name"
  fi
done
echo "CUDA libraries needed (found on the GPU machine by device-check.sh):" > "$out/MANIFEST"
for b in "${bins[@]}"; do ldd "$b" | awk '$1 ~ /^lib(cudart|cublas|cublasLt|nccl)\.so/ {print "  " $1}'; done | sort -u >> "$out/MANIFEST"
# Carried compressed (the binaries shrink about threefold); device-check.sh unpacks it.
tar -C "$root" -czf "$root/device-bundle.tar.gz" device-bundle
du -sh "$out" "$root/device-bundle.tar.gz"
size=$(stat -c %s "$root/device-bundle.tar.gz")
if [ "$size" -gt $((30 * 1024 * 1024)) ]; then
  echo "device-bundle.tar.gz: $size bytes: too large to carry with the repository (64 MiB in all)" >&2
  exit 1
fi
