"""Freeze tuning: train only the top N decoder layers (optionally only some of their modules) and
chosen extra modules (final norm, embeddings, output head); everything else stays frozen.

Module names are the model's own (self_attn / attn / attention, mlp, q_proj, c_attn, ln_1, ...), plus
two group names that work on every model: `attention` and `mlp` (the feed-forward block, or its linear
layers where they sit in the layer itself, as in OPT). The extras `norm`, `embed_tokens` and `lm_head`
name the final norm(s), the input embedding and the output head, whatever the model calls them.
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import ATTENTION, MLP, LayerKind, Structure
from engine.methods import weights
from engine.methods.base import METHODS, Method

EXTRA = ("embed_tokens", "norm", "lm_head")


def _check_modules(spec: str) -> list[str]:
    return [] if str(spec).strip() == "all" or weights.names_list(spec) else ["empty: use all, or module names"]


def _check_extra(spec: str) -> list[str]:
    unknown = [n for n in weights.names_list(spec) if n not in EXTRA]
    return [f"unknown name(s) {', '.join(unknown)}; choose from {', '.join(EXTRA)}"] if unknown else []


PARAMS = (
    Param("layers", int, 2, "How many decoder layers, counted from the top, are trained.", min=0),
    Param("modules", str, "all", "Which parts of those layers train: all, attention, mlp, or the model's own "
          "module names (self_attn, q_proj,v_proj,input_layernorm; GPT-2: attn, c_attn, ln_1, ...).",
          check=_check_modules),
    Param("extra", str, "norm", "Modules outside the layers that also train: norm (the final norm), "
          "embed_tokens (the input embedding), lm_head (the output head; tied to the embeddings on many small "
          "models); empty for none.", check=_check_extra),
)


def _expand(part: str, kind: LayerKind) -> list[str]:
    """A part name -> module names inside one kind of layer (the groups attention / mlp per model)."""
    if part == ATTENTION:
        return [kind.attention]
    if part == MLP:
        return [kind.mlp] if kind.mlp else [lin.name for lin in kind.of(MLP)]
    return [part]


def _inside(module: str, wanted: str) -> bool:
    """`module` is `wanted` or lies inside it; a bare name matches at any depth (q_proj, mlp.c_proj)."""
    return f".{wanted}." in f".{module}."


def extra_params(structure: Structure, extra: set[str]) -> set[str]:
    chosen = set()
    if "norm" in extra:
        chosen |= weights.final_norm_params(structure)
    if "embed_tokens" in extra or ("lm_head" in extra and structure.tie_embeddings):
        chosen.add(structure.embedding)  # a tied head is the embedding matrix
    if "lm_head" in extra and not structure.tie_embeddings:
        chosen |= {n for n in structure.outside if n.startswith(structure.head + ".")}
    return chosen


def selector(structure: Structure, params: dict):
    top = weights.top_layers(structure.layers, params["layers"])
    parts = None if params["modules"].strip() == "all" else weights.names_list(params["modules"])
    outside = extra_params(structure, set(weights.names_list(params["extra"])))

    def keep(name: str) -> bool:
        where = weights.layer_of(name, structure)
        if where is None:
            return name in outside
        layer, inner = where
        if layer not in top:
            return False
        if parts is None:
            return True
        module = inner.rsplit(".", 1)[0]
        return any(_inside(module, wanted) for part in parts for wanted in _expand(part, structure.kind(layer)))
    return keep


def apply(model, params: dict, structure: Structure):
    weights.train_only(model, selector(structure, params))
    return model


def count_trainable(structure: Structure, params: dict) -> int:
    return weights.count(structure, selector(structure, params))


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    if structure is None:
        return []
    found = []
    parts = [] if params["modules"].strip() == "all" else weights.names_list(params["modules"])
    known = structure.layer_module_names()
    unknown = [p for p in parts if p not in (ATTENTION, MLP) and not any(_inside(m, p) for m in known)]
    if unknown:
        found.append(f"method.modules: {', '.join(unknown)}: no such module in this {structure.model_type} model's "
                     f"layers; choose all, attention, mlp or from {', '.join(known)}")
    elif count_trainable(structure, params) == 0:
        found.append("method.layers: these settings train nothing; raise method.layers or name extra modules")
    return found


def grad_layers(structure: Structure, params: dict) -> int:
    extra = set(weights.names_list(params["extra"]))
    if "embed_tokens" in extra or (structure.tie_embeddings and "lm_head" in extra):
        return structure.layers  # the embedding's gradient flows back through every layer
    return min(structure.layers, params["layers"])


def trained(structure: Structure, params: dict) -> list[str]:
    keep = selector(structure, params)
    return [name for name in structure.param_sizes() if keep(name)]


METHODS.register("freeze", Method(
    key="freeze", title="Freeze (top layers)",
    summary="Trains only the top N layers (and chosen modules); far less memory than full fine-tuning "
            "because the lower layers need no gradients. Good for adapting style or format.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, grad_layers=grad_layers,
    trains_base_weights=True, problems=problems, adapted=trained,
    train_defaults={"learning_rate": 0.0003},
))
