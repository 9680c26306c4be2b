"""P-tuning v2 (Liu et al., 2022): deep prompts, i.e. learned key/value prefixes on every layer,
trained directly without a reparameterisation MLP (peft's prefix tuning, prefix_projection off)."""
from __future__ import annotations

from engine.methods import prefix_tuning
from engine.methods import prompt_learning as pl
from engine.methods.base import METHODS, Method

METHODS.register("p_tuning_v2", Method(
    key="p_tuning_v2", title="P-tuning v2 (deep prompts)",
    summary="Learned prompts on every layer, trained directly (no MLP); close to LoRA on many tasks "
            "with the model untouched.",
    params=(pl.num_tokens_param(20),),
    apply=lambda model, p, structure: pl.apply_config(model, prefix_tuning.prefix_config(p, False)),
    count_trainable=lambda structure, p: prefix_tuning.prefix_count(structure, p["num_virtual_tokens"], False, 0),
    not_mergeable_reason=pl.NOT_MERGEABLE, virtual_tokens=pl.virtual_tokens, virtual_keys_only=True,
    no_checkpointing_reason=pl.NO_CHECKPOINTING, problems=pl.position_problems, unavailable=pl.prefix_unavailable,
    train_defaults={"learning_rate": 0.01},
))
