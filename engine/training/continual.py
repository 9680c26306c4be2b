"""Continual learning: start from an earlier run, Elastic Weight Consolidation (EWC), experience replay.

Start from a run (`train.start_from: RUN_DIR`):
- the earlier result is a full model (full, freeze, ...): that folder is the new base, and this
  run's method applies on top of it;
- the earlier result is an adapter and this run uses the same method with the same settings:
  the SAME adapter is loaded trainable and training continues it (nothing is merged), so EWC
  can anchor exactly the parameters that are trained;
- the earlier result is an adapter and this run uses another method (or other settings): the
  adapter is merged into its base once (cached under the workspace), and the merged weights
  are the new base. EWC is then refused: the new run's parameters are fresh adapter weights
  that have no earlier values to stay near (penalising the effective weight change would need
  the Fisher of every base weight; not done).

EWC (`train.ewc_lambda` > 0; Kirkpatrick et al., 2017): the diagonal (empirical) Fisher
information F_i = E[(d log p(y|x) / d theta_i)^2] of the trained parameters, measured on
`train.ewc_samples` examples of a run's training data at the run's final weights theta*, is
stored with the run in RUN/fisher.safetensors (tensors `fisher.<name>` and `theta.<name>`). A
run that starts from it adds lambda/2 * sum_i F_i (theta_i - theta*_i)^2 to its loss; the log
and metrics.jsonl show `task_loss` and `ewc_penalty` beside `loss`. A run with ewc_lambda > 0
stores its own Fisher when it ends (added to the one it was anchored to: consolidated over the
whole chain of tasks), and an earlier run without a stored Fisher gets one computed on first use.
The per-example gradient is that of the mean token loss of the example, so F is small (about
1e-4 to 1e-2 per weight for LoRA) and useful lambdas are large (1e2 to 1e5).

Replay (`data.replay: RUN_DIR or FILE`, `data.replay_fraction`): that fraction of the earlier
run's training examples (or of the file's examples) is drawn (seeded) and added to this run's
training examples (never to its validation split).
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

from engine.core.runs import START_FILE, earlier_run, resolve_run
from engine.data.dataset import earlier_examples

FISHER_FILE = "fisher.safetensors"


# ---- start from an earlier run ---------------------------------------------------------------
def start_plan(cfg, method) -> dict:
    """How `cfg.train.start_from` is loaded: {"mode", "base", "adapter"} (pure apart from reading configs)."""
    from engine.core.workspace import resolve_model

    earlier, folder = earlier_run(cfg.train.start_from)
    if folder.name == "model":
        return {"mode": "model", "base": str(folder), "adapter": None}
    if resolve_model(earlier.model) != resolve_model(cfg.model):
        raise ValueError(f"train.start_from: {Path(cfg.train.start_from).name} was trained on {earlier.model}, "
                         f"this run uses {cfg.model}; set model: {earlier.model}")
    if earlier.method.to_dict() == cfg.method.to_dict():
        return {"mode": "continue", "base": earlier.model, "adapter": str(folder)}
    from engine.methods import METHODS

    before = METHODS.get(earlier.method.name)
    if not before.mergeable:
        raise ValueError(f"train.start_from: the {before.key} adapter of {Path(cfg.train.start_from).name} cannot be "
                         f"merged into the base ({before.not_mergeable_reason or 'not mergeable'}); continue it with "
                         f"the same method and settings ({earlier.method.to_dict()}) instead")
    return {"mode": "merged", "base": None, "adapter": str(folder)}


def merged_base(run_dir: str | Path, log=print) -> Path:
    """The earlier run's adapter merged into its base, saved once under the workspace cache."""
    from engine.core.workspace import subdir
    from engine.inference.loading import load_result

    run_dir = resolve_run(run_dir)
    earlier, folder = earlier_run(run_dir)
    stamp = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        stamp.update(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    target = subdir("cache") / "merged" / f"{run_dir.name}-{stamp.hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return target
    log(f"merging the adapter of {run_dir.name} into {earlier.model} (once; cached at {target})")
    model, tokenizer, _ = load_result(run_dir, merge=True)
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    import os
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def load_start(cfg, method, precision: str, structure, run_dir: Path | None = None, log=print):
    """The model to train when `train.start_from` is set: the earlier result, with this run's method on it."""
    from engine.core.models import load_model

    plan = start_plan(cfg, method)
    kwargs = dict(quantize=method.quantize(cfg.method.params), dtype=method.load_dtype(precision),
                  trust_remote_code=cfg.trust_remote_code)
    if plan["mode"] == "continue":
        log(f"continuing the {method.key} adapter of {Path(cfg.train.start_from).name} (same method and settings)")
        model = load_model(plan["base"], **kwargs)
        if method.load_adapter is not None:
            model = method.load_adapter(model, Path(plan["adapter"]))
            for name, param in model.named_parameters():
                param.requires_grad = any(k in name for k in ("lora_", "adapter", "prompt", "ia3"))
        else:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, plan["adapter"], is_trainable=True)
    else:
        if plan["mode"] == "merged":
            plan["base"] = str(merged_base(cfg.train.start_from, log))
        log(f"starting from {Path(cfg.train.start_from).name}: base weights {plan['base']}")
        model = method.apply(load_model(plan["base"], **kwargs), cfg.method.params, structure)
    if run_dir is not None:
        from engine.core.runs import write_json

        write_json(Path(run_dir) / START_FILE, {**plan, "start_from": str(resolve_run(cfg.train.start_from))})
    return model


