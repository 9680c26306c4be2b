"""Layer-wise gradual unfreezing (ULMFiT-style): training starts with the top layers and the final
norm; every K steps (or each epoch) the next layers down are unfrozen, until `max_layers` train.

The optimizer holds every layer that will ever train from the start (a parameter without a
gradient is skipped by it), and a TrainerCallback flips requires_grad on the schedule and writes
each unfreezing to the run's log.
"""
from __future__ import annotations

from engine.core.arch import Arch
from engine.core.registry import Param
from engine.core.runlog import log
from engine.methods import weights
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("schedule", str, "steps", "When the next layers unfreeze: every `every` optimizer steps, or at each epoch.",
          choices=("steps", "epoch")),
    Param("every", int, 10, "Optimizer steps between two unfreezings (schedule: steps).", min=1),
    Param("layers_per_stage", int, 1, "Layers unfrozen at the start and at each stage.", min=1),
    Param("max_layers", int, 0, "Stop once this many top layers train (0: all layers).", min=0),
)


def final_layers(arch_layers: int, params: dict) -> int:
    return arch_layers if params["max_layers"] <= 0 else min(arch_layers, params["max_layers"])


def selector(arch_layers: int, n: int):
    top = weights.top_layers(arch_layers, n)

    def keep(name: str) -> bool:
        layer = weights.layer_of(name)
        return layer in top if layer is not None else name == "model.norm.weight"
    return keep


def unfreeze(model, arch_layers: int, n: int) -> None:
    """Train the top `n` layers (and the final norm)."""
    weights.train_only(model, selector(arch_layers, n))


def _layers(model) -> int:
    return model.config.num_hidden_layers


def apply(model, params: dict, arch: Arch):
    unfreeze(model, arch.layers, min(params["layers_per_stage"], final_layers(arch.layers, params)))
    return model


def count_trainable(arch: Arch, params: dict) -> int:
    """Parameters trained by the end of the schedule (all of them sit in the optimizer)."""
    return weights.count(arch, selector(arch.layers, final_layers(arch.layers, params)))


def optimizer(model, params: dict, args):
    keep = selector(_layers(model), final_layers(_layers(model), params))
    named = [(n, p) for n, p in model.named_parameters() if keep(n)]
    return weights.build_optimizer(model, args, weights.decay_groups(named, args.weight_decay))


def callbacks(model, params: dict) -> list:
    from transformers import TrainerCallback

    total = _layers(model)
    last = final_layers(total, params)
    per_stage = params["layers_per_stage"]

    class GradualUnfreezing(TrainerCallback):
        def __init__(self):
            self.training = min(per_stage, last)

        def _to_stage(self, stage: int, when: str) -> None:
            wanted = min(last, per_stage * (stage + 1))
            if wanted <= self.training:
                return
            unfreeze(model, total, wanted)
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
    grad_layers=lambda arch, params: final_layers(arch.layers, params), trains_base_weights=True,
    train_defaults={"learning_rate": 0.0003},
))
