"""Small helpers every tab shares: running the engine CLI, finding runs, showing errors.

Anything that needs a tokenizer or a model runs as `python -m engine ...` in a child process
(an argument list, never a shell), so this process stays free of torch and a crash there is a
message here.
"""
from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path

import gradio as gr

from engine.core import runs
from engine.core.jobs import RunState, engine_command, engine_env
from engine.core.messages import Message, as_dict
from engine.core.workspace import PROJECT_ROOT, inside, runs_dir
from ui import messages
from ui.lang import norm
from ui.states import state_name

CLI_TIMEOUT_S = 600


def run_engine(*args: str, timeout: float = CLI_TIMEOUT_S,
               extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`extra_env` passes secrets (a Hub token) to the child without putting them in its argument list."""
    return subprocess.run(engine_command(*args), cwd=str(PROJECT_ROOT), env=engine_env(**(extra_env or {})),
                          text=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def start_engine(*args: str) -> subprocess.Popen:
    """A long CLI job whose output the caller reads line by line (model preparation)."""
    return subprocess.Popen(engine_command(*args), cwd=str(PROJECT_ROOT), env=engine_env(), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def last_json_line(text: str) -> dict | None:
    """The CLI prints one JSON object on stdout; libraries may print before it."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def failure_text(output: list[str], returncode: int) -> str:
    """The most useful lines of a failed engine command: its error lines, else the end of its output."""
    lines = [line for line in output if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error:" in line]
    return "\n".join(errors[-3:] or lines[-6:]) or f"exit code {returncode}"


def cli_failure(result: subprocess.CompletedProcess) -> str:
    """The most useful lines of a failed CLI call (the error line, else the end of stderr)."""
    return failure_text((result.stderr or "").strip().splitlines(), result.returncode)


# ---- messages -------------------------------------------------------------------------------
def reason(err: BaseException):
    """What an exception says, as an engine message: its catalogue message where it carries one, else its text."""
    return err.args[0] if err.args and isinstance(err.args[0], Message) else english(str(err))


def english(text: str) -> dict:
    """Engine text without a code (a library's error, a CLI's output): shown folded, under a note, in Chinese."""
    return as_dict(text)


def engine(lines):
    """Lines that come from the engine (problems, a CLI's output): plain text among them marked as English."""
    items = [lines] if isinstance(lines, str) else list(lines)
    return [item if isinstance(item, (Message, dict)) else english(str(item)) for item in items if item]


def _item(item, lang) -> str:
    if lang and isinstance(item, (Message, dict)):
        return messages.say_html(item, lang)
    return html.escape(str(item.get("message") if isinstance(item, dict) else item))


def error_box(title: str, lines: list[str] | str = (), lang: str | None = None) -> str:
    """A red box (HTML inside Markdown) listing every problem. Engine messages among them (a catalogue Message, or
    the dict form of one or of English text: `english`) are worded in `lang` (ui/messages.py); plain strings
    are the page's own text, already in its language."""
    items = [lines] if isinstance(lines, (str, dict)) else list(lines)
    body = "".join(f"<li>{_item(item, lang)}</li>" for item in items if item)
    return (f"<div class='tl-error'><b>{html.escape(title)}</b>"
            + (f"<ul>{body}</ul>" if body else "") + "</div>")


def note_box(text: str, kind: str = "info") -> str:
    return f"<div class='tl-{kind}'>{html.escape(text)}</div>"


def progress_bar(fraction: float, state: str, text_html: str) -> str:
    """A progress bar (training, evaluation, export) with its line of text below; `text_html` is escaped by the
    caller."""
    return (f"<div class='tl-progress tl-{html.escape(state)}'><div class='tl-bar' style='width:{fraction * 100:.1f}%'>"
            f"</div></div><div class='tl-progress-text'>{text_html}</div>")


# ---- runs -----------------------------------------------------------------------------------
def run_path(run_id: str) -> Path:
    """The folder of a run id given by a browser or an API client; never outside runs/."""
    run_id = (run_id or "").strip()
    if not run_id:
        raise ValueError(Message("run.none_chosen"))
    path = inside(runs_dir(), run_id)
    if path.parent != runs_dir().resolve() or not (path / "config.yaml").is_file():
        raise ValueError(Message("run.not_found", run=repr(run_id), folder=str(runs_dir())))
    return path


def finished_runs() -> list[dict]:
    """Runs with a saved result (done, including those stopped early)."""
    return [r for r in runs.list_runs() if r["state"] == RunState.DONE]


RUN_LABEL = {"en": ("{run} ({state}{loss})", ", loss {loss:.3f}"),
             "zh": ("{run}（{state}{loss}）", "，损失 {loss:.3f}")}


def run_label(run: dict, lang: str = "en") -> str:

    label, with_loss = RUN_LABEL[norm(lang)]
    loss = with_loss.format(loss=run["final_loss"]) if isinstance(run.get("final_loss"), (int, float)) else ""
    return label.format(run=run["id"], state=state_name(run["state"], lang), loss=loss)


# ---- controls whose range follows the data ----------------------------------------------------------
def clamp(value, low, high):
    """`value` moved into [low, high] (None stays None; an open end does not bound)."""
    if value is None:
        return None
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


class ClampedSlider(gr.Slider):
    """A slider whose range follows the data (an example index). When a smaller file shrinks the range while the
    browser still holds a value beyond it, the value moves to the nearest end silently, instead of Gradio's toast
    "Value 4 is greater than maximum value 3". Drawn by the frontend's own slider (a template of gr.Slider)."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(clamp(payload, self.minimum, self.maximum))
