"""Merge several runs into a new run: `python -m engine merge RUN_A RUN_B --how ties`.

Adapters: peft's `add_weighted_adapter` does the merging (linear, cat, TIES, DARE-linear, DARE-TIES, magnitude
prune for LoRA; a weighted sum for IA3). Full-weight runs (a whole model/ each): mergekit (linear, TIES,
SLERP; engine/inference/merge_full.py). The result is a run folder like any other (config.yaml,
status.json "done", adapter/ or model/), so Chat, Evaluate, Export and serve take it as a run; its merge.json and
its status name the parents and the recipe. Everything that would make the merge wrong or impossible is
refused before a model is loaded (`merge_problems`, import-light: the page asks it too).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from engine.core import runs
from engine.core.config import ConfigError
from engine.core.jobs import RunState
from engine.core.messages import Message

FULL = "FULL"  # a full-weight run's kind beside peft's adapter types
# how -> the kinds of run that can be merged that way: peft's adapter types (LoRA's combination types; IA3 sums
# its vectors) and full-weight runs, merged by mergekit
HOWS = {"linear": ("LORA", "IA3", FULL), "cat": ("LORA",), "ties": ("LORA", FULL), "dare_linear": ("LORA",),
        "dare_ties": ("LORA",), "magnitude_prune": ("LORA",), "slerp": (FULL,)}
NEEDS_DENSITY = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
SAME_RANK = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")  # peft: these keep one rank
MERGE_CARD = "merge.json"
STAGING = ".merging"  # the result is written here and moved into place only when whole


def _parent(run: str) -> tuple[Path, dict, dict, str]:
    """(run folder, its config dict, its adapter_config.json, why it cannot be a parent or "")."""
    run_dir = runs.resolve_run(run)
    if not runs.is_run_folder(run_dir):
        return run_dir, {}, {}, Message("merge.not_run", run=str(run))
    raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    method = (raw.get("method") or {}).get("name", "lora") if isinstance(raw.get("method"), dict) else raw.get("method")
    if (run_dir / "model").is_dir():
        return run_dir, raw, {"peft_type": FULL, "method": method}, ""
    if not (run_dir / "adapter").is_dir():
        return run_dir, raw, {}, Message("merge.no_result", run=run_dir.name)
    config = runs.read_json(run_dir / "adapter" / "adapter_config.json", None)
    if not isinstance(config, dict):
        return run_dir, raw, {}, Message("merge.not_peft", run=run_dir.name, method=method)
    return run_dir, raw, config, ""


def merge_problems(run_list: list[str], how: str, weights: list[float] | None, density: float | None) -> list[str]:
    """Every reason these runs cannot be merged this way (empty: they can)."""
    problems = []
    if how not in HOWS:
        return [Message("merge.how", how=how, choices=", ".join(HOWS))]
    if len(run_list) < 2:
        problems.append(Message("merge.count", count=len(run_list)))
    if weights is not None and len(weights) != len(run_list):
        problems.append(Message("merge.weights", weights=len(weights), runs=len(run_list)))
    if how in NEEDS_DENSITY and density is not None and not 0 < density <= 1:
        problems.append(Message("merge.density", density=density))
    if how == "slerp" and len(run_list) != 2:
        problems.append(Message("merge.slerp_count", count=len(run_list)))
    if how == "slerp" and weights is not None and (any(w < 0 for w in weights) or sum(weights) <= 0):
        problems.append(Message("merge.weights_sign", weights=",".join(f"{w:g}" for w in weights)))
    parents = [_parent(r) for r in run_list]
    problems += [why for *_, why in parents if why]
    if problems:
        return problems
    bases = {}
    for run_dir, raw, config, _ in parents:
        start = runs.read_json(run_dir / runs.START_FILE) or {}  # started from an earlier run: its merged result
        base = start.get("base") or raw.get("model") or "smollm2-135m-instruct"
        bases.setdefault(str(base), []).append(run_dir.name)
        if config.get("peft_type") == FULL:
            problems += _added_tensor_problems(run_dir, config["method"], str(base))
        kind = config.get("peft_type")
        if kind == FULL and kind not in HOWS[how]:
            problems.append(Message("merge.full_how", run=run_dir.name, method=config["method"], how=how,
                                    allowed=", ".join(h for h, kinds in HOWS.items() if FULL in kinds)))
        elif kind not in HOWS[how]:
            allowed = ", ".join(h for h, kinds in HOWS.items() if kind in kinds)
            problems.append(Message("merge.kind_how", run=run_dir.name, kind=kind, how=how, allowed=allowed) if allowed
                            else Message("merge.kind_none", run=run_dir.name, kind=kind or "non-peft"))
        if config.get("use_dora"):
            problems.append(Message("merge.dora", run=run_dir.name))
    if len(bases) > 1:
        problems.append(Message("merge.bases", bases="; ".join(f"{base}: {', '.join(names)}"
                                                               for base, names in bases.items())))
    kinds = {config.get("peft_type") for *_, config, _ in parents}
    if len(kinds) > 1:
        problems.append(Message("merge.kinds", kinds=", ".join(sorted(map(str, kinds)))))
    if kinds == {FULL} and how != "slerp" and weights is not None and sum(weights) <= 0:
        # mergekit divides by the weights' sum (normalize): at 0 every tensor would be inf or NaN
        problems.append(Message("merge.weights_sum", weights=",".join(f"{w:g}" for w in weights)))
    ranks = {run_dir.name: config.get("r") for run_dir, _, config, _ in parents if config.get("peft_type") == "LORA"}
    if how in SAME_RANK and len(set(ranks.values())) > 1:
        problems.append(Message("merge.rank", how=how, ranks=", ".join(f"{name} r={r}" for name, r in ranks.items())))
    saving = [run_dir.name for run_dir, _, config, _ in parents if config.get("modules_to_save")]
    if len(saving) > 1:
        problems.append(Message("merge.modules_to_save", runs=", ".join(saving)))
    return problems


def _added_tensor_problems(run_dir: Path, method: str, base: str) -> list[str]:
    """A full-weight run whose model has tensors its base lacks (BitFit's added biases): mergekit merges only the
    tensors its architecture table lists and would lose those. Read from the safetensors headers, so it costs no
    loading; a base that is not a local folder (a Hub id) is checked after the merge instead (merge_full)."""
    from engine.core.workspace import resolve_model
    from engine.inference.merge_full import tensor_names

    base_names = tensor_names(Path(resolve_model(base)))
    if not base_names:
        return []
    added = sorted(tensor_names(run_dir / "model") - base_names)
    return [Message("merge.adds_tensors", run=run_dir.name, method=method, count=len(added),
                    names=", ".join(added[:3]))] if added else []


def check(run_list: list[str], how: str, weights: list[float] | None, density: float | None) -> None:
    problems = merge_problems(run_list, how, weights, density)
    if problems:
        raise ConfigError(problems, "the merge")


def merge(run_list: list[str], how: str = "ties", weights: list[float] | None = None, density: float | None = 0.5,
          name: str = "") -> Path:
    """Merge and save as a new run folder; returns it."""
    from engine.core.config import RunConfig

    check(run_list, how, weights, density)
    parents = [runs.resolve_run(r) for r in run_list]
    weights = list(weights) if weights is not None else [1.0 / len(parents)] * len(parents)
    first = RunConfig.load(parents[0] / "config.yaml")
    full_weight = (parents[0] / "model").is_dir()
    recipe = {"how": how, "weights": weights, "density": density if how in NEEDS_DENSITY else None,
              "library": "mergekit" if full_weight else "peft add_weighted_adapter",
              "parents": [p.name for p in parents]}
    first.name = name or f"merge-{how}"
    run_dir = runs.new_run_dir(first.name)  # a run folder like the launcher's (inference sits below training)
    runs.write_atomic(run_dir / "config.yaml", first.to_yaml())
    # this process's pid: a merge killed on the way (a timeout, Ctrl-C) reads as failed, not queued for good
    runs.update_status(run_dir, state=RunState.QUEUED, created_at=time.time(), pid=os.getpid(), error=None,
                       **runs.run_facts(first), merged_from=recipe["parents"], merge=recipe)
    try:
        if full_weight:
            _merge_full_weights(parents, first, how, weights, density, run_dir)
        else:
            _merge_adapters(parents, first, how, weights, density, run_dir)
    except BaseException as error:
        shutil.rmtree(run_dir / STAGING, ignore_errors=True)  # a half-written result can be gigabytes
        runs.update_status(run_dir, state=RunState.FAILED, pid=None, error=str(error) or type(error).__name__,
                           finished_at=time.time())
        raise
    card = {**recipe, "parents": [_parent_card(p) for p in parents], "created_at": time.time()}
    runs.write_json(run_dir / MERGE_CARD, card)
    (run_dir / "train.log").write_text("\n".join(card_lines(run_dir)) + "\n", encoding="utf-8")
    runs.update_status(run_dir, state=RunState.DONE, pid=None, finished_at=time.time())
    return run_dir


def _merge_adapters(parents: list[Path], first, how: str, weights: list[float], density: float | None,
                    run_dir: Path) -> None:
    """peft: every parent's adapter onto one base, add_weighted_adapter, the merged one saved as adapter/."""
    from peft import PeftModel

    from engine.core.models import load_model

    kind = runs.read_json(parents[0] / "adapter" / "adapter_config.json")["peft_type"]
    base = load_model(runs.result_base(parents[0], first), dtype="fp32", trust_remote_code=first.trust_remote_code)
    names = [f"parent{i}" for i in range(len(parents))]
    model = PeftModel.from_pretrained(base, str(parents[0] / "adapter"), adapter_name=names[0])
    for adapter_name, parent in zip(names[1:], parents[1:]):
        model.load_adapter(str(parent / "adapter"), adapter_name=adapter_name)
    if kind == "IA3":
        model.add_weighted_adapter(names, weights, "merged")
    else:
        options = {"density": density} if how in NEEDS_DENSITY else {}
        model.add_weighted_adapter(names, weights, "merged", combination_type=how, **options)
    staging = run_dir / STAGING
    model.save_pretrained(str(staging), selected_adapters=["merged"])
    saved = staging / "merged" if (staging / "merged").is_dir() else staging
    shutil.move(str(saved), str(run_dir / "adapter"))
    shutil.rmtree(staging, ignore_errors=True)
    for item in (parents[0] / "adapter").iterdir():  # the tokenizer and chat template the parents trained with
        if item.is_file() and not item.name.startswith(("adapter_", "README")):
            shutil.copy2(item, run_dir / "adapter" / item.name)
    if (parents[0] / runs.START_FILE).is_file():  # the parents' adapters apply to an earlier run's merged result
        shutil.copy2(parents[0] / runs.START_FILE, run_dir / runs.START_FILE)


def _merge_full_weights(parents: list[Path], first, how: str, weights: list[float], density: float | None,
                        run_dir: Path) -> None:
    """mergekit, as a child process, into a staging folder that becomes model/ only when it is whole."""
    from engine.core.workspace import resolve_model
    from engine.inference.merge_full import merge_weights

    staging = run_dir / STAGING
    merge_weights([p / "model" for p in parents], resolve_model(runs.result_base(parents[0], first)), how, weights,
                  density, staging, run_dir / "mergekit.log")
    staging.rename(run_dir / "model")


def _parent_card(run_dir: Path) -> dict:
    status = runs.read_status(run_dir)
    config = runs.read_json(run_dir / "adapter" / "adapter_config.json", {}) or {}
    return {"run": run_dir.name, "method": status.get("method"), "data_file": status.get("data_file"),
            "model": status.get("model"), "r": config.get("r"), "final_eval_loss": status.get("final_eval_loss")}


def card_lines(run_dir: Path) -> list[str]:
    """What a merged run's card says (the export README and the CLI)."""
    card = runs.read_json(Path(run_dir) / MERGE_CARD)
    if not card:
        return []
    lines = [f"Merged with {card['library']}: how {card['how']}, weights {card['weights']}"
             + (f", density {card['density']}" if card.get("density") is not None else "")]
    lines += [f"- parent {p['run']}: {p['method']} on {p['data_file']} ("
              + (f"r={p['r']}, " if p.get("r") else "") + f"final eval loss {p['final_eval_loss']})"
              for p in card["parents"]]
    return lines


def to_json(run_dir: Path) -> str:
    return json.dumps(runs.read_json(Path(run_dir) / MERGE_CARD), ensure_ascii=False)
