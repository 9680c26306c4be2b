"""Shared pieces of the methods that train base weights (full, freeze, layerwise, bitfit).

One rule picks the trained parameters by name: `Structure.param_sizes()` lists the parameter names
and sizes the model has (read from the model itself, engine/core/describe.py), and `train_only(model,
keep)` applies the same name predicate to the real model, so the parameter count the estimator shows
is by construction the count the trainer reports. Also the optimizer helper methods with their own
parameter groups use (LoRA+, layerwise unfreezing).
"""
from __future__ import annotations

from collections.abc import Callable

from engine.core.structure import Structure


def count(structure: Structure, keep: Callable[[str], bool]) -> int:
    return sum(n for name, n in structure.param_sizes().items() if keep(name))


def final_norm_params(structure: Structure) -> set[str]:
    """The parameters of the norm(s) after the last decoder layer (model.norm, ln_f, final_layer_norm, ...)."""
    return {name for name in structure.outside for norm in structure.outside_norms if name.startswith(norm + ".")}


def train_only(model, keep: Callable[[str], bool]) -> list[str]:
    """requires_grad on exactly the parameters `keep` selects; returns their names."""
    chosen = []
    for name, param in model.named_parameters():
        param.requires_grad_(keep(name))
        if keep(name):
            chosen.append(name)
    return chosen


def top_layers(arch_layers: int, n: int) -> set[int]:
    return set(range(max(0, arch_layers - n), arch_layers))


def layer_of(name: str, structure: Structure) -> tuple[int, str] | None:
    """(decoder layer index, name inside the layer) of a parameter name, or None outside the layers."""
    start = structure.layers_prefix + "."
    if not name.startswith(start):
        return None
    index, _, inner = name[len(start):].partition(".")
    return (int(index), inner) if index.isdigit() else None


def names_list(spec: str) -> list[str]:
    return [n.strip() for n in str(spec).split(",") if n.strip()]


def build_optimizer(model, args, groups: list[dict]):
    """The optimizer `args.optim` names (with its arguments, as the Trainer would build it) over
    explicit parameter groups; each group: {"params": [...], optional "lr", "weight_decay"}."""
    from transformers import Trainer

    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    groups = [g for g in groups if g["params"]]
    for group in groups:
        group.setdefault("weight_decay", args.weight_decay)
    return cls(groups, **kwargs)


def decay_groups(named: list[tuple[str, object]], weight_decay: float) -> list[dict]:
    """Weight decay on weights, none on biases and norms (as the Trainer does)."""
    def no_decay(name: str) -> bool:
        return name.endswith("bias") or "norm" in name.rsplit(".", 2)[-2]

    return [{"params": [p for n, p in named if not no_decay(n)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0}]
