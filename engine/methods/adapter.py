"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2020), written here: peft has none.

A small down-projection -> non-linearity -> up-projection added to the output of a sublayer:
Houlsby places one after the attention output and one after the feed-forward block of every
layer, Pfeiffer only after the feed-forward block. The up-projection starts at zero, so the
model is unchanged before training. The adapter modules hang under the module whose output they
read, as the model's structure names it (`...mlp.down_proj.bottleneck_adapter`; GPT-2: `...attn.c_proj`;
a mixture of experts: the whole sparse block `...mlp`), and act through a forward hook, so base weight
names and values stay untouched. Saved as safetensors + a small JSON config (with those module names);
`load_adapter` puts them back. Not mergeable: the non-linearity means no weight matrix equals base + adapter.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.core.registry import Param
from engine.core.structure import ATTENTION, MLP, Structure
from engine.methods.base import METHODS, Method

CHILD = "bottleneck_adapter"
WEIGHTS, CONFIG = "bottleneck_adapter.safetensors", "bottleneck_adapter.json"
PLACES = {"houlsby": (ATTENTION, MLP), "pfeiffer": (MLP,)}
# where adapters saved before the places were read from the model sat (Llama names)
LEGACY_POINTS = {ATTENTION: "model.layers.{i}.self_attn.o_proj", MLP: "model.layers.{i}.mlp.down_proj"}

PARAMS = (
    Param("style", str, "houlsby", "Where adapters go: houlsby (after attention and after the feed-forward "
          "block) or pfeiffer (after the feed-forward block only; half the parameters).",
          choices=tuple(PLACES)),
    Param("reduction_factor", int, 16, "Hidden size / bottleneck width: 16 means a 576-wide model gets "
          "36-wide adapters. Lower is more capacity.", min=1),
    Param("non_linearity", str, "relu", "Activation inside the bottleneck.", choices=("relu", "gelu", "silu", "tanh")),
)


def bottleneck(hidden: int, params: dict) -> int:
    return max(1, hidden // params["reduction_factor"])


def _module_class():
    import torch

    class Bottleneck(torch.nn.Module):
        """x -> up(act(down(x))); up starts at zero so the adapter adds nothing before training."""

        def __init__(self, width: int, inner: int, activation: str):
            super().__init__()
            self.down = torch.nn.Linear(width, inner)
            self.up = torch.nn.Linear(inner, width)
            self.act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU,
                        "tanh": torch.nn.Tanh}[activation]()
            torch.nn.init.zeros_(self.up.weight)
            torch.nn.init.zeros_(self.up.bias)

        def forward(self, x):
            dtype = self.down.weight.dtype
            return self.up(self.act(self.down(x.to(dtype))))

    return Bottleneck


def _add_output(module, inputs, output):
    if isinstance(output, tuple):  # a block that also returns e.g. router logits: adapt the hidden states
        return (_add_output(module, inputs, output[0]),) + output[1:]
    return output + getattr(module, CHILD)(output).to(output.dtype)


def points(structure: Structure, params: dict) -> list[str]:
    """Full names of the modules whose outputs get an adapter, in every decoder layer."""
    return [structure.layer_name(i, structure.kind(i).adapter_points[place])
            for i in range(structure.layers) for place in PLACES[params["style"]]
            if place in structure.kind(i).adapter_points]


def attach(model, params: dict, names: list[str], hidden: int):
    """Freeze the model and add the adapters (trainable, fp32) with their forward hooks."""
    Bottleneck = _module_class()
    for param in model.parameters():
        param.requires_grad_(False)
    for name in names:
        module = model.get_submodule(name)
        device = next(module.parameters()).device
        module.add_module(CHILD, Bottleneck(hidden, bottleneck(hidden, params), params["non_linearity"]).to(device))
        module.register_forward_hook(_add_output)
    return model


def apply(model, params: dict, structure: Structure):
    names = points(structure, params)
    model = attach(model, params, names, structure.hidden)
    model.tuneloom_adapter_params = {**params, "points": names, "hidden_size": structure.hidden}
    return model


def adapter_state(model) -> dict:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if f".{CHILD}." in n}


def save_adapter(model, folder) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), str(folder / WEIGHTS))
    config = {"method": "adapter", **model.tuneloom_adapter_params, "base_model": getattr(model, "name_or_path", "")}
    (folder / CONFIG).write_text(json.dumps(config, indent=2))


def load_adapter(model, folder):
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text())
    params = {p.name: config[p.name] for p in PARAMS}
    hidden = config.get("hidden_size") or model.config.hidden_size
    names = config.get("points") or [LEGACY_POINTS[place].format(i=i) for i in range(model.config.num_hidden_layers)
                                     for place in PLACES[params["style"]]]
    model = attach(model, params, names, hidden)
    model.tuneloom_adapter_params = {**params, "points": names, "hidden_size": hidden}
    state = load_file(str(folder / WEIGHTS))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if f".{CHILD}." in k]
    if missing or unexpected:
        raise ValueError(f"{folder} does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model


def count_trainable(structure: Structure, params: dict) -> int:
    inner = bottleneck(structure.hidden, params)
    per_adapter = 2 * structure.hidden * inner + inner + structure.hidden
    return structure.layers * len(PLACES[params["style"]]) * per_adapter


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    if structure is None:
        return []
    words = {ATTENTION: "the attention block's output projection", MLP: "the feed-forward block's output"}
    missing = [place for place in PLACES[params["style"]]
               if any(place not in kind.adapter_points for kind in structure.kinds)]
    if missing:
        return [f"method.style: {params['style']} adapters go after {' and '.join(words[p] for p in missing)}, which "
                f"Tuneloom cannot find in this {structure.model_type} model's layers (linear layers: "
                f"{', '.join(structure.linear_names())})"]
    return []


METHODS.register("adapter", Method(
    key="adapter", title="Bottleneck adapters",
    summary="Small bottleneck MLPs inserted after attention and/or feed-forward blocks (Houlsby / Pfeiffer); "
            "the classic adapter, easy to swap per task. Served as an adapter, not merged.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, save_adapter=save_adapter,
    load_adapter=load_adapter, problems=problems,
    adapted=lambda structure, params: [f"{name}.{CHILD}" for name in points(structure, params)],
    not_mergeable_reason="a bottleneck adapter has a non-linearity inside, so it cannot be folded into the "
                         "base weights; it is served and exported as an adapter on the base model",
    train_defaults={"learning_rate": 0.002},
))
