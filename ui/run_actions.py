"""What the page and the API do to a run: stop, resume, delete (with a confirmation). Their words are the Train
tab's (ui/train_text.py)."""
from __future__ import annotations

import gradio as gr

from engine.core import runs
from engine.training import launcher
from ui import reword
from ui.common import error_box, reason, run_path
from ui.lang import tr
from ui.reword import said
from ui.train_text import TEXT


def stop_run(run_id: str) -> None:
    """Stop a queued or running run (the page's Stop and the API's /stop_training); ValueError says why not."""
    launcher.stop(run_path(run_id))


def resume_run(run_id: str) -> None:
    """Resume a stopped or failed run from its checkpoint (Resume and /resume_training); ValueError says why not."""
    launcher.resume(run_path(run_id))


def delete_run(run_id: str) -> None:
    """Delete a run's folder (Delete and /delete_run); ValueError while it, an evaluation or a server runs."""
    runs.delete_run(run_path(run_id))


def on_stop(run_id, lang="en"):
    try:
        stop_run(run_id)
    except Exception as err:
        return reword.error(lang, said(__name__, "cannot_stop"), reason(err))
    return reword.note("info", lang, said(__name__, "stopping", run=run_id))


def on_resume(run_id, lang="en"):
    try:
        resume_run(run_id)
    except Exception as err:
        return reword.error(lang, said(__name__, "cannot_resume"), reason(err))
    return reword.note("ok", lang, said(__name__, "resuming", run=run_id))


def on_delete_ask(run_id, lang="en"):
    """The first click: say what will go and ask again (nothing is deleted yet)."""
    try:
        refusal = runs.delete_refusal(run_path(run_id))
    except ValueError as err:
        refusal = reason(err)
    if refusal:
        return error_box(tr(TEXT, lang, "cannot_delete"), refusal, lang), gr.update(visible=False)
    return "", gr.update(visible=True)


def on_delete_confirm(run_id, lang="en"):
    try:
        delete_run(run_id)
    except Exception as err:
        return error_box(tr(TEXT, lang, "cannot_delete"), reason(err), lang), gr.update(visible=False), gr.skip()
    listing = runs.list_runs()
    return reword.note("ok", lang, said(__name__, "deleted", run=run_id)), gr.update(visible=False), \
        gr.update(choices=[r["id"] for r in listing], value=listing[0]["id"] if listing else None)


def confirm_text(run_id, lang="en") -> str:
    return tr(TEXT, lang, "confirm_delete", run=run_id or "")