# ---- EWC -------------------------------------------------------------------------------------
def trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def compute_fisher(model, examples, samples: int, seed: int = 0) -> dict:
    """Diagonal empirical Fisher of the trainable parameters: mean over examples of grad(mean token loss)^2."""
    import torch

    params = trainable(model)
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    chosen = list(examples)
    random.Random(seed).shuffle(chosen)
    chosen = chosen[:samples]
    device = next(iter(params.values())).device
    was_training = model.training
    model.eval()  # no dropout: the gradient of the model as it will be used
    with torch.enable_grad():
        for example in chosen:
            model.zero_grad(set_to_none=True)
            ids = torch.tensor([example.input_ids], device=device)
            labels = torch.tensor([example.labels], device=device)
            _example_loss(model, ids, labels).backward()
            for name, param in params.items():
                if param.grad is not None:
                    fisher[name] += param.grad.detach().float() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {n: f / max(1, len(chosen)) for n, f in fisher.items()}


def _example_loss(model, ids, labels):
    """Mean token loss of one example (the chunked loss on trained positions only where the model allows)."""
    from engine.training.fused_loss import token_loss

    summed, count = token_loss(model, ids, labels)
    return summed / count.clamp(min=1)


def save_fisher(path: Path, fisher: dict, theta: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"fisher.{n}": f.contiguous().cpu() for n, f in fisher.items()}
    tensors.update({f"theta.{n}": theta[n].detach().float().contiguous().cpu() for n in fisher})
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    tmp.replace(path)


