"""Precision: the one `auto` rule and the CPU facts it reads, pure bf16 training on the tiny model, and
what the memory estimate makes of pure bf16 and of the prompt-family methods' virtual tokens."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.core import device, precision
from engine.core.config import RunConfig
from engine.core.describe import describe_config
from engine.estimate import cheaper_options, estimate
from tests.test_estimate import SMOL
from tests.test_train_cli import ROOT, engine_cli

LLAMA_3B = json.loads((ROOT / "bench" / "configs" / "llama-3.2-3b.json").read_text())
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2_ONLY = frozenset({"avx", "avx2", "fma"})


def config(method: str = "full", params: dict | None = None, **train) -> RunConfig:
    return RunConfig.from_dict({"method": {"name": method, **(params or {})}, "train": train})


# ---- the rule and the CPU facts ------------------------------------------------------------------
def test_native_half_precision_is_read_from_the_cpu_flags():
    assert device.cpu_native_half("bf16", AVX512_BF16)
    assert device.cpu_native_half("bf16", frozenset({"amx_bf16", "amx_tile"}))
    assert not device.cpu_native_half("bf16", AVX2_ONLY)
    assert not device.cpu_native_half("fp16", AVX512_BF16)
    assert device.cpu_native_half("fp16", frozenset({"avx512_fp16"}))
    assert isinstance(device.cpu_flags(), frozenset)


def test_auto_resolves_per_device_and_explicit_choices_pass_through():
    assert precision.resolve("auto", "cuda", True) == "bf16"
    assert precision.resolve("auto", "cuda", False) == "fp16"
    assert precision.resolve("auto", "cpu", False) == "fp32"  # no native bf16: never half precision
    assert precision.resolve("auto", "cpu", True) == "fp32"  # native bf16 without AMX: measured no faster
    assert precision.resolve("auto", "cpu", True, amx=True) == "bf16"  # AMX: measured 1.36x at the same loss
    assert precision.resolve("auto", "cuda", True, amx=False) == "bf16"  # AMX is a CPU fact only
    for choice in ("fp32", "bf16", "fp16", "bf16_pure"):
        assert precision.resolve(choice, "cpu", False) == choice
    assert precision.compute_dtype("bf16_pure") == "bf16" and precision.is_pure("bf16_pure")
    assert precision.compute_dtype("bf16") == "bf16" and not precision.is_pure("bf16")


# The rule (issue 28): on a CPU, `auto` is bf16 mixed precision exactly where the flags have AMX's bf16 tiles
# (`amx_bf16`), fp32 on AVX2-only CPUs and on AVX512-BF16 CPUs without AMX. Flag sets as /proc/cpuinfo lists them.
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8"})
COOPER_LAKE = frozenset({"avx2", "avx512f", "avx512_bf16"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512vl"})
EPYC_AVX2 = frozenset({"avx", "avx2", "fma", "f16c"})


@pytest.mark.parametrize("flags,expected", [
    (SAPPHIRE_RAPIDS, "bf16"),
    (frozenset({"amx_bf16", "amx_tile"}), "bf16"),  # AMX alone is native bf16
    (COOPER_LAKE, "fp32"),
    (ZEN4, "fp32"),
    (EPYC_AVX2, "fp32"),
    (frozenset({"amx_int8", "amx_tile", "avx2"}), "fp32"),  # AMX without its bf16 tiles
    (frozenset(), "fp32"),  # no /proc/cpuinfo
])
def test_auto_on_a_cpu_is_bf16_exactly_where_it_has_amx(flags, expected):
    assert precision.resolve_on_cpu("auto", flags) == expected
    for choice in ("fp32", "bf16", "fp16", "bf16_pure"):  # an explicit choice is never overridden
        assert precision.resolve_on_cpu(choice, flags) == choice


@pytest.mark.parametrize("flags,expected", [(SAPPHIRE_RAPIDS, "bf16"), (COOPER_LAKE, "fp32"), (EPYC_AVX2, "fp32")])
def test_the_cpu_estimate_follows_the_auto_rule(monkeypatch, flags, expected):
    from engine.estimate.components import precision_for

    monkeypatch.setattr(device, "cpu_flags", lambda: flags)
    assert precision_for(config("lora"), "cpu") == expected
    assert precision_for(config("lora"), "cuda") == "bf16"


def test_the_amx_measurement_is_cited_where_the_rule_lives():
    """The numbers behind the rule, in the code and the README, are the recorded ones."""
    import inspect

    recorded = (ROOT / "bench" / "results" / "throughput_cpu_amx.md").read_text()
    readme = (ROOT / "README.md").read_text()
    code = inspect.getsource(precision)
    for number in ("474.9", "348.6", "1.5360", "1.5311"):
        assert number in recorded and number in code and number in readme, number
    assert "474.9 / 348.6 = 1.36x" in recorded and "1.36x" in code and "1.36x" in readme
    assert "throughput_cpu_avx512bf16" in code


def test_pure_bf16_is_refused_under_deepspeed_with_the_reason():
    from engine.core.config import ConfigError

    with pytest.raises(ConfigError, match="bf16_pure is not supported under DeepSpeed"):
        config(precision="bf16_pure", num_processes=2, distributed="zero3")
    assert config(precision="bf16_pure", num_processes=2, distributed="fsdp").train.precision == "bf16_pure"


def test_slow_half_precision_warning_follows_the_cpu_fact(monkeypatch):
    import torch

    from engine.training import recipe

    monkeypatch.setattr(device, "cpu_flags", lambda: AVX2_ONLY)
    assert "no native bf16" in recipe.slow_half_precision_warning("bf16_pure")
    assert "no native fp16" in recipe.slow_half_precision_warning("fp16")
    assert recipe.slow_half_precision_warning("fp32") is None
    monkeypatch.setattr(device, "cpu_flags", lambda: AVX512_BF16)
    # native: the flags, and a torch build whose kernels use the vector unit that has bf16 (AVX-512 or AMX)
    expected_native = torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))
    assert (recipe.slow_half_precision_warning("bf16") is None) == expected_native


# ---- pure bf16 training on the tiny model -----------------------------------------------------------
@pytest.mark.parametrize("method,lr", [("full", 3e-3), ("lora", 1e-2)])
def test_pure_bf16_trains_every_parameter_in_bf16_and_the_loss_falls(tiny_model, tmp_path, method, lr):
    result = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}",
                        "--set", f"method.name={method}", "--set", "train.precision=bf16_pure",
                        "--set", "train.max_steps=16", "--set", "train.eval_steps=0", "--set", "train.save_steps=0",
                        "--set", "train.max_seq_len=128", "--set", f"train.learning_rate={lr}",
                        "--set", "train.warmup_steps=0", home=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = Path(result.stdout.strip().splitlines()[-1])
    status = json.loads((run / "status.json").read_text())
    assert status["precision"] == "bf16_pure"
    # counted at the first optimizer step: weights, their gradients and AdamW's two moments, all bf16
    dtypes = status["dtypes"]
    assert set(dtypes) == {"weights", "gradients", "optimizer_states"}
    for part, counts in dtypes.items():
        assert list(counts) == ["bfloat16"], (part, counts)
    assert dtypes["optimizer_states"]["bfloat16"] == 2 * dtypes["weights"]["bfloat16"]
    assert dtypes["weights"]["bfloat16"] == status["trainable_params"]
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    # from ~10.8 (ln of the vocabulary: a random model); step-to-step noise is ~0.1 (fp32 falls alike)
    assert sum(losses[:4]) / 4 - sum(losses[-4:]) / 4 > 0.4, losses


# ---- the estimate ---------------------------------------------------------------------------------
def test_pure_bf16_halves_full_fine_tuning_and_keeps_no_fp32_copy():
    arch = describe_config(LLAMA_3B)
    mixed = estimate(arch, config(precision="bf16", batch_size=4, max_seq_len=768), device="cuda")
    pure = estimate(arch, config(precision="bf16_pure", batch_size=4, max_seq_len=768), device="cuda")
    n = pure.trainable_params
    assert pure.details["pure"] and pure.details["weight_dtype"] == "bf16"
    assert pure.components["trainable_weights"] == 2 * n
    assert pure.components["optimizer"] == 2 * 2 * n  # AdamW's two moments in bf16
    assert pure.components["master_weights"] == 0
    assert mixed.components["optimizer"] == 2 * 4 * n
    assert pure.total_bytes < 0.62 * mixed.total_bytes


def test_pure_bf16_stores_adapters_in_bf16():
    arch = describe_config(SMOL)
    mixed = estimate(arch, config("lora", precision="bf16"), device="cuda")
    pure = estimate(arch, config("lora", precision="bf16_pure"), device="cuda")
    assert mixed.components["trainable_weights"] == 4 * mixed.trainable_params  # peft's fp32 adapters
    assert pure.components["trainable_weights"] == 2 * pure.trainable_params


def test_pure_bf16_is_offered_when_full_fine_tuning_does_not_fit():
    arch = describe_config(LLAMA_3B)
    cfg = config(precision="bf16", batch_size=1, max_seq_len=256)
    mixed = estimate(arch, cfg, device="cuda").total_bytes
    pure = estimate(arch, config(precision="bf16_pure", batch_size=1, max_seq_len=256), device="cuda").total_bytes
    size = int((mixed + pure) / 2 / 0.85)  # fits pure, not mixed
    gpu = {"kind": "cuda", "name": "GPU", "total_bytes": size, "free_bytes": size, "available_bytes": size, "count": 1}
    options = cheaper_options(arch, cfg, gpu)
    assert any(o["overrides"] == {"train.precision": "bf16_pure"} and o["fits"] for o in options), options


def test_unfused_half_precision_loss_holds_fourteen_bytes_per_logit():
    """Logits in bf16 kept by the output, then log-softmax output, NLL gradient and log-softmax gradient
    in fp32 (the fp32 upcast is freed after forward): 2 + 3 x 4 bytes per logit, measured 14.0 on CPU."""
    arch = describe_config(SMOL)
    est = estimate(arch, config("lora", precision="bf16", batch_size=2, max_seq_len=64, fused_loss=False,
                                packing=False), device="cuda")
    assert est.components["logits_loss"] == 2 * 64 * arch.vocab * 14


def test_prefix_virtual_tokens_are_keys_while_prompt_tokens_are_positions():
    """Prompt tuning prepends its virtual tokens as inputs: every layer and the logits run seq + N
    positions. Prefix methods add them as keys/values only: the layers and logits run seq positions."""
    arch = describe_config(LLAMA_3B)
    virtual = {"num_virtual_tokens": 200}
    train = dict(precision="bf16", batch_size=4, max_seq_len=768)
    prompt = estimate(arch, config("prompt_tuning", virtual, **train), device="cuda")
    prefix = estimate(arch, config("p_tuning_v2", virtual, **train), device="cuda")
    plain = estimate(arch, config("p_tuning_v2", {"num_virtual_tokens": 1}, **train), device="cuda")
    assert prompt.details["tokens_per_micro_batch"] == 4 * 968
    assert prefix.details["tokens_per_micro_batch"] == 4 * 768
    assert prefix.components["logits_loss"] == plain.components["logits_loss"]
    # the prefix still costs: longer keys/values (and the cache holding them) in every layer
    per_layer = "activation_bytes_per_token_per_layer"
    assert prefix.details[per_layer] > plain.details[per_layer]
    assert prefix.components["activations"] < prompt.components["activations"]
