"""Shared pieces of the methods that train base weights (full, freeze, layerwise, bitfit).

One rule picks the trained parameters by name: `param_sizes(arch)` lists the parameter names and
sizes a Llama-style checkpoint has (pure, from config.json), and `train_only(model, keep)` applies
the same name predicate to the real model, so the parameter count the estimator shows is by
construction the count the trainer reports. Also the optimizer helper methods with their own
parameter groups use (LoRA+, layerwise unfreezing).
"""
from __future__ import annotations

from typing import Callable

from engine.core.arch import ATTENTION, MLP, Arch

LAYER_NORMS = ("input_layernorm", "post_attention_layernorm")


def layer_prefix(index: int) -> str:
    return f"model.layers.{index}."


def param_sizes(arch: Arch) -> dict[str, int]:
    """Name -> numel of every parameter of the model as `model.named_parameters()` lists it
    (a tied lm_head shares the embedding's tensor and is listed once, as the embedding)."""
    sizes = {"model.embed_tokens.weight": arch.vocab * arch.hidden}
    shapes = arch.linear_shapes()
    for layer in range(arch.layers):
        prefix = layer_prefix(layer)
        for name in ATTENTION + MLP:
            i, o = shapes[name]
            path = f"{prefix}{'self_attn' if name in ATTENTION else 'mlp'}.{name}"
            sizes[f"{path}.weight"] = i * o
            if arch.has_bias(name):
                sizes[f"{path}.bias"] = o
        for norm in LAYER_NORMS:
            sizes[f"{prefix}{norm}.weight"] = arch.hidden
    sizes["model.norm.weight"] = arch.hidden
    if not arch.tie_embeddings:
        sizes["lm_head.weight"] = arch.vocab * arch.hidden
    return sizes


def count(arch: Arch, keep: Callable[[str], bool]) -> int:
    return sum(n for name, n in param_sizes(arch).items() if keep(name))


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


def layer_of(name: str) -> int | None:
    """The decoder layer index in a parameter name, or None outside the layers."""
    parts = name.split(".")
    if "layers" in parts:
        index = parts.index("layers") + 1
        if index < len(parts) and parts[index].isdigit():
            return int(parts[index])
    return None


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
