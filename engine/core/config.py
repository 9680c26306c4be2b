"""The one schema of a run: YAML presets, `--set a.b=c` overrides, the UI and the trainer all use it.

Each setting is declared once, as a dataclass field whose metadata holds everything a user sees of it
(help, label, range, choices): `section_params("train")` turns the fields into `Param`s, which the
UI renders as controls and which coerce and check every value. The defaults here are the only
defaults: the CLI, the API and the page start from them, and a method declares only what it needs
differently (engine/methods: its parameters, `Method.train_defaults` such as its learning rate).

`RunConfig.from_dict` fills defaults and collects every problem before raising one
`ConfigError`, so a user sees all mistakes at once and nothing is loaded for a bad config.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.core import optimizers
from engine.core.errors import UserError
from engine.core.grpo_settings import GrpoConfig
from engine.core.messages import Message, joined, prefixed
from engine.core.registry import FORMATS, METHODS, OBJECTIVES, TEMPLATES, Param, check_params
from engine.core.settings import setting

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_METHOD = "lora"
MASKS = ("assistant", "last_assistant", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "bf16_pure")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DISTRIBUTED = ("ddp", "fsdp", "zero2", "zero3")
DPO_LOSSES = ("sigmoid", "ipo", "hinge")  # TRL's DPOConfig.loss_type values offered here
TRACKERS = ("none", "tensorboard", "mlflow", "tensorboard,mlflow", "wandb")  # transformers' report_to
TYPES = {"int": int, "float": float, "bool": bool, "str": str}
TRUST_REMOTE_CODE = Param("trust_remote_code", bool, False, "Run Python code shipped with the model (only for "
                          "models whose code you have read or trust).")


class ConfigError(UserError):
    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        # the text is a catalogue message whose problems keep their own codes (the UI words each)
        super().__init__(Message("config.problems", source=source, count=len(problems),
                                 problems=joined(problems, "\n  - ")))


@dataclass
class DataConfig:
    train: str = setting("presets/data/identity.jsonl", "The training data: an uploaded file, a sample, a path "
                         "(JSON, JSONL, CSV or Parquet), a `datasets` folder (save_to_disk, Arrow or Parquet "
                         "shards), or a Hub dataset as hub:owner/name.", label="training data")
    split: str = setting("train", "The split to read from a datasets folder or a Hub dataset.")
    subset: str = setting("", "The configuration (subset) of a Hub dataset that has several; empty: its default.")
    format: str = setting("auto", "How records are read: auto-detected, or alpaca, sharegpt, messages, text.",
                          choices=("auto",), registry=FORMATS)
    validation_split: float = setting(0.1, "Share of examples held out to measure eval loss (0 = none).",
                                      min=0.0, max=0.5, label="validation split")
    mask: str = setting("assistant", "Which tokens are trained: every assistant turn, the last one only, or "
                        "everything (none: train on the prompt too).", choices=MASKS)
    template: str = setting("auto", "Chat template: the model's own (auto; ChatML for models without one) or "
                            "a named template.", choices=("auto",), registry=TEMPLATES, label="chat template")
    columns: dict = field(default_factory=dict)  # file column -> expected field (the Data tab's column mapping)
    skip_bad_rows: bool = setting(False, "Skip rows that cannot be read (they are counted and listed) instead "
                                  "of stopping at the first.", label="skip bad rows")
    # experience replay (engine/data/dataset.py): mix this fraction of an earlier run's training data
    # (a run folder) or of any data file into this run's training examples
    replay: str = setting("", "Experience replay: an earlier run (or a data file) whose training data is "
                          "mixed in.", label="replay from")
    replay_fraction: float = setting(0.0, "Share of the replayed data mixed in (0: off).", min=0.0, max=1.0,
                                     label="replay fraction")

    def problems(self) -> list[str]:
        found = []
        if self.replay_fraction > 0 and not str(self.replay).strip():
            found.append(Message("config.replay_missing", field="data.replay"))
        elif str(self.replay).strip() and self.replay_fraction == 0:
            found.append(Message("config.replay_zero", field="data.replay_fraction"))
        if not str(self.train).strip():
            found.append(Message("config.no_train_file", field="data.train"))
        if not isinstance(self.columns, dict):
            found.append("data.columns: expected a mapping of file column -> field, e.g. {question: instruction}")
        return found


@dataclass
class TrainConfig:
    max_steps: int = setting(0, "Optimizer steps to run; 0 trains for the number of epochs below.", min=0,
                             label="max steps")
    epochs: float = setting(1.0, "Passes over the data (used when max steps is 0).", min=0.0)
    batch_size: int = setting(4, "Examples per step; lower it if memory runs out.", min=1, max=4096,
                              label="batch size")
    gradient_accumulation: int = setting(1, "Steps whose gradients are summed before an update: a bigger "
                                         "effective batch without more memory.", min=1, max=4096,
                                         label="gradient accumulation")
    # each method declares the learning rate that suits it (Method.train_defaults); this one suits LoRA
    learning_rate: float = setting(1.0e-3, "Step size: 1e-4 to 1e-3 for adapters, about 1e-5 for full "
                                   "fine-tuning. Each method starts from the rate that suits it.", min=0.0,
                                   label="learning rate")
    max_seq_len: int = setting(256, "Longest example in tokens; longer ones are cut (examples left with nothing "
                               "to learn are dropped and counted).", min=16, label="max sequence length")
    warmup_steps: int = setting(5, "Steps over which the learning rate ramps up from 0.", min=0,
                                label="warmup steps")
    scheduler: str = setting("cosine", "How the learning rate changes after warmup.", choices=SCHEDULERS)
    weight_decay: float = setting(0.0, "Decoupled weight decay (AdamW); 0.01-0.1 regularises full fine-tuning.",
                                  min=0.0, label="weight decay")
    max_grad_norm: float = setting(1.0, "Clip the gradient norm to this value (0: no clipping).", min=0.0,
                                   label="max grad norm")
    precision: str = setting("auto", "auto picks bf16/fp16 on a GPU that supports it, fp32 on CPU. bf16/fp16: "
                             "mixed precision (fp32 master weights). bf16_pure: every weight, gradient and "
                             "optimizer state in bf16, half the memory for full fine-tuning; updates below "
                             "1/256 of a weight are lost, so it suits adapters and larger learning rates.",
                             choices=PRECISIONS)
    gradient_checkpointing: bool = setting(False, "Recompute activations in backward: much less memory, about "
                                           "30% slower. Turned on by the trainer when the estimate says memory "
                                           "is tight.", label="gradient checkpointing")
    optimizer: str = setting("adamw", "adamw suits almost everything; 8-bit variants keep smaller states.",
                             choices=tuple(optimizers.OPTIMIZERS))
    seed: int = setting(0, "Same seed + same settings = the same run.", min=0)
    logging_steps: int = setting(1, "Steps between two points on the loss plot.", min=1, label="logging steps")
    eval_steps: int = setting(20, "Steps between two eval-loss measurements (0: only at the end).", min=0,
                              label="eval steps")
    save_steps: int = setting(20, "Steps between two resumable checkpoints (0: only at the end).", min=0,
                              label="save steps")
    save_total_limit: int = setting(2, "Checkpoints kept; older ones are deleted.", min=1,
                                    label="checkpoints kept")
    # speed: pack examples padding-free (block-diagonal attention) and never build full logits
    packing: bool = setting(True, "Padding-free batches: examples are packed end to end and each attends only "
                            "to itself (faster, same loss).")
    fused_loss: bool = setting(True, "Chunked loss that never holds the whole batch's logits (less memory for "
                               "large vocabularies).", label="fused loss")
    torch_compile: bool = setting(False, "Compile the model with torch.compile: the first steps are slow "
                                  "(compilation), later ones can be faster on a GPU. Uses the plain loss (full "
                                  "logits). Not benchmarked here yet (no result in bench/results/).",
                                  label="torch.compile")
    # continual learning (engine/training/continual.py): start from an earlier run's result; EWC penalty
    start_from: str = setting("", "Continual learning: an earlier run (its folder or id) whose result this run "
                              "starts from.", label="start from run")
    ewc_lambda: float = setting(0.0, "Elastic Weight Consolidation strength against the start-from run "
                                "(0: off; 1e3-1e5 typical).", min=0.0, label="EWC lambda")
    ewc_samples: int = setting(64, "Examples used for the Fisher information of the start-from run.", min=1,
                               label="EWC samples")
    # more than one process (engine/training/launcher.py): data parallel through `accelerate launch`
    num_processes: int = setting(1, "Processes (devices) to train on; above 1 launches through "
                                 "`accelerate launch`.", min=1, max=64, label="processes")
    distributed: str = setting("ddp", "How several processes share the work: data parallel, or sharded (FSDP, "
                               "DeepSpeed ZeRO-2/3 where installed).", choices=DISTRIBUTED)
    accelerate_config: str = setting("", "An `accelerate config` file (e.g. for several machines); empty: "
                                     "settings above.", label="accelerate config file")
    # what is optimised (engine/training/objectives.py): supervised fine-tuning, or a preference objective on
    # pairwise / unpaired data through TRL's trainers
    objective: str = setting("sft", "sft learns the answers; dpo, orpo and simpo learn from preference pairs "
                             "(prompt / chosen / rejected), kto from answers marked desirable or not.",
                             choices=(), registry=OBJECTIVES)
    # experiment trackers (transformers' report_to), logging into the run folder (engine/training/trackers.py)
    report_to: str = setting("none", "Also log to TensorBoard (RUN/tensorboard) and/or MLflow (a local file store, "
                             "RUN/mlruns); W&B where installed.", choices=TRACKERS, label="report to")

    def problems(self) -> list[str]:
        found = []
        if self.max_steps == 0 and self.epochs <= 0:
            found.append(Message("config.epochs", field="train.epochs"))
        if not self.learning_rate > 0:
            found.append(Message("config.learning_rate", field="train.learning_rate", value=self.learning_rate))
        if self.precision == "bf16_pure" and self.num_processes > 1 and self.distributed in ("zero2", "zero3"):
            found.append(f"train.precision: bf16_pure is not supported under DeepSpeed ({self.distributed}): its ZeRO "
                         "optimizers keep fp32 master weights of a bf16 model; use precision bf16, or distributed "
                         "ddp or fsdp")
        return found


@dataclass
class DistillConfig:
    """Knowledge distillation (engine/training/distill.py): learn from a teacher's token distributions."""
    teacher: str = setting("", "Distillation: a teacher model (folder, Hub id or earlier run) sharing this "
                           "model's tokenizer; empty: off.", label="teacher model")
    alpha: float = setting(0.5, "Weight of the KL to the teacher; 1 - alpha weighs the loss on the labels.",
                           min=0.0, max=1.0, label="distillation alpha")
    temperature: float = setting(2.0, "Softens both distributions (1-4 typical).", min=0.01,
                                 label="distillation temperature")

    def problems(self) -> list[str]:
        return []


