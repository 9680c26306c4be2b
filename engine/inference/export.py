"""Export a run: the adapter with a README run card, or the merged model with its tokenizer."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from engine.core import runs
from engine.core.config import RunConfig
from engine.inference.loading import load_result, result_dir
from engine.methods import METHODS


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_card(run_dir: Path, kind: str) -> str:
    cfg = RunConfig.load(Path(run_dir) / "config.yaml")
    status = runs.read_status(run_dir)
    data_path = Path(cfg.data.train)
    data_hash = file_sha256(data_path) if data_path.is_file() else \
        f"none: a datasets folder or Hub dataset, split {cfg.data.split}" if data_path.is_dir() or \
        cfg.data.train.startswith("hub:") else "(file no longer present)"
    params = "\n".join(f"| {k} | {v} |" for k, v in cfg.method.params.items())
    train = "\n".join(f"| {k} | {v} |" for k, v in vars(cfg.train).items())
    return f"""---
base_model: {cfg.model}
library_name: {"peft" if kind == "adapter" else "transformers"}
tags: [tuneloom, {cfg.method.name}]
---
# {Path(run_dir).name}

Fine-tuned with Tuneloom ({kind}).

- **Base model:** `{cfg.model}`
- **Method:** {METHODS.get(cfg.method.name).title} (`{cfg.method.name}`)
- **Data:** `{data_path.name}` (sha256 `{data_hash}`), format {cfg.data.format}, mask {cfg.data.mask}
- **Steps:** {status.get("step")}; **final train loss:** {status.get("final_loss")}; **final eval loss:** {status.get("final_eval_loss")}

## Method parameters
| parameter | value |
|---|---|
{params}

## Training hyperparameters
| parameter | value |
|---|---|
{train}

Reproduce with `python -m engine train config.yaml` (the run's config is next to this card).
"""


def export_adapter(run_dir: Path, out: Path) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    source = result_dir(run_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.copy2(run_dir / "config.yaml", tmp / "tuneloom_config.yaml")
    (tmp / "README.md").write_text(run_card(run_dir, "adapter" if source.name == "adapter" else "full model"))
    return _replace(tmp, out)


def export_merged(run_dir: Path, out: Path) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    cfg = RunConfig.load(run_dir / "config.yaml")
    method = METHODS.get(cfg.method.name)
    if result_dir(run_dir).name == "adapter" and not method.mergeable:
        raise ValueError(f"{method.title} cannot be merged into the base weights: "
                         f"{method.not_mergeable_reason or 'it is not a weight update'}; export the adapter instead")
    model, tokenizer, _ = load_result(run_dir, merge=True)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / "README.md").write_text(run_card(run_dir, "merged model"))
    return _replace(tmp, out)


def _replace(tmp: Path, out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def zip_folder(folder: Path) -> Path:
    """A .zip next to the folder, for one-click download."""
    archive = shutil.make_archive(str(folder), "zip", root_dir=str(folder))
    return Path(archive)
