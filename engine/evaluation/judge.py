"""LLM-as-judge: a model grades generated answers (`python -m engine evaluate RUN --judge JUDGE`).

A judge is a local model (an alias, a folder or a Hub id), an earlier run, or any OpenAI-compatible endpoint
(`http://host:port/v1`, e.g. `python -m engine serve` of another run). Two modes:
- rubric: each answer is graded 1-5 against its reference; the result is the mean score.
- pairwise: the run's answer and its base model's answer to the same prompt are compared twice, once in each
  order, so a judge that favours a position cancels out; the result is the run's win rate (a win in both orders
  counts 1, a split or a tie 0.5, a loss in both 0).
Each has a 95% confidence interval (a percentile bootstrap over the examples), and every example keeps the
judge's replies (its reasons). Parsing a verdict out of a reply and the bootstrap are written here (small, no
library offers them for this); generation is transformers' (local) or the endpoint's (the openai client).
"""
from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.core.errors import UserError
from engine.core.messages import Message

MODES = ("rubric", "pairwise")
RUBRIC = """You grade an answer to a user's request against a reference answer.

Request: {question}

Reference answer: {reference}

Answer to grade: {answer}

How well does the answer match the reference in meaning and correctness? Score it from 1 (wrong or unrelated) \
to 5 (correct and complete). Reply with "Score: N" on the first line, then one sentence saying why."""
PAIRWISE = """Two assistants answered the same request. Decide which answer is better: more correct, more helpful, \
closer to the reference answer.

Request: {question}

Reference answer: {reference}

Answer A: {a}

Answer B: {b}

Reply with "Winner: A", "Winner: B" or "Winner: tie" on the first line, then one sentence saying why."""
JUDGE_TOKENS = 96  # a verdict and one sentence
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class JudgeSpec:
    judge: str  # an endpoint URL, a run (folder or id), or a model
    mode: str = "rubric"
    model: str = ""  # the endpoint's model name ("" = the first it lists)
    api_key: str = ""  # the endpoint's key ("" = TUNELOOM_JUDGE_API_KEY, else "none")
    max_new_tokens: int = JUDGE_TOKENS

    def to_dict(self) -> dict:
        return {"judge": self.judge, "mode": self.mode, "model": self.model, "max_new_tokens": self.max_new_tokens}


def spec_problems(spec: JudgeSpec, base: bool = False) -> list[str]:
    found = []
    if spec.mode not in MODES:
        found.append(Message("judge.mode", mode=spec.mode))
    if not spec.judge.strip():
        found.append(Message("judge.empty"))
    if spec.mode == "pairwise" and base:
        found.append(Message("judge.base"))
    return found


# ---- verdicts out of a judge's reply --------------------------------------------------------------
def parse_score(reply: str) -> int | None:
    """The 1-5 score of a rubric reply: after "Score:", else the first lone digit 1-5; None when there is none."""
    found = re.search(r"score\s*[:=]?\s*\**\s*([1-5])\b", reply, re.IGNORECASE) or \
        re.search(r"(?<![\d.])([1-5])(?!\d|\.\d)", reply)
    return int(found.group(1)) if found else None


def parse_winner(reply: str) -> str | None:
    """"A", "B" or "tie" from a pairwise reply: after "Winner:", else the first lone A/B ("Answer B is ...")."""
    found = re.search(r"winner\s*[:=]?\s*\**\s*(answer\s+)?(a|b|tie)\b", reply, re.IGNORECASE)
    if found:
        return found.group(2).upper() if found.group(2).lower() != "tie" else "tie"
    found = re.search(r"\b(?:answer\s+)?([AB])\b(?!\w)", reply)
    return found.group(1) if found else None


def run_points(first: str | None, second: str | None) -> float | None:
    """The run's points from the two orders: run as A first, then run as B. None when neither parsed."""
    points = []
    if first is not None:
        points.append({"A": 1.0, "B": 0.0, "tie": 0.5}[first])
    if second is not None:
        points.append({"A": 0.0, "B": 1.0, "tie": 0.5}[second])
    return sum(points) / len(points) if points else None


