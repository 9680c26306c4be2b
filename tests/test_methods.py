"""Every fine-tuning method in the registry, on the tiny model, with instruction and multi-turn data.

For each method and each data kind: a few steps on a repeated batch make the loss fall; exactly the
intended parameters change (everything else is bit-identical); the trainable count equals the pure
count from config.json and what peft (or a direct count) reports; the result saved through the
trainer's own path reloads with identical logits, and mergeable methods merge within 1e-4.
A few methods also run end to end through `engine.training.recipe.run` (the Trainer, optimizers, callbacks).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import module_workspace
from families import build_family, build_once, drive

from engine.core.config import RunConfig
from engine.core.describe import structure_of
from engine.core.optimizers import OPTIMIZERS
from engine.core.registry import check_params
from engine.methods import METHODS

ROOT = Path(__file__).resolve().parent.parent
DATA_KINDS = {"alpaca": "presets/data/identity.jsonl", "messages": "presets/data/chat_multiturn.jsonl"}
DEFAULT_MODEL_DIR = ROOT / ".cache" / "models" / "smollm2-135m-instruct"
STEPS = 5
# learning rates for the quick loop on a random tiny model (added parameters start small or at zero)
LR = {"full": 2e-3, "freeze": 2e-3, "layerwise": 2e-3, "prompt_tuning": 5e-2, "p_tuning": 1e-2,
      "prefix_tuning": 1e-2, "p_tuning_v2": 5e-2, "bitfit": 5e-2, "ia3": 5e-2}
# settings that make the short loop exercise a method's schedule; everything else is the default
TEST_PARAMS = {"layerwise": {"every": 2}, "adalora": {"tinit": 1, "tfinal": 1},
               "qlora": {"compute_dtype": "fp32"}, "prompt_tuning": {"init": "text"}}
LORA_VARIANTS = {
    "dora-rslora-bias-head": {"use_dora": True, "use_rslora": True, "bias": "all", "modules_to_save": "lm_head"},
    "pissa": {"init": "pissa", "target_modules": "attention"},
    "olora": {"init": "olora", "target_modules": "q_proj,v_proj", "modules_to_save": "embed_tokens"},
}


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory):
    with module_workspace(tmp_path_factory, "methods-home") as path:
        yield path


@pytest.fixture(scope="session")
def tiny_qwen(tiny_model) -> str:
    """A tiny Qwen2-style model (q/k/v biases) with the same tokenizer: BitFit needs biases."""
    out = ROOT / ".cache" / "tiny-qwen2-bias"
    if not (out / "config.json").is_file():
        import torch
        from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(tiny_model)
        config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)

        def build(folder: Path) -> None:
            model.save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
        build_once(out, build)
    return str(out)


@pytest.fixture(scope="module")
def batches(tiny_model):
    """One padded batch of 4 examples per data kind, encoded as the trainer does."""
    from transformers import DataCollatorForSeq2Seq

    from engine.core.config import DataConfig
    from engine.core.models import load_tokenizer
    from engine.data.dataset import prepare_dataset

    tokenizer = load_tokenizer(tiny_model)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    out = {}
    for kind, path in DATA_KINDS.items():
        data = prepare_dataset(DataConfig(train=str(ROOT / path)), tokenizer, 128)
        out[kind] = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in data.train[:4]])
    return out


# ---- shared helpers ----------------------------------------------------------------------------
def resolved(key: str, extra: dict | None = None) -> dict:
    params, problems = check_params(METHODS.get(key).params, {**TEST_PARAMS.get(key, {}), **(extra or {})}, "method")
    assert not problems, problems
    return params


def model_for(key: str, tiny_model: str, tiny_qwen: str) -> str:
    return tiny_qwen if key == "bitfit" else tiny_model


@functools.cache
def tokenizer_for(model_path: str):
    from engine.core.models import load_tokenizer

    return load_tokenizer(model_path)


@functools.lru_cache(maxsize=1)
def training_args(lr: float):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir="/tmp/tuneloom-methods-test", learning_rate=lr, weight_decay=0.0,
                             use_cpu=True, report_to="none", optim="adamw_torch")


def load_applied(key: str, params: dict, model_path: str):
    from engine.core.models import load_model

    method = METHODS.get(key)
    model = load_model(model_path, method.quantize(params), "fp32", quant_options=method.quantize_options(params))
    return method.apply(model, params, structure_of(model_path))


def reported_trainable(model) -> int:
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()[0]  # what peft reports (4-bit weights counted unpacked)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_loop(key: str, params: dict, model, batch, steps: int = STEPS, structure=None) -> list[float]:
    """A few optimizer steps on one repeated batch, with the method's own optimizer and callbacks
    driven as the Trainer drives them (train begin, step begin, optimizer step)."""
    import torch

    method = METHODS.get(key)
    args = training_args(LR.get(key, 1e-2))
    optimizer = method.optimizer(model, params, args, structure) if method.optimizer else None
    if optimizer is None:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=args.learning_rate, weight_decay=0.0)
    callbacks = method.callbacks(model, params, structure) if method.callbacks else []
    return drive(model, optimizer, callbacks, args, batch, steps)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def trainable_storage(model) -> set:
    """data_ptr of every trainable tensor (a tied lm_head shares its storage with the embedding)."""
    return {p.data_ptr() for p in model.parameters() if p.requires_grad}


def logits(model, batch):
    import torch

    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def write_run(run_dir: Path, key: str, params: dict, model_path: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig.from_dict({"model": model_path, "method": {"name": key, **params}})
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    return run_dir


def check_method(key, params, model_path, batch, tmp_path):
    """The whole per-method contract (see the module docstring) for one data batch."""
    import torch

    from engine.core.models import load_model
    from engine.inference.loading import load_result
    from engine.training.recipe import save_result

    method = METHODS.get(key)
    arch = structure_of(model_path)
    torch.manual_seed(0)
    model = load_applied(key, params, model_path)
    before = snapshot(model)

    losses = train_loop(key, params, model, batch, structure=arch)
    assert all(map(lambda x: x == x and abs(x) < 1e4, losses)), losses
    assert losses[-1] < losses[0], f"{key}: loss did not fall: {losses}"

    # the count (at the end of any unfreezing schedule): pure from config.json == peft / direct count
    assert reported_trainable(model) == method.count_trainable(arch, params)

    # exactly the trainable tensors changed; every other tensor is bit-identical
    trained = trainable_storage(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    expected = {k for k, v in after.items() if v.data_ptr() in trained}
    assert expected, f"{key}: nothing is trainable"
    assert changed == expected, (f"{key}: changed but frozen: {sorted(changed - expected)[:5]}; "
                                 f"trainable but unchanged: {sorted(expected - changed)[:5]}")

    # save through the trainer's path, reload through the chat/export path: same logits
    run_dir = write_run(tmp_path / "run", key, params, model_path)
    trained_logits = logits(model, batch)
    result = save_result(model, tokenizer_for(model_path), run_dir, method)
    assert result.name == ("model" if method.trains_base_weights else "adapter")
    if method.quantize(params):
        # served on the same quantised base it was trained on: identical; merged into the float base: close
        from peft import PeftModel

        base = load_model(model_path, method.quantize(params), "fp32", quant_options=method.quantize_options(params))
        reloaded = PeftModel.from_pretrained(base, str(result))
    else:
        reloaded, _, _ = load_result(run_dir, merge=False)
    torch.testing.assert_close(logits(reloaded, batch), trained_logits, atol=1e-6, rtol=0)
    if method.mergeable:
        unmerged = reloaded if not method.quantize(params) else load_result(run_dir, merge=False)[0]
        merged, _, note = load_result(run_dir, merge=True)
        assert "merged" in note and not hasattr(merged, "peft_config")
        torch.testing.assert_close(logits(merged, batch), logits(unmerged, batch), atol=1e-4, rtol=1e-4)
    elif not method.trains_base_weights:
        _, _, note = load_result(run_dir, merge=True)
        assert note == method.not_mergeable_reason and note
    return losses


# ---- per-method tests ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(DATA_KINDS))
@pytest.mark.parametrize("key", list(METHODS))
def test_method_trains_exactly_its_parameters_and_reloads(key, kind, batches, tiny_model, tiny_qwen, tmp_path):
    check_method(key, resolved(key), model_for(key, tiny_model, tiny_qwen), batches[kind], tmp_path)


@pytest.mark.parametrize("variant", list(LORA_VARIANTS))
def test_lora_options(variant, batches, tiny_model, tmp_path):
    """DoRA, rsLoRA, biases, modules_to_save; PiSSA/OLoRA (which rewrite base weights at init) are saved
    as a plain LoRA that applies to the original base: reloaded logits match the trained model."""
    check_method("lora", resolved("lora", LORA_VARIANTS[variant]), tiny_model, batches["messages"], tmp_path)


def test_loraplus_gives_b_a_higher_learning_rate(tiny_model):
    from transformers import TrainingArguments

    params = resolved("lora", {"loraplus_lr_ratio": 16})
    model = load_applied("lora", params, tiny_model)
    args = TrainingArguments(output_dir="/tmp/tuneloom-methods-test", learning_rate=1e-4, use_cpu=True,
                             report_to="none", optim="adamw_torch")
    optimizer = METHODS.get("lora").optimizer(model, params, args)
    rates = {}
    for group in optimizer.param_groups:
        names = {n for n, p in model.named_parameters() if any(p is q for q in group["params"])}
        for part in ("lora_A", "lora_B"):
            if any(part in n for n in names):
                rates[part] = group["lr"]
    assert rates == {"lora_A": 1e-4, "lora_B": pytest.approx(16e-4)}
    assert METHODS.get("lora").optimizer(load_applied("lora", resolved("lora"), tiny_model), resolved("lora"),
                                         args) is None  # no LoRA+: the Trainer's own optimizer


@pytest.mark.parametrize("key", ["prompt_tuning", "p_tuning", "prefix_tuning", "p_tuning_v2"])
def test_virtual_tokens_keep_labels_aligned(key, batches, tiny_model):
    """peft's loss for virtual-token methods equals the loss computed by hand on the real tokens only:
    the labels (and attention mask) stay aligned with the inputs, for multi-turn chat too."""
    import torch

    batch = batches["messages"]
    model = load_applied(key, resolved(key), tiny_model).eval()
    with torch.no_grad():
        out = model(**batch)
    real = out.logits[:, -batch["input_ids"].shape[1]:]  # prompt methods return virtual positions first
    labels = batch["labels"]
    manual = torch.nn.functional.cross_entropy(real[:, :-1].reshape(-1, real.shape[-1]), labels[:, 1:].reshape(-1),
                                               ignore_index=-100)
    torch.testing.assert_close(out.loss, manual, atol=1e-5, rtol=1e-5)
    assert METHODS.get(key).virtual_tokens(resolved(key)) == resolved(key)["num_virtual_tokens"]


def test_counts_match_on_the_default_models_config():
    """count_trainable from the default model's structure == the count on that architecture's model
    (built on the meta device: shapes without weights; AdaLoRA needs real tensors for its rank buffers,
    BitFit for the zero biases it adds)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from engine.methods import layerwise

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        pytest.skip("the default model is not prepared (python -m engine model prepare)")
    arch = structure_of(DEFAULT_MODEL_DIR)
    for key, method in METHODS.items():
        params = method.defaults()
        assert not method.check(params, None, arch), key
        device = "cpu" if key in ("adalora", "bitfit") else "meta"
        with torch.device(device):  # a config of its own: BitFit switches attention_bias on in the model's
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(DEFAULT_MODEL_DIR))
        model = method.apply(model, params, arch)
        if key == "layerwise":
            layerwise.unfreeze(model, arch, layerwise.final_layers(arch.layers, params))
        assert reported_trainable(model) == method.count_trainable(arch, params), key


