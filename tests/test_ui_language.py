"""Every text of the UI exists in English and Chinese; switching sends a Chinese text to every labelled part."""
from __future__ import annotations

import importlib
import pkgutil
import re
import string
from pathlib import Path

from english_words import english_words

import ui
from engine.core import messages as engine_messages
from engine.methods import METHODS
from ui import messages

DATA = Path(__file__).parent / "data"


def text_tables():
    for info in pkgutil.iter_modules(ui.__path__):
        module = importlib.import_module(f"ui.{info.name}")
        table = getattr(module, "TEXT", None)
        if isinstance(table, dict):
            yield info.name, table


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


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
        problems += [f"ui/{name}.py: '{k}' has other placeholders in zh ({placeholders(zh[k])} vs {placeholders(v)})"
                     for k, v in en.items() if k in zh and placeholders(zh[k]) != placeholders(v)]
    assert not problems, "\n".join(problems)


def test_other_worded_tables_have_chinese():
    """Tables beside TEXT: the bundled samples' labels, run labels, where a model alias comes from."""
    from engine.core.workspace import ALIASES
    from ui import app, common, data_tab

    assert set(data_tab.SAMPLE_NOTES["en"]) == set(data_tab.SAMPLE_NOTES["zh"])
    assert set(ALIASES) == set(app.ALIAS_SOURCES_ZH)
    assert common.run_label({"id": "r1", "state": "done", "final_loss": 0.5}, "zh") == "r1（已完成，损失 0.500）"


def test_every_engine_message_code_has_chinese_with_the_same_parameters():
    problems = [f"{code}: no Chinese template in ui/messages.py ZH" for code in engine_messages.CATALOGUE
                if code not in messages.ZH]
    problems += [f"{code}: in ui/messages.py ZH but not in the engine's catalogue" for code in messages.ZH
                 if code not in engine_messages.CATALOGUE]
    problems += [f"{code}: parameters {placeholders(messages.ZH[code])} != {placeholders(english)}"
                 for code, english in engine_messages.CATALOGUE.items()
                 if code in messages.ZH and placeholders(messages.ZH[code]) != placeholders(english)]
    assert not problems, "\n".join(problems)


def test_a_data_error_is_worded_in_chinese_with_the_english_kept():
    """The data error a user meets most (tests/data/bad/missing_field.jsonl), as the Data tab receives it
    (the CLI's JSON), in Chinese: the file, line and field by name, nothing else in English."""
    import json

    import pytest

    from engine.data import DataError, load_examples

    with pytest.raises(DataError) as info:
        load_examples(DATA / "bad" / "missing_field.jsonl")
    err = info.value
    report = json.loads(json.dumps(err.to_dict()))  # across the process boundary
    english = messages.data_error(report, "en")
    chinese = messages.data_error(report, "zh")
    assert english[0] == "missing_field.jsonl, line 2, field 'output': missing" and english[1].startswith("What to do:")
    assert chinese[0] == "missing_field.jsonl，第 2 行，字段 'output'：缺失" and chinese[1].startswith("怎么办：")
    assert not english_words(" ".join(chinese), allowed={"missing_field", "jsonl", "output", "instruction", "input"})
    assert report["text"] == str(err)  # the English detail stays available


def test_config_problems_keep_their_codes_through_prefixes_and_status_files():
    """A problem found inside a section (method.r) keeps its code; a failed run's error in status.json is worded
    in Chinese only while its code belongs to it."""
    import pytest

    from engine.core.config import ConfigError, RunConfig
    from engine.core.runs import error_fields

    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"method": {"name": "lora", "r": 0}, "train": {"learning_rate": 0}})
    problems, fields = info.value.problems, error_fields(info.value)
    codes = {(p.code, p.params["field"]) for p in problems}
    assert {("config.below_min", "method.r"), ("config.learning_rate", "train.learning_rate")} <= codes
    assert messages.say(problems[0], "en") == str(problems[0])
    back = engine_messages.from_dict(engine_messages.as_dict(info.value))  # a message read back from a status file
    assert back == str(info.value) and back.params["problems"].params["parts"][0].code == problems[0].code
    chinese = messages.say(messages.status_error(fields), "zh")
    assert "method.r：0 低于最小值 1" in chinese and "有 2 个问题" in chinese
    assert not english_words(chinese, allowed={"config"})
    stale = {**fields, "error": "another error"}  # a later error without a code: shown as English, marked
    assert messages.say(messages.status_error(stale), "zh") == "说明（英文）：another error"
    assert "<details>" in messages.say_html("plain English", "zh")


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
    assert set(follow.loss_frame(rows, "zh", 2.5)["series"]) == {"训练损失", "验证损失", "基础模型（验证）"}
    for lang in ("en", "zh"):  # a series missing from the plot's colour map is not drawn at all
        assert set(follow.loss_frame(rows, lang, 2.5)["series"]) == set(follow.loss_colors(lang))
    # advice recorded with its message codes is worded in Chinese; plain English (an older run) is marked as such
    from engine.training.failures import explain

    failed = explain(MemoryError("no room"), step=3)
    lines = follow.failure_lines(failed, "zh")
    first_advice = messages.say(failed["failure"]["advice_i18n"][0], "zh")
    assert lines[0].startswith("内存不足（第 3 步）") and lines[1] == "建议：" + first_advice
    assert not english_words(" ".join(lines), allowed={"MemoryError", "no", "room", "train", "batch_size",
                                                         "gradient_accumulation"})
    assert follow.failure_lines({"error": "e", "failure": {"advice": ["batch_size 1"]}}, "zh")[1] == \
        "建议：说明（英文）：batch_size 1"
    table = runs_table([{"id": "r1", "state": "done", "step": 5, "max_steps": 5, "final_loss": 0.5}], "zh")
    assert table["headers"][4] == "状态" and table["data"][0][4] == "已完成"


def test_the_memory_estimate_in_chinese_names_its_verdict_notes_and_cheaper_settings():
    """A run that does not fit an 8 GiB GPU: the panel, its notes and its one-click options, in Chinese."""
    from types import SimpleNamespace

    from engine.core.messages import Message
    from ui import estimate_panel

    gpu = {"kind": "cuda", "name": Message("device.no_gpu"), "total_bytes": int(8 * 2**30),
           "available_bytes": int(8 * 2**30), "count": 1}
    raw = {"model": "smollm2-135m-instruct", "method": {"name": "lora"},
           "train": {"batch_size": 16, "max_seq_len": 1024, "precision": "fp32", "optimizer": "paged_adamw_8bit"}}
    panel, _, *buttons = estimate_panel.update(SimpleNamespace(device=gpu), raw, "zh")[:2 + estimate_panel.MAX_OPTIONS]
    labels = [b["value"] for b in buttons if b.get("visible")]
    assert "放不下" in panel and "GPU（本机未找到）" in panel and labels
    assert "分页优化器状态" in panel  # the paged optimizer's note
    shown = re.sub(r"<[^>]+>", " ", panel) + " ".join(labels)
    assert not english_words(shown, allowed={"lora"}), english_words(shown)
