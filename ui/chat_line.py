"""A chat request's place in line for the chat workers, on the page and through the API.

The workers answer one request at a time. Every chat (the page's Send and side by side, the API's /chat) takes a
ticket in one first-come-first-served line (engine/inference/turns.py) and, while others are ahead, says how
many: the page in its note ("2 requests ahead", in the page's language), the API as a log message each time the
number changes (gradio_client: `job.status().log == ("2 requests ahead", "info")`). The Gradio events of the
chat therefore run without a concurrency limit of their own: the line is what serialises them.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import gradio as gr

from engine.inference.turns import TurnLine
from ui.common import note_box
from ui.lang import tr

LINE = TurnLine()
LANG_AT = 5  # the page's chat handlers take (message or prompt, ..., system, lang, *settings): lang is 6th

TEXT = {
    "en": {"ahead_one": "1 request ahead: the reply starts when it is answered",
           "ahead": "{n} requests ahead: the reply starts when they are answered"},
    "zh": {"ahead_one": "前面还有 1 个请求：它回答完后开始回答你",
           "ahead": "前面还有 {n} 个请求：它们回答完后开始回答你"},
}


def place_text(ahead: int, lang: str = "en") -> str:
    """'2 requests ahead ...' in the page's language."""
    return tr(TEXT, lang, "ahead_one") if ahead == 1 else tr(TEXT, lang, "ahead", n=ahead)


def in_line(handler: Callable[..., Iterator[tuple]], outputs: int, note_at: int) -> Callable[..., Iterator[tuple]]:
    """A page chat handler (a generator of `outputs`-tuples) that first waits its turn, showing its place in the
    output at `note_at`; a closed generator (the browser went away) gives its place up."""

    @functools.wraps(handler)
    def queued(*args):
        lang = args[LANG_AT] if len(args) > LANG_AT else "en"
        ticket = LINE.join()
        try:
            for ahead in LINE.waiting(ticket):
                update = [gr.skip()] * outputs
                update[note_at] = note_box(place_text(ahead, lang))
                yield tuple(update)
            yield from handler(*args)
        finally:
            LINE.leave(ticket)

    return queued


def in_turn(action: Callable, *args):
    """Run `action(*args)` (e.g. unloading the models) when no chat is being answered and none waits before it."""
    with LINE.turn():
        return action(*args)


def api_turn():
    """The API's turn: while waiting, each change of place goes to the client as a log message (English, as the
    API's other texts)."""
    return LINE.turn(on_wait=lambda ahead: gr.Info(place_text(ahead)))
