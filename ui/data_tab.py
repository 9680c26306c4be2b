"""Data tab: pick a sample or upload a file, choose how it is read, see what will be trained.

The numbers and token previews come from `python -m engine data inspect` (a child process
with the tokenizer), so they are exactly what the trainer will see.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from engine.core.config import schema_param
from engine.core.messages import Message
from engine.core.security import web_path_problem
from engine.core.workspace import (
    ALIASES,
    PROJECT_ROOT,
    data_display_name,
    is_prepared,
    resolve_model,
)
from ui import data_notes, messages
from ui.common import CLI_TIMEOUT_S, ClampedSlider, cli_failure, engine, error_box, last_json_line, note_box, reason
from ui.data_text import MASK_HELP, TEXT  # noqa: F401  (the tab's words, en + zh)
from ui.lang import loc, norm, remount, tr
from ui.uploads import UPLOAD_TYPES, max_upload_mb, store_upload, uploaded_files  # noqa: F401
from ui.warm_cli import WARM

SAMPLES_DIR = PROJECT_ROOT / "presets" / "data"
SAMPLE_NOTES = {  # a friendlier label for the bundled samples; any other file shows its name
    "en": {"identity.jsonl": "identity: who the assistant is (instruction/output)",
           "chat_multiturn.jsonl": "multi-turn chat (messages with roles)",
           "polite_pairs.jsonl": "preference pairs: polite (chosen) vs rude (rejected), for DPO / ORPO / SimPO",
           "polite_unpaired.jsonl": "answers marked desirable or not (polite / rude), for KTO"},
    "zh": {"identity.jsonl": "identity：助手是谁（instruction/output）",
           "chat_multiturn.jsonl": "多轮对话（带角色的 messages）",
           "polite_pairs.jsonl": "偏好对：礼貌（chosen）与粗鲁（rejected），用于 DPO / ORPO / SimPO",
           "polite_unpaired.jsonl": "标记好坏的回答（礼貌 / 粗鲁），用于 KTO"},
}
NO_ROWS = {"headers": ["—"], "data": [[""]]}  # the table's label says what appears here
PREVIEW_LIMIT = 50  # token previews fetched per inspect; the slider moves within them


def sample_choices(lang: str = "en") -> list[tuple[str, str]]:
    files = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in UPLOAD_TYPES)
    notes = SAMPLE_NOTES[norm(lang)]
    return [(notes.get(p.name, p.name), str(p.relative_to(PROJECT_ROOT))) for p in files]


def parse_columns(text: str) -> dict:
    """'question=instruction, answer=output' -> {'question': 'instruction', 'answer': 'output'}."""
    mapping = {}
    for item in filter(None, (part.strip() for part in (text or "").replace("\n", ",").split(","))):
        source, sep, target = (s.strip() for s in item.partition("="))
        if not sep or not source or not target:
            raise ValueError(Message("config.column_pair", item=repr(item)))
        mapping[source] = target
    return mapping


# ---- rendering the inspect report ----------------------------------------------------------
def rows_table(rows: list[dict]) -> dict:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    # columns empty in every shown row (an unused alpaca 'input') only squeeze the others
    headers = [h for h in headers if any(row.get(h) not in (None, "", [], {}) for row in rows)] or ["(no rows)"]

    def cell(value) -> str:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 300 else text[:300] + "…"

    return {"headers": headers, "data": [[cell(row.get(h, "")) for h in headers] for row in rows] or [[""]]}


def stats_markdown(report: dict, lang="en") -> str:
    s = report["stats"]
    share = tr(TEXT, lang, "share", pct=f"{s['trained_tokens'] / s['tokens']:.0%}") if s.get("tokens") else ""
    name = report.get("name") or report["file"]  # as the user knows it (an upload: as uploaded)
    lines = [tr(TEXT, lang, "file_line", file=name, format=report["format"], fields=", ".join(report["fields"])),
             tr(TEXT, lang, "counts", examples=f"{s['examples']:,}", tokens=f"{s['tokens']:,}",
                trained=f"{s['trained_tokens']:,}", share=share, longest=f"{s['max_tokens']:,}")]
    dropped = sum(s.get("dropped", {}).values())
    if dropped:
        reasons = "; ".join(f"{n} × {dropped_reason(s, why, lang)}" for why, n in s["dropped"].items())
        lines.append(tr(TEXT, lang, "dropped", n=dropped, reasons=reasons))
        lines += [f"- {dropped_row(s, row, lang)}" for row in s.get("dropped_rows", [])[:5]]
    if s.get("skipped_bad_rows_count"):
        lines.append(tr(TEXT, lang, "skipped", n=s["skipped_bad_rows_count"]))
        rows = s.get("skipped_bad_rows_i18n") or s.get("skipped_bad_rows", [])
        lines += [f"- {'; '.join(messages.data_error(row, lang)) if isinstance(row, dict) else row}"
                  for row in rows[:5]]
    if not dropped and not s.get("skipped_bad_rows_count"):
        lines.append(tr(TEXT, lang, "none_dropped"))
    return "\n\n".join(lines + data_notes.notes(report, lang))


def dropped_reason(stats: dict, why: str, lang="en") -> str:
    """Why examples were dropped, in the page's language (the stats carry each reason's message code)."""
    return messages.say((stats.get("dropped_i18n") or {}).get(why) or why, lang)


def dropped_row(stats: dict, row: str, lang="en") -> str:
    """ "line 7: <reason>" in the page's language."""
    place, _, why = row.partition(": ")
    return f"{messages.where(place, lang)}: {dropped_reason(stats, why, lang)}" if why else row


