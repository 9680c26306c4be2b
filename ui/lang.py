"""English / Simplified Chinese for the whole page, switchable at the top and remembered.

Texts live beside the code that uses them: every ui module has its own
`TEXT = {"en": {...}, "zh": {...}}`. Components are built with the English text and registered
here with `loc(component, TEXT, label=key, info=key, ...)`; switching the language sends one
`gr.update` per registered component. Messages made by handlers use `tr(TEXT, lang, key)`, with
`lang` (the switch) as one of the handler's inputs. The choice is kept in the browser
(`gr.BrowserState`, i.e. localStorage), so a reload comes back in the same language.
"""
from __future__ import annotations

import gradio as gr

LANGS = ("en", "zh")
CHOICES = [("English", "en"), ("中文", "zh")]
STORAGE_KEY = "tuneloom-language"

TEXT = {
    "en": {"language": "Language / 语言"},
    "zh": {"language": "Language / 语言"},
}

_REGISTRY: list[tuple[object, dict, dict]] = []  # (component, table, {property: key})


def norm(lang) -> str:
    return lang if lang in LANGS else "en"


def tr(table: dict, lang, key: str, **values) -> str:
    """The text for `key` in `lang` (English when missing), formatted with `values`."""
    text = table.get(norm(lang), {}).get(key) or table["en"][key]
    return text.format(**values) if values else text


def loc(component, table: dict, **props):
    """Register `component` so its properties (label, info, placeholder, value, ...) follow the language.

    A property's key names a text in `table`; a callable instead is called with the language
    (for values built from data, such as a dropdown's choices)."""
    _REGISTRY.append((component, table, props))
    return component


def start() -> None:
    """Forget registrations from an earlier build (build_ui may run more than once in a process)."""
    _REGISTRY.clear()


def components() -> list:
    return [component for component, _, _ in _REGISTRY]


def apply(lang) -> list:
    """One update per registered component, in registration order."""
    return [gr.update(**{prop: key(norm(lang)) if callable(key) else tr(table, lang, key)
                         for prop, key in props.items()})
            for _, table, props in _REGISTRY]


def build():
    """The switch (a Radio) and the browser-side memory of the choice."""
    switch = gr.Radio(CHOICES, value="en", show_label=False, container=False, elem_id="language",
                      min_width=180, scale=0)
    remembered = gr.BrowserState("en", storage_key=STORAGE_KEY)
    return switch, remembered


def wire(demo, switch, remembered) -> None:
    private = dict(api_visibility="private")
    outputs = components()
    switch.change(lambda lang: [norm(lang), *apply(lang)], switch, [remembered, *outputs],
                  show_progress="hidden", **private)
    # on load: the remembered language (a change event follows only if it is not English)
    demo.load(lambda saved: norm(saved), remembered, switch, show_progress="hidden", **private)