def load_fisher(path: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    fisher = {k[len("fisher."):]: v for k, v in tensors.items() if k.startswith("fisher.")}
    theta = {k[len("theta."):]: v for k, v in tensors.items() if k.startswith("theta.")}
    return fisher, theta


class EWC:
    """lambda/2 * sum_i F_i (theta_i - theta*_i)^2 over the parameters both runs train."""

    def __init__(self, lam: float, fisher: dict, theta: dict):
        self.lam, self.fisher, self.theta = lam, fisher, theta

    def penalty(self, model):
        import torch

        total = None
        for name, param in trainable(model).items():
            if name not in self.fisher:
                continue
            if self.fisher[name].device != param.device:
                self.fisher[name] = self.fisher[name].to(param.device)
                self.theta[name] = self.theta[name].to(param.device)
            term = (self.fisher[name] * (param.float() - self.theta[name]) ** 2).sum()
            total = term if total is None else total + term
        if total is None:
            return torch.zeros((), device=next(model.parameters()).device)
        return 0.5 * self.lam * total


def ewc_anchor(cfg, model, tokenizer, log=print, is_main: bool = True) -> EWC | None:
    """The EWC penalty of this run against its start_from run (Fisher loaded, or computed and stored).

    Call it before training, on the model as loaded by `load_start` (its trained parameters then
    hold the earlier run's values theta*).
    """
    if cfg.train.ewc_lambda <= 0 or not cfg.train.start_from:
        return None
    from engine.methods import METHODS

    method = METHODS.get(cfg.method.name)
    mode = start_plan(cfg, method)["mode"]
    if mode == "merged" or (mode == "model" and not method.trains_base_weights):
        raise ValueError(
            "train.ewc_lambda: EWC needs this run to train the same parameters as the run it starts from, but "
            f"{method.key} adds new weights on top of the earlier result. Use the same method and settings as "
            "the earlier run (its adapter is then continued), a method that trains the base weights, or turn "
            "EWC off (ewc_lambda: 0) and use replay instead")
    start = resolve_run(cfg.train.start_from)
    params = trainable(model)
    path = start / FISHER_FILE
    fisher = theta = None
    if path.is_file():
        fisher, theta = load_fisher(path)
        if not set(params) <= set(fisher):
            log(f"{path} covers other parameters than this run trains; estimating the Fisher again")
            fisher = None
    if fisher is None:
        earlier, _ = earlier_run(start)
        data = earlier_examples(earlier, tokenizer, cfg.train.max_seq_len)
        log(f"EWC: estimating the Fisher information of {start.name} on {min(len(data), cfg.train.ewc_samples)} "
            "of its training examples")
        fisher = compute_fisher(model, data, cfg.train.ewc_samples, earlier.train.seed)
        theta = {n: p.detach().float().cpu().clone() for n, p in params.items()}
        if is_main:
            save_fisher(path, fisher, theta, {"samples": min(len(data), cfg.train.ewc_samples),
                                              "data": earlier.data.train})
    fisher = {n: f for n, f in fisher.items() if n in params}
    log(f"EWC: lambda {cfg.train.ewc_lambda:g} over {sum(f.numel() for f in fisher.values()):,} parameters "
        f"(mean Fisher {_mean(fisher):.3g})")
    return EWC(cfg.train.ewc_lambda, fisher, {n: theta[n] for n in fisher})


def _mean(fisher: dict) -> float:
    total = sum(float(f.sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    return total / max(1, count)


def finish(cfg, model, data, run_dir: Path, ewc: EWC | None, log=print) -> Path | None:
    """After training with ewc_lambda > 0: store this run's Fisher (plus the one it was anchored to)."""
    if cfg.train.ewc_lambda <= 0:
        return None
    log(f"EWC: estimating the Fisher information of this run on {min(len(data.train), cfg.train.ewc_samples)} "
        "training examples (for runs that start from it)")
    fisher = compute_fisher(model, data.train, cfg.train.ewc_samples, cfg.train.seed)
    if ewc is not None:  # consolidate: the earlier tasks stay protected in runs that start from this one
        for name, f in ewc.fisher.items():
            if name in fisher:
                fisher[name] = fisher[name] + f.to(fisher[name].device)
    params = trainable(model)
    path = Path(run_dir) / FISHER_FILE
    save_fisher(path, fisher, {n: params[n] for n in fisher},
                {"samples": min(len(data.train), cfg.train.ewc_samples), "data": cfg.data.train,
                 "consolidated": ewc is not None})
    return path


# ---- measuring forgetting ----------------------------------------------------------------------
def data_loss(model, examples, batch_size: int = 8) -> float:
    """Mean loss per trained token of `model` on encoded examples (no gradients)."""
    import torch

    from engine.data.masking import IGNORE_INDEX
    from engine.training.fused_loss import token_loss

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            width = max(len(e.input_ids) for e in chunk)
            ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in chunk], device=device)
            labels = torch.tensor([e.labels + [IGNORE_INDEX] * (width - len(e.labels)) for e in chunk],
                                  device=device)
            mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in chunk],
                                device=device)
            summed, n = token_loss(model, ids, labels, mask)
            total, count = total + float(summed), count + int(n)
    model.train(was_training)
    return total / max(1, count)


def run_loss_on(run_dir: str | Path, data_file: str, max_seq_len: int = 512) -> float:
    """Mean token loss of a run's result on a data file (e.g. an earlier task's data: forgetting)."""
    from engine.core.config import DataConfig
    from engine.data.dataset import prepare_dataset
    from engine.inference.loading import load_result

    model, tokenizer, _ = load_result(Path(run_dir), merge=True)
    return data_loss(model, prepare_dataset(DataConfig(train=data_file), tokenizer, max_seq_len).train)