def highlighted(preview: dict | None, key: str = "tokens", lang="en") -> list[tuple[str, str | None]]:
    if not preview:
        return []
    if preview.get("dropped"):
        why = messages.say((preview.get("dropped_i18n") or preview["dropped"]), lang)
        return [(tr(TEXT, lang, "dropped_one", where=messages.where(preview["where"], lang), why=why), None)]
    trained = tr(TEXT, lang, "trained")
    return [(t["token"], data_notes.part_label(t, lang) or (trained if t["trained"] else None))
            for t in preview.get(key) or []]


def token_colors(color: str):
    """The legend of a token view, keyed by the word for "trained" in the page's language (tool calls, tool
    outputs and reasoning in their own colours: ui/data_notes.py)."""
    return lambda lang: {tr(TEXT, lang, "trained"): color, **data_notes.part_colors(lang)}


def rejected_update(report: dict | None, preview: dict | None, lang="en"):
    """The rejected answer's tokens: shown for pairwise data only (the chosen answer's are in the main view)."""
    pairwise = (report or {}).get("kind") == "pairwise"
    return gr.update(value=highlighted(preview, "rejected_tokens", lang) if pairwise else [], visible=pairwise,
                     label=tr(TEXT, lang, "rejected_tokens"), color_map=token_colors("#ef4444")(lang))


def tokens_label(report: dict | None, lang="en") -> str:
    return tr(TEXT, lang, "chosen_tokens" if (report or {}).get("kind") == "pairwise" else "tokens")


def example_caption(report: dict, index: int, lang="en") -> str:
    previews = report.get("previews") or []
    if not previews:
        return ""
    preview = previews[index]
    trained = sum(t["trained"] for t in preview["tokens"])
    if preview.get("kind") == "prompt" and not preview.get("dropped"):
        references = ", ".join(f"{name} = {value}" for name, value in preview["references"].items())
        return tr(TEXT, lang, "prompt_caption", where=messages.where(preview["where"], lang),
                  tokens=len(preview["tokens"]), references=references or tr(TEXT, lang, "no_references"))
    if preview.get("kind") in ("pairwise", "unpaired") and not preview.get("dropped"):
        prompt = len(preview["tokens"]) - trained
        if preview["kind"] == "pairwise":
            return tr(TEXT, lang, "pair_caption", where=messages.where(preview["where"], lang), prompt=prompt,
                      chosen=trained,
                      rejected=sum(t["trained"] for t in preview["rejected_tokens"]))
        return tr(TEXT, lang, "unpaired_caption", where=messages.where(preview["where"], lang), prompt=prompt,
                  answer=trained, label=tr(TEXT, lang, "desirable" if preview.get("label") else "undesirable"))
    return tr(TEXT, lang, "caption", where=messages.where(preview["where"], lang), tokens=len(preview["tokens"]),
              trained=trained)


