"""BitFit (Ben Zaken et al., 2021): train only the bias terms; every weight matrix stays frozen.

Which biases a model has is read from its weights (the structure lists every parameter). A model
without biases in the chosen place gets zero-initialised ones where its config has a switch for them
(Llama's `attention_bias` / `mlp_bias`, Gemma's `attention_bias`): the switch is turned on in the saved
config, so the result loads in plain transformers with its new biases, and starts out identical to the
base model. Where neither biases nor a switch exist, BitFit is refused before loading, with the reason.
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import ATTENTION, MLP, Structure
from engine.methods import weights
from engine.methods.base import METHODS, Method

GROUPS = ("all", ATTENTION, MLP, "norm")
PARAMS = (
    Param("biases", str, "all", "Which bias terms train: all, attention (the attention block's linear layers), "
          "mlp (the feed-forward block's), or norm (LayerNorm biases). Missing attention/mlp biases are added "
          "(zero) where the model's config has a switch for them.", choices=GROUPS),
)


def group_of(name: str, structure: Structure) -> str:
    """The group of a bias parameter: attention, mlp, norm, or other (e.g. an output head's bias)."""
    module = name.rsplit(".", 1)[0]
    where = weights.layer_of(name, structure)
    if where is None:
        return "norm" if module in structure.outside_norms else "other"
    layer, inner = where
    kind = structure.kind(layer)
    inner_module = inner.rsplit(".", 1)[0]
    if inner_module in kind.norms:
        return "norm"
    linear = next((lin for lin in kind.linears if lin.name == inner_module), None)
    if linear is not None:
        return linear.block
    return ATTENTION if inner_module.startswith(kind.attention + ".") else MLP


def existing(structure: Structure, which: str) -> list[str]:
    return [n for n in structure.param_sizes() if n.endswith(".bias") and which in ("all", group_of(n, structure))]


def switches(structure: Structure, which: str) -> dict[str, tuple[str, ...]]:
    """Config switches that would add the missing biases of the chosen group: key -> linear layers."""
    chosen = {}
    kind = structure.first
    blocks = {lin.name: lin.block for lin in kind.linears}
    has_bias = {lin.name for lin in kind.linears if lin.bias}
    for key, names in structure.bias_switches.items():
        groups = {blocks.get(n, "") for n in names}
        if which != "all" and groups != {which}:
            continue
        if not any(n in has_bias for n in names):
            chosen[key] = names
    return chosen


def added(structure: Structure, which: str) -> dict[str, int]:
    """Full names of the zero biases BitFit adds -> their size."""
    found = {}
    for names in switches(structure, which).values():
        for layer in range(structure.layers):
            for lin in structure.kind(layer).linears:
                if lin.name in names:
                    found[structure.layer_name(layer, lin.name) + ".bias"] = lin.outputs
    return found


def trained(structure: Structure, params: dict) -> list[str]:
    return existing(structure, params["biases"]) + list(added(structure, params["biases"]))


def count_trainable(structure: Structure, params: dict) -> int:
    sizes = structure.param_sizes()
    biases = params["biases"]
    return sum(sizes[n] for n in existing(structure, biases)) + sum(added(structure, biases).values())


def unavailable(structure: Structure) -> str | None:
    if existing(structure, "all") or structure.bias_switches:
        return None
    return (f"BitFit trains bias terms only; this {structure.model_type} model has none, and its config has no switch "
            "(like Llama's attention_bias) that adds them so that the result still loads in transformers. "
            "Choose another method such as LoRA or IA3")


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    if structure is None or count_trainable(structure, params):
        return []
    return [f"method.biases: this {structure.model_type} model has no {params['biases']} biases and no config switch "
            f"that adds them; choose biases: all, or another method"]


def add_biases(model, structure: Structure, which: str) -> list[str]:
    """Give the chosen linear layers zero biases and turn their config switches on (saved with the result)."""
    import torch

    names = []
    for key, linears in switches(structure, which).items():
        for layer in range(structure.layers):
            for name in linears:
                module = model.get_submodule(structure.layer_name(layer, name))
                module.bias = torch.nn.Parameter(torch.zeros(module.out_features, dtype=module.weight.dtype,
                                                             device=module.weight.device))
                names.append(structure.layer_name(layer, name) + ".bias")
        setattr(model.config, key, True)
    return names


def apply(model, params: dict, structure: Structure):
    add_biases(model, structure, params["biases"])
    wanted = set(trained(structure, params))
    weights.train_only(model, lambda name: name in wanted)
    return model


METHODS.register("bitfit", Method(
    key="bitfit", title="BitFit (biases only)",
    summary="Trains only the bias terms (well under 0.1% of the weights); a tiny, cheap update. Models without "
            "biases (Llama-style) get zero ones where their config allows it.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, unavailable=unavailable, problems=problems,
    adapted=trained, grad_layers=lambda structure, params: structure.layers, trains_base_weights=True,
    count_added_base=lambda structure, params: sum(added(structure, params["biases"]).values()),
    train_defaults={"learning_rate": 0.001},
))
