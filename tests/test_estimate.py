"""The memory estimator: exact parameter counts for every registry method, the directions the
estimate must move in, the CLI, and that it stays pure (no torch)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.config import RunConfig
from engine.core.describe import describe_config, structure_of
from engine.estimate import COMPONENTS, cheaper_options, estimate, ui_summary, verdict
from engine.methods import METHODS

ROOT = Path(__file__).resolve().parent.parent
# a tiny Llama-style config: 2 layers, GQA, untied head (so every code path of the counts is used)
TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "tie_word_embeddings": False,
        "max_position_embeddings": 512}
SMOL = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
        "tie_word_embeddings": True, "max_position_embeddings": 8192}


def cfg(method: str = "lora", **train) -> RunConfig:
    return RunConfig.from_dict({"method": {"name": method}, "train": train})


def total(arch, c, **kw) -> int:
    return estimate(arch, c, **kw).total_bytes


# the tiny model below is built from a bare config, so nothing can read an init text; the counts do not depend on it
WITHOUT_TOKENIZER = {"p_tuning_v2": {"init": "random"}}


@pytest.mark.parametrize("key", list(METHODS))
def test_parameter_counts_equal_the_built_model(key):
    """Trainable and total counts from config.json alone equal a direct count on the real model."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    method = METHODS.get(key)
    params = {**method.defaults(), **WITHOUT_TOKENIZER.get(key, {})}
    arch = describe_config(TINY)
    if method.quantize(params):
        pytest.importorskip("bitsandbytes")  # 0.50+ quantises on CPU as well
    assert not method.check(params, None, arch), method.check(params, None, arch)
    torch.manual_seed(0)
    model = method.apply(LlamaForCausalLM(LlamaConfig(**TINY)), params, arch)
    if key == "layerwise":  # the estimate counts the end of the unfreezing schedule, its peak
        from engine.methods.layerwise import final_layers, unfreeze
        unfreeze(model, arch, final_layers(arch.layers, params))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    counted = sum(p.numel() for p in model.parameters())
    est = estimate(arch, cfg(key), device="cpu")
    assert est.trainable_params == trainable
    assert est.total_params == counted


def test_total_params_match_the_default_model_architecture():
    assert describe_config(SMOL).total_params == 134_515_008  # SmolLM2-135M, tied embeddings


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_monotonic_in_batch_and_sequence_length(device):
    arch = describe_config(SMOL)
    by_batch = [total(arch, cfg(batch_size=b, max_seq_len=256), device=device) for b in (1, 2, 4, 8)]
    by_seq = [total(arch, cfg(batch_size=2, max_seq_len=s), device=device) for s in (64, 128, 512, 2048)]
    assert by_batch == sorted(by_batch) and len(set(by_batch)) == 4
    assert by_seq == sorted(by_seq) and len(set(by_seq)) == 4


@pytest.mark.parametrize("method", list(METHODS))
def test_gradient_checkpointing_lowers_the_estimate(method):
    arch = describe_config(SMOL)
    off = total(arch, cfg(method, batch_size=4, max_seq_len=1024), device="cuda")
    on = total(arch, cfg(method, batch_size=4, max_seq_len=1024, gradient_checkpointing=True), device="cuda")
    assert on < off


def _method_with(predicate):
    for key, m in METHODS.items():
        if predicate(m, m.defaults()):
            return key
    return None


def test_qlora_below_lora_below_full():
    arch = describe_config({**SMOL, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                             "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128,
                             "vocab_size": 32000, "tie_word_embeddings": False})
    lora = total(arch, cfg("lora", batch_size=1, max_seq_len=512))
    quantised = _method_with(lambda m, p: m.quantize(p) == "4bit")
    full = _method_with(lambda m, p: m.trains_base_weights and m.count_trainable(arch, p) == arch.total_params)
    assert full and quantised, (full, quantised)  # both are registered (full, qlora)
    assert lora < total(arch, cfg(full, batch_size=1, max_seq_len=512))
    assert total(arch, cfg(quantised, batch_size=1, max_seq_len=512)) < lora
    # the quantised weight store alone is ~4x smaller than bf16 and ~8x smaller than fp32
    from engine.estimate.components import base_weight_bytes as _weight_bytes

    nf4 = _weight_bytes(arch, "4bit", 4)["linear"]
    assert 0.5 * arch.linear_weights() < nf4 < 0.52 * arch.linear_weights()


def test_zero3_per_device_below_ddp():
    arch = describe_config(SMOL)
    c = cfg("lora", batch_size=2, max_seq_len=512)
    ddp = estimate(arch, c, device="cuda", world_size=4, sharding="ddp")
    zero3 = estimate(arch, c, device="cuda", world_size=4, sharding="zero3")
    zero2 = estimate(arch, c, device="cuda", world_size=4, sharding="zero2")
    assert zero3.total_bytes < zero2.total_bytes <= ddp.total_bytes
    # ZeRO-3 shards the (frozen) weights over the 4 devices; ZeRO-2 keeps a full copy on each
    assert zero3.components["frozen_weights"] * 4 == pytest.approx(zero2.components["frozen_weights"], rel=1e-6)