def kind_note(report: dict, lang="en") -> str:
    kind = report.get("kind")
    if kind == "prompt":
        return tr(TEXT, lang, "prompt_note")
    if kind not in ("pairwise", "unpaired"):
        return ""
    objectives = "dpo / orpo / simpo" if kind == "pairwise" else "kto"
    return tr(TEXT, lang, "preference_note", kind=kind, objectives=objectives)


# ---- handlers --------------------------------------------------------------------------------
def data_key(path, fmt, columns_text, mask, skip_bad, model, max_seq_len, split="train", subset="",
             reasoning="auto") -> list:
    """What a data check depends on: the same inputs give the same report."""
    return [path, fmt, columns_text, mask, bool(skip_bad), model, int(max_seq_len or 512), split or "train",
            subset or "", reasoning or "auto"]


def same_data(report: dict | None, key: list) -> bool:
    """The report was made for this data, read this way, with this tokenizer (max_seq_len aside: it truncates)."""
    inputs = (report or {}).get("inputs") or []
    return len(inputs) == len(key) and inputs[:6] == key[:6] and inputs[7:] == key[7:]


def check_data(key: list) -> dict:
    """`python -m engine data inspect` for a `data_key`: the report (its "inputs" are the key; "name" is the data's
    name as the user knows it), with "error" for data that cannot be used, "columns_error" for a mapping that
    cannot be read, or "failure" when the check itself could not run. The Data tab and Start both use it."""
    path, fmt, columns_text, mask, skip_bad, model, max_seq_len, split, subset, reasoning = key
    base = {"inputs": key, "name": data_display_name(path)}
    try:
        columns = parse_columns(columns_text)
    except ValueError as err:
        return {**base, "columns_error": reason(err)}  # worded in the page's language by error_box
    args = ["data", "inspect", path, "--format", fmt, "--mask", mask, "--max-seq-len", max_seq_len,
            "--model", model, "--limit", PREVIEW_LIMIT]
    for source, field in columns.items():
        args += ["--column", f"{source}={field}"]
    if skip_bad:
        args.append("--skip-bad-rows")
    args += ["--split", split.strip() or "train", "--subset", subset.strip(), "--reasoning", reasoning]
    try:
        result = WARM.run(*args, timeout=CLI_TIMEOUT_S)  # a warm process: no imports paid per check
    except Exception as err:  # timeout, no Python: a message, never a dead tab
        return {**base, "failure": str(err)}
    report = last_json_line(result.stdout)
    if report is None:
        return {**base, "failure": cli_failure(result)}
    return {**report, **base}


def report_problem(report: dict | None, lang="en") -> str:
    """The red box for a data check that found the data unusable (or could not run); "" when the data can train.
    One function for the Data tab and for Start, so both refuse the same data with the same words."""
    report = report or {}
    if report.get("columns_error"):
        return error_box(tr(TEXT, lang, "column_mapping"), report["columns_error"], lang)
    if report.get("failure"):
        return error_box(tr(TEXT, lang, "cannot_check"), engine(report["failure"]), lang)
    if report.get("error"):
        return error_box(tr(TEXT, lang, "unusable"), messages.data_error(report["error"], lang))
    stats = report.get("stats")
    if stats is not None and not stats.get("examples"):  # the trainer would stop: nothing left to learn
        reasons = "; ".join(f"{n} × {dropped_reason(stats, why, lang)}"
                            for why, n in (stats.get("dropped") or {}).items())
        return error_box(tr(TEXT, lang, "unusable"), tr(TEXT, lang, "all_dropped", file=report.get("name", ""),
                                                         reasons=reasons or "-"))
    return ""


def refuses_start(report: dict | None) -> bool:
    """Data that cannot train (a check that could not run is no verdict: the trainer then says what it finds)."""
    return bool(report_problem(report)) and not (report or {}).get("failure")


