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


def resolve(precision: str, device: str, bf16_supported: bool = True) -> str:
    """fp32 | bf16 | fp16 | bf16_pure for `precision` (auto or one of them) on `device` (cuda | cpu).

    `bf16_supported`: on a GPU, whether it computes in bf16; on a CPU, whether it has native bf16
    matrix products (engine/core/device.cpu_native_half: AVX512-BF16 or AMX).

    auto: bf16 on a GPU that supports it, else fp16; fp32 on CPUs. On a CPU without native bf16, bf16
    matrix products were 150x slower than fp32 (AVX2-only EPYC, bench/results/throughput_cpu_bf16.md).
    With native bf16 but no AMX (Xeon with AVX512-BF16: bench/results/throughput_cpu_avx512bf16_{fp32,bf16}.md)
    bf16 mixed precision was not measurably faster than fp32 at the same loss (Tuneloom +4%, the reference
    -9%, both under load), so auto keeps fp32;
    CPU_AUTO_BF16 is where a measurement that shows it faster would flip the choice."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if bf16_supported else "fp16"
    return "bf16" if bf16_supported and CPU_AUTO_BF16 else "fp32"


# Whether `auto` picks bf16 on a CPU with native bf16: only when measured faster at the same loss.
CPU_AUTO_BF16 = False


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
    return resolve(precision, "cpu", cpu_bf16_native())
