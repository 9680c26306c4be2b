"""What the training device is: its memory (the GPU via nvidia-smi or, without one, system RAM) and,
for a CPU, whether it computes in half precision natively.

Import-light (no torch): the UI calls this to put the memory estimate next to the device, and the
memory estimate and `precision: auto` (engine/core/precision.py) read the CPU's facts from here.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess

from engine.core.messages import Message

MiB = 2**20


def gpus() -> list[dict]:
    """One dict per NVIDIA GPU ({name, total_bytes, free_bytes}); empty without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3:
            continue
        try:
            total, free = int(float(parts[-2])) * MiB, int(float(parts[-1])) * MiB
        except ValueError:
            continue
        found.append({"name": ",".join(parts[:-2]), "total_bytes": total, "free_bytes": free})
    return found


# CPU feature flags (Linux /proc/cpuinfo) that give matrix products a native half-precision path in
# torch's oneDNN kernels: AVX512-BF16 (Cooper Lake, Sapphire Rapids and later Xeons, AMD Zen 4+) and AMX
# (Sapphire Rapids+). Without them torch falls back to far slower kernels (docs/bf16_on_avx2_cpu.md:
# 0.9 GFLOP/s bf16 against 142 GFLOP/s fp32 on an AVX2-only EPYC).
NATIVE_HALF_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file)."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_native_half(dtype: str, flags: frozenset[str] | None = None) -> bool:
    """True when this CPU (or one with `flags`) multiplies `dtype` ("bf16" or "fp16") natively."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_HALF_FLAGS.get(dtype, ()))


def system_memory() -> dict:
    import psutil

    vm = psutil.virtual_memory()
    return {"total_bytes": int(vm.total), "free_bytes": int(vm.available)}


def detect(kind: str | None = None) -> dict:
    """{kind: 'cuda'|'cpu', name, total_bytes, free_bytes, available_bytes, count}.

    available_bytes is what a new training process can use: the first GPU's free memory, or the
    system's available RAM, at most TUNELOOM_MEMORY_LIMIT_MB when that is set (a shared machine,
    or room kept for other work). `kind` forces 'cpu' or 'cuda' (cuda without a GPU: sizes are None).
    """
    found = _detect(kind)
    limit = memory_limit_bytes()
    if limit is not None and found["available_bytes"] is not None:
        found["available_bytes"] = min(found["available_bytes"], limit)
    return found


def memory_limit_bytes() -> int | None:
    """TUNELOOM_MEMORY_LIMIT_MB in bytes, or None when it is not set."""
    limit = os.environ.get("TUNELOOM_MEMORY_LIMIT_MB", "").strip()
    return int(float(limit) * MiB) if limit else None


def _detect(kind: str | None) -> dict:
    found = gpus() if kind in (None, "cuda") else []
    if found:
        first = found[0]
        return {"kind": "cuda", "name": first["name"], "total_bytes": first["total_bytes"],
                "free_bytes": first["free_bytes"], "available_bytes": first["free_bytes"], "count": len(found)}
    if kind == "cuda":
        return {"kind": "cuda", "name": Message("device.no_gpu"), "total_bytes": None, "free_bytes": None,
                "available_bytes": None, "count": 0}
    ram = system_memory()
    return {"kind": "cpu", "name": Message("device.cpu"), "total_bytes": ram["total_bytes"],
            "free_bytes": ram["free_bytes"], "available_bytes": ram["free_bytes"], "count": 1}
