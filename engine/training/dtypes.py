"""What a run really trains in: the dtypes of its trained weights, their gradients and the optimizer's
states, counted at the first optimizer step (after the step, before the gradients are cleared) and
recorded in status.json (`dtypes`) and the log. A run asked to train in pure bf16 shows there that no
fp32 copy is left; a mixed-precision run shows its fp32 masters.
"""
from __future__ import annotations

from pathlib import Path

from engine.core import runs
from engine.core.runlog import log


def count_by_dtype(tensors) -> dict[str, int]:
    """{dtype name: elements} over floating-point tensors (e.g. {"bfloat16": 1200})."""
    counts: dict[str, int] = {}
    for tensor in tensors:
        if tensor is None or not tensor.is_floating_point():
            continue
        name = str(tensor.dtype).removeprefix("torch.")
        counts[name] = counts.get(name, 0) + tensor.numel()
    return counts


def training_dtypes(model, optimizer) -> dict[str, dict[str, int]]:
    """Dtypes of the trained weights, their gradients and the optimizer's states (step counters excluded)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    states = [value for state in optimizer.state.values() for key, value in state.items()
              if key != "step" and hasattr(value, "is_floating_point")]
    return {"weights": count_by_dtype(trained), "gradients": count_by_dtype(p.grad for p in trained),
            "optimizer_states": count_by_dtype(states)}


def build_callback(run_dir: Path, is_main: bool):
    from transformers import TrainerCallback

    class DtypeReport(TrainerCallback):
        done = False

        def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
            if self.done or not is_main or model is None or optimizer is None:
                return
            self.done = True
            found = training_dtypes(model, getattr(optimizer, "optimizer", optimizer))  # accelerate wraps it
            runs.update_status(run_dir, dtypes=found)
            log("trained in: " + "; ".join(f"{part} {', '.join(sorted(counts)) or '-'}"
                                          for part, counts in found.items()))

    return DtypeReport()