@dataclass
class PreferenceConfig:
    """Preference objectives (train.objective dpo / orpo / simpo / kto): their own settings, TRL's defaults."""
    beta: float = setting(0.1, "How far the model may move from the reference (DPO, KTO), the weight of the "
                          "odds-ratio term (ORPO), or the reward scale (SimPO; 2-10 in its paper).", min=0.0)
    loss_type: str = setting("sigmoid", "DPO's loss: sigmoid (the paper's), ipo (squared, regularised) or hinge "
                             "(SLiC).", choices=DPO_LOSSES, label="DPO loss")
    simpo_gamma: float = setting(0.5, "SimPO's target reward margin.", min=0.0, label="SimPO gamma")
    desirable_weight: float = setting(1.0, "KTO: weight of desirable answers (raise it when they are fewer).",
                                      min=0.0, label="KTO desirable weight")
    undesirable_weight: float = setting(1.0, "KTO: weight of undesirable answers.", min=0.0,
                                        label="KTO undesirable weight")

    def problems(self) -> list[str]:
        return []


@dataclass
class MethodConfig:
    name: str = DEFAULT_METHOD
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.params}


SECTIONS = {"data": DataConfig, "train": TrainConfig, "distill": DistillConfig, "preference": PreferenceConfig,
            "grpo": GrpoConfig}


