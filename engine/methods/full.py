"""Full fine-tuning: every weight of the model is trained (the result is a whole new model)."""
from __future__ import annotations

from engine.core.structure import Structure
from engine.methods import weights
from engine.methods.base import METHODS, Method


def apply(model, params: dict, structure: Structure):
    weights.train_only(model, lambda name: True)
    return model


def count_trainable(structure: Structure, params: dict) -> int:
    return weights.count(structure, lambda name: True)


METHODS.register("full", Method(
    key="full", title="Full fine-tuning",
    summary="Trains every weight; the most capacity, and the most memory (weights, gradients and "
            "optimizer states for the whole model). For small models or big GPUs.",
    params=(), apply=apply, count_trainable=count_trainable, trains_base_weights=True,
    adapted=lambda structure, params: list(structure.param_sizes()),
    train_defaults={"learning_rate": 5e-05},
))
