"""Command line: `python -m engine <command>`; the same engine the UI drives."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.core.sharding import SHARDING
from engine.data.cli import cmd_data, data_arguments
from engine.inference.export_options import DTYPES
from engine.inference.generation import EVALUATION, SHORT_FORM


def _overrides_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set train.learning_rate=1e-4 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Tuneloom engine")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train headless from a YAML config; prints the run folder")
    train.add_argument("config", nargs="?", help="CONFIG.yaml (a preset or a run's config.yaml)")
    train.add_argument("--resume", metavar="RUN_DIR", nargs="?", const="", default=None,
                       help="continue a run from its last checkpoint")
    _overrides_parser(train)

    data = sub.add_parser("data", help="check or preview a data file")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    for name, text in (("check", "detect the format and count examples"),
                       ("preview", "show each example's tokens and which are trained"),
                       ("inspect", "one JSON object for the UI: format, rows, stats, token previews")):
        data_arguments(data_sub.add_parser(name, help=text), name)

    export = sub.add_parser("export", help="export a run's adapter or merged model")
    export.add_argument("run_dir")
    kind = export.add_mutually_exclusive_group(required=True)
    kind.add_argument("--merged", action="store_true")
    kind.add_argument("--adapter", action="store_true")
    kind.add_argument("--gguf", action="store_true",
                      help="GGUF files (llama.cpp, Ollama) from the merged model, an Ollama Modelfile, and a check "
                           "that they load back and agree with the merged model")
    export.add_argument("--out", required=True)
    export.add_argument("--dtype", default="auto", choices=tuple(DTYPES),
                        help="merged model's dtype (default auto: the dtype the base model is published in)")
    export.add_argument("--zip", action="store_true", help="also write OUT.zip (what the app downloads)")
    export.add_argument("--progress", action="store_true",
                        help='print {"progress": 0..1, "phase": ...} JSON lines while exporting')
    export.add_argument("--gguf-types", default="f16,q8_0", help="comma-separated: f16, bf16, q8_0, f32")
    export.add_argument("--no-check", action="store_true", help="--gguf: skip loading the files back to compare")

    push = sub.add_parser("push", help="upload a run's adapter or merged model to the Hugging Face Hub")
    push.add_argument("run_dir")
    push.add_argument("--repo", required=True, help="owner/name on the Hub (created if missing)")
    push.add_argument("--kind", choices=("adapter", "merged"), default="adapter")
    push.add_argument("--private", action="store_true")
    push.add_argument("--token", default=None, help="a write token (default: HF_TOKEN or the saved login)")

    chat = sub.add_parser("chat", help="chat in the terminal with a run's result or a base model")
    chat.add_argument("run_dir", nargs="?")
    chat.add_argument("--model", help="chat with a base model instead of a run")
    chat.add_argument("--max-new-tokens", type=int, default=SHORT_FORM["max_new_tokens"])
    chat.add_argument("--temperature", type=float, default=SHORT_FORM["temperature"], help="0 = greedy")
    chat.add_argument("--system", default=None)

    serve = sub.add_parser("serve", help="an OpenAI-compatible endpoint (/v1/chat/completions, /v1/models) for a "
                                         "run's result, or a base model with --model")
    serve.add_argument("run_dir", nargs="?")
    serve.add_argument("--model", help="serve a base model instead of a run")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; any other needs --auth)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--auth", default=None, help="user:password, or a file with one user:password per line; "
                                                    "clients send it as their api_key")

    evaluate = sub.add_parser("evaluate", help="eval loss, perplexity, ROUGE-L and BLEU of a run on held-out data")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", default=None,
                          help="a data file to evaluate on (default: the run's validation split)")
    evaluate.add_argument("--samples", type=int, default=EVALUATION["samples"],
                          help="examples to generate answers for and score")
    evaluate.add_argument("--max-new-tokens", type=int, default=EVALUATION["max_new_tokens"])
    evaluate.add_argument("--base", action="store_true", help="evaluate the run's base model (before training)")
    evaluate.add_argument("--json", action="store_true")
    from engine.evaluation.judge_run import add_arguments as judge_arguments

    judge_arguments(evaluate)  # --judge, --judge-mode, --judge-model (engine/evaluation/judge_run.py)

    model = sub.add_parser("model", help="prepare the default model (or any alias); read a model's structure")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    prep = model_sub.add_parser("prepare", help="make the model loadable (and read its structure)")
    prep.add_argument("name", nargs="?", default=None)
    describe = model_sub.add_parser("describe", help="read a model's structure from its config (meta device, no "
                                    "weights) and cache it: layers, linear layers, norms, biases, experts")
    describe.add_argument("name", nargs="?", default=None)
    describe.add_argument("--trust-remote-code", action="store_true")
    describe.add_argument("--json", action="store_true")

    methods = sub.add_parser("methods", help="list the fine-tuning methods and their parameters")
    methods.add_argument("--json", action="store_true")

    est = sub.add_parser("estimate", help="peak training memory per device, from config.json alone")
    est.add_argument("config", help="CONFIG.yaml (the model may be a folder holding only config.json)")
    _overrides_parser(est)
    est.add_argument("--json", action="store_true")
    est.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if a GPU is found")
    est.add_argument("--world-size", type=int, default=1)
    est.add_argument("--sharding", default="none", choices=SHARDING)
    est.add_argument("--attention", default="sdpa", choices=("sdpa", "flash", "eager"))
    from engine.inference.merge_cli import add_parser as add_merge
    from engine.sweep.cli import add_parser as add_sweep

    add_sweep(sub), add_merge(sub)  # their arguments and bodies live in their own modules
    return parser


def cmd_train(args) -> int:
    from engine.core import runs
    from engine.core.jobs import RunState
    from engine.training.launcher import (
        create_run,
        foreground,
        is_local_main_process,
        is_main_process,
        launched_into,
        shared_run_dir,
    )
    from engine.training.recipe import run

    if args.resume is not None:
        run_dir = Path(args.resume or Path(args.config).parent)
        refusal = runs.resume_refusal(run_dir) if not launched_into(run_dir) else None  # the app checked already
        if refusal:
            print(f"error: {refusal}", file=sys.stderr)
            return 2
        code = foreground(run_dir, resume=True)  # num_processes > 1: through `accelerate launch`
        if code is None:
            run(run_dir / "config.yaml", resume=True)
        print(run_dir)
        return code or 0
    if not args.config:
        print("error: give a CONFIG.yaml (or --resume RUN_DIR)", file=sys.stderr)
        return 2
    config_path = Path(args.config).resolve()
    from engine.core.config import ConfigError
    from engine.training.preflight import load_checked

    # a run's own config.yaml trains into its folder only when the launcher started this process for it;
    # run again by hand it reproduces the run in a new folder (only --resume continues a folder)
    own = config_path.name == "config.yaml" and runs.is_run_folder(config_path.parent)
    original = config_path.parent if own else None
    launched = original is not None and launched_into(original) and not args.overrides
    try:
        cfg = load_checked(config_path, args.overrides)  # config + model limit + disk: all problems at once
        for note in cfg.notes:  # e.g. what --set method.name= changed
            print(f"note: {note}", file=sys.stderr)
    except ConfigError as err:
        if launched:
            runs.update_status(original, state=RunState.FAILED, **runs.error_fields(err))  # a UI-started run says why
        raise
    if launched:
        run_dir = original
    elif not is_local_main_process():
        run_dir = shared_run_dir(cfg)  # one folder for all processes of a launch on this machine started by hand
    else:
        copy_of = {"reproduces": original.name, "name": f"repro-{original.name}"} if original else {}
        run_dir = create_run(cfg, copy_of.pop("name", None), **copy_of)
        print(f"run folder: {run_dir}" + (f" (reproduces {original.name})" if original else ""), file=sys.stderr)
    code = foreground(run_dir)  # num_processes > 1: start the processes through `accelerate launch`
    if code is None:
        run(run_dir / "config.yaml")
    print(run_dir)
    if not is_main_process():
        return 0  # the main process records the outcome
    return 0 if runs.read_status(run_dir).get("state") == RunState.DONE else 1


def cmd_export(args) -> int:
    from engine.inference import export

    run_dir = Path(args.run_dir)
    refusal = export.merge_refusal(run_dir) if args.merged or args.gguf else None
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2

    def report(start: float, end: float):
        """Progress of one step, as a part [start, end] of the whole export."""
        if not args.progress:
            return lambda fraction, phase: None
        return lambda fraction, phase: print(json.dumps({"progress": round(start + (end - start) * fraction, 4),
                                                         "phase": phase}), flush=True)

    split = 0.9 if args.zip else 1.0  # the merge dominates; a zip stores the weights without compressing them
    if args.gguf:
        from engine.inference.gguf import CHECK_FILE, export_gguf

        types = [t.strip() for t in args.gguf_types.split(",") if t.strip()]
        out = export_gguf(run_dir, Path(args.out), types, verify=not args.no_check,
                          log=lambda line: print(line, file=sys.stderr), progress=report(0.0, split))
        if (out / CHECK_FILE).is_file():
            for check in json.loads((out / CHECK_FILE).read_text()):
                print(f"{check['gguf']}: max |logit diff| {check['max_abs_logit_diff']}, next-token agreement "
                      f"{check['top1_agreement']:.2%}, identical greedy replies {check['identical_greedy_replies']}/"
                      f"{check['prompts']}", file=sys.stderr)
    elif args.merged:
        out = export.export_merged(run_dir, Path(args.out), args.dtype, report(0.0, split))
    else:
        out = export.export_adapter(run_dir, Path(args.out), report(0.0, split))
    if args.zip:
        out = export.zip_folder(out, report(split, 1.0))
    print(out)
    return 0


def cmd_push(args) -> int:
    from engine.inference.hub import push

    print(push(Path(args.run_dir), args.repo, args.kind, token=args.token, private=args.private,
               log=lambda line: print(line, file=sys.stderr)))
    return 0


def cmd_chat(args) -> int:
    from engine.inference.chat_client import ChatWorker

    worker = ChatWorker()
    if args.run_dir:
        note = worker.load(args.run_dir, run=str(Path(args.run_dir).resolve()))
    else:
        from engine.core.config import DEFAULT_MODEL

        note = worker.load(args.model or DEFAULT_MODEL, model=args.model or DEFAULT_MODEL)
    print(f"({note}; empty line or Ctrl-D to quit)")
    history = [{"role": "system", "content": args.system}] if args.system else []
    params = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature}
    try:
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                break
            history.append({"role": "user", "content": text})
            print("bot> ", end="", flush=True)
            reply = ""
            for piece in worker.generate(history, params):
                reply += piece
                print(piece, end="", flush=True)
            print()
            history.append({"role": "assistant", "content": reply})
    finally:
        worker.unload()
    return 0


def cmd_serve(args) -> int:
    from engine.core import runs
    from engine.core.security import LaunchRefused, check_launch

    if bool(args.run_dir) == bool(args.model):
        print("error: give a run folder, or --model for a base model (not both)", file=sys.stderr)
        return 2
    run_dir = runs.resolve_run(args.run_dir) if args.run_dir else None  # a folder or a run id
    try:
        check_launch(args.host, False, args.auth, "the model server")  # before anything loads
        if run_dir is not None:
            runs.result_dir(run_dir)  # FileNotFoundError: the run has no result yet
    except (LaunchRefused, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from engine.inference.serve import serve

    serve(run_dir, args.model, args.host, args.port, args.auth,
          log=lambda text: print(text, file=sys.stderr, flush=True))
    return 0


def cmd_evaluate(args) -> int:
    from engine.evaluation.evaluate import main as evaluate_main
    from engine.evaluation.evaluate import summary_lines, to_json
    from engine.evaluation.judge_run import spec_from_args

    judge = spec_from_args(args)  # refused before anything loads (exit 2)
    result = evaluate_main(args.run_dir, args.data, args.samples, args.base, args.max_new_tokens, judge)
    print(to_json(result) if args.json else "\n".join(summary_lines(result)))
    return 0


def cmd_sweep(args) -> int:
    from engine.sweep.cli import main as sweep_main

    return sweep_main(args)


def cmd_merge(args) -> int:
    from engine.inference.merge_cli import main as merge_main

    return merge_main(args)


def cmd_model(args) -> int:
    from engine.core.config import DEFAULT_MODEL
    from engine.core.describe import structure_of

    name = args.name or DEFAULT_MODEL
    if args.model_command == "describe":
        try:
            described = structure_of(name, args.trust_remote_code)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(described.to_json() if args.json else described.unmappable or described.summary())
        return 0
    from engine.core.models import prepare_model

    print(prepare_model(name))
    structure_of(name)  # cached for the estimate and the UI's module choices
    return 0


def cmd_methods(args) -> int:
    from engine.methods import METHODS

    if args.json:
        print(json.dumps([m.describe() for m in METHODS.entries.values()], indent=2))
        return 0
    for key, method in METHODS.items():
        print(f"{key:16s} {method.summary}")
        for param in method.params:
            kind = f"{param.type.__name__}, {param.range_text}; default {param.default!r}"
            print(f"    {param.name} ({kind}): {param.help}")
    return 0


def cmd_estimate(args) -> int:
    from engine.core.config import ConfigError, RunConfig
    from engine.core.device import detect
    from engine.estimate import COMPONENTS, estimate_for_config, verdict
    from engine.estimate.memory import label
    from engine.training.preflight import method_problems

    cfg = RunConfig.load(args.config, args.overrides)
    for note in cfg.notes:
        print(f"note: {note}", file=sys.stderr)
    problems = method_problems(cfg)  # the model's structure and the method's own checks, as `train` does
    if problems:
        raise ConfigError(problems, args.config)
    device = detect(args.device)
    est = estimate_for_config(cfg, device=device["kind"], world_size=args.world_size, sharding=args.sharding,
                              attention=args.attention)
    fit = verdict(est.total_bytes, device)
    if args.json:
        print(json.dumps({**est.to_dict(), "verdict": fit, "available_bytes": device.get("available_bytes")}))
        return 0
    print(f"{cfg.model} / {cfg.method.name}: {est.trainable_params:,} trainable of {est.total_params:,} parameters")
    for key, _ in COMPONENTS:
        if est.components[key]:
            print(f"  {label(key, est.device):42s} {est.components[key] / 2**20:12,.1f} MiB")
    print(f"  {'total (peak: ' + est.phase + ')':42s} {est.total_bytes / 2**20:12,.1f} MiB")
    if device.get("available_bytes"):
        print(f"{device['name']}: {device['available_bytes'] / 2**20:,.0f} MiB available -> {fit}")
    for note in est.notes:
        print(f"note: {note}")
    return 0


WORKER = "chat-worker"  # the chat worker process (engine/inference/chat_client.py starts it); not a user command


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == [WORKER]:
        from engine.inference.chat_worker import main as worker_main

        return worker_main()
    from engine.core import describe

    describe.IN_PROCESS = True  # a CLI process may import torch: it reads model structures itself
    args = build_parser().parse_args(argv)
    if args.command == "train" and argv is None:  # a process of its own (not a call from Python)
        from engine.core.allocator import reexec_with_allocator

        reexec_with_allocator()
    handlers = {"train": cmd_train, "data": cmd_data, "export": cmd_export, "chat": cmd_chat,
                "model": cmd_model, "methods": cmd_methods, "estimate": cmd_estimate,
                "evaluate": cmd_evaluate, "serve": cmd_serve, "push": cmd_push, "sweep": cmd_sweep, "merge": cmd_merge}
    from engine.core.errors import UserError

    try:
        return handlers[args.command](args)
    except UserError as err:  # a setting, a file or a model the user can fix: one message, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
