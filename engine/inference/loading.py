"""Load what a run produced (base + adapter, merged where the method allows) for chat, export, eval."""
from __future__ import annotations

from pathlib import Path

from engine.core.config import RunConfig
from engine.core.messages import Message
from engine.core.runs import result_base, result_dir
from engine.methods import METHODS


def load_result(run_dir: Path, merge: bool = True, dtype: str = "fp32", progress=None):
    """(model, tokenizer, note) for a finished run; `note` says how the model is served.
    `progress(phase)` hears of each step (loading base, loading adapter, merging), for exports that show it."""
    from engine.core.models import load_model, load_tokenizer

    progress = progress or (lambda phase: None)
    cfg = RunConfig.load(Path(run_dir) / "config.yaml")
    method = METHODS.get(cfg.method.name)
    folder = result_dir(run_dir)
    tokenizer = load_tokenizer(str(folder), cfg.trust_remote_code)
    progress("loading base")
    if folder.name == "model":
        full = load_model(str(folder), dtype=dtype, trust_remote_code=cfg.trust_remote_code)
        return full, tokenizer, Message("load.full")
    # the base this adapter was trained on: the merged earlier run when it started from one
    base = load_model(result_base(run_dir, cfg), dtype=dtype, trust_remote_code=cfg.trust_remote_code)
    progress("loading adapter")
    if method.load_adapter is not None:
        model = method.load_adapter(base, folder)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(base, str(folder))
    if merge and method.mergeable:
        progress("merging")
        return model.merge_and_unload(), tokenizer, Message("load.merged")
    reason = method.not_mergeable_reason or Message("load.adapter")
    return model, tokenizer, reason


def load_base(model: str, trust_remote_code: bool = False, dtype: str = "fp32"):
    from engine.core.models import load_model, load_tokenizer

    return load_model(model, dtype=dtype, trust_remote_code=trust_remote_code), \
        load_tokenizer(model, trust_remote_code), Message("load.base")
