"""Checks before a run starts, reported together with the config's own problems.

Import-light: reads the model's config.json, the data file's existence and the workspace's
disk; never torch or model weights. The CLI train path (`load_checked`) and the launcher the UI
uses (`check`) both come here, so `python -m engine train bad.yaml` and the Start button give
the same list of problems before anything heavy is loaded.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import yaml

from engine.core import optimizers
from engine.core.config import ConfigError, RunConfig, apply_overrides
from engine.core.model_source import model_config_path, model_problems
from engine.core.workspace import PROJECT_ROOT, runs_dir

SPACE_MARGIN_BYTES = 8 * 2**20  # config, logs, metrics, trainer state


def model_config(model: str) -> tuple[dict | None, Path | None]:
    """The model's config.json as a dict, when it is on disk (an unprepared alias, or a Hub id not in the
    cache: None)."""
    path = model_config_path(model)
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except (AttributeError, OSError, ValueError):
        return None, None


def _int(value) -> int | None:
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def static_problems(raw: dict) -> list[str]:
    """Checks that need only the raw config (so they run even when other values are invalid)."""
    found = []
    raw = raw if isinstance(raw, dict) else {}
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    model = str(raw.get("model") or "")
    found += model_problems(model)
    seq_len = _int(train.get("max_seq_len"))
    if model and seq_len:
        config, path = model_config(model)
        limit = _int((config or {}).get("max_position_embeddings"))
        if limit and seq_len > limit:
            found.append(f"train.max_seq_len: {seq_len} is above this model's limit of {limit} tokens "
                         f"(max_position_embeddings in {path}); use {limit} or less")
    train_file = str(data.get("train") or "")
    from engine.data.sources import is_hub

    if train_file and not is_hub(train_file) and not data_path(train_file).exists():  # a file or a datasets folder
        found.append(f"data.train: {train_file} not found; upload the file again or fix the path")
    return found


def data_path(train: str) -> Path:
    path = Path(train).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path  # presets name their sample data relative to the project


def checkpoint_bytes(cfg: RunConfig) -> int | None:
    """Disk one checkpoint takes: trainable weights (fp32) + optimizer state + tokenizer files."""
    from engine.core.arch import Arch
    from engine.methods import METHODS

    config, path = model_config(cfg.model)
    if config is None:
        return None
    try:
        arch = Arch.from_config(config)
        trainable = METHODS.get(cfg.method.name).count_trainable(arch, cfg.method.params)
    except Exception:  # an unusual config.json: the trainer will say what is wrong with it
        return None
    tokenizer = sum(p.stat().st_size for p in path.parent.glob("*token*") if p.is_file())
    tokenizer += sum(p.stat().st_size for p in path.parent.glob("*.jinja") if p.is_file())
    return int(trainable * (4 + optimizers.state_bytes(cfg.train.optimizer, 4))) + tokenizer


def disk_problems(cfg: RunConfig) -> list[str]:
    """Is the workspace writable, and is there room for the checkpoints and the result?"""
    try:
        folder = runs_dir()
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-") as handle:
            handle.write(b"x")
            handle.flush()
    except OSError as err:
        return [f"workspace: cannot write to {getattr(err, 'filename', None) or 'the runs folder'} ({err.strerror or err}); "
                "set TUNELOOM_HOME to a writable folder or fix its permissions"]
    per_checkpoint = checkpoint_bytes(cfg)
    if per_checkpoint is None:
        return []
    checkpoints = cfg.train.save_total_limit if cfg.train.save_steps > 0 else 0
    needed = per_checkpoint * (checkpoints + 1) + SPACE_MARGIN_BYTES  # + 1: the saved result
    free = shutil.disk_usage(folder).free
    if free < needed:
        return [f"workspace: {free / 2**20:,.1f} MB free in {folder}, but this run needs about "
                f"{needed / 2**20:,.1f} MB ({checkpoints} checkpoint(s) of {per_checkpoint / 2**20:,.1f} MB "
                "and the result); free some space, lower train.save_total_limit, or set TUNELOOM_HOME "
                "to a bigger disk"]
    return []


def method_problems(cfg: RunConfig) -> list[str]:
    """A method that cannot work on this architecture (BitFit on a model without biases), from config.json,
    or with the chosen settings (gradient checkpointing with a prefix method)."""
    from engine.core.arch import Arch
    from engine.methods import METHODS

    method = METHODS.get(cfg.method.name)
    if cfg.train.gradient_checkpointing and method.no_checkpointing_reason:
        return [f"train.gradient_checkpointing: {cfg.method.name} cannot train with gradient checkpointing: "
                f"{method.no_checkpointing_reason}. Turn gradient checkpointing off, or pick LoRA or prompt "
                "tuning to save memory"]
    config, _ = model_config(cfg.model)
    if config is None:
        return []
    try:
        reason = METHODS.get(cfg.method.name).unavailable(Arch.from_config(config))
    except ValueError:
        return []  # an unusual config.json: the trainer will say what is wrong with it
    return [f"method.name: {cfg.method.name} cannot train {cfg.model}: {reason}"] if reason else []


def objective_problems(cfg: RunConfig) -> list[str]:
    """Data of the wrong kind for train.objective (preference pairs for sft, instructions for dpo, ...), read
    from the first record only, and trackers that are not installed."""
    from engine.data.formats import FORMATS, detect
    from engine.data.pairwise import kind_mismatch
    from engine.training import trackers
    from engine.training.objectives import for_config

    found = trackers.missing(cfg)
    objective = for_config(cfg)
    from engine.data.sources import is_hub

    if is_hub(cfg.data.train):
        return found  # read by the trainer (a download is no pre-run check)
    try:
        from engine.data.loading import iter_records

        _, record = next(iter(iter_records(data_path(cfg.data.train), split=cfg.data.split)))
    except Exception:  # no file, a bad file: reported by the other checks and the data loader with file/line
        return found
    record = {cfg.data.columns.get(k, k): v for k, v in record.items()}
    fmt = cfg.data.format if cfg.data.format != "auto" else detect(record)
    if fmt in FORMATS:
        why = kind_mismatch(FORMATS.get(fmt).kind, objective.data_kind, objective.key, Path(cfg.data.train).name)
        if why:
            found.append(f"train.objective: {why}")
    return found


def preflight(cfg: RunConfig) -> list[str]:
    """Every problem found before a run starts (empty list: good to go)."""
    return static_problems(cfg.to_dict()) + method_problems(cfg) + objective_problems(cfg) + disk_problems(cfg)


def check(cfg: RunConfig, source: str = "config") -> RunConfig:
    problems = preflight(cfg)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load_checked(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """RunConfig.load + preflight, with the config's problems and the preflight's in one error."""
    try:
        cfg = RunConfig.load(path, overrides)
    except ConfigError as err:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            apply_overrides(raw, overrides or [])
            extra = [p for p in static_problems(raw) if p not in err.problems]
        except Exception:
            extra = []
        if extra:
            raise ConfigError(err.problems + extra, str(path)) from None
        raise
    return check(cfg, str(path))
