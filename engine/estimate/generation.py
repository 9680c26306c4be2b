"""What sampling answers adds to the estimate (GRPO, engine/training/grpo.py): a moment of its own, before the
training forward of the step, when the generation batch holds its key/value cache and one step's logits.

TRL generates `batch_size x gradient_accumulation` answers at once (its default steps_per_generation is the
accumulation), each a prompt of the data's longest row plus up to the objective's completion tokens; every layer
keeps keys and values for all of them (kv heads x head dim, in the compute dtype), and each decoding step
builds the batch's last-position logits and their fp32 softmax for sampling. Pure."""
from __future__ import annotations


def generation_bytes(s) -> float:
    completion = s.objective.completion_tokens(s.cfg)
    if not completion:
        return 0.0
    structure = s.structure
    answers = s.train.batch_size * s.train.gradient_accumulation
    positions = s.row  # the data's longest prompt + the completion (engine/estimate/components.py Setup.row)
    cache = answers * positions * structure.layers * 2 * structure.kv_heads * structure.head_dim * s.p
    logits = answers * structure.vocab * (s.p + 4 + 4)  # the logits, their fp32 upcast and the softmax
    return float(cache + logits)
