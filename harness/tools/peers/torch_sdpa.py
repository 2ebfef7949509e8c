#!/usr/bin/env python3
"""The PyTorch peer of `tsa bench` (harness/tools/peers/torch.ts runs it; not meant to be run alone):
torch.nn.functional.scaled_dot_product_attention, causal, GQA with K/V repeated to H heads before
timing, on the CUDA GPU, in three variants:
  f32_efficient  float32 through the memory-efficient kernel (float32 has no FlashAttention kernel)
  bf16_flash     bfloat16 through FlashAttention
  f32_default    float32 with the backend PyTorch picks itself

  python3 torch_sdpa.py --heads 32 --kv-heads 8 --head-dim 128 --lengths 8192,16384 --reps 3 --check FILE

Writes one JSON object per line on stdout:
  {"unavailable": reason}                       torch is missing or finds no CUDA GPU (then exits 0)
  {"device": name, "torch": version}
  {"check": {variant: output file | {"error": msg}}} the check input FILE (q, k, v f32 in our layouts,
                                                 shape [H][Lc][D], [Hkv][Lc][D] x2, Lc = --check-length)
                                                 run by each variant; outputs [Lc][H*D] f32 in FILE.<variant>
  {"L": L, "variants": {variant: {"samplesMs": [...]} | {"error": msg}}}  per length: one warmup call,
                                                 then --reps calls (2 when the warmup took over 4 s),
                                                 each timed with CUDA events
Inputs of the timed calls are standard normal: the kernels' speed does not depend on the values.
The median and the FLOP count are the bench's (harness/core/stats.ts, harness/core/cost.ts).
"""
import argparse
import array
import json
import sys


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--kv-heads", type=int, required=True)
    p.add_argument("--head-dim", type=int, required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--check", required=True)
    p.add_argument("--check-length", type=int, required=True)
    a = p.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        emit({"unavailable": f"{sys.executable} has no usable torch ({e})"})
        return
    if not torch.cuda.is_available():
        emit({"unavailable": f"torch {torch.__version__} finds no CUDA GPU"})
        return
    dev = torch.device("cuda")
    emit({"device": torch.cuda.get_device_name(0), "torch": torch.__version__})
    H, Hkv, D = a.heads, a.kv_heads, a.head_dim
    variants = {
        "f32_efficient": (torch.float32, [SDPBackend.EFFICIENT_ATTENTION]),
        "bf16_flash": (torch.bfloat16, [SDPBackend.FLASH_ATTENTION]),
        "f32_default": (torch.float32, None),
    }

    def sdpa(q, k, v, backends):
        if backends is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        with sdpa_kernel(backends):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def gqa(x):
        return x.repeat_interleave(H // Hkv, dim=1)

    # The check: our layouts in, our output layout out.
    Lc = a.check_length
    raw = torch.frombuffer(bytearray(open(a.check, "rb").read()), dtype=torch.float32)
    nq, nk = H * Lc * D, Hkv * Lc * D
    q = raw[:nq].view(1, H, Lc, D).to(dev)
    k = gqa(raw[nq:nq + nk].view(1, Hkv, Lc, D).to(dev))
    v = gqa(raw[nq + nk:].view(1, Hkv, Lc, D).to(dev))
    checks = {}
    for name, (dtype, backends) in variants.items():
        try:
            out = sdpa(q.to(dtype), k.to(dtype), v.to(dtype), backends)
            flat = out.float().permute(0, 2, 1, 3).reshape(-1).cpu()
            path = f"{a.check}.{name}"
            with open(path, "wb") as f:
                f.write(array.array("f", flat.tolist()).tobytes())
            checks[name] = path
        except Exception as e:  # noqa: BLE001 - reported per variant
            checks[name] = {"error": str(e).strip().splitlines()[0][:300]}
    emit({"check": checks})

    for L in [int(x) for x in a.lengths.split(",")]:
        g = torch.Generator(device=dev).manual_seed(L)
        q = torch.randn(1, H, L, D, device=dev, generator=g)
        k = gqa(torch.randn(1, Hkv, L, D, device=dev, generator=g))
        v = gqa(torch.randn(1, Hkv, L, D, device=dev, generator=g))
        row = {}
        for name, (dtype, backends) in variants.items():
            if isinstance(checks[name], dict):
                row[name] = checks[name]
                continue
            try:
                qq, kk, vv = q.to(dtype), k.to(dtype), v.to(dtype)

                def timed():
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    sdpa(qq, kk, vv, backends)
                    end.record()
                    torch.cuda.synchronize()
                    return start.elapsed_time(end)

                warm = timed()
                times = [timed() for _ in range(2 if warm > 4000 else a.reps)]
                row[name] = {"samplesMs": times}
                del qq, kk, vv
            except Exception as e:  # noqa: BLE001 - reported per variant and length
                row[name] = {"error": str(e).strip().splitlines()[0][:300]}
            torch.cuda.empty_cache()
        emit({"L": L, "variants": row})
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
