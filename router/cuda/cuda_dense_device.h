// CudaDenseDevice: the router's dense model on a GPU (`moe-router --device
// cuda:N`), the DenseDevice interface of router/dense_device.h; the engine
// (batching, block tables, prefix cache, preemption, sampling) is unchanged.
//
// Weights: uploaded once in their stored dtype (f32, bf16 or f16), except the
// norms, biases and MoE gates, which are small and kept in f32 (the gate in
// f32 so that expert choices match the CPU's). GEMMs run in cuBLAS with the
// activations converted to the weight's type and f32 accumulation and output.
// KV pages: f32 in device memory, laid out as router/kv_cache.h says; a KV
// cache's capacity is device memory.
//
// One Forward: the batch's metadata (token ids, positions, block tables, RoPE
// tables, the rows that need logits) goes up in one copy; every layer runs on
// one stream (RMSNorm, QKV GEMMs, bias / q-k norm / clip, RoPE and the KV
// store, paged attention, o_proj; then the dense MLP, or the gate, top-k,
// routed experts through the ExpertBackend, shared expert and combine); only
// the normed hidden rows and the choices of a MoE layer go to the host (the
// ExpertBackend takes host memory: in-process CPU or GPU experts, or remote
// workers), and at the end only the rows that sample, as f32 logits.
//
// Errors: no device / no CUDA build: FAILED_PRECONDITION; weights that do not
// fit: RESOURCE_EXHAUSTED naming the bytes; a CUDA or cuBLAS failure during
// Forward: UNAVAILABLE naming the call, with nothing appended to any sequence.
// Thread-safety: as DenseDevice (Forward and CreateKvCache from the engine thread).
#ifndef MOE_ROUTER_CUDA_CUDA_DENSE_DEVICE_H_
#define MOE_ROUTER_CUDA_CUDA_DENSE_DEVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/expert_backend.h"
#include "router/dense_device.h"
#include "router/dense_model.h"

namespace moe {

// `model` and `experts` must outlive the device.
absl::StatusOr<std::unique_ptr<DenseDevice>> MakeCudaDenseDevice(const DenseModel* model, ExpertBackend* experts,
                                                                 int ordinal);

// Device-to-device copy bandwidth of GPU `ordinal` (the roofline's bandwidth),
// bytes read plus bytes written per second, best of several copies of `bytes`.
absl::StatusOr<double> MeasureDeviceCopyBandwidth(int ordinal, int64_t bytes);

}  // namespace moe

#endif  // MOE_ROUTER_CUDA_CUDA_DENSE_DEVICE_H_