def test_components_are_complete_and_sum_to_the_total():
    est = estimate(describe_config(SMOL), cfg(), device="cuda")
    assert list(est.components) == [k for k, _ in COMPONENTS]
    assert sum(est.components.values()) == est.total_bytes
    assert est.peak_bytes == est.total_bytes - est.components["fragmentation"]
    assert json.loads(json.dumps(est.to_dict()))["total_bytes"] == est.total_bytes


def test_verdict_and_cheaper_options_apply_cleanly():
    arch = describe_config(SMOL)
    big = cfg("lora", batch_size=16, max_seq_len=4096)
    device = {"kind": "cuda", "name": "test GPU", "available_bytes": 8 * 2**30}
    assert verdict(total(arch, big), device) == "does not fit"
    assert verdict(1, device) == "fits" and verdict(int(0.95 * 8 * 2**30), device) == "tight"
    options = cheaper_options(arch, big, device)
    assert options and all(o["fits"] for o in options)
    from engine.estimate.options import _with

    for option in options:  # each option is a valid config with exactly the promised estimate
        assert total(arch, _with(big, option["overrides"])) == option["bytes"] <= 0.9 * 8 * 2**30


def test_ui_summary_shape(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SMOL))
    summary = ui_summary({"model": str(tmp_path), "train": {"batch_size": 64, "max_seq_len": 4096}},
                         {"kind": "cuda", "name": "24 GB GPU", "available_bytes": 24 * 2**30})
    assert summary["ok"] and summary["verdict"] == "does not fit" and summary["options"]
    assert [c["key"] for c in summary["components"]] == [k for k, _ in COMPONENTS]
    assert sum(c["bytes"] for c in summary["components"]) == summary["total_bytes"]
    assert not ui_summary({"model": str(tmp_path / "missing")}, {"kind": "cpu"})["ok"]


def _run(args, env=None, **kw):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, **kw)


def test_cli_json_with_a_folder_holding_only_config_json(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(SMOL))
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {model}\nmethod: lora\ntrain:\n  batch_size: 2\n")
    out = _run(["-m", "engine", "estimate", str(config), "--json", "--device", "cpu",
                "--set", "train.max_seq_len=256"])
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["total_params"] == 134_515_008 + data["trainable_params"]
    assert data["trainable_params"] == estimate(describe_config(SMOL), cfg()).trainable_params
    assert sum(data["components"].values()) == data["total_bytes"]
    sharded = json.loads(_run(["-m", "engine", "estimate", str(config), "--json", "--device", "cuda",
                               "--world-size", "4", "--sharding", "zero3"]).stdout)
    assert sharded["sharding"] == "zero3" and sharded["world_size"] == 4


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'peft', 'bitsandbytes'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_estimator_is_pure_and_does_not_import_torch(tmp_path):
    """The UI's process never imports torch: it reads the structure a child process cached, and until then
    the estimate says it is reading the structure (no number of an assumed shape)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(SMOL))
    home = {"TUNELOOM_HOME": str(tmp_path / "home"), "TUNELOOM_STRUCTURES": str(tmp_path / "structures")}
    code = BLOCK_TORCH + f"""
from engine.estimate import estimate_for_config, ui_summary
from engine.core import describe
from engine.core.device import detect
from engine.core.config import RunConfig
cfg = RunConfig.from_dict({{'model': {str(model)!r}}})
first = ui_summary(cfg.to_dict(), detect())
assert not first['ok'] and first['pending'] and 'total_bytes' not in first, first
describe.obtain(cfg.model)  # waits for the child process `python -m engine model describe`
a = estimate_for_config(cfg, device='cuda'); b = estimate_for_config(cfg, device='cuda')
assert a.to_dict() == b.to_dict()
s = ui_summary(cfg.to_dict(), detect())
assert s['ok'], s
assert not any(m.split('.')[0] in ('torch', 'transformers', 'peft') for m in sys.modules)
print('ok', a.trainable_params)
"""
    out = _run(["-c", code], env=home)
    assert out.returncode == 0 and out.stdout.strip().startswith("ok"), out.stderr
    assert int(out.stdout.split()[-1]) == estimate(describe_config(SMOL), cfg()).trainable_params


def test_a_distillation_teacher_is_counted(tiny_model):
    plain = cfg("lora")
    plain.model = tiny_model
    with_teacher = RunConfig.from_dict({**plain.to_dict(), "distill": {"teacher": tiny_model}})
    arch = structure_of(tiny_model)
    teacher = estimate(arch, with_teacher, device="cpu").components["teacher"]
    assert estimate(arch, plain, device="cpu").components["teacher"] == 0
    # at least the teacher's weights (fp32 here), and the estimate grows by what the teacher adds
    assert teacher >= arch.total_params * 4
    assert estimate(arch, with_teacher, device="cpu").total_bytes > estimate(arch, plain, device="cpu").total_bytes
