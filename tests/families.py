"""Tiny random models of the transformers families a user may bring (2 layers, hidden 64, the default
model's tokenizer), built once from their configs and saved as safetensors under .cache/families/.

Used by tests/test_families.py (the family x method matrix) and bench/families_matrix.py (its report).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
FAMILY_DIR = ROOT / ".cache" / "families"

# the default model's tokenizer: 49,152 tokens, <|endoftext|> (0), <|im_start|> (1), <|im_end|> (2)
TOKENS = dict(vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2)
LLAMA_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2)
# family -> (transformers config class, its size settings)
FAMILIES: dict[str, tuple[str, dict]] = {
    "llama": ("LlamaConfig", {**LLAMA_SHAPE, "head_dim": 16}),
    "qwen2": ("Qwen2Config", LLAMA_SHAPE),
    "mistral": ("MistralConfig", {**LLAMA_SHAPE, "head_dim": 16}),
    "gemma2": ("Gemma2Config", {**LLAMA_SHAPE, "head_dim": 16}),
    "phi3": ("Phi3Config", LLAMA_SHAPE),
    "phi": ("PhiConfig", {**LLAMA_SHAPE, "num_key_value_heads": 4}),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_inner=128, n_layer=2, n_head=4)),
    "gpt_neox": ("GPTNeoXConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4)),
    "opt": ("OPTConfig", dict(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                              word_embed_proj_dim=64)),
    "mixtral": ("MixtralConfig", {**LLAMA_SHAPE, "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2_moe": ("Qwen2MoeConfig", {**LLAMA_SHAPE, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64,
                                     "num_experts": 4, "num_experts_per_tok": 2}),
}


def build_once(out: Path, build) -> Path:
    """A cached model folder under .cache/, built once by `build(folder)`, also when the parallel test workers
    (make test: pytest -n 2) ask for it at the same time: each builds into a folder of its own and the first
    rename wins (a folder is never seen half-written)."""
    if (out / "config.json").is_file():
        return out
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    build(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another worker's build won
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "config.json").is_file():
            raise
    return out


def family_config(name: str):
    import transformers

    cls, sizes = FAMILIES[name]
    return getattr(transformers, cls)(**TOKENS, **sizes)


def build_family(name: str, tokenizer_source: str | Path, seed: int = 0) -> Path:
    """The tiny `name` model (random weights, float32) with the tokenizer of `tokenizer_source`; built once."""
    out = FAMILY_DIR / name
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(name), dtype=torch.float32)

    def build(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        AutoTokenizer.from_pretrained(str(tokenizer_source)).save_pretrained(folder)
    return build_once(out, build)


def build_all(tokenizer_source: str | Path) -> dict[str, Path]:
    return {name: build_family(name, tokenizer_source) for name in FAMILIES}


# ---- the family x method matrix ------------------------------------------------------------------------
# Per cell: the method's preset (presets/<key>.yaml) on the family's tiny model, two optimizer steps. These
# overrides only make two steps exercise a method's schedule (AdaLoRA's budget phase, layer-wise unfreezing);
# the presets themselves are run as they are by tests/test_presets_short.py.
SCHEDULE = {"adalora": {"tinit": 0, "tfinal": 1, "deltaT": 1}, "layerwise": {"every": 1, "max_layers": 0}}
STEPS = 2
ALL_LINEAR_METHODS = ("lora", "qlora", "lora8bit", "loha", "lokr", "adalora")


def preset_config(model: str, key: str, presets: Path = ROOT / "presets"):
    import yaml

    from engine.core.config import RunConfig

    raw = yaml.safe_load((presets / f"{key}.yaml").read_text())
    raw["model"] = model
    raw["method"].update(SCHEDULE.get(key, {}))
    raw["train"].update(max_steps=STEPS, eval_steps=0, save_steps=0, max_seq_len=64)
    return RunConfig.from_dict(raw)


def one_batch(model: str):
    from transformers import DataCollatorForSeq2Seq

    from engine.core.config import DataConfig
    from engine.core.models import load_tokenizer
    from engine.data.dataset import prepare_dataset

    tokenizer = load_tokenizer(model)
    data = prepare_dataset(DataConfig(train=str(ROOT / "presets" / "data" / "identity.jsonl")), tokenizer, 64)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    return collate([{"input_ids": e.input_ids, "labels": e.labels} for e in data.train[:2]])


def peft_all_linear(model) -> set[str]:
    """The modules peft's own `all-linear` selects on this (unadapted) model: the reference."""
    from peft import LoraConfig
    from peft.tuners.tuners_utils import _maybe_include_all_linear_layers

    return set(_maybe_include_all_linear_layers(LoraConfig(target_modules="all-linear"), model).target_modules)


