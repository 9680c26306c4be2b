"""AdaLoRA (Zhang et al., 2023): LoRA in SVD form (P·Λ·Q) whose rank budget is re-allocated during
training: start every layer at `init_r`, prune the least important singular values down to an
average of `target_r` between step `tinit` and `total - tfinal`, every `deltaT` steps.

peft needs the run's total number of steps (known only when the Trainer starts) and a call to
`update_and_allocate` after every optimizer step, before the gradients are cleared: both happen
in a TrainerCallback.
"""
from __future__ import annotations

from engine.core.arch import Arch
from engine.core.registry import Param
from engine.methods import lora, targets
from engine.methods.base import METHODS, Method

PARAMS = (
    Param("target_r", int, 8, "Average rank kept at the end (the budget).", min=1, max=1024),
    Param("init_r", int, 12, "Rank every adapted layer starts with (above target_r).", min=1, max=1024),
    Param("alpha", float, 16.0, "Scale of the update.", min=0.0),
    Param("dropout", float, 0.05, "Dropout on the adapter's input.", min=0.0, max=0.9),
    Param("target_modules", str, "all-linear", lora.PARAMS[3].help, check=targets.problems),
    Param("tinit", int, 0, "Warm-up steps before any rank is pruned.", min=0),
    Param("tfinal", int, 0, "Final steps with the ranks fixed (fine-tuning the kept ones).", min=0),
    Param("deltaT", int, 1, "Steps between two budget re-allocations.", min=1),
    Param("orth_reg_weight", float, 0.5, "Weight of the orthogonality regulariser on P and Q.", min=0.0),
)


def adalora_config(params: dict, total_step: int):
    from peft import AdaLoraConfig

    return AdaLoraConfig(
        task_type="CAUSAL_LM", target_r=params["target_r"], init_r=params["init_r"], lora_alpha=params["alpha"],
        lora_dropout=params["dropout"], target_modules=targets.for_peft(params["target_modules"]),
        tinit=params["tinit"], tfinal=params["tfinal"], deltaT=params["deltaT"],
        orth_reg_weight=params["orth_reg_weight"], total_step=total_step,
    )


def apply(model, params: dict, arch: Arch):
    from peft import get_peft_model

    # a placeholder total; the callback sets the real one when training starts
    return get_peft_model(model, adalora_config(params, params["tinit"] + params["tfinal"] + 1))


def callbacks(model, params: dict) -> list:
    from transformers import TrainerCallback

    class RankAllocation(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            config = model.peft_config[model.active_adapter]
            if state.max_steps <= params["tinit"] + params["tfinal"]:
                raise ValueError(f"AdaLoRA: tinit ({params['tinit']}) + tfinal ({params['tfinal']}) must be below "
                                 f"the number of training steps ({state.max_steps}); lower them or train longer")
            config.total_step = state.max_steps
            model.base_model.rankallocator.peft_config.total_step = state.max_steps

        def on_optimizer_step(self, args, state, control, **kwargs):
            # after optimizer.step(), before zero_grad(): the importance scores need the gradients
            model.base_model.update_and_allocate(state.global_step)

    return [RankAllocation()]


def count_trainable(arch: Arch, params: dict) -> int:
    r = params["init_r"]
    return sum(r * (sum(targets.shape(n, arch)) + 1) for n in targets.matched(params["target_modules"], arch))


def count_added_frozen(arch: Arch, params: dict) -> int:
    """peft keeps one frozen `ranknum` scalar per adapted module."""
    return len(targets.matched(params["target_modules"], arch))


METHODS.register("adalora", Method(
    key="adalora", title="AdaLoRA",
    summary="LoRA that moves its rank budget to the layers that matter most during training; "
            "for a tight parameter budget. Needs a known number of steps.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True, callbacks=callbacks,
    count_added_frozen=count_added_frozen,
    train_defaults={"learning_rate": 0.001},
))