@functools.cache
def _params(section: str) -> tuple[Param, ...]:
    declared = []
    for f in dataclasses.fields(SECTIONS[section]):
        meta = f.metadata.get("setting")
        if meta is None:
            continue
        choices = meta["choices"]
        if meta["registry"] is not None:
            choices = tuple(choices or ()) + tuple(meta["registry"])
        declared.append(Param(f.name, TYPES[f.type], f.default, meta["help"], min=meta["min"], max=meta["max"],
                              choices=choices, label=meta["label"]))
    return tuple(declared)


def section_params(section: str) -> tuple[Param, ...]:
    """The `Param` of every setting of a section (data, train, distill), in declaration order."""
    return _params(section)


def schema_param(section: str, name: str) -> Param:
    return next(p for p in _params(section) if p.name == name)


# ---- switching method -------------------------------------------------------------------------------
def method_train_defaults(key: str) -> dict:
    """The train settings a method starts from: the defaults, with the method's own (its learning rate)."""
    defaults = {p.name: p.default for p in _params("train")}
    return {**defaults, **METHODS.get(key).train_defaults} if key in METHODS else defaults


@dataclass
class MethodSwitch:
    """What switching method changed in a config (see `switch_method`)."""
    old: str
    new: str
    dropped: list[str]  # the old method's parameters that were given
    changed: dict[str, tuple[Any, Any]]  # "train.<key>" -> (before, after)

    def line(self) -> str:
        parts = [f"method {self.old} -> {self.new}"]
        if self.dropped:
            parts.append(f"dropped {self.old}'s parameters ({', '.join(self.dropped)}); {self.new}'s defaults apply")
        parts += [f"{key} {before} -> {after}" for key, (before, after) in self.changed.items()]
        return "; ".join(parts)


