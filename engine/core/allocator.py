"""Which malloc a trainer process runs on: tcmalloc or jemalloc when the system has one, else glibc's.

Why this exists: on CPU every tensor is a malloc. glibc raises its mmap threshold to the largest
block freed so far (up to 32 MiB), so after the first step nearly every activation comes from its
heap, and a heap only shrinks from the top: the buffers freed in backward stay resident while new
gradient buffers grow the heap. Measured here (bench/results/allocator_cpu.md, LoRA on the default
model with real instruction data): peak RSS 4.35 GiB under glibc, 3.17 GiB under tcmalloc (0.73x) at
1.20x the tokens per second; jemalloc 3.13 GiB at 1.01x. With tcmalloc the resident peak lands within
a few percent of the live tensors the memory estimate models (bench/results/memory_accuracy_cpu.md).
Forcing glibc to mmap every block above 128 KiB (mallopt) saved as much memory but ran at 0.65x.

An allocator can only be swapped before the process starts (LD_PRELOAD), so `python -m engine
train` starts itself again once with it (`reexec_with_allocator`). No Python package offers this;
the preload itself is what PyTorch's CPU performance guide recommends. Linux only; elsewhere and
when neither library is installed (`apt-get install libtcmalloc-minimal4`, which `make` does where
it can) the trainer runs on the system allocator, and the estimate says which it assumed.

TUNELOOM_ALLOCATOR=auto (default) | system | tcmalloc | jemalloc | /path/to/lib.so chooses.
"""
from __future__ import annotations

import ctypes.util
import functools
import os
import sys
from pathlib import Path

ENV = "TUNELOOM_ALLOCATOR"
# ctypes.util names, in order of preference (tcmalloc was the fastest of the two here)
LIBRARIES = {"tcmalloc": ("tcmalloc_minimal", "tcmalloc"), "jemalloc": ("jemalloc",)}
SYSTEM = "system"
_DONE = "TUNELOOM_ALLOCATOR_APPLIED"  # set in the started-again process: never start a third time
# tcmalloc prints a line for every allocation above 1 GiB by default; a vocabulary-sized logits
# tensor is one every step
QUIET = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(2**40)}


@functools.cache
def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = ctypes.util.find_library(name)  # the soname the dynamic loader resolves ("libtcmalloc_minimal.so.4")
        if found:
            return found
    return None


def planned(choice: str | None = None) -> tuple[str, str | None]:
    """(allocator name, library to preload or None) for a trainer started now from this environment."""
    choice = (choice or os.environ.get(ENV) or "auto").strip()
    if not sys.platform.startswith("linux") or choice == SYSTEM:
        return SYSTEM, None
    if choice in LIBRARIES:
        library = _find(LIBRARIES[choice])
        return (choice, library) if library else (SYSTEM, None)
    if choice != "auto":  # a path to a library
        path = Path(choice)
        name = next((n for n, libs in LIBRARIES.items() if any(lib in path.name for lib in libs)), path.name)
        return (name, str(path)) if path.is_file() else (SYSTEM, None)
    for name, libraries in LIBRARIES.items():
        library = _find(libraries)
        if library:
            return name, library
    return SYSTEM, None


def in_use() -> str:
    """The allocator this process runs on: a preloaded library mapped into it, else the system's."""
    try:
        mapped = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return SYSTEM
    for name, libraries in LIBRARIES.items():
        if any(f"/lib{lib}." in mapped for lib in libraries):
            return name
    return SYSTEM


def reexec_with_allocator() -> None:
    """Start this very command again with the planned allocator preloaded (same process id, so a
    launcher or torchrun waiting on it does not notice). Returns only when nothing is to be done."""
    if os.environ.get(_DONE) or in_use() != SYSTEM:
        return
    name, library = planned()
    if library is None:
        return
    env = {**os.environ, _DONE: name, **QUIET,
           "LD_PRELOAD": " ".join(filter(None, [library, os.environ.get("LD_PRELOAD")]))}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # same flags, module and arguments
