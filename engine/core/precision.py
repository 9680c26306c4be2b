"""Which dtype a run computes in: `train.precision` (and QLoRA's `compute_dtype: auto`) resolved for the
device it trains on. The one place `auto` is decided; the trainer, the QLoRA method and the memory
estimate all ask here.

`resolve` is pure (the estimate passes the device it estimates for); `on_this_machine` reads the
device's facts with torch, for the processes that train.
"""
from __future__ import annotations


def resolve(precision: str, device: str, bf16_supported: bool = True) -> str:
    """fp32 | bf16 | fp16 for `precision` (auto or one of them) on `device` (cuda | cpu).

    auto: bf16 on a GPU that supports it, else fp16; fp32 on CPUs (bench/results/throughput_cpu_bf16.md:
    bf16 matrix products were 150x slower than fp32 on an AVX2-only CPU)."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if bf16_supported else "fp16"
    return "fp32"


def on_this_machine(precision: str) -> str:
    """`resolve` for the device this process trains on."""
    import torch

    if torch.cuda.is_available():
        return resolve(precision, "cuda", torch.cuda.is_bf16_supported())
    return resolve(precision, "cpu")
