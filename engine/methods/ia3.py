"""IA3 (Liu et al., 2022): learned vectors that rescale the outputs of chosen layers (the inputs of
feed-forward ones); the fewest trainable parameters of the adapter methods, mergeable."""
from __future__ import annotations

from engine.core.arch import Arch
from engine.core.registry import Param
from engine.methods import targets
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("target_modules", str, "k_proj,v_proj,down_proj", "Layers whose activations are rescaled "
          "(all-linear, attention, mlp, names, or re:<regex>).", check=targets.problems),
    Param("feedforward_modules", str, "down_proj", "Which of those are feed-forward layers (their input is "
          "rescaled instead of their output); must be among target_modules.", check=targets.problems),
)


def _feedforward(arch: Arch, params: dict) -> list[str]:
    return [n for n in targets.matched(params["feedforward_modules"], arch)
            if n in set(targets.matched(params["target_modules"], arch))]


def apply(model, params: dict, arch: Arch):
    from peft import IA3Config, get_peft_model

    feedforward = _feedforward(arch, params)
    return get_peft_model(model, IA3Config(
        task_type="CAUSAL_LM", target_modules=targets.matched(params["target_modules"], arch),
        feedforward_modules=feedforward,
    ))


def count_trainable(arch: Arch, params: dict) -> int:
    feedforward = set(_feedforward(arch, params))
    return sum(targets.shape(n, arch)[0 if n in feedforward else 1] for n in targets.matched(params["target_modules"], arch))


METHODS.register("ia3", Method(
    key="ia3", title="IA3",
    summary="Learns one scaling vector per adapted layer (a few thousand parameters per layer); the "
            "smallest adapter, mergeable; for light-touch adaptation and many adapters per base.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True,
    train_defaults={"learning_rate": 0.01},
))
