"""LoRA (Hu et al., 2021): low-rank updates B·A added to chosen linear layers; peft does the work.

Options: rsLoRA scaling, DoRA (magnitude/direction), PiSSA/OLoRA initialisation (converted to a
plain LoRA on save, so the adapter applies to the original base model), trainable biases, whole
modules trained beside the adapter (modules_to_save), and LoRA+ (a higher learning rate for B).
QLoRA and LoRA-8bit (engine/methods/qlora.py, lora8bit.py) reuse everything here.
"""
from __future__ import annotations

from engine.core.arch import Arch
from engine.core.registry import Param
from engine.methods import targets, weights
from engine.methods.base import METHODS, Method

SAVABLE = ("embed_tokens", "lm_head")
INITS = ("default", "gaussian", "pissa", "olora")


def _check_savable(spec: str) -> list[str]:
    unknown = [n for n in weights.names_list(spec) if n not in SAVABLE]
    return [f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(SAVABLE)} or leave empty"] if unknown else []


def lora_params(inits: tuple[str, ...] = INITS) -> tuple[Param, ...]:
    return (
        Param("r", int, 16, "Rank of the update: capacity of the adapter. 8-16 suits most tasks.", min=1, max=1024),
        Param("alpha", float, 32.0, "Scale of the update (alpha / r). Twice the rank is a common choice.", min=0.0),
        Param("dropout", float, 0.0, "Dropout on the adapter's input; 0.05-0.1 regularises small datasets.",
              min=0.0, max=0.9),
        Param("target_modules", str, "all-linear",
              "Layers that get an adapter: all-linear, attention, mlp, names like q_proj,v_proj, or re:<regex>.",
              check=targets.problems),
        Param("bias", str, "none", "Also train biases: none, all (every bias in the model) or lora_only "
              "(biases of the adapted layers). Llama-style models have no biases.", choices=("none", "all", "lora_only")),
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


def lora_config(params: dict):
    from peft import LoraConfig

    init = params.get("init", "default")
    return LoraConfig(
        task_type="CAUSAL_LM", r=params["r"], lora_alpha=params["alpha"],
        lora_dropout=params["dropout"], target_modules=targets.for_peft(params["target_modules"]),
        bias=params.get("bias", "none"), modules_to_save=weights.names_list(params.get("modules_to_save", "")) or None,
        use_rslora=params.get("use_rslora", False), use_dora=params.get("use_dora", False),
        init_lora_weights=True if init == "default" else init,
    )


def apply(model, params: dict, arch: Arch):
    from peft import get_peft_model

    model = get_peft_model(model, lora_config(params))
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


def optimizer(model, params: dict, args):
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


def count_trainable(arch: Arch, params: dict) -> int:
    r = params["r"]
    adapted = targets.matched(params["target_modules"], arch)
    total = 0
    for name in adapted:
        i, o = targets.shape(name, arch)
        total += r * (i + o) + (o if params.get("use_dora") else 0)
    bias = params.get("bias", "none")
    if bias != "none":
        biased = targets.full_names(arch) if bias == "all" else adapted
        total += sum(targets.shape(n, arch)[1] for n in biased if arch.has_bias(n.rsplit(".", 1)[1]))
    total += arch.vocab * arch.hidden * len(set(weights.names_list(params.get("modules_to_save", ""))))
    return total


def family(key: str, title: str, summary: str, params=PARAMS, **extra) -> Method:
    """A Method of the LoRA family (LoRA, QLoRA, LoRA on an 8-bit base) sharing this module's pieces."""
    return Method(key=key, title=title, summary=summary, params=params, apply=extra.pop("apply", apply),
                  count_trainable=count_trainable, mergeable=True, optimizer=optimizer,
                  save_adapter=save_adapter, train_defaults={"learning_rate": 1e-3}, **extra)


METHODS.register("lora", family(
    "lora", "LoRA",
    "Trains small low-rank matrices beside the frozen weights; the default for most tasks.",
))