def inspect(path, fmt, columns_text, mask, skip_bad, model, max_seq_len, report=None, lang="en", split="train",
            subset="", reasoning="auto", force=False):
    """Generator: a 'checking' note first (the tokenizer takes seconds to load), then the report.

    The same settings twice in a row (a dropdown can fire twice for one pick) are not checked again
    unless `force` (the Check data button).
    """
    empty = (gr.skip(),) * 6
    key = data_key(path, fmt, columns_text, mask, skip_bad, model, max_seq_len, split, subset, reasoning)
    if not force and (report or {}).get("inputs") == key:
        yield (gr.skip(), *empty)
        return
    if not path:
        yield (note_box(tr(TEXT, lang, "pick")), "", NO_ROWS, gr.skip(), [], {}, gr.update(visible=False))
        return
    yield (note_box(tr(TEXT, lang, "checking", file=data_display_name(path), model=model)), *empty)
    report = check_data(key)
    if "stats" not in report:  # nothing could be read
        yield (report_problem(report, lang), "", NO_ROWS, gr.skip(), [], report, gr.update(visible=False))
        return
    count = max(1, len(report["previews"]))
    first = report["previews"][0] if report["previews"] else None
    yield (report_message(report, lang), report_stats(report, lang),
           rows_table(report["rows"]),
           gr.update(minimum=1, maximum=max(count, 2), value=1, step=1, interactive=count > 1,
                     label=example_label(report, lang)),
           gr.update(value=highlighted(first, lang=lang), label=tokens_label(report, lang),
                     color_map=token_colors("#22c55e")(lang)), report,
           rejected_update(report, first, lang))


def report_message(report: dict, lang="en") -> str:
    """The box above the numbers: what is wrong with the data, or that it is ready."""
    return report_problem(report, lang) or note_box(tr(TEXT, lang, "ready", file=report.get("name") or report["file"]),
                                                    "ok")


def report_stats(report: dict, lang="en") -> str:
    note = kind_note(report, lang)
    return stats_markdown(report, lang) + (f"\n\n{note}" if note else "")


def example_label(report: dict, lang="en") -> str:
    return tr(TEXT, lang, "example_of", count=max(1, len(report.get("previews") or [])),
              total=f"{report['stats']['examples']:,}")


def relabel(index, report, lang="en"):
    """A language switch: the message, numbers and previews of the data already read, in the new language (the
    example slider's and the tokens' labels are worded here, not by the switch: they depend on the data)."""
    colors = token_colors("#22c55e")(lang)
    if not report or not report.get("inputs") or "stats" not in report:  # nothing read, or nothing could be
        message = report_problem(report, lang) if report and report.get("inputs") else ""
        return message or note_box(tr(TEXT, lang, "start_note")), gr.skip(), \
            gr.update(label=tr(TEXT, lang, "example")), gr.update(label=tr(TEXT, lang, "tokens"), color_map=colors), \
            gr.skip(), gr.skip()
    tokens, caption, rejected = show_example(index, report, lang)
    return report_message(report, lang), report_stats(report, lang), gr.update(label=example_label(report, lang)), \
        gr.update(value=tokens, label=tokens_label(report, lang), color_map=colors), caption, rejected


def show_example(index, report, lang="en"):
    previews = (report or {}).get("previews") or []
    if not previews:
        return [], "", gr.update(visible=False)
    i = min(max(int(index or 1), 1), len(previews)) - 1
    return highlighted(previews[i], lang=lang), example_caption(report, i, lang), \
        rejected_update(report, previews[i], lang)


def use_sample(path):
    """A sample replaces any uploaded file (the upload box is cleared so the page shows one choice)."""
    return (path, None, data_display_name(path)) if path else (gr.skip(), gr.skip(), gr.skip())


def use_source(value, lang="en"):
    """A datasets folder (confined to the folders the server may read) or hub:owner/name becomes the data."""
    value = (value or "").strip()
    if not value:
        return gr.skip(), gr.skip()
    problem = None if value.startswith("hub:") else web_path_problem(value, "data", "data.train")
    if problem is None and not value.startswith("hub:") and not Path(value).expanduser().is_dir() \
            and not (PROJECT_ROOT / value).is_dir():
        problem = tr(TEXT, lang, "no_folder", value=value)
    if problem:
        raise gr.Error(messages.say(problem, lang))
    return value, data_display_name(value)


def use_upload(temp_path, lang="en"):
    """Raising gr.Error shows the reason and stops the chain (the old file stays chosen)."""
    try:
        stored = store_upload(temp_path, lang)
    except (ValueError, OSError) as err:
        raise gr.Error(tr(TEXT, lang, "refused", why=err)) from None
    return stored, data_display_name(stored)


