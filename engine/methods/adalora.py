"""AdaLoRA (Zhang et al., 2023): LoRA in SVD form (P·Λ·Q) whose rank budget is re-allocated during
training: start every layer at `init_r`, prune the least important singular values down to an
average of `target_r` between step `tinit` and `total - tfinal`, every `deltaT` steps.

peft needs the run's total number of steps (known only when the Trainer starts) and a call to
`update_and_allocate` after every optimizer step, before the gradients are cleared: both happen
in a TrainerCallback.
"""
from __future__ import annotations

from contextlib import contextmanager

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import targets
from engine.methods.base import METHODS, Method

NO_EXPERTS = "peft's AdaLoRA cannot adapt fused expert tensors (only LoRA can, through target_parameters)"

PARAMS = (
    Param("target_r", int, 8, "Average rank kept at the end (the budget).", min=1, max=1024),
    Param("init_r", int, 12, "Rank every adapted layer starts with (above target_r).", min=1, max=1024),
    Param("alpha", float, 16.0, "Scale of the update.", min=0.0),
    Param("dropout", float, 0.05, "Dropout on the adapter's input.", min=0.0, max=0.9),
    Param("target_modules", str, "all-linear", targets.SPEC_HELP, check=targets.syntax_problems),
    Param("tinit", int, 0, "Warm-up steps before any rank is pruned.", min=0),
    Param("tfinal", int, 0, "Final steps with the ranks fixed (fine-tuning the kept ones).", min=0),
    Param("deltaT", int, 1, "Steps between two budget re-allocations.", min=1),
    Param("orth_reg_weight", float, 0.5, "Weight of the orthogonality regulariser on P and Q.", min=0.0),
)


def chosen(structure: Structure, params: dict) -> targets.Targets:
    return targets.resolve(params["target_modules"], structure, experts_ok=False)


def adalora_config(params: dict, total_step: int, structure: Structure):
    from peft import AdaLoraConfig

    modules = chosen(structure, params).modules
    return AdaLoraConfig(
        task_type="CAUSAL_LM", target_r=params["target_r"], init_r=params["init_r"], lora_alpha=params["alpha"],
        lora_dropout=params["dropout"], target_modules=[n for n, _ in modules],
        fan_in_fan_out=any(lin.conv1d for _, lin in modules),
        tinit=params["tinit"], tfinal=params["tfinal"], deltaT=params["deltaT"],
        orth_reg_weight=params["orth_reg_weight"], total_step=total_step,
    )


def apply(model, params: dict, structure: Structure):
    from peft import get_peft_model

    # a placeholder total; the callback sets the real one when training starts
    model = get_peft_model(model, adalora_config(params, params["tinit"] + params["tfinal"] + 1, structure))
    # peft (0.21) marks every per-adapter parameter trainable when it activates the adapter, `ranknum` too; that
    # scalar is the rank the scaling divides by, so an optimizer step on it would silently rescale the update
    for name, param in model.named_parameters():
        if ".ranknum." in name:
            param.requires_grad_(False)
    return model


def schedule_problems(params: dict, steps: int | None, exact: bool = True) -> list[str]:
    """peft needs a budgeting phase: tinit + tfinal below the run's number of optimizer steps."""
    if steps is None or params["tinit"] + params["tfinal"] < steps:
        return []
    counted = "this run has" if exact else "this run has at most"
    return [f"method.tinit: AdaLoRA needs tinit + tfinal ({params['tinit']} + {params['tfinal']}) below the number "
            f"of training steps, and {counted} {steps}; lower tinit/tfinal or train longer (train.max_steps)"]


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    found = []
    if params["target_r"] > params["init_r"]:
        found.append(f"method.target_r: {params['target_r']} is above init_r ({params['init_r']}); AdaLoRA prunes "
                     "from init_r down to target_r, so raise init_r or lower target_r")
    exact = train is None or train.max_steps > 0
    found += schedule_problems(params, steps, exact)
    if structure is not None:
        found += [f"method.target_modules: {p}" for p in targets.problems(params["target_modules"], structure,
                                                                          "AdaLoRA")]
    return found


def callbacks(model, params: dict, structure: Structure | None = None) -> list:
    from transformers import TrainerCallback

    class RankAllocation(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            config = model.peft_config[model.active_adapter]
            config.total_step = state.max_steps
            model.base_model.rankallocator.peft_config.total_step = state.max_steps

        def on_optimizer_step(self, args, state, control, **kwargs):
            # after optimizer.step(), before zero_grad(): the importance scores need the gradients
            model.base_model.update_and_allocate(state.global_step)

    return [RankAllocation()]


def count_trainable(structure: Structure, params: dict) -> int:
    r = params["init_r"]
    return sum(r * (lin.inputs + lin.outputs + 1) for _, lin in chosen(structure, params).modules)


def count_added_frozen(structure: Structure, params: dict) -> int:
    """peft keeps one frozen `ranknum` scalar per adapted module."""
    return len(chosen(structure, params).modules)


METHODS.register("adalora", Method(
    key="adalora", title="AdaLoRA",
    summary="LoRA that moves its rank budget to the layers that matter most during training; "
            "for a tight parameter budget. Needs a known number of steps.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, mergeable=True, callbacks=callbacks,
    count_added_frozen=count_added_frozen, problems=problems, needs_steps=True, single_adapter=True,
    logged_loss_is_token_loss=False,  # peft adds its orthogonality regulariser to the training loss
    adapted=lambda structure, params: chosen(structure, params).module_names(),
    notes=lambda structure, params: targets.skipped_note(chosen(structure, params), structure, NO_EXPERTS),
    # its singular values start at zero and move about one learning rate a step: at 1e-3 the preset ended 0.8%
    # below the base on alpaca_en_demo after 60 steps, at 5e-3 6.7% below (bench/results/methods_real_cpu.md)
    train_defaults={"learning_rate": 0.005},
))


def regulariser_weight(model) -> tuple[object, float] | None:
    """(the AdaLoRA config, its orth_reg_weight) of a peft AdaLoRA model, or None for any other model."""
    config = getattr(model, "active_peft_config", None)
    if getattr(config, "peft_type", None) != "ADALORA":
        return None
    return config, config.orth_reg_weight


@contextmanager
def token_loss_only(model):
    """peft's AdaLoRA forward adds its orthogonality regulariser to the loss it returns, in evaluation too: an eval
    loss (and the base model's, measured with the adapter disabled) is then not the token loss that every other
    method reports. Within this block the regulariser weighs 0; training keeps it."""
    found = regulariser_weight(model)
    if found is None:
        yield
        return
    config, weight = found
    config.orth_reg_weight = 0.0
    try:
        yield
    finally:
        config.orth_reg_weight = weight