def test_bitfit_adds_zero_biases_to_a_llama_model_and_the_result_loads_in_transformers(tiny_model, batches,
                                                                                          tmp_path):
    """The default model's family has no biases: BitFit adds zero ones (the model is unchanged at first),
    trains only them, and the saved model, with attention_bias/mlp_bias on, loads in plain transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine.core.models import load_model
    from engine.training.recipe import save_result

    batch = batches["alpaca"]
    params = resolved("bitfit")
    base = load_model(tiny_model)
    model = load_applied("bitfit", params, tiny_model)
    torch.testing.assert_close(logits(model, batch), logits(base, batch), atol=0, rtol=0)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all(n.endswith(".bias") for n in trained)
    assert reported_trainable(model) == METHODS.get("bitfit").count_trainable(structure_of(tiny_model), params)
    losses = train_loop("bitfit", params, model, batch)
    assert losses[-1] < losses[0]
    result = save_result(model, tokenizer_for(tiny_model), write_run(tmp_path / "run", "bitfit", params, tiny_model),
                         METHODS.get("bitfit"))
    reloaded = AutoModelForCausalLM.from_pretrained(result)
    assert reloaded.config.attention_bias and reloaded.config.mlp_bias
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), atol=1e-6, rtol=0)


def test_bitfit_without_biases_or_a_switch_is_refused_before_loading(home):
    """Mistral's config has no bias switch and its weights no biases: refused, exit 2, nothing loaded."""
    mistral = build_family("mistral", DEFAULT_MODEL_DIR)
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/bitfit.yaml", "--set",
                             f"model={mistral}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "has none" in result.stderr and "LoRA" in result.stderr
    assert "Traceback" not in result.stderr and "Loading weights" not in result.stderr


