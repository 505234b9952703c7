#!/usr/bin/env python3
"""The PyTorch side of moe-gpu-expert-bench: the same MoE layer (bf16 experts,
gate/up/down SwiGLU, tokens routed uniformly at random to top-k distinct
experts) timed in PyTorch on the same GPU, for comparison in the same run.

Two variants: a per-expert loop of torch.matmul (gather the expert's rows,
gate and up in one matmul against the stacked [2f, h] weight, SiLU*up, down),
and torch._grouped_mm over the rows sorted by expert, where the installed
torch has it. Times are CUDA-event medians after warm-up, including the
host-to-device copy of the rows and the copy of the outputs back, as the
C++ runner's times do.

usage: gpu_layer_bench_torch.py [--hidden 4096] [--ffn 14336] [--experts 8]
       [--top-k 2] [--tokens 1,4,...] [--iterations 20] [--json PATH]
"""
import argparse
import json
import statistics
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=14336)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--tokens", default="1,4,16,64,256,1024,4096")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("gpu_layer_bench_torch: no CUDA device visible to torch", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    h, f, E, K = a.hidden, a.ffn, a.experts, a.top_k
    g = torch.Generator(device="cpu").manual_seed(1)
    w13 = [(torch.rand(2 * f, h, generator=g) * 2 - 1).mul_(1.732 / h ** 0.5).to(torch.bfloat16).to(dev)
           for _ in range(E)]
    w2 = [(torch.rand(h, f, generator=g) * 2 - 1).mul_(1.732 / f ** 0.5).to(torch.bfloat16).to(dev)
          for _ in range(E)]
    has_grouped = hasattr(torch, "_grouped_mm")
    if has_grouped:
        w13_t = torch.stack([w.t() for w in w13]).contiguous()  # [E, h, 2f]
        w2_t = torch.stack([w.t() for w in w2]).contiguous()    # [E, f, h]

    def time_it(fn):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(a.iterations):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            ms.append(s.elapsed_time(e))
        return statistics.median(ms)

    rows = []
    rng = torch.Generator(device="cpu").manual_seed(42)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}; _grouped_mm: {has_grouped}")
    print(f"{'tokens':>8} {'loop ms':>10} {'grouped ms':>11}")
    for tokens in [int(t) for t in a.tokens.split(",") if t]:
        ids = torch.stack([torch.randperm(E, generator=rng)[:K] for _ in range(tokens)]).reshape(-1)
        x_host = torch.randn(tokens, h, generator=rng).pin_memory()
        order = torch.argsort(ids, stable=True)
        counts = torch.bincount(ids, minlength=E)
        src = (order // K).to(dev)

        def loop():
            x = x_host.to(dev, non_blocking=True).to(torch.bfloat16)
            xs = x[src]
            out = torch.empty(tokens * K, h, device=dev, dtype=torch.float32)
            start = 0
            for e in range(E):
                n = int(counts[e])
                if n == 0:
                    continue
                gu = xs[start:start + n] @ w13[e].t()
                act = torch.nn.functional.silu(gu[:, :f].float()) * gu[:, f:].float()
                out[start:start + n] = (act.to(torch.bfloat16) @ w2[e].t()).float()
                start += n
            return out.cpu()

        def grouped():
            x = x_host.to(dev, non_blocking=True).to(torch.bfloat16)
            xs = x[src]
            offs = torch.cumsum(counts, 0).to(dev, torch.int32)
            gu = torch._grouped_mm(xs, w13_t, offs=offs)
            act = (torch.nn.functional.silu(gu[:, :f].float()) * gu[:, f:].float()).to(torch.bfloat16)
            return torch._grouped_mm(act, w2_t, offs=offs).float().cpu()

        t_loop = time_it(loop)
        t_grouped = None
        if has_grouped:
            try:
                t_grouped = time_it(grouped)
            except Exception as e:  # not supported for these shapes or this GPU
                print(f"  _grouped_mm failed at {tokens} tokens: {e}")
        print(f"{tokens:>8} {t_loop:>10.3f} {'-' if t_grouped is None else f'{t_grouped:.3f}':>11}")
        rows.append({"tokens": tokens, "loop_ms": t_loop, "grouped_ms": t_grouped})
    if a.json:
        with open(a.json, "w") as out:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
