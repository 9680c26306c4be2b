"""A warm command line for the UI: one process that has imported torch, transformers and datasets once and
runs `python -m engine ...` commands one after another, as a new process would, without paying the imports
(seconds of CPU each, tens of seconds on a loaded machine) for every data check.

Protocol (stdin/stdout, one JSON line each): the UI writes the argument list of a command; the worker answers
{"returncode", "stdout", "stderr"} of that command. It ends when its stdin closes (the UI process is gone).
Started by ui/warm_cli.py as `python -m engine.cli_worker`.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback


def run_one(argv: list[str]) -> dict:
    """One command, its output captured as a child process's would be."""
    from engine.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse, sys.exit in a command
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # what would have been a crashed process: its traceback on stderr
            traceback.print_exc()
            code = 1
    return {"returncode": int(code or 0), "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> int:
    # answers go to the original stdout; anything else written to file descriptor 1 (C libraries) goes to stderr
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # the imports a data check pays (torch comes with transformers' tokenizer classes), paid once, now
    import datasets  # noqa: F401
    from transformers import AutoTokenizer  # noqa: F401

    import engine.data.dataset  # noqa: F401

    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        answers.write(json.dumps(run_one(json.loads(line)), ensure_ascii=False) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
