"""What memory the training device has: the GPU (via nvidia-smi) or, without one, system RAM.

Import-light (no torch): the UI calls this to put the memory estimate next to the device.
"""
from __future__ import annotations

import os
import shutil
import subprocess

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
        return {"kind": "cuda", "name": "GPU (not found here)", "total_bytes": None, "free_bytes": None,
                "available_bytes": None, "count": 0}
    ram = system_memory()
    return {"kind": "cpu", "name": "CPU (system RAM)", "total_bytes": ram["total_bytes"],
            "free_bytes": ram["free_bytes"], "available_bytes": ram["free_bytes"], "count": 1}


def cuda_device(total_gib: float, name: str = "GPU") -> dict:
    """A device dict for a GPU of a given size (for 'will it fit on a 24 GB card?' questions)."""
    total = int(total_gib * 2**30)
    return {"kind": "cuda", "name": name, "total_bytes": total, "free_bytes": total, "available_bytes": total,
            "count": 1}