# ---- the choice survives a reload ----------------------------------------------------------------
def remembered_choice(report: dict | None):
    """What the browser keeps of the data choice (gr.BrowserState): the settings of the last check."""
    inputs = (report or {}).get("inputs")
    if not inputs:
        return gr.skip()
    path, fmt, columns, mask, skip_bad = inputs[:5]
    return {"path": path, "name": data_display_name(path), "format": fmt, "columns": columns, "mask": mask,
            "skip_bad": bool(skip_bad)}


def restorable(saved) -> dict | None:
    """A remembered choice that can still be used: its file is still there and this server may read it."""
    if not isinstance(saved, dict) or not isinstance(saved.get("path"), str) or not saved["path"].strip():
        return None
    path = saved["path"].strip()
    if not path.startswith("hub:"):
        if web_path_problem(path, "data", "data.train"):
            return None
        found = Path(path).expanduser() if Path(path).expanduser().is_absolute() else PROJECT_ROOT / path
        if not found.exists():
            return None
    fmt, mask = saved.get("format"), saved.get("mask")
    return {"path": path, "format": fmt if fmt in schema_param("data", "format").choices else "auto",
            "columns": saved.get("columns") if isinstance(saved.get("columns"), str) else "",
            "mask": mask if mask in schema_param("data", "mask").choices else "assistant",
            "skip_bad": bool(saved.get("skip_bad"))}


def restore(saved):
    """On page load: the data chosen before the reload (path, its name, how it is read), else nothing changes."""
    choice = restorable(saved)
    if choice is None:
        return (gr.skip(),) * 6
    return (choice["path"], data_display_name(choice["path"]), choice["format"], choice["columns"], choice["mask"],
            choice["skip_bad"])


def model_ready(model) -> bool:
    """The data check loads the model's tokenizer: only once the model is there (prepared, or a local folder)."""
    model = (model or "").strip()
    if model in ALIASES:
        return is_prepared(model)
    return (Path(resolve_model(model)) / "config.json").is_file() if model else False


# ---- layout ----------------------------------------------------------------------------------
def build(defaults) -> SimpleNamespace:
    """The tab's components; `wire` connects them once the model and max_seq_len fields exist."""
    en = TEXT["en"]
    c = SimpleNamespace()

    def upload_label(lang):
        return tr(TEXT, lang, "upload", mb=f"{max_upload_mb():.0f}")

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            c.sample = loc(gr.Dropdown(sample_choices(), value=None, label=en["sample"], elem_id="sample",
                                       info=en["sample_info"]), TEXT, label="sample", info="sample_info",
                           choices=sample_choices)
            c.upload = loc(gr.File(label=upload_label("en"), file_types=UPLOAD_TYPES, type="filepath", height=120,
                                   elem_id="upload"), TEXT, label=upload_label)
            remount(c.upload)  # its drop-zone words come from Gradio's own translations
            c.source = loc(gr.Textbox("", label=en["source"], placeholder=en["hub_placeholder"],
                                      info=en["source_info"], elem_id="data-source"), TEXT, label="source",
                           info="source_info", placeholder="hub_placeholder")
            # the path the run uses (hidden: a stored upload's path means nothing to the user) and its name as
            # the user knows it (engine/core/workspace.data_display_name)
            c.path = gr.Textbox(defaults.data.train, visible=False, elem_id="data-path")
            c.file = loc(gr.Textbox(data_display_name(defaults.data.train), label=en["path"], interactive=False,
                                    info=en["path_info"], elem_id="data-file"), TEXT, label="path", info="path_info")
            c.format = loc(gr.Dropdown(list(schema_param("data", "format").choices), value=defaults.data.format,
                                       label=en["format"], info=en["format_info"]), TEXT, label="format",
                           info="format_info")
            c.columns = loc(gr.Textbox("", label=en["columns"], placeholder="question=instruction, answer=output",
                                       info=en["columns_info"]), TEXT, label="columns", info="columns_info")
            c.mask = loc(gr.Dropdown(list(schema_param("data", "mask").choices), value=defaults.data.mask,
                                     label=en["mask"], info=en["mask_info"]), TEXT, label="mask", info="mask_info")
            c.skip_bad = loc(gr.Checkbox(defaults.data.skip_bad_rows, label=en["skip_bad"], info=en["skip_bad_info"]),
                             TEXT, label="skip_bad", info="skip_bad_info")
            c.check = loc(gr.Button(en["check"], variant="secondary"), TEXT, value="check")
        with gr.Column(scale=3, min_width=420):
            c.message = gr.Markdown(elem_id="data-message", value=note_box(en["start_note"]))
            c.stats = gr.Markdown("", elem_id="data-stats")
            c.table = loc(gr.Dataframe(NO_ROWS, label=en["first_rows"], elem_id="data-table", interactive=False,
                                       wrap=True, max_height=280, max_chars=160), TEXT, label="first_rows")
            c.example = ClampedSlider(1, 2, value=1, step=1, label=en["example"], interactive=False,
                                      elem_id="example")  # its label follows the language in `relabel`
            c.tokens = gr.HighlightedText(elem_id="tokens", label=en["tokens"],
                                          color_map=token_colors("#22c55e")("en"), combine_adjacent=True,
                                          show_legend=True)  # as c.example
            c.rejected = gr.HighlightedText(elem_id="rejected-tokens", label=en["rejected_tokens"],
                                            color_map=token_colors("#ef4444")("en"), combine_adjacent=True,
                                            show_legend=True, visible=False)  # pairwise data only
            c.caption = gr.Markdown("", elem_classes="tl-help")
    c.report = gr.State({})
    c.remembered = gr.BrowserState({}, storage_key="tuneloom-data")  # the choice, kept across reloads
    return c


