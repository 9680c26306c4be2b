"""Evaluate a run (or its base model) on held-out data: `python -m engine evaluate RUN_DIR`.

Recipe: reproduce the held-out examples (the run's validation split, exactly as the trainer cut
it, or a file) -> load the model -> eval loss and perplexity on the trained tokens -> generate
answers for the first N examples and score them against the references (ROUGE-L, BLEU-4) ->
save RUN/eval/<timestamp>.json (atomic).

Like training, it runs as its own process; progress goes to RUN/eval/status.json, so the page
can close and come back (engine/evaluation/records.py starts it and reads the folder).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from engine.core import runs
from engine.core.jobs import RunState
from engine.core.messages import Message, as_dict
from engine.evaluation.records import DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLES, eval_dir, update_eval_status
from engine.inference.generation import generate_answer


# ---- the held-out examples -------------------------------------------------------------------
def kept_examples(loaded, dropped_rows: list[str], kept_count: int) -> list:
    """The examples encode_all kept, in its order (it reports the dropped ones as 'WHERE: reason')."""
    dropped = set()
    for example in loaded.examples:
        if any(row.startswith(f"{example.where}: ") for row in dropped_rows):
            dropped.add(example.where)
    kept = [e for e in loaded.examples if e.where not in dropped]
    if len(kept) != kept_count:
        raise RuntimeError(f"could not line up the {kept_count} encoded examples with the data file")
    return kept


def held_out(cfg, tokenizer, data_file: str | None = None) -> tuple[list[tuple], dict]:
    """[(Example, Encoded)] to evaluate on, and a description of where they come from.

    Without `data_file`: the run's validation split, cut exactly as the trainer cut it
    (engine.data.dataset.validation_indices with the run's data settings, max_seq_len and seed). With no split,
    the training examples (and the description says so).
    """
    from dataclasses import replace

    from engine.data import load_examples
    from engine.data.dataset import encode_all, validation_indices

    data = cfg.data
    if data_file:
        data = replace(cfg.data, train=str(data_file), format="auto", columns={}, validation_split=0.0)
    loaded = load_examples(data.train, data.format, data.columns, data.skip_bad_rows, split=data.split,
                           subset=data.subset)
    from engine.data.pairwise import data_kind

    if data_kind(loaded) in ("pairwise", "unpaired"):
        from engine.core.errors import UserError

        raise UserError(f"{loaded.file} holds preference data: evaluation scores answers against reference answers. "
                        "A preference run's held-out reward accuracy and margin are in its metrics (the Train tab's "
                        "reward plots, eval_rewards/* in metrics.jsonl); to score its answers, evaluate it on an "
                        "instruction file (--data FILE, or pick one in the Evaluate tab)")
    kept, _, dropped_rows = encode_all(loaded, tokenizer, data.mask, cfg.train.max_seq_len)
    examples = kept_examples(loaded, dropped_rows, len(kept))
    pairs = list(zip(examples, kept))
    if data_file:
        return pairs, {"kind": "file", "file": str(data_file), "examples": len(pairs)}
    held = validation_indices(len(kept), data.validation_split, cfg.train.seed)  # the trainer's own cut
    if not held:
        return pairs, {"kind": "train", "file": data.train, "examples": len(pairs),
                       "note": str(Message("eval.no_split")), "note_i18n": as_dict(Message("eval.no_split"))}
    pairs = [pair for i, pair in enumerate(pairs) if i in held]
    return pairs, {"kind": "validation", "file": data.train, "examples": len(pairs),
                   "split": data.validation_split, "seed": cfg.train.seed}


def prompt_and_reference(example) -> tuple[list[dict], str] | None:
    """The conversation up to its last assistant turn, and that turn (the reference answer)."""
    if not example.messages:
        return None
    last = max((i for i, m in enumerate(example.messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return None
    return example.messages[:last], example.messages[last]["content"]


# ---- the evaluation --------------------------------------------------------------------------
def token_loss(model, encoded_list, progress=None) -> tuple[float | None, int]:
    """Summed next-token cross-entropy over trained tokens / their count, and the count."""
    import torch

    from engine.training.fused_loss import token_loss as summed_token_loss

    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for i, encoded in enumerate(encoded_list):
            summed, n = summed_token_loss(model, torch.tensor([encoded.input_ids], device=device),
                                          torch.tensor([encoded.labels], device=device))
            total, count = total + float(summed), count + int(n)
            if progress:
                progress(i + 1)
    return (total / count if count else None), count


def result_path(run_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = eval_dir(run_dir) / f"{stamp}.json", 1
    while path.exists():
        n += 1
        path = eval_dir(run_dir) / f"{stamp}-{n}.json"
    return path


def evaluate(run_dir: Path, data_file: str | None = None, samples: int = DEFAULT_SAMPLES, base: bool = False,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, generation: dict | None = None, judge=None) -> dict:
    """Evaluate and save; returns the result (also written to RUN/eval/<timestamp>.json). `judge`: a
    JudgeSpec (engine/evaluation/judge.py) that also grades the generated answers."""
    import torch

    from engine.core.config import RunConfig
    from engine.core.models import load_tokenizer
    from engine.evaluation.metrics import bleu, rouge_l, scores
    from engine.inference.loading import load_base, load_result

    run_dir = Path(run_dir).resolve()
    started = time.time()
    update_eval_status(run_dir, state=RunState.RUNNING, pid=os.getpid(), phase="loading", done=0, total=0,
                       started_at=started, error=None, model="base" if base else "run")
    cfg = RunConfig.load(run_dir / "config.yaml")
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, cfg.data.template)
    pairs, data_info = held_out(cfg, tokenizer, data_file)
    chosen = [(e, prompt_and_reference(e)) for e, _ in pairs]
    chosen = [(e, pr) for e, pr in chosen if pr is not None][:max(0, int(samples))]
    total = len(pairs) + len(chosen)
    update_eval_status(run_dir, phase="loading model", total=total, data=data_info)
    torch.manual_seed(cfg.train.seed)
    if base:
        model, _, note = load_base(cfg.model, cfg.trust_remote_code)
    else:
        model, _, note = load_result(run_dir, merge=True)
    model.eval()

    last_write = [0.0]

    def progress(done: int, phase: str) -> None:
        if time.time() - last_write[0] > 0.5 or done == total:
            update_eval_status(run_dir, phase=phase, done=done)
            last_write[0] = time.time()

    loss, trained_tokens = token_loss(model, [e for _, e in pairs], lambda i: progress(i, "eval loss"))
    params = {"max_new_tokens": int(max_new_tokens), **(generation or {})}
    rows = []
    for i, (example, (prompt, reference)) in enumerate(chosen):
        answer = generate_answer(model, tokenizer, prompt, params)
        rows.append({"where": example.where, "prompt": prompt[-1]["content"] if prompt else "",
                     "reference": reference, "generated": answer,
                     "rouge_l": round(rouge_l(answer, reference), 4), "bleu": round(bleu(answer, reference), 4)})
        progress(len(pairs) + i + 1, "generating")
    text_scores = scores([r["generated"] for r in rows], [r["reference"] for r in rows])
    judged = None
    if judge is not None:
        from engine.evaluation.judge_run import judge_rows

        del model  # the judge (and a pairwise comparison's base model) load after it is freed
        judged = judge_rows(judge, run_dir, cfg, rows, [prompt for _, (prompt, _) in chosen], params,
                            lambda done, all_, phase: update_eval_status(run_dir, phase=phase, done=done, total=all_))
    result = {
        "run": run_dir.name, "model": "base" if base else "run", "model_name": cfg.model, "served": note,
        "created_at": time.time(), "seconds": round(time.time() - started, 2), "data": data_info,
        "eval_loss": loss, "perplexity": math.exp(loss) if loss is not None and loss < 50 else None,
        "trained_tokens": trained_tokens, "rouge_l": text_scores["rouge_l"], "bleu": text_scores["bleu"],
        "generation": params, "samples": rows, **({"judge": judged} if judged else {}),
    }
    path = result_path(run_dir)
    runs.write_json(path, result)
    result["file"] = path.name
    update_eval_status(run_dir, state=RunState.DONE, phase="done", done=total, result=path.name,
                       finished_at=time.time(), pid=None)
    return result


def main(run_dir: str, data_file: str | None, samples: int, base: bool, max_new_tokens: int, judge=None) -> dict:
    """The CLI body: status 'failed' with the reason if anything goes wrong."""
    try:
        return evaluate(Path(run_dir), data_file, samples, base, max_new_tokens, judge=judge)
    except BaseException as err:
        update_eval_status(Path(run_dir), state=RunState.FAILED, error=f"{type(err).__name__}: {err}",
                           finished_at=time.time(), pid=None)
        raise


def summary_lines(result: dict) -> list[str]:
    """A short human report of a result (the CLI's text output)."""
    fmt = lambda v, p=4: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
    data = result.get("data", {})
    lines = [f"{result['run']} ({result['model']}: {result.get('served', '')}) on {data.get('kind')} data "
             f"{data.get('file')} ({data.get('examples')} examples)",
             f"eval loss {fmt(result.get('eval_loss'))}  perplexity {fmt(result.get('perplexity'), 2)}  "
             f"ROUGE-L {fmt(result.get('rouge_l'))}  BLEU {fmt(result.get('bleu'))}"]
    if data.get("note"):
        lines.append(f"note: {data['note']}")
    if result.get("judge"):
        from engine.evaluation.judge import summary_line

        lines.append(summary_line(result["judge"]))
    for row in result.get("samples", []):
        lines.append(f"--- {row['where']}  ROUGE-L {row['rouge_l']:.3f}  BLEU {row['bleu']:.3f}")
        lines.append(f"  prompt:    {row['prompt'][:200]}")
        lines.append(f"  reference: {row['reference'][:200]}")
        lines.append(f"  generated: {row['generated'][:200]}")
    return lines


def to_json(result: dict) -> str:
    return json.dumps(result, ensure_ascii=False)
