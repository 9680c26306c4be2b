"""Command line: `python -m engine <command>`; the same engine the UI drives."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
                       ("preview", "show each example's tokens and which are trained")):
        cmd = data_sub.add_parser(name, help=text)
        cmd.add_argument("file")
        cmd.add_argument("--format", default="auto")
        cmd.add_argument("--model", default=None, help="tokenizer to use (default: the default model)")
        cmd.add_argument("--mask", default="assistant", choices=("assistant", "last_assistant", "none"))
        cmd.add_argument("--max-seq-len", type=int, default=2048)
        cmd.add_argument("--column", action="append", default=[], metavar="SOURCE=FIELD",
                         help="map a file column to an expected field, e.g. --column question=instruction")
        cmd.add_argument("--skip-bad-rows", action="store_true")
        cmd.add_argument("--json", action="store_true")
        cmd.add_argument("--limit", type=int, default=None, help="preview only the first N examples")

    export = sub.add_parser("export", help="export a run's adapter or merged model")
    export.add_argument("run_dir")
    kind = export.add_mutually_exclusive_group(required=True)
    kind.add_argument("--merged", action="store_true")
    kind.add_argument("--adapter", action="store_true")
    export.add_argument("--out", required=True)

    chat = sub.add_parser("chat", help="chat in the terminal with a run's result or a base model")
    chat.add_argument("run_dir", nargs="?")
    chat.add_argument("--model", help="chat with a base model instead of a run")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--system", default=None)

    sub.add_parser("chat-worker", help=argparse.SUPPRESS)

    model = sub.add_parser("model", help="prepare the default model (or any alias)")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    prep = model_sub.add_parser("prepare")
    prep.add_argument("name", nargs="?", default=None)

    methods = sub.add_parser("methods", help="list the fine-tuning methods and their parameters")
    methods.add_argument("--json", action="store_true")
    return parser


def cmd_train(args) -> int:
    from engine import runs
    from engine.config import RunConfig
    from engine.launcher import create_run
    from engine.train import run

    if args.resume is not None:
        run_dir = Path(args.resume or Path(args.config).parent)
        run(run_dir / "config.yaml", resume=True)
        print(run_dir)
        return 0
    if not args.config:
        print("error: give a CONFIG.yaml (or --resume RUN_DIR)", file=sys.stderr)
        return 2
    config_path = Path(args.config).resolve()
    cfg = RunConfig.load(config_path, args.overrides)
    if config_path.name == "config.yaml" and (config_path.parent / "status.json").is_file() and not args.overrides:
        run_dir = config_path.parent  # launched by the UI into its own run folder
    else:
        run_dir = create_run(cfg)
        print(f"run folder: {run_dir}", file=sys.stderr)
    run(run_dir / "config.yaml")
    print(run_dir)
    return 0 if runs.read_status(run_dir).get("state") == "done" else 1


def _load_for_data(args):
    from engine.data import load_examples

    columns = dict(item.split("=", 1) for item in args.column)
    return load_examples(args.file, args.format, columns, args.skip_bad_rows)


def cmd_data(args) -> int:
    from engine.data import DataError

    try:
        loaded = _load_for_data(args)
    except DataError as err:
        if args.json:
            print(json.dumps({"error": err.to_dict()}))
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.data_command == "check":
        report = {"file": loaded.file, "format": loaded.format, "examples": len(loaded.examples),
                  "fields": loaded.fields, "skipped_bad_rows": [str(e) for e in loaded.skipped]}
        if args.model:
            report.update(_encoded_stats(args, loaded))
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            print(f"{loaded.file}: format {loaded.format}, {len(loaded.examples)} examples")
            for key in ("tokens", "trained_tokens", "dropped"):
                if key in report:
                    print(f"  {key}: {report[key]}")
            if loaded.skipped:
                print(f"  skipped {len(loaded.skipped)} bad rows:")
                for error in loaded.skipped[:20]:
                    print(f"    {error}")
        return 0
    return _preview(args, loaded)


def _encoded_stats(args, loaded) -> dict:
    from engine.models import load_tokenizer
    from engine.prepare import encode_all

    tokenizer = load_tokenizer(args.model)
    kept, dropped, rows = encode_all(loaded, tokenizer, args.mask, args.max_seq_len)
    return {"tokens": sum(len(e.input_ids) for e in kept), "trained_tokens": sum(e.trained_tokens for e in kept),
            "dropped": dict(dropped), "dropped_rows": rows[:20]}


def _preview(args, loaded) -> int:
    from engine.config import DEFAULT_MODEL
    from engine.masking import Dropped, encode, token_preview
    from engine.models import load_tokenizer

    tokenizer = load_tokenizer(args.model or DEFAULT_MODEL)
    previews = []
    for example in loaded.examples[: args.limit]:
        encoded = encode(tokenizer, example, args.mask, args.max_seq_len)
        previews.append([] if isinstance(encoded, Dropped) else token_preview(tokenizer, encoded))
    if args.json:
        print(json.dumps(previews, ensure_ascii=False))
        return 0
    for example, tokens in zip(loaded.examples, previews):
        print(f"--- {example.where} ({sum(t['trained'] for t in tokens)} trained of {len(tokens)} tokens)")
        # trained tokens in [brackets], masked ones plain
        print("".join(f"[{t['token']}]" if t["trained"] else t["token"] for t in tokens))
    return 0


def cmd_export(args) -> int:
    from engine.export import export_adapter, export_merged

    out = (export_merged if args.merged else export_adapter)(Path(args.run_dir), Path(args.out))
    print(out)
    return 0


def cmd_chat(args) -> int:
    from engine.chat_client import ChatWorker

    worker = ChatWorker()
    if args.run_dir:
        note = worker.load(args.run_dir, run=str(Path(args.run_dir).resolve()))
    else:
        from engine.config import DEFAULT_MODEL

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


def cmd_model(args) -> int:
    from engine.config import DEFAULT_MODEL
    from engine.models import prepare

    print(prepare(args.name or DEFAULT_MODEL))
    return 0


def cmd_methods(args) -> int:
    from engine.methods import METHODS

    if args.json:
        print(json.dumps([m.describe() for m in METHODS.entries.values()], indent=2))
        return 0
    for key, method in METHODS.items():
        print(f"{key:16s} {method.summary}")
        for param in method.params:
            print(f"    {param.name:22s} default {param.default!r:14s} {param.help}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "chat-worker":
        from engine.chat_worker import main as worker_main

        return worker_main()
    handlers = {"train": cmd_train, "data": cmd_data, "export": cmd_export, "chat": cmd_chat,
                "model": cmd_model, "methods": cmd_methods}
    from engine.config import ConfigError

    try:
        return handlers[args.command](args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
