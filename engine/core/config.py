"""The one schema of a run: YAML presets, `--set a.b=c` overrides, the UI and the trainer all use it.

`RunConfig.from_dict` fills defaults and collects every problem before raising one
`ConfigError`, so a user sees all mistakes at once and nothing is loaded for a bad config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.core import optimizers
from engine.core.registry import METHODS

DEFAULT_MODEL = "smollm2-135m-instruct"
FORMATS = ("auto", "alpaca", "sharegpt", "messages", "text")
MASKS = ("assistant", "last_assistant", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DISTRIBUTED = ("ddp", "fsdp", "zero2", "zero3")
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)  # engine/core/optimizers.py


class ConfigError(ValueError):
    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        super().__init__(f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class DataConfig:
    train: str = "presets/data/identity.jsonl"
    format: str = "auto"
    validation_split: float = 0.0
    mask: str = "assistant"
    columns: dict = field(default_factory=dict)  # CSV/any: source column -> expected field
    skip_bad_rows: bool = False
    # experience replay (engine/training/continual.py): mix this fraction of an earlier run's training data
    # (a run folder) or of any data file into this run's training examples
    replay: str = ""
    replay_fraction: float = 0.0

    def problems(self) -> list[str]:
        found = []
        if not 0.0 <= self.replay_fraction <= 1.0:
            found.append(f"data.replay_fraction: {self.replay_fraction} must be between 0 and 1 (e.g. 0.25)")
        elif self.replay_fraction > 0 and not str(self.replay).strip():
            found.append("data.replay: give an earlier run folder or a data file to replay, or set replay_fraction to 0")
        elif str(self.replay).strip() and self.replay_fraction == 0:
            found.append("data.replay_fraction: 0 replays nothing; choose a fraction above 0 (e.g. 0.25)")
        if not str(self.train).strip():
            found.append("data.train: no training file given; upload one or pick a sample dataset")
        if self.format not in FORMATS:
            found.append(f"data.format: {self.format!r} is not one of {', '.join(FORMATS)}")
        if not 0.0 <= self.validation_split < 0.9:
            found.append(f"data.validation_split: {self.validation_split} must be at least 0 and below 0.9")
        if self.mask not in MASKS:
            found.append(f"data.mask: {self.mask!r} is not one of {', '.join(MASKS)}")
        if not isinstance(self.columns, dict):
            found.append("data.columns: expected a mapping of file column -> field, e.g. {question: instruction}")
        return found


@dataclass
class TrainConfig:
    max_steps: int = 0  # 0: train for `epochs`
    epochs: float = 1.0
    batch_size: int = 4
    gradient_accumulation: int = 1
    learning_rate: float = 2.0e-4
    max_seq_len: int = 512
    warmup_steps: int = 0
    scheduler: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: str = "auto"
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"
    seed: int = 0
    logging_steps: int = 1
    eval_steps: int = 10
    save_steps: int = 20
    save_total_limit: int = 2
    # speed: pack examples padding-free (block-diagonal attention) and never build full logits
    packing: bool = True
    fused_loss: bool = True
    torch_compile: bool = False  # compile the model (inductor); 4.7x slower on CPU, unmeasured on GPU (README Performance)
    # continual learning (engine/training/continual.py): start from an earlier run's result; EWC penalty
    start_from: str = ""  # a run folder: its result is the starting point of this run
    ewc_lambda: float = 0.0  # > 0: penalise moving the weights the earlier run found important
    ewc_samples: int = 64  # examples used to estimate the diagonal Fisher information
    # more than one process (engine/training/launcher.py): data parallel through `accelerate launch`
    num_processes: int = 1
    distributed: str = "ddp"  # ddp | fsdp | zero2 | zero3 (DeepSpeed)
    accelerate_config: str = ""  # an `accelerate config` file, e.g. for several machines

    def problems(self) -> list[str]:
        found = []
        positive = {
            "batch_size": self.batch_size, "gradient_accumulation": self.gradient_accumulation,
            "max_seq_len": self.max_seq_len, "logging_steps": self.logging_steps,
            "save_total_limit": self.save_total_limit,
        }
        found += [f"train.{k}: {v} must be at least 1" for k, v in positive.items() if v < 1]
        non_negative = {"max_steps": self.max_steps, "warmup_steps": self.warmup_steps,
                        "eval_steps": self.eval_steps, "save_steps": self.save_steps}
        found += [f"train.{k}: {v} must not be negative" for k, v in non_negative.items() if v < 0]
        if self.ewc_lambda < 0:
            found.append(f"train.ewc_lambda: {self.ewc_lambda} must not be negative (0 turns EWC off)")
        if self.ewc_lambda > 0 and self.ewc_samples < 1:
            found.append(f"train.ewc_samples: {self.ewc_samples} must be at least 1 when ewc_lambda is above 0")
        if self.num_processes < 1:
            found.append(f"train.num_processes: {self.num_processes} must be at least 1")
        if self.distributed not in DISTRIBUTED:
            found.append(f"train.distributed: {self.distributed!r} is not one of {', '.join(DISTRIBUTED)}")
        if self.max_steps == 0 and self.epochs <= 0:
            found.append("train.epochs: must be above 0 when max_steps is 0")
        if not self.learning_rate > 0:
            found.append(f"train.learning_rate: {self.learning_rate} must be above 0 (typical: 1e-5 to 5e-4)")
        if self.weight_decay < 0:
            found.append(f"train.weight_decay: {self.weight_decay} must not be negative")
        if self.max_grad_norm < 0:
            found.append(f"train.max_grad_norm: {self.max_grad_norm} must not be negative (0 turns clipping off)")
        for key, value, allowed in (("precision", self.precision, PRECISIONS),
                                    ("scheduler", self.scheduler, SCHEDULERS),
                                    ("optimizer", self.optimizer, OPTIMIZERS)):
            if value not in allowed:
                found.append(f"train.{key}: {value!r} is not one of {', '.join(allowed)}")
        return found


@dataclass
class DistillConfig:
    """Knowledge distillation (engine/training/distill.py): learn from a teacher's token distributions."""
    teacher: str = ""  # a local model folder, a Hub id or an earlier run folder; empty: off
    alpha: float = 0.5  # weight of the KL to the teacher; 1 - alpha weighs the usual loss on the labels
    temperature: float = 2.0

    def problems(self) -> list[str]:
        found = []
        if not 0.0 <= self.alpha <= 1.0:
            found.append(f"distill.alpha: {self.alpha} must be between 0 and 1 (0.5 mixes both losses equally)")
        if not self.temperature > 0:
            found.append(f"distill.temperature: {self.temperature} must be above 0 (typical: 1 to 4)")
        return found


