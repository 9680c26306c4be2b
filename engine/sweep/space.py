"""A sweep's search space: `--space train.learning_rate=1e-5:1e-3:log`, `--space method.r=8,16,32`.

Each dimension names one setting of the run schema (engine/core/config.py: a section's `Param`, or the
chosen method's own `Param` for `method.<name>`) and is checked against that declaration before any trial
starts: an unknown key, a value of the wrong type, a choice the setting does not offer or a range outside
its declared minimum and maximum are refused by name, all problems at once (ConfigError, exit 2).
Import-light: the UI parses spaces through this.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.config import SECTIONS, ConfigError, RunConfig, section_params
from engine.core.messages import Message
from engine.core.registry import METHODS, Param


@dataclass(frozen=True)
class Dimension:
    key: str  # "train.learning_rate", "method.r"
    param: Param
    choices: tuple = ()  # a list of values (categorical), or empty for a range
    low: float | None = None
    high: float | None = None
    log: bool = False

    def suggest(self, trial):
        """The value Optuna's trial picks for this dimension (the key is the parameter's name in the study)."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.param.type is int:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def spec(self) -> str:
        """Written back as the CLI takes it."""
        if self.choices:
            return f"{self.key}={','.join(map(str, self.choices))}"
        return f"{self.key}={self.low:g}:{self.high:g}" + (":log" if self.log else "")


def _param_for(key: str, cfg: RunConfig) -> Param | str:
    """The declared Param of `key`, or why there is none."""
    section, _, name = key.partition(".")
    if not name:
        return Message("sweep.space_section", key=key)
    if section == "method":
        declared = {p.name: p for p in METHODS.get(cfg.method.name).params}
        if name == "name":
            return Message("sweep.method_name")
        if name not in declared:
            return Message("sweep.unknown_method_param", key=key, method=cfg.method.name, name=name,
                           known=", ".join(declared) or "none")
        return declared[name]
    if section not in SECTIONS:
        return Message("sweep.unknown_section", key=key, section=section, known=", ".join(["method", *SECTIONS]))
    declared = {p.name: p for p in section_params(section)}
    if name not in declared:
        return Message("sweep.unknown_setting", key=key, name=name, section=section, known=", ".join(declared))
    return declared[name]


def _outside(key: str, param: Param, value) -> list[str]:
    return [Message("sweep.value", key=key, problem=text) for text in param.problems(value)]


def parse_dimension(text: str, cfg: RunConfig) -> tuple[Dimension | None, list[str]]:
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        return None, [Message("sweep.space_syntax", text=repr(text))]
    param = _param_for(key, cfg)
    if not isinstance(param, Param):
        return None, [param]
    if "," in spec or ":" not in spec:  # a list of values (one value is a list of one)
        values, problems = [], []
        for item in (v.strip() for v in spec.split(",")):
            found = _outside(key, param, item)
            problems += found
            if not found:
                values.append(param.coerce(item))
        if len(set(values)) != len(values):
            problems.append(Message("sweep.value_twice", key=key, spec=spec))
        return (Dimension(key, param, tuple(values)) if not problems else None), problems
    parts = [p.strip() for p in spec.split(":")]
    log = len(parts) == 3 and parts[2] == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        return None, [Message("sweep.range_syntax", key=key, spec=spec)]
    if param.type not in (int, float) or param.choices is not None:
        example = f"{key}={','.join(map(str, param.choices or (True, False)))}"
        return None, [Message("sweep.range_type", key=key, kind=param.type.__name__, example=example)]
    problems = _outside(key, param, parts[0]) + _outside(key, param, parts[1])
    if problems:
        return None, problems
    low, high = param.coerce(parts[0]), param.coerce(parts[1])
    if not low < high:
        return None, [Message("sweep.range_order", key=key, spec=spec, low=low, high=high)]
    if log and low <= 0:
        return None, [Message("sweep.log_low", key=key, spec=spec)]
    return Dimension(key, param, (), low, high, log), []


def parse_space(specs: list[str], cfg: RunConfig, sampler: str = "tpe") -> list[Dimension]:
    """Every dimension of `specs`, checked against the schema; ConfigError lists every problem."""
    dims, problems = [], []
    for text in specs:
        dim, found = parse_dimension(text, cfg)
        problems += found
        if dim is not None:
            if any(d.key == dim.key for d in dims):
                problems.append(Message("sweep.key_twice", key=dim.key))
            dims.append(dim)
    if not specs:
        problems.append(Message("sweep.no_space"))
    if sampler == "grid":
        problems += [Message("sweep.grid_range", key=d.key, low=d.low, high=d.high) for d in dims if not d.choices]
    if problems:
        raise ConfigError(problems, "the search space")
    return dims


def grid_size(dims: list[Dimension]) -> int:
    size = 1
    for d in dims:
        size *= len(d.choices)
    return size