def test_prefix_methods_refuse_gradient_checkpointing_and_are_never_given_it(tiny_model, home):
    """transformers drops the prefix cache inside checkpointed layers (every such run crashed in
    bench/memory_accuracy.py), so it is refused up front, never turned on automatically nor offered."""
    from engine.core.config import ConfigError
    from engine.estimate import cheaper_options
    from engine.training.preflight import load_checked
    from engine.training.recipe import checkpoint_if_tight

    for key in ("prefix_tuning", "p_tuning_v2"):
        with pytest.raises(ConfigError, match=f"{key} cannot train with gradient checkpointing"):
            load_checked(ROOT / "presets" / f"{key}.yaml", [f"model={tiny_model}", "train.gradient_checkpointing=true"])
        cfg = load_checked(ROOT / "presets" / f"{key}.yaml", [f"model={tiny_model}"])
        tiny_device = {"kind": "cpu", "name": "test", "total_bytes": 2**20, "free_bytes": 2**20,
                       "available_bytes": 2**20}
        options = cheaper_options(structure_of(tiny_model), cfg, tiny_device)
        same_method = [o for o in options if "method" not in o["overrides"]]
        assert same_method and not any(o["overrides"].get("train.gradient_checkpointing") for o in same_method)
        os.environ["TUNELOOM_MEMORY_LIMIT_MB"] = "1"  # "does not fit": LoRA would get checkpointing here
        try:
            assert checkpoint_if_tight(cfg, structure_of(tiny_model), "fp32") is False
            lora = load_checked(ROOT / "presets" / "lora.yaml", [f"model={tiny_model}"])
            assert checkpoint_if_tight(lora, structure_of(tiny_model), "fp32") is True
        finally:
            del os.environ["TUNELOOM_MEMORY_LIMIT_MB"]
    for key in ("lora", "prompt_tuning", "p_tuning"):
        load_checked(ROOT / "presets" / f"{key}.yaml", [f"model={tiny_model}", "train.gradient_checkpointing=true"])