@dataclass
class MethodConfig:
    name: str = "lora"
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.params}


@dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    name: str = ""
    trust_remote_code: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict | None, source: str = "config") -> "RunConfig":
        raw = dict(raw or {})
        problems: list[str] = []
        known = {f.name for f in dataclasses.fields(cls)}
        problems += [f"{k}: unknown key (known: {', '.join(sorted(known))})" for k in raw if k not in known]

        data = _section(DataConfig, raw.get("data"), "data", problems)
        train = _section(TrainConfig, raw.get("train"), "train", problems)
        method = _method(raw.get("method"), problems)
        distill = _section(DistillConfig, raw.get("distill"), "distill", problems)
        cfg = cls(
            model=str(raw.get("model", DEFAULT_MODEL) or ""), name=str(raw.get("name", "") or ""),
            trust_remote_code=bool(raw.get("trust_remote_code", False)),
            data=data, method=method, train=train, distill=distill,
        )
        if not cfg.model.strip():
            problems.append("model: empty; give an alias, a local folder or a Hub id")
        problems += data.problems() + train.problems() + distill.problems()
        if problems:
            raise ConfigError(problems, source)
        return cfg

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> "RunConfig":
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError([f"not valid YAML: {err}"], str(path)) from None
        if not isinstance(raw, dict):
            raise ConfigError(["expected a mapping at the top level (model:, data:, method:, train:)"], str(path))
        apply_overrides(raw, overrides or [])
        return cls.from_dict(raw, str(path))

    # ---- output -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "model": self.model, "name": self.name, "trust_remote_code": self.trust_remote_code,
            "data": dataclasses.asdict(self.data), "method": self.method.to_dict(),
            "train": dataclasses.asdict(self.train), "distill": dataclasses.asdict(self.distill),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _section(kind, raw: Any, where: str, problems: list[str]):
    raw = raw or {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return kind()
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            problems.append(f"{where}.{key}: unknown key (known: {', '.join(fields)})")
            continue
        default = fields[key].default if fields[key].default is not dataclasses.MISSING else None
        try:
            values[key] = _coerce(value, default)
        except ValueError as err:
            problems.append(f"{where}.{key}: {err}")
    return kind(**values)


def _coerce(value: Any, default: Any) -> Any:
    """Coerce to the type of the field's default (YAML and the CLI give strings or numbers)."""
    if default is None or isinstance(value, type(default)) and not isinstance(value, bool) or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(default, str):
        return str(value)
    return value


def _method(raw: Any, problems: list[str]) -> MethodConfig:
    from engine.core.registry import check_params

    raw = {"name": raw} if isinstance(raw, str) else dict(raw or {})
    name = str(raw.pop("name", "lora"))
    if name not in METHODS:
        problems.append(f"method.name: unknown method {name!r}; choose one of: {', '.join(METHODS)}")
        return MethodConfig(name=name, params=raw)
    params, found = check_params(METHODS.get(name).params, raw, "method")
    problems += found
    return MethodConfig(name=name, params=params)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `a.b=value` overrides in place; values are parsed as YAML scalars (1e-4, true, [a, b])."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. train.learning_rate=1e-4"])
        value = yaml.safe_load(text) if text.strip() else ""
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if part == "method" and isinstance(node.get(part), str):
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"--set {item!r}: {part} is not a section"])
        node[parts[-1]] = value
    return raw
