"""`python -m engine sweep ...`: its arguments and its body (engine/__main__.py only registers them)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="search settings with Optuna: each trial is a run; prints the sweep folder")
    sweep.add_argument("config", nargs="?", help="CONFIG.yaml every trial starts from")
    sweep.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                       help="a setting to search: KEY=LOW:HIGH[:log] or KEY=A,B,C, e.g. "
                            "train.learning_rate=1e-5:1e-3:log, method.r=8,16,32 (repeatable)")
    sweep.add_argument("--trials", type=int, default=10, help="trials to finish (pruned ones count)")
    sweep.add_argument("--sampler", default="tpe", choices=("tpe", "random", "grid"))
    sweep.add_argument("--metric", default="eval_loss", help="eval_loss (default), reward, or any eval_* key")
    sweep.add_argument("--name", default="", help="the sweep's name (its folder and its trials' run names)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of CONFIG for every trial (repeatable)")
    action = sweep.add_mutually_exclusive_group()
    action.add_argument("--resume", metavar="SWEEP", help="continue a stopped or interrupted sweep")
    action.add_argument("--stop", metavar="SWEEP", help="ask a running sweep to stop (its trial saves a checkpoint)")
    action.add_argument("--best-longer", metavar="SWEEP", help="train the best trial's settings again, twice as long")


def main(args: argparse.Namespace) -> int:
    from engine.sweep import folder as sf

    if args.stop:
        sf.request_stop(sf.resolve_sweep(args.stop))
        print(sf.resolve_sweep(args.stop))
        return 0
    if args.best_longer:
        from engine.core.config import RunConfig
        from engine.training.launcher import start

        run_dir = start(RunConfig.from_dict(sf.longer_config(sf.resolve_sweep(args.best_longer)), "best trial"))
        print(run_dir)
        return 0
    if args.resume:
        folder = sf.resolve_sweep(args.resume)
        (folder / sf.STOP_FILE).unlink(missing_ok=True)
    elif not args.config:
        print("error: give a CONFIG.yaml (or --resume / --stop / --best-longer SWEEP)", file=sys.stderr)
        return 2
    else:
        folder = sf.create_sweep(sf.load_raw(args.config, args.overrides), args.space, args.trials, args.sampler,
                                 args.metric, args.name)
        print(f"sweep folder: {folder}", file=sys.stderr)
    from engine.sweep.runner import run_sweep

    plan = run_sweep(folder, log=lambda line: print(line, file=sys.stderr, flush=True))
    best = plan.get("best")
    if best:
        print(f"best: trial {best['number']} {plan['metric_key']} {best['value']:.4f} {best['params']} "
              f"(run {best['run']})", file=sys.stderr)
    print(folder)
    return 0
