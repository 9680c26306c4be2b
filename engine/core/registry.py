"""Registries for the extension points (methods, data formats, chat templates, optimizers).

Each entry declares its parameters once with `Param`; the UI renders controls from these
declarations, the CLI validates `--set method.<name>=...` against them, and the estimator
reads them. Import-light: nothing here touches torch.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.core.messages import Message, prefixed


@dataclass(frozen=True)
class Param:
    """One user-facing parameter: what the UI shows, what the CLI accepts, what YAML holds."""

    name: str
    type: type  # int, float, bool or str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    label: str = ""
    # extra check for free-text values (e.g. target module specs): value -> list of problems
    check: Callable[[Any], list[str]] | None = field(default=None, compare=False)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    def coerce(self, value: Any) -> Any:
        """Turn a YAML/CLI/UI value into this parameter's type, or raise ValueError."""
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if self.type is int:
            # 3, 3.0 and "3.0" are the whole number 3; 3.5, "3.5" and True are not
            number = value if not isinstance(value, str) else _number(value)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not float(number).is_integer():
                raise ValueError(f"expected a whole number, got {value!r}")
            return int(number)
        if self.type is float:
            number = value if not isinstance(value, str) else _number(value)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            return float(number)
        return "" if value is None else str(value)

    def problems(self, value: Any) -> list[str]:
        """Every reason `value` is not acceptable, in words a user understands."""
        given = value
        try:
            value = self.coerce(value)
        except ValueError:  # coerce's own words, as a catalogue message
            code = {bool: "config.bool", int: "config.whole"}.get(self.type, "config.number")
            return [Message(code, field=self.name, value=repr(given))]
        found = []
        if self.choices is not None and value not in self.choices:
            found.append(Message("config.choice", field=self.name, value=repr(value),
                                 choices=", ".join(map(str, self.choices))))
        if self.min is not None and value < self.min:
            found.append(Message("config.below_min", field=self.name, value=value, min=self.min))
        if self.max is not None and value > self.max:
            found.append(Message("config.above_max", field=self.name, value=value, max=self.max))
        if self.check is not None:
            found += [f"{self.name}: {text}" for text in self.check(value)]
        return found

    @property
    def range_text(self) -> str:
        """The values it accepts, in words: `a | b`, `1..256`, `>= 0`, `<= 1`, or `any` (free text, booleans)."""
        if self.choices is not None:
            return " | ".join(map(str, self.choices))
        if self.type is bool:
            return "true | false"
        bounds = [f"{v:g}" if v is not None else None for v in (self.min, self.max)]
        if bounds[0] is not None and bounds[1] is not None:
            return f"{bounds[0]}..{bounds[1]}"
        if bounds[0] is not None:
            return f">= {bounds[0]}"
        if bounds[1] is not None:
            return f"<= {bounds[1]}"
        return "any"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type.__name__, "default": self.default,
            "help": self.help, "min": self.min, "max": self.max,
            "choices": list(self.choices) if self.choices is not None else None,
        }


def _number(text: str):
    """A number written as text (YAML, the CLI, a form field), or None."""
    try:
        return int(text.strip())
    except ValueError:
        try:
            return float(text.strip())
        except ValueError:
            return None


def check_params(declared: tuple[Param, ...], given: dict[str, Any], where: str) -> tuple[dict, list[str]]:
    """Fill defaults, coerce types and collect every problem with `given` against `declared`."""
    by_name = {p.name: p for p in declared}
    problems = [
        Message("config.unknown_param", field=f"{where}.{key}", known=", ".join(by_name) or "none")
        for key in given if key not in by_name
    ]
    resolved = {}
    for param in declared:
        value = given.get(param.name, param.default)
        found = param.problems(value)
        problems += [prefixed(where, text) for text in found]
        resolved[param.name] = value if found else param.coerce(value)
    return resolved, problems


T = TypeVar("T")


@dataclass
class Registry(Generic[T]):
    """A named table of entries; `get` fails with the list of known keys.

    `plugins` names the module whose import registers the built-in entries (e.g. engine.methods):
    the table loads it on first use, so a lower layer (the schema) can look entries up without
    importing the layer that defines them.
    """

    kind: str
    plugins: str | tuple[str, ...] = ""
    _entries: dict[str, T] = field(default_factory=dict)
    _loaded: bool = False

    def _load(self) -> None:
        if self.plugins and not self._loaded:
            self._loaded = True
            for module in (self.plugins,) if isinstance(self.plugins, str) else self.plugins:
                importlib.import_module(module)

    def register(self, key: str, entry: T) -> T:
        if key in self._entries:
            raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._entries[key] = entry
        return entry

    @property
    def entries(self) -> dict[str, T]:
        self._load()
        return self._entries

    def get(self, key: str) -> T:
        try:
            return self.entries[key]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {key!r}; choose one of: {', '.join(self.entries)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def items(self):
        return self.entries.items()


# The registries of the extension points. Their entries live with the code that implements them.
METHODS: Registry = Registry("method", plugins="engine.methods")  # engine/methods/<key>.py, one module each
# prompt-only data for GRPO (engine/data/prompts.py) registers after every format: detection tries it last
FORMATS: Registry = Registry("data format", plugins=("engine.data.formats", "engine.data.prompts"))  # record -> example
TEMPLATES: Registry = Registry("chat template", plugins="engine.data.templates")  # for models without their own
OBJECTIVES: Registry = Registry("training objective", plugins="engine.core.objectives")  # sft, dpo, grpo, ...
REWARDS: Registry = Registry("reward", plugins="engine.rewards")  # GRPO rewards: engine/rewards/
