"""The run's memory plan, from the pure estimate (engine/estimate): gradient checkpointing turned on where memory
is tight, and the estimate recorded beside the measured peak (status.json, every metrics row) for calibration."""
from __future__ import annotations

import os

from engine.core import runs
from engine.core.config import RunConfig
from engine.core.runlog import log
from engine.core.structure import Structure
from engine.methods import METHODS


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _estimate(cfg: RunConfig, structure: Structure, precision: str, data=None):
    """`data`: the data's token lengths (engine/estimate/lengths.py): the longest batch it makes, as the Train
    tab estimates it once the data is checked."""
    from engine.core.allocator import in_use
    from engine.estimate import estimate

    world = int(os.environ.get("WORLD_SIZE", "1"))
    return estimate(structure, cfg, device="cuda" if _cuda_available() else "cpu", world_size=world,
                    sharding=cfg.train.distributed if world > 1 else "none",
                    weight_dtype=METHODS.get(cfg.method.name).load_dtype(precision), cpu_allocator=in_use(),
                    data=data)


def launch_estimate(cfg: RunConfig, structure: Structure, precision: str, data=None) -> dict:
    """The memory estimate for this run (pure, ~1 ms), recorded beside the measured peak for calibration."""
    try:
        est = _estimate(cfg, structure, precision, data)
        recorded = {"estimate_bytes": est.total_bytes, "estimate_peak_bytes": est.peak_bytes}
        if est.device == "cpu":
            recorded["allocator"] = est.details["cpu_allocator"]  # it shapes the CPU peak (engine/core/allocator.py)
        return recorded
    except Exception as err:  # the estimate is a help, never a reason for a run to fail
        log(f"memory estimate unavailable: {err}")
        return {}


def checkpoint_if_tight(cfg: RunConfig, structure: Structure, precision: str, data=None) -> bool:
    """Turn gradient checkpointing on when the estimate says memory is tight (or short) without it.

    Checkpointing costs ~30% more compute and saves most activation memory, so it is on exactly
    where memory, not time, is what a run is short of. Returns True when it was turned on."""
    if cfg.train.gradient_checkpointing or METHODS.get(cfg.method.name).no_checkpointing_reason:
        return False
    try:
        from engine.core.device import detect
        from engine.estimate import verdict

        device = detect("cuda" if _cuda_available() else "cpu")
        without = _estimate(cfg, structure, precision, data).total_bytes
        state = verdict(without, device)
        if state not in ("tight", "does not fit"):
            return False
        cfg.train.gradient_checkpointing = True
        with_it = _estimate(cfg, structure, precision, data).total_bytes
    except Exception as err:  # a help, never a reason to fail
        log(f"memory check skipped: {err}")
        return False
    gib = 2 ** 30
    words = {"tight": "memory is tight", "does not fit": "the run does not fit in memory"}[state]
    log(f"{words} (estimate {without / gib:.2f} GiB, {device['available_bytes'] / gib:.2f} GiB "
        f"available): gradient checkpointing turned on ({with_it / gib:.2f} GiB)")
    return True


def plan_memory(setup, callback) -> None:
    """The estimate of the data's longest batch, as the Train tab makes it once the data is checked: gradient
    checkpointing where memory is tight, and the estimate recorded beside the measured peak."""
    from engine.estimate import DataLengths

    cfg, run_dir = setup.cfg, setup.run_dir
    lengths = DataLengths.from_stats(setup.data.stats(), cfg.train.max_seq_len)
    if checkpoint_if_tight(cfg, setup.structure, setup.precision, lengths) and setup.is_main:
        runs.update_status(run_dir, auto_gradient_checkpointing=True)
    callback.estimate = launch_estimate(cfg, setup.structure, setup.precision, lengths)
    if setup.is_main and callback.estimate:
        runs.update_status(run_dir, **callback.estimate)
        if "allocator" in callback.estimate:
            log(f"memory allocator: {callback.estimate['allocator']} (engine/core/allocator.py)")
