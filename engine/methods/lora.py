"""LoRA (Hu et al., 2021): low-rank updates B·A added to chosen linear layers; peft does the work."""
from __future__ import annotations

from engine.arch import Arch
from engine.methods import targets
from engine.methods.base import METHODS, Method
from engine.registry import Param

PARAMS = (
    Param("r", int, 8, "Rank of the update: capacity of the adapter. 8-16 suits most tasks.", min=1, max=1024),
    Param("alpha", float, 16.0, "Scale of the update (alpha / r). Twice the rank is a common choice.", min=0.0),
    Param("dropout", float, 0.05, "Dropout on the adapter's input; regularises small datasets.", min=0.0, max=0.9),
    Param("target_modules", str, "all-linear",
          "Layers that get an adapter: all-linear, attention, mlp, names like q_proj,v_proj, or re:<regex>.",
          check=targets.problems),
)


def lora_config(params: dict):
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM", r=params["r"], lora_alpha=params["alpha"],
        lora_dropout=params["dropout"], target_modules=targets.for_peft(params["target_modules"]),
    )


def apply(model, params: dict, arch: Arch):
    from peft import get_peft_model

    return get_peft_model(model, lora_config(params))


def count_trainable(arch: Arch, params: dict) -> int:
    r = params["r"]
    return sum(r * sum(targets.shape(n, arch)) for n in targets.matched(params["target_modules"], arch))


METHODS.register("lora", Method(
    key="lora", title="LoRA",
    summary="Trains small low-rank matrices beside the frozen weights; the default for most tasks.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True,
))