def bootstrap_ci(values: list[float], level: float = 0.95, seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean (resampling the examples)."""
    if not values:
        return None, None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(BOOTSTRAP_RESAMPLES))
    low = means[int((1 - level) / 2 * BOOTSTRAP_RESAMPLES)]
    high = means[min(BOOTSTRAP_RESAMPLES - 1, int((1 + level) / 2 * BOOTSTRAP_RESAMPLES))]
    return low, high


# ---- judges ----------------------------------------------------------------------------------------
def is_endpoint(judge: str) -> bool:
    return judge.startswith(("http://", "https://"))


class EndpointJudge:
    """Any OpenAI-compatible chat endpoint, greedy (temperature 0)."""

    def __init__(self, spec: JudgeSpec):
        from openai import OpenAI

        key = spec.api_key or os.environ.get("TUNELOOM_JUDGE_API_KEY") or "none"
        self.client = OpenAI(base_url=spec.judge.rstrip("/"), api_key=key, timeout=300.0, max_retries=1)
        self.model = spec.model or self._first_model()
        self.max_new_tokens = spec.max_new_tokens
        self.name = f"{spec.judge} ({self.model})"

    def _first_model(self) -> str:
        try:
            listed = [m.id for m in self.client.models.list()]
        except Exception as err:  # not reachable, or no /models: say so before any example is judged
            raise UserError(Message("judge.unreachable", url=str(self.client.base_url), detail=str(err))) from None
        return listed[0] if listed else "default"

    def __call__(self, prompt: str) -> str:
        reply = self.client.chat.completions.create(model=self.model, temperature=0.0,
                                                    max_tokens=self.max_new_tokens,
                                                    messages=[{"role": "user", "content": prompt}])
        return reply.choices[0].message.content or ""


class LocalJudge:
    """A model or a run's result loaded here, greedy decoding with its chat template."""

    def __init__(self, spec: JudgeSpec):
        from engine.core import runs
        from engine.inference.loading import load_base, load_result

        run_dir = runs.resolve_run(spec.judge)
        if runs.is_run_folder(run_dir):
            self.model, self.tokenizer, _ = load_result(run_dir, merge=True)
            self.name = f"run {run_dir.name}"
        else:
            self.model, self.tokenizer, _ = load_base(spec.judge)
            self.name = spec.judge
        self.model.eval()
        self.max_new_tokens = spec.max_new_tokens

    def __call__(self, prompt: str) -> str:
        from engine.inference.generation import generate_answer

        return generate_answer(self.model, self.tokenizer, [{"role": "user", "content": prompt}],
                               {"max_new_tokens": self.max_new_tokens})


def load_judge(spec: JudgeSpec):
    return EndpointJudge(spec) if is_endpoint(spec.judge) else LocalJudge(spec)


# ---- judging the rows of an evaluation ------------------------------------------------------------
def judge_rubric(judge: Callable[[str], str], rows: list[dict], progress=None) -> dict:
    """Grade each row's `generated` against its `reference`; adds row["judge"] and returns the summary."""
    scores = []
    for i, row in enumerate(rows):
        reply = judge(RUBRIC.format(question=row["prompt"], reference=row["reference"], answer=row["generated"]))
        score = parse_score(reply)
        row["judge"] = {"score": score, "reply": reply}
        if score is not None:
            scores.append(float(score))
        if progress:
            progress(i + 1)
    low, high = bootstrap_ci(scores)
    return {"score": sum(scores) / len(scores) if scores else None, "ci_low": low, "ci_high": high, "scale": "1-5",
            "judged": len(scores), "unparsed": len(rows) - len(scores)}


def judge_pairwise(judge: Callable[[str], str], rows: list[dict], progress=None) -> dict:
    """Compare each row's `generated` (the run) with `base_generated` in both orders; adds row["judge"]."""
    outcomes, agree, wins, losses = [], 0, 0, 0
    for i, row in enumerate(rows):
        verdicts = []
        for order, (a, b) in (("run first", (row["generated"], row["base_generated"])),
                              ("base first", (row["base_generated"], row["generated"]))):
            reply = judge(PAIRWISE.format(question=row["prompt"], reference=row["reference"], a=a, b=b))
            verdicts.append({"order": order, "winner": parse_winner(reply), "reply": reply})
        points = run_points(verdicts[0]["winner"], verdicts[1]["winner"])
        row["judge"] = {"verdicts": verdicts, "run_points": points}
        if points is not None:
            outcomes.append(points)
            wins, losses = wins + (points == 1.0), losses + (points == 0.0)
        if None not in (verdicts[0]["winner"], verdicts[1]["winner"]):
            # the same answer preferred in both orders (a position-biased judge agrees with itself in none)
            agree += run_points(verdicts[0]["winner"], None) == run_points(None, verdicts[1]["winner"])
        if progress:
            progress(i + 1)
    low, high = bootstrap_ci(outcomes)
    return {"win_rate": sum(outcomes) / len(outcomes) if outcomes else None, "ci_low": low, "ci_high": high,
            "wins": wins, "losses": losses, "split_or_tie": len(outcomes) - wins - losses,
            "position_consistency": agree / len(rows) if rows else None, "judged": len(outcomes),
            "unparsed": len(rows) - len(outcomes)}


def judge_evaluation(spec: JudgeSpec, rows: list[dict], progress: Callable[[int, int], None] | None = None) -> dict:
    """Load the judge and judge `rows` (with `base_generated` for pairwise); the result's "judge" entry."""
    started = time.time()
    judge = load_judge(spec)
    total = len(rows)
    step = (lambda done: progress(done, total)) if progress else None
    summary = judge_pairwise(judge, rows, step) if spec.mode == "pairwise" else judge_rubric(judge, rows, step)
    return {**spec.to_dict(), "judge": judge.name, **summary, "examples": total,
            "ci": "95% percentile bootstrap over the examples", "seconds": round(time.time() - started, 2)}


def summary_line(judged: dict) -> str:
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    interval = f"[{fmt(judged.get('ci_low'))}, {fmt(judged.get('ci_high'))}]"
    if judged.get("mode") == "pairwise":
        return (f"judge {judged['judge']} (pairwise, both orders): win rate {fmt(judged.get('win_rate'))} 95% CI "
                f"{interval}; {judged['wins']} wins, {judged['losses']} losses, {judged['split_or_tie']} split or tie; "
                f"position consistency {fmt(judged.get('position_consistency'))}; unparsed {judged['unparsed']}")
    return (f"judge {judged['judge']} (rubric 1-5): mean score {fmt(judged.get('score'))} 95% CI {interval}; "
            f"{judged['judged']} graded, {judged['unparsed']} unparsed")
