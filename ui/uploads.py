"""Files uploaded from the page or through the API (ui/api_data.py): kept under TUNELOOM_HOME/uploads, one folder
per upload holding the file under its own (safe) name and the name it was uploaded as."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from engine.core.workspace import UPLOAD_NOTE, safe_name, subdir
from ui.data_text import TEXT
from ui.lang import tr

UPLOAD_TYPES = [".json", ".jsonl", ".csv", ".parquet", ".txt", ".md"]


def max_upload_mb() -> float:
    try:
        return float(os.environ.get("TUNELOOM_MAX_UPLOAD_MB") or 200)
    except ValueError:
        return 200.0


def store_upload(temp_path: str | None, lang: str = "en") -> str:
    """Copy an upload under TUNELOOM_HOME/uploads with a safe name; refuse files over the limit."""
    if not temp_path:
        raise ValueError(tr(TEXT, lang, "no_file"))
    source = Path(temp_path)
    if source.suffix.lower() not in UPLOAD_TYPES:
        raise ValueError(tr(TEXT, lang, "bad_type", name=source.name, types=", ".join(UPLOAD_TYPES)))
    size_mb = source.stat().st_size / 2**20
    if size_mb > max_upload_mb():
        raise ValueError(tr(TEXT, lang, "too_big", name=source.name, size=f"{size_mb:,.0f}",
                            limit=f"{max_upload_mb():,.0f}"))
    # a folder per upload keeps the file's own name (made safe), which runs and the Evaluate tab show
    folder = subdir("uploads") / time.strftime("%Y%m%d-%H%M%S")
    for n in range(2, 1000):
        if not folder.exists():
            break
        folder = folder.with_name(f"{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    folder.mkdir(parents=True)
    target = folder / f"{safe_name(source.stem, fallback='data')}{source.suffix.lower()}"
    if target.name == UPLOAD_NOTE:  # raw text may be a .txt: never overwritten by the name note
        target = target.with_name(f"data-{target.name}")
    shutil.copyfile(source, target)
    (folder / UPLOAD_NOTE).write_text(source.name, encoding="utf-8")  # shown wherever the data is named
    return str(target)


def uploaded_files() -> list[Path]:
    """Every file uploaded to this workspace, newest first."""
    found = [p for p in subdir("uploads").rglob("*") if p.is_file() and p.suffix.lower() in UPLOAD_TYPES
             and p.name != UPLOAD_NOTE]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
