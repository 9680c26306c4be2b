"""LoRA (Hu et al., 2021): low-rank updates B·A added to chosen linear layers; peft does the work.

Options: rsLoRA scaling, DoRA (magnitude/direction), PiSSA/OLoRA initialisation (converted to a
plain LoRA on save, so the adapter applies to the original base model), trainable biases, whole
modules trained beside the adapter (modules_to_save), and LoRA+ (a higher learning rate for B).
QLoRA and LoRA-8bit (engine/methods/qlora.py, lora8bit.py) reuse everything here.
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import targets, weights
from engine.methods.base import METHODS, Method

SAVABLE = ("embed_tokens", "lm_head")  # the input embedding and the output head, whatever the model calls them
INITS = ("default", "gaussian", "pissa", "olora")
EXPERTS_WHY = ("peft adapts fused expert tensors only with dropout 0, without DoRA, and with the default or "
               "gaussian init; set method.dropout to 0 to include them")


def _check_savable(spec: str) -> list[str]:
    unknown = [n for n in weights.names_list(spec) if n not in SAVABLE]
    if not unknown:
        return []
    return [f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(SAVABLE)} or leave empty"]


def lora_params(inits: tuple[str, ...] = INITS) -> tuple[Param, ...]:
    return (
        Param("r", int, 16, "Rank of the update: capacity of the adapter. 8-16 suits most tasks.", min=1, max=1024),
        Param("alpha", float, 32.0, "Scale of the update (alpha / r). Twice the rank is a common choice.", min=0.0),
        Param("dropout", float, 0.0, "Dropout on the adapter's input; 0.05-0.1 regularises small datasets.",
              min=0.0, max=0.9),
        Param("target_modules", str, "all-linear", targets.SPEC_HELP, check=targets.syntax_problems),
        Param("bias", str, "none", "Also train biases: none, all (every bias in the model) or lora_only "
              "(biases of the adapted layers). Llama-style models have no biases.",
              choices=("none", "all", "lora_only")),
        Param("modules_to_save", str, "", "Whole modules trained (and saved) beside the adapter: embed_tokens, "
              "lm_head (e.g. for new tokens). Costs vocabulary x hidden parameters each.", check=_check_savable),
        Param("use_rslora", bool, False, "rsLoRA: scale by alpha/sqrt(r) instead of alpha/r; steadier at high ranks."),
        Param("use_dora", bool, False, "DoRA: learn a magnitude per output and a LoRA direction; closer to full "
              "fine-tuning, slower per step."),
        Param("init", str, "default", "Initial adapter weights: default (B = 0), gaussian, pissa (principal singular "
              "vectors, faster convergence) or olora (QR-based).", choices=inits),
        Param("loraplus_lr_ratio", float, 0.0, "LoRA+: learning rate of B = ratio x that of A (16 is typical); "
              "0 turns it off.", min=0.0),
    )


PARAMS = lora_params()


def experts_ok(params: dict) -> bool:
    """peft's LoRA on fused expert tensors (ParamWrapper) refuses dropout, DoRA and weight-based inits."""
    return not params.get("dropout") and not params.get("use_dora") and params.get("init", "default") in (
        "default", "gaussian")


def lora_targets(structure: Structure, params: dict) -> targets.Targets:
    return targets.resolve(params["target_modules"], structure, experts_ok(params))


def saved_modules(structure: Structure, params: dict) -> list[str]:
    """modules_to_save as the model names them (embed_tokens -> GPT-2's transformer.wte, ...)."""
    real = {"embed_tokens": structure.embedding.rsplit(".", 1)[0], "lm_head": structure.head}
    return [real[n] for n in dict.fromkeys(weights.names_list(params.get("modules_to_save", "")))]


def lora_config(params: dict, structure: Structure):
    from peft import LoraConfig

    init = params.get("init", "default")
    chosen = lora_targets(structure, params)
    return LoraConfig(
        task_type="CAUSAL_LM", r=params["r"], lora_alpha=params["alpha"],
        lora_dropout=params["dropout"], target_modules=chosen.module_names(),
        target_parameters=chosen.parameter_names() or None,
        fan_in_fan_out=any(lin.conv1d for _, lin in chosen.modules),  # GPT-2's Conv1D stores weights transposed
        bias=params.get("bias", "none"), modules_to_save=saved_modules(structure, params) or None,
        use_rslora=params.get("use_rslora", False), use_dora=params.get("use_dora", False),
        init_lora_weights=True if init == "default" else init,
    )


