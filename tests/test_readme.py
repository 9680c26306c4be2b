"""The README tells the truth, and the next drift fails here:

1. its benchmark numbers are the ones recorded in the bench/results/ file it names beside them (and the one
   table a pure script computes, memory_published.md, is what the current estimator gives);
2. every line of its shell blocks runs (the tiny model, a few steps; the two `make` lines are skipped, each
   with its reason), and the commands it quotes in the text exist with the flags it gives them;
3. its API table is the running app's `view_api()`, and the keys it lists are the ones the API returns;
4. the paths it names exist, its Layout lists engine/'s rooms in their import order, its config block is the
   schema's defaults.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
RESULTS = ROOT / "bench" / "results"


# ---- reading the README and the records ------------------------------------------------------------------
def section(title: str) -> str:
    """The README's section under the heading `title` (## or ###), up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def paragraph(start: str, text: str = README) -> str:
    """The paragraph of `text` that contains `start`, up to the next blank line."""
    at = text.index(start)
    begin = text.rfind("\n\n", 0, at) + 2
    end = text.find("\n\n", at)
    return " ".join(text[begin:end if end >= 0 else None].split())


def table(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with `header_start`."""
    lines = text[text.index(header_start):].splitlines()
    rows = []
    for line in lines[2:]:  # header and separator
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def record(name: str) -> str:
    return (RESULTS / name).read_text(encoding="utf-8")


def numbers(text: str) -> list[str]:
    """The numbers in `text` as written (sign kept, thousands separators dropped)."""
    return re.findall(r"[-+]?\d+(?:\.\d+)?", text.replace(",", ""))


def shown_as(recorded: str | float, shown: str) -> bool:
    """Whether the README's `shown` is the `recorded` value rounded to the digits the README gives it."""
    places = len(shown.split(".")[1]) if "." in shown else 0
    exact = Decimal(str(recorded)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return exact == Decimal(shown)


def assert_rounded(shown: list[str], recorded: list, what: str) -> None:
    assert len(shown) == len(recorded), (what, shown, recorded)
    for s, r in zip(shown, recorded):
        assert shown_as(r, s), f"{what}: README says {s}, the record says {r}"


def found(pattern: str, text: str, what: str) -> tuple[str, ...]:
    """The groups of `pattern` in `text`, line breaks read as spaces (as in the rendered page)."""
    match = re.search(pattern, " ".join(text.split()), re.S)
    assert match, f"{what}: {pattern!r} not found"
    return match.groups()


PERFORMANCE = section("Performance")


# ---- 1. the numbers are the recorded ones ------------------------------------------------------------------
def test_training_throughput_table_is_the_recorded_run():
    rows = {row[0]: row for row in table(PERFORMANCE, "| loop | tokens/s | peak RSS |")}
    ours = {row[0]: row for row in table(record("throughput_cpu_fp32.md"), "| loop |")}
    peer = {row[0]: row for row in table(record("peer_llamafactory_cpu_fp32.md"), "| loop |")}
    reference = rows["`transformers.Trainer` + peft, dynamic padding (the reference)"]
    assert_rounded([numbers(c)[0] for c in reference[1:4]],
                   [numbers(c)[0] for c in ours["reference (Trainer + peft, padded)"][1:4]], "reference row")
    tuneloom = rows["**Tuneloom** (`python -m engine train`)"]
    assert_rounded([numbers(c)[0] for c in tuneloom[1:4]],
                   [numbers(c)[0] for c in ours["Tuneloom (`python -m engine train`)"][1:4]], "Tuneloom row")
    ratio = rows["Tuneloom / reference"]
    assert_rounded([numbers(c)[0] for c in ratio[1:4]], [numbers(c)[0] for c in ours["**ratio**"][1:4]], "ratios")
    label = next(k for k in rows if k.startswith("LLaMA-Factory 0.9.5"))
    recorded = peer["LLaMA-Factory 0.9.5 (padded)"]
    assert_rounded([numbers(c)[0] for c in rows[label][1:4]], [recorded[1], recorded[4], recorded[5]], "peer row")
    (then,) = found(r"reference then ([\d.]+)\)", label, "the peer's own reference")
    assert shown_as(peer["reference (Trainer + peft, padded)"][1], then)


@pytest.mark.parametrize("name", ["throughput_cpu_fp32", "throughput_cpu_avx512bf16_fp32",
                                  "throughput_cpu_avx512bf16_bf16"])
def test_each_throughput_record_is_what_the_script_writes(name):
    """The Markdown beside each recorded run is bench/throughput.py's (`--render`), reproduce line included."""
    sys.path.insert(0, str(ROOT / "bench"))
    import throughput

    recorded = json.loads((RESULTS / f"{name}.json").read_text())
    assert throughput._markdown(recorded) == record(f"{name}.md")
    assert f"--data {Path(recorded['settings']['data']).name}" in record(f"{name}.md")


def test_native_bf16_table_is_the_recorded_runs():
    for row in table(PERFORMANCE, "| precision | reference tokens/s |"):
        precision = "fp32" if row[0] == "fp32" else "bf16"
        rec = {r[0]: r for r in table(record(f"throughput_cpu_avx512bf16_{precision}.md"), "| loop |")}
        ref, ours, ratio = rec["reference (Trainer + peft, padded)"], rec["Tuneloom (`python -m engine train`)"], \
            rec["**ratio**"]
        assert_rounded(numbers(" ".join(row[1:])),
                       [ref[1], ours[1], numbers(ratio[1])[0], ours[2], ref[2], numbers(ratio[2])[0],
                        numbers(ratio[3])[0]], f"{precision} row")
    text = paragraph("bf16 against fp32 on this CPU", PERFORMANCE)
    shown = found(r"Tuneloom ([\d.]+) against ([\d.]+) tokens/s, the reference ([\d.]+) against ([\d.]+)", text, "")
    tokens = [table(record(f"throughput_cpu_avx512bf16_{p}.md"), "| loop |") for p in ("bf16", "fp32")]
    assert_rounded(list(shown), [tokens[0][1][1], tokens[1][1][1], tokens[0][0][1], tokens[1][0][1]], "bf16 vs fp32")
    assert_rounded(list(found(r"saves memory \(([\d.]+) against ([\d.]+) GiB\)", text, "")),
                   [tokens[0][1][2], tokens[1][1][2]], "bf16 memory")


def test_seconds_per_step_of_every_method_are_the_recorded_ones():
    text = paragraph("**Every method on the default model**", PERFORMANCE)
    recorded = {row[0]: row[4] for row in table(record("methods_real_cpu.md"), "| method |")}
    per_step = {m: float(v) for m, v in recorded.items() if re.fullmatch(r"[\d.]+", v)}
    quoted = re.findall(r"([\d.]+) \(`(\w+)`", text) + [(v, m) for m, v in re.findall(r"`(\w+)` ([\d.]+)", text)]
    assert len(quoted) >= 6, text
    for value, method in quoted:
        assert recorded[method] == value, f"{method}: README {value} s/step, methods_real_cpu.md {recorded[method]}"
    low, high = found(r"range from ([\d.]+) .*? to ([\d.]+)", text, "the range")
    assert (float(low), float(high)) == (min(per_step.values()), max(per_step.values()))


def test_methods_table_is_the_recorded_real_data_runs():
    """The Methods section's measured table is bench/results/methods_real_cpu.md's, row for row, and that table's
    change against the base is, by definition, the mean over seeds of eval/base - 1 in the record's rows."""
    shown = table(section("Which method to pick, measured"), "| method | eval loss (base) per seed |")
    recorded = table(record("methods_real_cpu.md"), "| method | eval loss (base) per seed |")
    assert shown == recorded and len(shown) == 16, "README's measured methods table differs from the record"
    rows = json.loads((RESULTS / "methods_real_cpu.json").read_text())["rows"]
    for line in recorded:
        mine = [r for r in rows if r["key"] == line[0]]
        change = sum(r["final_eval_loss"] / r["base_eval_loss"] - 1 for r in mine) / len(mine)
        assert line[2] == f"{100 * change:+.1f}%", line


def test_memory_estimate_accuracy_is_the_recorded_one():
    text = paragraph("**Memory estimate against measured peaks**", PERFORMANCE)
    published = record("memory_published.md")
    within15, rows, within10 = found(r"(\d+) of (\d+) comparable rows within 15% \((\d+) within 10%\)", text, "tally")
    assert (rows, within10, within15) == found(
        r"Estimator as is, comparable rows: (\d+) rows: (\d+) within 10%, (\d+) within 15%", published, "record")
    outside = [r for r in table(published, "| # | source |") if "(n/c)" not in r[10]
               and abs(float(numbers(r[10])[0])) > 15]
    words = {"two": 2, "three": 3, "four": 4, "five": 5}
    count, low, high = found(r"the (\w+) outside are LitGPT's QLoRA rows \((-\d+)% to (-\d+)%\)", text, "outside")
    assert words[count] == len(outside) == int(rows) - int(within15)
    assert all(r[1].startswith("litgpt") and r[3] == "qlora" for r in outside)
    errors = sorted(float(numbers(r[10])[0]) for r in outside)
    assert shown_as(errors[-1], low) and shown_as(errors[0], high)
    (added,) = found(r"within (\d+)% with that added", text, "with the source effect")
    assert shown_as(max(abs(float(numbers(r[11])[0])) for r in outside), added)
    # the record itself is what the current estimator gives (pure Python: re-computed here)
    sys.path.insert(0, str(ROOT / "bench"))
    import memory_published

    fresh = memory_published.report([(row, memory_published.evaluate(row)) for row in memory_published.ROWS])
    assert fresh == published, "bench/results/memory_published.md is stale: run python bench/memory_published.py"

    (prefix,) = found(r"Prefix tuning read \+(\d+)% until", text, "prefix")
    (before,) = found(r"prefix tuning \+([\d.]+)%", published, "prefix before")
    assert shown_as(before, prefix)
    cells_within, total, mean = found(r"\*\*(\d+) of (\d+) cells within 10%\*\* \(mean absolute error ([\d.]+)%",
                                      text, "")
    accuracy = record("memory_accuracy_cpu.md")
    assert (cells_within, total, mean) == found(r"(\d+) of (\d+) runs within 10%\. Mean absolute error ([\d.]+)%",
                                         accuracy, "record")
    cells = [r for r in table(accuracy, "| method | grad ckpt |") if len(r) == 7 and re.fullmatch(r"[-+][\d.]+", r[6])]
    misses = [r[6] for r in cells if abs(float(r[6])) > 10]
    (listed,) = found(r"the \w+ misses, ([-\d.%, and]+), are", text, "misses")
    assert sorted(misses) == sorted(re.findall(r"-[\d.]+", listed)) and len(misses) == int(total) - int(cells_within)
    system = found(r"(\d+) of 36 runs within 10%", record("memory_accuracy_cpu_system_malloc.md"), "glibc")
    assert found(r"glibc's malloc lands (\d+) of 36", text, "glibc") == system


@pytest.mark.parametrize("name", ["memory_accuracy_cpu", "memory_accuracy_cpu_system_malloc",
                                  "memory_accuracy_cpu_virtual200_fp32"])
def test_the_memory_accuracy_records_are_the_current_estimators(name):
    """Re-scoring is pure arithmetic on each recorded cell's settings: done here, it must give the record's
    Markdown, so a change to the estimator that moves these numbers fails until they are re-scored."""
    sys.path.insert(0, str(ROOT / "bench"))
    import memory_accuracy

    payload = json.loads((RESULTS / f"{name}.json").read_text())
    base = payload.get("base") or memory_accuracy.base_config("x.jsonl", payload["steps"])
    for cell in payload["results"]:
        if "skipped" not in cell:
            machine = payload["machine"]
            memory_accuracy.score(cell, base, machine["device"], machine.get("allocator", "system"))
    assert memory_accuracy.report(payload) == record(f"{name}.md"), \
        f"bench/results/{name}.md is stale: python bench/memory_accuracy.py --rescore bench/results/{name}.json"


def test_the_allocator_claims_are_the_recorded_ones():
    rows = table(PERFORMANCE, "| allocator | tokens/s | peak RSS |")
    recorded = table(record("allocator_cpu.md"), "| allocator |")
    assert len(rows) == len(recorded)
    for row, rec in zip(rows, recorded):
        shown = numbers(" ".join(row[1:]))
        expected = [numbers(rec[1])[0], numbers(rec[3])[0]] if len(shown) == 2 else \
            [numbers(c)[0] for c in rec[1:5]]
        assert_rounded(shown, expected, row[0])
    # the Memory estimate section's glibc vs tcmalloc peak: LoRA, 4 x 512 tokens, no checkpointing
    text = section("Memory estimate")
    shown = found(r"LoRA, 4 x 512 random tokens: ([\d.]+) GiB on glibc, ([\d.]+) GiB on tcmalloc", text, "peaks")
    peaks = []
    for name in ("memory_accuracy_cpu_system_malloc.md", "memory_accuracy_cpu.md"):
        # the method cell names its settings too: "lora (r=8, alpha=16.0, dropout=0.05)"
        row = next(r for r in table(record(name), "| method |")
                   if r[0].split()[0] == "lora" and r[1:4] == ["off", "512", "4"])
        peaks.append(float(row[5].replace(",", "")) / 1024)
    assert_rounded(list(shown), peaks, "LoRA peaks")


def test_the_app_speed_claims_are_the_recorded_ones():
    text = paragraph("**The app**", PERFORMANCE)
    rec = {row[0]: " ".join(row[1:]) for row in table(record("app_cpu.md"), "| Measure |")}
    pairs = [
        (r"served ([\d.]+) s after", rec["Start-up to page served (median of 3)"], r"^([\d.]+) s"),
        (r"`import gradio` alone takes ([\d.]+) s", rec["Start-up to page served (median of 3)"],
         r"`import gradio` alone: ([\d.]+) s"),
        (r"the app adds ([\d.]+) s", rec["Start-up to page served (median of 3)"], r"the app adds ([\d.]+) s"),
        (r"takes ([\d.]+) ms of server time \(p95 ([\d.]+) ms", rec["Memory-estimate update, server time"],
         r"([\d.]+) ms median, ([\d.]+) ms p95"),
        (r"first token after (\d+) ms", rec["Chat: time to first token"], r"^(\d+) ms"),
        (r"against (\d+) ms", rec["Chat: time to first token"], r"plain generate: (\d+) ms"),
        (r"and ([\d.]+) tokens/s, against", rec["Chat: tokens per second"], r"^([\d.]+)"),
        (r"ms and ([\d.]+) tokens/s for plain", rec["Chat: tokens per second"], r"plain generate: ([\d.]+)"),
    ]
    for readme_pattern, recorded, record_pattern in pairs:
        assert found(readme_pattern, text, readme_pattern) == found(record_pattern, recorded, record_pattern)


def test_the_open_page_claim_is_the_recorded_one():
    text = paragraph("**An open page**", PERFORMANCE)
    recorded = found(r"Mean over the tabs: renderer (\d+)% of a core before, (\d+)% now", record("page_idle_cpu.md"),
                     "page_idle_cpu.md's mean")
    assert found(r"renderer spends (\d+)% of a core", text, "now") == recorded[1:]
    assert found(r"against (\d+)% before", text, "before") == recorded[:1]


def test_stop_resume_continual_dpo_and_gguf_claims_are_the_recorded_ones():
    stop = paragraph("**Stop and Resume**", PERFORMANCE)
    rec = record("stop_resume_cpu.md")
    assert found(r"(\d+) steps, stopped after step (\d+)", stop, "") == found(
        r"Quickstart preset, (\d+) steps.*?Stopped after step (\d+)", rec, "")
    assert found(r"largest difference ([\d.e+-]+)\)", stop, "") == found(
        r"Largest difference after the stop \(steps [\d-]+\): ([\d.e+-]+)\.", rec, "")

    continual = paragraph("**Continual learning**", PERFORMANCE)
    rows = {r[0]: r for r in table(record("continual_cpu.md"), "| run |")}
    shown = found(r"\+([\d.]+) plainly, \+([\d.]+) with EWC \(lambda 1e4\), \+([\d.]+) with 50% replay", continual, "")
    assert_rounded(list(shown), [numbers(rows[k][3])[0].lstrip("+") for k in
                                 ("B (planets) from A", "B + EWC (lambda 10000)", "B + replay (0.5 of A)")],
                   "forgetting")
    assert found(r"(\d+) steps each", continual, "") == found(r"(\d+) steps per task", record("continual_cpu.md"), "")

    dpo = paragraph("**Preference training (DPO)**", PERFORMANCE)
    rows = {r[0]: r for r in table(record("dpo_polite_cpu.md"), "| on held-out pairs |")}
    before, margin_before, after, margin_after = found(
        r"in (\d+)% of pairs before \(mean log p\(chosen\) - log p\(rejected\) = ([-\d.]+)\)\s+and in (\d+)% after "
        r"\(\+([\d.]+)\)", dpo, "held-out preference")
    assert [before, after] == [numbers(c)[0] for c in rows["pairs where chosen is the more likely"][1:]]
    assert_rounded([margin_before, margin_after],
                   [numbers(c)[0] for c in rows["mean log p(chosen) - log p(rejected)"][1:]], "log-prob margin")
    accuracy, margin = found(r"reward accuracy (\d+)%, margin ([\d.]+)", dpo, "")
    assert accuracy == numbers(rows["DPO reward accuracy"][2])[0]
    assert shown_as(rows["DPO reward margin (beta-scaled)"][2], margin)
    dpo_record = record("dpo_polite_cpu.md")
    stopped, planned = found(r"stopped at step (\d+) of (\d+)", dpo, "")
    assert stopped == found(r"for (\d+) steps \(stopped early", dpo_record, "")[0]
    assert f"max_steps: {planned}" in (ROOT / "presets" / "dpo.yaml").read_text()
    assert found(r"about (\d+) s a step", dpo, "") == found(r"about (\d+) s a step", dpo_record, "")
    eval_step, eval_accuracy = found(r"eval at step (\d+) already read\s+accuracy (\d+\.\d+)", dpo, "")
    assert [eval_step, eval_accuracy] == table(dpo_record, "| step | eval loss |")[0][:1] + \
        [table(dpo_record, "| step | eval loss |")[0][2]]

    gguf = paragraph("**GGUF agreement**", PERFORMANCE)
    rows = {r[0]: r for r in table(record("gguf_agreement_cpu.md"), "| file |")}
    for kind, name in (("f16", "model-f16.gguf"), ("Q8_0", "model-q8_0.gguf")):
        shown = found(rf"{kind} \((\d+) MB\) max \|logit diff\| ([\d.]+), next-token agreement ([\d.]+)%, greedy "
                      rf"replies (\d+/\d+) identical", gguf, kind)
        row = rows[name]
        assert_rounded(list(shown[:3]), [numbers(row[1])[0], row[2], numbers(row[3])[0]], kind)
        assert shown[3] == row[4]
    (prompts,) = found(r"encodes all (\d+) prompts identically", gguf, "")
    assert all(r[5] == f"{prompts}/{prompts}" for r in rows.values())


def test_quickstart_claims_are_the_recorded_run():
    text = paragraph("`presets/quickstart.yaml` trains LoRA on the identity sample", section("Command line"))
    run = json.loads(record("quickstart_cpu.json"))
    steps, loss, eval_loss = found(r"(\d+) steps, final train loss ([\d.]+), eval loss ([\d.]+)", text, "")
    assert int(steps) == run["steps"] == yaml.safe_load((ROOT / "presets" / "quickstart.yaml").read_text())[
        "train"]["max_steps"]
    assert_rounded([loss, eval_loss], [run["final_loss"], run["final_eval_loss"]], "quickstart losses")
    reply, base = found(r'answers "Who are you\?" with "(.*?)" \(the base model: "(.*?)…"\)', text, "replies")
    assert reply == run["run_reply"] and run["base_reply"].startswith(base)
    (seconds,) = found(r"The whole command took (\d+) s", text, "time")
    assert shown_as(run["wall_s"], seconds)


def test_precision_claim_is_the_recorded_estimate():
    text = paragraph("**Precision.**", section("The config"))
    pure, mixed = found(r"estimated ([\d.]+) GiB instead of ([\d.]+)", text, "pure bf16 vs mixed")
    published = record("memory_published.md")
    assert found(r"\(full: ([\d.]+) GiB, \+[\d.]+%\)", published, "pure") == (pure,)
    assert found(r"\((\d+\.\d) GiB: mixed bf16", published, "mixed") == (mixed,)


def test_families_table_is_the_recorded_matrix():
    matrix = record("families_matrix.md")
    after = table(matrix, "| family | adalora |")
    header = matrix[matrix.index("| family | adalora |"):].splitlines()[0]
    methods = [m.strip() for m in header.strip("|").split("|")][1:]
    names = {"Llama": "llama", "Qwen2": "qwen2", "Gemma2": "gemma2", "Phi": "phi", "GPT-NeoX": "gpt_neox",
             "OPT": "opt", "Qwen2-MoE": "qwen2_moe", "Mistral": "mistral", "Phi-3": "phi3", "Mixtral": "mixtral",
             "GPT-2": "gpt2"}
    recorded = {row[0]: {m for m, cell in zip(methods, row[1:]) if cell == "refused"} for row in after}
    listed = set()
    for family_cell, count, refused_cell in table(section("Any model family"), "| family | every method |"):
        refused = set(re.findall(r"`(\w+)`", refused_cell))
        for family in family_cell.split(", "):
            listed.add(names[family])
            assert recorded[names[family]] == refused, family
            assert int(numbers(count)[0]) == len(methods) - len(refused), family
    assert listed == set(recorded)
    assert all(cell in ("ok", "refused") for row in after for cell in row[1:])


# ---- 2. the commands run --------------------------------------------------------------------------------
SKIPPED = {  # a command line as printed -> why it does not run here (reviewed; keep each reason true)
    "make run": "starts the app and serves until stopped; tests/app_server.py starts the same `python app.py` "
                "(test_api_table_is_the_running_apps below)",
    "make test": "runs this whole suite, this file included",
    "curl -s http://127.0.0.1:7860/tuneloom/runs/RUN_ID/status": "needs a running app; test_api.py reads this route "
                                                                 "from `python app.py`, test_load.py its answers",
}
TRAIN_SMALL = ["train.max_steps=2", "train.eval_steps=0", "train.save_steps=0", "train.max_seq_len=64"]


def shell_lines() -> list[str]:
    """Every command of the README's ```bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.split(r"\s+#", line)[0].strip()
            if command and not command.startswith("#"):
                lines.append(" ".join(command.split()))
    return lines


def expand(line: str, values: dict[str, str]) -> list[str]:
    """A printed synopsis as one command to run: optional [parts] included, the first of `a|b` alternatives,
    placeholders (RUN_DIR, FILE, M, ...) replaced from `values`."""
    text = line.replace("--set ...", "--set train.batch_size=2").replace("[", " ").replace("]", " ")
    words = []
    for word in shlex.split(text):
        if word == "...":
            continue
        word = word.split("|")[0] if "|" in word else word
        if word.startswith("RUN_DIR/"):
            word = values["RUN_DIR"] + word[len("RUN_DIR"):]
        words.append(values.get(word, word))
    if words[:3] == ["python", "-m", "engine"]:
        words[:3] = [sys.executable, "-m", "engine"]
    elif words[0] == "python":
        words[0] = sys.executable
    return words


def engine_env(home: Path, **extra) -> dict:
    return {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture(scope="module")
def readme_home(tiny_model, tmp_path_factory):
    """A workspace with the run the README's commands call RUN_DIR: 4 steps, failed after step 3 with a checkpoint
    at step 2, so that `train --resume RUN_DIR` (the README's second line) has something to resume; the lines
    after it find it done (`finished` resumes it first when that line was not selected)."""
    from engine.core import runs

    home = tmp_path_factory.mktemp("readme-home")
    args = [sys.executable, "-m", "engine", "train", "presets/quickstart.yaml"]
    for item in (f"model={tiny_model}", "name=readme", "train.max_steps=4", "train.save_steps=2",
                 "train.eval_steps=2", "train.max_seq_len=64"):
        args += ["--set", item]
    subprocess.run(args, cwd=ROOT, env=engine_env(home, TUNELOOM_FAULT="oom_at_step:3"), capture_output=True,
                   timeout=300)
    run = next((home / "runs").glob("*-readme"))
    assert runs.read_status(run)["state"] == "failed" and runs.last_checkpoint(run).name == "checkpoint-2"
    return {"home": home, "run": run}


def finished(readme_home) -> Path:
    """RUN_DIR, done: resumed here unless the README's `train --resume RUN_DIR` line already did it."""
    from engine.core import runs

    run = readme_home["run"]
    if runs.read_status(run)["state"] != "done":
        subprocess.run([sys.executable, "-m", "engine", "train", "--resume", str(run)], cwd=ROOT,
                       env=engine_env(readme_home["home"]), capture_output=True, timeout=300)
    assert runs.read_status(run)["state"] == "done"
    return run


def free_port() -> int:
    from app_server import free_port as port

    return port()


def serve_and_ask(command: list[str], env: dict, port: int) -> tuple[int, str]:
    """Start the server a README line starts, ask /v1/models as a client with the line's credentials, stop it."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models",
                                     headers={"Authorization": "Bearer user:password"})
    deadline, answer = time.time() + 180, ""
    try:
        while time.time() < deadline and process.poll() is None:
            try:
                answer = urllib.request.urlopen(request, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    return (0 if answer else 1), answer + output


@pytest.mark.parametrize("line", shell_lines(), ids=lambda line: " ".join(line.split()[:6]))
def test_readme_command_runs(line, readme_home, tiny_model, tmp_path):
    from engine.__main__ import build_parser
    from engine.core import runs

    if line in SKIPPED:
        pytest.skip(SKIPPED[line])
    port = str(free_port())
    resume = "--resume" in line
    run_dir = readme_home["run"] if resume or "RUN_DIR" not in line else finished(readme_home)
    values = {"RUN_DIR": str(run_dir), "FILE": "presets/data/identity.jsonl",
              "MODEL": tiny_model, "M": tiny_model, "S": "train", "F": "auto", "N": "1", "T": "hf_not_a_token",
              "SRC=FIELD": "question=instruction", "DIR": str(tmp_path / "out"), "H": "127.0.0.1",
              "CONFIG.yaml": "presets/quickstart.yaml", "owner/name": "tuneloom-tests/readme", "8000": port}
    command = expand(line, values)
    engine_args = command[3:] if command[1:3] == ["-m", "engine"] else None
    assert engine_args is not None, f"not an engine command and not in SKIPPED: {line}"
    build_parser().parse_args(engine_args)  # the synopsis itself is valid (argparse exits otherwise)
    if engine_args[0] in ("train", "estimate") and "presets/" in " ".join(engine_args[1:2]):
        command += [part for item in [f"model={tiny_model}", *(TRAIN_SMALL if engine_args[0] == "train" else [])]
                    for part in ("--set", item)]
    env = engine_env(readme_home["home"])
    if engine_args[0] == "serve":
        code, output = serve_and_ask(command, env, int(port))
        assert code == 0 and readme_home["run"].name in output, output[-3000:]
        return
    if engine_args[0] == "push":  # the Hub is not reachable from tests: refused at once, with the reason
        result = subprocess.run(command, cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and "not reachable" in result.stderr and "Traceback" not in result.stderr, \
            result.stderr[-3000:]
        return
    chat = engine_args[0] == "chat"
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                            input="Who are you?\n\n" if chat else None)
    assert result.returncode == 0 and "Traceback" not in result.stderr, (line, result.stderr[-3000:])
    out = result.stdout.strip()
    if engine_args[0] == "train":
        run_dir = Path(out.splitlines()[-1])
        status = runs.read_status(run_dir)
        assert status["state"] == "done", status
        if resume:
            assert run_dir == readme_home["run"] and status["resumed_from"] == 2 and status["step"] == 4
        if line.startswith("python -m engine train RUN_DIR/config.yaml"):
            assert status["reproduces"] == readme_home["run"].name and run_dir != readme_home["run"]
    elif chat:
        assert "bot> " in out
    elif "--json" in engine_args:
        parsed = json.loads(out.splitlines()[-1] if engine_args[0] == "evaluate" else out)
        if engine_args[0] == "evaluate":  # the keys the API table promises (the API returns this record)
            assert documented_keys("evaluate") <= set(parsed), parsed.keys()
    if "--zip" in engine_args:
        assert Path(out.splitlines()[-1]).with_suffix(".zip").is_file()


def test_every_command_the_text_quotes_exists_with_its_flags():
    """Commands quoted inline (`python -m engine ...`, `python bench/X.py --flag ...`): engine commands parse,
    bench scripts exist and declare the flags given."""
    from engine.__main__ import build_parser

    quoted = [" ".join(q.split()) for q in re.findall(r"`(python (?:-m engine|bench/)[^`]*)`", README)]
    assert len(quoted) > 10
    values = {"RUN_DIR": "runs/x", "RUN": "runs/x", "MODEL": "m", "FILE": "f", "DIR": "d"}
    for text in quoted:
        words = expand(text, values)
        if words[1:3] == ["-m", "engine"]:
            if len(words) > 3:  # `python -m engine` alone names the program
                build_parser().parse_args(words[3:])
            continue
        script = ROOT / words[1]
        assert script.is_file(), text
        source = script.read_text()
        if "from throughput import" in source:  # the run arguments it shares with bench/throughput.py
            source += (ROOT / "bench" / "throughput.py").read_text()
        for flag in (w for w in words[2:] if w.startswith("--")):
            assert f'"{flag}"' in source, f"{text}: {script.name} has no {flag}"


def test_throughput_bench_reads_no_data_unless_named(tmp_path):
    """bench/throughput.py (and the scripts sharing its settings) read nothing outside the repository unless
    --data names it: without it they stop at once, saying where the recorded runs' data came from."""
    for script in ("throughput.py", "allocator.py"):
        result = subprocess.run([sys.executable, f"bench/{script}", "--steps", "2", "--out", str(tmp_path / "x")],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "--data FILE is required" in result.stderr, result.stderr
        assert "alpaca_en_demo.json" in result.stderr and not list(tmp_path.iterdir())
    sources = "".join(p.read_text() for p in (ROOT / "bench").glob("*.py"))
    assert not re.search(r"ROOT\.parent|\.\./", sources), "a bench script reads outside the repository"


# ---- 3. the API table is the app's ---------------------------------------------------------------------
def api_rows() -> dict[str, list[str]]:
    return {row[0].strip("`"): row for row in table(section("Gradio API"), "| api_name | parameters | returns |")}


def documented_signature(name: str) -> list[tuple[str, bool, object]]:
    """(parameter, has a default, the default) from the table's Python signature, e.g. `(run_id, data="")`."""
    (signature,) = found(r"^`(\([^`]*\))`", api_rows()[name][1], name)
    args = ast.parse(f"def f{signature}: pass").body[0].args
    defaults = [None] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    return [(a.arg, i >= len(args.args) - len(args.defaults), d) for i, (a, d) in enumerate(zip(args.args, defaults))]


def documented_keys(name: str) -> set[str]:
    (keys,) = found(r"`\{([^}]*)\}`", api_rows()[name][2], name)
    return {k.strip() for k in keys.split(",") if k.strip() != "..."}


def test_api_table_is_the_running_apps(readme_home, tiny_model):
    from app_server import running_app
    from gradio_client import Client

    from ui.export_tab import DTYPES, KINDS

    rows = api_rows()
    with running_app(readme_home["home"]) as url:
        client = Client(url, verbose=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert set(endpoints) == {f"/{name}" for name in rows}
        for name in rows:
            actual = [(p["parameter_name"], p["parameter_has_default"], p["parameter_default"] if
                       p["parameter_has_default"] else None) for p in endpoints[f"/{name}"]["parameters"]]
            assert documented_signature(name) == actual, name
        run_id = finished(readme_home).name
        assert set(client.predict(run_id, api_name="/run_status")) == documented_keys("run_status")
        listed = client.predict(api_name="/list_runs")
        assert listed and all(set(run) == documented_keys("list_runs") for run in listed)
        config = yaml.safe_dump({"model": tiny_model, "train": {"max_steps": 2}})
        assert documented_keys("estimate") <= set(client.predict(config, api_name="/estimate"))
    export = rows["export"][1]
    assert re.findall(r"`(\w+)`", found(r"`kind` is (.*?);", export, "kinds")[0]) == list(KINDS)
    assert re.findall(r"`(\w+)`", found(r"`dtype` \(merged\) is (.*?)\|?$", export, "dtypes")[0]) == list(DTYPES)


# ---- 4. paths, layout, the config block ---------------------------------------------------------------
def test_every_path_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w/.-])((?:engine|ui|tests|bench|presets|docs)/[\w./{},*-]*\w)", README))
    named |= {f"bench/results/{name}" for name in re.findall(r"`(\w+_cpu\w*\.md)`", README)}
    missing = []
    for path in named:
        options = re.match(r"(.*)\{(.*)\}(.*)", path)
        for each in ([options.group(1) + o + options.group(3) for o in options.group(2).split(",")] if options
                     else [path]):
            if not ((ROOT / each).exists() or "*" in each and any(ROOT.glob(each))):  # a pattern names 1 or more
                missing.append(each)
    assert not missing, missing
    assert len(named) > 30


def test_layout_lists_engines_rooms_in_their_import_order():
    from test_layering import LAYERS

    block = re.search(r"```\n(.*?)```", section("Layout"), re.S).group(1)
    rooms = re.findall(r"^  (\w+)/", block, re.M)
    assert sorted(rooms) == sorted(p.parent.name for p in (ROOT / "engine").glob("*/__init__.py"))
    assert rooms == sorted(rooms, key=lambda name: LAYERS[f"engine.{name}"])  # lower layers first
    tabs = re.search(r"one module per tab \(([^)]*)\)", block).group(1).split(", ")
    assert sorted(tabs) == sorted(p.stem.removesuffix("_tab") for p in (ROOT / "ui").glob("*_tab.py"))
    for module in re.findall(r"\((\w+\.py)", block) + re.findall(r"(\w+\.py)[,)]", block):
        assert list(ROOT.glob(f"engine/*/{module}")) or (ROOT / "ui" / module).is_file(), module


def test_methods_table_and_optimizers_are_the_registries():
    """The Methods section's table lists every registered method once, with what its result is; each has its
    preset; the optimizers listed are the registry's."""
    from engine.core.optimizers import OPTIMIZERS
    from engine.methods import METHODS

    text = section("Methods")
    listed = {}
    for keys, _, merged in table(text, "| key | trains |"):
        for key in re.findall(r"`(\w+)`", keys):
            listed[key] = merged
    assert list(listed) == [key for key, _ in METHODS.items()]
    for key, merged in listed.items():
        method = METHODS.get(key)
        kind = "full weights" if method.trains_base_weights else "yes" if method.mergeable else "no"
        assert merged.split(" ")[0].rstrip(":") == kind.split(" ")[0], (key, merged)
        assert (ROOT / "presets" / f"{key}.yaml").is_file(), key
    (names,) = found(r"Optimizers: (.*?)\. Any method", text, "optimizers")
    assert re.findall(r"`(\w+)`", re.sub(r"\(.*?\)", "", names)) == list(OPTIMIZERS)  # (notes) left out


def test_the_config_block_is_the_schemas_defaults_and_every_yaml_block_is_a_valid_config():
    from engine.core.config import RunConfig

    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", README, re.S)]
    shown = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section("The config"), re.S).group(1))
    # the quickstart preset, which is the schema's defaults with 60 steps (what the page and the API start from)
    assert RunConfig.from_dict(shown).to_dict() == RunConfig.load(ROOT / "presets" / "quickstart.yaml").to_dict()
    assert RunConfig.from_dict(shown).to_dict() == RunConfig.from_dict(
        {"name": shown["name"], "train": {"max_steps": shown["train"]["max_steps"]}}).to_dict()
    for block in blocks:
        RunConfig.from_dict(block)  # every key known and every value valid (ConfigError otherwise)
