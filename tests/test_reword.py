"""A message shown after an action is worded again when the page's language changes (ui/reword.py): the note of a
started run, an error with an engine message, an export's note whose part is worded by a function."""
from __future__ import annotations

import gradio as gr

from engine.core.messages import Message
from ui import export_tab, reword, train_tab
from ui.reword import said


def test_a_note_is_worded_again_in_the_new_language():
    shown = reword.note("ok", "en", said("ui.train_tab", "started", run="r1"), "")
    assert "Started r1." in shown and "tl-ok" in shown
    again = reword.reword(shown, "zh")
    assert train_tab.TEXT["zh"]["started"].format(run="r1") in again and "Started" not in again
    assert "Started r1." in reword.reword(again, "en")  # and back


def test_an_error_keeps_its_engine_message_and_words_it_in_chinese():
    shown = reword.error("en", said("ui.train_tab", "cannot_stop"),
                         Message("run.active_delete", run="r1", state="running"))
    again = reword.reword(shown, "zh")
    assert train_tab.TEXT["zh"]["cannot_stop"] in again and "tl-error" in again
    assert "Could not stop" not in again and "r1" in again


def test_a_phrase_worded_by_a_function_and_nested_values():
    shown = reword.note("ok", "en", said("ui.export_tab", "cannot", kind=reword.worded_by(export_tab.kind_name,
                                                                                          "adapter")))
    assert "Could not export the adapter" in shown
    assert export_tab.TEXT["zh"]["cannot"].format(kind=export_tab.TEXT["zh"]["kind_adapter"]) in \
        reword.reword(shown, "zh")


def test_a_box_without_what_it_says_is_left_alone():
    assert reword.reword("<div class='tl-info'>plain</div>", "zh") == gr.skip()
    assert reword.reword("", "zh") == gr.skip() and reword.reword(None, "zh") == gr.skip()
