"""A judged evaluation's plumbing: the CLI's --judge options, and the base model's answers a pairwise
comparison needs (engine/evaluation/evaluate.py calls `judge_rows` after it has generated the run's answers)."""
from __future__ import annotations

import argparse
import gc
from collections.abc import Callable
from pathlib import Path

from engine.evaluation.judge import JUDGE_TOKENS, MODES, JudgeSpec, judge_evaluation, spec_problems


def add_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--judge", default=None,
                          help="also grade the answers with a judge: an OpenAI-compatible endpoint "
                               "(http://host:port/v1, e.g. `engine serve` of another run), a run, or a model")
    evaluate.add_argument("--judge-mode", default="rubric", choices=MODES,
                          help="rubric: each answer 1-5 against its reference; pairwise: the run's answer against "
                               "its base model's, in both orders (win rate)")
    evaluate.add_argument("--judge-model", default="", help="the endpoint's model name (default: the first listed)")
    evaluate.add_argument("--judge-tokens", type=int, default=JUDGE_TOKENS, help="longest judge reply")


def spec_from_args(args: argparse.Namespace) -> JudgeSpec | None:
    """The JudgeSpec of the CLI's options (None without --judge); UserError when they cannot work."""
    from engine.core.config import ConfigError

    if not args.judge:
        return None
    spec = JudgeSpec(args.judge, args.judge_mode, args.judge_model, max_new_tokens=args.judge_tokens)
    problems = spec_problems(spec, base=args.base)
    if problems:
        raise ConfigError(problems, "the judge")
    return spec


def judge_command_args(judge: dict | None) -> list[str]:
    """The --judge options of `python -m engine evaluate` for a judge dict (the page and the API start it so)."""
    if not judge or not judge.get("judge"):
        return []
    args = ["--judge", judge["judge"], "--judge-mode", judge.get("mode") or "rubric"]
    return args + (["--judge-model", judge["model"]] if judge.get("model") else [])


def base_answers(run_dir: Path, cfg, prompts: list[list[dict]], params: dict, progress=None) -> list[str]:
    """The run's base model's answers to the same prompts, with the same generation settings."""
    import torch

    from engine.core import runs
    from engine.inference.generation import generate_answer
    from engine.inference.loading import load_base

    torch.manual_seed(cfg.train.seed)
    model, tokenizer, _ = load_base(runs.result_base(run_dir, cfg), cfg.trust_remote_code)
    model.eval()
    tokenizer = _run_tokenizer(cfg) or tokenizer
    answers = []
    for i, prompt in enumerate(prompts):
        answers.append(generate_answer(model, tokenizer, prompt, params))
        if progress:
            progress(i + 1)
    del model
    gc.collect()
    return answers


def _run_tokenizer(cfg):
    """The tokenizer (and chat template) the run was trained and evaluated with."""
    from engine.core.models import load_tokenizer

    return load_tokenizer(cfg.model, cfg.trust_remote_code, cfg.data.template)


def judge_rows(spec: JudgeSpec, run_dir: Path, cfg, rows: list[dict], prompts: list[list[dict]], params: dict,
               progress: Callable[[int, int, str], None]) -> dict:
    gc.collect()
    if spec.mode == "pairwise":
        for row, answer in zip(rows, base_answers(run_dir, cfg, prompts, params,
                                                  lambda done: progress(done, len(rows), "base answers"))):
            row["base_generated"] = answer
    return judge_evaluation(spec, rows, lambda done, total: progress(done, total, "judging"))
