"""IA3 (Liu et al., 2022): learned vectors that rescale the outputs of chosen layers (the inputs of
feed-forward ones); the fewest trainable parameters of the adapter methods, mergeable.

By default (`auto`) it rescales what the paper does, on whatever the model calls it: the keys and values
(k_proj/v_proj, or the fused query_key_value / qkv_proj / c_attn) and the input of the feed-forward
block's output projection (down_proj, fc2, dense_4h_to_h, mlp.c_proj).
"""
from __future__ import annotations

import re

from engine.core.registry import Param
from engine.core.structure import ATTENTION, MLP, Linear, Structure
from engine.methods import targets
from engine.methods.base import METHODS, Method

AUTO = "auto"
KEY_VALUE = re.compile(r"(^|_)(k|v|key|value|wk|wv)(_proj)?$")
NO_EXPERTS = "peft's IA3 cannot scale fused expert tensors (only LoRA can adapt them, through target_parameters)"


def _check(spec: str) -> list[str]:
    return [] if str(spec).strip() == AUTO else targets.syntax_problems(spec)


PARAMS = (
    Param("target_modules", str, AUTO, "Layers whose activations are rescaled: auto (keys, values and the "
          "feed-forward output projection, as the paper), all-linear, attention, mlp, names, or re:<regex>.",
          check=_check),
    Param("feedforward_modules", str, AUTO, "Which of those are feed-forward layers (their input is rescaled "
          "instead of their output): auto (the feed-forward block's output projection), or names / re:<regex>; "
          "only those among target_modules count.", check=_check),
)


def _auto(structure: Structure, feedforward: bool) -> list[tuple[str, Linear]]:
    chosen = []
    for layer in range(structure.layers):
        kind = structure.kind(layer)
        picked = [lin for lin in kind.of(MLP, "out") if not lin.experts]
        if not feedforward:
            inputs = kind.of(ATTENTION, "in")
            keys_values = [lin for lin in inputs if KEY_VALUE.search(lin.short)]
            picked = (keys_values or inputs) + picked  # no k/v by name: a fused projection (or all inputs)
        chosen += [(structure.layer_name(layer, lin.name), lin) for lin in picked]
    return chosen


def _resolve(spec: str, structure: Structure, feedforward: bool = False) -> targets.Targets:
    if str(spec).strip() == AUTO:
        return targets.Targets(modules=_auto(structure, feedforward))
    return targets.resolve(spec, structure, experts_ok=False)


def chosen(structure: Structure, params: dict) -> tuple[list[tuple[str, Linear]], set[str]]:
    """(targets, the feed-forward ones among them)."""
    modules = _resolve(params["target_modules"], structure).modules
    names = {n for n, _ in modules}
    feedforward = {n for n, _ in _resolve(params["feedforward_modules"], structure, True).modules if n in names}
    return modules, feedforward


def apply(model, params: dict, structure: Structure):
    from peft import IA3Config, get_peft_model

    modules, feedforward = chosen(structure, params)
    return get_peft_model(model, IA3Config(
        task_type="CAUSAL_LM", target_modules=[n for n, _ in modules], feedforward_modules=sorted(feedforward),
        fan_in_fan_out=any(lin.conv1d for _, lin in modules),
    ))


def count_trainable(structure: Structure, params: dict) -> int:
    modules, feedforward = chosen(structure, params)
    return sum(lin.inputs if name in feedforward else lin.outputs for name, lin in modules)


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    if structure is None:
        return []
    found = []
    for key in ("target_modules", "feedforward_modules"):
        if str(params[key]).strip() != AUTO:
            found += [f"method.{key}: {p}" for p in targets.problems(params[key], structure, "IA3")]
    if not found and not chosen(structure, params)[0]:
        found.append(f"method.target_modules: no layer of this {structure.model_type} model to rescale; name them "
                     f"(its linear layers are {', '.join(structure.linear_names())})")
    return found


def notes(structure: Structure, params: dict) -> list[str]:
    spec = params["target_modules"]
    skipped = targets.resolve(spec, structure, experts_ok=False) if str(spec).strip() != AUTO else \
        targets.Targets(skipped=[(n, lin) for n, lin in structure.linears() if lin.experts])
    return targets.skipped_note(skipped, structure, NO_EXPERTS)


METHODS.register("ia3", Method(
    key="ia3", title="IA3",
    summary="Learns one scaling vector per adapted layer (a few thousand parameters per layer); the "
            "smallest adapter, mergeable; for light-touch adaptation and many adapters per base.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True, problems=problems,
    adapted=lambda structure, params: [n for n, _ in chosen(structure, params)[0]], notes=notes,
    train_defaults={"learning_rate": 0.01},
))
