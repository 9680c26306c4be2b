"""LoKr (LyCORIS): the update is a Kronecker product W1 ⊗ W2 of two small matrices (the larger one
optionally low-rank), so very few parameters span a full-rank update. peft does the work."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import lycoris, targets
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("r", int, 8, "Rank of the larger Kronecker factor (when it is decomposed).", min=1, max=1024),
    Param("alpha", float, 16.0, "Scale of the update (alpha / r).", min=0.0),
    Param("rank_dropout", float, 0.0, "Dropout on the rank dimension while training.", min=0.0, max=0.9),
    Param("module_dropout", float, 0.0, "Probability of skipping a whole adapted layer in a step.", min=0.0, max=0.9),
    Param("decompose_both", bool, False, "Also write the smaller factor as a low-rank product."),
    Param("decompose_factor", int, -1, "Size of the Kronecker split (-1: closest to the square root).", min=-1),
    Param("target_modules", str, "all-linear", targets.SPEC_HELP, check=targets.syntax_problems),
)


def apply(model, params: dict, structure: Structure):
    from peft import LoKrConfig, get_peft_model

    return get_peft_model(model, LoKrConfig(
        r=params["r"], alpha=params["alpha"], rank_dropout=params["rank_dropout"],
        module_dropout=params["module_dropout"], decompose_both=params["decompose_both"],
        decompose_factor=params["decompose_factor"], target_modules=lycoris.chosen(structure, params).module_names(),
    ))


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """Split `dimension` into m <= n with m * n == dimension, as LyCORIS (and peft) do."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    return (m, n) if m <= n else (n, m)


def layer_count(in_dim: int, out_dim: int, r: int, decompose_both: bool, factor: int) -> int:
    (out_l, out_k), (in_m, in_n) = factorization(out_dim, factor), factorization(in_dim, factor)
    if decompose_both and r < max(out_l, in_m) / 2:
        w1 = r * (out_l + in_m)
    else:
        w1 = out_l * in_m
    w2 = r * (out_k + in_n) if r < max(out_k, in_n) / 2 else out_k * in_n
    return w1 + w2


def count_trainable(structure: Structure, params: dict) -> int:
    return sum(layer_count(lin.inputs, lin.outputs, params["r"], params["decompose_both"], params["decompose_factor"])
               for _, lin in lycoris.chosen(structure, params).modules)


METHODS.register("lokr", Method(
    key="lokr", title="LoKr",
    summary="Kronecker-product update: a full-rank change from very few parameters; mergeable. "
            "Popular for diffusion models, useful for small adapters.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True, **lycoris.hooks("LoKr"),
    train_defaults={"learning_rate": 0.002},
))
