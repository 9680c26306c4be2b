"""English / Simplified Chinese for the whole page, switchable at the top and remembered.

Texts live beside the code that uses them: every ui module has its own
`TEXT = {"en": {...}, "zh": {...}}`. Components are built with the English text and registered
here with `loc(component, TEXT, label=key, info=key, ...)`; switching the language sends one
`gr.update` per registered component. Messages made by handlers use `tr(TEXT, lang, key)`, with
`lang` (the switch) as one of the handler's inputs. The choice is kept in the browser
(`gr.BrowserState`, i.e. localStorage), so a reload comes back in the same language.

Gradio's own words (a file drop zone, the footer, toasts' titles) follow Gradio's locale, which the switch
sets too (LOCALE_JS); components that draw such words only when they mount are registered with `remount`
and shown again after a switch, so they redraw in the new language.
"""
from __future__ import annotations

import json

import gradio as gr

LANGS = ("en", "zh")
CHOICES = [("English", "en"), ("中文", "zh")]
STORAGE_KEY = "tuneloom-language"

TEXT = {
    "en": {"language": "Language / 语言"},
    "zh": {"language": "Language / 语言"},
}

_REGISTRY: list[tuple[object, dict, dict]] = []  # (component, table, {property: key})
_REMOUNT: list = []  # components hidden and shown again after a switch (see `remount`)
# Gradio's locale for each of ours. Gradio reads the browser's language when the page starts; its core module
# exports changeLocale (used by its own settings panel), found here by the module's URL. Where that export is
# missing (another Gradio version), only Gradio's own words stay in the browser's language.
GRADIO_LOCALES = {"en": "en", "zh": "zh-CN"}
LOCALE_JS = """(lang) => {
  try {
    const urls = [...document.querySelectorAll('link[href], script[src]')].map(e => e.href || e.src)
      .concat(performance.getEntriesByType('resource').map(e => e.name));
    const core = urls.find(u => /\\/assets\\/core-[^/]*\\.js$/.test(u));
    const locale = LOCALES[lang] || 'en';
    if (core) import(core).then(m => m.changeLocale && m.changeLocale(locale)).catch(() => {});
  } catch (e) {}
  return lang;
}""".replace("LOCALES", json.dumps(GRADIO_LOCALES))


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


def gradio_translations() -> gr.I18n:
    """Words Gradio's own Chinese lacks (it shows the key instead, e.g. the screen-reader status "common.complete")."""
    return gr.I18n(**{"zh-CN": {"common.complete": "完成"}})


def remount(component):
    """Register a component whose built-in words Gradio draws when it mounts (a File's drop zone)."""
    _REMOUNT.append(component)
    return component


def start() -> None:
    """Forget registrations from an earlier build (build_ui may run more than once in a process)."""
    _REGISTRY.clear()
    _REMOUNT.clear()


def components() -> list:
    return [component for component, _, _ in _REGISTRY]


def apply(lang) -> list:
    """One update per registered component, in registration order."""
    return [gr.update(**{prop: key(norm(lang)) if callable(key) else tr(table, lang, key)
                         for prop, key in props.items()})
            for _, table, props in _REGISTRY]


def build():
    """The switch (a Radio) and the browser-side memory of the choice."""
    switch = gr.Radio(CHOICES, value="en", label=TEXT["en"]["language"], show_label=False, container=False,
                      elem_id="language", min_width=180, scale=0)
    remembered = gr.BrowserState("en", storage_key=STORAGE_KEY)
    return switch, remembered


def wire(demo, switch, remembered) -> None:
    private = dict(api_visibility="private")
    outputs, remounted = components(), list(_REMOUNT)
    # LOCALE_JS runs in the browser first (Gradio's locale), then the texts; then the remounted parts come back
    changed = switch.change(lambda lang: [norm(lang), *apply(lang), *[gr.update(visible=False)] * len(remounted)],
                            switch, [remembered, *outputs, *remounted], js=LOCALE_JS, show_progress="hidden",
                            **private)
    if remounted:  # (a handler with one output returns the value itself, not a list of one)
        shown = [gr.update(visible=True)] * len(remounted)
        changed.then(lambda: shown if len(shown) > 1 else shown[0], None, remounted, show_progress="hidden",
                     **private)
    # on load: the remembered language (a change event follows only if it is not English), and Gradio's locale
    # set to it (the browser's language may differ)
    demo.load(lambda saved: norm(saved), remembered, switch, show_progress="hidden", **private).then(
        None, switch, None, js=LOCALE_JS, **private)
