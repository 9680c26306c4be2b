"""A chat model and a training job on one device: together only when the estimates say both fit.

The training job counts with the total its launch estimate gave (status.json `estimate_bytes`,
the peak plus the allocator allowance; the Train tab's estimate before it has one). A chat
model counts with the weights it will hold (its safetensors files: the base model, plus a run's
adapter or its full weights) times CHAT_ALLOWANCE for activations, the KV cache and the runtime.
The device's capacity is its total memory (GPU or system RAM), at most TUNELOOM_MEMORY_LIMIT_MB.
Import-light (no torch): the UI calls it before loading a chat model and before starting a run.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from engine.core import device, runs
from engine.core.jobs import RunState
from engine.core.messages import Message
from engine.core.workspace import resolve_model, stored_dtype

CHAT_ALLOWANCE = 1.2
GiB = 2**30


def capacity_bytes(found: dict | None = None) -> int | None:
    found = found or device.detect()
    total, limit = found.get("total_bytes"), device.memory_limit_bytes()
    return min(total, limit) if total is not None and limit is not None else total


def _weights(folder: Path) -> int:
    """Bytes of a folder's weights once the chat worker has loaded them (in fp32: bf16/fp16 files double)."""
    stored = sum(f.stat().st_size for f in folder.glob("*.safetensors")) if folder.is_dir() else 0
    return stored * 2 if stored_dtype(folder) in ("bfloat16", "float16") else stored


def chat_bytes(run_dir: Path | None = None, model: str | None = None) -> int | None:
    """Memory a chat worker needs for a run's result or a base model; None when the weights are not local."""
    if run_dir is not None:
        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8")) or {}
        model = cfg.get("model")
        own = _weights(Path(run_dir) / "model")  # full-weight methods: the run's own model, no base
        if own:
            return int(own * CHAT_ALLOWANCE)
    base = _weights(Path(resolve_model(model))) if model else 0
    if not base:
        return None  # a Hub id not downloaded yet: nothing to go by
    extra = _weights(Path(run_dir) / "adapter") if run_dir is not None else 0
    return int((base + extra) * CHAT_ALLOWANCE)


def training_jobs() -> list[tuple[str, int]]:
    """(run id, estimated bytes) of every run that holds the device now."""
    jobs = []
    for run in runs.list_runs():
        if run["state"] in (RunState.RUNNING, RunState.STOPPING):
            status = runs.read_status(Path(run["path"]))
            jobs.append((run["id"], int(status.get("estimate_bytes") or 0)))
    return jobs


def chat_refusal(needed: int | None) -> str | None:
    """Why a chat model of `needed` bytes may not load now, or None when it may."""
    jobs = training_jobs()
    capacity = capacity_bytes()
    if not jobs or needed is None or capacity is None:
        return None
    training = sum(b for _, b in jobs)
    if training + needed <= capacity:
        return None
    names = ", ".join(run_id for run_id, _ in jobs)
    return Message("chat.busy", runs=names, training=training / GiB, needed=needed / GiB, capacity=capacity / GiB)


def fits_beside_chat(training: int | None, chat_loaded: list[int]) -> bool:
    """Whether a training job of `training` bytes fits beside the chat models loaded now."""
    capacity = capacity_bytes()
    if not chat_loaded or training is None or capacity is None:
        return True
    return training + sum(chat_loaded) <= capacity
