#!/usr/bin/env python3
"""Hugging Face transformers on the GPU machine, as the independent reference
of the GPU dense model (scripts/device-check.sh runs it).

  logits    For each checkpoint directory: the prompt logits of
            `moe-generate --device cuda:0 --expert-device cuda:0
            --prompt-logits-out` against the family's *ForCausalLM loaded from
            the same directory (from_pretrained on a local path: nothing is
            downloaded) in float32 on the GPU. NMSE = sum (ours - ref)^2 /
            sum ref^2 over every prompt position; fails above --max-nmse.
  generate  Greedy `generate` of the same weights in bf16 at each batch size
            (synthetic prompts of --prompt tokens, --new tokens each), timed
            with CUDA synchronisation: decode tokens/s from the difference
            between generating --new tokens and generating 1 token.

usage: gpu_transformers_reference.py logits --bin DIR --models D1,D2,... [--json PATH]
       gpu_transformers_reference.py generate --model DIR [--batches 1,8] [--prompt 128]
           [--new 128] [--json PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def load_model(path, dtype):
    import torch
    from transformers import AutoModelForCausalLM
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    except TypeError:  # transformers before `dtype`
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, local_files_only=True)
    return model.to(torch.device("cuda")).eval()


def prompt_of(model_dir, vocab):
    golden = os.path.join(model_dir, "golden.json")
    if os.path.exists(golden):
        with open(golden) as f:
            return json.load(f)["cases"][0]["prompt_ids"]
    return [(i * 7919 + 13) % (vocab - 3) for i in range(48)]


def cmd_logits(a):
    import torch
    results = []
    ok = True
    for d in [m for m in a.models.split(",") if m]:
        with open(os.path.join(d, "config.json")) as f:
            vocab = json.load(f)["vocab_size"]
        prompt = prompt_of(d, vocab)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "logits.f32")
            subprocess.run([os.path.join(a.bin, "moe-generate"), "--model", d, "--device", "cuda:0",
                            "--expert-device", "cuda:0", "--prompt-ids", ",".join(map(str, prompt)),
                            "--max-tokens", "1", "--prompt-logits-out", out], check=True,
                           stdout=subprocess.DEVNULL)
            with open(out, "rb") as f:
                ours = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(len(prompt), vocab)
        model = load_model(d, torch.float32)
        with torch.no_grad():
            ref = model(torch.tensor([prompt], device="cuda")).logits[0].float().cpu()
        del model
        torch.cuda.empty_cache()
        nmse = float(((ours.double() - ref.double()) ** 2).sum() / (ref.double() ** 2).sum())
        same_argmax = int((ours.argmax(-1) == ref.argmax(-1)).sum())
        passed = nmse <= a.max_nmse
        ok = ok and passed
        results.append({"model": d, "positions": len(prompt), "nmse": nmse, "argmax_equal": same_argmax,
                        "passed": passed})
        print(f"{os.path.basename(d.rstrip('/'))}: {len(prompt)} positions, NMSE {nmse:.3e} "
              f"(limit {a.max_nmse:g}), argmax equal at {same_argmax}/{len(prompt)}: "
              f"{'ok' if passed else 'FAILED'}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"max_nmse": a.max_nmse, "results": results}, f, indent=1)
    return 0 if ok else 1


def cmd_generate(a):
    import torch
    model = load_model(a.model, torch.bfloat16)
    vocab = model.config.vocab_size
    rows = []

    def timed(batch, new):
        ids = torch.tensor([[(i * 7919 + b * 104729 + 13) % (vocab - 3) for i in range(a.prompt)]
                            for b in range(batch)], device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                 do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        assert out.shape[1] == a.prompt + new
        return time.perf_counter() - t0

    for batch in [int(b) for b in a.batches.split(",") if b]:
        timed(batch, 4)  # warm-up
        first = min(timed(batch, 1) for _ in range(2))
        full = timed(batch, a.new)
        decode = batch * (a.new - 1) / max(full - first, 1e-9)
        rows.append({"batch": batch, "prompt": a.prompt, "new_tokens": a.new, "seconds_1_token": first,
                     "seconds_all": full, "decode_tokens_per_s": decode})
        print(f"transformers generate, batch {batch}: {decode:.1f} decode tokens/s "
              f"({full:.2f} s for {a.new} tokens, {first * 1e3:.0f} ms for the first)", flush=True)
    if a.json:
        import transformers
        with open(a.json, "w") as f:
            json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                       "gpu": torch.cuda.get_device_name(0), "results": rows}, f, indent=1)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("--bin", required=True)
    lg.add_argument("--models", required=True)
    lg.add_argument("--max-nmse", type=float, default=1e-3)
    lg.add_argument("--json", default="")
    gn = sub.add_parser("generate")
    gn.add_argument("--model", required=True)
    gn.add_argument("--batches", default="1,8")
    gn.add_argument("--prompt", type=int, default=128)
    gn.add_argument("--new", type=int, default=128)
    gn.add_argument("--json", default="")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu_transformers_reference: torch is not installed", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("gpu_transformers_reference: no CUDA device visible to torch", file=sys.stderr)
        return 1
    return cmd_logits(a) if a.cmd == "logits" else cmd_generate(a)


if __name__ == "__main__":
    sys.exit(main())
