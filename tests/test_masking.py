"""Label masking works for any chat template: only assistant turns (and their end marker) train."""
import pytest

from engine.core.models import load_tokenizer
from engine.core.registry import TEMPLATES
from engine.data.formats import Example
from engine.data.masking import IGNORE_INDEX, Dropped, encode, token_preview

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome is the capital of Italy."},
]


@pytest.fixture(scope="module", params=["own"] + list(TEMPLATES))
def tokenizer(request, tiny_model):
    """The tiny model's tokenizer with its own template (SmolLM2's ChatML) and with every registered one
    (engine/data/templates.py), as `data.template` would set it."""
    tok = load_tokenizer(tiny_model, template="auto" if request.param == "own" else request.param)
    tok.template_name = request.param
    return tok


def trained_text(tok, encoded):
    """Decode each contiguous run of trained tokens separately."""
    runs, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


def test_all_assistant_turns_and_nothing_else(tokenizer):
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", 512)
    spans = trained_text(tokenizer, encoded)
    assert len(spans) == 2
    assert spans[0].strip().startswith("Paris.") and spans[1].strip().startswith("Rome is the capital of Italy.")
    for span in spans:  # the end-of-turn marker is trained so the model learns to stop
        assert "Capital of France" not in span and "Be brief" not in span and "And of Italy" not in span
    end_marker = {"own": "<|im_end|>", "chatml": "<|im_end|>", "zephyr": tokenizer.eos_token, "llama3": "<|eot_id|>",
                  "alpaca": tokenizer.eos_token, "chatml-tools": "<|im_end|>"}[tokenizer.template_name]
    assert all(end_marker in span for span in spans)
    # labels equal the input ids wherever they are trained
    assert all(label in (IGNORE_INDEX, i) for i, label in zip(encoded.input_ids, encoded.labels))


def test_last_turn_only(tokenizer):
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "last_assistant", 512)
    spans = trained_text(tokenizer, encoded)
    assert len(spans) == 1 and spans[0].strip().startswith("Rome")


def test_train_on_prompt_trains_everything(tokenizer):
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "none", 512)
    assert encoded.trained_tokens == len(encoded.input_ids)


def test_truncation_that_removes_every_answer_token_drops_the_row(tokenizer):
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    result = encode(tokenizer, Example("line 7", messages=long_prompt), "assistant", 64)
    assert isinstance(result, Dropped) and "max_seq_len" in result


def test_truncation_keeps_partial_answers(tokenizer):
    full = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", 512)
    first_trained = next(i for i, label in enumerate(full.labels) if label != IGNORE_INDEX)
    cut = first_trained + 2  # inside the first answer
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", cut)
    assert len(encoded.input_ids) == cut and encoded.trained_tokens == 2


def test_plain_text_trains_every_token(tokenizer):
    encoded = encode(tokenizer, Example("row 1", text="Once upon a time"), "assistant", 64)
    assert encoded.trained_tokens == len(encoded.input_ids) > 3


def test_preview_marks_tokens(tokenizer):
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", 512)
    preview = token_preview(tokenizer, Example("row 1", messages=CONVERSATION), encoded)
    assert len(preview) == len(encoded.input_ids)  # ASCII: one unit per token
    assert "".join(p["token"] for p in preview if p["trained"]).count("Paris") == 1
    assert not any(p["trained"] for p in preview if "France" in p["token"])


MULTILINGUAL = [
    {"role": "system", "content": "Réponds en français, s'il te plaît. Café crème à 3 €."},
    {"role": "user", "content": "12 ÷ 4 等于多少？请用中文回答 😀"},
    {"role": "assistant", "content": "12 ÷ 4 等于 3。有什么可以帮你的吗？🎉 naïve façade"},
    {"role": "user", "content": "谢谢！"},
    {"role": "assistant", "content": "不客气 🙂"},
]


@pytest.mark.parametrize("mask", ["assistant", "last_assistant", "none"])
def test_preview_of_multibyte_text_is_the_rendered_text_exactly(tokenizer, mask):
    from engine.data.masking import render

    example = Example("line 1", messages=MULTILINGUAL)
    encoded = encode(tokenizer, example, mask, 2048)
    preview = token_preview(tokenizer, example, encoded)
    assert "".join(u["token"] for u in preview) == render(tokenizer, MULTILINGUAL)
    assert not any("\ufffd" in u["token"] for u in preview)
    assert len(preview) < len(encoded.input_ids)  # pieces of a character were grouped
    trained = "".join(u["token"] for u in preview if u["trained"])
    if mask == "none":
        assert trained == render(tokenizer, MULTILINGUAL)
    else:
        assert "不客气 🙂" in trained and "谢谢" not in trained and "中文回答" not in trained
        assert ("等于 3" in trained) == (mask == "assistant")


def test_a_grouped_unit_is_trained_only_if_all_its_pieces_are(tokenizer):
    """A unit whose pieces straddle the end of the prompt is shown untrained."""
    from engine.data.masking import Encoded

    example = Example("line 1", text="😀")
    ids = tokenizer("😀", add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    assert len(ids) >= 3  # the emoji is more than one piece
    labels = list(ids)
    labels[-2] = IGNORE_INDEX  # one piece of the emoji is not trained
    units = token_preview(tokenizer, example, Encoded(ids, labels))
    emoji = next(u for u in units if "😀" in u["token"])
    assert emoji["token"] == "😀" and emoji["trained"] is False


def test_cli_preview_of_a_chinese_sharegpt_file(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"conversations": [{"from": "human", "value": "12 ÷ 4 等于多少？"},
                                                  {"from": "gpt", "value": "有 3 个。可以吗？😀"}]},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "engine", "data", "preview", str(data), "--json"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    units = json.loads(result.stdout.strip().splitlines()[-1])[0]
    text = "".join(u["token"] for u in units)
    assert "12 ÷ 4 等于多少？" in text and "有 3 个。可以吗？😀" in text and "\ufffd" not in text
    assert "有 3 个。可以吗？😀" in "".join(u["token"] for u in units if u["trained"])
