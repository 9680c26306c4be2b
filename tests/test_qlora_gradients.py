"""QLoRA trains on the 4-bit training layout only: an evaluation (an eval-mode forward without gradients, as
the trainer's packed-attention check and every mid-run evaluation run it) must not change any gradient.

On a CPU with AVX512-BF16, bitsandbytes repacks a Linear4bit's weights for inference the first time it runs
in eval mode without gradients, and every later backward then goes through `gemv_4bit`, which has no
autograd kernel (engine/core/models.keep_training_layout says more). The test compares, on one fixed batch,
every LoRA parameter's gradient before an evaluation, after it, and against a reference model whose linear
layers hold the dequantised 4-bit weights in plain float32. The torch warning "an autograd kernel was not
registered" is an error for the whole suite (pyproject.toml, filterwarnings).

On a CPU without AVX512-BF16 bitsandbytes never repacks, so the comparison passes with or without the fix;
the test then also checks the switch that keeps the layout is set on every 4-bit layer, and says so.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
PARAMS = {"r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": "all-linear", "bias": "none",
          "modules_to_save": "", "use_rslora": False, "use_dora": False, "init": "default", "loraplus_lr_ratio": 0.0,
          "quant_type": "nf4", "double_quant": True, "compute_dtype": "fp32"}
TOLERANCE = dict(rtol=1e-4, atol=1e-6)


def cpu_repacks() -> bool:
    from bitsandbytes.functional import has_avx512bf16

    return bool(has_avx512bf16())


@pytest.fixture(scope="module")
def qwen2(tiny_model) -> str:
    from families import build_family

    return str(build_family("qwen2", tiny_model))


def lora_params(model) -> dict:
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


def gradients(model, batch) -> dict:
    model.train()
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    return {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in lora_params(model).items()}


def evaluate_once(model, batch) -> None:
    """What the trainer's packed-attention check and Trainer.evaluate do to the model."""
    import torch

    model.eval()
    with torch.no_grad():
        model(**batch)


def quantised_lora(model_path: str):
    """The trainer's QLoRA model (4-bit base, LoRA on every linear) with non-zero B matrices, so every LoRA
    parameter gets a gradient."""
    import torch

    from engine.core.describe import structure_of
    from engine.core.models import load_model
    from engine.methods import METHODS

    method = METHODS.get("qlora")
    torch.manual_seed(0)
    model = load_model(model_path, "4bit", "fp32", quant_options=method.quantize_options(PARAMS))
    model = method.apply(model, PARAMS, structure_of(model_path))
    with torch.no_grad():
        for name, param in lora_params(model).items():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model


def dequantised_reference(model_path: str, quantised):
    """The same model in float32 with each 4-bit linear replaced by its dequantised weight, and the same LoRA."""
    import torch
    from bitsandbytes.functional import dequantize_4bit

    from engine.core.describe import structure_of
    from engine.core.models import load_model
    from engine.methods import lora

    reference = load_model(model_path, None, "fp32")
    base = quantised.get_base_model()
    with torch.no_grad():
        for name, module in base.named_modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):  # a bitsandbytes Linear4bit (inside LoRA's wrapper)
                target = reference.get_submodule(name.removesuffix(".base_layer")).weight
                weight = dequantize_4bit(module.weight.data, module.weight.quant_state)
                target.copy_(weight.float().reshape(target.shape))
    reference = lora.apply(reference, PARAMS, structure_of(model_path))
    missing, unexpected = reference.load_state_dict({n: p.detach() for n, p in lora_params(quantised).items()},
                                                    strict=False)
    assert not unexpected and not [m for m in missing if "lora_" in m]
    return reference


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_lora_gradients_are_the_same_after_an_evaluation_and_match_dequantised_weights(family, tiny_model, qwen2):
    import torch

    from engine.training import packing

    model_path = tiny_model if family == "llama" else qwen2
    torch.manual_seed(0)
    batch = _one_batch(model_path)
    model = quantised_lora(model_path)
    before = gradients(model, batch)
    packing.enable(model, 128)  # the trainer's check: an eval-mode forward without gradients
    evaluate_once(model, batch)  # and a mid-run evaluation
    after = gradients(model, batch)
    reference = gradients(dequantised_reference(model_path, model), batch)

    assert set(before) == set(after) == set(reference) and len(before) > 0
    missing = sorted(n for n, g in after.items() if g is None)
    assert not missing, f"LoRA parameters without a gradient after an evaluation: {missing[:4]}"
    worst = max((after[n] - before[n]).abs().max().item() for n in before)
    off = max(((after[n] - reference[n]).abs().max() / reference[n].abs().max().clamp_min(1e-12)).item()
              for n in before)
    print(f"{family}: {len(before)} LoRA tensors; largest |after - before| {worst:.3g}; largest |after - "
          f"dequantised reference| / max|reference| {off:.3g}; AVX512-BF16 repack on this CPU: {cpu_repacks()}")
    for name in before:
        torch.testing.assert_close(after[name], before[name], **TOLERANCE, msg=lambda m, n=name: f"{n}: {m}")
        torch.testing.assert_close(after[name], reference[name], **TOLERANCE, msg=lambda m, n=name: f"{n}: {m}")
    layers = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)


def test_the_repack_would_change_gradients_on_this_cpu(tiny_model):
    """Without the switch, an evaluation repacks the 4-bit weights here: the bug the test above guards against
    is real on this machine (where it is not, bitsandbytes never repacks and there is nothing to guard)."""
    import torch

    if not cpu_repacks():
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never repacks 4-bit weights here")
    batch = _one_batch(tiny_model)
    model = quantised_lora(tiny_model)
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = True  # bitsandbytes' default on this CPU
    evaluate_once(model, batch)
    packed = [m for m in model.modules() if getattr(getattr(m, "weight", None), "quant_state", None) is not None
              and getattr(m.weight.quant_state, "packing_format_for_cpu", False)]
    assert packed, "bitsandbytes did not repack on a CPU with AVX512-BF16"
    from engine.core.models import keep_training_layout

    keep_training_layout(model)  # undoes the repack: training layout again, same gradients as before
    assert not any(m.weight.quant_state.packing_format_for_cpu for m in packed)
    reference = gradients(dequantised_reference(tiny_model, model), batch)
    after = gradients(model, batch)
    for name in reference:
        torch.testing.assert_close(after[name], reference[name], **TOLERANCE)


def _one_batch(model_path: str):
    from families import one_batch

    return one_batch(model_path)
