"""Experiment trackers (`train.report_to`): transformers' own integrations, writing into the run folder.

- tensorboard: event files in RUN/tensorboard (transformers' TensorBoardCallback, TENSORBOARD_LOGGING_DIR);
- mlflow: a local file store in RUN/mlruns (transformers' MLflowCallback; experiment "tuneloom", the MLflow run
  named after the run: TrainingArguments.run_name). MLflow 3 keeps its file store in maintenance mode and refuses it
  unless MLFLOW_ALLOW_FILE_STORE is set, which is set here: a database store would need SQLAlchemy and a server;
- wandb: where installed, offline into RUN/wandb unless WANDB_MODE says otherwise; off by default.

Import-light: `missing(cfg)` is a pre-run check the launcher makes without importing any tracker.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def chosen(cfg) -> list[str]:
    value = str(cfg.train.report_to or "none").strip()
    return [] if value in ("", "none") else [t.strip() for t in value.split(",") if t.strip()]


def missing(cfg) -> list[str]:
    """Trackers chosen but not installed, as problems a user can act on."""
    return [f"train.report_to: {name} is not installed here; install it (pip install {PACKAGES[name]}) or choose "
            "another tracker" for name in chosen(cfg) if importlib.util.find_spec(PACKAGES[name]) is None]


def report_to(cfg, run_dir: Path) -> list[str] | str:
    """The TrainingArguments.report_to value; sets the trackers' environment so they log into the run folder."""
    names = chosen(cfg)
    if "tensorboard" in names:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(run_dir) / "tensorboard")
    if "mlflow" in names:
        os.environ["MLFLOW_TRACKING_URI"] = (Path(run_dir) / "mlruns").resolve().as_uri()
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "tuneloom")
    if "wandb" in names:
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(run_dir))
        os.environ.setdefault("WANDB_PROJECT", "tuneloom")
    return names or "none"
