"""What each method's preset measured on real instruction data: the evidence for picking a method.

bench/methods_real.py trains every preset on held-out-split instruction data and writes its rows to RECORD;
`summarise` turns those rows into one line per method (mean change of held-out eval loss against the base
model and against full fine-tuning with the same seed, seconds per step, peak memory, divergence). The bench's
table, the README's Methods table and the Train tab's method picker all read it from here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.workspace import PROJECT_ROOT

RECORD = PROJECT_ROOT / "bench" / "results" / "methods_real_cpu.json"
PRESETS = PROJECT_ROOT / "presets"
# the training settings a preset (or its method's starting values) decides and a measurement depends on; the bench
# sets the data, steps, sequence length, seed and evaluation itself
PRESET_TRAIN_KEYS = ("batch_size", "gradient_accumulation", "learning_rate", "warmup_steps", "scheduler",
                     "weight_decay", "max_grad_norm", "optimizer", "precision", "packing", "fused_loss")


def preset_fingerprint(key: str, presets: Path = PRESETS) -> str | None:
    """What a row was measured with: the preset's model, its method's resolved settings and the training settings
    above, hashed. A row whose preset changed since it was measured (a new learning rate, another initialisation)
    says nothing about the preset as it is. None where the method has no preset."""
    from engine.core.config import ConfigError, RunConfig

    try:
        config = RunConfig.load(presets / f"{key}.yaml").to_dict()
    except (OSError, ConfigError):
        return None
    settings = {"model": config["model"], "method": config["method"],
                "train": {k: config["train"][k] for k in PRESET_TRAIN_KEYS}}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Measured:
    key: str
    seeds: list[int]
    eval_losses: list[float] = field(default_factory=list)  # per seed, at the end of the run
    base_losses: list[float] = field(default_factory=list)  # the base model on the same held-out examples
    versus_base: float = 0.0  # mean relative change of eval loss against the base (-0.075 = 7.5% lower); the base
    # is the model the method trains on: QLoRA's and 8-bit LoRA's are the quantised one
    versus_full: float | None = None  # the same against full fine-tuning with the same seed
    s_per_step: float | None = None  # the fastest seed's: another may have shared the machine
    peak_mb: float | None = None
    diverged: list[tuple[int, int]] = field(default_factory=list)  # (seed, step the trainer said so)
    error: str = ""

    @property
    def above_base(self) -> list[int]:
        """The seeds whose held-out loss ended at or above the base model's."""
        return [seed for seed, e, b in zip(self.seeds, self.eval_losses, self.base_losses) if e >= b]

    @property
    def beats_base(self) -> bool:
        """Lower held-out loss than the base model on every seed, and no divergence."""
        return not self.error and not self.diverged and not self.above_base


REQUIRED = ("key", "seed", "final_eval_loss", "base_eval_loss")


def current(rows: list[dict]) -> list[dict]:
    """The rows measured with their preset as it is now (preset_fingerprint); the others are left out."""
    fingerprints = {key: preset_fingerprint(key) for key in {r.get("key") for r in rows if isinstance(r, dict)}}
    return [r for r in rows if isinstance(r, dict) and r.get("preset") is not None
            and r.get("preset") == fingerprints.get(r.get("key"))]


def summarise(rows: list[dict]) -> dict[str, Measured]:
    """One Measured per method, in the rows' order; a method with any failed run carries that run's error. A row
    without its losses (an older or hand-edited record) is left out rather than trusted."""
    rows = [r for r in rows if isinstance(r, dict) and ("error" in r and "key" in r and "seed" in r
                                                       or all(r.get(k) is not None for k in REQUIRED))]
    full = {r["seed"]: r["final_eval_loss"] for r in rows if r["key"] == "full" and r.get("final_eval_loss")}
    out = {}
    for key in dict.fromkeys(r["key"] for r in rows):
        mine = [r for r in rows if r["key"] == key]
        failed = next((r["error"] for r in mine if "error" in r), "")
        if failed:
            out[key] = Measured(key, [r["seed"] for r in mine], error=failed)
            continue
        versus_full = [r["final_eval_loss"] / full[r["seed"]] - 1 for r in mine if r["seed"] in full]
        out[key] = Measured(
            key, [r["seed"] for r in mine], [r["final_eval_loss"] for r in mine], [r["base_eval_loss"] for r in mine],
            versus_base=sum(r["final_eval_loss"] / r["base_eval_loss"] - 1 for r in mine) / len(mine),
            versus_full=sum(versus_full) / len(versus_full) if versus_full else None,
            # the best of the seeds, as timeit reports (another run may have shared the machine)
            s_per_step=min((r["s_per_step"] for r in mine if r.get("s_per_step")), default=None),
            peak_mb=max((r["peak_memory_mb"] for r in mine if r.get("peak_memory_mb")), default=None),
            diverged=[(r["seed"], r["diverging"]) for r in mine if r.get("diverging")])
    return out


def load(path: Path | None = None) -> tuple[dict, dict[str, Measured]]:
    """(what the record says of its measurement: data, steps, cpu, cores; the methods) or ({}, {}) without one."""
    try:
        record = json.loads(Path(path or RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, {}
    rows = record.get("rows", []) if isinstance(record, dict) else record
    about = {k: v for k, v in record.items() if k != "rows"} if isinstance(record, dict) else {}
    return about, summarise(current(rows) if isinstance(rows, list) else [])
