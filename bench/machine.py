"""One line naming the machine a benchmark ran on, for the recorded results."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    import torch

    return (f"{cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), Python {platform.python_version()}, {platform.system()} {platform.release()}")


def cpu_flags_line() -> str:
    """The CPU's vector and matrix flags that decide its speed and `precision: auto` (avx2 / avx512* / amx*)."""
    from engine.core.device import cpu_flags

    shown = sorted(f for f in cpu_flags() if f in ("avx2", "fma") or f.startswith(("avx512", "amx")))
    return "CPU flags: " + (", ".join(shown) if shown else "none of avx2/avx512/amx")
