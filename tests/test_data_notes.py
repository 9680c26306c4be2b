"""The Data tab on tool and reasoning data: what it says about reasoning (kept inline where the template has no
place, or dropped), raw-text blocks and the layout chosen, and the preview's names for tool calls, tool outputs
and reasoning, in both languages. Reports come from the real check (ui.data_tab.check_data runs the CLI)."""
import pytest
from conftest import DATA

LAYOUTS = DATA / "layouts"


@pytest.fixture(scope="module")
def check(tiny_model):
    from ui import data_tab

    def run(name, reasoning="auto", max_seq_len=512):
        key = data_tab.data_key(str(LAYOUTS / name), "auto", "", "assistant", False, tiny_model, max_seq_len,
                                "train", "", reasoning)
        report = data_tab.check_data(key)
        assert "stats" in report, report
        return report
    return run


def test_reasoning_without_a_place_in_the_template_is_said_and_can_be_dropped(check):
    from ui.data_notes import notes

    kept = check("reasoning.jsonl")
    assert kept["stats"]["reasoning_examples"] == 3 and kept["template_has"]["reasoning"] is False
    english = "\n".join(notes(kept, "en"))
    assert "no place for it" in english and "<think>" in english and "drop" in english
    assert "没有它的位置" in "\n".join(notes(kept, "zh"))
    dropped = check("reasoning.jsonl", reasoning="drop")
    assert "dropped, neither shown nor trained" in "\n".join(notes(dropped, "en"))
    assert dropped["stats"]["trained_tokens"] < kept["stats"]["trained_tokens"]


def test_tool_parts_are_named_in_the_preview(check):
    from ui.data_tab import highlighted, token_colors

    report = check("openai_tools.jsonl")
    labels = {label for _, label in highlighted(report["previews"][0])}
    assert {"tool call (trained)", "tool output (not trained)", "trained"} <= labels
    assert labels - {None} <= set(token_colors("#22c55e")("en"))  # every label has a colour in the legend
    assert "工具调用（参与训练）" in {label for _, label in highlighted(report["previews"][0], lang="zh")}


def test_raw_text_blocks_and_the_layout_note(check):
    from ui.data_notes import notes

    text = check("corpus.txt", max_seq_len=16)
    assert "**3** documents joined with EOS" in "\n".join(notes(text, "en"))
    kto = check("lf_kto.json")
    assert any("also fits messages" in line for line in notes(kto, "en"))
