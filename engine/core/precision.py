"""Which dtypes a run trains in: `train.precision` (and QLoRA's `compute_dtype: auto`) resolved for the
device it trains on. The one place `auto` is decided; the trainer, the QLoRA method and the memory
estimate all ask here.

The resolved precision is one of
- fp32: everything in fp32;
- bf16 / fp16: mixed precision: matrix products in half precision under autocast; frozen weights are
  stored in half precision, trained ones keep fp32 weights, gradients and optimizer states;
- bf16_pure: pure half precision: every weight, gradient and optimizer state in bf16, no fp32 master copy
  (half the memory of mixed precision for full fine-tuning). Numerics: bf16 keeps 8 significant bits, so
  an update smaller than about 1/256 of a weight rounds away (with AdamW at lr 1e-5 most updates to
  weights above ~0.003 in magnitude are lost); the optimizer's moments are bf16 too. It trains well at
  the learning rates adapters use and is the setting of published pure-bf16 runs (PEFT's method
  comparison, LitGPT's bf16-true); for full fine-tuning at small learning rates prefer bf16 (mixed).

`resolve` is pure (the estimate passes the device it estimates for); `on_this_machine` reads the
device's facts, for the processes that train.
"""
from __future__ import annotations

# pure modes -> the dtype of every weight, gradient and state (and of the matrix products)
PURE = {"bf16_pure": "bf16"}


def resolve(precision: str, device: str, bf16_supported: bool = True, amx: bool = False) -> str:
    """fp32 | bf16 | fp16 | bf16_pure for `precision` (auto or one of them) on `device` (cuda | cpu).

    `bf16_supported`: on a GPU, whether it computes in bf16; on a CPU, whether it has native bf16
    matrix products (engine/core/device.cpu_native_half: AVX512-BF16 or AMX). `amx`: the CPU has AMX
    tiles for bf16 (`amx_bf16`); ignored on a GPU.

    auto: bf16 on a GPU that supports it, else fp16. On a CPU, bf16 mixed precision exactly where it was
    measured faster at the same loss, i.e. with AMX; fp32 everywhere else:
    - AMX (Xeon with amx_bf16, ../shared/results/throughput_amx_cpu.md, kept as
      bench/results/throughput_cpu_amx.md): 474.9 against 348.6 tokens/s for fp32, 1.36x, mean loss of the
      last 10 steps 1.5360 against 1.5311 (20 steps, default model, LoRA r16, batch 4 x 512);
    - AVX512-BF16 without AMX (bench/results/throughput_cpu_avx512bf16_{fp32,bf16}.md): 17.9 against 17.2
      tokens/s (+4%, the reference -9%, both under load): not measurably faster, so fp32;
    - AVX2 only (no native bf16): bf16 matrix products were 150x slower than fp32
      (docs/bf16_on_avx2_cpu.md), so fp32."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if bf16_supported else "fp16"
    return "bf16" if bf16_supported and amx else "fp32"


# The CPU flag (/proc/cpuinfo) under which `auto` trains in bf16: AMX's bf16 tiles (see `resolve`).
AUTO_BF16_CPU_FLAG = "amx_bf16"


def resolve_on_cpu(precision: str, flags: frozenset[str]) -> str:
    """`resolve` for a CPU with these /proc/cpuinfo flags (pure: the tests give flag sets, the estimate this
    machine's)."""
    from engine.core.device import cpu_native_half

    return resolve(precision, "cpu", cpu_native_half("bf16", flags), AUTO_BF16_CPU_FLAG in flags)


def compute_dtype(precision: str) -> str:
    """The dtype matrix products run in for a resolved precision (bf16_pure -> bf16)."""
    return PURE.get(precision, precision)


def is_pure(precision: str) -> bool:
    """True when every weight, gradient and optimizer state is kept in half precision."""
    return precision in PURE


def cpu_bf16_native() -> bool:
    """This CPU multiplies bf16 natively: the flags say so (/proc/cpuinfo) and the torch build uses the
    vector unit that has it (torch.backends.cpu.get_cpu_capability: AVX512 or AMX, not AVX2/DEFAULT,
    e.g. when ATEN_CPU_CAPABILITY caps it)."""
    from engine.core.device import cpu_native_half

    if not cpu_native_half("bf16"):
        return False
    import torch

    return torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))


def on_this_machine(precision: str) -> str:
    """`resolve` for the device this process trains on."""
    import torch

    if torch.cuda.is_available():
        return resolve(precision, "cuda", torch.cuda.is_bf16_supported())
    from engine.core.device import cpu_flags

    return resolve(precision, "cpu", cpu_bf16_native(), AUTO_BF16_CPU_FLAG in cpu_flags())