def drive(model, optimizer, callbacks, args, batch, steps: int, evaluate_between: bool = False) -> list[float]:
    """Optimizer steps on one repeated batch, the method's callbacks driven as the Trainer drives them (train
    begin, step begin, optimizer step); with `evaluate_between`, an eval-mode forward without gradients after
    every step, as the Trainer's evaluations do. Returns the losses; leaves the model in eval mode."""
    import torch

    state = SimpleNamespace(global_step=0, max_steps=steps, epoch=0.0)
    for callback in callbacks:
        callback.on_train_begin(args, state, None)
    losses = []
    for step in range(steps):
        state.global_step = step
        for callback in callbacks:
            callback.on_step_begin(args, state, None)
        model.train()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        for callback in callbacks:
            callback.on_optimizer_step(args, state, None)
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        model.eval()
        if evaluate_between:
            with torch.no_grad():
                model(**batch)
    return losses


def run_cell(model: str, key: str) -> dict:
    """One method on one model, as the trainer does it: the pre-run checks (refused: the reason), the
    estimate's count, load + apply, the packed-attention check (an eval-mode forward), a step, an evaluation
    (another eval-mode forward), a second step. Returns what happened and what was counted and changed."""
    import warnings

    import torch
    from transformers import TrainingArguments

    from engine.core.describe import structure_of
    from engine.core.models import load_model
    from engine.estimate import estimate
    from engine.methods import METHODS, targets
    from engine.training import packing
    from engine.training.preflight import method_problems

    cfg = preset_config(model, key)
    method, params = METHODS.get(key), cfg.method.params
    problems = method_problems(cfg)
    if problems:
        return {"state": "refused", "why": problems[0]}
    structure = structure_of(model)
    cell = {"estimate": estimate(structure, cfg, device="cpu").trainable_params}
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_obj = load_model(model, method.quantize(params), "fp32", quant_options=method.quantize_options(params))
        if key in ALL_LINEAR_METHODS and params["target_modules"] == "all-linear":
            reference = peft_all_linear(model_obj)
            ours = set(targets.resolve("all-linear", structure, experts_ok=False).module_names())
            cell["all_linear_as_peft"] = ours == reference
        model_obj = method.apply(model_obj, params, structure)
        args = TrainingArguments(output_dir="/tmp/tuneloom-families", learning_rate=1e-2, use_cpu=True,
                                 report_to="none", optim="adamw_torch", weight_decay=0.0)
        optimizer = method.optimizer(model_obj, params, args, structure) if method.optimizer else None
        optimizer = optimizer or torch.optim.AdamW([p for p in model_obj.parameters() if p.requires_grad], lr=1e-2)
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        named = dict(model_obj.named_parameters())
        cell["trainable"] = sum(p.numel() for p in named.values() if id(p) in in_optimizer)
        callbacks = method.callbacks(model_obj, params, structure) if method.callbacks else []
        if method.virtual_tokens(params) == 0:
            packing.enable(model_obj, cfg.train.max_seq_len)  # the trainer's packed-attention check
        before = {n: p.detach().clone() for n, p in named.items()}
        losses = drive(model_obj, optimizer, callbacks, args, one_batch(model), STEPS, evaluate_between=True)
    cell["losses"] = losses
    changed = {n for n, p in named.items() if not torch.equal(before[n], p.detach())}
    cell["changed"] = sum(named[n].numel() for n in changed)
    cell["changed_outside_optimizer"] = sorted(n for n in changed if id(named[n]) not in in_optimizer)
    cell["unchanged_in_optimizer"] = sorted(n for n, p in named.items() if id(p) in in_optimizer and n not in changed)
    cell["autograd_warning"] = any("autograd kernel was not registered" in str(w.message) for w in caught)
    cell["adapted"] = len(method.adapted(structure, params))
    cell["notes"] = method.notes(structure, params)
    cell["state"] = "trained"
    return cell


def verdict(cell: dict) -> str:
    """'ok', or what is wrong with a trained cell; refusals keep their reason."""
    if cell["state"] != "trained":
        return f"{cell['state']}: {cell['why']}"
    wrong = []
    if cell["estimate"] != cell["trainable"]:
        wrong.append(f"estimate {cell['estimate']:,} vs trainable {cell['trainable']:,}")
    if cell["changed_outside_optimizer"] or cell["unchanged_in_optimizer"]:
        wrong.append(f"changed but frozen {cell['changed_outside_optimizer'][:2]}, "
                     f"trainable but unchanged {cell['unchanged_in_optimizer'][:2]}")
    if cell.get("all_linear_as_peft") is False:
        wrong.append("all-linear differs from peft's")
    if cell["autograd_warning"]:
        wrong.append("autograd-kernel warning")
    if not all(x == x for x in cell["losses"]):
        wrong.append(f"loss {cell['losses']}")
    return "ok" if not wrong else "WRONG: " + "; ".join(wrong)
