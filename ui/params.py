"""Controls rendered from `Param` declarations: a new method module needs no UI code.

Every method gets its own group of controls (built once, shown while it is selected), so the
values a user typed for one method survive switching to another and back.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from engine.core.registry import Param
from engine.methods import METHODS
from ui import method_evidence
from ui.lang import loc, norm
from ui.methods_zh import METHOD_ZH as METHOD_ZH_MORE

# Chinese for what engine/methods declares in English (title, summary, and each Param's label and
# help), keyed by method key and param name; anything missing falls back to English (and
# tests/test_ui_language.py lists it).
METHOD_ZH = {
    "lora": {
        "title": "LoRA", "summary": "在冻结的权重旁训练小的低秩矩阵；大多数任务的默认选择。",
        "params": {
            "r": ("秩 r", "更新的秩，即适配器的容量。大多数任务用 8-16 即可。"),
            "alpha": ("alpha", "更新的缩放系数（alpha / r）。常用秩的两倍。"),
            "dropout": ("dropout", "适配器输入上的 dropout；可缓解小数据集上的过拟合。"),
            "target_modules": ("目标模块", "加适配器的层：all-linear、attention、mlp、模型自己的模块名（q_proj,v_proj；"
                                           "query_key_value），或对完整名称的 re:<正则表达式>。"),
        },
    },
}
METHOD_ZH.update(METHOD_ZH_MORE)  # every other method (ui/methods_zh.py)
# the train: and data: settings drawn from the same Param declarations (ui/train_tab.py TRAIN_PARAMS)
PARAM_ZH: dict[str, tuple[str, str]] = {}


def method_text(key: str, lang: str) -> tuple[str, str]:
    method = METHODS.get(key)
    zh = METHOD_ZH.get(key, {}) if norm(lang) == "zh" else {}
    return zh.get("title") or method.title, zh.get("summary") or method.summary


def param_text(param: Param, lang: str, method: str | None = None) -> tuple[str, str]:
    """(label, help) of a Param in `lang`, English where no translation exists."""
    if norm(lang) != "zh":
        return param.title, param.help
    found = (METHOD_ZH.get(method, {}).get("params", {}) if method else PARAM_ZH).get(param.name)
    return found if found else (param.title, param.help)

SLIDER_MAX_STEPS = 64  # an int range this small (or a float range within 0..1) reads best as a slider


def component(param: Param, value, elem_id: str | None = None, method: str | None = None):
    """bool -> Checkbox, choices -> Dropdown, bounded small range -> Slider, number -> Number, else Textbox.

    Its label and help follow the page language (Chinese from METHOD_ZH / PARAM_ZH)."""
    table = {lang: dict(zip(("label", "info"), param_text(param, lang, method))) for lang in ("en", "zh")}
    return loc(_component(param, value, elem_id), table, label="label", info="info")


def _component(param: Param, value, elem_id: str | None = None):
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


def method_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [("{}: {}".format(*method_text(key, lang)), key) for key, _ in METHODS.items()]


def build(selected: str, values: dict) -> SimpleNamespace:
    """One hidden group per method; `values` pre-fills the selected method (e.g. from a preset)."""
    groups, inputs, keys = {}, [], []
    record = method_evidence.load()  # what each preset measured on real instructions, read once
    for key, method in METHODS.items():
        with gr.Group(visible=key == selected) as group:
            measured = {lang: method_evidence.line(key, lang, record) for lang in ("en", "zh")}
            if measured["en"]:  # what its preset measured on real instructions (bench/methods_real.py)
                loc(gr.Markdown(measured["en"], elem_id=f"{key}-measured", elem_classes=["tl-measured"]),
                    {lang: {"measured": text} for lang, text in measured.items()}, value="measured")
            if not method.params:
                loc(gr.Markdown(f"{method.title} has no settings of its own."),
                    {"en": {"none": f"{method.title} has no settings of its own."},
                     "zh": {"none": f"{method_text(key, 'zh')[0]} 没有自己的设置。"}}, value="none")
            for param in method.params:
                value = values.get(param.name, param.default) if key == selected else param.default
                inputs.append(component(param, value, elem_id=f"{key}-{param.name}", method=key))
                keys.append((key, param.name))
        groups[key] = group
    return SimpleNamespace(groups=groups, inputs=inputs, keys=keys)


def show(ns: SimpleNamespace, selected: str) -> list:
    return [gr.update(visible=key == selected) for key in ns.groups]


def values_for(ns: SimpleNamespace, selected: str, raw_values: list) -> dict:
    """The selected method's parameters from the flat list of every control's value."""
    return {name: value for (key, name), value in zip(ns.keys, raw_values) if key == selected}
