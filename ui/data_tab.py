"""Data tab: pick a sample or upload a file, choose how it is read, see what will be trained.

The numbers and token previews come from `python -m engine data inspect` (a child process
with the tokenizer), so they are exactly what the trainer will see.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.config import FORMATS, MASKS
from engine.workspace import PROJECT_ROOT, safe_name, subdir
from ui.common import cli_failure, error_box, last_json_line, note_box, run_engine

SAMPLES_DIR = PROJECT_ROOT / "presets" / "data"
SAMPLE_NOTES = {  # a friendlier label for the bundled samples; any other file shows its name
    "identity.jsonl": "identity: who the assistant is (instruction/output)",
    "chat_multiturn.jsonl": "multi-turn chat (messages with roles)",
}
UPLOAD_TYPES = [".json", ".jsonl", ".csv", ".parquet"]
NO_ROWS = {"headers": ["rows appear here once a file is read"], "data": [[""]]}
PREVIEW_LIMIT = 50  # token previews fetched per inspect; the slider moves within them
MASK_HELP = ("assistant: learn every assistant reply · last_assistant: only the final reply · "
             "none: learn the prompt too (continued pre-training)")


def max_upload_mb() -> float:
    try:
        return float(os.environ.get("TUNELOOM_MAX_UPLOAD_MB") or 200)
    except ValueError:
        return 200.0


def sample_choices() -> list[tuple[str, str]]:
    files = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in UPLOAD_TYPES)
    return [(SAMPLE_NOTES.get(p.name, p.name), str(p.relative_to(PROJECT_ROOT))) for p in files]


def parse_columns(text: str) -> dict:
    """'question=instruction, answer=output' -> {'question': 'instruction', 'answer': 'output'}."""
    mapping = {}
    for item in filter(None, (part.strip() for part in (text or "").replace("\n", ",").split(","))):
        source, sep, target = (s.strip() for s in item.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"column mapping {item!r}: write it as file_column=field, e.g. question=instruction")
        mapping[source] = target
    return mapping


def store_upload(temp_path: str | None) -> str:
    """Copy an upload under TUNELOOM_HOME/uploads with a safe name; refuse files over the limit."""
    if not temp_path:
        raise ValueError("no file received")
    source = Path(temp_path)
    if source.suffix.lower() not in UPLOAD_TYPES:
        raise ValueError(f"{source.name}: use one of {', '.join(UPLOAD_TYPES)}")
    size_mb = source.stat().st_size / 2**20
    if size_mb > max_upload_mb():
        raise ValueError(f"{source.name} is {size_mb:,.0f} MB; the limit is {max_upload_mb():,.0f} MB "
                         "(set TUNELOOM_MAX_UPLOAD_MB to raise it)")
    stem = safe_name(source.stem, fallback="data")
    target = subdir("uploads") / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}{source.suffix.lower()}"
    shutil.copyfile(source, target)
    return str(target)


# ---- rendering the inspect report ----------------------------------------------------------
def rows_table(rows: list[dict]) -> dict:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    # columns empty in every shown row (an unused alpaca 'input') only squeeze the others
    headers = [h for h in headers if any(row.get(h) not in (None, "", [], {}) for row in rows)] or ["(no rows)"]

    def cell(value) -> str:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 300 else text[:300] + "…"

    return {"headers": headers, "data": [[cell(row.get(h, "")) for h in headers] for row in rows] or [[""]]}


def stats_markdown(report: dict) -> str:
    s = report["stats"]
    share = f" ({s['trained_tokens'] / s['tokens']:.0%} of all)" if s.get("tokens") else ""
    lines = [f"**{report['file']}** · format **{report['format']}** · fields: {', '.join(report['fields'])}",
             f"**{s['examples']:,}** examples · **{s['tokens']:,}** tokens · **{s['trained_tokens']:,}** "
             f"trained tokens{share} · longest {s['max_tokens']:,} tokens"]
    dropped = sum(s.get("dropped", {}).values())
    if dropped:
        reasons = "; ".join(f"{n} × {why}" for why, n in s["dropped"].items())
        lines.append(f"**{dropped} example(s) dropped** (never trained): {reasons}")
        lines += [f"- {row}" for row in s.get("dropped_rows", [])[:5]]
    if s.get("skipped_bad_rows_count"):
        lines.append(f"**{s['skipped_bad_rows_count']} bad row(s) skipped**:")
        lines += [f"- {row}" for row in s.get("skipped_bad_rows", [])[:5]]
    if not dropped and not s.get("skipped_bad_rows_count"):
        lines.append("No rows dropped: every example has tokens to learn.")
    return "\n\n".join(lines)


def highlighted(preview: dict | None) -> list[tuple[str, str | None]]:
    if not preview:
        return []
    if preview.get("dropped"):
        return [(f"{preview['where']}: dropped ({preview['dropped']})", None)]
    return [(t["token"], "trained" if t["trained"] else None) for t in preview["tokens"]]


def example_caption(report: dict, index: int) -> str:
    previews = report.get("previews") or []
    if not previews:
        return ""
    preview = previews[index]
    trained = sum(t["trained"] for t in preview["tokens"])
    return (f"{preview['where']}: {len(preview['tokens'])} tokens, {trained} trained (highlighted). "
            f"Plain tokens are the prompt and template: seen, not learned.")


# ---- handlers --------------------------------------------------------------------------------
def inspect(path, fmt, columns_text, mask, skip_bad, model, max_seq_len, report=None, force=False):
    """Generator: a 'checking' note first (the tokenizer takes seconds to load), then the report.

    The same settings twice in a row (a dropdown can fire twice for one pick) are not checked again
    unless `force` (the Check data button).
    """
    empty = (gr.skip(),) * 5
    key = [path, fmt, columns_text, mask, bool(skip_bad), model, int(max_seq_len or 512)]
    if not force and (report or {}).get("inputs") == key:
        yield (gr.skip(), *empty)
        return
    if not path:
        yield (note_box("Pick a sample dataset or upload a file."), "", NO_ROWS, gr.skip(), [], {})
        return
    try:
        columns = parse_columns(columns_text)
    except ValueError as err:
        yield (error_box("Column mapping", str(err)), *empty)
        return
    yield (note_box(f"Checking {Path(path).name} with the {model} tokenizer…"), *empty)
    args = ["data", "inspect", path, "--format", fmt, "--mask", mask, "--max-seq-len", int(max_seq_len or 512),
            "--model", model, "--limit", PREVIEW_LIMIT]
    for source, field in columns.items():
        args += ["--column", f"{source}={field}"]
    if skip_bad:
        args.append("--skip-bad-rows")
    try:
        result = run_engine(*args)
    except Exception as err:  # timeout, no Python: a message, never a dead tab
        yield (error_box("Could not check the data", str(err)), *empty)
        return
    report = last_json_line(result.stdout)
    if report is None:
        yield (error_box("Could not check the data", cli_failure(result)), *empty)
        return
    if "error" in report:
        err = report["error"]
        where = ", ".join(p for p in (err.get("file"), err.get("where"), err.get("field") and f"field '{err['field']}'") if p)
        lines = [f"{where}: {err['message']}"] + ([f"What to do: {err['hint']}"] if err.get("hint") else [])
        yield (error_box("This data cannot be used as it is", lines), "", NO_ROWS, gr.skip(), [], {})
        return
    report["inputs"] = key
    count = max(1, len(report["previews"]))
    yield (note_box(f"Read {report['file']}: ready to train.", "ok"), stats_markdown(report),
           rows_table(report["rows"]),
           gr.update(minimum=1, maximum=max(count, 2), value=1, step=1, interactive=count > 1,
                     label=f"Example to preview (first {count} of {report['stats']['examples']:,})"),
           highlighted(report["previews"][0] if report["previews"] else None), report)


def show_example(index, report):
    previews = (report or {}).get("previews") or []
    if not previews:
        return [], ""
    i = min(max(int(index or 1), 1), len(previews)) - 1
    return highlighted(previews[i]), example_caption(report, i)


def use_sample(path):
    """A sample replaces any uploaded file (the upload box is cleared so the page shows one choice)."""
    return (path, None) if path else (gr.skip(), gr.skip())


def use_upload(temp_path):
    """Raising gr.Error shows the reason and stops the chain (the old file stays chosen)."""
    try:
        return store_upload(temp_path)
    except (ValueError, OSError) as err:
        raise gr.Error(f"Upload refused: {err}") from None


# ---- layout ----------------------------------------------------------------------------------
def build(defaults) -> SimpleNamespace:
    """The tab's components; `wire` connects them once the model and max_seq_len fields exist."""
    c = SimpleNamespace()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            c.sample = gr.Dropdown(sample_choices(), value=None, label="Sample dataset", elem_id="sample",
                                   info="Bundled examples to start from.")
            c.upload = gr.File(label=f"Or upload a file (max {max_upload_mb():.0f} MB)",
                               file_types=UPLOAD_TYPES, type="filepath", height=120,
                               elem_id="upload")
            c.path = gr.Textbox(defaults.data.train, label="Training file", interactive=False,
                                info="What Train uses: JSON, JSONL, CSV or Parquet. The quickstart sample until "
                                     "you pick another.")
            c.format = gr.Dropdown(list(FORMATS), value=defaults.data.format, label="Format",
                                   info="auto detects alpaca, sharegpt, messages or text from the fields.")
            c.columns = gr.Textbox("", label="Column mapping (CSV or renamed fields)",
                                   placeholder="question=instruction, answer=output",
                                   info="file_column=field pairs, comma separated; press Enter to apply.")
            c.mask = gr.Dropdown(list(MASKS), value=defaults.data.mask, label="Train on", info=MASK_HELP)
            c.skip_bad = gr.Checkbox(defaults.data.skip_bad_rows, label="Skip bad rows",
                                     info="Leave broken rows out (they are counted) instead of stopping.")
            c.check = gr.Button("Check data", variant="secondary")
        with gr.Column(scale=3, min_width=420):
            c.message = gr.Markdown(elem_id="data-message", value=note_box("Pick a sample dataset or upload a file to see what will be trained."))
            c.stats = gr.Markdown("", elem_id="data-stats")
            c.table = gr.Dataframe(NO_ROWS, label="First rows", elem_id="data-table", interactive=False, wrap=True, max_height=280,
                                   max_chars=160)
            c.example = gr.Slider(1, 2, value=1, step=1, label="Example to preview", interactive=False)
            c.tokens = gr.HighlightedText(elem_id="tokens", label="Tokens (highlighted = trained)", color_map={"trained": "#22c55e"},
                                          combine_adjacent=True, show_legend=True)
            c.caption = gr.Markdown("", elem_classes="tl-help")
    c.report = gr.State({})
    return c


def wire(c: SimpleNamespace, model, max_seq_len) -> None:
    inputs = [c.path, c.format, c.columns, c.mask, c.skip_bad, model, max_seq_len, c.report]
    outputs = [c.message, c.stats, c.table, c.example, c.tokens, c.report]
    run = dict(fn=inspect, inputs=inputs, outputs=outputs, api_visibility="private", trigger_mode="always_last")
    forced = {**run, "fn": lambda *values: (yield from inspect(*values, force=True))}
    c.sample.input(use_sample, c.sample, [c.path, c.upload], api_visibility="private").then(**run)
    c.upload.upload(use_upload, c.upload, c.path, api_visibility="private").success(**run)
    c.check.click(**forced)
    c.format.input(**run)
    c.mask.input(**run)
    c.skip_bad.input(**run)
    c.columns.submit(**run)
    c.example.change(show_example, [c.example, c.report], [c.tokens, c.caption], api_visibility="private",
                     show_progress="hidden")
    c.report.change(show_example, [c.example, c.report], [c.tokens, c.caption], api_visibility="private",
                    show_progress="hidden")