def test_every_method_is_listed_and_has_a_loadable_preset():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listed = json.loads(subprocess.run([sys.executable, "-m", "engine", "methods", "--json"], cwd=ROOT, env=env,
                                       capture_output=True, text=True, check=True, timeout=120).stdout)
    assert [m["key"] for m in listed] == list(METHODS)
    for key, method in METHODS.items():
        assert method.summary and len(method.summary) < 200
        assert method.mergeable or method.trains_base_weights or method.not_mergeable_reason, key
        cfg = RunConfig.load(ROOT / "presets" / f"{key}.yaml")
        assert cfg.method.name == key


def test_every_optimizer_choice_builds_and_steps_on_cpu(tiny_model, tmp_path):
    """The optimizer names of the config map (train.training_arguments) to optimizers that run here."""
    import torch
    from transformers import Trainer

    from engine.core.models import load_model
    from engine.training.recipe import training_arguments

    model = load_model(tiny_model)
    ids = torch.randint(0, 1000, (2, 12))
    for name in OPTIMIZERS:
        cfg = RunConfig.from_dict({"model": tiny_model, "train": {"optimizer": name, "learning_rate": 1e-3}})
        args = training_arguments(cfg, tmp_path, "fp32", False)
        cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        if name == "sgd":
            assert kwargs.get("momentum") == 0.9
        optimizer = cls([p for p in model.parameters()], **kwargs)
        before = model.lm_head.weight.detach().clone()
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        assert not torch.equal(before, model.lm_head.weight), name


