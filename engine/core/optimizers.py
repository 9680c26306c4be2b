"""The optimizer registry: one entry per `train.optimizer` key, read by the schema (valid keys), the
trainer (the transformers `optim` name and its arguments), the memory estimate and the pre-run disk
check (state bytes per trainable parameter). Pure data, import-light.

State bytes per trainable parameter are a multiple of the parameter's own bytes (`state_rel`) plus
fixed bytes (`state_abs`); `step_temp` is the step's temporary in parameter-sized copies. Sources:
torch.optim (state dicts: AdamW exp_avg + exp_avg_sq; SGD with momentum one momentum_buffer;
Adagrad `sum`; RMSprop `square_avg`), bitsandbytes (8-bit blockwise states: one byte per value and
one fp32 absmax per 256-value block, two states for AdamW), transformers.Adafactor (factored
second moment: a row and a column vector per matrix; no first moment by default).
tests/test_optimizers.py checks each against the real optimizer's state after one step.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Optimizer:
    key: str
    label: str
    hf_name: str  # transformers TrainingArguments.optim
    state_rel: float  # state bytes per parameter, in units of the parameter's bytes
    state_abs: float = 0.0  # state bytes per parameter, fixed
    step_temp: float = 0.0  # temporary at the step, in parameter-sized copies
    hf_args: str | None = None  # TrainingArguments.optim_args
    paged: bool = False  # paged states live in unified memory (can spill to CPU RAM)
    needs_cuda: bool = False  # bitsandbytes' 8-bit states are CUDA kernels


EIGHT_BIT_STATE = 2 * (1 + 4 / 256)  # two 8-bit states + one fp32 absmax per 256-value block each

OPTIMIZERS: dict[str, Optimizer] = {o.key: o for o in (
    Optimizer("adamw", "AdamW (2 fp32 moments)", "adamw_torch", state_rel=2.0, step_temp=1.0),
    Optimizer("adamw_8bit", "8-bit AdamW", "adamw_8bit", state_rel=0.0, state_abs=EIGHT_BIT_STATE),
    Optimizer("paged_adamw_8bit", "paged 8-bit AdamW", "paged_adamw_8bit", state_rel=0.0,
              state_abs=EIGHT_BIT_STATE, paged=True),
    # plain SGD without momentum trains poorly: the trainer always gives it momentum 0.9 (one buffer)
    Optimizer("sgd", "SGD with momentum 0.9", "sgd", state_rel=1.0, hf_args="momentum=0.9"),
    Optimizer("adagrad", "Adagrad", "adagrad", state_rel=1.0, step_temp=1.0),
    Optimizer("rmsprop", "RMSprop", "rmsprop", state_rel=1.0, step_temp=1.0),
    # factored: rows + columns per matrix; ~1/8 of the parameters for rank-8 adapters, far less for
    # full matrices; 1/8 is the conservative end
    Optimizer("adafactor", "Adafactor (factored)", "adafactor", state_rel=1 / 8, step_temp=1.0),
)}


def get(key: str) -> Optimizer:
    try:
        return OPTIMIZERS[key]
    except KeyError:
        raise KeyError(f"unknown optimizer {key!r}; choose one of: {', '.join(OPTIMIZERS)}") from None


def state_bytes(key: str, param_bytes: float) -> float:
    """Optimizer state bytes for one trainable parameter stored in `param_bytes` bytes."""
    optimizer = get(key)
    return optimizer.state_rel * param_bytes + optimizer.state_abs
