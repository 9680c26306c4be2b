"""BitFit (Ben Zaken et al., 2021): train only the bias terms; every weight matrix stays frozen."""
from __future__ import annotations

from engine.core.arch import ATTENTION, MLP, Arch
from engine.core.registry import Param
from engine.methods import weights
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("biases", str, "all", "Which bias terms train: all, attention (q/k/v/o), mlp, or norm (LayerNorm biases).",
          choices=("all", "attention", "mlp", "norm")),
)


def selector(which: str):
    def keep(name: str) -> bool:
        if not name.endswith(".bias"):
            return False
        module = name.split(".")[-2]
        kind = "attention" if module in ATTENTION else "mlp" if module in MLP else \
            "norm" if "norm" in module or "ln" in module else "other"
        return which == "all" or which == kind
    return keep


def unavailable(arch: Arch) -> str | None:
    if arch.attention_bias or arch.mlp_bias:
        return None
    return (f"BitFit trains bias terms only, and this {arch.model_type} model has none (its linear layers "
            "and RMSNorms have no biases). Choose a model with biases (e.g. Qwen2) or another method "
            "such as LoRA or IA3.")


def apply(model, params: dict, arch: Arch):
    reason = unavailable(arch) if arch is not None else None
    if reason:
        raise ValueError(reason)
    if not weights.train_only(model, selector(params["biases"])):
        raise ValueError(f"BitFit: this model has no {params['biases']} biases to train; choose biases: all")
    return model


def count_trainable(arch: Arch, params: dict) -> int:
    return weights.count(arch, selector(params["biases"]))


METHODS.register("bitfit", Method(
    key="bitfit", title="BitFit (biases only)",
    summary="Trains only the bias terms (well under 0.1% of the weights); a tiny, cheap update for models "
            "with biases (Qwen2, GPT-2, BERT-likes), not for Llama-style models, which have none.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, unavailable=unavailable,
    grad_layers=lambda arch, params: arch.layers, trains_base_weights=True,
    train_defaults={"learning_rate": 0.001},
))
