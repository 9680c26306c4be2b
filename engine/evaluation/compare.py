"""Compare runs: overlaid loss curves, the settings that differ, the final numbers. Import-light.

The functions taking plain data (`flatten`, `differing`, `curve_points`, `summarize`) are pure;
`load_run` reads one run folder into that plain data.
"""
from __future__ import annotations

from pathlib import Path

X_AXES = {"step": "step", "tokens": "tokens_seen"}
SKIP_KEYS = ("name",)  # always differs and is already the run's id


def flatten(tree, prefix: str = "") -> dict:
    """{'train': {'seed': 0}} -> {'train.seed': 0}; lists stay values (shown as text)."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def differing(configs: dict[str, dict]) -> tuple[list[str], list[list]]:
    """(["setting", run ids...], rows) with only the settings whose values are not all the same.

    A setting missing from a run's config (an older run, another method's parameter) reads '–'.
    """
    flat = {run: flatten(cfg or {}) for run, cfg in configs.items()}
    keys = sorted({k for f in flat.values() for k in f if k not in SKIP_KEYS})
    missing = object()
    rows = []
    for key in keys:
        values = [f.get(key, missing) for f in flat.values()]
        if len({repr(v) for v in values}) > 1:
            rows.append([key] + ["–" if v is missing else _text(v) for v in values])
    return ["setting", *flat], rows


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def curve_points(metrics: dict[str, list[dict]], x: str = "step") -> list[tuple]:
    """[(x, loss, series)] for every run's train and eval loss; series is '<run> train' / '<run> eval'.

    By "tokens" the x value is tokens_seen; eval rows (which carry none) take the tokens seen at the
    last train row at or before their step. Rows without the x value are left out.
    """
    field = X_AXES.get(x, x)
    points = []
    for run, rows in metrics.items():
        tokens_at, last_tokens = {}, None
        for row in sorted((r for r in rows if "loss" in r), key=lambda r: r.get("step", 0)):
            if row.get("tokens_seen") is not None:
                last_tokens = row["tokens_seen"]
            tokens_at[row.get("step")] = last_tokens
        train_steps = sorted(s for s in tokens_at if s is not None)
        for row in rows:
            if row.get("loss") is not None:
                value = row.get(field)
                if value is not None:
                    points.append((value, row["loss"], f"{run} train"))
            if row.get("eval_loss") is not None:
                value = row.get(field)
                if value is None and field == "tokens_seen":
                    before = [s for s in train_steps if s <= row.get("step", 0)]
                    value = tokens_at[before[-1]] if before else None
                if value is not None:
                    points.append((value, row["eval_loss"], f"{run} eval"))
    return points


def summarize(run: str, status: dict, metrics: list[dict], evaluation: dict | None = None) -> dict:
    """A run's final numbers: train/eval loss, evaluation scores, wall time, peak memory, tokens."""
    train = [r for r in metrics if r.get("loss") is not None]
    evals = [r for r in metrics if r.get("eval_loss") is not None]
    wall = status.get("elapsed_s")
    if status.get("finished_at") and status.get("started_at"):
        wall = status["finished_at"] - status["started_at"]
    if wall is None and metrics:
        wall = max((r.get("elapsed_s") or 0 for r in metrics), default=None)
    peak = max((r.get("peak_memory_bytes") or 0 for r in metrics), default=0) or None
    evaluation = evaluation or {}
    return {
        "run": run, "state": status.get("state"), "steps": status.get("step"),
        "final_train_loss": status["final_loss"] if status.get("final_loss") is not None
        else (train[-1]["loss"] if train else None),
        "final_eval_loss": status.get("final_eval_loss") if status.get("final_eval_loss") is not None
        else (evals[-1]["eval_loss"] if evals else None),
        "eval_perplexity": evaluation.get("perplexity"), "rouge_l": evaluation.get("rouge_l"),
        "bleu": evaluation.get("bleu"), "wall_time_s": wall, "peak_memory_bytes": peak,
        "tokens_seen": max((r.get("tokens_seen") or 0 for r in train), default=None) or None,
    }


SUMMARY_COLUMNS = ("run", "state", "steps", "final_train_loss", "final_eval_loss", "eval_perplexity", "rouge_l",
                   "bleu", "wall_time_s", "peak_memory_bytes", "tokens_seen")


def summary_cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "peak_memory_bytes":
        return f"{value / 2**20:,.0f} MB"
    if key == "wall_time_s":
        return f"{value:,.1f} s"
    if key in ("tokens_seen", "steps"):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def summary_table(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    return list(SUMMARY_COLUMNS), [[summary_cell(k, s.get(k)) for k in SUMMARY_COLUMNS] for s in summaries]


def load_run(run_dir: Path) -> dict:
    """{'id', 'config', 'status', 'metrics', 'evaluation'} of one run folder (no torch)."""
    import yaml

    from engine.core import runs
    from engine.evaluation.records import latest_result

    run_dir = Path(run_dir)
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    return {"id": run_dir.name, "config": config, "status": runs.read_status(run_dir),
            "metrics": runs.read_metrics(run_dir), "evaluation": latest_result(run_dir)}


def compare(run_dirs: list[Path], x: str = "step") -> dict:
    """Everything the Compare view shows for these runs."""
    loaded = [load_run(d) for d in run_dirs]
    headers, rows = differing({r["id"]: r["config"] for r in loaded})
    summaries = [summarize(r["id"], r["status"], r["metrics"], r["evaluation"]) for r in loaded]
    return {"points": curve_points({r["id"]: r["metrics"] for r in loaded}, x),
            "settings": {"headers": headers, "rows": rows}, "summaries": summaries}
