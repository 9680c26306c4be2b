"""Layer-wise gradual unfreezing (ULMFiT-style): training starts with the top layers and the final
norm; every K steps (or each epoch) the next layers down are unfrozen, until `max_layers` train.

The optimizer holds every layer that will ever train from the start (a parameter without a
gradient is skipped by it), and a TrainerCallback flips requires_grad on the schedule and writes
each unfreezing to the run's log.
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.runlog import log
from engine.core.structure import Structure
from engine.methods import weights
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("schedule", str, "steps", "When the next layers unfreeze: every `every` optimizer steps, or at each epoch.",
          choices=("steps", "epoch")),
    Param("every", int, 10, "Optimizer steps between two unfreezings (schedule: steps).", min=1),
    Param("layers_per_stage", int, 1, "Layers unfrozen at the start and at each stage.", min=1),
    Param("max_layers", int, 0, "Stop once this many top layers train (0: all layers).", min=0),
)


def final_layers(total: int, params: dict) -> int:
    return total if params["max_layers"] <= 0 else min(total, params["max_layers"])


def selector(structure: Structure, n: int):
    top = weights.top_layers(structure.layers, n)
    final_norm = weights.final_norm_params(structure)

    def keep(name: str) -> bool:
        where = weights.layer_of(name, structure)
        return where[0] in top if where is not None else name in final_norm
    return keep


def unfreeze(model, structure: Structure, n: int) -> None:
    """Train the top `n` layers (and the final norm)."""
    weights.train_only(model, selector(structure, n))


def apply(model, params: dict, structure: Structure):
    unfreeze(model, structure, min(params["layers_per_stage"], final_layers(structure.layers, params)))
    return model


def count_trainable(structure: Structure, params: dict) -> int:
    """Parameters trained by the end of the schedule (all of them sit in the optimizer)."""
    return weights.count(structure, selector(structure, final_layers(structure.layers, params)))


def trained(structure: Structure, params: dict) -> list[str]:
    keep = selector(structure, final_layers(structure.layers, params))
    return [name for name in structure.param_sizes() if keep(name)]


def optimizer(model, params: dict, args, structure: Structure):
    keep = selector(structure, final_layers(structure.layers, params))
    named = [(n, p) for n, p in model.named_parameters() if keep(n)]
    return weights.build_optimizer(model, args, weights.decay_groups(named, args.weight_decay))


def callbacks(model, params: dict, structure: Structure) -> list:
    from transformers import TrainerCallback

    total = structure.layers
    last = final_layers(total, params)
    per_stage = params["layers_per_stage"]

    class GradualUnfreezing(TrainerCallback):
        def __init__(self):
            self.training = min(per_stage, last)

        def _to_stage(self, stage: int, when: str) -> None:
            wanted = min(last, per_stage * (stage + 1))
            if wanted <= self.training:
                return
            unfreeze(model, structure, wanted)
            log(f"layerwise: {when}: unfroze layers {total - wanted}-{total - self.training - 1}; "
                f"now training the top {wanted} of {total} layers")
            self.training = wanted

        def on_step_begin(self, args, state, control, **kwargs):
            if params["schedule"] == "steps":
                self._to_stage(state.global_step // params["every"], f"step {state.global_step}")

        def on_epoch_begin(self, args, state, control, **kwargs):
            if params["schedule"] == "epoch":
                epoch = int(round(state.epoch or 0))
                self._to_stage(epoch, f"epoch {epoch + 1}")

    return [GradualUnfreezing()]


METHODS.register("layerwise", Method(
    key="layerwise", title="Layer-wise unfreezing",
    summary="Trains the top layer first and unfreezes one more layer down every K steps or epoch; "
            "gentler on what the model already knows than full fine-tuning (small data, catastrophic forgetting).",
    params=PARAMS, apply=apply, count_trainable=count_trainable, optimizer=optimizer, callbacks=callbacks,
    grad_layers=lambda structure, params: final_layers(structure.layers, params), trains_base_weights=True,
    adapted=trained,
    train_defaults={"learning_rate": 0.0003},
))