def switch_method(raw: dict, new: str) -> MethodSwitch:
    """Switch `raw` (a config dict) to method `new` in place, and say what changed.

    The one rule shared by `--set method.name=` and the page's method switch: the old method's
    parameters are dropped (the new method's defaults apply), and every train setting that still has
    the old method's starting value takes the new method's (Method.train_defaults: its learning rate);
    settings the user changed stay."""
    section = raw.get("method")
    section = {"name": section} if isinstance(section, str) else dict(section or {})
    old = str(section.get("name") or DEFAULT_METHOD)
    raw["method"] = {"name": new}
    if not isinstance(raw.get("train"), dict):
        raw["train"] = {}
    train = raw["train"]
    before, after = method_train_defaults(old), method_train_defaults(new)
    changed = {}
    for key, value in after.items():
        current = train.get(key, before.get(key))
        if _same(current, before.get(key)) and not _same(current, value):
            train[key] = value
            changed[f"train.{key}"] = (current, value)
    return MethodSwitch(old, new, sorted(k for k in section if k != "name"), changed)


def _same(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a == b


@dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    name: str = ""
    trust_remote_code: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    notes: list = field(default_factory=list, compare=False)  # what loading changed, one line each (not saved)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict | None, source: str = "config") -> RunConfig:
        raw = dict(raw or {})
        problems: list[str] = []
        known = {f.name for f in dataclasses.fields(cls) if f.name != "notes"}
        problems += [Message("config.unknown_key", field=k, known=", ".join(sorted(known)))
                     for k in raw if k not in known]

        method = _method(raw.get("method"), problems)
        # a setting left out takes the method's starting value (Method.train_defaults, else the default)
        train_defaults = method_train_defaults(method.name)
        data = _section("data", raw.get("data"), problems)
        train = _section("train", raw.get("train"), problems, train_defaults)
        distill = _section("distill", raw.get("distill"), problems)
        preference = _section("preference", raw.get("preference"), problems)
        grpo = _section("grpo", raw.get("grpo"), problems)
        trust = TRUST_REMOTE_CODE.problems(raw.get("trust_remote_code", False))
        problems += trust
        cfg = cls(
            model=str(raw.get("model", DEFAULT_MODEL) or ""), name=str(raw.get("name", "") or ""),
            trust_remote_code=False if trust else TRUST_REMOTE_CODE.coerce(raw.get("trust_remote_code", False)),
            data=data, method=method, train=train, distill=distill, preference=preference, grpo=grpo,
        )
        if not cfg.model.strip():
            problems.append(Message("config.model_empty", field="model"))
        problems += data.problems() + train.problems() + distill.problems()
        if not problems and train.objective in OBJECTIVES:  # what the objective cannot combine with, and why
            problems += OBJECTIVES.get(train.objective).problems(cfg)
        if problems:
            raise ConfigError(problems, source)
        return cfg

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError([f"not valid YAML: {err}"], str(path)) from None
        if not isinstance(raw, dict):
            raise ConfigError(["expected a mapping at the top level (model:, data:, method:, train:)"], str(path))
        notes = apply_overrides(raw, overrides or [])
        cfg = cls.from_dict(raw, str(path))
        cfg.notes = notes
        return cfg

    # ---- output -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "model": self.model, "name": self.name, "trust_remote_code": self.trust_remote_code,
            "data": dataclasses.asdict(self.data), "method": self.method.to_dict(),
            "train": dataclasses.asdict(self.train), "distill": dataclasses.asdict(self.distill),
            "preference": dataclasses.asdict(self.preference), "grpo": dataclasses.asdict(self.grpo),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _section(name: str, raw: Any, problems: list[str], defaults: dict | None = None):
    kind = SECTIONS[name]
    raw = raw or {}
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected a mapping, got {type(raw).__name__}")
        return kind()
    declared = {p.name: p for p in _params(name)}
    other = {f.name for f in dataclasses.fields(kind)} - set(declared)  # plain fields (data.columns)
    values = {}
    for key, value in raw.items():
        if key not in declared and key not in other:
            problems.append(Message("config.unknown_key", field=f"{name}.{key}",
                                    known=", ".join(f.name for f in dataclasses.fields(kind))))
        elif key in other:
            values[key] = value
    for key, param in declared.items():
        value = raw.get(key, (defaults or {}).get(key, param.default))
        found = param.problems(value)
        problems += [prefixed(name, text) for text in found]
        if not found:
            values[key] = param.coerce(value)
    return kind(**values)


def _method(raw: Any, problems: list[str]) -> MethodConfig:
    raw = {"name": raw} if isinstance(raw, str) else dict(raw or {})
    name = str(raw.pop("name", DEFAULT_METHOD))
    if name not in METHODS:
        problems.append(Message("config.unknown_method", field="method.name", name=repr(name),
                                known=", ".join(METHODS)))
        return MethodConfig(name=name, params=raw)
    params, found = check_params(METHODS.get(name).params, raw, "method")
    problems += found
    return MethodConfig(name=name, params=params)


def overrides_between(base: dict, target: dict) -> list[str]:
    """`--set` overrides that turn the config dict `base` into `target` (apply_overrides(base, them) makes
    target): the method switch first, by its rule (`switch_method`), then every value that differs.
    The Train tab's preview command is the base preset plus these."""
    raw = copy.deepcopy(base)
    sets = []
    old, new = (str((section or {}).get("name") or DEFAULT_METHOD) if isinstance(section, dict) else str(section)
                for section in (raw.get("method"), target.get("method")))
    if old != new:
        switch_method(raw, new)
        sets.append(f"method.name={_yaml_text(new)}")
    for key, value in target.items():
        if isinstance(value, dict):
            current = raw.get(key) if isinstance(raw.get(key), dict) else {}
            sets += [f"{key}.{name}={_yaml_text(v)}" for name, v in value.items()
                     if not (key == "method" and name == "name") and (name not in current or current[name] != v)]
        elif raw.get(key) != value:
            sets.append(f"{key}={_yaml_text(value)}")
    return sets


def _yaml_text(value) -> str:
    """A value as `--set` reads it back (a YAML scalar or flow collection): strings that look like numbers,
    booleans or lists stay strings."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, allow_unicode=True)
    return text[:-len("...\n")].strip() if text.endswith("\n...\n") else text.strip()


def apply_overrides(raw: dict, overrides: list[str]) -> list[str]:
    """Apply `a.b=value` overrides in place (values are parsed as YAML scalars: 1e-4, true, [a, b]).

    `method.name=X` (or `method=X`) switches the method first, by the rule of `switch_method`, so the
    other overrides, such as `method.r=4`, apply to the new method. Returns what the switch changed."""
    notes = []
    parsed = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. train.learning_rate=1e-4"])
        parsed.append((item, key.strip(), yaml.safe_load(text) if text.strip() else ""))
    for _, key, value in parsed:
        if key in ("method.name", "method") and isinstance(value, str):
            current = raw.get("method")
            current = current.get("name") if isinstance(current, dict) else current
            if (current or DEFAULT_METHOD) != value:
                notes.append(switch_method(raw, value).line())
    for item, key, value in parsed:
        if key == "method" and isinstance(value, str):
            continue
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            if part == "method" and isinstance(node.get(part), str):
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"--set {item!r}: {part} is not a section"])
        node[parts[-1]] = value
    return notes
