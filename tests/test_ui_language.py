"""Every text of the UI exists in English and Chinese; switching sends a Chinese text to every labelled part."""
from __future__ import annotations

import importlib
import pkgutil
import re

import ui
from engine.methods import METHODS


def text_tables():
    for info in pkgutil.iter_modules(ui.__path__):
        module = importlib.import_module(f"ui.{info.name}")
        table = getattr(module, "TEXT", None)
        if isinstance(table, dict):
            yield info.name, table


def test_every_module_text_table_has_both_languages_with_the_same_keys():
    tables = dict(text_tables())
    assert {"app", "chat_tab", "data_tab", "train_tab", "export_tab", "eval_tab", "compare_tab"} <= set(tables)
    problems = []
    for name, table in tables.items():
        en, zh = table.get("en", {}), table.get("zh", {})
        problems += [f"ui/{name}.py: '{k}' has no Chinese" for k in sorted(set(en) - set(zh))]
        problems += [f"ui/{name}.py: '{k}' has no English" for k in sorted(set(zh) - set(en))]
        problems += [f"ui/{name}.py: '{k}' is empty in {lang}" for lang in ("en", "zh")
                     for k, v in table.get(lang, {}).items() if not str(v).strip()]
    assert not problems, "\n".join(problems)


def test_methods_and_their_params_have_chinese():
    from ui.params import METHOD_ZH, PARAM_ZH
    from ui.train_tab import SETTINGS

    missing = []
    for key, method in METHODS.items():
        zh = METHOD_ZH.get(key, {})
        missing += [f"{key}.{field}" for field in ("title", "summary") if not zh.get(field)]
        missing += [f"{key}.{p.name}" for p in method.params if not all(zh.get("params", {}).get(p.name, ()))]
    missing += [f"train.{p.name}" for _, p in SETTINGS if not all(PARAM_ZH.get(p.name, ()))]
    assert not missing, "Chinese missing in ui/params.py METHOD_ZH / ui/train_tab.py TRAIN_PARAM_ZH: " + \
        ", ".join(missing)


def test_switching_language_updates_every_registered_component(workspace):
    from ui import lang
    from ui.app import build_ui

    build_ui()
    updates = lang.apply("zh")
    assert len(updates) == len(lang.components()) > 80
    english = lang.apply("en")
    changed = sum(1 for a, b in zip(updates, english) if a != b)
    assert changed >= 0.9 * len(updates)  # nearly all differ (a few, like "Top-k", read the same)
    assert lang.tr({"en": {"a": "x {n}"}, "zh": {}}, "zh", "a", n=1) == "x 1"  # English fallback
    assert lang.norm("fr") == "en"


def test_live_run_texts_follow_the_language():
    """Progress bar, numbers, failure advice and the runs table are built per tick, in the page's language."""
    from ui import follow
    from ui.train_tab import runs_table

    status = {"state": "running", "step": 3, "max_steps": 10, "elapsed_s": 30, "trainable_params": 10}
    rows = [{"step": 1, "loss": 1.0, "learning_rate": 1e-4}, {"step": 1, "eval_loss": 1.2}]
    def shown(lang):  # the visible text, without the tags' class names
        return re.sub(r"<[^>]+>", " ", follow.progress_html(status, lang)) + follow.numbers_markdown(rows, status, lang)

    english, chinese = shown("en"), shown("zh")
    for word in ("running", "step", "elapsed", "ETA", "train loss", "eval loss", "tokens/s"):
        assert word in english and word not in chinese, word
    assert set(follow.loss_frame(rows, "zh")["series"]) == {"训练损失", "验证损失"}
    for lang in ("en", "zh"):  # a series missing from the plot's colour map is not drawn at all
        assert set(follow.loss_frame(rows, lang)["series"]) == set(follow.loss_colors(lang))
    advice = follow.failure_lines({"error": "e", "failure": {"advice": ["batch_size 1"]}}, "zh")
    assert advice[1] == "建议：batch_size 1"
    table = runs_table([{"id": "r1", "state": "done", "step": 5, "max_steps": 5, "final_loss": 0.5}], "zh")
    assert table["headers"][4] == "状态" and table["data"][0][4] == "已完成"
