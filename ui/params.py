"""Controls rendered from `Param` declarations: a new method module needs no UI code.

Every method gets its own group of controls (built once, shown while it is selected), so the
values a user typed for one method survive switching to another and back.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from engine.methods import METHODS
from engine.registry import Param

SLIDER_MAX_STEPS = 64  # an int range this small (or a float range within 0..1) reads best as a slider


def component(param: Param, value, elem_id: str | None = None):
    """bool -> Checkbox, choices -> Dropdown, bounded small range -> Slider, number -> Number, else Textbox."""
    common = dict(label=param.title, info=param.help, elem_id=elem_id)
    if param.type is bool:
        return gr.Checkbox(bool(value), **common)
    if param.choices is not None:
        return gr.Dropdown(list(param.choices), value=value, **common)
    if param.type in (int, float):
        bounded = param.min is not None and param.max is not None
        if bounded and param.type is int and param.max - param.min <= SLIDER_MAX_STEPS:
            return gr.Slider(param.min, param.max, value=value, step=1, **common)
        if bounded and param.type is float and param.max - param.min <= 1:
            return gr.Slider(param.min, param.max, value=value, step=0.01, **common)
        return gr.Number(value, minimum=param.min, maximum=param.max, precision=0 if param.type is int else None,
                         step=1 if param.type is int else 0.01, **common)
    return gr.Textbox("" if value is None else str(value), **common)


def method_choices() -> list[tuple[str, str]]:
    return [(f"{m.title}: {m.summary}", key) for key, m in METHODS.items()]


def build(selected: str, values: dict) -> SimpleNamespace:
    """One hidden group per method; `values` pre-fills the selected method (e.g. from a preset)."""
    groups, inputs, keys = {}, [], []
    for key, method in METHODS.items():
        with gr.Group(visible=key == selected) as group:
            if not method.params:
                gr.Markdown(f"{method.title} has no settings of its own.")
            for param in method.params:
                value = values.get(param.name, param.default) if key == selected else param.default
                inputs.append(component(param, value, elem_id=f"{key}-{param.name}"))
                keys.append((key, param.name))
        groups[key] = group
    return SimpleNamespace(groups=groups, inputs=inputs, keys=keys)


def show(ns: SimpleNamespace, selected: str) -> list:
    return [gr.update(visible=key == selected) for key in ns.groups]


def values_for(ns: SimpleNamespace, selected: str, raw_values: list) -> dict:
    """The selected method's parameters from the flat list of every control's value."""
    return {name: value for (key, name), value in zip(ns.keys, raw_values) if key == selected}
