"""Data files other tools write, through `python -m engine data check`: format, kind, rows, trained tokens.

    python bench/formats_table.py FOLDER [FOLDER ...] [--out bench/results/llamafactory_formats.md]
                                  [--model smollm2-135m-instruct] [--max-seq-len 2048]

Every data file of each folder (.json, .jsonl, .csv, .parquet, .txt, .md; not its subfolders) is checked
from inside that folder, as a user would, with the default model's tokenizer for the token counts. A file
with a broken row is checked again with --skip-bad-rows, so the table shows both the first problem and what
the rest gives; a file that is refused shows the error as the user reads it. The folders are read, never
copied: LLaMA-Factory's demo files stay in their own checkout (fetch hiyouga/LLaMA-Factory, pass its data/).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_name  # noqa: E402

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt", ".md")


def check(path: Path, model: str, max_seq_len: int, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this checkout's engine, run from the data's own folder
    command = [sys.executable, "-m", "engine", "data", "check", path.name, "--json", "--model", model,
               "--max-seq-len", str(max_seq_len), *extra]
    result = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {"error": {"text": result.stderr.strip()[-300:]}}
    report["returncode"] = result.returncode
    return report


def row(path: Path, model: str, max_seq_len: int) -> dict:
    report = check(path, model, max_seq_len)
    first_problem = ""
    if "error" in report and report["error"].get("where", "").startswith(("line", "row")) \
            and report["error"].get("field"):
        first_problem = report["error"]["text"]
        retry = check(path, model, max_seq_len, "--skip-bad-rows")
        if "error" not in retry:
            report = retry
    return {"file": path.name, "report": report, "first_problem": first_problem}


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    lines = ["| file | format | kind | rows | trained tokens / tokens | what the check said |",
             "|---|---|---|---:|---:|---|"]
    for entry in rows:
        report = entry["report"]
        if "error" in report:
            lines.append(f"| {entry['file']} | refused | - | - | - | {cell(report['error'].get('text', ''))} |")
            continue
        rows_read = report["examples"] + report.get("skipped_bad_rows_count", 0)
        said = []
        if report.get("note"):
            said.append(report["note"])
        if report.get("documents"):
            said.append(f"{report['documents']} documents cut into {report['blocks']} blocks of up to "
                        f"{entry['max_seq_len']} tokens")
        if report.get("tool_examples"):
            said.append(f"{report['tool_examples']} with tool calls")
        if report.get("reasoning_examples"):
            own_place = report["template_has"]["reasoning"] and report["reasoning"] == "auto"
            where = ("in the template's own place" if own_place else "dropped" if report["reasoning"] == "drop"
                     else "inline as <think> (the template has no place)")
            said.append(f"{report['reasoning_examples']} with reasoning, kept {where}")
        if report.get("skipped_bad_rows_count"):
            said.append(f"{report['skipped_bad_rows_count']} bad row(s) skipped with --skip-bad-rows; without it: "
                        f"{entry['first_problem']}")
        if report.get("dropped"):
            said.append(f"dropped: {report['dropped']}")
        lines.append(f"| {entry['file']} | {report['format']} | {report['kind']} | {rows_read} | "
                     f"{report['trained_tokens']:,} / {report['tokens']:,} | {cell('; '.join(said)) or 'ok'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llamafactory_formats.md")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--source", default="", help="where the folders come from (printed in the header), e.g. "
                        "'LLaMA-Factory data/ at commit ...'")
    args = parser.parse_args()
    sections = []
    for folder in args.folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        rows = []
        for path in files:
            print(f"checking {path}", file=sys.stderr)
            entry = row(path, args.model, args.max_seq_len)
            entry["max_seq_len"] = args.max_seq_len
            rows.append(entry)
        sections.append(f"## {folder.resolve()}\n\n{table(rows)}\n")
    text = ("# Data files of other tools through `python -m engine data check`\n\n"
            f"Produced by `python bench/formats_table.py {' '.join(str(f) for f in args.folders)}` (each file checked "
            f"from its own folder, outside this repository), tokens counted with {args.model}'s tokenizer and chat "
            f"template at max_seq_len {args.max_seq_len}; conversation data trains the assistant turns (mask "
            "assistant), preference data its answers, raw text every token. CPU: "
            f"{cpu_name()} (token counts do not depend on it).\n\n"
            + (f"Source: {args.source}\n\n" if args.source else "") + "\n".join(sections))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
