"""Label masking works for any chat template: only assistant turns (and their end marker) train."""
import pytest
from transformers import AutoTokenizer

from engine.data.formats import Example
from engine.data.masking import IGNORE, Dropped, encode, token_preview

ZEPHYR = ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
          " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome is the capital of Italy."},
]


@pytest.fixture(scope="module", params=["smollm2", "zephyr", "llama3"])
def tokenizer(request, tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    if request.param == "zephyr":
        tok.chat_template = ZEPHYR
    elif request.param == "llama3":
        tok.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
        tok.chat_template = LLAMA3
    tok.template_name = request.param
    return tok


def trained_text(tok, encoded):
    """Decode each contiguous run of trained tokens separately."""
    runs, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != IGNORE:
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
    end_marker = {"smollm2": "<|im_end|>", "zephyr": tokenizer.eos_token, "llama3": "<|eot_id|>"}[tokenizer.template_name]
    assert all(end_marker in span for span in spans)
    # labels equal the input ids wherever they are trained
    assert all(l in (IGNORE, i) for i, l in zip(encoded.input_ids, encoded.labels))


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
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", 40)
    assert len(encoded.input_ids) == 40 and encoded.trained_tokens > 0


def test_plain_text_trains_every_token(tokenizer):
    encoded = encode(tokenizer, Example("row 1", text="Once upon a time"), "assistant", 64)
    assert encoded.trained_tokens == len(encoded.input_ids) > 3


def test_preview_marks_tokens(tokenizer):
    encoded = encode(tokenizer, Example("row 1", messages=CONVERSATION), "assistant", 512)
    preview = token_preview(tokenizer, encoded)
    assert len(preview) == len(encoded.input_ids)
    assert "".join(p["token"] for p in preview if p["trained"]).count("Paris") == 1
    assert not any(p["trained"] for p in preview if "France" in p["token"])
