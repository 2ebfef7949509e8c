#!/usr/bin/env python3
"""Peer timings for the WebGPU backend's benchmark: PyTorch scaled_dot_product_attention
on the same GPU and shapes (causal, GQA with K/V repeated to H heads before timing).

  python3 harness/peers/torch_sdpa.py --lengths 8192,16384 --heads 32 --kv-heads 8 --head-dim 128 --out FILE

Times, per length, float32 SDPA through the memory-efficient kernel (float32 has no
FlashAttention kernel) and bfloat16 through FlashAttention, with CUDA events: one warmup,
then `--reps` calls, median. TFLOP/s counts causal FLOPs 4 H D L(L+1)/2, as the bench does.
Inputs: standard normal (the attention kernels' speed does not depend on the values).
"""
import argparse
import json
import statistics

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F


def time_sdpa(q, k, v, backend, reps):
    with sdpa_kernel([backend]):
        F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", default="8192,16384,32768,65536,131072")
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default="torch_sdpa.json")
    a = p.parse_args()
    H, Hkv, D = a.heads, a.kv_heads, a.head_dim
    rows = []
    dev = torch.device("cuda")
    for L in [int(x) for x in a.lengths.split(",") if x]:
        flops = 4 * H * D * L * (L + 1) / 2
        g = torch.Generator(device=dev).manual_seed(L)
        q = torch.randn(1, H, L, D, device=dev, generator=g)
        k = torch.randn(1, Hkv, L, D, device=dev, generator=g).repeat_interleave(H // Hkv, dim=1)
        v = torch.randn(1, Hkv, L, D, device=dev, generator=g).repeat_interleave(H // Hkv, dim=1)
        row = {"L": L, "H": H, "Hkv": Hkv, "D": D}
        for name, dtype, backend in [
            ("f32_efficient", torch.float32, SDPBackend.EFFICIENT_ATTENTION),
            ("bf16_flash", torch.bfloat16, SDPBackend.FLASH_ATTENTION),
        ]:
            try:
                ms = time_sdpa(q.to(dtype), k.to(dtype), v.to(dtype), backend, a.reps)
                row[name] = {"ms": ms, "tflops": flops / ms / 1e9}
            except Exception as e:  # noqa: BLE001 - report and go on
                row[name] = {"error": str(e)[:200]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        del q, k, v
        torch.cuda.empty_cache()
    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "rows": rows}
    with open(a.out, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
