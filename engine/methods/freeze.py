"""Freeze tuning: train only the top N decoder layers (optionally only some of their modules) and
chosen extra modules (final norm, embeddings, output head); everything else stays frozen."""
from __future__ import annotations

from engine.core.arch import ATTENTION, MLP, Arch
from engine.core.registry import Param
from engine.methods import weights
from engine.methods.base import METHODS, Method

LAYER_PARTS = ("self_attn", "mlp") + weights.LAYER_NORMS + ATTENTION + MLP
EXTRA = ("embed_tokens", "norm", "lm_head")


def _check(choices):
    def check(spec: str) -> list[str]:
        if spec.strip() in ("", "all") and "all" in choices:
            return []
        unknown = [n for n in weights.names_list(spec) if n not in choices]
        return [f"unknown name(s) {', '.join(unknown)}; choose from {', '.join(choices)}"] if unknown else []
    return check


PARAMS = (
    Param("layers", int, 2, "How many decoder layers, counted from the top, are trained.", min=0),
    Param("modules", str, "all", "Which parts of those layers train: all, or names such as self_attn,mlp "
          "or q_proj,v_proj,input_layernorm.", check=_check(("all",) + LAYER_PARTS)),
    Param("extra", str, "norm", "Modules outside the layers that also train: norm (final norm), "
          "embed_tokens, lm_head (tied to the embeddings on many small models); empty for none.",
          check=_check(("",) + EXTRA)),
)


def selector(layers_total: int, params: dict, tied: bool):
    top = weights.top_layers(layers_total, params["layers"])
    parts = None if params["modules"].strip() in ("", "all") else set(weights.names_list(params["modules"]))
    extra = set(weights.names_list(params["extra"]))
    if tied and "lm_head" in extra:
        extra.add("embed_tokens")  # a tied head is the embedding matrix

    def keep(name: str) -> bool:
        layer = weights.layer_of(name)
        if layer is not None:
            return layer in top and (parts is None or bool(parts & set(name.split("."))))
        return bool(extra & set(name.split(".")[:-1]))
    return keep


def apply(model, params: dict, arch: Arch):
    chosen = weights.train_only(model, selector(arch.layers, params, arch.tie_embeddings))
    if not chosen:
        raise ValueError("freeze: these settings train nothing; raise method.layers or name extra modules")
    return model


def count_trainable(arch: Arch, params: dict) -> int:
    return weights.count(arch, selector(arch.layers, params, arch.tie_embeddings))


def grad_layers(arch: Arch, params: dict) -> int:
    extra = set(weights.names_list(params["extra"]))
    if "embed_tokens" in extra or (arch.tie_embeddings and "lm_head" in extra):
        return arch.layers  # the embedding's gradient flows back through every layer
    return min(arch.layers, params["layers"])


METHODS.register("freeze", Method(
    key="freeze", title="Freeze (top layers)",
    summary="Trains only the top N layers (and chosen modules); far less memory than full fine-tuning "
            "because the lower layers need no gradients. Good for adapting style or format.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, grad_layers=grad_layers,
    trains_base_weights=True,
    train_defaults={"learning_rate": 0.0003},
))