# ---- end to end through the trainer process -------------------------------------------------------
E2E = {
    # method: (method overrides, train overrides, data kind)
    "lora": ({"loraplus_lr_ratio": 16}, {"optimizer": "paged_adamw_8bit"}, "messages"),
    "prefix_tuning": ({}, {"precision": "bf16", "learning_rate": 1e-2}, "alpaca"),
    "adapter": ({}, {"optimizer": "sgd", "gradient_checkpointing": True, "weight_decay": 0.01,
                     "learning_rate": 5e-2}, "messages"),
    "full": ({}, {"optimizer": "adafactor", "max_grad_norm": 0.5}, "alpaca"),
    "layerwise": ({"every": 2}, {"optimizer": "rmsprop", "learning_rate": 1e-3}, "alpaca"),
    "adalora": ({"tinit": 1, "tfinal": 1}, {"optimizer": "adagrad", "learning_rate": 3e-2}, "messages"),
}


@pytest.mark.parametrize("key", list(E2E))
def test_trainer_run_end_to_end(key, tiny_model, tmp_path):
    from engine.core import runs
    from engine.inference.export import export_adapter, export_merged
    from engine.inference.loading import load_result
    from engine.training.launcher import create_run
    from engine.training.recipe import run

    method_over, train_over, kind = E2E[key]
    cfg = RunConfig.from_dict({
        "model": tiny_model, "name": f"e2e-{key}",
        "data": {"train": str(ROOT / DATA_KINDS[kind])},
        "method": {"name": key, **method_over},
        "train": {"max_steps": 8, "batch_size": 4, "max_seq_len": 128, "learning_rate": 5e-3, "eval_steps": 0,
                  "save_steps": 0, "seed": 0, **train_over},
    })
    run_dir = run(create_run(cfg) / "config.yaml")
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status.get("error")
    losses = [r["loss"] for r in runs.read_metrics(run_dir) if "loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0], losses
    method = METHODS.get(key)
    assert status["trainable_params"] <= method.count_trainable(structure_of(tiny_model), cfg.method.params)
    log = (run_dir / "train.log").read_text()
    if key == "layerwise":
        assert "layerwise: step 2: unfroze layers 0-0; now training the top 2 of 2 layers" in log
    model, tokenizer, note = load_result(run_dir)
    assert model is not None and note
    export_adapter(run_dir, tmp_path / "adapter")
    if method.mergeable or method.trains_base_weights:
        assert (export_merged(run_dir, tmp_path / "merged") / "config.json").is_file()
    else:
        with pytest.raises(ValueError, match="cannot be merged"):
            export_merged(run_dir, tmp_path / "merged")
