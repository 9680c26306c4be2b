"""Why a run failed, in words a user can act on; and the fault-injection hooks that test it.

`explain(err, cfg, step, run_dir, device)` turns an exception from the trainer into the fields recorded in
status.json: `error` (one readable sentence) and `failure` ({kind, advice, estimate}) that the
UI shows. Import-light: torch errors are recognised by name, never by importing torch.

Fault injection (documented, real code paths; used by tests and for trying the UI's error
display): the environment variable TUNELOOM_FAULT holds comma-separated `kind:step` items,
read in one place (`at_step`, called by the trainer after every optimizer step):
  oom_at_step:N        raise torch.OutOfMemoryError after step N (as a too-large batch would)
  disk_full_at_step:N  raise OSError(ENOSPC) after step N (as a full disk while saving would)
  hang_at_step:N       stop responding after step N (sleep, ignoring STOP and SIGTERM), to test
                       that a stuck trainer is killed after the grace period and that a run
                       killed mid-way resumes from its last checkpoint
  wait_at_step:N       pause after step N until a stop is requested (STOP file or SIGTERM), so a test
                       stops a run at a known step
"""
from __future__ import annotations

import errno
import os
import time

FAULT_ENV = "TUNELOOM_FAULT"
GENERIC_OOM_ADVICE = [
    "halve train.batch_size and double train.gradient_accumulation (same effective batch)",
    "lower train.max_seq_len (long examples dominate activation memory)",
    "turn on train.gradient_checkpointing (less activation memory, about 30% slower)",
    "use precision bf16 or fp16 on a GPU instead of fp32",
    "use a smaller LoRA rank, fewer target modules, or QLoRA (4-bit base weights)",
]


def faults() -> dict[str, int]:
    """The faults requested in TUNELOOM_FAULT, as {kind: step}."""
    found = {}
    for item in os.environ.get(FAULT_ENV, "").split(","):
        kind, _, step = item.strip().partition(":")
        if kind and step.strip().isdigit():
            found[kind] = int(step)
    return found


def at_step(step: int, stop_requested=lambda: False) -> None:
    """The one place injected faults fire (the trainer calls it at the end of each step)."""
    requested = faults()
    if requested.get("wait_at_step") == step:
        while not stop_requested():
            time.sleep(0.05)
    if requested.get("oom_at_step") == step:
        import torch

        raise torch.OutOfMemoryError(f"out of memory (injected by {FAULT_ENV}=oom_at_step:{step})")
    if requested.get("disk_full_at_step") == step:
        raise OSError(errno.ENOSPC, f"No space left on device (injected by {FAULT_ENV}=disk_full_at_step:{step})")
    if requested.get("hang_at_step") == step:
        while True:  # a stuck trainer: only SIGKILL ends it
            time.sleep(3600)


def is_oom(err: BaseException) -> bool:
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err).lower()  # torch.save reports a failed write as a RuntimeError
    return "no space left" in text or ("file write failed" in text and isinstance(err, RuntimeError))


def oom_advice(cfg, device: str) -> tuple[list[str], dict | None]:
    """Settings that would fit on the device the run trained on (cpu | cuda), and the estimate of the
    settings that failed; generic advice when the estimate cannot be made."""
    from engine.core.device import detect
    from engine.estimate import cheaper_options, estimate

    try:
        options = cheaper_options(cfg, device=detect(device))
        current = estimate(cfg, device=device).to_dict()
    except Exception:  # the estimate is a help, never a second failure
        return list(GENERIC_OOM_ADVICE), None
    return [option["summary"] for option in options] or list(GENERIC_OOM_ADVICE), current


def explain(err: BaseException, cfg=None, step: int | None = None, run_dir=None, device: str = "cpu") -> dict:
    """The status.json fields for a failed run: {'error': sentence, 'failure': {...}}. `device`: the one
    the run trained on (cpu | cuda); the advice and its estimate are for it and the precision it resolved."""
    at = f" at step {step}" if step else ""
    if is_oom(err):
        advice, estimate = oom_advice(cfg, device) if cfg is not None else (list(GENERIC_OOM_ADVICE), None)
        settings, facts = "", {}
        if cfg is not None:
            from engine.estimate.components import precision_for

            t = cfg.train
            precision = precision_for(cfg, device)  # what `auto` became on this device (engine/core/precision.py)
            named = t.precision if precision == t.precision else f"{t.precision} ({precision})"
            settings = (f" on {device} with batch_size {t.batch_size}, max_seq_len {t.max_seq_len}, precision {named}, "
                        f"gradient_checkpointing {'on' if t.gradient_checkpointing else 'off'}")
            facts = {"device": device, "precision": precision}
        return {"error": f"Out of memory{at}{settings}. Try: {advice[0]}. ({type(err).__name__}: {err})",
                "failure": {"kind": "out_of_memory", "advice": advice, "estimate": estimate, **facts}}
    if is_disk_full(err):
        where = f" holding {run_dir}" if run_dir else ""
        return {"error": f"The disk{where} is full (writing a checkpoint or log{at} failed: {err}). Free some space "
                         "or set TUNELOOM_HOME to a bigger disk, then resume the run from its last checkpoint.",
                "failure": {"kind": "disk_full",
                            "advice": ["free disk space (old runs and exports can be deleted)",
                                       "lower train.save_total_limit to keep fewer checkpoints",
                                       "resume the run: it continues from the last complete checkpoint"]}}
    if isinstance(err, KeyboardInterrupt):
        return {"error": "interrupted", "failure": {"kind": "interrupted", "advice": []}}
    return {"error": f"{type(err).__name__}: {err}", "failure": {"kind": "error", "advice": []}}
