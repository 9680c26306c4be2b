"""Every layout other tools write is read into the right kind of example, trained right, or refused by name.

One file per layout under tests/data/layouts (written in that layout), read the way the app reads it."""
import json
import subprocess
import sys

import pytest
from conftest import DATA, ROOT
from test_masking import trained_text as trained_runs  # each trained run of tokens, decoded

from engine.core.models import load_tokenizer
from engine.data import DataError, load_examples
from engine.data.dataset import encode_all
from engine.data.masking import encode, token_preview
from engine.data.pairwise import data_kind

LAYOUTS = DATA / "layouts"


@pytest.fixture(scope="module")
def tok(tiny_model):
    return load_tokenizer(tiny_model)


def test_trl_prompt_completion_text_trains_only_the_completion(tok):
    loaded = load_examples(LAYOUTS / "trl_prompt_completion.jsonl")
    assert loaded.format == "prompt_completion" and data_kind(loaded) == "conversation" and loaded.count == 2
    runs = trained_runs(tok, encode(tok, loaded.examples[0], "assistant", 256))
    assert runs == [" blue.<|im_end|>\n"]


def test_trl_prompt_completion_messages_keep_the_prompt_untrained(tok):
    loaded = load_examples(LAYOUTS / "trl_prompt_completion_messages.jsonl")
    assert loaded.format == "prompt_completion"
    second = loaded.examples[1]
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user", "assistant"]
    # the assistant turn inside the prompt is context: only the completion trains, even with mask "assistant"
    assert trained_runs(tok, encode(tok, second, "assistant", 256)) == ["Green.<|im_end|>\n"]


def test_openai_tools_file(tok):
    loaded = load_examples(LAYOUTS / "openai_tools.jsonl")
    assert loaded.format == "messages" and loaded.count == 2 and loaded.tool_count == 1
    first = loaded.examples[0]
    assert first.messages[1]["content"] == "Weather in Paris and Rome?"  # text parts joined
    calls = first.messages[2]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]  # parallel, parsed
    assert [m.get("name") for m in first.messages[3:5]] == ["get_weather", "get_weather"]
    assert first.tools[0]["function"]["name"] == "get_weather"
    runs = trained_runs(tok, encode(tok, first, "assistant", 1024))
    assert len(runs) == 2 and '"city": "Rome"' in runs[0] and runs[1].startswith("Paris: 18 C, sunny.")
    assert not any("18 C and sunny" in r or "Current weather" in r or "You look up" in r for r in runs)
    # weight 0: the first answer is shown to the model but not trained
    second = trained_runs(tok, encode(tok, loaded.examples[1], "assistant", 256))
    assert second == ["Hello, nice to meet you.<|im_end|>\n"]


def test_openai_tools_preview_names_the_parts(tok):
    example = load_examples(LAYOUTS / "openai_tools.jsonl").examples[0]
    units = token_preview(tok, example, encode(tok, example, "assistant", 1024))
    by_part = {}
    for unit in units:
        by_part.setdefault(unit.get("part", ""), []).append(unit)
    assert "get_weather" in "".join(u["token"] for u in by_part["tool_call"])
    assert all(u["trained"] for u in by_part["tool_call"])
    assert "".join(u["token"] for u in by_part["tool_output"]) == "18 C and sunny24 C and cloudy"
    assert not any(u["trained"] for u in by_part["tool_output"])


def test_sharegpt_function_call_and_observation(tok):
    loaded = load_examples(LAYOUTS / "sharegpt_tools.json")
    assert loaded.format == "sharegpt" and loaded.count == 1
    messages = loaded.examples[0].messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert loaded.examples[0].tools[0]["function"]["name"] == "get_weather"  # the JSON string was read
    runs = trained_runs(tok, encode(tok, loaded.examples[0], "assistant", 1024))
    assert len(runs) == 2 and '"city": "Oslo"' in runs[0] and runs[1] == "It is 3 C in Oslo.<|im_end|>\n"
    assert not any("3 C\"" in r for r in runs)


@pytest.mark.parametrize("mode", ["auto", "inline", "drop"])
def test_reasoning_is_kept_or_dropped_never_silently(tok, mode):
    loaded = load_examples(LAYOUTS / "reasoning.jsonl", reasoning=mode)
    assert loaded.reasoning_count == 3  # counted (and shown) whatever the mode
    expected = ["Six sevens: 35 plus 7 is 42.", "Peru's capital is the coastal city Lima.", "9 is 3 times 3."]
    answers = ["42", "Lima", "No."]
    for example, reasoning, answer in zip(loaded.examples, expected, answers):
        runs = trained_runs(tok, encode(tok, example, "assistant", 256))
        if mode == "drop":
            assert runs == [f"{answer}<|im_end|>\n"]
        else:  # SmolLM2's template has no place for reasoning: it is written inline and trained
            assert runs == [f"<think>\n{reasoning}\n</think>\n\n{answer}<|im_end|>\n"]


def test_llamafactory_sharegpt_preference_pairs():
    loaded = load_examples(LAYOUTS / "lf_dpo_sharegpt.json")
    assert loaded.format == "pairwise" and data_kind(loaded) == "pairwise"
    example = loaded.examples[0]
    assert example.messages == [{"role": "user", "content": "Name a fruit."}]
    assert (example.chosen, example.rejected) == ("An apple.", "A chair.")


