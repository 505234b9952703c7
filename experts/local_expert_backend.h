// LocalExpertBackend: the routed experts of a MoE layer run in this process
// (`--workers=local`, moe-generate, tests), through the same ExpertRunner an
// expert worker uses.
//
// Thread-safety: Compute from one thread at a time.
#ifndef MOE_EXPERTS_LOCAL_EXPERT_BACKEND_H_
#define MOE_EXPERTS_LOCAL_EXPERT_BACKEND_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/expert_backend.h"
#include "core/thread_pool.h"
#include "experts/cpu_expert_runner.h"
#include "experts/expert_runner.h"

namespace moe {

class LocalExpertBackend : public ExpertBackend {
 public:
  // `runner` is not owned and must outlive the backend.
  explicit LocalExpertBackend(ExpertRunner* runner) : runner_(runner) {}
  // A CPU runner over `shard` sharing `pool` (which may be null).
  LocalExpertBackend(const ExpertShard* shard, ThreadPool* pool)
      : owned_(std::make_unique<CpuExpertRunner>(shard, pool)), runner_(owned_.get()) {}

  absl::Status Compute(const ExpertBatch& batch, float* outputs) override;

 private:
  std::unique_ptr<ExpertRunner> owned_;
  ExpertRunner* runner_;
  std::vector<uint32_t> ids_;
};

}  // namespace moe

#endif  // MOE_EXPERTS_LOCAL_EXPERT_BACKEND_H_
