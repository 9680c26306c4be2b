"""Prefix tuning (Li & Liang, 2021): learned key/value vectors (a prefix) prepended in every
attention layer, produced through an MLP reparameterisation while training for stability."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import prompt_learning as pl
from engine.methods.base import METHODS, Method

PARAMS = (
    pl.num_tokens_param(20),
    Param("prefix_projection", bool, True, "Produce the prefix through a 2-layer MLP (the paper's "
          "reparameterisation); off learns the prefix directly (that is P-tuning v2)."),
    Param("encoder_hidden_size", int, 512, "Hidden width of the prefix MLP.", min=1),
)


def prefix_config(params: dict, projection: bool):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=params["num_virtual_tokens"],
                              prefix_projection=projection,
                              encoder_hidden_size=params.get("encoder_hidden_size", 512))


def prefix_count(structure: Structure, n: int, projection: bool, hidden: int) -> int:
    per_token = structure.layers * 2 * pl.kv_dim(structure)  # keys and values of every layer
    if not projection:
        return n * per_token
    d = pl.kv_dim(structure)
    return n * d + (d * hidden + hidden) + (hidden * per_token + per_token)


METHODS.register("prefix_tuning", Method(
    key="prefix_tuning", title="Prefix tuning",
    summary="Learns key/value prefixes for every attention layer (through an MLP while training); "
            "more capacity than prompt tuning with the model untouched.",
    params=PARAMS, apply=lambda model, p, structure: pl.apply_config(model, prefix_config(p, p["prefix_projection"])),
    count_trainable=lambda structure, p: prefix_count(structure, p["num_virtual_tokens"], p["prefix_projection"],
                                                      p["encoder_hidden_size"]),
    not_mergeable_reason=pl.NOT_MERGEABLE, virtual_tokens=pl.virtual_tokens, virtual_keys_only=True,
    no_checkpointing_reason=pl.NO_CHECKPOINTING, problems=pl.position_problems, unavailable=pl.prefix_unavailable,
    # measured on real instructions (bench/results/methods_real_cpu.md): at 5e-3 and 5 warm-up steps the prefix MLP
    # diverged on alpaca_en_demo (loss 1.97 -> 11.3 by step 13); 1e-3 with 10 warm-up steps is the stable setting
    train_defaults={"learning_rate": 0.001, "warmup_steps": 10},
))
