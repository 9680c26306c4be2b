"""LoHa (Hyeon-Woo et al., 2022; LyCORIS): the update is the Hadamard product of two low-rank
products, (A1·B1) ⊙ (A2·B2): a higher effective rank than LoRA for the same parameters. peft."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import lycoris, targets
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("r", int, 8, "Rank of each of the two products.", min=1, max=1024),
    Param("alpha", float, 16.0, "Scale of the update (alpha / r).", min=0.0),
    Param("rank_dropout", float, 0.0, "Dropout on the rank dimension while training.", min=0.0, max=0.9),
    Param("module_dropout", float, 0.0, "Probability of skipping a whole adapted layer in a step.", min=0.0, max=0.9),
    Param("target_modules", str, "all-linear", targets.SPEC_HELP, check=targets.syntax_problems),
)


def apply(model, params: dict, structure: Structure):
    from peft import LoHaConfig, get_peft_model

    return get_peft_model(model, LoHaConfig(
        r=params["r"], alpha=params["alpha"], rank_dropout=params["rank_dropout"],
        module_dropout=params["module_dropout"], target_modules=lycoris.chosen(structure, params).module_names(),
    ))


def count_trainable(structure: Structure, params: dict) -> int:
    r = params["r"]
    return sum(2 * r * (lin.inputs + lin.outputs) for _, lin in lycoris.chosen(structure, params).modules)


METHODS.register("loha", Method(
    key="loha", title="LoHa",
    summary="Hadamard product of two low-rank updates: more expressive than LoRA at the same size "
            "(twice LoRA's parameters at equal r); mergeable.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True, **lycoris.hooks("LoHa"),
    train_defaults={"learning_rate": 0.001},
))
