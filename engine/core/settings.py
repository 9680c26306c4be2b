"""How a schema field is declared once (engine/core/config.py and the sections beside it, such as
engine/core/grpo_settings.py): its default and what the UI, the CLI and the checks need of it."""
from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(default: Any, help: str, *, label: str = "", min: float | None = None, max: float | None = None,
            choices: tuple | None = None, registry=None):
    """A schema field declared once: its default and what the UI, the CLI and the checks need of it.

    `choices` may be a registry (data formats, chat templates): its keys are read when used, so the
    schema never imports the modules that fill it; `registry` adds the keys of such a table after the
    literal choices (e.g. format: auto + the registered formats)."""
    meta = {"help": help, "label": label, "min": min, "max": max, "choices": choices, "registry": registry}
    return field(default=default, metadata={"setting": meta})