def wire(c: SimpleNamespace, model, max_seq_len, lang, split=None, subset=None, reasoning=None) -> None:
    inputs = [c.path, c.format, c.columns, c.mask, c.skip_bad, model, max_seq_len, c.report, lang,
              *(x for x in (split, subset, reasoning) if x is not None)]
    outputs = [c.message, c.stats, c.table, c.example, c.tokens, c.report, c.rejected]
    # one check at a time, in the order asked: the check made on page load never lands after a file picked meanwhile
    run = dict(fn=inspect, inputs=inputs, outputs=outputs, api_visibility="private", trigger_mode="always_last",
               concurrency_id="data-check", concurrency_limit=1)
    forced = {**run, "fn": lambda *values: (yield from inspect(*values, force=True))}
    c.run, c.lang = run, lang  # the check, also started on page load (wire_load)
    c.sample.input(use_sample, c.sample, [c.path, c.upload, c.file], api_visibility="private").then(**run)
    c.upload.upload(use_upload, [c.upload, lang], [c.path, c.file], api_visibility="private").success(**run)
    c.source.submit(use_source, [c.source, lang], [c.path, c.file], api_visibility="private").success(**run)
    c.check.click(**forced)
    c.format.input(**run)
    c.mask.input(**run)
    c.skip_bad.input(**run)
    c.columns.submit(**run)
    if reasoning is not None:  # set under Train, more settings (data.reasoning); the preview follows it
        reasoning.input(**run)
    c.example.change(show_example, [c.example, c.report, lang], [c.tokens, c.caption, c.rejected],
                     api_visibility="private", show_progress="hidden")
    c.report.change(show_example, [c.example, c.report, lang], [c.tokens, c.caption, c.rejected],
                    api_visibility="private", show_progress="hidden")
    lang.change(relabel, [c.example, c.report, lang], [c.message, c.stats, c.example, c.tokens, c.caption, c.rejected],
                api_visibility="private", show_progress="hidden")
    c.report.change(remembered_choice, c.report, c.remembered, api_visibility="private", show_progress="hidden")


def wire_load(demo, c: SimpleNamespace, model, language_saved) -> None:
    """On page load: the data chosen before the reload comes back, and the data is checked, so the Train tab
    shows what the run will use (name, format, rows, trained tokens) and the estimate uses its lengths.
    The check is worded in the remembered language (`language_saved`, the browser's memory of the switch): the
    switch itself is still English while the page loads."""
    private = dict(api_visibility="private")
    inputs = list(c.run["inputs"])
    inputs[inputs.index(c.lang)] = language_saved
    demo.load(restore, c.remembered, [c.path, c.file, c.format, c.columns, c.mask, c.skip_bad],
              show_progress="hidden", **private).then(
        check_on_load, inputs, c.run["outputs"], show_progress="hidden", concurrency_id="data-check",
        concurrency_limit=1, **private)


def check_on_load(*values):
    """The load-time check; not while the model is still missing (its note at the top says so)."""
    if model_ready(values[5]):
        yield from inspect(*values)
    else:
        yield (gr.skip(),) * 7
