"""Messages that a language switch words again. A note or error shown after an action (a run started, an export
done, an evaluation that could not start) carries, in an HTML comment at its end, what it says: phrases (a key of
a ui module's TEXT table with its values, or a function of ui/ that words something in a language) and engine
messages (their catalogue code and parameters). On a switch, `reword` reads that back from the shown value and
words it in the new language; a box without it is left as it is.

Written by hand: Gradio re-labels components (ui/lang.py) but has nothing for the values a handler produced.
"""
from __future__ import annotations

import base64
import importlib
import json
import re

import gradio as gr

from engine.core.messages import Message, as_dict
from ui.common import english, error_box, note_box
from ui.lang import tr

_MARK = re.compile(r"<!--reword:([A-Za-z0-9+/=]+)-->")


def said(module: str, key: str, **values) -> dict:
    """A phrase: `key` of `module`'s TEXT table with its values (which may be phrases themselves)."""
    return {"t": module, "k": key, "v": values}


def worded_by(function, *args) -> dict:
    """A phrase that `function(*args, lang)` words (a function of ui/, by its module and name)."""
    return {"f": f"{function.__module__}:{function.__qualname__}", "a": list(args)}


def _word(phrase, lang) -> str:
    if isinstance(phrase, str):
        return phrase
    if "f" in phrase:
        module, name = phrase["f"].split(":")
        return getattr(importlib.import_module(module), name)(*phrase["a"], lang)
    values = {k: _word(v, lang) if isinstance(v, dict) else v for k, v in phrase["v"].items()}
    return tr(importlib.import_module(phrase["t"]).TEXT, lang, phrase["k"], **values)


def _mark(spec: dict) -> str:
    return f"<!--reword:{base64.b64encode(json.dumps(spec, default=str).encode()).decode()}-->"


def note(kind: str, lang, *phrases) -> str:
    """A note box (kind info | ok) of phrases joined by spaces, that a switch words again."""
    text = " ".join(filter(None, (_word(p, lang) for p in phrases)))
    return note_box(text, kind) + _mark({"note": list(phrases), "kind": kind})


def error(lang, title, lines=()) -> str:
    """An error box: a title phrase, then engine messages (a Message, its dict, or English text), re-wordable."""
    items = [lines] if isinstance(lines, (str, dict, Message)) else list(lines)
    items = [as_dict(i) if isinstance(i, Message) else i if isinstance(i, dict) else english(str(i))
             for i in items if i]
    return error_box(_word(title, lang), items, lang) + _mark({"error": title, "lines": items})


def reword(shown, lang):
    """The shown box worded in `lang`; gr.skip() when it carries nothing to word again."""
    match = _MARK.search(shown or "")
    if not match:
        return gr.skip()
    spec = json.loads(base64.b64decode(match.group(1)))
    if "note" in spec:
        return note(spec["kind"], lang, *spec["note"])
    return error(lang, spec["error"], spec["lines"])


def follow_language(lang, *boxes) -> None:
    """Each box is worded again when the page's language changes."""
    for box in boxes:
        lang.change(reword, [box, lang], box, show_progress="hidden", api_visibility="private")
