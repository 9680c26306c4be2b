"""How several processes share a training run, declared once: what each choice splits across the processes
(the estimate divides those parts of memory; engine/estimate/components.py) and which of them a run can be
launched with (engine/training/launcher.py). Pure."""
from __future__ import annotations

# choice -> the parts of training state it divides among the processes (the rest each process holds whole)
SHARDED_PARTS = {
    "none": (),  # one process
    "ddp": (),  # data parallel: every process holds everything
    "zero1": ("optimizer",),
    "zero2": ("optimizer", "gradients"),
    "zero3": ("optimizer", "gradients", "weights"),
    "fsdp": ("optimizer", "gradients", "weights"),  # FULL_SHARD
}
SHARDING = tuple(SHARDED_PARTS)  # what the estimate can size
DEEPSPEED = ("zero1", "zero2", "zero3")  # the ones that run through DeepSpeed (half-precision weights)
DISTRIBUTED = ("ddp", "fsdp", "zero2", "zero3")  # what `train.distributed` may be: the launcher starts these


def shards(sharding: str, part: str) -> bool:
    """Whether this choice divides `part` (optimizer | gradients | weights) among the processes."""
    return part in SHARDED_PARTS[sharding]