def apply(model, params: dict, structure: Structure):
    from peft import get_peft_model

    model = get_peft_model(model, lora_config(params, structure))
    if params.get("init", "default") in ("pissa", "olora"):
        # PiSSA/OLoRA move part of each base weight into the adapter. Keep the initial adapter so the
        # saved result can be converted into a plain LoRA that applies to the unmodified base model.
        import tempfile

        folder = tempfile.mkdtemp(prefix="tuneloom-initial-adapter-")
        config = model.peft_config["default"]
        config.init_lora_weights = True
        model.save_pretrained(folder)
        config.init_lora_weights = params["init"]
        model.tuneloom_initial_adapter = folder
    return model


def save_adapter(model, folder) -> None:
    initial = getattr(model, "tuneloom_initial_adapter", None)
    if initial:  # PiSSA/OLoRA -> plain LoRA of rank 2r: delta = A·B - A0·B0
        model.save_pretrained(str(folder), safe_serialization=True, path_initial_model_for_weight_conversion=initial)
        _keep_saved_modules(model, folder)
    else:
        model.save_pretrained(str(folder), safe_serialization=True)


def _keep_saved_modules(model, folder) -> None:
    """peft 0.21's PiSSA/OLoRA conversion drops the modules_to_save weights; put them back."""
    import tempfile
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    path = Path(folder) / "adapter_model.safetensors"
    converted = load_file(str(path))
    with tempfile.TemporaryDirectory() as plain_dir:
        model.save_pretrained(plain_dir, safe_serialization=True)
        plain = load_file(str(Path(plain_dir) / "adapter_model.safetensors"))
    missing = {k: v for k, v in plain.items() if k not in converted and "lora_" not in k}
    if missing:
        save_file({**converted, **missing}, str(path), metadata={"format": "pt"})


def optimizer(model, params: dict, args, structure: Structure | None = None):
    """LoRA+: B matrices learn `loraplus_lr_ratio` times faster than A (peft's param groups)."""
    if not params.get("loraplus_lr_ratio"):
        return None
    from peft.optimizers import create_loraplus_optimizer
    from transformers import Trainer

    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    kwargs = dict(kwargs)
    lr = kwargs.pop("lr")
    return create_loraplus_optimizer(model, cls, lr=lr, loraplus_lr_ratio=params["loraplus_lr_ratio"],
                                     loraplus_weight_decay=args.weight_decay, **kwargs)


def count_trainable(structure: Structure, params: dict) -> int:
    r = params["r"]
    chosen = lora_targets(structure, params)
    total = sum(r * (lin.inputs + lin.outputs) + (lin.outputs if params.get("use_dora") else 0)
                for _, lin in chosen.modules)
    total += sum(r * lin.experts * (lin.inputs + lin.outputs) for _, lin in chosen.parameters)
    bias = params.get("bias", "none")
    if bias == "all":  # peft: every parameter with "bias" in its name
        total += sum(n for name, n in structure.param_sizes().items() if "bias" in name)
    elif bias == "lora_only":
        total += sum(lin.outputs for _, lin in chosen.modules if lin.bias)
    for module in saved_modules(structure, params):
        if module == structure.head and structure.tie_embeddings:
            total += structure.embedding_params  # peft trains a copy of the tied head
        else:
            total += sum(n for name, n in structure.outside.items() if name.startswith(module + "."))
    return total


def adapted(structure: Structure, params: dict) -> list[str]:
    chosen = lora_targets(structure, params)
    return chosen.module_names() + chosen.parameter_names() + saved_modules(structure, params)


def notes(structure: Structure, params: dict) -> list[str]:
    return targets.skipped_note(lora_targets(structure, params), structure, EXPERTS_WHY)


def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    if structure is None:
        return []
    found = [f"method.target_modules: {p}" for p in targets.problems(params["target_modules"], structure, "LoRA",
                                                                      experts_ok(params))]
    if found:
        return found
    if params.get("init") in ("pissa", "olora"):
        narrow = [name for name, lin in lora_targets(structure, params).modules
                  if params["r"] > min(lin.inputs, lin.outputs)]
        if narrow:
            found.append(f"method.r: {params['r']} is above the smaller side of {len(narrow)} adapted layer(s) "
                         f"(e.g. {narrow[0]}), which {params['init']} initialises from; lower r or use init: default")
    return found


def family(key: str, title: str, summary: str, params=PARAMS, **extra) -> Method:
    """A Method of the LoRA family (LoRA, QLoRA, LoRA on an 8-bit base) sharing this module's pieces."""
    return Method(key=key, title=title, summary=summary, params=params, apply=extra.pop("apply", apply),
                  count_trainable=count_trainable, mergeable=True, optimizer=optimizer,
                  save_adapter=save_adapter, adapted=adapted, notes=notes, problems=problems,
                  train_defaults={"learning_rate": 1e-3}, **extra)


METHODS.register("lora", family(
    "lora", "LoRA",
    "Trains small low-rank matrices beside the frozen weights; the default for most tasks.",
))
