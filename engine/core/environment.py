"""Every environment variable Tuneloom reads, in one table: its name, its default and what it changes.
The README's "Environment variables" table is this one (tests/test_environment.py checks both ways, and that
no TUNELOOM_* name appears in the code without a row here). Pure: the modules that use a variable read it
where they use it; this is the one list of them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as the README writes it; "" when unset means off
    help: str
    internal: bool = False  # set by Tuneloom for its own child processes, not by a user


VARIABLES = (
    Variable("TUNELOOM_HOME", "~/.tuneloom", "The workspace: runs, uploads, exports, prepared models, caches."),
    Variable("TUNELOOM_MODELS", "$TUNELOOM_HOME/models",
             "Where prepared models are kept; several workspaces (users, the tests) can share one copy."),
    Variable("TUNELOOM_STRUCTURES", "$TUNELOOM_HOME/cache/structures",
             "Where model structure descriptions are cached (the estimate reads them); shareable like "
             "TUNELOOM_MODELS."),
    Variable("TUNELOOM_DATA_DIRS", "",
             "More folders (separated by the OS path separator) the page may read data files from, besides "
             "the workspace and the presets."),
    Variable("TUNELOOM_MODEL_DIRS", "",
             "More folders the page may load models from, besides the workspace's prepared models."),
    Variable("TUNELOOM_MAX_UPLOAD_MB", "200", "The size limit of a file uploaded in the page."),
    Variable("TUNELOOM_MAX_DATA_MB", "1024", "The size limit of a data file read for training or evaluation."),
    Variable("TUNELOOM_MEMORY_LIMIT_MB", "",
             "Caps the memory the app and the trainer assume the device has (to share a machine, or to test "
             "the estimate's verdicts)."),
    Variable("TUNELOOM_ALLOCATOR", "auto",
             "The trainer's malloc: auto (tcmalloc, else jemalloc, else the system's) | system | tcmalloc | "
             "jemalloc | /path/to/lib.so (Linux)."),
    Variable("TUNELOOM_GGUF_CONVERTER", ".venv/gguf-converter",
             "The folder holding llama.cpp's converter package, installed apart by `make setup`."),
    Variable("TUNELOOM_ALLOW_USER_CODE", "",
             "Set to 1 by `python app.py --allow-user-code`: the page may then start runs whose GRPO rewards include "
             "`python` (a function in the user's own file); without it the page refuses them (the CLI always may)."),
    Variable("TUNELOOM_JUDGE_API_KEY", "",
             "The API key sent to an OpenAI-compatible judge endpoint (`engine evaluate --judge URL`) when none is "
             "given; unset sends \"none\"."),
    Variable("TUNELOOM_FAULT", "",
             "oom_at_step:N | disk_full_at_step:N | hang_at_step:N | wait_at_step:N (comma-separated): injects a "
             "failure or a pause into the trainer, to test how the app reports it (the tests use it)."),
    Variable("TUNELOOM_AUTH", "", "The Docker image's user:password for the app (required: it listens on "
             "0.0.0.0)."),
    Variable("TUNELOOM_LAUNCH", "", "The token of the launch a trainer process belongs to.", internal=True),
    Variable("TUNELOOM_STDOUT_IS_LOG", "",
             "Set for a trainer whose output already goes to train.log, so it does not write each line twice.",
             internal=True),
    Variable("TUNELOOM_ALLOCATOR_APPLIED", "",
             "Set in a trainer restarted with the chosen allocator, so it never restarts again.", internal=True),
)
BY_NAME = {variable.name: variable for variable in VARIABLES}
