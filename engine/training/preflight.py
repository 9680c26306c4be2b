"""Checks before a run starts, reported together with the config's own problems.

Import-light: reads the model's config.json and its structure (engine/core/structure.py: cached, or
read by `python -m engine model describe` in a child process when this process must not import
torch), the data file and the workspace's disk; never model weights. Every method's own checks
(Method.check: the model's real module names, AdaLoRA's schedule, virtual tokens against the
model's positions, ...) run here. The CLI train path (`load_checked`) and the launcher the UI uses
(`check`) both come here, so `python -m engine train bad.yaml` and the Start button give the same
list of problems before a run folder exists or anything heavy is loaded.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import yaml

from engine.core import describe, optimizers
from engine.core import structure as st
from engine.core.config import DEFAULT_MODEL, ConfigError, RunConfig, apply_overrides
from engine.core.messages import Message
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
    """Checks that need only the raw config (so they run even when other values are invalid): the data file,
    max_seq_len against the model's positions, and the method's own checks on the model's structure."""
    found = []
    raw = raw if isinstance(raw, dict) else {}
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    model = str(raw.get("model") or "")
    found += model_problems(model)
    # a model that is not there has no structure to check the method against
    structure = None if found else _readable_structure(model or DEFAULT_MODEL, bool(raw.get("trust_remote_code")))
    seq_len = _int(train.get("max_seq_len"))
    if model and seq_len:
        config, path = model_config(model)
        limit = structure.max_positions if structure else _int((config or {}).get("max_position_embeddings"))
        if limit and seq_len > limit:
            found.append(Message("config.seq_len_limit", field="train.max_seq_len", value=seq_len, limit=limit,
                                 path=str(path)))
    train_file = str(data.get("train") or "")
    from engine.data.sources import is_hub

    if train_file and not is_hub(train_file) and not data_path(train_file).exists():  # a file or a datasets folder
        found.append(Message("config.data_not_found", field="data.train", path=train_file))
    return found + raw_method_problems(raw, structure)


def _readable_structure(model: str, trust_remote_code: bool) -> st.Structure | None:
    """The model's structure for the raw-config checks, read in a child process when it is not cached: a
    config with problems is reported without this process importing torch."""
    try:
        found = describe.obtain(model, trust_remote_code, in_process=False)
    except (OSError, ValueError):  # reported by method_problems
        return None
    return found if found is not None and not found.unmappable else None


def raw_method_problems(raw: dict, structure: st.Structure | None) -> list[str]:
    """The method's checks against the model (module names, biases, ...) on a raw config whose other values
    may be invalid, so that they are reported together with the config's own problems (best effort)."""
    from engine.core.registry import check_params
    from engine.methods import METHODS

    section = raw.get("method")
    section = {"name": section} if isinstance(section, str) else section if isinstance(section, dict) else {}
    name = str(section.get("name") or "lora")
    if structure is None or name not in METHODS:
        return []
    method = METHODS.get(name)
    params, _ = check_params(method.params, {k: v for k, v in section.items() if k != "name"}, "method")
    try:
        return method.check(params, None, structure)
    except Exception:  # values of the wrong type: the schema reports them
        return []


def data_path(train: str) -> Path:
    path = Path(train).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path  # presets name their sample data relative to the project


def checkpoint_bytes(cfg: RunConfig) -> int | None:
    """Disk one checkpoint takes: trainable weights (fp32) + optimizer state + tokenizer files."""
    from engine.methods import METHODS

    config, path = model_config(cfg.model)
    structure = st.cached(cfg.model) if config is not None else None
    if structure is None or structure.unmappable:
        return None
    try:
        trainable = METHODS.get(cfg.method.name).count_trainable(structure, cfg.method.params)
    except Exception:  # settings the method's own checks refuse (reported there)
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
        where = getattr(err, "filename", None) or "the runs folder"
        return [f"workspace: cannot write to {where} ({err.strerror or err}); "
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


def planned_steps(train, examples: int) -> int:
    """Optimizer steps transformers' Trainer runs for `examples` training examples (one device)."""
    if train.max_steps > 0:
        return train.max_steps
    batches = math.ceil(examples / train.batch_size)
    per_epoch = max(batches // train.gradient_accumulation + int(batches % train.gradient_accumulation > 0), 1)
    return math.ceil(train.epochs * per_epoch)


def steps_at_most(cfg: RunConfig) -> int | None:
    """The run's number of optimizer steps: max_steps, or (training for epochs) an upper bound from the data
    file's number of records; None when it cannot be known before the data is prepared (replay mixes in an
    earlier run's data). The trainer checks again with the exact count before it loads the model."""
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    if str(cfg.data.replay).strip():
        return None
    from engine.data.loading import iter_records

    try:
        records = sum(1 for _ in iter_records(data_path(cfg.data.train), on_bad=lambda err: None))
    except Exception:  # unreadable data: the data checks report it
        return None
    return planned_steps(cfg.train, records)


def model_structure(cfg: RunConfig) -> tuple[st.Structure | None, list[str]]:
    """The model's structure (None when its config.json is not on disk yet), and a problem if it cannot be read."""
    try:
        return describe.obtain(cfg.model, cfg.trust_remote_code), []
    except (OSError, ValueError) as err:
        return None, [f"model: {err}"]


def method_problems(cfg: RunConfig) -> list[str]:
    """What the method's own checks find with these settings on this model and run (Method.check): a method
    that cannot work on the model, target names the model does not have, a schedule longer than the run, ..."""
    from engine.methods import METHODS

    method = METHODS.get(cfg.method.name)
    structure, found = model_structure(cfg)
    steps = steps_at_most(cfg) if method.needs_steps else None
    return found + method.check(cfg.method.params, cfg.train, structure, steps)


def earlier_run_problems(cfg: RunConfig) -> list[str]:
    """train.start_from and data.replay name earlier runs (or a data file): they must exist and fit this run."""
    from engine.core.runs import earlier_run, resolve_run

    found = []
    if str(cfg.train.start_from).strip():
        try:
            from engine.methods import METHODS
            from engine.training.continual import start_plan

            start_plan(cfg, METHODS.get(cfg.method.name))
        except (OSError, ValueError) as err:
            text = str(err)
            found.append(text if text.startswith("train.start_from") else f"train.start_from: {text}")
    replay = str(cfg.data.replay).strip()
    if replay:
        source = resolve_run(replay)
        if source.is_dir():
            try:
                earlier_run(source)
            except (OSError, ValueError) as err:
                found.append(f"data.replay: {err}")
        elif not data_path(replay).is_file():
            found.append(f"data.replay: {replay} not found; give an earlier run folder (runs/<id>) or a data file")
    return found


def objective_problems(cfg: RunConfig) -> list[str]:
    """Data of the wrong kind for train.objective (preference pairs for sft, instructions for dpo, ...), read
    from the first record only, and trackers that are not installed."""
    from engine.core.objectives import for_config
    from engine.data.formats import FORMATS, detect
    from engine.data.pairwise import kind_mismatch
    from engine.training import trackers

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
        else:
            found += objective.check_record(cfg, record)  # e.g. the reference columns GRPO's rewards read
    return found


def preflight(cfg: RunConfig) -> list[str]:
    """Every problem found before a run starts (empty list: good to go)."""
    from engine.training.launch_checks import launch_problems

    found = (static_problems(cfg.to_dict()) + earlier_run_problems(cfg) + method_problems(cfg)
             + objective_problems(cfg) + launch_problems(cfg) + disk_problems(cfg))
    return list(dict.fromkeys(found))  # the method's checks run on the raw config and on the resolved one


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
