"""`python -m engine merge RUN_A RUN_B ...`: its arguments and its body (engine/__main__.py registers them)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    merge = sub.add_parser("merge", help="merge runs of one base into a new run (LoRA-family adapters with peft's "
                                         "add_weighted_adapter, full-weight runs with mergekit); prints the new "
                                         "run folder")
    merge.add_argument("runs", nargs="+", metavar="RUN", help="run folders or ids (two or more)")
    merge.add_argument("--how", default="ties",
                       choices=("linear", "cat", "ties", "dare_linear", "dare_ties", "magnitude_prune", "slerp"),
                       help="adapters: any but slerp; full-weight runs (mergekit): linear, ties, slerp")
    merge.add_argument("--weights", default=None, help="one weight per run, e.g. 0.5,0.5 (default: equal)")
    merge.add_argument("--density", type=float, default=0.5,
                       help="ties, dare_*, magnitude_prune: the share of each run's changes kept")
    merge.add_argument("--name", default="", help="the new run's name (default merge-HOW)")


def parse_weights(text: str | None) -> list[float] | None:
    from engine.core.config import ConfigError

    if not text:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        from engine.core.messages import Message

        raise ConfigError([Message("merge.weights_syntax", text=text)], "the merge") from None


def main(args: argparse.Namespace) -> int:
    from engine.inference.merge_runs import card_lines, check, merge

    weights = parse_weights(args.weights)
    check(args.runs, args.how, weights, args.density)  # refused by name before any model loads (exit 2)
    run_dir = merge(args.runs, args.how, weights, args.density, args.name)
    for line in card_lines(run_dir):
        print(line, file=sys.stderr)
    print(run_dir)
    return 0
