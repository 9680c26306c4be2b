"""The base model's eval loss on the run's held-out examples: the line a supervised run has to get below.

Measured once per model and held-out data (cached in the workspace: the same examples, tokens and model give the
same number), before the first step, with the trainer's own evaluation loop, so it is the same loss on the same
batches as the run's eval_loss. The model evaluated is the base: a peft model with its adapter disabled (prefix
and prompt tuning start with random virtual tokens); every other method starts as the base (LoRA's B, IA3's
scales, the bottleneck adapters' up projections start so that they add nothing; full, freeze and BitFit train
the base weights themselves).

Written in status.json (`base_eval_loss`); the Train tab draws it across the loss plot, and a run whose final eval
loss ends above it is told so (`worse_than_base`).
"""
from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path

from engine.core import runs
from engine.core.messages import Message, as_dict
from engine.core.workspace import resolve_model, subdir

CACHE_VERSION = 2  # 2: the key names the base's quantisation (version 1 gave QLoRA's 4-bit loss to every method)


def quantisation(cfg) -> str:
    """How the method loads the base: QLoRA's 4-bit and 8-bit LoRA's int8 base are other models than the base
    in its own dtype, with other losses."""
    from engine.methods import METHODS

    method = METHODS.get(cfg.method.name)
    bits = method.quantize(cfg.method.params)
    return f"{bits} {sorted(method.quantize_options(cfg.method.params).items())}" if bits else "none"


def cache_key(cfg, precision: str, validation: list) -> str:
    """The model (its name, and its weight files' sizes and times where it is a folder here: a folder trained
    over in place is another model), its quantisation and precision and the held-out tokens and labels exactly
    as evaluated."""
    folder = Path(resolve_model(cfg.model))
    weights = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.glob("*.safetensors")) \
        if folder.is_dir() else []
    digest = hashlib.sha256(f"{CACHE_VERSION}|{cfg.model}|{weights}|{quantisation(cfg)}|{precision}|"
                            f"{cfg.train.max_seq_len}".encode())
    for example in validation:
        digest.update(json.dumps([list(example.input_ids), list(example.labels)]).encode())
    return digest.hexdigest()[:32]


def measure(setup, log) -> float | None:
    """The base's eval loss for this run (None where the objective or the data has none); every process calls
    it (the evaluation loop gathers across processes), the main one records it."""
    if not (setup.objective.supervised and setup.data.validation):
        return None
    cache = subdir("cache") / "base_eval" / f"{cache_key(setup.cfg, setup.precision, setup.data.validation)}.json"
    if cache.is_file():
        loss = json.loads(cache.read_text())["eval_loss"]
        log(f"base model's eval loss {loss:.4f} (measured before, same model and held-out examples)")
    else:
        trainer = setup.trainer
        model = trainer.model
        disabled = model.disable_adapter() if hasattr(model, "disable_adapter") and hasattr(model, "peft_config") \
            else nullcontext()
        with disabled:
            output = trainer.evaluation_loop(trainer.get_eval_dataloader(), "base model", prediction_loss_only=True,
                                             metric_key_prefix="base")
        loss = float(output.metrics["base_loss"])
        if setup.is_main:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"eval_loss": loss, "model": setup.cfg.model}))
        log(f"base model's eval loss {loss:.4f} on the {len(setup.data.validation)} held-out examples")
    if setup.is_main:
        runs.update_status(setup.run_dir, base_eval_loss=loss)
    return loss


def verdict(final_eval_loss: float | None, base_eval_loss: float | None, learning_rate: float,
            losses: list[float] | None = None) -> dict | None:
    """status.json `worse_than_base` for a run whose final eval loss ended above the base's, else None. A run that
    started far above the base (random virtual tokens: P-tuning v2 began at 5.4 against a base of 1.7) and whose
    training loss was still falling (the mean of its last 5 logged losses below that of the 5 before) is told to train
    longer, not to lower its learning rate. `losses` must be the token loss the eval loss is comparable with (None
    for a method whose logged loss adds a regulariser: Method.logged_loss_is_token_loss)."""
    if final_eval_loss is None or base_eval_loss is None or final_eval_loss <= base_eval_loss:
        return None
    losses = losses or []
    last, before = sum(losses[-5:]) / 5, sum(losses[-10:-5]) / 5  # two windows: one step's loss is noisy
    if len(losses) >= 10 and losses[0] > 1.5 * base_eval_loss and last < 0.75 * losses[0] and last < before:
        return as_dict(Message("run.behind_base", final=f"{final_eval_loss:.4f}", base=f"{base_eval_loss:.4f}",
                               first=f"{losses[0]:.2f}", last=f"{last:.2f}"))
    return as_dict(Message("run.worse_than_base", final=f"{final_eval_loss:.4f}", base=f"{base_eval_loss:.4f}",
                           learning_rate=f"{learning_rate:.2g}", lower=f"{learning_rate / 4:.2g}"))
