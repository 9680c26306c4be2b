"""Prompt-only data (the `prompt` kind): prompts with reference columns, for objectives that generate their own
answers and score them with rewards (GRPO, engine/training/grpo.py).

A record holds a `prompt` (text, or a message list ending with a user turn; an optional `system`) and any other
columns, kept as the example's references (e.g. `answer: "42"` for a numeric-match reward). Nothing is trained
on the prompt: the completions the model samples are what GRPO trains. Registered as the format `prompts` with
the one field `prompt`, after every other format (engine/data/formats.py imports this module last), so a
record that also holds answers (chosen, completion, output, ...) is read by its own format first.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.core.messages import Message as M
from engine.core.messages import as_dict
from engine.core.registry import FORMATS
from engine.data.errors import FieldError
from engine.data.formats import Example, Format, _prompt
from engine.data.masking import Dropped, encode_each, render, untrained_units

PROMPT_FIELDS = ("prompt", "system")


@dataclass
class PromptExample(Example):
    references: dict = field(default_factory=dict)  # every other column of the record: name -> value

    @property
    def kind(self) -> str:
        return "prompt"


def _prompt_only(record: dict) -> Example:
    messages = _prompt(record)
    references = {}
    for name, value in record.items():
        if name in PROMPT_FIELDS:
            continue
        if isinstance(value, (dict, list)):
            raise FieldError(name, M("field.expected_text", got=type(value).__name__), M("field.make_string"))
        references[name] = value
    return PromptExample(where="", messages=messages, references=references)


FORMATS.register("prompts", Format("prompts", "prompt (+ reference columns such as answer): prompts the model "
                                   "answers itself, scored by rewards (GRPO)", ("prompt",), _prompt_only,
                                   kind="prompt"))


@dataclass
class EncodedPrompt:
    """A prompt as the trainer sees it: its conversation (TRL renders it with the chat template, as here), its
    token ids with the generation prompt, and its references; `where` names the line for a reward's error."""

    messages: list[dict]
    input_ids: list[int]
    references: dict
    where: str

    @property
    def trained_tokens(self) -> int:
        return 0  # the completions are sampled while training: none is known beforehand


def encode_prompt(tokenizer, example: PromptExample, max_prompt_len: int) -> EncodedPrompt | Dropped:
    ids = tokenizer(render(tokenizer, example.messages, generation_prompt=True), add_special_tokens=False)["input_ids"]
    if len(ids) > max_prompt_len:
        return Dropped("drop.prompt_fills", max_seq_len=max_prompt_len)
    return EncodedPrompt(example.messages, ids, dict(example.references), example.where)


def encode_all_prompts(loaded, tokenizer, max_seq_len: int) -> tuple[list, Counter, list]:
    """Encode every prompt; (kept, dropped reason -> count, "line N: reason" rows), as the trainer and the Data
    tab count them."""
    return encode_each(loaded.examples, lambda example: encode_prompt(tokenizer, example, max_seq_len))


def prompt_preview(tokenizer, example: PromptExample, max_seq_len: int) -> dict:
    """One prompt as the Data tab shows it: its tokens as the model reads them before answering (the chat template
    with the generation prompt; none trained: the answers are sampled while training) and its reference columns,
    which the rewards compare the answers with."""
    encoded = encode_prompt(tokenizer, example, max_seq_len)
    entry = {"where": example.where, "kind": "prompt", "dropped": "", "tokens": [],
             "references": {name: str(value) for name, value in example.references.items()}}
    if isinstance(encoded, Dropped):
        entry["dropped"], entry["dropped_i18n"] = str(encoded), as_dict(encoded)
        return entry
    entry["tokens"] = untrained_units(tokenizer, render(tokenizer, example.messages, generation_prompt=True))
    return entry


def prepare_prompts(data, tokenizer, max_seq_len: int, seed: int = 0, objective=None):
    """The trainer's prompts: load, check the kind, encode, drop prompts that leave no room to answer, split.
    `max_seq_len` bounds the prompt (the objective's completion length comes on top, engine/core/objectives.py)."""
    from engine.data import load_examples
    from engine.data.dataset import Prepared, validation_indices
    from engine.data.pairwise import data_kind

    loaded = load_examples(data.train, data.format, data.columns, data.skip_bad_rows, split=data.split,
                           subset=data.subset, reasoning=data.reasoning)
    kind = data_kind(loaded)
    if kind != "prompt":
        name = objective.key if objective is not None else "grpo"
        raise ValueError(f"{loaded.file} holds {kind} data, but {name} trains on prompts it answers itself: a field "
                         "prompt (text or messages) and reference columns such as answer")
    kept, dropped, rows = encode_all_prompts(loaded, tokenizer, max_seq_len)
    if not kept:
        raise ValueError(f"{loaded.file}: every prompt was dropped ({dict(dropped)}); raise max_seq_len")
    held = validation_indices(len(kept), data.validation_split, seed)
    return Prepared(loaded, [e for i, e in enumerate(kept) if i not in held],
                    [e for i, e in enumerate(kept) if i in held], dropped, rows)
