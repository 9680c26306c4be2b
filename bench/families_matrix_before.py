"""The family x method matrix on the code BEFORE issue 20 (commit f5350a2), for bench/families_matrix.md.

That commit described models with engine.core.arch.Arch (config.json keys, Llama-shaped) and its methods
took an Arch; this script runs the same cells as tests/families.run_cell through that API. Run it from a
checkout of f5350a2, pointing at this checkout's tests/families.py for the tiny models and settings:

    git worktree add /tmp/before f5350a2
    cd /tmp/before && python /path/to/this/bench/families_matrix_before.py /path/to/this/checkout

It writes bench/results/families_matrix_before.json into the checkout given.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

CHECKOUT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
sys.path.insert(0, os.getcwd())  # the engine of the commit being measured
sys.path.insert(1, str(CHECKOUT / "tests"))  # the tiny families and the matrix settings
os.environ.setdefault("TUNELOOM_MODELS", str(CHECKOUT / ".cache" / "models"))
os.environ["TUNELOOM_HOME"] = tempfile.mkdtemp(prefix="tuneloom-before-")

import families  # noqa: E402
import torch  # noqa: E402


def run_cell(model: str, key: str) -> dict:
    from transformers import TrainingArguments

    from engine.core.arch import Arch
    from engine.core.models import load_model
    from engine.estimate import estimate_for_config
    from engine.methods import METHODS
    from engine.training import packing
    from engine.training.preflight import preflight

    cfg = families.preset_config(model, key, Path.cwd() / "presets")  # that commit's presets
    method, params = METHODS.get(key), cfg.method.params
    problems = preflight(cfg)
    if problems:
        return {"state": "refused", "why": problems[0]}
    cell = {}
    try:
        cell["estimate"] = estimate_for_config(cfg, device="cpu").trainable_params
    except Exception as err:
        cell["estimate"] = f"{type(err).__name__}: {err}"
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arch = Arch.from_folder(model)
        reason = method.unavailable(arch)
        if reason:
            return {**cell, "state": "refused", "why": reason}
        model_obj = load_model(model, method.quantize(params), "fp32", quant_options=method.quantize_options(params))
        if key in families.ALL_LINEAR_METHODS and params["target_modules"] == "all-linear":
            reference = families.peft_all_linear(model_obj)
        model_obj = method.apply(model_obj, params, arch)
        if key in families.ALL_LINEAR_METHODS and params["target_modules"] == "all-linear":
            from peft.tuners.tuners_utils import BaseTunerLayer

            adapted = {n.removeprefix("base_model.model.") for n, m in model_obj.named_modules()
                       if isinstance(m, BaseTunerLayer)}
            cell["all_linear_as_peft"] = adapted == reference
            cell["all_linear_adapted"] = f"{len(adapted)} of {len(reference)}"
        args = TrainingArguments(output_dir="/tmp/tuneloom-families", learning_rate=1e-2, use_cpu=True,
                                 report_to="none", optim="adamw_torch", weight_decay=0.0)
        optimizer = method.optimizer(model_obj, params, args) if method.optimizer else None
        optimizer = optimizer or torch.optim.AdamW([p for p in model_obj.parameters() if p.requires_grad], lr=1e-2)
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        named = dict(model_obj.named_parameters())
        cell["trainable"] = sum(p.numel() for p in named.values() if id(p) in in_optimizer)
        callbacks = method.callbacks(model_obj, params) if method.callbacks else []
        if method.virtual_tokens(params) == 0:
            packing.enable(model_obj, cfg.train.max_seq_len)
        before = {n: p.detach().clone() for n, p in named.items()}
        losses = families.drive(model_obj, optimizer, callbacks, args, families.one_batch(model), families.STEPS,
                                evaluate_between=True)
    changed = {n for n, p in named.items() if not torch.equal(before[n], p.detach())}
    cell.update(losses=losses, changed=sum(named[n].numel() for n in changed),
                changed_outside_optimizer=sorted(n for n in changed if id(named[n]) not in in_optimizer),
                unchanged_in_optimizer=sorted(n for n, p in named.items()
                                              if id(p) in in_optimizer and n not in changed),
                autograd_warning=any("autograd kernel was not registered" in str(w.message) for w in caught),
                state="trained")
    return cell


def main() -> int:
    from engine.methods import METHODS

    torch.set_num_threads(1)
    paths = families.build_all(CHECKOUT / ".cache" / "models" / "smollm2-135m-instruct")
    results = {}
    for family in families.FAMILIES:
        for key in METHODS:
            try:
                cell = run_cell(str(paths[family]), key)
                text = families.verdict(cell) if not isinstance(cell.get("estimate", 0), str) else \
                    f"crash: the estimate failed ({cell['estimate'][:120]})"
                if "all_linear_adapted" in cell and not cell["all_linear_as_peft"]:
                    text += f" (all-linear adapted {cell['all_linear_adapted']} of peft's modules)"
                cell["verdict"] = text
            except Exception as err:
                where = traceback.extract_tb(err.__traceback__)[-1]
                cell = {"state": "crash", "verdict": f"crash: {type(err).__name__}: {str(err).splitlines()[0][:160]} "
                                                     f"({Path(where.filename).name}:{where.lineno})"}
            results[f"{family}/{key}"] = cell
            print(f"{family:10s} {key:14s} {cell['verdict'][:150]}", flush=True)
    out = CHECKOUT / "bench" / "results" / "families_matrix_before.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
