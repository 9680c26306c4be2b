"""`python -m engine data check|preview|inspect FILE`: reading a data file as the trainer will, its counts, token
statistics and previews (engine/__main__.py registers the arguments and dispatches here)."""
from __future__ import annotations

import argparse
import json
import sys


def data_arguments(cmd: argparse.ArgumentParser, name: str) -> None:
    from engine.core.config import MASKS

    cmd.add_argument("file")
    cmd.add_argument("--format", default="auto")
    cmd.add_argument("--model", default=None, help="tokenizer to use (default: the default model)")
    cmd.add_argument("--template", default="auto", help="chat template: the model's own (auto) or a named one")
    cmd.add_argument("--mask", default="assistant", choices=MASKS)
    cmd.add_argument("--reasoning", default="auto", choices=("auto", "inline", "drop"),
                     help="reasoning traces: where the template has a place (auto), inline as <think>, or drop")
    cmd.add_argument("--max-seq-len", type=int, default=2048)
    cmd.add_argument("--column", action="append", default=[], metavar="SOURCE=FIELD",
                     help="map a file column to an expected field, e.g. --column question=instruction")
    cmd.add_argument("--skip-bad-rows", action="store_true")
    cmd.add_argument("--split", default="train", help="datasets folder or hub:owner/name: the split to read")
    cmd.add_argument("--subset", default="", help="hub:owner/name: the configuration (subset) to read")
    if name == "inspect":
        cmd.add_argument("--limit", type=int, default=20, help="token previews for this many examples")
        cmd.add_argument("--start", type=int, default=0, help="first example to preview (0-based)")
    else:
        cmd.add_argument("--json", action="store_true")
        cmd.add_argument("--limit", type=int, default=None, help="preview only the first N examples")


def _load_for_data(args):
    from engine.data import load_examples

    columns = dict(item.split("=", 1) for item in args.column)
    # a plain check only counts (streams any size of file); token stats and previews need the examples
    keep = 0 if args.data_command == "check" and not args.model else None
    return load_examples(args.file, args.format, columns, args.skip_bad_rows, keep=keep, split=args.split,
                         subset=args.subset, reasoning=args.reasoning)


def cmd_data(args) -> int:
    from engine.data import DataError

    if args.data_command == "inspect":
        return cmd_data_inspect(args)
    try:
        loaded = _load_for_data(args)
    except DataError as err:
        if args.json:
            print(json.dumps({"error": err.to_dict()}))
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.data_command == "check":
        from engine.data.pairwise import data_kind

        report = {"file": loaded.file, "format": loaded.format, "kind": data_kind(loaded), "examples": loaded.count,
                  "note": str(loaded.note),
                  "fields": loaded.fields, "skipped_bad_rows": [str(e) for e in loaded.skipped],
                  "skipped_bad_rows_count": loaded.skipped_count}
        if args.model:
            report.update(_encoded_stats(args, loaded))
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            print(f"{loaded.file}: format {loaded.format}, {loaded.count} examples ({report['kind']})")
            if loaded.note:
                print(f"  note: {loaded.note}")
            for key in ("documents", "blocks", "tool_examples", "reasoning_examples", "tokens", "trained_tokens",
                        "dropped"):
                if key in report:
                    print(f"  {key}: {report[key]}")
            if loaded.skipped_count:
                print(f"  skipped {loaded.skipped_count} bad rows:")
                for error in loaded.skipped[:20]:
                    print(f"    {error}")
        if args.model and report.get("dropped") and sum(report["dropped"].values()) == loaded.count:
            print(f"error: {loaded.file}: all {loaded.count} examples would be dropped ({report['dropped']}); "
                  "nothing would be trained. Raise --max-seq-len or shorten the prompts", file=sys.stderr)
            return 1
        return 0
    return _preview(args, loaded)


def _encode_every(loaded, tokenizer, args) -> tuple[list, dict, list]:
    """(kept, dropped reason -> count, "line N: reason" rows) as the trainer encodes this kind of data."""
    from engine.data.dataset import encode_all
    from engine.data.pairwise import data_kind, encode_all_preference
    from engine.data.prompts import encode_all_prompts

    kind = data_kind(loaded)
    if kind in ("pairwise", "unpaired"):
        return encode_all_preference(loaded, tokenizer, args.max_seq_len)
    if kind == "prompt":  # GRPO's prompts: the answers are sampled while training
        return encode_all_prompts(loaded, tokenizer, args.max_seq_len)
    return encode_all(loaded, tokenizer, args.mask, args.max_seq_len)


def _encoded_stats(args, loaded) -> dict:
    from engine.core.models import load_tokenizer

    tokenizer = load_tokenizer(args.model, template=args.template)
    kept, dropped, rows = _encode_every(loaded, tokenizer, args)
    from engine.data.chat_render import features
    from engine.data.dataset import is_raw_text

    blocks = {"documents": loaded.count, "blocks": len(kept)} if is_raw_text(loaded) else {}
    blocks.update({"reasoning_examples": loaded.reasoning_count, "tool_examples": loaded.tool_count,
                   "reasoning": args.reasoning, "template_has": features(tokenizer)})
    return {**blocks, "tokens": sum(len(e.input_ids) for e in kept),
            "trained_tokens": sum(e.trained_tokens for e in kept), "dropped": dict(dropped), "dropped_rows": rows[:20]}