def test_llamafactory_alpaca_preference_pairs():
    loaded = load_examples(LAYOUTS / "lf_dpo_alpaca.json")
    assert loaded.format == "pairwise"
    example = loaded.examples[0]
    assert example.messages == [{"role": "user", "content": "Translate to French:\n\ncat"}]
    assert (example.chosen, example.rejected) == ("chat", "chien")


def test_llamafactory_v1_preference_conversations():
    loaded = load_examples(LAYOUTS / "lf_v1_dpo.jsonl")
    assert loaded.format == "pairwise_messages" and data_kind(loaded) == "pairwise"
    example = loaded.examples[0]
    assert example.messages == [{"role": "user", "content": "Name a planet."}]
    assert (example.chosen, example.rejected) == ("Mars.", "A spoon.")


def test_llamafactory_kto_is_unpaired_never_sft():
    loaded = load_examples(LAYOUTS / "lf_kto.json")
    assert loaded.format == "kto" and data_kind(loaded) == "unpaired"
    assert [(e.completion, e.label) for e in loaded.examples] == [("Hello!", True), ("Go away.", False)]
    # the file also reads as a plain chat: the check says which layout it chose and how to pick the other
    assert loaded.also_fits == ["messages"] and "messages" in str(loaded.note)


def test_raw_text_files_are_documents_cut_into_blocks(tok):
    from engine.data.dataset import is_raw_text

    loaded = load_examples(LAYOUTS / "corpus.txt")
    assert loaded.format == "text" and loaded.count == 3 and is_raw_text(loaded)  # one document per line
    assert [e.where for e in loaded.examples] == ["line 1", "line 3", "line 4"]
    blocks, dropped, _ = encode_all(loaded, tok, "assistant", 16)
    lines = [line for line in (LAYOUTS / "corpus.txt").read_text().splitlines() if line]
    stream = [t for line in lines for t in tok(line)["input_ids"] + [tok.eos_token_id]]
    assert [b.input_ids for b in blocks] == [stream[i:i + 16] for i in range(0, len(stream), 16)]
    assert all(b.labels == b.input_ids for b in blocks) and not dropped  # every token trained
    assert sum(b.input_ids.count(tok.eos_token_id) for b in blocks) == 3  # EOS between documents
    markdown = load_examples(LAYOUTS / "notes.md")
    assert markdown.count == 1 and markdown.examples[0].text.startswith("# Notes")


@pytest.mark.parametrize("name,field,what", [("images.json", "images", "images"),
                                             ("image_placeholder.jsonl", "instruction", "<image>")])
def test_media_is_refused_by_name(name, field, what):
    with pytest.raises(DataError) as info:
        load_examples(LAYOUTS / name)
    error = info.value
    assert error.file == name and error.field == field and what in str(error)
    assert "text model" in str(error) and "supported" in str(error.hint)


@pytest.mark.parametrize("name,where,field,text", [
    ("bad_tool_arguments.jsonl", "line 1", "messages[1].tool_calls[0].arguments", "not valid JSON"),
    ("bad_tool_unanswered.jsonl", "line 2", "messages[2]", "answers no tool call"),
    ("bad_weight.jsonl", "line 1", "messages[1].weight", "weight must be 0 or 1, got 0.5"),
    ("bad_label.json", "row 2", "label", "label must be true or false, got 'bad'"),
])
def test_bad_rows_name_file_line_field_and_fix(name, where, field, text):
    with pytest.raises(DataError) as info:
        load_examples(LAYOUTS / name)
    error = info.value
    assert (error.file, error.where, error.field) == (name, where, field), error.to_dict()
    assert text in str(error) and error.hint
    assert error.to_dict()["message_i18n"]["code"]  # worded in the page's language by its code


def test_cli_check_reports_kind_note_and_blocks(tmp_path, tiny_model):
    def check(path, *extra):
        result = subprocess.run([sys.executable, "-m", "engine", "data", "check", str(path), "--json", *extra],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    kto = check(LAYOUTS / "lf_kto.json")
    assert kto["format"] == "kto" and kto["kind"] == "unpaired" and "--format" in kto["note"]
    text = check(LAYOUTS / "corpus.txt", "--model", tiny_model, "--max-seq-len", "16")
    assert text["documents"] == 3 and text["blocks"] >= 2 and text["trained_tokens"] == text["tokens"]


def test_preference_data_keeps_reasoning_inline_and_refuses_tool_calls(tmp_path):
    path = tmp_path / "kto_reasoning.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "6 x 7?"},
                                             {"role": "assistant", "reasoning_content": "35 + 7", "content": "42"}],
                                "label": True}) + "\n")
    assert load_examples(path).examples[0].completion == "<think>\n35 + 7\n</think>\n\n42"  # not dropped silently
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Weather?"},
                                             {"role": "assistant", "content": None,
                                              "tool_calls": [{"name": "get_weather", "arguments": {}}]}],
                                "label": True}) + "\n")
    with pytest.raises(DataError) as info:
        load_examples(path)
    assert info.value.field == "messages[1]" and "not supported in preference data" in str(info.value)
