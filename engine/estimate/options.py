"""What the estimate means for a device: a verdict, the cheapest changes that would fit, and the
panel data the Train tab shows. Pure apart from detecting the device; import-light.
"""
from __future__ import annotations

import json

from engine.core.device import cpu_native_half
from engine.core.messages import Message
from engine.estimate.components import GiB
from engine.estimate.memory import COMPONENTS, StructurePending, estimate, structure_for_config
from engine.estimate.memory import label as component_label

TIGHT_FRACTION = 0.90  # above 90% of what is available: may fit, but little headroom


def _available(device) -> int | None:
    if device is None:
        return None
    if isinstance(device, (int, float)):
        return int(device)
    return device.get("available_bytes") or device.get("free_bytes") or device.get("total_bytes")


def verdict(estimate_bytes: int, device) -> str:
    """'fits', 'tight' or 'does not fit' for `device` (a detect() dict or a byte count)."""
    available = _available(device)
    if not available:
        return "unknown"
    if estimate_bytes <= TIGHT_FRACTION * available:
        return "fits"
    if estimate_bytes <= available:
        return "tight"
    return "does not fit"


def _with(cfg, overrides: dict):
    from engine.core.config import RunConfig, apply_overrides

    raw = cfg.to_dict()
    apply_overrides(raw, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    return RunConfig.from_dict(raw)


def cheaper_options(structure, cfg=None, device=None, limit: int = 5, **kwargs) -> list[dict]:
    """The cheapest changes that would fit: [{label, overrides ({'train.x': v}), bytes, fits}].

    Overrides are `--set`-style keys; a method switch replaces the whole `method` section. Sorted
    by how little they change (fewer keys, then bytes). `cheaper_options(cfg)` also works.
    """
    if cfg is None:
        cfg, structure = structure, structure_for_config(structure)
    if device is None:
        from engine.core.device import detect

        device = detect()
    elif isinstance(device, str):
        device = {"kind": device}
    kind = device.get("kind", "cpu")
    available = _available(device)
    t = cfg.train
    current = estimate(structure, cfg, device=kind, **kwargs).total_bytes
    candidates: list[tuple[str, dict]] = []
    from engine.methods import METHODS

    # checkpointing is offered only where the method can use it (not the prefix methods)
    can_checkpoint = not t.gradient_checkpointing and not METHODS.get(cfg.method.name).no_checkpointing_reason
    if can_checkpoint:
        candidates.append((Message("option.checkpointing"), {"train.gradient_checkpointing": True}))
    b = t.batch_size
    while b > 1:
        b //= 2
        ga_new = max(1, (t.batch_size * t.gradient_accumulation) // b)
        candidates.append((Message("option.batch", batch=b, accumulation=ga_new),
                           {"train.batch_size": b, "train.gradient_accumulation": ga_new}))
        if can_checkpoint:
            candidates.append((Message("option.checkpointing_batch", batch=b, accumulation=ga_new),
                               {"train.gradient_checkpointing": True, "train.batch_size": b,
                                "train.gradient_accumulation": ga_new}))
    seq = t.max_seq_len
    while seq > 128:
        seq //= 2
        candidates.append((Message("option.seq_len", max_seq_len=seq),
                           {"train.max_seq_len": seq}))
    if t.precision != "bf16_pure" and (kind == "cuda" or cpu_native_half("bf16")):
        # no fp32 master weights, gradients or states: half the memory of full fine-tuning (not offered
        # on CPUs without native bf16, where it is two orders of magnitude slower)
        candidates.append((Message("option.bf16_pure"),
                           {"train.precision": "bf16_pure"}))
    if kind == "cuda":
        if t.precision == "fp32":
            candidates.append((Message("option.bf16"), {"train.precision": "bf16"}))
        if t.optimizer == "adamw":
            candidates.append((Message("option.adamw_8bit"), {"train.optimizer": "adamw_8bit"}))
        candidates += _quantised_method_options(cfg)
    found = []
    for label, overrides in candidates:
        try:
            new = _with(cfg, overrides)
            est = estimate(structure, new, device=kind, **kwargs).total_bytes
        except Exception:
            continue
        if est >= current:
            continue
        fits = available is None or est <= TIGHT_FRACTION * available
        found.append({"label": label, "overrides": overrides, "bytes": int(est), "fits": bool(fits),
                      "summary": Message("option.summary", label=label, gib=est / GiB)})
    fitting = [o for o in found if o["fits"]]
    pool = fitting or sorted(found, key=lambda o: o["bytes"])[:limit]
    pool.sort(key=lambda o: (len(o["overrides"]), o["bytes"]))
    return pool[:limit]


def _quantised_method_options(cfg) -> list[tuple[str, dict]]:
    """Switch to a registered method that loads the base model in 4 bits (e.g. QLoRA), carrying over
    the parameters it shares with the current method."""
    from engine.methods import METHODS

    current = METHODS.get(cfg.method.name)
    if current.quantize({**current.defaults(), **cfg.method.params}) == "4bit":
        return []
    out = []
    for key, method in METHODS.items():
        try:
            if method.quantize(method.defaults()) != "4bit":
                continue
        except Exception:
            continue
        declared = {p.name for p in method.params}
        section = {"name": key, **{k: v for k, v in cfg.method.params.items() if k in declared}}
        out.append((Message("option.quantised", method=method.title),
                    {"method": section, "train.gradient_checkpointing": True}))
    return out


# ---- what the UI shows ---------------------------------------------------------------------------
def ui_summary(cfg_dict: dict, device_info: dict | None = None, **kwargs) -> dict:
    """Everything the Train tab's memory panel needs, as plain JSON-able data (import-light).

    Returns {ok, error, total_bytes, peak_bytes, components: [{key, label, bytes}], phase,
    trainable_params, total_params, device: {...}, available_bytes, verdict, options: [...], notes,
    text}. `ok` is False (with `error`) when the config is invalid or config.json is missing, and
    `pending` is True (no numbers) while the model's structure is still being read in a child process
    (engine/core/structure.py): never an estimate of an assumed shape.
    """
    from engine.core.config import ConfigError, RunConfig
    from engine.methods import METHODS

    if device_info is None:
        from engine.core.device import detect

        device_info = detect()
    kind = device_info.get("kind", "cpu")
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        structure = structure_for_config(cfg)
        problems = METHODS.get(cfg.method.name).check(cfg.method.params, cfg.train, structure)
        if problems:
            raise ConfigError(problems, "settings")
        est = estimate(structure, cfg, device=kind, **kwargs)
    except StructurePending as err:
        return {"ok": False, "pending": True, "model": cfg.model, "error": str(err), "device": device_info,
                "components": [], "options": []}
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as err:  # a catalogue message where it has one
        error = err.args[0] if err.args and isinstance(err.args[0], Message) else str(err)
        return {"ok": False, "error": error, "device": device_info, "components": [], "options": []}
    available = _available(device_info)
    v = verdict(est.total_bytes, device_info)
    options = cheaper_options(structure, cfg, device_info, **kwargs) if v != "fits" else []
    return {
        "ok": True, "error": None, "total_bytes": est.total_bytes, "peak_bytes": est.peak_bytes,
        "components": [{"key": k, "label": component_label(k, kind), "bytes": est.components[k]}
                       for k, _ in COMPONENTS],
        "phase": est.phase, "trainable_params": est.trainable_params, "total_params": est.total_params,
        "device": device_info, "available_bytes": available, "verdict": v, "options": options,
        "notes": est.notes, "structure": structure.summary(), "details": est.details,
        "text": (f"about {est.total_bytes / GiB:.2f} GiB of "
                 f"{(available or 0) / GiB:.1f} GiB available on {device_info.get('name', kind)}: {v}"),
    }
