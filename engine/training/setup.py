"""What a run's trainer is built from (the recipe's setup step, engine/training/recipe.py), and the lookup of
the builders an objective declares by name (engine/core/objectives.py: `trainer`, `data`, `trl_config`)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def resolve(dotted: str):
    """"package.module:name" -> the object (imported when a run starts, so declarations stay import-light)."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class TrainingSetup:
    """Everything the setup step made, handed to the objective's trainer builder and to the later steps."""

    cfg: Any  # RunConfig
    run_dir: Path
    objective: Any  # engine.core.objectives.TrainingObjective
    method: Any  # engine.methods.base.Method
    structure: Any
    precision: str
    tokenizer: Any
    data: Any  # engine.data.dataset.Prepared
    is_main: bool = True
    log: Any = print
    model: Any = None
    args: Any = None  # TrainingArguments, or the objective's TRL config
    callbacks: list = field(default_factory=list)
    optimizers: tuple = (None, None)
    loss_terms: Any = None  # EWC / distillation beside the supervised loss (engine/training/loss_terms.py)
    trainer: Any = None

    def build_trainer(self):
        self.trainer = resolve(self.objective.trainer)(self)
        return self.trainer