def _preview(args, loaded) -> int:
    from engine.core.config import DEFAULT_MODEL
    from engine.core.models import load_tokenizer
    from engine.data.masking import Dropped, encode, token_preview
    from engine.data.pairwise import data_kind, preview_entry

    tokenizer = load_tokenizer(args.model or DEFAULT_MODEL, template=args.template)
    if data_kind(loaded) == "prompt":  # the prompt as the model reads it, and the references its rewards use
        from engine.data.prompts import prompt_preview

        entries = [prompt_preview(tokenizer, example, args.max_seq_len) for example in loaded.examples[: args.limit]]
        if args.json:
            print(json.dumps(entries, ensure_ascii=False))
            return 0
        labelled = [(f"{e['where']} " + (f"dropped: {e['dropped']}" if e["dropped"] else "prompt; references "
                                         + json.dumps(e["references"], ensure_ascii=False)), e["tokens"])
                    for e in entries]
    elif data_kind(loaded) in ("pairwise", "unpaired"):  # one entry per answer: chosen, then rejected
        entries = [preview_entry(tokenizer, example, args.max_seq_len) for example in loaded.examples[: args.limit]]
        labelled = []
        for e in entries:
            if e["dropped"]:
                labelled.append((f"{e['where']} dropped: {e['dropped']}", []))
            elif "rejected_tokens" in e:
                labelled += [(f"{e['where']} chosen", e["tokens"]), (f"{e['where']} rejected", e["rejected_tokens"])]
            else:
                labelled.append((f"{e['where']} {'desirable' if e['label'] else 'undesirable'}", e["tokens"]))
        if args.json:
            print(json.dumps(entries, ensure_ascii=False))
            return 0
    else:
        previews = []
        for example in loaded.examples[: args.limit]:
            encoded = encode(tokenizer, example, args.mask, args.max_seq_len)
            previews.append([] if isinstance(encoded, Dropped) else token_preview(tokenizer, example, encoded))
        if args.json:
            print(json.dumps(previews, ensure_ascii=False))
            return 0
        labelled = [(example.where, tokens) for example, tokens in zip(loaded.examples, previews)]
    for where, tokens in labelled:
        print(f"--- {where} ({sum(t['trained'] for t in tokens)} trained of {len(tokens)} tokens)")
        # trained tokens in [brackets], masked ones plain
        print("".join(f"[{t['token']}]" if t["trained"] else t["token"] for t in tokens))
    return 0


def cmd_data_inspect(args) -> int:
    """Everything the UI's Data tab shows, as one JSON object (the UI process never loads a tokenizer)."""
    from engine.core.config import DEFAULT_MODEL
    from engine.core.messages import as_dict
    from engine.core.models import load_tokenizer
    from engine.data import DataError, load_examples
    from engine.data.dataset import Prepared
    from engine.data.masking import Dropped, encode, token_preview

    try:
        columns = dict(item.split("=", 1) for item in args.column)
        loaded = load_examples(args.file, args.format, columns, args.skip_bad_rows, split=args.split,
                               subset=args.subset, reasoning=args.reasoning)
    except DataError as err:
        print(json.dumps({"error": err.to_dict()}, ensure_ascii=False))
        return 1
    from engine.data.pairwise import data_kind, preview_entry

    tokenizer = load_tokenizer(args.model or DEFAULT_MODEL, template=args.template)
    kind = data_kind(loaded)
    shown = loaded.examples[args.start: args.start + args.limit]
    kept, dropped, rows = _encode_every(loaded, tokenizer, args)
    if kind in ("pairwise", "unpaired"):  # preference data: chosen and rejected answers (engine/data/pairwise.py)
        previews = [preview_entry(tokenizer, example, args.max_seq_len) for example in shown]
    elif kind == "prompt":  # GRPO's prompts and their reference columns (engine/data/prompts.py)
        from engine.data.prompts import prompt_preview

        previews = [prompt_preview(tokenizer, example, args.max_seq_len) for example in shown]
    else:
        previews = []
        for example in shown:
            encoded = encode(tokenizer, example, args.mask, args.max_seq_len)
            dropped_why = str(encoded) if isinstance(encoded, Dropped) else ""
            previews.append({"where": example.where, "dropped": dropped_why,
                             "dropped_i18n": as_dict(encoded) if dropped_why else None,
                             "tokens": [] if dropped_why else token_preview(tokenizer, example, encoded)})
    stats = Prepared(loaded, kept, [], dropped, rows).stats()  # the trainer's own numbers
    from engine.data.chat_render import features

    print(json.dumps({"file": loaded.file, "format": loaded.format, "kind": kind, "fields": loaded.fields,
                      "template_has": features(tokenizer), "reasoning": args.reasoning,
                      "rows": loaded.preview_rows, "stats": stats, "start": args.start,
                      "previews": previews}, ensure_ascii=False, default=str))
    return 0
