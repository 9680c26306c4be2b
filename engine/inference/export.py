"""Export a run: the adapter with a README run card, or the merged model with its tokenizer; zipped for download.

An exported adapter names its base by where it can be found on another machine (the Hub id the model came
from where it is known, else the base folder's name), and its card says how to point it at a local copy.
A merged model is saved in the base's published dtype (or one the caller picks), not in the fp32 the
merge is computed in. Each step reports its progress through `progress(fraction, phase)`.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path

from engine.core import runs
from engine.core.config import RunConfig
from engine.core.workspace import HUB_IDS, PUBLISHED_DTYPES, resolve_model, stored_dtype
from engine.inference.export_options import DTYPES
from engine.inference.loading import load_result, result_dir
from engine.methods import METHODS

# where an adapter names its base model: peft's config, and the bottleneck adapter's own (engine/methods/adapter.py)
BASE_NAME_FIELDS = {"adapter_config.json": "base_model_name_or_path", "bottleneck_adapter.json": "base_model"}
CONFIG_NAME = "tuneloom_config.yaml"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _silent(fraction: float, phase: str) -> None:
    pass


# ---- the base, as another machine finds it ---------------------------------------------------------
def portable_base_name(model: str) -> str:
    """The name an exported adapter gives its base: the Hub id where known (a bundled alias's source, a Hub
    id the user gave, a Hugging Face cache folder's repository), else the local folder's name."""
    if model in HUB_IDS:
        return HUB_IDS[model]
    path = Path(resolve_model(model))
    if not path.exists():
        return model  # a Hub id, loaded from the Hub or its cache
    cached = re.search(r"models--([^/]+?)--([^/]+)/snapshots/", path.as_posix())
    return f"{cached.group(1)}/{cached.group(2)}" if cached else path.name


def published_dtype(model: str) -> str | None:
    """The dtype a base model's weights are published in (torch name), or None when unknown."""
    if model in PUBLISHED_DTYPES:
        return PUBLISHED_DTYPES[model]
    path = Path(resolve_model(model))
    if path.is_dir():
        return stored_dtype(path)
    try:
        from transformers import AutoConfig

        return str(getattr(AutoConfig.from_pretrained(model), "dtype", "") or "").replace("torch.", "") or None
    except Exception:  # a Hub id not in the cache: the merge dtype stays as computed
        return None


# ---- the run card ----------------------------------------------------------------------------------
def run_card(run_dir: Path, kind: str, base_name: str | None = None) -> str:
    cfg = RunConfig.load(Path(run_dir) / "config.yaml")
    status = runs.read_status(run_dir)
    base_name = base_name or portable_base_name(cfg.model)
    data_path = Path(cfg.data.train)
    data_hash = file_sha256(data_path) if data_path.is_file() else \
        f"none: a datasets folder or Hub dataset, split {cfg.data.split}" if data_path.is_dir() or \
        cfg.data.train.startswith("hub:") else "(file no longer present)"
    params = "\n".join(f"| {k} | {v} |" for k, v in cfg.method.params.items())
    train = "\n".join(f"| {k} | {v} |" for k, v in vars(cfg.train).items())
    results = [f"**Steps:** {status.get('step')}" + (" (stopped early)" if status.get("stopped_early") else "")]
    for key, label in (("final_loss", "final train loss"), ("final_eval_loss", "final eval loss"),
                       ("best_eval_loss", "best eval loss")):
        if isinstance(status.get(key), (int, float)):
            results.append(f"**{label}:** {status[key]:.4f}")
    from engine.inference.merge_runs import card_lines

    merged = "\n".join(["", "## Merged from", *card_lines(run_dir), ""]) if status.get("merged_from") else ""
    return f"""---
base_model: {base_name}
library_name: {"peft" if kind == "adapter" else "transformers"}
tags: [tuneloom, {cfg.method.name}]
---
# {Path(run_dir).name}

Fine-tuned with Tuneloom ({kind}).

- **Base model:** `{base_name}`{f" (trained from `{cfg.model}`)" if base_name != cfg.model else ""}
- **Method:** {METHODS.get(cfg.method.name).title} (`{cfg.method.name}`)
- **Data:** `{data_path.name}` (sha256 `{data_hash}`), format {cfg.data.format}, mask {cfg.data.mask}
- {"; ".join(results)}
{merged}{_usage(kind, base_name)}
## Method parameters
| parameter | value |
|---|---|
{params}

## Training hyperparameters
| parameter | value |
|---|---|
{train}

Reproduce with `python -m engine train {CONFIG_NAME}` (the run's config is next to this card).
"""


def _usage(kind: str, base_name: str) -> str:
    if kind != "adapter":
        return """
## Use
```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```
"""
    return f"""
## Use
```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base = AutoModelForCausalLM.from_pretrained("{base_name}")  # or a local copy: "/path/to/{base_name.split('/')[-1]}"
model = PeftModel.from_pretrained(base, "path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```
`AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")` finds the base by `base_model_name_or_path` in
`adapter_config.json`: `{base_name}`. To use a local copy of the base instead, put its folder's path there.
"""


# ---- exports -----------------------------------------------------------------------------------------
def export_adapter(run_dir: Path, out: Path, progress=_silent) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    cfg = RunConfig.load(run_dir / "config.yaml")
    source = result_dir(run_dir)
    progress(0.0, "copying")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    base_name = portable_base_name(runs.result_base(run_dir, cfg))
    for file, key in BASE_NAME_FIELDS.items():
        if (tmp / file).is_file():
            config = json.loads((tmp / file).read_text(encoding="utf-8"))
            config[key] = base_name
            (tmp / file).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shutil.copy2(run_dir / "config.yaml", tmp / CONFIG_NAME)
    (tmp / "README.md").write_text(run_card(run_dir, "adapter" if source.name == "adapter" else "full model",
                                            base_name))
    progress(1.0, "copying")
    return _replace(tmp, out)


def merge_refusal(run_dir: Path) -> str | None:
    """Why this run's result cannot be exported merged (a method whose update is not a weight change)."""
    cfg = RunConfig.load(Path(run_dir) / "config.yaml")
    method = METHODS.get(cfg.method.name)
    if result_dir(run_dir).name == "adapter" and not method.mergeable:
        return (f"{method.title} cannot be merged into the base weights: "
                f"{method.not_mergeable_reason or 'it is not a weight update'}; export the adapter instead")
    return None


def export_merged(run_dir: Path, out: Path, dtype: str = "auto", progress=_silent) -> Path:
    """The base with the update folded in, saved in `dtype` (auto: the base's published dtype)."""
    run_dir, out = Path(run_dir), Path(out)
    refusal = merge_refusal(run_dir)
    if refusal:
        raise ValueError(refusal)
    progress(0.0, "starting")
    import torch

    cfg = RunConfig.load(run_dir / "config.yaml")
    steps = {"loading base": 0.25, "loading adapter": 0.55, "merging": 0.6}  # shares of the time, as measured
    model, tokenizer, _ = load_result(run_dir, merge=True, progress=lambda phase: progress(steps[phase], phase))
    progress(0.8, "saving")  # merged in fp32, saved in the target dtype
    target = DTYPES[dtype] or published_dtype(runs.result_base(run_dir, cfg)) or "float32"
    model = model.to(getattr(torch, target))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    shutil.copy2(run_dir / "config.yaml", tmp / CONFIG_NAME)
    (tmp / "README.md").write_text(run_card(run_dir, f"merged model, {target}"))
    progress(1.0, "saving")
    return _replace(tmp, out)


def _replace(tmp: Path, out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


# ---- the download ------------------------------------------------------------------------------------
def zip_folder(folder: Path, progress=_silent) -> Path:
    """`folder`.zip beside it, for one-click download. Weights are stored as they are (deflating them took
    33 s for the default model's 538 MB and saved 13%); text files are deflated. Progress counts bytes."""
    folder = Path(folder)
    archive, tmp = folder.with_name(folder.name + ".zip"), folder.with_name(folder.name + ".zip.partial")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    total, done = sum(p.stat().st_size for p in files) or 1, 0
    with zipfile.ZipFile(tmp, "w") as zipped:
        for path in files:
            size = path.stat().st_size
            if path.suffix not in (".safetensors", ".bin", ".pt", ".gguf"):
                zipped.write(path, path.relative_to(folder).as_posix(), compress_type=zipfile.ZIP_DEFLATED)
                done += size
                continue
            info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
            info.compress_type = zipfile.ZIP_STORED
            with open(path, "rb") as source, zipped.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as sink:
                for block in iter(lambda: source.read(1 << 24), b""):
                    sink.write(block)
                    done += len(block)
                    progress(done / total, "zipping")
    tmp.replace(archive)
    progress(1.0, "zipping")
    return archive
