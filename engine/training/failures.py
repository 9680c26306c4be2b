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
import shutil
import time

from engine.core import runs
from engine.core.errors import UserError
from engine.core.messages import Message, as_dict

FAULT_ENV = "TUNELOOM_FAULT"
GENERIC_OOM_ADVICE = [Message(code) for code in ("advice.halve_batch", "advice.lower_seq_len", "advice.checkpointing",
                                                  "advice.half_precision", "advice.smaller_adapter")]


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


# torch.save's zip writer reports a short write without its errno ("[enforce fail at inline_container.cc:...]
# unexpected pos 101312 vs 101204", seen when a tmpfs filled during a checkpoint): read as a full disk only when the
# run folder's disk has less than this left
NEARLY_FULL_BYTES = 64 * 2**20


def is_disk_full(err: BaseException, folder=None) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err).lower()  # torch.save reports a failed write as a RuntimeError
    if "no space left" in text or ("file write failed" in text and isinstance(err, RuntimeError)):
        return True
    if isinstance(err, RuntimeError) and "inline_container" in text and folder is not None:
        try:
            return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
        except OSError:
            return False
    return False


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
    """The status.json fields for a failed run: {'error': sentence, 'error_i18n': its code, 'failure': {...}}.
    `device`: the one the run trained on (cpu | cuda); the advice and its estimate are for it and the precision it
    resolved."""
    at = Message("run.at_step", step=step) if step else ""
    if is_oom(err):
        advice, estimate = oom_advice(cfg, device) if cfg is not None else (list(GENERIC_OOM_ADVICE), None)
        settings, facts = "", {}
        if cfg is not None:
            from engine.estimate.components import precision_for

            t = cfg.train
            precision = precision_for(cfg, device)  # what `auto` became on this device (engine/core/precision.py)
            named = t.precision if precision == t.precision else f"{t.precision} ({precision})"
            settings = Message("run.oom_settings", device=device, batch_size=t.batch_size, max_seq_len=t.max_seq_len,
                               precision=named, checkpointing="on" if t.gradient_checkpointing else "off")
            facts = {"device": device, "precision": precision}
        error = Message("run.out_of_memory", at=at, settings=settings, advice=advice[0],
                        detail=f"{type(err).__name__}: {err}")
        return {**runs.error_fields(error), "failure": {"kind": "out_of_memory", **_advice(advice),
                                                        "estimate": estimate, **facts}}
    if is_disk_full(err, run_dir):
        where = Message("run.disk_where", folder=str(run_dir)) if run_dir else ""
        error = Message("run.disk_full", where=where, at=at, detail=str(err))
        advice = [Message(code) for code in ("advice.free_disk", "advice.fewer_checkpoints", "advice.resume")]
        return {**runs.error_fields(error), "failure": {"kind": "disk_full", **_advice(advice)}}
    if isinstance(err, KeyboardInterrupt):
        return {**runs.error_fields(Message("run.interrupted")), "failure": {"kind": "interrupted", "advice": []}}
    if isinstance(err, UserError) and err.args and isinstance(err.args[0], Message):  # worded already (a reward's)
        return {**runs.error_fields(err.args[0]), "failure": {"kind": "error", "advice": []}}
    return {**runs.error_fields(Message("run.error", type=type(err).__name__, detail=str(err))),
            "failure": {"kind": "error", "advice": []}}


def _advice(advice: list) -> dict:
    """The advice lines in English, and with their codes for the page's language."""
    return {"advice": [str(a) for a in advice], "advice_i18n": [as_dict(a) for a in advice]}
