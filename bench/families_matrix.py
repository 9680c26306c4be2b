"""The family x method matrix as a report: bench/results/families_matrix.md (and .json).

Each cell is tests/families.run_cell (the test matrix, tests/test_families.py): a method's preset on a tiny
random model of one transformers family (2 layers, hidden 64, the default model's tokenizer), two optimizer
steps as the trainer takes them (pre-run checks, estimate, load + apply, packed-attention check, step,
evaluation, step). A cell is `ok` when it trained, changed exactly the parameters the estimate counted (and,
for all-linear, adapted exactly what peft's all-linear selects) without the autograd-kernel warning;
`refused` when the pre-run checks stopped it with a reason (exit 2 from the CLI).

The "before" matrix was measured on commit f5350a2 (before issue 20) with bench/families_matrix_before.py,
which runs the same cells through that commit's API; its raw results are bench/results/families_matrix_before.json.

    python bench/families_matrix.py [--families llama,gpt2] [--methods lora,ia3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))

from families import FAMILIES, build_all, run_cell, verdict  # noqa: E402

from bench.machine import describe  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BEFORE = RESULTS / "families_matrix_before.json"


def cpu_flags() -> str:
    """The vector-unit flags of `lscpu` (AVX2 / AVX-512 / AMX decide bitsandbytes' CPU paths)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "lscpu unavailable"
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    return " ".join(f for f in flags if f.startswith(("avx", "amx"))) or "no AVX flags"


def short(text: str) -> str:
    """A cell of the table: ok, refused or what went wrong, in a few words."""
    if text == "ok":
        return "ok"
    if text.startswith("refused"):
        return "refused"
    if text.startswith("crash"):
        return "**crash**"
    return "**wrong**"


def table(results: dict, families: list[str], methods: list[str], now: dict | None = None) -> list[str]:
    """Families x methods; with `now` (the current results), a refusal of a cell that trains now is bold."""
    lines = ["| family | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for family in families:
        cells = []
        for key in methods:
            cell = short(results.get(f"{family}/{key}", {}).get("verdict", "-"))
            if cell == "refused" and now and now.get(f"{family}/{key}", {}).get("verdict") == "ok":
                cell = "**refused**"
            cells.append(cell)
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def details(results: dict) -> list[str]:
    return [f"- {cell}: {result['verdict']}" for cell, result in results.items() if result["verdict"] != "ok"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="")
    parser.add_argument("--methods", default="")
    parser.add_argument("--out", default=str(RESULTS / "families_matrix.md"))
    parser.add_argument("--render", action="store_true", help="rewrite the report from the recorded JSON only")
    args = parser.parse_args(argv)

    import torch

    from engine.core import describe
    from engine.methods import METHODS

    torch.set_num_threads(1)
    describe.IN_PROCESS = True
    os.environ["TUNELOOM_HOME"] = tempfile.mkdtemp(prefix="tuneloom-families-")
    families = [f for f in args.families.split(",") if f] or list(FAMILIES)
    methods = [m for m in args.methods.split(",") if m] or list(METHODS)
    if args.render:
        recorded = RESULTS / "families_matrix.json"
        return write_report(json.loads(recorded.read_text()), families, methods, args.out,
                            time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(recorded.stat().st_mtime)))
    paths = build_all(ROOT / ".cache" / "models" / "smollm2-135m-instruct")
    results = {}
    for family in families:
        for key in methods:
            try:
                cell = run_cell(str(paths[family]), key)
                cell["verdict"] = verdict(cell)
            except Exception as err:  # a crash is a result here
                where = traceback.extract_tb(err.__traceback__)[-1]
                cell = {"state": "crash", "verdict": f"crash: {type(err).__name__}: {str(err).splitlines()[0][:160]} "
                                                     f"({Path(where.filename).name}:{where.lineno})"}
            results[f"{family}/{key}"] = cell
            print(f"{family:10s} {key:14s} {cell['verdict'][:150]}", flush=True)
    (RESULTS / "families_matrix.json").write_text(json.dumps(results, indent=1, default=str))
    return write_report(results, families, methods, args.out, time.strftime("%Y-%m-%d %H:%M %Z"))


def write_report(results: dict, families: list[str], methods: list[str], out: str, when: str) -> int:
    before = json.loads(BEFORE.read_text()) if BEFORE.is_file() else {}
    ok = sum(r["verdict"] == "ok" for r in results.values())
    refused = sum(r["verdict"].startswith("refused") for r in results.values())
    lines = [
        "# Every method on every model family (CPU)",
        "",
        f"Measured {when} with `python bench/families_matrix.py` on {describe()}.",
        f"CPU vector flags (`lscpu`): `{cpu_flags()}`.",
        "",
        "Tiny random models built from each family's transformers config (2 layers, hidden 64, the default "
        "model's tokenizer; tests/families.py) x the method presets (presets/<method>.yaml; AdaLoRA's schedule "
        "and layer-wise unfreezing shortened so that two steps exercise them). **ok**: trained two steps with "
        "an evaluation between them and changed exactly the parameters the estimate counted; for all-linear, "
        "adapted exactly what peft's all-linear selects; no autograd-kernel warning. **refused**: stopped by the "
        "pre-run checks with the reason below (exit 2, before loading). **wrong**: trained, but not what the "
        "estimate said, not everything it said, or with the warning. **crash**: an exception mid-run.",
        "",
        f"## After ({ok} ok, {refused} refused, {len(results) - ok - refused} wrong or crashed, of {len(results)})",
        "",
        *table(results, families, methods),
        "",
        *details(results),
    ]
    if before:
        before_ok = sum(r["verdict"] == "ok" for r in before.values())
        lines += [
            "",
            f"## Before (commit f5350a2: {before_ok} ok of {len(before)})",
            "",
            "The same cells, same settings, on the code before issue 20 (`bench/families_matrix_before.py` run "
            "at that commit, with that commit's presets: IA3 then named `k_proj,v_proj,down_proj`). Not in the "
            "table: AdaLoRA's own preset schedule (tinit 6 + tfinal 12) with a short run failed there from a "
            "training callback (exit 1, a traceback); it is now refused before loading (exit 2). A **refused** "
            "in bold was refused wrongly: BitFit on models whose weights hold biases (Phi, OPT, Qwen2-MoE) or whose "
            "config can add them (Llama, Gemma2).",
            "",
            *table(before, families, methods, results),
            "",
            *details(before),
        ]
    Path(out).write_text("\n".join(lines) + "\n")
    print(f"{ok} ok, {refused} refused of {len(results)}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
