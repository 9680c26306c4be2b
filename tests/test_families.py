"""Every method on every model family a user may bring: tiny random models of 11 transformers families
(tests/families.py) x the 16 method presets. Each cell trains two steps as the trainer does (pre-run checks,
estimate, load + apply, packed-attention check, step, evaluation, step) and must change exactly the
parameters the estimate counted, with all-linear meaning what peft's all-linear means; or it is refused
before loading, with the reason. bench/families_matrix.py writes the same matrix as a report.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import module_workspace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from families import FAMILIES, build_family, run_cell, verdict  # noqa: E402

from engine.methods import METHODS  # noqa: E402

# the cells refused up front, and a word their reason must contain
REFUSED = {
    ("mistral", "bitfit"): "has none", ("phi3", "bitfit"): "has none", ("mixtral", "bitfit"): "has none",
    ("gpt2", "loha"): "Conv1D", ("gpt2", "lokr"): "Conv1D",
}


@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory):
    with module_workspace(tmp_path_factory, "families-home") as path:
        yield path


@pytest.fixture(scope="module")
def models(tiny_model) -> dict[str, str]:
    return {name: str(build_family(name, tiny_model)) for name in FAMILIES}


@pytest.mark.parametrize("key", list(METHODS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_method_trains_exactly_what_the_estimate_counts_or_is_refused(family, key, models):
    cell = run_cell(models[family], key)
    if (family, key) in REFUSED:
        assert cell["state"] == "refused" and REFUSED[family, key] in cell["why"], cell
        return
    assert verdict(cell) == "ok", verdict(cell)
    assert cell["trainable"] > 0 and all(math.isfinite(x) for x in cell["losses"])


def test_real_module_names_are_accepted_and_unknown_ones_listed(models):
    from engine.core.describe import structure_of
    from engine.methods import targets

    neox = structure_of(models["gpt_neox"])
    assert not targets.problems("query_key_value,dense", neox, "LoRA")
    assert {n.rsplit(".", 1)[1] for n in targets.resolve("query_key_value,dense", neox, False).module_names()} == \
        {"query_key_value", "dense"}
    problems = targets.problems("q_proj,v_proj", neox, "LoRA")
    assert problems and "query_key_value" in problems[0] and "dense_4h_to_h" in problems[0]


def test_routed_experts_left_out_are_named_in_the_estimate(models):
    """LoRA with dropout cannot reach fused expert tensors in peft: the estimate's notes say so and count
    only what is adapted; with dropout 0 the experts are adapted (target_parameters)."""
    from engine.core.config import RunConfig
    from engine.estimate import estimate_for_config

    with_dropout = RunConfig.from_dict({"model": models["mixtral"], "method": {"name": "lora", "dropout": 0.05}})
    without = RunConfig.from_dict({"model": models["mixtral"], "method": {"name": "lora", "dropout": 0.0}})
    noted = estimate_for_config(with_dropout, device="cpu")
    assert any("routed experts" in n and "dropout" in n for n in noted.notes), noted.notes
    assert estimate_for_config(without, device="cpu").trainable_params > noted.trainable_params


def test_an_unknown_module_name_is_refused_by_the_cli_before_loading(models, home):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/lora.yaml", "--set",
                             f"model={models['gpt2']}", "--set", "method.target_modules=q_proj,v_proj"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "c_attn" in result.stderr and "Traceback" not in result.stderr and "run folder" not in result.stderr


def test_a_family_that_cannot_be_mapped_is_refused_before_loading(tmp_path, capsys):
    """An encoder-decoder (T5) is no causal language model: refused with the reason, exit 2, no run folder."""
    import json

    from engine.__main__ import main

    model = tmp_path / "t5"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 64, "num_layers": 2, "num_heads": 4,
                                                   "vocab_size": 100, "d_ff": 128, "d_kv": 16}))
    assert main(["train", "presets/lora.yaml", "--set", f"model={model}"]) == 2
    err = capsys.readouterr().err
    assert "cannot map its methods onto this t5 model" in err and "Traceback" not in err
    assert main(["estimate", "presets/lora.yaml", "--set", f"model={model}"]) == 2
